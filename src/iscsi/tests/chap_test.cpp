// CHAP (RFC 1994 / RFC 7143 §12.1.3): MD5 known answers (computed independently with Python's
// hashlib), binary encodings, one-way and mutual exchanges, and every refusal.
#include "iscsi/login/chap.hpp"

#include <gtest/gtest.h>

#include <numeric>

using namespace pxedust::iscsi;

namespace {

std::vector<std::uint8_t> hex(std::string_view h) { return *decodeBinary("0x" + std::string(h)); }

// A deterministic "RNG": 0x10, 0x11, 0x12, ...
RandomSource counter(std::uint8_t start = 0x10) {
  return [start](std::span<std::uint8_t> out) mutable {
    for (auto& b : out) b = start++;
  };
}

}  // namespace

TEST(IscsiChap, Md5KnownAnswers) {
  std::vector<std::uint8_t> c16(16);
  std::iota(c16.begin(), c16.end(), 0);
  auto r = chapMd5Response(0x2a, "secretsecret1", c16);
  EXPECT_EQ(encodeHex(r), "0xec81cd0a4bf810bfcb485d7600dadf3f");
  EXPECT_EQ(encodeHex(chapMd5Response(0, "", {})), "0x93b885adfe0da089cdf634904fd59f71");
  EXPECT_EQ(encodeHex(chapMd5Response(255, "target-secret-99", hex("0123456789abcdef0123456789abcdef"))),
            "0xd31ad825e16b7ce0c94090279f0e86c4");
}

TEST(IscsiChap, BinaryEncodings) {
  std::vector<std::uint8_t> c16(16);
  std::iota(c16.begin(), c16.end(), 0);
  EXPECT_EQ(decodeBinary("0x000102030405060708090a0b0c0d0e0f"), c16);
  EXPECT_EQ(decodeBinary("0X000102030405060708090A0B0C0D0E0F"), c16);
  EXPECT_EQ(decodeBinary("0bAAECAwQFBgcICQoLDA0ODw=="), c16);
  EXPECT_EQ(decodeBinary("0bAQI="), (std::vector<std::uint8_t>{1, 2}));
  EXPECT_EQ(decodeBinary("0BAQ=="), (std::vector<std::uint8_t>{1}));
  EXPECT_EQ(decodeBinary("0xabc"), (std::vector<std::uint8_t>{0x0a, 0xbc}));  // odd: implied leading 0
  for (std::string_view bad : {"", "0x", "0b", "x12", "0y12", "0x1g", "0bAQ=", "0bA===", "0bAQ==AQ==", "0b*AAA",
                               "12345"}) {
    EXPECT_FALSE(decodeBinary(bad).has_value()) << bad;
  }
  EXPECT_TRUE(decodeBinary("0x" + std::string(2048, 'f')).has_value());
  EXPECT_FALSE(decodeBinary("0x" + std::string(2050, 'f')).has_value());
  EXPECT_EQ(encodeHex(c16), "0x000102030405060708090a0b0c0d0e0f");
}

TEST(IscsiChap, ConstantTimeEqual) {
  std::vector<std::uint8_t> a{1, 2, 3}, b{1, 2, 3}, c{1, 2, 4}, d{1, 2};
  EXPECT_TRUE(constantTimeEqual(a, b));
  EXPECT_FALSE(constantTimeEqual(a, c));
  EXPECT_FALSE(constantTimeEqual(a, d));
  EXPECT_TRUE(constantTimeEqual({}, {}));
}

TEST(IscsiChap, OneWayExchange) {
  ChapAuthenticator chap({"node01", "node01-secret"}, std::nullopt, counter());
  EXPECT_EQ(chap.selectAlgorithm("7,6,5"), ChapResult::Ok);
  EXPECT_EQ(chap.identifier(), 0x10);
  ASSERT_EQ(chap.challenge().size(), kChallengeBytes);
  EXPECT_EQ(chap.challenge()[0], 0x11);
  auto resp = encodeHex(chapMd5Response(chap.identifier(), "node01-secret", chap.challenge()));
  EXPECT_EQ(chap.verify("node01", resp, std::nullopt, std::nullopt), ChapResult::Ok);
  // The challenge is spent: the same answer cannot be replayed.
  EXPECT_EQ(chap.verify("node01", resp, std::nullopt, std::nullopt), ChapResult::Malformed);
}

