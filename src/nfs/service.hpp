// The NFS service: read-only NFS v3 (with MOUNT v3 and a PORTMAP v2 answer on the same port) of every
// image version in the store (nfs/exports.hpp), over TCP and UDP (nfs/datagrams.hpp).
//
// prepare() binds any new listener and builds the new access rules; commit() swaps them in (the reload
// contract of service/service.hpp). Nothing is per session: a reload changes who may mount from then
// on, and a mounted client keeps its handles (knfsd behaves the same way: the export table is checked
// at MNT). stop() closes the listeners and lets each connection answer what it has, then close;
// abort() cuts them off.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "blockstore/store.hpp"
#include "event/loop.hpp"
#include "event/tcp_listeners.hpp"
#include "nfs/config.hpp"
#include "nfs/connection.hpp"
#include "nfs/datagrams.hpp"
#include "service/service.hpp"

namespace pxedust::nfs {

class NfsService final : public service::Service {
 public:
  // `opener` opens an image's file system (imageFsOpener() in the daemon). The handle key is read
  // from (or made in) the store's directory: a failure there is the constructor's exception.
  NfsService(event::Loop& loop, std::shared_ptr<blockstore::Store> store, std::shared_ptr<blockstore::WorkerPool> pool,
             FsOpener opener = imageFsOpener());
  ~NfsService() override;
  NfsService(const NfsService&) = delete;
  NfsService& operator=(const NfsService&) = delete;

  [[nodiscard]] std::string_view name() const override { return "nfs"; }
  Result<std::unique_ptr<service::Staged>> prepare(const config::Config& config,
                                                   std::shared_ptr<const inventory::Inventory> hosts) override;
  void commit(std::unique_ptr<service::Staged> staged) noexcept override;
  void stopAccepting() override { stop(); }
  void abort() override { abortConnections(); }
  [[nodiscard]] bool busy() const override { return !ctx_->connections.empty() || ctx_->datagramsInFlight > 0; }
  // NFS's addresses first (clients and tests take the first), then the portmapper's.
  [[nodiscard]] std::vector<std::string> endpoints() const override;
  void collect(metrics::Writer& out) const override;

  // prepare() + commit() of the [nfs] section alone (tests).
  Result<void> apply(const Config& config, std::shared_ptr<const inventory::Inventory> hosts);
  void stop();
  void abortConnections();

  [[nodiscard]] const NfsStats& stats() const { return ctx_->stats; }
  [[nodiscard]] std::size_t connections() const { return ctx_->connections.size(); }
  [[nodiscard]] std::vector<asio::ip::tcp::endpoint> listenEndpoints() const { return listeners_.endpoints(); }

 private:
  struct Staged;
  Result<std::unique_ptr<Staged>> prepareSection(const Config& config, std::shared_ptr<const inventory::Inventory> hosts);
  void accept(asio::ip::tcp::socket socket);
  std::vector<std::shared_ptr<Connection>> live() const;
  void closeDatagramSockets();

  event::Loop& loop_;
  std::shared_ptr<ServiceContext> ctx_;
  event::TcpListeners listeners_;
  event::TcpListeners portmapListeners_;  // port 111, with `portmap = true`
  std::map<std::string, std::shared_ptr<DatagramSocket>> datagrams_;  // by the TCP address as configured
  bool stopping_ = false;
};

}  // namespace pxedust::nfs
