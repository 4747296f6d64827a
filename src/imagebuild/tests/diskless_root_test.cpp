// prepareDisklessRoot() on a small tree shaped like a Debian root: what one host's identity was in
// it is gone, ifupdown keeps lo only, the units are installed and enabled; applying it twice is the
// same as once.
#include "imagebuild/diskless_root.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace pxedust::imagebuild {
namespace {
namespace fs = std::filesystem;

struct Tree {
  fs::path root;
  Tree() {
    char t[] = "/tmp/pxedust-tree-XXXXXX";
    root = ::mkdtemp(t);
  }
  ~Tree() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  void write(const std::string& rel, const std::string& text) const {
    fs::create_directories((root / rel).parent_path());
    std::ofstream(root / rel) << text;
  }
  [[nodiscard]] std::string read(const std::string& rel) const {
    std::ifstream f(root / rel);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
};

TEST(DisklessRoot, DebianShapedTree) {
  Tree t;
  t.write("etc/hostname", "buildhost\n");
  t.write("etc/machine-id", "0123456789abcdef0123456789abcdef\n");
  t.write("var/lib/dbus/machine-id", "0123456789abcdef0123456789abcdef\n");
  t.write("etc/resolv.conf", "nameserver 192.0.2.53\n");
  t.write("etc/ssh/ssh_host_ed25519_key", "secret");
  t.write("etc/ssh/ssh_host_ed25519_key.pub", "public");
  t.write("etc/ssh/sshd_config", "# kept\n");
  t.write("usr/sbin/sshd", "");
  t.write("sbin/ifup", "");
  t.write("etc/network/interfaces",
          "source /etc/network/interfaces.d/*\n\nauto lo eth0\niface lo inet loopback\n\n"
          "iface eth0 inet dhcp\n  hostname x\n\n# a comment\n");
  t.write("etc/network/interfaces.d/ens3", "allow-hotplug ens3\niface ens3 inet dhcp\n");

  auto done = prepareDisklessRoot(t.root, {{"ssh-ed25519 AAAA test"}});
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_FALSE(fs::exists(t.root / "etc/hostname"));
  EXPECT_EQ(t.read("etc/machine-id"), "");
  EXPECT_EQ(fs::read_symlink(t.root / "var/lib/dbus/machine-id"), "/etc/machine-id");
  EXPECT_EQ(fs::read_symlink(t.root / "etc/resolv.conf"), "../run/pxedust/resolv.conf");
  EXPECT_FALSE(fs::exists(t.root / "etc/ssh/ssh_host_ed25519_key"));
  EXPECT_FALSE(fs::exists(t.root / "etc/ssh/ssh_host_ed25519_key.pub"));
  EXPECT_TRUE(fs::exists(t.root / "etc/ssh/sshd_config"));
  EXPECT_TRUE(fs::exists(t.root / "etc/systemd/system/multi-user.target.wants/pxedust-ssh-host-keys.service"));
  EXPECT_TRUE(fs::exists(t.root / "etc/systemd/system/multi-user.target.wants/pxedust-report-up.service"));
  EXPECT_TRUE((fs::status(t.root / "usr/lib/pxedust/report-up").permissions() & fs::perms::owner_exec) != fs::perms::none);
  EXPECT_EQ(t.read("root/.ssh/authorized_keys"), "ssh-ed25519 AAAA test\n");

  auto ifs = t.read("etc/network/interfaces");
  EXPECT_NE(ifs.find("\nauto lo\n"), std::string::npos) << ifs;
  EXPECT_NE(ifs.find("iface lo inet loopback\n"), std::string::npos) << ifs;
  EXPECT_NE(ifs.find("# iface eth0 inet dhcp\n#   hostname x\n"), std::string::npos) << ifs;
  EXPECT_NE(ifs.find("\n# a comment\n"), std::string::npos) << ifs;
  auto ens3 = t.read("etc/network/interfaces.d/ens3");
  EXPECT_EQ(ens3.find("\nallow-hotplug"), std::string::npos) << ens3;
  EXPECT_NE(ens3.find("# iface ens3 inet dhcp"), std::string::npos) << ens3;
  bool said = false;
  for (const auto& line : *done) said = said || line.find("eth0") != std::string::npos;
  EXPECT_TRUE(said);

  // Again: nothing left to disable, the same files.
  auto again = prepareDisklessRoot(t.root, {});
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(t.read("etc/network/interfaces"), ifs);
  EXPECT_EQ(fs::read_symlink(t.root / "etc/resolv.conf"), "../run/pxedust/resolv.conf");
}

TEST(DisklessRoot, RefusesWhatIsNotARoot) {
  Tree t;
  EXPECT_FALSE(prepareDisklessRoot(t.root / "nosuch", {}));
  EXPECT_FALSE(prepareDisklessRoot(t.root, {}));  // no etc/
}

TEST(DisklessRoot, FindsTheOneKernel) {
  Tree t;
  EXPECT_FALSE(findKernel(t.root));
  t.write("boot/vmlinuz-6.1.0-9-amd64", "k");
  EXPECT_FALSE(findKernel(t.root));  // no modules for it
  fs::create_directories(t.root / "lib/modules/6.1.0-9-amd64");
  auto k = findKernel(t.root);
  ASSERT_TRUE(k) << k.error().message;
  EXPECT_EQ(k->version, "6.1.0-9-amd64");
  EXPECT_EQ(k->vmlinuz, t.root / "boot/vmlinuz-6.1.0-9-amd64");
}

}  // namespace
}  // namespace pxedust::imagebuild
