#include "initramfs/builder.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <system_error>

#include "initramfs/cpio.hpp"
#include "initramfs/elf.hpp"

namespace pxedust::initramfs {
namespace fs = std::filesystem;
namespace {

Result<std::vector<std::uint8_t>> readAll(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return Error{fmt::format("{}: cannot read", p.string())};
  return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::string moduleName(std::string s) {
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

std::span<const std::uint8_t> text(const char* s) {
  return {reinterpret_cast<const std::uint8_t*>(s), std::char_traits<char>::length(s)};
}

// The dynamic loader's search: the multiarch and plain library directories of `root`.
std::optional<fs::path> findLibrary(const fs::path& root, const std::string& soname) {
  for (const char* dir : {"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu",
                          "usr/lib/aarch64-linux-gnu", "lib64", "usr/lib64", "lib", "usr/lib"}) {
    fs::path p = root / dir / soname;
    std::error_code ec;
    if (fs::exists(p, ec)) return fs::path(dir) / soname;
  }
  return std::nullopt;
}

// Adds a program's libraries (recursively) and its interpreter; paths inside the archive are the
// paths on the system it came from, so the loader finds them where it looks.
// gzip (RFC 1952) of the whole archive, in one deflate stream at level 9: built once, fetched by
// every client at every boot.
Result<std::vector<std::uint8_t>> gzip(const std::vector<std::uint8_t>& in) {
  if (in.size() > 0xFFFFFFFFu) return Error{"initramfs larger than 4 GiB"};
  z_stream z{};
  if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) return Error{"zlib: deflateInit2 failed"};
  std::vector<std::uint8_t> out(deflateBound(&z, static_cast<uLong>(in.size())));
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) return Error{fmt::format("zlib: deflate failed ({})", rc)};
  return out;
}

Result<void> addLibraries(CpioWriter& cpio, const fs::path& root, const ElfInfo& program, BuildReport& report) {
  std::vector<std::string> queue(program.needed.begin(), program.needed.end());
  std::set<std::string> seen;
  if (!program.interpreter.empty()) {
    std::string rel = program.interpreter.substr(program.interpreter.find_first_not_of('/'));
    if (!cpio.contains(rel)) {  // a second program shares the first one's
      auto bytes = readAll(root / rel);  // follows the symlink to the real file
      if (!bytes) return bytes.error();
      cpio.addFile(rel, *bytes, 0755);
      report.libraries.push_back("/" + rel);
    }
  }
  while (!queue.empty()) {
    auto so = queue.back();
    queue.pop_back();
    if (!seen.insert(so).second) continue;
    auto rel = findLibrary(root, so);
    if (!rel) return Error{fmt::format("shared library {} not found under {}", so, root.string())};
    auto bytes = readAll(root / *rel);
    if (!bytes) return bytes.error();
    auto info = readElf(*bytes);
    if (!info) return Error{fmt::format("{}: {}", (root / *rel).string(), info.error().message)};
    if (!cpio.contains(rel->string())) {
      cpio.addFile(rel->string(), *bytes, 0755);
      report.libraries.push_back("/" + rel->string());
    }
    for (const auto& n : info->needed) queue.push_back(n);
  }
  return {};
}

}  // namespace

Result<fs::path> findModulesDir(const fs::path& root, const std::string& version) {
  fs::path base = root / "lib/modules";
  std::error_code ec;
  if (!version.empty()) {
    if (fs::is_directory(base / version, ec)) return base / version;
    return Error{fmt::format("{} does not exist", (base / version).string())};
  }
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(base, ec))
    if (e.is_directory() && fs::exists(e.path() / "kernel")) found.push_back(e.path());
  if (found.size() == 1) return found.front();
  if (found.empty()) return Error{fmt::format("no kernel modules under {}", base.string())};
  std::string list;
  for (const auto& f : found) list += " " + f.filename().string();
  return Error{fmt::format("several kernels under {} ({}): name one", base.string(), list.substr(1))};
}

