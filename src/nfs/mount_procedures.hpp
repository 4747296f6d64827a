// MOUNT v3 (RFC 1813 Appendix I) and PORTMAP v2 (RFC 1833 §3) answers: which export a path is,
// whether this client may mount it, and where the programs listen. No sockets: the service passes
// a Catalog that already knows the caller (its address, the host rules) and the ports it bound.
//
// Design note.
//  * MNT answers the export's root handle (Procedures::rootHandle) and AUTH_SYS and AUTH_NONE as the
//    flavours; a path the catalog does not know is MNT3ERR_NOENT, one the client may not mount is
//    MNT3ERR_ACCES. Each MNT is reported (MountOutcome) so that the service can log it, count it and
//    make it a boot event: a mount is a host reaching its root.
//  * The server keeps no mount list: DUMP answers an empty list, UMNT and UMNTALL only report. NFS
//    v3 is stateless, and the handles answer for themselves (procedures.hpp); a list that a client
//    that crashed never cleans up would only mislead (knfsd's rmtab has the same flaw).
//  * EXPORT lists only what this client may mount, as NBD's LIST does.
//  * PORTMAP: GETPORT and DUMP for the programs pxedust serves; SET and UNSET answer FALSE (nobody
//    registers with us); CALLIT is not answered (RFC 1833: no reply unless the call succeeded).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nfs/procedures.hpp"
#include "nfs/wire/mount.hpp"
#include "nfs/wire/rpc.hpp"

namespace pxedust::nfs {

class MountCatalog {
 public:
  virtual ~MountCatalog() = default;
  struct Found {
    wire::MountStat status = wire::MountStat::NoEnt;
    std::shared_ptr<const Export> exp;  // when Ok
    std::string reason;                 // when not Ok: why, for the log and the event
    std::string subdir;                 // when Ok: the directory below the export's root to mount ("" = the root)
  };
  // The export at `path` for this caller.
  virtual Found find(std::string_view path) = 0;
  // The paths this caller may mount.
  virtual std::vector<std::string> list() = 0;
};

struct MountOutcome {
  enum class Kind : std::uint8_t { None, Mounted, Refused, Unmounted } kind = Kind::None;
  std::string path;
  std::string reason;  // Refused
  std::shared_ptr<const Export> exp;  // Mounted
};

// The result of MOUNT v3 `call`, appended to `out`; false when its arguments do not decode
// (GARBAGE_ARGS). `outcome` says what happened (MNT, UMNT).
bool dispatchMount(const wire::Call& call, const Procedures& nfs, MountCatalog& catalog, std::vector<std::uint8_t>& out,
                   MountOutcome& outcome);

// Where pxedust's programs listen, as PORTMAP tells it (a port of 0: not on that transport).
struct Ports {
  std::uint16_t portmapTcp = 0, portmapUdp = 0, nfsTcp = 0, nfsUdp = 0, mountTcp = 0, mountUdp = 0;
};

// The result of PORTMAP v2 `call`; false when its arguments do not decode (GARBAGE_ARGS), or
// `noReply` set when the call gets no answer (CALLIT).
bool dispatchPortmap(const wire::Call& call, const Ports& ports, std::vector<std::uint8_t>& out, bool& noReply);

}  // namespace pxedust::nfs
