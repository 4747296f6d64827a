// iSCSI PDU headers (RFC 7143 §11): the 48-byte Basic Header Segment of every opcode, as typed
// structs, parsed from and serialized to bytes. Pure: no sockets, no allocation.
//
// Layout shared by all opcodes (§11.2.1): byte 0 = I bit (0x40, initiator PDUs only) | opcode (6
// bits); byte 1 bit 7 = F (final); byte 4 = TotalAHSLength in 4-byte words; bytes 5..7 =
// DataSegmentLength (24 bits, padding excluded); bytes 8..15 = LUN or opcode-specific; bytes 16..19 =
// Initiator Task Tag; bytes 20..47 opcode-specific. Each struct below lists its own fields in wire
// order; the field comments give the byte offsets. Reserved fields are written as zero and ignored
// on input (RFC 7143 §11.2.1.1: "reserved fields ... MUST be 0 on send, ignored on receipt").
//
// The parsers check only what the header alone can tell: the opcode and its direction. Whether a
// PDU is allowed now (phase, CmdSN window, lengths against negotiated limits) is the session's job;
// framing limits are the framer's. A parse error carries the Reject reason to send (§11.17.1) in
// Error::code.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.hpp"

namespace pxedust::iscsi::wire {

inline constexpr std::size_t kBhsSize = 48;
inline constexpr std::size_t kDigestSize = 4;
inline constexpr std::uint32_t kMaxDataSegmentLength = (1u << 24) - 1;  // 24-bit field
inline constexpr std::uint32_t kReservedTag = 0xffffffffu;               // §11.2.1.8

using Bhs = std::array<std::uint8_t, kBhsSize>;
using Isid = std::array<std::uint8_t, 6>;
using Cdb = std::array<std::uint8_t, 16>;

// Padding to a 4-byte boundary (§11.1: AHS and data segments are padded).
constexpr std::uint32_t pad4(std::uint32_t n) { return (4 - (n & 3u)) & 3u; }

enum class Opcode : std::uint8_t {
  // Initiator opcodes (§11.2.1.2).
  NopOut = 0x00,
  ScsiCommand = 0x01,
  TaskMgmtRequest = 0x02,
  LoginRequest = 0x03,
  TextRequest = 0x04,
  DataOut = 0x05,
  LogoutRequest = 0x06,
  SnackRequest = 0x10,
  // Target opcodes.
  NopIn = 0x20,
  ScsiResponse = 0x21,
  TaskMgmtResponse = 0x22,
  LoginResponse = 0x23,
  TextResponse = 0x24,
  DataIn = 0x25,
  LogoutResponse = 0x26,
  R2t = 0x31,
  AsyncMessage = 0x32,
  Reject = 0x3f,
};
std::string_view opcodeName(Opcode op);
inline Opcode opcodeOf(std::span<const std::uint8_t, kBhsSize> bhs) { return Opcode(bhs[0] & 0x3fu); }

// Reject reasons (§11.17.1).
enum class RejectReason : std::uint8_t {
  DataDigestError = 0x02,
  SnackReject = 0x03,
  ProtocolError = 0x04,
  CommandNotSupported = 0x05,
  ImmediateCommandReject = 0x06,
  TaskInProgress = 0x07,
  InvalidDataAck = 0x08,
  InvalidPduField = 0x09,
  LongOperationReject = 0x0a,
  WaitingForLogout = 0x0c,
};

// Fields at the same place in every BHS.
struct BhsCommon {
  bool immediate = false;                 // byte 0 bit 6 (initiator PDUs)
  bool final = true;                      // byte 1 bit 7
  std::uint8_t totalAhsLength = 0;        // byte 4, in 4-byte words
  std::uint32_t dataSegmentLength = 0;    // bytes 5..7
  std::uint32_t initiatorTaskTag = 0;     // bytes 16..19
};

// ---- Initiator PDUs ----

struct NopOut : BhsCommon {               // §11.18
  std::uint64_t lun = 0;                  // 8..15
  std::uint32_t targetTransferTag = kReservedTag;  // 20..23
  std::uint32_t cmdSn = 0;                // 24..27
  std::uint32_t expStatSn = 0;            // 28..31
};

struct ScsiCommand : BhsCommon {          // §11.3
  bool read = false;                      // byte 1 bit 6 (R)
  bool write = false;                     // byte 1 bit 5 (W)
  std::uint8_t attr = 0;                  // byte 1 bits 0..2 (task attribute)
  std::uint64_t lun = 0;
  std::uint32_t expectedDataTransferLength = 0;  // 20..23
  std::uint32_t cmdSn = 0;                // 24..27
  std::uint32_t expStatSn = 0;            // 28..31
  Cdb cdb{};                              // 32..47 (longer CDBs continue in an Extended CDB AHS)
};

enum class TmfFunction : std::uint8_t {   // §11.5.1
  AbortTask = 1,
  AbortTaskSet = 2,
  ClearAca = 3,
  ClearTaskSet = 4,
  LogicalUnitReset = 5,
  TargetWarmReset = 6,
  TargetColdReset = 7,
  TaskReassign = 8,
};

struct TaskMgmtRequest : BhsCommon {      // §11.5
  std::uint8_t function = 0;              // byte 1 bits 0..6 (TmfFunction)
  std::uint64_t lun = 0;
  std::uint32_t referencedTaskTag = kReservedTag;  // 20..23
  std::uint32_t cmdSn = 0;                // 24..27
  std::uint32_t expStatSn = 0;            // 28..31
  std::uint32_t refCmdSn = 0;             // 32..35
  std::uint32_t expDataSn = 0;            // 36..39
};

// Login stages (§11.12.3): CSG/NSG values.
enum class Stage : std::uint8_t { Security = 0, Operational = 1, FullFeature = 3 };

struct LoginRequest : BhsCommon {         // §11.12 (byte 0 always has the I bit)
  bool transit = false;                   // byte 1 bit 7 (T, in place of F)
  bool cont = false;                      // byte 1 bit 6 (C)
  std::uint8_t csg = 0;                   // byte 1 bits 2..3
  std::uint8_t nsg = 0;                   // byte 1 bits 0..1
  std::uint8_t versionMax = 0;            // byte 2
  std::uint8_t versionMin = 0;            // byte 3
  Isid isid{};                            // 8..13
  std::uint16_t tsih = 0;                 // 14..15
  std::uint16_t cid = 0;                  // 20..21
  std::uint32_t cmdSn = 0;                // 24..27
  std::uint32_t expStatSn = 0;            // 28..31
};

struct TextRequest : BhsCommon {          // §11.10
  bool cont = false;                      // byte 1 bit 6 (C)
  std::uint64_t lun = 0;
  std::uint32_t targetTransferTag = kReservedTag;  // 20..23
  std::uint32_t cmdSn = 0;
  std::uint32_t expStatSn = 0;
};

struct DataOut : BhsCommon {              // §11.7
  std::uint64_t lun = 0;
  std::uint32_t targetTransferTag = kReservedTag;  // 20..23
  std::uint32_t expStatSn = 0;            // 28..31
  std::uint32_t dataSn = 0;               // 36..39
  std::uint32_t bufferOffset = 0;         // 40..43
};

enum class LogoutReason : std::uint8_t { CloseSession = 0, CloseConnection = 1, RemoveForRecovery = 2 };

struct LogoutRequest : BhsCommon {        // §11.14
  std::uint8_t reason = 0;                // byte 1 bits 0..6
  std::uint16_t cid = 0;                  // 20..21
  std::uint32_t cmdSn = 0;
  std::uint32_t expStatSn = 0;
};

struct SnackRequest : BhsCommon {         // §11.16
  std::uint8_t type = 0;                  // byte 1 bits 0..3
  std::uint64_t lun = 0;
  std::uint32_t targetTransferTag = kReservedTag;  // 20..23
  std::uint32_t expStatSn = 0;            // 28..31
  std::uint32_t begRun = 0;               // 40..43
  std::uint32_t runLength = 0;            // 44..47
};

// ---- Target PDUs ----

struct NopIn : BhsCommon {                // §11.19
  std::uint64_t lun = 0;
  std::uint32_t targetTransferTag = kReservedTag;
  std::uint32_t statSn = 0;               // 24..27
  std::uint32_t expCmdSn = 0;             // 28..31
  std::uint32_t maxCmdSn = 0;             // 32..35
};

struct ScsiResponse : BhsCommon {         // §11.4
  bool bidiOverflow = false;              // byte 1 bit 4 (o)
  bool bidiUnderflow = false;             // byte 1 bit 3 (u)
  bool residualOverflow = false;          // byte 1 bit 2 (O)
  bool residualUnderflow = false;         // byte 1 bit 1 (U)
  std::uint8_t response = 0;              // byte 2 (0 = command completed at target)
  std::uint8_t status = 0;                // byte 3 (SCSI status)
  std::uint32_t snackTag = 0;             // 20..23
  std::uint32_t statSn = 0;
  std::uint32_t expCmdSn = 0;
  std::uint32_t maxCmdSn = 0;
  std::uint32_t expDataSn = 0;            // 36..39
  std::uint32_t bidiReadResidualCount = 0;  // 40..43
  std::uint32_t residualCount = 0;        // 44..47
};

enum class TmfResponseCode : std::uint8_t {  // §11.6.1
  FunctionComplete = 0,
  TaskDoesNotExist = 1,
  LunDoesNotExist = 2,
  TaskStillAllegiant = 3,
  ReassignmentNotSupported = 4,
  NotSupported = 5,
  AuthorizationFailed = 6,
  Rejected = 255,
};

struct TaskMgmtResponse : BhsCommon {     // §11.6
  std::uint8_t response = 0;              // byte 2
  std::uint32_t statSn = 0;
  std::uint32_t expCmdSn = 0;
  std::uint32_t maxCmdSn = 0;
};

struct LoginResponse : BhsCommon {        // §11.13
  bool transit = false;
  bool cont = false;
  std::uint8_t csg = 0;
  std::uint8_t nsg = 0;
  std::uint8_t versionMax = 0;            // byte 2
  std::uint8_t versionActive = 0;         // byte 3
  Isid isid{};
  std::uint16_t tsih = 0;
  std::uint32_t statSn = 0;
  std::uint32_t expCmdSn = 0;
  std::uint32_t maxCmdSn = 0;
  std::uint8_t statusClass = 0;           // byte 36
  std::uint8_t statusDetail = 0;          // byte 37
};

struct TextResponse : BhsCommon {         // §11.11
  bool cont = false;
  std::uint64_t lun = 0;
  std::uint32_t targetTransferTag = kReservedTag;
  std::uint32_t statSn = 0;
  std::uint32_t expCmdSn = 0;
  std::uint32_t maxCmdSn = 0;
};

struct DataIn : BhsCommon {               // §11.7
  bool acknowledge = false;               // byte 1 bit 6 (A)
  bool residualOverflow = false;          // byte 1 bit 2 (O)
  bool residualUnderflow = false;         // byte 1 bit 1 (U)
  bool statusPresent = false;             // byte 1 bit 0 (S)
  std::uint8_t status = 0;                // byte 3, valid with S
  std::uint64_t lun = 0;
  std::uint32_t targetTransferTag = kReservedTag;
  std::uint32_t statSn = 0;               // valid with S
  std::uint32_t expCmdSn = 0;
  std::uint32_t maxCmdSn = 0;
  std::uint32_t dataSn = 0;               // 36..39
  std::uint32_t bufferOffset = 0;         // 40..43
  std::uint32_t residualCount = 0;        // 44..47, valid with S
};

struct LogoutResponse : BhsCommon {       // §11.15
  std::uint8_t response = 0;              // byte 2: 0 ok, 1 CID not found, 2 recovery unsupported, 3 cleanup failed
  std::uint32_t statSn = 0;
  std::uint32_t expCmdSn = 0;
  std::uint32_t maxCmdSn = 0;
  std::uint16_t time2Wait = 0;            // 40..41
  std::uint16_t time2Retain = 0;          // 42..43
};

struct R2t : BhsCommon {                  // §11.8
  std::uint64_t lun = 0;
  std::uint32_t targetTransferTag = 0;
  std::uint32_t statSn = 0;
  std::uint32_t expCmdSn = 0;
  std::uint32_t maxCmdSn = 0;
  std::uint32_t r2tSn = 0;                // 36..39
  std::uint32_t bufferOffset = 0;         // 40..43
  std::uint32_t desiredDataTransferLength = 0;  // 44..47
};

struct AsyncMessage : BhsCommon {         // §11.9 (ITT is always 0xffffffff)
  std::uint64_t lun = 0;
  std::uint32_t statSn = 0;
  std::uint32_t expCmdSn = 0;
  std::uint32_t maxCmdSn = 0;
  std::uint8_t asyncEvent = 0;            // byte 36
  std::uint8_t asyncVCode = 0;            // byte 37
  std::uint16_t parameter1 = 0;           // 38..39
  std::uint16_t parameter2 = 0;           // 40..41
  std::uint16_t parameter3 = 0;           // 42..43
};

struct Reject : BhsCommon {               // §11.17 (ITT is always 0xffffffff; data = the rejected BHS)
  std::uint8_t reason = 0;                // byte 2 (RejectReason)
  std::uint32_t statSn = 0;
  std::uint32_t expCmdSn = 0;
  std::uint32_t maxCmdSn = 0;
  std::uint32_t dataSnOrR2tSn = 0;        // 36..39
};

using InitiatorHeader = std::variant<NopOut, ScsiCommand, TaskMgmtRequest, LoginRequest, TextRequest, DataOut,
                                     LogoutRequest, SnackRequest>;
using TargetHeader = std::variant<NopIn, ScsiResponse, TaskMgmtResponse, LoginResponse, TextResponse, DataIn,
                                  LogoutResponse, R2t, AsyncMessage, Reject>;

// Parses a BHS the initiator sent. Errors: an unknown or vendor-specific opcode (Reject reason
// CommandNotSupported), a target opcode (ProtocolError).
Result<InitiatorHeader> parseInitiatorHeader(std::span<const std::uint8_t, kBhsSize> bhs);
// The mirror image, for tests and tools acting as an initiator.
Result<TargetHeader> parseTargetHeader(std::span<const std::uint8_t, kBhsSize> bhs);

// Serializers: every field of the struct, reserved bytes zero. The I bit is written only for
// initiator opcodes; Login Request always carries it (§11.12).
Bhs serialize(const NopOut& h);
Bhs serialize(const ScsiCommand& h);
Bhs serialize(const TaskMgmtRequest& h);
Bhs serialize(const LoginRequest& h);
Bhs serialize(const TextRequest& h);
Bhs serialize(const DataOut& h);
Bhs serialize(const LogoutRequest& h);
Bhs serialize(const SnackRequest& h);
Bhs serialize(const NopIn& h);
Bhs serialize(const ScsiResponse& h);
Bhs serialize(const TaskMgmtResponse& h);
Bhs serialize(const LoginResponse& h);
Bhs serialize(const TextResponse& h);
Bhs serialize(const DataIn& h);
Bhs serialize(const LogoutResponse& h);
Bhs serialize(const R2t& h);
Bhs serialize(const AsyncMessage& h);
Bhs serialize(const Reject& h);
Bhs serialize(const InitiatorHeader& h);
Bhs serialize(const TargetHeader& h);

// A Reject for a PDU whose header we hold: its data segment is that complete BHS (§11.17.3).
Reject makeReject(RejectReason reason);

// LUN encoding in the 8-byte field (SAM-5 §4.7): peripheral addressing below 256, flat space to 16383.
std::uint64_t encodeLun(std::uint16_t lun);
// The LUN a single-level peripheral or flat-space address names; nullopt-like UINT32_MAX otherwise.
std::uint32_t decodeLun(std::uint64_t field);

// Additional Header Segments (§11.2.2) of a SCSI Command. Each is AHSLength (2 bytes: the bytes after
// AHSType, i.e. the AHS-specific byte plus data, padding excluded), AHSType (1 byte), then AHSLength
// bytes, then padding to 4.
enum class AhsType : std::uint8_t { ExtendedCdb = 1, BidiReadLength = 2 };
struct AhsSegment {
  std::uint8_t type = 0;
  std::span<const std::uint8_t> body;  // the AHSLength bytes after AHSType (first is AHS-specific)
};
// Splits an AHS area (TotalAHSLength * 4 bytes). Errors on an overrun or an empty segment.
Result<std::vector<AhsSegment>> parseAhs(std::span<const std::uint8_t> area);

// The CDB of a command: the 16 BHS bytes, followed by an Extended CDB AHS if present (§11.3.5,
// §11.2.2.3). Writes into `out` (up to 16 + 1020 bytes) and returns the CDB length.
Result<std::size_t> fullCdb(const ScsiCommand& cmd, std::span<const std::uint8_t> ahsArea,
                            std::span<std::uint8_t> out);

}  // namespace pxedust::iscsi::wire
