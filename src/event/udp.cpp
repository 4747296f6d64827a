#include "event/udp.hpp"

#include <netinet/ip.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>

#include "common/log.hpp"

namespace pxedust::event {

asio::ip::udp::endpoint toEndpoint(const sockaddr_storage& ss, socklen_t len) {
  asio::ip::udp::endpoint ep;
  auto n = std::min<std::size_t>(len, ep.capacity());
  std::memcpy(ep.data(), &ss, n);
  ep.resize(n);
  return ep;
}

namespace {

// The FORCE variant passes net.core.[rw]mem_max when we may (CAP_NET_ADMIN); else the capped size.
void setBufferSize(int fd, int forceOption, int option, int bytes) {
  if (::setsockopt(fd, SOL_SOCKET, forceOption, &bytes, sizeof bytes) != 0)
    ::setsockopt(fd, SOL_SOCKET, option, &bytes, sizeof bytes);
}

}  // namespace

Result<void> UdpSocket::open(const asio::ip::udp::endpoint& bindTo, const UdpOptions& options) {
  std::error_code ec;
  socket_.open(bindTo.protocol(), ec);
  if (ec) return Error{"socket: " + ec.message(), ec.value()};
  socket_.non_blocking(true, ec);
  int fd = socket_.native_handle();
  int one = 1;
  if (options.reuseAddress) socket_.set_option(asio::socket_base::reuse_address(true), ec);
  if (bindTo.address().is_v6()) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (options.packetInfo) {
    int rc = bindTo.address().is_v4() ? ::setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one)
                                      : ::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
    if (rc != 0) return errnoError(std::string("packet info: ") + std::strerror(errno), errno);
    packetInfo_ = true;
  }
  if (options.receiveBuffer > 0) setBufferSize(fd, SO_RCVBUFFORCE, SO_RCVBUF, options.receiveBuffer);
  if (options.sendBuffer > 0) setBufferSize(fd, SO_SNDBUFFORCE, SO_SNDBUF, options.sendBuffer);
  if (options.broadcast && ::setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) != 0)
    return errnoError(std::string("SO_BROADCAST: ") + std::strerror(errno), errno);
  if (!options.device.empty() &&
      ::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, options.device.data(),
                   static_cast<socklen_t>(options.device.size())) != 0) {
    int err = errno;
    socket_.close();
    return errnoError("bind to interface " + options.device + ": " + std::strerror(err), err);
  }
  socket_.bind(bindTo, ec);
  if (ec) {
    socket_.close();
    return Error{"bind " + bindTo.address().to_string() + ":" + std::to_string(bindTo.port()) + ": " +
                     ec.message(),
                 ec.value()};
  }
  return {};
}

asio::ip::udp::endpoint UdpSocket::localEndpoint() const {
  std::error_code ec;
  return socket_.local_endpoint(ec);
}

std::optional<Received> UdpSocket::tryReceive(std::span<std::uint8_t> buffer) {
  sockaddr_storage from{};
  iovec iov{buffer.data(), buffer.size()};
  alignas(cmsghdr) std::uint8_t control[128];
  msghdr msg{};
  msg.msg_name = &from;
  msg.msg_namelen = sizeof from;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (packetInfo_) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
  }
  ssize_t n = ::recvmsg(socket_.native_handle(), &msg, MSG_DONTWAIT);
  if (n < 0) return std::nullopt;
  Received r;
  r.size = static_cast<std::size_t>(n);
  r.truncated = (msg.msg_flags & MSG_TRUNC) != 0;
  r.from = toEndpoint(from, msg.msg_namelen);
  if (packetInfo_) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        in_pktinfo pi{};
        std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
        r.ifindex = static_cast<unsigned>(pi.ipi_ifindex);
        r.local = asio::ip::address_v4(ntohl(pi.ipi_addr.s_addr));
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
        in6_pktinfo pi{};
        std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
        r.ifindex = pi.ipi6_ifindex;
        asio::ip::address_v6::bytes_type b;
        std::memcpy(b.data(), &pi.ipi6_addr, 16);
        r.local = asio::ip::address_v6(b, pi.ipi6_ifindex);
      }
    }
  }
  return r;
}

