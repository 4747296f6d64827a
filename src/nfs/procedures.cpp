// NFS v3 procedures of a read-only export; see procedures.hpp for the design.
#include "nfs/procedures.hpp"

#include <algorithm>
#include <cerrno>

#include "nfs/wire/readdir.hpp"

namespace pxedust::nfs {

using wire::Nfsstat3;
namespace proc = wire::nfsproc;

namespace {

// Room for everything a reply holds besides READ data or directory entries: status, post_op_attr,
// handles and the fixed fields of the largest resok (FSINFO), with margin.
constexpr std::size_t kFixedReply = 512;

// Runs `write` on an XdrWriter over `max` new bytes at the end of `out`, then keeps what it wrote.
template <typename F>
void emit(std::vector<std::uint8_t>& out, std::size_t max, F&& write) {
  const std::size_t at = out.size();
  out.resize(at + max);
  wire::XdrWriter w(std::span<std::uint8_t>(out).subspan(at));
  write(w);
  out.resize(at + (w.ok() ? w.size() : 0));
}

wire::CookieVerf verifierFor(const Export& e) {
  wire::CookieVerf v{};
  for (std::size_t i = 0; i < 4; ++i) v[4 + i] = static_cast<std::uint8_t>(e.version >> (24 - 8 * i));
  return v;
}

}  // namespace

Nfsstat3 statusFor(int code) {
  switch (code) {
    case ENOENT: return Nfsstat3::NoEnt;
    case ENOTDIR: return Nfsstat3::NotDir;
    case EISDIR: return Nfsstat3::IsDir;
    case EINVAL: return Nfsstat3::Inval;
    case ENAMETOOLONG: return Nfsstat3::NameTooLong;
    case ESTALE: return Nfsstat3::Stale;
    case EACCES: return Nfsstat3::Acces;
    default: return Nfsstat3::Io;
  }
}

std::uint32_t accessFor(const Attr& a, const wire::AuthSys* caller, std::uint32_t want) {
  namespace acc = wire::access3;
  const bool dir = a.type == wire::Ftype3::Dir;
  std::uint32_t bits = 0;  // rwx the caller has
  if (caller != nullptr && caller->uid == 0) {
    bits = 06 | ((a.mode & 0111) != 0 || dir ? 01 : 0);
  } else if (caller != nullptr) {
    bool inGroup = caller->gid == a.gid;
    for (std::uint32_t i = 0; i < caller->gidCount && i < caller->gids.size(); ++i) inGroup |= caller->gids[i] == a.gid;
    if (caller->uid == a.uid) bits = (a.mode >> 6) & 07;
    else if (inGroup) bits = (a.mode >> 3) & 07;
    else bits = a.mode & 07;
  } else {
    bits = a.mode & 07;  // AUTH_NONE: as anybody
  }
  std::uint32_t granted = 0;
  if ((bits & 04) != 0) granted |= acc::kRead;
  if ((bits & 01) != 0) granted |= dir ? acc::kLookup : acc::kExecute;
  return granted & want;  // never MODIFY, EXTEND or DELETE: the export is read-only
}

Result<wire::HandleBytes> Procedures::rootHandle(const Export& e) const {
  auto a = e.fs->getattr(e.fs->rootInode());
  if (!a) return a.error();
  return handleFor(e, *a);
}

Result<wire::HandleBytes> Procedures::handleAt(const Export& e, std::string_view subdir) const {
  std::uint64_t ino = e.fs->rootInode();
  while (!subdir.empty()) {
    const auto slash = subdir.find('/');
    const std::string_view name = subdir.substr(0, slash);
    subdir = slash == std::string_view::npos ? std::string_view{} : subdir.substr(slash + 1);
    if (name.empty() || name == ".") continue;
    if (name == ".." || !wire::validFilename3(name)) return Error{"no such directory", ENOENT};
    auto next = e.fs->lookup(ino, name);
    if (!next) return next.error();
    auto a = e.fs->getattr(*next);
    if (!a) return a.error();
    if (a->type != wire::Ftype3::Dir) return Error{std::string(name) + " is not a directory", ENOTDIR};
    ino = *next;
  }
  auto a = e.fs->getattr(ino);
  if (!a) return a.error();
  return handleFor(e, *a);
}

wire::HandleBytes Procedures::handleFor(const Export& e, const Attr& a) const {
  return wire::encodeHandle(wire::FileHandle{e.image, e.version, a.inode, a.generation}, key_);
}

wire::Fattr3 Procedures::fattr(const Export& e, const Attr& a) const {
  wire::Fattr3 f;
  f.type = a.type;
  f.mode = a.mode & 07777;
  f.nlink = a.nlink;
  f.uid = a.uid;
  f.gid = a.gid;
  f.size = a.size;
  f.used = a.used;
  f.rdev = {a.rdevMajor, a.rdevMinor};
  f.fsid = e.fsid;
  f.fileid = a.inode;
  f.atime = a.atime;
  f.mtime = a.mtime;
  f.ctime = a.ctime;
  return f;
}

Nfsstat3 Procedures::resolve(wire::Fh3 fh, Target& out) const {
  wire::FileHandle h;
  if (auto s = wire::decodeHandle(fh, key_, h); s != Nfsstat3::Ok) return s;
  out.exp = resolver_ ? resolver_(h.image, h.imageVersion) : nullptr;
  if (!out.exp || !out.exp->fs) return Nfsstat3::Stale;
  auto a = out.exp->fs->getattr(h.inode);
  if (!a) return a.error().code == ENOENT || a.error().code == EINVAL ? Nfsstat3::Stale : statusFor(a.error().code);
  if (a->generation != h.generation) return Nfsstat3::Stale;  // the inode was reused: not the file named
  out.attr = *a;
  return Nfsstat3::Ok;
}

bool Procedures::dispatch(const wire::Call& call, std::vector<std::uint8_t>& out) const {
  switch (call.procedure) {
    case proc::kNull: return true;
    case proc::kGetattr: return getattr(call, out);
    case proc::kLookup: return lookup(call, out);
    case proc::kAccess: return access(call, out);
    case proc::kReadlink: return readlink(call, out);
    case proc::kRead: return read(call, out);
    case proc::kReaddir: return readdir(call, false, out);
    case proc::kReaddirplus: return readdir(call, true, out);
    case proc::kFsstat: return fsstat(call, out);
    case proc::kFsinfo: return fsinfo(call, out);
    case proc::kPathconf: return pathconf(call, out);
    default: return modify(call, out);
  }
}

bool Procedures::dispatchAcl(const wire::Call& call, std::vector<std::uint8_t>& out) const {
  if (call.procedure == wire::aclproc::kNull) return true;
  if (call.procedure == wire::aclproc::kSetacl) {
    // Its arguments start with the handle; the ACLs after it need no decoding to be refused.
    if (!wire::decodeFhArgs(call.args)) return false;
    emit(out, 4, [](wire::XdrWriter& w) { wire::encodeAclFailure(w, Nfsstat3::Rofs); });
    return true;
  }
  auto args = wire::decodeGetaclArgs(call.args);
  if (!args) return false;
  Target t;
  Nfsstat3 s = resolve(args->object, t);
  if (s == Nfsstat3::Ok && (args->mask & ~wire::aclmask::kAll) != 0) s = Nfsstat3::Inval;
  std::vector<wire::AclEntry> acls[2];  // access, default
  for (int i = 0; i < 2 && s == Nfsstat3::Ok; ++i) {
    auto a = t.exp->fs->acl(t.attr.inode, i == 1);
    if (!a) {
      s = statusFor(a.error().code);
      break;
    }
    acls[i] = std::move(*a);
    if (acls[i].size() > wire::kMaxAclEntries) s = Nfsstat3::Io;
    for (auto& e : acls[i]) {  // the ids the client expects on the owner's entries
      if (e.tag == wire::acltag::kUserObj) e.id = t.attr.uid;
      if (e.tag == wire::acltag::kGroupObj) e.id = t.attr.gid;
    }
  }
  const std::size_t size = wire::getaclOkSize(acls[0].size(), acls[1].size());
  emit(out, std::max(size, kFixedReply), [&](wire::XdrWriter& w) {
    if (s != Nfsstat3::Ok) return wire::encodeAclFailure(w, s);
    wire::encodeGetaclOk(w, fattr(*t.exp, t.attr), args->mask, acls[0], acls[1]);
  });
  return true;
}

bool Procedures::getattr(const wire::Call& c, std::vector<std::uint8_t>& out) const {
  auto args = wire::decodeFhArgs(c.args);
  if (!args) return false;
  Target t;
  const Nfsstat3 s = resolve(args->object, t);
  emit(out, kFixedReply, [&](wire::XdrWriter& w) {
    if (s == Nfsstat3::Ok) wire::encodeGetattrOk(w, fattr(*t.exp, t.attr));
    else wire::encodeFailure(w, c.procedure, s, std::nullopt);
  });
  return true;
}

bool Procedures::lookup(const wire::Call& c, std::vector<std::uint8_t>& out) const {
  auto args = wire::decodeLookupArgs(c.args);
  if (!args) return false;
  Target dir;
  Nfsstat3 s = resolve(args->dir, dir);
  wire::PostOpAttr dirAttr = s == Nfsstat3::Ok ? wire::PostOpAttr(fattr(*dir.exp, dir.attr)) : std::nullopt;
  Attr found;
  if (s == Nfsstat3::Ok && dir.attr.type != wire::Ftype3::Dir) s = Nfsstat3::NotDir;
  if (s == Nfsstat3::Ok) {
    auto ino = dir.exp->fs->lookup(dir.attr.inode, args->name);
    if (!ino) {
      s = statusFor(ino.error().code);
    } else if (auto a = dir.exp->fs->getattr(*ino); !a) {
      s = statusFor(a.error().code);
    } else {
      found = *a;
    }
  }
  emit(out, kFixedReply, [&](wire::XdrWriter& w) {
    if (s != Nfsstat3::Ok) return wire::encodeFailure(w, c.procedure, s, dirAttr);
    const auto h = handleFor(*dir.exp, found);
    wire::encodeLookupOk(w, h, fattr(*dir.exp, found), dirAttr);
  });
  return true;
}

bool Procedures::access(const wire::Call& c, std::vector<std::uint8_t>& out) const {
  auto args = wire::decodeAccessArgs(c.args);
  if (!args) return false;
  Target t;
  const Nfsstat3 s = resolve(args->object, t);
  emit(out, kFixedReply, [&](wire::XdrWriter& w) {
    if (s != Nfsstat3::Ok) return wire::encodeFailure(w, c.procedure, s, std::nullopt);
    wire::encodeAccessOk(w, fattr(*t.exp, t.attr), accessFor(t.attr, c.sys ? &*c.sys : nullptr, args->access));
  });
  return true;
}

bool Procedures::readlink(const wire::Call& c, std::vector<std::uint8_t>& out) const {
  auto args = wire::decodeFhArgs(c.args);
  if (!args) return false;
  Target t;
  Nfsstat3 s = resolve(args->object, t);
  std::string text;
  if (s == Nfsstat3::Ok && t.attr.type != wire::Ftype3::Lnk) s = Nfsstat3::Inval;
  if (s == Nfsstat3::Ok) {
    auto r = t.exp->fs->readlink(t.attr.inode);
    if (!r) s = statusFor(r.error().code);
    else if (r->size() > wire::kMaxPathLen) s = Nfsstat3::NameTooLong;
    else text = std::move(*r);
  }
  emit(out, kFixedReply + text.size(), [&](wire::XdrWriter& w) {
    const wire::PostOpAttr attr = t.exp ? wire::PostOpAttr(fattr(*t.exp, t.attr)) : std::nullopt;
    if (s != Nfsstat3::Ok) return wire::encodeFailure(w, c.procedure, s, attr);
    wire::encodeReadlinkOk(w, attr, text);
  });
  return true;
}

bool Procedures::read(const wire::Call& c, std::vector<std::uint8_t>& out) const {
  auto args = wire::decodeReadArgs(c.args);
  if (!args) return false;
  Target t;
  Nfsstat3 s = resolve(args->file, t);
  if (s == Nfsstat3::Ok && t.attr.type == wire::Ftype3::Dir) s = Nfsstat3::IsDir;
  else if (s == Nfsstat3::Ok && t.attr.type != wire::Ftype3::Reg) s = Nfsstat3::Inval;
  const wire::PostOpAttr attr = t.exp ? wire::PostOpAttr(fattr(*t.exp, t.attr)) : std::nullopt;
  if (s == Nfsstat3::Ok) {
    // Never past the end, never more than rtmax: a peer's count sizes nothing beyond these.
    const std::uint64_t left = args->offset >= t.attr.size ? 0 : t.attr.size - args->offset;
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>({args->count, limits_.readMax, left}));
    // The reply's head, then the file's bytes read straight into place after it (no copy), then
    // the XDR padding; the head is written once the count is known.
    const std::size_t at = out.size();
    const std::size_t head = wire::readOkHeadSize(attr);
    out.resize(at + head + n + 3);
    std::size_t got = 0;
    if (n > 0) {
      auto r = t.exp->fs->read(t.attr.inode, args->offset, std::span<std::uint8_t>(out).subspan(at + head, n));
      if (r) got = *r;
      else s = statusFor(r.error().code);
    }
    if (s == Nfsstat3::Ok) {
      wire::XdrWriter w(std::span<std::uint8_t>(out).subspan(at, head));
      wire::encodeReadOkHead(w, attr, args->offset + got >= t.attr.size, static_cast<std::uint32_t>(got));
      const std::size_t end = at + head + got;
      std::fill(out.begin() + static_cast<std::ptrdiff_t>(end), out.begin() + static_cast<std::ptrdiff_t>(end + 3), 0);
      out.resize(end + (4 - got % 4) % 4);
      return true;
    }
    out.resize(at);
  }
  emit(out, kFixedReply, [&](wire::XdrWriter& w) { wire::encodeFailure(w, c.procedure, s, attr); });
  return true;
}

