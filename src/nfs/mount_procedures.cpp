// MOUNT v3 and PORTMAP v2 answers; see mount_procedures.hpp.
#include "nfs/mount_procedures.hpp"

#include <array>
#include <cerrno>

namespace pxedust::nfs {

namespace {

// Writes with `write` into at most `max` new bytes at the end of `out`; false when it did not fit.
template <typename F>
bool emit(std::vector<std::uint8_t>& out, std::size_t max, F&& write) {
  const std::size_t at = out.size();
  out.resize(at + max);
  wire::XdrWriter w(std::span<std::uint8_t>(out).subspan(at));
  write(w);
  out.resize(at + (w.ok() ? w.size() : 0));
  return w.ok();
}

constexpr std::array<std::uint32_t, 2> kFlavors{wire::authflavor::kSys, wire::authflavor::kNone};

}  // namespace

bool dispatchMount(const wire::Call& call, const Procedures& nfs, MountCatalog& catalog, std::vector<std::uint8_t>& out,
                   MountOutcome& outcome) {
  namespace mp = wire::mountproc;
  outcome = {};
  switch (call.procedure) {
    case mp::kNull:
      return true;
    case mp::kMnt: {
      auto path = wire::decodeDirpath(call.args);
      if (!path) return false;
      outcome.path = std::string(*path);
      auto found = catalog.find(*path);
      Result<wire::HandleBytes> root = Error{"no export"};
      if (found.status == wire::MountStat::Ok && found.exp && found.exp->fs) {
        root = found.subdir.empty() ? nfs.rootHandle(*found.exp) : nfs.handleAt(*found.exp, found.subdir);
        if (!root) {
          const int code = root.error().code;
          found.status = code == ENOENT ? wire::MountStat::NoEnt : code == ENOTDIR ? wire::MountStat::NotDir : wire::MountStat::Io;
          found.reason = (found.subdir.empty() ? std::string("the image's root") : found.subdir) + ": " + root.error().message;
        }
      } else if (found.status == wire::MountStat::Ok) {
        found.status = wire::MountStat::ServerFault;
      }
      if (found.status != wire::MountStat::Ok) {
        outcome.kind = MountOutcome::Kind::Refused;
        outcome.reason = found.reason;
        emit(out, 16, [&](wire::XdrWriter& w) { wire::encodeMntError(w, found.status); });
        return true;
      }
      outcome.kind = MountOutcome::Kind::Mounted;
      outcome.exp = found.exp;
      emit(out, 128, [&](wire::XdrWriter& w) { wire::encodeMntOk(w, *root, kFlavors); });
      return true;
    }
    case mp::kUmnt: {
      auto path = wire::decodeDirpath(call.args);
      if (!path) return false;
      outcome.kind = MountOutcome::Kind::Unmounted;
      outcome.path = std::string(*path);
      return true;  // void
    }
    case mp::kUmntall:
      outcome.kind = MountOutcome::Kind::Unmounted;
      return true;
    case mp::kDump:
      emit(out, 16, [](wire::XdrWriter& w) { wire::encodeMountList(w, {}); });
      return true;
    case mp::kExport: {
      const auto paths = catalog.list();
      std::vector<wire::ExportEntry> entries;
      std::size_t bytes = 16;
      for (const auto& p : paths) {
        entries.push_back({p, {}});
        bytes += 16 + p.size();
      }
      // A list too long for one reply (thousands of image versions) is cut, never malformed.
      while (!emit(out, bytes, [&](wire::XdrWriter& w) { wire::encodeExports(w, entries); }) && !entries.empty())
        entries.pop_back();
      return true;
    }
    default:
      return false;  // checkDispatch() answered other numbers already
  }
}

bool dispatchPortmap(const wire::Call& call, const Ports& ports, std::vector<std::uint8_t>& out, bool& noReply) {
  namespace pp = wire::pmapproc;
  noReply = false;
  const std::array<wire::PortMapping, 8> all{{
      {wire::kPortmapProgram, wire::kPortmapVersion, wire::kIpprotoTcp, ports.portmapTcp},
      {wire::kPortmapProgram, wire::kPortmapVersion, wire::kIpprotoUdp, ports.portmapUdp},
      {wire::kNfsProgram, wire::kNfsVersion, wire::kIpprotoTcp, ports.nfsTcp},
      {wire::kNfsProgram, wire::kNfsVersion, wire::kIpprotoUdp, ports.nfsUdp},
      {wire::kMountProgram, wire::kMountVersion, wire::kIpprotoTcp, ports.mountTcp},
      {wire::kMountProgram, wire::kMountVersion, wire::kIpprotoUdp, ports.mountUdp},
      {wire::kNfsAclProgram, wire::kNfsAclVersion, wire::kIpprotoTcp, ports.nfsTcp},
      {wire::kNfsAclProgram, wire::kNfsAclVersion, wire::kIpprotoUdp, ports.nfsUdp},
  }};
  switch (call.procedure) {
    case pp::kNull:
      return true;
    case pp::kSet:
    case pp::kUnset: {
      if (!wire::decodePortMapping(call.args)) return false;
      emit(out, 4, [](wire::XdrWriter& w) { w.boolean(false); });
      return true;
    }
    case pp::kGetport: {
      auto m = wire::decodePortMapping(call.args);
      if (!m) return false;
      std::uint32_t port = 0;
      for (const auto& a : all)
        if (a.program == m->program && a.version == m->version && a.protocol == m->protocol) port = a.port;
      emit(out, 4, [&](wire::XdrWriter& w) { wire::encodeGetportResult(w, port); });
      return true;
    }
    case pp::kDump: {
      std::vector<wire::PortMapping> listed;
      for (const auto& a : all)
        if (a.port != 0) listed.push_back(a);
      emit(out, 8 + 24 * listed.size(), [&](wire::XdrWriter& w) { wire::encodePortmapDump(w, listed); });
      return true;
    }
    default:
      noReply = true;  // CALLIT: indirect calls are not made for anyone
      return true;
  }
}

}  // namespace pxedust::nfs
