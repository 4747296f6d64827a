#include "config/config.hpp"

#include <gtest/gtest.h>

using namespace pxedust::config;

namespace {
std::string errorOf(std::string_view text) {
  try {
    loadString(text, "test.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Config, FullExample) {
  auto c = loadString(R"(
[log]
level = "debug"
[daemon]
shutdown_grace = 2.5
[tftp]
listen = ["127.0.0.1:6969", "[::1]"]
root = "/srv/tftp"
transfer_ports = [30000, 30099]
max_blksize = 1468
timeout = 0.5
client_rate = 0
per_host = [ { request = "/boot.cfg", file = "hosts/{name}/boot.cfg" } ]
[[group]]
name = "lab"
[[host]]
name = "alpha"
mac = "52:54:00:00:00:01"
ip = "10.9.0.11"
group = "lab"
[[host]]
name = "beta"
)",
                      "test.toml");
  EXPECT_EQ(c.log.level, pxedust::log::Level::Debug);
  EXPECT_EQ(c.daemon.shutdownGrace.count(), 2500);
  ASSERT_TRUE(c.tftp.enabled);
  ASSERT_EQ(c.tftp.listen.size(), 2u);
  EXPECT_EQ(c.tftp.listen[0].toString(), "127.0.0.1:6969");
  EXPECT_EQ(c.tftp.listen[1].toString(), "[::1]:69");
  EXPECT_EQ(c.tftp.transferPortLow, 30000);
  EXPECT_EQ(c.tftp.maxBlksize, 1468u);
  EXPECT_EQ(c.tftp.timeout.count(), 500);
  EXPECT_EQ(c.tftp.clientRate, 0.0);
  ASSERT_EQ(c.tftp.perHost.size(), 1u);
  EXPECT_EQ(c.tftp.perHost[0].request, "boot.cfg");
  ASSERT_EQ(c.hosts.size(), 2u);
  EXPECT_EQ(c.hosts[0].mac->toString(), "52:54:00:00:00:01");
  EXPECT_EQ(c.hosts[0].ip->to_string(), "10.9.0.11");
  EXPECT_EQ(c.hosts[0].group, "lab");
  EXPECT_FALSE(c.hosts[1].mac);
}

TEST(Config, DefaultsWithoutSections) {
  auto c = loadString("", "empty.toml");
  EXPECT_FALSE(c.tftp.enabled);
  EXPECT_EQ(c.log.level, pxedust::log::Level::Info);
}

TEST(Config, TftpDefaultListen) {
  auto c = loadString("[tftp]\nroot = \"/x\"\n", "t.toml");
  ASSERT_EQ(c.tftp.listen.size(), 1u);
  EXPECT_EQ(c.tftp.listen[0].toString(), "0.0.0.0:69");
}

TEST(Config, ErrorsNameFileLineAndKey) {
  EXPECT_EQ(errorOf("[tftp]\nroot = \"/x\"\nmax_blksize = 70000\n"),
            "test.toml:3:15: tftp.max_blksize: expected an integer in 512..65464, got 70000");
  EXPECT_EQ(errorOf("[tftp]\nroot = \"/x\"\nblksize = 1\n"), "test.toml:3:1: tftp.blksize: unknown key");
  EXPECT_EQ(errorOf("[tftp]\nlisten = [\"1.2.3.4\"]\n"),
            "test.toml:1:1: tftp.root: missing required key 'root' in [tftp]");
  EXPECT_EQ(errorOf("[tftp]\nroot = 5\n"), "test.toml:2:8: tftp.root: expected a string, got an integer");
}

TEST(Config, RejectsBadValues) {
  EXPECT_NE(errorOf("[tftpd]\n").find("test.toml:1:2: tftpd: unknown key"), std::string::npos);
  EXPECT_NE(errorOf("[log]\nlevel = \"loud\"\n").find("log.level: expected one of"), std::string::npos);
  EXPECT_NE(errorOf("[tftp]\nroot=\"/x\"\nlisten=[\"1.2.3.4:99999\"]\n").find("tftp.listen"), std::string::npos);
  EXPECT_NE(errorOf("[tftp]\nroot=\"/x\"\nlisten=[\"1.2.3.4\", \"1.2.3.4:69\"]\n").find("listed twice"), std::string::npos);
  EXPECT_NE(errorOf("[tftp]\nroot=\"/x\"\ntransfer_ports=[5,4]\n").find("low <= high"), std::string::npos);
  EXPECT_NE(errorOf("[tftp]\nroot=\"/x\"\nper_host=[{request=\"a\", file=\"../{name}\"}]\n").find("'..'"), std::string::npos);
  EXPECT_NE(errorOf("[tftp]\nroot=\"/x\"\nper_host=[{request=\"a\", file=\"{hostname}\"}]\n").find("unknown variable {hostname}"), std::string::npos);
  EXPECT_NE(errorOf("[tftp]\nroot=\"/x\"\nper_host=[{request=\"a\", file=\"x\", extra=1}]\n").find("tftp.per_host.extra: unknown key"), std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname=\"a/b\"\n").find("not a host name"), std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname=\"a\"\nmac=\"zz\"\n").find("expected a MAC"), std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname=\"a\"\nip=\"10.0.0.300\"\n").find("expected an IPv4"), std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname=\"a\"\ngroup=\"nope\"\n").find("no [[group]] is named 'nope'"), std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname=\"a\"\n[[host]]\nname=\"a\"\n").find("already defined at line 1"), std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname=\"a\"\nmac=\"52:54:00:00:00:01\"\n[[host]]\nname=\"b\"\nmac=\"52-54-00-00-00-01\"\n")
                .find("already belongs to host 'a'"),
            std::string::npos);
  EXPECT_NE(errorOf("[tftp\n").find("test.toml:1:"), std::string::npos);
}

