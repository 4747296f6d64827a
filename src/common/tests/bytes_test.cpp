#include "common/bytes.hpp"

#include <gtest/gtest.h>

#include <array>
#include <vector>

using pxedust::ByteReader;
using pxedust::ByteWriter;

TEST(ByteReader, ReadsBigEndianFields) {
  std::array<std::uint8_t, 7> d{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};
  ByteReader r(d);
  EXPECT_EQ(r.u8(), 0x01);
  EXPECT_EQ(r.be16(), 0x0203);
  EXPECT_EQ(r.be32(), 0x04050607u);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.empty());
}

TEST(ByteReader, OverrunIsStickyAndReadsNothing) {
  std::array<std::uint8_t, 3> d{0xaa, 0xbb, 0xcc};
  ByteReader r(d);
  EXPECT_EQ(r.be32(), 0u);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.u8(), 0);  // even a read that would fit fails once the reader failed
  EXPECT_EQ(r.position(), 0u);
}

TEST(ByteReader, CStringNeedsTerminator) {
  std::array<std::uint8_t, 6> d{'a', 'b', 0, 'c', 'd', 'e'};
  ByteReader r(d);
  auto s = r.cstring();
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, "ab");
  EXPECT_FALSE(r.cstring());  // "cde" has no NUL
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.remaining(), 3u);
}

TEST(ByteReader, EmptyInput) {
  ByteReader r(std::span<const std::uint8_t>{});
  EXPECT_FALSE(r.cstring());
  EXPECT_EQ(r.be16(), 0);
  EXPECT_FALSE(r.ok());
}

TEST(ByteWriter, WritesAndRefusesOverflow) {
  std::array<std::uint8_t, 5> out{};
  ByteWriter w(out);
  w.be16(0x1234);
  w.cstring("ab");
  EXPECT_TRUE(w.ok());
  EXPECT_EQ(w.size(), 5u);
  w.u8(1);
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(w.size(), 5u);
  EXPECT_EQ(out[0], 0x12);
  EXPECT_EQ(out[4], 0);
}