bool Procedures::readdir(const wire::Call& c, bool plus, std::vector<std::uint8_t>& out) const {
  auto args = plus ? wire::decodeReaddirplusArgs(c.args) : wire::decodeReaddirArgs(c.args);
  if (!args) return false;
  Target t;
  Nfsstat3 s = resolve(args->dir, t);
  if (s == Nfsstat3::Ok && t.attr.type != wire::Ftype3::Dir) s = Nfsstat3::NotDir;
  // A cookie of another listing (another image version) cannot be resumed: §3.3.16 BAD_COOKIE.
  if (s == Nfsstat3::Ok && args->cookie != 0 && args->verf != verifierFor(*t.exp)) s = Nfsstat3::BadCookie;
  const wire::PostOpAttr dirAttr = t.exp ? wire::PostOpAttr(fattr(*t.exp, t.attr)) : std::nullopt;
  if (s != Nfsstat3::Ok) {
    emit(out, kFixedReply, [&](wire::XdrWriter& w) { wire::encodeFailure(w, c.procedure, s, dirAttr); });
    return true;
  }
  const std::uint32_t limit = std::min(plus ? args->maxcount : args->count, limits_.dirMax);
  const std::size_t at = out.size();
  out.resize(at + limit + kFixedReply);
  auto enc = plus ? wire::DirEncoder::readdirplus(std::span(out).subspan(at), args->dircount, limit, dirAttr,
                                                   verifierFor(*t.exp))
                  : wire::DirEncoder::readdir(std::span(out).subspan(at), limit, dirAttr, verifierFor(*t.exp));
  auto& fs = *t.exp->fs;
  Nfsstat3 failed = Nfsstat3::Ok;
  auto listed = fs.readdir(t.attr.inode, args->cookie, [&](const DirItem& item) {
    wire::DirEntry e;
    e.fileid = item.inode;
    e.name = item.name;
    e.cookie = item.cookie;
    wire::HandleBytes h{};
    if (plus) {
      auto a = fs.getattr(item.inode);
      if (!a) {
        failed = statusFor(a.error().code);
        return false;
      }
      e.attr = fattr(*t.exp, *a);
      h = handleFor(*t.exp, *a);
      e.handle = h;
    }
    return enc.add(e);
  });
  if (!listed || failed != Nfsstat3::Ok) {
    out.resize(at);
    const Nfsstat3 why = !listed ? statusFor(listed.error().code) : failed;
    emit(out, kFixedReply, [&](wire::XdrWriter& w) { wire::encodeFailure(w, c.procedure, why, dirAttr); });
    return true;
  }
  enc.finish(*listed && !enc.full());
  const std::size_t written = enc.ok() ? enc.written().size() : 0;
  out.resize(at + written);
  return true;
}

