// One interface for every protocol service the daemon runs (DHCP, TFTP, iSCSI; HTTP, NBD, NFS and
// the API next), so a reload is all or nothing.
//
// A reload happens in two phases, as Kea stages a configuration before it commits it:
//   prepare(config, hosts)  does everything that can fail — binds new sockets, opens roots, lease
//                           files, the store — and keeps what it made in a Staged object. It changes
//                           nothing that runs: requests in between are still answered from the old
//                           configuration, and dropping the Staged object undoes it (its sockets and
//                           files close).
//   commit(staged)          swaps the staged state in. It cannot fail.
// The daemon prepares every service first and commits them only if all prepared, so a reload that
// any one service refuses changes no service (daemon/daemon.hpp). Both run on the loop thread, one
// right after the other, so nothing the services serve interleaves with a reload.
//
// A service is prepared only while its section is in the config. When a reload removes the section,
// the daemon calls stopAccepting() and keeps the service until busy() turns false.
//
// Shutdown has two steps: stopAccepting() closes listeners and lets work in flight finish (each
// piece holds a ShutdownGate ticket); abort() cuts what is left off when the grace period ends.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "boot/event.hpp"
#include "common/result.hpp"
#include "config/config.hpp"
#include "inventory/inventory.hpp"
#include "metrics/registry.hpp"

namespace pxedust::service {

// A session on a host's disk, as a block front-end (iSCSI, NBD) lists it.
struct DiskSession {
  std::string protocol;   // "iscsi", "nbd"
  std::string host;       // whose disk
  std::string client;     // the peer's address
  std::string initiator;  // iSCSI initiator name; empty for NBD
  std::string target;     // iSCSI target name, NBD export name
};

// What a service prepared; only the service that made it knows what is inside.
class Staged {
 public:
  virtual ~Staged() = default;
};

class Service {
 public:
  virtual ~Service() = default;

  [[nodiscard]] virtual std::string_view name() const = 0;
  virtual Result<std::unique_ptr<Staged>> prepare(const config::Config& config,
                                                  std::shared_ptr<const inventory::Inventory> hosts) = 0;
  // `staged` came from this service's last prepare(), with nothing else committed in between.
  virtual void commit(std::unique_ptr<Staged> staged) noexcept = 0;
  virtual void stopAccepting() = 0;
  virtual void abort() = 0;
  // Work still in flight (transfers, connections).
  [[nodiscard]] virtual bool busy() const = 0;
  // Where it listens, as people write it ("127.0.0.1:69", "eth1:67"), with the real port when the
  // config asked for port 0.
  [[nodiscard]] virtual std::vector<std::string> endpoints() const = 0;
  // Writes its metrics (metrics/registry.hpp); the daemon renders them together.
  virtual void collect(metrics::Writer& out) const = 0;

  // Block front-ends: the sessions open now on hosts' disks. Others have none.
  [[nodiscard]] virtual std::vector<DiskSession> diskSessions() const { return {}; }
  // Block front-ends: let go of `host`'s disk so its overlay can be reset or deleted: end the
  // host's sessions (their connections close) and drop the device kept open between sessions.
  // The device is closed once the work in flight on it ends.
  virtual void releaseDisk(std::string_view /*host*/) {}

  // Where the service reports what it sees of each client's boot (boot/event.hpp): the daemon's
  // tracker. Until it is set (unit tests), events go nowhere.
  using EventSink = std::function<void(const boot::Event&)>;
  void setEventSink(EventSink sink) { events_ = std::move(sink); }

  // prepare() then commit(): the whole apply of one service on its own (start-up of one service, tests).
  Result<void> apply(const config::Config& config, std::shared_ptr<const inventory::Inventory> hosts) {
    auto staged = prepare(config, std::move(hosts));
    if (!staged) return staged.error();
    commit(std::move(*staged));
    return {};
  }

 protected:
  // Reports one boot event; the tracker stamps its time.
  void report(const boot::Event& event) const {
    if (events_) events_(event);
  }
  template <typename What>
  void report(What&& what) const {
    if (events_) events_(boot::Event{{}, std::forward<What>(what)});
  }

 private:
  EventSink events_;
};

}  // namespace pxedust::service
