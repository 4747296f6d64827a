// The event loop's own health: how late a timer that should fire every 250 ms actually runs. Every
// packet, request and login waits as long as the loop is busy with something else (a cold sendfile,
// a big JSON render), so this lag is what every client felt, in one number. The API's status and the
// dashboard show the latest and the worst of the last minute; /metrics has them all as a histogram.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstdint>

#include "metrics/registry.hpp"

namespace pxedust::daemon {

class LoopLag {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kPeriod{250};

  explicit LoopLag(asio::io_context& io);
  void start();
  void stop();

  // Seconds; 0 before the first tick.
  [[nodiscard]] double lastSeconds() const { return last_; }
  [[nodiscard]] double maxLastMinuteSeconds() const;
  void collect(metrics::Writer& out) const;

  // One tick: the timer was due at `due` and ran at `now` (public for tests).
  void record(Clock::time_point due, Clock::time_point now);

 private:
  void arm();

  asio::steady_timer timer_;
  bool running_ = false;
  Clock::time_point due_{};
  double last_ = 0;
  metrics::Histogram seconds_;
  // The worst lag of each of the last 60 seconds, by second (a ring indexed by seconds since start).
  std::array<double, 60> perSecond_{};
  std::array<std::int64_t, 60> secondOf_{};
  Clock::time_point epoch_ = Clock::now();
};

}  // namespace pxedust::daemon
