// NFS v3, MOUNT v3 and PORTMAP v2 over UDP (RFC 5531: one call per datagram, no record marking), on
// the addresses and ports the TCP listeners have. Old tools and some clients speak UDP (rpcinfo -u,
// showmount, a mount with proto=udp or mountproto=udp).
//
// Each socket reads calls while fewer than max_in_flight of its calls are on the workers; beyond that
// the datagrams wait in the socket's buffer (and are dropped by the kernel when it fills: a UDP client
// sends again). Answers are those of TCP (calls.hpp) but for their size: over UDP READs and listings
// are held to 32 KiB (FSINFO says so), and a reply that still does not fit a datagram is answered
// SYSTEM_ERR. Every procedure here is idempotent (the exports are read-only), so a call sent again
// needs no duplicate-request cache. Replies leave from the address the call was sent to.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>
#include <asio/steady_timer.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "event/udp.hpp"
#include "nfs/calls.hpp"

namespace pxedust::nfs {

// What a reply over UDP may hold: the largest UDP payload over IPv4.
inline constexpr std::size_t kMaxDatagram = 65'507;
// READ and READDIR(PLUS) limits over UDP (the Linux client's own cap for NFS over UDP).
inline constexpr Limits kUdpLimits{32u << 10, 32u << 10};

class DatagramSocket : public std::enable_shared_from_this<DatagramSocket> {
 public:
  DatagramSocket(std::shared_ptr<ServiceContext> ctx, asio::io_context& io);

  Result<void> open(const asio::ip::udp::endpoint& at);
  void start();
  // Stops reading; calls on the workers finish and are not answered.
  void close();
  [[nodiscard]] asio::ip::udp::endpoint localEndpoint() const { return socket_.localEndpoint(); }
  // "udp/ADDRESS:PORT", for the log.
  [[nodiscard]] const std::string& label() const { return label_; }

 private:
  asio::awaitable<void> serve();
  asio::awaitable<void> run(std::vector<std::uint8_t> datagram, asio::ip::udp::endpoint from, asio::ip::address local);

  std::shared_ptr<ServiceContext> ctx_;
  event::UdpSocket socket_;
  asio::steady_timer slotSignal_;
  std::size_t inFlight_ = 0;
  bool closed_ = false;
  std::string label_;
};

}  // namespace pxedust::nfs
