#include "tftp/file_window.hpp"

#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <asio/async_result.hpp>
#include <asio/associated_executor.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <tuple>

namespace pxedust::tftp {

namespace {
const std::uint64_t kPage = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));

// Reads `length` bytes at `offset` into `into`, or, when `into` is shorter, through it piece by piece
// (the bytes then only land in the page cache). Returns errno (0: none) and the bytes read; fewer
// than `length` with no error means the file ended early.
std::pair<int, std::size_t> preadAll(int fd, std::span<std::uint8_t> into, std::size_t length, std::uint64_t offset) {
  std::size_t done = 0;
  while (done < length) {
    std::size_t at = into.size() >= length ? done : 0;
    std::size_t want = std::min(into.size() - at, length - done);
    ssize_t n = ::pread(fd, into.data() + at, want, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return {errno, done};
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return {0, done};
}
}  // namespace

FileWindow::FileWindow(int fd, std::uint64_t size, std::uint32_t blksize, std::uint32_t windowsize, Mode mode)
    : fd_(fd), size_(size), blksize_(blksize), windowsize_(std::max<std::uint32_t>(windowsize, 1)) {
  std::size_t window = std::size_t{blksize_} * windowsize_;
  if (mode == Mode::Mapped && window < kMinBuffer && size_ > 0) {
    void* m = ::mmap(nullptr, static_cast<std::size_t>(size_), PROT_READ, MAP_SHARED, fd_, 0);
    if (m != MAP_FAILED) {
      map_ = static_cast<const std::uint8_t*>(m);
      return;
    }
  }
  std::size_t capacity = std::max(window, kMinBuffer / blksize_ * blksize_);
  buffer_.bytes.resize(static_cast<std::size_t>(std::min<std::uint64_t>(capacity, size_)));
  readsAhead_ = window >= kMinBuffer && size_ > buffer_.bytes.size();
}

FileWindow::FileWindow(std::vector<std::uint8_t> content, std::uint32_t blksize)
    : size_(content.size()), blksize_(blksize) {
  buffer_.bytes = std::move(content);
  buffer_.length = buffer_.bytes.size();
}

FileWindow::~FileWindow() {
  if (map_ != nullptr) ::munmap(const_cast<std::uint8_t*>(map_), static_cast<std::size_t>(size_));
}

std::pair<std::uint64_t, std::uint64_t> FileWindow::byteRange(std::uint64_t first, std::uint64_t last) const {
  return {(first - 1) * blksize_, std::min(size_, last * blksize_)};
}

bool FileWindow::ready(std::uint64_t first, std::uint64_t last) {
  auto [start, end] = byteRange(first, last);
  if (map_ != nullptr) {
    if (start >= end) return true;  // the empty last block
    return verified_.holds(start, end) && Clock::now() - verifiedAt_ < kVerifyFresh;
  }
  if (buffer_.holds(start, end)) return true;
  if (spare_.length == 0 || !spare_.holds(start, end)) return false;
  std::swap(buffer_, spare_);
  spare_.length = 0;
  return true;
}

FileWindow::Range FileWindow::refillRange(std::uint64_t first) const {
  std::uint64_t start = (first - 1) * blksize_;
  return {start, static_cast<std::size_t>(std::min<std::uint64_t>(buffer_.bytes.size(), size_ - start))};
}

FileWindow::Range FileWindow::verifyRange(std::uint64_t first) const {
  std::uint64_t start = std::min(size_, (first - 1) * blksize_);
  std::uint64_t want = std::max<std::uint64_t>(kVerifyAhead, std::uint64_t{blksize_} * windowsize_);
  std::uint64_t end = std::min(size_, start + want);
  std::uint64_t alignedStart = start / kPage * kPage;
  return {alignedStart, static_cast<std::size_t>(end - alignedStart)};
}

bool FileWindow::residentNow(Range r) {
  if (r.length == 0) return true;
  residency_.resize(static_cast<std::size_t>((r.length + kPage - 1) / kPage));
  if (::mincore(const_cast<std::uint8_t*>(map_) + r.offset, r.length, residency_.data()) != 0) return false;
  for (unsigned char page : residency_) {
    if ((page & 1) == 0) return false;
  }
  return true;
}

bool FileWindow::readNow(Buffer& into, std::uint64_t first) {
  auto r = refillRange(first);
  into.length = 0;
  if (r.length == 0) {
    into.offset = r.offset;
    return true;
  }
  iovec iov{into.bytes.data(), r.length};
  ssize_t n = ::preadv2(fd_, &iov, 1, static_cast<off_t>(r.offset), RWF_NOWAIT);
  if (n < 0 || static_cast<std::size_t>(n) < r.length) return false;  // not all in the page cache
  into.offset = r.offset;
  into.length = r.length;
  return true;
}

bool FileWindow::fillNow(std::uint64_t first) {
  if (map_ != nullptr) {
    auto r = verifyRange(first);
    if (!residentNow(r)) return false;  // the pool faults it in
    verified_.offset = r.offset;
    verified_.length = r.length;
    verifiedAt_ = Clock::now();
    return true;
  }
  if (fd_ < 0) return ready(first, first);
  return readNow(buffer_, first);  // a miss: the caller reads it on the pool
}

void FileWindow::readAhead(std::uint64_t next) {
  if (!readsAhead_ || fd_ < 0 || next > blockCount()) return;
  auto [start, end] = byteRange(next, next + windowsize_ - 1);
  if (buffer_.holds(start, end) || (spare_.length > 0 && spare_.holds(start, end))) return;
  if (spare_.bytes.empty()) spare_.bytes.resize(buffer_.bytes.size());
  readNow(spare_, next);  // a miss leaves the spare empty; the ACK's refill then goes to the pool
}

asio::awaitable<Result<void>> FileWindow::fill(std::uint64_t first, asio::thread_pool& pool) {
  const bool mapped = map_ != nullptr;
  auto r = mapped ? verifyRange(first) : refillRange(first);
  Buffer& target = mapped ? verified_ : buffer_;
  target.offset = r.offset;
  target.length = 0;
  int fd = fd_;
  std::uint8_t* dst = mapped ? const_cast<std::uint8_t*>(map_) : buffer_.bytes.data();
  // Read on the pool; complete on the awaiting coroutine's executor (the loop).
  auto [err, got] = co_await asio::async_initiate<decltype(asio::use_awaitable), void(int, std::size_t)>(
      [&pool, fd, dst, r, mapped](auto handler) {
        asio::post(pool, [handler = std::move(handler), fd, dst, r, mapped]() mutable {
          std::size_t done = 0;
          int error = 0;
          if (!mapped) {
            std::tie(error, done) = preadAll(fd, {dst, r.length}, r.length, r.offset);
          } else if (r.length == 0 || ::madvise(dst + r.offset, r.length, MADV_POPULATE_READ) == 0) {
            done = r.length;  // faulted in (from disk) and mapped; EFAULT when the file shrank under us
          } else if (errno == EINVAL) {
            // A kernel before 5.14 (no MADV_POPULATE_READ): reading the range puts it in the page cache.
            std::vector<std::uint8_t> scratch(std::min<std::size_t>(r.length, 256 * 1024));
            std::tie(error, done) = preadAll(fd, scratch, r.length, r.offset);
          } else {
            error = errno;
          }
          auto ex = asio::get_associated_executor(handler);
          asio::post(ex, [handler = std::move(handler), error, done]() mutable { std::move(handler)(error, done); });
        });
      },
      asio::use_awaitable);
  if (err == EFAULT && mapped) co_return Error{"file shrank during the transfer", err};
  if (err != 0) co_return Error{std::string("read: ") + std::strerror(err), err};
  if (got < r.length) co_return Error{"file shrank during the transfer", 0};
  target.length = got;
  if (mapped) verifiedAt_ = Clock::now();
  co_return Result<void>{};
}

std::span<const std::uint8_t> FileWindow::block(std::uint64_t b) const {
  std::uint64_t start = (b - 1) * blksize_;
  std::uint64_t end = std::min(size_, start + blksize_);
  if (map_ != nullptr) return {map_ + start, static_cast<std::size_t>(end - start)};
  return std::span<const std::uint8_t>(buffer_.bytes).subspan(static_cast<std::size_t>(start - buffer_.offset),
                                                              static_cast<std::size_t>(end - start));
}

std::vector<std::uint8_t> toNetascii(std::span<const std::uint8_t> raw) {
  std::vector<std::uint8_t> out;
  out.reserve(raw.size() + raw.size() / 16);
  for (auto c : raw) {
    if (c == '\n') {
      out.push_back('\r');
      out.push_back('\n');
    } else if (c == '\r') {
      out.push_back('\r');
      out.push_back('\0');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace pxedust::tftp
