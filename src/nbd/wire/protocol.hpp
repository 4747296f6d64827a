// The NBD protocol's vocabulary (NetworkBlockDevice doc/proto.md): magics, option and reply codes,
// information types, commands and their flags, transmission flags, structured reply chunk types and
// error numbers. Values only; what each one allows is decided by handshake.cpp and transmission.cpp,
// each from one table.
//
// Every number here is as the spec's "Values" section gives it, sent big-endian. Codes the spec
// reserves for experimental extensions (EXTENDED_HEADERS, RESIZE, PAYLOAD_LEN, ...) are listed so that
// logs can name them, but pxedust negotiates none of them: an extension option is answered
// NBD_REP_ERR_UNSUP, an extension command or flag NBD_EINVAL, as for any unknown code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace pxedust::nbd::wire {

// ---- Magics ----
inline constexpr std::uint64_t kNbdMagic = 0x4e42444d41474943ull;         // "NBDMAGIC"
inline constexpr std::uint64_t kOptionMagic = 0x49484156454f5054ull;      // "IHAVEOPT"
inline constexpr std::uint64_t kOptionReplyMagic = 0x0003e889045565a9ull;  // fixed newstyle replies
inline constexpr std::uint32_t kRequestMagic = 0x25609513u;
inline constexpr std::uint32_t kSimpleReplyMagic = 0x67446698u;
inline constexpr std::uint32_t kStructuredReplyMagic = 0x668e33efu;
// Reserved for the experimental EXTENDED_HEADERS extension; a request with this magic is a
// protocol error for us (we never negotiate it).
inline constexpr std::uint32_t kExtendedRequestMagic = 0x21e41c71u;

// "Conventions": a string (export name, description, error message, context name) MUST be no
// longer than 4096 bytes and MUST NOT contain NUL.
inline constexpr std::size_t kMaxString = 4096;

// ---- Handshake flags (16 bits, server) ----
namespace hsflag {
inline constexpr std::uint16_t kFixedNewstyle = 1u << 0;
inline constexpr std::uint16_t kNoZeroes = 1u << 1;
}  // namespace hsflag

// ---- Client flags (32 bits) ----
namespace clientflag {
inline constexpr std::uint32_t kFixedNewstyle = 1u << 0;
inline constexpr std::uint32_t kNoZeroes = 1u << 1;
}  // namespace clientflag

// ---- Option types ----
namespace opt {
inline constexpr std::uint32_t kExportName = 1;
inline constexpr std::uint32_t kAbort = 2;
inline constexpr std::uint32_t kList = 3;
inline constexpr std::uint32_t kPeekExport = 4;  // withdrawn
inline constexpr std::uint32_t kStartTls = 5;
inline constexpr std::uint32_t kInfo = 6;
inline constexpr std::uint32_t kGo = 7;
inline constexpr std::uint32_t kStructuredReply = 8;
inline constexpr std::uint32_t kListMetaContext = 9;
inline constexpr std::uint32_t kSetMetaContext = 10;
inline constexpr std::uint32_t kExtendedHeaders = 11;  // experimental, not negotiated
}  // namespace opt

// ---- Option reply types ----
namespace rep {
inline constexpr std::uint32_t kAck = 1;
inline constexpr std::uint32_t kServer = 2;
inline constexpr std::uint32_t kInfo = 3;
inline constexpr std::uint32_t kMetaContext = 4;
inline constexpr std::uint32_t kErrorBit = 1u << 31;  // every error reply type has bit 31 set
inline constexpr std::uint32_t kErrUnsup = kErrorBit + 1;
inline constexpr std::uint32_t kErrPolicy = kErrorBit + 2;
inline constexpr std::uint32_t kErrInvalid = kErrorBit + 3;
inline constexpr std::uint32_t kErrPlatform = kErrorBit + 4;
inline constexpr std::uint32_t kErrTlsReqd = kErrorBit + 5;
inline constexpr std::uint32_t kErrUnknown = kErrorBit + 6;
inline constexpr std::uint32_t kErrShutdown = kErrorBit + 7;
inline constexpr std::uint32_t kErrBlockSizeReqd = kErrorBit + 8;
inline constexpr std::uint32_t kErrTooBig = kErrorBit + 9;
inline constexpr std::uint32_t kErrExtHeaderReqd = kErrorBit + 10;  // experimental
}  // namespace rep