Result<std::vector<std::uint8_t>> build(const BuildOptions& options, BuildReport& report) {
  CpioWriter cpio;
  const fs::path& mods = options.modulesDir;
  report.kernelVersion = mods.filename().string();
  std::error_code ec;
  if (!fs::is_directory(mods / "kernel", ec)) return Error{fmt::format("{}: no kernel modules here", mods.string())};

  // Every module file by name, and the names built into the kernel.
  std::map<std::string, fs::path> files;
  for (auto it = fs::recursive_directory_iterator(mods / "kernel", ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    auto name = it->path().filename().string();
    if (name.ends_with(".ko")) {
      files.emplace(moduleName(name.substr(0, name.size() - 3)), fs::relative(it->path(), mods));
    } else if (name.ends_with(".ko.xz") || name.ends_with(".ko.zst") || name.ends_with(".ko.gz")) {
      return Error{fmt::format("{}: compressed modules are not supported yet", it->path().string())};
    }
  }
  if (ec) return Error{fmt::format("{}: {}", mods.string(), ec.message())};
  std::set<std::string> builtin;
  if (std::ifstream b(mods / "modules.builtin"); b) {
    for (std::string line; std::getline(b, line);) {
      auto base = line.substr(line.rfind('/') + 1);
      if (base.ends_with(".ko")) builtin.insert(moduleName(base.substr(0, base.size() - 3)));
    }
  }

  // Dependencies first (depth-first post-order), each module once.
  std::set<std::string> visiting, done;
  std::vector<std::string> order;
  std::function<Result<void>(const std::string&)> visit = [&](const std::string& name) -> Result<void> {
    if (done.contains(name)) return {};
    if (!visiting.insert(name).second) return Error{fmt::format("module dependency cycle at {}", name)};
    auto f = files.find(name);
    auto info = readElfFile(mods / f->second);
    if (!info) return info.error();
    for (const auto& kv : info->modinfo) {
      if (!kv.starts_with("depends=")) continue;
      std::string deps = kv.substr(8);
      for (std::size_t start = 0; start < deps.size();) {
        auto comma = deps.find(',', start);
        auto dep = moduleName(deps.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        start = comma == std::string::npos ? deps.size() : comma + 1;
        if (dep.empty() || builtin.contains(dep)) continue;
        if (!files.contains(dep)) return Error{fmt::format("module {} needs {}, which is not in {}", name, dep, mods.string())};
        if (auto r = visit(dep); !r) return r;
      }
    }
    visiting.erase(name);
    done.insert(name);
    order.push_back(name);
    return {};
  };
  for (const auto& m : options.modules) {
    auto name = moduleName(m);
    if (files.contains(name)) {
      if (auto r = visit(name); !r) return r.error();
    } else if (builtin.contains(name)) {
      report.builtin.push_back(name);
    } else {
      report.missing.push_back(name);
    }
  }
  std::string list;
  for (const auto& name : order) {
    const auto& rel = files.at(name);
    auto bytes = readAll(mods / rel);
    if (!bytes) return bytes.error();
    cpio.addFile("lib/modules/" + rel.string(), *bytes);
    list += rel.string() + "\n";
    report.modules.push_back(name);
  }

  for (const char* d : {"bin", "sbin", "proc", "sys", "dev", "run", "tmp", "newroot", "etc/pxedust"}) cpio.addDirectory(d);
  cpio.addCharDevice("dev/console", 5, 1);
  cpio.addCharDevice("dev/null", 1, 3, 0666);

  auto busybox = readAll(options.busybox);
  if (!busybox) return busybox.error();
  auto bbInfo = readElf(*busybox);
  if (!bbInfo) return Error{fmt::format("{}: {}", options.busybox.string(), bbInfo.error().message)};
  if (!bbInfo->interpreter.empty() || !bbInfo->needed.empty())
    return Error{fmt::format("{} is dynamically linked: use a static busybox (Debian: busybox-static)",
                             options.busybox.string())};
  cpio.addFile("bin/busybox", *busybox, 0755);
  cpio.addSymlink("bin/sh", "busybox");

  if (!options.iscsistart.empty()) {
    auto prog = readAll(options.iscsistart);
    if (!prog) return Error{prog.error().message + " (Debian: open-iscsi; or build without iSCSI)"};
    auto info = readElf(*prog);
    if (!info) return Error{fmt::format("{}: {}", options.iscsistart.string(), info.error().message)};
    cpio.addFile("sbin/iscsistart", *prog, 0755);
    if (auto r = addLibraries(cpio, options.libraryRoot, *info, report); !r) return r.error();
  }
  if (!options.nbdAttach.empty()) {
    auto prog = readAll(options.nbdAttach);
    if (!prog) return Error{prog.error().message + " (built with pxedust; or build without NBD)"};
    auto info = readElf(*prog);
    if (!info) return Error{fmt::format("{}: {}", options.nbdAttach.string(), info.error().message)};
    if (!info->interpreter.empty() || !info->needed.empty())
      return Error{fmt::format("{} is dynamically linked: it must outlive the initramfs, so it is built static",
                               options.nbdAttach.string())};
    cpio.addFile("sbin/pxedust-nbd-attach", *prog, 0755);
  }
  cpio.addFile("etc/pxedust/modules", std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(list.data()), list.size()));
  cpio.addFile("etc/pxedust/udhcpc.script", text(kUdhcpcScript), 0755);
  cpio.addFile("init", text(kInitScript), 0755);
  auto out = cpio.finish();
  report.cpioBytes = out.size();
  if (options.gzip) {
    auto packed = gzip(out);
    if (!packed) return packed.error();
    out = std::move(*packed);
  }
  report.bytes = out.size();
  return out;
}

}  // namespace pxedust::initramfs