TEST(Config, SocketAddressParsing) {
  EXPECT_EQ(parseSocketAddress("10.0.0.1", 69)->toString(), "10.0.0.1:69");
  EXPECT_EQ(parseSocketAddress("[fe80::1]:4011", 69)->toString(), "[fe80::1]:4011");
  EXPECT_EQ(parseSocketAddress("::", 69)->toString(), "[::]:69");
  EXPECT_EQ(parseSocketAddress("10.0.0.1:0", 69)->toString(), "10.0.0.1:0");  // the kernel picks the port
  EXPECT_FALSE(parseSocketAddress("10.0.0.1:65536", 69));
  EXPECT_FALSE(parseSocketAddress("10.0.0.1:x", 69));
  EXPECT_FALSE(parseSocketAddress("host.example:69", 69));
  EXPECT_FALSE(parseSocketAddress("[::1", 69));
}

TEST(Config, Dhcp) {
  auto c = loadString(R"(
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
[[host]]
name = "alpha"
mac = "52:54:00:00:00:01"
ip = "10.9.0.11"
group = "lab"
root_path = "iscsi:10.9.0.1::::iqn.2026-11.org.example:alpha"
)", "t.toml");
  ASSERT_TRUE(c.dhcp.enabled);
  EXPECT_EQ(c.dhcp.mode, DhcpMode::Server);
  EXPECT_EQ(c.dhcp.leaseFile, "/var/lib/pxd/dhcp.leases");
  ASSERT_EQ(c.dhcp.subnets.size(), 1u);
  const auto& sub = c.dhcp.subnets[0];
  EXPECT_EQ(sub.toString(), "10.9.0.0/24");
  EXPECT_TRUE(sub.contains(asio::ip::make_address_v4("10.9.0.255")));
  EXPECT_FALSE(sub.contains(asio::ip::make_address_v4("10.9.1.0")));
  EXPECT_EQ(sub.settings.leaseTime, std::chrono::seconds(600));
  ASSERT_EQ(c.dhcp.settings.options.size(), 2u);
  EXPECT_EQ(c.dhcp.settings.options[0].code, 150);
  EXPECT_EQ(c.dhcp.settings.options[0].value, (std::vector<std::uint8_t>{10, 9, 0, 1}));
  EXPECT_EQ(c.dhcp.settings.options[1].code, 224);  // unknown codes take hex
  EXPECT_EQ(c.dhcp.settings.options[1].value, (std::vector<std::uint8_t>{10, 9}));

  // host < group < subnet < [dhcp]
  DhcpSettings s = c.hosts[0].dhcp;
  s.inherit(c.groups[0].dhcp);
  s.inherit(sub.settings);
  s.inherit(c.dhcp.settings);
  EXPECT_EQ(s.rootPath, "iscsi:10.9.0.1::::iqn.2026-11.org.example:alpha");
  EXPECT_EQ(s.boot.bios, "lab.0");
  EXPECT_EQ(s.boot.uefi, "ipxe.efi");
  EXPECT_EQ(s.nextServer, asio::ip::make_address_v4("10.9.0.1"));
  ASSERT_TRUE(s.routers);
  EXPECT_EQ(s.routers->size(), 1u);
}

