// BHS parse/serialize. Every header is exactly 48 bytes (a fixed-extent span), so fields are read at
// constant offsets below 48; nothing here depends on a peer-supplied length.
#include "iscsi/wire/pdu.hpp"

#include <algorithm>

namespace pxedust::iscsi::wire {
namespace {

using In = std::span<const std::uint8_t, kBhsSize>;

template <std::size_t Off>
std::uint16_t get16(In b) {
  static_assert(Off + 2 <= kBhsSize);
  return static_cast<std::uint16_t>((b[Off] << 8) | b[Off + 1]);
}
template <std::size_t Off>
std::uint32_t get32(In b) {
  static_assert(Off + 4 <= kBhsSize);
  return (std::uint32_t{b[Off]} << 24) | (std::uint32_t{b[Off + 1]} << 16) | (std::uint32_t{b[Off + 2]} << 8) |
         std::uint32_t{b[Off + 3]};
}
std::uint64_t get64at8(In b) {
  return (std::uint64_t{get32<8>(b)} << 32) | get32<12>(b);
}
template <std::size_t Off>
void put16(Bhs& b, std::uint16_t v) {
  static_assert(Off + 2 <= kBhsSize);
  b[Off] = static_cast<std::uint8_t>(v >> 8);
  b[Off + 1] = static_cast<std::uint8_t>(v);
}
template <std::size_t Off>
void put32(Bhs& b, std::uint32_t v) {
  static_assert(Off + 4 <= kBhsSize);
  b[Off] = static_cast<std::uint8_t>(v >> 24);
  b[Off + 1] = static_cast<std::uint8_t>(v >> 16);
  b[Off + 2] = static_cast<std::uint8_t>(v >> 8);
  b[Off + 3] = static_cast<std::uint8_t>(v);
}
void put64at8(Bhs& b, std::uint64_t v) {
  put32<8>(b, static_cast<std::uint32_t>(v >> 32));
  put32<12>(b, static_cast<std::uint32_t>(v));
}

void readCommon(In b, BhsCommon& h) {
  h.immediate = (b[0] & 0x40u) != 0;
  h.final = (b[1] & 0x80u) != 0;
  h.totalAhsLength = b[4];
  h.dataSegmentLength = (std::uint32_t{b[5]} << 16) | (std::uint32_t{b[6]} << 8) | b[7];
  h.initiatorTaskTag = get32<16>(b);
}

// Writes opcode, I (initiator PDUs only), F, lengths and ITT. Opcode-specific bits of byte 1 are
// OR-ed in by the caller.
Bhs writeCommon(Opcode op, const BhsCommon& h) {
  Bhs b{};
  bool initiator = static_cast<std::uint8_t>(op) < 0x20;
  b[0] = static_cast<std::uint8_t>(static_cast<std::uint8_t>(op) | ((initiator && h.immediate) ? 0x40u : 0u));
  b[1] = h.final ? 0x80u : 0u;
  b[4] = h.totalAhsLength;
  std::uint32_t dsl = std::min(h.dataSegmentLength, kMaxDataSegmentLength);
  b[5] = static_cast<std::uint8_t>(dsl >> 16);
  b[6] = static_cast<std::uint8_t>(dsl >> 8);
  b[7] = static_cast<std::uint8_t>(dsl);
  put32<16>(b, h.initiatorTaskTag);
  return b;
}

Error headerError(RejectReason reason, const char* what) {
  return Error{what, static_cast<int>(reason)};
}

}  // namespace

std::string_view opcodeName(Opcode op) {
  switch (op) {
    case Opcode::NopOut: return "NOP-Out";
    case Opcode::ScsiCommand: return "SCSI Command";
    case Opcode::TaskMgmtRequest: return "Task Management Request";
    case Opcode::LoginRequest: return "Login Request";
    case Opcode::TextRequest: return "Text Request";
    case Opcode::DataOut: return "SCSI Data-Out";
    case Opcode::LogoutRequest: return "Logout Request";
    case Opcode::SnackRequest: return "SNACK Request";
    case Opcode::NopIn: return "NOP-In";
    case Opcode::ScsiResponse: return "SCSI Response";
    case Opcode::TaskMgmtResponse: return "Task Management Response";
    case Opcode::LoginResponse: return "Login Response";
    case Opcode::TextResponse: return "Text Response";
    case Opcode::DataIn: return "SCSI Data-In";
    case Opcode::LogoutResponse: return "Logout Response";
    case Opcode::R2t: return "R2T";
    case Opcode::AsyncMessage: return "Async Message";
    case Opcode::Reject: return "Reject";
  }
  return "unknown";
}

Result<InitiatorHeader> parseInitiatorHeader(In b) {
  auto op = static_cast<Opcode>(b[0] & 0x3fu);
  switch (op) {
    case Opcode::NopOut: {
      NopOut h;
      readCommon(b, h);
      h.lun = get64at8(b);
      h.targetTransferTag = get32<20>(b);
      h.cmdSn = get32<24>(b);
      h.expStatSn = get32<28>(b);
      return InitiatorHeader{h};
    }
    case Opcode::ScsiCommand: {
      ScsiCommand h;
      readCommon(b, h);
      h.read = (b[1] & 0x40u) != 0;
      h.write = (b[1] & 0x20u) != 0;
      h.attr = b[1] & 0x07u;
      h.lun = get64at8(b);
      h.expectedDataTransferLength = get32<20>(b);
      h.cmdSn = get32<24>(b);
      h.expStatSn = get32<28>(b);
      std::copy_n(b.begin() + 32, 16, h.cdb.begin());
      return InitiatorHeader{h};
    }
    case Opcode::TaskMgmtRequest: {
      TaskMgmtRequest h;
      readCommon(b, h);
      h.function = b[1] & 0x7fu;
      h.lun = get64at8(b);
      h.referencedTaskTag = get32<20>(b);
      h.cmdSn = get32<24>(b);
      h.expStatSn = get32<28>(b);
      h.refCmdSn = get32<32>(b);
      h.expDataSn = get32<36>(b);
      return InitiatorHeader{h};
    }
    case Opcode::LoginRequest: {
      LoginRequest h;
      readCommon(b, h);
      h.transit = (b[1] & 0x80u) != 0;
      h.cont = (b[1] & 0x40u) != 0;
      h.csg = (b[1] >> 2) & 0x03u;
      h.nsg = b[1] & 0x03u;
      h.versionMax = b[2];
      h.versionMin = b[3];
      std::copy_n(b.begin() + 8, 6, h.isid.begin());
      h.tsih = get16<14>(b);
      h.cid = get16<20>(b);
      h.cmdSn = get32<24>(b);
      h.expStatSn = get32<28>(b);
      return InitiatorHeader{h};
    }
    case Opcode::TextRequest: {
      TextRequest h;
      readCommon(b, h);
      h.cont = (b[1] & 0x40u) != 0;
      h.lun = get64at8(b);
      h.targetTransferTag = get32<20>(b);
      h.cmdSn = get32<24>(b);
      h.expStatSn = get32<28>(b);
      return InitiatorHeader{h};
    }
    case Opcode::DataOut: {
      DataOut h;
      readCommon(b, h);
      h.lun = get64at8(b);
      h.targetTransferTag = get32<20>(b);
      h.expStatSn = get32<28>(b);
      h.dataSn = get32<36>(b);
      h.bufferOffset = get32<40>(b);
      return InitiatorHeader{h};
    }
    case Opcode::LogoutRequest: {
      LogoutRequest h;
      readCommon(b, h);
      h.reason = b[1] & 0x7fu;
      h.cid = get16<20>(b);
      h.cmdSn = get32<24>(b);
      h.expStatSn = get32<28>(b);
      return InitiatorHeader{h};
    }
    case Opcode::SnackRequest: {
      SnackRequest h;
      readCommon(b, h);
      h.type = b[1] & 0x0fu;
      h.lun = get64at8(b);
      h.targetTransferTag = get32<20>(b);
      h.expStatSn = get32<28>(b);
      h.begRun = get32<40>(b);
      h.runLength = get32<44>(b);
      return InitiatorHeader{h};
    }
    case Opcode::NopIn:
    case Opcode::ScsiResponse:
    case Opcode::TaskMgmtResponse:
    case Opcode::LoginResponse:
    case Opcode::TextResponse:
    case Opcode::DataIn:
    case Opcode::LogoutResponse:
    case Opcode::R2t:
    case Opcode::AsyncMessage:
    case Opcode::Reject:
      return headerError(RejectReason::ProtocolError, "target opcode from an initiator");
  }
  // 0x1c..0x1e are vendor-specific, the rest reserved: §11.2.1.2 says answer with Reject.
  return headerError(RejectReason::CommandNotSupported, "unsupported opcode");
}

Result<TargetHeader> parseTargetHeader(In b) {
  auto op = static_cast<Opcode>(b[0] & 0x3fu);
  switch (op) {
    case Opcode::NopIn: {
      NopIn h;
      readCommon(b, h);
      h.lun = get64at8(b);
      h.targetTransferTag = get32<20>(b);
      h.statSn = get32<24>(b);
      h.expCmdSn = get32<28>(b);
      h.maxCmdSn = get32<32>(b);
      return TargetHeader{h};
    }
    case Opcode::ScsiResponse: {
      ScsiResponse h;
      readCommon(b, h);
      h.bidiOverflow = (b[1] & 0x10u) != 0;
      h.bidiUnderflow = (b[1] & 0x08u) != 0;
      h.residualOverflow = (b[1] & 0x04u) != 0;
      h.residualUnderflow = (b[1] & 0x02u) != 0;
      h.response = b[2];
      h.status = b[3];
      h.snackTag = get32<20>(b);
      h.statSn = get32<24>(b);
      h.expCmdSn = get32<28>(b);
      h.maxCmdSn = get32<32>(b);
      h.expDataSn = get32<36>(b);
      h.bidiReadResidualCount = get32<40>(b);
      h.residualCount = get32<44>(b);
      return TargetHeader{h};
    }
    case Opcode::TaskMgmtResponse: {
      TaskMgmtResponse h;
      readCommon(b, h);
      h.response = b[2];
      h.statSn = get32<24>(b);
      h.expCmdSn = get32<28>(b);
      h.maxCmdSn = get32<32>(b);
      return TargetHeader{h};
    }
    case Opcode::LoginResponse: {
      LoginResponse h;
      readCommon(b, h);
      h.transit = (b[1] & 0x80u) != 0;
      h.cont = (b[1] & 0x40u) != 0;
      h.csg = (b[1] >> 2) & 0x03u;
      h.nsg = b[1] & 0x03u;
      h.versionMax = b[2];
      h.versionActive = b[3];
      std::copy_n(b.begin() + 8, 6, h.isid.begin());
      h.tsih = get16<14>(b);
      h.statSn = get32<24>(b);
      h.expCmdSn = get32<28>(b);
      h.maxCmdSn = get32<32>(b);
      h.statusClass = b[36];
      h.statusDetail = b[37];
      return TargetHeader{h};
    }
    case Opcode::TextResponse: {
      TextResponse h;
      readCommon(b, h);
      h.cont = (b[1] & 0x40u) != 0;
      h.lun = get64at8(b);
      h.targetTransferTag = get32<20>(b);
      h.statSn = get32<24>(b);
      h.expCmdSn = get32<28>(b);
      h.maxCmdSn = get32<32>(b);
      return TargetHeader{h};
    }
    case Opcode::DataIn: {
      DataIn h;
      readCommon(b, h);
      h.acknowledge = (b[1] & 0x40u) != 0;
      h.residualOverflow = (b[1] & 0x04u) != 0;
      h.residualUnderflow = (b[1] & 0x02u) != 0;
      h.statusPresent = (b[1] & 0x01u) != 0;
      h.status = b[3];
      h.lun = get64at8(b);
      h.targetTransferTag = get32<20>(b);
      h.statSn = get32<24>(b);
      h.expCmdSn = get32<28>(b);
      h.maxCmdSn = get32<32>(b);
      h.dataSn = get32<36>(b);
      h.bufferOffset = get32<40>(b);
      h.residualCount = get32<44>(b);
      return TargetHeader{h};
    }
    case Opcode::LogoutResponse: {
      LogoutResponse h;
      readCommon(b, h);
      h.response = b[2];
      h.statSn = get32<24>(b);
      h.expCmdSn = get32<28>(b);
      h.maxCmdSn = get32<32>(b);
      h.time2Wait = get16<40>(b);
      h.time2Retain = get16<42>(b);
      return TargetHeader{h};
    }
    case Opcode::R2t: {
      R2t h;
      readCommon(b, h);
      h.lun = get64at8(b);
      h.targetTransferTag = get32<20>(b);
      h.statSn = get32<24>(b);
      h.expCmdSn = get32<28>(b);
      h.maxCmdSn = get32<32>(b);
      h.r2tSn = get32<36>(b);
      h.bufferOffset = get32<40>(b);
      h.desiredDataTransferLength = get32<44>(b);
      return TargetHeader{h};
    }
    case Opcode::AsyncMessage: {
      AsyncMessage h;
      readCommon(b, h);
      h.lun = get64at8(b);
      h.statSn = get32<24>(b);
      h.expCmdSn = get32<28>(b);
      h.maxCmdSn = get32<32>(b);
      h.asyncEvent = b[36];
      h.asyncVCode = b[37];
      h.parameter1 = get16<38>(b);
      h.parameter2 = get16<40>(b);
      h.parameter3 = get16<42>(b);
      return TargetHeader{h};
    }
    case Opcode::Reject: {
      Reject h;
      readCommon(b, h);
      h.reason = b[2];
      h.statSn = get32<24>(b);
      h.expCmdSn = get32<28>(b);
      h.maxCmdSn = get32<32>(b);
      h.dataSnOrR2tSn = get32<36>(b);
      return TargetHeader{h};
    }
    case Opcode::NopOut:
    case Opcode::ScsiCommand:
    case Opcode::TaskMgmtRequest:
    case Opcode::LoginRequest:
    case Opcode::TextRequest:
    case Opcode::DataOut:
    case Opcode::LogoutRequest:
    case Opcode::SnackRequest:
      return headerError(RejectReason::ProtocolError, "initiator opcode from a target");
  }
  return headerError(RejectReason::CommandNotSupported, "unsupported opcode");
}

// ---- Serializers ----

Bhs serialize(const NopOut& h) {
  Bhs b = writeCommon(Opcode::NopOut, h);
  put64at8(b, h.lun);
  put32<20>(b, h.targetTransferTag);
  put32<24>(b, h.cmdSn);
  put32<28>(b, h.expStatSn);
  return b;
}

Bhs serialize(const ScsiCommand& h) {
  Bhs b = writeCommon(Opcode::ScsiCommand, h);
  b[1] |= static_cast<std::uint8_t>((h.read ? 0x40u : 0u) | (h.write ? 0x20u : 0u) | (h.attr & 0x07u));
  put64at8(b, h.lun);
  put32<20>(b, h.expectedDataTransferLength);
  put32<24>(b, h.cmdSn);
  put32<28>(b, h.expStatSn);
  std::copy(h.cdb.begin(), h.cdb.end(), b.begin() + 32);
  return b;
}

Bhs serialize(const TaskMgmtRequest& h) {
  Bhs b = writeCommon(Opcode::TaskMgmtRequest, h);
  b[1] = static_cast<std::uint8_t>(0x80u | (h.function & 0x7fu));  // F is always 1
  put64at8(b, h.lun);
  put32<20>(b, h.referencedTaskTag);
  put32<24>(b, h.cmdSn);
  put32<28>(b, h.expStatSn);
  put32<32>(b, h.refCmdSn);
  put32<36>(b, h.expDataSn);
  return b;
}

namespace {
std::uint8_t loginFlags(bool transit, bool cont, std::uint8_t csg, std::uint8_t nsg) {
  return static_cast<std::uint8_t>((transit ? 0x80u : 0u) | (cont ? 0x40u : 0u) | ((csg & 0x03u) << 2) |
                                   (nsg & 0x03u));
}
}  // namespace

Bhs serialize(const LoginRequest& h) {
  Bhs b = writeCommon(Opcode::LoginRequest, h);
  b[0] |= 0x40u;  // always immediate (§11.12)
  b[1] = loginFlags(h.transit, h.cont, h.csg, h.nsg);
  b[2] = h.versionMax;
  b[3] = h.versionMin;
  std::copy(h.isid.begin(), h.isid.end(), b.begin() + 8);
  put16<14>(b, h.tsih);
  put16<20>(b, h.cid);
  put32<24>(b, h.cmdSn);
  put32<28>(b, h.expStatSn);
  return b;
}

Bhs serialize(const TextRequest& h) {
  Bhs b = writeCommon(Opcode::TextRequest, h);
  if (h.cont) b[1] |= 0x40u;
  put64at8(b, h.lun);
  put32<20>(b, h.targetTransferTag);
  put32<24>(b, h.cmdSn);
  put32<28>(b, h.expStatSn);
  return b;
}

Bhs serialize(const DataOut& h) {
  Bhs b = writeCommon(Opcode::DataOut, h);
  put64at8(b, h.lun);
  put32<20>(b, h.targetTransferTag);
  put32<28>(b, h.expStatSn);
  put32<36>(b, h.dataSn);
  put32<40>(b, h.bufferOffset);
  return b;
}

Bhs serialize(const LogoutRequest& h) {
  Bhs b = writeCommon(Opcode::LogoutRequest, h);
  b[1] = static_cast<std::uint8_t>(0x80u | (h.reason & 0x7fu));
  put16<20>(b, h.cid);
  put32<24>(b, h.cmdSn);
  put32<28>(b, h.expStatSn);
  return b;
}

Bhs serialize(const SnackRequest& h) {
  Bhs b = writeCommon(Opcode::SnackRequest, h);
  b[1] = static_cast<std::uint8_t>(0x80u | (h.type & 0x0fu));
  put64at8(b, h.lun);
  put32<20>(b, h.targetTransferTag);
  put32<28>(b, h.expStatSn);
  put32<40>(b, h.begRun);
  put32<44>(b, h.runLength);
  return b;
}

Bhs serialize(const NopIn& h) {
  Bhs b = writeCommon(Opcode::NopIn, h);
  b[1] = 0x80u;
  put64at8(b, h.lun);
  put32<20>(b, h.targetTransferTag);
  put32<24>(b, h.statSn);
  put32<28>(b, h.expCmdSn);
  put32<32>(b, h.maxCmdSn);
  return b;
}

Bhs serialize(const ScsiResponse& h) {
  Bhs b = writeCommon(Opcode::ScsiResponse, h);
  b[1] = static_cast<std::uint8_t>(0x80u | (h.bidiOverflow ? 0x10u : 0u) | (h.bidiUnderflow ? 0x08u : 0u) |
                                   (h.residualOverflow ? 0x04u : 0u) | (h.residualUnderflow ? 0x02u : 0u));
  b[2] = h.response;
  b[3] = h.status;
  put32<20>(b, h.snackTag);
  put32<24>(b, h.statSn);
  put32<28>(b, h.expCmdSn);
  put32<32>(b, h.maxCmdSn);
  put32<36>(b, h.expDataSn);
  put32<40>(b, h.bidiReadResidualCount);
  put32<44>(b, h.residualCount);
  return b;
}

Bhs serialize(const TaskMgmtResponse& h) {
  Bhs b = writeCommon(Opcode::TaskMgmtResponse, h);
  b[1] = 0x80u;
  b[2] = h.response;
  put32<24>(b, h.statSn);
  put32<28>(b, h.expCmdSn);
  put32<32>(b, h.maxCmdSn);
  return b;
}

Bhs serialize(const LoginResponse& h) {
  Bhs b = writeCommon(Opcode::LoginResponse, h);
  b[1] = loginFlags(h.transit, h.cont, h.csg, h.nsg);
  b[2] = h.versionMax;
  b[3] = h.versionActive;
  std::copy(h.isid.begin(), h.isid.end(), b.begin() + 8);
  put16<14>(b, h.tsih);
  put32<24>(b, h.statSn);
  put32<28>(b, h.expCmdSn);
  put32<32>(b, h.maxCmdSn);
  b[36] = h.statusClass;
  b[37] = h.statusDetail;
  return b;
}

Bhs serialize(const TextResponse& h) {
  Bhs b = writeCommon(Opcode::TextResponse, h);
  if (h.cont) b[1] |= 0x40u;
  put64at8(b, h.lun);
  put32<20>(b, h.targetTransferTag);
  put32<24>(b, h.statSn);
  put32<28>(b, h.expCmdSn);
  put32<32>(b, h.maxCmdSn);
  return b;
}

Bhs serialize(const DataIn& h) {
  Bhs b = writeCommon(Opcode::DataIn, h);
  b[1] |= static_cast<std::uint8_t>((h.acknowledge ? 0x40u : 0u) | (h.residualOverflow ? 0x04u : 0u) |
                                    (h.residualUnderflow ? 0x02u : 0u) | (h.statusPresent ? 0x01u : 0u));
  b[3] = h.statusPresent ? h.status : 0;
  put64at8(b, h.lun);
  put32<20>(b, h.targetTransferTag);
  put32<24>(b, h.statusPresent ? h.statSn : 0);
  put32<28>(b, h.expCmdSn);
  put32<32>(b, h.maxCmdSn);
  put32<36>(b, h.dataSn);
  put32<40>(b, h.bufferOffset);
  put32<44>(b, h.statusPresent ? h.residualCount : 0);
  return b;
}

Bhs serialize(const LogoutResponse& h) {
  Bhs b = writeCommon(Opcode::LogoutResponse, h);
  b[1] = 0x80u;
  b[2] = h.response;
  put32<24>(b, h.statSn);
  put32<28>(b, h.expCmdSn);
  put32<32>(b, h.maxCmdSn);
  put16<40>(b, h.time2Wait);
  put16<42>(b, h.time2Retain);
  return b;
}

Bhs serialize(const R2t& h) {
  Bhs b = writeCommon(Opcode::R2t, h);
  b[1] = 0x80u;
  put64at8(b, h.lun);
  put32<20>(b, h.targetTransferTag);
  put32<24>(b, h.statSn);
  put32<28>(b, h.expCmdSn);
  put32<32>(b, h.maxCmdSn);
  put32<36>(b, h.r2tSn);
  put32<40>(b, h.bufferOffset);
  put32<44>(b, h.desiredDataTransferLength);
  return b;
}

Bhs serialize(const AsyncMessage& h) {
  Bhs b = writeCommon(Opcode::AsyncMessage, h);
  b[1] = 0x80u;
  put64at8(b, h.lun);
  put32<16>(b, kReservedTag);
  put32<24>(b, h.statSn);
  put32<28>(b, h.expCmdSn);
  put32<32>(b, h.maxCmdSn);
  b[36] = h.asyncEvent;
  b[37] = h.asyncVCode;
  put16<38>(b, h.parameter1);
  put16<40>(b, h.parameter2);
  put16<42>(b, h.parameter3);
  return b;
}

Bhs serialize(const Reject& h) {
  Bhs b = writeCommon(Opcode::Reject, h);
  b[1] = 0x80u;
  b[2] = h.reason;
  put32<16>(b, kReservedTag);
  put32<24>(b, h.statSn);
  put32<28>(b, h.expCmdSn);
  put32<32>(b, h.maxCmdSn);
  put32<36>(b, h.dataSnOrR2tSn);
  return b;
}

Bhs serialize(const InitiatorHeader& h) {
  return std::visit([](const auto& x) { return serialize(x); }, h);
}
Bhs serialize(const TargetHeader& h) {
  return std::visit([](const auto& x) { return serialize(x); }, h);
}

Reject makeReject(RejectReason reason) {
  Reject r;
  r.reason = static_cast<std::uint8_t>(reason);
  r.initiatorTaskTag = kReservedTag;
  r.dataSegmentLength = kBhsSize;
  return r;
}

std::uint64_t encodeLun(std::uint16_t lun) {
  if (lun < 256) return std::uint64_t{lun} << 48;  // peripheral device addressing, bus 0
  return (std::uint64_t{0x4000u | (lun & 0x3fffu)}) << 48;  // flat space addressing
}

std::uint32_t decodeLun(std::uint64_t field) {
  auto top = static_cast<std::uint16_t>(field >> 48);
  if ((field & 0x0000ffffffffffffull) != 0) return UINT32_MAX;  // multi-level: not ours
  switch (top >> 14) {
    case 0:  // peripheral: bus identifier must be 0 for a single level
      return (top >> 8) == 0 ? top & 0xffu : UINT32_MAX;
    case 1:  // flat space
      return top & 0x3fffu;
    default:
      return UINT32_MAX;
  }
}

Result<std::vector<AhsSegment>> parseAhs(std::span<const std::uint8_t> area) {
  std::vector<AhsSegment> out;
  std::size_t pos = 0;
  while (pos < area.size()) {
    if (area.size() - pos < 4) return Error{"AHS: truncated segment header", static_cast<int>(RejectReason::ProtocolError)};
    std::size_t len = (std::size_t{area[pos]} << 8) | area[pos + 1];
    std::uint8_t type = area[pos + 2];
    if (len == 0) return Error{"AHS: zero-length segment", static_cast<int>(RejectReason::ProtocolError)};
    std::size_t avail = area.size() - pos - 3;
    if (len > avail) return Error{"AHS: segment overruns the AHS area", static_cast<int>(RejectReason::ProtocolError)};
    out.push_back(AhsSegment{type, area.subspan(pos + 3, len)});
    std::size_t used = 3 + len;
    used += (4 - (used & 3u)) & 3u;
    pos += std::min(used, area.size() - pos);
  }
  return out;
}

Result<std::size_t> fullCdb(const ScsiCommand& cmd, std::span<const std::uint8_t> ahsArea, std::span<std::uint8_t> out) {
  if (out.size() < cmd.cdb.size()) return Error{"CDB buffer too small", static_cast<int>(RejectReason::ProtocolError)};
  std::copy(cmd.cdb.begin(), cmd.cdb.end(), out.begin());
  std::size_t n = cmd.cdb.size();
  auto segs = parseAhs(ahsArea);
  if (!segs) return segs.error();
  bool seen = false;
  for (const auto& s : *segs) {
    if (s.type != static_cast<std::uint8_t>(AhsType::ExtendedCdb)) continue;
    if (seen) return Error{"two Extended CDB AHS", static_cast<int>(RejectReason::ProtocolError)};
    seen = true;
    auto extra = s.body.subspan(1);  // the first byte is reserved (§11.2.2.3)
    if (extra.size() > out.size() - n) return Error{"Extended CDB too long", static_cast<int>(RejectReason::ProtocolError)};
    std::copy(extra.begin(), extra.end(), out.begin() + static_cast<std::ptrdiff_t>(n));
    n += extra.size();
  }
  return n;
}

}  // namespace pxedust::iscsi::wire
