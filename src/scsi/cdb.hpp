// CDB parsing and the command table: pure code (no asio, no I/O), shared by the Lun and the fuzzer.
//
// Design note. One table (habit 4) lists every supported command with its CDB length, its CDB USAGE
// DATA bit mask (SPC-5 6.35.3) and its nominal timeout. The same mask does two jobs, so they cannot
// disagree: REPORT SUPPORTED OPERATION CODES returns it, and parseCdb() rejects any CDB bit outside
// it with INVALID FIELD IN CDB and a field pointer at the first offending bit (reserved bits,
// RDPROTECT/WRPROTECT without protection information, ANCHOR, DESC...).
//
// parseCdb() is what the transport calls BEFORE receiving Data-Out (planCommand() wraps it with the
// Expected Data Transfer Length): it answers the direction and the number of bytes the command moves
// (its SPDTL), or a CHECK CONDITION to send at once: invalid opcode (20/00), invalid field (24/00),
// LBA out of range (21/00), a transfer longer than the cap (24/00 on the length field). Range checks
// never add peer numbers (habit 3): `lba > n || blocks > n - lba`.
//
// The parameter-list parsers (UNMAP, PERSISTENT RESERVE OUT; MODE SELECT lives in mode_pages.hpp)
// read the Data-Out through ByteReader and answer a value or the sense to return.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "scsi/sense.hpp"

