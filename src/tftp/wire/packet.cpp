#include "tftp/wire/packet.hpp"

#include <fmt/format.h>

#include "common/bytes.hpp"

namespace pxedust::tftp::wire {

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto x = static_cast<unsigned char>(a[i]);
    auto y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

std::string_view describe(RequestError e) {
  switch (e) {
    case RequestError::None: return "ok";
    case RequestError::Empty: return "empty datagram";
    case RequestError::TruncatedOpcode: return "truncated opcode";
    case RequestError::NotARequest: return "not a request";
    case RequestError::UnknownOpcode: return "unknown opcode";
    case RequestError::MissingFilename: return "file name not terminated";
    case RequestError::EmptyFilename: return "empty file name";
    case RequestError::MissingMode: return "missing mode";
    case RequestError::UnknownMode: return "unsupported mode";
  }
  return "?";
}

std::uint16_t peekOpcode(std::span<const std::uint8_t> datagram) {
  ByteReader r(datagram);
  return r.be16();
}

RequestParse parseRequest(std::span<const std::uint8_t> datagram) {
  RequestParse out;
  if (datagram.empty()) {
    out.error = RequestError::Empty;
    return out;
  }
  ByteReader r(datagram);
  auto op = r.be16();
  if (!r.ok()) {
    out.error = RequestError::TruncatedOpcode;
    return out;
  }
  if (op != static_cast<std::uint16_t>(Opcode::Rrq) && op != static_cast<std::uint16_t>(Opcode::Wrq)) {
    out.error = (op >= 3 && op <= 6) ? RequestError::NotARequest : RequestError::UnknownOpcode;
    return out;
  }
  out.request.opcode = static_cast<Opcode>(op);
  auto filename = r.cstring();
  if (!filename) {
    out.error = RequestError::MissingFilename;
    return out;
  }
  if (filename->empty()) {
    out.error = RequestError::EmptyFilename;
    return out;
  }
  out.request.filename = *filename;
  auto mode = r.cstring();
  if (!mode || mode->empty()) {
    out.error = RequestError::MissingMode;
    return out;
  }
  if (equalsIgnoreCase(*mode, "octet")) {
    out.request.mode = Mode::Octet;
  } else if (equalsIgnoreCase(*mode, "netascii")) {
    out.request.mode = Mode::Netascii;
  } else {
    out.error = RequestError::UnknownMode;
    return out;
  }
  // RFC 2347 options: name NUL value NUL pairs. A trailing incomplete pair is ignored, as is
  // anything past kMaxOptions; neither makes the request invalid.
  while (!r.empty()) {
    auto name = r.cstring();
    if (!name) break;
    auto value = r.cstring();
    if (!value) break;
    if (name->empty()) continue;
    if (out.request.optionCount < Request::kMaxOptions)
      out.request.options[out.request.optionCount++] = Option{*name, *value};
  }
  return out;
}

bool parseAck(std::span<const std::uint8_t> datagram, Ack& out) {
  ByteReader r(datagram);
  auto op = r.be16();
  auto block = r.be16();
  if (!r.ok() || op != static_cast<std::uint16_t>(Opcode::Ack)) return false;
  out.block = block;
  return true;
}

bool parseError(std::span<const std::uint8_t> datagram, ErrorPacket& out) {
  ByteReader r(datagram);
  auto op = r.be16();
  auto code = r.be16();
  if (!r.ok() || op != static_cast<std::uint16_t>(Opcode::Error)) return false;
  out.code = code;
  out.message = r.cstring().value_or(std::string_view{});
  return true;
}

std::size_t writeError(std::span<std::uint8_t> out, ErrorCode code, std::string_view message) {
  ByteWriter w(out);
  w.be16(static_cast<std::uint16_t>(Opcode::Error));
  w.be16(static_cast<std::uint16_t>(code));
  w.cstring(message);
  return w.ok() ? w.size() : 0;
}

std::size_t writeAck(std::span<std::uint8_t> out, std::uint16_t block) {
  ByteWriter w(out);
  w.be16(static_cast<std::uint16_t>(Opcode::Ack));
  w.be16(block);
  return w.ok() ? w.size() : 0;
}

std::size_t writeOack(std::span<std::uint8_t> out, std::span<const OackEntry> entries) {
  ByteWriter w(out);
  w.be16(static_cast<std::uint16_t>(Opcode::Oack));
  for (const auto& e : entries) {
    w.cstring(e.name);
    char digits[24];
    auto end = fmt::format_to(digits, "{}", e.value);
    w.cstring(std::string_view(digits, static_cast<std::size_t>(end - digits)));
  }
  return w.ok() ? w.size() : 0;
}

std::size_t writeRequest(std::span<std::uint8_t> out, Opcode op, std::string_view filename, std::string_view mode,
                         std::span<const Option> options) {
  ByteWriter w(out);
  w.be16(static_cast<std::uint16_t>(op));
  w.cstring(filename);
  w.cstring(mode);
  for (const auto& o : options) {
    w.cstring(o.name);
    w.cstring(o.value);
  }
  return w.ok() ? w.size() : 0;
}

}  // namespace pxedust::tftp::wire
