// Bad input: ranges that overflow or run past the end, corrupt and truncated overlay files, a wrong or
// modified base, an unwritable directory, a full disk (a real RLIMIT_FSIZE in a child, and injected
// ENOSPC/EIO at every file operation). Each must give a clear error and leave acknowledged data intact.
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>

#include "blockstore/fault_device.hpp"
#include "blockstore/overlay.hpp"
#include "blockstore/store.hpp"
#include "blockstore/tests/test_util.hpp"
#include "common/checked.hpp"

namespace pxedust::blockstore {
namespace {

using testing::TempDir;

constexpr std::uint64_t kSize = 1 << 20;
constexpr std::uint32_t kChunk = 4096;

class Faults final : public FaultInjector {
 public:
  int check(IoOp op) override {
    std::lock_guard lk(m_);
    auto it = fail_.find(op);
    return it == fail_.end() ? 0 : it->second;
  }
  void set(IoOp op, int err) {
    std::lock_guard lk(m_);
    if (err == 0) {
      fail_.erase(op);
    } else {
      fail_[op] = err;
    }
  }

 private:
  std::mutex m_;
  std::map<IoOp, int> fail_;
};

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    baseBytes_ = testing::randomBytes(kSize, 5);
    base_ = testing::makeBase(dir_.path(), baseBytes_);
    ASSERT_TRUE(Overlay::create(paths_, base_->identity(), kChunk));
  }
  std::vector<std::uint8_t> readAll(BlockDevice& d) {
    std::vector<std::uint8_t> v(d.size());
    EXPECT_TRUE(d.read(0, v));
    return v;
  }
  TempDir dir_;
  std::vector<std::uint8_t> baseBytes_;
  std::shared_ptr<RawImage> base_;
  OverlayPaths paths_{dir_ / "h.map", dir_ / "h.data"};
};

TEST_F(BadInput, OverflowingAndPastTheEndRangesAreRefusedOnEveryDevice) {
  auto ov = Overlay::open(paths_, base_);
  ASSERT_TRUE(ov);
  std::vector<std::shared_ptr<BlockDevice>> devs = {*ov, base_, std::make_shared<FaultyDevice>(*ov)};
  struct R {
    std::uint64_t off, len;
  };
  const R bad[] = {{kSize, 1},         {kSize + 1, 0},      {kSize - 1, 2},       {UINT64_MAX, 1},
                   {1, UINT64_MAX},    {UINT64_MAX, UINT64_MAX}, {kSize / 2, kSize}, {UINT64_MAX - 511, 1024}};
  std::vector<std::uint8_t> buf(4);
  for (auto& d : devs) {
    for (auto r : bad) {
      SCOPED_TRACE(::testing::Message() << d->describe() << " off=" << r.off << " len=" << r.len);
      EXPECT_EQ(d->trim(r.off, r.len).error().code, ERANGE);
      EXPECT_EQ(d->writeZeroes(r.off, r.len).error().code, ERANGE);
      EXPECT_EQ(d->extents(r.off, r.len).error().code, ERANGE);
      if (!within<std::uint64_t>(r.off, buf.size(), kSize)) {
        auto e = d->read(r.off, buf);
        ASSERT_FALSE(e);
        EXPECT_EQ(e.error().code, ERANGE);
        EXPECT_NE(e.error().message.find(std::to_string(r.off)), std::string::npos) << e.error().message;
        EXPECT_EQ(d->write(r.off, buf).error().code, ERANGE);
      }
    }
    // The edges themselves are fine, zero-length included.
    EXPECT_TRUE(d->read(kSize - 4, buf));
    EXPECT_TRUE(d->read(kSize, std::span<std::uint8_t>()));
    EXPECT_TRUE(d->extents(kSize, 0));
  }
  EXPECT_EQ(readAll(**ov), baseBytes_);
}

TEST_F(BadInput, CorruptOrTruncatedMapIsAClearErrorAndNotRewritten) {
  {
    auto ov = Overlay::open(paths_, base_);
    std::vector<std::uint8_t> d(kChunk, 1);
    ASSERT_TRUE((*ov)->write(0, d, WriteFlags{true}));
  }
  auto good = testing::readWhole(paths_.map);
  auto expectFail = [&](std::vector<std::uint8_t> bytes, std::string_view needle) {
    testing::writeWhole(paths_.map, bytes);
    auto ov = Overlay::open(paths_, base_);
    ASSERT_FALSE(ov) << needle;
    EXPECT_NE(ov.error().message.find(needle), std::string::npos) << ov.error().message;
    EXPECT_EQ(testing::readWhole(paths_.map), bytes) << "a refused map must not be modified";
  };
  auto flipped = good;
  flipped[20] ^= 1;
  expectFail(flipped, "header checksum");
  expectFail(std::vector<std::uint8_t>(good.begin(), good.begin() + 300), "shorter than its header");
  expectFail(std::vector<std::uint8_t>(good.begin(), good.begin() + kMapHeaderSize + 2), "too short");
  auto snap = good;
  snap[kMapHeaderSize] ^= 0x80;
  expectFail(snap, "snapshot");
  expectFail(std::vector<std::uint8_t>(600, 0), "bad magic");
  // Garbage after the snapshot is a torn journal tail: opens, keeps everything before it.
  auto tail = good;
  tail.insert(tail.end(), 50, 0xEE);
  testing::writeWhole(paths_.map, tail);
  auto ov = Overlay::open(paths_, base_);
  ASSERT_TRUE(ov) << ov.error().message;
  std::vector<std::uint8_t> got(kChunk);
  ASSERT_TRUE((*ov)->read(0, got));
  EXPECT_EQ(got, std::vector<std::uint8_t>(kChunk, 1));
}

