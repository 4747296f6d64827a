// Lun: SBC-4/SPC-5 command emulation over an AsyncBlockDevice (see lun.hpp for the design and the
// completion contract).
#include "scsi/lun.hpp"

#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "blockstore/buffer_pool.hpp"
#include "blockstore/pipe_chain.hpp"
#include "common/checked.hpp"
#include "common/log.hpp"

// GCC 12 reports a false -Wmismatched-new-delete on asio's coroutine frame allocator once a
// coroutine grows past its inlining budget (asio's awaitable_frame_base pairs its own operator new
// and delete; GCC bug 109224 family). Only that warning, only here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace pxedust::scsi {
namespace {

using asio::use_awaitable;

// A blockstore error as sense data (SBC-4 4.18 / SPC-5 4.4).
SenseData senseFor(const Error& e, bool writing) {
  switch (e.code) {
    case EROFS:
      return writeProtected();
    case ERANGE:
      return lbaOutOfRange();
    case ENOSPC:
      // SBC-4 4.7.3.7: thin provisioning out of space.
      return writeProtected(Asc{0x27, 0x07});
    default:
      return mediumError(writing ? asc::kWriteError : asc::kUnrecoveredReadError);
  }
}

void padCopy(std::uint8_t* dst, std::string_view s, std::size_t n) {
  std::memset(dst, ' ', n);
  std::memcpy(dst, s.data(), std::min(n, s.size()));
}

// One identification descriptor (SPC-5 7.7.7.1).
void appendDesignator(std::vector<std::uint8_t>& out, std::uint8_t protocolAndCodeSet, std::uint8_t pivAssocType,
                      std::span<const std::uint8_t> id) {
  out.push_back(protocolAndCodeSet);
  out.push_back(pivAssocType);
  out.push_back(0);
  out.push_back(static_cast<std::uint8_t>(id.size()));
  out.insert(out.end(), id.begin(), id.end());
}

// SCSI name string designator (type 8, UTF-8): NUL-terminated, padded to a multiple of 4.
void appendNameDesignator(std::vector<std::uint8_t>& out, std::uint8_t protocol, std::uint8_t association,
                          std::string_view name) {
  std::vector<std::uint8_t> id(name.begin(), name.end());
  id.push_back(0);
  while (id.size() % 4) id.push_back(0);
  if (id.size() > 252) return;  // cannot be represented; the other designators still identify us
  appendDesignator(out, static_cast<std::uint8_t>((protocol << 4) | 0x03), static_cast<std::uint8_t>(0x80 | (association << 4) | 0x08), id);
}

Response dataResponse(std::vector<std::uint8_t> data, std::uint32_t allocationLength) {
  Response r;
  if (data.size() > allocationLength) data.resize(allocationLength);
  r.dataIn = std::move(data);
  return r;
}

bool allZero(std::span<const std::uint8_t> d) {
  return std::all_of(d.begin(), d.end(), [](std::uint8_t b) { return b == 0; });
}

// The offset of the first differing byte, or nullopt.
std::optional<std::uint64_t> firstDifference(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  auto m = std::mismatch(a.begin(), a.end(), b.begin());
  if (m.first == a.end()) return std::nullopt;
  return static_cast<std::uint64_t>(m.first - a.begin());
}

}  // namespace

std::string Nexus::key() const { return initiatorName + ",i,0x" + isid; }

