#include "blockstore/buffer_pool.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace pxedust::blockstore {
namespace {

TEST(BufferPoolTest, ABufferGivenBackIsTakenAgainWithoutReallocating) {
  auto a = BufferPool::take(1u << 20);
  ASSERT_EQ(a.size(), 1u << 20);
  a[0] = 42;
  const auto* p = a.data();
  BufferPool::give(std::move(a));
  EXPECT_EQ(BufferPool::buffers(), 1u);
  auto b = BufferPool::take(1u << 20);
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.size(), 1u << 20);
  EXPECT_EQ(BufferPool::buffers(), 0u);
  // A smaller take reuses it too (shrunk, nothing touched).
  BufferPool::give(std::move(b));
  auto c = BufferPool::take(256u << 10);
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(c.size(), 256u << 10);
  BufferPool::give(std::move(c));
  auto d = BufferPool::take(1u << 20);  // grows back within its capacity
  EXPECT_EQ(d.data(), p);
  EXPECT_EQ(d.size(), 1u << 20);
  BufferPool::give(std::move(d));
}

TEST(BufferPoolTest, SmallBuffersArePooledApartAndBothPoolsAreBounded) {
  std::thread([] {  // a fresh thread: a fresh pool
    auto s = BufferPool::take(4096);
    EXPECT_EQ(s.size(), 4096u);
    const auto* p = s.data();
    BufferPool::give(std::move(s));
    EXPECT_EQ(BufferPool::buffers(), 1u);
    auto t = BufferPool::take(4096);
    EXPECT_EQ(t.data(), p);
    EXPECT_EQ(BufferPool::buffers(), 0u);
    // A large take never gets a small buffer, and tiny buffers are not kept at all.
    BufferPool::give(std::move(t));
    auto big = BufferPool::take(1u << 20);
    EXPECT_NE(big.data(), p);
    EXPECT_EQ(BufferPool::buffers(), 1u);
    auto tiny = BufferPool::take(16);
    BufferPool::give(std::move(tiny));
    EXPECT_EQ(BufferPool::buffers(), 1u);
    std::vector<std::vector<std::uint8_t>> many;
    for (int i = 0; i < 100; ++i) many.push_back(BufferPool::take(1u << 20));
    for (int i = 0; i < 1000; ++i) many.push_back(BufferPool::take(8192));
    for (auto& v : many) BufferPool::give(std::move(v));
    EXPECT_LE(BufferPool::buffers(), BufferPool::kMaxBuffers + BufferPool::kMaxSmall);
    EXPECT_LE(BufferPool::bytes(), BufferPool::kMaxBytes + BufferPool::kMaxSmallBytes);
    EXPECT_GT(BufferPool::buffers(), BufferPool::kMaxSmall);
    BufferPool::give(std::move(big));
  }).join();
}

}  // namespace
}  // namespace pxedust::blockstore
