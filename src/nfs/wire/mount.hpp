// PORTMAP v2 (RFC 1833 §3) and MOUNT v3 (RFC 1813 Appendix I): the two small programs a client
// talks to before NFS itself. Argument decoders and result encoders only; which port or which
// export to answer with is the caller's business.
//
// Design note. Arguments are decoded from Call::args (rpc.hpp) with the bounds-checked XdrReader;
// any failure is GARBAGE_ARGS for the caller, and the message says why for the debug line. Strings
// are views into the record (dirpath<MNTPATHLEN = 1024>, name<MNTNAMLEN = 255>). Results are
// written after an Accepted/Success reply header into the caller's buffer; a list that does not
// fit leaves the writer failed (XdrWriter::ok() false) and the caller answers SYSTEM_ERR instead.
// Linked lists (pmaplist, mountlist, exports, groups) are XDR optional-data chains (RFC 4506 §4.19):
// TRUE before each element, FALSE at the end.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "common/result.hpp"
#include "nfs/wire/protocol.hpp"
#include "nfs/wire/xdr.hpp"

namespace pxedust::nfs::wire {

// ---- PORTMAP v2 ----
struct PortMapping {
  std::uint32_t program = 0;
  std::uint32_t version = 0;
  std::uint32_t protocol = 0;  // kIpprotoTcp or kIpprotoUdp
  std::uint32_t port = 0;      // ignored in GETPORT's arguments
  friend bool operator==(const PortMapping&, const PortMapping&) = default;
};

// PMAPPROC_GETPORT (and SET/UNSET) arguments: one mapping.
Result<PortMapping> decodePortMapping(std::span<const std::uint8_t> args);
void encodePortMapping(XdrWriter& w, const PortMapping& m);  // client side, tests
// PMAPPROC_GETPORT result: the port, 0 when the program is not registered.
void encodeGetportResult(XdrWriter& w, std::uint32_t port);
// PMAPPROC_DUMP result: pmaplist.
void encodePortmapDump(XdrWriter& w, std::span<const PortMapping> mappings);

// ---- MOUNT v3 ----
// MOUNTPROC3_MNT and MOUNTPROC3_UMNT arguments: dirpath<1024>.
Result<std::string_view> decodeDirpath(std::span<const std::uint8_t> args);

// mountres3 (MNT): on MNT3_OK the root handle and the auth flavours accepted (AUTH_SYS for pxedust);
// on any other status, nothing more.
void encodeMntOk(XdrWriter& w, std::span<const std::uint8_t> rootHandle, std::span<const std::uint32_t> flavors);
void encodeMntError(XdrWriter& w, MountStat status);

struct MountEntry {
  std::string_view hostname;  // name<255>
  std::string_view directory; // dirpath<1024>
};
// MOUNTPROC3_DUMP result: mountlist.
void encodeMountList(XdrWriter& w, std::span<const MountEntry> entries);

struct ExportEntry {
  std::string_view directory;              // dirpath<1024>
  std::span<const std::string_view> groups;  // name<255> each: who may mount it
};
// MOUNTPROC3_EXPORT result: exports.
void encodeExports(XdrWriter& w, std::span<const ExportEntry> exports);

}  // namespace pxedust::nfs::wire
