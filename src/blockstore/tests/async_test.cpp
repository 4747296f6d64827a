#include "blockstore/async_device.hpp"

#include <gtest/gtest.h>

#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "blockstore/overlay.hpp"
#include "blockstore/tests/test_util.hpp"

namespace pxedust::blockstore {
namespace {

class AsyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = testing::makeBase(dir_.path(), testing::randomBytes(1 << 20, 3));
    ASSERT_TRUE(Overlay::create(paths_, base_->identity(), 4096));
    auto ov = Overlay::open(paths_, base_);
    ASSERT_TRUE(ov);
    ov_ = *ov;
  }
  testing::TempDir dir_;
  std::shared_ptr<RawImage> base_;
  OverlayPaths paths_{dir_ / "h.map", dir_ / "h.data"};
  std::shared_ptr<Overlay> ov_;
};

TEST_F(AsyncTest, CompletionsRunOnceOnTheLoopAndNeverInline) {
  asio::io_context io;
  WorkerPool pool(2);
  AsyncBlockDevice dev(ov_, pool, io.get_executor());
  const auto loopThread = std::this_thread::get_id();
  std::vector<std::uint8_t> data(10000, 0x3C), back(10000), bad(16);
  int calls[4] = {};
  bool submitting = true;
  std::function<std::function<void(Result<void>)>(int)> check = [&](int i) {
    return [&, i](Result<void> r) {
      EXPECT_FALSE(submitting) << "completion ran inside the submit call";
      EXPECT_EQ(std::this_thread::get_id(), loopThread);
      ++calls[i];
      if (i == 0) {
        EXPECT_TRUE(r);
        dev.asyncRead(123, back, check(1));
      } else if (i == 1) {
        EXPECT_TRUE(r);
        EXPECT_EQ(back, data);
        dev.asyncFlush(check(3));
      } else if (i == 2) {
        ASSERT_FALSE(r);  // a bad range is reported through the completion, too
        EXPECT_EQ(r.error().code, ERANGE);
      } else {
        EXPECT_TRUE(r);
      }
    };
  };
  dev.asyncWrite(123, data, WriteFlags{}, check(0));
  dev.asyncRead(UINT64_MAX - 3, bad, check(2));
  submitting = false;
  io.run();
  for (int c : calls) EXPECT_EQ(c, 1);
}

TEST_F(AsyncTest, WorksWithCoroutinesAndExtents) {
  asio::io_context io;
  WorkerPool pool(2);
  AsyncBlockDevice dev(ov_, pool, io.get_executor());
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        std::vector<std::uint8_t> d(8192, 7);
        Result<void> w = co_await dev.asyncWrite(4096, d, WriteFlags{true}, asio::use_awaitable);
        EXPECT_TRUE(w);
        Result<void> z = co_await dev.asyncWriteZeroes(65536, 65536, WriteFlags{}, asio::use_awaitable);
        EXPECT_TRUE(z);
        Result<void> t = co_await dev.asyncTrim(1 << 18, 4096, asio::use_awaitable);
        EXPECT_TRUE(t);
        Result<std::vector<Extent>> ex = co_await dev.asyncExtents(0, 1 << 17, asio::use_awaitable);
        EXPECT_TRUE(ex);
        if (ex) {
          EXPECT_EQ(ex->size(), 4U);
          EXPECT_EQ((*ex)[1], (Extent{4096, 8192, ExtentState::Data}));
          EXPECT_EQ((*ex)[3], (Extent{65536, 65536, ExtentState::Zero}));
        }
        done = true;
      },
      asio::detached);
  io.run();
  EXPECT_TRUE(done);
}

TEST_F(AsyncTest, PoolShutdownStillCompletesEverythingQueued) {
  asio::io_context io;
  int completions = 0;
  std::vector<std::uint8_t> buf(4096);
  {
    WorkerPool pool(1);
    AsyncBlockDevice dev(ov_, pool, io.get_executor());
    for (int i = 0; i < 50; ++i) dev.asyncRead(static_cast<std::uint64_t>(i) * 4096, buf, [&](Result<void> r) {
      EXPECT_TRUE(r);
      ++completions;
    });
  }
  io.run();
  EXPECT_EQ(completions, 50);
}

}  // namespace
}  // namespace pxedust::blockstore

namespace pxedust::blockstore {
namespace {

TEST(WorkerPoolTest, ABacklogOfSlowOperationsWakesEveryThread) {
  // Slow operations (a disk) pile up: every thread must end up running one, or this never finishes.
  // Posted as slow, as AsyncBlockDevice posts reads that missed the page cache and flushes: quick
  // operations wake another thread only past a backlog of kBacklogPerThread per awake thread, so 8
  // quick ones that block could leave a thread asleep (timing-dependent; it failed once that way).
  WorkerPool pool(4);
  std::mutex m;
  std::condition_variable cv;
  int running = 0, finished = 0;
  for (int i = 0; i < 8; ++i) {
    pool.post([&] {
      std::unique_lock lk(m);
      ++running;
      cv.notify_all();
      EXPECT_TRUE(cv.wait_for(lk, std::chrono::seconds(10), [&] { return running >= 4; }))
          << "only " << running << " threads ran at once";
      ++finished;
      cv.notify_all();
    }, true);
  }
  std::unique_lock lk(m);
  EXPECT_TRUE(cv.wait_for(lk, std::chrono::seconds(20), [&] { return finished == 8; }));
}

TEST(WorkerPoolTest, ManyQuickOperationsAllRunAndTheDestructorDrainsTheQueue) {
  std::atomic<int> ran{0};
  {
    WorkerPool pool(3);
    for (int i = 0; i < 10000; ++i) pool.post([&] { ran.fetch_add(1); });
  }
  EXPECT_EQ(ran.load(), 10000);
}

}  // namespace
}  // namespace pxedust::blockstore

namespace pxedust::blockstore {
namespace {

TEST(WorkerPoolTest, NothingQueuesBehindASlowOperation) {
  // A flush (slow) holds one thread; a quick operation posted after it must run on another thread,
  // not wait for the flush, although the backlog is short.
  WorkerPool pool(2);
  std::mutex m;
  std::condition_variable cv;
  bool quickRan = false, slowDone = false;
  pool.post(
      [&] {
        std::unique_lock lk(m);
        EXPECT_TRUE(cv.wait_for(lk, std::chrono::seconds(10), [&] { return quickRan; }))
            << "the quick operation waited behind the slow one";
        slowDone = true;
        cv.notify_all();
      },
      true);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the slow one has started
  pool.post([&] {
    std::lock_guard lk(m);
    quickRan = true;
    cv.notify_all();
  });
  std::unique_lock lk(m);
  EXPECT_TRUE(cv.wait_for(lk, std::chrono::seconds(20), [&] { return slowDone; }));
}

}  // namespace
}  // namespace pxedust::blockstore
