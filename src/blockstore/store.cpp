// Store implementation; the directory layout is described in store.hpp.
#include "blockstore/store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <ctime>

#include <fmt/format.h>

#include "blockstore/file.hpp"
#include "common/checked.hpp"
#include "common/log.hpp"

namespace pxedust::blockstore {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kImportBlock = 1U << 20;
constexpr std::uint64_t kProgressEvery = 64ULL << 20;

Error nameError(std::string_view kind, std::string_view name) {
  return Error{fmt::format("invalid {} name '{}': use 1-64 characters of A-Z a-z 0-9 . _ -, not starting with . or -",
                           kind, name),
               EINVAL};
}

Result<void> makeDirs(const fs::path& p) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) return Error{fmt::format("cannot create directory {}: {}", p.string(), ec.message()), ec.value()};
  return {};
}

std::optional<std::uint64_t> parseVersionDir(const std::string& s) {
  if (s.size() < 2 || s[0] != 'v') return std::nullopt;
  auto d = parseDecimal(std::string_view(s).substr(1));
  if (!d || d->saturated || d->value == 0) return std::nullopt;
  return d->value;
}

std::string encodeMeta(const ImageInfo& info) {
  return fmt::format("name={}\nversion={}\nuuid={}\nsha256={}\nsize={}\nimported={}\nsource={}\n", info.identity.name,
                     info.identity.version, uuidToString(info.identity.uuid), toHex(info.identity.sha256),
                     info.identity.size, info.importedAt, info.source);
}

Result<ImageInfo> decodeMeta(const fs::path& path, std::string_view text) {
  ImageInfo info;
  bool haveUuid = false, haveSha = false, haveSize = false;
  auto bad = [&](std::string_view why) {
    return Error{fmt::format("image metadata {} is invalid: {}", path.string(), why), EUCLEAN};
  };
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (line.empty()) continue;
    auto eq = line.find('=');
    if (eq == std::string_view::npos) return bad("a line without '='");
    auto key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "name") {
      info.identity.name = value;
    } else if (key == "version" || key == "size" || key == "imported") {
      auto d = parseDecimal(value);
      if (!d || d->saturated) return bad(fmt::format("{} is not a number", key));
      if (key == "version") info.identity.version = d->value;
      if (key == "size") info.identity.size = d->value, haveSize = true;
      if (key == "imported") info.importedAt = static_cast<std::int64_t>(d->value);
    } else if (key == "uuid") {
      if (!parseUuid(value, info.identity.uuid)) return bad("uuid is malformed");
      haveUuid = true;
    } else if (key == "sha256") {
      if (!fromHex(value, info.identity.sha256)) return bad("sha256 is malformed");
      haveSha = true;
    } else if (key == "source") {
      info.source = value;
    }
  }
  if (!validStoreName(info.identity.name) || info.identity.version == 0 || !haveUuid || !haveSha || !haveSize) {
    return bad("a required key is missing");
  }
  return info;
}

bool allZero(std::span<const std::uint8_t> b) {
  static const std::vector<std::uint8_t> zeros(kImportBlock, 0);
  return std::memcmp(b.data(), zeros.data(), b.size()) == 0;
}

}  // namespace

bool validStoreName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] == '.' || name[0] == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

Result<std::shared_ptr<Store>> Store::open(const fs::path& dir) {
  std::error_code ec;
  auto abs = fs::absolute(dir, ec);
  if (ec) return Error{fmt::format("invalid store directory {}: {}", dir.string(), ec.message()), ec.value()};
  if (auto r = makeDirs(abs / "images"); !r) return r.error();
  if (auto r = makeDirs(abs / "overlays"); !r) return r.error();
  return std::shared_ptr<Store>(new Store(abs));
}

OverlayPaths Store::overlayPaths(std::string_view host) const {
  auto base = dir_ / "overlays" / std::string(host);
  OverlayPaths p;
  p.map = base;
  p.map += ".map";
  p.data = base;
  p.data += ".data";
  return p;
}

Result<std::uint64_t> Store::latestVersion(std::string_view name) const {
  std::error_code ec;
  std::uint64_t best = 0;
  for (const auto& e : fs::directory_iterator(dir_ / "images" / std::string(name), ec)) {
    if (auto v = parseVersionDir(e.path().filename().string()); v && fs::exists(e.path() / "meta")) best = std::max(best, *v);
  }
  if (best == 0) return Error{fmt::format("no image named '{}' in {}", name, dir_.string()), ENOENT};
  return best;
}

