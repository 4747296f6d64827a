// The vocabularies of the three RPC programs an NFSv3 root needs: PORTMAP v2 (RFC 1833 §3), MOUNT v3
// (RFC 1813 Appendix I) and NFS v3 (RFC 1813 §3), and the ONC RPC numbers they ride on (RFC 5531 §9,
// §8.2). Values only, as tables: one row per program and per procedure carries its number, its name
// for logs and what it does to the file system, so the dispatch check (checkDispatch), the
// read-only refusal and the logs read the same rows.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace pxedust::nfs::wire {

// ---- ONC RPC (RFC 5531 §9) ----
inline constexpr std::uint32_t kRpcVersion = 2;
enum class MsgType : std::uint32_t { Call = 0, Reply = 1 };
enum class ReplyStat : std::uint32_t { Accepted = 0, Denied = 1 };
enum class AcceptStat : std::uint32_t {
  Success = 0, ProgUnavail = 1, ProgMismatch = 2, ProcUnavail = 3, GarbageArgs = 4, SystemErr = 5,
};
enum class RejectStat : std::uint32_t { RpcMismatch = 0, AuthError = 1 };
// auth_stat (§9): the ones a server sends for AUTH_NONE/AUTH_SYS.
enum class AuthStat : std::uint32_t {
  Ok = 0, BadCred = 1, RejectedCred = 2, BadVerf = 3, RejectedVerf = 4, TooWeak = 5,
};
// auth_flavor (§8.2; RFC 5531 Appendix A for AUTH_SYS).
namespace authflavor {
inline constexpr std::uint32_t kNone = 0;
inline constexpr std::uint32_t kSys = 1;
inline constexpr std::uint32_t kShort = 2;
inline constexpr std::uint32_t kDh = 3;
inline constexpr std::uint32_t kRpcsecGss = 6;
}  // namespace authflavor
inline constexpr std::uint32_t kMaxAuthBody = 400;      // opaque body<400> (§8.2)
inline constexpr std::uint32_t kMaxMachineName = 255;   // authsys_parms machinename<255> (Appendix A)
inline constexpr std::uint32_t kMaxAuthSysGids = 16;    // authsys_parms gids<16>

// ---- Programs ----
inline constexpr std::uint32_t kPortmapProgram = 100000;
inline constexpr std::uint32_t kPortmapVersion = 2;
inline constexpr std::uint32_t kNfsProgram = 100003;
inline constexpr std::uint32_t kNfsVersion = 3;
inline constexpr std::uint32_t kMountProgram = 100005;
inline constexpr std::uint32_t kMountVersion = 3;
// NFS_ACL: the side protocol Linux (and Solaris) clients use for POSIX ACLs over NFS v3, on the NFS
// port. It has no RFC; its XDR is Solaris' and the Linux client's (fs/nfs_common/nfsacl.c). A server
// without it leaves a Linux client unable to tell "no ACL" from an error, which overlayfs over NFS
// turns into EOPNOTSUPP for files the caller does not own.
inline constexpr std::uint32_t kNfsAclProgram = 100227;
inline constexpr std::uint32_t kNfsAclVersion = 3;
inline constexpr std::uint32_t kIpprotoTcp = 6;   // RFC 1833 §3: IPPROTO_TCP
inline constexpr std::uint32_t kIpprotoUdp = 17;  // IPPROTO_UDP

// ---- Procedures: one table per program ----
enum class ProcKind : std::uint8_t {
  Null,     // does nothing, answers nothing
  Query,    // reads only
  Modify,   // changes the file system: NFS3ERR_ROFS on a read-only export (RFC 1813 §2.6)
  Session,  // changes server state but not the file system (MOUNT's MNT/UMNT, PORTMAP's SET)
};
struct ProcInfo {
  std::uint32_t number;
  std::string_view name;
  ProcKind kind;
};

namespace pmapproc {
inline constexpr std::uint32_t kNull = 0, kSet = 1, kUnset = 2, kGetport = 3, kDump = 4, kCallit = 5;
}
namespace mountproc {
inline constexpr std::uint32_t kNull = 0, kMnt = 1, kDump = 2, kUmnt = 3, kUmntall = 4, kExport = 5;
}
namespace aclproc {
inline constexpr std::uint32_t kNull = 0, kGetacl = 1, kSetacl = 2;
}
namespace nfsproc {
inline constexpr std::uint32_t kNull = 0, kGetattr = 1, kSetattr = 2, kLookup = 3, kAccess = 4,
    kReadlink = 5, kRead = 6, kWrite = 7, kCreate = 8, kMkdir = 9, kSymlink = 10, kMknod = 11,
    kRemove = 12, kRmdir = 13, kRename = 14, kLink = 15, kReaddir = 16, kReaddirplus = 17,
    kFsstat = 18, kFsinfo = 19, kPathconf = 20, kCommit = 21;
}

