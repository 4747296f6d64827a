#include "nfs/exports.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "common/fd.hpp"
#include "common/log.hpp"
#include "imagefs/image_fs.hpp"

namespace pxedust::nfs {
namespace {

constexpr std::string_view kPrefix = "/images/";
constexpr auto kRecheck = std::chrono::seconds(1);

wire::Ftype3 ftype(imagefs::FileType t) {
  switch (t) {
    case imagefs::FileType::Directory: return wire::Ftype3::Dir;
    case imagefs::FileType::Symlink: return wire::Ftype3::Lnk;
    case imagefs::FileType::CharDevice: return wire::Ftype3::Chr;
    case imagefs::FileType::BlockDevice: return wire::Ftype3::Blk;
    case imagefs::FileType::Fifo: return wire::Ftype3::Fifo;
    case imagefs::FileType::Socket: return wire::Ftype3::Sock;
    default: return wire::Ftype3::Reg;
  }
}

wire::NfsTime3 nfsTime(const imagefs::Timestamp& t) {
  // nfstime3 has 32 unsigned bits of seconds: before 1970 is 0, after 2106 the largest.
  const auto s = std::clamp<std::int64_t>(t.seconds, 0, UINT32_MAX);
  return {static_cast<std::uint32_t>(s), t.nanoseconds};
}

// nfs::FileSystem over imagefs::ImageFs.
class ImageFileSystem final : public FileSystem {
 public:
  explicit ImageFileSystem(std::shared_ptr<imagefs::ImageFs> fs) : fs_(std::move(fs)) {}
  [[nodiscard]] std::uint64_t rootInode() const override { return imagefs::kRootIno; }
  Result<Attr> getattr(std::uint64_t inode) override {
    auto a = fs_->getattr(inode);
    if (!a) return a.error();
    Attr out;
    out.type = ftype(a->type);
    out.mode = a->mode & 07777;
    out.nlink = a->nlink;
    out.uid = a->uid;
    out.gid = a->gid;
    out.size = a->size;
    out.used = a->usedBytes;
    out.rdevMajor = a->rdevMajor;
    out.rdevMinor = a->rdevMinor;
    out.inode = a->ino;
    out.generation = a->generation;
    out.atime = nfsTime(a->atime);
    out.mtime = nfsTime(a->mtime);
    out.ctime = nfsTime(a->ctime);
    return out;
  }
  Result<std::uint64_t> lookup(std::uint64_t dir, std::string_view name) override {
    auto r = fs_->lookup(dir, name);
    if (!r) return r.error();
    return std::uint64_t{*r};
  }
  Result<std::vector<wire::AclEntry>> acl(std::uint64_t inode, bool dflt) override {
    auto r = fs_->acl(inode, dflt ? imagefs::AclKind::Default : imagefs::AclKind::Access);
    if (!r) return r.error();
    std::vector<wire::AclEntry> out;
    out.reserve(r->size());
    for (const auto& e : *r) out.push_back(wire::AclEntry{e.tag, e.id, e.perm});
    return out;
  }
  Result<bool> readdir(std::uint64_t dir, std::uint64_t cookie, const std::function<bool(const DirItem&)>& visit) override {
    auto r = fs_->readdir(dir, cookie, [&](const imagefs::DirEntry& e) { return visit(DirItem{e.ino, e.name, e.cookie}); });
    if (!r) return r.error();
    return r->eof;
  }
  Result<std::string> readlink(std::uint64_t inode) override { return fs_->readlink(inode); }
  Result<std::size_t> read(std::uint64_t inode, std::uint64_t offset, std::span<std::uint8_t> out) override {
    auto r = fs_->read(inode, offset, out);
    if (!r) return r.error();
    return r->bytes;
  }
  Result<Stat> statfs() override {
    auto s = fs_->statfs();
    if (!s) return s.error();
    return Stat{s->blocks * s->blockSize, s->freeBlocks * s->blockSize, s->inodes, s->freeInodes};
  }

 private:
  std::shared_ptr<imagefs::ImageFs> fs_;
};

std::uint64_t fsidOf(const wire::ImageId& id) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = v << 8 | id[i];
  return v;
}

}  // namespace

std::optional<ExportPath> parseExportPath(std::string_view path) {
  if (!path.starts_with(kPrefix)) return std::nullopt;
  path.remove_prefix(kPrefix.size());
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);  // "/images/debian/" too
  auto next = [&path]() {
    const auto slash = path.find('/');
    const std::string_view part = path.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
    return part;
  };
  ExportPath out;
  const std::string_view name = next();
  if (!blockstore::validStoreName(name)) return std::nullopt;
  out.image = std::string(name);
  const auto slash = path.find('/');
  const std::string_view v = path.substr(0, slash);
  std::uint64_t version = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), version);
  if (!v.empty() && ec == std::errc() && end == v.data() + v.size()) {
    if (version == 0) return std::nullopt;
    out.version = version;
    next();
  }
  out.subdir = std::string(path);
  return out;
}

const inventory::Host* ExportRules::admitting(std::string_view image, const asio::ip::address& peer) const {
  if (!hosts_) return nullptr;
  // The host at that address first: another host of the image may admit any address (no ip, no
  // iscsi_allow), and the mount is filed under the host that made it.
  if (const auto v4 = inventory::peerIpv4(peer))
    if (const auto* h = hosts_->byIp(*v4); h && h->disk.image && *h->disk.image == image && h->admitsAddress(peer))
      return h;
  for (const auto& h : hosts_->hosts())
    if (h.disk.image && *h.disk.image == image && h.admitsAddress(peer)) return &h;
  return nullptr;
}

