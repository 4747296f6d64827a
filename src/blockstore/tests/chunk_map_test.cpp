#include "blockstore/chunk_map.hpp"

#include <gtest/gtest.h>

#include <random>

namespace pxedust::blockstore {
namespace {

TEST(ChunkMap, SetGetRunsAgainstAVector) {
  for (std::uint64_t n : {1ULL, 3ULL, 4ULL, 5ULL, 31ULL, 64ULL, 1001ULL}) {
    ChunkMap m(n);
    std::vector<ChunkState> ref(n, ChunkState::Base);
    std::mt19937 rng(static_cast<unsigned>(n));
    for (int iter = 0; iter < 500; ++iter) {
      std::uint64_t a = rng() % n, b = rng() % n;
      if (a > b) std::swap(a, b);
      auto s = static_cast<ChunkState>(rng() % 3);
      m.setRange(a, b - a + 1, s);
      for (auto i = a; i <= b; ++i) ref[i] = s;
      for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(m.get(i), ref[i]);
      std::uint64_t i = rng() % n;
      std::uint64_t expect = 1;
      while (i + expect < n && ref[i + expect] == ref[i]) ++expect;
      std::uint64_t max = 1 + rng() % n;
      ASSERT_EQ(m.runLength(i, max), std::min(expect, max));
    }
    auto copy = ChunkMap::fromBytes(n, m.bytes());
    ASSERT_TRUE(copy.has_value());
    for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(copy->get(i), ref[i]);
  }
}

TEST(ChunkMap, FromBytesRejectsInvalidStatesAndLengths) {
  std::vector<std::uint8_t> b = {0x00, 0x03};
  EXPECT_FALSE(ChunkMap::fromBytes(8, b).has_value());          // state 3
  EXPECT_FALSE(ChunkMap::fromBytes(9, b).has_value());          // wrong length
  std::vector<std::uint8_t> tail = {0x00, 0x10};                 // chunk 6 of a 6-chunk map
  EXPECT_FALSE(ChunkMap::fromBytes(6, tail).has_value());
  std::vector<std::uint8_t> ok = {0x99, 0x06};
  EXPECT_TRUE(ChunkMap::fromBytes(6, ok).has_value());
}

}  // namespace
}  // namespace pxedust::blockstore
