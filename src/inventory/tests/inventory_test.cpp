#include "inventory/inventory.hpp"

#include <gtest/gtest.h>

using namespace pxedust;

TEST(Inventory, LooksUpByMacIpAndName) {
  auto cfg = config::loadString(R"(
[[group]]
name = "lab"
[[host]]
name = "alpha"
mac = "52:54:00:00:00:01"
ip = "10.9.0.11"
group = "lab"
[[host]]
name = "beta"
ip = "10.9.0.12"
)",
                                "t.toml");
  auto inv = inventory::Inventory::fromConfig(cfg);
  ASSERT_EQ(inv->hosts().size(), 2u);
  const auto* a = inv->byMac(*MacAddress::parse("52:54:00:00:00:01"));
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->name, "alpha");
  EXPECT_EQ(a->group, "lab");
  EXPECT_EQ(inv->byIp(asio::ip::make_address_v4("10.9.0.12"))->name, "beta");
  EXPECT_EQ(inv->byName("beta")->ip->to_string(), "10.9.0.12");
  EXPECT_EQ(inv->byIp(asio::ip::make_address_v4("10.9.0.13")), nullptr);
  EXPECT_EQ(inv->byMac(*MacAddress::parse("52:54:00:00:00:02")), nullptr);
  EXPECT_EQ(inv->byName("gamma"), nullptr);
}

TEST(Inventory, IscsiTargets) {
  auto cfg = config::loadString(R"(
[iscsi]
[[group]]
name = "lab"
image = "debian12"
[[host]]
name = "Alpha"
ip = "10.9.0.11"
group = "lab"
[[host]]
name = "beta"
ip = "10.9.0.12"
)",
                                "t.toml");
  auto inv = inventory::Inventory::fromConfig(cfg);
  const auto* a = inv->byName("Alpha");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->disk.image, "debian12");
  EXPECT_EQ(a->iscsiTarget, "iqn.2026-11.org.pxedust:alpha");
  EXPECT_EQ(inv->byTarget("IQN.2026-11.org.pxedust:ALPHA"), a);  // names compare case-insensitively
  EXPECT_EQ(inv->byName("beta")->iscsiTarget, "");  // no image, no target
  EXPECT_EQ(inv->byTarget("iqn.2026-11.org.pxedust:beta"), nullptr);
}

namespace {
asio::ip::address addr(const char* text) { return asio::ip::make_address(text); }
}  // namespace

// The address rule services that serve a host's disk share: iscsi_allow, else the host's own ip.
TEST(Inventory, AdmitsAddress) {
  auto cfg = config::loadString(R"(
[iscsi]
[[host]]
name = "own-ip"
ip = "10.9.0.11"
image = "x"
[[host]]
name = "allow"
ip = "10.9.0.12"
iscsi_allow = ["10.8.0.0/16", "192.168.1.7/32"]
image = "x"
[[host]]
name = "neither"
chap_secret = "0123456789abc"
image = "x"
)",
                                "t.toml");
  auto inv = inventory::Inventory::fromConfig(cfg);
  const auto& own = *inv->byName("own-ip");
  EXPECT_TRUE(own.admitsAddress(addr("10.9.0.11")));
  EXPECT_TRUE(own.admitsAddress(addr("::ffff:10.9.0.11")));  // a dual-stack socket's view of it
  EXPECT_FALSE(own.admitsAddress(addr("10.9.0.12")));
  EXPECT_FALSE(own.admitsAddress(addr("::ffff:10.9.0.12")));
  EXPECT_FALSE(own.admitsAddress(addr("::1")));
  EXPECT_FALSE(own.admitsAddress(addr("fe80::1")));

  const auto& allow = *inv->byName("allow");  // iscsi_allow replaces the host's own ip
  EXPECT_TRUE(allow.admitsAddress(addr("10.8.200.1")));
  EXPECT_TRUE(allow.admitsAddress(addr("::ffff:10.8.0.1")));
  EXPECT_TRUE(allow.admitsAddress(addr("192.168.1.7")));
  EXPECT_FALSE(allow.admitsAddress(addr("192.168.1.8")));
  EXPECT_FALSE(allow.admitsAddress(addr("10.9.0.12")));
  EXPECT_FALSE(allow.admitsAddress(addr("::1")));

  const auto& neither = *inv->byName("neither");  // other checks (CHAP here) tell it apart
  EXPECT_TRUE(neither.admitsAddress(addr("10.1.2.3")));
  EXPECT_TRUE(neither.admitsAddress(addr("2001:db8::1")));
}
