// Operational parameter negotiation (RFC 7143 §6.2, §13), driven by one table of keys.
//
// Each key in the table carries its RFC rule: who may send it, in which stage, how the result is
// computed from the initiator's offer and our value (declarative, Boolean OR/AND, numerical
// min/max, list), its valid range, and whether it is irrelevant in a discovery session. The
// Negotiator applies the table to the keys of one Login (or Text) request and writes the answers;
// the values it settles accumulate in SessionParams over the whole login.
//
// Answers, per §6.2: the result value for a negotiated key; nothing for a declarative one (we
// declare our own MaxRecvDataSegmentLength once, in the first operational response);
// "NotUnderstood" for a key not in the table (including X- and X# vendor keys, §13.17);
// "Irrelevant" for a key a discovery session does not use (§13: "Irrelevant when:
// SessionType=Discovery"); "Reject" for a value outside its range or not valid for its type (the
// parameter keeps its default, §6.2.1/§6.2.2). Markers are obsolete (§13.25): IFMarker/OFMarker get
// "No", IFMarkInt/OFMarkInt get "Reject". Keys only a target may send (TargetAlias,
// TargetPortalGroupTag, TargetAddress) and keys of the full feature phase (SendTargets) get
// "Reject" / "Irrelevant" during login.
//
// Two choices worth knowing: FirstBurstLength is answered even when InitialR2T=Yes and
// ImmediateData=No make it irrelevant (iPXE notes some targets fail without it; answering a number
// is always valid), and is clamped to MaxBurstLength (§13.14 forbids exceeding it). The security
// keys (AuthMethod, CHAP_*) and the login identity (InitiatorName, TargetName, SessionType,
// InitiatorAlias) are in the table so that every key has one definition, but the login machine
// acts on them; the Negotiator only tells it so.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "iscsi/wire/text.hpp"

namespace pxedust::iscsi {

enum class SessionType : std::uint8_t { Normal, Discovery };

// What this target offers. Defaults are ours, chosen for diskless boot clients; RFC defaults are
// in SessionParams.
struct TargetLimits {
  std::uint32_t maxRecvDataSegmentLength = 262144;  // declared; what our framer accepts
  std::uint32_t maxBurstLength = 1048576;           // ≥ iscsistart's FirstBurst, keeps R2T bursts bounded
  std::uint32_t firstBurstLength = 262144;          // unsolicited bytes per command we buffer
  bool initialR2T = false;                          // we accept unsolicited data (result is OR)
  bool immediateData = true;                        // we accept immediate data (result is AND)
  std::uint32_t maxOutstandingR2T = 16;
  bool dataPduInOrder = true;                       // we want in-order (OR: Yes wins)
  bool dataSequenceInOrder = true;
  std::uint32_t errorRecoveryLevel = 0;             // we implement ERL 0 only
  bool headerDigestCrc32c = true;                   // digests we are willing to use
  bool dataDigestCrc32c = true;
  std::uint32_t defaultTime2Wait = 2;
  std::uint32_t defaultTime2Retain = 20;
  std::uint32_t maxConnections = 1;                 // one connection per session
};

// The parameters a login settled, with the RFC 7143 §13 defaults for keys nobody sent.
struct SessionParams {
  SessionType sessionType = SessionType::Normal;
  std::string initiatorName;
  std::string initiatorAlias;
  std::string targetName;
  // Declarative, one per direction (§13.12): the most data we may send in one PDU, and the most we
  // said we accept (8192 until we declare).
  std::uint32_t initiatorMaxRecvDataSegmentLength = 8192;
  std::uint32_t targetMaxRecvDataSegmentLength = 8192;
  std::uint32_t maxBurstLength = 262144;
  std::uint32_t firstBurstLength = 65536;
  bool initialR2T = true;
  bool immediateData = true;
  std::uint32_t maxOutstandingR2T = 1;
  bool dataPduInOrder = true;
  bool dataSequenceInOrder = true;
  std::uint32_t errorRecoveryLevel = 0;
  bool headerDigest = false;  // CRC32C when true
  bool dataDigest = false;
  std::uint32_t defaultTime2Wait = 2;
  std::uint32_t defaultTime2Retain = 20;
  std::uint32_t maxConnections = 1;
  std::uint32_t protocolLevel = 1;  // iSCSIProtocolLevel (§13.24); RFC 7143 is level 1
};

// How a key is settled (§6.2, §13).
enum class KeyRule : std::uint8_t {
  Identity,        // InitiatorName, InitiatorAlias, TargetName, SessionType: the login machine's
  Security,        // AuthMethod, CHAP_*: the login machine's (security stage only)
  DeclareOwn,      // MaxRecvDataSegmentLength: store theirs, declare ours
  BoolOr,
  BoolAnd,
  NumMin,
  NumMax,
  DigestList,      // HeaderDigest/DataDigest: first of theirs we support
  AnswerNo,        // IFMarker/OFMarker (obsolete, §13.25)
  AnswerReject,    // IFMarkInt/OFMarkInt (obsolete), keys only a target sends
  FullFeatureOnly, // SendTargets: not during login
};

struct KeyDef {
  std::string_view name;
  KeyRule rule;
  std::uint32_t min = 0;
  std::uint32_t max = 0;
  bool irrelevantInDiscovery = false;
  bool leadingOnly = true;  // LO keys may not be renegotiated in the full feature phase
};

// The table lookup; nullptr for keys we do not know.
const KeyDef* findKey(std::string_view name);

// What the Negotiator did with one key.
enum class KeyOutcome : std::uint8_t {
  Answered,       // an answer (value, Reject, Irrelevant or NotUnderstood) was written
  Settled,        // declarative, no answer needed
  Identity,       // for the login machine
  Security,       // for the login machine
};

class Negotiator {
 public:
  Negotiator(const TargetLimits& limits, SessionType type);

  // Settles one key offered by the initiator; writes the answer, if any, to `out`.
  KeyOutcome offer(const wire::KeyValue& kv, wire::TextWriter& out);
  // Our own declarations (MaxRecvDataSegmentLength), once per login: call at the end of the first
  // response in the operational stage.
  void declare(wire::TextWriter& out);
  [[nodiscard]] bool declared() const { return declared_; }
  // Final consistency (FirstBurstLength ≤ MaxBurstLength). Call once before the login completes.
  void finish();

  [[nodiscard]] const SessionParams& params() const { return params_; }
  SessionParams& params() { return params_; }

 private:
  void answer(wire::TextWriter& out, std::string_view key, std::string_view value);
  std::uint32_t* numericField(std::string_view name);
  bool* boolField(std::string_view name);

  TargetLimits limits_;
  SessionParams params_;
  bool declared_ = false;
};

// Parses an RFC 7143 §6.1 numerical value: decimal, or hex with 0x. nullopt when malformed or ≥ 2^32.
std::optional<std::uint32_t> parseNumber(std::string_view v);

}  // namespace pxedust::iscsi
