// Lun: one SCSI logical unit (SBC-4 direct-access block device) over one AsyncBlockDevice.
//
// Design note. The transport (iSCSI today) hands the Lun one SCSI command at a time, already
// fully received, and gets a Response back; the Lun knows SCSI, not iSCSI (no PDUs, no sessions).
//
//   1. Before receiving Data-Out the transport calls plan(cdb, expectedLength): direction, Data-Out
//      bytes to solicit, or an immediate CHECK CONDITION (bad opcode/field, LBA out of range, an
//      expected length the command cannot honour). See cdb.hpp planCommand() and fitTransfer().
//   2. Then it runs `co_await lun.execute(command)` (or executeAsync with a callback).
//
// Completion contract (habit 12):
//  * execute() and every other member are called on the Lun's executor (the event loop) only. All
//    state (unit attentions, reservations, mode parameters, the write gate) is touched only there,
//    so it needs no lock. Block I/O runs on the AsyncBlockDevice's worker pool.
//  * Each execute() produces exactly one Response, on the Lun's executor, never inline in the
//    executeAsync() call. It never throws for anything the peer sent: every bad input becomes a
//    CHECK CONDITION. Many commands may be in flight at once (they complete in any order).
//  * Command::cdb, Command::dataOut and *Command::nexus are borrowed: they must stay valid until the
//    Response is delivered.
//  * The Lun must outlive every command in flight: the transport's shutdown gate waits for them
//    before destroying it (the AsyncBlockDevice keeps the BlockDevice alive on its own).
//
// SCSI semantics, briefly (details at each handler):
//  * Capabilities come from the BlockDevice's answers (habit 9): readOnly -> WP and DATA PROTECT,
//    canTrim -> LBPME/LBPRZ, UNMAP, WRITE SAME UNMAP, VPD B2h; canFua/canFlush -> FUA handling and a
//    changeable WCE; canExtents -> GET LBA STATUS. The VPD pages cannot drift from the device.
//  * A nexus the Lun has not seen gets UNIT ATTENTION 29/00 on its first command (except INQUIRY,
//    REPORT LUNS, REQUEST SENSE). nexusLost() forgets a nexus (and its RESERVE(6)), so a diskless
//    host that reboots and logs in again with the same name and ISID gets 29/00 again.
//  * Persistent reservations (SPC-5 5.14) and RESERVE(6)/RELEASE(6) are kept in memory only
//    (PTPL_C=0): they live as long as this Lun object. Their state machine is a class of its own
//    (reservations.hpp); the Lun keeps the unit attention queues it posts to.
//  * COMPARE AND WRITE is atomic against every other write to this Lun: a gate lets ordinary writes
//    run in parallel and gives COMPARE AND WRITE exclusive access (no writer starvation of it).
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "blockstore/async_device.hpp"
#include "scsi/cdb.hpp"
#include "scsi/mode_pages.hpp"
#include "scsi/nexus.hpp"
#include "scsi/reservations.hpp"
#include "scsi/sense.hpp"

namespace pxedust::scsi {

// SAM-5 8.6: task attributes. Commands are executed as they arrive; ORDERED/HEAD OF QUEUE ordering
// is the transport's business (it may serialise them), the Lun only records the attribute.
enum class TaskAttribute : std::uint8_t { Simple, Ordered, HeadOfQueue, Aca };

struct Command {
  std::span<const std::uint8_t> cdb;
  std::span<const std::uint8_t> dataOut;  // all Data-Out received (at least plan().dataOutBytes)
  std::uint32_t expectedLength = 0;       // Expected Data Transfer Length (either direction)
  TaskAttribute attribute = TaskAttribute::Simple;
  const Nexus* nexus = nullptr;  // required
  // The transport can send data-in from spliced pages (Response::dataPipe): large READs then take
  // no copy through our memory. False when it must see the bytes (a data digest).
  bool spliceOk = false;
};

struct LunIdentity {
  std::string vendor = "PXEDUST";      // T10 vendor id, 8 ASCII characters (space padded)
  std::string product = "pxedust disk";  // 16 ASCII characters
  std::string revision = "0001";       // 4 ASCII characters
  std::string serial;                  // VPD 80h (ASCII, printable)
  // A stable per-host identifier (e.g. hashed from the host name and store): gives the NAA
  // designator in VPD 83h, which initiators use as the disk's WWN across reboots.
  std::uint64_t deviceId = 0;
  // SCSI name strings supplied by the transport (SPC-5 7.7.7.11): the target device name ("iqn...")
  // and the target port name ("iqn...,t,0x0001"); empty to omit.
  std::string targetName;
  std::string targetPortName;
  std::uint8_t protocolIdentifier = 0x5;  // SPC-5 7.6.1: 5 = iSCSI
  std::uint16_t transportVersionDescriptor = 0x0960;  // INQUIRY version descriptor (iSCSI), 0 = none
};

struct LunOptions {
  LunIdentity identity;
  std::vector<std::uint64_t> targetLuns{0};  // what REPORT LUNS lists (this target's LUN numbers)
  Geometry limits;  // the caps (maxTransferBlocks, ...); blockSize and blocks come from the device
};

// FNV-1a: a stable 64-bit id from text (host name, image name), for LunIdentity::deviceId.
std::uint64_t stableDeviceId(std::string_view text);

class Lun {
 public:
  // READs of at least this many bytes go by splice when the transport allows it (Command::spliceOk);
  // below it, a copy through a pooled buffer costs less than a worker hop and the pipe calls.
  static constexpr std::size_t kSpliceMin = 64u << 10;
  Lun(asio::any_io_executor executor, std::shared_ptr<blockstore::AsyncBlockDevice> device, LunOptions options);
  ~Lun();
  Lun(const Lun&) = delete;
  Lun& operator=(const Lun&) = delete;

