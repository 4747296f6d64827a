#include "nfs/wire/rpc.hpp"

#include <algorithm>

namespace pxedust::nfs::wire {

std::string_view recordStatusName(RecordStatus s) {
  switch (s) {
    case RecordStatus::NeedMore: return "need more";
    case RecordStatus::Record: return "record";
    case RecordStatus::TooLarge: return "record over the size cap";
    case RecordStatus::TooManyEmptyFragments: return "too many empty fragments";
  }
  return "unknown";
}

RecordFeed RecordFramer::feed(std::span<const std::uint8_t> in) {
  if (delivered_) {
    record_.clear();
    delivered_ = false;
    empties_ = 0;
  }
  std::size_t pos = 0;
  while (true) {
    if (broken()) return {pos, broken_};
    if (inMark_) {
      if (pos == in.size()) return {pos, RecordStatus::NeedMore};
      std::size_t take = std::min(mark_.size() - got_, in.size() - pos);
      std::copy_n(in.begin() + static_cast<std::ptrdiff_t>(pos), take, mark_.begin() + static_cast<std::ptrdiff_t>(got_));
      got_ += take;
      pos += take;
      if (got_ < mark_.size()) continue;
      got_ = 0;
      const std::uint32_t word = (std::uint32_t{mark_[0]} << 24) | (std::uint32_t{mark_[1]} << 16) |
                                 (std::uint32_t{mark_[2]} << 8) | mark_[3];
      last_ = (word & kLastFragment) != 0;
      fragment_ = word & ~kLastFragment;
      // record_.size() <= maxRecord always holds, so the subtraction cannot wrap (habit 3).
      if (fragment_ > limits_.maxRecord - record_.size()) {
        broken_ = RecordStatus::TooLarge;
        continue;
      }
      if (fragment_ == 0) {
        if (last_) {
          delivered_ = true;
          return {pos, RecordStatus::Record};
        }
        if (++empties_ > limits_.maxEmptyFragments) broken_ = RecordStatus::TooManyEmptyFragments;
        continue;
      }
      // Grow geometrically (never one exact reserve per fragment: 1-byte fragments would copy the
      // record once per byte), and never past the cap.
      const std::size_t needed = record_.size() + fragment_;
      if (record_.capacity() < needed) {
        record_.reserve(std::min<std::size_t>(std::max(needed, record_.capacity() * 2), limits_.maxRecord));
      }
      inMark_ = false;
      continue;
    }
    if (pos == in.size()) return {pos, RecordStatus::NeedMore};
    std::size_t take = std::min<std::size_t>(fragment_ - got_, in.size() - pos);
    record_.insert(record_.end(), in.begin() + static_cast<std::ptrdiff_t>(pos),
                   in.begin() + static_cast<std::ptrdiff_t>(pos + take));
    got_ += take;
    pos += take;
    if (got_ < fragment_) continue;
    got_ = 0;
    inMark_ = true;
    if (last_) {
      delivered_ = true;
      return {pos, RecordStatus::Record};
    }
  }
}

std::array<std::uint8_t, 4> recordMark(std::uint32_t length) {
  const std::uint32_t word = kLastFragment | (length & ~kLastFragment);
  return {static_cast<std::uint8_t>(word >> 24), static_cast<std::uint8_t>(word >> 16),
          static_cast<std::uint8_t>(word >> 8), static_cast<std::uint8_t>(word)};
}

std::optional<AuthSys> decodeAuthSys(std::span<const std::uint8_t> body) {
  XdrReader r(body);
  AuthSys a;
  a.stamp = r.u32();
  a.machineName = r.string(kMaxMachineName);
  a.uid = r.u32();
  a.gid = r.u32();
  a.gidCount = r.u32();
  if (!r.ok() || a.gidCount > kMaxAuthSysGids) return std::nullopt;
  for (std::uint32_t i = 0; i < a.gidCount; ++i) a.gids[i] = r.u32();
  if (!r.ok() || r.remaining() != 0) return std::nullopt;
  return a;
}

namespace {

CallOutcome reply(CallOutcome o, ReplyHeader h, std::string_view why) {
  o.action = CallOutcome::Action::Reply;
  o.reply = h;
  o.why = why;
  return o;
}

}  // namespace

CallOutcome decodeCall(std::span<const std::uint8_t> record) {
  CallOutcome o;
  XdrReader r(record);
  o.call.xid = r.u32();
  if (!r.ok()) {
    o.drop = DropReason::NoXid;
    o.why = "record shorter than an xid";
    return o;
  }
  const std::uint32_t xid = o.call.xid;
  const std::uint32_t msgType = r.u32();
  if (r.ok() && msgType != static_cast<std::uint32_t>(MsgType::Call)) {
    o.drop = DropReason::NotACall;
    o.why = "not a CALL";
    return o;
  }
  const std::uint32_t rpcvers = r.u32();
  if (r.ok() && rpcvers != kRpcVersion) return reply(o, ReplyHeader::rpcMismatch(xid), "rpcvers is not 2");
  o.call.program = r.u32();
  o.call.version = r.u32();
  o.call.procedure = r.u32();
  o.call.credFlavor = r.u32();
  auto credBody = r.opaque(kMaxAuthBody);
  if (r.error() == XdrError::TooLong) {
    return reply(o, ReplyHeader::authError(xid, AuthStat::BadCred), "credential body over 400 bytes");
  }
  const std::uint32_t verfFlavor = r.u32();
  auto verfBody = r.opaque(kMaxAuthBody);
  if (r.error() == XdrError::TooLong) {
    return reply(o, ReplyHeader::authError(xid, AuthStat::BadVerf), "verifier body over 400 bytes");
  }
  if (!r.ok()) return reply(o, ReplyHeader::accepted(xid, AcceptStat::GarbageArgs), "call header cut short");

  switch (o.call.credFlavor) {
    case authflavor::kNone:
      if (!credBody.empty()) {
        return reply(o, ReplyHeader::authError(xid, AuthStat::BadCred), "AUTH_NONE credential with a body");
      }
      break;
    case authflavor::kSys:
      o.call.sys = decodeAuthSys(credBody);
      if (!o.call.sys) return reply(o, ReplyHeader::authError(xid, AuthStat::BadCred), "malformed AUTH_SYS credential");
      break;
    default:
      return reply(o, ReplyHeader::authError(xid, AuthStat::BadCred), "credential flavour not supported");
  }
  // AUTH_NONE and AUTH_SYS calls carry an AUTH_NONE verifier (§10.1, Appendix A).
  if (verfFlavor != authflavor::kNone || !verfBody.empty()) {
    return reply(o, ReplyHeader::authError(xid, AuthStat::BadVerf), "verifier is not an empty AUTH_NONE");
  }
  o.call.args = r.rest();
  o.action = CallOutcome::Action::Dispatch;
  return o;
}

void encodeReplyHeader(XdrWriter& w, const ReplyHeader& h) {
  w.u32(h.xid);
  w.u32(static_cast<std::uint32_t>(MsgType::Reply));
  switch (h.kind) {
    case ReplyHeader::Kind::Accepted:
      w.u32(static_cast<std::uint32_t>(ReplyStat::Accepted));
      w.u32(authflavor::kNone);  // verifier: AUTH_NONE, empty body
      w.u32(0);
      w.u32(static_cast<std::uint32_t>(h.accept));
      if (h.accept == AcceptStat::ProgMismatch) {
        w.u32(h.low);
        w.u32(h.high);
      }
      return;
    case ReplyHeader::Kind::RpcMismatch:
      w.u32(static_cast<std::uint32_t>(ReplyStat::Denied));
      w.u32(static_cast<std::uint32_t>(RejectStat::RpcMismatch));
      w.u32(h.low);
      w.u32(h.high);
      return;
    case ReplyHeader::Kind::AuthError:
      w.u32(static_cast<std::uint32_t>(ReplyStat::Denied));
      w.u32(static_cast<std::uint32_t>(RejectStat::AuthError));
      w.u32(static_cast<std::uint32_t>(h.auth));
      return;
  }
}

void encodeCallHeader(XdrWriter& w, std::uint32_t xid, std::uint32_t program, std::uint32_t version,
                      std::uint32_t procedure, const AuthSys* sys) {
  w.u32(xid);
  w.u32(static_cast<std::uint32_t>(MsgType::Call));
  w.u32(kRpcVersion);
  w.u32(program);
  w.u32(version);
  w.u32(procedure);
  if (sys == nullptr) {
    w.u32(authflavor::kNone);
    w.u32(0);
  } else {
    std::array<std::uint8_t, kMaxAuthBody> buf{};
    XdrWriter body(buf);
    body.u32(sys->stamp);
    body.string(sys->machineName.substr(0, kMaxMachineName));
    body.u32(sys->uid);
    body.u32(sys->gid);
    const std::uint32_t n = std::min(sys->gidCount, kMaxAuthSysGids);
    body.u32(n);
    for (std::uint32_t i = 0; i < n; ++i) body.u32(sys->gids[i]);
    w.u32(authflavor::kSys);
    w.opaque(body.written());
  }
  w.u32(authflavor::kNone);
  w.u32(0);
}

}  // namespace pxedust::nfs::wire
