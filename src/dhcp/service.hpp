// The DHCP service: sockets on the configured interfaces, the lease database, and the policy.
//
// One UDP socket per configured interface, bound to 0.0.0.0:67 with SO_BINDTODEVICE (and one on
// port 4011 in proxy mode), so a request is only ever seen and answered on an interface the config
// names; the receiving interface index is checked again on every datagram. Each wake-up takes a
// bounded batch of requests (the socket buffer is the bounded queue behind it), answers REQUESTs
// before DISCOVERs so clients that are nearly done finish first under load, makes the batch's lease
// changes durable with one journal write + fdatasync, and only then sends the replies, all of the
// batch's in one sendmmsg.
//
// apply() is used at start and on SIGHUP: it looks up every interface and opens every new socket
// first, and changes nothing if one fails.
#pragma once

#include <asio/awaitable.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "config/config.hpp"
#include "dhcp/interfaces.hpp"
#include "dhcp/leases.hpp"
#include "dhcp/policy.hpp"
#include "dhcp/router_adverts.hpp"
#include "event/loop.hpp"
#include "event/udp.hpp"
#include "inventory/inventory.hpp"

namespace pxedust::dhcp {

struct DhcpStats : PolicyStats {
  std::uint64_t batches = 0;
  std::uint64_t syncs = 0;
  std::uint64_t sendErrors = 0;
};

class DhcpService {
 public:
  using Clock = std::function<UnixTime()>;
  explicit DhcpService(event::Loop& loop, Clock clock = {});
  ~DhcpService();
  DhcpService(const DhcpService&) = delete;
  DhcpService& operator=(const DhcpService&) = delete;

  Result<void> apply(const config::Config& config, std::shared_ptr<const inventory::Inventory> hosts);
  void stop();

  [[nodiscard]] const DhcpStats& stats() const { return stats_; }
  [[nodiscard]] const LeaseDb* leases() const { return leases_ ? &*leases_ : nullptr; }
  [[nodiscard]] const RouterAdvertStats& routerAdvertStats() const { return adverts_.stats(); }

 private:
  struct Listener {
    explicit Listener(asio::io_context& io) : socket(io) {}
    InterfaceInfo interface;
    std::uint16_t port = 67;
    event::UdpSocket socket;
    bool closed = false;
  };
  struct Pending;

  Result<std::shared_ptr<Listener>> openListener(const InterfaceInfo& interface, std::uint16_t port);
  asio::awaitable<void> serve(std::shared_ptr<Listener> listener);
  void answer(Listener& listener, std::vector<Pending>& batch);
  // Encodes p's reply and works out its destination (setting the neighbour entry if needed).
  bool prepare(Listener& listener, Pending& p);
  // Sends one prepared reply on its own (what sendmmsg left), counting and logging a failure.
  void send(Listener& listener, const Pending& p);

  event::Loop& loop_;
  Clock clock_;
  std::shared_ptr<const config::DhcpConfig> config_;
  std::optional<LeaseDb> leases_;
  std::unique_ptr<Policy> policy_;
  std::vector<std::shared_ptr<Listener>> listeners_;
  RouterAdverts adverts_;
  DhcpStats stats_;
};

}  // namespace pxedust::dhcp
