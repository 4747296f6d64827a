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