Result<ImageInfo> Store::imageInfo(std::string_view name, std::uint64_t version) const {
  if (!validStoreName(name)) return nameError("image", name);
  if (version == 0) {
    auto v = latestVersion(name);
    if (!v) return v.error();
    version = *v;
  }
  auto vdir = dir_ / "images" / std::string(name) / fmt::format("v{}", version);
  auto text = readSmallFile(vdir / "meta", 64 * 1024);
  if (!text) {
    if (text.error().code == ENOENT) {
      return Error{fmt::format("image '{}' has no version {} in {}", name, version, dir_.string()), ENOENT};
    }
    return text.error();
  }
  auto info = decodeMeta(vdir / "meta", *text);
  if (!info) return info.error();
  if (info->identity.name != name || info->identity.version != version) {
    return Error{fmt::format("image metadata {} names {} v{}, not {} v{}", (vdir / "meta").string(),
                             info->identity.name, info->identity.version, name, version),
                 EUCLEAN};
  }
  info->path = vdir / "base.img";
  if (auto a = allocatedBytes(info->path)) info->allocatedBytes = *a;
  return info;
}

Result<std::vector<ImageInfo>> Store::listImages() const {
  std::vector<ImageInfo> out;
  std::error_code ec;
  for (const auto& img : fs::directory_iterator(dir_ / "images", ec)) {
    auto name = img.path().filename().string();
    if (!validStoreName(name) || !img.is_directory()) continue;
    std::error_code ec2;
    for (const auto& v : fs::directory_iterator(img.path(), ec2)) {
      auto ver = parseVersionDir(v.path().filename().string());
      if (!ver) continue;
      auto info = imageInfo(name, *ver);
      if (!info) return info.error();
      out.push_back(std::move(*info));
    }
  }
  if (ec) return Error{fmt::format("cannot list {}: {}", (dir_ / "images").string(), ec.message()), ec.value()};
  std::sort(out.begin(), out.end(), [](const ImageInfo& a, const ImageInfo& b) {
    return std::tie(a.identity.name, a.identity.version) < std::tie(b.identity.name, b.identity.version);
  });
  return out;
}

