// The iSCSI login phase as a pure object (RFC 7143 §6.3, §11.12, §11.13): Login Requests in,
// Login Responses out. No sockets, no clock, no config: the target lookup, the ACL and session
// bookkeeping are hooks the caller supplies.
//
// Stages: security (CSG 0) → operational (CSG 1) → full feature (NSG 3). The initiator may start in
// either of the first two (iPXE and libiscsi-with-CHAP start in security, Linux iscsistart and
// libiscsi-without-CHAP in operational) and may skip operational. The T/CSG/NSG rules (§11.12.3):
// T and C are never both set; with T=1, NSG is past CSG and not the reserved 2; CSG is the stage
// we are in. We answer T=1 only when the initiator asked and we are ready (authentication done),
// with the initiator's NSG. A request with C=1 is accumulated (capped) and answered with an empty
// response until its last piece arrives (§6.2, §11.12.4).
//
// The first request (the whole C-chain) must carry InitiatorName, and TargetName for a Normal
// session (§13.4, §13.5; else 0207 missing parameter); SessionType defaults to Normal. It is then
// handed to LoginHooks::authorize, which decides — target known (0203), initiator allowed (0202),
// which authentication. ISID, TSIH and CID must not change during the login. Our first response
// of a Normal session carries TargetPortalGroupTag (§13.9) and TargetAlias when configured; our
// first operational response declares MaxRecvDataSegmentLength. On the final response
// LoginHooks::admit assigns the TSIH (new session) or refuses (reinstatement rules, adding a
// connection: we allow one per session).
//
// Failures end the login with a status-only response (§11.13.5): class 2 initiator errors (0200
// protocol, 0201 authentication, 0202 authorization, 0203 not found, 0205 version, 0207 missing
// parameter, 0209 session type, 020b invalid during login) or class 3 target errors. The caller
// sends it and closes the connection. Any key re-declared within one login is an initiator error
// (§6.2).
//
// StatSN, ExpCmdSN and MaxCmdSN of each response are the caller's (it owns the connection's
// sequence numbers); everything else in the header is filled here.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "iscsi/login/chap.hpp"
#include "iscsi/login/negotiation.hpp"
#include "iscsi/wire/framer.hpp"
#include "iscsi/wire/pdu.hpp"
#include "iscsi/wire/text.hpp"

