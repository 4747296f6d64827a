#include "blockstore/async_device.hpp"

#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include "blockstore/host_disks.hpp"
#include "common/log.hpp"

namespace pxedust::blockstore {

InlineWriteGate& InlineWriteGate::global() {
  static InlineWriteGate gate;
  return gate;
}

bool InlineWriteGate::record(Clock::duration took, Clock::time_point now) {
  if (took <= kSlow) return false;
  slow_.fetch_add(1);
  const Clock::rep t = now.time_since_epoch().count();
  std::lock_guard lk(stallMutex_);
  const Clock::rep until = closedUntil_.load();
  if (t < until) return false;  // another slow write closed it already
  if (now - windowStart_ >= kWindow) {
    windowStart_ = now;
    stalled_ = {};
  }
  stalled_ += took;
  if (stalled_ <= kStallBudget) return false;
  windowStart_ = {};
  stalled_ = {};
  // Closing again within two pauses of the last reopening: the disk is still behind, wait longer.
  const Clock::rep last = pause_.load();
  Clock::rep next = kMinPause.count();
  if (last != 0 && t - until < 2 * last) next = std::min<Clock::rep>(2 * last, kMaxPause.count());
  closedUntil_.store(t + next);
  pause_.store(next);
  return true;
}

void InlineWriteGate::reset() {
  std::lock_guard lk(stallMutex_);
  closedUntil_.store(0);
  pause_.store(0);
  windowStart_ = {};
  stalled_ = {};
}

std::optional<Result<void>> AsyncBlockDevice::tryWriteInline(std::uint64_t offset, std::span<const std::uint8_t> data,
                                                              WriteFlags flags) {
  InlineWriteGate& gate = InlineWriteGate::global();
  const auto t0 = InlineWriteGate::Clock::now();
  if (!gate.open(t0)) return std::nullopt;
  std::optional<Result<void>> r = dev_->tryWrite(offset, data, flags);
  const auto t1 = InlineWriteGate::Clock::now();
  if (gate.record(t1 - t0, t1)) {
    // Writes into the page cache kept stalling the loop (dirty-page throttling, journal waits): the
    // disk is behind. A warning, as every client of the loop felt it.
    PXD_WARN("blockstore.inline_writes_paused", "device={} write_us={} pause_s={}", log::q(dev_->describe()),
             std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count(),
             std::chrono::duration_cast<std::chrono::seconds>(gate.pause()).count());
  }
  return r;
}

WorkerPool::WorkerPool(unsigned threads) {
  if (threads == 0) threads = 1;
  count_ = threads;
  threads_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { loop(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lk(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::enqueue(std::unique_ptr<Task> t) {
  bool wake;
  {
    std::lock_guard lk(mutex_);
    queue_.push_back(std::move(t));
    // awake_ changes under mutex_, and a thread checks the queue under it before it waits: an
    // operation queued while some thread is awake is always taken by one.
    wake = awake_ < count_ && queue_.size() > soonFree() * kBacklogPerThread;
  }
  if (wake) cv_.notify_one();
}

void WorkerPool::loop() {
  std::unique_lock lk(mutex_);
  ++awake_;
  for (;;) {
    if (queue_.empty()) {
      if (stopping_) break;  // everything queued has run
      --awake_;
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
      ++awake_;
      continue;
    }
    std::unique_ptr<Task> t = std::move(queue_.front());
    queue_.pop_front();
    const bool slow = t->slow;
    if (slow) ++slowRunning_;
    // More queued than the threads free soon will get to: wake another one.
    if (queue_.size() > soonFree() * kBacklogPerThread && awake_ < count_) cv_.notify_one();
    lk.unlock();
    t->run();
    t.reset();
    lk.lock();
    if (slow) --slowRunning_;
  }
  --awake_;
}

asio::awaitable<Result<std::shared_ptr<BlockDevice>>> openOnWorker(std::shared_ptr<HostDisks> disks, WorkerPool& pool,
                                                                   asio::any_io_executor loop, std::string host,
                                                                   std::string image) {
  auto opened = onWorker<Result<std::shared_ptr<BlockDevice>>>(
      pool, loop, [disks = std::move(disks), host = std::move(host), image = std::move(image)] {
        return disks->open(host, image);
      });
  co_return co_await std::move(opened);
}

}  // namespace pxedust::blockstore