FsOpener imageFsOpener() {
  return [](const std::filesystem::path& image) -> Result<std::shared_ptr<FileSystem>> {
    auto fs = imagefs::ImageFs::open(image);
    if (!fs) return fs.error();
    return std::shared_ptr<FileSystem>(std::make_shared<ImageFileSystem>(std::move(*fs)));
  };
}

std::shared_ptr<const Export> ImageExports::byHandle(const wire::ImageId& id, std::uint32_t version) {
  std::lock_guard lock(mu_);
  auto it = byId_.find(id);
  if (it == byId_.end()) {
    // Not opened by this process yet (a handle from before a restart): find that uuid in the store.
    auto images = store_->listImages();
    if (!images) return nullptr;
    for (const auto& info : *images) {
      if (info.identity.uuid != id) continue;
      auto opened = openLocked(info);
      return opened && (*opened)->version == version ? *opened : nullptr;
    }
    return nullptr;
  }
  auto& e = it->second;
  const auto now = std::chrono::steady_clock::now();
  if (now - e.checked >= kRecheck) {
    std::error_code ec;
    if (!std::filesystem::exists(e.file, ec)) {
      PXD_INFO("nfs.export_gone", "image={} version={} uuid_file={}", e.name, e.exp->version, log::q(e.file.string()));
      byId_.erase(it);
      return nullptr;
    }
    e.checked = now;
  }
  if (e.exp->version != version) return nullptr;
  return e.exp;
}

Result<std::shared_ptr<const Export>> ImageExports::openLocked(const blockstore::ImageInfo& info) {
  auto fs = opener_(info.path);
  if (!fs) return Error{info.identity.describe() + ": " + fs.error().message, fs.error().code};
  auto exp = std::make_shared<Export>();
  exp->image = info.identity.uuid;
  exp->version = static_cast<std::uint32_t>(info.identity.version);
  exp->fsid = fsidOf(exp->image);
  exp->fs = std::move(*fs);
  byId_[exp->image] = Entry{exp, info.path, info.identity.name, std::chrono::steady_clock::now()};
  PXD_INFO("nfs.export_opened", "image={} version={}", info.identity.name, info.identity.version);
  return std::shared_ptr<const Export>(std::move(exp));
}

Result<std::shared_ptr<const Export>> ImageExports::byPath(std::string_view name, std::uint64_t version) {
  auto info = store_->imageInfo(name, version);
  if (!info) return Error{info.error().message, ENOENT};
  if (info->identity.version > UINT32_MAX) return Error{"image version too large for a file handle", EINVAL};
  std::lock_guard lock(mu_);
  if (auto it = byId_.find(info->identity.uuid); it != byId_.end()) return it->second.exp;
  return openLocked(*info);
}

Result<std::vector<std::pair<std::string, std::string>>> ImageExports::paths() const {
  auto images = store_->listImages();
  if (!images) return images.error();
  std::vector<std::pair<std::string, std::string>> out;
  std::map<std::string, bool> names;
  for (const auto& info : *images) {
    names[info.identity.name] = true;
    out.emplace_back(fmt::format("{}{}/{}", kPrefix, info.identity.name, info.identity.version), info.identity.name);
  }
  for (const auto& [n, unused] : names) out.emplace_back(fmt::format("{}{}", kPrefix, n), n);
  return out;
}

std::size_t ImageExports::open() const {
  std::lock_guard lock(mu_);
  return byId_.size();
}

Result<wire::HandleKey> loadHandleKey(const std::filesystem::path& storeDir) {
  const auto path = storeDir / "nfs-handle.key";
  wire::HandleKey key{};
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd) {
    const ssize_t n = ::read(fd.get(), key.data(), key.size());
    if (n != static_cast<ssize_t>(key.size()))
      return Error{fmt::format("{}: expected {} bytes of key", path.string(), key.size()), EINVAL};
    return key;
  }
  if (errno != ENOENT) return Error{fmt::format("{}: {}", path.string(), std::strerror(errno)), errno};
  if (::getrandom(key.data(), key.size(), 0) != static_cast<ssize_t>(key.size()))
    return Error{"getrandom: " + std::string(std::strerror(errno)), errno};
  // Made under a temporary name and linked into place: a crash leaves no half key for the next start
  // to trust, and of two processes making one at once, the second reads the first's.
  const auto tmp = storeDir / fmt::format("nfs-handle.key.{}.tmp", ::getpid());
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out) return Error{fmt::format("{}: {}", tmp.string(), std::strerror(errno)), errno};
  const bool written = ::write(out.get(), key.data(), key.size()) == static_cast<ssize_t>(key.size()) && ::fsync(out.get()) == 0;
  const int writeErrno = errno;
  out.reset();
  const bool linked = written && ::link(tmp.c_str(), path.c_str()) == 0;
  const int linkErrno = errno;
  ::unlink(tmp.c_str());
  if (!written) return Error{fmt::format("{}: {}", tmp.string(), std::strerror(writeErrno)), writeErrno};
  if (!linked) {
    if (linkErrno == EEXIST) return loadHandleKey(storeDir);
    return Error{fmt::format("{}: {}", path.string(), std::strerror(linkErrno)), linkErrno};
  }
  if (UniqueFd dir(::open(storeDir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); dir) ::fsync(dir.get());
  PXD_INFO("nfs.handle_key_created", "path={}", log::q(path.string()));
  return key;
}

}  // namespace pxedust::nfs
