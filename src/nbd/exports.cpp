#include "nbd/exports.hpp"

#include <asio/use_awaitable.hpp>

#include <algorithm>

#include "common/log.hpp"
#include "nbd/tls.hpp"

namespace pxedust::nbd {

ExportRegistry::ExportRegistry(const Config& config, std::shared_ptr<const inventory::Inventory> hosts)
    : config_(config) {
  if (!hosts) return;
  for (const auto& h : hosts->hosts()) {
    if (!h.disk.image || notExportedBecause(h.disk, h.ip)) continue;
    Export e{exportName(config_, h.name, h.mac, h.group), h};
    exports_.emplace(e.name, std::move(e));
  }
}

std::string_view ExportRegistry::refusal(const Export& e, const Client& client) const {
  if (config_.tls == wire::TlsMode::Required && !client.tls) return "TLS is required";
  if (!e.host.admitsAddress(client.address)) return "address not allowed for this host's disk";
  if (client.pskIdentity) {
    if (!e.host.admitsTlsIdentity(*client.pskIdentity)) return "TLS identity is not this host's";
    if (!config_.tlsCredentials || !config_.tlsCredentials->knowsIdentity(*client.pskIdentity))
      return "TLS identity no longer in tls_psk_file";
  }
  return {};
}

bool ExportRegistry::permits(const Export& e, const Client& client) const { return refusal(e, client).empty(); }

const Export* ExportRegistry::find(std::string_view name) const {
  auto it = exports_.find(name);
  return it == exports_.end() ? nullptr : &it->second;
}

wire::DeviceCapabilities deviceCapabilities(const blockstore::Capabilities& caps) {
  wire::DeviceCapabilities c;
  c.readOnly = caps.readOnly;
  c.canFlush = caps.canFlush;
  c.canFua = caps.canFua;
  c.canTrim = caps.canTrim;
  c.canWriteZeroes = true;
  c.canFastZero = caps.canZero;
  c.canMultiConn = true;
  c.canCache = true;
  c.canDf = true;
  return c;
}

wire::ExportInfo exportInfo(const blockstore::BlockDevice& device, std::string name, std::string description) {
  wire::ExportInfo info;
  const auto caps = device.capabilities();
  info.size = device.size();
  info.flags = wire::transmissionFlags(deviceCapabilities(caps));
  info.name = std::move(name);
  info.description = std::move(description);
  std::uint32_t preferred = std::clamp<std::uint32_t>(caps.writeGranularity, 4096, kMaxPayload);
  if ((preferred & (preferred - 1)) != 0) preferred = 4096;  // not a power of two: the default
  info.blockSizes = wire::BlockSizes{1, preferred, kMaxPayload};
  return info;
}

std::shared_ptr<OpenDisk> DiskCache::find(const Export& e) const {
  auto it = disks_by_host_.find(e.host.name);
  if (it == disks_by_host_.end() || !e.host.disk.image || it->second->image != *e.host.disk.image) return nullptr;
  return it->second;
}

asio::awaitable<Result<std::shared_ptr<OpenDisk>>> DiskCache::open(const Export& e) {
  if (auto d = find(e)) co_return d;
  std::string host = e.host.name;
  std::string image = *e.host.disk.image;
  // On a worker (it may create the overlay); the loop serves others meanwhile.
  auto dev = co_await blockstore::openOnWorker(disks_, pool_, executor_, host, image);
  if (!dev) co_return Error{dev.error().message, dev.error().code};
  // Another connection may have opened it while we waited: one OpenDisk per host.
  if (auto d = find(e)) co_return d;
  auto d = std::make_shared<OpenDisk>();
  d->host = host;
  d->image = image;
  d->caps = (*dev)->capabilities();
  d->info = exportInfo(**dev, {}, {});
  d->device = std::make_shared<blockstore::AsyncBlockDevice>(*dev, pool_, executor_);
  disks_by_host_[host] = d;
  PXD_INFO("nbd.disk_opened", "host={} image={} size={} flags={:#06x}", log::q(host), log::q(image), d->info.size,
           d->info.flags);
  co_return d;
}

std::vector<std::string> DiskCache::retain(const ExportRegistry& registry) {
  std::vector<std::string> gone;
  for (auto it = disks_by_host_.begin(); it != disks_by_host_.end();) {
    const auto& exports = registry.exports();
    bool keep = std::any_of(exports.begin(), exports.end(), [&](const auto& kv) {
      return kv.second.host.name == it->first && kv.second.host.disk.image == it->second->image;
    });
    if (keep) {
      ++it;
    } else {
      gone.push_back(it->first);
      it = disks_by_host_.erase(it);
    }
  }
  return gone;
}

void DiskCache::forget(std::string_view host) {
  if (auto it = disks_by_host_.find(host); it != disks_by_host_.end()) disks_by_host_.erase(it);
}

}  // namespace pxedust::nbd
