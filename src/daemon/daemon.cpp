#include "daemon/daemon.hpp"

#include <malloc.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include <asio/post.hpp>
#include <nlohmann/json.hpp>

#include "blockstore/store.hpp"
#include "boot/snapshot.hpp"
#include "common/log.hpp"
#include "daemon/privileges.hpp"
#include "dhcp/config.hpp"
#include "dhcp/service.hpp"
#include "http/config.hpp"
#include "http/service.hpp"
#include "inventory/inventory.hpp"
#include "iscsi/config.hpp"
#include "iscsi/service.hpp"
#include "nbd/config.hpp"
#include "nbd/service.hpp"
#include "nfs/config.hpp"
#include "nfs/service.hpp"
#include "tftp/config.hpp"
#include "tftp/service.hpp"

#ifndef PXEDUST_VERSION
#define PXEDUST_VERSION "0.0.0"
#endif

namespace pxedust::daemon {
namespace {

// Disk I/O threads shared by the block front-ends: reads that miss the page cache, flushes, and
// writes the loop must not wait for (blockstore/async_device.hpp).
constexpr unsigned kDiskThreads = 4;

// hosts.json is rewritten at most every 100 ms (a boot storm changes it thousands of times a
// second), and never more often than keeps the tracker's copy under 2% of the loop and the text
// under 10% of the writer thread. The copy shares each host's state (a pointer each); the text
// reuses every unchanged host's from the last render (boot::SnapshotWriter). Measured with 10,000
// configured hosts, 15 events each: the copy 0.1-0.7 ms; the text ~250 ms in full (17 MB), 3-7 ms
// when no host changed. Rendered as a JSON tree on each write, it cut bench/dhcp's 10,000-reservation
// clean rate from 8000/s to 4000-6000/s.
constexpr std::chrono::milliseconds kHostsWriteInterval{100};
constexpr int kHostsCopyCostFactor = 50;
constexpr int kHostsRenderCostFactor = 10;
// ... and at most ~4 MB/s of it: 10,000 hosts with full histories are ~17 MB, rewritten every few
// seconds while all of them are busy. Each write copies the text twice (the file, the API's copy):
// at 16 MB/s the writer thread took a fifth of the server's CPU samples in bench/dhcp's static row,
// whose peak was ~20% higher in a separate run with the writer off.
constexpr std::size_t kHostsBytesPerSecond = 4 << 20;

// The state directory (leases, images, overlays) is made on first start, like a package's
// /var/lib/<name> would be; 0750: overlays hold other machines' disks.
Result<void> ensureStorageDir(const std::string& dir) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return {};
  std::filesystem::create_directories(dir, ec);
  if (ec) return Error{"storage dir " + dir + ": " + ec.message(), ec.value()};
  ::chmod(dir.c_str(), 0750);
  PXD_INFO("daemon.storage_created", "dir={}", log::q(dir));
  return {};
}

constexpr std::string_view kStageLabel[] = {"stage"};
constexpr metrics::Family kHostsByStage{"pxedust_boot_hosts",
                                        "Hosts by the boot stage pxedust last saw them reach (DHCP, boot program, "
                                        "boot files, root disk, up, failed).",
                                        metrics::Type::Gauge, kStageLabel};
constexpr std::string_view kResultLabel[] = {"result"};
constexpr metrics::Family kReloads{"pxedust_config_reloads_total",
                                   "Configuration reloads (SIGHUP), applied or refused as a whole.",
                                   metrics::Type::Counter, kResultLabel};

}  // namespace

std::vector<ServiceSpec> standardServices() {
  std::vector<ServiceSpec> specs;
  specs.push_back({"dhcp", [](const config::Config& c) { return c.has("dhcp"); }, false,
                   [](const Runtime& rt) { return std::make_unique<dhcp::DhcpService>(rt.loop); }});
  specs.push_back({"iscsi", [](const config::Config& c) { return c.has("iscsi"); }, true,
                   [](const Runtime& rt) { return std::make_unique<iscsi::IscsiService>(rt.loop, rt.disks, rt.diskPool); }});
  specs.push_back({"nbd", [](const config::Config& c) { return c.has("nbd"); }, true,
                   [](const Runtime& rt) { return std::make_unique<nbd::NbdService>(rt.loop, rt.disks, rt.diskPool); }});
  specs.push_back({"nfs", [](const config::Config& c) { return c.has("nfs"); }, true, [](const Runtime& rt) {
                     return std::make_unique<nfs::NfsService>(rt.loop, rt.disks->store(), rt.diskPool);
                   }});
  specs.push_back({"tftp", [](const config::Config& c) { return c.has("tftp"); }, false,
                   [](const Runtime& rt) { return std::make_unique<tftp::TftpService>(rt.loop); }});
  specs.push_back({"http", [](const config::Config& c) { return c.has("http"); }, false,
                   [](const Runtime& rt) { return std::make_unique<http::HttpService>(rt.loop); }});
  return specs;
}

