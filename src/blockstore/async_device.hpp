// AsyncBlockDevice: the event loop's way into a BlockDevice.
//
// Completion contract (SPDK bdev style, habit 12):
//  * Every async* call completes exactly once, with a Result (an Error for a bad range too).
//  * The completion never runs inside the async* call. It is posted to the completion handler's
//    associated executor, or, when the handler has none, to the executor given at construction (the
//    caller's event loop). A completion token such as asio::use_awaitable works as well as a callback:
//        Result<void> r = co_await dev.asyncRead(off, buf, asio::use_awaitable);
//  * A read is first tried inline, on the calling thread, with BlockDevice::tryRead (page-cache hits,
//    RWF_NOWAIT, locks only tried): when it answers, the completion is posted straight to the
//    handler's executor, with no thread hop (the contract above holds: it still never runs inside the
//    call). A write of at most kMaxInlineWrite bytes is tried inline the same way, with
//    BlockDevice::tryWrite, while the InlineWriteGate is open (below). Otherwise, and for every other
//    operation, the blocking call runs on a WorkerPool thread.
//    Buffers must stay valid, and not be touched by the caller, until the completion runs. The
//    BlockDevice is kept alive by the operation.
//  * Shutdown: ~WorkerPool runs every queued operation before its threads exit, so every completion
//    is still posted. If the target executor is destroyed without running (an io_context destroyed
//    unrun), asio destroys the handler uncalled: stop the loop only after its gate drains.
//  * Ordering: operations may complete in any order (like a disk's queue). A flush covers the writes
//    that completed before it was submitted.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "blockstore/block_device.hpp"

namespace pxedust::blockstore {

// A small fixed pool of threads for blocking file I/O (pread/pwrite/fdatasync).
//
// Wake-ups cost more than the page-cache I/O most operations are (a futex wake, two context
// switches), so a new operation wakes a sleeping thread only when the queue holds more than
// kBacklogPerThread operations per thread that is awake and not running a slow operation; otherwise
// a thread that is running takes it when it finishes its current one. Operations posted as slow (a
// flush, a read that missed the page cache) do not count as a thread that will be free soon, so
// nothing queues behind an fdatasync; a slow disk lets the queue grow and wakes the others.
class WorkerPool {
 public:
  explicit WorkerPool(unsigned threads = 4);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  template <typename F>
  void post(F&& f, bool slow = false) {
    auto t = std::make_unique<TaskImpl<std::decay_t<F>>>(std::forward<F>(f));
    t->slow = slow;
    enqueue(std::move(t));
  }
  [[nodiscard]] std::size_t threads() const { return count_; }
  static constexpr std::size_t kBacklogPerThread = 2;

 private:
  struct Task {
    virtual ~Task() = default;
    virtual void run() = 0;
    bool slow = false;
  };
  // Threads awake that will soon be free for the next operation (under mutex_).
  [[nodiscard]] std::size_t soonFree() const { return awake_ - slowRunning_; }
  template <typename F>
  struct TaskImpl final : Task {
    explicit TaskImpl(F f) : fn(std::move(f)) {}
    void run() override { fn(); }
    F fn;
  };
  void enqueue(std::unique_ptr<Task> t);
  void loop();

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Task>> queue_;
  std::size_t awake_ = 0;  // threads not waiting on cv_
  std::size_t slowRunning_ = 0;  // of those, threads running a slow operation
  std::size_t count_ = 0;  // threads started (set before any starts)
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// Whether the event loop may write into the page cache itself (BlockDevice::tryWrite), for the
// whole process. A buffered write is a copy of a few microseconds, cheaper than the thread hop to
// the pool that would wait for it, but it cannot be made non-blocking: the kernel throttles writers
// when too much memory is dirty (10 to 200 ms per call) and may wait for a journal commit, and the
// loop serves every client. So each inline write is timed, and one that took longer than kSlow counts
// as a stall. The gate closes when the stalls of the current window (kWindow) add up to more than
// kStallBudget: writes go to the pool for a pause meanwhile. The pause starts at kMinPause and
// doubles, up to kMaxPause, when the stalls come back soon after it reopened (the disk is still
// behind); a quiet spell of two pauses starts it again at kMinPause.
// The budget, rather than one stall, is there because the time is wall time: a loop thread preempted
// by another process during a write takes the same 2-6 ms now and then on a busy machine, and would
// have been preempted doing anything else (measured: every such stall in a benchmark's first-write
// pass was an involuntary context switch, getrusage's ru_nivcsw). One throttled write (tens of ms)
// closes the gate at once; a stray preemption a second does not. Thread-safe; open() takes no lock.
class InlineWriteGate {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr Clock::duration kSlow = std::chrono::milliseconds(2);
  static constexpr Clock::duration kWindow = std::chrono::seconds(1);
  static constexpr Clock::duration kStallBudget = std::chrono::milliseconds(20);
  static constexpr Clock::duration kMinPause = std::chrono::seconds(1);
  static constexpr Clock::duration kMaxPause = std::chrono::seconds(64);

