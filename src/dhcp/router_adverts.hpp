// Answers IPv6 router solicitations on the DHCP interfaces, so network-boot firmware stops waiting.
//
// iPXE (and other firmware with IPv6) solicits a router when its link comes up and waits several
// seconds for an answer before it goes on with DHCPv4 alone; on a boot network without an IPv6
// router that wait is pure delay on every boot. pxedust answers each Router Solicitation (RFC 4861
// section 6.2.6) with a Router Advertisement that offers nothing: router lifetime 0 (not a default
// router, section 4.2), no prefixes, neither Managed nor Other configuration. A host takes from it
// only that there is no IPv6 service here.
//
// One raw ICMPv6 socket per interface, bound to it (SO_BINDTODEVICE), with a filter passing only
// Router Solicitations, joined to ff02::2 (all routers). Hop limit 255, as section 6.1.2 requires of
// every ND packet. At most 10 answers a second per interface. Nothing here can fail DHCP: an
// interface without IPv6 or a missing CAP_NET_RAW is logged and skipped.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/icmp.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "metrics/counters.hpp"

namespace pxedust::dhcp {

// The counters, each declared once: X(member, metric name, help) (metrics/counters.hpp; exported by
// dhcp/metrics.cpp).
#define PXEDUST_ROUTER_ADVERT_COUNTERS(X)                                                                              \
  X(solicitations, "pxedust_dhcp_router_solicitations_total",                                                          \
    "IPv6 Router Solicitations received on the DHCP interfaces.")                                                      \
  X(advertisements, "pxedust_dhcp_router_advertisements_total",                                                        \
    "Router Advertisements sent in answer, each saying there is no IPv6 router here.")                                 \
  X(limited, "pxedust_dhcp_router_solicitations_limited_total",                                                        \
    "Router Solicitations left unanswered: over 10 a second on their interface.")                                      \
  X(errors, "pxedust_dhcp_router_advert_errors_total",                                                                 \
    "ICMPv6 socket errors receiving solicitations or sending advertisements.")

struct RouterAdvertStats {
  PXEDUST_ROUTER_ADVERT_COUNTERS(PXEDUST_COUNTER_MEMBER)
};

class RouterAdverts {
 public:
  struct Interface {
    std::string name;
    unsigned index = 0;
  };
  explicit RouterAdverts(asio::io_context& io) : io_(io) {}
  ~RouterAdverts() { stop(); }
  RouterAdverts(const RouterAdverts&) = delete;
  RouterAdverts& operator=(const RouterAdverts&) = delete;

  // Answers on exactly these interfaces from now on.
  void apply(const std::vector<Interface>& interfaces);
  void stop();
  [[nodiscard]] const RouterAdvertStats& stats() const { return stats_; }

 private:
  struct Port {
    explicit Port(asio::io_context& io) : socket(io) {}
    Interface interface;
    asio::ip::icmp::socket socket;
    bool closed = false;
    std::chrono::steady_clock::time_point windowStart{};
    unsigned inWindow = 0;
  };
  std::shared_ptr<Port> open(const Interface& interface);
  asio::awaitable<void> serve(std::shared_ptr<Port> port);

  asio::io_context& io_;
  std::vector<std::shared_ptr<Port>> ports_;
  RouterAdvertStats stats_;
};

}  // namespace pxedust::dhcp
