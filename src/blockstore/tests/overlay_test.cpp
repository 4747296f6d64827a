#include "blockstore/overlay.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blockstore/tests/test_util.hpp"

namespace pxedust::blockstore {
namespace {

using testing::TempDir;

class OverlayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    baseBytes_ = testing::randomBytes(kSize, 1);
    base_ = testing::makeBase(dir_.path(), baseBytes_);
    ASSERT_TRUE(Overlay::create(paths_, base_->identity(), kChunk));
  }
  std::shared_ptr<Overlay> open(OverlayOptions o = {}) {
    auto ov = Overlay::open(paths_, base_, o);
    EXPECT_TRUE(ov) << ov.error().message;
    return ov ? *ov : nullptr;
  }
  std::vector<std::uint8_t> readAll(BlockDevice& d) {
    std::vector<std::uint8_t> v(d.size());
    EXPECT_TRUE(d.read(0, v));
    return v;
  }
  static constexpr std::uint64_t kSize = 1 << 20;
  static constexpr std::uint32_t kChunk = 16384;
  TempDir dir_;
  std::vector<std::uint8_t> baseBytes_;
  std::shared_ptr<RawImage> base_;
  OverlayPaths paths_{dir_ / "h.map", dir_ / "h.data"};
};

TEST_F(OverlayTest, FreshOverlayReadsTheBaseAndReportsItsCapabilities) {
  auto ov = open();
  EXPECT_EQ(readAll(*ov), baseBytes_);
  EXPECT_EQ(ov->size(), kSize);
  EXPECT_EQ(ov->logicalBlockSize(), 512U);
  auto caps = ov->capabilities();
  EXPECT_FALSE(caps.readOnly);
  EXPECT_TRUE(caps.canTrim && caps.canZero && caps.canFua && caps.canFlush && caps.canExtents);
  auto ex = ov->extents(0, kSize);
  ASSERT_TRUE(ex);
  ASSERT_EQ(ex->size(), 1U);
  EXPECT_EQ((*ex)[0], (Extent{0, kSize, ExtentState::Base}));
}

TEST_F(OverlayTest, UnalignedWriteCopiesOnlyHeadAndTailChunks) {
  auto ov = open();
  std::vector<std::uint8_t> data(kChunk * 2, 0xAB);
  const std::uint64_t off = kChunk + 100;
  ASSERT_TRUE(ov->write(off, data));
  auto expect = baseBytes_;
  std::copy(data.begin(), data.end(), expect.begin() + off);
  EXPECT_EQ(readAll(*ov), expect);
  auto ex = ov->extents(0, kSize);
  ASSERT_TRUE(ex);
  ASSERT_EQ(ex->size(), 3U);
  EXPECT_EQ((*ex)[1], (Extent{kChunk, 3 * kChunk, ExtentState::Data}));
  // Same-offset layout: the data file holds the chunk bytes exactly where the disk has them.
  auto raw = testing::readWhole(paths_.data);
  ASSERT_EQ(raw.size(), kSize);
  EXPECT_TRUE(std::equal(raw.begin() + kChunk, raw.begin() + 4 * kChunk, expect.begin() + kChunk));
}

TEST_F(OverlayTest, TrimAndWriteZeroesReadAsZerosAndFreeSpace) {
  auto ov = open();
  std::vector<std::uint8_t> data(kSize, 0xCD);
  ASSERT_TRUE(ov->write(0, data));
  ASSERT_TRUE(ov->flush());
  auto before = allocatedBytes(paths_.data);
  ASSERT_TRUE(ov->trim(1000, kSize / 2));
  ASSERT_TRUE(ov->writeZeroes(kSize / 2 + 5000, 3 * kChunk));
  auto expect = data;
  std::fill_n(expect.begin() + 1000, kSize / 2, 0);
  std::fill_n(expect.begin() + kSize / 2 + 5000, 3 * kChunk, 0);
  EXPECT_EQ(readAll(*ov), expect);
  ASSERT_TRUE(ov->flush());
  EXPECT_LT(*allocatedBytes(paths_.data), *before - kSize / 4);
  ov.reset();
  ov = open();
  EXPECT_EQ(readAll(*ov), expect);
}