  // Step 1 (pure, no state): see cdb.hpp planCommand().
  [[nodiscard]] Plan plan(std::span<const std::uint8_t> cdb, std::uint32_t expectedLength) const {
    return planCommand(cdb, geometry_, expectedLength);
  }
  // Step 2.
  asio::awaitable<Response> execute(Command command);
  // The same with a callback, posted to the Lun's executor (never called inline).
  void executeAsync(Command command, std::function<void(Response)> done);

  // I_T nexus loss (connection dropped, session closed or reinstated): forgets the nexus.
  void nexusLost(const Nexus& nexus);
  // LOGICAL UNIT RESET / target reset: RESERVE(6) released; every nexus gets UNIT ATTENTION 29/03.
  // (Persistent reservations survive, SPC-5 5.14.9.) Commands in flight still complete.
  void reset();

  [[nodiscard]] const Geometry& geometry() const { return geometry_; }
  [[nodiscard]] const blockstore::Capabilities& capabilities() const { return caps_; }
  [[nodiscard]] const ModeState& modeState() const { return mode_; }

 private:
  struct NexusState {
    std::deque<Asc> unitAttentions;
  };

  // Dispatch and the handlers; each answers before residual handling.
  asio::awaitable<Response> dispatch(const Cdb& cdb, const Command& cmd, const std::string& nexusKey);
  std::optional<Response> checkUnitAttention(std::uint8_t opcode, const std::string& nexusKey);
  std::optional<Response> writeAllowed() const;

  Response inquiry(const Cdb& cdb) const;
  Response readCapacity10() const;
  Response readCapacity16() const;
  Response requestSense(const Cdb& cdb, const std::string& nexusKey);
  Response reportLuns(const Cdb& cdb) const;
  Response modeSense(const Cdb& cdb) const;
  Response modeSelect(const Cdb& cdb, std::span<const std::uint8_t> data, const std::string& nexusKey);

  asio::awaitable<Response> read(const Cdb& cdb, bool spliceOk);
  asio::awaitable<Response> write(const Cdb& cdb, std::span<const std::uint8_t> data);
  asio::awaitable<Response> verify(const Cdb& cdb, std::span<const std::uint8_t> data);
  asio::awaitable<Response> writeSame(const Cdb& cdb, std::span<const std::uint8_t> data);
  asio::awaitable<Response> unmap(const Cdb& cdb, std::span<const std::uint8_t> data);
  asio::awaitable<Response> orWrite(const Cdb& cdb, std::span<const std::uint8_t> data);
  Response readDefectData(const Cdb& cdb) const;
  asio::awaitable<Response> compareAndWrite(const Cdb& cdb, std::span<const std::uint8_t> data);
  asio::awaitable<Response> synchronizeCache();
  asio::awaitable<Response> getLbaStatus(const Cdb& cdb);

  // Block I/O with the FUA/WCE policy applied; errors mapped to sense data.
  asio::awaitable<std::optional<Response>> writeBlocks(std::uint64_t offset, std::span<const std::uint8_t> data,
                                                       bool fua);
  asio::awaitable<std::optional<Response>> flushIfNeeded(bool fua);

  // The write gate (COMPARE AND WRITE atomicity).
  asio::awaitable<void> acquireWrite();
  void releaseWrite();
  asio::awaitable<void> acquireExclusive();
  void releaseExclusive();
  asio::awaitable<void> waitGate();
  void wakeGate();

  void unitAttentionOthers(const std::string& except, Asc code);
  void unitAttention(const std::string& nexusKey, Asc code);
  // The device's write granularity in logical blocks (VPD B0h's optimal granularities).
  [[nodiscard]] std::uint32_t granularityBlocks() const {
    return std::max<std::uint32_t>(1, caps_.writeGranularity / geometry_.blockSize);
  }

  asio::any_io_executor executor_;
  std::shared_ptr<blockstore::AsyncBlockDevice> device_;
  LunOptions options_;
  blockstore::Capabilities caps_;
  Geometry geometry_;
  ModeState mode_;
  ModeState defaultMode_;

  std::map<std::string, NexusState> nexuses_;
  Reservations reservations_;  // PERSISTENT RESERVE IN/OUT, RESERVE(6)/RELEASE(6), conflict checks

  int writers_ = 0;
  bool exclusive_ = false;
  int exclusiveWaiting_ = 0;
  std::list<asio::steady_timer*> gateWaiters_;
};

}  // namespace pxedust::scsi
