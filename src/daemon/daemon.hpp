// The daemon: configuration -> one event loop + the protocol services.
//
// Signals (handled on the loop, never in signal context):
//   SIGTERM, SIGINT  stop accepting new work; transfers in flight finish (up to
//                    daemon.shutdown_grace), then the loop stops. A second signal cuts them off.
//   SIGHUP           reload the config file. A config that does not load, or that a service
//                    cannot apply (e.g. an address it cannot bind), is refused with the error and
//                    the running configuration stays. Transfers in flight are never dropped.
#pragma once

#include <memory>
#include <string>

#include "config/config.hpp"
#include "dhcp/service.hpp"
#include "event/loop.hpp"
#include "inventory/inventory.hpp"
#include "iscsi/service.hpp"
#include "tftp/service.hpp"

namespace pxedust::daemon {

class Daemon {
 public:
  // `config` has been loaded already (serve loads it so it can report errors before starting).
  Daemon(std::string configPath, config::Config config);
  ~Daemon();

  // Starts the services and runs the loop until shutdown; returns the process exit code.
  int run();

  // Called on the loop. Public for tests and for the demo.
  void reload();
  void shutdown();
  event::Loop& loop() { return loop_; }
  [[nodiscard]] const tftp::TftpService* tftp() const { return tftp_.get(); }
  [[nodiscard]] const dhcp::DhcpService* dhcp() const { return dhcp_.get(); }
  [[nodiscard]] const iscsi::IscsiService* iscsi() const { return iscsi_.get(); }

 private:
  Result<void> applyConfig(const config::Config& config);

  std::string configPath_;
  config::Config config_;
  event::Loop loop_;
  std::unique_ptr<tftp::TftpService> tftp_;
  std::unique_ptr<dhcp::DhcpService> dhcp_;
  std::unique_ptr<iscsi::IscsiService> iscsi_;
  std::string iscsiStorageDir_;  // the store the iSCSI service opened (a new dir needs a restart)
  std::unique_ptr<asio::steady_timer> graceTimer_;
  bool shuttingDown_ = false;
};

}  // namespace pxedust::daemon
