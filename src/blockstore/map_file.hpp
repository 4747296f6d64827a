// The overlay map file: which chunks of an overlay hold data, which are zero, which come from the base.
//
// Layout (all integers big-endian):
//
//   offset 0    header, 512 bytes
//     0   8  magic "PXDCOW1\n"
//     8   4  format version (1)            12  4  header size (512)
//     16  4  chunk size (power of two, 4 KiB .. 1 MiB)
//     20  4  logical block size (512)
//     24  8  virtual size (bytes, multiple of 512, = base size)
//     32  8  sequence number of the first journal record that may follow the snapshot
//     40  8  snapshot length in bytes (= ceil(chunks / 4))
//     48  4  CRC32C of the snapshot        52  4  reserved (0)
//     56  2  base name length, then 128 bytes of name, zero padded
//     186 8  base version   194 16 base UUID   210 32 base SHA-256   242 8 base size
//     ...    zero
//     508 4  CRC32C of bytes 0..507
//   offset 512  snapshot: the packed ChunkMap (2 bits a chunk, see chunk_map.hpp)
//   then        journal: 36-byte records appended in order
//     0 4 magic "PXJR"   4 1 chunk state   5 3 zero   8 8 sequence number
//     16 8 first chunk   24 8 chunk count  32 4 CRC32C of bytes 0..31
//
// Replay applies records while each one has the magic, a good CRC, the next sequence number and a range
// inside the map; the first record that fails ends the journal (a torn tail from a crash mid-append)
// and is dropped. The sequence number makes a stale record that happens to survive in reused space
// unusable. Compaction writes a fresh file (header + snapshot, firstSeq = next sequence number) as
// <map>.tmp, fdatasyncs it, renames it over the map and fsyncs the directory: at every instant the
// name refers to a complete, valid map.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>

#include "blockstore/chunk_map.hpp"
#include "blockstore/raw_image.hpp"

namespace pxedust::blockstore {

inline constexpr std::size_t kMapHeaderSize = 512;
inline constexpr std::size_t kMapRecordSize = 36;
inline constexpr std::uint32_t kMinChunkSize = 4096;
inline constexpr std::uint32_t kMaxChunkSize = 1U << 20;
inline constexpr std::uint64_t kMaxVirtualSize = 1ULL << 50;  // 1 PiB: bounds the map allocation
inline constexpr std::size_t kMaxBaseNameLength = 128;

struct MapHeader {
  std::uint32_t chunkSize = 0;
  std::uint64_t virtualSize = 0;
  std::uint64_t firstSeq = 1;
  std::uint32_t snapshotCrc = 0;
  BaseIdentity base;

  [[nodiscard]] std::uint64_t chunks() const { return (virtualSize + chunkSize - 1) / chunkSize; }
  [[nodiscard]] std::uint64_t snapshotBytes() const { return ChunkMap::bytesFor(chunks()); }
  [[nodiscard]] std::uint64_t journalStart() const { return kMapHeaderSize + snapshotBytes(); }
};

struct MapRecord {
  std::uint64_t seq = 0;
  std::uint64_t first = 0;
  std::uint64_t count = 0;
  ChunkState state = ChunkState::Base;
};

bool validChunkSize(std::uint64_t chunkSize);

std::array<std::uint8_t, kMapHeaderSize> encodeMapHeader(const MapHeader& h);
// Validates everything it can without the snapshot: magic, version, CRC, chunk size, sizes.
Result<MapHeader> decodeMapHeader(std::span<const std::uint8_t> bytes);
std::array<std::uint8_t, kMapRecordSize> encodeMapRecord(const MapRecord& r);
// nullopt for a bad magic, CRC or state (range and sequence are the caller's checks).
std::optional<MapRecord> decodeMapRecord(std::span<const std::uint8_t> bytes);

struct LoadedMap {
  MapHeader header;
  ChunkMap map;
  std::uint64_t nextSeq = 1;
  std::uint64_t records = 0;     // records replayed
  std::uint64_t journalEnd = 0;  // file offset just past the last good record
  std::uint64_t tornBytes = 0;   // bytes after it (a torn or corrupt tail), ignored
};

// Reads and validates a whole map file. `what` names it in errors.
Result<LoadedMap> loadMapFile(int fd, const std::string& what);
// Reads only the header (for listings).
Result<MapHeader> readMapHeader(const std::filesystem::path& path);
// Writes header + snapshot as <path>.tmp, syncs it and renames it over `path`. Returns the open
// descriptor of the new file (O_RDWR); appends go at header.journalStart(). The caller must then
// syncDir(path.parent_path()) to make the rename durable. On error `path` is untouched.
Result<UniqueFd> writeMapFile(const std::filesystem::path& path, MapHeader header, const ChunkMap& map);

}  // namespace pxedust::blockstore
