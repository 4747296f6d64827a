#include "blockstore/chunk_map.hpp"

#include <algorithm>
#include <cstring>

namespace pxedust::blockstore {
namespace {
constexpr std::uint8_t fillByte(ChunkState s) { return static_cast<std::uint8_t>(static_cast<unsigned>(s) * 0x55U); }
}  // namespace

ChunkMap::ChunkMap(std::uint64_t chunks) : chunks_(chunks), bits_(bytesFor(chunks), 0) {}

std::optional<ChunkMap> ChunkMap::fromBytes(std::uint64_t chunks, std::span<const std::uint8_t> bytes) {
  if (bytes.size() != bytesFor(chunks)) return std::nullopt;
  ChunkMap m;
  m.chunks_ = chunks;
  m.bits_.assign(bytes.begin(), bytes.end());
  for (auto b : m.bits_) {
    // A chunk holding 0b11 in any of the four slots.
    if (((b & (b >> 1)) & 0x55U) != 0) return std::nullopt;
  }
  if (chunks % 4 != 0 && !m.bits_.empty()) {
    auto usedBits = static_cast<unsigned>((chunks % 4) * 2);
    if ((m.bits_.back() >> usedBits) != 0) return std::nullopt;
  }
  return m;
}

void ChunkMap::setRange(std::uint64_t first, std::uint64_t count, ChunkState s) {
  std::uint64_t i = first, end = first + count;
  while (i < end && (i & 3) != 0) set(i++, s);
  if (end - i >= 4) {
    std::uint64_t whole = (end - i) / 4;
    std::memset(bits_.data() + (i >> 2), fillByte(s), whole);
    i += whole * 4;
  }
  while (i < end) set(i++, s);
}

std::uint64_t ChunkMap::runLength(std::uint64_t i, std::uint64_t max) const {
  const ChunkState s = get(i);
  const std::uint64_t end = i + std::min(max, chunks_ - i);
  std::uint64_t j = i + 1;
  while (j < end && (j & 3) != 0) {
    if (get(j) != s) return j - i;
    ++j;
  }
  const std::uint8_t fill = fillByte(s);
  while (end - j >= 4 && bits_[j >> 2] == fill) j += 4;
  while (j < end && get(j) == s) ++j;
  return j - i;
}

std::uint64_t ChunkMap::countState(ChunkState s) const {
  std::uint64_t n = 0;
  for (std::uint64_t i = 0; i < chunks_;) {
    auto run = runLength(i, chunks_ - i);
    if (get(i) == s) n += run;
    i += run;
  }
  return n;
}

}  // namespace pxedust::blockstore