// Each service names a host's root disk only for its own root_protocol (iSCSI also when it is unset),
// so the order here decides nothing.
config::Schema standardSchema() {
  return {dhcp::schema(), nbd::schema(), iscsi::schema(), nfs::schema(), tftp::schema(), http::schema()};
}

void linkServices(config::Config& config) {
  auto dhcpSection = config.sections.find("dhcp");
  auto* dhcpConfig = dhcpSection == config.sections.end() ? nullptr : std::any_cast<dhcp::Config>(&dhcpSection->second);
  const auto* httpConfig = http::configIn(config);
  if (dhcpConfig == nullptr) return;
  dhcpConfig->httpBoot.reset();
  if (httpConfig == nullptr || httpConfig->listen.empty()) return;
  // The first IPv4 (or any-address) listener a client can reach: DHCP hands out IPv4 URLs.
  for (const auto& l : httpConfig->listen) {
    if (l.address.is_loopback()) continue;
    if (l.address.is_v4()) {
      dhcpConfig->httpBoot = dhcp::Config::HttpBoot{l.address.to_v4(), l.port};
      return;
    }
    if (l.address.is_unspecified()) {  // "[::]": dual-stack, reachable on every IPv4 address too
      dhcpConfig->httpBoot = dhcp::Config::HttpBoot{asio::ip::address_v4::any(), l.port};
      return;
    }
  }
}

config::Config loadConfig(const std::string& path, const config::LoadOptions& options) {
  auto config = config::loadFile(path, standardSchema(), options);
  linkServices(config);
  return config;
}

Daemon::Daemon(std::string configPath, config::Config config, std::vector<ServiceSpec> specs)
    : configPath_(std::move(configPath)),
      config_(std::move(config)),
      runtime_{loop_, std::make_shared<blockstore::WorkerPool>(kDiskThreads), nullptr, {}},
      stateFiles_(config_.daemon.stateDir),
      tracker_(inventory::Inventory::fromConfig(config::Config{}), [] { return boot::Clock::now(); }) {
  for (auto& s : specs) slots_.push_back(Slot{std::move(s), nullptr});
  tracker_.setOnChange([this] {
    hostsChanged();
    if (!nextBoot_.empty() || nextBootStale_) observeNextBoot();
  });
  // The state writer yields to everything else: its JSON can wait, the loop's packets cannot.
  asio::post(stateWriter_, [] { ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19); });
}

Daemon::~Daemon() {
  // Services before the runtime they use; retired ones too.
  for (auto& s : slots_) s.running.reset();
  retired_.clear();
}