TEST_F(OverlayTest, FlushedWritesPersistAndUnflushedOnesVanishWithTheProcess) {
  std::vector<std::uint8_t> a(kChunk, 0x11), b(kChunk, 0x22);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto ov = Overlay::open(paths_, base_);
    if (!ov || !(*ov)->write(0, a) || !(*ov)->flush() || !(*ov)->write(4 * kChunk, b)) _exit(1);
    _exit(0);  // no close(): the second write's map record was never journaled
  }
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  auto ov = open();
  auto got = readAll(*ov);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), got.begin()));
  EXPECT_TRUE(std::equal(got.begin() + 4 * kChunk, got.begin() + 5 * kChunk, baseBytes_.begin() + 4 * kChunk));
}

TEST_F(OverlayTest, FuaWriteIsDurableOnCompletion) {
  std::vector<std::uint8_t> a(600, 0x5A);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto ov = Overlay::open(paths_, base_);
    if (!ov || !(*ov)->write(kSize - 600, a, WriteFlags{true})) _exit(1);
    _exit(0);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  auto ov = open();
  auto got = readAll(*ov);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), got.end() - 600));
}

TEST_F(OverlayTest, WrongBaseIsRefusedWithBothIdentitiesNamed) {
  auto other = testing::makeBase(dir_.path(), baseBytes_, "base", 2);  // same bytes, another version
  auto ov = Overlay::open(paths_, other);
  ASSERT_FALSE(ov);
  EXPECT_EQ(ov.error().code, ESTALE);
  EXPECT_NE(ov.error().message.find("base v1"), std::string::npos) << ov.error().message;
  EXPECT_NE(ov.error().message.find("base v2"), std::string::npos) << ov.error().message;
}

TEST_F(OverlayTest, SecondOpenIsRefusedWhileInUseAndAllowedAfterClose) {
  auto ov = open();
  auto second = Overlay::open(paths_, base_);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, EBUSY);
  ASSERT_TRUE(ov->close());
  EXPECT_EQ(ov->read(0, std::span<std::uint8_t>()).ok(), true);  // zero length: only the range check
  std::vector<std::uint8_t> one(1);
  EXPECT_EQ(ov->read(0, one).error().code, EBADF);
  EXPECT_TRUE(Overlay::open(paths_, base_));
}

TEST_F(OverlayTest, ReadOnlyOpenRefusesWrites) {
  OverlayOptions o;
  o.readOnly = true;
  auto ov = open(o);
  EXPECT_TRUE(ov->capabilities().readOnly);
  std::vector<std::uint8_t> d(10);
  EXPECT_EQ(ov->write(0, d).error().code, EROFS);
  EXPECT_EQ(ov->trim(0, 10).error().code, EROFS);
  EXPECT_EQ(readAll(*ov), baseBytes_);
}

TEST_F(OverlayTest, ResetReturnsToTheBaseAndCanMoveToANewVersion) {
  {
    auto ov = open();
    std::vector<std::uint8_t> d(kSize / 2, 0x77);
    ASSERT_TRUE(ov->write(0, d, WriteFlags{true}));
  }
  ASSERT_TRUE(Overlay::reset(paths_, base_->identity(), kChunk));
  {
    auto ov = open();
    EXPECT_EQ(readAll(*ov), baseBytes_);
  }
  EXPECT_LT(*allocatedBytes(paths_.data), 64 * 1024U);
  auto v2bytes = testing::randomBytes(kSize * 2, 9);
  auto v2 = testing::makeBase(dir_.path(), v2bytes, "base", 2);
  ASSERT_TRUE(Overlay::reset(paths_, v2->identity(), kChunk));
  EXPECT_FALSE(Overlay::open(paths_, base_));
  auto ov = Overlay::open(paths_, v2);
  ASSERT_TRUE(ov);
  EXPECT_EQ(readAll(**ov), v2bytes);
}

TEST_F(OverlayTest, ManyRandomSmallWritesStayInDiskOrder) {
  // The locality property, structurally: 4 KiB writes in random order land at their own offsets.
  auto ov = open();
  std::vector<std::uint64_t> order(kSize / 4096);
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937 rng(3);
  std::shuffle(order.begin(), order.end(), rng);
  auto expect = baseBytes_;
  for (auto blk : order) {
    auto d = testing::randomBytes(4096, blk);
    ASSERT_TRUE(ov->write(blk * 4096, d));
    std::copy(d.begin(), d.end(), expect.begin() + static_cast<std::ptrdiff_t>(blk * 4096));
  }
  ASSERT_TRUE(ov->flush());
  EXPECT_EQ(testing::readWhole(paths_.data), expect);
  auto ex = ov->extents(0, kSize);
  ASSERT_TRUE(ex);
  EXPECT_EQ(ex->size(), 1U);
}

}  // namespace
}  // namespace pxedust::blockstore