TEST_F(BadInput, TruncatedOrMissingDataFileIsAClearError) {
  ASSERT_EQ(::truncate(paths_.data.c_str(), kSize / 2), 0);
  auto ov = Overlay::open(paths_, base_);
  ASSERT_FALSE(ov);
  EXPECT_EQ(ov.error().code, EUCLEAN);
  EXPECT_NE(ov.error().message.find("truncated"), std::string::npos);
  ::unlink(paths_.data.c_str());
  ov = Overlay::open(paths_, base_);
  ASSERT_FALSE(ov);
  EXPECT_NE(ov.error().message.find("missing"), std::string::npos) << ov.error().message;
}

TEST_F(BadInput, ModifiedBaseSizeIsRefused) {
  auto p = dir_ / "grown.img";
  auto bytes = baseBytes_;
  bytes.resize(kSize + 512);
  testing::writeWhole(p, bytes);
  auto img = RawImage::open(p, base_->identity());
  ASSERT_FALSE(img);
  EXPECT_NE(img.error().message.find("modified"), std::string::npos);
}

TEST_F(BadInput, InvalidChunkSizesAndBasesAreRefusedAtCreate) {
  OverlayPaths p{dir_ / "x.map", dir_ / "x.data"};
  for (std::uint32_t cs : {0U, 512U, 4095U, 6144U, 2U << 20}) {
    auto r = Overlay::create(p, base_->identity(), cs);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("chunk size"), std::string::npos);
  }
  auto id = base_->identity();
  id.size = 1000;
  EXPECT_FALSE(Overlay::create(p, id, kChunk));
  EXPECT_EQ(Overlay::create(paths_, base_->identity(), kChunk).error().code, EEXIST);
}

TEST_F(BadInput, UnwritableDirectoryIsAClearError) {
  auto ro = dir_ / "ro";
  std::filesystem::create_directory(ro);
  auto store = Store::open(ro);
  ASSERT_TRUE(store);
  auto img = (*store)->importImage(dir_ / "base-v1.img", "img");
  ASSERT_TRUE(img) << img.error().message;
  // Root ignores permission bits, so make the overlays directory immutable (ext4/xfs/btrfs) instead.
  auto ovDir = ro / "overlays";
  bool immutable = false;
  int fd = ::open(ovDir.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  if (::geteuid() == 0) {
    int flags = 0;
    if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
      flags |= FS_IMMUTABLE_FL;
      immutable = ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
    }
  } else {
    ::chmod(ovDir.c_str(), 0555);
  }
  if (::geteuid() == 0 && !immutable) {
    ::close(fd);
    GTEST_SKIP() << "running as root on a filesystem without the immutable flag";
  }
  auto r = (*store)->createOverlay("h1", "img");
  if (immutable) {
    int flags = 0;
    ::ioctl(fd, FS_IOC_GETFLAGS, &flags);
    flags &= ~FS_IMMUTABLE_FL;
    ::ioctl(fd, FS_IOC_SETFLAGS, &flags);
  } else {
    ::chmod(ovDir.c_str(), 0755);
  }
  ::close(fd);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().code == EPERM || r.error().code == EACCES) << r.error().code;
  EXPECT_NE(r.error().message.find(ovDir.string()), std::string::npos) << r.error().message;
  auto list = (*store)->listOverlays();
  ASSERT_TRUE(list);
  EXPECT_TRUE(list->empty());
  EXPECT_TRUE((*store)->createOverlay("h1", "img"));
}

TEST_F(BadInput, RealFileSizeLimitFailsWritesCleanly) {
  // A child with RLIMIT_FSIZE = 256 KiB: writes to the data file beyond that get EFBIG, as they would
  // ENOSPC on a full disk; writes below it and the flush still work.
  std::vector<std::uint8_t> low(kChunk, 0x42), high(kChunk, 0x43);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit lim{256 * 1024, 256 * 1024};
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(10);
    auto ov = Overlay::open(paths_, base_);
    if (!ov) _exit(11);
    auto w = (*ov)->write(kSize / 2, high);
    if (w || w.error().code != EFBIG) _exit(12);
    if (w.error().message.find("h.data") == std::string::npos) _exit(13);
    if (!(*ov)->write(0, low) || !(*ov)->flush()) _exit(14);
    std::vector<std::uint8_t> got(kChunk);
    if (!(*ov)->read(kSize / 2, got) || !std::equal(got.begin(), got.end(), baseBytes_.begin() + kSize / 2)) _exit(15);
    _exit(0);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st));
  ASSERT_EQ(WEXITSTATUS(st), 0);
  auto ov = Overlay::open(paths_, base_);
  ASSERT_TRUE(ov);
  auto all = readAll(**ov);
  EXPECT_TRUE(std::equal(low.begin(), low.end(), all.begin()));
  EXPECT_TRUE(std::equal(all.begin() + kSize / 2, all.end(), baseBytes_.begin() + kSize / 2));
}