bool UdpSocket::send(std::span<const iovec> parts, const asio::ip::udp::endpoint& to,
                     const asio::ip::address* source) {
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr*>(to.data());  // sendmsg does not write it
  msg.msg_namelen = static_cast<socklen_t>(to.size());
  msg.msg_iov = const_cast<iovec*>(parts.data());
  msg.msg_iovlen = parts.size();
  alignas(cmsghdr) std::uint8_t control[CMSG_SPACE(sizeof(in6_pktinfo))]{};
  if (source != nullptr && !source->is_unspecified()) {
    msg.msg_control = control;
    cmsghdr* c = reinterpret_cast<cmsghdr*>(control);
    if (source->is_v4()) {
      msg.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
      in_pktinfo pi{};
      pi.ipi_spec_dst.s_addr = htonl(source->to_v4().to_uint());
      std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
    } else {
      msg.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
      in6_pktinfo pi{};
      auto b = source->to_v6().to_bytes();
      std::memcpy(&pi.ipi6_addr, b.data(), 16);
      std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
    }
  }
  return ::sendmsg(socket_.native_handle(), &msg, MSG_DONTWAIT) >= 0;
}

unsigned UdpSocket::sendBatch(std::span<mmsghdr> messages) {
  int n = ::sendmmsg(socket_.native_handle(), messages.data(), static_cast<unsigned>(messages.size()),
                     MSG_DONTWAIT);
  return n < 0 ? 0U : static_cast<unsigned>(n);
}

int UdpSocket::growSendBuffer(int bytes) {
  int fd = socket_.native_handle();
  int current = 0;
  socklen_t len = sizeof current;
  ::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &current, &len);
  if (bytes <= current / 2) return current;  // the kernel reports twice what was asked
  setBufferSize(fd, SO_SNDBUFFORCE, SO_SNDBUF, bytes);
  len = sizeof current;
  ::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &current, &len);
  return current;
}

asio::awaitable<std::error_code> UdpSocket::waitReadable() {
  std::error_code ec;
  co_await socket_.async_wait(asio::socket_base::wait_read, asio::redirect_error(asio::use_awaitable, ec));
  co_return ec;
}

asio::awaitable<std::error_code> UdpSocket::receive(std::span<std::uint8_t> buffer, std::size_t& size,
                                                    asio::ip::udp::endpoint& from) {
  std::error_code ec;
  size = co_await socket_.async_receive_from(asio::buffer(buffer.data(), buffer.size()), from,
                                             asio::redirect_error(asio::use_awaitable, ec));
  co_return ec;
}

void UdpSocket::cancel() {
  std::error_code ec;
  socket_.cancel(ec);
}

void UdpSocket::close() {
  std::error_code ec;
  socket_.close(ec);
}

Result<void> TcpListener::listen(const asio::ip::tcp::endpoint& endpoint, int backlog) {
  std::error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && endpoint.address().is_v6()) acceptor_.set_option(asio::ip::v6_only(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(backlog, ec);
  if (ec) {
    acceptor_.close();
    return Error{"listen " + endpoint.address().to_string() + ":" + std::to_string(endpoint.port()) + ": " +
                     ec.message(),
                 ec.value()};
  }
  return {};
}

void TcpListener::start() { asio::co_spawn(acceptor_.get_executor(), acceptLoop(), asio::detached); }

void TcpListener::close() {
  std::error_code ec;
  acceptor_.close(ec);
}

asio::ip::tcp::endpoint TcpListener::localEndpoint() const {
  std::error_code ec;
  return acceptor_.local_endpoint(ec);
}

asio::awaitable<void> TcpListener::acceptLoop() {
  while (acceptor_.is_open()) {
    std::error_code ec;
    auto socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
    if (ec) {
      // EMFILE and friends: the listener must not die, nor spin on a queue it cannot take from.
      // Wait a little (connections in flight close and free descriptors) and accept again; the
      // kernel keeps the waiting clients in the backlog meanwhile.
      PXD_WARN("tcp.accept_failed", "error={} note=\"accepting again in 100 ms\"", log::q(ec.message()));
      asio::steady_timer pause(acceptor_.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    handler_(std::move(socket));
  }
}

}  // namespace pxedust::event
