#include "common/rate_limiter.hpp"

#include <gtest/gtest.h>

using pxedust::RateLimiter;
using namespace std::chrono_literals;

TEST(RateLimiter, BurstThenRate) {
  RateLimiter rl(10.0, 3);
  RateLimiter::Key a{1}, b{2};
  auto t = RateLimiter::Clock::time_point{} + 1h;
  EXPECT_TRUE(rl.allow(a, t));
  EXPECT_TRUE(rl.allow(a, t));
  EXPECT_TRUE(rl.allow(a, t));
  EXPECT_FALSE(rl.allow(a, t));
  EXPECT_TRUE(rl.allow(b, t));  // clients are independent
  EXPECT_FALSE(rl.allow(a, t + 50ms));
  EXPECT_TRUE(rl.allow(a, t + 100ms));  // one token per 100 ms
  EXPECT_FALSE(rl.allow(a, t + 100ms));
}

TEST(RateLimiter, ZeroRateIsUnlimited) {
  RateLimiter rl(0, 1);
  RateLimiter::Key a{};
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(rl.allow(a, {}));
}

TEST(RateLimiter, TableStaysBounded) {
  RateLimiter rl(1.0, 1, 100);
  auto t = RateLimiter::Clock::time_point{} + 1h;
  for (std::uint32_t i = 0; i < 10000; ++i) {
    RateLimiter::Key k{};
    std::memcpy(k.data(), &i, 4);
    rl.allow(k, t);
    EXPECT_LE(rl.clients(), 100u);
  }
}
