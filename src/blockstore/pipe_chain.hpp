// PipeChain: read data held as page references in kernel pipes, for a front-end to send with no copy.
//
// Why: a large READ copied every byte twice on the server, page cache -> our buffer -> socket; that
// was half of the server's CPU on 1 MiB reads. splice(2) from a file into a pipe takes references
// to the page-cache pages instead of copying them, and splice from the pipe into a TCP socket hands
// those pages to the socket, again without a copy. The block store fills a chain (BlockDevice::
// spliceRead, on a worker thread: it may wait for the disk); the transport drains it in order.
//
// What the bytes are: the pages the file held when they were spliced. A later write to the same
// file range may show through until they are sent (as for any read racing a write to the same
// blocks, which SCSI and NBD leave undefined); a hole punched afterwards does not (the pipe keeps
// the old page). Unallocated ranges are filled from a static page of zeros.
//
// Idle pipes are pooled per thread (take and drop on the event loop): a pipe costs two descriptors
// and an fcntl to make. A chain drained to the end gives its pipes back; one dropped part-way closes
// them (they still hold bytes). The number of pipes lent out by the process is bounded: beyond it, or
// when the process is out of descriptors, take() returns nullptr and the caller copies as before.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/fd.hpp"
#include "common/result.hpp"

namespace pxedust::blockstore {

class PipeChain {
 public:
  // Pipes are asked for this capacity (F_SETPIPE_SZ; the kernel may give less).
  static constexpr std::size_t kPipeCapacity = 1u << 20;
  // Pipes lent out at most, by all threads together (each holds two descriptors).
  static constexpr std::size_t kMaxLent = 512;
  // Idle pipes kept per thread.
  static constexpr std::size_t kMaxIdle = 64;

  // A chain that can hold `length` bytes, or nullptr (no descriptors, or too many pipes lent out).
  static std::shared_ptr<PipeChain> take(std::size_t length);
  ~PipeChain();
  PipeChain(const PipeChain&) = delete;
  PipeChain& operator=(const PipeChain&) = delete;

  [[nodiscard]] std::size_t length() const { return length_; }
  [[nodiscard]] std::size_t filled() const { return filled_; }
  [[nodiscard]] std::size_t drained() const { return drained_; }

  // Filling, in order, until filled() == length(). Blocking (a file read may wait for the disk).
  // Appends `length` bytes of `fd` from `offset`; end of file first is an error (ENODATA).
  Result<void> spliceFrom(int fd, std::uint64_t offset, std::size_t length, const std::string& what);
  // Appends `length` zero bytes.
  Result<void> appendZeros(std::size_t length);

  // Draining, in order: splices up to `max` bytes into `fd` (a non-blocking socket). Returns the
  // bytes moved (> 0), or -errno (-EAGAIN when the socket is full). `more` tells the socket more
  // data follows (SPLICE_F_MORE), so it does not push a short segment.
  ssize_t spliceTo(int fd, std::size_t max, bool more);

  // Pipes lent out (by all threads) and idle in this thread's pool (tests).
  static std::size_t lent();
  static std::size_t idle();

 private:
  struct Pipe {
    UniqueFd readEnd, writeEnd;
    std::size_t capacity = 0;
    std::size_t in = 0, out = 0;  // bytes put into and taken out of this pipe
  };
  explicit PipeChain(std::size_t length) : length_(length) {}
  // The pipe the next `in` bytes go to; nullptr when the chain is full.
  Pipe* fillTarget();

  std::vector<Pipe> pipes_;
  std::size_t length_ = 0, filled_ = 0, drained_ = 0;
  std::size_t fillIndex_ = 0, drainIndex_ = 0;
};

}  // namespace pxedust::blockstore
