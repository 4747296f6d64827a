// UDP and TCP endpoints on the loop.
//
// UdpSocket wraps an asio socket but does its datagram I/O with recvmsg/sendmsg/sendmmsg directly:
// the servers wait for readability once and then drain the socket without blocking, so a busy socket
// costs one wake-up per batch rather than one per datagram, and packet info (the local address a
// request arrived on, and its interface) comes with each datagram. Replies can name their source
// address, so a server bound to 0.0.0.0 still answers from the address the client spoke to.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <span>
#include <system_error>

#include "common/result.hpp"

namespace pxedust::event {

struct UdpOptions {
  bool packetInfo = false;    // deliver local address + interface index with each datagram
  bool reuseAddress = false;  // SO_REUSEADDR
  int receiveBuffer = 0;      // SO_RCVBUF in bytes; 0 keeps the system default
  int sendBuffer = 0;         // SO_SNDBUF in bytes; 0 keeps the system default
  bool broadcast = false;     // SO_BROADCAST: may send to 255.255.255.255
  std::string device{};       // SO_BINDTODEVICE: receive from and send through this interface only
};

struct Received {
  std::size_t size = 0;
  bool truncated = false;  // the datagram was longer than the buffer (MSG_TRUNC)
  asio::ip::udp::endpoint from;
  asio::ip::address local;  // with UdpOptions::packetInfo: the address the datagram was sent to
  unsigned ifindex = 0;     // with UdpOptions::packetInfo: the receiving interface
};

class UdpSocket {
 public:
  explicit UdpSocket(asio::io_context& io) : socket_(io) {}

  Result<void> open(const asio::ip::udp::endpoint& bindTo, const UdpOptions& options);
  [[nodiscard]] bool isOpen() const { return socket_.is_open(); }
  int fd() { return socket_.native_handle(); }
  [[nodiscard]] asio::ip::udp::endpoint localEndpoint() const;

  // Non-blocking: nullopt when nothing is queued (or on a transient error such as ECONNREFUSED).
  std::optional<Received> tryReceive(std::span<std::uint8_t> buffer);

  // One datagram gathered from `parts`. `source`, when set, is the reply's source address.
  bool send(std::span<const iovec> parts, const asio::ip::udp::endpoint& to,
            const asio::ip::address* source = nullptr);
  // Several prepared datagrams in one sendmmsg; returns how many were sent (0 when the socket's
  // buffer is full or on error; errno then tells which, EAGAIN for a full buffer).
  unsigned sendBatch(std::span<mmsghdr> messages);
  // Raises SO_SNDBUF to at least `bytes` (never lowers it); the FORCE variant passes wmem_max when
  // we may. Returns the size the kernel reports afterwards (it doubles the request for overhead).
  int growSendBuffer(int bytes);

  // Completes when the socket is readable, or with operation_aborted after cancel()/close().
  // For sockets drained with tryReceive(); each wait re-arms the descriptor (one epoll_ctl).
  asio::awaitable<std::error_code> waitReadable();
  // Receives one datagram: tries at once, else waits for it without re-arming the descriptor.
  // The cheapest way to take one datagram at a time (a transfer's ACKs); operation_aborted after
  // cancel()/close(). A datagram longer than `buffer` is cut short.
  asio::awaitable<std::error_code> receive(std::span<std::uint8_t> buffer, std::size_t& size,
                                           asio::ip::udp::endpoint& from);
  void cancel();
  void close();

 private:
  asio::ip::udp::socket socket_;
  bool packetInfo_ = false;
};

// Accepts TCP connections and hands each connected socket to the handler, on the loop.
class TcpListener {
 public:
  using Handler = std::function<void(asio::ip::tcp::socket)>;
  TcpListener(asio::io_context& io, Handler handler) : acceptor_(io), handler_(std::move(handler)) {}

  // Binds and listens: the kernel queues connections from here on. start() begins accepting them;
  // the two are apart so that a reload can bind a new address and still change its mind.
  Result<void> listen(const asio::ip::tcp::endpoint& endpoint, int backlog = 1024);
  void start();
  void close();
  [[nodiscard]] asio::ip::tcp::endpoint localEndpoint() const;

 private:
  asio::awaitable<void> acceptLoop();
  asio::ip::tcp::acceptor acceptor_;
  Handler handler_;
};

// Copies a socket address into an asio endpoint (no DNS, no allocation).
asio::ip::udp::endpoint toEndpoint(const sockaddr_storage& ss, socklen_t len);

}  // namespace pxedust::event