Result<ImageInfo> Store::importImage(const fs::path& source, std::string_view name, const ProgressFn& progress) {
  if (!validStoreName(name)) return nameError("image", name);
  auto src = openFile(source, O_RDONLY);
  if (!src) return src.error();
  struct stat st {};
  if (::fstat(src->get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Error{fmt::format("{} is not a regular file", source.string()), EINVAL};
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size == 0 || size % 512 != 0 || size > kMaxVirtualSize) {
    return Error{fmt::format("{} is {} bytes: a raw disk image must be a non-zero multiple of 512 bytes",
                             source.string(), size),
                 EINVAL};
  }
  auto imgDir = dir_ / "images" / std::string(name);
  if (auto r = makeDirs(imgDir); !r) return r.error();
  auto lockFd = openFile(imgDir / ".lock", O_RDWR | O_CREAT, 0644);
  if (!lockFd) return lockFd.error();
  if (::flock(lockFd->get(), LOCK_EX) != 0) {
    int err = errno;
    return errnoError(fmt::format("cannot lock {}: {}", (imgDir / ".lock").string(), errnoText(err)), err);
  }
  std::uint64_t version = 1;
  if (auto v = latestVersion(name)) version = *v + 1;

  ImageInfo info;
  info.identity.name = std::string(name);
  info.identity.version = version;
  info.identity.uuid = randomUuid();
  info.identity.size = size;
  info.importedAt = static_cast<std::int64_t>(::time(nullptr));
  info.source = fs::absolute(source).string();
  std::replace(info.source.begin(), info.source.end(), '\n', '?');

  auto stage = imgDir / fmt::format(".import-{}", uuidToString(info.identity.uuid));
  auto cleanup = [&](Error e) -> Result<ImageInfo> {
    std::error_code ec;
    fs::remove_all(stage, ec);
    return e;
  };
  if (auto r = makeDirs(stage); !r) return r.error();
  auto dst = openFile(stage / "base.img", O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (!dst) return cleanup(dst.error());
  if (::ftruncate(dst->get(), static_cast<off_t>(size)) != 0) {
    int err = errno;
    return cleanup(errnoError(fmt::format("cannot size {}: {}", (stage / "base.img").string(), errnoText(err)), err));
  }
  Sha256 sha;
  std::vector<std::uint8_t> buf(kImportBlock);
  std::uint64_t nextReport = 0;
  for (std::uint64_t off = 0; off < size;) {
    auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - off));
    std::span<std::uint8_t> b(buf.data(), n);
    if (auto r = preadFull(src->get(), b, off, source.string()); !r) return cleanup(r.error());
    sha.update(b);
    if (!allZero(b)) {  // zero blocks stay holes: the base is as sparse as its content allows
      if (auto r = pwriteFull(dst->get(), b, off, (stage / "base.img").string()); !r) return cleanup(r.error());
    }
    off += n;
    if (progress && (off >= nextReport || off == size)) {
      progress(off, size);
      nextReport = off + kProgressEvery;
    }
  }
  info.identity.sha256 = sha.finish();
  if (auto r = syncData(dst->get(), "imported image"); !r) return cleanup(r.error());
  ::fchmod(dst->get(), 0444);
  dst->reset();
  auto meta = encodeMeta(info);
  auto metaBytes = std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(meta.data()), meta.size());
  if (auto r = writeFileAtomic(stage / "meta", metaBytes); !r) return cleanup(r.error());
  auto final = imgDir / fmt::format("v{}", version);
  if (::rename(stage.c_str(), final.c_str()) != 0) {
    int err = errno;
    return cleanup(errnoError(fmt::format("cannot rename {} to {}: {}", stage.string(), final.string(), errnoText(err)), err));
  }
  if (auto r = syncDir(imgDir); !r) return r.error();
  (void)syncDir(imgDir.parent_path());
  info.path = final / "base.img";
  if (auto a = allocatedBytes(info.path)) info.allocatedBytes = *a;
  PXD_INFO("blockstore.image.imported", "image={} version={} size={} sha256={} uuid={}", log::q(info.identity.name),
           version, size, toHex(info.identity.sha256), uuidToString(info.identity.uuid));
  return info;
}

Result<std::shared_ptr<RawImage>> Store::openImage(std::string_view name, std::uint64_t version) {
  auto info = imageInfo(name, version);
  if (!info) return info.error();
  std::lock_guard lk(cacheMutex_);
  auto key = std::make_pair(std::string(name), info->identity.version);
  if (auto it = images_.find(key); it != images_.end()) {
    if (auto img = it->second.lock(); img && img->identity() == info->identity) return img;
  }
  auto img = RawImage::open(info->path, info->identity);
  if (!img) return img.error();
  images_[key] = *img;
  return img;
}

Result<void> Store::verifyImage(std::string_view name, std::uint64_t version) const {
  auto info = imageInfo(name, version);
  if (!info) return info.error();
  auto fd = openFile(info->path, O_RDONLY);
  if (!fd) return fd.error();
  auto size = fileSize(fd->get(), info->path.string());
  if (!size) return size.error();
  if (*size != info->identity.size) {
    return Error{fmt::format("{}: size {} differs from the recorded {}", info->path.string(), *size, info->identity.size),
                 EUCLEAN};
  }
  Sha256 sha;
  std::vector<std::uint8_t> buf(kImportBlock);
  for (std::uint64_t off = 0; off < *size;) {
    auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), *size - off));
    std::span<std::uint8_t> b(buf.data(), n);
    if (auto r = preadFull(fd->get(), b, off, info->path.string()); !r) return r;
    sha.update(b);
    off += n;
  }
  if (sha.finish() != info->identity.sha256) {
    return Error{fmt::format("{}: content does not match the recorded sha256 of {}", info->path.string(),
                             info->identity.describe()),
                 EUCLEAN};
  }
  return {};
}

