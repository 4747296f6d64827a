// CRC32C (Castagnoli), the iSCSI header and data digest (RFC 7143 §12.1, RFC 3720 Appendix B.4).
//
// Two implementations with one contract: a portable table-driven one (the reference, and what the
// tests hold the fast one to) and ISA-L's crc32_iscsi, which picks SSE4.2/PCLMULQDQ code at run time
// by itself. crc32c() uses ISA-L. Both are incremental: start from kCrc32cInit, feed pieces in
// order with crc32cUpdate*, finish with crc32cFinal — the framer digests a PDU as its bytes arrive.
//
// On the wire the digest is the finished CRC in little-endian byte order (RFC 3720 B.4: 32 zero
// bytes give "aa 36 91 8a", i.e. 0x8a9136aa); writeDigest/readDigest do that conversion.
#pragma once

#include <cstdint>
#include <span>

namespace pxedust::iscsi::wire {

inline constexpr std::uint32_t kCrc32cInit = 0xffffffffu;

// Running-state updates (state is the un-inverted register, as ISA-L keeps it).
std::uint32_t crc32cUpdatePortable(std::uint32_t state, std::span<const std::uint8_t> data);
std::uint32_t crc32cUpdateAccelerated(std::uint32_t state, std::span<const std::uint8_t> data);
inline std::uint32_t crc32cUpdate(std::uint32_t state, std::span<const std::uint8_t> data) {
  return crc32cUpdateAccelerated(state, data);
}
constexpr std::uint32_t crc32cFinal(std::uint32_t state) { return state ^ 0xffffffffu; }

// One-shot digest of a whole buffer.
inline std::uint32_t crc32c(std::span<const std::uint8_t> data) {
  return crc32cFinal(crc32cUpdate(kCrc32cInit, data));
}
inline std::uint32_t crc32cPortable(std::span<const std::uint8_t> data) {
  return crc32cFinal(crc32cUpdatePortable(kCrc32cInit, data));
}

// The 4 digest bytes as they travel (little-endian).
inline void writeDigest(std::uint32_t crc, std::span<std::uint8_t, 4> out) {
  for (int i = 0; i < 4; ++i) out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(crc >> (8 * i));
}
inline std::uint32_t readDigest(std::span<const std::uint8_t, 4> in) {
  return std::uint32_t{in[0]} | (std::uint32_t{in[1]} << 8) | (std::uint32_t{in[2]} << 16) |
         (std::uint32_t{in[3]} << 24);
}

}  // namespace pxedust::iscsi::wire
