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
