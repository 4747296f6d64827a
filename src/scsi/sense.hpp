// SCSI status, sense data and the Response a command completes with.
//
// Design note. Pure vocabulary (no asio, no block store): the CDB parser, the parameter-list parsers
// and the fuzzer share it with the Lun. Sense data is always returned in FIXED format (SPC-5
// 4.4.3): the control mode page reports D_SENSE=0 and does not let it change, so initiators never
// expect descriptor format. Every error a command can end with is a SenseData value built by one of
// the helpers below, so the ASC/ASCQ pairs live in one table-like place instead of being scattered
// as magic numbers through the handlers.
//
// Residuals (SAM-5 5.4.4, RFC 7143 11.4.5): the Lun computes them against the transport's Expected
// Data Transfer Length; data-in is already truncated to that length.
//
// Data-in is bytes in dataIn, or, for a large READ whose transport can splice (Command::spliceOk),
// page references in dataPipe (blockstore/pipe_chain.hpp), named here only by a declaration.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace pxedust::blockstore {
class PipeChain;
}

namespace pxedust::scsi {

// SAM-5 5.3: status codes.
enum class Status : std::uint8_t {
  Good = 0x00,
  CheckCondition = 0x02,
  ConditionMet = 0x04,
  Busy = 0x08,
  ReservationConflict = 0x18,
  TaskSetFull = 0x28,
  AcaActive = 0x30,
  TaskAborted = 0x40,
};

// SPC-5 4.4.8 table 52: sense keys.
enum class SenseKey : std::uint8_t {
  NoSense = 0x0,
  RecoveredError = 0x1,
  NotReady = 0x2,
  MediumError = 0x3,
  HardwareError = 0x4,
  IllegalRequest = 0x5,
  UnitAttention = 0x6,
  DataProtect = 0x7,
  BlankCheck = 0x8,
  AbortedCommand = 0xB,
  Miscompare = 0xE,
};

// An additional sense code and qualifier (SPC-5 4.4.9 table 53), as one value.
struct Asc {
  std::uint8_t asc = 0;
  std::uint8_t ascq = 0;
  friend bool operator==(const Asc&, const Asc&) = default;
};

namespace asc {
inline constexpr Asc kNone{0x00, 0x00};
inline constexpr Asc kLogicalUnitNotReadyManualIntervention{0x04, 0x03};
inline constexpr Asc kWriteError{0x0C, 0x00};
inline constexpr Asc kInvalidFieldInInformationUnit{0x0E, 0x03};  // an EDTL the command cannot honour
inline constexpr Asc kUnrecoveredReadError{0x11, 0x00};
inline constexpr Asc kMiscompareDuringVerify{0x1D, 0x00};
inline constexpr Asc kParameterListLengthError{0x1A, 0x00};
inline constexpr Asc kInvalidCommandOperationCode{0x20, 0x00};
inline constexpr Asc kLbaOutOfRange{0x21, 0x00};
inline constexpr Asc kInvalidFieldInCdb{0x24, 0x00};
inline constexpr Asc kLogicalUnitNotSupported{0x25, 0x00};
inline constexpr Asc kInvalidFieldInParameterList{0x26, 0x00};
inline constexpr Asc kWriteProtected{0x27, 0x00};
inline constexpr Asc kSoftwareWriteProtected{0x27, 0x02};
inline constexpr Asc kPowerOnResetOccurred{0x29, 0x00};
inline constexpr Asc kBusDeviceResetOccurred{0x29, 0x03};  // LUN RESET / target reset
inline constexpr Asc kModeParametersChanged{0x2A, 0x01};
inline constexpr Asc kReservationsPreempted{0x2A, 0x03};
inline constexpr Asc kReservationsReleased{0x2A, 0x04};
inline constexpr Asc kRegistrationsPreempted{0x2A, 0x05};
inline constexpr Asc kCommandsClearedByAnotherInitiator{0x2F, 0x00};
inline constexpr Asc kSavingParametersNotSupported{0x39, 0x00};
inline constexpr Asc kMediumNotPresent{0x3A, 0x00};
inline constexpr Asc kReportedLunsDataChanged{0x3F, 0x0E};
inline constexpr Asc kProtocolServiceCrcError{0x47, 0x05};  // iSCSI: a lost Data-Out (RFC 7143 11.4.7.2)
inline constexpr Asc kInsufficientRegistrationResources{0x55, 0x04};
}  // namespace asc

// The sense-key-specific field pointer (SPC-5 4.4.2.2.3): which byte (and bit) of the CDB or of
// the parameter list was wrong.
struct FieldPointer {
  bool inCdb = true;  // C/D: 1 = CDB, 0 = parameter list
  std::uint16_t byte = 0;
  std::optional<std::uint8_t> bit;  // BPV=1 with this bit when set
  friend bool operator==(const FieldPointer&, const FieldPointer&) = default;
};

struct SenseData {
  SenseKey key = SenseKey::NoSense;
  Asc code{};
  std::optional<std::uint64_t> information;  // VALID=1; fixed format carries the low 32 bits
  std::optional<FieldPointer> field;         // SKSV=1 (ILLEGAL REQUEST only)

  // SPC-5 4.4.3: 18-byte fixed-format sense data, response code 0x70 (current error).
  [[nodiscard]] std::vector<std::uint8_t> fixed() const;
  friend bool operator==(const SenseData&, const SenseData&) = default;
};

// Parses fixed-format sense bytes back (tests and logs); nullopt if not 0x70/0x71 or too short.
std::optional<SenseData> parseFixedSense(std::span<const std::uint8_t> bytes);

// Builders for the common cases.
SenseData invalidOpcode();
SenseData invalidFieldInCdb(std::uint16_t byte, std::optional<std::uint8_t> bit = std::nullopt);
SenseData invalidFieldInParameterList(std::uint16_t byte, std::optional<std::uint8_t> bit = std::nullopt);
SenseData parameterListLengthError();
SenseData lbaOutOfRange();
SenseData illegalRequest(Asc code);
SenseData writeProtected(Asc code = asc::kWriteProtected);
SenseData unitAttention(Asc code);
SenseData miscompare(std::uint64_t offset);
SenseData mediumError(Asc code);
SenseData notReady(Asc code);
SenseData abortedCommand(Asc code);

enum class Residual : std::uint8_t { None, Underflow, Overflow };

// What a command completes with. The transport sends `status`, `sense` as the SCSI Response's sense
// data (with its 2-byte SenseLength prefix added by iSCSI), `dataIn` as Data-In, and the residual.
struct Response {
  Status status = Status::Good;
  std::vector<std::uint8_t> sense;   // fixed format; empty unless CHECK CONDITION
  std::vector<std::uint8_t> dataIn;  // never longer than the command's expected transfer length
  std::shared_ptr<blockstore::PipeChain> dataPipe;  // instead of dataIn: dataPipeLength bytes
  std::size_t dataPipeLength = 0;
  Residual residual = Residual::None;
  std::uint32_t residualCount = 0;

  static Response good() { return {}; }
  static Response check(const SenseData& s);
  static Response conflict();
  [[nodiscard]] bool isGood() const { return status == Status::Good; }
};

}  // namespace pxedust::scsi
