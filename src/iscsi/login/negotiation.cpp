#include "iscsi/login/negotiation.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace pxedust::iscsi {
namespace {

constexpr std::uint32_t kMaxSegment = (1u << 24) - 1;

// RFC 7143 §13, one row per key. min/max are the valid ranges of numerical keys.
constexpr std::array kKeys = {
    KeyDef{"InitiatorName", KeyRule::Identity},
    KeyDef{"InitiatorAlias", KeyRule::Identity, 0, 0, false, false},
    KeyDef{"TargetName", KeyRule::Identity},
    KeyDef{"SessionType", KeyRule::Identity},
    KeyDef{"AuthMethod", KeyRule::Security},
    KeyDef{"CHAP_A", KeyRule::Security},
    KeyDef{"CHAP_I", KeyRule::Security},
    KeyDef{"CHAP_C", KeyRule::Security},
    KeyDef{"CHAP_N", KeyRule::Security},
    KeyDef{"CHAP_R", KeyRule::Security},
    KeyDef{"MaxRecvDataSegmentLength", KeyRule::DeclareOwn, 512, kMaxSegment, false, false},  // §13.12
    KeyDef{"MaxBurstLength", KeyRule::NumMin, 512, kMaxSegment, true},                         // §13.13
    KeyDef{"FirstBurstLength", KeyRule::NumMin, 512, kMaxSegment, true},                       // §13.14
    KeyDef{"InitialR2T", KeyRule::BoolOr, 0, 0, true},                                         // §13.10
    KeyDef{"ImmediateData", KeyRule::BoolAnd, 0, 0, true},                                     // §13.11
    KeyDef{"MaxOutstandingR2T", KeyRule::NumMin, 1, 65535, true},                              // §13.17
    KeyDef{"DataPDUInOrder", KeyRule::BoolOr, 0, 0, true},                                     // §13.18
    KeyDef{"DataSequenceInOrder", KeyRule::BoolOr, 0, 0, true},                                // §13.19
    KeyDef{"ErrorRecoveryLevel", KeyRule::NumMin, 0, 2},                                       // §13.20
    KeyDef{"HeaderDigest", KeyRule::DigestList, 0, 0, false, false},                           // §13.1
    KeyDef{"DataDigest", KeyRule::DigestList, 0, 0, false, false},
    KeyDef{"DefaultTime2Wait", KeyRule::NumMax, 0, 3600},                                      // §13.15
    KeyDef{"DefaultTime2Retain", KeyRule::NumMin, 0, 3600},                                    // §13.16
    KeyDef{"MaxConnections", KeyRule::NumMin, 1, 65535, true},                                 // §13.2
    KeyDef{"iSCSIProtocolLevel", KeyRule::NumMin, 0, 31},                                      // §13.24
    KeyDef{"IFMarker", KeyRule::AnswerNo},                                                     // §13.25
    KeyDef{"OFMarker", KeyRule::AnswerNo},
    KeyDef{"IFMarkInt", KeyRule::AnswerReject},
    KeyDef{"OFMarkInt", KeyRule::AnswerReject},
    KeyDef{"TargetAlias", KeyRule::AnswerReject},           // §13.6: sent by targets only
    KeyDef{"TargetPortalGroupTag", KeyRule::AnswerReject},  // §13.9
    KeyDef{"TargetAddress", KeyRule::AnswerReject},         // §13.8
    KeyDef{"SendTargets", KeyRule::FullFeatureOnly, 0, 0, false, false},  // §13.3
};

std::optional<bool> parseBool(std::string_view v) {
  if (v == "Yes") return true;
  if (v == "No") return false;
  return std::nullopt;
}

std::string_view yesNo(bool b) { return b ? "Yes" : "No"; }

}  // namespace

const KeyDef* findKey(std::string_view name) {
  for (const auto& k : kKeys) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

std::optional<std::uint32_t> parseNumber(std::string_view v) {
  int base = 10;
  if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
    v.remove_prefix(2);
    base = 16;
  }
  if (v.empty() || v.size() > 16) return std::nullopt;
  std::uint64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out, base);
  if (ec != std::errc{} || p != v.data() + v.size() || out > UINT32_MAX) return std::nullopt;
  return static_cast<std::uint32_t>(out);
}

Negotiator::Negotiator(const TargetLimits& limits, SessionType type) : limits_(limits) {
  params_.sessionType = type;
}

void Negotiator::answer(wire::TextWriter& out, std::string_view key, std::string_view value) {
  out.add(key, value);
}

std::uint32_t* Negotiator::numericField(std::string_view n) {
  if (n == "MaxBurstLength") return &params_.maxBurstLength;
  if (n == "FirstBurstLength") return &params_.firstBurstLength;
  if (n == "MaxOutstandingR2T") return &params_.maxOutstandingR2T;
  if (n == "ErrorRecoveryLevel") return &params_.errorRecoveryLevel;
  if (n == "DefaultTime2Wait") return &params_.defaultTime2Wait;
  if (n == "DefaultTime2Retain") return &params_.defaultTime2Retain;
  if (n == "MaxConnections") return &params_.maxConnections;
  if (n == "iSCSIProtocolLevel") return &params_.protocolLevel;
  return nullptr;
}

bool* Negotiator::boolField(std::string_view n) {
  if (n == "InitialR2T") return &params_.initialR2T;
  if (n == "ImmediateData") return &params_.immediateData;
  if (n == "DataPDUInOrder") return &params_.dataPduInOrder;
  if (n == "DataSequenceInOrder") return &params_.dataSequenceInOrder;
  return nullptr;
}

