// The command table, CDB validation and the parameter-list parsers (see cdb.hpp for the design).
#include "scsi/cdb.hpp"

#include <algorithm>

#include "common/bytes.hpp"
#include "common/checked.hpp"

namespace pxedust::scsi {
namespace {

using U = std::array<std::uint8_t, 16>;

// CDB USAGE DATA per command (SBC-4 5.x, SPC-5 6.x). The control byte (last) is reported as 00h:
// NACA is not supported, and the vendor bits are ignored (see parseCdb).
// Byte 1 of the medium-access commands: xxPROTECT bits are never set in the mask (no protection
// information, so RDPROTECT/WRPROTECT/VRPROTECT != 0 is INVALID FIELD IN CDB, SBC-4 5.16 table 48);
// DPO (10h) and FUA (08h) are (DPOFUA=1 in the mode parameter header); FUA_NV (02h, obsolete) and
// RARC (04h) are accepted and ignored.
constexpr CommandInfo kTable[] = {
    {0x00, -1, 6, U{0x00, 0, 0, 0, 0, 0}, OpKind::TestUnitReady, "TEST UNIT READY", 10},
    // DESC (byte 1 bit 0) is not in the mask: descriptor-format sense is not supported (SPC-5 6.39).
    {0x03, -1, 6, U{0x03, 0, 0, 0, 0xFF, 0}, OpKind::RequestSense, "REQUEST SENSE", 10},
    {0x08, -1, 6, U{0x08, 0x1F, 0xFF, 0xFF, 0xFF, 0}, OpKind::Read, "READ(6)", 60},
    {0x0A, -1, 6, U{0x0A, 0x1F, 0xFF, 0xFF, 0xFF, 0}, OpKind::Write, "WRITE(6)", 60},
    {0x12, -1, 6, U{0x12, 0x01, 0xFF, 0xFF, 0xFF, 0}, OpKind::Inquiry, "INQUIRY", 10},
    {0x15, -1, 6, U{0x15, 0x11, 0, 0, 0xFF, 0}, OpKind::ModeSelect, "MODE SELECT(6)", 10},
    {0x16, -1, 6, U{0x16, 0, 0, 0, 0, 0}, OpKind::Reserve6, "RESERVE(6)", 10},
    {0x17, -1, 6, U{0x17, 0, 0, 0, 0, 0}, OpKind::Release6, "RELEASE(6)", 10},
    {0x1A, -1, 6, U{0x1A, 0x08, 0xFF, 0xFF, 0xFF, 0}, OpKind::ModeSense, "MODE SENSE(6)", 10},
    {0x1B, -1, 6, U{0x1B, 0x01, 0, 0x0F, 0xF7, 0}, OpKind::StartStopUnit, "START STOP UNIT", 60},
    {0x1E, -1, 6, U{0x1E, 0, 0, 0, 0x03, 0}, OpKind::PreventAllow, "PREVENT ALLOW MEDIUM REMOVAL", 10},
    {0x25, -1, 10, U{0x25, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0x01, 0}, OpKind::ReadCapacity10, "READ CAPACITY(10)", 10},
    {0x28, -1, 10, U{0x28, 0x1E, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0}, OpKind::Read, "READ(10)", 60},
    {0x2A, -1, 10, U{0x2A, 0x1A, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0}, OpKind::Write, "WRITE(10)", 60},
    {0x2E, -1, 10, U{0x2E, 0x16, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0}, OpKind::WriteAndVerify,
     "WRITE AND VERIFY(10)", 60},
    {0x2F, -1, 10, U{0x2F, 0x16, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0}, OpKind::Verify, "VERIFY(10)", 60},
    // PRE-FETCH: accepted and completed at once (the host page cache does the caching).
    {0x34, -1, 10, U{0x34, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0}, OpKind::PreFetch, "PRE-FETCH(10)", 10},
    {0x35, -1, 10, U{0x35, 0x06, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0}, OpKind::SynchronizeCache,
     "SYNCHRONIZE CACHE(10)", 60},
    {0x37, -1, 10, U{0x37, 0, 0x1F, 0, 0, 0, 0, 0xFF, 0xFF, 0}, OpKind::ReadDefectData, "READ DEFECT DATA(10)", 10},
    {0x41, -1, 10, U{0x41, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0xFF, 0xFF, 0}, OpKind::WriteSame, "WRITE SAME(10)", 120},
    {0x42, -1, 10, U{0x42, 0, 0, 0, 0, 0, 0x1F, 0xFF, 0xFF, 0}, OpKind::Unmap, "UNMAP", 120},
    {0x55, -1, 10, U{0x55, 0x11, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0}, OpKind::ModeSelect, "MODE SELECT(10)", 10},
    {0x5A, -1, 10, U{0x5A, 0x18, 0xFF, 0xFF, 0, 0, 0, 0xFF, 0xFF, 0}, OpKind::ModeSense, "MODE SENSE(10)", 10},
    {0x5E, 0x00, 10, U{0x5E, 0x1F, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0}, OpKind::PersistentReserveIn,
     "PERSISTENT RESERVE IN (READ KEYS)", 10},
    {0x5E, 0x01, 10, U{0x5E, 0x1F, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0}, OpKind::PersistentReserveIn,
     "PERSISTENT RESERVE IN (READ RESERVATION)", 10},
    {0x5E, 0x02, 10, U{0x5E, 0x1F, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0}, OpKind::PersistentReserveIn,
     "PERSISTENT RESERVE IN (REPORT CAPABILITIES)", 10},
    {0x5E, 0x03, 10, U{0x5E, 0x1F, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0}, OpKind::PersistentReserveIn,
     "PERSISTENT RESERVE IN (READ FULL STATUS)", 10},
    {0x5F, 0x00, 10, U{0x5F, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0}, OpKind::PersistentReserveOut,
     "PERSISTENT RESERVE OUT (REGISTER)", 10},
    {0x5F, 0x01, 10, U{0x5F, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0}, OpKind::PersistentReserveOut,
     "PERSISTENT RESERVE OUT (RESERVE)", 10},
    {0x5F, 0x02, 10, U{0x5F, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0}, OpKind::PersistentReserveOut,
     "PERSISTENT RESERVE OUT (RELEASE)", 10},
    {0x5F, 0x03, 10, U{0x5F, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0}, OpKind::PersistentReserveOut,
     "PERSISTENT RESERVE OUT (CLEAR)", 10},
    {0x5F, 0x04, 10, U{0x5F, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0}, OpKind::PersistentReserveOut,
     "PERSISTENT RESERVE OUT (PREEMPT)", 10},
    {0x5F, 0x05, 10, U{0x5F, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0}, OpKind::PersistentReserveOut,
     "PERSISTENT RESERVE OUT (PREEMPT AND ABORT)", 10},
    {0x5F, 0x06, 10, U{0x5F, 0x1F, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0}, OpKind::PersistentReserveOut,
     "PERSISTENT RESERVE OUT (REGISTER AND IGNORE EXISTING KEY)", 10},
    {0x88, -1, 16, U{0x88, 0x1E, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3F, 0},
     OpKind::Read, "READ(16)", 60},
    {0x89, -1, 16, U{0x89, 0x1A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0xFF, 0x3F, 0},
     OpKind::CompareAndWrite, "COMPARE AND WRITE", 60},
    {0x8A, -1, 16, U{0x8A, 0x1A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3F, 0},
     OpKind::Write, "WRITE(16)", 60},
    {0x8B, -1, 16, U{0x8B, 0x1A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3F, 0},
     OpKind::OrWrite, "ORWRITE(16)", 60},
    {0x8E, -1, 16, U{0x8E, 0x16, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3F, 0},
     OpKind::WriteAndVerify, "WRITE AND VERIFY(16)", 60},
    {0x8F, -1, 16, U{0x8F, 0x16, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3F, 0},
     OpKind::Verify, "VERIFY(16)", 60},
    {0x90, -1, 16, U{0x90, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3F, 0},
     OpKind::PreFetch, "PRE-FETCH(16)", 10},
    {0x91, -1, 16, U{0x91, 0x06, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3F, 0},
     OpKind::SynchronizeCache, "SYNCHRONIZE CACHE(16)", 60},
    {0x93, -1, 16, U{0x93, 0x09, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3F, 0},
     OpKind::WriteSame, "WRITE SAME(16)", 120},
    {0x9E, 0x10, 16, U{0x9E, 0x1F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0},
     OpKind::ReadCapacity16, "READ CAPACITY(16)", 10},
    {0x9E, 0x12, 16, U{0x9E, 0x1F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0},
     OpKind::GetLbaStatus, "GET LBA STATUS", 10},
    {0xA0, -1, 12, U{0xA0, 0, 0xFF, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0}, OpKind::ReportLuns, "REPORT LUNS", 10},
    {0xA3, 0x0C, 12, U{0xA3, 0x1F, 0x87, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0},
     OpKind::ReportSupportedOpcodes, "REPORT SUPPORTED OPERATION CODES", 10},
    {0xA8, -1, 12, U{0xA8, 0x1E, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0}, OpKind::Read, "READ(12)", 60},
    {0xAA, -1, 12, U{0xAA, 0x1A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0}, OpKind::Write, "WRITE(12)", 60},
    {0xAE, -1, 12, U{0xAE, 0x16, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0}, OpKind::WriteAndVerify,
     "WRITE AND VERIFY(12)", 60},
    {0xAF, -1, 12, U{0xAF, 0x16, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F, 0}, OpKind::Verify, "VERIFY(12)", 60},
    {0xB7, -1, 12, U{0xB7, 0x1F, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0}, OpKind::ReadDefectData,
     "READ DEFECT DATA(12)", 10},
};

// Where each CDB format keeps its LBA and transfer length (SBC-4 4.2.2).
struct MediumFields {
  std::uint64_t lba = 0;
  std::uint64_t blocks = 0;
  std::uint16_t lengthByte = 0;  // field pointer for a rejected length
};

MediumFields mediumFields(const std::uint8_t* c, std::uint8_t length) {
  MediumFields f;
  switch (length) {
    case 6:
      f.lba = (std::uint64_t{c[1] & 0x1Fu} << 16) | (std::uint64_t{c[2]} << 8) | c[3];
      f.blocks = c[4];
      f.lengthByte = 4;
      break;
    case 10:
      f.lba = getBe32(c + 2);
      f.blocks = getBe16(c + 7);
      f.lengthByte = 7;
      break;
    case 12:
      f.lba = getBe32(c + 2);
      f.blocks = getBe32(c + 6);
      f.lengthByte = 6;
      break;
    default:
      f.lba = getBe64(c + 2);
      f.blocks = getBe32(c + 10);
      f.lengthByte = 10;
      break;
  }
  return f;
}

bool inRange(const Geometry& g, std::uint64_t lba, std::uint64_t blocks) {
  // Habit 3: never `lba + blocks <= n`.
  return within<std::uint64_t>(lba, blocks, g.blocks);
}

// The SPDTL as a 32-bit count; the caps keep every accepted value far below 4 GiB.
std::uint32_t bytesOf(const Geometry& g, std::uint64_t blocks) {
  auto b = checkedMul<std::uint64_t>(blocks, g.blockSize);
  return (!b || *b > UINT32_MAX) ? UINT32_MAX : static_cast<std::uint32_t>(*b);
}

}  // namespace

std::span<const CommandInfo> commandTable() { return kTable; }

const CommandInfo* findCommand(std::uint8_t opcode, std::optional<std::uint16_t> serviceAction) {
  for (const auto& c : kTable) {
    if (c.opcode != opcode) continue;
    if (c.serviceAction < 0) return &c;
    if (serviceAction && *serviceAction == static_cast<std::uint16_t>(c.serviceAction)) return &c;
  }
  return nullptr;
}

bool opcodeHasServiceActions(std::uint8_t opcode) {
  return std::any_of(std::begin(kTable), std::end(kTable),
                     [&](const CommandInfo& c) { return c.opcode == opcode && c.serviceAction >= 0; });
}

Checked<Cdb> parseCdb(std::span<const std::uint8_t> raw, const Geometry& g) {
  if (raw.empty()) return invalidOpcode();
  const std::uint8_t opcode = raw[0];
  const CommandInfo* info = nullptr;
  if (opcodeHasServiceActions(opcode)) {
    if (raw.size() < 2) return invalidOpcode();
    info = findCommand(opcode, static_cast<std::uint16_t>(raw[1] & 0x1F));
    if (info == nullptr) {
      // SPC-5 4.2.1: an unsupported service action of a supported opcode is INVALID FIELD IN CDB.
      return invalidFieldInCdb(1, 4);
    }
  } else {
    info = findCommand(opcode, std::nullopt);
    if (info == nullptr) return invalidOpcode();
  }
  if (raw.size() < info->length) return invalidOpcode();  // a CDB shorter than its opcode's format

  Cdb cdb;
  cdb.info = info;
  cdb.length = info->length;
  std::copy_n(raw.begin(), info->length, cdb.bytes.begin());
  const std::uint8_t* c = cdb.bytes.data();

  // Reserved and unsupported bits: anything outside the usage mask, except the control byte, of
  // which only NACA matters (SAM-5 5.2: NACA=1 without ACA support is INVALID FIELD IN CDB).
  for (std::uint16_t i = 1; i + 1 < info->length; ++i) {
    const std::uint8_t bad = static_cast<std::uint8_t>(c[i] & ~info->usage[i]);
    if (bad != 0) {
      std::uint8_t bit = 7;
      while (!(bad & (1u << bit))) --bit;
      return invalidFieldInCdb(i, bit);
    }
  }
  if (c[info->length - 1] & 0x04) return invalidFieldInCdb(static_cast<std::uint16_t>(info->length - 1), 2);

  switch (info->kind) {
    case OpKind::Read:
    case OpKind::Write:
    case OpKind::WriteAndVerify:
    case OpKind::OrWrite:
    case OpKind::Verify: {
      auto f = mediumFields(c, info->length);
      // SBC-4 5.13: READ(6)/WRITE(6) transfer length 0 means 256 blocks.
      if (info->length == 6 && f.blocks == 0) f.blocks = 256;
      cdb.lba = f.lba;
      cdb.blocks = f.blocks;
      if (info->length > 6) {
        cdb.dpo = (c[1] & 0x10) != 0;
        cdb.fua = (c[1] & 0x08) != 0;
      }
      if (info->kind == OpKind::Verify || info->kind == OpKind::WriteAndVerify) {
        cdb.fua = false;
        cdb.bytchk = static_cast<std::uint8_t>((c[1] >> 1) & 0x03);
        // SBC-4 5.34: BYTCHK 10b is reserved; WRITE AND VERIFY defines only 00b and 01b.
        if (cdb.bytchk == 2 || (info->kind == OpKind::WriteAndVerify && cdb.bytchk == 3)) {
          return invalidFieldInCdb(1, 2);
        }
      }
      if (!inRange(g, f.lba, f.blocks)) return lbaOutOfRange();
      if (f.blocks > g.maxTransferBlocks) return invalidFieldInCdb(f.lengthByte);
      if (info->kind == OpKind::Read) {
        cdb.direction = f.blocks ? Direction::In : Direction::None;
        cdb.transferBytes = bytesOf(g, f.blocks);
      } else if (info->kind == OpKind::Verify) {
        // BYTCHK 00b: no Data-Out; 01b: the blocks to compare; 11b: one block compared with each.
        std::uint64_t outBlocks = cdb.bytchk == 0 ? 0 : cdb.bytchk == 3 ? (f.blocks ? 1 : 0) : f.blocks;
        cdb.transferBytes = bytesOf(g, outBlocks);
        cdb.direction = outBlocks ? Direction::Out : Direction::None;
      } else {
        cdb.direction = f.blocks ? Direction::Out : Direction::None;
        cdb.transferBytes = bytesOf(g, f.blocks);
      }
      break;
    }
    case OpKind::WriteSame: {
      MediumFields f = mediumFields(c, info->length);
      if (f.blocks == 0) {
        // SBC-4 5.48 with WSNZ=0 in VPD B0h: NUMBER OF LOGICAL BLOCKS 0 means from the LBA to the
        // last LBA (still capped by MAXIMUM WRITE SAME LENGTH below).
        if (f.lba >= g.blocks) return lbaOutOfRange();
        f.blocks = g.blocks - f.lba;
      }
      cdb.lba = f.lba;
      cdb.blocks = f.blocks;
      cdb.unmap = (c[1] & 0x08) != 0;
      cdb.ndob = info->length == 16 && (c[1] & 0x01) != 0;
      if (!inRange(g, f.lba, f.blocks)) return lbaOutOfRange();
      if (f.blocks > g.maxWriteSameBlocks) return invalidFieldInCdb(f.lengthByte);
      cdb.direction = cdb.ndob ? Direction::None : Direction::Out;
      cdb.transferBytes = cdb.ndob ? 0 : g.blockSize;
      break;
    }
    case OpKind::CompareAndWrite: {
      cdb.lba = getBe64(c + 2);
      cdb.blocks = c[13];
      cdb.dpo = (c[1] & 0x10) != 0;
      cdb.fua = (c[1] & 0x08) != 0;
      if (!inRange(g, cdb.lba, cdb.blocks)) return lbaOutOfRange();
      if (cdb.blocks > g.maxCompareBlocks) return invalidFieldInCdb(13);
      // SBC-4 5.3: the Data-Out is the verify data then the write data.
      cdb.transferBytes = bytesOf(g, cdb.blocks * 2);
      cdb.direction = cdb.blocks ? Direction::Out : Direction::None;
      break;
    }
    case OpKind::PreFetch:
    case OpKind::SynchronizeCache: {
      auto f = mediumFields(c, info->length);
      cdb.lba = f.lba;
      cdb.blocks = f.blocks;  // 0 = to the end of the medium
      cdb.immed = (c[1] & 0x02) != 0;
      if (!inRange(g, f.lba, f.blocks)) return lbaOutOfRange();
      break;
    }
    case OpKind::GetLbaStatus: {
      cdb.lba = getBe64(c + 2);
      cdb.allocationLength = getBe32(c + 10);
      // SBC-4 5.8: a starting LBA past the last LBA is LBA OUT OF RANGE.
      if (cdb.lba >= g.blocks) return lbaOutOfRange();
      break;
    }
    case OpKind::Unmap:
      cdb.parameterListLength = getBe16(c + 7);
      break;
    case OpKind::Inquiry:
      cdb.allocationLength = getBe16(c + 3);
      // SPC-5 6.7.1: a page code with EVPD=0 is INVALID FIELD IN CDB.
      if (!(c[1] & 0x01) && c[2] != 0) return invalidFieldInCdb(2);
      break;
    case OpKind::RequestSense:
      cdb.allocationLength = c[4];
      break;
    case OpKind::ReadDefectData:
      cdb.allocationLength = info->length == 10 ? getBe16(c + 7) : getBe32(c + 6);
      break;
    case OpKind::ModeSense:
      cdb.allocationLength = info->length == 6 ? c[4] : getBe16(c + 7);
      break;
    case OpKind::ModeSelect:
      cdb.parameterListLength = info->length == 6 ? c[4] : getBe16(c + 7);
      break;
    case OpKind::ReadCapacity10:
      // SBC-3 5.16: with PMI=0 the LOGICAL BLOCK ADDRESS field must be zero.
      if (!(c[8] & 0x01) && getBe32(c + 2) != 0) return invalidFieldInCdb(2);
      cdb.allocationLength = 8;
      break;
    case OpKind::ReadCapacity16:
      cdb.serviceAction = c[1] & 0x1F;
      if (!(c[14] & 0x01) && getBe64(c + 2) != 0) return invalidFieldInCdb(2);
      cdb.allocationLength = getBe32(c + 10);
      break;
    case OpKind::ReportLuns:
      cdb.allocationLength = getBe32(c + 6);
      // SPC-5 6.33: SELECT REPORT 00h, 01h, 02h (and the 10h-12h well-known forms) only.
      if (c[2] > 0x02 && (c[2] < 0x10 || c[2] > 0x12)) return invalidFieldInCdb(2);
      break;
    case OpKind::ReportSupportedOpcodes:
      cdb.serviceAction = c[1] & 0x1F;
      cdb.allocationLength = getBe32(c + 6);
      if ((c[2] & 0x07) > 3) return invalidFieldInCdb(2, 2);
      break;
    case OpKind::PersistentReserveIn:
      cdb.serviceAction = c[1] & 0x1F;
      cdb.allocationLength = getBe16(c + 7);
      break;
    case OpKind::PersistentReserveOut:
      cdb.serviceAction = c[1] & 0x1F;
      cdb.parameterListLength = getBe32(c + 5);
      break;
    case OpKind::StartStopUnit:
      cdb.immed = (c[1] & 0x01) != 0;
      break;
    case OpKind::TestUnitReady:
    case OpKind::Reserve6:
    case OpKind::Release6:
    case OpKind::PreventAllow:
      break;
  }

  if (cdb.allocationLength) {
    cdb.direction = Direction::In;
    cdb.transferBytes = cdb.allocationLength;
  }
  if (cdb.parameterListLength) {
    if (cdb.parameterListLength > kMaxParameterListLength) {
      // SPC-5 4.2.1: a parameter list longer than anything we accept is a bad length field.
      std::uint16_t at = info->kind == OpKind::PersistentReserveOut ? 5 : info->length == 6 ? 4 : 7;
      return invalidFieldInCdb(at);
    }
    cdb.direction = Direction::Out;
    cdb.transferBytes = cdb.parameterListLength;
  }
  return cdb;
}

Transfer fitTransfer(const Cdb& cdb, const Geometry& g, std::uint32_t expectedLength) {
  Transfer t;
  t.blocks = cdb.blocks;
  const OpKind kind = cdb.info ? cdb.info->kind : OpKind::TestUnitReady;
  if (kind == OpKind::CompareAndWrite) {
    // Checked even for 0 blocks (Direction::None): data announced for a command that moves none.
    if (expectedLength != cdb.transferBytes) t.refused = invalidFieldInCdb(13);
    else t.dataOutBytes = cdb.transferBytes;
    return t;
  }
  if (cdb.direction != Direction::Out) return t;
  if (kind == OpKind::WriteSame) {
    if (expectedLength != cdb.transferBytes) t.refused = illegalRequest(asc::kInvalidFieldInInformationUnit);
    else t.dataOutBytes = cdb.transferBytes;
    return t;
  }
  if (cdb.transferBytes <= expectedLength) {
    t.dataOutBytes = cdb.transferBytes;
    return t;
  }
  const bool mediumWrite = kind == OpKind::Write || kind == OpKind::WriteAndVerify || kind == OpKind::OrWrite;
  if (!mediumWrite || expectedLength % g.blockSize != 0) {
    t.refused = illegalRequest(asc::kInvalidFieldInInformationUnit);
    return t;
  }
  t.dataOutBytes = expectedLength;
  t.blocks = expectedLength / g.blockSize;
  return t;
}

Plan planCommand(std::span<const std::uint8_t> raw, const Geometry& g, std::uint32_t expectedLength) {
  Plan p;
  auto parsed = parseCdb(raw, g);
  if (!parsed) {
    p.immediate = Response::check(parsed.sense);
    applyResidual(*p.immediate, 0, expectedLength);
    return p;
  }
  p.direction = parsed->direction;
  p.transferBytes = parsed->transferBytes;
  Transfer fit = fitTransfer(*parsed, g, expectedLength);
  if (fit.refused) {
    // The residual compares what the command would have moved with what the initiator expected.
    p.immediate = Response::check(*fit.refused);
    applyResidual(*p.immediate, parsed->transferBytes, expectedLength);
    return p;
  }
  p.dataOutBytes = fit.dataOutBytes;
  return p;
}

void applyResidual(Response& r, std::uint64_t produced, std::uint32_t expectedLength) {
  if (r.dataIn.size() > expectedLength) r.dataIn.resize(expectedLength);
  if (produced > expectedLength) {
    r.residual = Residual::Overflow;
    r.residualCount = static_cast<std::uint32_t>(std::min<std::uint64_t>(produced - expectedLength, UINT32_MAX));
  } else if (produced < expectedLength) {
    r.residual = Residual::Underflow;
    r.residualCount = static_cast<std::uint32_t>(expectedLength - produced);
  } else {
    r.residual = Residual::None;
    r.residualCount = 0;
  }
}

Checked<std::vector<UnmapDescriptor>> parseUnmapParameters(std::span<const std::uint8_t> data, const Geometry& g) {
  std::vector<UnmapDescriptor> out;
  if (data.empty()) return out;  // SBC-4 5.32.1: PARAMETER LIST LENGTH 0 is not an error
  // SBC-4 5.32.1: a parameter list shorter than its 8-byte header is PARAMETER LIST LENGTH ERROR.
  if (data.size() < 8) return parameterListLengthError();
  ByteReader r(data);
  const std::uint16_t dataLength = r.be16();
  const std::uint16_t descriptorLength = r.be16();
  r.bytes(4);
  // The UNMAP DATA LENGTH counts the bytes after itself; a list that claims more than was sent,
  // or descriptors that claim more than the list, is inconsistent.
  if (dataLength > data.size() - 2 || descriptorLength > data.size() - 8 || descriptorLength > dataLength - 6u ||
      dataLength < 6) {
    return parameterListLengthError();
  }
  if (descriptorLength % 16 != 0) return invalidFieldInParameterList(2);
  const std::size_t count = descriptorLength / 16;
  if (count > g.maxUnmapDescriptors) return invalidFieldInParameterList(2);
  std::uint64_t total = 0;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    UnmapDescriptor d;
    d.lba = (std::uint64_t{r.be32()} << 32) | r.be32();
    d.blocks = r.be32();
    r.bytes(4);
    if (!within<std::uint64_t>(d.lba, d.blocks, g.blocks)) return lbaOutOfRange();
    total += d.blocks;  // at most 256 * 2^32: no overflow
    if (total > g.maxUnmapBlocks) return invalidFieldInParameterList(static_cast<std::uint16_t>(8 + 16 * i + 8));
    if (d.blocks) out.push_back(d);
  }
  return out;
}

