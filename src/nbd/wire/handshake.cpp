// The handshake state machine (handshake.hpp): the resumable byte loop, the option table and one
// handler per option. Every length read from an option is checked against the bytes the option holds
// (ByteReader) before it is used; nothing is sized from a peer's number before its cap is checked.
#include "nbd/wire/handshake.hpp"

#include <algorithm>
#include <cstring>

#include "common/bytes.hpp"

namespace pxedust::nbd::wire {

namespace {

constexpr std::uint32_t kUseLimit = UINT32_MAX;  // OptionRule::maxLength: HandshakeLimits::maxOptionLength
constexpr std::size_t kOptionHeaderSize = 16;
constexpr std::size_t kExportNameZeroes = 124;  // the reserved tail of the EXPORT_NAME reply
constexpr std::uint16_t kServerHandshakeFlags = hsflag::kFixedNewstyle | hsflag::kNoZeroes;
constexpr std::uint32_t kKnownClientFlags = clientflag::kFixedNewstyle | clientflag::kNoZeroes;
// Transmission flags of extensions we never negotiate: never sent, whatever the catalog says.
constexpr std::uint16_t kExtensionTxFlags = txflag::kSendResize | txflag::kBlockStatusPayload;

// Big-endian fields of the fixed header buffer (offsets are constants, always inside it).
std::uint64_t readBe(std::span<const std::uint8_t> b, std::size_t offset, std::size_t bytes) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < bytes; ++i) v = (v << 8) | b[offset + i];
  return v;
}

