#include "nfs/wire/nfs3.hpp"

#include <algorithm>
#include <string>

namespace pxedust::nfs::wire {

std::string_view nfsstat3Name(Nfsstat3 s) {
  switch (s) {
    case Nfsstat3::Ok: return "NFS3_OK";
    case Nfsstat3::Perm: return "NFS3ERR_PERM";
    case Nfsstat3::NoEnt: return "NFS3ERR_NOENT";
    case Nfsstat3::Io: return "NFS3ERR_IO";
    case Nfsstat3::Nxio: return "NFS3ERR_NXIO";
    case Nfsstat3::Acces: return "NFS3ERR_ACCES";
    case Nfsstat3::Exist: return "NFS3ERR_EXIST";
    case Nfsstat3::Xdev: return "NFS3ERR_XDEV";
    case Nfsstat3::NoDev: return "NFS3ERR_NODEV";
    case Nfsstat3::NotDir: return "NFS3ERR_NOTDIR";
    case Nfsstat3::IsDir: return "NFS3ERR_ISDIR";
    case Nfsstat3::Inval: return "NFS3ERR_INVAL";
    case Nfsstat3::FBig: return "NFS3ERR_FBIG";
    case Nfsstat3::NoSpc: return "NFS3ERR_NOSPC";
    case Nfsstat3::Rofs: return "NFS3ERR_ROFS";
    case Nfsstat3::MLink: return "NFS3ERR_MLINK";
    case Nfsstat3::NameTooLong: return "NFS3ERR_NAMETOOLONG";
    case Nfsstat3::NotEmpty: return "NFS3ERR_NOTEMPTY";
    case Nfsstat3::DQuot: return "NFS3ERR_DQUOT";
    case Nfsstat3::Stale: return "NFS3ERR_STALE";
    case Nfsstat3::Remote: return "NFS3ERR_REMOTE";
    case Nfsstat3::BadHandle: return "NFS3ERR_BADHANDLE";
    case Nfsstat3::NotSync: return "NFS3ERR_NOT_SYNC";
    case Nfsstat3::BadCookie: return "NFS3ERR_BAD_COOKIE";
    case Nfsstat3::NotSupp: return "NFS3ERR_NOTSUPP";
    case Nfsstat3::TooSmall: return "NFS3ERR_TOOSMALL";
    case Nfsstat3::ServerFault: return "NFS3ERR_SERVERFAULT";
    case Nfsstat3::BadType: return "NFS3ERR_BADTYPE";
    case Nfsstat3::Jukebox: return "NFS3ERR_JUKEBOX";
  }
  return "NFS3ERR_?";
}

namespace {

Error garbage(const XdrReader& r, std::string_view what) {
  return Error{std::string(what) + ": " + std::string(xdrErrorName(r.error())), static_cast<int>(r.error())};
}

void writeTime(XdrWriter& w, const NfsTime3& t) {
  w.u32(t.seconds);
  w.u32(t.nseconds);
}

NfsTime3 readTime(XdrReader& r) {
  NfsTime3 t;
  t.seconds = r.u32();
  t.nseconds = r.u32();
  return t;
}

void writeStatus(XdrWriter& w, Nfsstat3 s) { w.u32(static_cast<std::uint32_t>(s)); }

}  // namespace

// ---- Data types ----

void writeFattr3(XdrWriter& w, const Fattr3& a) {
  w.u32(static_cast<std::uint32_t>(a.type));
  w.u32(a.mode);
  w.u32(a.nlink);
  w.u32(a.uid);
  w.u32(a.gid);
  w.u64(a.size);
  w.u64(a.used);
  w.u32(a.rdev.major);
  w.u32(a.rdev.minor);
  w.u64(a.fsid);
  w.u64(a.fileid);
  writeTime(w, a.atime);
  writeTime(w, a.mtime);
  writeTime(w, a.ctime);
}

void writePostOpAttr(XdrWriter& w, const PostOpAttr& a) {
  w.boolean(a.has_value());
  if (a) writeFattr3(w, *a);
}

void writeWccData(XdrWriter& w, const WccData& d) {
  w.boolean(d.before.has_value());
  if (d.before) {
    w.u64(d.before->size);
    writeTime(w, d.before->mtime);
    writeTime(w, d.before->ctime);
  }
  writePostOpAttr(w, d.after);
}

void writeFh3(XdrWriter& w, Fh3 fh) { w.opaque(fh); }

Fattr3 readFattr3(XdrReader& r) {
  Fattr3 a;
  const std::uint32_t type = r.u32();
  if (type < static_cast<std::uint32_t>(Ftype3::Reg) || type > static_cast<std::uint32_t>(Ftype3::Fifo)) {
    r.fail(XdrError::BadValue);
  }
  a.type = r.ok() ? static_cast<Ftype3>(type) : Ftype3::Reg;
  a.mode = r.u32();
  a.nlink = r.u32();
  a.uid = r.u32();
  a.gid = r.u32();
  a.size = r.u64();
  a.used = r.u64();
  a.rdev.major = r.u32();
  a.rdev.minor = r.u32();
  a.fsid = r.u64();
  a.fileid = r.u64();
  a.atime = readTime(r);
  a.mtime = readTime(r);
  a.ctime = readTime(r);
  return a;
}

PostOpAttr readPostOpAttr(XdrReader& r) {
  if (!r.boolean()) return std::nullopt;
  Fattr3 a = readFattr3(r);
  if (!r.ok()) return std::nullopt;
  return a;
}

Fh3 readFh3(XdrReader& r) { return r.opaque(kFhSize3); }

bool validFilename3(std::string_view name) {
  return !name.empty() && name.size() <= kMaxNameLen && name.find_first_of(std::string_view("/\0", 2)) == std::string_view::npos;
}

std::string_view readFilename3(XdrReader& r) {
  auto name = r.string(kMaxNameLen);
  if (!r.ok()) return {};
  if (!validFilename3(name)) {
    r.fail(XdrError::BadValue);
    return {};
  }
  return name;
}

// ---- Arguments ----

Result<FhArgs> decodeFhArgs(std::span<const std::uint8_t> args) {
  XdrReader r(args);
  FhArgs a{readFh3(r)};
  if (!r.ok()) return garbage(r, "nfs_fh3");
  return a;
}

Result<GetaclArgs> decodeGetaclArgs(std::span<const std::uint8_t> args) {
  XdrReader r(args);
  GetaclArgs a;
  a.object = readFh3(r);
  a.mask = r.u32();
  if (!r.ok()) return garbage(r, "GETACL3args");
  return a;
}

Result<DirOpArgs> decodeLookupArgs(std::span<const std::uint8_t> args) {
  XdrReader r(args);
  DirOpArgs a;
  a.dir = readFh3(r);
  a.name = readFilename3(r);
  if (!r.ok()) return garbage(r, "diropargs3");
  return a;
}

Result<AccessArgs> decodeAccessArgs(std::span<const std::uint8_t> args) {
  XdrReader r(args);
  AccessArgs a;
  a.object = readFh3(r);
  a.access = r.u32();
  if (!r.ok()) return garbage(r, "ACCESS3args");
  return a;
}

Result<ReadArgs> decodeReadArgs(std::span<const std::uint8_t> args) {
  XdrReader r(args);
  ReadArgs a;
  a.file = readFh3(r);
  a.offset = r.u64();
  a.count = r.u32();
  if (!r.ok()) return garbage(r, "READ3args");
  return a;
}

namespace {

void readCookie(XdrReader& r, ReaddirArgs& a) {
  a.dir = readFh3(r);
  a.cookie = r.u64();
  auto verf = r.fixedOpaque(kCookieVerfSize);
  if (r.ok()) std::copy(verf.begin(), verf.end(), a.verf.begin());
}

}  // namespace

Result<ReaddirArgs> decodeReaddirArgs(std::span<const std::uint8_t> args) {
  XdrReader r(args);
  ReaddirArgs a;
  readCookie(r, a);
  a.count = r.u32();
  if (!r.ok()) return garbage(r, "READDIR3args");
  return a;
}

Result<ReaddirArgs> decodeReaddirplusArgs(std::span<const std::uint8_t> args) {
  XdrReader r(args);
  ReaddirArgs a;
  readCookie(r, a);
  a.dircount = r.u32();
  a.maxcount = r.u32();
  if (!r.ok()) return garbage(r, "READDIRPLUS3args");
  return a;
}

Result<ModifyArgs> decodeModifyArgs(std::uint32_t procedure, std::span<const std::uint8_t> args) {
  const ProcInfo* info = findProc(kNfsProgram, procedure);
  if (info == nullptr || info->kind != ProcKind::Modify) return Error{"not a modifying procedure"};
  XdrReader r(args);
  ModifyArgs a;
  a.procedure = procedure;
  a.first = readFh3(r);  // every one of them starts with a handle (nfs_fh3 or diropargs3's dir)
  if (procedure == nfsproc::kRename) {
    r.string(kMaxNameLen);  // from.name: not needed for the reply, but must be skipped
    a.second = readFh3(r);
  } else if (procedure == nfsproc::kLink) {
    a.second = readFh3(r);  // link.dir
  }
  if (!r.ok()) return garbage(r, info->name);
  return a;
}

// ---- Results ----

void encodeGetattrOk(XdrWriter& w, const Fattr3& a) {
  writeStatus(w, Nfsstat3::Ok);
  writeFattr3(w, a);
}

void encodeLookupOk(XdrWriter& w, Fh3 object, const PostOpAttr& objAttr, const PostOpAttr& dirAttr) {
  writeStatus(w, Nfsstat3::Ok);
  writeFh3(w, object);
  writePostOpAttr(w, objAttr);
  writePostOpAttr(w, dirAttr);
}

void encodeAccessOk(XdrWriter& w, const PostOpAttr& attr, std::uint32_t access) {
  writeStatus(w, Nfsstat3::Ok);
  writePostOpAttr(w, attr);
  w.u32(access);
}

void encodeReadlinkOk(XdrWriter& w, const PostOpAttr& attr, std::string_view path) {
  writeStatus(w, Nfsstat3::Ok);
  writePostOpAttr(w, attr);
  w.string(path);
}

void encodeReadOk(XdrWriter& w, const PostOpAttr& attr, bool eof, std::span<const std::uint8_t> data) {
  writeStatus(w, Nfsstat3::Ok);
  writePostOpAttr(w, attr);
  w.u32(static_cast<std::uint32_t>(data.size()));
  w.boolean(eof);
  w.opaque(data);
}

void encodeReadOkHead(XdrWriter& w, const PostOpAttr& attr, bool eof, std::uint32_t count) {
  writeStatus(w, Nfsstat3::Ok);
  writePostOpAttr(w, attr);
  w.u32(count);
  w.boolean(eof);
  w.u32(count);  // the opaque's length; its bytes follow
}

void encodeFsstatOk(XdrWriter& w, const PostOpAttr& attr, const FsstatOk& r) {
  writeStatus(w, Nfsstat3::Ok);
  writePostOpAttr(w, attr);
  w.u64(r.tbytes);
  w.u64(r.fbytes);
  w.u64(r.abytes);
  w.u64(r.tfiles);
  w.u64(r.ffiles);
  w.u64(r.afiles);
  w.u32(r.invarsec);
}

void encodeFsinfoOk(XdrWriter& w, const PostOpAttr& attr, const FsinfoOk& r) {
  writeStatus(w, Nfsstat3::Ok);
  writePostOpAttr(w, attr);
  w.u32(r.rtmax);
  w.u32(r.rtpref);
  w.u32(r.rtmult);
  w.u32(r.wtmax);
  w.u32(r.wtpref);
  w.u32(r.wtmult);
  w.u32(r.dtpref);
  w.u64(r.maxfilesize);
  writeTime(w, r.timeDelta);
  w.u32(r.properties);
}

void encodePathconfOk(XdrWriter& w, const PostOpAttr& attr, const PathconfOk& r) {
  writeStatus(w, Nfsstat3::Ok);
  writePostOpAttr(w, attr);
  w.u32(r.linkmax);
  w.u32(r.nameMax);
  w.boolean(r.noTrunc);
  w.boolean(r.chownRestricted);
  w.boolean(r.caseInsensitive);
  w.boolean(r.casePreserving);
}

void encodeGetaclOk(XdrWriter& w, const PostOpAttr& attr, std::uint32_t mask, std::span<const AclEntry> access,
                    std::span<const AclEntry> dflt) {
  writeStatus(w, Nfsstat3::Ok);
  writePostOpAttr(w, attr);
  w.u32(mask);
  for (auto [acl, flag] : {std::pair{access, 0u}, std::pair{dflt, kAclDefaultFlag}}) {
    w.u32(static_cast<std::uint32_t>(acl.size()));  // the entry count, then the array of entries
    w.u32(static_cast<std::uint32_t>(acl.size()));
    for (const auto& e : acl) {
      w.u32(e.tag | flag);
      w.u32(e.id);
      w.u32(e.perm);
    }
  }
}

std::size_t getaclOkSize(std::size_t accessEntries, std::size_t defaultEntries) {
  return 4 + 4 + kFattr3Size + 4 + 2 * 8 + 12 * (accessEntries + defaultEntries);
}

void encodeAclFailure(XdrWriter& w, Nfsstat3 status) { writeStatus(w, status); }

void encodeFailure(XdrWriter& w, std::uint32_t procedure, Nfsstat3 status, const PostOpAttr& attr) {
  writeStatus(w, status);
  if (procedure != nfsproc::kGetattr) writePostOpAttr(w, attr);
}

void encodeModifyFailure(XdrWriter& w, std::uint32_t procedure, Nfsstat3 status, const WccData& first,
                         const WccData& second, const PostOpAttr& linkFile) {
  writeStatus(w, status);
  switch (procedure) {
    case nfsproc::kRename:
      writeWccData(w, first);   // fromdir_wcc
      writeWccData(w, second);  // todir_wcc
      return;
    case nfsproc::kLink:
      writePostOpAttr(w, linkFile);  // file_attributes
      writeWccData(w, second);       // linkdir_wcc
      return;
    default:
      writeWccData(w, first);  // obj_wcc / file_wcc / dir_wcc
      return;
  }
}

}  // namespace pxedust::nfs::wire