inline constexpr std::array<ProcInfo, 6> kPortmapProcs{{
    {pmapproc::kNull, "PMAPPROC_NULL", ProcKind::Null},
    {pmapproc::kSet, "PMAPPROC_SET", ProcKind::Session},
    {pmapproc::kUnset, "PMAPPROC_UNSET", ProcKind::Session},
    {pmapproc::kGetport, "PMAPPROC_GETPORT", ProcKind::Query},
    {pmapproc::kDump, "PMAPPROC_DUMP", ProcKind::Query},
    {pmapproc::kCallit, "PMAPPROC_CALLIT", ProcKind::Session},
}};

inline constexpr std::array<ProcInfo, 6> kMountProcs{{
    {mountproc::kNull, "MOUNTPROC3_NULL", ProcKind::Null},
    {mountproc::kMnt, "MOUNTPROC3_MNT", ProcKind::Session},
    {mountproc::kDump, "MOUNTPROC3_DUMP", ProcKind::Query},
    {mountproc::kUmnt, "MOUNTPROC3_UMNT", ProcKind::Session},
    {mountproc::kUmntall, "MOUNTPROC3_UMNTALL", ProcKind::Session},
    {mountproc::kExport, "MOUNTPROC3_EXPORT", ProcKind::Query},
}};

inline constexpr std::array<ProcInfo, 22> kNfsProcs{{
    {nfsproc::kNull, "NFSPROC3_NULL", ProcKind::Null},
    {nfsproc::kGetattr, "NFSPROC3_GETATTR", ProcKind::Query},
    {nfsproc::kSetattr, "NFSPROC3_SETATTR", ProcKind::Modify},
    {nfsproc::kLookup, "NFSPROC3_LOOKUP", ProcKind::Query},
    {nfsproc::kAccess, "NFSPROC3_ACCESS", ProcKind::Query},
    {nfsproc::kReadlink, "NFSPROC3_READLINK", ProcKind::Query},
    {nfsproc::kRead, "NFSPROC3_READ", ProcKind::Query},
    {nfsproc::kWrite, "NFSPROC3_WRITE", ProcKind::Modify},
    {nfsproc::kCreate, "NFSPROC3_CREATE", ProcKind::Modify},
    {nfsproc::kMkdir, "NFSPROC3_MKDIR", ProcKind::Modify},
    {nfsproc::kSymlink, "NFSPROC3_SYMLINK", ProcKind::Modify},
    {nfsproc::kMknod, "NFSPROC3_MKNOD", ProcKind::Modify},
    {nfsproc::kRemove, "NFSPROC3_REMOVE", ProcKind::Modify},
    {nfsproc::kRmdir, "NFSPROC3_RMDIR", ProcKind::Modify},
    {nfsproc::kRename, "NFSPROC3_RENAME", ProcKind::Modify},
    {nfsproc::kLink, "NFSPROC3_LINK", ProcKind::Modify},
    {nfsproc::kReaddir, "NFSPROC3_READDIR", ProcKind::Query},
    {nfsproc::kReaddirplus, "NFSPROC3_READDIRPLUS", ProcKind::Query},
    {nfsproc::kFsstat, "NFSPROC3_FSSTAT", ProcKind::Query},
    {nfsproc::kFsinfo, "NFSPROC3_FSINFO", ProcKind::Query},
    {nfsproc::kPathconf, "NFSPROC3_PATHCONF", ProcKind::Query},
    {nfsproc::kCommit, "NFSPROC3_COMMIT", ProcKind::Modify},
}};

inline constexpr std::array<ProcInfo, 3> kNfsAclProcs{{
    {aclproc::kNull, "NFSACLPROC3_NULL", ProcKind::Null},
    {aclproc::kGetacl, "NFSACLPROC3_GETACL", ProcKind::Query},
    {aclproc::kSetacl, "NFSACLPROC3_SETACL", ProcKind::Modify},
}};

struct ProgramInfo {
  std::uint32_t program;
  std::uint32_t version;  // the one version pxedust speaks: PROG_MISMATCH reports [version, version]
  std::string_view name;
  std::span<const ProcInfo> procs;  // indexed by procedure number
};
inline constexpr std::array<ProgramInfo, 4> kPrograms{{
    {kPortmapProgram, kPortmapVersion, "portmap", kPortmapProcs},
    {kNfsProgram, kNfsVersion, "nfs", kNfsProcs},
    {kMountProgram, kMountVersion, "mount", kMountProcs},
    {kNfsAclProgram, kNfsAclVersion, "nfs_acl", kNfsAclProcs},
}};

