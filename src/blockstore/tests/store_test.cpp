#include "blockstore/store.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "blockstore/tests/test_util.hpp"

namespace pxedust::blockstore {
namespace {

using testing::TempDir;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::open(dir_ / "store");
    ASSERT_TRUE(s) << s.error().message;
    store_ = *s;
    v1_ = testing::randomBytes(kSize, 1);
    v1_.resize(kSize + 64 * 1024, 0);  // a zero tail, which the import keeps sparse
    testing::writeWhole(dir_ / "v1.img", v1_);
    v2_ = testing::randomBytes(kSize, 2);
    testing::writeWhole(dir_ / "v2.img", v2_);
  }
  std::vector<std::uint8_t> readAll(BlockDevice& d) {
    std::vector<std::uint8_t> v(d.size());
    EXPECT_TRUE(d.read(0, v));
    return v;
  }
  static constexpr std::uint64_t kSize = 3 << 20;
  TempDir dir_;
  std::shared_ptr<Store> store_;
  std::vector<std::uint8_t> v1_, v2_;
};

TEST_F(StoreTest, ImportRecordsIdentityAndReportsProgress) {
  std::uint64_t lastDone = 0, calls = 0, total = 0;
  auto info = store_->importImage(dir_ / "v1.img", "deb12", [&](std::uint64_t done, std::uint64_t t) {
    EXPECT_GE(done, lastDone);
    lastDone = done;
    total = t;
    ++calls;
  });
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->identity.version, 1U);
  EXPECT_EQ(info->identity.size, v1_.size());
  EXPECT_EQ(lastDone, v1_.size());
  EXPECT_EQ(total, v1_.size());
  EXPECT_GE(calls, 1U);
  Sha256 sha;
  sha.update(v1_);
  EXPECT_EQ(info->identity.sha256, sha.finish());
  EXPECT_LT(info->allocatedBytes, v1_.size());  // the zero tail is a hole
  EXPECT_EQ(testing::readWhole(info->path), v1_);
  EXPECT_TRUE(store_->verifyImage("deb12", 1));
  auto list = store_->listImages();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1U);
  EXPECT_EQ((*list)[0].identity, info->identity);
}

TEST_F(StoreTest, ImportRefusesBadSourcesAndNames) {
  EXPECT_EQ(store_->importImage(dir_ / "nope.img", "x").error().code, ENOENT);
  testing::writeWhole(dir_ / "odd.img", std::vector<std::uint8_t>(1000, 1));
  auto r = store_->importImage(dir_ / "odd.img", "x");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("multiple of 512"), std::string::npos);
  testing::writeWhole(dir_ / "empty.img", {});
  EXPECT_FALSE(store_->importImage(dir_ / "empty.img", "x"));
  EXPECT_FALSE(store_->importImage(dir_.path(), "x"));
  for (const char* bad : {"", "../etc", ".hidden", "-opt", "a/b", "sp ace"}) {
    auto e = store_->importImage(dir_ / "v1.img", bad);
    ASSERT_FALSE(e) << bad;
    EXPECT_NE(e.error().message.find("invalid image name"), std::string::npos);
  }
  auto list = store_->listImages();
  ASSERT_TRUE(list);
  EXPECT_TRUE(list->empty());
}

TEST_F(StoreTest, NewVersionsNeverTouchPinnedOverlays) {
  ASSERT_TRUE(store_->importImage(dir_ / "v1.img", "deb12"));
  ASSERT_TRUE(store_->createOverlay("hostA", "deb12"));
  ASSERT_TRUE(store_->createOverlay("hostB", "deb12"));
  std::vector<std::uint8_t> mine(5000, 0xAA);
  {
    auto a = store_->openOverlay("hostA");
    ASSERT_TRUE(a) << a.error().message;
    ASSERT_TRUE((*a)->write(777, mine, WriteFlags{true}));
  }
  auto v2 = store_->importImage(dir_ / "v2.img", "deb12");
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->identity.version, 2U);

  auto infoA = store_->overlayInfo("hostA");
  ASSERT_TRUE(infoA);
  EXPECT_EQ(infoA->base.version, 1U);
  EXPECT_EQ(infoA->latestVersion, std::optional<std::uint64_t>(2));
  {
    auto a = store_->openOverlay("hostA");
    ASSERT_TRUE(a);
    auto expect = v1_;
    std::copy(mine.begin(), mine.end(), expect.begin() + 777);
    EXPECT_EQ(readAll(**a), expect);
    // Reset is refused while the overlay is open.
    EXPECT_EQ(store_->resetOverlay("hostA").error().code, EBUSY);
    EXPECT_EQ(store_->deleteOverlay("hostA").error().code, EBUSY);
    EXPECT_EQ(store_->openOverlay("hostA").error().code, EBUSY);
  }
  // Host B moves to v2; host A stays, then is reset in place.
  auto rb = store_->resetOverlay("hostB", ResetOptions{true, {}});
  ASSERT_TRUE(rb) << rb.error().message;
  EXPECT_EQ(rb->base.version, 2U);
  {
    auto b = store_->openOverlay("hostB");
    ASSERT_TRUE(b);
    EXPECT_EQ(readAll(**b), v2_);
  }
  auto ra = store_->resetOverlay("hostA");
  ASSERT_TRUE(ra);
  EXPECT_EQ(ra->base.version, 1U);
  {
    auto a = store_->openOverlay("hostA");
    EXPECT_EQ(readAll(**a), v1_);
  }
  EXPECT_FALSE(store_->resetOverlay("hostA", ResetOptions{false, 7}));
  auto list = store_->listOverlays();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2U);
  EXPECT_EQ((*list)[0].host, "hostA");
  ASSERT_TRUE(store_->deleteOverlay("hostA"));
  EXPECT_EQ(store_->overlayInfo("hostA").error().code, ENOENT);
  EXPECT_FALSE(std::filesystem::exists(store_->overlayPaths("hostA").data));
  EXPECT_EQ(store_->createOverlay("hostB", "deb12").error().code, EEXIST);
}