void appendBe(std::vector<std::uint8_t>& out, std::uint64_t v, int bytes) {
  for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

void appendStr(std::vector<std::uint8_t>& out, std::string_view s) { out.insert(out.end(), s.begin(), s.end()); }

std::string_view asText(std::span<const std::uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

bool hasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// "Conventions": a string is at most 4096 bytes and has no NUL.
bool validString(std::string_view s) { return s.size() <= kMaxString && !hasNul(s); }

// A metadata query "MUST start with a namespace and a colon"; the namespace is non-empty.
bool validQuery(std::string_view q) {
  auto colon = q.find(':');
  return colon != std::string_view::npos && colon > 0 && validString(q);
}

}  // namespace

std::string_view disconnectReasonName(DisconnectReason r) {
  switch (r) {
    case DisconnectReason::None: return "none";
    case DisconnectReason::BadClientFlags: return "bad_client_flags";
    case DisconnectReason::BadOptionMagic: return "bad_option_magic";
    case DisconnectReason::OptionTooLarge: return "option_too_large";
    case DisconnectReason::TooManyOptions: return "too_many_options";
    case DisconnectReason::NotFixedNewstyle: return "not_fixed_newstyle";
    case DisconnectReason::ExportNameRefused: return "export_name_refused";
    case DisconnectReason::TlsRequired: return "tls_required";
    case DisconnectReason::ShuttingDown: return "shutting_down";
    case DisconnectReason::TlsNotStarted: return "tls_not_started";
    case DisconnectReason::Count: break;
  }
  return "?";
}

ExportProperties HandshakeResult::properties() const {
  ExportProperties p;
  p.size = exportInfo.size;
  p.flags = flags;
  p.blockSizes = exportInfo.blockSizes;
  p.structuredReplies = structuredReplies;
  p.metaContexts = !metaContexts.empty();
  return p;
}

// One row per option we implement. maxLength: data bytes buffered (0: the option takes no data, and
// data present is ERR_INVALID; more than maxLength otherwise is ERR_TOO_BIG). EXPORT_NAME and ABORT
// are handled at the header (they cannot be refused with a reply); their rows document the caps.
struct HandshakeMachine::OptionRule {
  std::uint32_t code;
  std::uint32_t maxLength;
  HandshakeEvent (HandshakeMachine::*handle)(std::span<const std::uint8_t>);
};

const HandshakeMachine::OptionRule* HandshakeMachine::findOption(std::uint32_t option) {
  static constexpr OptionRule kOptions[] = {
      {opt::kExportName, kMaxString, &HandshakeMachine::handleExportName},
      {opt::kList, 0, &HandshakeMachine::handleList},
      {opt::kStartTls, 0, &HandshakeMachine::handleStartTls},
      {opt::kInfo, kUseLimit, &HandshakeMachine::handleInfo},
      {opt::kGo, kUseLimit, &HandshakeMachine::handleInfo},
      {opt::kStructuredReply, 0, &HandshakeMachine::handleStructuredReply},
      {opt::kListMetaContext, kUseLimit, &HandshakeMachine::handleMetaContext},
      {opt::kSetMetaContext, kUseLimit, &HandshakeMachine::handleMetaContext},
  };
  for (const auto& row : kOptions) {
    if (row.code == option) return &row;
  }
  return nullptr;
}

HandshakeMachine::HandshakeMachine(ExportCatalog& catalog, HandshakeLimits limits)
    : catalog_(catalog), limits_(limits), tlsMode_(catalog.tlsMode()) {
  out_.reserve(18);
  appendBe(out_, kNbdMagic, 8);
  appendBe(out_, kOptionMagic, 8);
  appendBe(out_, kServerHandshakeFlags, 2);
}

void HandshakeMachine::tlsStarted() {
  if (state_ != State::AwaitTls) return;
  tls_ = true;
  state_ = State::OptionHeader;
  need_ = kOptionHeaderSize;
  got_ = 0;
}

Step HandshakeMachine::feed(std::span<const std::uint8_t> in) {
  switch (state_) {
    case State::Done:
    case State::Aborted:
    case State::Closed:
      return {0, terminal_};
    case State::AwaitTls:
      return {0, disconnect(DisconnectReason::TlsNotStarted)};
    default:
      break;
  }

  std::size_t pos = 0;
  while (pos < in.size()) {
    std::size_t take = std::min(need_ - got_, in.size() - pos);
    auto chunk = in.subspan(pos, take);
    pos += take;
    HandshakeEvent ev = HandshakeEvent::NeedMore;
    switch (state_) {
      case State::ClientFlags:
      case State::OptionHeader:
        std::memcpy(head_.data() + got_, chunk.data(), take);
        got_ += take;
        if (got_ < need_) continue;
        ev = state_ == State::ClientFlags ? onClientFlags() : onOptionHeader();
        break;
      case State::OptionData:
        data_.insert(data_.end(), chunk.begin(), chunk.end());
        got_ += take;
        if (got_ < need_) continue;
        ev = onOptionData();
        break;
      case State::Drain:
        got_ += take;
        if (got_ < need_) continue;
        ev = refuseAfterDrain(pendingError_, pendingMessage_);
        break;
      case State::AwaitTls:
      case State::Done:
      case State::Aborted:
      case State::Closed:
        break;  // not reached: every event that enters these states returns below
    }
    if (ev != HandshakeEvent::NeedMore) return {pos, ev};
  }
  return {pos, HandshakeEvent::NeedMore};
}

HandshakeEvent HandshakeMachine::disconnect(DisconnectReason r) {
  state_ = State::Closed;
  terminal_ = HandshakeEvent::Disconnect;
  reason_ = r;
  return terminal_;
}

HandshakeEvent HandshakeMachine::onClientFlags() {
  const auto flags = static_cast<std::uint32_t>(readBe(head_, 0, 4));
  // "the server MUST drop the TCP connection if the client sets an unknown flag".
  if ((flags & ~kKnownClientFlags) != 0) return disconnect(DisconnectReason::BadClientFlags);
  fixedNewstyle_ = (flags & clientflag::kFixedNewstyle) != 0;
  noZeroes_ = (flags & clientflag::kNoZeroes) != 0;
  state_ = State::OptionHeader;
  need_ = kOptionHeaderSize;
  got_ = 0;
  return HandshakeEvent::NeedMore;
}

HandshakeEvent HandshakeMachine::onOptionHeader() {
  // Header: IHAVEOPT (0..7), option (8..11), data length (12..15).
  if (readBe(head_, 0, 8) != kOptionMagic) return disconnect(DisconnectReason::BadOptionMagic);
  option_ = static_cast<std::uint32_t>(readBe(head_, 8, 4));
  const auto length = static_cast<std::uint32_t>(readBe(head_, 12, 4));
  if (++options_ > limits_.maxOptions) return disconnect(DisconnectReason::TooManyOptions);
  got_ = 0;
  need_ = length;

  // Non-fixed newstyle: EXPORT_NAME is the only option, and the client cannot parse a reply.
  if (!fixedNewstyle_ && option_ != opt::kExportName) return disconnect(DisconnectReason::NotFixedNewstyle);

  if (option_ == opt::kAbort) {
    // "The server MUST reply with NBD_REP_ACK"; any data "SHOULD [be] ignore[d]": not even read.
    reply(rep::kAck);
    state_ = State::Aborted;
    terminal_ = HandshakeEvent::Abort;
    return terminal_;
  }
  if (option_ == opt::kExportName) {
    // No error reply exists for EXPORT_NAME: whatever would be refused ends the session.
    if (shuttingDown_) return disconnect(DisconnectReason::ShuttingDown);
    if (tlsMode_ == TlsMode::Required && !tls_) return disconnect(DisconnectReason::TlsRequired);
    if (length > kMaxString) return disconnect(DisconnectReason::OptionTooLarge);
  }

  const OptionRule* row = findOption(option_);
  std::uint32_t type = 0;
  std::string_view message;
  if (shuttingDown_) {
    type = rep::kErrShutdown;
    message = "server shutting down";
  } else if (tlsMode_ == TlsMode::Required && !tls_ && option_ != opt::kStartTls) {
    // FORCEDTLS: "any other option, including NBD_OPT_INFO and unsupported options".
    type = rep::kErrTlsReqd;
    message = "TLS required: send NBD_OPT_STARTTLS first";
  } else if (row == nullptr) {
    type = rep::kErrUnsup;
    message = "option not supported";
  } else if (std::uint32_t cap = row->maxLength == kUseLimit ? limits_.maxOptionLength : row->maxLength;
             length > cap) {
    type = row->maxLength == 0 ? rep::kErrInvalid : rep::kErrTooBig;
    message = row->maxLength == 0 ? "option takes no data" : "option data too long";
  }
  if (type != 0) {
    if (length > limits_.maxDrainLength) return disconnect(DisconnectReason::OptionTooLarge);
    pendingError_ = type;
    pendingMessage_ = message;
    state_ = State::Drain;
    if (length == 0) return refuseAfterDrain(type, message);
    return HandshakeEvent::NeedMore;
  }

  // Within the cap: now, and only now, the length may size a buffer.
  data_.clear();
  data_.reserve(length);
  state_ = State::OptionData;
  if (length == 0) return onOptionData();
  return HandshakeEvent::NeedMore;
}

HandshakeEvent HandshakeMachine::refuseAfterDrain(std::uint32_t type, std::string_view message) {
  replyError(type, message);
  state_ = State::OptionHeader;
  need_ = kOptionHeaderSize;
  got_ = 0;
  return HandshakeEvent::NeedMore;
}

HandshakeEvent HandshakeMachine::onOptionData() {
  state_ = State::OptionHeader;
  need_ = kOptionHeaderSize;
  got_ = 0;
  const OptionRule* row = findOption(option_);
  // Only options with a row reach OptionData (onOptionHeader drains the rest).
  if (row == nullptr) return disconnect(DisconnectReason::BadOptionMagic);
  std::vector<std::uint8_t> data = std::move(data_);
  data_.clear();
  return (this->*(row->handle))(data);
}

void HandshakeMachine::reply(std::uint32_t type, std::span<const std::uint8_t> data) {
  appendBe(out_, kOptionReplyMagic, 8);
  appendBe(out_, option_, 4);
  appendBe(out_, type, 4);
  appendBe(out_, data.size(), 4);  // every reply we build is far below 4 GiB (strings are clamped)
  out_.insert(out_.end(), data.begin(), data.end());
}

void HandshakeMachine::replyError(std::uint32_t type, std::string_view message) {
  message = clampUtf8(message);
  reply(type, {reinterpret_cast<const std::uint8_t*>(message.data()), message.size()});
}

void HandshakeMachine::replyInfo(std::uint16_t infoType, std::span<const std::uint8_t> payload) {
  std::vector<std::uint8_t> data;
  data.reserve(2 + payload.size());
  appendBe(data, infoType, 2);
  data.insert(data.end(), payload.begin(), payload.end());
  reply(rep::kInfo, data);
}

std::uint16_t HandshakeMachine::sentFlags(const ExportInfo& info) const {
  std::uint16_t f = static_cast<std::uint16_t>((info.flags | txflag::kHasFlags) & ~kExtensionTxFlags);
  // SEND_DF: "MUST leave this flag clear if structured replies have not been negotiated".
  if (!structuredReplies_) f = static_cast<std::uint16_t>(f & ~txflag::kSendDf);
  return f;
}

HandshakeEvent HandshakeMachine::handleExportName(std::span<const std::uint8_t> data) {
  std::string_view name = asText(data);
  if (hasNul(name)) return disconnect(DisconnectReason::ExportNameRefused);
  ExportLookup found = catalog_.lookupExport(name, tls_);
  if (found.status != LookupStatus::Found || !validBlockSizes(found.info.blockSizes)) {
    return disconnect(DisconnectReason::ExportNameRefused);
  }
  result_ = {};
  result_.exportName = std::string(name);
  result_.flags = sentFlags(found.info);
  result_.exportInfo = std::move(found.info);
  result_.structuredReplies = structuredReplies_;
  if (metaSelected_ && metaExport_ == name) result_.metaContexts = metaContexts_;
  result_.tls = tls_;
  result_.viaExportName = true;

  appendBe(out_, result_.exportInfo.size, 8);
  appendBe(out_, result_.flags, 2);
  if (!noZeroes_) out_.insert(out_.end(), kExportNameZeroes, 0);
  state_ = State::Done;
  terminal_ = HandshakeEvent::Complete;
  return terminal_;
}

HandshakeEvent HandshakeMachine::handleList(std::span<const std::uint8_t> /*data*/) {
  for (const auto& e : catalog_.listExports(tls_)) {
    // A name the client could not send back (over 4096 bytes, or with a NUL) is not listed.
    if (!validString(e.name)) continue;
    std::vector<std::uint8_t> d;
    std::string_view desc = clampUtf8(e.description);
    d.reserve(4 + e.name.size() + desc.size());
    appendBe(d, e.name.size(), 4);
    appendStr(d, e.name);
    appendStr(d, desc);
    reply(rep::kServer, d);
  }
  reply(rep::kAck);
  return HandshakeEvent::NeedMore;
}

HandshakeEvent HandshakeMachine::handleStartTls(std::span<const std::uint8_t> /*data*/) {
  if (tlsMode_ == TlsMode::None) {
    replyError(rep::kErrPolicy, "TLS not offered by this server");
    return HandshakeEvent::NeedMore;
  }
  if (tls_) {
    replyError(rep::kErrInvalid, "TLS already started");
    return HandshakeEvent::NeedMore;
  }
  reply(rep::kAck);
  // "the server MUST NOT preserve any negotiation state ... issued before this command".
  structuredReplies_ = false;
  metaSelected_ = false;
  metaExport_.clear();
  metaContexts_.clear();
  state_ = State::AwaitTls;
  return HandshakeEvent::StartTls;
}

HandshakeEvent HandshakeMachine::handleStructuredReply(std::span<const std::uint8_t> /*data*/) {
  // A repeat is acknowledged again: the spec allows ERR_INVALID, but nothing is gained by it.
  structuredReplies_ = true;
  reply(rep::kAck);
  return HandshakeEvent::NeedMore;
}

HandshakeEvent HandshakeMachine::handleInfo(std::span<const std::uint8_t> data) {
  const bool go = option_ == opt::kGo;
  // Data: u32 name length (at most option length - 6), name, u16 count, count x u16 info types.
  ByteReader r(data);
  std::uint32_t nameLength = r.be32();
  if (!r.ok() || r.remaining() < 2 || nameLength > r.remaining() - 2) {
    replyError(rep::kErrInvalid, "export name length past the option data");
    return HandshakeEvent::NeedMore;
  }
  std::string_view name = asText(r.bytes(nameLength));
  std::uint16_t count = r.be16();
  if (r.remaining() != std::size_t{count} * 2) {
    replyError(rep::kErrInvalid, "information request count does not match the option length");
    return HandshakeEvent::NeedMore;
  }
  if (!validString(name)) {
    replyError(rep::kErrInvalid, "export name over 4096 bytes or with a NUL");
    return HandshakeEvent::NeedMore;
  }
  // Types we understand; the rest "MUST [be] ignore[d]", repeats (which the client MUST NOT send)
  // are answered once.
  bool wantName = false, wantDescription = false, wantBlockSize = false;
  for (std::uint16_t i = 0; i < count; ++i) {
    switch (r.be16()) {
      case info::kName: wantName = true; break;
      case info::kDescription: wantDescription = true; break;
      case info::kBlockSize: wantBlockSize = true; break;
      default: break;  // NBD_INFO_EXPORT is always sent; unknown types are ignored
    }
  }

  ExportLookup found = catalog_.lookupExport(name, tls_);
  switch (found.status) {
    case LookupStatus::Found: break;
    case LookupStatus::NotFound:
      replyError(rep::kErrUnknown, "no such export");
      return HandshakeEvent::NeedMore;
    case LookupStatus::NotPermitted:
      replyError(rep::kErrPolicy, "export not available to this client");
      return HandshakeEvent::NeedMore;
    case LookupStatus::TlsRequired:
      // ERR_TLS_REQD only when the client can do something about it ("MUST NOT send
      // NBD_REP_ERR_TLS_REQD" in NOTLS mode or once TLS runs).
      if (tlsMode_ != TlsMode::None && !tls_) {
        replyError(rep::kErrTlsReqd, "export requires TLS");
      } else {
        replyError(rep::kErrPolicy, "export not available to this client");
      }
      return HandshakeEvent::NeedMore;
  }
  ExportInfo& e = found.info;
  if (!validBlockSizes(e.blockSizes)) {
    replyError(rep::kErrPolicy, "export block sizes misconfigured on the server");
    return HandshakeEvent::NeedMore;
  }

  const std::uint16_t flags = sentFlags(e);
  {
    std::vector<std::uint8_t> p;
    appendBe(p, e.size, 8);
    appendBe(p, flags, 2);
    replyInfo(info::kExport, p);
  }
  if (wantName) {
    std::string_view canonical = e.name.empty() ? name : std::string_view(e.name);
    if (validString(canonical)) replyInfo(info::kName, {reinterpret_cast<const std::uint8_t*>(canonical.data()), canonical.size()});
  }
  if (wantDescription && !e.description.empty()) {
    std::string_view desc = clampUtf8(e.description);
    replyInfo(info::kDescription, {reinterpret_cast<const std::uint8_t*>(desc.data()), desc.size()});
  }
  // Sent when asked for, and also unasked when the sizes are not the defaults ("MAY send information
  // ... not explicitly requested"): a client that understands it can only do better.
  if (wantBlockSize || e.blockSizes != BlockSizes{}) {
    std::array<std::uint8_t, 12> p{};
    ByteWriter w(p);
    w.be32(e.blockSizes.minimum);
    w.be32(e.blockSizes.preferred);
    w.be32(e.blockSizes.maximum);
    replyInfo(info::kBlockSize, p);
  }
  if (go && e.requireBlockSizes && !wantBlockSize) {
    replyError(rep::kErrBlockSizeReqd, "this export needs NBD_INFO_BLOCK_SIZE: the client must honour its block sizes");
    return HandshakeEvent::NeedMore;
  }
  reply(rep::kAck);
  if (!go) return HandshakeEvent::NeedMore;

  result_ = {};
  result_.exportName = std::string(name);
  result_.flags = flags;
  result_.exportInfo = std::move(e);
  result_.structuredReplies = structuredReplies_;
  if (metaSelected_ && metaExport_ == name) result_.metaContexts = metaContexts_;
  result_.blockSizesAgreed = wantBlockSize;
  result_.tls = tls_;
  state_ = State::Done;
  terminal_ = HandshakeEvent::Complete;
  return terminal_;
}

HandshakeEvent HandshakeMachine::handleMetaContext(std::span<const std::uint8_t> data) {
  const bool set = option_ == opt::kSetMetaContext;
  if (set) {
    // "Issuing this command replaces all previously-set metadata contexts (including when this
    // command fails)".
    metaSelected_ = false;
    metaExport_.clear();
    metaContexts_.clear();
    if (!structuredReplies_) {
      replyError(rep::kErrInvalid, "negotiate NBD_OPT_STRUCTURED_REPLY first");
      return HandshakeEvent::NeedMore;
    }
  }
  // Data: u32 name length, name, u32 query count, count x (u32 length, query).
  ByteReader r(data);
  std::uint32_t nameLength = r.be32();
  if (!r.ok() || nameLength > r.remaining()) {
    replyError(rep::kErrInvalid, "export name length past the option data");
    return HandshakeEvent::NeedMore;
  }
  std::string_view name = asText(r.bytes(nameLength));
  std::uint32_t count = r.be32();
  // Each query takes at least its 4-byte length: a count the data cannot hold is refused before
  // the loop runs.
  if (!r.ok() || count > r.remaining() / 4) {
    replyError(rep::kErrInvalid, "query count past the option data");
    return HandshakeEvent::NeedMore;
  }
  if (!validString(name)) {
    replyError(rep::kErrInvalid, "export name over 4096 bytes or with a NUL");
    return HandshakeEvent::NeedMore;
  }
  bool match = count == 0 && !set;  // LIST with no query: every context; SET with none: none
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint32_t length = r.be32();
    if (!r.ok() || length > r.remaining()) {
      replyError(rep::kErrInvalid, "query length past the option data");
      return HandshakeEvent::NeedMore;
    }
    std::string_view q = asText(r.bytes(length));
    if (!validQuery(q)) {
      replyError(rep::kErrInvalid, "a query must be namespace:leaf");
      return HandshakeEvent::NeedMore;
    }
    // "base:" is the namespace wildcard, for LIST only ("the server MUST ignore this form during
    // NBD_OPT_SET_META_CONTEXT"). Other leaves and namespaces are ignored, not refused.
    if (q == kBaseAllocation || (!set && q == kBaseNamespace)) match = true;
  }
  if (!r.empty()) {
    replyError(rep::kErrInvalid, "trailing bytes after the last query");
    return HandshakeEvent::NeedMore;
  }

  ExportLookup found = catalog_.lookupExport(name, tls_);
  if (found.status == LookupStatus::NotFound) {
    replyError(rep::kErrUnknown, "no such export");
    return HandshakeEvent::NeedMore;
  }
  if (found.status != LookupStatus::Found) {
    // ERR_TLS_REQD is reserved to INFO, GO and EXPORT_NAME in SELECTIVETLS mode.
    replyError(rep::kErrPolicy, "export not available to this client");
    return HandshakeEvent::NeedMore;
  }
  if (match) {
    std::uint32_t id = set ? kBaseAllocationContextId : 0;  // LIST: "reserved and SHOULD be set to zero"
    std::vector<std::uint8_t> d;
    appendBe(d, id, 4);
    appendStr(d, kBaseAllocation);
    reply(rep::kMetaContext, d);
  }
  reply(rep::kAck);
  if (set) {
    metaSelected_ = true;
    metaExport_ = std::string(name);
    if (match) metaContexts_.push_back({kBaseAllocationContextId, std::string(kBaseAllocation)});
  }
  return HandshakeEvent::NeedMore;
}

}  // namespace pxedust::nbd::wire