// ---- NBD_REP_INFO information types (NBD_OPT_INFO / NBD_OPT_GO) ----
namespace info {
inline constexpr std::uint16_t kExport = 0;
inline constexpr std::uint16_t kName = 1;
inline constexpr std::uint16_t kDescription = 2;
inline constexpr std::uint16_t kBlockSize = 3;
}  // namespace info

// ---- Transmission flags (16 bits, per export) ----
namespace txflag {
inline constexpr std::uint16_t kHasFlags = 1u << 0;  // MUST always be set
inline constexpr std::uint16_t kReadOnly = 1u << 1;
inline constexpr std::uint16_t kSendFlush = 1u << 2;
inline constexpr std::uint16_t kSendFua = 1u << 3;
inline constexpr std::uint16_t kRotational = 1u << 4;  // never set by pxedust: see transmission.hpp
inline constexpr std::uint16_t kSendTrim = 1u << 5;
inline constexpr std::uint16_t kSendWriteZeroes = 1u << 6;
inline constexpr std::uint16_t kSendDf = 1u << 7;      // only with structured replies
inline constexpr std::uint16_t kCanMultiConn = 1u << 8;
inline constexpr std::uint16_t kSendResize = 1u << 9;  // experimental, never set
inline constexpr std::uint16_t kSendCache = 1u << 10;
inline constexpr std::uint16_t kSendFastZero = 1u << 11;
inline constexpr std::uint16_t kBlockStatusPayload = 1u << 12;  // experimental, never set
}  // namespace txflag

// ---- Commands (request type, 16 bits) ----
namespace cmd {
inline constexpr std::uint16_t kRead = 0;
inline constexpr std::uint16_t kWrite = 1;
inline constexpr std::uint16_t kDisc = 2;
inline constexpr std::uint16_t kFlush = 3;
inline constexpr std::uint16_t kTrim = 4;
inline constexpr std::uint16_t kCache = 5;
inline constexpr std::uint16_t kWriteZeroes = 6;
inline constexpr std::uint16_t kBlockStatus = 7;
inline constexpr std::uint16_t kResize = 8;  // experimental, refused as unknown
}  // namespace cmd

// ---- Command flags (16 bits) ----
namespace cmdflag {
inline constexpr std::uint16_t kFua = 1u << 0;
inline constexpr std::uint16_t kNoHole = 1u << 1;
inline constexpr std::uint16_t kDf = 1u << 2;
inline constexpr std::uint16_t kReqOne = 1u << 3;
inline constexpr std::uint16_t kFastZero = 1u << 4;
inline constexpr std::uint16_t kPayloadLen = 1u << 5;  // experimental, refused as unknown
}  // namespace cmdflag

// ---- Structured reply chunks ----
namespace replyflag {
inline constexpr std::uint16_t kDone = 1u << 0;
}  // namespace replyflag

namespace chunk {
inline constexpr std::uint16_t kNone = 0;
inline constexpr std::uint16_t kOffsetData = 1;
inline constexpr std::uint16_t kOffsetHole = 2;
inline constexpr std::uint16_t kBlockStatus = 5;
inline constexpr std::uint16_t kBlockStatusExt = 6;  // experimental, never sent
inline constexpr std::uint16_t kErrorBit = 1u << 15;  // every error chunk type has bit 15 set
inline constexpr std::uint16_t kError = kErrorBit + 1;
inline constexpr std::uint16_t kErrorOffset = kErrorBit + 2;
}  // namespace chunk

// ---- base:allocation status flags (NBD_REPLY_TYPE_BLOCK_STATUS descriptors) ----
namespace state {
inline constexpr std::uint32_t kHole = 1u << 0;
inline constexpr std::uint32_t kZero = 1u << 1;
}  // namespace state

// The one metadata context pxedust offers, and its namespace.
inline constexpr std::string_view kBaseAllocation = "base:allocation";
inline constexpr std::string_view kBaseNamespace = "base:";

// ---- Error numbers (the reply's error field; "Error values") ----
// Only these may go on the wire; a server maps its own errno values onto them (toNbdError).
enum class Errno : std::uint32_t {
  None = 0,
  Perm = 1,
  Io = 5,
  NoMem = 12,
  Inval = 22,
  NoSpc = 28,
  Overflow = 75,
  NotSup = 95,
  Shutdown = 108,
};

