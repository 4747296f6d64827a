#include "iscsi/login/login.hpp"

#include <algorithm>

namespace pxedust::iscsi {
namespace {

using wire::Stage;

constexpr std::size_t kMaxIscsiName = 223;        // RFC 3720 §3.2.6.1
constexpr std::size_t kLoginResponseMax = 8192;   // MaxRecvDataSegmentLength during login (§13.12)

// The first item of the initiator's list (its preference order) that is in ours.
std::optional<std::string_view> firstAcceptable(std::string_view theirs, std::initializer_list<std::string_view> ours) {
  std::size_t start = 0;
  while (true) {
    std::size_t comma = theirs.find(',', start);
    std::string_view item = theirs.substr(start, comma == std::string_view::npos ? theirs.npos : comma - start);
    if (std::find(ours.begin(), ours.end(), item) != ours.end()) return item;
    if (comma == std::string_view::npos) return std::nullopt;
    start = comma + 1;
  }
}

std::string_view chapResultName(ChapResult r) {
  switch (r) {
    case ChapResult::Ok: return "ok";
    case ChapResult::BadAlgorithm: return "CHAP_A offers no MD5 (5)";
    case ChapResult::Malformed: return "malformed CHAP keys";
    case ChapResult::WrongUser: return "CHAP_N does not match";
    case ChapResult::WrongResponse: return "CHAP_R does not match";
    case ChapResult::ReflectedChallenge: return "initiator reflected our CHAP challenge";
    case ChapResult::MutualUnavailable: return "mutual CHAP requested but no target secret configured";
  }
  return "?";
}

}  // namespace

LoginMachine::LoginMachine(LoginConfig config, LoginHooks hooks)
    : config_(std::move(config)),
      hooks_(std::move(hooks)),
      negotiator_(config_.limits, SessionType::Normal),
      text_(config_.maxTextBytes) {}

wire::FramerLimits LoginMachine::framerLimits() const {
  const auto& p = negotiator_.params();
  wire::FramerLimits l;
  l.maxDataSegmentLength = complete_ ? p.targetMaxRecvDataSegmentLength : 8192;
  l.headerDigest = complete_ && p.headerDigest;
  l.dataDigest = complete_ && p.dataDigest;
  return l;
}

wire::LoginResponse LoginMachine::baseResponse(const wire::LoginRequest& h) const {
  wire::LoginResponse r;
  r.final = false;
  r.versionMax = 0x00;     // §11.13.2: the highest version we support, RFC 7143 is 0x00
  r.versionActive = 0x00;
  r.isid = h.isid;
  r.tsih = h.tsih;
  r.initiatorTaskTag = h.initiatorTaskTag;
  r.csg = h.csg;
  return r;
}

LoginReply LoginMachine::fail(const wire::LoginRequest& h, LoginStatus status, std::string reason) {
  failed_ = true;
  text_.clear();
  LoginReply reply;
  reply.header = baseResponse(h);
  reply.header.csg = 0;  // T, CSG and NSG are reserved in a failure response
  reply.header.statusClass = status.cls;
  reply.header.statusDetail = status.detail;
  reply.outcome = LoginReply::Outcome::Failed;
  reply.reason = std::move(reason);
  return reply;
}

std::optional<LoginReply> LoginMachine::checkHeader(const wire::LoginRequest& h) {
  using namespace login_status;
  if (complete_ || failed_) return fail(h, InvalidDuringLogin, "Login Request after the login ended");
  if (++requests_ > config_.maxRequests) return fail(h, InitiatorError, "too many Login Requests");
  if (!started_) {
    // §11.12.5: we speak version 0x00 only.
    if (h.versionMin > 0x00 || h.versionMax < h.versionMin) return fail(h, UnsupportedVersion, "unsupported version range");
    if (h.csg != 0 && h.csg != 1) return fail(h, InitiatorError, "first CSG is not security or operational");
    started_ = true;
    stage_ = static_cast<Stage>(h.csg);
    identity_.isid = h.isid;
    identity_.tsih = h.tsih;
    identity_.cid = h.cid;
  } else if (h.isid != identity_.isid || h.tsih != identity_.tsih || h.cid != identity_.cid) {
    return fail(h, InitiatorError, "ISID, TSIH or CID changed during login");
  }
  if (h.csg != static_cast<std::uint8_t>(stage_)) return fail(h, InitiatorError, "CSG is not the current stage");
  if (h.transit && h.cont) return fail(h, InitiatorError, "T and C both set");
  if (h.transit && (h.nsg <= h.csg || h.nsg == 2)) return fail(h, InitiatorError, "invalid NSG");
  return std::nullopt;
}

std::optional<LoginReply> LoginMachine::readIdentity(const wire::LoginRequest& h,
                                                     const std::vector<wire::KeyValue>& pairs) {
  using namespace login_status;
  std::optional<std::string_view> initiatorName, targetName, sessionType, alias;
  for (const auto& kv : pairs) {
    if (kv.key == "InitiatorName") initiatorName = kv.value;
    else if (kv.key == "TargetName") targetName = kv.value;
    else if (kv.key == "SessionType") sessionType = kv.value;
    else if (kv.key == "InitiatorAlias") alias = kv.value;
  }
  SessionType type = SessionType::Normal;  // §13.21 default
  if (sessionType) {
    if (*sessionType == "Discovery") type = SessionType::Discovery;
    else if (*sessionType != "Normal") return fail(h, SessionTypeNotSupported, "unknown SessionType");
  }
  if (!initiatorName || initiatorName->empty()) return fail(h, MissingParameter, "no InitiatorName");
  if (initiatorName->size() > kMaxIscsiName) return fail(h, InitiatorError, "InitiatorName too long");
  if (type == SessionType::Normal && (!targetName || targetName->empty())) {
    return fail(h, MissingParameter, "no TargetName in a Normal session");
  }
  if (targetName && targetName->size() > kMaxIscsiName) return fail(h, NotFound, "TargetName too long");
  identity_.sessionType = type;
  identity_.initiatorName = std::string(*initiatorName);
  identity_.targetName = targetName ? std::string(*targetName) : std::string();
  identity_.initiatorAlias = alias ? std::string(*alias) : std::string();

  negotiator_ = Negotiator(config_.limits, type);
  auto& p = negotiator_.params();
  p.initiatorName = identity_.initiatorName;
  p.initiatorAlias = identity_.initiatorAlias;
  p.targetName = identity_.targetName;

  if (!hooks_.authorize) return fail(h, TargetError, "no authorize hook");
  decision_ = hooks_.authorize(identity_);
  if (!decision_.status.ok()) return fail(h, decision_.status, "refused by target lookup/ACL");
  if (decision_.chap && !hooks_.random) return fail(h, TargetError, "CHAP required but no random source");
  identified_ = true;
  return std::nullopt;
}

LoginReply LoginMachine::rxLoginRequest(const wire::LoginRequest& h, std::span<const std::uint8_t> data) {
  using namespace login_status;
  if (auto bad = checkHeader(h)) return std::move(*bad);

  // §6.2: a C-chain is one request; acknowledge each piece with an empty response.
  if (!text_.append(data)) return fail(h, InitiatorError, "login text over the size cap");
  if (h.cont) {
    LoginReply reply;
    reply.header = baseResponse(h);
    return reply;
  }
  auto parsed = wire::parseText(text_.bytes(), config_.text);
  if (!parsed.ok()) {
    return fail(h, InitiatorError, std::string("login text: ") + std::string(wire::textErrorName(parsed.error)));
  }
  // §6.2: no key may be declared or offered twice in one login.
  for (const auto& kv : parsed.pairs) {
    if (seenKeys_.contains(kv.key)) return fail(h, InitiatorError, "key sent twice: " + std::string(kv.key));
    if (seenKeys_.size() >= config_.maxKeys) return fail(h, InitiatorError, "too many keys in one login");
    seenKeys_.emplace(kv.key);
  }

  bool first = !identified_;
  if (first) {
    if (auto bad = readIdentity(h, parsed.pairs)) return std::move(*bad);
    // Skipping the security stage is only possible when no authentication is required (§6.3).
    if (stage_ != Stage::Security && decision_.chap) {
      return fail(h, AuthenticationFailure, "security stage skipped but CHAP is required");
    }
  }

  wire::TextWriter out;
  std::optional<std::string_view> chapN, chapR, chapI, chapC;
  for (const auto& kv : parsed.pairs) {
    auto outcome = negotiator_.offer(kv, out);
    if (outcome == KeyOutcome::Identity) {
      if (!first && kv.key != "InitiatorAlias") return fail(h, InitiatorError, "login identity key after the first request");
      continue;
    }
    if (outcome != KeyOutcome::Security) continue;
    if (stage_ != Stage::Security) return fail(h, InitiatorError, "security key outside the security stage");

    if (kv.key == "AuthMethod") {
      if (auth_ != Auth::AwaitMethod) return fail(h, InitiatorError, "AuthMethod out of sequence");
      std::optional<std::string_view> chosen =
          decision_.chap ? firstAcceptable(kv.value, {"CHAP"}) : firstAcceptable(kv.value, {"None"});
      if (!chosen) return fail(h, AuthenticationFailure, "no acceptable AuthMethod offered");
      out.add("AuthMethod", *chosen);
      auth_ = *chosen == "CHAP" ? Auth::AwaitAlgorithm : Auth::Done;
      if (auth_ == Auth::AwaitAlgorithm) chap_.emplace(*decision_.chap, decision_.mutualChap, hooks_.random);
    } else if (kv.key == "CHAP_A") {
      if (auth_ != Auth::AwaitAlgorithm || !chap_) return fail(h, InitiatorError, "CHAP_A out of sequence");
      auto r = chap_->selectAlgorithm(kv.value);
      if (r != ChapResult::Ok) return fail(h, AuthenticationFailure, std::string(chapResultName(r)));
      out.add("CHAP_A", "5");
      out.add("CHAP_I", std::to_string(chap_->identifier()));
      out.add("CHAP_C", encodeHex(chap_->challenge()));
      auth_ = Auth::AwaitResponse;
    } else if (kv.key == "CHAP_N") {
      chapN = kv.value;
    } else if (kv.key == "CHAP_R") {
      chapR = kv.value;
    } else if (kv.key == "CHAP_I") {
      chapI = kv.value;
    } else if (kv.key == "CHAP_C") {
      chapC = kv.value;
    }
  }
  if (chapN || chapR || chapI || chapC) {
    if (auth_ != Auth::AwaitResponse || !chap_ || !chapN || !chapR) {
      return fail(h, InitiatorError, "CHAP response out of sequence or incomplete");
    }
    auto r = chap_->verify(*chapN, *chapR, chapI, chapC);
    if (r != ChapResult::Ok) return fail(h, AuthenticationFailure, std::string(chapResultName(r)));
    if (chapI) {
      out.add("CHAP_N", chap_->mutualName());
      out.add("CHAP_R", chap_->mutualResponse());
    }
    auth_ = Auth::Done;
  }
  text_.clear();  // the views in `parsed` are dead from here on

  // An initiator that asks to leave the security stage without ever naming an AuthMethod gets
  // None if that is what this target requires, and a failure if CHAP is.
  if (stage_ == Stage::Security && h.transit && auth_ == Auth::AwaitMethod) {
    if (decision_.chap) return fail(h, AuthenticationFailure, "no AuthMethod offered but CHAP is required");
    auth_ = Auth::Done;
  }

  if (first && identity_.sessionType == SessionType::Normal) {
    // set(): an initiator that sent these target-only keys got "Reject" for them above; the first
    // response still carries our value, and each key only once.
    out.set("TargetPortalGroupTag", std::to_string(config_.portalGroupTag));
    if (!decision_.targetAlias.empty()) out.set("TargetAlias", decision_.targetAlias);
  }
  if (stage_ == Stage::Operational) negotiator_.declare(out);

  LoginReply reply;
  reply.header = baseResponse(h);
  // §11.13.3: T=1 only when the initiator asked for it and we are ready to leave this stage.
  bool transit = h.transit && (stage_ != Stage::Security || auth_ == Auth::Done);
  if (transit) {
    reply.header.transit = true;
    reply.header.nsg = h.nsg;
    if (h.nsg == static_cast<std::uint8_t>(Stage::FullFeature)) {
      negotiator_.finish();
      if (!hooks_.admit) return fail(h, TargetError, "no admit hook");
      Admission a = hooks_.admit(identity_, negotiator_.params());
      if (!a.status.ok()) return fail(h, a.status, "refused at admission");
      if (identity_.tsih == 0 && a.tsih == 0) return fail(h, TargetError, "admit hook gave TSIH 0");
      tsih_ = identity_.tsih != 0 ? identity_.tsih : a.tsih;
      reply.header.tsih = tsih_;  // §11.13.4: the new TSIH, in the final response only
      complete_ = true;
      stage_ = Stage::FullFeature;
      reply.outcome = LoginReply::Outcome::Complete;
    } else {
      stage_ = static_cast<Stage>(h.nsg);
    }
  }
  if (out.size() > kLoginResponseMax) return fail(h, InitiatorError, "answer would exceed 8192 bytes");
  reply.header.dataSegmentLength = static_cast<std::uint32_t>(out.size());
  reply.data = out.take();
  return reply;
}

}  // namespace pxedust::iscsi
