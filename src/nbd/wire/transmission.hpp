// The NBD transmission phase as a pure codec (doc/proto.md "Transmission", "Size constraints",
// "Error values"): request headers in, a verdict out; reply headers and structured chunks built as
// bytes. No sockets, no clock, no block device.
//
// Design note. A connection reads one 28-byte header (parseRequest), asks validateRequest() what to
// do with it, and only then reads a WRITE's payload, whose length the verdict has bounded (habit 6:
// validate the header before allocating; on reject, drain the payload to stay in sync). The verdict
// is one of three:
//   Accept       the command is well formed for this export; the caller executes it (and, for a
//                WRITE, first reads request.length payload bytes: never more than maxPayload);
//   ErrorReply   answer with this NBD errno (errorReply() picks a simple reply or a structured ERROR
//                chunk, as the spec requires), after reading and discarding `drain` bytes (a refused
//                WRITE's payload; 0 otherwise);
//   Disconnect   hard disconnect: a refused WRITE whose payload is too large to drain without
//                calling it a denial of service. (A header parseRequest() refuses for its magic
//                means the same: there is no way to find the next header.)
// One table of commands (transmission.cpp) decides, per command: the flags it may carry and the
// transmission flag each needs, the transmission flag the command itself needs, whether it writes,
// whether it addresses a range, and which errno a range past the end gets. The checks run in this
// order, each answering the errno the spec names for it:
//   server shutting down                         ESHUTDOWN (for "any subsequently received requests")
//   unknown command                              EINVAL  ("SHOULD return NBD_EINVAL")
//   write/trim/zero on a read-only export        EPERM
//   command not advertised (FLUSH without SEND_FLUSH, BLOCK_STATUS without a meta context, ...)
//                                                EINVAL
//   unknown flag, or a flag not documented for the command, or not advertised (FUA, DF, FAST_ZERO)
//                                                EINVAL
//   FLUSH with a nonzero offset or length        EINVAL  (both "MUST be set to all-zero")
//   offset + length past the export size         ENOSPC for WRITE and WRITE_ZEROES, EINVAL for the
//                                                rest (never computed as offset + length: habit 3)
//   offset or length not a multiple of the minimum block size
//                                                EINVAL
//   READ or WRITE longer than the maximum payload
//                                                EINVAL; EOVERFLOW for a READ with structured
//                                                replies (the spec's "reject large read requests
//                                                up front with NBD_EOVERFLOW")
// TRIM, WRITE_ZEROES, CACHE and BLOCK_STATUS carry no payload, so their length is not held to the
// maximum payload (the spec: the server "SHOULD NOT disconnect"). Zero-length requests are accepted
// (the spec leaves them unspecified but says not to disconnect). NBD_CMD_DISC is always accepted:
// there is no reply to it, so there is nothing to refuse with.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "nbd/wire/protocol.hpp"

