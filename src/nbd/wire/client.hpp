// The client's side of the one handshake a kernel-attaching client makes (doc/proto.md, fixed
// newstyle): read the greeting, answer with client flags, ask for an export with NBD_OPT_GO, read
// replies until NBD_REP_ACK, keeping the export's size and transmission flags from NBD_INFO_EXPORT.
// Pure functions over bytes, header-only: the initramfs's attach tool (src/initramfs/nbd_attach)
// builds them without the rest of pxedust. Every length the server sends is checked before use.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nbd/wire/protocol.hpp"

namespace pxedust::nbd::wire::client {

inline std::uint64_t getBe(std::span<const std::uint8_t> b) {
  std::uint64_t v = 0;
  for (auto c : b) v = (v << 8) | c;
  return v;
}

inline void putBe(std::vector<std::uint8_t>& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

// The server's first 18 bytes: "NBDMAGIC", "IHAVEOPT", 16-bit handshake flags. The flags, or an
// error message (an oldstyle server, or one without fixed newstyle).
struct Greeting {
  std::uint16_t flags = 0;
  std::string error;
};
inline constexpr std::size_t kGreetingSize = 18;
inline Greeting parseGreeting(std::span<const std::uint8_t, kGreetingSize> b) {
  Greeting g;
  if (getBe(b.subspan(0, 8)) != kNbdMagic) {
    g.error = "not an NBD server (no NBDMAGIC)";
  } else if (getBe(b.subspan(8, 8)) != kOptionMagic) {
    g.error = "an oldstyle NBD server (no IHAVEOPT)";
  } else {
    g.flags = static_cast<std::uint16_t>(getBe(b.subspan(16, 2)));
    if ((g.flags & hsflag::kFixedNewstyle) == 0) g.error = "the server does not speak fixed newstyle";
  }
  return g;
}

// The client flags answering those handshake flags, then NBD_OPT_GO for `name` with no
// information requests (the server sends NBD_INFO_EXPORT regardless).
inline std::vector<std::uint8_t> goRequest(std::uint16_t serverFlags, std::string_view name) {
  std::vector<std::uint8_t> out;
  std::uint32_t flags = clientflag::kFixedNewstyle;
  if (serverFlags & hsflag::kNoZeroes) flags |= clientflag::kNoZeroes;
  putBe(out, flags, 4);
  putBe(out, kOptionMagic, 8);
  putBe(out, opt::kGo, 4);
  putBe(out, 4 + name.size() + 2, 4);
  putBe(out, name.size(), 4);
  out.insert(out.end(), name.begin(), name.end());
  putBe(out, 0, 2);
  return out;
}

// An option reply's 20-byte header. Data longer than kMaxReplyData is refused: no reply to GO
// needs more (an error message is at most 4096 bytes).
inline constexpr std::size_t kReplyHeaderSize = 20;
inline constexpr std::uint32_t kMaxReplyData = 64 * 1024;
struct ReplyHeader {
  std::uint32_t option = 0;
  std::uint32_t type = 0;
  std::uint32_t length = 0;
};
inline std::optional<ReplyHeader> parseReplyHeader(std::span<const std::uint8_t, kReplyHeaderSize> b) {
  if (getBe(b.subspan(0, 8)) != kOptionReplyMagic) return std::nullopt;
  ReplyHeader h{static_cast<std::uint32_t>(getBe(b.subspan(8, 4))), static_cast<std::uint32_t>(getBe(b.subspan(12, 4))),
                static_cast<std::uint32_t>(getBe(b.subspan(16, 4)))};
  if (h.length > kMaxReplyData) return std::nullopt;
  return h;
}

// The export's size and transmission flags, from an NBD_REP_INFO's data when it is NBD_INFO_EXPORT.
struct ExportInfo {
  std::uint64_t size = 0;
  std::uint16_t flags = 0;
};
inline std::optional<ExportInfo> parseExportInfo(std::span<const std::uint8_t> data) {
  if (data.size() != 12 || getBe(data.subspan(0, 2)) != info::kExport) return std::nullopt;
  return ExportInfo{getBe(data.subspan(2, 8)), static_cast<std::uint16_t>(getBe(data.subspan(10, 2)))};
}

// An error reply's text for people: the server's message when it sent a printable one.
inline std::string replyError(std::uint32_t type, std::span<const std::uint8_t> data) {
  std::string why;
  switch (type) {
    case rep::kErrUnsup: why = "unsupported"; break;
    case rep::kErrPolicy: why = "refused by policy"; break;
    case rep::kErrInvalid: why = "invalid"; break;
    case rep::kErrTlsReqd: why = "TLS required"; break;
    case rep::kErrUnknown: why = "no such export"; break;
    case rep::kErrShutdown: why = "server shutting down"; break;
    default: why = "error " + std::to_string(type & ~rep::kErrorBit); break;
  }
  std::string text;
  for (auto c : data.first(std::min<std::size_t>(data.size(), 512)))
    text += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  return text.empty() ? why : why + ": " + text;
}

}  // namespace pxedust::nbd::wire::client