bool Procedures::fsstat(const wire::Call& c, std::vector<std::uint8_t>& out) const {
  auto args = wire::decodeFhArgs(c.args);
  if (!args) return false;
  Target t;
  Nfsstat3 s = resolve(args->object, t);
  FileSystem::Stat st;
  if (s == Nfsstat3::Ok) {
    auto r = t.exp->fs->statfs();
    if (!r) s = statusFor(r.error().code);
    else st = *r;
  }
  emit(out, kFixedReply, [&](wire::XdrWriter& w) {
    const wire::PostOpAttr attr = t.exp ? wire::PostOpAttr(fattr(*t.exp, t.attr)) : std::nullopt;
    if (s != Nfsstat3::Ok) return wire::encodeFailure(w, c.procedure, s, attr);
    // Read-only: nothing is available to the client, whatever the image has free.
    wire::FsstatOk r{st.totalBytes, st.freeBytes, 0, st.totalFiles, st.freeFiles, 0, 0xffffffffu};
    wire::encodeFsstatOk(w, attr, r);
  });
  return true;
}

bool Procedures::fsinfo(const wire::Call& c, std::vector<std::uint8_t>& out) const {
  auto args = wire::decodeFhArgs(c.args);
  if (!args) return false;
  Target t;
  const Nfsstat3 s = resolve(args->object, t);
  emit(out, kFixedReply, [&](wire::XdrWriter& w) {
    const wire::PostOpAttr attr = t.exp ? wire::PostOpAttr(fattr(*t.exp, t.attr)) : std::nullopt;
    if (s != Nfsstat3::Ok) return wire::encodeFailure(w, c.procedure, s, attr);
    wire::FsinfoOk r;
    r.rtmax = r.rtpref = limits_.readMax;
    r.rtmult = 4096;
    // Writes are refused (ROFS); the sizes still have to be sane for the client's mount.
    r.wtmax = r.wtpref = limits_.readMax;
    r.wtmult = 4096;
    r.dtpref = std::min<std::uint32_t>(limits_.dirMax, 64u << 10);
    r.maxfilesize = ~std::uint64_t{0} >> 1;
    r.timeDelta = {0, 1};
    r.properties = wire::fsf3::kLink | wire::fsf3::kSymlink | wire::fsf3::kHomogeneous;
    wire::encodeFsinfoOk(w, attr, r);
  });
  return true;
}

