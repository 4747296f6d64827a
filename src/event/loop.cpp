#include "event/loop.hpp"

#include "common/log.hpp"

namespace pxedust::event {

void ShutdownGate::Ticket::release() {
  if (gate_ != nullptr) std::exchange(gate_, nullptr)->leave();
}

std::optional<ShutdownGate::Ticket> ShutdownGate::enter() {
  if (closed_) return std::nullopt;
  ++count_;
  return Ticket(this);
}

void ShutdownGate::close(std::function<void()> onDrained) {
  closed_ = true;
  onDrained_ = std::move(onDrained);
  if (count_ == 0 && onDrained_) std::exchange(onDrained_, nullptr)();
}

void ShutdownGate::leave() {
  --count_;
  if (closed_ && count_ == 0 && onDrained_) std::exchange(onDrained_, nullptr)();
}

Loop::Loop() : signals_(io_) {}

std::size_t Loop::run() { return io_.run(); }

void Loop::onSignal(int sig, std::function<void(int)> handler) {
  if (!handlers_.contains(sig)) {
    std::error_code ec;
    signals_.add(sig, ec);
    if (ec) PXD_ERROR("signal.add_failed", "signal={} error={}", sig, log::q(ec.message()));
  }
  bool first = handlers_.empty();
  handlers_[sig] = std::move(handler);
  if (first) armSignals();
}

void Loop::armSignals() {
  signals_.async_wait([this](const std::error_code& ec, int sig) {
    if (ec) return;  // the loop is going away
    if (auto it = handlers_.find(sig); it != handlers_.end()) it->second(sig);
    armSignals();
  });
}

}  // namespace pxedust::event
