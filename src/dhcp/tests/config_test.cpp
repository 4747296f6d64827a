// The [dhcp] section and DHCP's keys on hosts and groups, through the loader.
#include "dhcp/config.hpp"

#include <gtest/gtest.h>

#include "config/tests/errors.hpp"

namespace pxedust::dhcp {
namespace {

config::Config load(std::string_view text) { return config::loadString(text, "t.toml", {schema()}); }

std::string errorOf(std::string_view text) { return config::testing::errorOf(text, {schema()}, "t.toml"); }

TEST(DhcpConfig, Example) {
  auto c = load(R"(
[storage]
dir = "/var/lib/pxd"
[dhcp]
interfaces = ["veth1"]
next_server = "10.9.0.1"
boot = { bios = "pxelinux.0", uefi = "ipxe.efi" }
dns = ["10.9.0.1"]
options = { 150 = "10.9.0.1", 224 = "0a:09" }
[[dhcp.subnet]]
subnet = "10.9.0.0/24"
pools = ["10.9.0.100-10.9.0.199"]
routers = "10.9.0.1"
lease_time = 600
[[group]]
name = "lab"
root_path = "iscsi:10.9.0.1::::iqn.2026-11.org.example:lab"
boot = { bios = "lab.0" }
domain = "lab.example"
[[host]]
name = "alpha"
mac = "52:54:00:00:00:01"
ip = "10.9.0.11"
group = "lab"
root_path = "iscsi:10.9.0.1::::iqn.2026-11.org.example:alpha"
[[host]]
name = "beta"
)");
  const auto* d = configIn(c);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->mode, Mode::Server);
  EXPECT_EQ(d->leaseFile, "/var/lib/pxd/dhcp.leases");
  ASSERT_EQ(d->subnets.size(), 1u);
  const auto& sub = d->subnets[0];
  EXPECT_EQ(sub.toString(), "10.9.0.0/24");
  EXPECT_TRUE(sub.contains(asio::ip::make_address_v4("10.9.0.255")));
  EXPECT_FALSE(sub.contains(asio::ip::make_address_v4("10.9.1.0")));
  EXPECT_EQ(sub.settings.leaseTime, std::chrono::seconds(600));
  ASSERT_EQ(d->settings.options.size(), 2u);
  EXPECT_EQ(d->settings.options[0].code, 150);
  EXPECT_EQ(d->settings.options[0].value, (std::vector<std::uint8_t>{10, 9, 0, 1}));
  EXPECT_EQ(d->settings.options[1].code, 224);  // unknown codes take hex
  EXPECT_EQ(d->settings.options[1].value, (std::vector<std::uint8_t>{10, 9}));

  // The loader applied the group to the host; subnet and [dhcp] are the policy's to add.
  Settings s = settingsOf(c.hosts[0].keys);
  EXPECT_EQ(s.rootPath, "iscsi:10.9.0.1::::iqn.2026-11.org.example:alpha");  // the host's own wins
  EXPECT_EQ(s.boot.bios, "lab.0");
  EXPECT_EQ(s.domain, "lab.example");
  EXPECT_FALSE(s.boot.uefi);
  EXPECT_EQ(settingsOf(c.groups[0].keys).domain, "lab.example");
  EXPECT_FALSE(settingsOf(c.hosts[1].keys).domain);  // no group
  // host < group < subnet < [dhcp]
  s.inherit(sub.settings);
  s.inherit(d->settings);
  EXPECT_EQ(s.boot.uefi, "ipxe.efi");
  EXPECT_EQ(s.nextServer, asio::ip::make_address_v4("10.9.0.1"));
  ASSERT_TRUE(s.routers);
  EXPECT_EQ(s.routers->size(), 1u);
}

// A host's DHCP keys are DHCP's even when the file has no [dhcp] section (another server may be
// the DHCP server of a proxyDHCP setup later): they are read, checked, and not unknown keys.
TEST(DhcpConfig, HostKeysWithoutTheSection) {
  auto c = load("[[host]]\nname = \"a\"\nboot_file = \"x.0\"\n");
  EXPECT_EQ(configIn(c), nullptr);
  EXPECT_EQ(settingsOf(c.hosts[0].keys).boot.any, "x.0");
  EXPECT_NE(errorOf("[[host]]\nname = \"a\"\nnext_server = \"x\"\n").find("t.toml:3:15: host.next_server"),
            std::string::npos);
}

TEST(DhcpConfig, Errors) {
  EXPECT_NE(errorOf("[dhcp]\n[[dhcp.subnet]]\nsubnet = \"10.0.0.0/24\"\n").find("dhcp.interfaces"), std::string::npos);
  EXPECT_NE(errorOf("[dhcp]\ninterfaces = [\"e1\"]\n").find("needs at least one [[dhcp.subnet]]"), std::string::npos);
  EXPECT_NE(errorOf("[dhcp]\ninterfaces = [\"e1\"]\n[[dhcp.subnet]]\nsubnet = \"10.0.0.1/24\"\n").find("host bits"),
            std::string::npos);
  EXPECT_NE(errorOf("[dhcp]\ninterfaces = [\"e1\"]\n[[dhcp.subnet]]\nsubnet = \"10.0.0.0/24\"\n"
                    "pools = [\"10.0.1.1-10.0.1.9\"]\n").find("not inside"),
            std::string::npos);
  EXPECT_NE(errorOf("[dhcp]\ninterfaces = [\"e1\"]\nmode = \"proxy\"\nboot = { bois = \"x\" }\n").find("dhcp.boot.bois: unknown key"),
            std::string::npos);
  EXPECT_NE(errorOf("[dhcp]\ninterfaces = [\"e1\"]\nmode = \"proxy\"\noptions = { 300 = \"x\" }\n").find("options.300"),
            std::string::npos);
  EXPECT_NE(errorOf("[dhcp]\ninterfaces = [\"e1\"]\nmode = \"proxy\"\nnext_server = \"x\"\n").find("t.toml:4:15: dhcp.next_server"),
            std::string::npos) << errorOf("[dhcp]\ninterfaces = [\"e1\"]\nmode = \"proxy\"\nnext_server = \"x\"\n");
  EXPECT_NE(errorOf("[dhcp]\ninterfaces = [\"e1\"]\nmode = \"proxy\"\nanswer_router_solicitations = 1\n").find("expected true or false"),
            std::string::npos);
}

}  // namespace
}  // namespace pxedust::dhcp