std::uint64_t stableDeviceId(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : text) {
    h ^= static_cast<std::uint8_t>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

Lun::Lun(asio::any_io_executor executor, std::shared_ptr<blockstore::AsyncBlockDevice> device, LunOptions options)
    : executor_(std::move(executor)),
      device_(std::move(device)),
      options_(std::move(options)),
      reservations_([this](const std::string& nexusKey, Asc code) { unitAttention(nexusKey, code); }) {
  auto& dev = device_->device();
  caps_ = dev.capabilities();
  geometry_ = options_.limits;
  geometry_.blockSize = dev.logicalBlockSize();
  geometry_.blocks = dev.size() / geometry_.blockSize;
  // Cap the transfer at 32 MiB whatever the block size: half a connection's task budget, so one
  // command never holds it all. Initiators stay below MAXIMUM TRANSFER LENGTH (Linux's sd by far);
  // libiscsi's conformance suite does not look at it, and writes and reads 65,536 blocks in one
  // command (WriteSame16.Unmap, on a disk of 32 MiB or more).
  geometry_.maxTransferBlocks = std::min<std::uint32_t>(geometry_.maxTransferBlocks, (32u << 20) / geometry_.blockSize);
  if (!caps_.canTrim) geometry_.maxUnmapBlocks = 0;
  // WCE=1 is honest only when the device can flush; otherwise every write is durable already.
  defaultMode_.wce = caps_.canFlush;
  mode_ = defaultMode_;
}

Lun::~Lun() = default;

void Lun::executeAsync(Command command, std::function<void(Response)> done) {
  asio::co_spawn(executor_, execute(command), [done = std::move(done)](std::exception_ptr e, Response r) {
    if (e) {
      // Only std::bad_alloc can get here (nothing in execute() throws on peer input).
      r = Response::check(SenseData{SenseKey::HardwareError, Asc{0x44, 0x00}, {}, {}});
    }
    done(std::move(r));
  });
}

asio::awaitable<Response> Lun::execute(Command cmd) {
  const std::string nexusKey = cmd.nexus ? cmd.nexus->key() : std::string();
  const std::uint8_t opcode = cmd.cdb.empty() ? 0 : cmd.cdb[0];
  if (auto ua = checkUnitAttention(opcode, nexusKey)) {
    applyResidual(*ua, 0, cmd.expectedLength);
    co_return *ua;
  }
  auto parsed = parseCdb(cmd.cdb, geometry_);
  if (!parsed) {
    Response r = Response::check(parsed.sense);
    applyResidual(r, 0, cmd.expectedLength);
    co_return r;
  }
  // The transport follows plan(), which applies the same fitTransfer(): a refused length, or less
  // Data-Out than the command consumes, is answered without touching the medium.
  const Transfer fit = fitTransfer(*parsed, geometry_, cmd.expectedLength);
  if (fit.refused || cmd.dataOut.size() < fit.dataOutBytes) {
    Response r = Response::check(fit.refused ? *fit.refused : illegalRequest(asc::kInvalidFieldInInformationUnit));
    applyResidual(r, parsed->transferBytes, cmd.expectedLength);
    co_return r;
  }
  // The command as executed: a medium write cut to the whole blocks of the expected length.
  Cdb cdb = *parsed;
  cdb.blocks = fit.blocks;
  if (cdb.direction == Direction::Out) cdb.transferBytes = fit.dataOutBytes;
  if (reservations_.conflict(cdb, nexusKey)) {
    Response r = Response::conflict();
    applyResidual(r, 0, cmd.expectedLength);
    co_return r;
  }
  Response r = co_await dispatch(cdb, cmd, nexusKey);
  // Residuals against the command's own transfer length (SPDTL), not the cut one: a write cut to the
  // expected length reports the rest as overflow.
  std::uint64_t produced = 0;
  if (r.isGood()) {
    produced = parsed->direction == Direction::In && cdb.info->kind != OpKind::Read ? r.dataIn.size()
                                                                                     : parsed->transferBytes;
  } else {
    r.dataIn.clear();
    r.dataPipe.reset();
    r.dataPipeLength = 0;
    produced = parsed->direction == Direction::Out ? parsed->transferBytes : 0;
  }
  applyResidual(r, produced, cmd.expectedLength);
  co_return r;
}

std::optional<Response> Lun::checkUnitAttention(std::uint8_t opcode, const std::string& nexusKey) {
  auto [it, fresh] = nexuses_.try_emplace(nexusKey);
  // SAM-5 5.14 / SPC-5 5.14: a new I_T nexus starts with POWER ON, RESET, OR BUS DEVICE RESET.
  if (fresh) it->second.unitAttentions.push_back(asc::kPowerOnResetOccurred);
  auto& q = it->second.unitAttentions;
  // INQUIRY and REPORT LUNS never report (or clear) a unit attention; REQUEST SENSE returns it as
  // its parameter data (requestSense()).
  if (q.empty() || opcode == 0x12 || opcode == 0xA0 || opcode == 0x03) return std::nullopt;
  Asc code = q.front();
  q.pop_front();
  return Response::check(scsi::unitAttention(code));
}

asio::awaitable<Response> Lun::dispatch(const Cdb& cdb, const Command& cmd, const std::string& nexusKey) {
  const auto data = cmd.dataOut.first(std::min<std::size_t>(cmd.dataOut.size(), cdb.transferBytes));
  switch (cdb.info->kind) {
    case OpKind::TestUnitReady:
    case OpKind::StartStopUnit:  // not removable, never stopped: accepted and ignored (SBC-4 5.25)
    case OpKind::PreventAllow:   // RMB=0: nothing to lock (SBC-4 5.15)
      co_return Response::good();
    case OpKind::RequestSense:
      co_return requestSense(cdb, nexusKey);
    case OpKind::Inquiry:
      co_return inquiry(cdb);
    case OpKind::ModeSense:
      co_return modeSense(cdb);
    case OpKind::ModeSelect:
      co_return modeSelect(cdb, data, nexusKey);
    case OpKind::Reserve6:
      co_return reservations_.reserve6(nexusKey);
    case OpKind::Release6:
      co_return reservations_.release6(nexusKey);
    case OpKind::ReadCapacity10:
      co_return readCapacity10();
    case OpKind::ReadCapacity16:
      co_return dataResponse(readCapacity16().dataIn, cdb.allocationLength);
    case OpKind::ReportLuns:
      co_return reportLuns(cdb);
    case OpKind::ReportSupportedOpcodes: {
      auto d = reportSupportedOpcodes(cdb);
      if (!d) co_return Response::check(d.sense);
      co_return dataResponse(std::move(*d), cdb.allocationLength);
    }
    case OpKind::PersistentReserveIn:
      co_return reservations_.persistentReserveIn(cdb, options_.identity.protocolIdentifier);
    case OpKind::PersistentReserveOut:
      co_return reservations_.persistentReserveOut(cdb, data, cmd.nexus ? *cmd.nexus : Nexus{});
    case OpKind::Read:
      co_return co_await read(cdb, cmd.spliceOk);
    case OpKind::Write:
    case OpKind::WriteAndVerify:
      co_return co_await write(cdb, data);
    case OpKind::Verify:
      co_return co_await verify(cdb, data);
    case OpKind::WriteSame:
      co_return co_await writeSame(cdb, data);
    case OpKind::Unmap:
      co_return co_await unmap(cdb, data);
    case OpKind::CompareAndWrite:
      co_return co_await compareAndWrite(cdb, data);
    case OpKind::SynchronizeCache:
      co_return co_await synchronizeCache();
    case OpKind::GetLbaStatus:
      co_return co_await getLbaStatus(cdb);
    case OpKind::PreFetch:
      // SBC-4 5.9: GOOD means "not all of the range fits the cache"; nothing to do ahead of time.
      co_return Response::good();
    case OpKind::OrWrite:
      co_return co_await orWrite(cdb, data);
    case OpKind::ReadDefectData:
      co_return readDefectData(cdb);
  }
  co_return Response::check(invalidOpcode());
}

// ---- Unit attentions ------------------------------------------------------------------------

void Lun::unitAttention(const std::string& nexusKey, Asc code) {
  auto it = nexuses_.find(nexusKey);
  if (it != nexuses_.end()) it->second.unitAttentions.push_back(code);
}

void Lun::unitAttentionOthers(const std::string& except, Asc code) {
  for (auto& [key, state] : nexuses_) {
    if (key != except) state.unitAttentions.push_back(code);
  }
}

// ---- Nexus events -----------------------------------------------------------------------------

void Lun::nexusLost(const Nexus& nexus) {
  const std::string key = nexus.key();
  nexuses_.erase(key);
  reservations_.nexusLost(key);
}

void Lun::reset() {
  reservations_.reset();
  for (auto& [key, state] : nexuses_) state.unitAttentions.push_back(asc::kBusDeviceResetOccurred);
}

// ---- SPC commands ---------------------------------------------------------------------------

Response Lun::requestSense(const Cdb& cdb, const std::string& nexusKey) {
  // SPC-5 6.39: a pending unit attention is returned (and cleared) as the parameter data.
  SenseData s;
  auto it = nexuses_.find(nexusKey);
  if (it != nexuses_.end() && !it->second.unitAttentions.empty()) {
    s = scsi::unitAttention(it->second.unitAttentions.front());
    it->second.unitAttentions.pop_front();
  }
  return dataResponse(s.fixed(), cdb.allocationLength);
}

Response Lun::inquiry(const Cdb& cdb) const {
  const auto& id = options_.identity;
  const bool evpd = cdb.bytes[1] & 0x01;
  std::vector<std::uint8_t> out;
  if (!evpd) {
    // SPC-5 6.7.2: standard INQUIRY data, 96 bytes.
    out.assign(96, 0);
    out[0] = 0x00;   // peripheral qualifier 000b, direct access block device
    out[1] = 0x00;   // RMB=0
    out[2] = 0x06;   // VERSION: SPC-4
    out[3] = 0x12;   // HISUP=1, RESPONSE DATA FORMAT 2
    out[4] = static_cast<std::uint8_t>(out.size() - 5);
    out[5] = 0x00;   // no protection information, no third-party copy, TPGS=00b
    out[7] = 0x02;   // CMDQUE
    padCopy(out.data() + 8, id.vendor, 8);
    padCopy(out.data() + 16, id.product, 16);
    padCopy(out.data() + 32, id.revision, 4);
    // Version descriptors (SPC-5 6.7.2 table 149): SAM-5, SPC-4, SBC-3, the transport.
    putBe16(out.data() + 58, 0x00A0);
    putBe16(out.data() + 60, 0x0460);
    putBe16(out.data() + 62, 0x04C0);
    if (id.transportVersionDescriptor) putBe16(out.data() + 64, id.transportVersionDescriptor);
    return dataResponse(std::move(out), cdb.allocationLength);
  }
  const std::uint8_t page = cdb.bytes[2];
  out.assign(4, 0);
  out[1] = page;
  switch (page) {
    case 0x00:  // Supported VPD pages, ascending (SPC-5 7.7.16)
      for (std::uint8_t p : {0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2}) out.push_back(p);
      break;
    case 0x80: {  // Unit serial number (7.7.18)
      std::string s = id.serial.empty() ? std::string(" ") : id.serial;
      if (s.size() > 252) s.resize(252);
      out.insert(out.end(), s.begin(), s.end());
      break;
    }
    case 0x83: {  // Device identification (7.7.6)
      // NAA 3h (locally assigned, 60 bits) from the stable per-host id: the disk's WWN.
      std::uint8_t naa[8];
      putBe64(naa, (std::uint64_t{3} << 60) | (id.deviceId & 0x0FFFFFFFFFFFFFFFULL));
      appendDesignator(out, 0x01, 0x03, naa);  // binary, LU, NAA
      // T10 vendor ID based: vendor + serial.
      std::string t10text = id.vendor.substr(0, 8);
      t10text.resize(8, ' ');
      t10text += id.serial.substr(0, 244);
      std::vector<std::uint8_t> t10(t10text.begin(), t10text.end());
      appendDesignator(out, 0x02, 0x01, t10);  // ASCII, LU, T10 vendor ID
      // Port designators from the transport: relative target port (type 4) and the names.
      std::uint8_t rtp[4] = {0, 0, 0, 1};
      appendDesignator(out, static_cast<std::uint8_t>((id.protocolIdentifier << 4) | 0x01), 0x80 | 0x10 | 0x04, rtp);
      if (!id.targetPortName.empty()) appendNameDesignator(out, id.protocolIdentifier, 1, id.targetPortName);
      if (!id.targetName.empty()) appendNameDesignator(out, id.protocolIdentifier, 2, id.targetName);
      break;
    }
    case 0xB0: {  // Block limits (SBC-4 6.6.4)
      out.resize(64, 0);
      out[4] = 0x00;  // WSNZ=0: WRITE SAME with 0 blocks writes to the end of the medium
      out[5] = geometry_.maxCompareBlocks;
      putBe16(out.data() + 6, static_cast<std::uint16_t>(std::min<std::uint32_t>(granularityBlocks(), 0xFFFF)));
      putBe32(out.data() + 8, geometry_.maxTransferBlocks);
      putBe32(out.data() + 12, std::min<std::uint32_t>(geometry_.maxTransferBlocks, (1u << 20) / geometry_.blockSize));
      if (caps_.canTrim && !caps_.readOnly) {
        putBe32(out.data() + 20, geometry_.maxUnmapBlocks);
        putBe32(out.data() + 24, geometry_.maxUnmapDescriptors);
        putBe32(out.data() + 28, granularityBlocks());  // OPTIMAL UNMAP GRANULARITY
      }
      putBe64(out.data() + 36, geometry_.maxWriteSameBlocks);
      break;
    }
    case 0xB1: {  // Block device characteristics (SBC-4 6.6.2)
      out.resize(64, 0);
      putBe16(out.data() + 4, 0x0001);  // MEDIUM ROTATION RATE: non-rotating medium
      break;
    }
    case 0xB2: {  // Logical block provisioning (SBC-4 6.6.6)
      out.resize(8, 0);
      if (caps_.canTrim && !caps_.readOnly) {
        // LBPU, LBPWS, LBPWS10; LBPRZ=001b: unmapped blocks read as zeros (Capabilities::canTrim).
        out[5] = 0x80 | 0x40 | 0x20 | 0x04;
        out[6] = 0x02;  // PROVISIONING TYPE: thin
      }
      break;
    }
    default:
      return Response::check(invalidFieldInCdb(2));
  }
  putBe16(out.data() + 2, static_cast<std::uint16_t>(out.size() - 4));
  return dataResponse(std::move(out), cdb.allocationLength);
}

Response Lun::readCapacity10() const {
  // SBC-4 5.20: FFFFFFFFh tells the initiator to use READ CAPACITY(16).
  std::vector<std::uint8_t> out(8, 0);
  const std::uint64_t last = geometry_.blocks ? geometry_.blocks - 1 : 0;
  putBe32(out.data(), last > 0xFFFFFFFEu ? 0xFFFFFFFFu : static_cast<std::uint32_t>(last));
  putBe32(out.data() + 4, geometry_.blockSize);
  return dataResponse(std::move(out), 8);
}

Response Lun::readCapacity16() const {
  // SBC-4 5.21.2: 32 bytes; LBPME and LBPRZ from the device's trim capability. LOGICAL BLOCKS PER
  // PHYSICAL BLOCK EXPONENT 0: the device's write granularity (an overlay chunk) goes to VPD B0h's
  // optimal granularities instead, which is what Linux aligns to (io_min, discard granularity).
  // Reporting it here as well (exponent 3 for 4 KiB) makes libiscsi's GetLBAStatus.UnmapSingle ask
  // for LBA 9 and expect a descriptor starting at LBA 16, which no correct answer gives.
  std::vector<std::uint8_t> out(32, 0);
  putBe64(out.data(), geometry_.blocks ? geometry_.blocks - 1 : 0);
  putBe32(out.data() + 8, geometry_.blockSize);
  if (caps_.canTrim && !caps_.readOnly) out[14] = 0x80 | 0x40;
  return dataResponse(std::move(out), 32);
}

Response Lun::reportLuns(const Cdb& cdb) const {
  std::vector<std::uint8_t> out(8, 0);
  // SELECT REPORT 01h asks for well-known LUNs only, of which we have none.
  if (cdb.bytes[2] != 0x01) {
    for (std::uint64_t lun : options_.targetLuns) {
      std::uint8_t e[8] = {};
      // SAM-5 4.7.7: peripheral device addressing below 256, flat space addressing above.
      if (lun < 256) {
        e[1] = static_cast<std::uint8_t>(lun);
      } else {
        e[0] = static_cast<std::uint8_t>(0x40 | ((lun >> 8) & 0x3F));
        e[1] = static_cast<std::uint8_t>(lun);
      }
      out.insert(out.end(), e, e + 8);
    }
  }
  putBe32(out.data(), static_cast<std::uint32_t>(out.size() - 8));
  return dataResponse(std::move(out), cdb.allocationLength);
}

Response Lun::modeSense(const Cdb& cdb) const {
  ModeLimits l{caps_.readOnly, caps_.canFlush, geometry_.blockSize, geometry_.blocks};
  auto d = buildModeSense(cdb, mode_, defaultMode_, l);
  if (!d) return Response::check(d.sense);
  return dataResponse(std::move(*d), cdb.allocationLength);
}

Response Lun::modeSelect(const Cdb& cdb, std::span<const std::uint8_t> data, const std::string& nexusKey) {
  ModeLimits l{caps_.readOnly, caps_.canFlush, geometry_.blockSize, geometry_.blocks};
  auto next = applyModeSelect(cdb, data, mode_, l);
  if (!next) return Response::check(next.sense);
  if (*next != mode_) {
    mode_ = *next;
    // SPC-5 5.14 / 6.11: the other nexuses learn that the mode parameters changed.
    unitAttentionOthers(nexusKey, asc::kModeParametersChanged);
  }
  return Response::good();
}

// ---- SBC commands ---------------------------------------------------------------------------

std::optional<Response> Lun::writeAllowed() const {
  if (caps_.readOnly) return Response::check(writeProtected());
  if (mode_.swp) return Response::check(writeProtected(asc::kSoftwareWriteProtected));
  return std::nullopt;
}

asio::awaitable<Response> Lun::read(const Cdb& cdb, bool spliceOk) {
  Response r;
  if (cdb.blocks == 0) co_return r;
  if (spliceOk && cdb.transferBytes >= kSpliceMin && device_->device().canSpliceRead()) {
    // Large reads as page references: no copy into our memory, none from it into the socket.
    if (auto chain = blockstore::PipeChain::take(cdb.transferBytes)) {
      Result<void> res = co_await device_->asyncSpliceRead(cdb.lba * geometry_.blockSize, cdb.transferBytes, *chain,
                                                           use_awaitable);
      if (res) {
        r.dataPipe = std::move(chain);
        r.dataPipeLength = cdb.transferBytes;
        co_return r;
      }
      // A file system that cannot splice, or out of pipes: the copying read decides (and reports
      // a real read error the same way).
      PXD_DEBUG("scsi.splice_read_failed", "error={}", log::q(res.error().message));
    }
  }
  // From the pool: no value-initialisation of bytes the read overwrites, no fresh pages per command.
  r.dataIn = blockstore::BufferPool::take(cdb.transferBytes);
  Result<void> res = co_await device_->asyncRead(cdb.lba * geometry_.blockSize, r.dataIn, use_awaitable);
  if (!res) co_return Response::check(senseFor(res.error(), false));
  co_return r;
}

asio::awaitable<std::optional<Response>> Lun::writeBlocks(std::uint64_t offset, std::span<const std::uint8_t> data,
                                                          bool fua) {
  // WCE=0 makes every write durable on completion (SBC-4 6.5.5).
  const bool durable = fua || !mode_.wce;
  blockstore::WriteFlags flags{durable && caps_.canFua};
  Result<void> res = co_await device_->asyncWrite(offset, data, flags, use_awaitable);
  if (!res) co_return Response::check(senseFor(res.error(), true));
  co_return co_await flushIfNeeded(durable && !caps_.canFua);
}

asio::awaitable<std::optional<Response>> Lun::flushIfNeeded(bool needed) {
  if (!needed || !caps_.canFlush) co_return std::nullopt;
  Result<void> res = co_await device_->asyncFlush(use_awaitable);
  if (!res) co_return Response::check(senseFor(res.error(), true));
  co_return std::nullopt;
}

asio::awaitable<Response> Lun::write(const Cdb& cdb, std::span<const std::uint8_t> data) {
  if (auto e = writeAllowed()) co_return *e;
  if (cdb.blocks == 0) co_return Response::good();
  co_await acquireWrite();
  // WRITE AND VERIFY (SBC-4 5.41): the data is made durable before the verify, which with BYTCHK=1
  // compares what we just wrote with itself; the write is the whole effect.
  const bool fua = cdb.fua || cdb.info->kind == OpKind::WriteAndVerify;
  auto err = co_await writeBlocks(cdb.lba * geometry_.blockSize, data, fua);
  releaseWrite();
  if (err) co_return *err;
  co_return Response::good();
}

asio::awaitable<Response> Lun::verify(const Cdb& cdb, std::span<const std::uint8_t> data) {
  if (cdb.blocks == 0) co_return Response::good();
  // SBC-4 5.35: BYTCHK=0 verifies the medium can be read; 01b compares with the Data-Out; 11b
  // compares one block of Data-Out with each block.
  std::vector<std::uint8_t> buf(cdb.blocks * geometry_.blockSize);
  Result<void> res = co_await device_->asyncRead(cdb.lba * geometry_.blockSize, buf, use_awaitable);
  if (!res) co_return Response::check(senseFor(res.error(), false));
  if (cdb.bytchk == 1) {
    if (auto at = firstDifference(buf, data)) co_return Response::check(miscompare(*at));
  } else if (cdb.bytchk == 3) {
    for (std::uint64_t b = 0; b < cdb.blocks; ++b) {
      auto block = std::span<const std::uint8_t>(buf).subspan(b * geometry_.blockSize, geometry_.blockSize);
      if (auto at = firstDifference(block, data)) co_return Response::check(miscompare(b * geometry_.blockSize + *at));
    }
  }
  co_return Response::good();
}

asio::awaitable<Response> Lun::writeSame(const Cdb& cdb, std::span<const std::uint8_t> data) {
  if (auto e = writeAllowed()) co_return *e;
  // SBC-4 5.48: UNMAP=1 needs LBPWS (LBPWS10 for the 10-byte form); we advertise both iff canTrim.
  if (cdb.unmap && !caps_.canTrim) co_return Response::check(invalidFieldInCdb(1, 3));
  const std::uint64_t offset = cdb.lba * geometry_.blockSize;
  const std::uint64_t length = cdb.blocks * geometry_.blockSize;
  const bool zeros = cdb.ndob || allZero(data);
  co_await acquireWrite();
  Result<void> res;
  std::optional<Response> err;
  if (cdb.unmap) {
    // SBC-4 4.7.3.4, 5.48: UNMAP=1 asks for the blocks to be unmapped rather than written, whatever
    // the Data-Out holds; we can always deallocate, and unmapped blocks then read as zeros (LBPRZ=1).
    res = co_await device_->asyncTrim(offset, length, use_awaitable);
  } else if (zeros && caps_.canZero) {
    res = co_await device_->asyncWriteZeroes(offset, length, blockstore::WriteFlags{!mode_.wce && caps_.canFua},
                                             use_awaitable);
    if (res) err = co_await flushIfNeeded(!mode_.wce && !caps_.canFua);
  } else {
    // Replicate the block into a buffer of up to 1 MiB and write it as many times as needed.
    const std::uint64_t perWrite = std::max<std::uint64_t>(1, std::min<std::uint64_t>(cdb.blocks, (1u << 20) / geometry_.blockSize));
    std::vector<std::uint8_t> buf(perWrite * geometry_.blockSize);
    for (std::uint64_t b = 0; b < perWrite; ++b) {
      if (zeros) break;
      std::memcpy(buf.data() + b * geometry_.blockSize, data.data(), geometry_.blockSize);
    }
    for (std::uint64_t done = 0; done < cdb.blocks && !err;) {
      const std::uint64_t n = std::min(perWrite, cdb.blocks - done);
      err = co_await writeBlocks(offset + done * geometry_.blockSize,
                                 std::span<const std::uint8_t>(buf).first(n * geometry_.blockSize), false);
      done += n;
    }
    if (!err) err = co_await flushIfNeeded(!mode_.wce);
  }
  releaseWrite();
  if (!res) co_return Response::check(senseFor(res.error(), true));
  if (err) co_return *err;
  co_return Response::good();
}

asio::awaitable<Response> Lun::unmap(const Cdb& cdb, std::span<const std::uint8_t> data) {
  // SBC-4 5.32: UNMAP exists only when the device can deallocate (LBPU=1).
  if (!caps_.canTrim) co_return Response::check(invalidOpcode());
  if (auto e = writeAllowed()) co_return *e;
  (void)cdb;
  auto list = parseUnmapParameters(data, geometry_);
  if (!list) co_return Response::check(list.sense);
  co_await acquireWrite();
  std::optional<Response> err;
  for (const auto& d : *list) {
    Result<void> res = co_await device_->asyncTrim(d.lba * geometry_.blockSize,
                                                   std::uint64_t{d.blocks} * geometry_.blockSize, use_awaitable);
    if (!res) {
      err = Response::check(senseFor(res.error(), true));
      break;
    }
  }
  releaseWrite();
  if (err) co_return *err;
  co_return Response::good();
}

asio::awaitable<Response> Lun::orWrite(const Cdb& cdb, std::span<const std::uint8_t> data) {
  // SBC-4 5.11 ORWRITE(16): new = old OR data, atomically against other writes (the exclusive gate).
  if (auto e = writeAllowed()) co_return *e;
  if (cdb.blocks == 0) co_return Response::good();
  const std::uint64_t offset = cdb.lba * geometry_.blockSize;
  co_await acquireExclusive();
  std::vector<std::uint8_t> current(data.size());
  std::optional<Response> out;
  Result<void> res = co_await device_->asyncRead(offset, current, use_awaitable);
  if (!res) {
    out = Response::check(senseFor(res.error(), false));
  } else {
    for (std::size_t i = 0; i < current.size(); ++i) current[i] |= data[i];
    out = co_await writeBlocks(offset, current, cdb.fua);
  }
  releaseExclusive();
  if (out) co_return *out;
  co_return Response::good();
}

Response Lun::readDefectData(const Cdb& cdb) const {
  // SBC-4 5.18/5.19: no defects. The header echoes the requested format with empty lists.
  std::vector<std::uint8_t> out(cdb.length == 10 ? 4 : 8, 0);
  out[1] = static_cast<std::uint8_t>(cdb.length == 10 ? cdb.bytes[2] & 0x07 : cdb.bytes[1] & 0x07);
  return dataResponse(std::move(out), cdb.allocationLength);
}

asio::awaitable<Response> Lun::compareAndWrite(const Cdb& cdb, std::span<const std::uint8_t> data) {
  if (auto e = writeAllowed()) co_return *e;
  if (cdb.blocks == 0) co_return Response::good();  // SBC-4 5.3: 0 blocks is not an error
  const std::size_t half = cdb.blocks * geometry_.blockSize;
  const std::uint64_t offset = cdb.lba * geometry_.blockSize;
  co_await acquireExclusive();
  std::vector<std::uint8_t> current(half);
  std::optional<Response> out;
  Result<void> res = co_await device_->asyncRead(offset, current, use_awaitable);
  if (!res) {
    out = Response::check(senseFor(res.error(), false));
  } else if (auto at = firstDifference(current, data.first(half))) {
    // SBC-4 5.3: MISCOMPARE DURING VERIFY OPERATION, INFORMATION = offset of the first mismatch.
    out = Response::check(miscompare(*at));
  } else {
    out = co_await writeBlocks(offset, data.subspan(half, half), cdb.fua);
  }
  releaseExclusive();
  if (out) co_return *out;
  co_return Response::good();
}

asio::awaitable<Response> Lun::synchronizeCache() {
  // SBC-4 5.24: the whole cache is flushed whatever the range (a flush covers every write). IMMED
  // is honoured by completing after the flush anyway, which SBC-4 allows.
  if (!caps_.canFlush) co_return Response::good();
  Result<void> res = co_await device_->asyncFlush(use_awaitable);
  if (!res) co_return Response::check(senseFor(res.error(), true));
  co_return Response::good();
}

asio::awaitable<Response> Lun::getLbaStatus(const Cdb& cdb) {
  // SBC-4 5.8: LBA status descriptors from the starting LBA; we look at most 1 GiB ahead per call
  // (the initiator asks again from where we stopped).
  const std::uint32_t bs = geometry_.blockSize;
  const std::uint64_t maxBlocks = std::min<std::uint64_t>(geometry_.blocks - cdb.lba, (1ull << 30) / bs);
  std::vector<std::uint8_t> out(8, 0);
  // Every run found is described (bounded by the extents of the 1 GiB looked at); the allocation
  // length truncates, and PARAMETER DATA LENGTH tells the initiator how much there was (SPC-5 4.2.5.6).
  constexpr std::size_t maxDescriptors = 65536;
  struct Run {
    std::uint64_t lba, blocks;
    std::uint8_t status;
  };
  std::vector<Run> runs;
  if (caps_.canExtents) {
    Result<std::vector<blockstore::Extent>> ext =
        co_await device_->asyncExtents(cdb.lba * bs, maxBlocks * bs, use_awaitable);
    if (!ext) co_return Response::check(senseFor(ext.error(), false));
    for (const auto& e : *ext) {
      const std::uint8_t status = e.state == blockstore::ExtentState::Zero ? 1 : 0;  // deallocated : mapped
      const std::uint64_t first = e.offset / bs;
      const std::uint64_t end = (e.offset + e.length + bs - 1) / bs;  // within the device: no overflow
      if (!runs.empty() && runs.back().status == status && runs.back().lba + runs.back().blocks == first) {
        runs.back().blocks = end - runs.back().lba;
      } else if (!runs.empty() && first < runs.back().lba + runs.back().blocks) {
        // A block shared by two extents (byte-granular extents): report it with the first.
        if (end > runs.back().lba + runs.back().blocks) runs.push_back({runs.back().lba + runs.back().blocks, end - (runs.back().lba + runs.back().blocks), status});
      } else {
        runs.push_back({first, end - first, status});
      }
    }
  } else {
    runs.push_back({cdb.lba, maxBlocks, 0});
  }
  for (std::size_t i = 0; i < runs.size() && i < maxDescriptors; ++i) {
    std::uint8_t d[16] = {};
    putBe64(d, runs[i].lba);
    putBe32(d + 8, static_cast<std::uint32_t>(std::min<std::uint64_t>(runs[i].blocks, 0xFFFFFFFFu)));
    d[12] = runs[i].status;
    out.insert(out.end(), d, d + 16);
  }
  putBe32(out.data(), static_cast<std::uint32_t>(out.size() - 4));
  co_return dataResponse(std::move(out), cdb.allocationLength);
}

// ---- The write gate -------------------------------------------------------------------------

asio::awaitable<void> Lun::waitGate() {
  asio::steady_timer t(executor_, asio::steady_timer::time_point::max());
  auto it = gateWaiters_.insert(gateWaiters_.end(), &t);
  std::error_code ec;
  co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
  gateWaiters_.erase(it);
}

void Lun::wakeGate() {
  for (auto* t : gateWaiters_) t->cancel();
}

asio::awaitable<void> Lun::acquireWrite() {
  while (exclusive_ || exclusiveWaiting_ > 0) co_await waitGate();
  ++writers_;
}

void Lun::releaseWrite() {
  if (--writers_ == 0) wakeGate();
}

asio::awaitable<void> Lun::acquireExclusive() {
  ++exclusiveWaiting_;
  while (exclusive_ || writers_ > 0) co_await waitGate();
  --exclusiveWaiting_;
  exclusive_ = true;
}

void Lun::releaseExclusive() {
  exclusive_ = false;
  wakeGate();
}

}  // namespace pxedust::scsi