TEST(IscsiChap, Base64ResponseAccepted) {
  ChapAuthenticator chap({"u", "secret-secret"}, std::nullopt, counter());
  ASSERT_EQ(chap.selectAlgorithm("5"), ChapResult::Ok);
  auto r = chapMd5Response(chap.identifier(), "secret-secret", chap.challenge());
  // Hand-rolled base64 of the 16 bytes via the decoder's inverse: check by round trip.
  static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string b64 = "0b";
  for (std::size_t i = 0; i < r.size(); i += 3) {
    std::uint32_t w = std::uint32_t(r[i]) << 16;
    if (i + 1 < r.size()) w |= std::uint32_t(r[i + 1]) << 8;
    if (i + 2 < r.size()) w |= r[i + 2];
    b64 += kB64[(w >> 18) & 63];
    b64 += kB64[(w >> 12) & 63];
    b64 += i + 1 < r.size() ? kB64[(w >> 6) & 63] : '=';
    b64 += i + 2 < r.size() ? kB64[w & 63] : '=';
  }
  EXPECT_EQ(chap.verify("u", b64, std::nullopt, std::nullopt), ChapResult::Ok);
}

TEST(IscsiChap, Refusals) {
  ChapAuthenticator noMd5({"u", "s"}, std::nullopt, counter());
  EXPECT_EQ(noMd5.selectAlgorithm("6,7"), ChapResult::BadAlgorithm);
  EXPECT_EQ(noMd5.selectAlgorithm("x"), ChapResult::BadAlgorithm);
  EXPECT_EQ(noMd5.verify("u", "0x00", std::nullopt, std::nullopt), ChapResult::Malformed);  // no challenge issued

  auto fresh = [] {
    auto c = std::make_unique<ChapAuthenticator>(ChapCredentials{"node01", "node01-secret"},
                                                 ChapCredentials{"target", "target-secret"}, counter());
    EXPECT_EQ(c->selectAlgorithm("5"), ChapResult::Ok);
    return c;
  };
  auto good = [](ChapAuthenticator& c) {
    return encodeHex(chapMd5Response(c.identifier(), "node01-secret", c.challenge()));
  };
  {
    auto c = fresh();
    EXPECT_EQ(c->verify("node02", good(*c), std::nullopt, std::nullopt), ChapResult::WrongUser);
  }
  {
    auto c = fresh();
    auto wrong = encodeHex(chapMd5Response(c->identifier(), "node01-secreT", c->challenge()));
    EXPECT_EQ(c->verify("node01", wrong, std::nullopt, std::nullopt), ChapResult::WrongResponse);
  }
  {
    auto c = fresh();
    EXPECT_EQ(c->verify("node01", "0xzz", std::nullopt, std::nullopt), ChapResult::Malformed);
  }
  {
    auto c = fresh();  // short response
    EXPECT_EQ(c->verify("node01", "0x00", std::nullopt, std::nullopt), ChapResult::WrongResponse);
  }
  {
    auto c = fresh();  // CHAP_I without CHAP_C
    EXPECT_EQ(c->verify("node01", good(*c), std::string_view("1"), std::nullopt), ChapResult::Malformed);
  }
  {
    auto c = fresh();  // reflection: our own challenge sent back
    std::string ours = encodeHex(c->challenge());
    EXPECT_EQ(c->verify("node01", good(*c), std::string_view("7"), std::string_view(ours)),
              ChapResult::ReflectedChallenge);
  }
  {
    auto c = fresh();  // a too-short initiator challenge
    EXPECT_EQ(c->verify("node01", good(*c), std::string_view("7"), std::string_view("0x0102")), ChapResult::Malformed);
  }
  {
    auto c = fresh();  // CHAP_I out of range
    EXPECT_EQ(c->verify("node01", good(*c), std::string_view("256"), std::string_view("0x" + std::string(32, 'a'))),
              ChapResult::Malformed);
  }
  {
    ChapAuthenticator oneWay({"node01", "node01-secret"}, std::nullopt, counter());
    ASSERT_EQ(oneWay.selectAlgorithm("5"), ChapResult::Ok);
    EXPECT_EQ(oneWay.verify("node01", good(oneWay), std::string_view("7"), std::string_view("0x" + std::string(32, 'a'))),
              ChapResult::MutualUnavailable);
  }
}

TEST(IscsiChap, MutualExchange) {
  ChapAuthenticator chap({"node01", "node01-secret"}, ChapCredentials{"iqn.2026-11.org.example:node01", "target-secret-99"},
                         counter(0x80));
  ASSERT_EQ(chap.selectAlgorithm("5"), ChapResult::Ok);
  auto resp = encodeHex(chapMd5Response(chap.identifier(), "node01-secret", chap.challenge()));
  EXPECT_EQ(chap.verify("node01", resp, std::string_view("255"), std::string_view("0x0123456789abcdef0123456789abcdef")),
            ChapResult::Ok);
  EXPECT_EQ(chap.mutualName(), "iqn.2026-11.org.example:node01");
  EXPECT_EQ(chap.mutualResponse(), "0xd31ad825e16b7ce0c94090279f0e86c4");  // hashlib, above
}
