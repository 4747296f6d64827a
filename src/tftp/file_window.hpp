// The part of a file a transfer is sending: blocks [acked+1, acked+window] at a time (again after a
// timeout), served without blocking the loop on disk.
//
// Mapped (octet transfers with windows under 32 KiB: lock-step, and the small windows firmware asks
// for): the file is mapped read-only and a block is a span of the mapping, handed to sendmsg as it
// is: no read, no copy of our own and no buffer per transfer, and every transfer of a boot file sends
// from the same page-cache pages (a boot storm's working set is the file, not a copy of it per
// client: at 500 concurrent lock-step transfers 6-12% less server CPU per block than buffered).
// The loop must not fault on a page that is not in memory, so the bytes ahead of the window are
// checked with mincore() (kVerifyAhead at a time, and again when that check is older than
// kVerifyFresh); pages not in memory are faulted in on the worker pool (fill(): MADV_POPULATE_READ)
// and the window is sent after that. A page evicted between the check and the send is read by
// sendmsg on the loop: that window is kVerifyFresh wide, under memory pressure only.
// Nothing in user space reads the mapping: a file truncated under it would raise SIGBUS there, while
// the kernel's copy in sendmsg fails with EFAULT instead (the transfer then ends; see Transfer).
//
// Buffered (windows of 32 KiB or more, or when mmap fails): a reusable buffer of at least one window
// (and at least 32 KiB) from the first unacknowledged block. Refills try preadv2(RWF_NOWAIT) first,
// a page-cache hit served on the loop; a miss goes to the worker pool. When every window needs a read of its own (a window of 32 KiB
// or more), the next window is read into a second buffer right after a send (readAhead), while the
// client answers: the copy out of the page cache is then off the round trip, and the send copies from
// a buffer still in the CPU's cache (at blksize 65464 on loopback, faster than sending from the
// mapping, whose copy would read the page cache on the round trip). Netascii transfers hold the
// converted file in memory instead.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/thread_pool.hpp>

#include <chrono>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace pxedust::tftp {

class FileWindow {
 public:
  static constexpr std::size_t kMinBuffer = 32 * 1024;
  // Mapped: how far past the window's first byte one residency check reaches (at least a window).
  static constexpr std::size_t kVerifyAhead = 256 * 1024;
  // Mapped: a residency check older than this is made again before the next send.
  static constexpr std::chrono::milliseconds kVerifyFresh{1000};

  enum class Mode : std::uint8_t { Mapped, Buffered };

  // Streams from `fd` (not owned; it must outlive the window): mapped when `mode` asks for it, the
  // window is under kMinBuffer and mmap succeeds; else buffered.
  FileWindow(int fd, std::uint64_t size, std::uint32_t blksize, std::uint32_t windowsize, Mode mode = Mode::Mapped);
  // Serves `content` from memory.
  FileWindow(std::vector<std::uint8_t> content, std::uint32_t blksize);
  ~FileWindow();
  FileWindow(const FileWindow&) = delete;
  FileWindow& operator=(const FileWindow&) = delete;

  [[nodiscard]] bool mapped() const { return map_ != nullptr; }
  [[nodiscard]] std::uint64_t size() const { return size_; }
  // Blocks are numbered from 1; the last one is shorter than blksize (possibly empty).
  [[nodiscard]] std::uint64_t blockCount() const { return size_ / blksize_ + 1; }
  // True when blocks [first, last] can be sent now (in memory). Buffered: if the read-ahead buffer
  // holds them, it becomes the buffer that block() serves from.
  bool ready(std::uint64_t first, std::uint64_t last);
  // Makes the window from block `first` ready without blocking; true when it now is.
  bool fillNow(std::uint64_t first);
  // Makes it ready on the pool (reads from disk); resumes on the caller's executor.
  asio::awaitable<Result<void>> fill(std::uint64_t first, asio::thread_pool& pool);
  // Buffered, after blocks up to `next - 1` were sent: when every window needs its own read, reads
  // the window from `next` into the spare buffer now, from the page cache only (a miss is left to the
  // refill). Mapped: nothing to do.
  void readAhead(std::uint64_t next);
  // The bytes of block b, which ready() said can be sent. Mapped: hand them to the kernel only.
  [[nodiscard]] std::span<const std::uint8_t> block(std::uint64_t b) const;

 private:
  using Clock = std::chrono::steady_clock;
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
  [[nodiscard]] Range verifyRange(std::uint64_t first) const;  // page-aligned
  [[nodiscard]] std::pair<std::uint64_t, std::uint64_t> byteRange(std::uint64_t first, std::uint64_t last) const;
  bool readNow(Buffer& into, std::uint64_t first);
  bool residentNow(Range r);

  int fd_ = -1;
  std::uint64_t size_;
  std::uint32_t blksize_;
  std::uint32_t windowsize_ = 1;
  // Mapped.
  const std::uint8_t* map_ = nullptr;
  Buffer verified_;  // bytes unused: [offset, offset + length) was resident at verifiedAt_
  Clock::time_point verifiedAt_{};
  std::vector<unsigned char> residency_;  // mincore() output, reused
  // Buffered.
  bool readsAhead_ = false;  // the buffer holds one window, so each window is a read
  Buffer buffer_;            // what block() serves from
  Buffer spare_;             // the read-ahead window; allocated on the first readAhead()
};

// RFC 764 netascii: LF -> CR LF, CR -> CR NUL.
std::vector<std::uint8_t> toNetascii(std::span<const std::uint8_t> raw);

}  // namespace pxedust::tftp