TEST(Config, DhcpErrors) {
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
}

TEST(Config, Iscsi) {
  auto c = loadString(R"(
[iscsi]
listen = ["127.0.0.1", "[::1]:3261"]
target_name = "iqn.2026-11.org.example:{group}.{name}"
nop_interval = 2
discovery_chap_secret = "discovery-secret"

[[group]]
name = "lab"
image = "debian12"
chap_secret = "group-secret-1"
iscsi_allow = ["10.0.0.0/24"]

[[host]]
name = "Node1"
group = "lab"
mutual_chap_user = "target1"
mutual_chap_secret = "target-secret-1"

[[host]]
name = "node2"
ip = "10.0.0.12"
image = "alpine"
iscsi_initiators = ["iqn.2010-04.org.ipxe:node2"]

[[host]]
name = "nodisk"
)", "t.toml");
  ASSERT_TRUE(c.iscsi.enabled);
  ASSERT_EQ(c.iscsi.listen.size(), 2U);
  EXPECT_EQ(c.iscsi.listen[0].port, 3260);
  EXPECT_EQ(c.iscsi.listen[1].port, 3261);
  EXPECT_EQ(c.iscsi.nopInterval, std::chrono::milliseconds(2000));
  ASSERT_TRUE(c.iscsi.discoveryChap);
  EXPECT_EQ(c.iscsi.discoveryChap->user, "discovery");
  const auto& n1 = c.hosts[0];
  EXPECT_EQ(n1.disk.image, "debian12");  // from the group
  ASSERT_TRUE(n1.disk.chap);
  EXPECT_EQ(n1.disk.chap->user, "Node1");  // a group's CHAP user defaults to each host's name
  EXPECT_EQ(n1.disk.chap->secret, "group-secret-1");
  EXPECT_EQ(n1.disk.mutualChap->user, "target1");
  ASSERT_TRUE(n1.disk.allow);
  EXPECT_TRUE((*n1.disk.allow)[0].contains(asio::ip::make_address_v4("10.0.0.77")));
  EXPECT_FALSE((*n1.disk.allow)[0].contains(asio::ip::make_address_v4("10.0.1.77")));
  EXPECT_EQ(iscsiTargetName(c.iscsi, n1), "iqn.2026-11.org.example:lab.node1");  // lower-cased
  EXPECT_EQ(c.hosts[1].disk.image, "alpine");
  EXPECT_EQ(c.hosts[1].disk.initiators->at(0), "iqn.2010-04.org.ipxe:node2");
  EXPECT_FALSE(c.hosts[2].disk.image);

  auto d = loadString("[iscsi]\n", "d.toml");
  ASSERT_EQ(d.iscsi.listen.size(), 1U);
  EXPECT_EQ(d.iscsi.listen[0].toString(), "0.0.0.0:3260");
  EXPECT_EQ(d.iscsi.targetName, "iqn.2026-11.org.pxedust:{name}");
}

// {mac} is spelled one way in every template: lower-case, '-' between the bytes.
TEST(Config, MacTemplateText) {
  EXPECT_EQ(macTemplateText(*pxedust::MacAddress::parse("52:54:00:AB:cd:01")), "52-54-00-ab-cd-01");
  IscsiConfig iscsi;
  iscsi.targetName = "iqn.2026-11.org.example:{mac}";
  HostConfig h;
  h.name = "node1";
  h.mac = pxedust::MacAddress::parse("52:54:00:AB:CD:01");
  EXPECT_EQ(iscsiTargetName(iscsi, h), "iqn.2026-11.org.example:52-54-00-ab-cd-01");
  EXPECT_FALSE(checkIscsiName(iscsiTargetName(iscsi, h)));
}

