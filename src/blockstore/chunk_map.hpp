// ChunkMap: the state of every chunk of an overlay, packed two bits per chunk (4 chunks a byte).
//
// Packed so that a 100 GiB disk at 4 KiB chunks costs 6.5 MiB per copy; whole bytes are compared and
// filled at once, so finding a run of same-state chunks (one I/O each, habit 10) and applying a
// multi-chunk record are byte-speed, not chunk-speed. The packed bytes are also the snapshot format of
// the overlay map file (chunk i is bits 2*(i%4)..2*(i%4)+1 of byte i/4; unused bits are zero).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "blockstore/block_device.hpp"

namespace pxedust::blockstore {

using ChunkState = ExtentState;  // Base = 0, Data = 1, Zero = 2; 3 is invalid

class ChunkMap {
 public:
  ChunkMap() = default;
  explicit ChunkMap(std::uint64_t chunks);
  // From snapshot bytes; nullopt when the length is wrong or a chunk holds the invalid state 3 or
  // unused trailing bits are set.
  static std::optional<ChunkMap> fromBytes(std::uint64_t chunks, std::span<const std::uint8_t> bytes);

  [[nodiscard]] std::uint64_t chunks() const { return chunks_; }
  [[nodiscard]] ChunkState get(std::uint64_t i) const {
    return static_cast<ChunkState>((bits_[i >> 2] >> ((i & 3) * 2)) & 3);
  }
  void set(std::uint64_t i, ChunkState s) {
    auto shift = (i & 3) * 2;
    bits_[i >> 2] = static_cast<std::uint8_t>((bits_[i >> 2] & ~(3U << shift)) | (static_cast<unsigned>(s) << shift));
  }
  // Sets [first, first+count); the caller has checked the range.
  void setRange(std::uint64_t first, std::uint64_t count, ChunkState s);
  // Number of chunks from i on (at most `max`) with the same state as chunk i.
  [[nodiscard]] std::uint64_t runLength(std::uint64_t i, std::uint64_t max) const;
  [[nodiscard]] std::uint64_t countState(ChunkState s) const;
  [[nodiscard]] std::span<const std::uint8_t> bytes() const { return bits_; }
  static std::uint64_t bytesFor(std::uint64_t chunks) { return (chunks + 3) / 4; }

 private:
  std::uint64_t chunks_ = 0;
  std::vector<std::uint8_t> bits_;
};

}  // namespace pxedust::blockstore
