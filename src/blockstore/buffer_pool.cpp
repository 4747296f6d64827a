#include "blockstore/buffer_pool.hpp"

#include <algorithm>

namespace pxedust::blockstore {
namespace {

struct Pool {
  std::vector<std::vector<std::uint8_t>> free;
  std::size_t bytes = 0;
  std::vector<std::vector<std::uint8_t>> small;  // LIFO: the most recently given is the warmest
  std::size_t smallBytes = 0;
};

// How far take() looks for a small buffer that fits (they are mostly all one size).
constexpr std::size_t kSmallScan = 8;

Pool& pool() {
  thread_local Pool p;
  return p;
}

}  // namespace

std::vector<std::uint8_t> BufferPool::take(std::size_t n) {
  std::vector<std::uint8_t> out;
  if (n >= kSmallMin && n < kMinSize) {
    auto& p = pool();
    const std::size_t stop = p.small.size() > kSmallScan ? p.small.size() - kSmallScan : 0;
    for (std::size_t i = p.small.size(); i-- > stop;) {
      if (p.small[i].capacity() < n) continue;
      out = std::move(p.small[i]);
      p.smallBytes -= out.capacity();
      p.small[i] = std::move(p.small.back());
      p.small.pop_back();
      break;
    }
  } else if (n >= kMinSize) {
    auto& p = pool();
    // Best fit by current size: shrinking a vector (resize down) touches nothing; growing one
    // initialises only the part added.
    auto best = p.free.end();
    for (auto it = p.free.begin(); it != p.free.end(); ++it) {
      if (it->capacity() < n) continue;
      if (best == p.free.end()) {
        best = it;
        continue;
      }
      const bool full = it->size() >= n, bestFull = best->size() >= n;
      if (full != bestFull) {
        if (full) best = it;
      } else if (full ? it->capacity() < best->capacity() : it->size() > best->size()) {
        best = it;
      }
    }
    if (best != p.free.end()) {
      out = std::move(*best);
      p.bytes -= out.capacity();
      *best = std::move(p.free.back());
      p.free.pop_back();
    }
  }
  out.resize(n);
  return out;
}

void BufferPool::give(std::vector<std::uint8_t>&& buf) {
  auto& p = pool();
  const std::size_t cap = buf.capacity();
  if (cap >= kSmallMin && cap < kMinSize) {
    if (p.small.size() >= kMaxSmall || p.smallBytes + cap > kMaxSmallBytes) {
      std::vector<std::uint8_t>().swap(buf);
      return;
    }
    p.smallBytes += cap;
    p.small.push_back(std::move(buf));
    return;
  }
  if (cap < kMinSize || p.free.size() >= kMaxBuffers || p.bytes + cap > kMaxBytes) {
    std::vector<std::uint8_t>().swap(buf);
    return;
  }
  p.bytes += cap;
  p.free.push_back(std::move(buf));
}

std::size_t BufferPool::buffers() { return pool().free.size() + pool().small.size(); }
std::size_t BufferPool::bytes() { return pool().bytes + pool().smallBytes; }

}  // namespace pxedust::blockstore
