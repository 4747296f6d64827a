#include <gtest/gtest.h>
#include <zlib.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "initramfs/builder.hpp"
#include "initramfs/cpio.hpp"
#include "initramfs/elf.hpp"

namespace pxedust::initramfs {
namespace {
namespace fs = std::filesystem;
using namespace std::string_literals;

// A minimal ELF64 relocatable file whose only real section is .modinfo, like a kernel module's.
std::vector<std::uint8_t> fakeModule(const std::string& modinfo) {
  const std::string shstr("\0.modinfo\0.shstrtab\0", 20);
  const std::uint64_t infoOff = 64, strOff = infoOff + modinfo.size();
  const std::uint64_t shoff = (strOff + shstr.size() + 7) & ~std::uint64_t{7};
  std::vector<std::uint8_t> f(shoff + 3 * 64, 0);
  std::memcpy(f.data(), "\x7f" "ELF", 4);
  f[4] = 2, f[5] = 1, f[6] = 1;
  std::memcpy(f.data() + infoOff, modinfo.data(), modinfo.size());
  std::memcpy(f.data() + strOff, shstr.data(), shstr.size());
  auto put = [&](std::size_t at, auto v) { std::memcpy(f.data() + at, &v, sizeof v); };
  put(0x28, shoff);
  put(0x3A, std::uint16_t{64});
  put(0x3C, std::uint16_t{3});
  put(0x3E, std::uint16_t{2});
  put(shoff + 64 + 0, std::uint32_t{1});  // .modinfo
  put(shoff + 64 + 24, infoOff);
  put(shoff + 64 + 32, std::uint64_t{modinfo.size()});
  put(shoff + 128 + 0, std::uint32_t{10});  // .shstrtab
  put(shoff + 128 + 24, strOff);
  put(shoff + 128 + 32, std::uint64_t{shstr.size()});
  return f;
}

void writeFile(const fs::path& p, std::span<const std::uint8_t> b) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

struct TempDir {
  TempDir() {
    char t[] = "/tmp/pxedust-initramfs-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path path;
};

TEST(Cpio, NewcHeaderKnownAnswer) {
  CpioWriter w;
  std::uint8_t data[] = {'h', 'i', '\n'};
  w.addFile("a", data);
  auto out = w.finish();
  std::string s(out.begin(), out.end());
  // ino 1, mode 0100644, nlink 1, size 3, namesize 2 ("a\0"), then the name padded to 4 bytes.
  EXPECT_EQ(s.substr(0, 110),
            "070701" "00000001" "000081a4" "00000000" "00000000" "00000001" "00000000" "00000003"
            "00000000" "00000000" "00000000" "00000000" "00000002" "00000000");
  EXPECT_EQ(s.substr(110, 6), std::string("a\0hi\n\0", 6));  // 110 + 2 name bytes is aligned: data follows
  EXPECT_EQ(out.size() % 512, 0U);
  EXPECT_NE(s.find("TRAILER!!!"), std::string::npos);
}

TEST(Cpio, ListedByCpioTool) {
  if (::access("/usr/bin/cpio", X_OK) != 0) GTEST_SKIP() << "cpio not installed";
  TempDir dir;
  CpioWriter w;
  std::uint8_t data[] = {1, 2, 3, 4, 5};
  w.addFile("lib/modules/x/y.ko", data);
  w.addSymlink("bin/sh", "busybox");
  w.addCharDevice("dev/console", 5, 1);
  auto out = w.finish();
  writeFile(dir.path / "a.cpio", out);
  std::string cmd = "cd " + dir.path.string() + " && mkdir x && cd x && cpio -idm --quiet < ../a.cpio 2>&1 && find . | sort";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string listing;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p) != nullptr) listing += buf;
  ::pclose(p);
  EXPECT_EQ(listing, ".\n./bin\n./bin/sh\n./dev\n./dev/console\n./lib\n./lib/modules\n./lib/modules/x\n./lib/modules/x/y.ko\n");
  EXPECT_EQ(fs::file_size(dir.path / "x/lib/modules/x/y.ko"), 5U);
  EXPECT_EQ(fs::read_symlink(dir.path / "x/bin/sh"), "busybox");
}

TEST(Elf, ReadsModinfoAndDynamicSections) {
  auto mod = readElf(fakeModule("license=GPL\0depends=libiscsi,scsi_transport_iscsi\0"s));
  ASSERT_TRUE(mod) << mod.error().message;
  ASSERT_EQ(mod->modinfo.size(), 2U);
  EXPECT_EQ(mod->modinfo[1], "depends=libiscsi,scsi_transport_iscsi");

  auto ls = readElfFile("/bin/ls");  // a dynamically linked program on every Debian system
  ASSERT_TRUE(ls) << ls.error().message;
  EXPECT_NE(ls->interpreter.find("ld-linux"), std::string::npos);
  EXPECT_NE(std::find(ls->needed.begin(), ls->needed.end(), "libc.so.6"), ls->needed.end());
}

TEST(Elf, RefusesBrokenFiles) {
  EXPECT_FALSE(readElf(std::vector<std::uint8_t>{}));
  EXPECT_FALSE(readElf(std::vector<std::uint8_t>(64, 0)));
  auto m = fakeModule("depends=a");
  for (std::size_t cut : {70UL, m.size() - 50, m.size() - 100}) {  // into the headers it reads
    std::vector<std::uint8_t> t(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(cut));
    EXPECT_FALSE(readElf(t)) << cut;  // truncated: an error, never a read past the end
  }
}

TEST(Builder, ModulesInDependencyOrderAndStaticBusybox) {
  TempDir dir;
  fs::path mods = dir.path / "lib/modules/6.1.0-test";
  writeFile(mods / "kernel/drivers/scsi/iscsi_tcp.ko",
            fakeModule("depends=libiscsi_tcp,libiscsi\0"s));
  writeFile(mods / "kernel/drivers/scsi/libiscsi_tcp.ko", fakeModule("depends=libiscsi\0"s));
  writeFile(mods / "kernel/drivers/scsi/libiscsi.ko", fakeModule("depends=scsi_transport_iscsi\0"s));
  writeFile(mods / "kernel/drivers/scsi/scsi_transport_iscsi.ko", fakeModule("depends=\0"s));
  std::string builtin = "kernel/fs/ext4/ext4.ko\n";
  writeFile(mods / "modules.builtin", std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(builtin.data()), builtin.size()));

