// Per-client token buckets: `rate` requests per second on average, `burst` at once.
//
// The table of clients is bounded: when it is full, buckets that have refilled completely (idle
// clients) are swept; if a flood of distinct sources still fills it, the table is cleared rather than
// refusing everyone — the services' own limits (max transfers, queue sizes) still bound the work.
// The clock is passed in, so tests drive it.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <unordered_map>

namespace pxedust {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  using Key = std::array<std::uint8_t, 16>;  // an IPv6 address, or an IPv4 one mapped into it

  RateLimiter(double ratePerSecond, std::uint32_t burst, std::size_t maxClients = 65536)
      : rate_(ratePerSecond), burst_(std::max<std::uint32_t>(burst, 1)), maxClients_(maxClients) {}

  [[nodiscard]] bool unlimited() const { return rate_ <= 0; }
  [[nodiscard]] std::size_t clients() const { return buckets_.size(); }

  bool allow(const Key& key, Clock::time_point now) {
    if (unlimited()) return true;
    auto it = buckets_.find(key);
    if (it == buckets_.end()) {
      if (buckets_.size() >= maxClients_) sweep(now);
      it = buckets_.emplace(key, Bucket{static_cast<double>(burst_), now}).first;
    }
    auto& b = it->second;
    double elapsed = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min<double>(burst_, b.tokens + elapsed * rate_);
    b.last = now;
    if (b.tokens < 1.0) return false;
    b.tokens -= 1.0;
    return true;
  }

 private:
  struct Bucket {
    double tokens;
    Clock::time_point last;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const {
      std::uint64_t a, b;
      std::memcpy(&a, k.data(), 8);
      std::memcpy(&b, k.data() + 8, 8);
      return std::hash<std::uint64_t>{}(a * 0x9e3779b97f4a7c15ULL ^ b);
    }
  };

  void sweep(Clock::time_point now) {
    auto refill = std::chrono::duration<double>(burst_ / rate_);
    std::erase_if(buckets_, [&](const auto& kv) { return now - kv.second.last >= refill; });
    if (buckets_.size() >= maxClients_) buckets_.clear();
  }

  double rate_;
  std::uint32_t burst_;
  std::size_t maxClients_;
  std::unordered_map<Key, Bucket, KeyHash> buckets_;
};

}  // namespace pxedust
