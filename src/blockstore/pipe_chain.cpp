#include "blockstore/pipe_chain.hpp"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

#include <fmt/format.h>

#include "blockstore/file.hpp"

namespace pxedust::blockstore {

namespace {

std::atomic<std::size_t> gLent{0};

struct IdlePipe {
  UniqueFd readEnd, writeEnd;
  std::size_t capacity = 0;
};

// Idle pipes of this thread (a chain dropped on another thread gives its pipes to that thread).
std::vector<IdlePipe>& idlePipes() {
  thread_local std::vector<IdlePipe> idle;
  return idle;
}

// A fresh pipe, or an idle one; false when out of descriptors or over kMaxLent.
bool lend(UniqueFd& r, UniqueFd& w, std::size_t& capacity) {
  if (gLent.fetch_add(1) >= PipeChain::kMaxLent) {
    gLent.fetch_sub(1);
    return false;
  }
  auto& idle = idlePipes();
  if (!idle.empty()) {
    r = std::move(idle.back().readEnd);
    w = std::move(idle.back().writeEnd);
    capacity = idle.back().capacity;
    idle.pop_back();
    return true;
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    gLent.fetch_sub(1);
    return false;
  }
  r.reset(fds[0]);
  w.reset(fds[1]);
  // Past fs.pipe-max-size (1 MiB by default) only CAP_SYS_RESOURCE may go; less is fine.
  ::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(PipeChain::kPipeCapacity));
  int got = ::fcntl(fds[1], F_GETPIPE_SZ);
  capacity = got > 0 ? static_cast<std::size_t>(got) : 4096;
  return true;
}

// Zero bytes for appendZeros; vmsplice'd by reference, so they must never change.
alignas(4096) const std::uint8_t kZeros[64u << 10] = {};

}  // namespace

std::shared_ptr<PipeChain> PipeChain::take(std::size_t length) {
  std::shared_ptr<PipeChain> chain(new PipeChain(length));
  std::size_t room = 0;
  while (room < length) {
    Pipe p;
    if (!lend(p.readEnd, p.writeEnd, p.capacity)) return nullptr;  // the destructor gives back the rest
    room += p.capacity;
    chain->pipes_.push_back(std::move(p));
  }
  return chain;
}

PipeChain::~PipeChain() {
  auto& idle = idlePipes();
  for (auto& p : pipes_) {
    gLent.fetch_sub(1);
    // A pipe still holding bytes is closed (its pages with it); an empty one is reused.
    if (p.in == p.out && idle.size() < kMaxIdle) idle.push_back({std::move(p.readEnd), std::move(p.writeEnd), p.capacity});
  }
}

std::size_t PipeChain::lent() { return gLent.load(); }
std::size_t PipeChain::idle() { return idlePipes().size(); }

PipeChain::Pipe* PipeChain::fillTarget() {
  if (filled_ >= length_) return nullptr;
  while (fillIndex_ < pipes_.size()) {
    Pipe& p = pipes_[fillIndex_];
    if (p.in < p.capacity) return &p;
    ++fillIndex_;
  }
  // Unaligned ranges take more page slots than bytes/4096: one more pipe.
  Pipe p;
  if (!lend(p.readEnd, p.writeEnd, p.capacity)) return nullptr;
  pipes_.push_back(std::move(p));
  return &pipes_.back();
}

Result<void> PipeChain::spliceFrom(int fd, std::uint64_t offset, std::size_t length, const std::string& what) {
  if (length > length_ - filled_) return Error{"splice: more bytes than the chain holds", EINVAL};
  auto off = static_cast<off64_t>(offset);
  while (length > 0) {
    Pipe* p = fillTarget();
    if (!p) return Error{"splice: out of pipes", ENOBUFS};
    ssize_t n = ::splice(fd, &off, p->writeEnd.get(), nullptr, std::min(length, p->capacity - p->in),
                         SPLICE_F_NONBLOCK);
    if (n > 0) {
      p->in += static_cast<std::size_t>(n);
      filled_ += static_cast<std::size_t>(n);
      length -= static_cast<std::size_t>(n);
      continue;
    }
    if (n == 0) return Error{fmt::format("{}: splice at offset {}: end of file", what, off), ENODATA};
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {  // this pipe's page slots are used up (an unaligned range): the next one
      p->capacity = p->in;
      continue;
    }
    int err = errno;
    return Error{fmt::format("{}: splice at offset {}: {}", what, off, errnoText(err)), err};
  }
  return {};
}

Result<void> PipeChain::appendZeros(std::size_t length) {
  if (length > length_ - filled_) return Error{"splice: more bytes than the chain holds", EINVAL};
  while (length > 0) {
    Pipe* p = fillTarget();
    if (!p) return Error{"splice: out of pipes", ENOBUFS};
    iovec iov{const_cast<std::uint8_t*>(kZeros), std::min({length, p->capacity - p->in, sizeof kZeros})};
    ssize_t n = ::vmsplice(p->writeEnd.get(), &iov, 1, SPLICE_F_NONBLOCK);
    if (n > 0) {
      p->in += static_cast<std::size_t>(n);
      filled_ += static_cast<std::size_t>(n);
      length -= static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      p->capacity = p->in;
      continue;
    }
    int err = n < 0 ? errno : EIO;
    return Error{fmt::format("vmsplice zeros: {}", errnoText(err)), err};
  }
  return {};
}

ssize_t PipeChain::spliceTo(int fd, std::size_t max, bool more) {
  while (drainIndex_ < pipes_.size() && pipes_[drainIndex_].out == pipes_[drainIndex_].in) ++drainIndex_;
  if (drainIndex_ >= pipes_.size() || max == 0) return -EINVAL;  // nothing (more) was filled
  Pipe& p = pipes_[drainIndex_];
  const std::size_t want = std::min(max, p.in - p.out);
  // MORE unless this is the last of what the caller sends now and nothing follows it.
  unsigned flags = SPLICE_F_NONBLOCK | SPLICE_F_MOVE;
  if (more || want < max) flags |= SPLICE_F_MORE;
  ssize_t n = ::splice(p.readEnd.get(), nullptr, fd, nullptr, want, flags);
  if (n < 0) return -errno;
  if (n == 0) return -EPIPE;
  p.out += static_cast<std::size_t>(n);
  drained_ += static_cast<std::size_t>(n);
  return n;
}

}  // namespace pxedust::blockstore