Result<void> Daemon::apply(const config::Config& config) {
  // Phase 1, prepare: everything that can fail, changing nothing that runs.
  if (auto r = ensureStorageDir(config.storage.dir); !r) return r;
  auto hosts = inventory::Inventory::fromConfig(config);
  Runtime next = runtime_;
  bool needDisks = std::any_of(slots_.begin(), slots_.end(),
                               [&](const Slot& s) { return s.spec.needsDisks && s.spec.wanted(config); });
  if (needDisks && !next.disks) {
    auto store = blockstore::Store::open(config.storage.dir);
    if (!store) return Error{"store " + config.storage.dir + ": " + store.error().message, store.error().code};
    next.disks = std::make_shared<blockstore::HostDisks>(*store);
    next.storageDir = config.storage.dir;
  }
  struct Prepared {
    Slot* slot;
    std::unique_ptr<service::Service> created;  // a service the config adds
    std::unique_ptr<service::Staged> staged;     // declared last: dropped before the service it belongs to
  };
  std::vector<Prepared> prepared;
  for (auto& slot : slots_) {
    if (!slot.spec.wanted(config)) continue;
    Prepared p{&slot, nullptr, nullptr};
    service::Service* svc = slot.running.get();
    if (!svc) {
      p.created = slot.spec.make(next);
      p.created->setEventSink([this](const boot::Event& e) { tracker_.record(e); });
      if (auto* web = dynamic_cast<http::HttpService*>(p.created.get())) addRoutes(*web);
      svc = p.created.get();
    }
    auto staged = svc->prepare(config, hosts);
    if (!staged) return staged.error();  // every staged object and new service is dropped: nothing changed
    p.staged = std::move(*staged);
    prepared.push_back(std::move(p));
  }

  // Phase 2, commit: cannot fail.
  if (needDisks && runtime_.disks && config.storage.dir != runtime_.storageDir) {
    PXD_WARN("daemon.storage_dir_changed", "running={} configured={} note=\"takes effect on restart\"",
             log::q(runtime_.storageDir), log::q(config.storage.dir));
  }
  runtime_.disks = next.disks;
  runtime_.storageDir = next.storageDir;
  tracker_.setInventory(hosts);
  for (auto& p : prepared) {
    if (p.created) p.slot->running = std::move(p.created);
    p.slot->running->commit(std::move(p.staged));
  }
  std::erase_if(retired_, [](const auto& s) { return !s->busy(); });
  for (auto& slot : slots_) {
    if (!slot.running || slot.spec.wanted(config)) continue;
    PXD_INFO("daemon.service_removed", "service={} note=\"work in flight finishes\"", slot.spec.name);
    slot.running->stopAccepting();
    if (slot.running->busy()) retired_.push_back(std::move(slot.running));
    else slot.running.reset();
  }
  log::setLevel(config.log.level);
  return {};
}

int Daemon::run() {
  std::signal(SIGPIPE, SIG_IGN);
  // Keep freed memory for reuse instead of handing it back to the kernel at once: the hosts text
  // (megabytes, every few seconds) would otherwise be faulted in afresh each time; in bench/dhcp's
  // static row page faults (sysmalloc, set_pte) and copies filled much of the writer thread's profile.
  ::mallopt(M_MMAP_THRESHOLD, 64 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
  // Every connection (HTTP, iSCSI) and transfer is a descriptor: take all the hard limit allows,
  // as a service manager's LimitNOFILE would, rather than the shell's 1024.
  if (rlimit files{}; ::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  log::setLevel(config_.log.level);
  // Before daemon.json says "running": a program that reads it may signal at once.
  loop_.onSignal(SIGTERM, [this](int) { shutdown(); });
  loop_.onSignal(SIGINT, [this](int) { shutdown(); });
  loop_.onSignal(SIGHUP, [this](int) { reload(); });
  loop_.onSignal(SIGUSR1, [this](int) { stateFiles_.write("metrics.prom", renderMetrics()); });
  auto startFailed = [this](const Error& error) {
    PXD_ERROR("daemon.start_failed", "config={} error={}", log::q(configPath_), log::q(error.message));
    lastRefusal_ = error.message;
    writeDaemonState("failed");
    return 1;
  };
  // [daemon] user: resolved, and what the daemon is about to make noted, before it makes anything.
  std::optional<PrivilegeDrop> drop;
  if (config_.daemon.user) {
    auto prepared = PrivilegeDrop::prepare(config_);
    if (!prepared) return startFailed(prepared.error());
    drop = std::move(*prepared);
  }
  if (auto r = stateFiles_.open(); !r)
    PXD_WARN("daemon.no_state_files", "error={} note=\"programs cannot read the daemon's state\"", log::q(r.error().message));
  loadNextBoot();
  if (auto r = apply(config_); !r) return startFailed(r.error());
  // Everything of the first configuration is bound: run as the user from here on.
  if (auto r = drop ? drop->commit() : Result<void>{}; !r) return startFailed(r.error());
  // hosts.json first: a program that sees "running" must not read a hosts.json left by an earlier run.
  writeHostsState();
  writeDaemonState("running");
  std::string serving;
  for (const auto& s : slots_)
    if (s.running) serving += (serving.empty() ? "" : ", ") + s.spec.name;
  notify_.ready(fmt::format("serving {}; {} hosts", serving.empty() ? "nothing" : serving, config_.hosts.size()));
  if (std::none_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.running != nullptr; }))
    PXD_WARN("daemon.idle", "config={} reason=\"no service is configured\"", log::q(configPath_));
  PXD_INFO("daemon.ready", "version={} config={} hosts={} pid={}", PXEDUST_VERSION, log::q(configPath_),
           config_.hosts.size(), ::getpid());
  loopLag_.start();
  loop_.run();
  loopLag_.stop();
  writeDaemonState("stopped");
  PXD_INFO("daemon.stopped", "");
  return 0;
}

