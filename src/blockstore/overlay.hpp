// Overlay: one host's copy-on-write view of a read-only base image.
//
// Design note (the shape of nbdkit's cow filter, made persistent and crash-safe):
//  * Two files per host. <host>.data is a sparse file exactly as large as the virtual disk, and a
//    chunk's bytes live at the SAME offset as on the virtual disk. So a region written in random
//    order is still laid out in disk order (the filesystem's delayed allocation keeps it contiguous),
//    and a run of present chunks is read with one pread. <host>.map (map_file.hpp) says, per chunk,
//    whether it reads from the base, from the data file, or as zeros.
//  * Writes go straight to the data file. A partially covered chunk that is not yet in the data file
//    gets the uncovered head/tail bytes copied from the base (or zeros) next to it: read-modify-write
//    of the head and tail chunks only. The in-memory map changes after the data writes succeed.
//  * Durability protocol (flush, FUA): take the pending map records; fdatasync the data file; append
//    the records to the map journal in one write; fdatasync the map. Data is durable before any
//    record that points at it, so after kill -9 or power loss every chunk the map calls present holds
//    what was written at the last acknowledged flush (or later). A journal longer than
//    max(1 MiB, snapshot) is compacted into a fresh map file (rename + directory fsync).
//    The compacted snapshot is the DURABLE map (what the journal says), never the in-memory one,
//    which may point at data not yet synced.
//  * Trim and write-zeroes turn whole chunks into Zero (and punch the data file's hole to free the
//    space); partial chunks at either end get zeros written. The whole range reads as zeros.
//  * A failed fdatasync poisons the overlay (later writes and flushes fail until it is reopened): after
//    a failed fsync Linux may have dropped the dirty pages, so nothing written since can be vouched for.
//  * Concurrency: a shared_mutex guards the in-memory map and data file writes. Reads share it, and
//    so do the pwrites of writes that need no read-modify-write (whole chunks, or head/tail chunks
//    already in the data file); changes of the map and read-modify-write are exclusive, so RMW of a
//    shared chunk cannot interleave. A shared-lock write that finds, when it takes the lock to update
//    the map, that an exclusive operation changed the data file meanwhile (dataGen_) writes again
//    (Overlay::writeData). A second mutex serialises flushes and owns the map file. Different
//    overlays share nothing but the read-only base fd.
//  * An exclusive flock on the data file marks the overlay as open, across processes: reset and delete
//    of an overlay in use are refused.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "blockstore/chunk_map.hpp"
#include "blockstore/map_file.hpp"
#include "blockstore/raw_image.hpp"

namespace pxedust::blockstore {

// Default chunk size, chosen by measurement (bench/blockstore, see the report in its README):
// 4 KiB chunks never read-modify-write a 4 KiB guest write and keep space amplification at 1x;
// the map costs 2 bits per 4 KiB (64 KiB of RAM per GiB per copy).
inline constexpr std::uint32_t kDefaultChunkSize = 4096;

// Fault-injection seam for tests: consulted before each file operation; a non-zero return is used as
// the errno of that operation, which is then not performed.
enum class IoOp { DataWrite, DataRead, BaseRead, DataSync, MapWrite, MapSync, Compact, Punch };
class FaultInjector {
 public:
  virtual ~FaultInjector() = default;
  virtual int check(IoOp op) = 0;
};

struct OverlayPaths {
  std::filesystem::path map;
  std::filesystem::path data;
};

struct OverlayOptions {
  bool readOnly = false;
  // Journal bytes after which a flush compacts the map; 0 = max(1 MiB, snapshot size).
  std::uint64_t compactAfterBytes = 0;
  std::shared_ptr<FaultInjector> faults;
};

struct OverlayStats {
  std::uint64_t dataChunks = 0;
  std::uint64_t zeroChunks = 0;
  std::uint64_t journalBytes = 0;
  std::uint64_t pendingRecords = 0;
  std::uint64_t compactions = 0;
};

class Overlay final : public BlockDevice {
 public:
  // Creates both files for a new overlay over `base` (refuses if the map exists). The caller holds
  // the overlay's lock (Store does).
  static Result<void> create(const OverlayPaths& paths, const BaseIdentity& base, std::uint32_t chunkSize);
  // Atomically replaces an existing overlay with an empty one over `base` (possibly a new version).
  static Result<void> reset(const OverlayPaths& paths, const BaseIdentity& base, std::uint32_t chunkSize);
  // Opens an overlay; refuses if its recorded base identity differs from base->identity().
  static Result<std::shared_ptr<Overlay>> open(const OverlayPaths& paths, std::shared_ptr<RawImage> base,
                                               OverlayOptions options = {});
  // Takes the cross-process overlay lock (an exclusive flock on the data file) without opening.
  static Result<UniqueFd> lock(const OverlayPaths& paths, bool create);

  ~Overlay() override;

  [[nodiscard]] std::uint64_t size() const override { return header_.virtualSize; }
  [[nodiscard]] std::uint32_t logicalBlockSize() const override { return 512; }
  [[nodiscard]] Capabilities capabilities() const override;
  [[nodiscard]] std::string describe() const override { return describe_; }

