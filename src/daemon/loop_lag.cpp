#include "daemon/loop_lag.hpp"

#include <algorithm>

namespace pxedust::daemon {
namespace {

// From "nothing to see" (a tick is a few microseconds late on an idle loop) to a stall a client
// retransmits over (TFTP and DHCP clients wait 1-4 s).
constexpr double kLagBuckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
constexpr metrics::Family kLoopLag{"pxedust_event_loop_lag_seconds",
                                   "How late the event loop ran a timer due every 250 ms: how long every "
                                   "packet and request waited behind other work at that moment.",
                                   metrics::Type::Histogram, {}, kLagBuckets};

}  // namespace

LoopLag::LoopLag(asio::io_context& io) : timer_(io), seconds_(kLoopLag) { secondOf_.fill(-1); }

void LoopLag::start() {
  if (running_) return;
  running_ = true;
  arm();
}

void LoopLag::stop() {
  running_ = false;
  timer_.cancel();
}

void LoopLag::arm() {
  due_ = Clock::now() + kPeriod;
  timer_.expires_at(due_);
  timer_.async_wait([this](const std::error_code& ec) {
    if (ec || !running_) return;
    record(due_, Clock::now());
    arm();
  });
}

void LoopLag::record(Clock::time_point due, Clock::time_point now) {
  last_ = std::max(std::chrono::duration<double>(now - due).count(), 0.0);
  seconds_.observe(last_);
  const auto second = std::chrono::duration_cast<std::chrono::seconds>(now - epoch_).count();
  const auto slot = static_cast<std::size_t>(second % 60);
  if (secondOf_[slot] != second) {
    secondOf_[slot] = second;
    perSecond_[slot] = 0;
  }
  perSecond_[slot] = std::max(perSecond_[slot], last_);
}

double LoopLag::maxLastMinuteSeconds() const {
  const auto second = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - epoch_).count();
  double worst = 0;
  for (std::size_t i = 0; i < perSecond_.size(); ++i)
    if (secondOf_[i] >= 0 && second - secondOf_[i] < 60) worst = std::max(worst, perSecond_[i]);
  return worst;
}

void LoopLag::collect(metrics::Writer& out) const { out.histogram(kLoopLag, {}, seconds_); }

}  // namespace pxedust::daemon