void Daemon::reload() {
  if (shuttingDown_) return;
  notify_.reloading(fmt::format("reloading {}", configPath_));
  config::Config next;
  try {
    next = loadConfig(configPath_, {nextBoot_.hostGroups()});
  } catch (const config::ConfigError& e) {
    PXD_ERROR("config.reload_refused", "error={} note=\"the running configuration stays\"", log::q(e.what()));
    ++reloadsRefused_;
    lastRefusal_ = e.what();
    writeDaemonState("running");
    notify_.ready("reload refused: " + lastRefusal_);
    return;
  }
  if (auto r = apply(next); !r) {
    PXD_ERROR("config.reload_refused", "error={} note=\"the running configuration stays\"", log::q(r.error().message));
    ++reloadsRefused_;
    lastRefusal_ = r.error().message;
    writeDaemonState("running");
    notify_.ready("reload refused: " + lastRefusal_);
    return;
  }
  // The process switched users once, at start; it cannot switch again (daemon/privileges.hpp).
  if (next.daemon.user != config_.daemon.user || next.daemon.group != config_.daemon.group) {
    auto who = [](const config::DaemonConfig& d) {
      return d.user ? *d.user + (d.group ? ":" + *d.group : std::string()) : std::string("(unset)");
    };
    PXD_WARN("config.user_changed", "running={} configured={} note=\"takes effect at restart; the rest is applied\"",
             log::q(who(config_.daemon)), log::q(who(next.daemon)));
  }
  config_ = std::move(next);
  nextBootStale_ = false;
  dropUnappliedNextBoot(config_);
  ++reloadsApplied_;
  PXD_INFO("config.reloaded", "config={} hosts={}", log::q(configPath_), config_.hosts.size());
  writeDaemonState("running");
  notify_.ready(fmt::format("reload applied; {} hosts", config_.hosts.size()));
}

void Daemon::writeDaemonState(std::string_view state) {
  state_ = state;
  stateFiles_.write("daemon.json", daemonState().dump(2) + "\n");
}

nlohmann::json Daemon::daemonState() const {
  nlohmann::json services = nlohmann::json::object();
  for (const auto& s : slots_)
    if (s.running) services[s.spec.name] = {{"endpoints", s.running->endpoints()}};
  // The API's own addresses, when [http] api_listen gives it some.
  if (const auto* web = dynamic_cast<const http::HttpService*>(find("http")); web && !web->apiEndpointTexts().empty())
    services["http"]["api_endpoints"] = web->apiEndpointTexts();
  nlohmann::json j = {
      {"pid", ::getpid()},
      {"version", PXEDUST_VERSION},
      {"config", configPath_},
      {"state", state_},
      {"services", services},
      {"hosts", config_.hosts.size()},
      {"reloads", {{"applied", reloadsApplied_}, {"refused", reloadsRefused_}, {"last_refusal", lastRefusal_}}},
  };
  return j;
}

nlohmann::json Daemon::health() const {
  // Resident memory from /proc/self/statm (pages): a read of kernel memory, not of a disk.
  std::uint64_t rss = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "re")) {
    unsigned long long size = 0, resident = 0;
    if (std::fscanf(f, "%llu %llu", &size, &resident) == 2) rss = resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    std::fclose(f);
  }
  const auto ms = [](double seconds) { return std::round(seconds * 10000.0) / 10.0; };
  return {{"uptime_seconds", std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_).count()},
          {"loop_lag_ms", ms(loopLag_.lastSeconds())},
          {"loop_lag_max_1m_ms", ms(loopLag_.maxLastMinuteSeconds())},
          {"resident_bytes", rss},
          {"in_flight", loop_.gate().inFlight()},
          {"next_boot", nextBoot_.entries().size()}};
}

void Daemon::writeHostsState() { setHostsJson(writeHostsFile(boot::copyOf(tracker_))); }

void Daemon::setHostsJson(std::shared_ptr<const std::string> text) {
  hostsJson_ = std::move(text);
  hostsStream_->publish("hosts", hostsJson_);
}

std::shared_ptr<const std::string> Daemon::writeHostsFile(const boot::TrackerCopy& copy) {
  // "pid": whose file it is; one left by an earlier run has another pid.
  const std::string& text = hostsWriter_.render(copy, fmt::format("\"pid\":{}", ::getpid()));
  stateFiles_.write("hosts.json", text);
  return std::make_shared<const std::string>(text);
}

