#include "common/mac.hpp"

#include <gtest/gtest.h>

using pxedust::MacAddress;

TEST(MacAddress, ParsesBothSeparators) {
  auto a = MacAddress::parse("52:54:00:AB:cd:01");
  auto b = MacAddress::parse("52-54-00-ab-cd-01");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->toString(), "52:54:00:ab:cd:01");
  EXPECT_EQ(a->toString('-'), "52-54-00-ab-cd-01");
  EXPECT_EQ(a->value(), 0x525400abcd01ull);
}

TEST(MacAddress, RejectsMalformed) {
  for (auto bad : {"", "52:54:00:ab:cd", "52:54:00:ab:cd:0g", "52:54-00:ab:cd:01", "5254.00ab.cd01",
                   "52:54:00:ab:cd:011"})
    EXPECT_FALSE(MacAddress::parse(bad)) << bad;
}
