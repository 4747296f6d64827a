#include "cli/initramfs_command.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "initramfs/builder.hpp"

namespace pxedust::cli {
namespace {

struct InitramfsArgs {
  std::string kernelRoot = "/";
  std::string kernel;
  std::string output;
  std::string busybox = "/bin/busybox";
  std::string iscsistart = "/sbin/iscsistart";
  std::string nbdAttach;  // empty: pxedust-nbd-attach beside this binary
  bool noIscsi = false;
  bool noNbd = false;
  bool noCompress = false;
  std::vector<std::string> modules;
  std::vector<std::string> addModules;
};

[[noreturn]] void fail(const std::string& message) {
  fmt::print(stderr, "pxedust: {}\n", message);
  throw CLI::RuntimeError(1);
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s.empty() ? "-" : s;
}

void run(const InitramfsArgs& a) {
  auto mods = initramfs::findModulesDir(a.kernelRoot, a.kernel);
  if (!mods) fail(mods.error().message + " (--kernel-root DIR: / or an unpacked kernel package; --kernel VERSION)");
  initramfs::BuildOptions o;
  o.modulesDir = *mods;
  o.busybox = a.busybox;
  if (!a.noIscsi) o.iscsistart = a.iscsistart;
  else o.iscsistart.clear();
  // NBD roots need pxedust-nbd-attach, built and installed beside pxedust.
  std::string nbdNote;
  if (!a.noNbd) {
    std::error_code ec;
    auto beside = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path() / "pxedust-nbd-attach";
    if (!a.nbdAttach.empty()) {
      o.nbdAttach = a.nbdAttach;
    } else if (!ec && std::filesystem::exists(beside, ec)) {
      o.nbdAttach = beside;
    } else {
      nbdNote = fmt::format("no ({} not found; --nbd-attach PATH): hosts with root_protocol = \"nbd\" cannot boot with it",
                            beside.string());
    }
  } else {
    nbdNote = "no (--no-nbd)";
  }
  o.libraryRoot = "/";
  o.gzip = !a.noCompress;
  if (!a.modules.empty()) o.modules = a.modules;
  o.modules.insert(o.modules.end(), a.addModules.begin(), a.addModules.end());
  initramfs::BuildReport r;
  auto img = initramfs::build(o, r);
  if (!img) fail(img.error().message);
  std::string out = a.output.empty() ? fmt::format("initramfs-{}.img", r.kernelVersion) : a.output;
  std::string tmp = out + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(img->data()), static_cast<std::streamsize>(img->size()));
    if (!f.flush()) fail(fmt::format("{}: cannot write", tmp));
  }
  if (std::rename(tmp.c_str(), out.c_str()) != 0) fail(fmt::format("{}: cannot rename to {}", tmp, out));
  fmt::print("wrote {} ({:.1f} MiB{}) for kernel {}\n", out, static_cast<double>(r.bytes) / (1 << 20),
             o.gzip ? fmt::format(", gzip of a {:.1f} MiB cpio", static_cast<double>(r.cpioBytes) / (1 << 20)) : "",
             r.kernelVersion);
  fmt::print("  modules:   {}\n", join(r.modules));
  fmt::print("  built in:  {}\n", join(r.builtin));
  if (!r.missing.empty()) fmt::print("  not found: {} (neither a module nor built into this kernel)\n", join(r.missing));
  fmt::print("  iscsi:     {}\n", o.iscsistart.empty() ? "no" : o.iscsistart.string());
  fmt::print("  nbd:       {}\n", o.nbdAttach.empty() ? nbdNote : o.nbdAttach.string());
  // NFS roots need the kernel's NFS v3 client and overlayfs, as modules or built in.
  auto has = [&](const char* m) {
    return std::find(r.modules.begin(), r.modules.end(), m) != r.modules.end() ||
           std::find(r.builtin.begin(), r.builtin.end(), m) != r.builtin.end();
  };
  std::string nfsMissing;
  for (const char* m : {"nfsv3", "overlay"})
    if (!has(m)) nfsMissing += (nfsMissing.empty() ? "" : ", ") + std::string(m);
  fmt::print("  nfs:       {}\n", nfsMissing.empty() ? std::string("yes (nfsv3, overlay)")
                                                      : "no (" + nfsMissing +
                                                            " not in it): hosts with root_protocol = \"nfs\" "
                                                            "cannot boot with it");
  fmt::print("  libraries: {}\n", join(r.libraries));
}

}  // namespace

void addInitramfsCommands(CLI::App& app) {
  auto* ir = app.add_subcommand("initramfs", "Build the initramfs a diskless client boots its root with");
  ir->require_subcommand(1);
  auto a = std::make_shared<InitramfsArgs>();
  auto* b = ir->add_subcommand("build", "Write an initramfs: DHCP, an iSCSI, NBD or NFS root from pxedust, switch_root");
  b->add_option("--kernel-root", a->kernelRoot, "Root holding lib/modules/VERSION (/ or an unpacked kernel package)")
      ->capture_default_str();
  b->add_option("-k,--kernel", a->kernel, "Kernel version (default: the only one under --kernel-root)");
  b->add_option("-o,--output", a->output, "Output file (default: initramfs-VERSION.img)");
  b->add_option("--busybox", a->busybox, "Static busybox (Debian: busybox-static)")->capture_default_str();
  b->add_option("--iscsistart", a->iscsistart, "open-iscsi's iscsistart (Debian: open-iscsi)")->capture_default_str();
  b->add_flag("--no-iscsi", a->noIscsi, "Leave iSCSI out (network smoke tests)");
  b->add_option("--nbd-attach", a->nbdAttach, "pxedust-nbd-attach, for NBD roots (default: the one beside this binary)");
  b->add_flag("--no-nbd", a->noNbd, "Leave NBD out");
  b->add_flag("--no-compress", a->noCompress, "Write the cpio archive as it is (default: gzip)");
  b->add_option("--modules", a->modules, "Modules instead of the default set")->delimiter(',');
  b->add_option("--add-module", a->addModules, "Modules in addition to the default set")->delimiter(',');
  b->callback([a] { run(*a); });
}

}  // namespace pxedust::cli
