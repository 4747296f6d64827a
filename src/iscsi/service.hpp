// The iSCSI service: a TCP listener per [iscsi] listen address, the target registry, sessions and
// connections (RFC 7143).
//
// apply() is used at start and on SIGHUP. It binds any new listener first and changes nothing if
// that fails. A new target registry is swapped in: logins from then on see the new hosts and ACLs;
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
#include "event/udp.hpp"
#include "inventory/inventory.hpp"
#include "iscsi/connection.hpp"
#include "iscsi/stats.hpp"

namespace pxedust::iscsi {

class IscsiService {
 public:
  IscsiService(event::Loop& loop, std::shared_ptr<blockstore::HostDisks> disks, unsigned diskThreads = 4);
  ~IscsiService();
  IscsiService(const IscsiService&) = delete;
  IscsiService& operator=(const IscsiService&) = delete;

  Result<void> apply(const config::IscsiConfig& config, std::shared_ptr<const inventory::Inventory> hosts);
  void stop();
  void abortConnections();

  [[nodiscard]] const IscsiStats& stats() const { return ctx_->stats; }
  [[nodiscard]] std::size_t sessions() const { return ctx_->sessions.size(); }
  [[nodiscard]] std::size_t connections() const { return ctx_->connections.size(); }
  [[nodiscard]] std::vector<asio::ip::tcp::endpoint> listenEndpoints() const;

 private:
  void accept(asio::ip::tcp::socket socket);

  event::Loop& loop_;
  std::shared_ptr<ServiceContext> ctx_;
  std::map<std::string, std::unique_ptr<event::TcpListener>> listeners_;  // by "addr:port"
  std::uint32_t maxConnections_ = 1024;
  bool stopping_ = false;
};

}  // namespace pxedust::iscsi
