// Overlay writes that need no read-modify-write run their pwrite under the shared lock (writeData);
// these tests race them against read-modify-write of the same chunks, trims and flushes, and check
// that no chunk ends up mixing in stale base bytes and that flushed data survives a reopen.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "blockstore/overlay.hpp"
#include "blockstore/tests/test_util.hpp"

namespace pxedust::blockstore {
namespace {

class ConcurrentWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    baseBytes_ = testing::randomBytes(kSize, 21);
    base_ = testing::makeBase(dir_.path(), baseBytes_);
    ASSERT_TRUE(Overlay::create(paths_, base_->identity(), kChunk));
  }
  std::shared_ptr<Overlay> open() {
    auto ov = Overlay::open(paths_, base_);
    EXPECT_TRUE(ov) << ov.error().message;
    return ov ? *ov : nullptr;
  }
  static constexpr std::uint64_t kSize = 4 << 20;
  static constexpr std::uint32_t kChunk = 4096;
  static constexpr std::uint64_t kChunks = kSize / kChunk;
  testing::TempDir dir_;
  std::vector<std::uint8_t> baseBytes_;
  std::shared_ptr<RawImage> base_;
  OverlayPaths paths_{dir_ / "h.map", dir_ / "h.data"};
};

TEST_F(ConcurrentWriteTest, WholeChunkWritesRacingPartialWritesNeverLeaveBaseBytes) {
  auto ov = open();
  ASSERT_TRUE(ov);
  // Per chunk: thread A writes the whole chunk (0xAA), thread B 512 bytes in its middle (0xBB, a
  // read-modify-write while the chunk is still Base). Any order is fine; base bytes are not.
  std::atomic<bool> go{false};
  std::thread a([&] {
    while (!go) {}
    std::vector<std::uint8_t> d(kChunk, 0xAA);
    for (std::uint64_t c = 0; c < kChunks; ++c) EXPECT_TRUE(ov->write(c * kChunk, d));
  });
  std::thread b([&] {
    while (!go) {}
    std::vector<std::uint8_t> d(512, 0xBB);
    for (std::uint64_t c = 0; c < kChunks; ++c) EXPECT_TRUE(ov->write(c * kChunk + 1024, d));
  });
  go = true;
  a.join();
  b.join();
  std::vector<std::uint8_t> all(kSize);
  ASSERT_TRUE(ov->read(0, all));
  for (std::uint64_t c = 0; c < kChunks; ++c) {
    const auto* p = all.data() + c * kChunk;
    for (std::uint32_t i = 0; i < kChunk; ++i) {
      const bool mid = i >= 1024 && i < 1536;
      if (!mid) {
        ASSERT_EQ(p[i], 0xAA) << "chunk " << c << " byte " << i;
      } else {
        ASSERT_TRUE(p[i] == 0xAA || p[i] == 0xBB) << "chunk " << c << " byte " << i;
        ASSERT_EQ(p[i], p[1024]) << "chunk " << c << ": the 512 bytes are one write's";
      }
    }
  }
}

TEST_F(ConcurrentWriteTest, WholeChunkWritesRacingTrimsAndFlushesEndAsOneOrTheOther) {
  {
    auto ov = open();
    ASSERT_TRUE(ov);
    std::atomic<bool> go{false}, stop{false};
    std::thread w([&] {
      while (!go) {}
      for (std::uint64_t c = 0; c < kChunks; ++c) {
        std::vector<std::uint8_t> d(kChunk, static_cast<std::uint8_t>(c | 1));
        EXPECT_TRUE(ov->write(c * kChunk, d));
      }
    });
    std::thread t([&] {
      while (!go) {}
      for (std::uint64_t c = 0; c < kChunks; c += 2) EXPECT_TRUE(ov->trim(c * kChunk, kChunk));
    });
    std::thread f([&] {
      while (!go) {}
      while (!stop) EXPECT_TRUE(ov->flush());
    });
    go = true;
    w.join();
    t.join();
    stop = true;
    f.join();
    ASSERT_TRUE(ov->flush());
    std::vector<std::uint8_t> all(kSize);
    ASSERT_TRUE(ov->read(0, all));
    for (std::uint64_t c = 0; c < kChunks; ++c) {
      const auto* p = all.data() + c * kChunk;
      const std::uint8_t want = static_cast<std::uint8_t>(c | 1);
      const bool zero = c % 2 == 0 && p[0] == 0;
      for (std::uint32_t i = 0; i < kChunk; ++i) ASSERT_EQ(p[i], zero ? 0 : want) << "chunk " << c << " byte " << i;
    }
    ASSERT_TRUE(ov->close());
  }
  // What was flushed is what a reopen reads (the map never points at data that was not synced).
  auto ov = open();
  ASSERT_TRUE(ov);
  std::vector<std::uint8_t> all(kSize);
  ASSERT_TRUE(ov->read(0, all));
  for (std::uint64_t c = 0; c < kChunks; ++c) {
    const auto* p = all.data() + c * kChunk;
    const std::uint8_t want = static_cast<std::uint8_t>(c | 1);
    ASSERT_TRUE(p[0] == want || (c % 2 == 0 && p[0] == 0)) << "chunk " << c;
  }
}

TEST_F(ConcurrentWriteTest, RewritesOfDataChunksFromManyThreadsAreAllKept) {
  auto ov = open();
  ASSERT_TRUE(ov);
  std::vector<std::uint8_t> first(kSize, 1);
  ASSERT_TRUE(ov->write(0, first));
  std::vector<std::thread> ts;
  for (int k = 0; k < 4; ++k) {
    ts.emplace_back([&, k] {
      for (std::uint64_t c = static_cast<std::uint64_t>(k); c < kChunks; c += 4) {
        std::vector<std::uint8_t> d(kChunk, static_cast<std::uint8_t>(10 + k));
        EXPECT_TRUE(ov->write(c * kChunk, d));
      }
    });
  }
  for (auto& t : ts) t.join();
  std::vector<std::uint8_t> all(kSize);
  ASSERT_TRUE(ov->read(0, all));
  for (std::uint64_t c = 0; c < kChunks; ++c) ASSERT_EQ(all[c * kChunk + 7], 10 + c % 4) << c;
  EXPECT_EQ(ov->stats().dataChunks, kChunks);
}

}  // namespace
}  // namespace pxedust::blockstore
