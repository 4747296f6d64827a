// check-config's warnings: boot files that no client will ever be sent, NBD settings that take no effect.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "daemon/checks.hpp"
#include "daemon/daemon.hpp"

namespace fs = std::filesystem;

namespace pxedust::daemon {
namespace {

class ChecksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("pxedust-checks-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "root");
    std::ofstream(dir_ / "root" / "vmlinuz") << "k";
    std::ofstream(dir_ / "root" / "snponly.efi") << "e";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::vector<std::string> warnings(const std::string& text) {
    std::ofstream(dir_ / "pxedust.toml") << text;
    return configWarnings(loadConfig((dir_ / "pxedust.toml").string()));
  }
  std::string http(const std::string& extra = "") {
    return "[http]\nlisten = [\"0.0.0.0:8080\"]\nroot = \"" + (dir_ / "root").string() + "\"\n" + extra;
  }
  fs::path dir_;
};

TEST_F(ChecksTest, ARootProtocolWithoutItsSectionIsNamed) {
  const std::string hosts =
      "[[group]]\nname = \"lab\"\nroot_protocol = \"nbd\"\nimage = \"debian\"\n"
      "[[host]]\nname = \"alpha\"\nip = \"10.0.0.11\"\ngroup = \"lab\"\n";
  auto w = warnings("[iscsi]\nlisten = [\"10.0.0.1\"]\n" + hosts);
  ASSERT_EQ(w.size(), 1U);
  EXPECT_EQ(w[0], "nbd: root_protocol = \"nbd\" on alpha, but the file has no [nbd] section: they get no root-path");
  EXPECT_TRUE(warnings("[nbd]\nlisten = [\"10.0.0.1\"]\n" + hosts).empty());
  // Root in RAM is copied over NBD too.
  const std::string ram = "[[host]]\nname = \"beta\"\nip = \"10.0.0.12\"\nimage = \"debian\"\nroot_protocol = \"ram\"\n";
  w = warnings("[iscsi]\nlisten = [\"10.0.0.1\"]\n" + ram);
  ASSERT_EQ(w.size(), 1U);
  EXPECT_EQ(w[0], "nbd: root_protocol = \"ram\" on beta, but the file has no [nbd] section: they get no root-path");
  EXPECT_TRUE(warnings("[nbd]\nlisten = [\"10.0.0.1\"]\nimage_exports = true\n" + ram).empty());
  // And an NFS root over NFS.
  const std::string nfs = "[[host]]\nname = \"gamma\"\nip = \"10.0.0.13\"\nimage = \"debian\"\nroot_protocol = \"nfs\"\n";
  w = warnings("[iscsi]\nlisten = [\"10.0.0.1\"]\n" + nfs);
  ASSERT_EQ(w.size(), 1U);
  EXPECT_EQ(w[0], "nfs: root_protocol = \"nfs\" on gamma, but the file has no [nfs] section: they get no root-path");
  EXPECT_TRUE(warnings("[nfs]\nlisten = [\"10.0.0.1\"]\n" + nfs).empty());
}

TEST_F(ChecksTest, PskIdentitiesThatOpenNothingAndHostsWithoutOne) {
  const std::string key(64, 'a');
  std::ofstream(dir_ / "keys.psk") << "alpha:" << key << "\nadmin:" << key << "\n";
  const std::string hosts =
      "[[host]]\nname = \"alpha\"\nip = \"10.0.0.11\"\nimage = \"debian\"\n"
      "[[host]]\nname = \"beta\"\nip = \"10.0.0.12\"\nimage = \"debian\"\n";
  auto w = warnings("[nbd]\ntls = \"require\"\ntls_psk_file = \"" + (dir_ / "keys.psk").string() + "\"\n" + hosts);
  ASSERT_EQ(w.size(), 2U);
  EXPECT_EQ(w[0], "nbd: tls_psk_file identities that name no host exported over NBD, so a client with them can "
                  "open nothing: admin");
  EXPECT_EQ(w[1], "nbd: tls = \"require\" with pre-shared keys only: hosts without an identity in tls_psk_file "
                  "cannot open their exports: beta");
  // "optional": beta may still come in the clear; only the stray identity is worth a word.
  w = warnings("[nbd]\ntls = \"optional\"\ntls_psk_file = \"" + (dir_ / "keys.psk").string() + "\"\n" + hosts);
  ASSERT_EQ(w.size(), 1U);
}

TEST_F(ChecksTest, AllFilesPresentSaysNothing) {
  EXPECT_TRUE(warnings(http("kernel = \"vmlinuz\"\n")).empty());
}

TEST_F(ChecksTest, MissingBootFilesAreNamedWithTheirHosts) {
  auto w = warnings(http("kernel = \"vmlinuz\"\ninitrd = [\"initrd.img\", \"http://10.0.0.2/fw.cpio\"]\n") +
                    "[dhcp]\ninterfaces = [\"eth1\"]\nboot = { uefi = \"ipxe.efi\" }\n"
                    "[[dhcp.subnet]]\nsubnet = \"10.0.0.0/24\"\n"
                    "[[host]]\nname = \"a\"\nmac = \"52:54:00:00:00:01\"\nkernel = \"other\"\n"
                    "[[host]]\nname = \"b\"\nmac = \"52:54:00:00:00:02\"\n");
  ASSERT_EQ(w.size(), 3u) << fmt::format("{}", fmt::join(w, "\n"));
  EXPECT_NE(w[0].find("initrd \"initrd.img\" ([http], a, b)"), std::string::npos) << w[0];
  EXPECT_NE(w[1].find("kernel \"other\" (a)"), std::string::npos) << w[1];
  EXPECT_NE(w[2].find("boot program \"ipxe.efi\""), std::string::npos) << w[2];
}

// dnsmasq habits: ipxe_script in [dhcp] with [http]'s scripts configured means they are never sent.
TEST_F(ChecksTest, IpxeScriptInDhcpHidesTheHttpScripts) {
  auto w = warnings(http("kernel = \"vmlinuz\"\n") +
                    "[dhcp]\ninterfaces = [\"eth1\"]\nipxe_script = \"boot.ipxe\"\n"
                    "[[dhcp.subnet]]\nsubnet = \"10.0.0.0/24\"\n");
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("never used"), std::string::npos) << w[0];
}

}  // namespace
}  // namespace pxedust::daemon
