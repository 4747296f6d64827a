// Request heads: what is accepted, and the status each refusal gets (request.hpp's table).
#include "http/wire/request.hpp"

#include <gtest/gtest.h>

#include <string>

namespace pxedust::http::wire {
namespace {

const Limits kLimits{};

Request ok(std::string_view head) {
  auto r = parseRequest(head, kLimits);
  if (auto* e = std::get_if<Error>(&r)) {
    ADD_FAILURE() << "refused with " << e->status << " " << e->reason << ": " << head;
    return {};
  }
  return std::get<Request>(r);
}

int refused(std::string_view head) {
  auto r = parseRequest(head, kLimits);
  if (auto* e = std::get_if<Error>(&r)) return e->status;
  return 0;
}

std::variant<std::monostate, std::size_t, Error> find(std::string_view buffer) {
  std::size_t scanned = 0;
  return findHeadEnd(buffer, scanned, kLimits);
}

TEST(Request, WhatIpxeSends) {
  auto r = ok("GET /boot/vmlinuz HTTP/1.1\r\nConnection: keep-alive\r\nUser-Agent: iPXE/1.21.1\r\n"
              "Host: 10.0.0.1\r\n\r\n");
  EXPECT_EQ(r.method, Method::Get);
  EXPECT_EQ(r.path, "/boot/vmlinuz");
  EXPECT_EQ(r.minorVersion, 1);
  EXPECT_TRUE(r.keepAlive);
  EXPECT_EQ(r.field("user-agent"), "iPXE/1.21.1");
  EXPECT_EQ(r.field("HOST"), "10.0.0.1");
  EXPECT_FALSE(r.field("range"));
}

TEST(Request, KeepAliveFollowsTheVersionAndConnection) {
  EXPECT_FALSE(ok("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n").keepAlive);
  EXPECT_FALSE(ok("GET / HTTP/1.0\r\n\r\n").keepAlive);
  EXPECT_TRUE(ok("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keepAlive);
  EXPECT_FALSE(ok("GET / HTTP/1.1\r\nHost: a\r\nConnection: te, close\r\n\r\n").keepAlive);
}

TEST(Request, TargetsAreDecodedOnceAndQueriesSplitOff) {
  auto r = ok("HEAD /a%20b/c.ipxe?mac=52:54&x=%41 HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(r.method, Method::Head);
  EXPECT_EQ(r.path, "/a b/c.ipxe");
  EXPECT_EQ(r.query, "mac=52:54&x=%41");
  EXPECT_EQ(ok("GET /%252e HTTP/1.1\r\nHost: a\r\n\r\n").path, "/%2e");  // once, not twice
  EXPECT_EQ(ok("GET /%2e%2e/etc HTTP/1.1\r\nHost: a\r\n\r\n").path, "/../etc");  // the file layer refuses it
  EXPECT_EQ(ok("GET http://10.0.0.1:8080/x/y?z HTTP/1.1\r\nHost: a\r\n\r\n").path, "/x/y");
  EXPECT_EQ(ok("GET http://10.0.0.1 HTTP/1.1\r\nHost: a\r\n\r\n").path, "/");
}

TEST(Request, BadTargetsAre400) {
  EXPECT_EQ(refused("GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(refused("GET /a%0ab HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(refused("GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(refused("GET /a% HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(refused("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(refused("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  constexpr char kNul[] = "GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n";
  EXPECT_EQ(refused(std::string(kNul, sizeof kNul - 1)), 400);
  EXPECT_EQ(refused("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

TEST(Request, MalformedRequestLines) {
  EXPECT_EQ(refused("GET\r\n\r\n"), 400);
  EXPECT_EQ(refused("GET /\r\n\r\n"), 400);  // HTTP/0.9 is not served
  EXPECT_EQ(refused("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(refused("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(refused("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(refused("GET / http/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(refused("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
  EXPECT_EQ(refused("\r\n\r\n"), 400);
}

TEST(Request, FieldsFollowRfc9112) {
  EXPECT_EQ(refused("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);              // space before the colon
  EXPECT_EQ(refused("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n  c\r\n\r\n"), 400);  // obsolete folding
  EXPECT_EQ(refused("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"), 400);
  EXPECT_EQ(refused("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n"), 400);
  EXPECT_EQ(refused("GET / HTTP/1.1\r\n\r\n"), 400);                         // HTTP/1.1 needs Host
  EXPECT_EQ(refused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
  EXPECT_EQ(ok("GET / HTTP/1.1\nHost: a\n\n").path, "/");  // bare LF line ends
  EXPECT_EQ(ok("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n").path, "/");  // one empty line before is ignored
  EXPECT_EQ(ok("GET / HTTP/1.1\r\nHost: a\r\nX-Obs: caf\xc3\xa9\r\n\r\n").field("x-obs"), "caf\xc3\xa9");
}

TEST(Request, BodiesAreFramedByOneContentLength) {
  EXPECT_EQ(ok("POST /api HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n").contentLength, 12u);
  EXPECT_EQ(ok("POST /api HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n").contentLength, 5u);
  EXPECT_EQ(refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), 400);
  EXPECT_EQ(refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), 400);
  EXPECT_EQ(refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n"), 400);
  EXPECT_EQ(refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n"), 413);
  EXPECT_EQ(refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
}

TEST(Request, TooManyFieldsIs431) {
  std::string head = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 64; ++i) head += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(refused(head + "\r\n"), 431);
}

TEST(HeadEnd, FoundAcrossReadsAndBoundedByTheLimits) {
  std::string buffer = "GET / HTTP/1.1\r\nHost: a\r";
  std::size_t scanned = 0;
  EXPECT_TRUE(std::holds_alternative<std::monostate>(findHeadEnd(buffer, scanned, kLimits)));
  buffer += "\n\r";
  EXPECT_TRUE(std::holds_alternative<std::monostate>(findHeadEnd(buffer, scanned, kLimits)));
  buffer += "\nGET /next";  // a pipelined request after it
  auto end = findHeadEnd(buffer, scanned, kLimits);
  ASSERT_TRUE(std::holds_alternative<std::size_t>(end));
  EXPECT_EQ(std::get<std::size_t>(end), buffer.find("GET /next"));

  auto longLine = find("GET /" + std::string(9000, 'a'));
  ASSERT_TRUE(std::holds_alternative<Error>(longLine));
  EXPECT_EQ(std::get<Error>(longLine).status, 414);
  auto bigHead = find("GET / HTTP/1.1\r\nX: " + std::string(20000, 'a'));
  ASSERT_TRUE(std::holds_alternative<Error>(bigHead));
  EXPECT_EQ(std::get<Error>(bigHead).status, 431);
  EXPECT_EQ(std::get<std::size_t>(find("GET / HTTP/1.0\n\n")), 16u);
}

TEST(Tokens, ListsAndCase) {
  EXPECT_TRUE(hasToken("keep-alive, Upgrade", "upgrade"));
  EXPECT_FALSE(hasToken("keep-alive-x", "keep-alive"));
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_FALSE(iequals("Content-Length", "content-lengt"));
}

}  // namespace
}  // namespace pxedust::http::wire
