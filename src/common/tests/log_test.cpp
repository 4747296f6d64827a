#include "common/log.hpp"

#include <gtest/gtest.h>

using pxedust::log::q;

TEST(Log, QuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(fmt::format("{}", q("pxelinux.0")), "pxelinux.0");
  EXPECT_EQ(fmt::format("{}", q("")), "\"\"");
  EXPECT_EQ(fmt::format("{}", q("a b")), "\"a b\"");
  EXPECT_EQ(fmt::format("{}", q("x\ny")), "\"x\\x0ay\"");
  EXPECT_EQ(fmt::format("{}", q("say \"hi\"")), "\"say \\\"hi\\\"\"");
}

TEST(Log, LevelNames) {
  using pxedust::log::Level;
  EXPECT_EQ(pxedust::log::parseLevel("debug"), Level::Debug);
  EXPECT_EQ(pxedust::log::parseLevel("warning"), Level::Warn);
  EXPECT_FALSE(pxedust::log::parseLevel("loud"));
}