TEST(Config, IscsiErrors) {
  // A disk nothing tells apart from other machines' would be anyone's.
  EXPECT_NE(errorOf("[iscsi]\n[[host]]\nname = \"a\"\nimage = \"x\"\n").find("nothing tells it apart"), std::string::npos);
  EXPECT_EQ(errorOf("[iscsi]\n[[host]]\nname = \"a\"\nip = \"10.0.0.1\"\nimage = \"x\"\n"), "");
  EXPECT_NE(errorOf("[[host]]\nname = \"a\"\nchap_secret = \"short\"\n").find("12..255"), std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname = \"a\"\nchap_user = \"u\"\n").find("chap_secret is not"), std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname = \"a\"\nmutual_chap_secret = \"0123456789abc\"\n").find("needs chap_secret"),
            std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname = \"a\"\nchap_secret = \"0123456789abc\"\nmutual_chap_secret = \"0123456789abc\"\n")
                .find("must differ"),
            std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname = \"a\"\niscsi_allow = [\"10.0.0.1/24\"]\n").find("iscsi_allow"), std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname = \"a\"\niscsi_initiators = [\"node\"]\n").find("not an iSCSI name"),
            std::string::npos);
  EXPECT_NE(errorOf("[iscsi]\ntarget_name = \"iqn.2026-11.org.x:disk\"\n").find("must contain {name}"),
            std::string::npos);
  EXPECT_NE(errorOf("[iscsi]\ntarget_name = \"iqn.2026-11.org.x:{ip}\"\n").find("template variables"),
            std::string::npos);
  EXPECT_NE(errorOf("[iscsi]\ntarget_name = \"target-{name}\"\n[[host]]\nname = \"a\"\nip = \"10.0.0.1\"\nimage = \"x\"\n")
                .find("expected iqn."),
            std::string::npos);
  EXPECT_NE(errorOf("[iscsi]\ntarget_name = \"iqn.2026-11.org.x:{group}{mac}\"\n"
                    "[[host]]\nname = \"a\"\nip = \"10.0.0.1\"\nimage = \"x\"\n"
                    "[[host]]\nname = \"b\"\nip = \"10.0.0.2\"\nimage = \"x\"\n")
                .find("is also host 'a''s"),
            std::string::npos);
  EXPECT_NE(errorOf("[iscsi]\nbogus = 1\n").find("iscsi.bogus: unknown key"), std::string::npos);
}

TEST(Config, IscsiNames) {
  EXPECT_FALSE(checkIscsiName("iqn.2026-11.org.pxedust:node1"));
  EXPECT_FALSE(checkIscsiName("iqn.1993-08.org.debian:01:abcdef"));
  EXPECT_FALSE(checkIscsiName("eui.02004567A425678D"));
  EXPECT_FALSE(checkIscsiName("naa.52004567BA64678D"));
  EXPECT_TRUE(checkIscsiName("iqn.2026-11.org.pxedust:Node1"));  // upper case
  EXPECT_TRUE(checkIscsiName("iqn.26-11.org"));
  EXPECT_TRUE(checkIscsiName("eui.123"));
  EXPECT_TRUE(checkIscsiName(std::string(224, 'a')));
}

// check-config shows every mistake at once: each table (a section, a [[host]], a [[group]], a
// [[dhcp.subnet]]) is checked up to its first error, and every table is checked.
TEST(Config, EveryTableWithAnErrorIsReported) {
  auto e = errorOf(
      "[tftp]\nroot = 5\n"                          // line 2
      "[[group]]\nname = \"lab\"\nbogus = 1\n"     // line 5
      "[[host]]\nname = \"a b\"\n"                 // line 7
      "[[host]]\nname = \"ok\"\nmac = \"zz\"\n"    // line 10
      "[[host]]\nname = \"fine\"\ngroup = \"lab\"\n"
      "[bogus]\n");                                // line 14
  std::vector<std::string> lines;
  for (std::size_t at = 0; at <= e.size();) {
    auto nl = e.find('\n', at);
    lines.push_back(e.substr(at, nl == std::string::npos ? std::string::npos : nl - at));
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
  ASSERT_EQ(lines.size(), 5u) << e;
  EXPECT_EQ(lines[0], "test.toml:2:8: tftp.root: expected a string, got an integer");
  EXPECT_EQ(lines[1], "test.toml:5:1: group.bogus: unknown key");
  EXPECT_NE(lines[2].find("test.toml:7:8: host.name: 'a b' is not a host name"), std::string::npos) << lines[2];
  EXPECT_NE(lines[3].find("test.toml:10:7: host.mac: expected a MAC"), std::string::npos) << lines[3];
  EXPECT_NE(lines[4].find("test.toml:14:2: bogus: unknown key (sections are"), std::string::npos) << lines[4];
}
