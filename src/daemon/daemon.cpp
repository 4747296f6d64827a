#include "daemon/daemon.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>

#include "blockstore/host_disks.hpp"
#include "blockstore/store.hpp"
#include "common/log.hpp"

#ifndef PXEDUST_VERSION
#define PXEDUST_VERSION "0.0.0"
#endif

namespace pxedust::daemon {

Daemon::Daemon(std::string configPath, config::Config config)
    : configPath_(std::move(configPath)), config_(std::move(config)) {}

Daemon::~Daemon() = default;

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

Result<void> Daemon::applyConfig(const config::Config& config) {
  if (auto r = ensureStorageDir(config.storage.dir); !r) return r;
  auto hosts = inventory::Inventory::fromConfig(config);
  // DHCP first: it is the one whose apply() can still refuse (an interface, the lease file) after
  // TFTP has taken its new settings, and a refused reload must change nothing.
  if (config.dhcp.enabled) {
    if (!dhcp_) dhcp_ = std::make_unique<dhcp::DhcpService>(loop_);
    if (auto r = dhcp_->apply(config, hosts); !r) return r;
  } else if (dhcp_) {
    dhcp_->stop();
    dhcp_.reset();
  }
  // iSCSI next: binding its listeners can still refuse the reload.
  if (config.iscsi.enabled) {
    if (!iscsi_) {
      auto store = blockstore::Store::open(config.storage.dir);
      if (!store) return Error{"[iscsi] store " + config.storage.dir + ": " + store.error().message, store.error().code};
      iscsi_ = std::make_unique<iscsi::IscsiService>(loop_, std::make_shared<blockstore::HostDisks>(*store));
      iscsiStorageDir_ = config.storage.dir;
    } else if (config.storage.dir != iscsiStorageDir_) {
      PXD_WARN("iscsi.storage_dir_changed", "running={} configured={} note=\"takes effect on restart\"",
               log::q(iscsiStorageDir_), log::q(config.storage.dir));
    }
    if (auto r = iscsi_->apply(config.iscsi, hosts); !r) return r;
  } else if (iscsi_) {
    iscsi_->stop();  // the section was removed: its sessions are closed
    iscsi_.reset();
  }
  if (config.tftp.enabled) {
    if (!tftp_) tftp_ = std::make_unique<tftp::TftpService>(loop_);
    if (auto r = tftp_->apply(config.tftp, hosts); !r) return r;
  } else if (tftp_) {
    tftp_->stopListening();  // the section was removed: transfers in flight still finish
  }
  log::setLevel(config.log.level);
  return {};
}

int Daemon::run() {
  std::signal(SIGPIPE, SIG_IGN);
  log::setLevel(config_.log.level);
  if (auto r = applyConfig(config_); !r) {
    PXD_ERROR("daemon.start_failed", "config={} error={}", log::q(configPath_), log::q(r.error().message));
    return 1;
  }
  if (!config_.tftp.enabled && !config_.dhcp.enabled && !config_.iscsi.enabled) PXD_WARN("daemon.idle", "config={} reason=\"no service is configured\"", log::q(configPath_));
  loop_.onSignal(SIGTERM, [this](int) { shutdown(); });
  loop_.onSignal(SIGINT, [this](int) { shutdown(); });
  loop_.onSignal(SIGHUP, [this](int) { reload(); });
  PXD_INFO("daemon.ready", "version={} config={} hosts={} pid={}", PXEDUST_VERSION, log::q(configPath_),
           config_.hosts.size(), ::getpid());
  loop_.run();
  PXD_INFO("daemon.stopped", "");
  return 0;
}

void Daemon::reload() {
  if (shuttingDown_) return;
  config::Config next;
  try {
    next = config::loadFile(configPath_);
  } catch (const config::ConfigError& e) {
    PXD_ERROR("config.reload_refused", "error={} note=\"the running configuration stays\"", log::q(e.what()));
    return;
  }
  if (auto r = applyConfig(next); !r) {
    PXD_ERROR("config.reload_refused", "error={} note=\"the running configuration stays\"", log::q(r.error().message));
    return;
  }
  config_ = std::move(next);
  PXD_INFO("config.reloaded", "config={} hosts={}", log::q(configPath_), config_.hosts.size());
}

void Daemon::shutdown() {
  if (shuttingDown_) {
    PXD_WARN("daemon.shutdown_now", "in_flight={}", loop_.gate().inFlight());
    if (tftp_) tftp_->abortTransfers();
    if (iscsi_) iscsi_->abortConnections();
    loop_.stop();
    return;
  }
  shuttingDown_ = true;
  PXD_INFO("daemon.shutdown", "in_flight={} grace_ms={}", loop_.gate().inFlight(), config_.daemon.shutdownGrace.count());
  if (tftp_) tftp_->stopListening();
  if (dhcp_) dhcp_->stop();
  if (iscsi_) iscsi_->stop();
  loop_.gate().close([this] { loop_.stop(); });
  graceTimer_ = std::make_unique<asio::steady_timer>(loop_.io(), config_.daemon.shutdownGrace);
  graceTimer_->async_wait([this](const std::error_code& ec) {
    if (ec) return;
    PXD_WARN("daemon.grace_expired", "in_flight={}", loop_.gate().inFlight());
    if (tftp_) tftp_->abortTransfers();
    if (iscsi_) iscsi_->abortConnections();
    // Aborted transfers leave the gate on their next wake-up; the drain callback then stops the loop.
  });
}

}  // namespace pxedust::daemon
