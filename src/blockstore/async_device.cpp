#include "blockstore/async_device.hpp"

namespace pxedust::blockstore {

WorkerPool::WorkerPool(unsigned threads) {
  if (threads == 0) threads = 1;
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
  {
    std::lock_guard lk(mutex_);
    queue_.push_back(std::move(t));
  }
  cv_.notify_one();
}

void WorkerPool::loop() {
  for (;;) {
    std::unique_ptr<Task> t;
    {
      std::unique_lock lk(mutex_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued has run
      t = std::move(queue_.front());
      queue_.pop_front();
    }
    t->run();
  }
}

}  // namespace pxedust::blockstore
