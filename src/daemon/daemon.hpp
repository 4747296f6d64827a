// The daemon: configuration -> one event loop, the shared runtime, and the protocol services.
//
// Every service implements service::Service. A configuration (at start and on SIGHUP) is applied in
// two phases: every service whose section is present is prepared, and only if all of them prepared
// is each one committed; services whose section was removed stop accepting then, and finish what is
// in flight. So a reload that any one service refuses (a TFTP root that does not exist, an address
// that cannot be bound, a lease file that cannot be opened) changes nothing at all, and the running
// configuration keeps serving.
//
// The runtime is what services share and the daemon owns: the block store with each host's disk
// (HostDisks) and the disk worker pool, handed to iSCSI (and to NBD next).
//
// Signals (handled on the loop, never in signal context):
//   SIGTERM, SIGINT  stop accepting new work; transfers in flight finish (up to
//                    daemon.shutdown_grace), then the loop stops. A second signal cuts them off.
//   SIGHUP           reload the config file, all or nothing (above).
//   SIGUSR1          write every metric to metrics.prom in the state directory.
//
// Programs learn the daemon's state from the files in [daemon] state_dir (daemon/state_files.hpp),
// never from its log; a service manager learns it from $NOTIFY_SOCKET (daemon/notify.hpp). With
// [daemon] user, the daemon binds its first configuration as root, then runs as that user
// (daemon/privileges.hpp).
#pragma once

#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>
#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blockstore/async_device.hpp"
#include "blockstore/host_disks.hpp"
#include "boot/snapshot.hpp"
#include "http/event_stream.hpp"
#include "http/service.hpp"
#include "boot/tracker.hpp"
#include "config/config.hpp"
#include "daemon/loop_lag.hpp"
#include "daemon/next_boot.hpp"
#include "daemon/notify.hpp"
#include "daemon/state_files.hpp"
#include "event/loop.hpp"
#include "service/service.hpp"

namespace pxedust::dhcp {
class DhcpService;
}
namespace pxedust::iscsi {
class IscsiService;
}
namespace pxedust::http {
class HttpService;
}
namespace pxedust::tftp {
class TftpService;
}

namespace pxedust::daemon {

// What the services share, owned by the daemon.
struct Runtime {
  event::Loop& loop;
  std::shared_ptr<blockstore::WorkerPool> diskPool;  // file I/O of every block front-end
  std::shared_ptr<blockstore::HostDisks> disks;      // each host's disk; opened with the first service that needs it
  std::string storageDir;                            // the store `disks` opened (a new dir needs a restart)
};

// One kind of service the daemon can run.
struct ServiceSpec {
  std::string name;
  std::function<bool(const config::Config&)> wanted;  // its section is in the config
  bool needsDisks = false;                            // it serves hosts' disks (Runtime::disks)
  std::function<std::unique_ptr<service::Service>(const Runtime&)> make;
};

// DHCP, TFTP and iSCSI, in the order they are prepared and committed.
std::vector<ServiceSpec> standardServices();

// Their configuration: what a config file may hold besides [log], [daemon], [storage] and the hosts.
config::Schema standardSchema();

// Loads a config file with standardSchema() and links what one service tells another: DHCP learns
// where HTTP serves boot files (dhcp::Config::httpBoot). Throws config::ConfigError.
config::Config loadConfig(const std::string& path, const config::LoadOptions& options = {});
// The links alone, for a config loaded otherwise (tests).
void linkServices(config::Config& config);

class Daemon {
 public:
  // `config` has been loaded already (serve loads it so it can report errors before starting).
  Daemon(std::string configPath, config::Config config, std::vector<ServiceSpec> specs = standardServices());
  ~Daemon();

  // Starts the services and runs the loop until shutdown; returns the process exit code.
  int run();

  // Called on the loop. Public for tests and for the demo.
  void reload();
  // Applies `config` to every service, all or nothing: an error means nothing changed.
  Result<void> apply(const config::Config& config);
  void shutdown();
  event::Loop& loop() { return loop_; }
  [[nodiscard]] const config::Config& config() const { return config_; }
  // The running service of that name, or null.
  [[nodiscard]] service::Service* find(std::string_view name) const;
  [[nodiscard]] const tftp::TftpService* tftp() const;
  [[nodiscard]] const dhcp::DhcpService* dhcp() const;
  [[nodiscard]] const iscsi::IscsiService* iscsi() const;
  [[nodiscard]] const boot::Tracker& tracker() const { return tracker_; }
  // Every service's metrics and the daemon's own, in Prometheus text format.
  [[nodiscard]] std::string renderMetrics() const;

 private:
  struct Slot {
    ServiceSpec spec;
    std::unique_ptr<service::Service> running;
  };

