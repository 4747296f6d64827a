// CHAP for iSCSI (RFC 1994 via RFC 7143 §12.1.3), target side, MD5 only (CHAP_A=5).
//
// One-way: we send CHAP_A=5, CHAP_I (one random byte) and CHAP_C (a random challenge of
// kChallengeBytes from the caller's RNG), the initiator answers CHAP_N (its user name) and
// CHAP_R = MD5(CHAP_I || secret || challenge), which we check in constant time.
// Mutual: the initiator adds its own CHAP_I/CHAP_C to that answer and we reply with our CHAP_N and
// CHAP_R computed with the target secret. We refuse an initiator challenge equal to ours — the
// reflection attack RFC 7143 §9.2.1 requires responders to check.
//
// Binary values (§6.1) come as 0x hex or 0b base64; we emit hex, the one encoding every initiator
// parses (libiscsi only reads "CHAP_R=0x...").
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pxedust::iscsi {

struct ChapCredentials {
  std::string user;
  std::string secret;
};

// Fills the span with unpredictable bytes (the daemon passes a CSPRNG; tests a fixed sequence).
using RandomSource = std::function<void(std::span<std::uint8_t>)>;

inline constexpr std::uint8_t kChapMd5 = 5;
inline constexpr std::size_t kChallengeBytes = 32;
inline constexpr std::size_t kMinChallengeBytes = 16;   // we refuse shorter initiator challenges
inline constexpr std::size_t kMaxBinaryBytes = 1024;    // §6.1 binary-value bound we accept

// RFC 7143 §6.1 binary values: "0x" + hex digits (odd count allowed, leading nibble implied) or
// "0b" + base64. nullopt when malformed, empty or longer than kMaxBinaryBytes.
std::optional<std::vector<std::uint8_t>> decodeBinary(std::string_view v);
std::string encodeHex(std::span<const std::uint8_t> bytes);  // "0x..." lower case

// MD5(id || secret || challenge), RFC 1994 §4.1.
std::array<std::uint8_t, 16> chapMd5Response(std::uint8_t id, std::string_view secret,
                                             std::span<const std::uint8_t> challenge);

// Constant-time equality for equal-length buffers (false when lengths differ).
bool constantTimeEqual(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b);

enum class ChapResult : std::uint8_t {
  Ok,
  BadAlgorithm,      // CHAP_A list without 5
  Malformed,         // missing or undecodable CHAP_N/CHAP_R/CHAP_I/CHAP_C
  WrongUser,
  WrongResponse,
  ReflectedChallenge,
  MutualUnavailable, // the initiator asked us to authenticate but we have no target secret
};

// One CHAP exchange, target side.
class ChapAuthenticator {
 public:
  ChapAuthenticator(ChapCredentials initiator, std::optional<ChapCredentials> target, RandomSource random);

  // Step 1: the initiator's CHAP_A list ("5" or "7,5" ...). On Ok, `chosen` is 5 and challenge()
  // holds fresh CHAP_I/CHAP_C to send.
  ChapResult selectAlgorithm(std::string_view chapA);
  [[nodiscard]] std::uint8_t identifier() const { return id_; }
  [[nodiscard]] std::span<const std::uint8_t> challenge() const { return challenge_; }

  // Step 2: the initiator's answer. chapI/chapC are set for mutual CHAP. On Ok with mutual,
  // mutualName()/mutualResponse() hold our CHAP_N/CHAP_R.
  ChapResult verify(std::string_view chapN, std::string_view chapR, std::optional<std::string_view> chapI,
                    std::optional<std::string_view> chapC);
  [[nodiscard]] const std::string& mutualName() const { return mutualName_; }
  [[nodiscard]] const std::string& mutualResponse() const { return mutualResponse_; }

 private:
  ChapCredentials initiator_;
  std::optional<ChapCredentials> target_;
  RandomSource random_;
  std::uint8_t id_ = 0;
  std::vector<std::uint8_t> challenge_;
  std::string mutualName_;
  std::string mutualResponse_;
};

}  // namespace pxedust::iscsi