namespace pxedust::scsi {

// A value, or the sense data that rejects the input.
template <typename T>
struct Checked {
  std::optional<T> value;
  SenseData sense{};
  Checked(T v) : value(std::move(v)) {}         // NOLINT: implicit by design
  Checked(SenseData s) : sense(std::move(s)) {}  // NOLINT: implicit by design
  explicit operator bool() const { return value.has_value(); }
  T& operator*() { return *value; }
  const T& operator*() const { return *value; }
  T* operator->() { return &*value; }
  const T* operator->() const { return &*value; }
};

// Data direction as seen from the initiator (SAM-5): In = Data-In (to the initiator).
enum class Direction : std::uint8_t { None, In, Out };

enum class OpKind : std::uint8_t {
  TestUnitReady,
  RequestSense,
  Inquiry,
  ModeSelect,
  ModeSense,
  Reserve6,
  Release6,
  StartStopUnit,
  PreventAllow,
  ReadCapacity10,
  ReadCapacity16,
  Read,
  Write,
  WriteAndVerify,
  Verify,
  WriteSame,
  Unmap,
  GetLbaStatus,
  CompareAndWrite,
  SynchronizeCache,
  ReportLuns,
  ReportSupportedOpcodes,
  PersistentReserveIn,
  PersistentReserveOut,
  PreFetch,
  OrWrite,
  ReadDefectData,
};

struct CommandInfo {
  std::uint8_t opcode = 0;
  std::int16_t serviceAction = -1;  // -1: the opcode has no service action
  std::uint8_t length = 0;          // CDB length
  std::array<std::uint8_t, 16> usage{};  // CDB USAGE DATA; usage[0] is the opcode
  OpKind kind = OpKind::TestUnitReady;
  std::string_view name;
  std::uint32_t timeoutSeconds = 30;  // nominal command timeout (SPC-5 6.35.4)
};

// Every supported command, sorted by opcode then service action.
std::span<const CommandInfo> commandTable();
// nullptr when unsupported. For an opcode with service actions, `serviceAction` must match one.
const CommandInfo* findCommand(std::uint8_t opcode, std::optional<std::uint16_t> serviceAction);
// True when some table entry for this opcode has service actions.
bool opcodeHasServiceActions(std::uint8_t opcode);

// What the parser needs to know about the logical unit. The caps are also what VPD page B0h reports.
struct Geometry {
  std::uint32_t blockSize = 512;
  std::uint64_t blocks = 0;  // capacity in logical blocks
  // MAXIMUM TRANSFER LENGTH, for READ/WRITE/VERIFY/WRITE AND VERIFY (32 MiB at 512-byte blocks).
  std::uint32_t maxTransferBlocks = 65536;
  // MAXIMUM WRITE SAME LENGTH.
  std::uint64_t maxWriteSameBlocks = 1u << 22;
  // MAXIMUM COMPARE AND WRITE LENGTH (one byte in VPD B0h).
  std::uint8_t maxCompareBlocks = 255;
  // MAXIMUM UNMAP LBA COUNT and MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT.
  std::uint32_t maxUnmapBlocks = 1u << 20;
  std::uint32_t maxUnmapDescriptors = 256;
};

// Cap on any parameter list (Data-Out of a non-medium command): nothing we accept is longer.
inline constexpr std::uint32_t kMaxParameterListLength = 8 + 256 * 16;

struct Cdb {
  const CommandInfo* info = nullptr;
  std::array<std::uint8_t, 16> bytes{};
  std::uint8_t length = 0;
  Direction direction = Direction::None;
  // Bytes the command moves according to the CDB (its SPDTL): the Data-Out it consumes, or the most
  // Data-In it may return (the allocation length).
  std::uint32_t transferBytes = 0;
  // Medium-access fields (zero when not applicable).
  std::uint64_t lba = 0;
  std::uint64_t blocks = 0;
  bool fua = false;
  bool dpo = false;
  std::uint8_t bytchk = 0;  // VERIFY / WRITE AND VERIFY
  bool unmap = false;       // WRITE SAME
  bool ndob = false;        // WRITE SAME(16)
  bool immed = false;       // SYNCHRONIZE CACHE, START STOP UNIT
  std::uint32_t allocationLength = 0;     // Data-In commands
  std::uint32_t parameterListLength = 0;  // Data-Out parameter lists
  std::uint8_t serviceAction = 0;         // PR IN/OUT, 9Eh, A3h
};

// Parses and validates a CDB (any length; bytes past the command's length are ignored).
Checked<Cdb> parseCdb(std::span<const std::uint8_t> cdb, const Geometry& geometry);

// How a command's transfer fits the transport's Expected Data Transfer Length (EDTL), decided once
// for the planning step and the execution step so they cannot disagree (RFC 7143 11.4.5.1, SAM-5
// 5.4.4: the target moves at most the EDTL and reports the difference as a residual).
//  * A medium write (WRITE, WRITE AND VERIFY, ORWRITE) whose SPDTL exceeds the EDTL writes only the
//    whole blocks the EDTL covers, and completes with a residual overflow for the rest. An EDTL that
//    ends inside a block cannot be written as asked: INVALID FIELD IN INFORMATION UNIT (0E/03).
//  * COMPARE AND WRITE: its Data-Out is exactly 2 x NUMBER OF LOGICAL BLOCKS blocks (SBC-4 5.3), and
//    half of it cannot be compared or written. An EDTL of any other size contradicts the CDB's
//    NUMBER OF LOGICAL BLOCKS (for instance a 0-block command announcing data), so that field is
//    refused: INVALID FIELD IN CDB, field pointer byte 13.
//  * WRITE SAME: its Data-Out is exactly one block; any other EDTL is 0E/03.
//  * Any other Data-Out command (VERIFY with BYTCHK, parameter lists) needs its whole SPDTL: 0E/03
//    when the EDTL is shorter.
// A Data-Out longer than what the command consumes is received and ignored (residual underflow).
struct Transfer {
  std::uint32_t dataOutBytes = 0;  // Data-Out the command consumes (0 unless Direction::Out)
  std::uint64_t blocks = 0;        // medium blocks it covers: fewer than the CDB's for a cut write
  std::optional<SenseData> refused;
};
Transfer fitTransfer(const Cdb& cdb, const Geometry& geometry, std::uint32_t expectedLength);

// What the transport needs before reading Data-Out.
struct Plan {
  Direction direction = Direction::None;
  // Data-Out bytes to solicit (fitTransfer(): the SPDTL, or the whole blocks of a shorter expected
  // length). Data-Out the initiator sends beyond it is received and discarded by the transport.
  std::uint32_t dataOutBytes = 0;
  // The command's own transfer length (SPDTL), for either direction.
  std::uint32_t transferBytes = 0;
  // When set: send this response now, receive (drain) no Data-Out and do not execute the command.
  std::optional<Response> immediate;
};
// `expectedLength` is the transport's Expected Data Transfer Length; a command fitTransfer() refuses
// is answered at once with the residual set, and none of its Data-Out is solicited.
Plan planCommand(std::span<const std::uint8_t> cdb, const Geometry& geometry, std::uint32_t expectedLength);

// Sets the residual of `r` and truncates its Data-In to `expectedLength`: the command produced
// `produced` bytes (Data-In) or needed `produced` bytes (Data-Out).
void applyResidual(Response& r, std::uint64_t produced, std::uint32_t expectedLength);

// UNMAP parameter list (SBC-4 5.32.2).
struct UnmapDescriptor {
  std::uint64_t lba = 0;
  std::uint32_t blocks = 0;
  friend bool operator==(const UnmapDescriptor&, const UnmapDescriptor&) = default;
};
Checked<std::vector<UnmapDescriptor>> parseUnmapParameters(std::span<const std::uint8_t> data,
                                                          const Geometry& geometry);

// PERSISTENT RESERVE OUT basic parameter list (SPC-5 6.17.3), 24 bytes.
struct PrOutParameters {
  std::uint64_t key = 0;
  std::uint64_t serviceActionKey = 0;
  bool specIpt = false;
  bool allTgPt = false;
  bool aptpl = false;
};
Checked<PrOutParameters> parsePrOutParameters(std::span<const std::uint8_t> data);

// REPORT SUPPORTED OPERATION CODES parameter data (SPC-5 6.35), before allocation-length truncation.
Checked<std::vector<std::uint8_t>> reportSupportedOpcodes(const Cdb& cdb);

// Big-endian helpers for building parameter data.
inline void putBe16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
inline void putBe32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}
inline void putBe64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (56 - 8 * i));
}
inline std::uint16_t getBe16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
inline std::uint32_t getBe32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
inline std::uint64_t getBe64(const std::uint8_t* p) {
  return (std::uint64_t{getBe32(p)} << 32) | getBe32(p + 4);
}

}  // namespace pxedust::scsi