std::string Daemon::renderMetrics() const {
  metrics::Writer out;
  for (const auto& s : slots_)
    if (s.running) s.running->collect(out);
  collectStorage(out);
  out.declare(kHostsByStage);
  for (const auto& [stage, count] : tracker_.stageCounts()) out.sample(kHostsByStage, {stage}, count);
  tracker_.writeStageSeconds(out);
  loopLag_.collect(out);
  out.sample(kReloads, {"applied"}, reloadsApplied_);
  out.sample(kReloads, {"refused"}, reloadsRefused_);
  return out.renderPrometheus();
}

void Daemon::hostsChanged() {
  if (hostsTimer_) return;  // a write is due already; it takes this change too
  hostsTimer_ = std::make_unique<asio::steady_timer>(loop_.io(), hostsWriteInterval_);
  hostsTimer_->async_wait([this](const std::error_code& ec) {
    if (ec) return;
    hostsTimer_.reset();
    if (hostsWriting_) {  // the last copy is still being written: take this change after another interval
      hostsChanged();
      return;
    }
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    auto copy = std::make_shared<const boot::TrackerCopy>(boot::copyOf(tracker_));
    const auto loopCost = Clock::now() - start;
    hostsWriting_ = true;
    asio::post(stateWriter_, [this, copy = std::move(copy), loopCost]() mutable {
      const auto renderStart = Clock::now();
      auto text = writeHostsFile(*copy);
      const auto renderCost = Clock::now() - renderStart;
      // The copy is let go of here, not on the loop: the host states the tracker replaced while the
      // text was written (with 10,000 hosts busy in DHCP, nearly all of them) are freed with it, and
      // that is the writer's work, not the loop's.
      copy.reset();
      asio::post(loop_.io(), [this, loopCost, renderCost, text = std::move(text)]() mutable {
        hostsWriting_ = false;
        setHostsJson(text);
        using std::chrono::duration_cast;
        using std::chrono::milliseconds;
        hostsWriteInterval_ = std::max({kHostsWriteInterval, duration_cast<milliseconds>(loopCost) * kHostsCopyCostFactor,
                                        duration_cast<milliseconds>(renderCost) * kHostsRenderCostFactor,
                                        milliseconds(text->size() * 1000 / kHostsBytesPerSecond)});
      });
    });
  });
}

service::Service* Daemon::find(std::string_view name) const {
  for (const auto& s : slots_)
    if (s.spec.name == name) return s.running.get();
  return nullptr;
}

const tftp::TftpService* Daemon::tftp() const { return dynamic_cast<const tftp::TftpService*>(find("tftp")); }
const dhcp::DhcpService* Daemon::dhcp() const { return dynamic_cast<const dhcp::DhcpService*>(find("dhcp")); }
const iscsi::IscsiService* Daemon::iscsi() const { return dynamic_cast<const iscsi::IscsiService*>(find("iscsi")); }

void Daemon::shutdown() {
  auto each = [this](auto&& fn) {
    for (auto& s : slots_)
      if (s.running) fn(*s.running);
    for (auto& r : retired_) fn(*r);
  };
  if (shuttingDown_) {
    PXD_WARN("daemon.shutdown_now", "in_flight={}", loop_.gate().inFlight());
    each([](service::Service& s) { s.abort(); });
    loop_.stop();
    return;
  }
  shuttingDown_ = true;
  writeDaemonState("stopping");
  notify_.stopping(fmt::format("stopping; {} in flight", loop_.gate().inFlight()));
  PXD_INFO("daemon.shutdown", "in_flight={} grace_ms={}", loop_.gate().inFlight(), config_.daemon.shutdownGrace.count());
  each([](service::Service& s) { s.stopAccepting(); });
  loop_.gate().close([this] { loop_.stop(); });
  graceTimer_ = std::make_unique<asio::steady_timer>(loop_.io(), config_.daemon.shutdownGrace);
  graceTimer_->async_wait([this, each](const std::error_code& ec) {
    if (ec) return;
    PXD_WARN("daemon.grace_expired", "in_flight={}", loop_.gate().inFlight());
    each([](service::Service& s) { s.abort(); });
    // Aborted transfers leave the gate on their next wake-up; the drain callback then stops the loop.
  });
}

}  // namespace pxedust::daemon
