// BufferPool: transfer buffers (iSCSI Data-In, NBD READ data and WRITE payloads) reused instead of
// allocated per command.
//
// Why: a 1 MiB READ used to allocate a fresh std::vector, value-initialise it (a memset of the whole
// MiB, then overwritten by the read), and free it after the send; glibc gave the freed MiB back to
// the kernel and faulted it in again next time. A buffer taken from here keeps its size between
// uses, so take(n) of a size it has held costs neither the memset nor the faults.
//
// Small buffers (a 4 KiB READ's) are pooled too, apart: at QD32 a fresh 4 KiB vector per command
// (malloc, the zero-fill, free and glibc's consolidation of the freed chunks) was ~8% of the event
// loop's samples, more than all of pxedust's own SCSI code.
//
// One pool per thread (everything that takes and gives runs on the event loop; a buffer given on
// another thread just lands in that thread's pool). Bounded: at most kMaxBuffers large buffers
// (kMinSize and up) and kMaxBytes bytes, and kMaxSmall small ones (kSmallMin up to kMinSize) and
// kMaxSmallBytes; others are freed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pxedust::blockstore {

class BufferPool {
 public:
  static constexpr std::size_t kMinSize = 64u << 10;
  static constexpr std::size_t kMaxBuffers = 64;
  static constexpr std::size_t kMaxBytes = 64u << 20;
  static constexpr std::size_t kSmallMin = 512;
  static constexpr std::size_t kMaxSmall = 256;
  static constexpr std::size_t kMaxSmallBytes = 4u << 20;

  // A buffer of exactly n bytes; its contents are unspecified (whatever it held last, or zeros).
  static std::vector<std::uint8_t> take(std::size_t n);
  // Returns a buffer for reuse (or frees it when the pool is full or it is small).
  static void give(std::vector<std::uint8_t>&& buf);
  // Buffers and bytes kept by this thread's pool (tests), large and small ones together.
  static std::size_t buffers();
  static std::size_t bytes();
};

}  // namespace pxedust::blockstore
