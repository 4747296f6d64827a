#include "http/wire/response.hpp"

#include <gtest/gtest.h>

namespace pxedust::http::wire {
namespace {

TEST(Response, HeadsWithLengthAndConnection) {
  ResponseHead h;
  h.status = 206;
  h.add("Content-Range", "bytes 0-9/100");
  h.contentLength = 10;
  h.keepAlive = false;
  EXPECT_EQ(h.serialize(), "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/100\r\nContent-Length: 10\r\n"
                           "Connection: close\r\n\r\n");
}

TEST(Response, NotModifiedHasNoLengthAndSplitFieldsAreDropped) {
  ResponseHead h;
  h.status = 304;
  h.add("ETag", "\"a\"").add("X-Bad", "a\r\nSet-Cookie: x");
  EXPECT_EQ(h.serialize(), "HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n");
  EXPECT_EQ(reasonPhrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(reasonPhrase(299), "Unknown");
}

}  // namespace
}  // namespace pxedust::http::wire