namespace pxedust::nbd::wire {

inline constexpr std::size_t kRequestHeaderSize = 28;
inline constexpr std::size_t kSimpleReplySize = 16;
inline constexpr std::size_t kChunkHeaderSize = 20;

// "Size constraints": the defaults a server without NBD_INFO_BLOCK_SIZE is assumed to have are a
// minimum of 1, a preferred size of 4096, and a maximum payload of at least 2^25.
inline constexpr std::uint32_t kDefaultMinBlock = 1;
inline constexpr std::uint32_t kDefaultPreferredBlock = 4096;
inline constexpr std::uint32_t kDefaultMaxPayload = 1u << 25;
// "any payload not exceeding 2^25 bytes SHOULD NOT be considered a denial of service attack": a
// refused WRITE up to this size (or up to the advertised maximum, if larger) is drained.
inline constexpr std::uint32_t kNeverDosPayload = 1u << 25;
// "Servers SHOULD NOT send more than 2^20 extents in a single reply chunk".
inline constexpr std::size_t kMaxExtentsPerChunk = 1u << 20;

struct BlockSizes {
  std::uint32_t minimum = kDefaultMinBlock;
  std::uint32_t preferred = kDefaultPreferredBlock;
  std::uint32_t maximum = kDefaultMaxPayload;  // maximum payload
  friend bool operator==(const BlockSizes&, const BlockSizes&) = default;
};

// The spec's rules for advertised sizes: the minimum a power of 2 no larger than 2^16; the preferred
// a power of 2 at least max(minimum, 512); the maximum payload at least the preferred.
bool validBlockSizes(const BlockSizes& b);

// What a device can do, as the block store answers it. The transmission flags are derived from
// these answers only, so the flags cannot promise what the device does not do (habit 9).
struct DeviceCapabilities {
  bool readOnly = false;
  bool canFlush = false;      // flush() makes completed writes durable
  bool canFua = false;        // a write can be made durable before it completes
  bool canTrim = false;
  bool canWriteZeroes = false;
  bool canFastZero = false;   // zeroing is cheaper than writing zeroes (else FAST_ZERO fails at once)
  bool canMultiConn = false;  // every connection to the export sees one cache
  bool canCache = false;      // NBD_CMD_CACHE does something useful
  bool canDf = true;          // reads can be answered in one content chunk (needs structured replies)
};

// HAS_FLAGS always; READ_ONLY; SEND_FLUSH, SEND_FUA, SEND_TRIM, SEND_WRITE_ZEROES, SEND_FAST_ZERO,
// CAN_MULTI_CONN, SEND_CACHE, SEND_DF from the answers. A read-only export advertises none of the
// write-side features (FUA, TRIM, WRITE_ZEROES, FAST_ZERO): a client would only be refused with
// EPERM. FAST_ZERO only with WRITE_ZEROES (the spec: "MUST set this transmission flag to 0 if
// NBD_FLAG_SEND_WRITE_ZEROES is not set"). ROTATIONAL is never set: it is an I/O scheduling hint, and
// the copy-on-write store has no seek cost worth scheduling for. SEND_DF must be cleared when
// structured replies are not negotiated; the handshake does that (HandshakeMachine).
std::uint16_t transmissionFlags(const DeviceCapabilities& caps);

// One request header, as sent.
struct Request {
  std::uint16_t flags = 0;
  std::uint16_t type = 0;
  std::uint64_t cookie = 0;
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
  friend bool operator==(const Request&, const Request&) = default;
};

// Parses the 28-byte header (extra bytes are not looked at). A short buffer or a bad magic is an
// Error: the caller cannot find the next header, so it must disconnect.
Result<Request> parseRequest(std::span<const std::uint8_t> header);
std::array<std::uint8_t, kRequestHeaderSize> serializeRequest(const Request& r);  // client side, tests

// What the transmission phase knows about the export and the negotiation; from the handshake
// (HandshakeResult::properties()).
struct ExportProperties {
  std::uint64_t size = 0;
  std::uint16_t flags = txflag::kHasFlags;  // as sent to the client (read-only, supported commands)
  BlockSizes blockSizes{};
  bool structuredReplies = false;
  bool metaContexts = false;  // at least one metadata context negotiated for this export
};

struct Verdict {
  enum class Kind : std::uint8_t { Accept, ErrorReply, Disconnect };
  Kind kind = Kind::Accept;
  Errno error = Errno::None;  // ErrorReply: what to answer
  std::uint32_t drain = 0;    // ErrorReply: payload bytes to read and discard first
  std::string_view reason;    // a fixed text for the log line and the drop counter
};

Verdict validateRequest(const ExportProperties& props, const Request& req, bool shuttingDown = false);

// Payload bytes that follow an accepted request's header (a WRITE's data; 0 for every other command).
constexpr std::uint32_t payloadLength(const Request& r) { return r.type == cmd::kWrite ? r.length : 0; }

// Maps a POSIX errno (as a block device's Error::code carries it) onto the values the spec allows:
// EDQUOT and EFBIG become ENOSPC as the spec asks, EROFS becomes EPERM, ERANGE (a range past the
// end) EINVAL, EOPNOTSUPP ENOTSUP; anything not listed is EIO.
Errno toNbdError(int posixErrno);

// ---- Replies ----
// Headers are returned as fixed arrays so that a READ's data can follow them without a copy
// (scatter/gather). Builders refuse what the spec forbids a server to send with an Error, rather than
// putting an invalid chunk on the wire that the client would have to disconnect over.

// Simple reply: magic, error, cookie; a successful READ's data follows.
std::array<std::uint8_t, kSimpleReplySize> simpleReply(std::uint64_t cookie, Errno error);

// Structured reply chunk header: magic, flags, type, cookie, payload length.
std::array<std::uint8_t, kChunkHeaderSize> chunkHeader(std::uint64_t cookie, std::uint16_t flags, std::uint16_t type,
                                                      std::uint32_t length);

// NBD_REPLY_TYPE_NONE with NBD_REPLY_FLAG_DONE (the only way it may be sent).
std::array<std::uint8_t, kChunkHeaderSize> noneChunk(std::uint64_t cookie);

// NBD_REPLY_TYPE_OFFSET_DATA header and offset; `dataLength` bytes of data follow. Refused when the
// data is empty (the chunk "MUST describe at least one byte") or too long for the 32-bit length.
Result<std::array<std::uint8_t, kChunkHeaderSize + 8>> offsetDataHeader(std::uint64_t cookie, std::uint64_t offset,
                                                                       std::uint32_t dataLength, bool done);

// NBD_REPLY_TYPE_OFFSET_HOLE. Refused when holeSize is 0.
Result<std::array<std::uint8_t, kChunkHeaderSize + 12>> offsetHoleChunk(std::uint64_t cookie, std::uint64_t offset,
                                                                       std::uint32_t holeSize, bool done);

struct BlockDescriptor {
  std::uint32_t length = 0;  // nonzero
  std::uint32_t status = 0;  // for base:allocation: state::kHole | state::kZero
};

// NBD_REPLY_TYPE_BLOCK_STATUS for one metadata context. Refused when there is no descriptor, a
// descriptor has length 0, or there are more than kMaxExtentsPerChunk.
Result<std::vector<std::uint8_t>> blockStatusChunk(std::uint64_t cookie, std::uint32_t contextId,
                                                   std::span<const BlockDescriptor> extents, bool done);

// NBD_REPLY_TYPE_ERROR / NBD_REPLY_TYPE_ERROR_OFFSET. The message is cut to 4096 bytes (on a UTF-8
// boundary). Refused when error is Errno::None ("MUST be nonzero").
Result<std::vector<std::uint8_t>> errorChunk(std::uint64_t cookie, Errno error, std::string_view message, bool done);
Result<std::vector<std::uint8_t>> errorOffsetChunk(std::uint64_t cookie, Errno error, std::string_view message,
                                                   std::uint64_t offset, bool done);

// The complete reply to a refused request: with structured replies an ERROR chunk with DONE (the spec
// prefers it, and it is the only choice for a READ), otherwise a simple reply. Refused for Errno::None.
Result<std::vector<std::uint8_t>> errorReply(std::uint64_t cookie, Errno error, bool structuredReplies,
                                             std::string_view message = {});

}  // namespace pxedust::nbd::wire
