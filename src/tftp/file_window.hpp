// The slice of a file a transfer is sending, held in one reusable buffer.
//
// A transfer needs blocks [acked+1, acked+window] at a time (again after a timeout), so it keeps a
// buffer of at least one window (and at least 32 KiB) starting at the first unacknowledged block.
// Refills try preadv2(RWF_NOWAIT) first: a page-cache hit is served on the loop with no thread hop.
// A miss (or a filesystem without NOWAIT) goes to the worker pool, so a cold disk never stalls the
// loop that serves every other client. Netascii transfers hold the converted file in memory instead.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/thread_pool.hpp>

#include <cstdint>
#include <span>
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
  [[nodiscard]] bool ready(std::uint64_t first, std::uint64_t last) const;
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
  [[nodiscard]] Range refillRange(std::uint64_t first) const;

  int fd_ = -1;
  std::uint64_t size_;
  std::uint32_t blksize_;
  std::uint32_t windowsize_ = 1;
  std::vector<std::uint8_t> buffer_;
  std::uint64_t bufferOffset_ = 0;  // file offset of buffer_[0]
  std::size_t bufferLength_ = 0;    // valid bytes in buffer_
};

// RFC 764 netascii: LF -> CR LF, CR -> CR NUL.
std::vector<std::uint8_t> toNetascii(std::span<const std::uint8_t> raw);

}  // namespace pxedust::tftp
