#include "event/loop.hpp"

#include <gtest/gtest.h>

#include <csignal>

using pxedust::event::Loop;
using pxedust::event::ShutdownGate;

TEST(ShutdownGate, DrainsWhenLastTicketLeaves) {
  ShutdownGate gate;
  auto a = gate.enter();
  auto b = gate.enter();
  ASSERT_TRUE(a && b);
  int drained = 0;
  gate.close([&] { ++drained; });
  EXPECT_FALSE(gate.enter());
  a.reset();
  EXPECT_EQ(drained, 0);
  b.reset();
  EXPECT_EQ(drained, 1);
}

TEST(ShutdownGate, ClosingAnIdleGateDrainsAtOnce) {
  ShutdownGate gate;
  int drained = 0;
  gate.close([&] { ++drained; });
  EXPECT_EQ(drained, 1);
}

TEST(Loop, SignalRunsHandlerOnTheLoop) {
  Loop loop;
  int seen = 0;
  loop.onSignal(SIGUSR1, [&](int sig) {
    seen = sig;
    loop.stop();
  });
  ::raise(SIGUSR1);
  loop.run();
  EXPECT_EQ(seen, SIGUSR1);
}
