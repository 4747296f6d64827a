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
                                "t.toml", {});
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

// The host model carries what the loader resolved: the disk with its group's settings, each
// service's keys, and where the root disk is served.
TEST(Inventory, CarriesDisksKeysAndRootDisks) {
  auto cfg = config::loadString(R"(
[[group]]
name = "lab"
image = "debian12"
[[host]]
name = "alpha"
ip = "10.9.0.11"
group = "lab"
[[host]]
name = "beta"
ip = "10.9.0.12"
)",
                                "t.toml", {});
  cfg.hosts[0].keys.emplace("svc", std::string("value"));
  cfg.hosts[0].rootDisk = config::RootDisk{"iscsi", {asio::ip::make_address("10.9.0.1"), 3260}, "iqn.2026-11.org.pxedust:alpha"};
  auto inv = inventory::Inventory::fromConfig(cfg);
  const auto* a = inv->byName("alpha");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->disk.image, "debian12");
  EXPECT_EQ(*config::part<std::string>(a->keys, "svc"), "value");
  EXPECT_EQ(a->rootDisk, cfg.hosts[0].rootDisk);
  EXPECT_FALSE(inv->byName("beta")->disk.image);
  EXPECT_FALSE(inv->byName("beta")->rootDisk);
}

namespace {
asio::ip::address addr(const char* text) { return asio::ip::make_address(text); }
}  // namespace

// The address rule services that serve a host's disk share: iscsi_allow, else the host's own ip.
TEST(Inventory, AdmitsAddress) {
  auto cfg = config::loadString(R"(
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
                                "t.toml", {});
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
