// The slice of a file a transfer is sending, held in one reusable buffer.
//
// A transfer needs blocks [acked+1, acked+window] at a time (again after a timeout), so it keeps a
// buffer of at least one window (and at least 32 KiB) starting at the first unacknowledged block.
// Refills try preadv2(RWF_NOWAIT) first: a page-cache hit is served on the loop with no thread hop.
// A miss (or a filesystem without NOWAIT) goes to the worker pool, so a cold disk never stalls the
// loop that serves every other client. Netascii transfers hold the converted file in memory instead.
//
// When every window needs a read of its own (a window of 32 KiB or more: big blocks, or wide
// windows), the transfer reads the next window into a second buffer right after sending one
// (readAhead), while the client receives it and answers. The ACK is then answered at once instead
// of after a read: at blksize 65464 lock-step on loopback that read is half of a block's round trip.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/thread_pool.hpp>

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace pxedust::tftp {

class FileWindow {
 public:
  static constexpr std::size_t kMinBuffer = 32 * 1024;

  // Streams from `fd` (not owned; it must outlive the window).
  FileWindow(int fd, std::uint64_t size, std::uint32_t blksize, std::uint32_t windowsize);
  // Serves `content` from memory.
  FileWindow(std::vector<std::uint8_t> content, std::uint32_t blksize);

  [[nodiscard]] std::uint64_t size() const { return size_; }
  // Blocks are numbered from 1; the last one is shorter than blksize (possibly empty).
  [[nodiscard]] std::uint64_t blockCount() const { return size_ / blksize_ + 1; }
  // True when blocks [first, last] are in memory. If the read-ahead buffer holds them, it becomes the
  // buffer that block() serves from.
  bool ready(std::uint64_t first, std::uint64_t last);
  // After blocks up to `next - 1` were sent: when every window needs its own read, reads the window
  // from `next` into the spare buffer now, from the page cache only (a miss is left to the refill).
  void readAhead(std::uint64_t next);
  // Refills from block `first` without blocking; true when [first, first + window) is now ready.
  bool fillNow(std::uint64_t first);
  // Refills from block `first` on the pool; resumes on the caller's executor.
  asio::awaitable<Result<void>> fill(std::uint64_t first, asio::thread_pool& pool);
  [[nodiscard]] std::span<const std::uint8_t> block(std::uint64_t b) const;

 private:
  struct Range {
    std::uint64_t offset;
    std::size_t length;
  };
  struct Buffer {
    std::vector<std::uint8_t> bytes;
    std::uint64_t offset = 0;  // file offset of bytes[0]
    std::size_t length = 0;    // valid bytes
    [[nodiscard]] bool holds(std::uint64_t start, std::uint64_t end) const {
      return start >= offset && end <= offset + length;
    }
  };
  [[nodiscard]] Range refillRange(std::uint64_t first) const;
  [[nodiscard]] std::pair<std::uint64_t, std::uint64_t> byteRange(std::uint64_t first, std::uint64_t last) const;
  bool readNow(Buffer& into, std::uint64_t first);

  int fd_ = -1;
  std::uint64_t size_;
  std::uint32_t blksize_;
  std::uint32_t windowsize_ = 1;
  bool readsAhead_ = false;  // the buffer holds one window, so each window is a read
  Buffer buffer_;           // what block() serves from
  Buffer spare_;            // the read-ahead window; allocated on the first readAhead()
};

// RFC 764 netascii: LF -> CR LF, CR -> CR NUL.
std::vector<std::uint8_t> toNetascii(std::span<const std::uint8_t> raw);

}  // namespace pxedust::tftp
