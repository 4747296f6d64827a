// The NFS v3 procedures of a read-only export (RFC 1813 §3.3), over a FileSystem: handles in, a
// result body out. No sockets, no clock, no config: the service (to come) frames records, checks
// the RPC header (wire/rpc.hpp), applies the address rule at MOUNT, and calls dispatch().
//
// Design note.
//  * A file handle names an image version, an inode and its generation (wire/filehandle.hpp), sealed
//    with the server's key. dispatch() asks the Resolver for the export of that image version: none
//    (the version was deleted, or is not exported any more) is NFS3ERR_STALE, as is a generation
//    that is not the inode's now. A handle that is not ours (size, magic, MAC) is NFS3ERR_BADHANDLE.
//    Nothing about a handle lives in memory, so handles outlive restarts and reloads.
//  * Images never change, so attributes and listings never do: READDIR cookies are the
//    FileSystem's own (stable across restarts) and the cookie verifier is the image version, which
//    a client's cached listing of another version fails against (NFS3ERR_BAD_COOKIE).
//  * Every procedure that would change the file system answers NFS3ERR_ROFS with the wcc_data of
//    the objects it names (§2.6: "read-only file system"), and ACCESS never grants MODIFY, EXTEND or
//    DELETE.
//  * ACCESS is answered from the mode bits and the caller's AUTH_SYS uid and gids, as a server
//    exporting with root squash off does (uid 0 may read and look up everything, and execute what
//    has an execute bit). The client checks permissions itself too; this answer is advice (§3.3.4).
//  * "..": LOOKUP of ".." is the FileSystem's (its root's parent is the root itself), so nothing
//    leaves the image. Symlinks are never followed here: READLINK returns their text.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "nfs/wire/filehandle.hpp"
#include "nfs/wire/nfs3.hpp"
#include "nfs/wire/rpc.hpp"

namespace pxedust::nfs {

// One inode's attributes, as the file system inside an image has them.
struct Attr {
  wire::Ftype3 type = wire::Ftype3::Reg;
  std::uint32_t mode = 0;  // permission bits (07777)
  std::uint32_t nlink = 0;
  std::uint32_t uid = 0, gid = 0;
  std::uint64_t size = 0;
  std::uint64_t used = 0;  // bytes allocated
  std::uint32_t rdevMajor = 0, rdevMinor = 0;
  std::uint64_t inode = 0;
  std::uint32_t generation = 0;
  wire::NfsTime3 atime, mtime, ctime;
};

struct DirItem {
  std::uint64_t inode = 0;
  std::string_view name;
  std::uint64_t cookie = 0;  // resumes the listing after this entry (never 0)
};

// What an export reads. Errors carry errno values: ENOENT, ENOTDIR, EISDIR, EINVAL, ENAMETOOLONG,
// ESTALE (an inode that is not in use), anything else is EIO. Calls may come from any thread.
class FileSystem {
 public:
  virtual ~FileSystem() = default;
  [[nodiscard]] virtual std::uint64_t rootInode() const = 0;
  virtual Result<Attr> getattr(std::uint64_t inode) = 0;
  // A name in a directory ("." and ".." included); never follows a symlink.
  virtual Result<std::uint64_t> lookup(std::uint64_t dir, std::string_view name) = 0;
  // The entries after `cookie` (0: from the start), in a stable order, until `visit` returns false.
  // Returns true when the listing reached the end (every entry after the cookie was visited).
  virtual Result<bool> readdir(std::uint64_t dir, std::uint64_t cookie,
                               const std::function<bool(const DirItem&)>& visit) = 0;
  virtual Result<std::string> readlink(std::uint64_t inode) = 0;
  // Up to out.size() bytes at offset; fewer only at the end of the file.
  virtual Result<std::size_t> read(std::uint64_t inode, std::uint64_t offset, std::span<std::uint8_t> out) = 0;
  struct Stat {
    std::uint64_t totalBytes = 0, freeBytes = 0;
    std::uint64_t totalFiles = 0, freeFiles = 0;
  };
  virtual Result<Stat> statfs() = 0;
  // The inode's POSIX ACL (the default ACL: `dflt`), USER_OBJ/GROUP_OBJ ids left 0 (the caller puts
  // the owner's there); empty when it has none beyond its mode bits, as here by default.
  virtual Result<std::vector<wire::AclEntry>> acl(std::uint64_t /*inode*/, bool /*dflt*/) {
    return std::vector<wire::AclEntry>{};
  }
};

// An exported image version.
struct Export {
  wire::ImageId image{};
  std::uint32_t version = 0;
  std::uint64_t fsid = 0;  // fattr3.fsid: distinct per image version
  std::shared_ptr<FileSystem> fs;
};

// The export a handle names, or nullptr (deleted or no longer exported: STALE).
using Resolver = std::function<std::shared_ptr<const Export>(const wire::ImageId&, std::uint32_t version)>;

// Limits this server announces in FSINFO and holds READs and listings to.
struct Limits {
  std::uint32_t readMax = 1u << 20;  // rtmax: the Linux client then reads 1 MiB at a time
  std::uint32_t dirMax = 1u << 20;   // the most a READDIR(PLUS) reply holds, whatever the client asks
};

class Procedures {
 public:
  Procedures(wire::HandleKey key, Resolver resolver, Limits limits = {})
      : key_(key), resolver_(std::move(resolver)), limits_(limits) {}

