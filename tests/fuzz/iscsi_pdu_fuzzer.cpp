// libFuzzer harness for the iSCSI byte stream: every byte an initiator sends goes through the
// PduFramer, every framed header through parseInitiatorHeader (and a SCSI Command's AHS through
// fullCdb). Input: byte 0 picks the framer limits (digests, MaxRecvDataSegmentLength), byte 1 the
// split size; the rest is the stream, fed in pieces. Nothing may crash, read out of bounds, store
// more data than the limit allows, or consume more than it was given.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "iscsi/wire/framer.hpp"
#include "iscsi/wire/pdu.hpp"

using namespace pxedust::iscsi::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  FramerLimits lim;
  lim.headerDigest = (data[0] & 1) != 0;
  lim.dataDigest = (data[0] & 2) != 0;
  lim.maxDataSegmentLength = 512u << ((data[0] >> 2) & 7);  // 512 .. 64 KiB
  lim.maxAhsBytes = (data[0] & 0x20) != 0 ? 1020 : 260;
  std::size_t split = 1 + data[1];
  std::span<const std::uint8_t> stream(data + 2, size - 2);

  PduFramer framer(lim);
  std::size_t pos = 0;
  while (pos < stream.size()) {
    auto piece = stream.subspan(pos, std::min(split, stream.size() - pos));
    std::size_t off = 0;
    while (off < piece.size()) {
      auto r = framer.feed(piece.subspan(off));
      if (r.consumed > piece.size() - off) std::abort();
      off += r.consumed;
      if (r.status == FrameStatus::NeedMore) {
        if (off != piece.size()) std::abort();
        break;
      }
      if (r.status == FrameStatus::HeaderDigestError) return 0;
      const RxPdu& pdu = framer.pdu();
      if (pdu.data.size() > lim.maxDataSegmentLength || pdu.ahs.size() > lim.maxAhsBytes) std::abort();
      auto h = parseInitiatorHeader(pdu.header());
      if (h.ok()) {
        // A parsed header serializes back to the same opcode and lengths.
        Bhs again = serialize(*h);
        if ((again[0] & 0x3f) != (pdu.bhs[0] & 0x3f) || again[4] != pdu.bhs[4] || again[7] != pdu.bhs[7]) std::abort();
        if (r.status == FrameStatus::Pdu) {
          if (const auto* cmd = std::get_if<ScsiCommand>(&*h)) {
            std::uint8_t cdb[16 + 1020];
            auto n = fullCdb(*cmd, pdu.ahs, cdb);
            if (n.ok() && (*n < 16 || *n > sizeof cdb)) std::abort();
          }
        }
      }
      (void)parseTargetHeader(pdu.header());
    }
    pos += piece.size();
  }
  return 0;
}
