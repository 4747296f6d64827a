// The one event loop every service shares: a single-threaded asio io_context, the process's
// signals, and a shutdown gate.
//
// Every protocol front-end runs its coroutines (asio::awaitable, C++20) on this loop; blocking work
// (disk I/O that missed the page cache) goes to a worker pool and completes back here. Nothing in a
// service needs a lock for its own state, because only the loop thread touches it.
#pragma once

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>

namespace pxedust::event {

// Counts work in flight (transfers, sessions) so shutdown can wait for it. Entering fails once the
// gate is closed; the drain callback runs once, on the loop, when the count reaches zero after close().
class ShutdownGate {
 public:
  class Ticket {
   public:
    Ticket(Ticket&& other) noexcept : gate_(std::exchange(other.gate_, nullptr)) {}
    Ticket& operator=(Ticket&& other) noexcept {
      if (this != &other) {
        release();
        gate_ = std::exchange(other.gate_, nullptr);
      }
      return *this;
    }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() { release(); }

   private:
    friend class ShutdownGate;
    explicit Ticket(ShutdownGate* gate) : gate_(gate) {}
    void release();
    ShutdownGate* gate_;
  };

  std::optional<Ticket> enter();
  void close(std::function<void()> onDrained);
  [[nodiscard]] bool closed() const { return closed_; }
  [[nodiscard]] std::size_t inFlight() const { return count_; }

 private:
  void leave();
  std::size_t count_ = 0;
  bool closed_ = false;
  std::function<void()> onDrained_;
};

class Loop {
 public:
  Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  asio::io_context& io() { return io_; }
  asio::io_context::executor_type executor() { return io_.get_executor(); }
  ShutdownGate& gate() { return gate_; }
  [[nodiscard]] const ShutdownGate& gate() const { return gate_; }

  // Runs until stop(); returns the number of handlers run.
  std::size_t run();
  void stop() { io_.stop(); }

  // Handles `sig` on the loop (not in signal context). One handler per signal; a later call replaces it.
  void onSignal(int sig, std::function<void(int)> handler);

 private:
  void armSignals();

  asio::io_context io_{1};
  asio::signal_set signals_;
  std::map<int, std::function<void(int)>> handlers_;
  ShutdownGate gate_;
};

}  // namespace pxedust::event
