// libFuzzer harness for the NBD transmission codec: a stream of request headers through
// parseRequest() and validateRequest() against an export the input describes, as a connection reads
// them (a WRITE's payload, accepted or drained, is skipped to find the next header); and the reply
// builders on the values that came in.
// Input: bytes 0..7 = export size; 8..9 = transmission flags; 10 = block sizes (bits 0-1: minimum
// 1/512/4096/65536, bit 2: maximum 64 KiB instead of 32 MiB), structured replies (bit 3), meta
// context (bit 4), shutting down (bit 5); the rest is the client's stream.
// Invariants: a header parses exactly when its magic is right and serializes back to its bytes; an
// accepted request is a known command with only documented and advertised flags, inside the export,
// aligned, and (READ/WRITE) within the maximum payload; a refusal carries a nonzero errno and drains
// only a WRITE's own length; only a WRITE (or nothing) leads to a disconnect; error replies and
// chunks build and have the size the spec gives them.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "common/checked.hpp"
#include "nbd/wire/transmission.hpp"

using namespace pxedust;
using namespace pxedust::nbd::wire;

namespace {

std::uint16_t allowedFlags(std::uint16_t type) {
  switch (type) {
    case cmd::kRead: return cmdflag::kFua | cmdflag::kDf;
    case cmd::kWriteZeroes: return cmdflag::kFua | cmdflag::kNoHole | cmdflag::kFastZero;
    case cmd::kBlockStatus: return cmdflag::kFua | cmdflag::kReqOne;
    default: return cmdflag::kFua;
  }
}

void checkAccepted(const ExportProperties& p, const Request& r) {
  if (r.type == cmd::kDisc) return;
  if (r.type > cmd::kBlockStatus) std::abort();
  if ((r.flags & ~allowedFlags(r.type)) != 0) std::abort();
  if ((r.flags & cmdflag::kFua) != 0 && (p.flags & txflag::kSendFua) == 0) std::abort();
  if ((r.flags & cmdflag::kDf) != 0 && (p.flags & txflag::kSendDf) == 0) std::abort();
  if ((r.flags & cmdflag::kFastZero) != 0 && (p.flags & txflag::kSendFastZero) == 0) std::abort();
  const bool writes = r.type == cmd::kWrite || r.type == cmd::kTrim || r.type == cmd::kWriteZeroes;
  if (writes && (p.flags & txflag::kReadOnly) != 0) std::abort();
  if (r.type == cmd::kFlush) {
    if ((p.flags & txflag::kSendFlush) == 0 || r.offset != 0 || r.length != 0) std::abort();
    return;
  }
  if (r.type == cmd::kBlockStatus && (!p.structuredReplies || !p.metaContexts)) std::abort();
  if (!within<std::uint64_t>(r.offset, r.length, p.size)) std::abort();
  if (r.offset % p.blockSizes.minimum != 0 || r.length % p.blockSizes.minimum != 0) std::abort();
  if ((r.type == cmd::kRead || r.type == cmd::kWrite) && r.length > p.blockSizes.maximum) std::abort();
}

void checkBuilders(const Request& r, Errno e, std::span<const std::uint8_t> rest) {
  std::string_view message(reinterpret_cast<const char*>(rest.data()), std::min<std::size_t>(rest.size(), 5000));
  auto simple = errorReply(r.cookie, e, false, message);
  auto structured = errorReply(r.cookie, e, true, message);
  if (!simple.ok() || !structured.ok()) std::abort();
  if (simple->size() != kSimpleReplySize) std::abort();
  const std::size_t cut = clampUtf8(message).size();
  if (cut > kMaxString || cut > message.size() || structured->size() != kChunkHeaderSize + 6 + cut) std::abort();

  auto data = offsetDataHeader(r.cookie, r.offset, r.length, true);
  if (data.ok() != (r.length != 0 && r.length <= UINT32_MAX - 8)) std::abort();
  auto hole = offsetHoleChunk(r.cookie, r.offset, r.length, false);
  if (hole.ok() != (r.length != 0)) std::abort();
  const BlockDescriptor ext[] = {{r.length, r.flags}, {static_cast<std::uint32_t>(r.offset), 0}};
  auto bs = blockStatusChunk(r.cookie, static_cast<std::uint32_t>(r.cookie), ext, (r.flags & 1) != 0);
  if (bs.ok() != (ext[0].length != 0 && ext[1].length != 0)) std::abort();
  if (bs.ok() && bs->size() != kChunkHeaderSize + 4 + 16) std::abort();
  auto eo = errorOffsetChunk(r.cookie, e, message, r.offset, false);
  if (!eo.ok() || eo->size() != kChunkHeaderSize + 14 + cut) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 11) return 0;
  ExportProperties p;
  for (int i = 0; i < 8; ++i) p.size = (p.size << 8) | data[i];
  p.flags = static_cast<std::uint16_t>((data[8] << 8) | data[9]);
  const std::uint8_t knobs = data[10];
  static constexpr std::uint32_t kMinimums[] = {1, 512, 4096, 65536};
  p.blockSizes.minimum = kMinimums[knobs & 3];
  p.blockSizes.preferred = std::max<std::uint32_t>(p.blockSizes.minimum, 4096);
  p.blockSizes.maximum = (knobs & 4) != 0 ? std::max<std::uint32_t>(p.blockSizes.preferred, 65536) : 1u << 25;
  p.structuredReplies = (knobs & 8) != 0;
  p.metaContexts = (knobs & 16) != 0;
  const bool shuttingDown = (knobs & 32) != 0;
  if (!validBlockSizes(p.blockSizes)) std::abort();

  std::span<const std::uint8_t> stream(data + 11, size - 11);
  std::size_t pos = 0;
  while (stream.size() - pos >= kRequestHeaderSize) {
    auto header = stream.subspan(pos, kRequestHeaderSize);
    pos += kRequestHeaderSize;
    auto parsed = parseRequest(header);
    const bool magicOk = header[0] == 0x25 && header[1] == 0x60 && header[2] == 0x95 && header[3] == 0x13;
    if (parsed.ok() != magicOk) std::abort();
    if (!parsed.ok()) return 0;  // the connection would disconnect here
    const Request& r = *parsed;
    auto again = serializeRequest(r);
    if (!std::equal(again.begin(), again.end(), header.begin())) std::abort();

    Verdict v = validateRequest(p, r, shuttingDown);
    std::size_t skip = 0;
    switch (v.kind) {
      case Verdict::Kind::Accept:
        if (v.error != Errno::None || v.drain != 0) std::abort();
        if (shuttingDown && r.type != cmd::kDisc) std::abort();
        checkAccepted(p, r);
        skip = payloadLength(r);
        break;
      case Verdict::Kind::ErrorReply:
        if (v.error == Errno::None || v.reason.empty()) std::abort();
        if (v.drain != (r.type == cmd::kWrite ? r.length : 0)) std::abort();
        if (r.type == cmd::kDisc) std::abort();
        checkBuilders(r, v.error, stream.subspan(pos));
        skip = v.drain;
        break;
      case Verdict::Kind::Disconnect:
        if (r.type != cmd::kWrite || r.length <= std::max(p.blockSizes.maximum, kNeverDosPayload)) std::abort();
        return 0;
    }
    if (r.type == cmd::kDisc) return 0;
    if (skip > stream.size() - pos) return 0;
    pos += skip;
  }
  return 0;
}
