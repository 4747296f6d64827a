#include "iscsi/login/chap.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "iscsi/login/negotiation.hpp"

namespace pxedust::iscsi {
namespace {

int hexNibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

std::optional<std::vector<std::uint8_t>> decodeBinary(std::string_view v) {
  if (v.size() < 3 || v[0] != '0') return std::nullopt;
  std::vector<std::uint8_t> out;
  std::string_view body = v.substr(2);
  if (v[1] == 'x' || v[1] == 'X') {
    if (body.size() > 2 * kMaxBinaryBytes) return std::nullopt;
    std::size_t i = 0;
    if (body.size() % 2 == 1) {  // odd count: implied leading zero nibble
      int n = hexNibble(body[0]);
      if (n < 0) return std::nullopt;
      out.push_back(static_cast<std::uint8_t>(n));
      i = 1;
    }
    for (; i < body.size(); i += 2) {  // an even count remains
      int hi = hexNibble(body[i]), lo = hexNibble(body[i + 1]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<std::uint8_t>((hi << 4) | lo));
    }
    return out;
  }
  if (v[1] == 'b' || v[1] == 'B') {
    if (body.size() % 4 != 0 || body.size() / 4 * 3 > kMaxBinaryBytes + 2) return std::nullopt;
    for (std::size_t i = 0; i < body.size(); i += 4) {
      int q[4];
      int pad = 0;
      for (int k = 0; k < 4; ++k) {
        char c = body[i + static_cast<std::size_t>(k)];
        if (c == '=' && i + 4 == body.size() && k >= 2) {
          q[k] = 0;
          ++pad;
          continue;
        }
        if (pad > 0) return std::nullopt;  // data after '='
        q[k] = base64Value(c);
        if (q[k] < 0) return std::nullopt;
      }
      std::uint32_t w = (std::uint32_t(q[0]) << 18) | (std::uint32_t(q[1]) << 12) | (std::uint32_t(q[2]) << 6) |
                        std::uint32_t(q[3]);
      out.push_back(static_cast<std::uint8_t>(w >> 16));
      if (pad < 2) out.push_back(static_cast<std::uint8_t>(w >> 8));
      if (pad < 1) out.push_back(static_cast<std::uint8_t>(w));
    }
    if (out.empty() || out.size() > kMaxBinaryBytes) return std::nullopt;
    return out;
  }
  return std::nullopt;
}

std::string encodeHex(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s = "0x";
  s.reserve(2 + 2 * bytes.size());
  for (auto b : bytes) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 0xf]);
  }
  return s;
}

std::array<std::uint8_t, 16> chapMd5Response(std::uint8_t id, std::string_view secret,
                                             std::span<const std::uint8_t> challenge) {
  std::array<std::uint8_t, 16> out{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned int len = 0;
  bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_md5(), nullptr) == 1 &&
            EVP_DigestUpdate(ctx, &id, 1) == 1 && EVP_DigestUpdate(ctx, secret.data(), secret.size()) == 1 &&
            EVP_DigestUpdate(ctx, challenge.data(), challenge.size()) == 1 &&
            EVP_DigestFinal_ex(ctx, out.data(), &len) == 1 && len == out.size();
  EVP_MD_CTX_free(ctx);
  if (!ok) {
    // MD5 unavailable (a FIPS-only libcrypto): return a value no initiator can match, never a
    // predictable one. Verification below then fails closed.
    out.fill(0);
    out[0] = 1;
  }
  return out;
}

bool constantTimeEqual(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

ChapAuthenticator::ChapAuthenticator(ChapCredentials initiator, std::optional<ChapCredentials> target,
                                     RandomSource random)
    : initiator_(std::move(initiator)), target_(std::move(target)), random_(std::move(random)) {}

ChapResult ChapAuthenticator::selectAlgorithm(std::string_view chapA) {
  // A list of algorithm numbers in the initiator's order of preference (§12.1.3); MD5 is all we do.
  bool md5 = false;
  std::size_t start = 0;
  while (true) {
    std::size_t comma = chapA.find(',', start);
    std::string_view item = chapA.substr(start, comma == std::string_view::npos ? chapA.npos : comma - start);
    if (auto n = parseNumber(item); n && *n == kChapMd5) md5 = true;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (!md5) return ChapResult::BadAlgorithm;
  std::array<std::uint8_t, 1 + kChallengeBytes> r{};
  random_(r);
  id_ = r[0];
  challenge_.assign(r.begin() + 1, r.end());
  return ChapResult::Ok;
}

ChapResult ChapAuthenticator::verify(std::string_view chapN, std::string_view chapR,
                                     std::optional<std::string_view> chapI, std::optional<std::string_view> chapC) {
  if (challenge_.empty()) return ChapResult::Malformed;  // no challenge issued
  auto response = decodeBinary(chapR);
  if (!response) return ChapResult::Malformed;
  // Compare user name and response without an early exit on either.
  std::span<const std::uint8_t> nameGot(reinterpret_cast<const std::uint8_t*>(chapN.data()), chapN.size());
  std::span<const std::uint8_t> nameWant(reinterpret_cast<const std::uint8_t*>(initiator_.user.data()),
                                         initiator_.user.size());
  bool nameOk = constantTimeEqual(nameGot, nameWant);
  auto expected = chapMd5Response(id_, initiator_.secret, challenge_);
  bool responseOk = constantTimeEqual(*response, expected);
  // A challenge answers once: a second verify() cannot replay against the same one.
  std::vector<std::uint8_t> ours = std::move(challenge_);
  challenge_.clear();
  if (!nameOk) return ChapResult::WrongUser;
  if (!responseOk) return ChapResult::WrongResponse;

  if (chapI.has_value() != chapC.has_value()) return ChapResult::Malformed;
  if (!chapI) return ChapResult::Ok;
  // Mutual CHAP: the initiator challenges us.
  if (!target_) return ChapResult::MutualUnavailable;
  auto id = parseNumber(*chapI);
  auto challenge = decodeBinary(*chapC);
  if (!id || *id > 255 || !challenge || challenge->size() < kMinChallengeBytes) return ChapResult::Malformed;
  if (constantTimeEqual(*challenge, ours)) return ChapResult::ReflectedChallenge;  // §9.2.1
  auto mine = chapMd5Response(static_cast<std::uint8_t>(*id), target_->secret, *challenge);
  mutualName_ = target_->user;
  mutualResponse_ = encodeHex(mine);
  return ChapResult::Ok;
}

}  // namespace pxedust::iscsi
