// libFuzzer harness for the NBD handshake: a client's bytes, split into reads at a size the input
// chooses, through the HandshakeMachine, against a catalog with every kind of export (found, TLS-only,
// refused, non-default and misconfigured block sizes). STARTTLS is answered by a transparent "TLS
// layer" (tlsStarted() and the stream goes on), so the haggling after it is fuzzed too.
// Input: byte 0 = TLS mode (bits 0-1), shutting down (bit 2), small caps (bit 3: 64-byte options,
// 1 KiB drain, 8 options); byte 1 = split size - 1; the rest is the client stream.
// Invariants: nothing crashes or reads out of bounds; consumed never exceeds what was given and
// NeedMore means all of it was; the output is the greeting, then well-formed option replies (each
// under the string limits), then, only after EXPORT_NAME, its 10 or 134 bytes; ERR_TLS_REQD is never
// sent under TLS or without TLS offered; a completed handshake has HAS_FLAGS, SEND_DF and contexts
// only with structured replies, and valid block sizes; the option cap holds.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "nbd/wire/handshake.hpp"

using namespace pxedust::nbd::wire;

namespace {

struct Catalog : ExportCatalog {
  TlsMode mode = TlsMode::None;
  [[nodiscard]] TlsMode tlsMode() const override { return mode; }
  std::vector<ExportListing> listExports(bool tls) override {
    std::vector<ExportListing> l = {{"disk", "root disk"}, {"", ""}, {"ro", std::string(5000, 'd')}};
    if (tls) l.push_back({"tls", "TLS only"});
    return l;
  }
  ExportLookup lookupExport(std::string_view name, bool tls) override {
    if (name.size() > kMaxString || name.find('\0') != std::string_view::npos) std::abort();
    ExportLookup r;
    r.info.size = 1ull << 33;
    r.info.flags = 0xffff;  // every bit: the machine must strip what it may not send
    r.info.description = "an export";
    if (name == "disk" || name.empty()) {
      r.status = LookupStatus::Found;
    } else if (name == "ro") {
      r.status = LookupStatus::Found;
      r.info.name = "read-only";
      r.info.blockSizes = {512, 4096, 1u << 20};
      r.info.requireBlockSizes = true;
    } else if (name == "tls") {
      r.status = tls ? LookupStatus::Found : LookupStatus::TlsRequired;
    } else if (name == "no") {
      r.status = LookupStatus::NotPermitted;
    } else if (name == "bad") {
      r.status = LookupStatus::Found;
      r.info.blockSizes = {3, 100, 1};
    }
    return r;
  }
};

std::uint64_t be(const std::vector<std::uint8_t>& b, std::size_t at, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | b[at + static_cast<std::size_t>(i)];
  return v;
}

// Walks the option replies in out[18, end): true when they are well formed and end exactly there.
bool repliesWellFormed(const std::vector<std::uint8_t>& out, std::size_t end, TlsMode mode) {
  std::size_t at = 18;
  bool tlsSeen = false;  // an ACK to STARTTLS was sent: everything after it is under TLS
  while (at < end) {
    if (end - at < 20 || be(out, at, 8) != kOptionReplyMagic) return false;
    auto option = static_cast<std::uint32_t>(be(out, at + 8, 4));
    auto type = static_cast<std::uint32_t>(be(out, at + 12, 4));
    auto len = static_cast<std::size_t>(be(out, at + 16, 4));
    if (len > end - at - 20) return false;
    if (len > 4 + 2 * kMaxString) std::abort();  // a name and a description at most
    if (type == rep::kErrTlsReqd && (tlsSeen || mode == TlsMode::None)) std::abort();
    if (option == opt::kStartTls && type == rep::kAck) tlsSeen = true;
    if (type == rep::kInfo && len < 2) std::abort();
    if (type == rep::kInfo && be(out, at + 20, 2) == info::kExport && len != 12) std::abort();
    if (type == rep::kInfo && be(out, at + 20, 2) == info::kBlockSize && len != 14) std::abort();
    at += 20 + len;
  }
  return at == end;
}

// The greeting, then option replies, then (only after EXPORT_NAME) its 10 or 134 bytes.
void checkOutput(const std::vector<std::uint8_t>& out, const HandshakeMachine& m, bool completed, TlsMode mode) {
  if (out.size() < 18 || be(out, 0, 8) != kNbdMagic || be(out, 8, 8) != kOptionMagic || be(out, 16, 2) != 3) {
    std::abort();
  }
  if (completed && m.result().viaExportName) {
    bool ok = false;
    for (std::size_t tail : {std::size_t{10}, std::size_t{134}}) {
      if (out.size() - 18 >= tail && repliesWellFormed(out, out.size() - tail, mode)) ok = true;
    }
    if (!ok) std::abort();
    return;
  }
  if (!repliesWellFormed(out, out.size(), mode)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  Catalog catalog;
  catalog.mode = static_cast<TlsMode>((data[0] & 3) % 3);
  HandshakeLimits limits;
  if ((data[0] & 8) != 0) {
    limits.maxOptionLength = 64;
    limits.maxDrainLength = 1024;
    limits.maxOptions = 8;
  }
  const std::size_t split = std::size_t{data[1]} + 1;
  std::span<const std::uint8_t> stream(data + 2, size - 2);

  HandshakeMachine m(catalog, limits);
  if ((data[0] & 4) != 0) m.beginShutdown();
  std::vector<std::uint8_t> out = m.takeOutput();
  HandshakeEvent last = HandshakeEvent::NeedMore;
  std::size_t pos = 0;
  while (pos < stream.size() && (last == HandshakeEvent::NeedMore || last == HandshakeEvent::StartTls)) {
    auto piece = stream.subspan(pos, std::min(split, stream.size() - pos));
    std::size_t off = 0;
    while (off < piece.size()) {
      Step s = m.feed(piece.subspan(off));
      if (s.consumed > piece.size() - off) std::abort();
      off += s.consumed;
      auto o = m.takeOutput();
      out.insert(out.end(), o.begin(), o.end());
      last = s.event;
      if (s.event == HandshakeEvent::NeedMore) {
        if (off != piece.size()) std::abort();
        break;
      }
      if (s.event == HandshakeEvent::StartTls) {
        if (m.tlsActive() || catalog.mode == TlsMode::None) std::abort();
        m.tlsStarted();
        continue;
      }
      break;  // terminal
    }
    pos += piece.size();
  }
  if (m.optionCount() > limits.maxOptions + 1) std::abort();

  const bool completed = last == HandshakeEvent::Complete;
  checkOutput(out, m, completed, catalog.mode);
  if (completed) {
    const auto& r = m.result();
    if ((r.flags & txflag::kHasFlags) == 0) std::abort();
    if ((r.flags & txflag::kSendDf) != 0 && !r.structuredReplies) std::abort();
    if ((r.flags & (txflag::kSendResize | txflag::kBlockStatusPayload)) != 0) std::abort();
    if (!r.metaContexts.empty() && !r.structuredReplies) std::abort();
    if (!validBlockSizes(r.exportInfo.blockSizes)) std::abort();
    if (catalog.mode == TlsMode::Required && !r.tls) std::abort();
    auto p = r.properties();
    if (p.metaContexts != !r.metaContexts.empty() || p.flags != r.flags) std::abort();
  }
  if (last != HandshakeEvent::NeedMore && last != HandshakeEvent::StartTls) {
    Step again = m.feed(stream);
    if (again.consumed != 0 || again.event != last) std::abort();
  }
  return 0;
}
