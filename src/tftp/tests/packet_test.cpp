#include "tftp/wire/packet.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace pxedust::tftp::wire;

namespace {
std::vector<std::uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }
}  // namespace

// Known answers: the RRQs real PXE clients send.
TEST(TftpPacket, ParsesIpxeRrq) {
  auto d = bytes(std::string("\0\1pxelinux.0\0octet\0blksize\0" "1432\0tsize\0" "0\0", 40));
  auto p = parseRequest(d);
  ASSERT_EQ(p.error, RequestError::None);
  EXPECT_EQ(p.request.opcode, Opcode::Rrq);
  EXPECT_EQ(p.request.filename, "pxelinux.0");
  EXPECT_EQ(p.request.mode, Mode::Octet);
  ASSERT_EQ(p.request.optionCount, 2u);
  EXPECT_EQ(p.request.options[0].name, "blksize");
  EXPECT_EQ(p.request.options[0].value, "1432");
  EXPECT_EQ(p.request.options[1].name, "tsize");
  EXPECT_EQ(p.request.options[1].value, "0");
}

TEST(TftpPacket, ModeIsCaseInsensitive) {
  auto d = bytes(std::string("\0\1f\0NetASCII\0", 13));
  auto p = parseRequest(d);
  ASSERT_EQ(p.error, RequestError::None);
  EXPECT_EQ(p.request.mode, Mode::Netascii);
}

TEST(TftpPacket, MalformedRequests) {
  EXPECT_EQ(parseRequest({}).error, RequestError::Empty);
  EXPECT_EQ(parseRequest(bytes(std::string("\0", 1))).error, RequestError::TruncatedOpcode);
  EXPECT_EQ(parseRequest(bytes(std::string("\0\x09x\0octet\0", 10))).error, RequestError::UnknownOpcode);
  EXPECT_EQ(parseRequest(bytes(std::string("\0\4\0\1", 4))).error, RequestError::NotARequest);
  EXPECT_EQ(parseRequest(bytes(std::string("\0\1file", 6))).error, RequestError::MissingFilename);
  EXPECT_EQ(parseRequest(bytes(std::string("\0\1\0octet\0", 9))).error, RequestError::EmptyFilename);
  EXPECT_EQ(parseRequest(bytes(std::string("\0\1file\0", 7))).error, RequestError::MissingMode);
  EXPECT_EQ(parseRequest(bytes(std::string("\0\1file\0octet", 12))).error, RequestError::MissingMode);
  EXPECT_EQ(parseRequest(bytes(std::string("\0\1file\0mail\0", 12))).error, RequestError::UnknownMode);
  EXPECT_EQ(parseRequest(bytes(std::string("\0\1file\0\0", 8))).error, RequestError::MissingMode);
}

TEST(TftpPacket, IncompleteTrailingOptionIsIgnored) {
  auto d = bytes(std::string("\0\1f\0octet\0blksize\0" "1024\0tsize\0", 29));
  auto p = parseRequest(d);
  ASSERT_EQ(p.error, RequestError::None);
  ASSERT_EQ(p.request.optionCount, 1u);
  EXPECT_EQ(p.request.options[0].value, "1024");
}

TEST(TftpPacket, OptionCountIsBounded) {
  std::string s("\0\1f\0octet\0", 10);
  for (int i = 0; i < 100; ++i) s += std::string("x\0" "1\0", 4);
  auto p = parseRequest(bytes(s));
  ASSERT_EQ(p.error, RequestError::None);
  EXPECT_EQ(p.request.optionCount, Request::kMaxOptions);
}

TEST(TftpPacket, AckAndError) {
  Ack a;
  EXPECT_TRUE(parseAck(bytes(std::string("\0\4\xff\xfe", 4)), a));
  EXPECT_EQ(a.block, 0xfffe);
  EXPECT_FALSE(parseAck(bytes(std::string("\0\4\1", 3)), a));
  EXPECT_FALSE(parseAck(bytes(std::string("\0\3\0\1", 4)), a));
  ErrorPacket e;
  auto withNul = bytes(std::string("\0\5\0\1nope\0", 9));
  EXPECT_TRUE(parseError(withNul, e));
  EXPECT_EQ(e.code, 1);
  EXPECT_EQ(e.message, "nope");
  auto withoutNul = bytes(std::string("\0\5\0\1nope", 8));
  EXPECT_TRUE(parseError(withoutNul, e));  // missing NUL: no message
  EXPECT_EQ(e.message, "");
}

TEST(TftpPacket, Writers) {
  std::array<std::uint8_t, 64> buf{};
  auto n = writeError(buf, ErrorCode::FileNotFound, "File not found");
  EXPECT_EQ(std::string(buf.begin(), buf.begin() + static_cast<long>(n)), std::string("\0\5\0\1File not found\0", 19));
  OackEntry entries[] = {{"blksize", 1432}, {"tsize", 123456}};
  n = writeOack(buf, entries);
  EXPECT_EQ(std::string(buf.begin(), buf.begin() + static_cast<long>(n)),
            std::string("\0\6blksize\0" "1432\0tsize\0" "123456\0", 28));
  std::array<std::uint8_t, 4> tiny{};
  EXPECT_EQ(writeOack(tiny, entries), 0u);
  std::uint8_t h[4];
  writeDataHeader(h, 0x1234);
  EXPECT_EQ(std::string(h, h + 4), std::string("\0\3\x12\x34", 4));
}
