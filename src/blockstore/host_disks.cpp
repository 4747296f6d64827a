#include "blockstore/host_disks.hpp"

#include <fmt/format.h>

#include <cerrno>

#include "common/log.hpp"

namespace pxedust::blockstore {

Result<std::shared_ptr<BlockDevice>> HostDisks::open(std::string_view host, std::string_view image) {
  std::lock_guard lock(mutex_);
  if (held_.contains(host))
    return Error{fmt::format("host '{}': its overlay is being reset; try again", host), EAGAIN};
  if (auto it = open_.find(host); it != open_.end()) {
    if (auto dev = it->second.device.lock()) {
      if (it->second.image == image) return std::shared_ptr<BlockDevice>(std::move(dev));
      return Error{fmt::format("host '{}' has its disk open on image '{}'; its config now names image '{}'", host,
                               it->second.image, image),
                   EBUSY};
    }
    open_.erase(it);
  }
  auto info = store_->overlayInfo(host);
  if (!info && info.error().code == ENOENT) {
    auto created = store_->createOverlay(host, image);
    if (!created) return Error{fmt::format("host '{}': {}", host, created.error().message), created.error().code};
    info = std::move(created);
  }
  if (!info) return info.error();
  if (info->base.name != image) {
    return Error{fmt::format("host '{}' has an overlay on image '{}', but its config names image '{}': delete the "
                             "overlay (pxedust overlay delete {}) to start over on '{}'",
                             host, info->base.name, image, host, image),
                 EINVAL};
  }
  auto dev = store_->openOverlay(host, options_);
  if (!dev) return dev.error();
  open_.emplace(std::string(host), Entry{std::string(image), *dev});
  PXD_DEBUG("blockstore.disk.opened", "host={} device={}", log::q(host), log::q((*dev)->describe()));
  return std::shared_ptr<BlockDevice>(std::move(*dev));
}

std::size_t HostDisks::openCount() {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& [name, e] : open_) n += e.device.expired() ? 0 : 1;
  return n;
}

bool HostDisks::isOpen(std::string_view host) {
  std::lock_guard lock(mutex_);
  auto it = open_.find(host);
  return it != open_.end() && !it->second.device.expired();
}

void HostDisks::hold(std::string_view host) {
  std::lock_guard lock(mutex_);
  auto it = held_.find(host);
  if (it == held_.end()) it = held_.emplace(std::string(host), 0).first;
  ++it->second;
}

void HostDisks::unhold(std::string_view host) {
  std::lock_guard lock(mutex_);
  if (auto it = held_.find(host); it != held_.end() && --it->second <= 0) held_.erase(it);
}

Result<OverlayInfo> HostDisks::reset(std::string_view host, const ResetOptions& options) {
  std::lock_guard lock(mutex_);
  if (auto it = open_.find(host); it != open_.end()) {
    if (!it->second.device.expired())
      return Error{fmt::format("host '{}' has its disk open", host), EBUSY};
    open_.erase(it);
  }
  return store_->resetOverlay(host, options);
}

}  // namespace pxedust::blockstore
