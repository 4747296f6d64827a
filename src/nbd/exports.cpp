#include "nbd/exports.hpp"

#include <asio/use_awaitable.hpp>

#include <algorithm>

#include "blockstore/store.hpp"
#include "common/log.hpp"
#include "nbd/tls.hpp"

namespace pxedust::nbd {

ExportRegistry::ExportRegistry(const Config& config, std::shared_ptr<const inventory::Inventory> hosts)
    : config_(config), hosts_(hosts) {
  if (!hosts) return;
  for (const auto& h : hosts->hosts()) {
    if (!h.disk.image || notExportedBecause(h.disk, h.ip)) continue;
    Export e{exportName(config_, h.name, h.mac, h.group), h, std::nullopt, 0};
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

std::optional<std::pair<std::string, std::uint64_t>> parseImageExport(std::string_view name) {
  constexpr std::string_view kPrefix = "images/";
  if (!name.starts_with(kPrefix)) return std::nullopt;
  name.remove_prefix(kPrefix.size());
  std::uint64_t version = 0;
  if (auto slash = name.find('/'); slash != std::string_view::npos) {
    auto v = name.substr(slash + 1);
    name = name.substr(0, slash);
    if (v.size() < 2 || v.size() > 20 || v[0] != 'v') return std::nullopt;
    for (char c : v.substr(1)) {
      if (c < '0' || c > '9') return std::nullopt;
      version = version * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (version == 0) return std::nullopt;
  }
  if (!blockstore::validStoreName(name)) return std::nullopt;
  return std::pair{std::string(name), version};
}

std::optional<Export> ExportRegistry::findImage(std::string_view name, const Client& client, bool& refused) const {
  refused = false;
  if (!config_.imageExports || !hosts_) return std::nullopt;
  auto parsed = parseImageExport(name);
  if (!parsed) return std::nullopt;
  const inventory::Host* booter = nullptr;
  for (const auto& h : hosts_->hosts()) {
    if (h.disk.image != parsed->first || notExportedBecause(h.disk, h.ip)) continue;
    Export e{std::string(name), h, parsed->first, parsed->second};
    if (permits(e, client)) return e;
    booter = &h;
  }
  refused = booter != nullptr;  // an image some host boots, not from this address
  return std::nullopt;
}

std::vector<std::string> ExportRegistry::imagesFor(const Client& client) const {
  std::vector<std::string> out;
  if (!config_.imageExports || !hosts_) return out;
  for (const auto& h : hosts_->hosts()) {
    if (!h.disk.image || notExportedBecause(h.disk, h.ip)) continue;
    auto name = "images/" + *h.disk.image;
    if (!permits(Export{name, h, *h.disk.image, 0}, client)) continue;
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  }
  return out;
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

asio::awaitable<Result<std::shared_ptr<OpenDisk>>> DiskCache::openImage(const Export& e) {
  using Opened = Result<std::pair<std::uint64_t, std::shared_ptr<blockstore::BlockDevice>>>;
  auto store = disks_->store();
  std::string image = *e.image;
  std::uint64_t version = e.version;
  // On a worker: the newest version is read from the store's files, and the image file opened.
  auto work = [store, image, version]() -> Opened {
    std::uint64_t v = version;
    if (v == 0) {
      auto info = store->imageInfo(image, 0);
      if (!info) return info.error();
      v = info->identity.version;
    }
    auto raw = store->openImage(image, v);
    if (!raw) return raw.error();
    return std::pair{v, std::shared_ptr<blockstore::BlockDevice>(*raw)};
  };
  auto waiting = blockstore::onWorker<Opened>(pool_, executor_, std::move(work));
  auto opened = co_await std::move(waiting);
  if (!opened) co_return Error{opened.error().message, opened.error().code};
  auto key = std::pair{image, opened->first};
  if (auto it = images_.find(key); it != images_.end())
    if (auto d = it->second.lock()) co_return d;
  auto d = std::make_shared<OpenDisk>();
  d->image = image;
  d->version = opened->first;
  d->caps = opened->second->capabilities();
  d->info = exportInfo(*opened->second, {}, {});
  d->device = std::make_shared<blockstore::AsyncBlockDevice>(opened->second, pool_, executor_);
  images_[key] = d;
  std::erase_if(images_, [](const auto& kv) { return kv.second.expired(); });
  PXD_INFO("nbd.image_opened", "image={} version={} size={}", log::q(image), d->version, d->info.size);
  co_return d;
}

void DiskCache::forget(std::string_view host) {
  if (auto it = disks_by_host_.find(host); it != disks_by_host_.end()) disks_by_host_.erase(it);
}

}  // namespace pxedust::nbd
