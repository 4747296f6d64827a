// HostDisks: each host's disk, opened once and shared by every front-end session that uses it.
//
// An overlay file may be open only once (overlay.hpp holds an exclusive flock on it), yet one host
// may have several sessions at a time: a rebooted initiator logs in again before its old session is
// torn down, and iSCSI and NBD may both serve the same host. So front-ends never open overlays
// themselves; they ask here, and get the one open device for as long as anyone holds it.
//
// The first open creates the overlay on the latest version of the host's image. An overlay that is on
// another image than the one the config now names is refused (never silently re-based): the operator
// deletes or resets it. Thread-safe; open() blocks on file I/O, so the event loop calls it on a worker.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "blockstore/store.hpp"

namespace pxedust::blockstore {

class HostDisks {
 public:
  explicit HostDisks(std::shared_ptr<Store> store, OverlayOptions options = {})
      : store_(std::move(store)), options_(std::move(options)) {}

  Result<std::shared_ptr<BlockDevice>> open(std::string_view host, std::string_view image);
  // Hosts whose disk is open now.
  [[nodiscard]] std::size_t openCount();
  [[nodiscard]] bool isOpen(std::string_view host);

  // An overlay reset while the daemon runs: hold() refuses every open() of `host` (EAGAIN: a login
  // now fails and the initiator retries) until unhold(), so sessions that were ended cannot come
  // back between the release of the disk and the reset. reset() resets the overlay
  // (Store::resetOverlay) unless the disk is still open: EBUSY then, nothing changed.
  void hold(std::string_view host);
  void unhold(std::string_view host);
  Result<OverlayInfo> reset(std::string_view host, const ResetOptions& options);
  [[nodiscard]] const std::shared_ptr<Store>& store() const { return store_; }

 private:
  std::shared_ptr<Store> store_;
  OverlayOptions options_;
  std::mutex mutex_;
  struct Entry {
    std::string image;
    std::weak_ptr<Overlay> device;
  };
  std::map<std::string, Entry, std::less<>> open_;
  std::map<std::string, int, std::less<>> held_;  // host -> hold() calls not yet undone
};

}  // namespace pxedust::blockstore
