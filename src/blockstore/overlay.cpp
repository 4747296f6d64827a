// Overlay implementation; the design note and the on-disk protocol are in overlay.hpp and map_file.hpp.
#include "blockstore/overlay.hpp"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "blockstore/file.hpp"
#include "blockstore/pipe_chain.hpp"
#include "common/checked.hpp"
#include "common/log.hpp"

namespace pxedust::blockstore {
namespace {

// Source of zeros for partial-chunk zeroing and Zero-chunk fills (at most one chunk at a time).
const std::vector<std::uint8_t>& zeroBuffer() {
  static const std::vector<std::uint8_t> zeros(kMaxChunkSize, 0);
  return zeros;
}

constexpr std::size_t kMaxPendingRecords = 1U << 16;

Result<void> validateBase(const BaseIdentity& base, std::uint32_t chunkSize) {
  if (!validChunkSize(chunkSize)) {
    return Error{fmt::format("chunk size {} is invalid: it must be a power of two from {} to {}", chunkSize,
                             kMinChunkSize, kMaxChunkSize),
                 EINVAL};
  }
  if (base.size == 0 || base.size % 512 != 0 || base.size > kMaxVirtualSize) {
    return Error{fmt::format("base {} has an unusable size {} (must be a non-zero multiple of 512)", base.describe(),
                             base.size),
                 EINVAL};
  }
  if (base.name.empty() || base.name.size() > kMaxBaseNameLength) {
    return Error{fmt::format("base name '{}' is empty or too long", base.name), EINVAL};
  }
  return {};
}

std::vector<MapRecord> diffRecords(const ChunkMap& from, const ChunkMap& to) {
  std::vector<MapRecord> out;
  auto a = from.bytes(), b = to.bytes();
  std::uint64_t i = 0;
  const std::uint64_t n = to.chunks();
  while (i < n) {
    if ((i & 3) == 0 && a[i >> 2] == b[i >> 2]) {
      i += 4;
      continue;
    }
    if (from.get(i) == to.get(i)) {
      ++i;
      continue;
    }
    auto s = to.get(i);
    std::uint64_t j = i + 1;
    while (j < n && to.get(j) == s && from.get(j) != s) ++j;
    out.push_back({0, i, j - i, s});
    i = j;
  }
  return out;
}

}  // namespace

Result<UniqueFd> Overlay::lock(const OverlayPaths& paths, bool create) {
  auto fd = openFile(paths.data, O_RDWR | (create ? O_CREAT : 0), 0644);
  if (!fd) return fd.error();
  if (::flock(fd->get(), LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    if (err == EWOULDBLOCK) {
      return Error{fmt::format("overlay {} is in use (open in this or another process)", paths.map.stem().string()),
                   EBUSY};
    }
    return errnoError(fmt::format("cannot lock {}: {}", paths.data.string(), errnoText(err)), err);
  }
  return fd;
}

static Result<void> sizeDataFile(int fd, const std::filesystem::path& path, std::uint64_t size, bool empty) {
  if (empty && ::ftruncate(fd, 0) != 0) {
    int err = errno;
    return errnoError(fmt::format("cannot truncate {}: {}", path.string(), errnoText(err)), err);
  }
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int err = errno;
    return errnoError(fmt::format("cannot size {} to {} bytes: {}", path.string(), size, errnoText(err)), err);
  }
  return syncData(fd, path.string());
}

Result<void> Overlay::create(const OverlayPaths& paths, const BaseIdentity& base, std::uint32_t chunkSize) {
  if (auto r = validateBase(base, chunkSize); !r) return r;
  if (::access(paths.map.c_str(), F_OK) == 0) {
    return Error{fmt::format("overlay {} already exists", paths.map.string()), EEXIST};
  }
  auto data = openFile(paths.data, O_RDWR | O_CREAT, 0644);
  if (!data) return data.error();
  if (auto r = sizeDataFile(data->get(), paths.data, base.size, true); !r) return r;
  MapHeader h;
  h.chunkSize = chunkSize;
  h.virtualSize = base.size;
  h.firstSeq = 1;
  h.base = base;
  auto map = writeMapFile(paths.map, h, ChunkMap(h.chunks()));
  if (!map) return map.error();
  return syncDir(paths.map.parent_path());
}

Result<void> Overlay::reset(const OverlayPaths& paths, const BaseIdentity& base, std::uint32_t chunkSize) {
  if (auto r = validateBase(base, chunkSize); !r) return r;
  if (::access(paths.map.c_str(), F_OK) != 0) {
    return Error{fmt::format("overlay {} does not exist", paths.map.string()), ENOENT};
  }
  auto data = openFile(paths.data, O_RDWR | O_CREAT, 0644);
  if (!data) return data.error();
  // Keep the data file at least as large as the new virtual size at every instant, so whichever map a
  // crash leaves behind finds a data file it accepts. Stale bytes are harmless: the new map says
  // every chunk comes from the base, and chunks enter the data file only whole.
  auto cur = fileSize(data->get(), paths.data.string());
  if (!cur) return cur.error();
  if (*cur < base.size) {
    if (auto r = sizeDataFile(data->get(), paths.data, base.size, false); !r) return r;
  }
  MapHeader h;
  h.chunkSize = chunkSize;
  h.virtualSize = base.size;
  h.firstSeq = 1;
  h.base = base;
  auto map = writeMapFile(paths.map, h, ChunkMap(h.chunks()));
  if (!map) return map.error();
  if (auto r = syncDir(paths.map.parent_path()); !r) return r;
  // The reset is committed; now give the space back.
  return sizeDataFile(data->get(), paths.data, base.size, true);
}

Overlay::Overlay(OverlayPaths paths, std::shared_ptr<RawImage> base, OverlayOptions options, MapHeader header)
    : paths_(std::move(paths)), base_(std::move(base)), options_(std::move(options)), header_(std::move(header)) {
  describe_ = fmt::format("overlay {} on {} v{}", paths_.map.stem().string(), header_.base.name, header_.base.version);
  scratch_.resize(header_.chunkSize);
}

Overlay::~Overlay() {
  if (!closed_) {
    if (auto r = close(); !r) {
      PXD_ERROR("blockstore.overlay.close_failed", "overlay={} error={}", log::q(describe_), log::q(r.error().message));
    }
  }
}

Result<std::shared_ptr<Overlay>> Overlay::open(const OverlayPaths& paths, std::shared_ptr<RawImage> base,
                                               OverlayOptions options) {
  const bool ro = options.readOnly;
  auto data = openFile(paths.data, ro ? O_RDONLY : O_RDWR);
  if (!data) {
    if (data.error().code == ENOENT && ::access(paths.map.c_str(), F_OK) == 0) {
      return Error{fmt::format("overlay {}: data file {} is missing", paths.map.stem().string(), paths.data.string()),
                   EUCLEAN};
    }
    return data.error();
  }
  if (::flock(data->get(), (ro ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
    int err = errno;
    if (err == EWOULDBLOCK) {
      return Error{fmt::format("overlay {} is in use (open in this or another process)", paths.map.stem().string()),
                   EBUSY};
    }
    return errnoError(fmt::format("cannot lock {}: {}", paths.data.string(), errnoText(err)), err);
  }
  auto mapFd = openFile(paths.map, ro ? O_RDONLY : O_RDWR);
  if (!mapFd) return mapFd.error();
  auto loaded = loadMapFile(mapFd->get(), paths.map.string());
  if (!loaded) return loaded.error();
  const auto& h = loaded->header;
  if (!(h.base == base->identity())) {
    return Error{fmt::format("overlay {} was created on base {} and cannot be opened over base {}; reset it to "
                             "move it to another base",
                             paths.map.stem().string(), h.base.describe(), base->identity().describe()),
                 ESTALE};
  }
  auto dataSize = fileSize(data->get(), paths.data.string());
  if (!dataSize) return dataSize.error();
  if (*dataSize < h.virtualSize) {
    return Error{fmt::format("overlay {}: data file {} is {} bytes, smaller than the {}-byte disk (truncated)",
                             paths.map.stem().string(), paths.data.string(), *dataSize, h.virtualSize),
                 EUCLEAN};
  }
  if (*dataSize > h.virtualSize && !ro && ::ftruncate(data->get(), static_cast<off_t>(h.virtualSize)) != 0) {
    int err = errno;
    return errnoError(fmt::format("cannot trim {} to its disk size: {}", paths.data.string(), errnoText(err)), err);
  }

  std::shared_ptr<Overlay> ov(new Overlay(paths, std::move(base), std::move(options), h));
  ov->dataFd_ = std::move(*data);
  ov->mapFd_ = std::move(*mapFd);
  ov->live_ = loaded->map;
  ov->durable_ = std::move(loaded->map);
  ov->nextSeq_ = loaded->nextSeq;
  ov->journalEnd_ = loaded->journalEnd;
  if (loaded->tornBytes > 0) {
    PXD_WARN("blockstore.overlay.torn_journal", "overlay={} records={} ignored_bytes={}", log::q(ov->describe_),
             loaded->records, loaded->tornBytes);
  }
  PXD_DEBUG("blockstore.overlay.open", "overlay={} chunk_size={} records={} read_only={}", log::q(ov->describe_),
            h.chunkSize, loaded->records, ro);
  if (!ro && (loaded->records > 0 || loaded->tornBytes > 0)) {
    // Start from a clean file: folds the journal in and drops a torn tail before anything is appended.
    std::lock_guard lk(ov->flushMutex_);
    if (auto r = ov->compactLocked(); !r) return r.error();
  }
  return ov;
}

Capabilities Overlay::capabilities() const {
  Capabilities c;
  c.readOnly = options_.readOnly;
  c.writeGranularity = header_.chunkSize;
  return c;
}

Error Overlay::injected(IoOp op, int err, std::string_view what) const {
  return Error{fmt::format("{}: {} failed: {} (injected, op {})", describe_, what, errnoText(err), static_cast<int>(op)),
               err};
}

Result<void> Overlay::writable(std::string_view op) const {
  if (options_.readOnly) return Error{fmt::format("{}: {} refused: opened read-only", describe_, op), EROFS};
  if (closed_) return Error{fmt::format("{}: {} refused: closed", describe_, op), EBADF};
  if (poisoned_.load()) {
    return Error{fmt::format("{}: {} refused: an earlier sync failed ({}); reopen the overlay", describe_, op,
                             poisonReason_),
                 EIO};
  }
  return {};
}

void Overlay::poison(const Error& e) {
  if (!poisoned_.exchange(true)) {
    poisonReason_ = e.message;
    PXD_ERROR("blockstore.overlay.poisoned", "overlay={} error={}", log::q(describe_), log::q(e.message));
  }
}

Result<void> Overlay::read(std::uint64_t offset, std::span<std::uint8_t> buf) {
  if (auto r = checkRange(*this, "read", offset, buf.size()); !r) return r;
  if (buf.empty()) return {};
  std::shared_lock lk(stateMutex_);
  return *readLocked(offset, buf, false);
}

std::optional<Result<void>> Overlay::tryRead(std::uint64_t offset, std::span<std::uint8_t> buf) {
  if (auto r = checkRange(*this, "read", offset, buf.size()); !r) return r;
  if (buf.empty()) return Result<void>{};
  // Injected faults are consulted on the blocking path only, so a test's fault fires exactly once.
  if (options_.faults) return std::nullopt;
  std::shared_lock lk(stateMutex_, std::try_to_lock);
  if (!lk.owns_lock()) return std::nullopt;
  return readLocked(offset, buf, true);
}

namespace {

// A scratch buffer per thread for the second source of a fragmented read (never value-initialised).
std::span<std::uint8_t> readScratch(std::size_t n) {
  thread_local std::unique_ptr<std::uint8_t[]> buf;
  thread_local std::size_t size = 0;
  if (size < n) {
    buf.reset(new std::uint8_t[n]);
    size = n;
  }
  return {buf.get(), n};
}

// Above this a fragmented read of the second source goes run by run (bounds the scratch buffer).
constexpr std::size_t kMaxScratch = 4u << 20;
// What one pread costs beyond its copy, in bytes copied in the same time (a syscall ~1 us, a copy
// ~8 GB/s): one pread over a span of runs replaces them when the bytes it reads (or copies) in
// excess cost less than the syscalls it saves. Measured: reading every byte of a 1 MiB range from
// both sources to save 85 preads cost more CPU than it saved.
constexpr std::uint64_t kSyscallBytes = 8u << 10;

}  // namespace

std::optional<Result<void>> Overlay::readLocked(std::uint64_t offset, std::span<std::uint8_t> buf, bool nowait) {
  if (closed_.load()) return Error{fmt::format("{}: read refused: closed", describe_), EBADF};
  const std::uint64_t end = offset + buf.size();
  // The runs of same-state chunks that cover the range (habit 10: one I/O per run).
  struct Run {
    std::uint64_t pos, end;
    ChunkState state;
  };
  thread_local std::vector<Run> runs;
  runs.clear();
  std::size_t counts[3] = {};
  std::uint64_t spanFrom[3] = {end, end, end}, spanTo[3] = {}, bytes[3] = {};
  forEachRun(offset, end, [&](std::uint64_t pos, std::uint64_t runEnd, ChunkState state) {
    runs.push_back({pos, runEnd, state});
    const auto si = static_cast<std::size_t>(state);
    ++counts[si];
    bytes[si] += runEnd - pos;
    spanFrom[si] = std::min(spanFrom[si], pos);
    spanTo[si] = runEnd;
    return true;
  });
  auto readFrom = [&](ChunkState s, std::span<std::uint8_t> out, std::uint64_t pos) -> std::optional<Result<void>> {
    const bool base = s == ChunkState::Base;
    const IoOp op = base ? IoOp::BaseRead : IoOp::DataRead;
    if (int e = fault(op)) return Result<void>(injected(op, e, base ? "base read" : "data read"));
    const int fd = base ? base_->fd() : dataFd_.get();
    const std::string& what = base ? base_->path().string() : paths_.data.string();
    if (nowait) return preadNoWait(fd, out, pos, what);
    return preadFull(fd, out, pos, what);
  };
  // A range fragmented into many small runs (an overlay after random writes, read sequentially) is
  // read with one pread per source over the span of its runs instead of one per run, when that pays
  // (kSyscallBytes): the bytes between runs are read too and then overwritten. The source with more
  // runs goes straight into buf; the other, if it pays too, into scratch and is copied from there.
  enum class How : std::uint8_t { PerRun, InBuf, InScratch };
  How how[3] = {How::PerRun, How::PerRun, How::PerRun};
  std::span<std::uint8_t> scratch;
  const auto bi = static_cast<std::size_t>(ChunkState::Base), di = static_cast<std::size_t>(ChunkState::Data);
  const std::size_t firstSrc = counts[di] >= counts[bi] ? di : bi;
  const std::size_t secondSrc = firstSrc == di ? bi : di;
  auto pays = [&](std::size_t si, std::uint64_t excess) { return counts[si] > 1 && excess <= (counts[si] - 1) * kSyscallBytes; };
  if (pays(firstSrc, spanTo[firstSrc] - spanFrom[firstSrc] - bytes[firstSrc])) {
    const auto s = static_cast<ChunkState>(firstSrc);
    auto out = buf.subspan(spanFrom[firstSrc] - offset, spanTo[firstSrc] - spanFrom[firstSrc]);
    auto r = readFrom(s, out, spanFrom[firstSrc]);
    if (!r || !*r) return r;
    how[firstSrc] = How::InBuf;
    const std::uint64_t n2 = spanTo[secondSrc] - spanFrom[secondSrc];
    if (counts[secondSrc] > 1 && n2 <= kMaxScratch && pays(secondSrc, n2)) {  // read into scratch, then copied: n2 in excess
      scratch = readScratch(static_cast<std::size_t>(n2));
      auto r2 = readFrom(static_cast<ChunkState>(secondSrc), scratch, spanFrom[secondSrc]);
      if (!r2 || !*r2) return r2;
      how[secondSrc] = How::InScratch;
    }
  }
  for (const auto& run : runs) {
    auto out = buf.subspan(run.pos - offset, run.end - run.pos);
    const auto si = static_cast<std::size_t>(run.state);
    if (run.state == ChunkState::Zero) {
      std::memset(out.data(), 0, out.size());
    } else if (how[si] == How::InScratch) {
      std::memcpy(out.data(), scratch.data() + (run.pos - spanFrom[si]), out.size());
    } else if (how[si] == How::PerRun) {
      auto r = readFrom(run.state, out, run.pos);
      if (!r || !*r) return r;
    }
  }
  return Result<void>{};
}

Result<void> Overlay::spliceRead(std::uint64_t offset, std::uint64_t length, PipeChain& out) {
  if (auto r = checkRange(*this, "read", offset, length); !r) return r;
  if (length == 0) return {};
  std::shared_lock lk(stateMutex_);
  if (closed_.load()) return Error{fmt::format("{}: read refused: closed", describe_), EBADF};
  // Run by run, as readLocked's per-run path: spliced pages cost no copy, so reading the bytes
  // between runs (its bulk path) would only cost more.
  Result<void> result;
  forEachRun(offset, offset + length, [&](std::uint64_t pos, std::uint64_t runEnd, ChunkState state) {
    const auto n = static_cast<std::size_t>(runEnd - pos);
    if (state == ChunkState::Zero) {
      result = out.appendZeros(n);
    } else {
      const bool base = state == ChunkState::Base;
      const IoOp op = base ? IoOp::BaseRead : IoOp::DataRead;
      if (int e = fault(op)) {
        result = injected(op, e, base ? "base read" : "data read");
      } else {
        result = out.spliceFrom(base ? base_->fd() : dataFd_.get(), pos, n,
                                base ? base_->path().string() : paths_.data.string());
      }
    }
    return static_cast<bool>(result);
  });
  return result;
}

void Overlay::record(std::uint64_t first, std::uint64_t count, ChunkState state) {
  if (pendingOverflow_) return;
  if (!pending_.empty()) {
    auto& b = pending_.back();
    if (b.state == state && b.first + b.count == first) {
      b.count += count;
      return;
    }
  }
  if (pending_.size() >= kMaxPendingRecords) {
    pending_.clear();
    pendingOverflow_ = true;
    return;
  }
  pending_.push_back({0, first, count, state});
}

Result<void> Overlay::fillFromSource(std::uint64_t chunk, std::uint64_t from, std::uint64_t to) {
  const auto n = static_cast<std::size_t>(to - from);
  std::span<const std::uint8_t> src;
  if (live_.get(chunk) == ChunkState::Base) {
    if (int e = fault(IoOp::BaseRead)) return injected(IoOp::BaseRead, e, "base read");
    std::span<std::uint8_t> buf(scratch_.data(), n);
    if (auto r = preadFull(base_->fd(), buf, from, base_->path().string()); !r) return r;
    src = buf;
  } else {
    src = std::span<const std::uint8_t>(zeroBuffer().data(), n);
  }
  if (int e = fault(IoOp::DataWrite)) return injected(IoOp::DataWrite, e, "data write");
  return pwriteFull(dataFd_.get(), src, from, paths_.data.string());
}

Result<void> Overlay::writeLocked(std::uint64_t offset, std::span<const std::uint8_t> data) {
  const std::uint64_t cs = header_.chunkSize;
  const std::uint64_t end = offset + data.size();
  const std::uint64_t first = offset / cs, last = (end - 1) / cs;
  dirty_ = true;
  ++dataGen_;  // in-flight shared-lock writes of these chunks must redo theirs (writeData)
  if (int e = fault(IoOp::DataWrite)) return injected(IoOp::DataWrite, e, "data write");
  if (auto r = pwriteFull(dataFd_.get(), data, offset, paths_.data.string()); !r) return r;
  // Head and tail chunks not yet in the data file: complete them from their current source.
  if (offset > chunkStart(first) && live_.get(first) != ChunkState::Data) {
    if (auto r = fillFromSource(first, chunkStart(first), offset); !r) return r;
  }
  if (end < chunkEnd(last) && live_.get(last) != ChunkState::Data) {
    if (auto r = fillFromSource(last, end, chunkEnd(last)); !r) return r;
  }
  const std::uint64_t count = last - first + 1;
  if (!allData(first, count)) {
    live_.setRange(first, count, ChunkState::Data);
    record(first, count, ChunkState::Data);
  }
  return {};
}

Result<void> Overlay::write(std::uint64_t offset, std::span<const std::uint8_t> data, WriteFlags flags) {
  if (auto r = checkRange(*this, "write", offset, data.size()); !r) return r;
  if (auto r = writable("write"); !r) return r;
  if (!data.empty()) {
    if (auto r = writeData(offset, data); !r) return r;
  }
  if (flags.fua) return flush();
  return {};
}

std::optional<Result<void>> Overlay::tryWrite(std::uint64_t offset, std::span<const std::uint8_t> data,
                                              WriteFlags flags) {
  if (auto r = checkRange(*this, "write", offset, data.size()); !r) return r;
  // Injected faults are consulted on the blocking path only, as for tryRead.
  if (flags.fua || data.empty() || options_.faults) return std::nullopt;
  const std::uint64_t cs = header_.chunkSize;
  const std::uint64_t end = offset + data.size();
  const std::uint64_t first = offset / cs, last = (end - 1) / cs;
  const std::uint64_t count = last - first + 1;
  {
    // A rewrite of chunks already in the data file: the pwrite alone, under the shared lock.
    std::shared_lock lk(stateMutex_, std::try_to_lock);
    if (!lk.owns_lock()) return std::nullopt;
    if (auto r = writable("write"); !r) return r;
    if (allData(first, count)) {
      dirty_.store(true);
      return pwriteFull(dataFd_.get(), data, offset, paths_.data.string());
    }
  }
  // Chunks become Data: the map changes under the exclusive lock, and partial head/tail chunks are
  // completed from their source, which must not be the base (a read of another file).
  std::unique_lock lk(stateMutex_, std::try_to_lock);
  if (!lk.owns_lock()) return std::nullopt;
  if (auto r = writable("write"); !r) return r;
  const bool headFromBase = offset > chunkStart(first) && live_.get(first) == ChunkState::Base;
  const bool tailFromBase = end < chunkEnd(last) && live_.get(last) == ChunkState::Base;
  if (headFromBase || tailFromBase) return std::nullopt;
  return writeLocked(offset, data);
}

// A write that needs no read-modify-write (whole chunks, or partial head/tail chunks already in the
// data file) does its pwrite under the SHARED lock, beside reads and other such writes; only the map
// update, when chunks become Data, takes the lock exclusively (and a rewrite of Data chunks needs no
// update at all). Between the two, an exclusive operation may have changed the data file under
// chunks this write covers: a concurrent write's head/tail fill from the base, or a trim's hole
// punch. Every such operation bumps dataGen_; when it moved, the pwrite is done again under the
// exclusive lock, so the result is that of the two operations in one order or the other, never a mix
// with stale bytes. Durability is unchanged: dirty_ is set before the pwrite, and the map record is
// added only after it, so a flush that takes the record has its data synced first.
Result<void> Overlay::writeData(std::uint64_t offset, std::span<const std::uint8_t> data) {
  const std::uint64_t cs = header_.chunkSize;
  const std::uint64_t end = offset + data.size();
  const std::uint64_t first = offset / cs, last = (end - 1) / cs;
  const std::uint64_t count = last - first + 1;
  bool shared = false;
  std::uint64_t gen = 0;
  {
    std::shared_lock lk(stateMutex_);
    if (auto r = writable("write"); !r) return r;
    const bool headFill = offset > chunkStart(first) && live_.get(first) != ChunkState::Data;
    const bool tailFill = end < chunkEnd(last) && live_.get(last) != ChunkState::Data;
    if (!headFill && !tailFill) {
      shared = true;
      gen = dataGen_;
      const bool wasData = allData(first, count);
      dirty_.store(true);
      if (int e = fault(IoOp::DataWrite)) return injected(IoOp::DataWrite, e, "data write");
      if (auto r = pwriteFull(dataFd_.get(), data, offset, paths_.data.string()); !r) return r;
      if (wasData) return {};  // already Data: the map does not change
    }
  }
  std::unique_lock lk(stateMutex_);
  if (auto r = writable("write"); !r) return r;
  if (!shared || dataGen_ != gen) return writeLocked(offset, data);
  if (!allData(first, count)) {
    live_.setRange(first, count, ChunkState::Data);
    record(first, count, ChunkState::Data);
  }
  return {};
}

Result<void> Overlay::punch(std::uint64_t offset, std::uint64_t length) {
  int err = fault(IoOp::Punch);
  if (err == 0 && ::fallocate(dataFd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                              static_cast<off_t>(length)) != 0) {
    err = errno;
  }
  if (err != 0) {
    // Only space is lost: a Zero chunk never reads the data file.
    PXD_DEBUG("blockstore.overlay.punch_failed", "overlay={} offset={} length={} error={}", log::q(describe_), offset,
              length, log::q(errnoText(err)));
  }
  return {};
}

Result<void> Overlay::zeroLocked(std::uint64_t offset, std::uint64_t length) {
  const std::uint64_t cs = header_.chunkSize;
  const std::uint64_t end = offset + length;
  // Whole chunks [wf, wl) inside the range.
  std::uint64_t wf = offset / cs;
  if (offset != chunkStart(wf)) ++wf;
  std::uint64_t wl = (end - 1) / cs;
  if (end == chunkEnd(wl)) ++wl;
  auto zeroPart = [&](std::uint64_t from, std::uint64_t to) -> Result<void> {
    // [from, to) lies inside one chunk; nothing to do if it already reads as zeros.
    if (from >= to || live_.get(from / cs) == ChunkState::Zero) return {};
    return writeLocked(from, std::span<const std::uint8_t>(zeroBuffer().data(), static_cast<std::size_t>(to - from)));
  };
  if (wf >= wl) {
    // No whole chunk: one partial chunk, or the tail of one and the head of the next.
    const std::uint64_t split = std::min(end, chunkEnd(offset / cs));
    if (auto r = zeroPart(offset, split); !r) return r;
    return zeroPart(split, end);
  }
  if (auto r = zeroPart(offset, chunkStart(wf)); !r) return r;
  if (auto r = zeroPart(chunkStart(wl), end); !r) return r;
  const std::uint64_t count = wl - wf;
  bool anyData = false, allZero = true;
  for (std::uint64_t c = wf; c < wl;) {
    auto run = live_.runLength(c, wl - c);
    auto s = live_.get(c);
    anyData = anyData || s == ChunkState::Data;
    allZero = allZero && s == ChunkState::Zero;
    c += run;
  }
  if (allZero) return {};
  ++dataGen_;  // see writeData: a punched or Zero chunk is no place for an in-flight write to land
  if (anyData) {
    dirty_ = true;
    if (auto r = punch(chunkStart(wf), chunkEnd(wl - 1) - chunkStart(wf)); !r) return r;
  }
  live_.setRange(wf, count, ChunkState::Zero);
  record(wf, count, ChunkState::Zero);
  return {};
}

Result<void> Overlay::writeZeroes(std::uint64_t offset, std::uint64_t length, WriteFlags flags) {
  if (auto r = checkRange(*this, "write-zeroes", offset, length); !r) return r;
  if (auto r = writable("write-zeroes"); !r) return r;
  if (length > 0) {
    std::unique_lock lk(stateMutex_);
    if (auto r = writable("write-zeroes"); !r) return r;
    if (auto r = zeroLocked(offset, length); !r) return r;
  }
  if (flags.fua) return flush();
  return {};
}

Result<void> Overlay::trim(std::uint64_t offset, std::uint64_t length) {
  if (auto r = checkRange(*this, "trim", offset, length); !r) return r;
  if (auto r = writable("trim"); !r) return r;
  if (length == 0) return {};
  std::unique_lock lk(stateMutex_);
  if (auto r = writable("trim"); !r) return r;
  return zeroLocked(offset, length);
}

Result<void> Overlay::flush() {
  if (options_.readOnly) return {};
  if (auto r = writable("flush"); !r) return r;
  std::lock_guard flk(flushMutex_);
  if (auto r = writable("flush"); !r) return r;
  std::vector<MapRecord> records;
  bool dirty;
  {
    std::unique_lock lk(stateMutex_);
    if (pendingOverflow_) {
      records = diffRecords(durable_, live_);
      pendingOverflow_ = false;
    } else {
      records.swap(pending_);
    }
    dirty = dirty_.exchange(false);
  }
  auto restore = [&] {
    std::unique_lock lk(stateMutex_);
    dirty_ = true;
    if (!pendingOverflow_) pending_.insert(pending_.begin(), records.begin(), records.end());
  };
  if (dirty) {
    Result<void> r = [&]() -> Result<void> {
      if (int e = fault(IoOp::DataSync)) return injected(IoOp::DataSync, e, "data sync");
      return syncData(dataFd_.get(), paths_.data.string());
    }();
    if (!r) {
      poison(r.error());
      return r;
    }
  }
  if (records.empty()) return {};

  std::vector<std::uint8_t> buf;
  buf.reserve(records.size() * kMapRecordSize);
  std::uint64_t seq = nextSeq_;
  for (auto& rec : records) {
    rec.seq = seq++;
    auto bytes = encodeMapRecord(rec);
    buf.insert(buf.end(), bytes.begin(), bytes.end());
  }
  Result<void> w = [&]() -> Result<void> {
    if (int e = fault(IoOp::MapWrite)) return injected(IoOp::MapWrite, e, "map journal write");
    return pwriteFull(mapFd_.get(), buf, journalEnd_, paths_.map.string());
  }();
  if (!w) {
    // Cut off whatever part was written so the next append follows the last good record.
    if (::ftruncate(mapFd_.get(), static_cast<off_t>(journalEnd_)) != 0) {
      poison(w.error());
    } else {
      restore();
    }
    return w;
  }
  Result<void> s = [&]() -> Result<void> {
    if (int e = fault(IoOp::MapSync)) return injected(IoOp::MapSync, e, "map sync");
    return syncData(mapFd_.get(), paths_.map.string());
  }();
  if (!s) {
    poison(s.error());
    return s;
  }
  for (const auto& rec : records) durable_.setRange(rec.first, rec.count, rec.state);
  nextSeq_ = seq;
  journalEnd_ += buf.size();

  const std::uint64_t limit =
      options_.compactAfterBytes != 0 ? options_.compactAfterBytes : std::max<std::uint64_t>(1U << 20, header_.snapshotBytes());
  if (journalEnd_ - header_.journalStart() > limit) {
    if (auto r = compactLocked(); !r) {
      PXD_WARN("blockstore.overlay.compact_failed", "overlay={} error={}", log::q(describe_), log::q(r.error().message));
    }
  }
  return {};
}

Result<void> Overlay::compactLocked() {
  if (int e = fault(IoOp::Compact)) return injected(IoOp::Compact, e, "map compaction");
  MapHeader h = header_;
  h.firstSeq = nextSeq_;
  auto fd = writeMapFile(paths_.map, h, durable_);
  if (!fd) return fd.error();
  // The new file is in place under the map's name: from now on appends must go to it.
  mapFd_ = std::move(*fd);
  journalEnd_ = h.journalStart();
  ++compactions_;
  if (auto r = syncDir(paths_.map.parent_path()); !r) {
    poison(r.error());
    return r;
  }
  return {};
}

Result<void> Overlay::close() {
  if (closed_.load()) return {};
  Result<void> result;
  if (!poisoned_.load() && !options_.readOnly) result = flush();
  std::lock_guard flk(flushMutex_);
  std::unique_lock lk(stateMutex_);
  if (closed_.load()) return result;
  if (result && !poisoned_.load() && !options_.readOnly && journalEnd_ > header_.journalStart()) {
    result = compactLocked();
  }
  closed_ = true;
  dataFd_.reset();
  mapFd_.reset();
  return result;
}

Result<std::vector<Extent>> Overlay::extents(std::uint64_t offset, std::uint64_t length) {
  if (auto r = checkRange(*this, "extents", offset, length); !r) return r.error();
  std::vector<Extent> out;
  if (length == 0) return out;
  std::shared_lock lk(stateMutex_);
  if (closed_.load()) return Error{fmt::format("{}: extents refused: closed", describe_), EBADF};
  const std::uint64_t cs = header_.chunkSize;
  const std::uint64_t end = offset + length;
  const std::uint64_t last = (end - 1) / cs;
  std::uint64_t pos = offset, c = offset / cs;
  while (pos < end) {
    auto run = live_.runLength(c, last - c + 1);
    auto runEnd = std::min(end, chunkEnd(c + run - 1));
    out.push_back({pos, runEnd - pos, live_.get(c)});
    pos = runEnd;
    c += run;
  }
  return out;
}

OverlayStats Overlay::stats() {
  OverlayStats s;
  {
    std::shared_lock lk(stateMutex_);
    s.dataChunks = live_.countState(ChunkState::Data);
    s.zeroChunks = live_.countState(ChunkState::Zero);
    s.pendingRecords = pending_.size();
  }
  std::lock_guard flk(flushMutex_);
  s.journalBytes = journalEnd_ - header_.journalStart();
  s.compactions = compactions_;
  return s;
}

}  // namespace pxedust::blockstore
