// The inline write path: Overlay::tryWrite (locks only tried, no read-modify-write from the base, no
// FUA), the AsyncBlockDevice that tries it for small writes, and the InlineWriteGate that stops the
// tries while writes are slow.
#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <atomic>
#include <chrono>
#include <optional>
#include <thread>

#include "blockstore/async_device.hpp"
#include "blockstore/overlay.hpp"
#include "blockstore/tests/test_util.hpp"

namespace pxedust::blockstore {
namespace {

using namespace std::chrono_literals;
using Clock = InlineWriteGate::Clock;

class TryWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    InlineWriteGate::global().reset();
    baseBytes_ = testing::randomBytes(kSize, 21);
    base_ = testing::makeBase(dir_.path(), baseBytes_);
    ASSERT_TRUE(Overlay::create(paths_, base_->identity(), kChunk));
    reopen();
  }
  void TearDown() override { InlineWriteGate::global().reset(); }
  void reopen() {
    ov_.reset();
    auto ov = Overlay::open(paths_, base_);
    ASSERT_TRUE(ov) << ov.error().message;
    ov_ = *ov;
  }
  std::vector<std::uint8_t> readBack(std::uint64_t off, std::size_t n) {
    std::vector<std::uint8_t> b(n);
    EXPECT_TRUE(ov_->read(off, b));
    return b;
  }
  std::vector<std::uint8_t> baseAt(std::uint64_t off, std::size_t n) {
    return {baseBytes_.begin() + static_cast<std::ptrdiff_t>(off), baseBytes_.begin() + static_cast<std::ptrdiff_t>(off + n)};
  }
  static constexpr std::uint64_t kSize = 1 << 20;
  static constexpr std::uint32_t kChunk = 4096;
  testing::TempDir dir_;
  std::vector<std::uint8_t> baseBytes_;
  std::shared_ptr<RawImage> base_;
  OverlayPaths paths_{dir_ / "h.map", dir_ / "h.data"};
  std::shared_ptr<Overlay> ov_;
};

TEST_F(TryWriteTest, WholeChunksAreWrittenInlineAndSurviveAFlushAndReopen) {
  const auto a = testing::randomBytes(3 * kChunk, 1);
  auto r = ov_->tryWrite(5 * kChunk, a, {});
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE(*r) << r->error().message;
  // A rewrite of chunks already in the data file (the shared-lock path), overlapping the first.
  const auto b = testing::randomBytes(2 * kChunk, 2);
  r = ov_->tryWrite(6 * kChunk, b, {});
  ASSERT_TRUE(r.has_value() && *r);
  std::vector<std::uint8_t> want = a;
  std::copy(b.begin(), b.end(), want.begin() + kChunk);
  EXPECT_EQ(readBack(5 * kChunk, want.size()), want);
  ASSERT_TRUE(ov_->flush());
  reopen();
  EXPECT_EQ(readBack(5 * kChunk, want.size()), want);
  EXPECT_EQ(readBack(4 * kChunk, kChunk), baseAt(4 * kChunk, kChunk));
  auto ext = ov_->extents(5 * kChunk, 3 * kChunk);
  ASSERT_TRUE(ext);
  ASSERT_EQ(ext->size(), 1u);
  EXPECT_EQ((*ext)[0].state, ExtentState::Data);
}

TEST_F(TryWriteTest, DeclinesWhatWouldReadTheBaseOrWaitAndWritesNothingThen) {
  const auto a = testing::randomBytes(100, 3);
  // A partial chunk still on the base needs a read-modify-write from the base: declined.
  EXPECT_FALSE(ov_->tryWrite(10 * kChunk + 7, a, {}).has_value());
  EXPECT_EQ(readBack(10 * kChunk, kChunk), baseAt(10 * kChunk, kChunk));
  // FUA wants a flush: declined.
  const auto whole = testing::randomBytes(kChunk, 4);
  EXPECT_FALSE(ov_->tryWrite(11 * kChunk, whole, WriteFlags{true}).has_value());
  EXPECT_EQ(readBack(11 * kChunk, kChunk), baseAt(11 * kChunk, kChunk));
  // A partial chunk already in the data file, or zeroed, needs no other file: done inline.
  ASSERT_TRUE(ov_->write(12 * kChunk, whole));
  ASSERT_TRUE(ov_->writeZeroes(13 * kChunk, kChunk));
  auto r = ov_->tryWrite(12 * kChunk + 7, a, {});
  ASSERT_TRUE(r.has_value() && *r);
  r = ov_->tryWrite(13 * kChunk + 9, a, {});
  ASSERT_TRUE(r.has_value() && *r);
  auto want12 = whole;
  std::copy(a.begin(), a.end(), want12.begin() + 7);
  EXPECT_EQ(readBack(12 * kChunk, kChunk), want12);
  std::vector<std::uint8_t> want13(kChunk, 0);
  std::copy(a.begin(), a.end(), want13.begin() + 9);
  EXPECT_EQ(readBack(13 * kChunk, kChunk), want13);
}

