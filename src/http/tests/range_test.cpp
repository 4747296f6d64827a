// Ranges and preconditions (range.hpp): RFC 9110's answers for a 10,000-byte file.
#include "http/wire/range.hpp"

#include <gtest/gtest.h>

namespace pxedust::http::wire {
namespace {

constexpr FileFacts kFile{10000, 784111777'000000000};  // 1994-11-06 08:49:37 UTC
constexpr std::string_view kDate = "Sun, 06 Nov 1994 08:49:37 GMT";

Plan ranged(std::string_view range) { return plan({{}, {}, range, {}}, kFile); }

TEST(Dates, ImfFixdateAndTheObsoleteForms) {
  EXPECT_EQ(httpDate(784111777), kDate);
  EXPECT_EQ(parseHttpDate(kDate), 784111777);
  EXPECT_EQ(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
  EXPECT_EQ(parseHttpDate("Sun Nov  6 08:49:37 1994"), 784111777);
  EXPECT_EQ(parseHttpDate("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
  EXPECT_EQ(parseHttpDate("Mon, 29 Feb 2044 23:59:59 GMT"), 2340403199);
  EXPECT_FALSE(parseHttpDate("Sun, 06 Nov 1994 08:49:37 UTC"));
  EXPECT_FALSE(parseHttpDate("Sun, 06 Foo 1994 08:49:37 GMT"));
  EXPECT_FALSE(parseHttpDate("Sun, 06 Nov 1994 25:49:37 GMT"));
  EXPECT_FALSE(parseHttpDate("yesterday"));
  EXPECT_FALSE(parseHttpDate(""));
}

TEST(Ranges, SingleRangesAreServed) {
  auto p = ranged("bytes=0-499");
  EXPECT_EQ(p.status(), 206);
  EXPECT_EQ(p.first, 0u);
  EXPECT_EQ(p.length, 500u);
  EXPECT_EQ(p.contentRange(kFile.size), "bytes 0-499/10000");
  EXPECT_EQ(ranged("bytes=9500-").contentRange(kFile.size), "bytes 9500-9999/10000");
  EXPECT_EQ(ranged("bytes=-500").contentRange(kFile.size), "bytes 9500-9999/10000");
  EXPECT_EQ(ranged("bytes=-20000").contentRange(kFile.size), "bytes 0-9999/10000");
  EXPECT_EQ(ranged("bytes=9999-99999").contentRange(kFile.size), "bytes 9999-9999/10000");
  EXPECT_EQ(ranged("Bytes = 1-1").length, 1u);
}

TEST(Ranges, UnsatisfiableIs416) {
  for (auto r : {"bytes=10000-", "bytes=10000-10001", "bytes=-0", "bytes=18446744073709551615-"}) {
    auto p = ranged(r);
    EXPECT_EQ(p.status(), 416) << r;
    EXPECT_EQ(p.contentRange(kFile.size), "bytes */10000") << r;
  }
  EXPECT_EQ(plan({{}, {}, "bytes=0-0", {}}, FileFacts{0, 0}).status(), 416);
}

TEST(Ranges, InvalidOrSeveralAreIgnored) {
  for (auto r : {"bytes=5-1", "bytes=99999999999999999999-", "bytes=-99999999999999999999", "bytes=a-b", "bytes=",
                 "bytes 0-1", "items=0-1", "bytes=0-1,5-6", "bytes=-", "bytes=1", "bytes=--1"}) {
    auto p = ranged(r);
    EXPECT_EQ(p.status(), 200) << r;
    EXPECT_EQ(p.length, kFile.size) << r;
  }
}

TEST(Preconditions, IfNoneMatchComparesWeakly) {
  const std::string tag = entityTag(kFile);
  EXPECT_EQ(tag, "\"2710-ae1b981bc490a00\"");
  EXPECT_EQ(plan({tag, {}, {}, {}}, kFile).status(), 304);
  EXPECT_EQ(plan({"W/" + tag, {}, {}, {}}, kFile).status(), 304);
  EXPECT_EQ(plan({"\"x\", " + tag, {}, {}, {}}, kFile).status(), 304);
  EXPECT_EQ(plan({"*", {}, {}, {}}, kFile).status(), 304);
  EXPECT_EQ(plan({"\"other\"", {}, {}, {}}, kFile).status(), 200);
  // If-None-Match wins over If-Modified-Since.
  EXPECT_EQ(plan({"\"other\"", kDate, {}, {}}, kFile).status(), 200);
}

TEST(Preconditions, IfModifiedSince) {
  EXPECT_EQ(plan({{}, kDate, {}, {}}, kFile).status(), 304);
  EXPECT_EQ(plan({{}, "Sun, 06 Nov 1994 08:49:36 GMT", {}, {}}, kFile).status(), 200);
  EXPECT_EQ(plan({{}, "garbage", {}, {}}, kFile).status(), 200);
}

TEST(Preconditions, IfRangeNeedsAStrongMatchOrTheExactDate) {
  const std::string tag = entityTag(kFile);
  EXPECT_EQ(plan({{}, {}, "bytes=0-9", tag}, kFile).status(), 206);
  EXPECT_EQ(plan({{}, {}, "bytes=0-9", "W/" + tag}, kFile).status(), 200);
  EXPECT_EQ(plan({{}, {}, "bytes=0-9", "\"stale\""}, kFile).status(), 200);
  EXPECT_EQ(plan({{}, {}, "bytes=0-9", kDate}, kFile).status(), 206);
  EXPECT_EQ(plan({{}, {}, "bytes=0-9", "Sun, 06 Nov 1994 08:49:38 GMT"}, kFile).status(), 200);
}

}  // namespace
}  // namespace pxedust::http::wire
