// The NFSv3 file handle pxedust hands out (RFC 1813 §2.5 nfs_fh3, §4.1 "file handles"): a fixed
// layout that never depends on process memory, so handles survive a restart and a reload as long as
// the image they name is the same.
//
// Design note. RFC 1813 §4.1 leaves a handle's content to the server; the client treats it as opaque
// and compares it byte for byte. pxedust's handle is 44 bytes, big-endian:
//   0      magic 0xf5
//   1      layout version (1)
//   2..3   reserved, zero
//   4..19  image id: 16 bytes the caller derives from the image's name (carried, not interpreted)
//   20..23 image version: which build of the image (a rebuilt image makes old handles stale)
//   24..31 inode number inside the image
//   32..35 generation of that inode
//   36..43 MAC: SipHash-2-4 (Aumasson & Bernstein, 2012) over bytes 0..35 under a 128-bit key
// The MAC lets the server tell its own handles from forged or garbled ones cheaply, before any
// lookup: a handle of the wrong size, magic, version, reserved bits or MAC decodes as
// NFS3ERR_BADHANDLE. SipHash is a keyed PRF designed for short inputs; 64 bits of tag against an
// online guesser who gets one answer per RPC is ample. The MAC is not access control: whether the
// caller may see the image is still decided by the export rules for its address, and a handle whose
// image version or generation is no longer current is NFS3ERR_STALE, decided by the caller. The key
// is passed in (the daemon keeps it across restarts so clients' handles stay valid).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "nfs/wire/protocol.hpp"

namespace pxedust::nfs::wire {

inline constexpr std::size_t kHandleSize = 44;
inline constexpr std::uint8_t kHandleMagic = 0xf5;
inline constexpr std::uint8_t kHandleVersion = 1;
static_assert(kHandleSize <= kFhSize3);

using HandleKey = std::array<std::uint8_t, 16>;
using ImageId = std::array<std::uint8_t, 16>;
using HandleBytes = std::array<std::uint8_t, kHandleSize>;

struct FileHandle {
  ImageId image{};
  std::uint32_t imageVersion = 0;
  std::uint64_t inode = 0;
  std::uint32_t generation = 0;
  friend bool operator==(const FileHandle&, const FileHandle&) = default;
};

// SipHash-2-4 of `data` under `key` (the reference algorithm; little-endian words as specified).
std::uint64_t siphash24(const HandleKey& key, std::span<const std::uint8_t> data);

HandleBytes encodeHandle(const FileHandle& fh, const HandleKey& key);

// Nfsstat3::Ok with `out` filled, or Nfsstat3::BadHandle (out untouched).
Nfsstat3 decodeHandle(std::span<const std::uint8_t> bytes, const HandleKey& key, FileHandle& out);

}  // namespace pxedust::nfs::wire