  Result<void> read(std::uint64_t offset, std::span<std::uint8_t> buf) override;
  // Under a shared lock only tried (never waited for), page-cache hits only (RWF_NOWAIT).
  std::optional<Result<void>> tryRead(std::uint64_t offset, std::span<std::uint8_t> buf) override;
  [[nodiscard]] bool canSpliceRead() const override { return true; }
  Result<void> spliceRead(std::uint64_t offset, std::uint64_t length, PipeChain& out) override;
  Result<void> write(std::uint64_t offset, std::span<const std::uint8_t> data, WriteFlags flags = {}) override;
  // Locks only tried; never FUA, never a read-modify-write from the base (see BlockDevice).
  std::optional<Result<void>> tryWrite(std::uint64_t offset, std::span<const std::uint8_t> data,
                                       WriteFlags flags) override;
  Result<void> flush() override;
  Result<void> trim(std::uint64_t offset, std::uint64_t length) override;
  Result<void> writeZeroes(std::uint64_t offset, std::uint64_t length, WriteFlags flags = {}) override;
  Result<std::vector<Extent>> extents(std::uint64_t offset, std::uint64_t length) override;

  // Flushes, compacts and closes the files (releasing the overlay's lock); later calls fail with
  // EBADF. The destructor does the same, logging instead of returning errors.
  Result<void> close();

  [[nodiscard]] std::uint32_t chunkSize() const { return header_.chunkSize; }
  [[nodiscard]] const BaseIdentity& baseIdentity() const { return header_.base; }
  [[nodiscard]] OverlayStats stats();

 private:
  Overlay(OverlayPaths paths, std::shared_ptr<RawImage> base, OverlayOptions options, MapHeader header);

  int fault(IoOp op) const { return options_.faults ? options_.faults->check(op) : 0; }
  Error injected(IoOp op, int err, std::string_view what) const;
  // Under stateMutex_ (shared at least); nowait: nullopt when a file read would block.
  std::optional<Result<void>> readLocked(std::uint64_t offset, std::span<std::uint8_t> buf, bool nowait);
  Result<void> writeData(std::uint64_t offset, std::span<const std::uint8_t> data);
  Result<void> writeLocked(std::uint64_t offset, std::span<const std::uint8_t> data);
  Result<void> zeroLocked(std::uint64_t offset, std::uint64_t length);
  Result<void> fillFromSource(std::uint64_t chunk, std::uint64_t from, std::uint64_t to);
  Result<void> punch(std::uint64_t offset, std::uint64_t length);
  void record(std::uint64_t first, std::uint64_t count, ChunkState state);
  Result<void> compactLocked();
  void poison(const Error& e);
  Result<void> writable(std::string_view op) const;
  std::uint64_t chunkStart(std::uint64_t c) const { return c * header_.chunkSize; }
  // Whether chunks [first, first + count) are all in the data file. Under stateMutex_.
  bool allData(std::uint64_t first, std::uint64_t count) const {
    return live_.get(first) == ChunkState::Data && live_.runLength(first, count) >= count;
  }
  // Calls f(pos, runEnd, state) for each run of same-state chunks covering [offset, end), in order,
  // until f returns false (habit 10: one I/O per run). Under stateMutex_.
  template <typename F>
  void forEachRun(std::uint64_t offset, std::uint64_t end, F&& f) const {
    const std::uint64_t last = (end - 1) / header_.chunkSize;
    for (std::uint64_t pos = offset, c = offset / header_.chunkSize; pos < end;) {
      const auto state = live_.get(c);
      const auto run = live_.runLength(c, last - c + 1);
      const std::uint64_t runEnd = std::min(end, chunkEnd(c + run - 1));
      if (!f(pos, runEnd, state)) return;
      pos = runEnd;
      c += run;
    }
  }
  std::uint64_t chunkEnd(std::uint64_t c) const { return std::min(header_.virtualSize, (c + 1) * header_.chunkSize); }

  OverlayPaths paths_;
  std::shared_ptr<RawImage> base_;
  OverlayOptions options_;
  MapHeader header_;
  std::string describe_;
  UniqueFd dataFd_;  // also holds the overlay's flock
  std::vector<std::uint8_t> scratch_;  // one chunk, for head/tail fills; under stateMutex_ (exclusive)

  std::shared_mutex stateMutex_;  // live_, pending_, data file contents
  ChunkMap live_;
  std::vector<MapRecord> pending_;
  bool pendingOverflow_ = false;  // pending_ was dropped for its size: flush diffs live_ against durable_
  std::atomic<bool> dirty_{false};  // data written since the last flush began (set under either lock)
  std::uint64_t dataGen_ = 0;  // bumped by every exclusive change of data file bytes (see writeData)

  std::mutex flushMutex_;  // everything below
  UniqueFd mapFd_;
  ChunkMap durable_;
  std::uint64_t nextSeq_ = 1;
  std::uint64_t journalEnd_ = 0;
  std::uint64_t compactions_ = 0;
  std::atomic<bool> poisoned_{false};
  std::string poisonReason_;
  std::atomic<bool> closed_{false};  // set under both mutexes; the fds are closed with it
};

}  // namespace pxedust::blockstore
