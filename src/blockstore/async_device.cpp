#include "blockstore/async_device.hpp"

namespace pxedust::blockstore {

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

}  // namespace pxedust::blockstore
