// The iSCSI service: a TCP listener per [iscsi] listen address, the target registry, sessions and
// connections (RFC 7143).
//
// prepare() binds any new listener and builds the new target registry; commit() swaps them in (the
// reload contract of service/service.hpp). With the new registry, logins from then on see the new hosts and ACLs;
// sessions of a host that left the config (or whose image changed, or whose ACL no longer admits
// the initiator) are closed, and every other session is left alone.
//
// stop() is the shutdown: listeners close, each connection stops reading, lets its tasks in flight
// finish and their responses go out, then closes (each connection holds a ShutdownGate ticket).
// abortConnections() cuts them off when the grace period ends.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "blockstore/host_disks.hpp"
#include "common/result.hpp"
#include "config/config.hpp"
#include "event/loop.hpp"
#include "event/tcp_listeners.hpp"
#include "event/udp.hpp"
#include "inventory/inventory.hpp"
#include "service/service.hpp"
#include "iscsi/connection.hpp"
#include "iscsi/stats.hpp"

namespace pxedust::iscsi {

class IscsiService final : public service::Service {
 public:
  // `disks` and `pool` are the daemon's, shared with the other block front-ends.
  IscsiService(event::Loop& loop, std::shared_ptr<blockstore::HostDisks> disks,
               std::shared_ptr<blockstore::WorkerPool> pool);
  ~IscsiService();
  IscsiService(const IscsiService&) = delete;
  IscsiService& operator=(const IscsiService&) = delete;

  [[nodiscard]] std::string_view name() const override { return "iscsi"; }
  Result<std::unique_ptr<service::Staged>> prepare(const config::Config& config,
                                                   std::shared_ptr<const inventory::Inventory> hosts) override;
  void commit(std::unique_ptr<service::Staged> staged) noexcept override;
  void stopAccepting() override { stop(); }
  void abort() override;
  [[nodiscard]] bool busy() const override { return !ctx_->connections.empty(); }
  [[nodiscard]] std::vector<std::string> endpoints() const override;
  void collect(metrics::Writer& out) const override;
  [[nodiscard]] std::vector<service::DiskSession> diskSessions() const override;
  void releaseDisk(std::string_view host) override;

  // prepare() + commit() of the [iscsi] section alone (tests).
  Result<void> apply(const Config& config, std::shared_ptr<const inventory::Inventory> hosts);
  void stop();
  void abortConnections();

  [[nodiscard]] const IscsiStats& stats() const { return ctx_->stats; }
  [[nodiscard]] std::size_t sessions() const { return ctx_->sessions.size(); }
  [[nodiscard]] const std::shared_ptr<const TargetRegistry>& registry() const { return ctx_->registry; }
  [[nodiscard]] std::size_t connections() const { return ctx_->connections.size(); }
  [[nodiscard]] std::vector<asio::ip::tcp::endpoint> listenEndpoints() const;

 private:
  struct Staged;

  Result<std::unique_ptr<Staged>> prepareSection(const Config& config,
                                                 std::shared_ptr<const inventory::Inventory> hosts);
  void accept(asio::ip::tcp::socket socket);
  // Ends `s` through its connection (abort), or on its own when it has none.
  void closeSession(Session& s, Drop why, std::string_view reason);

  event::Loop& loop_;
  std::shared_ptr<ServiceContext> ctx_;
  event::TcpListeners listeners_;
  std::uint32_t maxConnections_ = 1024;
  bool stopping_ = false;
};

}  // namespace pxedust::iscsi
