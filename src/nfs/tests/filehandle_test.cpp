// The file handle codec: SipHash-2-4 against the reference vectors, the byte layout, and every way
// a handle is refused as NFS3ERR_BADHANDLE.
#include "nfs/wire/filehandle.hpp"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace pxedust::nfs::wire {
namespace {

HandleKey referenceKey() {
  HandleKey k{};
  std::iota(k.begin(), k.end(), std::uint8_t{0});
  return k;
}

TEST(SipHash, ReferenceVectors) {
  // Aumasson & Bernstein, "SipHash: a fast short-input PRF", Appendix A and vectors.h: key
  // 00 01 .. 0f, message 00 01 .. (n-1).
  std::vector<std::uint8_t> msg;
  EXPECT_EQ(siphash24(referenceKey(), msg), 0x726fdb47dd0e0e31ull);
  for (std::uint8_t i = 0; i < 15; ++i) msg.push_back(i);
  EXPECT_EQ(siphash24(referenceKey(), msg), 0xa129ca6149be45e5ull);
  msg.push_back(15);
  msg.push_back(16);
  msg.push_back(17);
  msg.push_back(18);
  EXPECT_EQ(siphash24(referenceKey(), std::span(msg).first(8)), 0x93f5f5799a932462ull);
}

FileHandle sample() {
  FileHandle fh;
  for (std::size_t i = 0; i < fh.image.size(); ++i) fh.image[i] = static_cast<std::uint8_t>(0xa0 + i);
  fh.imageVersion = 7;
  fh.inode = 0x0102030405060708ull;
  fh.generation = 0x11223344;
  return fh;
}

TEST(FileHandle, LayoutAndRoundTrip) {
  const auto key = referenceKey();
  const auto b = encodeHandle(sample(), key);
  EXPECT_EQ(b[0], kHandleMagic);
  EXPECT_EQ(b[1], kHandleVersion);
  EXPECT_EQ(b[2], 0);
  EXPECT_EQ(b[4], 0xa0);
  EXPECT_EQ(b[23], 7);
  EXPECT_EQ(b[24], 0x01);
  EXPECT_EQ(b[31], 0x08);
  EXPECT_EQ(b[32], 0x11);
  FileHandle out;
  ASSERT_EQ(decodeHandle(b, key, out), Nfsstat3::Ok);
  EXPECT_EQ(out, sample());
  // Deterministic: the same inputs give the same bytes (no process memory in it).
  EXPECT_EQ(encodeHandle(sample(), key), b);
}

TEST(FileHandle, EveryFlippedBitIsBadHandle) {
  const auto key = referenceKey();
  const auto good = encodeHandle(sample(), key);
  for (std::size_t byte = 0; byte < good.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      auto b = good;
      b[byte] = static_cast<std::uint8_t>(b[byte] ^ (1u << bit));
      FileHandle out;
      EXPECT_EQ(decodeHandle(b, key, out), Nfsstat3::BadHandle) << byte << ":" << bit;
    }
  }
}

TEST(FileHandle, WrongSizeOrKeyIsBadHandle) {
  const auto key = referenceKey();
  const auto good = encodeHandle(sample(), key);
  FileHandle out;
  EXPECT_EQ(decodeHandle(std::span(good).first(43), key, out), Nfsstat3::BadHandle);
  std::vector<std::uint8_t> longer(good.begin(), good.end());
  longer.push_back(0);
  EXPECT_EQ(decodeHandle(longer, key, out), Nfsstat3::BadHandle);
  EXPECT_EQ(decodeHandle({}, key, out), Nfsstat3::BadHandle);
  auto other = key;
  other[0] ^= 1;
  EXPECT_EQ(decodeHandle(good, other, out), Nfsstat3::BadHandle);
  EXPECT_EQ(out, FileHandle{});  // untouched on failure
}

}  // namespace
}  // namespace pxedust::nfs::wire
