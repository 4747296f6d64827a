// The non-blocking read path: BlockDevice::tryRead (RWF_NOWAIT, locks only tried) and the
// AsyncBlockDevice that tries it inline before sending a read to the worker pool.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <optional>
#include <thread>

#include "blockstore/async_device.hpp"
#include "blockstore/overlay.hpp"
#include "blockstore/tests/test_util.hpp"

namespace pxedust::blockstore {
namespace {

class TryReadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    baseBytes_ = testing::randomBytes(kSize, 11);
    base_ = testing::makeBase(dir_.path(), baseBytes_);
    ASSERT_TRUE(Overlay::create(paths_, base_->identity(), kChunk));
    auto ov = Overlay::open(paths_, base_);
    ASSERT_TRUE(ov) << ov.error().message;
    ov_ = *ov;
  }
  // Drops the base's pages from the page cache; false when the kernel kept the page at `at`.
  // Residency is checked with mincore, not with a read: an RWF_NOWAIT read that misses starts
  // readahead, which would bring the page back before the test's own read.
  bool evictBase(std::uint64_t at) {
    int fd = ::open(base_->path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    void* map = ::mmap(nullptr, kSize, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (map == MAP_FAILED) return false;
    const long page = ::sysconf(_SC_PAGESIZE);
    unsigned char resident = 1;
    const bool ok = ::mincore(static_cast<std::uint8_t*>(map) + at, static_cast<std::size_t>(page), &resident) == 0;
    ::munmap(map, kSize);
    return ok && (resident & 1) == 0;
  }
  // Evicts the base and runs `attempt` (true: it took the miss path), up to five times, until one
  // misses. A miss cannot be forced: the readahead an RWF_NOWAIT miss starts can complete before
  // the read looks again (measured here: five answered in a row about once in a hundred runs), so
  // the tests check that whatever is answered is right, and use the result only to skip.
  // nullopt when the kernel never dropped the page at `at`.
  template <typename F>
  std::optional<bool> missedWithinFiveTries(std::uint64_t at, F attempt) {
    bool evicted = false;
    for (int i = 0; i < 5; ++i) {
      if (!evictBase(at)) continue;
      evicted = true;
      if (attempt()) return true;
    }
    return evicted ? std::optional<bool>(false) : std::nullopt;
  }
  static constexpr std::uint64_t kSize = 1 << 20;
  static constexpr std::uint32_t kChunk = 4096;
  testing::TempDir dir_;
  std::vector<std::uint8_t> baseBytes_;
  std::shared_ptr<RawImage> base_;
  OverlayPaths paths_{dir_ / "h.map", dir_ / "h.data"};
  std::shared_ptr<Overlay> ov_;
};

TEST_F(TryReadTest, RawImageAnswersCachedBytesAndNeverWrongOnes) {
  std::vector<std::uint8_t> all(kSize);
  ASSERT_TRUE(base_->read(0, all));  // now cached
  std::vector<std::uint8_t> b(8192);
  auto r = base_->tryRead(4096, b);
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE(*r);
  EXPECT_TRUE(std::equal(b.begin(), b.end(), baseBytes_.begin() + 4096));
  // A bad range is a final answer, not "would block".
  auto bad = base_->tryRead(kSize - 512, b);
  ASSERT_TRUE(bad.has_value());
  ASSERT_FALSE(*bad);
  EXPECT_EQ(bad->error().code, ERANGE);
  auto missed = missedWithinFiveTries(0, [&] {
    auto got = base_->tryRead(0, b);
    if (got) {
      EXPECT_TRUE(*got && std::equal(b.begin(), b.end(), baseBytes_.begin()));  // answered: right
    }
    return !got.has_value();
  });
  if (!missed) GTEST_SKIP() << "the page cache kept the base after POSIX_FADV_DONTNEED";
  ASSERT_TRUE(base_->read(0, b));  // the blocking path still answers
  EXPECT_TRUE(std::equal(b.begin(), b.end(), baseBytes_.begin()));
}

TEST_F(TryReadTest, OverlayTryReadMatchesReadOverFragmentedRuns) {
  // Every third chunk written, every seventh trimmed: a range of many Base, Data and Zero runs, which
  // the overlay reads with one pread per source over their span.
  auto expect = baseBytes_;
  for (std::uint64_t c = 0; c < kSize / kChunk; c += 3) {
    std::vector<std::uint8_t> d(kChunk, static_cast<std::uint8_t>(c * 7 + 1));
    ASSERT_TRUE(ov_->write(c * kChunk, d));
    std::copy(d.begin(), d.end(), expect.begin() + static_cast<std::ptrdiff_t>(c * kChunk));
  }
  for (std::uint64_t c = 0; c < kSize / kChunk; c += 7) {
    ASSERT_TRUE(ov_->trim(c * kChunk, kChunk));
    std::fill_n(expect.begin() + static_cast<std::ptrdiff_t>(c * kChunk), kChunk, 0);
  }
  std::vector<std::uint8_t> all(kSize);
  ASSERT_TRUE(ov_->read(0, all));
  EXPECT_EQ(all, expect);
  // Unaligned ranges, from one run to all of them.
  for (auto [off, len] : {std::pair<std::uint64_t, std::size_t>{100, 50}, {4000, 10000}, {12345, 300000}, {512, kSize - 1024}}) {
    std::vector<std::uint8_t> a(len), b(len);
    ASSERT_TRUE(ov_->read(off, a));
    EXPECT_TRUE(std::equal(a.begin(), a.end(), expect.begin() + static_cast<std::ptrdiff_t>(off))) << off;
    auto r = ov_->tryRead(off, b);
    ASSERT_TRUE(r.has_value()) << "all of it is in the page cache";
    ASSERT_TRUE(*r);
    EXPECT_EQ(a, b) << off;
  }
}

TEST_F(TryReadTest, AlternatingChunksAreReadInBulkAndRightFromBothSources) {
  // Every other chunk written: runs of one chunk from each source, where one pread per source over
  // the span (base into scratch, data into the buffer) replaces one per run.
  auto expect = baseBytes_;
  for (std::uint64_t c = 1; c < kSize / kChunk; c += 2) {
    std::vector<std::uint8_t> d(kChunk, static_cast<std::uint8_t>(c));
    ASSERT_TRUE(ov_->write(c * kChunk, d));
    std::copy(d.begin(), d.end(), expect.begin() + static_cast<std::ptrdiff_t>(c * kChunk));
  }
  ASSERT_TRUE(ov_->trim(40 * kChunk, 3 * kChunk));
  std::fill_n(expect.begin() + 40 * kChunk, 3 * kChunk, 0);
  for (auto [off, len] : {std::pair<std::uint64_t, std::size_t>{0, kSize}, {1000, 65536}, {kChunk, 5 * kChunk}, {77777, 200000}}) {
    std::vector<std::uint8_t> a(len), b(len);
    ASSERT_TRUE(ov_->read(off, a));
    EXPECT_TRUE(std::equal(a.begin(), a.end(), expect.begin() + static_cast<std::ptrdiff_t>(off))) << off;
    auto r = ov_->tryRead(off, b);
    ASSERT_TRUE(r.has_value());
    ASSERT_TRUE(*r);
    EXPECT_EQ(a, b) << off;
  }
}

TEST_F(TryReadTest, OverlayTryReadOfAnUncachedBaseDeclinesOrAnswersRight) {
  std::vector<std::uint8_t> b(8192);
  auto missed = missedWithinFiveTries(kSize / 2, [&] {
    auto got = ov_->tryRead(kSize / 2, b);
    if (got) {
      EXPECT_TRUE(*got && std::equal(b.begin(), b.end(), baseBytes_.begin() + kSize / 2));
    }
    return !got.has_value();
  });
  if (!missed) GTEST_SKIP() << "the page cache kept the base after POSIX_FADV_DONTNEED";
  ASSERT_TRUE(ov_->read(kSize / 2, b));
  EXPECT_TRUE(std::equal(b.begin(), b.end(), baseBytes_.begin() + kSize / 2));
}

TEST_F(TryReadTest, AsyncReadOfCachedBytesCompletesWithoutThePoolAndNeverInline) {
  asio::io_context io;
  WorkerPool pool(2);
  AsyncBlockDevice dev(ov_, pool, io.get_executor());
  std::vector<std::uint8_t> warm(kSize);
  ASSERT_TRUE(ov_->read(0, warm));
  std::vector<std::uint8_t> b(4096);
  bool submitting = true, done = false;
  const auto loopThread = std::this_thread::get_id();
  dev.asyncRead(8192, b, [&](Result<void> r) {
    EXPECT_FALSE(submitting) << "completion ran inside the submit call";
    EXPECT_EQ(std::this_thread::get_id(), loopThread);
    EXPECT_TRUE(r);
    done = true;
  });
  submitting = false;
  io.run();
  EXPECT_TRUE(done);
  EXPECT_EQ(dev.inlineReads(), 1u);
  EXPECT_EQ(dev.pooledOps(), 0u);
  EXPECT_TRUE(std::equal(b.begin(), b.end(), baseBytes_.begin() + 8192));
}

TEST_F(TryReadTest, AsyncReadFallsBackToThePoolWhenTheTryDeclines) {
  asio::io_context io;
  WorkerPool pool(2);
  AsyncBlockDevice dev(ov_, pool, io.get_executor());
  dev.setTryInline(false);  // as if every try would block
  std::vector<std::uint8_t> b(4096);
  int done = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        Result<void> r = co_await dev.asyncRead(12288, b, asio::use_awaitable);
        EXPECT_TRUE(r);
        ++done;
      },
      [](std::exception_ptr e) { EXPECT_FALSE(e); });
  io.run();
  EXPECT_EQ(done, 1);
  EXPECT_EQ(dev.inlineReads(), 0u);
  EXPECT_EQ(dev.pooledOps(), 1u);
  EXPECT_TRUE(std::equal(b.begin(), b.end(), baseBytes_.begin() + 12288));
  // With the try on, a read of bytes the page cache does not hold goes to the pool too.
  dev.setTryInline(true);
  auto missed = missedWithinFiveTries(kSize / 2, [&] {
    const auto pooled = dev.pooledOps();
    io.restart();
    bool ok = false;
    dev.asyncRead(kSize / 2, b, [&](Result<void> r) { ok = static_cast<bool>(r); });
    io.run();
    EXPECT_TRUE(ok);
    EXPECT_TRUE(std::equal(b.begin(), b.end(), baseBytes_.begin() + kSize / 2));
    return dev.pooledOps() == pooled + 1;
  });
  (void)missed;  // answered inline or by the pool, the bytes were checked above
}

}  // namespace
}  // namespace pxedust::blockstore