bool Procedures::pathconf(const wire::Call& c, std::vector<std::uint8_t>& out) const {
  auto args = wire::decodeFhArgs(c.args);
  if (!args) return false;
  Target t;
  const Nfsstat3 s = resolve(args->object, t);
  emit(out, kFixedReply, [&](wire::XdrWriter& w) {
    const wire::PostOpAttr attr = t.exp ? wire::PostOpAttr(fattr(*t.exp, t.attr)) : std::nullopt;
    if (s != Nfsstat3::Ok) return wire::encodeFailure(w, c.procedure, s, attr);
    wire::PathconfOk r;
    r.linkmax = 65000;  // ext4's EXT4_LINK_MAX
    r.nameMax = wire::kMaxNameLen;
    wire::encodePathconfOk(w, attr, r);
  });
  return true;
}

bool Procedures::modify(const wire::Call& c, std::vector<std::uint8_t>& out) const {
  auto args = wire::decodeModifyArgs(c.procedure, c.args);
  if (!args) return false;
  // wcc_data: no "before" (nothing changed, so nothing to compare), "after" when the handle is ours.
  auto wcc = [&](wire::Fh3 fh) {
    wire::WccData d;
    Target t;
    if (resolve(fh, t) == Nfsstat3::Ok) d.after = fattr(*t.exp, t.attr);
    return d;
  };
  const wire::WccData first = wcc(args->first);
  const wire::WccData second = args->second ? wcc(*args->second) : wire::WccData{};
  emit(out, kFixedReply, [&](wire::XdrWriter& w) {
    wire::encodeModifyFailure(w, c.procedure, Nfsstat3::Rofs, first, second,
                              c.procedure == proc::kLink ? first.after : std::nullopt);
  });
  return true;
}

}  // namespace pxedust::nfs