TEST_F(BadInput, InjectedNoSpaceOnDataWriteChangesNothing) {
  auto faults = std::make_shared<Faults>();
  OverlayOptions o;
  o.faults = faults;
  auto ov = Overlay::open(paths_, base_, o);
  ASSERT_TRUE(ov);
  std::vector<std::uint8_t> d(3 * kChunk, 0x99);
  faults->set(IoOp::DataWrite, ENOSPC);
  auto w = (*ov)->write(100, d);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, ENOSPC);
  EXPECT_EQ(readAll(**ov), baseBytes_);  // the map still points at the base
  faults->set(IoOp::DataWrite, 0);
  ASSERT_TRUE((*ov)->write(100, d));
  ASSERT_TRUE((*ov)->flush());
}

TEST_F(BadInput, InjectedNoSpaceOnJournalAppendKeepsRecordsForTheNextFlush) {
  auto faults = std::make_shared<Faults>();
  OverlayOptions o;
  o.faults = faults;
  std::vector<std::uint8_t> d(kChunk, 0x31);
  {
    auto ov = Overlay::open(paths_, base_, o);
    ASSERT_TRUE((*ov)->write(8 * kChunk, d));
    faults->set(IoOp::MapWrite, ENOSPC);
    auto f = (*ov)->flush();
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().code, ENOSPC);
    EXPECT_NE(f.error().message.find("journal"), std::string::npos);
    faults->set(IoOp::MapWrite, 0);
    ASSERT_TRUE((*ov)->flush());
  }
  auto ov = Overlay::open(paths_, base_);
  auto all = readAll(**ov);
  EXPECT_TRUE(std::equal(d.begin(), d.end(), all.begin() + 8 * kChunk));
}

TEST_F(BadInput, FailedSyncPoisonsUntilReopenAndKeepsEarlierFlushes) {
  auto faults = std::make_shared<Faults>();
  OverlayOptions o;
  o.faults = faults;
  std::vector<std::uint8_t> a(kChunk, 0xA1), b(kChunk, 0xB2);
  {
    auto ov = Overlay::open(paths_, base_, o);
    ASSERT_TRUE((*ov)->write(0, a, WriteFlags{true}));
    ASSERT_TRUE((*ov)->write(kChunk, b));
    faults->set(IoOp::DataSync, EIO);
    EXPECT_EQ((*ov)->flush().error().code, EIO);
    faults->set(IoOp::DataSync, 0);
    auto again = (*ov)->write(2 * kChunk, b);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, EIO);
    EXPECT_NE(again.error().message.find("reopen"), std::string::npos);
    EXPECT_FALSE((*ov)->flush());
    std::vector<std::uint8_t> got(kChunk);
    EXPECT_TRUE((*ov)->read(0, got));  // reads still work
  }
  auto ov = Overlay::open(paths_, base_);
  ASSERT_TRUE(ov);
  auto all = readAll(**ov);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), all.begin()));
}

TEST_F(BadInput, FailedCompactionIsNotAFailedFlush) {
  auto faults = std::make_shared<Faults>();
  OverlayOptions o;
  o.faults = faults;
  o.compactAfterBytes = 36;
  std::vector<std::uint8_t> d(kChunk, 0x66);
  {
    auto ov = Overlay::open(paths_, base_, o);
    faults->set(IoOp::Compact, ENOSPC);
    for (int i = 0; i < 4; ++i) {
      ASSERT_TRUE((*ov)->write(static_cast<std::uint64_t>(i) * 2 * kChunk, d));
      ASSERT_TRUE((*ov)->flush());
    }
    EXPECT_EQ((*ov)->stats().compactions, 0U);
    EXPECT_GT((*ov)->stats().journalBytes, 0U);
    faults->set(IoOp::Compact, 0);
  }
  auto ov = Overlay::open(paths_, base_);
  auto all = readAll(**ov);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(all[static_cast<std::size_t>(i) * 2 * kChunk], 0x66);
}

TEST_F(BadInput, FaultyDeviceDecoratorFailsChosenCalls) {
  auto ov = Overlay::open(paths_, base_);
  auto f = std::make_shared<FaultyDevice>(*ov);
  f->failAfter(FaultyDevice::Write, 1, ENOSPC);
  std::vector<std::uint8_t> d(10, 1);
  EXPECT_TRUE(f->write(0, d));
  EXPECT_EQ(f->write(0, d).error().code, ENOSPC);
  EXPECT_TRUE(f->write(0, d));
  f->failAfter(FaultyDevice::Flush, 0, EIO, true);
  EXPECT_FALSE(f->flush());
  EXPECT_FALSE(f->flush());
  f->clear();
  EXPECT_TRUE(f->flush());
}

}  // namespace
}  // namespace pxedust::blockstore
