// CRC32C against RFC 3720 Appendix B.4 known answers, both implementations, one-shot and in pieces.
#include "iscsi/wire/crc32c.hpp"

#include <gtest/gtest.h>

#include <array>
#include <numeric>
#include <random>
#include <vector>

using namespace pxedust::iscsi::wire;

namespace {

struct KnownAnswer {
  const char* name;
  std::vector<std::uint8_t> data;
  std::array<std::uint8_t, 4> wire;  // as printed in RFC 3720 B.4 ("CRC:" line)
};

std::vector<KnownAnswer> knownAnswers() {
  std::vector<std::uint8_t> inc(32), dec(32);
  std::iota(inc.begin(), inc.end(), 0);
  for (std::size_t i = 0; i < 32; ++i) dec[i] = static_cast<std::uint8_t>(31 - i);
  // An iSCSI SCSI Read (10) command PDU (B.4, last example).
  std::vector<std::uint8_t> read10 = {
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
      0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  return {
      {"32 zero bytes", std::vector<std::uint8_t>(32, 0x00), {0xaa, 0x36, 0x91, 0x8a}},
      {"32 0xff bytes", std::vector<std::uint8_t>(32, 0xff), {0x43, 0xab, 0xa8, 0x62}},
      {"32 incrementing", inc, {0x4e, 0x79, 0xdd, 0x46}},
      {"32 decrementing", dec, {0x5c, 0xdb, 0x3f, 0x11}},
      {"SCSI Read(10) PDU", read10, {0x56, 0x3a, 0x96, 0xd9}},
  };
}

}  // namespace

TEST(Crc32c, Rfc3720KnownAnswersBothPaths) {
  for (const auto& ka : knownAnswers()) {
    SCOPED_TRACE(ka.name);
    std::array<std::uint8_t, 4> out{};
    writeDigest(crc32c(ka.data), out);
    EXPECT_EQ(out, ka.wire);
    writeDigest(crc32cPortable(ka.data), out);
    EXPECT_EQ(out, ka.wire);
    EXPECT_EQ(readDigest(ka.wire), crc32c(ka.data));
  }
}

TEST(Crc32c, CheckValue) {
  const std::uint8_t s[] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
  EXPECT_EQ(crc32c(s), 0xe3069283u);
  EXPECT_EQ(crc32cPortable(s), 0xe3069283u);
  EXPECT_EQ(crc32c({}), 0u);
}

TEST(Crc32c, IncrementalEqualsOneShotAndPathsAgree) {
  std::mt19937 rng(7);
  std::vector<std::uint8_t> buf(70000);
  for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
  for (std::size_t len : {0u, 1u, 3u, 7u, 8u, 15u, 64u, 255u, 4096u, 65536u, 70000u}) {
    std::span<const std::uint8_t> d(buf.data(), len);
    std::uint32_t want = crc32cPortable(d);
    EXPECT_EQ(crc32c(d), want) << len;
    // Odd splits, both engines, mixed.
    std::uint32_t a = kCrc32cInit, p = kCrc32cInit;
    std::size_t pos = 0, step = 1;
    while (pos < len) {
      std::size_t n = std::min(step, len - pos);
      a = crc32cUpdateAccelerated(a, d.subspan(pos, n));
      p = crc32cUpdatePortable(p, d.subspan(pos, n));
      pos += n;
      step = step * 3 + 1;
    }
    EXPECT_EQ(crc32cFinal(a), want) << len;
    EXPECT_EQ(crc32cFinal(p), want) << len;
  }
}
