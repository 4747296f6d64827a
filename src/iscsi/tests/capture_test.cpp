// Known answers from real captures (captures.hpp): libiscsi's byte streams, framed byte by byte and
// whole, and its login requests driven through our login machine; the CHAP answers exchanged
// between libiscsi and tgtd checked against our MD5.
#include <gtest/gtest.h>

#include "captures.hpp"
#include "iscsi/login/login.hpp"
#include "iscsi/wire/framer.hpp"
#include "login_test_util.hpp"

using namespace pxedust::iscsi;
using namespace pxedust::iscsi::testing;
namespace wire = pxedust::iscsi::wire;
namespace ls = pxedust::iscsi::login_status;

namespace {

std::vector<std::uint8_t> unhex(std::string_view h) {
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<std::uint8_t>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  return out;
}

std::vector<wire::RxPdu> frame(std::span<const std::uint8_t> stream, std::size_t step) {
  wire::PduFramer f(wire::FramerLimits{262144, 1020, false, false});
  std::vector<wire::RxPdu> out;
  for (std::size_t pos = 0; pos < stream.size();) {
    auto piece = stream.subspan(pos, std::min(step, stream.size() - pos));
    pos += piece.size();
    for (std::size_t off = 0; off < piece.size();) {
      auto r = f.feed(piece.subspan(off));
      off += r.consumed;
      if (r.status == wire::FrameStatus::NeedMore) break;
      EXPECT_EQ(r.status, wire::FrameStatus::Pdu);
      out.push_back(f.pdu());
    }
  }
  EXPECT_TRUE(f.idle());
  return out;
}

std::vector<wire::Opcode> opcodes(const std::vector<wire::RxPdu>& pdus) {
  std::vector<wire::Opcode> ops;
  for (const auto& p : pdus) ops.push_back(p.opcode());
  return ops;
}

wire::LoginRequest loginHeader(const wire::RxPdu& p) {
  auto h = wire::parseInitiatorHeader(p.header());
  EXPECT_TRUE(h.ok());
  return std::get<wire::LoginRequest>(*h);
}

LoginHooks acceptAll(std::optional<ChapCredentials> chap = std::nullopt) {
  LoginHooks hooks;
  hooks.authorize = [chap](const LoginIdentity&) {
    AccessDecision d;
    d.chap = chap;
    return d;
  };
  hooks.admit = [](const LoginIdentity&, const SessionParams&) { return Admission{ls::Success, 7}; };
  hooks.random = [](std::span<std::uint8_t> out) {
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint8_t>(0xc0 + i);
  };
  return hooks;
}

}  // namespace

TEST(IscsiCapture, FramesLibiscsiStreamsInAnySplit) {
  using wire::Opcode;
  auto inq = unhex(kLibiscsiInq);
  auto disc = unhex(kLibiscsiDiscovery);
  auto chap = unhex(kLibiscsiChap);
  for (std::size_t step : {std::size_t{1}, std::size_t{7}, std::size_t{48}, std::size_t{4096}}) {
    auto a = frame(inq, step);
    ASSERT_GE(a.size(), 3u);
    EXPECT_EQ(a.front().opcode(), Opcode::LoginRequest);
    EXPECT_EQ(a.back().opcode(), Opcode::LogoutRequest);
    for (std::size_t i = 1; i + 1 < a.size(); ++i) EXPECT_EQ(a[i].opcode(), Opcode::ScsiCommand);
    EXPECT_EQ(opcodes(frame(disc, step)),
              (std::vector<Opcode>{Opcode::LoginRequest, Opcode::TextRequest, Opcode::LogoutRequest}));
    auto c = frame(chap, step);
    ASSERT_GE(c.size(), 5u);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(c[static_cast<std::size_t>(i)].opcode(), Opcode::LoginRequest);
    for (const auto& p : c) EXPECT_TRUE(wire::parseInitiatorHeader(p.header()).ok());
  }
}

// libiscsi without CHAP: one Login Request, T=1 CSG=1 NSG=3, random-type ISID (0x80...).
TEST(IscsiCapture, LibiscsiLoginCompletesInOneRequest) {
  auto pdus = frame(unhex(kLibiscsiInq), 4096);
  auto h = loginHeader(pdus[0]);
  EXPECT_TRUE(h.transit);
  EXPECT_EQ(h.csg, 1);
  EXPECT_EQ(h.nsg, 3);
  EXPECT_EQ(h.isid[0] & 0xc0, 0x80);
  LoginMachine m(LoginConfig{}, acceptAll());
  auto r = m.rxLoginRequest(h, pdus[0].data);
  ASSERT_EQ(r.outcome, LoginReply::Outcome::Complete) << r.reason;
  auto a = mapOf(r.data);
  EXPECT_EQ(a["HeaderDigest"], "None");  // it offers "None,CRC32C"
  EXPECT_EQ(a["TargetPortalGroupTag"], "1");
  EXPECT_EQ(a["InitialR2T"], "No");
  EXPECT_EQ(a["ImmediateData"], "Yes");
  EXPECT_EQ(m.identity().initiatorName, "iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-inq");
  EXPECT_EQ(m.identity().targetName, "iqn.2026-11.org.example:cap");
  EXPECT_EQ(m.params().initiatorMaxRecvDataSegmentLength, 262144u);
  EXPECT_EQ(r.header.tsih, 7);
  // Then, on LUN 1: TEST UNIT READY twice (to consume the new session's UNIT ATTENTION), INQUIRY
  // with allocation length 64, INQUIRY again with the length the first answer asked for.
  std::vector<std::uint8_t> cdb0;
  for (std::size_t i = 1; i + 1 < pdus.size(); ++i) {
    auto cmd = wire::parseInitiatorHeader(pdus[i].header());
    ASSERT_TRUE(cmd.ok());
    const auto& c = std::get<wire::ScsiCommand>(*cmd);
    EXPECT_EQ(wire::decodeLun(c.lun), 1u);
    EXPECT_EQ(c.attr, 1);  // SIMPLE
    EXPECT_TRUE(c.final);
    cdb0.push_back(c.cdb[0]);
  }
  EXPECT_EQ(cdb0, (std::vector<std::uint8_t>{0x00, 0x00, 0x12, 0x12}));
}

