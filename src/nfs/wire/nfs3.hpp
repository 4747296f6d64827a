// NFS version 3 (RFC 1813) as a pure codec for a read-only server: the data types of §2.5-2.6,
// argument decoders for every procedure of §3.3 a read-only server answers, and result encoders.
// Directory listings (READDIR, READDIRPLUS) have their own budgeted encoder in readdir.hpp.
//
// Design note. Arguments are decoded from Call::args (rpc.hpp) with the bounds-checked XdrReader;
// any failure, including an invalid name, is GARBAGE_ARGS for the caller (as Linux's nfs3xdr.c
// decoders answer), and the Error says why for the debug line. Handles and names are views into
// the record. nfs_fh3 is opaque<64> (§2.5); whether one is ours is filehandle.hpp's question.
// filename3 (§2.5) is an unbounded string in the RFC; pxedust holds it to 255 bytes and refuses an
// empty name and names containing '/' or NUL (a component, never a path: Linux's
// svcxdr_decode_filename3 does the same).
//
// The procedures that change the file system (SETATTR, WRITE, CREATE, MKDIR, SYMLINK, MKNOD,
// REMOVE, RMDIR, RENAME, LINK, COMMIT) are decoded only as far as the handles whose attributes
// their failure reply carries: a read-only export answers each with NFS3ERR_ROFS (§2.6) and the
// wcc_data of those objects (encodeModifyFailure). What follows the handles is not read.
//
// Results: every encoder writes the nfsstat3 first. The *Ok encoders write NFS3_OK and the resok
// arm; encodeFailure() writes a status and the resfail arm, which for every query procedure but
// GETATTR is one post_op_attr (§3.3).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "common/result.hpp"
#include "nfs/wire/protocol.hpp"
#include "nfs/wire/xdr.hpp"

