#include "nfs/wire/mount.hpp"

#include <string>

namespace pxedust::nfs::wire {

namespace {

Error garbage(const XdrReader& r, std::string_view what) {
  return Error{std::string(what) + ": " + std::string(xdrErrorName(r.error())), static_cast<int>(r.error())};
}

}  // namespace

Result<PortMapping> decodePortMapping(std::span<const std::uint8_t> args) {
  XdrReader r(args);
  PortMapping m;
  m.program = r.u32();
  m.version = r.u32();
  m.protocol = r.u32();
  m.port = r.u32();
  if (!r.ok()) return garbage(r, "mapping");
  return m;
}

void encodePortMapping(XdrWriter& w, const PortMapping& m) {
  w.u32(m.program);
  w.u32(m.version);
  w.u32(m.protocol);
  w.u32(m.port);
}

void encodeGetportResult(XdrWriter& w, std::uint32_t port) { w.u32(port); }

void encodePortmapDump(XdrWriter& w, std::span<const PortMapping> mappings) {
  for (const auto& m : mappings) {
    w.boolean(true);
    encodePortMapping(w, m);
  }
  w.boolean(false);
}

Result<std::string_view> decodeDirpath(std::span<const std::uint8_t> args) {
  XdrReader r(args);
  auto path = r.string(kMntPathLen);
  if (!r.ok()) return garbage(r, "dirpath");
  return path;
}

void encodeMntOk(XdrWriter& w, std::span<const std::uint8_t> rootHandle, std::span<const std::uint32_t> flavors) {
  w.u32(static_cast<std::uint32_t>(MountStat::Ok));
  w.opaque(rootHandle);
  w.u32(static_cast<std::uint32_t>(flavors.size()));
  for (auto f : flavors) w.u32(f);
}

void encodeMntError(XdrWriter& w, MountStat status) { w.u32(static_cast<std::uint32_t>(status)); }

void encodeMountList(XdrWriter& w, std::span<const MountEntry> entries) {
  for (const auto& e : entries) {
    w.boolean(true);
    w.string(e.hostname);
    w.string(e.directory);
  }
  w.boolean(false);
}

void encodeExports(XdrWriter& w, std::span<const ExportEntry> exports) {
  for (const auto& e : exports) {
    w.boolean(true);
    w.string(e.directory);
    for (auto g : e.groups) {
      w.boolean(true);
      w.string(g);
    }
    w.boolean(false);
  }
  w.boolean(false);
}

}  // namespace pxedust::nfs::wire
