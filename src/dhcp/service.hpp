// The DHCP service: sockets on the configured interfaces, the lease database, and the policy.
//
// One UDP socket per configured interface, bound to 0.0.0.0:67 with SO_BINDTODEVICE (and one on
// port 4011 in proxy mode), so a request is only ever seen and answered on an interface the config
// names; the receiving interface index is checked again on every datagram. Each wake-up takes a
// bounded batch of requests (the socket buffer is the bounded queue behind it), answers REQUESTs
// before DISCOVERs so clients that are nearly done finish first under load, and sends the batch's
// replies in one sendmmsg. A reply that needs its lease on disk (an ACK) waits, parked, for the journal
// write + fdatasync that covers it; those run on a thread of their own, one at a time, each taking every
// change made so far (group commit), so a slow disk delays only those ACKs, never the event loop that
// TFTP and iSCSI share.
//
// prepare() looks up every interface, opens every new socket and the lease file (or checks the new
// pools against the running database); commit() swaps them in (the reload contract of
// service/service.hpp). The sockets and the interface lookups go through PacketIo (packet_io.hpp):
// real UDP sockets by default, a fake in tests that drive the service in process.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/thread_pool.hpp>

#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "config/config.hpp"
#include "dhcp/config.hpp"
#include "dhcp/interfaces.hpp"
#include "dhcp/leases.hpp"
#include "dhcp/packet_io.hpp"
#include "dhcp/policy.hpp"
#include "dhcp/router_adverts.hpp"
#include "event/loop.hpp"
#include "inventory/inventory.hpp"
#include "service/service.hpp"

namespace pxedust::dhcp {

struct DhcpStats : PolicyStats {
  std::uint64_t batches = 0;
  std::uint64_t syncs = 0;
  std::uint64_t sendErrors = 0;
};

class DhcpService final : public service::Service {
 public:
  using Clock = std::function<UnixTime()>;
  // `io` defaults to the real sockets (makeUdpPacketIo).
  explicit DhcpService(event::Loop& loop, Clock clock = {}, std::unique_ptr<PacketIo> io = {});
  ~DhcpService();
  DhcpService(const DhcpService&) = delete;
  DhcpService& operator=(const DhcpService&) = delete;

  [[nodiscard]] std::string_view name() const override { return "dhcp"; }
  Result<std::unique_ptr<service::Staged>> prepare(const config::Config& config,
                                                   std::shared_ptr<const inventory::Inventory> hosts) override;
  void commit(std::unique_ptr<service::Staged> staged) noexcept override;
  void stopAccepting() override { stop(); }
  void abort() override {}  // stop() already settled every reply; nothing is left in flight
  [[nodiscard]] bool busy() const override { return false; }
  [[nodiscard]] std::vector<std::string> endpoints() const override;
  void collect(metrics::Writer& out) const override;
  // Closes the sockets and settles every reply waiting for the journal.
  void stop();

  [[nodiscard]] const DhcpStats& stats() const { return stats_; }
  [[nodiscard]] const LeaseDb* leases() const { return leases_ ? &*leases_ : nullptr; }
  [[nodiscard]] const RouterAdvertStats& routerAdvertStats() const { return adverts_.stats(); }

 private:
  struct Listener {
    InterfaceInfo interface;
    std::uint16_t port = 67;
    std::unique_ptr<PacketEndpoint> socket;
    bool closed = false;
  };
  struct Pending;
  struct Parked;  // a reply waiting for the journal
  struct Staged;

  Result<std::shared_ptr<Listener>> openListener(const InterfaceInfo& interface, std::uint16_t port);
  asio::awaitable<void> serve(std::shared_ptr<Listener> listener);
  void answer(const std::shared_ptr<Listener>& listener, std::vector<Pending>& batch);
  // Logs each decision and sends the replies, in one sendmmsg.
  void sendReplies(Listener& listener, const std::vector<Pending*>& replies);
  // Starts a journal job on the sync thread unless one is out or nothing is pending.
  void kickSync();
  void synced(const std::shared_ptr<LeaseDb::SyncJob>& job);
  // Takes a finished job's outcome: sends the parked replies it made durable (or drops them).
  void finishJob(LeaseDb::SyncJob& job);
  // Waits for the job in flight, syncs what is left and settles every parked reply (reload, stop).
  void flushLeases();
  // Encodes p's reply and works out its destination (setting the neighbour entry if needed).
  bool packReply(Listener& listener, Pending& p);
  void reportExchange(const Request& request, const Decision& decision) const;
  // Sends one prepared reply on its own (what sendmmsg left), counting and logging a failure.
  void send(Listener& listener, const Pending& p);

  event::Loop& loop_;
  Clock clock_;
  std::unique_ptr<PacketIo> io_;
  std::shared_ptr<const Config> config_;
  std::optional<LeaseDb> leases_;
  std::unique_ptr<Policy> policy_;
  std::vector<std::shared_ptr<Listener>> listeners_;
  RouterAdverts adverts_;
  DhcpStats stats_;
  std::vector<Parked> parked_;  // in change order, so in ticket order
  std::shared_ptr<LeaseDb::SyncJob> syncJob_;  // the job on the sync thread
  std::shared_future<void> syncDone_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // completions check it after destruction
  asio::thread_pool syncThread_{1};  // last: joined first on destruction
};

}  // namespace pxedust::dhcp
