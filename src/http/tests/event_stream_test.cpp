// Server-Sent Events framing and the latest-wins stream (http/event_stream.hpp).
#include <gtest/gtest.h>

#include "http/event_stream.hpp"

namespace pxedust::http {
namespace {

TEST(EventStream, EveryLineIsADataLine) {
  EXPECT_EQ(EventStream::frame("hosts", "{\"a\":1}"), "event: hosts\ndata: {\"a\":1}\n\n");
  EXPECT_EQ(EventStream::frame("hosts", "{\n\"a\":1\n}\n"), "event: hosts\ndata: {\ndata: \"a\":1\ndata: }\n\n");
  EXPECT_EQ(EventStream::frame("x", "a\r\nb"), "event: x\ndata: a\ndata: b\n\n");
  EXPECT_EQ(EventStream::frame("x", ""), "event: x\ndata: \n\n");
}

TEST(EventStream, TheLatestMessageWinsAndIsFramedOnce) {
  EventStream s;
  EXPECT_EQ(s.latest(), nullptr);
  s.publish("hosts", std::make_shared<const std::string>("1"));
  s.publish("hosts", std::make_shared<const std::string>("2"));
  EXPECT_EQ(s.version(), 2u);
  const auto first = s.latest();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(*first, "event: hosts\ndata: 2\n\n");
  EXPECT_EQ(s.latest().get(), first.get());  // the same frame for every follower
  s.close();
  EXPECT_TRUE(s.closed());
}

}  // namespace
}  // namespace pxedust::http
