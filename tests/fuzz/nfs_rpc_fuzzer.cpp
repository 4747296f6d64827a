// libFuzzer harness for the NFS server's RPC path: a client's TCP byte stream through the record
// framer (in the splits the input chooses), each record (and the whole input as a UDP datagram)
// through decodeCall(), and every PORTMAP, MOUNT, NFSv3 and NFS_ACL argument decoder over the arguments,
// with the reply encoders and the READDIRPLUS budget encoder fed what was decoded.
// Input: byte 0 = the size of the pieces the stream is fed in (1..256); the rest is the stream.
// Invariants: the framer always makes progress, never hands out a record over its cap, and once
// it refuses the stream it stays refused; a dispatched call has an AUTH_NONE or a well-formed
// AUTH_SYS credential and arguments inside the record; a reply carries the record's xid; decoded
// handles are at most 64 bytes and names are valid filename3s; a READDIRPLUS listing never
// exceeds dircount, maxcount or its buffer, and parses back with as many entries as it took.
#include <array>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "nfs/wire/mount.hpp"
#include "nfs/wire/nfs3.hpp"
#include "nfs/wire/readdir.hpp"
#include "nfs/wire/rpc.hpp"

using namespace pxedust::nfs::wire;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

bool inside(std::span<const std::uint8_t> part, std::span<const std::uint8_t> whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void checkFh(Fh3 fh, std::span<const std::uint8_t> record) {
  check(fh.size() <= kFhSize3);
  check(inside(fh, record));
}

void listing(const ReaddirArgs& a, std::span<const std::uint8_t> record) {
  // Entries named after slices of the record, so their sizes vary with the input.
  static std::array<std::uint8_t, 8192> buf;
  const std::size_t cap = 64 + (a.cookie % buf.size());
  auto enc = DirEncoder::readdirplus(std::span(buf).first(std::min(cap, buf.size())), a.dircount,
                                     a.maxcount, (a.cookie & 1) != 0 ? PostOpAttr(Fattr3{}) : std::nullopt, a.verf);
  std::size_t taken = 0;
  for (std::size_t i = 0; i < 64 && i < record.size(); ++i) {
    DirEntry e;
    e.fileid = i;
    e.cookie = i + 1;
    e.name = std::string_view(reinterpret_cast<const char*>(record.data()), std::min<std::size_t>(i * 7 % 300, record.size()));
    if ((i & 1) != 0) e.attr = Fattr3{};
    if ((i & 2) != 0) e.handle = record.first(std::min<std::size_t>(i, record.size()) % 65);
    if (!enc.add(e)) break;
    ++taken;
  }
  const Nfsstat3 st = enc.finish(true);
  check(enc.entries() == taken);
  if (st == Nfsstat3::TooSmall) {
    check(taken == 0);
    return;
  }
  check(enc.resokBytes() <= a.maxcount);
  check(enc.dirBytes() <= a.dircount);
  check(enc.written().size() == 4 + enc.resokBytes());
  XdrReader r(enc.written());
  check(r.u32() == 0);
  readPostOpAttr(r);
  r.fixedOpaque(kCookieVerfSize);
  std::size_t seen = 0;
  while (r.ok() && r.boolean()) {
    r.u64();
    r.opaque(UINT32_MAX);
    r.u64();
    readPostOpAttr(r);
    if (r.boolean()) readFh3(r);
    ++seen;
  }
  r.boolean();
  check(r.ok() && r.remaining() == 0 && seen == taken);
}

void arguments(const Call& call, std::span<const std::uint8_t> record) {
  std::array<std::uint8_t, 2048> out{};
  const auto args = call.args;
  if (auto m = decodePortMapping(args); m.ok()) {
    XdrWriter w(out);
    encodePortMapping(w, *m);
    check(w.ok());
    check(decodePortMapping(w.written()).ok());
  }
  if (auto p = decodeDirpath(args); p.ok()) {
    check(p->size() <= kMntPathLen);
    XdrWriter w(out);
    encodeMntOk(w, std::span(reinterpret_cast<const std::uint8_t*>(p->data()), std::min<std::size_t>(p->size(), 64)), {});
    check(w.ok());
  }
  if (auto a = decodeFhArgs(args); a.ok()) {
    checkFh(a->object, record);
    XdrWriter w(out);
    encodeLookupOk(w, a->object, Fattr3{}, std::nullopt);
    check(w.ok());
  }
  if (auto a = decodeLookupArgs(args); a.ok()) {
    checkFh(a->dir, record);
    check(validFilename3(a->name));
  }
  if (auto a = decodeAccessArgs(args); a.ok()) checkFh(a->object, record);
  if (auto a = decodeGetaclArgs(args); a.ok()) {
    checkFh(a->object, record);
    XdrWriter w(out);
    const AclEntry entry{acltag::kUser, 1000, 5};
    encodeGetaclOk(w, std::nullopt, a->mask, std::span(&entry, 1), {});
    check(w.ok() && w.written().size() == getaclOkSize(1, 0) - kFattr3Size);
  }
  if (auto a = decodeReadArgs(args); a.ok()) checkFh(a->file, record);
  if (auto a = decodeReaddirArgs(args); a.ok()) checkFh(a->dir, record);
  if (auto a = decodeReaddirplusArgs(args); a.ok()) {
    checkFh(a->dir, record);
    listing(*a, record);
  }
  for (const auto& proc : kNfsProcs) {
    auto m = decodeModifyArgs(proc.number, args);
    check(m.ok() == false || proc.kind == ProcKind::Modify);
    if (!m.ok()) continue;
    checkFh(m->first, record);
    check(m->second.has_value() == (proc.number == nfsproc::kRename || proc.number == nfsproc::kLink));
    XdrWriter w(out);
    encodeModifyFailure(w, proc.number, Nfsstat3::Rofs, WccData{WccAttr{}, Fattr3{}}, WccData{});
    check(w.ok());
  }
}

void record(std::span<const std::uint8_t> rec) {
  CallOutcome o = decodeCall(rec);
  std::array<std::uint8_t, 64> out{};
  XdrWriter w(out);
  switch (o.action) {
    case CallOutcome::Action::Drop:
      check(o.drop != DropReason::None);
      check(o.drop != DropReason::NoXid || rec.size() < 4);
      return;
    case CallOutcome::Action::Reply:
      check(rec.size() >= 4);
      check(o.reply.xid == ((std::uint32_t{rec[0]} << 24) | (std::uint32_t{rec[1]} << 16) | (std::uint32_t{rec[2]} << 8) | rec[3]));
      encodeReplyHeader(w, o.reply);
      check(w.ok());
      return;
    case CallOutcome::Action::Dispatch: {
      check(o.call.credFlavor == authflavor::kNone || o.call.credFlavor == authflavor::kSys);
      check(o.call.sys.has_value() == (o.call.credFlavor == authflavor::kSys));
      if (o.call.sys) {
        check(o.call.sys->gidCount <= kMaxAuthSysGids);
        check(o.call.sys->machineName.size() <= kMaxMachineName);
      }
      check(inside(o.call.args, rec));
      auto d = checkDispatch(o.call.program, o.call.version, o.call.procedure);
      check((d.stat == AcceptStat::Success) == (d.proc != nullptr));
      encodeReplyHeader(w, d.stat == AcceptStat::ProgMismatch ? ReplyHeader::progMismatch(o.call.xid, d.low, d.high)
                                                              : ReplyHeader::accepted(o.call.xid, d.stat));
      check(w.ok());
      arguments(o.call, rec);
      return;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t piece = std::size_t{data[0]} + 1;
  std::span<const std::uint8_t> stream(data + 1, size - 1);

  record(stream);  // UDP: the datagram is the record

  RecordFramer framer(RecordLimits{.maxRecord = 4096, .maxEmptyFragments = 4});
  std::size_t pos = 0;
  while (pos < stream.size()) {
    auto chunk = stream.subspan(pos, std::min(piece, stream.size() - pos));
    std::size_t used = 0;
    while (used < chunk.size()) {
      auto r = framer.feed(chunk.subspan(used));
      check(r.consumed <= chunk.size() - used);
      used += r.consumed;
      if (r.status == RecordStatus::TooLarge || r.status == RecordStatus::TooManyEmptyFragments) {
        check(framer.broken());
        check(framer.feed(chunk).status == r.status);
        return 0;
      }
      if (r.status == RecordStatus::Record) {
        check(framer.record().size() <= 4096);
        record(framer.record());
      } else {
        check(used == chunk.size());
      }
    }
    pos += chunk.size();
  }
  return 0;
}
