// The copy-free read path: BlockDevice::spliceRead into a PipeChain, drained with PipeChain::spliceTo.
// Every test drains the chain into a real file and compares it with what read() returns.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>

#include "blockstore/overlay.hpp"
#include "blockstore/pipe_chain.hpp"
#include "blockstore/tests/test_util.hpp"

namespace pxedust::blockstore {
namespace {

class SpliceReadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    baseBytes_ = testing::randomBytes(kSize, 21);
    base_ = testing::makeBase(dir_.path(), baseBytes_);
    ASSERT_TRUE(Overlay::create(paths_, base_->identity(), kChunk));
    auto ov = Overlay::open(paths_, base_);
    ASSERT_TRUE(ov) << ov.error().message;
    ov_ = *ov;
  }
  // Drains the whole chain into a file in pieces of at most `piece` bytes, and returns its bytes.
  std::vector<std::uint8_t> drain(PipeChain& chain, std::size_t piece) {
    auto path = dir_ / "out";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(fd, 0);
    while (chain.drained() < chain.length()) {
      ssize_t n = chain.spliceTo(fd, std::min(piece, chain.length() - chain.drained()), false);
      if (n <= 0) {
        ADD_FAILURE() << "spliceTo: " << n;
        break;
      }
    }
    std::vector<std::uint8_t> out(chain.drained());
    EXPECT_EQ(::pread(fd, out.data(), out.size(), 0), static_cast<ssize_t>(out.size()));
    ::close(fd);
    return out;
  }
  std::vector<std::uint8_t> readAll(BlockDevice& d, std::uint64_t off, std::size_t n) {
    std::vector<std::uint8_t> b(n);
    auto r = d.read(off, b);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return b;
  }
  static constexpr std::uint64_t kSize = 4u << 20;
  static constexpr std::uint32_t kChunk = 65536;
  testing::TempDir dir_;
  std::vector<std::uint8_t> baseBytes_;
  std::shared_ptr<RawImage> base_;
  OverlayPaths paths_{dir_ / "h.map", dir_ / "h.data"};
  std::shared_ptr<Overlay> ov_;
};

TEST_F(SpliceReadTest, RawImageBytesMatchAlsoUnalignedAndAcrossPipes) {
  // 3 MiB from a 512-byte offset: more page slots than bytes/4096, and more than one pipe.
  const std::uint64_t off = 512;
  const std::size_t n = 3u << 20;
  auto chain = PipeChain::take(n);
  ASSERT_TRUE(chain);
  ASSERT_TRUE(base_->canSpliceRead());
  auto r = base_->spliceRead(off, n, *chain);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(chain->filled(), n);
  auto got = drain(*chain, 256u << 10);
  ASSERT_EQ(got.size(), n);
  EXPECT_TRUE(std::equal(got.begin(), got.end(), baseBytes_.begin() + off));
}

TEST_F(SpliceReadTest, OverlayMixesBaseDataAndZeroRunsInOrder) {
  // Chunks: 0 base, 1 written, 2 trimmed (zeros), 3 half-written (read-modify-write), 4.. base.
  std::vector<std::uint8_t> w(kChunk, 0xAB);
  ASSERT_TRUE(ov_->write(kChunk, w));
  ASSERT_TRUE(ov_->trim(2 * kChunk, kChunk));
  std::vector<std::uint8_t> half(kChunk / 2, 0xCD);
  ASSERT_TRUE(ov_->write(3 * kChunk + 4096, half));
  const std::uint64_t off = 1024;
  const std::size_t n = 6 * kChunk;
  auto expect = readAll(*ov_, off, n);
  auto chain = PipeChain::take(n);
  ASSERT_TRUE(chain);
  auto r = ov_->spliceRead(off, n, *chain);
  ASSERT_TRUE(r) << r.error().message;
  auto got = drain(*chain, 100000);  // pieces that cut across runs and pipes
  EXPECT_EQ(got, expect);
}

TEST_F(SpliceReadTest, BadRangeIsAnErrorAndNothingIsSpliced) {
  auto chain = PipeChain::take(8192);
  ASSERT_TRUE(chain);
  auto r = ov_->spliceRead(kSize - 4096, 8192, *chain);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ERANGE);
  EXPECT_EQ(chain->filled(), 0u);
}

TEST_F(SpliceReadTest, PipesGoBackToThePoolWhenDrainedAndAreClosedWhenNot) {
  const std::size_t lentBefore = PipeChain::lent();
  {
    auto chain = PipeChain::take(1u << 20);
    ASSERT_TRUE(chain);
    EXPECT_GT(PipeChain::lent(), lentBefore);
    ASSERT_TRUE(base_->spliceRead(0, 1u << 20, *chain));
    drain(*chain, 1u << 20);
  }
  EXPECT_EQ(PipeChain::lent(), lentBefore);
  const std::size_t idleAfterDrained = PipeChain::idle();
  EXPECT_GT(idleAfterDrained, 0u);
  {
    auto chain = PipeChain::take(1u << 20);  // reuses an idle pipe
    ASSERT_TRUE(chain);
    ASSERT_TRUE(base_->spliceRead(0, 1u << 20, *chain));
  }  // dropped full: its pipe still holds pages, so it is closed, not pooled
  EXPECT_EQ(PipeChain::lent(), lentBefore);
  EXPECT_LT(PipeChain::idle(), idleAfterDrained);
  // A pooled pipe is empty: a chain from it splices exactly what it is given.
  auto chain = PipeChain::take(4096);
  ASSERT_TRUE(chain);
  ASSERT_TRUE(base_->spliceRead(8192, 4096, *chain));
  auto got = drain(*chain, 4096);
  EXPECT_TRUE(std::equal(got.begin(), got.end(), baseBytes_.begin() + 8192));
}

TEST_F(SpliceReadTest, MoreThanTheChainHoldsIsRefused) {
  auto chain = PipeChain::take(4096);
  ASSERT_TRUE(chain);
  auto r = chain->spliceFrom(base_->fd(), 0, 8192, "base");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EINVAL);
  EXPECT_FALSE(chain->appendZeros(8192));
}

}  // namespace
}  // namespace pxedust::blockstore