  auto found = findModulesDir(dir.path, "");
  ASSERT_TRUE(found) << found.error().message;
  EXPECT_EQ(*found, mods);

  BuildOptions o;
  o.modulesDir = mods;
  o.iscsistart.clear();
  o.modules = {"iscsi-tcp", "ext4", "nosuch"};
  if (::access("/bin/busybox", R_OK) == 0) {
    BuildReport r;
    auto packed = build(o, r);  // gzip by default: the kernel inflates it
    ASSERT_TRUE(packed) << packed.error().message;
    ASSERT_GT(packed->size(), 2U);
    EXPECT_EQ((*packed)[0], 0x1f);
    EXPECT_EQ((*packed)[1], 0x8b);
    EXPECT_EQ(r.bytes, packed->size());
    std::vector<std::uint8_t> inflated(r.cpioBytes + 1);
    z_stream z{};
    ASSERT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = packed->data();
    z.avail_in = static_cast<uInt>(packed->size());
    z.next_out = inflated.data();
    z.avail_out = static_cast<uInt>(inflated.size());
    EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
    inflated.resize(z.total_out);
    inflateEnd(&z);
    EXPECT_EQ(inflated.size(), r.cpioBytes);

    o.gzip = false;
    r = BuildReport{};
    auto img = build(o, r);
    ASSERT_TRUE(img) << img.error().message;
    EXPECT_EQ(r.modules, (std::vector<std::string>{"scsi_transport_iscsi", "libiscsi", "libiscsi_tcp", "iscsi_tcp"}));
    EXPECT_EQ(r.builtin, std::vector<std::string>{"ext4"});
    EXPECT_EQ(r.missing, std::vector<std::string>{"nosuch"});
    EXPECT_EQ(r.kernelVersion, "6.1.0-test");
    EXPECT_EQ(*img, inflated);  // the same archive, byte for byte
    std::string s(img->begin(), img->end());
    EXPECT_NE(s.find("say \"start kernel="), std::string::npos);  // /init is in
    EXPECT_NE(s.find("kernel/drivers/scsi/libiscsi.ko\nkernel/drivers/scsi/libiscsi_tcp.ko\n"), std::string::npos);
  }
  if (::access("/bin/busybox", R_OK) == 0) {
    // The NBD attach tool outlives the initramfs: a dynamically linked one is refused.
    o.nbdAttach = "/bin/ls";
    BuildReport r3;
    auto dynamic = build(o, r3);
    ASSERT_FALSE(dynamic);
    EXPECT_NE(dynamic.error().message.find("built static"), std::string::npos) << dynamic.error().message;
    o.nbdAttach = "/bin/busybox";  // a static binary: in, as sbin/pxedust-nbd-attach, with no libraries
    auto img = build(o, r3);
    ASSERT_TRUE(img) << img.error().message;
    std::string text(img->begin(), img->end());
    EXPECT_NE(text.find("sbin/pxedust-nbd-attach"), std::string::npos);
    EXPECT_TRUE(r3.libraries.empty());
    o.nbdAttach.clear();
  }
  o.busybox = "/bin/ls";  // dynamically linked: refused with the package to install
  BuildReport r2;
  auto bad = build(o, r2);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("busybox-static"), std::string::npos);

  o.modules = {"iscsi_tcp"};
  fs::remove(mods / "kernel/drivers/scsi/libiscsi.ko");
  auto missingDep = build(o, r2);
  ASSERT_FALSE(missingDep);
  EXPECT_NE(missingDep.error().message.find("needs libiscsi"), std::string::npos) << missingDep.error().message;
}

}  // namespace
}  // namespace pxedust::initramfs