// libiscsi's discovery session sends the normal-session keys too; they are answered Irrelevant.
TEST(IscsiCapture, LibiscsiDiscoveryLoginAndSendTargets) {
  auto pdus = frame(unhex(kLibiscsiDiscovery), 4096);
  LoginMachine m(LoginConfig{}, acceptAll());
  auto r = m.rxLoginRequest(loginHeader(pdus[0]), pdus[0].data);
  ASSERT_EQ(r.outcome, LoginReply::Outcome::Complete) << r.reason;
  EXPECT_EQ(m.identity().sessionType, SessionType::Discovery);
  auto a = mapOf(r.data);
  EXPECT_EQ(a["InitialR2T"], "Irrelevant");
  EXPECT_EQ(a["MaxBurstLength"], "Irrelevant");
  EXPECT_EQ(a.count("TargetPortalGroupTag"), 0u);
  auto text = wire::parseText(pdus[1].data);
  ASSERT_TRUE(text.ok());
  ASSERT_EQ(text.pairs.size(), 1u);
  EXPECT_EQ(text.pairs[0].key, "SendTargets");
  EXPECT_EQ(text.pairs[0].value, "All");
  auto th = wire::parseInitiatorHeader(pdus[1].header());
  ASSERT_TRUE(th.ok());
  EXPECT_TRUE(std::get<wire::TextRequest>(*th).final);
}

// The CHAP answers libiscsi and tgtd exchanged, recomputed: libiscsi's CHAP_R to tgtd's challenge,
// and tgtd's CHAP_R to libiscsi's mutual challenge.
TEST(IscsiCapture, ChapAnswersFromARealExchange) {
  auto tgtChallenge = *decodeBinary(
      "0x8b5a3c27970f07bfdc169b9766c9da85193c55f9bb2022e51b87658a33b65be17712415d8a6de416d77ab0a20728644ddac3");
  EXPECT_EQ(encodeHex(chapMd5Response(1, "node01-secret", tgtChallenge)), "0x2fe2d83b9e6719792a44e14501159cac");
  auto pdus = frame(unhex(kLibiscsiMutualChap), 4096);
  auto third = wire::parseText(pdus[2].data);
  ASSERT_TRUE(third.ok());
  std::map<std::string, std::string> keys;
  for (const auto& kv : third.pairs) keys[std::string(kv.key)] = std::string(kv.value);
  EXPECT_EQ(keys["CHAP_I"], "1");
  auto initiatorChallenge = decodeBinary(keys["CHAP_C"]);  // upper-case hex
  ASSERT_TRUE(initiatorChallenge);
  EXPECT_EQ(initiatorChallenge->size(), 32u);
  EXPECT_EQ(encodeHex(chapMd5Response(1, "target-secret99", *initiatorChallenge)), "0x827668da747fef6bb0766e79c48ee723");
}

// libiscsi's CHAP sequence through our machine: T=1 with AuthMethod, T=0 with CHAP_A. The captured
// CHAP_R answered tgtd's challenge, not ours: replayed here it must be refused.
TEST(IscsiCapture, LibiscsiChapSequenceAndReplayRefused) {
  auto pdus = frame(unhex(kLibiscsiChap), 4096);
  LoginMachine m(LoginConfig{}, acceptAll(ChapCredentials{"node01", "node01-secret"}));
  auto r1 = m.rxLoginRequest(loginHeader(pdus[0]), pdus[0].data);
  EXPECT_FALSE(r1.header.transit);
  EXPECT_EQ(mapOf(r1.data)["AuthMethod"], "CHAP");
  auto h2 = loginHeader(pdus[1]);
  EXPECT_FALSE(h2.transit);
  auto r2 = m.rxLoginRequest(h2, pdus[1].data);
  ASSERT_EQ(r2.outcome, LoginReply::Outcome::Continue) << r2.reason;
  EXPECT_EQ(mapOf(r2.data)["CHAP_A"], "5");
  auto r3 = m.rxLoginRequest(loginHeader(pdus[2]), pdus[2].data);
  EXPECT_EQ(r3.outcome, LoginReply::Outcome::Failed);
  EXPECT_EQ(r3.header.statusClass, 2);
  EXPECT_EQ(r3.header.statusDetail, 1);
}