  // The root handle of an export (MOUNT's answer).
  Result<wire::HandleBytes> rootHandle(const Export& e) const;
  // The handle of a directory below the export's root ("etc/ssh": components looked up one by one,
  // never through a symlink, never ".."): a mount of a subdirectory, as knfsd allows. ENOENT or
  // ENOTDIR when there is no such directory.
  Result<wire::HandleBytes> handleAt(const Export& e, std::string_view subdir) const;

  // The result of NFS v3 `call` (program and version already checked), appended to `out`; false
  // when its arguments do not decode (the caller answers GARBAGE_ARGS).
  bool dispatch(const wire::Call& call, std::vector<std::uint8_t>& out) const;
  // The same for an NFS_ACL v3 call (wire/protocol.hpp): GETACL tells the inode's POSIX ACLs
  // (FileSystem::acl), SETACL answers NFS3ERR_ROFS.
  bool dispatchAcl(const wire::Call& call, std::vector<std::uint8_t>& out) const;

 private:
  struct Target {
    std::shared_ptr<const Export> exp;
    Attr attr;
  };
  // The export and the inode's attributes for a handle, or the status to answer.
  wire::Nfsstat3 resolve(wire::Fh3 fh, Target& out) const;
  wire::Fattr3 fattr(const Export& e, const Attr& a) const;
  wire::HandleBytes handleFor(const Export& e, const Attr& a) const;

  bool getattr(const wire::Call& c, std::vector<std::uint8_t>& out) const;
  bool lookup(const wire::Call& c, std::vector<std::uint8_t>& out) const;
  bool access(const wire::Call& c, std::vector<std::uint8_t>& out) const;
  bool readlink(const wire::Call& c, std::vector<std::uint8_t>& out) const;
  bool read(const wire::Call& c, std::vector<std::uint8_t>& out) const;
  bool readdir(const wire::Call& c, bool plus, std::vector<std::uint8_t>& out) const;
  bool fsstat(const wire::Call& c, std::vector<std::uint8_t>& out) const;
  bool fsinfo(const wire::Call& c, std::vector<std::uint8_t>& out) const;
  bool pathconf(const wire::Call& c, std::vector<std::uint8_t>& out) const;
  bool modify(const wire::Call& c, std::vector<std::uint8_t>& out) const;

  wire::HandleKey key_;
  Resolver resolver_;
  Limits limits_;
};

// errno (a FileSystem's Error::code) as nfsstat3.
wire::Nfsstat3 statusFor(int code);

// What ACCESS grants `want` on an inode with these attributes to this caller (read-only export).
std::uint32_t accessFor(const Attr& a, const wire::AuthSys* caller, std::uint32_t want);

}  // namespace pxedust::nfs