constexpr const ProgramInfo* findProgram(std::uint32_t program) {
  for (const auto& p : kPrograms)
    if (p.program == program) return &p;
  return nullptr;
}
// nullptr for a procedure number the program does not define.
constexpr const ProcInfo* findProc(std::uint32_t program, std::uint32_t proc) {
  const ProgramInfo* p = findProgram(program);
  if (p == nullptr || proc >= p->procs.size()) return nullptr;
  return &p->procs[proc];
}

// What RFC 5531 §9 says to answer a call for (program, version, procedure), from the table above.
// A server that does not serve one of the programs (no NFS on this port) answers PROG_UNAVAIL itself.
struct DispatchCheck {
  AcceptStat stat = AcceptStat::Success;
  std::uint32_t low = 0, high = 0;  // PROG_MISMATCH only
  const ProcInfo* proc = nullptr;   // Success only
};
constexpr DispatchCheck checkDispatch(std::uint32_t program, std::uint32_t version, std::uint32_t proc) {
  const ProgramInfo* p = findProgram(program);
  if (p == nullptr) return {AcceptStat::ProgUnavail};
  if (version != p->version) return {AcceptStat::ProgMismatch, p->version, p->version};
  if (proc >= p->procs.size()) return {AcceptStat::ProcUnavail};
  return {AcceptStat::Success, 0, 0, &p->procs[proc]};
}

// ---- MOUNT v3 (RFC 1813 Appendix I) ----
inline constexpr std::uint32_t kMntPathLen = 1024;  // MNTPATHLEN
inline constexpr std::uint32_t kMntNameLen = 255;   // MNTNAMLEN
enum class MountStat : std::uint32_t {
  Ok = 0, Perm = 1, NoEnt = 2, Io = 5, Acces = 13, NotDir = 20, Inval = 22, NameTooLong = 63,
  NotSupp = 10004, ServerFault = 10006,
};

// ---- NFS v3 (RFC 1813 §2.4, §2.6) ----
inline constexpr std::uint32_t kFhSize3 = 64;          // NFS3_FHSIZE
inline constexpr std::uint32_t kCookieVerfSize = 8;    // NFS3_COOKIEVERFSIZE
inline constexpr std::uint32_t kCreateVerfSize = 8;    // NFS3_CREATEVERFSIZE
inline constexpr std::uint32_t kWriteVerfSize = 8;     // NFS3_WRITEVERFSIZE
inline constexpr std::uint32_t kMaxNameLen = 255;      // filename3: pxedust's limit (NAME_MAX)
inline constexpr std::uint32_t kMaxPathLen = 4096;     // nfspath3: pxedust's limit (PATH_MAX)

enum class Nfsstat3 : std::uint32_t {
  Ok = 0, Perm = 1, NoEnt = 2, Io = 5, Nxio = 6, Acces = 13, Exist = 17, Xdev = 18, NoDev = 19,
  NotDir = 20, IsDir = 21, Inval = 22, FBig = 27, NoSpc = 28, Rofs = 30, MLink = 31,
  NameTooLong = 63, NotEmpty = 66, DQuot = 69, Stale = 70, Remote = 71, BadHandle = 10001,
  NotSync = 10002, BadCookie = 10003, NotSupp = 10004, TooSmall = 10005, ServerFault = 10006,
  BadType = 10007, Jukebox = 10008,
};
std::string_view nfsstat3Name(Nfsstat3 s);

enum class Ftype3 : std::uint32_t { Reg = 1, Dir = 2, Blk = 3, Chr = 4, Lnk = 5, Sock = 6, Fifo = 7 };

// ACCESS3 bits (§3.3.4).
namespace access3 {
inline constexpr std::uint32_t kRead = 0x0001;
inline constexpr std::uint32_t kLookup = 0x0002;
inline constexpr std::uint32_t kModify = 0x0004;
inline constexpr std::uint32_t kExtend = 0x0008;
inline constexpr std::uint32_t kDelete = 0x0010;
inline constexpr std::uint32_t kExecute = 0x0020;
inline constexpr std::uint32_t kAll = 0x003f;
}  // namespace access3

// FSINFO3 properties (§3.3.19).
namespace fsf3 {
inline constexpr std::uint32_t kLink = 0x0001;
inline constexpr std::uint32_t kSymlink = 0x0002;
inline constexpr std::uint32_t kHomogeneous = 0x0008;
inline constexpr std::uint32_t kCanSetTime = 0x0010;
}  // namespace fsf3

// time_how (§2.6, sattr3), for skipping over SETATTR's arguments.
enum class TimeHow : std::uint32_t { DontChange = 0, SetToServerTime = 1, SetToClientTime = 2 };

}  // namespace pxedust::nfs::wire