Checked<PrOutParameters> parsePrOutParameters(std::span<const std::uint8_t> data) {
  // SPC-5 6.17.3: 24 bytes unless SPEC_I_PT=1 (not supported, see below).
  if (data.size() != 24) return parameterListLengthError();
  PrOutParameters p;
  p.key = getBe64(data.data());
  p.serviceActionKey = getBe64(data.data() + 8);
  p.specIpt = (data[20] & 0x08) != 0;
  p.allTgPt = (data[20] & 0x04) != 0;
  p.aptpl = (data[20] & 0x01) != 0;
  // SIP_C=0, ATP_C=0 and PTPL_C=0 in REPORT CAPABILITIES: these bits are invalid (SPC-5 6.17.3).
  if (p.specIpt) return invalidFieldInParameterList(20, 3);
  if (p.allTgPt) return invalidFieldInParameterList(20, 2);
  if (p.aptpl) return invalidFieldInParameterList(20, 0);
  return p;
}

namespace {

// One command descriptor (SPC-5 6.35.3 table 258), with the optional timeouts descriptor.
void appendDescriptor(std::vector<std::uint8_t>& out, const CommandInfo& c, bool rctd) {
  std::uint8_t d[20] = {};
  d[0] = c.opcode;
  if (c.serviceAction >= 0) putBe16(d + 2, static_cast<std::uint16_t>(c.serviceAction));
  d[5] = static_cast<std::uint8_t>((c.serviceAction >= 0 ? 0x01 : 0) | (rctd ? 0x02 : 0));  // SERVACTV, CTDP
  putBe16(d + 6, c.length);
  out.insert(out.end(), d, d + 8);
  if (rctd) {
    std::uint8_t t[12] = {};
    putBe16(t, 0x0A);  // descriptor length
    putBe32(t + 4, c.timeoutSeconds);
    putBe32(t + 8, c.timeoutSeconds * 2);
    out.insert(out.end(), t, t + 12);
  }
}

}  // namespace

