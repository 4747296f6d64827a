// The transmission codec (transmission.hpp): the command table, the request checks in the order the
// header documents, and the reply builders. Peer numbers are only compared, never added (habit 3).
#include "nbd/wire/transmission.hpp"

#include <algorithm>
#include <cerrno>

#include "common/bytes.hpp"
#include "common/checked.hpp"

namespace pxedust::nbd::wire {

namespace {

std::uint64_t be64(ByteReader& r) {
  std::uint64_t hi = r.be32();
  return (hi << 32) | r.be32();
}

void be64(ByteWriter& w, std::uint64_t v) {
  w.be32(static_cast<std::uint32_t>(v >> 32));
  w.be32(static_cast<std::uint32_t>(v));
}

constexpr bool isPowerOfTwo(std::uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

// A command flag, and the transmission flag that must have been advertised for a client to use it
// (0: none needed). FUA is "valid for all commands, provided NBD_FLAG_SEND_FUA has been negotiated".
struct FlagRule {
  std::uint16_t flag;
  std::uint16_t needs;
};
constexpr FlagRule kFlagRules[] = {
    {cmdflag::kFua, txflag::kSendFua},
    {cmdflag::kNoHole, 0},  // "MUST support the use of this flag if it advertises SEND_WRITE_ZEROES"
    {cmdflag::kDf, txflag::kSendDf},
    {cmdflag::kReqOne, 0},
    {cmdflag::kFastZero, txflag::kSendFastZero},
};

// One row per command the spec defines (experimental ones are unknown to us).
struct CommandRule {
  std::uint16_t type;
  std::uint16_t flags;        // the command flags documented for it
  std::uint16_t needs;        // the transmission flag that exposes it (0: always available)
  bool writes;                // refused with EPERM on a read-only export
  bool ranged;                // offset/length address the export: range and alignment checked
  Errno pastEnd;              // the errno for a range past the export's end
};
constexpr std::uint16_t kAnyFua = cmdflag::kFua;
constexpr CommandRule kCommands[] = {
    {cmd::kRead, kAnyFua | cmdflag::kDf, 0, false, true, Errno::Inval},
    {cmd::kWrite, kAnyFua, 0, true, true, Errno::NoSpc},
    {cmd::kFlush, kAnyFua, txflag::kSendFlush, false, false, Errno::Inval},
    {cmd::kTrim, kAnyFua, txflag::kSendTrim, true, true, Errno::Inval},
    {cmd::kCache, kAnyFua, txflag::kSendCache, false, true, Errno::Inval},
    {cmd::kWriteZeroes, kAnyFua | cmdflag::kNoHole | cmdflag::kFastZero, txflag::kSendWriteZeroes, true, true,
     Errno::NoSpc},
    // Needs structured replies and a context; checked apart (no transmission flag exposes it).
    {cmd::kBlockStatus, kAnyFua | cmdflag::kReqOne, 0, false, true, Errno::Inval},
};

const CommandRule* findCommand(std::uint16_t type) {
  for (const auto& c : kCommands) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

Verdict refuse(Errno e, std::string_view reason) { return {Verdict::Kind::ErrorReply, e, 0, reason}; }

std::vector<std::uint8_t> errorChunkBytes(std::uint64_t cookie, std::uint16_t type, Errno error,
                                          std::string_view message, const std::uint64_t* offset, bool done) {
  message = clampUtf8(message);
  const std::size_t payload = 4 + 2 + message.size() + (offset != nullptr ? 8 : 0);
  std::vector<std::uint8_t> out(kChunkHeaderSize + payload);
  ByteWriter w(out);
  auto header = chunkHeader(cookie, done ? replyflag::kDone : 0, type, static_cast<std::uint32_t>(payload));
  w.bytes(header);
  w.be32(static_cast<std::uint32_t>(error));
  w.be16(static_cast<std::uint16_t>(message.size()));
  w.str(message);
  if (offset != nullptr) be64(w, *offset);
  return out;
}

}  // namespace

bool validBlockSizes(const BlockSizes& b) {
  if (!isPowerOfTwo(b.minimum) || b.minimum > (1u << 16)) return false;
  if (!isPowerOfTwo(b.preferred) || b.preferred < b.minimum || b.preferred < 512) return false;
  return b.maximum >= b.preferred;
}

std::uint16_t transmissionFlags(const DeviceCapabilities& caps) {
  std::uint16_t f = txflag::kHasFlags;
  if (caps.readOnly) {
    f |= txflag::kReadOnly;
  } else {
    if (caps.canFua) f |= txflag::kSendFua;
    if (caps.canTrim) f |= txflag::kSendTrim;
    if (caps.canWriteZeroes) {
      f |= txflag::kSendWriteZeroes;
      if (caps.canFastZero) f |= txflag::kSendFastZero;
    }
  }
  if (caps.canFlush) f |= txflag::kSendFlush;
  if (caps.canMultiConn) f |= txflag::kCanMultiConn;
  if (caps.canCache) f |= txflag::kSendCache;
  if (caps.canDf) f |= txflag::kSendDf;
  return f;
}

Result<Request> parseRequest(std::span<const std::uint8_t> header) {
  if (header.size() < kRequestHeaderSize) return Error{"short NBD request header", EINVAL};
  ByteReader r(header.first(kRequestHeaderSize));
  std::uint32_t magic = r.be32();
  if (magic != kRequestMagic) {
    return Error{magic == kExtendedRequestMagic ? "extended request header (not negotiated)" : "bad NBD request magic",
                 EPROTO};
  }
  Request req;
  req.flags = r.be16();
  req.type = r.be16();
  req.cookie = be64(r);
  req.offset = be64(r);
  req.length = r.be32();
  return req;
}

std::array<std::uint8_t, kRequestHeaderSize> serializeRequest(const Request& req) {
  std::array<std::uint8_t, kRequestHeaderSize> out{};
  ByteWriter w(out);
  w.be32(kRequestMagic);
  w.be16(req.flags);
  w.be16(req.type);
  be64(w, req.cookie);
  be64(w, req.offset);
  w.be32(req.length);
  return out;
}

Verdict validateRequest(const ExportProperties& props, const Request& req, bool shuttingDown) {
  if (req.type == cmd::kDisc) return {};  // no reply exists to refuse it with

  Verdict v = [&]() -> Verdict {
    if (shuttingDown) return refuse(Errno::Shutdown, "server shutting down");
    const CommandRule* c = findCommand(req.type);
    if (c == nullptr) return refuse(Errno::Inval, "unknown command");

    if (c->writes && (props.flags & txflag::kReadOnly) != 0) return refuse(Errno::Perm, "write to a read-only export");
    if (c->needs != 0 && (props.flags & c->needs) == 0) return refuse(Errno::Inval, "command not advertised");
    if (req.type == cmd::kBlockStatus && (!props.structuredReplies || !props.metaContexts)) {
      return refuse(Errno::Inval, "block status without a negotiated metadata context");
    }

    if ((req.flags & ~c->flags) != 0) return refuse(Errno::Inval, "command flag unknown or not valid for the command");
    for (const auto& rule : kFlagRules) {
      if ((req.flags & rule.flag) != 0 && rule.needs != 0 && (props.flags & rule.needs) == 0) {
        return refuse(Errno::Inval, "command flag not advertised");
      }
    }

    if (!c->ranged) {
      if (req.offset != 0 || req.length != 0) return refuse(Errno::Inval, "flush with a nonzero offset or length");
      return {};
    }
    if (!within<std::uint64_t>(req.offset, req.length, props.size)) return refuse(c->pastEnd, "range past the end of the export");
    const std::uint32_t min = props.blockSizes.minimum;
    if (min > 1 && (req.offset % min != 0 || req.length % min != 0)) {
      return refuse(Errno::Inval, "request not aligned to the minimum block size");
    }
    if ((req.type == cmd::kRead || req.type == cmd::kWrite) && req.length > props.blockSizes.maximum) {
      if (req.type == cmd::kRead && props.structuredReplies) return refuse(Errno::Overflow, "read over the maximum payload");
      return refuse(Errno::Inval, "request over the maximum payload");
    }
    return {};
  }();

  // A refused WRITE is followed by its payload: read it to stay in sync, unless it is so large that
  // the spec lets us call it a denial of service (over both 2^25 and what we advertised).
  if (v.kind == Verdict::Kind::ErrorReply && req.type == cmd::kWrite) {
    std::uint32_t drainable = std::max(props.blockSizes.maximum, kNeverDosPayload);
    if (req.length > drainable) return {Verdict::Kind::Disconnect, v.error, 0, "refused write payload too large to drain"};
    v.drain = req.length;
  }
  return v;
}

Errno toNbdError(int e) {
  switch (e) {
    case 0: return Errno::None;
    case EPERM: case EROFS: case EACCES: return Errno::Perm;
    case EIO: return Errno::Io;
    case ENOMEM: return Errno::NoMem;
    case EINVAL: case ERANGE: return Errno::Inval;
    case ENOSPC: case EDQUOT: case EFBIG: return Errno::NoSpc;
    case EOVERFLOW: return Errno::Overflow;
    case ENOTSUP: return Errno::NotSup;  // EOPNOTSUPP is the same value on Linux
    case ESHUTDOWN: return Errno::Shutdown;
    default: return Errno::Io;
  }
}

std::array<std::uint8_t, kSimpleReplySize> simpleReply(std::uint64_t cookie, Errno error) {
  std::array<std::uint8_t, kSimpleReplySize> out{};
  ByteWriter w(out);
  w.be32(kSimpleReplyMagic);
  w.be32(static_cast<std::uint32_t>(error));
  be64(w, cookie);
  return out;
}

std::array<std::uint8_t, kChunkHeaderSize> chunkHeader(std::uint64_t cookie, std::uint16_t flags, std::uint16_t type,
                                                      std::uint32_t length) {
  std::array<std::uint8_t, kChunkHeaderSize> out{};
  ByteWriter w(out);
  w.be32(kStructuredReplyMagic);
  w.be16(flags);
  w.be16(type);
  be64(w, cookie);
  w.be32(length);
  return out;
}

std::array<std::uint8_t, kChunkHeaderSize> noneChunk(std::uint64_t cookie) {
  return chunkHeader(cookie, replyflag::kDone, chunk::kNone, 0);
}

Result<std::array<std::uint8_t, kChunkHeaderSize + 8>> offsetDataHeader(std::uint64_t cookie, std::uint64_t offset,
                                                                       std::uint32_t dataLength, bool done) {
  if (dataLength == 0) return Error{"OFFSET_DATA chunk without data", EINVAL};
  if (dataLength > UINT32_MAX - 8) return Error{"OFFSET_DATA chunk too long for its length field", EOVERFLOW};
  std::array<std::uint8_t, kChunkHeaderSize + 8> out{};
  ByteWriter w(out);
  w.bytes(chunkHeader(cookie, done ? replyflag::kDone : 0, chunk::kOffsetData, dataLength + 8));
  be64(w, offset);
  return out;
}

Result<std::array<std::uint8_t, kChunkHeaderSize + 12>> offsetHoleChunk(std::uint64_t cookie, std::uint64_t offset,
                                                                       std::uint32_t holeSize, bool done) {
  if (holeSize == 0) return Error{"OFFSET_HOLE chunk of size 0", EINVAL};
  std::array<std::uint8_t, kChunkHeaderSize + 12> out{};
  ByteWriter w(out);
  w.bytes(chunkHeader(cookie, done ? replyflag::kDone : 0, chunk::kOffsetHole, 12));
  be64(w, offset);
  w.be32(holeSize);
  return out;
}

Result<std::vector<std::uint8_t>> blockStatusChunk(std::uint64_t cookie, std::uint32_t contextId,
                                                   std::span<const BlockDescriptor> extents, bool done) {
  if (extents.empty()) return Error{"BLOCK_STATUS chunk without a descriptor", EINVAL};
  if (extents.size() > kMaxExtentsPerChunk) return Error{"BLOCK_STATUS chunk over 2^20 descriptors", EOVERFLOW};
  for (const auto& e : extents) {
    if (e.length == 0) return Error{"BLOCK_STATUS descriptor of length 0", EINVAL};
  }
  // At most 4 + 8 * 2^20 bytes: fits the 32-bit length.
  const auto payload = static_cast<std::uint32_t>(4 + 8 * extents.size());
  std::vector<std::uint8_t> out(kChunkHeaderSize + payload);
  ByteWriter w(out);
  w.bytes(chunkHeader(cookie, done ? replyflag::kDone : 0, chunk::kBlockStatus, payload));
  w.be32(contextId);
  for (const auto& e : extents) {
    w.be32(e.length);
    w.be32(e.status);
  }
  return out;
}

Result<std::vector<std::uint8_t>> errorChunk(std::uint64_t cookie, Errno error, std::string_view message, bool done) {
  if (error == Errno::None) return Error{"error chunk with error 0", EINVAL};
  return errorChunkBytes(cookie, chunk::kError, error, message, nullptr, done);
}

Result<std::vector<std::uint8_t>> errorOffsetChunk(std::uint64_t cookie, Errno error, std::string_view message,
                                                   std::uint64_t offset, bool done) {
  if (error == Errno::None) return Error{"error chunk with error 0", EINVAL};
  return errorChunkBytes(cookie, chunk::kErrorOffset, error, message, &offset, done);
}

Result<std::vector<std::uint8_t>> errorReply(std::uint64_t cookie, Errno error, bool structuredReplies,
                                             std::string_view message) {
  if (error == Errno::None) return Error{"error reply with error 0", EINVAL};
  if (structuredReplies) return errorChunkBytes(cookie, chunk::kError, error, message, nullptr, true);
  auto simple = simpleReply(cookie, error);
  return std::vector<std::uint8_t>(simple.begin(), simple.end());
}

}  // namespace pxedust::nbd::wire
