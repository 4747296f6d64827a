// CRC32C: portable slicing-by-1 table (reflected polynomial 0x82F63B78) and the ISA-L entry point.
#include "iscsi/wire/crc32c.hpp"

#include <isa-l/crc.h>

#include <array>
#include <climits>

namespace pxedust::iscsi::wire {
namespace {

constexpr std::array<std::uint32_t, 256> makeTable() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kTable = makeTable();

}  // namespace

std::uint32_t crc32cUpdatePortable(std::uint32_t state, std::span<const std::uint8_t> data) {
  for (std::uint8_t b : data) state = kTable[(state ^ b) & 0xffu] ^ (state >> 8);
  return state;
}

std::uint32_t crc32cUpdateAccelerated(std::uint32_t state, std::span<const std::uint8_t> data) {
  // ISA-L takes a non-const pointer and an int length; it only reads. Feed in int-sized pieces.
  while (!data.empty()) {
    std::size_t n = data.size() < static_cast<std::size_t>(INT_MAX / 2) ? data.size() : INT_MAX / 2;
    state = crc32_iscsi(const_cast<unsigned char*>(data.data()), static_cast<int>(n), state);
    data = data.subspan(n);
  }
  return state;
}

}  // namespace pxedust::iscsi::wire