TEST_F(TryWriteTest, ABadRangeIsAnErrorAndAReadOnlyOverlayRefuses) {
  const auto whole = testing::randomBytes(kChunk, 5);
  auto r = ov_->tryWrite(kSize - 100, whole, {});
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(*r);
  EXPECT_EQ(r->error().code, ERANGE);
  ov_.reset();
  OverlayOptions opts;
  opts.readOnly = true;
  auto ro = Overlay::open(paths_, base_, opts);
  ASSERT_TRUE(ro) << ro.error().message;
  r = (*ro)->tryWrite(0, whole, {});
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(*r);
}

TEST_F(TryWriteTest, AsyncWriteGoesInlineWhenSmallAndToThePoolOtherwise) {
  asio::io_context io;
  WorkerPool pool(2);
  AsyncBlockDevice dev(ov_, pool, io.get_executor());
  const auto small = testing::randomBytes(kChunk, 6);
  const auto large = testing::randomBytes(AsyncBlockDevice::kMaxInlineWrite + kChunk, 7);
  bool submitting = true;
  int done = 0;
  const auto loopThread = std::this_thread::get_id();
  dev.asyncWrite(0, small, {}, [&](Result<void> r) {
    EXPECT_FALSE(submitting) << "completion ran inside the submit call";
    EXPECT_EQ(std::this_thread::get_id(), loopThread);
    EXPECT_TRUE(r);
    ++done;
  });
  submitting = false;
  dev.asyncWrite(2 * kChunk, large, {}, [&](Result<void> r) {
    EXPECT_TRUE(r);
    ++done;
  });
  io.run();
  EXPECT_EQ(done, 2);
  EXPECT_EQ(dev.inlineWrites(), 1u);
  EXPECT_EQ(dev.pooledOps(), 1u);
  EXPECT_EQ(readBack(0, kChunk), small);
  EXPECT_EQ(readBack(2 * kChunk, large.size()), large);
}

TEST_F(TryWriteTest, AsyncWriteUsesThePoolWhileTheGateIsClosed) {
  asio::io_context io;
  WorkerPool pool(2);
  AsyncBlockDevice dev(ov_, pool, io.get_executor());
  const auto a = testing::randomBytes(kChunk, 8);
  InlineWriteGate& gate = InlineWriteGate::global();
  ASSERT_TRUE(gate.record(InlineWriteGate::kStallBudget + 1ms, Clock::now()));
  int done = 0;
  dev.asyncWrite(0, a, {}, [&](Result<void> r) { done += r ? 1 : 0; });
  io.run();
  EXPECT_EQ(done, 1);
  EXPECT_EQ(dev.inlineWrites(), 0u);
  EXPECT_EQ(dev.pooledOps(), 1u);
  EXPECT_EQ(readBack(0, kChunk), a);
}