KeyOutcome Negotiator::offer(const wire::KeyValue& kv, wire::TextWriter& out) {
  const KeyDef* def = findKey(kv.key);
  if (def == nullptr) {
    // Unknown keys, X- and X# vendor keys included (§6.2, §13.17).
    answer(out, kv.key, "NotUnderstood");
    return KeyOutcome::Answered;
  }
  if (def->rule == KeyRule::Identity) return KeyOutcome::Identity;
  if (def->rule == KeyRule::Security) return KeyOutcome::Security;
  if (params_.sessionType == SessionType::Discovery && def->irrelevantInDiscovery) {
    answer(out, kv.key, "Irrelevant");
    return KeyOutcome::Answered;
  }

  switch (def->rule) {
    case KeyRule::DeclareOwn: {
      auto n = parseNumber(kv.value);
      if (!n || *n < def->min || *n > def->max) {
        // The Reject takes the place of our declaration in this PDU; ours stays the 8192 default.
        answer(out, kv.key, "Reject");
        declared_ = true;
        return KeyOutcome::Answered;
      }
      params_.initiatorMaxRecvDataSegmentLength = *n;
      return KeyOutcome::Settled;
    }
    case KeyRule::NumMin:
    case KeyRule::NumMax: {
      auto n = parseNumber(kv.value);
      std::uint32_t* field = numericField(kv.key);
      if (!n || *n < def->min || *n > def->max || field == nullptr) {
        answer(out, kv.key, "Reject");
        return KeyOutcome::Answered;
      }
      std::uint32_t ours = 0;
      if (kv.key == "MaxBurstLength") ours = limits_.maxBurstLength;
      else if (kv.key == "FirstBurstLength") ours = limits_.firstBurstLength;
      else if (kv.key == "MaxOutstandingR2T") ours = limits_.maxOutstandingR2T;
      else if (kv.key == "ErrorRecoveryLevel") ours = limits_.errorRecoveryLevel;
      else if (kv.key == "DefaultTime2Wait") ours = limits_.defaultTime2Wait;
      else if (kv.key == "DefaultTime2Retain") ours = limits_.defaultTime2Retain;
      else if (kv.key == "MaxConnections") ours = limits_.maxConnections;
      else if (kv.key == "iSCSIProtocolLevel") ours = 1;
      std::uint32_t result = def->rule == KeyRule::NumMin ? std::min(*n, ours) : std::max(*n, ours);
      // §13.14: FirstBurstLength MUST NOT exceed MaxBurstLength (initiators send MaxBurstLength first).
      if (kv.key == "FirstBurstLength") result = std::min(result, params_.maxBurstLength);
      *field = result;
      answer(out, kv.key, std::to_string(result));
      return KeyOutcome::Answered;
    }
    case KeyRule::BoolOr:
    case KeyRule::BoolAnd: {
      auto b = parseBool(kv.value);
      bool* field = boolField(kv.key);
      if (!b || field == nullptr) {
        answer(out, kv.key, "Reject");
        return KeyOutcome::Answered;
      }
      bool ours = false;
      if (kv.key == "InitialR2T") ours = limits_.initialR2T;
      else if (kv.key == "ImmediateData") ours = limits_.immediateData;
      else if (kv.key == "DataPDUInOrder") ours = limits_.dataPduInOrder;
      else if (kv.key == "DataSequenceInOrder") ours = limits_.dataSequenceInOrder;
      bool result = def->rule == KeyRule::BoolOr ? (*b || ours) : (*b && ours);
      *field = result;
      answer(out, kv.key, yesNo(result));
      return KeyOutcome::Answered;
    }
    case KeyRule::DigestList: {
      bool header = kv.key == "HeaderDigest";
      bool crcOk = header ? limits_.headerDigestCrc32c : limits_.dataDigestCrc32c;
      // §6.2.1: the first value of the offered list that we support; unknown values are skipped.
      std::string_view v = kv.value;
      std::size_t start = 0;
      while (true) {
        std::size_t comma = v.find(',', start);
        std::string_view item = v.substr(start, comma == std::string_view::npos ? v.npos : comma - start);
        if (item == "None" || (item == "CRC32C" && crcOk)) {
          (header ? params_.headerDigest : params_.dataDigest) = item == "CRC32C";
          answer(out, kv.key, item);
          return KeyOutcome::Answered;
        }
        if (comma == std::string_view::npos) break;
        start = comma + 1;
      }
      answer(out, kv.key, "Reject");
      return KeyOutcome::Answered;
    }
    case KeyRule::AnswerNo:
      answer(out, kv.key, "No");
      return KeyOutcome::Answered;
    case KeyRule::AnswerReject:
      answer(out, kv.key, "Reject");
      return KeyOutcome::Answered;
    case KeyRule::FullFeatureOnly:
      answer(out, kv.key, "Irrelevant");
      return KeyOutcome::Answered;
    case KeyRule::Identity:
    case KeyRule::Security:
      break;
  }
  return KeyOutcome::Settled;
}

void Negotiator::declare(wire::TextWriter& out) {
  if (declared_) return;
  declared_ = true;
  params_.targetMaxRecvDataSegmentLength = limits_.maxRecvDataSegmentLength;
  answer(out, "MaxRecvDataSegmentLength", std::to_string(limits_.maxRecvDataSegmentLength));
}

void Negotiator::finish() {
  // §13.14: FirstBurstLength MUST NOT exceed MaxBurstLength.
  if (params_.firstBurstLength > params_.maxBurstLength) params_.firstBurstLength = params_.maxBurstLength;
}

}  // namespace pxedust::iscsi