Checked<std::vector<std::uint8_t>> reportSupportedOpcodes(const Cdb& cdb) {
  const std::uint8_t* c = cdb.bytes.data();
  const bool rctd = (c[2] & 0x80) != 0;
  const std::uint8_t options = c[2] & 0x07;
  const std::uint8_t opcode = c[3];
  const std::uint16_t sa = getBe16(c + 4);
  std::vector<std::uint8_t> out;
  if (options == 0) {
    out.resize(4);
    for (const auto& info : kTable) appendDescriptor(out, info, rctd);
    putBe32(out.data(), static_cast<std::uint32_t>(out.size() - 4));
    return out;
  }
  // One command (SPC-5 6.35.4). Options 1: by opcode, which must not have service actions;
  // 2: by opcode and service action, which it must have; 3: either.
  const bool hasSa = opcodeHasServiceActions(opcode);
  if (options == 1 && hasSa) return invalidFieldInCdb(3);
  if (options == 2 && !hasSa) return invalidFieldInCdb(3);
  const CommandInfo* info = hasSa ? findCommand(opcode, sa) : findCommand(opcode, std::nullopt);
  out.resize(4);
  if (info == nullptr) {
    out[1] = 0x01;  // SUPPORT: not supported
    return out;
  }
  out[1] = static_cast<std::uint8_t>((rctd ? 0x80 : 0) | 0x03);  // CTDP, SUPPORT: supported per standard
  putBe16(out.data() + 2, info->length);
  out.insert(out.end(), info->usage.begin(), info->usage.begin() + info->length);
  if (info->serviceAction >= 0) out[4 + 1] = static_cast<std::uint8_t>(info->serviceAction) | (info->usage[1] & 0xE0);
  if (rctd) {
    std::uint8_t t[12] = {};
    putBe16(t, 0x0A);
    putBe32(t + 4, info->timeoutSeconds);
    putBe32(t + 8, info->timeoutSeconds * 2);
    out.insert(out.end(), t, t + 12);
  }
  return out;
}

}  // namespace pxedust::scsi
