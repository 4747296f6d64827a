// Fixed-format sense data (SPC-5 4.4.3) and the builders of the common errors.
#include "scsi/sense.hpp"

namespace pxedust::scsi {

std::vector<std::uint8_t> SenseData::fixed() const {
  std::vector<std::uint8_t> s(18, 0);
  s[0] = 0x70;  // current error, fixed format
  s[2] = static_cast<std::uint8_t>(key) & 0x0F;
  if (information) {
    s[0] |= 0x80;  // VALID
    // A 64-bit INFORMATION does not fit fixed format; SPC-5 says set VALID=0 then. Every value we
    // report (a byte offset inside one command's data) fits in 32 bits.
    if (*information > 0xFFFFFFFFu) {
      s[0] &= 0x7F;
    } else {
      auto v = static_cast<std::uint32_t>(*information);
      s[3] = static_cast<std::uint8_t>(v >> 24);
      s[4] = static_cast<std::uint8_t>(v >> 16);
      s[5] = static_cast<std::uint8_t>(v >> 8);
      s[6] = static_cast<std::uint8_t>(v);
    }
  }
  s[7] = 10;  // additional sense length: bytes 8..17
  s[12] = code.asc;
  s[13] = code.ascq;
  if (field) {
    // SPC-5 4.4.2.2.3: SKSV | C/D | BPV | bit pointer, then the field pointer.
    std::uint8_t b = 0x80;
    if (field->inCdb) b |= 0x40;
    if (field->bit) b |= 0x08 | (*field->bit & 0x07);
    s[15] = b;
    s[16] = static_cast<std::uint8_t>(field->byte >> 8);
    s[17] = static_cast<std::uint8_t>(field->byte);
  }
  return s;
}

std::optional<SenseData> parseFixedSense(std::span<const std::uint8_t> b) {
  if (b.size() < 14) return std::nullopt;
  const std::uint8_t rc = b[0] & 0x7F;
  if (rc != 0x70 && rc != 0x71) return std::nullopt;
  SenseData s;
  s.key = static_cast<SenseKey>(b[2] & 0x0F);
  if (b[0] & 0x80) {
    s.information = (std::uint64_t{b[3]} << 24) | (std::uint64_t{b[4]} << 16) | (std::uint64_t{b[5]} << 8) | b[6];
  }
  s.code = Asc{b[12], b[13]};
  if (b.size() >= 18 && (b[15] & 0x80)) {
    FieldPointer f;
    f.inCdb = (b[15] & 0x40) != 0;
    if (b[15] & 0x08) f.bit = static_cast<std::uint8_t>(b[15] & 0x07);
    f.byte = static_cast<std::uint16_t>((b[16] << 8) | b[17]);
    s.field = f;
  }
  return s;
}

SenseData invalidOpcode() { return {SenseKey::IllegalRequest, asc::kInvalidCommandOperationCode, {}, {}}; }

SenseData invalidFieldInCdb(std::uint16_t byte, std::optional<std::uint8_t> bit) {
  return {SenseKey::IllegalRequest, asc::kInvalidFieldInCdb, {}, FieldPointer{true, byte, bit}};
}

SenseData invalidFieldInParameterList(std::uint16_t byte, std::optional<std::uint8_t> bit) {
  return {SenseKey::IllegalRequest, asc::kInvalidFieldInParameterList, {}, FieldPointer{false, byte, bit}};
}

SenseData parameterListLengthError() { return {SenseKey::IllegalRequest, asc::kParameterListLengthError, {}, {}}; }
SenseData lbaOutOfRange() { return {SenseKey::IllegalRequest, asc::kLbaOutOfRange, {}, {}}; }
SenseData illegalRequest(Asc code) { return {SenseKey::IllegalRequest, code, {}, {}}; }
SenseData writeProtected(Asc code) { return {SenseKey::DataProtect, code, {}, {}}; }
SenseData unitAttention(Asc code) { return {SenseKey::UnitAttention, code, {}, {}}; }
SenseData miscompare(std::uint64_t offset) {
  return {SenseKey::Miscompare, asc::kMiscompareDuringVerify, offset, {}};
}
SenseData mediumError(Asc code) { return {SenseKey::MediumError, code, {}, {}}; }
SenseData notReady(Asc code) { return {SenseKey::NotReady, code, {}, {}}; }
SenseData abortedCommand(Asc code) { return {SenseKey::AbortedCommand, code, {}, {}}; }

Response Response::check(const SenseData& s) {
  Response r;
  r.status = Status::CheckCondition;
  r.sense = s.fixed();
  return r;
}

Response Response::conflict() {
  Response r;
  r.status = Status::ReservationConflict;
  return r;
}

}  // namespace pxedust::scsi