  // The gate of the process.
  static InlineWriteGate& global();

  [[nodiscard]] bool open(Clock::time_point now) const { return now.time_since_epoch().count() >= closedUntil_.load(); }
  // Records one inline write's duration; true when this call closed the gate.
  bool record(Clock::duration took, Clock::time_point now);
  // Writes that took longer than kSlow, whether or not they closed the gate.
  [[nodiscard]] std::uint64_t slowWrites() const { return slow_.load(); }
  [[nodiscard]] Clock::duration pause() const { return Clock::duration(pause_.load()); }
  // Opens the gate and forgets past stalls and pauses (tests).
  void reset();

 private:
  std::atomic<Clock::rep> closedUntil_{0};  // steady_clock ticks since its epoch
  std::atomic<Clock::rep> pause_{0};        // the last pause (0: none yet)
  std::atomic<std::uint64_t> slow_{0};
  std::mutex stallMutex_;               // the window below; taken by slow writes only
  Clock::time_point windowStart_{};
  Clock::duration stalled_{};           // slow writes' time since windowStart_
};

class AsyncBlockDevice {
 public:
  // Writes up to this size are tried inline (a 64 KiB copy is ~10 us; larger ones are worth a thread).
  static constexpr std::size_t kMaxInlineWrite = 64u << 10;

  AsyncBlockDevice(std::shared_ptr<BlockDevice> device, WorkerPool& pool, asio::any_io_executor executor)
      : dev_(std::move(device)), pool_(pool), executor_(std::move(executor)) {}

  [[nodiscard]] BlockDevice& device() { return *dev_; }
  // Inline tries of reads and writes (on by default); off sends every operation to the pool (tests
  // of that path).
  void setTryInline(bool on) { tryInline_ = on; }
  // Reads and writes done inline, and operations sent to the pool (counted on the submitting thread).
  [[nodiscard]] std::uint64_t inlineReads() const { return inlineReads_; }
  [[nodiscard]] std::uint64_t inlineWrites() const { return inlineWrites_; }
  [[nodiscard]] std::uint64_t pooledOps() const { return pooledOps_; }
  [[nodiscard]] const std::shared_ptr<BlockDevice>& shared() const { return dev_; }

  template <typename Token>
  auto asyncRead(std::uint64_t offset, std::span<std::uint8_t> buf, Token&& token) {
    return asio::async_initiate<Token, void(Result<void>)>(
        [this](auto handler, std::uint64_t off, std::span<std::uint8_t> b) {
          if (tryInline_) {
            if (std::optional<Result<void>> r = dev_->tryRead(off, b)) {
              ++inlineReads_;
              auto ex = asio::get_associated_executor(handler, executor_);
              asio::post(ex, [h = std::move(handler), r = std::move(*r)]() mutable { std::move(h)(std::move(r)); });
              return;
            }
          }
          // Past the try, a read is expected to wait for the disk.
          submit<Result<void>>(std::move(handler), [off, b](BlockDevice& d) { return d.read(off, b); }, true);
        },
        token, offset, buf);
  }
  // BlockDevice::spliceRead on the pool (a splice may wait for the disk, and has no RWF_NOWAIT).
  // The chain must stay alive, and untouched, until the completion runs.
  template <typename Token>
  auto asyncSpliceRead(std::uint64_t offset, std::uint64_t length, PipeChain& out, Token&& token) {
    return start<Result<void>>(
        std::forward<Token>(token),
        [offset, length, o = &out](BlockDevice& d) { return d.spliceRead(offset, length, *o); }, true);
  }
  template <typename Token>
  auto asyncWrite(std::uint64_t offset, std::span<const std::uint8_t> data, WriteFlags flags, Token&& token) {
    return asio::async_initiate<Token, void(Result<void>)>(
        [this](auto handler, std::uint64_t off, std::span<const std::uint8_t> d, WriteFlags f) {
          if (tryInline_ && d.size() <= kMaxInlineWrite) {
            if (std::optional<Result<void>> r = tryWriteInline(off, d, f)) {
              ++inlineWrites_;
              auto ex = asio::get_associated_executor(handler, executor_);
              asio::post(ex, [h = std::move(handler), r = std::move(*r)]() mutable { std::move(h)(std::move(r)); });
              return;
            }
          }
          submit<Result<void>>(std::move(handler), [off, d, f](BlockDevice& dev) { return dev.write(off, d, f); });
        },
        token, offset, data, flags);
  }
  template <typename Token>
  auto asyncFlush(Token&& token) {
    return start<Result<void>>(std::forward<Token>(token), [](BlockDevice& d) { return d.flush(); }, true);
  }
  template <typename Token>
  auto asyncTrim(std::uint64_t offset, std::uint64_t length, Token&& token) {
    return start<Result<void>>(std::forward<Token>(token), [offset, length](BlockDevice& d) { return d.trim(offset, length); });
  }
  template <typename Token>
  auto asyncWriteZeroes(std::uint64_t offset, std::uint64_t length, WriteFlags flags, Token&& token) {
    return start<Result<void>>(std::forward<Token>(token),
                               [offset, length, flags](BlockDevice& d) { return d.writeZeroes(offset, length, flags); });
  }
  template <typename Token>
  auto asyncExtents(std::uint64_t offset, std::uint64_t length, Token&& token) {
    return start<Result<std::vector<Extent>>>(std::forward<Token>(token),
                                              [offset, length](BlockDevice& d) { return d.extents(offset, length); });
  }