namespace pxedust::iscsi {

// Login status class and detail (§11.13.5).
struct LoginStatus {
  std::uint8_t cls = 0;
  std::uint8_t detail = 0;
  [[nodiscard]] constexpr bool ok() const { return cls == 0; }
  [[nodiscard]] constexpr std::uint16_t code() const { return static_cast<std::uint16_t>((cls << 8) | detail); }
  friend constexpr bool operator==(LoginStatus, LoginStatus) = default;
};
namespace login_status {
inline constexpr LoginStatus Success{0, 0};
inline constexpr LoginStatus TargetMovedTemporarily{1, 1};
inline constexpr LoginStatus TargetMovedPermanently{1, 2};
inline constexpr LoginStatus InitiatorError{2, 0};
inline constexpr LoginStatus AuthenticationFailure{2, 1};
inline constexpr LoginStatus AuthorizationFailure{2, 2};
inline constexpr LoginStatus NotFound{2, 3};
inline constexpr LoginStatus TargetRemoved{2, 4};
inline constexpr LoginStatus UnsupportedVersion{2, 5};
inline constexpr LoginStatus TooManyConnections{2, 6};
inline constexpr LoginStatus MissingParameter{2, 7};
inline constexpr LoginStatus CantIncludeInSession{2, 8};
inline constexpr LoginStatus SessionTypeNotSupported{2, 9};
inline constexpr LoginStatus SessionDoesNotExist{2, 0x0a};
inline constexpr LoginStatus InvalidDuringLogin{2, 0x0b};
inline constexpr LoginStatus TargetError{3, 0};
inline constexpr LoginStatus ServiceUnavailable{3, 1};
inline constexpr LoginStatus OutOfResources{3, 2};
}  // namespace login_status

// Who is logging in to what, from the first request. Names are as sent; iSCSI names compare
// case-insensitively (RFC 3722), so the hooks should normalize before comparing.
struct LoginIdentity {
  SessionType sessionType = SessionType::Normal;
  std::string initiatorName;
  std::string initiatorAlias;
  std::string targetName;  // empty for discovery sessions
  wire::Isid isid{};
  std::uint16_t tsih = 0;  // 0: a new session
  std::uint16_t cid = 0;
};

// The caller's verdict on an identity.
struct AccessDecision {
  LoginStatus status = login_status::Success;   // anything else ends the login with that status
  std::optional<ChapCredentials> chap;          // the initiator must pass CHAP with these; nullopt: AuthMethod=None
  std::optional<ChapCredentials> mutualChap;    // what we answer when the initiator asks us to authenticate
  std::string targetAlias;                      // sent as TargetAlias when not empty
};

// The caller's verdict at the end of the login.
struct Admission {
  LoginStatus status = login_status::Success;
  std::uint16_t tsih = 0;  // the new session's TSIH (non-zero) when identity.tsih was 0
};

struct LoginHooks {
  // Target lookup and ACL: called once, when the first request is complete.
  std::function<AccessDecision(const LoginIdentity&)> authorize;
  // Session bookkeeping: called once, just before the final response. Session reinstatement
  // (same initiator, ISID and target: §6.3.5) happens here. A missing hook fails the login.
  std::function<Admission(const LoginIdentity&, const SessionParams&)> admit;
  // CHAP challenges; required when authorize() asks for CHAP.
  RandomSource random;
};

struct LoginConfig {
  TargetLimits limits;
  std::uint16_t portalGroupTag = 1;
  std::size_t maxTextBytes = 32 * 1024;  // one request's accumulated C-chain
  std::size_t maxRequests = 64;          // Login Requests per login (C pieces included)
  std::size_t maxKeys = 256;             // distinct keys per login
  wire::TextLimits text{64};             // pairs per request: keeps any answer within 8192 bytes
};

struct LoginReply {
  enum class Outcome : std::uint8_t { Continue, Complete, Failed };
  wire::LoginResponse header;  // statSn, expCmdSn, maxCmdSn: the caller's
  std::vector<std::uint8_t> data;
  Outcome outcome = Outcome::Continue;
  std::string reason;  // why, for the log line of a failure
};

class LoginMachine {
 public:
  LoginMachine(LoginConfig config, LoginHooks hooks);

  LoginReply rxLoginRequest(const wire::LoginRequest& h, std::span<const std::uint8_t> data);

  [[nodiscard]] bool complete() const { return complete_; }
  [[nodiscard]] bool failed() const { return failed_; }
  [[nodiscard]] wire::Stage stage() const { return stage_; }
  [[nodiscard]] const LoginIdentity& identity() const { return identity_; }
  // Valid once complete(): the parameters of the full feature phase.
  [[nodiscard]] const SessionParams& params() const { return negotiator_.params(); }
  [[nodiscard]] std::uint16_t tsih() const { return tsih_; }
  // What the connection's framer must enforce from the first full-feature PDU on.
  [[nodiscard]] wire::FramerLimits framerLimits() const;

 private:
  enum class Auth : std::uint8_t { AwaitMethod, AwaitAlgorithm, AwaitResponse, Done };

  LoginReply fail(const wire::LoginRequest& h, LoginStatus status, std::string reason);
  std::optional<LoginReply> checkHeader(const wire::LoginRequest& h);
  std::optional<LoginReply> readIdentity(const wire::LoginRequest& h, const std::vector<wire::KeyValue>& pairs);
  wire::LoginResponse baseResponse(const wire::LoginRequest& h) const;

  LoginConfig config_;
  LoginHooks hooks_;
  Negotiator negotiator_;
  LoginIdentity identity_;
  AccessDecision decision_;
  std::optional<ChapAuthenticator> chap_;
  wire::TextAccumulator text_;
  std::set<std::string, std::less<>> seenKeys_;
  wire::Stage stage_ = wire::Stage::Security;
  Auth auth_ = Auth::AwaitMethod;
  std::size_t requests_ = 0;
  std::uint16_t tsih_ = 0;
  bool started_ = false;        // first request header seen (ISID/TSIH/CID recorded)
  bool identified_ = false;     // first complete request processed
  bool complete_ = false;
  bool failed_ = false;
};

}  // namespace pxedust::iscsi