namespace pxedust::nfs::wire {

// ---- Data types (§2.5, §2.6) ----
struct NfsTime3 {
  std::uint32_t seconds = 0;
  std::uint32_t nseconds = 0;
  friend bool operator==(const NfsTime3&, const NfsTime3&) = default;
};
struct SpecData3 {
  std::uint32_t major = 0;
  std::uint32_t minor = 0;
  friend bool operator==(const SpecData3&, const SpecData3&) = default;
};
struct Fattr3 {
  Ftype3 type = Ftype3::Reg;
  std::uint32_t mode = 0;
  std::uint32_t nlink = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint64_t size = 0;
  std::uint64_t used = 0;
  SpecData3 rdev;
  std::uint64_t fsid = 0;
  std::uint64_t fileid = 0;
  NfsTime3 atime, mtime, ctime;
  friend bool operator==(const Fattr3&, const Fattr3&) = default;
};
inline constexpr std::size_t kFattr3Size = 84;
using PostOpAttr = std::optional<Fattr3>;
constexpr std::size_t postOpAttrSize(const PostOpAttr& a) { return 4 + (a ? kFattr3Size : 0); }

struct WccAttr {
  std::uint64_t size = 0;
  NfsTime3 mtime, ctime;
};
struct WccData {
  std::optional<WccAttr> before;
  PostOpAttr after;
};
using CookieVerf = std::array<std::uint8_t, kCookieVerfSize>;
using Fh3 = std::span<const std::uint8_t>;  // nfs_fh3 data, at most 64 bytes, a view into the record

void writeFattr3(XdrWriter& w, const Fattr3& a);
void writePostOpAttr(XdrWriter& w, const PostOpAttr& a);
void writeWccData(XdrWriter& w, const WccData& d);
void writeFh3(XdrWriter& w, Fh3 fh);
// Readers for tests and clients: a reply's attributes back into the struct.
Fattr3 readFattr3(XdrReader& r);
PostOpAttr readPostOpAttr(XdrReader& r);

Fh3 readFh3(XdrReader& r);
// filename3 as pxedust accepts it (see the note above); marks the reader BadValue/TooLong if not.
std::string_view readFilename3(XdrReader& r);
bool validFilename3(std::string_view name);

// ---- Arguments ----
// GETATTR, READLINK, FSSTAT, FSINFO, PATHCONF: one handle.
struct FhArgs {
  Fh3 object;
};
struct DirOpArgs {  // diropargs3: LOOKUP
  Fh3 dir;
  std::string_view name;
};
struct AccessArgs {
  Fh3 object;
  std::uint32_t access = 0;
};
struct ReadArgs {
  Fh3 file;
  std::uint64_t offset = 0;
  std::uint32_t count = 0;  // the caller clamps it to its rtmax
};
struct ReaddirArgs {
  Fh3 dir;
  std::uint64_t cookie = 0;
  CookieVerf verf{};
  std::uint32_t count = 0;     // READDIR: limit of the READDIR3resok
  std::uint32_t dircount = 0;  // READDIRPLUS: limit of the directory information
  std::uint32_t maxcount = 0;  // READDIRPLUS: limit of the READDIRPLUS3resok
};
// A modifying procedure, decoded as far as its failure reply needs: the object whose wcc_data comes
// first (SETATTR/WRITE/COMMIT: the file; CREATE..RMDIR: the directory; RENAME: from-directory;
// LINK: the file), and for RENAME the to-directory, for LINK the link directory.
struct ModifyArgs {
  std::uint32_t procedure = 0;
  Fh3 first;
  std::optional<Fh3> second;
};

// NFS_ACL GETACL: the object and which of its ACLs are asked for (aclmask bits).
namespace aclmask {
inline constexpr std::uint32_t kAccess = 0x1, kAccessCount = 0x2, kDefault = 0x4, kDefaultCount = 0x8;
inline constexpr std::uint32_t kAll = kAccess | kAccessCount | kDefault | kDefaultCount;
}  // namespace aclmask
struct GetaclArgs {
  Fh3 object;
  std::uint32_t mask = 0;
};
// One entry of a POSIX ACL on the wire (nfsacl's {tag, id, perm}); tags as Linux's acl_tag_t.
namespace acltag {
inline constexpr std::uint32_t kUserObj = 0x01, kUser = 0x02, kGroupObj = 0x04, kGroup = 0x08, kMask = 0x10,
                               kOther = 0x20;
}  // namespace acltag
struct AclEntry {
  std::uint32_t tag = 0;
  std::uint32_t id = 0;  // the uid of USER, the gid of GROUP; the owner's for USER_OBJ, the group's for GROUP_OBJ
  std::uint32_t perm = 0;
};
inline constexpr std::uint32_t kAclDefaultFlag = 0x1000;  // NFS_ACL_DEFAULT, on every entry of a default ACL
inline constexpr std::uint32_t kMaxAclEntries = 1024;     // NFS_ACL_MAX_ENTRIES

Result<FhArgs> decodeFhArgs(std::span<const std::uint8_t> args);
Result<GetaclArgs> decodeGetaclArgs(std::span<const std::uint8_t> args);
Result<DirOpArgs> decodeLookupArgs(std::span<const std::uint8_t> args);
Result<AccessArgs> decodeAccessArgs(std::span<const std::uint8_t> args);
Result<ReadArgs> decodeReadArgs(std::span<const std::uint8_t> args);
Result<ReaddirArgs> decodeReaddirArgs(std::span<const std::uint8_t> args);
Result<ReaddirArgs> decodeReaddirplusArgs(std::span<const std::uint8_t> args);
// `procedure` must be a Modify procedure of kNfsProcs; anything else is an Error.
Result<ModifyArgs> decodeModifyArgs(std::uint32_t procedure, std::span<const std::uint8_t> args);

// ---- Results ----
struct FsstatOk {
  std::uint64_t tbytes = 0, fbytes = 0, abytes = 0;
  std::uint64_t tfiles = 0, ffiles = 0, afiles = 0;
  std::uint32_t invarsec = 0;
};
struct FsinfoOk {
  std::uint32_t rtmax = 0, rtpref = 0, rtmult = 0;
  std::uint32_t wtmax = 0, wtpref = 0, wtmult = 0;
  std::uint32_t dtpref = 0;
  std::uint64_t maxfilesize = 0;
  NfsTime3 timeDelta;
  std::uint32_t properties = 0;  // fsf3 bits
};
struct PathconfOk {
  std::uint32_t linkmax = 0;
  std::uint32_t nameMax = 0;
  bool noTrunc = true;
  bool chownRestricted = true;
  bool caseInsensitive = false;
  bool casePreserving = true;
};

void encodeGetattrOk(XdrWriter& w, const Fattr3& a);
void encodeLookupOk(XdrWriter& w, Fh3 object, const PostOpAttr& objAttr, const PostOpAttr& dirAttr);
void encodeAccessOk(XdrWriter& w, const PostOpAttr& attr, std::uint32_t access);
void encodeReadlinkOk(XdrWriter& w, const PostOpAttr& attr, std::string_view path);
// READ3resok with the data inline; count is data.size().
void encodeReadOk(XdrWriter& w, const PostOpAttr& attr, bool eof, std::span<const std::uint8_t> data);
// READ3resok up to its data, for a server that reads the file's bytes straight into place after it
// (then XDR padding to a multiple of 4): encodeReadOk() is this, the data and the padding.
void encodeReadOkHead(XdrWriter& w, const PostOpAttr& attr, bool eof, std::uint32_t count);
constexpr std::size_t readOkHeadSize(const PostOpAttr& a) { return 4 + postOpAttrSize(a) + 4 + 4 + 4; }
void encodeFsstatOk(XdrWriter& w, const PostOpAttr& attr, const FsstatOk& r);
void encodeFsinfoOk(XdrWriter& w, const PostOpAttr& attr, const FsinfoOk& r);
void encodePathconfOk(XdrWriter& w, const PostOpAttr& attr, const PathconfOk& r);
// NFS_ACL GETACL's answer: the mask asked for, then the access ACL and the default ACL (each a count
// and the array of entries; kAclDefaultFlag is added to the default ACL's tags here). Empty ones say
// the inode has no ACL beyond its mode bits, from which the client then judges.
void encodeGetaclOk(XdrWriter& w, const PostOpAttr& attr, std::uint32_t mask, std::span<const AclEntry> access,
                    std::span<const AclEntry> dflt);
// Its size in bytes (with post_op_attr present).
std::size_t getaclOkSize(std::size_t accessEntries, std::size_t defaultEntries);
// NFS_ACL GETACL and SETACL failures: the status alone.
void encodeAclFailure(XdrWriter& w, Nfsstat3 status);

// The failure reply of a query procedure: status, then post_op_attr except for GETATTR (void).
void encodeFailure(XdrWriter& w, std::uint32_t procedure, Nfsstat3 status, const PostOpAttr& attr);
// The failure reply of a modifying procedure (status usually Rofs): SETATTR/WRITE/COMMIT and
// CREATE..RMDIR carry `first`; RENAME carries `first` then `second`; LINK carries `linkFile` (the
// file's post_op_attr) then `second` (the link directory's wcc_data).
void encodeModifyFailure(XdrWriter& w, std::uint32_t procedure, Nfsstat3 status, const WccData& first,
                         const WccData& second = {}, const PostOpAttr& linkFile = std::nullopt);

}  // namespace pxedust::nfs::wire
