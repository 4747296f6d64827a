#include "cli/demo_image.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "cli/run_program.hpp"

namespace pxedust::cli {
namespace {
namespace fs = std::filesystem;

// The root's init. Lines start with "pxedust-demo:" so the tests and the demo can follow a boot.
// Once up, it tells pxedust so (POST /boot/up from its own address), at pxedust.up=URL from the
// kernel command line, else at port 80 of the DHCP server the initramfs left in /run/pxedust/net.env.
constexpr const char* kDemoInit = R"SH(#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -o remount,rw / 2>/dev/null
mode=poweroff
for arg in $(cat /proc/cmdline); do
  case $arg in pxedust.demo=*) mode=${arg#pxedust.demo=} ;; esac
done
mkdir -p /var/lib/pxedust-demo
n=$(cat /var/lib/pxedust-demo/boot-count 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > /var/lib/pxedust-demo/boot-count
sync
root=$(awk '$2 == "/" && $1 != "rootfs" {print $1}' /proc/mounts | tail -n 1)
echo "pxedust-demo: up host=$(hostname) root=$root boot-count=$n"
serverid=
. /run/pxedust/net.env 2>/dev/null
up=
[ -n "$serverid" ] && up=http://$serverid/boot/up
for arg in $(cat /proc/cmdline); do
  case $arg in pxedust.up=*) up=${arg#pxedust.up=} ;; esac
done
# (busybox 1.35's wget crashes with -T: timeout bounds it instead)
if [ -n "$up" ] && timeout 10 wget -q -O /dev/null --post-data "" "$up" 2>/dev/null; then
  echo "pxedust-demo: reported up to $up"
fi
if [ "$mode" = stay ]; then
  echo "pxedust-demo: shell on the console (poweroff -f to stop)"
  exec sh
fi
mount -o remount,ro / 2>/dev/null
sync
echo "pxedust-demo: powering off"
poweroff -f
)SH";

[[noreturn]] void fail(const std::string& message) {
  fmt::print(stderr, "pxedust: {}\n", message);
  throw CLI::RuntimeError(1);
}

void writeText(const fs::path& p, std::string_view text, fs::perms mode) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f.flush()) fail(fmt::format("{}: cannot write", p.string()));
  fs::permissions(p, mode);
}

struct DemoArgs {
  std::string output = "pxedust-demo.img";
  unsigned sizeMiB = 64;
  std::string busybox = "/bin/busybox";
};

void build(const DemoArgs& a) {
  if (a.sizeMiB < 8 || a.sizeMiB > 65536) fail("--size: expected 8..65536 MiB");
  std::error_code ec;
  char tmpl[] = "/tmp/pxedust-demo-root-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) fail("cannot create a staging directory in /tmp");
  fs::path stage = tmpl;
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(p, e);
    }
  } cleanup{stage};

  for (const char* d : {"bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "run", "tmp", "root",
                        "var/lib/pxedust-demo", "mnt"})
    fs::create_directories(stage / d);
  fs::permissions(stage / "tmp", fs::perms::all | fs::perms::sticky_bit);
  fs::copy_file(a.busybox, stage / "bin/busybox", ec);
  if (ec) fail(fmt::format("{}: {} (Debian: busybox-static)", a.busybox, ec.message()));
  fs::permissions(stage / "bin/busybox", fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                             fs::perms::others_read | fs::perms::others_exec);
  // One symlink per applet busybox has (`busybox --list-full` names them with their directories). The
  // copy in the staging directory runs, not --busybox: its path is ours (mkdtemp), so the shell that
  // popen starts never sees a user-given path with spaces or quotes in it.
  const std::string listCommand = fmt::format("'{}' --list-full", (stage / "bin/busybox").string());
  FILE* list = ::popen(listCommand.c_str(), "r");
  if (list == nullptr) fail("cannot run busybox --list-full");
  char line[256];
  std::size_t applets = 0;
  while (std::fgets(line, sizeof line, list) != nullptr) {
    std::string path(line);
    while (!path.empty() && (path.back() == '\n' || path.back() == '\r')) path.pop_back();
    if (path.empty() || path.find("..") != std::string::npos || path == "bin/busybox") continue;
    fs::path target = stage / path;
    if (fs::exists(fs::symlink_status(target))) continue;
    fs::create_directories(target.parent_path());
    auto rel = fs::relative(stage / "bin/busybox", target.parent_path());
    fs::create_symlink(rel, target, ec);
    if (!ec) ++applets;
  }
  ::pclose(list);
  if (applets < 10) fail(fmt::format("{} lists only {} applets: is it busybox?", a.busybox, applets));
  fs::remove(stage / "sbin/init", ec);
  writeText(stage / "sbin/init", kDemoInit, fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read |
                                                fs::perms::group_exec | fs::perms::others_exec);
  writeText(stage / "etc/hostname", "pxedust-demo\n", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
  writeText(stage / "etc/fstab", "", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
  writeText(stage / "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
  writeText(stage / "etc/group", "root:x:0:\n", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
  writeText(stage / "var/lib/pxedust-demo/boot-count", "0\n", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);

  std::string tmp = a.output + ".tmp";
  fs::remove(tmp, ec);
  // -E root_owner: files belong to root whoever builds; no resize inode or journal tuning needed.
  int rc = runProgram({"mke2fs", "-q", "-F", "-t", "ext4", "-L", "pxedust-demo", "-E", "root_owner=0:0", "-d",
                       stage.string(), tmp, fmt::format("{}M", a.sizeMiB)});
  if (rc != 0) fail(fmt::format("mke2fs failed (exit {}); it comes with e2fsprogs", rc));
  fs::rename(tmp, a.output, ec);
  if (ec) fail(fmt::format("{}: {}", a.output, ec.message()));
  fmt::print("wrote {} ({} MiB ext4: busybox with {} applets, /sbin/init counts boots)\n", a.output, a.sizeMiB, applets);
  fmt::print("import it with: pxedust image import {} --name demo\n", a.output);
}

}  // namespace

void addDemoImageCommand(CLI::App& image) {
  auto a = std::make_shared<DemoArgs>();
  auto* b = image.add_subcommand("build-demo", "Build a small bootable ext4 root (busybox) for tests and the demo");
  b->add_option("-o,--output", a->output, "Output image file")->capture_default_str();
  b->add_option("--size", a->sizeMiB, "Size in MiB")->capture_default_str();
  b->add_option("--busybox", a->busybox, "Static busybox (Debian: busybox-static)")->capture_default_str();
  b->callback([a] { build(*a); });
}

}  // namespace pxedust::cli