TEST_F(TryWriteTest, InlineWholeChunkWritesRacingPartialWritesNeverLeaveBaseBytes) {
  // Per chunk: thread A tries whole-chunk writes inline (0xAA; the blocking write when declined),
  // thread B writes 512 bytes in its middle (0xBB, a read-modify-write while the chunk is Base).
  constexpr std::uint64_t kChunks = kSize / kChunk;
  std::atomic<bool> go{false};
  std::atomic<int> declined{0};
  std::thread a([&] {
    while (!go) {}
    std::vector<std::uint8_t> d(kChunk, 0xAA);
    for (std::uint64_t c = 0; c < kChunks; ++c) {
      auto r = ov_->tryWrite(c * kChunk, d, {});
      if (!r) {
        ++declined;
        r = ov_->write(c * kChunk, d);
      }
      EXPECT_TRUE(*r);
    }
  });
  std::thread b([&] {
    while (!go) {}
    std::vector<std::uint8_t> d(512, 0xBB);
    for (std::uint64_t c = 0; c < kChunks; ++c) EXPECT_TRUE(ov_->write(c * kChunk + 1024, d));
  });
  go = true;
  a.join();
  b.join();
  const auto all = readBack(0, kSize);
  for (std::uint64_t c = 0; c < kChunks; ++c) {
    const auto* p = all.data() + c * kChunk;
    for (std::uint32_t i = 0; i < kChunk; ++i) {
      const bool mid = i >= 1024 && i < 1536;
      const bool ok = p[i] == 0xAA || (mid && p[i] == 0xBB);
      ASSERT_TRUE(ok) << "chunk " << c << " byte " << i << " holds " << int(p[i]);
    }
  }
  RecordProperty("declined", declined.load());
}

TEST(InlineWriteGateTest, StraySlowWritesWithinTheBudgetLeaveItOpen) {
  InlineWriteGate g;
  const Clock::time_point t0 = Clock::now();
  EXPECT_FALSE(g.record(1ms, t0));  // fast enough: not even a stall
  EXPECT_EQ(g.slowWrites(), 0u);
  // A preempted loop thread: a few ms now and then, never more than the budget in one window.
  for (int s = 0; s < 10; ++s) {
    for (int i = 0; i < 3; ++i) EXPECT_FALSE(g.record(6ms, t0 + s * 1s + i * 100ms));
  }
  EXPECT_EQ(g.slowWrites(), 30u);
  EXPECT_TRUE(g.open(t0 + 10s));
  EXPECT_EQ(g.pause(), Clock::duration::zero());
}

TEST(InlineWriteGateTest, StallsOverTheBudgetCloseItForAPauseThatDoublesWhileTheyGoOn) {
  InlineWriteGate g;
  const Clock::time_point t0 = Clock::now();
  EXPECT_TRUE(g.open(t0));
  // Stalls that add up past the budget within one window close it.
  EXPECT_FALSE(g.record(8ms, t0));
  EXPECT_FALSE(g.record(8ms, t0 + 300ms));
  EXPECT_TRUE(g.record(8ms, t0 + 600ms));
  EXPECT_EQ(g.pause(), InlineWriteGate::kMinPause);
  EXPECT_FALSE(g.open(t0 + 1s));
  EXPECT_FALSE(g.record(50ms, t0 + 1s));  // already closed: counted, the pause stays
  EXPECT_EQ(g.slowWrites(), 4u);
  EXPECT_TRUE(g.open(t0 + 1600ms));
  // One throttled write is over the budget by itself; soon after reopening it doubles the pause.
  EXPECT_TRUE(g.record(InlineWriteGate::kStallBudget + 1ms, t0 + 2s));
  EXPECT_EQ(g.pause(), 2 * InlineWriteGate::kMinPause);
  EXPECT_FALSE(g.open(t0 + 3s));
  EXPECT_TRUE(g.open(t0 + 4s));
  // Doubling stops at kMaxPause.
  Clock::time_point t = t0 + 4s;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(g.record(100ms, t));
    t += g.pause();
  }
  EXPECT_EQ(g.pause(), InlineWriteGate::kMaxPause);
  // A quiet spell longer than two pauses: back to the shortest pause.
  t += 3 * InlineWriteGate::kMaxPause;
  EXPECT_TRUE(g.record(100ms, t));
  EXPECT_EQ(g.pause(), InlineWriteGate::kMinPause);
}

TEST(InlineWriteGateTest, TheBudgetIsPerWindow) {
  InlineWriteGate g;
  const Clock::time_point t0 = Clock::now();
  // 15 ms at the end of one window and 15 ms at the start of the next: neither window is over.
  EXPECT_FALSE(g.record(15ms, t0));
  EXPECT_FALSE(g.record(15ms, t0 + InlineWriteGate::kWindow));
  EXPECT_TRUE(g.open(t0 + InlineWriteGate::kWindow));
  EXPECT_TRUE(g.record(15ms, t0 + InlineWriteGate::kWindow + 10ms));
}

}  // namespace
}  // namespace pxedust::blockstore
