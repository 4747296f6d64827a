// Store: the on-disk home of base images and per-host overlays.
//
//   <dir>/images/<name>/v<N>/base.img   a read-only (0444) raw image, sparse where the source was zero
//   <dir>/images/<name>/v<N>/meta       key=value: name, version, uuid, sha256, size, imported, source
//   <dir>/images/<name>/.lock           flock held while a version of <name> is being imported
//   <dir>/overlays/<host>.map           the overlay's map (map_file.hpp), pins one base version
//   <dir>/overlays/<host>.data          the overlay's sparse data file (overlay.hpp)
//
// Importing never touches an existing version: a new import becomes v<N+1> (staged in a hidden
// directory and renamed into place, so a half-imported version is never visible). An overlay stays on
// the version it was created on until it is reset onto another one, a per-host choice. Names (image
// and host) are 1-64 characters of [A-Za-z0-9._-], not starting with '.' or '-': they become file
// names, so nothing else is accepted.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "blockstore/overlay.hpp"
#include "blockstore/raw_image.hpp"

namespace pxedust::blockstore {

bool validStoreName(std::string_view name);

struct ImageInfo {
  BaseIdentity identity;
  std::filesystem::path path;  // base.img
  std::int64_t importedAt = 0;  // unix seconds
  std::string source;
  std::uint64_t allocatedBytes = 0;
};

struct OverlayInfo {
  std::string host;
  BaseIdentity base;
  std::uint32_t chunkSize = 0;
  std::uint64_t allocatedBytes = 0;  // data + map file blocks on disk
  std::optional<std::uint64_t> latestVersion;  // of the base's name, when it still exists
};

struct CreateOverlayOptions {
  std::uint64_t version = 0;  // 0 = the latest version of the image
  std::uint32_t chunkSize = kDefaultChunkSize;
};

struct ResetOptions {
  // Neither set: back to the same base version. latest: onto the newest version of the same image.
  bool latest = false;
  std::optional<std::uint64_t> version;
};

// Called during import with bytes done and total; at least once at the end.
using ProgressFn = std::function<void(std::uint64_t done, std::uint64_t total)>;

class Store {
 public:
  // Opens (creating if needed) a store rooted at `dir`.
  static Result<std::shared_ptr<Store>> open(const std::filesystem::path& dir);

  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

  Result<ImageInfo> importImage(const std::filesystem::path& source, std::string_view name,
                                const ProgressFn& progress = {});
  Result<std::vector<ImageInfo>> listImages() const;
  Result<ImageInfo> imageInfo(std::string_view name, std::uint64_t version = 0) const;  // 0 = latest
  // Opens a base image read-only (shared between callers while any holds it).
  Result<std::shared_ptr<RawImage>> openImage(std::string_view name, std::uint64_t version);
  // Re-hashes the whole image and compares with the recorded SHA-256.
  Result<void> verifyImage(std::string_view name, std::uint64_t version) const;

  Result<OverlayInfo> createOverlay(std::string_view host, std::string_view image, CreateOverlayOptions options = {});
  Result<std::shared_ptr<Overlay>> openOverlay(std::string_view host, OverlayOptions options = {});
  Result<OverlayInfo> resetOverlay(std::string_view host, ResetOptions options = {});
  Result<void> deleteOverlay(std::string_view host);
  Result<OverlayInfo> overlayInfo(std::string_view host) const;
  Result<std::vector<OverlayInfo>> listOverlays() const;

  [[nodiscard]] OverlayPaths overlayPaths(std::string_view host) const;

 private:
  explicit Store(std::filesystem::path dir) : dir_(std::move(dir)) {}
  Result<std::uint64_t> latestVersion(std::string_view name) const;

  std::filesystem::path dir_;
  std::mutex cacheMutex_;
  std::map<std::pair<std::string, std::uint64_t>, std::weak_ptr<RawImage>> images_;
};

}  // namespace pxedust::blockstore
