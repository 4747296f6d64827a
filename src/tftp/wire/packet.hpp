// TFTP packets (RFC 1350, options RFC 2347): parse and build. Pure: bytes in, struct or error out.
//
// Views returned by the parsers point into the caller's buffer and live as long as it does. Nothing
// here trusts a length: every field is read through ByteReader, and strings must end in NUL inside
// the datagram. The writers build into a caller-provided buffer and report the size written (0 when
// it does not fit).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace pxedust::tftp::wire {

enum class Opcode : std::uint16_t { Rrq = 1, Wrq = 2, Data = 3, Ack = 4, Error = 5, Oack = 6 };

enum class ErrorCode : std::uint16_t {
  NotDefined = 0,
  FileNotFound = 1,
  AccessViolation = 2,
  DiskFull = 3,
  IllegalOperation = 4,
  UnknownTransferId = 5,
  FileExists = 6,
  NoSuchUser = 7,
  OptionRefused = 8,  // RFC 2347
};

enum class Mode : std::uint8_t { Octet, Netascii };

struct Option {
  std::string_view name;
  std::string_view value;
};

// A read or write request. Options beyond kMaxOptions are ignored (real clients send at most five).
struct Request {
  static constexpr std::size_t kMaxOptions = 16;
  Opcode opcode = Opcode::Rrq;
  std::string_view filename;
  Mode mode = Mode::Octet;
  std::array<Option, kMaxOptions> options{};
  std::size_t optionCount = 0;

  [[nodiscard]] std::span<const Option> optionList() const { return {options.data(), optionCount}; }
};

enum class RequestError : std::uint8_t {
  None,
  Empty,            // zero-length datagram
  TruncatedOpcode,  // one byte
  NotARequest,      // a valid opcode that is not RRQ/WRQ (DATA, ACK, ERROR, OACK)
  UnknownOpcode,
  MissingFilename,  // no NUL-terminated file name
  EmptyFilename,
  MissingMode,      // no NUL-terminated mode
  UnknownMode,      // not octet/netascii (mail is obsolete and refused)
};
std::string_view describe(RequestError e);

struct RequestParse {
  RequestError error = RequestError::None;
  Request request;
};

RequestParse parseRequest(std::span<const std::uint8_t> datagram);

// The opcode of a datagram, or 0 when it is shorter than two bytes.
std::uint16_t peekOpcode(std::span<const std::uint8_t> datagram);

struct Ack {
  std::uint16_t block = 0;
};
// An ACK is exactly 4 bytes in RFC 1350; some clients pad, so extra bytes are tolerated.
bool parseAck(std::span<const std::uint8_t> datagram, Ack& out);

struct ErrorPacket {
  std::uint16_t code = 0;
  std::string_view message;  // empty when the sender left out the NUL
};
bool parseError(std::span<const std::uint8_t> datagram, ErrorPacket& out);

constexpr std::size_t kDataHeaderSize = 4;
inline void writeDataHeader(std::uint8_t* out, std::uint16_t block) {
  out[0] = 0;
  out[1] = static_cast<std::uint8_t>(Opcode::Data);
  out[2] = static_cast<std::uint8_t>(block >> 8);
  out[3] = static_cast<std::uint8_t>(block);
}

std::size_t writeError(std::span<std::uint8_t> out, ErrorCode code, std::string_view message);
std::size_t writeAck(std::span<std::uint8_t> out, std::uint16_t block);

struct OackEntry {
  std::string_view name;
  std::uint64_t value = 0;
};
std::size_t writeOack(std::span<std::uint8_t> out, std::span<const OackEntry> entries);
std::size_t writeRequest(std::span<std::uint8_t> out, Opcode op, std::string_view filename, std::string_view mode,
                         std::span<const Option> options);

bool equalsIgnoreCase(std::string_view a, std::string_view b);

}  // namespace pxedust::tftp::wire
