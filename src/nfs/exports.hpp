// What the NFS server exports: every image version in the store, read-only, through the file system
// inside its image file (imagefs, libext2fs: no loop device, no mount).
//
//  * Paths: "/images/NAME/VERSION" is one image version; "/images/NAME" is the newest version at the
//    time of the MNT; either may go on into a directory of the image (a subdirectory mount, which
//    libnfs's tools make for a file's URL) (the client then holds that version's handles, so an import of a newer version
//    changes nothing under a mounted root: it moves at its next mount, i.e. its next boot).
//  * Identity: an export is named in file handles by its version's uuid (the store gives each
//    imported version its own) and version number. A deleted version's uuid never comes back, so
//    its handles answer STALE, never another file; a handle survives restarts and reloads because
//    nothing of it is in process memory but the key, which is kept in the store (nfs-handle.key).
//  * Who may mount: a client whose address the rule of some host booting that image admits
//    (ExportRules); the listing (EXPORT) shows a client what it may mount. The rule is applied at
//    MNT, as knfsd's exports(5) are: NFS calls are checked against the handle's MAC only.
//  * Opened file systems are cached by uuid for the process's life (images never change), shared by
//    every connection and every config generation; each entry checks at most once a second that its
//    image file is still in the store, and drops itself (STALE from then on) when it is not.
#pragma once

#include <asio/ip/address.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "blockstore/store.hpp"
#include "inventory/inventory.hpp"
#include "nfs/mount_procedures.hpp"
#include "nfs/procedures.hpp"

namespace pxedust::nfs {

// A MOUNT path: "/images/NAME[/VERSION][/DIR...]". The component after the name is the version
// when it is a number (so a top-level directory named by digits is reached through an explicit
// version); what follows is a directory inside the image (a subdirectory mount).
struct ExportPath {
  std::string image;
  std::uint64_t version = 0;  // 0: the newest at the time of the mount
  std::string subdir;         // "" or "etc/ssh"
};
std::optional<ExportPath> parseExportPath(std::string_view path);

// Who may mount which image: the inventory's hosts and their address rules.
class ExportRules {
 public:
  explicit ExportRules(std::shared_ptr<const inventory::Inventory> hosts) : hosts_(std::move(hosts)) {}
  // The host booting `image` whose rule admits `peer`: the one at that address, else the first in the
  // file; null when none does.
  [[nodiscard]] const inventory::Host* admitting(std::string_view image, const asio::ip::address& peer) const;
  [[nodiscard]] const std::shared_ptr<const inventory::Inventory>& hosts() const { return hosts_; }

 private:
  std::shared_ptr<const inventory::Inventory> hosts_;
};

// Opens an image file's file system (imagefs in the daemon; tests may give another).
using FsOpener = std::function<Result<std::shared_ptr<FileSystem>>(const std::filesystem::path& image)>;
// The daemon's opener: imagefs::ImageFs.
FsOpener imageFsOpener();

class ImageExports {
 public:
  ImageExports(std::shared_ptr<blockstore::Store> store, FsOpener opener) : store_(std::move(store)), opener_(std::move(opener)) {}

  // The export for an image version named in a handle; null when it is gone (STALE). Thread-safe:
  // the NFS procedures call it on the workers.
  std::shared_ptr<const Export> byHandle(const wire::ImageId& id, std::uint32_t version);
  // The export at "/images/NAME[/VERSION]", opening it if needed (file I/O: call it on a worker).
  Result<std::shared_ptr<const Export>> byPath(std::string_view name, std::uint64_t version);
  // Every image version in the store, as export paths, with their image names.
  Result<std::vector<std::pair<std::string, std::string>>> paths() const;
  [[nodiscard]] std::size_t open() const;

 private:
  struct Entry {
    std::shared_ptr<const Export> exp;
    std::filesystem::path file;
    std::string name;
    std::chrono::steady_clock::time_point checked;
  };
  Result<std::shared_ptr<const Export>> openLocked(const blockstore::ImageInfo& info);

  std::shared_ptr<blockstore::Store> store_;
  FsOpener opener_;
  mutable std::mutex mu_;
  std::map<wire::ImageId, Entry> byId_;
};

// The handle key, kept in the store so that handles outlive the process: read, or made (random, 0600)
// the first time.
Result<wire::HandleKey> loadHandleKey(const std::filesystem::path& storeDir);

}  // namespace pxedust::nfs
