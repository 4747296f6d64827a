// The NBD service: a TCP listener per [nbd] listen address, the export registry, the hosts' open
// disks and the connections (NetworkBlockDevice doc/proto.md; nbd/connection.hpp).
//
// prepare() binds any new listener and builds the new export registry; commit() swaps them in (the
// reload contract of service/service.hpp). Handshakes from then on see the new exports; sessions
// whose export is gone, whose host changed image, or whose host no longer admits the client's address
// are closed, and every other session is left alone.
//
// stop() is the shutdown: listeners close, each connection stops reading, lets its requests in flight
// finish and their replies go out, then closes (each connection holds a ShutdownGate ticket).
// abortConnections() cuts them off when the grace period ends.
#pragma once

#include <memory>
#include <vector>

#include "blockstore/host_disks.hpp"
#include "common/result.hpp"
#include "config/config.hpp"
#include "event/loop.hpp"
#include "event/tcp_listeners.hpp"
#include "inventory/inventory.hpp"
#include "nbd/config.hpp"
#include "nbd/connection.hpp"
#include "nbd/stats.hpp"
#include "service/service.hpp"

namespace pxedust::nbd {

class NbdService final : public service::Service {
 public:
  // `disks` and `pool` are the daemon's, shared with the other block front-ends.
  NbdService(event::Loop& loop, std::shared_ptr<blockstore::HostDisks> disks,
             std::shared_ptr<blockstore::WorkerPool> pool);
  ~NbdService() override;
  NbdService(const NbdService&) = delete;
  NbdService& operator=(const NbdService&) = delete;

  [[nodiscard]] std::string_view name() const override { return "nbd"; }
  Result<std::unique_ptr<service::Staged>> prepare(const config::Config& config,
                                                   std::shared_ptr<const inventory::Inventory> hosts) override;
  void commit(std::unique_ptr<service::Staged> staged) noexcept override;
  void stopAccepting() override { stop(); }
  void abort() override { abortConnections(); }
  [[nodiscard]] bool busy() const override { return !ctx_->connections.empty(); }
  [[nodiscard]] std::vector<std::string> endpoints() const override { return listeners_.endpointTexts(); }
  void collect(metrics::Writer& out) const override;
  [[nodiscard]] std::vector<service::DiskSession> diskSessions() const override;
  void releaseDisk(std::string_view host) override;

  // prepare() + commit() of the [nbd] section alone (tests).
  Result<void> apply(const Config& config, std::shared_ptr<const inventory::Inventory> hosts);
  void stop();
  void abortConnections();

  [[nodiscard]] const NbdStats& stats() const { return ctx_->stats; }
  [[nodiscard]] std::size_t sessions() const { return ctx_->sessions; }
  [[nodiscard]] std::size_t connections() const { return ctx_->connections.size(); }
  [[nodiscard]] const std::shared_ptr<const ExportRegistry>& registry() const { return ctx_->registry; }
  [[nodiscard]] std::vector<asio::ip::tcp::endpoint> listenEndpoints() const { return listeners_.endpoints(); }

 private:
  struct Staged;

  Result<std::unique_ptr<Staged>> prepareSection(const Config& config,
                                                 std::shared_ptr<const inventory::Inventory> hosts);
  void accept(asio::ip::tcp::socket socket);
  std::vector<std::shared_ptr<Connection>> live() const;

  event::Loop& loop_;
  std::shared_ptr<ServiceContext> ctx_;
  event::TcpListeners listeners_;
  bool stopping_ = false;
};

}  // namespace pxedust::nbd
