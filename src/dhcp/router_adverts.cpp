#include "dhcp/router_adverts.hpp"

#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <span>

#include "common/log.hpp"
#include "dhcp/wire/icmpv6.hpp"

namespace pxedust::dhcp {

std::shared_ptr<RouterAdverts::Port> RouterAdverts::open(const Interface& interface) {
  auto port = std::make_shared<Port>(io_);
  port->interface = interface;
  std::error_code ec;
  port->socket.open(asio::ip::icmp::v6(), ec);
  auto skip = [&](std::string_view what, int err) -> std::shared_ptr<Port> {
    PXD_WARN("dhcp.ra_unavailable", "interface={} reason={} error={}", interface.name, what,
             log::q(std::strerror(err)));
    return nullptr;
  };
  if (ec) return skip("socket", ec.value());
  int fd = port->socket.native_handle();
  if (::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, interface.name.data(), static_cast<socklen_t>(interface.name.size())) != 0)
    return skip("bind_to_device", errno);
  icmp6_filter filter;
  ICMP6_FILTER_SETBLOCKALL(&filter);
  ICMP6_FILTER_SETPASS(ND_ROUTER_SOLICIT, &filter);
  if (::setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter) != 0) return skip("filter", errno);
  int hops = 255;
  ::setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops);
  ::setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof hops);
  ipv6_mreq group{};
  ::inet_pton(AF_INET6, "ff02::2", &group.ipv6mr_multiaddr);
  group.ipv6mr_interface = interface.index;
  if (::setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &group, sizeof group) != 0) return skip("join_all_routers", errno);
  port->socket.non_blocking(true, ec);
  return port;
}

void RouterAdverts::apply(const std::vector<Interface>& interfaces) {
  std::vector<std::shared_ptr<Port>> next;
  for (const auto& i : interfaces) {
    auto same = std::find_if(ports_.begin(), ports_.end(), [&](const auto& p) {
      return p->interface.name == i.name && p->interface.index == i.index;
    });
    if (same != ports_.end()) {
      next.push_back(*same);
      continue;
    }
    if (auto p = open(i)) {
      next.push_back(p);
      asio::co_spawn(io_, serve(p), asio::detached);
      PXD_INFO("dhcp.ra_listening", "interface={}", i.name);
    }
  }
  for (auto& p : ports_) {
    if (std::find(next.begin(), next.end(), p) != next.end()) continue;
    p->closed = true;
    std::error_code ec;
    p->socket.close(ec);
  }
  ports_ = std::move(next);
}

void RouterAdverts::stop() {
  for (auto& p : ports_) {
    p->closed = true;
    std::error_code ec;
    p->socket.close(ec);
  }
  ports_.clear();
}

asio::awaitable<void> RouterAdverts::serve(std::shared_ptr<Port> port) {
  std::array<std::uint8_t, 1500> buf{};
  while (!port->closed) {
    std::error_code ec;
    asio::ip::icmp::endpoint from;
    std::size_t n = co_await port->socket.async_receive_from(asio::buffer(buf), from,
                                                             asio::redirect_error(asio::use_awaitable, ec));
    if (port->closed) break;
    if (ec) {
      if (ec == asio::error::operation_aborted) break;
      ++stats_.errors;
      continue;
    }
    // RFC 4861 section 6.1.1 (wire/icmpv6.hpp). Answering an off-link forgery, whose hop limit is
    // not visible here, only tells it there is no router.
    if (!wire::isRouterSolicitation(std::span<const std::uint8_t>(buf.data(), n))) continue;
    ++stats_.solicitations;
    auto now = std::chrono::steady_clock::now();
    if (now - port->windowStart >= std::chrono::seconds(1)) {
      port->windowStart = now;
      port->inWindow = 0;
    }
    if (++port->inWindow > 10) {
      ++stats_.limited;
      continue;
    }
    // Router Advertisement (section 4.2): hop limit 0 (unspecified), no M/O flags, router lifetime 0,
    // reachable time and retransmission timer 0 (unspecified). The kernel fills in the checksum.
    std::array<std::uint8_t, 16> ra{};
    ra[0] = ND_ROUTER_ADVERT;
    // Answer the solicitor where it can hear us: its own address, or all nodes if it has none yet.
    asio::ip::address_v6 dest = from.address().is_v6() ? from.address().to_v6() : asio::ip::address_v6();
    if (dest.is_unspecified()) dest = asio::ip::make_address_v6("ff02::1");
    dest.scope_id(port->interface.index);
    port->socket.send_to(asio::buffer(ra), asio::ip::icmp::endpoint(dest, 0), 0, ec);
    if (ec) {
      ++stats_.errors;
      PXD_DEBUG("dhcp.ra_send_failed", "interface={} to={} error={}", port->interface.name, dest.to_string(),
                log::q(ec.message()));
      continue;
    }
    ++stats_.advertisements;
    PXD_DEBUG("dhcp.ra_sent", "interface={} to={}", port->interface.name, dest.to_string());
  }
}

}  // namespace pxedust::dhcp
