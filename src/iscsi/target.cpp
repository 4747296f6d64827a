#include "iscsi/target.hpp"

#include <asio/async_result.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>

#include "common/log.hpp"
#include "iscsi/wire/text.hpp"

namespace pxedust::iscsi {

std::string lowerCase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

TargetRegistry::TargetRegistry(const Config& config, std::shared_ptr<const inventory::Inventory> hosts)
    : config_(config) {
  if (!hosts) return;
  for (const auto& h : hosts->hosts()) {
    if (!h.disk.image) continue;
    Target t{targetName(config_, h.name, h.mac, h.group), h};
    targets_.emplace(t.name, std::move(t));
  }
}

const Target* TargetRegistry::find(std::string_view targetName) const {
  auto it = targets_.find(lowerCase(targetName));
  return it == targets_.end() ? nullptr : &it->second;
}

bool TargetRegistry::permits(const Target& t, std::string_view initiatorLower, const asio::ip::address& peer) {
  return t.host.admitsAddress(peer) && admitsInitiator(t, initiatorLower);
}

bool TargetRegistry::admitsInitiator(const Target& t, std::string_view initiatorLower) {
  const auto& names = t.host.disk.initiators;
  return !names || std::any_of(names->begin(), names->end(),
                               [&](const std::string& n) { return lowerCase(n) == initiatorLower; });
}

namespace {
std::optional<ChapCredentials> toChap(const std::optional<config::ChapCredentials>& c) {
  if (!c) return std::nullopt;
  return ChapCredentials{c->user, c->secret};
}
}  // namespace

AccessDecision TargetRegistry::authorize(const LoginIdentity& id, const asio::ip::address& peer) const {
  AccessDecision d;
  if (id.sessionType == SessionType::Discovery) {
    d.chap = toChap(config_.discoveryChap);
    return d;
  }
  const Target* t = find(id.targetName);
  if (!t) {
    d.status = login_status::NotFound;
    return d;
  }
  if (!permits(*t, lowerCase(id.initiatorName), peer)) {
    d.status = login_status::AuthorizationFailure;
    return d;
  }
  d.chap = toChap(t->host.disk.chap);
  d.mutualChap = toChap(t->host.disk.mutualChap);
  d.targetAlias = t->host.name;
  return d;
}

std::vector<std::uint8_t> TargetRegistry::sendTargets(std::string_view initiatorLower, const asio::ip::address& peer,
                                                      const std::string& portal, std::string_view only) const {
  wire::TextWriter out;
  for (const auto& [name, t] : targets_) {
    if (!only.empty() && name != lowerCase(only)) continue;
    if (!permits(t, initiatorLower, peer)) continue;
    out.add("TargetName", name);
    out.add("TargetAddress", portal);
  }
  return out.take();
}


asio::awaitable<Result<std::shared_ptr<HostLun>>> LunCache::open(const Target& target) {
  std::string host = target.host.name;
  std::string image = *target.host.disk.image;
  std::string targetName = target.name;
  if (auto it = luns_.find(host); it != luns_.end() && it->second->image == image) co_return it->second;
  // On a worker (it may create the overlay); the loop serves others meanwhile.
  auto dev = co_await blockstore::openOnWorker(disks_, pool_, executor_, host, image);
  if (!dev) co_return Error{dev.error().message, dev.error().code};
  // Another session may have opened it while we waited: one Lun per host.
  if (auto it = luns_.find(host); it != luns_.end() && it->second->image == image) co_return it->second;
  auto async = std::make_shared<blockstore::AsyncBlockDevice>(*dev, pool_, executor_);
  scsi::LunOptions opts;
  opts.identity.deviceId = scsi::stableDeviceId("host " + host);
  std::string serial = fmt::format("{:016x}", opts.identity.deviceId);
  opts.identity.serial = serial;
  opts.identity.targetName = targetName;
  opts.identity.targetPortName = fmt::format("{},t,0x{:04x}", targetName, tpgt_);
  auto hl = std::make_shared<HostLun>();
  hl->host = host;
  hl->image = image;
  hl->targetName = targetName;
  hl->lun = std::make_shared<scsi::Lun>(executor_, std::move(async), std::move(opts));
  luns_[host] = hl;
  PXD_INFO("iscsi.lun_opened", "host={} image={} blocks={} block_size={}", log::q(host), log::q(image),
           hl->lun->geometry().blocks, hl->lun->geometry().blockSize);
  co_return hl;
}

std::vector<std::string> LunCache::retain(const TargetRegistry& registry) {
  std::vector<std::string> gone;
  for (auto it = luns_.begin(); it != luns_.end();) {
    const Target* t = registry.find(it->second->targetName);
    if (!t || t->host.name != it->first || !t->host.disk.image || *t->host.disk.image != it->second->image) {
      gone.push_back(it->first);
      it = luns_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

}  // namespace pxedust::iscsi