Result<OverlayInfo> Store::overlayInfo(std::string_view host) const {
  if (!validStoreName(host)) return nameError("host", host);
  auto paths = overlayPaths(host);
  if (::access(paths.map.c_str(), F_OK) != 0) {
    return Error{fmt::format("no overlay for host '{}' in {}", host, dir_.string()), ENOENT};
  }
  auto h = readMapHeader(paths.map);
  if (!h) return h.error();
  OverlayInfo info;
  info.host = std::string(host);
  info.base = h->base;
  info.chunkSize = h->chunkSize;
  for (const auto& p : {paths.map, paths.data}) {
    if (auto a = allocatedBytes(p)) info.allocatedBytes += *a;
  }
  if (auto v = latestVersion(h->base.name)) info.latestVersion = *v;
  return info;
}

Result<std::vector<OverlayInfo>> Store::listOverlays() const {
  std::vector<OverlayInfo> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_ / "overlays", ec)) {
    if (e.path().extension() != ".map") continue;
    auto host = e.path().stem().string();
    if (!validStoreName(host)) continue;
    auto info = overlayInfo(host);
    if (!info) return info.error();
    out.push_back(std::move(*info));
  }
  if (ec) return Error{fmt::format("cannot list {}: {}", (dir_ / "overlays").string(), ec.message()), ec.value()};
  std::sort(out.begin(), out.end(), [](const OverlayInfo& a, const OverlayInfo& b) { return a.host < b.host; });
  return out;
}

Result<OverlayInfo> Store::createOverlay(std::string_view host, std::string_view image, CreateOverlayOptions options) {
  if (!validStoreName(host)) return nameError("host", host);
  auto info = imageInfo(image, options.version);
  if (!info) return info.error();
  auto paths = overlayPaths(host);
  if (::access(paths.map.c_str(), F_OK) == 0) {
    return Error{fmt::format("host '{}' already has an overlay (reset or delete it first)", host), EEXIST};
  }
  auto lk = Overlay::lock(paths, true);
  if (!lk) return lk.error();
  if (auto r = Overlay::create(paths, info->identity, options.chunkSize); !r) return r.error();
  PXD_INFO("blockstore.overlay.created", "host={} image={} version={} chunk_size={}", log::q(host),
           log::q(info->identity.name), info->identity.version, options.chunkSize);
  return overlayInfo(host);
}

Result<std::shared_ptr<Overlay>> Store::openOverlay(std::string_view host, OverlayOptions options) {
  auto info = overlayInfo(host);
  if (!info) return info.error();
  auto img = openImage(info->base.name, info->base.version);
  if (!img) {
    return Error{fmt::format("overlay for host '{}' needs base {}: {}", host, info->base.describe(), img.error().message),
                 img.error().code};
  }
  return Overlay::open(overlayPaths(host), std::move(*img), std::move(options));
}

Result<OverlayInfo> Store::resetOverlay(std::string_view host, ResetOptions options) {
  auto cur = overlayInfo(host);
  if (!cur) return cur.error();
  std::uint64_t version = cur->base.version;
  if (options.version) version = *options.version;
  if (options.latest) {
    auto v = latestVersion(cur->base.name);
    if (!v) return v.error();
    version = *v;
  }
  auto target = imageInfo(cur->base.name, version);
  if (!target) return target.error();
  auto paths = overlayPaths(host);
  auto lk = Overlay::lock(paths, true);
  if (!lk) return lk.error();
  if (auto r = Overlay::reset(paths, target->identity, cur->chunkSize); !r) return r.error();
  PXD_INFO("blockstore.overlay.reset", "host={} image={} from_version={} to_version={}", log::q(host),
           log::q(cur->base.name), cur->base.version, version);
  return overlayInfo(host);
}

Result<void> Store::deleteOverlay(std::string_view host) {
  auto cur = overlayInfo(host);
  if (!cur) return cur.error();
  auto paths = overlayPaths(host);
  auto lk = Overlay::lock(paths, true);
  if (!lk) return lk.error();
  if (::unlink(paths.map.c_str()) != 0) {
    int err = errno;
    return errnoError(fmt::format("cannot delete {}: {}", paths.map.string(), errnoText(err)), err);
  }
  if (auto r = syncDir(paths.map.parent_path()); !r) return r;
  // The overlay is gone once its map is; the data file and any stale temporary follow.
  ::unlink(paths.data.c_str());
  auto tmp = paths.map;
  tmp += ".tmp";
  ::unlink(tmp.c_str());
  PXD_INFO("blockstore.overlay.deleted", "host={}", log::q(host));
  return {};
}

}  // namespace pxedust::blockstore
