// BlockDevice: the one interface every storage front-end (SCSI emulation for iSCSI, NBD) sits on.
//
// Design note. A BlockDevice is a byte-addressed virtual disk with a logical block size. Front-ends
// translate their LBAs into byte offsets and pass peer-supplied numbers straight through: every
// implementation checks `within(offset, length, size())` itself and answers a bad range with an Error
// (code EINVAL for a malformed request, ERANGE for a range past the end), never with an exception or
// an assert. Byte-granular offsets are accepted; an implementation with a coarser internal unit (the
// copy-on-write overlay's chunk) does read-modify-write of the unaligned head and tail.
//
// The methods here are synchronous, thread-safe, and may block on disk I/O: they are what the CLI and
// the tests call directly. The event loop never calls them; it goes through AsyncBlockDevice
// (async_device.hpp), which runs them on a worker pool and posts the completion back to the loop.
// The exceptions are tryRead(), which never blocks: the event loop calls it first, so a read the
// page cache can answer costs no thread hop (preadv2 with RWF_NOWAIT, locks only tried); and
// tryWrite(), a write that is only a copy into the page cache, which the event loop calls under a
// timing guard (AsyncBlockDevice).
// spliceRead() is the copy-free read for large transfers: the bytes go into a PipeChain as page
// references, which a transport splices into its socket (pipe_chain.hpp).
//
// Capabilities are answers, not guesses: the NBD handshake flags and the SCSI VPD pages are derived
// from them, so they cannot drift from what the device does (nbdkit can_*, SPDK bdev io_type_supported).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace pxedust::blockstore {

class PipeChain;

struct Capabilities {
  bool readOnly = false;
  bool canFlush = true;   // flush() makes every completed write durable
  bool canFua = true;     // write(.., fua=true) is durable when it completes
  bool canTrim = true;    // trim() deallocates; trimmed ranges read back as zeros (deterministic)
  bool canZero = true;    // writeZeroes() is efficient (no data transfer)
  bool canExtents = true; // extents() reports real allocation, not just "all data"
  // Writes aligned to this many bytes and sized in multiples of it need no read-modify-write; others
  // cost more (an overlay completes a partial chunk from its source). A power of two, at least the
  // logical block size. Front-ends report it as the disk's preferred write granularity.
  std::uint32_t writeGranularity = 4096;
};

// Where the bytes of a range come from. For a raw image everything is Data.
enum class ExtentState : std::uint8_t {
  Base = 0,  // unchanged from the read-only base image (an overlay's "hole")
  Data = 1,  // written to this device
  Zero = 2,  // trimmed or write-zeroed: reads as zeros, occupies no data space
};
std::string_view extentStateName(ExtentState s);

struct Extent {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  ExtentState state = ExtentState::Data;
  friend bool operator==(const Extent&, const Extent&) = default;
};

struct WriteFlags {
  bool fua = false;  // force unit access: durable before the write completes
};

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;

  [[nodiscard]] virtual std::uint64_t size() const = 0;
  // 512 for every device in this module; front-ends report it as their block size.
  [[nodiscard]] virtual std::uint32_t logicalBlockSize() const = 0;
  [[nodiscard]] virtual Capabilities capabilities() const = 0;
  // A short human-readable name for logs ("overlay host7 on debian12 v2").
  [[nodiscard]] virtual std::string describe() const = 0;

  // Reads buf.size() bytes at offset. Zero length succeeds (after the range check).
  virtual Result<void> read(std::uint64_t offset, std::span<std::uint8_t> buf) = 0;
  // The same read, but only if it needs no disk I/O and no wait for a lock: nullopt means "it would
  // block, call read() from a thread that may block" (nothing has been decided; buf may hold partial
  // bytes). A value is final, success or Error (a bad range is an Error here too). Safe to call on
  // the event loop. The default never tries.
  virtual std::optional<Result<void>> tryRead(std::uint64_t /*offset*/, std::span<std::uint8_t> /*buf*/) {
    return std::nullopt;
  }
  // Whether spliceRead() works on this device; when false, use read().
  [[nodiscard]] virtual bool canSpliceRead() const { return false; }
  // Reads `length` bytes at offset into the end of `out` (spliced page references, no copy). May
  // block. An Error leaves `out` partly filled: drop it. The default refuses (ENOTSUP).
  virtual Result<void> spliceRead(std::uint64_t offset, std::uint64_t length, PipeChain& out);
  // Writes; durable on completion only with flags.fua, otherwise after the next flush().
  virtual Result<void> write(std::uint64_t offset, std::span<const std::uint8_t> data, WriteFlags flags = {}) = 0;
  // The same write, done by the caller when it is only a copy into the page cache: no lock waited for
  // (only tried), no read of another file (no read-modify-write from the base), no FUA. nullopt means
  // "nothing was written, call write() from a thread that may block". A value is final. Unlike
  // tryRead() this is not guaranteed not to block: a buffered write cannot be made non-blocking (ext4
  // refuses RWF_NOWAIT for it), and the kernel may throttle the writer of dirty pages or make it wait
  // for a journal commit. The event loop therefore calls it only through AsyncBlockDevice, which times
  // every such write and stops trying while they are slow (InlineWriteGate). The default never tries.
  virtual std::optional<Result<void>> tryWrite(std::uint64_t /*offset*/, std::span<const std::uint8_t> /*data*/,
                                               WriteFlags /*flags*/) {
    return std::nullopt;
  }
  // Makes every write that completed before this call durable (survives kill -9 and power loss).
  virtual Result<void> flush() = 0;
  // Deallocates [offset, offset+length); the range reads as zeros afterwards.
  virtual Result<void> trim(std::uint64_t offset, std::uint64_t length) = 0;
  // Makes [offset, offset+length) read as zeros without transferring data.
  virtual Result<void> writeZeroes(std::uint64_t offset, std::uint64_t length, WriteFlags flags = {}) = 0;
  // Allocation status of [offset, offset+length): contiguous extents covering exactly that range,
  // adjacent extents having different states.
  virtual Result<std::vector<Extent>> extents(std::uint64_t offset, std::uint64_t length) = 0;
};

// The shared range check: EINVAL/ERANGE Errors with a message naming the device and the numbers.
Result<void> checkRange(const BlockDevice& dev, std::string_view op, std::uint64_t offset, std::uint64_t length);

}  // namespace pxedust::blockstore
