// The [iscsi] section and what the target needs of each host, through the loader.
#include "iscsi/config.hpp"

#include <gtest/gtest.h>

#include "config/tests/errors.hpp"

namespace pxedust::iscsi {
namespace {

config::Config load(std::string_view text) { return config::loadString(text, "t.toml", {schema()}); }

std::string errorOf(std::string_view text) { return config::testing::errorOf(text, {schema()}, "t.toml"); }

TEST(IscsiConfig, Example) {
  auto c = load(R"(
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
)");
  const auto* i = configIn(c);
  ASSERT_NE(i, nullptr);
  ASSERT_EQ(i->listen.size(), 2U);
  EXPECT_EQ(i->listen[0].port, 3260);
  EXPECT_EQ(i->listen[1].port, 3261);
  EXPECT_EQ(i->nopInterval, std::chrono::milliseconds(2000));
  ASSERT_TRUE(i->discoveryChap);
  EXPECT_EQ(i->discoveryChap->user, "discovery");
  const auto& n1 = c.hosts[0];
  EXPECT_EQ(n1.disk.image, "debian12");  // from the group
  ASSERT_TRUE(n1.disk.chap);
  EXPECT_EQ(n1.disk.chap->user, "Node1");  // a group's CHAP user defaults to each host's name
  EXPECT_EQ(targetName(*i, n1.name, n1.mac, n1.group), "iqn.2026-11.org.example:lab.node1");  // lower-cased
  // DHCP's root-path source: the target at the first IPv4 listen address.
  ASSERT_TRUE(n1.rootDisk);
  EXPECT_EQ(n1.rootDisk->protocol, "iscsi");
  EXPECT_EQ(n1.rootDisk->portal.toString(), "127.0.0.1:3260");
  EXPECT_EQ(n1.rootDisk->name, "iqn.2026-11.org.example:lab.node1");
  EXPECT_EQ(c.hosts[1].rootDisk->name, "iqn.2026-11.org.example:.node2");
  EXPECT_FALSE(c.hosts[2].rootDisk);  // no image

  auto d = load("[iscsi]\n");
  ASSERT_EQ(configIn(d)->listen.size(), 1U);
  EXPECT_EQ(configIn(d)->listen[0].toString(), "0.0.0.0:3260");
  EXPECT_EQ(configIn(d)->targetName, "iqn.2026-11.org.pxedust:{name}");

  // Without [iscsi], a host's image is no iSCSI disk: no root disk for DHCP, no target checks.
  auto none = load("[[host]]\nname = \"a\"\nimage = \"x\"\n");
  EXPECT_EQ(configIn(none), nullptr);
  EXPECT_FALSE(none.hosts[0].rootDisk);
}

// {mac} is spelled one way in every template: lower-case, '-' between the bytes.
TEST(IscsiConfig, MacInTargetNames) {
  Config iscsi;
  iscsi.targetName = "iqn.2026-11.org.example:{mac}";
  auto mac = MacAddress::parse("52:54:00:AB:CD:01");
  EXPECT_EQ(targetName(iscsi, "node1", mac, ""), "iqn.2026-11.org.example:52-54-00-ab-cd-01");
  EXPECT_FALSE(config::checkIscsiName(targetName(iscsi, "node1", mac, "")));
}

TEST(IscsiConfig, Errors) {
  // A disk nothing tells apart from other machines' would be anyone's.
  EXPECT_NE(errorOf("[iscsi]\n[[host]]\nname = \"a\"\nimage = \"x\"\n").find("nothing tells it apart"), std::string::npos);
  EXPECT_EQ(errorOf("[iscsi]\n[[host]]\nname = \"a\"\nip = \"10.0.0.1\"\nimage = \"x\"\n"), "");
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

}  // namespace
}  // namespace pxedust::iscsi
