// XDR primitives (RFC 4506 §4): byte layout and padding, and every limit the reader enforces.
#include "nfs/wire/xdr.hpp"

#include <gtest/gtest.h>

#include <array>

#include "nfs/tests/test_util.hpp"

namespace pxedust::nfs::wire {
namespace {

using testing::Bytes;

TEST(Xdr, WritesIntegersBoolsAndPaddedOpaques) {
  std::array<std::uint8_t, 64> buf{};
  XdrWriter w(buf);
  w.u32(0x01020304);
  w.u64(0x1122334455667788ull);
  w.boolean(true);
  w.string("abcde");                          // 5 bytes + 3 padding
  const std::array<std::uint8_t, 2> fixed{9, 8};
  w.fixedOpaque(fixed);                      // 2 bytes + 2 padding
  w.opaque({});                              // just the length
  ASSERT_TRUE(w.ok());
  const Bytes expected = {0x01, 0x02, 0x03, 0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                          0, 0, 0, 1, 0, 0, 0, 5, 'a', 'b', 'c', 'd', 'e', 0, 0, 0, 9, 8, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(testing::toBytes(w.written()), expected);
}

TEST(Xdr, ReadsWhatItWrites) {
  std::array<std::uint8_t, 64> buf{};
  XdrWriter w(buf);
  w.u32(7);
  w.u64(UINT64_MAX - 1);
  w.boolean(false);
  w.string("hello");
  const std::array<std::uint8_t, 3> blob{1, 2, 3};
  w.opaque(blob);
  XdrReader r(w.written());
  EXPECT_EQ(r.u32(), 7u);
  EXPECT_EQ(r.u64(), UINT64_MAX - 1);
  EXPECT_FALSE(r.boolean());
  EXPECT_EQ(r.string(5), "hello");
  EXPECT_EQ(testing::toBytes(r.opaque(3)), Bytes({1, 2, 3}));
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(Xdr, WriterFailsWhenFullAndStaysFailed) {
  std::array<std::uint8_t, 6> buf{};
  XdrWriter w(buf);
  w.u32(1);
  w.u32(2);
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(w.size(), 4u);
}

TEST(Xdr, TruncatedIntegerIsTruncated) {
  const Bytes b = {0, 0, 1};
  XdrReader r(b);
  EXPECT_EQ(r.u32(), 0u);
  EXPECT_EQ(r.error(), XdrError::Truncated);
}

TEST(Xdr, BoolOtherThanZeroOrOneIsRefused) {
  const Bytes b = testing::words({2});
  XdrReader r(b);
  EXPECT_FALSE(r.boolean());
  EXPECT_EQ(r.error(), XdrError::BadBool);
}

TEST(Xdr, OpaqueLongerThanWhatRemainsIsTruncated) {
  Bytes b = testing::words({100});
  b.resize(b.size() + 8, 0xaa);
  XdrReader r(b);
  EXPECT_TRUE(r.opaque(1000).empty());
  EXPECT_EQ(r.error(), XdrError::Truncated);
}

TEST(Xdr, HugeOpaqueLengthIsRefusedByItsMaximumFirst) {
  const Bytes b = testing::words({0xffffffffu, 0});
  XdrReader r(b);
  EXPECT_TRUE(r.opaque(64).empty());
  EXPECT_EQ(r.error(), XdrError::TooLong);
  // Without a maximum in the way, the length is compared with what is left: no overflow.
  XdrReader r2(b);
  EXPECT_TRUE(r2.opaque(UINT32_MAX).empty());
  EXPECT_EQ(r2.error(), XdrError::Truncated);
}

TEST(Xdr, StringOverItsMaximumIsTooLong) {
  Bytes b;
  testing::putString(b, "abcdef");
  XdrReader r(b);
  EXPECT_EQ(r.string(5), "");
  EXPECT_EQ(r.error(), XdrError::TooLong);
  XdrReader ok(b);
  EXPECT_EQ(ok.string(6), "abcdef");
  EXPECT_TRUE(ok.ok());
}

TEST(Xdr, MissingPaddingIsTruncated) {
  const Bytes b = {0, 0, 0, 1, 'x'};  // one byte of data, no padding
  XdrReader r(b);
  r.string(10);
  EXPECT_EQ(r.error(), XdrError::Truncated);
}

TEST(Xdr, FirstErrorWinsAndLaterReadsAreZero) {
  const Bytes b = testing::words({5, 1});
  XdrReader r(b);
  r.boolean();  // 5: BadBool
  EXPECT_EQ(r.u32(), 0u);
  r.fail(XdrError::Truncated);
  EXPECT_EQ(r.error(), XdrError::BadBool);
}

}  // namespace
}  // namespace pxedust::nfs::wire