constexpr std::string_view errnoName(Errno e) {
  switch (e) {
    case Errno::None: return "OK";
    case Errno::Perm: return "NBD_EPERM";
    case Errno::Io: return "NBD_EIO";
    case Errno::NoMem: return "NBD_ENOMEM";
    case Errno::Inval: return "NBD_EINVAL";
    case Errno::NoSpc: return "NBD_ENOSPC";
    case Errno::Overflow: return "NBD_EOVERFLOW";
    case Errno::NotSup: return "NBD_ENOTSUP";
    case Errno::Shutdown: return "NBD_ESHUTDOWN";
  }
  return "NBD_E?";
}

constexpr std::string_view optionName(std::uint32_t option) {
  switch (option) {
    case opt::kExportName: return "NBD_OPT_EXPORT_NAME";
    case opt::kAbort: return "NBD_OPT_ABORT";
    case opt::kList: return "NBD_OPT_LIST";
    case opt::kPeekExport: return "NBD_OPT_PEEK_EXPORT";
    case opt::kStartTls: return "NBD_OPT_STARTTLS";
    case opt::kInfo: return "NBD_OPT_INFO";
    case opt::kGo: return "NBD_OPT_GO";
    case opt::kStructuredReply: return "NBD_OPT_STRUCTURED_REPLY";
    case opt::kListMetaContext: return "NBD_OPT_LIST_META_CONTEXT";
    case opt::kSetMetaContext: return "NBD_OPT_SET_META_CONTEXT";
    case opt::kExtendedHeaders: return "NBD_OPT_EXTENDED_HEADERS";
    default: return "NBD_OPT_?";
  }
}

constexpr std::string_view replyTypeName(std::uint32_t type) {
  switch (type) {
    case rep::kAck: return "NBD_REP_ACK";
    case rep::kServer: return "NBD_REP_SERVER";
    case rep::kInfo: return "NBD_REP_INFO";
    case rep::kMetaContext: return "NBD_REP_META_CONTEXT";
    case rep::kErrUnsup: return "NBD_REP_ERR_UNSUP";
    case rep::kErrPolicy: return "NBD_REP_ERR_POLICY";
    case rep::kErrInvalid: return "NBD_REP_ERR_INVALID";
    case rep::kErrPlatform: return "NBD_REP_ERR_PLATFORM";
    case rep::kErrTlsReqd: return "NBD_REP_ERR_TLS_REQD";
    case rep::kErrUnknown: return "NBD_REP_ERR_UNKNOWN";
    case rep::kErrShutdown: return "NBD_REP_ERR_SHUTDOWN";
    case rep::kErrBlockSizeReqd: return "NBD_REP_ERR_BLOCK_SIZE_REQD";
    case rep::kErrTooBig: return "NBD_REP_ERR_TOO_BIG";
    case rep::kErrExtHeaderReqd: return "NBD_REP_ERR_EXT_HEADER_REQD";
    default: return "NBD_REP_?";
  }
}

constexpr std::string_view commandName(std::uint16_t type) {
  switch (type) {
    case cmd::kRead: return "NBD_CMD_READ";
    case cmd::kWrite: return "NBD_CMD_WRITE";
    case cmd::kDisc: return "NBD_CMD_DISC";
    case cmd::kFlush: return "NBD_CMD_FLUSH";
    case cmd::kTrim: return "NBD_CMD_TRIM";
    case cmd::kCache: return "NBD_CMD_CACHE";
    case cmd::kWriteZeroes: return "NBD_CMD_WRITE_ZEROES";
    case cmd::kBlockStatus: return "NBD_CMD_BLOCK_STATUS";
    case cmd::kResize: return "NBD_CMD_RESIZE";
    default: return "NBD_CMD_?";
  }
}

// The longest prefix of `s` that is at most `max` bytes and does not end inside a UTF-8 sequence
// (strings we send must be valid UTF-8; a server-side description or message may be longer than the
// 4096-byte limit and is cut, not refused).
constexpr std::string_view clampUtf8(std::string_view s, std::size_t max = kMaxString) {
  if (s.size() <= max) return s;
  std::size_t n = max;
  // Back off over continuation bytes (10xxxxxx) to the start of the cut sequence, and drop it.
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xc0u) == 0x80u) --n;
  return s.substr(0, n);
}

}  // namespace pxedust::nbd::wire
