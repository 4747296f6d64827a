#include "common/checked.hpp"

#include <gtest/gtest.h>

using namespace pxedust;

TEST(Checked, WithinNeverWraps) {
  EXPECT_TRUE(within<std::uint64_t>(0, 10, 10));
  EXPECT_TRUE(within<std::uint64_t>(10, 0, 10));
  EXPECT_FALSE(within<std::uint64_t>(11, 0, 10));
  EXPECT_FALSE(within<std::uint64_t>(5, 6, 10));
  EXPECT_FALSE(within<std::uint64_t>(UINT64_MAX, 2, 10));
  EXPECT_FALSE(within<std::uint64_t>(2, UINT64_MAX, 10));
}

TEST(Checked, AddMulOverflow) {
  EXPECT_EQ(checkedAdd<std::uint32_t>(1, 2), 3u);
  EXPECT_FALSE(checkedAdd<std::uint32_t>(UINT32_MAX, 1));
  EXPECT_FALSE(checkedMul<std::uint16_t>(300, 300));
}

TEST(Checked, ParseDecimal) {
  EXPECT_EQ(parseDecimal("1468")->value, 1468u);
  EXPECT_FALSE(parseDecimal(""));
  EXPECT_FALSE(parseDecimal("-1"));
  EXPECT_FALSE(parseDecimal("abc"));
  EXPECT_FALSE(parseDecimal("12 "));
  auto big = parseDecimal("99999999999999999999999");
  ASSERT_TRUE(big);
  EXPECT_TRUE(big->saturated);
  EXPECT_EQ(big->value, UINT64_MAX);
}