  std::string configPath_;
  config::Config config_;
  event::Loop loop_;
  LoopLag loopLag_{loop_.io()};
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  Runtime runtime_;
  std::vector<Slot> slots_;
  std::vector<std::unique_ptr<service::Service>> retired_;  // removed from the config, finishing their work
  void writeDaemonState(std::string_view state);
  [[nodiscard]] nlohmann::json daemonState() const;  // daemon.json's content
  [[nodiscard]] nlohmann::json health() const;       // the API status' "health": loop lag, memory, work in flight
  void writeHostsState();  // now, on the calling thread
  // Renders and writes hosts.json (any thread); returns the text written.
  std::shared_ptr<const std::string> writeHostsFile(const boot::TrackerCopy& copy);
  // api.cpp: the API, /metrics and the dashboard on the HTTP service.
  void addRoutes(http::HttpService& web);
  struct StorageListing;
  // The store the API lists and resets overlays in: the block services', or one opened on
  // [storage] dir for the API alone; null if it cannot be opened.
  std::shared_ptr<blockstore::Store> apiStore();
  // Lists the store's images and overlays on the state writer into storage_, then calls `then` on the loop.
  void listStorage(std::function<void()> then);
  [[nodiscard]] std::vector<service::DiskSession> diskSessions() const;
  void collectStorage(metrics::Writer& out) const;
  // POST /api/v1/overlays/<host>/reset: refused (409) while the host has sessions on its disk, unless
  // `force`: then they are ended first. No session can open the disk until the reset is done.
  void resetOverlay(std::string host, blockstore::ResetOptions options, bool force, http::Respond respond);
  // One-shot boots (next_boot.hpp, daemon_next_boot.cpp). changeNextBoot arms (`group`) or cancels
  // (nullopt) a host's entry, all or nothing, and answers once the entry is on disk.
  using NextBootDone = std::function<void(int status, nlohmann::json body)>;
  void changeNextBoot(std::string host, std::optional<std::string> group, NextBootDone done);
  [[nodiscard]] nlohmann::json nextBootJson(const std::string& host, const NextBootEntry& entry) const;
  [[nodiscard]] std::filesystem::path nextBootPath() const;
  // `base`'s text loaded again with the entries' groups.
  [[nodiscard]] config::Config resolve(const config::Config& base, const NextBoot& entries) const;
  void loadNextBoot();                                    // at start, before the first apply()
  void dropUnappliedNextBoot(const config::Config& config);  // after a reload: hosts or groups gone
  void observeNextBoot();                                 // on each tracker change
  void persistNextBoot(std::function<void(Result<void>)> done);
  NextBoot nextBoot_;
  bool nextBootStale_ = false;        // an entry ended; the running config still has its group
  bool nextBootApplyPosted_ = false;  // the apply for that is posted to the loop
  std::shared_ptr<blockstore::Store> apiStore_;
  std::string apiStoreDir_;
  std::shared_ptr<const StorageListing> storage_;  // the last listing (metrics between scrapes)
  // hosts.json, at most every 100 ms while boots go on (less often when it is big): the tracker is
  // copied on the loop, the JSON made and written on stateWriter_.
  void hostsChanged();

  std::unique_ptr<asio::steady_timer> graceTimer_;
  bool shuttingDown_ = false;
  StateFiles stateFiles_;
  SystemdNotifier notify_ = SystemdNotifier::fromEnvironment();  // $NOTIFY_SOCKET: READY=1, RELOADING=1, STOPPING=1
  boot::Tracker tracker_;
  std::unique_ptr<asio::steady_timer> hostsTimer_;
  std::chrono::milliseconds hostsWriteInterval_{100};
  bool hostsWriting_ = false;  // a copy is being made into hosts.json on stateWriter_
  std::shared_ptr<const std::string> hostsJson_;  // the text last written to hosts.json
  // /api/v1/stream: hostsJson_ pushed to the dashboard (and any SSE client) each time it is rewritten.
  std::shared_ptr<http::EventStream> hostsStream_ = std::make_shared<http::EventStream>();
  void setHostsJson(std::shared_ptr<const std::string> text);
  boot::SnapshotWriter hostsWriter_;               // on stateWriter_ (and at start, before it runs)
  std::string state_ = "starting";                // daemon.json's "state"
  std::uint64_t reloadsApplied_ = 0;
  std::uint64_t reloadsRefused_ = 0;
  std::string lastRefusal_;
  // Last, so it is joined first when the daemon goes: its work uses stateFiles_ and posts to loop_.
  asio::thread_pool stateWriter_{1};
};

}  // namespace pxedust::daemon