 private:
  // BlockDevice::tryWrite when the process's InlineWriteGate is open, timed for it.
  std::optional<Result<void>> tryWriteInline(std::uint64_t offset, std::span<const std::uint8_t> data, WriteFlags flags);
  template <typename R, typename Token, typename Op>
  auto start(Token&& token, Op op, bool slow = false) {
    return asio::async_initiate<Token, void(R)>(
        [this, slow](auto handler, Op o) { submit<R>(std::move(handler), std::move(o), slow); }, token, std::move(op));
  }
  template <typename R, typename Handler, typename Op>
  void submit(Handler handler, Op o, bool slow = false) {
    ++pooledOps_;
    auto ex = asio::get_associated_executor(handler, executor_);
    pool_.post(
        [dev = dev_, o = std::move(o), h = std::move(handler), work = asio::make_work_guard(ex)]() mutable {
          R result = o(*dev);
          auto target = work.get_executor();
          asio::post(target,
                     [h = std::move(h), result = std::move(result)]() mutable { std::move(h)(std::move(result)); });
          work.reset();
        },
        slow);
  }

  std::shared_ptr<BlockDevice> dev_;
  WorkerPool& pool_;
  asio::any_io_executor executor_;
  bool tryInline_ = true;
  std::uint64_t inlineReads_ = 0;
  std::uint64_t inlineWrites_ = 0;
  std::uint64_t pooledOps_ = 0;
};

// The result of work done on a worker, handed back to the loop through a timer used as an event
// (only the loop touches the timer; the worker hands its reference over to the loop).
template <typename T>
struct WorkerJob {
  explicit WorkerJob(asio::any_io_executor e) : timer(std::move(e)) {}
  std::optional<T> result;
  asio::steady_timer timer;
};

template <typename T>
asio::awaitable<T> awaitWorkerJob(std::shared_ptr<WorkerJob<T>> job) {
  while (!job->result) {
    std::error_code ec;
    co_await job->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return std::move(*job->result);
}

// Runs `work` (file I/O) on a worker of `pool` at once and returns what awaits its result on the
// loop `loop`: how a front-end opens disks and images without stalling the loop. Not a coroutine
// itself, so that `work` (often a lambda temporary) is never a coroutine parameter.
template <typename T, typename Work>
asio::awaitable<T> onWorker(WorkerPool& pool, asio::any_io_executor loop, Work work) {
  auto job = std::make_shared<WorkerJob<T>>(loop);
  job->timer.expires_at(asio::steady_timer::time_point::max());
  pool.post([job, loop, work = std::move(work)]() mutable {
    T r = work();
    asio::post(loop, [job = std::move(job), r = std::move(r)]() mutable {
      job->result.emplace(std::move(r));
      job->timer.cancel();
    });
  });
  return awaitWorkerJob<T>(std::move(job));
}

class HostDisks;

// HostDisks::open(host, image) (file I/O: it may create the overlay) on a worker of `pool`, awaited
// on the loop `loop`: how a block front-end (iSCSI, NBD) opens a host's disk without stalling it.
asio::awaitable<Result<std::shared_ptr<BlockDevice>>> openOnWorker(std::shared_ptr<HostDisks> disks, WorkerPool& pool,
                                                                   asio::any_io_executor loop, std::string host,
                                                                   std::string image);

}  // namespace pxedust::blockstore
