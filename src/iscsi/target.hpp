// The target registry: one iSCSI target per inventory host that has a disk, its access rules, and
// the LUN (the host's overlay) once a session has opened it.
//
// Access (issue 5): host A can never log into or read host B's disk. A login to a host's target is
// allowed when all of the host's checks pass:
//   * source address: the host model's rule, inventory::Host::admitsAddress (in one of `iscsi_allow`;
//     when that is unset, equal to the host's own `ip`; a host with neither accepts any address:
//     config validation then insists on initiators or CHAP);
//   * initiator name: in `iscsi_initiators` when set (names lower-cased, RFC 3722);
//   * CHAP: when `chap_secret` is set the login machine demands it (and mutual CHAP when configured).
// Discovery (SendTargets=All) lists only the targets whose address and name checks pass for the
// asking initiator, so a host sees its own target and no other (RFC 7143 §12.3 leaves the choice
// to the target).
//
// LUNs are opened lazily, on the first login of a Normal session, through HostDisks on a worker
// thread (the open creates the overlay on first use and may take a while), and then shared by every
// session of that host: one Lun per host keeps unit attentions and reservations in one place.
// A reload builds a new registry; a host whose image changed or that is gone loses its Lun (the
// service closes its sessions), others keep theirs.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/address.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "blockstore/async_device.hpp"
#include "blockstore/host_disks.hpp"
#include "config/config.hpp"
#include "iscsi/config.hpp"
#include "inventory/inventory.hpp"
#include "iscsi/login/login.hpp"
#include "scsi/lun.hpp"

namespace pxedust::iscsi {

std::string lowerCase(std::string_view s);

struct Target {
  std::string name;      // lower-case iSCSI name
  inventory::Host host;  // whose disk it is; a copy, so a Target needs no inventory to outlive
};

class TargetRegistry {
 public:
  TargetRegistry(const Config& config, std::shared_ptr<const inventory::Inventory> hosts);

  [[nodiscard]] const Target* find(std::string_view targetName) const;
  [[nodiscard]] const std::map<std::string, Target, std::less<>>& targets() const { return targets_; }

  // Address and initiator-name checks (CHAP is the login machine's).
  static bool permits(const Target& t, std::string_view initiatorLower, const asio::ip::address& peer);
  // The initiator-name check alone: in `iscsi_initiators` when set (compared lower-cased, RFC 3722).
  static bool admitsInitiator(const Target& t, std::string_view initiatorLower);

  // The LoginMachine authorize hook for a connection from `peer`.
  [[nodiscard]] AccessDecision authorize(const LoginIdentity& id, const asio::ip::address& peer) const;

  // SendTargets=All (RFC 7143 §12.3): the targets this initiator may see, each with `portal`
  // ("ip:port,tpgt"). `only`: a Normal session asks about its own target only.
  [[nodiscard]] std::vector<std::uint8_t> sendTargets(std::string_view initiatorLower, const asio::ip::address& peer,
                                                      const std::string& portal, std::string_view only) const;

  [[nodiscard]] const Config& config() const { return config_; }

 private:
  Config config_;
  std::map<std::string, Target, std::less<>> targets_;
};

// One opened LUN per host, shared by its sessions.
struct HostLun {
  std::string host;
  std::string image;
  std::string targetName;
  std::shared_ptr<scsi::Lun> lun;
};

class LunCache {
 public:
  LunCache(std::shared_ptr<blockstore::HostDisks> disks, blockstore::WorkerPool& pool, asio::any_io_executor ex,
           std::uint16_t portalGroupTag)
      : disks_(std::move(disks)), pool_(pool), executor_(std::move(ex)), tpgt_(portalGroupTag) {}

  // Opens (or returns) the LUN of `target`. On the loop; the file work runs on the pool.
  asio::awaitable<Result<std::shared_ptr<HostLun>>> open(const Target& target);
  // Forgets LUNs whose target is gone or whose image changed; returns the hosts it forgot.
  std::vector<std::string> retain(const TargetRegistry& registry);
  // Forgets `host`'s LUN (its overlay is about to be reset); sessions still holding it keep it.
  void forget(std::string_view host) {
    if (auto it = luns_.find(host); it != luns_.end()) luns_.erase(it);
  }
  void setPortalGroupTag(std::uint16_t tpgt) { tpgt_ = tpgt; }
  [[nodiscard]] std::size_t size() const { return luns_.size(); }

 private:
  std::shared_ptr<blockstore::HostDisks> disks_;
  blockstore::WorkerPool& pool_;
  asio::any_io_executor executor_;
  std::uint16_t tpgt_;
  std::map<std::string, std::shared_ptr<HostLun>, std::less<>> luns_;
};

}  // namespace pxedust::iscsi