TEST_F(StoreTest, TamperedBaseIsDetected) {
  auto info = store_->importImage(dir_ / "v1.img", "deb12");
  ASSERT_TRUE(info);
  ASSERT_TRUE(store_->createOverlay("h", "deb12"));
  ::chmod(info->path.c_str(), 0644);
  auto bytes = v1_;
  bytes[12345] ^= 1;
  testing::writeWhole(info->path, bytes);
  auto v = store_->verifyImage("deb12", 1);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("does not match"), std::string::npos);
  bytes.resize(bytes.size() + 512);
  testing::writeWhole(info->path, bytes);
  auto o = store_->openOverlay("h");
  ASSERT_FALSE(o);
  EXPECT_NE(o.error().message.find("modified"), std::string::npos) << o.error().message;
}

TEST_F(StoreTest, ManyHostsAtOnceOnOneBase) {
  ASSERT_TRUE(store_->importImage(dir_ / "v2.img", "deb12"));
  constexpr int kHosts = 8;
  for (int h = 0; h < kHosts; ++h) {
    CreateOverlayOptions o;
    o.chunkSize = h % 2 ? 4096 : 65536;
    ASSERT_TRUE(store_->createOverlay("host" + std::to_string(h), "deb12", o));
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int h = 0; h < kHosts; ++h) {
    threads.emplace_back([&, h] {
      auto ov = store_->openOverlay("host" + std::to_string(h));
      if (!ov) {
        ++failures;
        return;
      }
      auto expect = v2_;
      std::mt19937_64 rng(static_cast<std::uint64_t>(h));
      for (int i = 0; i < 300; ++i) {
        auto off = rng() % (kSize - 9000);
        auto d = testing::randomBytes(1 + rng() % 9000, rng());
        if (!(*ov)->write(off, d)) ++failures;
        std::copy(d.begin(), d.end(), expect.begin() + static_cast<std::ptrdiff_t>(off));
        if (i % 50 == 0 && !(*ov)->flush()) ++failures;
      }
      std::vector<std::uint8_t> got(kSize);
      if (!(*ov)->read(0, got) || got != expect) ++failures;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(StoreTest, ConcurrentIoOnOneOverlayFromManyThreads) {
  ASSERT_TRUE(store_->importImage(dir_ / "v2.img", "deb12"));
  ASSERT_TRUE(store_->createOverlay("h", "deb12"));
  auto ov = store_->openOverlay("h");
  ASSERT_TRUE(ov);
  // Each thread owns interleaved 4 KiB stripes and writes them unaligned within the stripe, so
  // neighbours share chunks (chunk RMW races would show) but never bytes.
  constexpr int kThreads = 4;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t));
      for (int i = 0; i < 400; ++i) {
        std::uint64_t stripe = (rng() % (kSize / 4096 / kThreads)) * kThreads + static_cast<std::uint64_t>(t);
        std::vector<std::uint8_t> d(4000, static_cast<std::uint8_t>(t + 1));
        if (!(*ov)->write(stripe * 4096 + 48, d)) ++failures;
        if (i % 100 == 0 && !(*ov)->flush()) ++failures;
        std::vector<std::uint8_t> got(4000);
        if (!(*ov)->read(stripe * 4096 + 48, got) || got != d) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  std::vector<std::uint8_t> all(kSize);
  ASSERT_TRUE((*ov)->read(0, all));
  for (std::uint64_t s = 0; s < kSize / 4096; ++s) {
    auto t = static_cast<std::uint8_t>(s % kThreads + 1);
    for (std::uint64_t i = 0; i < 48; ++i) ASSERT_EQ(all[s * 4096 + i], v2_[s * 4096 + i]);
    ASSERT_TRUE(all[s * 4096 + 48] == t || all[s * 4096 + 48] == v2_[s * 4096 + 48]);
  }
}

}  // namespace
}  // namespace pxedust::blockstore
