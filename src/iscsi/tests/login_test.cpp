// The login state machine driven through the sequences real initiators send (iPXE, Linux
// iscsistart, libiscsi with and without CHAP, mutual CHAP, discovery) and through every refusal.
#include "iscsi/login/login.hpp"

#include <gtest/gtest.h>

#include "login_test_util.hpp"

using namespace pxedust::iscsi;
using namespace pxedust::iscsi::testing;
namespace ls = pxedust::iscsi::login_status;
namespace wire = pxedust::iscsi::wire;

namespace {

constexpr const char* kInitiator = "iqn.2010-04.org.ipxe:node01";
constexpr const char* kTarget = "iqn.2026-11.org.example:node01";

struct Harness {
  AccessDecision decision;
  Admission admission{ls::Success, 0x1234};
  std::vector<LoginIdentity> authorized;
  std::vector<LoginIdentity> admitted;
  LoginConfig config;
  std::unique_ptr<LoginMachine> machine;
  wire::Isid isid{0x40, 0x00, 0x27, 0x23, 0x00, 0x01};
  std::uint16_t tsih = 0;

  LoginMachine& m() {
    if (!machine) {
      LoginHooks hooks;
      hooks.authorize = [this](const LoginIdentity& id) {
        authorized.push_back(id);
        return decision;
      };
      hooks.admit = [this](const LoginIdentity& id, const SessionParams&) {
        admitted.push_back(id);
        return admission;
      };
      hooks.random = [n = std::uint8_t{0x40}](std::span<std::uint8_t> out) mutable {
        for (auto& b : out) b = n++;
      };
      machine = std::make_unique<LoginMachine>(config, hooks);
    }
    return *machine;
  }

  LoginReply send(std::uint8_t csg, bool transit, std::uint8_t nsg, const Pairs& keys, bool cont = false) {
    wire::LoginRequest h;
    h.immediate = true;
    h.transit = transit;
    h.cont = cont;
    h.csg = csg;
    h.nsg = nsg;
    h.isid = isid;
    h.tsih = tsih;
    h.initiatorTaskTag = 0x77;
    auto data = textOf(keys);
    h.dataSegmentLength = static_cast<std::uint32_t>(data.size());
    return m().rxLoginRequest(h, data);
  }
};

Pairs ipxeSecurity(const char* authMethod = "None") {
  return {{"InitiatorName", kInitiator}, {"TargetName", kTarget}, {"SessionType", "Normal"}, {"AuthMethod", authMethod}};
}

void expectOk(const LoginReply& r, bool transit, std::uint8_t csg, std::uint8_t nsg) {
  EXPECT_NE(r.outcome, LoginReply::Outcome::Failed) << r.reason;
  EXPECT_EQ(r.header.statusClass, 0);
  EXPECT_EQ(r.header.transit, transit);
  EXPECT_EQ(r.header.csg, csg);
  EXPECT_EQ(r.header.nsg, transit ? nsg : 0);
  EXPECT_EQ(r.header.dataSegmentLength, r.data.size());
  EXPECT_EQ(r.header.initiatorTaskTag, 0x77u);
}

void expectFail(const LoginReply& r, LoginStatus s) {
  EXPECT_EQ(r.outcome, LoginReply::Outcome::Failed);
  EXPECT_EQ(r.header.statusClass, s.cls) << r.reason;
  EXPECT_EQ(r.header.statusDetail, s.detail) << r.reason;
  EXPECT_FALSE(r.header.transit);
  EXPECT_TRUE(r.data.empty());
}

}  // namespace

TEST(IscsiLogin, IpxeSecurityThenOperational) {
  Harness t;
  auto r1 = t.send(0, true, 1, ipxeSecurity());
  expectOk(r1, true, 0, 1);
  EXPECT_EQ(pairsOf(r1.data), (Pairs{{"AuthMethod", "None"}, {"TargetPortalGroupTag", "1"}}));
  EXPECT_EQ(r1.header.tsih, 0);
  EXPECT_EQ(r1.header.isid, t.isid);
  ASSERT_EQ(t.authorized.size(), 1u);
  EXPECT_EQ(t.authorized[0].initiatorName, kInitiator);
  EXPECT_EQ(t.authorized[0].targetName, kTarget);
  EXPECT_EQ(t.m().stage(), wire::Stage::Operational);

  auto r2 = t.send(1, true, 3, ipxeOperational());
  expectOk(r2, true, 1, 3);
  EXPECT_EQ(r2.outcome, LoginReply::Outcome::Complete);
  EXPECT_EQ(r2.header.tsih, 0x1234);
  auto m = mapOf(r2.data);
  EXPECT_EQ(m["MaxRecvDataSegmentLength"], "262144");
  EXPECT_EQ(m["ImmediateData"], "No");
  EXPECT_EQ(m["InitialR2T"], "Yes");
  EXPECT_EQ(m.count("TargetPortalGroupTag"), 0u);  // first response only
  EXPECT_TRUE(t.m().complete());
  EXPECT_EQ(t.m().tsih(), 0x1234);
  EXPECT_EQ(t.m().params().initiatorMaxRecvDataSegmentLength, 8192u);
  EXPECT_EQ(t.m().params().targetName, kTarget);
  auto fl = t.m().framerLimits();
  EXPECT_EQ(fl.maxDataSegmentLength, 262144u);
  EXPECT_FALSE(fl.headerDigest);
  ASSERT_EQ(t.admitted.size(), 1u);
}

TEST(IscsiLogin, IscsistartStraightToOperational) {
  Harness t;
  t.isid = {0x00, 0x02, 0x3d, 0x00, 0x00, 0x01};
  t.decision.targetAlias = "node01 disk";
  Pairs keys = {{"InitiatorName", "iqn.1993-08.org.debian:01:node01"}, {"InitiatorAlias", "node01"},
                {"TargetName", kTarget}, {"SessionType", "Normal"}};
  for (auto& kv : iscsistartOperational()) keys.push_back(kv);
  auto r = t.send(1, true, 3, keys);
  expectOk(r, true, 1, 3);
  EXPECT_EQ(r.outcome, LoginReply::Outcome::Complete);
  auto m = mapOf(r.data);
  EXPECT_EQ(m["TargetPortalGroupTag"], "1");
  EXPECT_EQ(m["TargetAlias"], "node01 disk");
  EXPECT_EQ(m["MaxRecvDataSegmentLength"], "262144");
  EXPECT_EQ(m["ImmediateData"], "Yes");
  EXPECT_EQ(m["InitialR2T"], "No");
  EXPECT_EQ(m.count("InitiatorName"), 0u);
  EXPECT_EQ(m.count("AuthMethod"), 0u);
  // open-iscsi refuses any key it does not know in a response: only these may appear.
  for (const auto& [k, v] : m) {
    static const std::set<std::string> known = {
        "TargetAlias", "TargetAddress", "TargetPortalGroupTag", "InitialR2T", "ImmediateData",
        "MaxRecvDataSegmentLength", "FirstBurstLength", "MaxBurstLength", "HeaderDigest", "DataDigest",
        "DefaultTime2Wait", "DefaultTime2Retain", "OFMarker", "IFMarker", "OFMarkInt", "IFMarkInt",
        "DataPDUInOrder", "DataSequenceInOrder", "MaxOutstandingR2T", "MaxConnections", "ErrorRecoveryLevel"};
    EXPECT_TRUE(known.contains(k)) << k;
  }
  EXPECT_EQ(t.admitted.at(0).isid, t.isid);
  EXPECT_EQ(t.m().params().initiatorAlias, "node01");
  EXPECT_TRUE(t.m().params().immediateData);
  EXPECT_EQ(t.m().params().firstBurstLength, 262144u);
}

// libiscsi with a CHAP user: security stage with T=1 on the first PDU, CHAP_A with T=0, CHAP_N/R with T=1.
TEST(IscsiLogin, LibiscsiOneWayChap) {
  Harness t;
  t.decision.chap = ChapCredentials{"node01", "node01-secret"};
  auto r1 = t.send(0, true, 1,
                   {{"InitiatorName", "iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-inq"},
                    {"InitiatorAlias", "x"}, {"TargetName", kTarget}, {"SessionType", "Normal"},
                    {"AuthMethod", "CHAP,None"}});
  expectOk(r1, false, 0, 0);  // not ready: authentication pending
  EXPECT_EQ(pairsOf(r1.data), (Pairs{{"AuthMethod", "CHAP"}, {"TargetPortalGroupTag", "1"}}));

  auto r2 = t.send(0, false, 0, {{"CHAP_A", "5"}});
  expectOk(r2, false, 0, 0);
  auto m2 = mapOf(r2.data);
  EXPECT_EQ(m2["CHAP_A"], "5");
  ASSERT_TRUE(m2.count("CHAP_I"));
  auto id = static_cast<std::uint8_t>(std::stoi(m2["CHAP_I"]));
  auto challenge = decodeBinary(m2["CHAP_C"]);
  ASSERT_TRUE(challenge);
  EXPECT_GE(challenge->size(), 16u);

  auto resp = encodeHex(chapMd5Response(id, "node01-secret", *challenge));
  auto r3 = t.send(0, true, 1, {{"CHAP_N", "node01"}, {"CHAP_R", resp}});
  expectOk(r3, true, 0, 1);
  EXPECT_TRUE(r3.data.empty());

  auto r4 = t.send(1, true, 3, libiscsiOperational());
  expectOk(r4, true, 1, 3);
  EXPECT_EQ(r4.outcome, LoginReply::Outcome::Complete);
}

// iPXE with mutual CHAP sets T=1 on every request; we hold T=0 until CHAP is done.
TEST(IscsiLogin, IpxeMutualChap) {
  Harness t;
  t.decision.chap = ChapCredentials{"node01", "node01-secret"};
  t.decision.mutualChap = ChapCredentials{kTarget, "target-secret-99"};
  auto r1 = t.send(0, true, 1, ipxeSecurity("CHAP"));
  expectOk(r1, false, 0, 0);
  auto r2 = t.send(0, true, 1, {{"CHAP_A", "5"}});
  expectOk(r2, false, 0, 0);
  auto m2 = mapOf(r2.data);
  auto id = static_cast<std::uint8_t>(std::stoi(m2["CHAP_I"]));
  auto challenge = *decodeBinary(m2["CHAP_C"]);
  std::vector<std::uint8_t> mine(16, 0x5a);
  auto r3 = t.send(0, true, 1,
                   {{"CHAP_N", "node01"}, {"CHAP_R", encodeHex(chapMd5Response(id, "node01-secret", challenge))},
                    {"CHAP_I", "200"}, {"CHAP_C", encodeHex(mine)}});
  expectOk(r3, true, 0, 1);
  auto m3 = mapOf(r3.data);
  EXPECT_EQ(m3["CHAP_N"], kTarget);
  EXPECT_EQ(m3["CHAP_R"], encodeHex(chapMd5Response(200, "target-secret-99", mine)));
  auto r4 = t.send(1, true, 3, ipxeOperational());
  EXPECT_EQ(r4.outcome, LoginReply::Outcome::Complete);
}

TEST(IscsiLogin, ChapRefusals) {
  auto chapHarness = [] {
    auto t = std::make_unique<Harness>();
    t->decision.chap = ChapCredentials{"node01", "node01-secret"};
    return t;
  };
  {  // wrong secret, then the login is over
    auto t = chapHarness();
    t->send(0, true, 1, ipxeSecurity("CHAP"));
    auto m2 = mapOf(t->send(0, true, 1, {{"CHAP_A", "5"}}).data);
    auto challenge = *decodeBinary(m2["CHAP_C"]);
    auto bad = encodeHex(chapMd5Response(static_cast<std::uint8_t>(std::stoi(m2["CHAP_I"])), "guess", challenge));
    expectFail(t->send(0, true, 1, {{"CHAP_N", "node01"}, {"CHAP_R", bad}}), ls::AuthenticationFailure);
    expectFail(t->send(1, true, 3, ipxeOperational()), ls::InvalidDuringLogin);
    EXPECT_TRUE(t->m().failed());
  }
  {  // CHAP required, initiator offers None only
    auto t = chapHarness();
    expectFail(t->send(0, true, 1, ipxeSecurity("None")), ls::AuthenticationFailure);
  }
  {  // CHAP required, initiator skips the security stage
    auto t = chapHarness();
    Pairs keys = {{"InitiatorName", kInitiator}, {"TargetName", kTarget}};
    expectFail(t->send(1, true, 3, keys), ls::AuthenticationFailure);
  }
  {  // CHAP required, transit requested without any AuthMethod
    auto t = chapHarness();
    expectFail(t->send(0, true, 1, {{"InitiatorName", kInitiator}, {"TargetName", kTarget}}), ls::AuthenticationFailure);
  }
  {  // no MD5 in CHAP_A
    auto t = chapHarness();
    t->send(0, false, 0, ipxeSecurity("CHAP"));
    expectFail(t->send(0, false, 0, {{"CHAP_A", "7"}}), ls::AuthenticationFailure);
  }
  {  // CHAP_R before CHAP_A
    auto t = chapHarness();
    t->send(0, false, 0, ipxeSecurity("CHAP"));
    expectFail(t->send(0, true, 1, {{"CHAP_N", "node01"}, {"CHAP_R", "0x00"}}), ls::InitiatorError);
  }
  {  // reflection: the initiator sends our challenge back as its own
    auto t = chapHarness();
    t->decision.mutualChap = ChapCredentials{kTarget, "target-secret-99"};
    t->send(0, false, 0, ipxeSecurity("CHAP"));
    auto m2 = mapOf(t->send(0, false, 0, {{"CHAP_A", "5"}}).data);
    auto id = static_cast<std::uint8_t>(std::stoi(m2["CHAP_I"]));
    auto challenge = *decodeBinary(m2["CHAP_C"]);
    expectFail(t->send(0, true, 1,
                       {{"CHAP_N", "node01"}, {"CHAP_R", encodeHex(chapMd5Response(id, "node01-secret", challenge))},
                        {"CHAP_I", m2["CHAP_I"]}, {"CHAP_C", m2["CHAP_C"]}}),
               ls::AuthenticationFailure);
  }
  {  // AuthMethod=CHAP offered but not configured: None is what we take
    Harness t;
    auto r = t.send(0, true, 1, ipxeSecurity("CHAP,None"));
    expectOk(r, true, 0, 1);
    EXPECT_EQ(mapOf(r.data)["AuthMethod"], "None");
  }
  {  // only CHAP offered, not configured
    Harness t;
    expectFail(t.send(0, true, 1, ipxeSecurity("CHAP")), ls::AuthenticationFailure);
  }
}

TEST(IscsiLogin, DiscoverySession) {
  Harness t;
  auto r = t.send(1, true, 3,
                  {{"InitiatorName", kInitiator}, {"SessionType", "Discovery"}, {"HeaderDigest", "None"},
                   {"MaxRecvDataSegmentLength", "32768"}, {"InitialR2T", "No"}});
  expectOk(r, true, 1, 3);
  EXPECT_EQ(r.outcome, LoginReply::Outcome::Complete);
  EXPECT_EQ(pairsOf(r.data), (Pairs{{"HeaderDigest", "None"}, {"InitialR2T", "Irrelevant"},
                                    {"MaxRecvDataSegmentLength", "262144"}}));
  EXPECT_EQ(t.authorized.at(0).sessionType, SessionType::Discovery);
  EXPECT_TRUE(t.authorized.at(0).targetName.empty());
}

TEST(IscsiLogin, SecurityStageStraightToFullFeature) {
  Harness t;
  auto r = t.send(0, true, 3, ipxeSecurity());
  expectOk(r, true, 0, 3);
  EXPECT_EQ(r.outcome, LoginReply::Outcome::Complete);
  // Never declared: the initiator may send us only the 8192-byte default.
  EXPECT_EQ(t.m().framerLimits().maxDataSegmentLength, 8192u);
}

TEST(IscsiLogin, TransitWithoutAuthMethodWhenNoneIsRequired) {
  Harness t;
  auto r = t.send(0, true, 1, {{"InitiatorName", kInitiator}, {"TargetName", kTarget}});
  expectOk(r, true, 0, 1);
}

TEST(IscsiLogin, OperationalStageWithoutTransitWaits) {
  Harness t;
  auto r1 = t.send(1, false, 0, {{"InitiatorName", kInitiator}, {"TargetName", kTarget}, {"MaxBurstLength", "65536"}});
  expectOk(r1, false, 1, 0);
  EXPECT_EQ(mapOf(r1.data)["MaxRecvDataSegmentLength"], "262144");
  auto r2 = t.send(1, true, 3, {{"HeaderDigest", "CRC32C"}, {"DataDigest", "CRC32C,None"}});
  expectOk(r2, true, 1, 3);
  EXPECT_EQ(pairsOf(r2.data), (Pairs{{"HeaderDigest", "CRC32C"}, {"DataDigest", "CRC32C"}}));  // declared once
  auto fl = t.m().framerLimits();
  EXPECT_TRUE(fl.headerDigest);
  EXPECT_TRUE(fl.dataDigest);
  EXPECT_EQ(t.m().params().maxBurstLength, 65536u);
}

TEST(IscsiLogin, ContinuationAccumulates) {
  Harness t;
  auto whole = textOf(ipxeSecurity());
  std::vector<std::vector<std::uint8_t>> pieces = {{whole.begin(), whole.begin() + 10},
                                                   {whole.begin() + 10, whole.begin() + 47},
                                                   {whole.begin() + 47, whole.end()}};
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    bool last = i + 1 == pieces.size();
    wire::LoginRequest h;
    h.transit = last;
    h.cont = !last;
    h.csg = 0;
    h.nsg = last ? 1 : 0;
    h.isid = t.isid;
    h.initiatorTaskTag = 0x77;
    auto r = t.m().rxLoginRequest(h, pieces[i]);
    if (!last) {
      expectOk(r, false, 0, 0);
      EXPECT_TRUE(r.data.empty());
      EXPECT_TRUE(t.authorized.empty());
    } else {
      expectOk(r, true, 0, 1);
      EXPECT_EQ(mapOf(r.data)["AuthMethod"], "None");
    }
  }
}

TEST(IscsiLogin, ContinuationCapAndKeyFloods) {
  {
    Harness t;
    t.config.maxTextBytes = 1024;
    std::vector<std::uint8_t> junk(700, 'A');
    wire::LoginRequest h;
    h.cont = true;
    h.isid = t.isid;
    h.initiatorTaskTag = 0x77;
    auto r = t.m().rxLoginRequest(h, junk);
    expectOk(r, false, 0, 0);
    expectFail(t.m().rxLoginRequest(h, junk), ls::InitiatorError);
  }
  {
    Harness t;
    Pairs keys = ipxeSecurity();
    for (int i = 0; i < 100; ++i) keys.emplace_back("X-flood" + std::to_string(i), std::string(200, 'v'));
    expectFail(t.send(0, true, 1, keys), ls::InitiatorError);
  }
  {  // 60 unknown keys with 63-character names: answered, and the answer still fits in 8192 bytes
    Harness t;
    Pairs keys = ipxeSecurity();
    for (int i = 0; i < 60; ++i) {
      std::string k = "X-" + std::to_string(i);
      k.resize(63, 'k');
      keys.emplace_back(k, "1");
    }
    auto r = t.send(0, true, 1, keys);
    expectOk(r, true, 0, 1);
    EXPECT_LE(r.data.size(), 8192u);
  }
  {  // endless T=0 requests are cut off
    Harness t;
    t.send(1, false, 0, {{"InitiatorName", kInitiator}, {"TargetName", kTarget}});
    LoginReply last;
    int sent = 1;
    while (last.outcome != LoginReply::Outcome::Failed && sent < 1000) {
      last = t.send(1, false, 0, {});
      ++sent;
    }
    expectFail(last, ls::InitiatorError);
    EXPECT_EQ(sent, 65);
  }
}

TEST(IscsiLogin, IdentityErrors) {
  {
    Harness t;
    expectFail(t.send(0, true, 1, {{"TargetName", kTarget}, {"AuthMethod", "None"}}), ls::MissingParameter);
    EXPECT_TRUE(t.authorized.empty());
  }
  {
    Harness t;
    expectFail(t.send(0, true, 1, {{"InitiatorName", kInitiator}, {"AuthMethod", "None"}}), ls::MissingParameter);
  }
  {
    Harness t;
    expectFail(t.send(0, true, 1, {{"InitiatorName", kInitiator}, {"SessionType", "Bogus"}}),
               ls::SessionTypeNotSupported);
  }
  {
    Harness t;
    expectFail(t.send(0, true, 1, {{"InitiatorName", std::string(224, 'i')}, {"TargetName", kTarget}}),
               ls::InitiatorError);
  }
  for (LoginStatus s : {ls::NotFound, ls::AuthorizationFailure, ls::TargetRemoved, ls::ServiceUnavailable}) {
    Harness t;
    t.decision.status = s;
    expectFail(t.send(0, true, 1, ipxeSecurity()), s);
  }
  {  // TargetName in a later request
    Harness t;
    t.send(0, true, 1, {{"InitiatorName", kInitiator}, {"SessionType", "Discovery"}});
    expectFail(t.send(1, true, 3, {{"TargetName", kTarget}}), ls::InitiatorError);
  }
}

TEST(IscsiLogin, HeaderRuleErrors) {
  {
    Harness t;
    wire::LoginRequest h;
    h.versionMin = 1;
    h.versionMax = 2;
    expectFail(t.m().rxLoginRequest(h, {}), ls::UnsupportedVersion);
  }
  {
    Harness t;
    expectFail(t.send(0, true, 1, ipxeSecurity(), /*cont=*/true), ls::InitiatorError);  // T and C
  }
  {
    Harness t;
    expectFail(t.send(1, true, 1, ipxeSecurity()), ls::InitiatorError);  // NSG not past CSG
  }
  {
    Harness t;
    expectFail(t.send(0, true, 2, ipxeSecurity()), ls::InitiatorError);  // reserved NSG
  }
  {
    Harness t;
    expectFail(t.send(3, true, 3, ipxeSecurity()), ls::InitiatorError);  // CSG full feature
  }
  {  // CSG must follow our stage
    Harness t;
    t.send(0, true, 1, ipxeSecurity());
    expectFail(t.send(0, true, 1, {}), ls::InitiatorError);
  }
  {  // ISID changes mid-login
    Harness t;
    t.send(0, true, 1, ipxeSecurity());
    t.isid[5] = 9;
    expectFail(t.send(1, true, 3, ipxeOperational()), ls::InitiatorError);
  }
  {  // key re-declared in a later request (§6.2)
    Harness t;
    t.send(0, true, 1, ipxeSecurity());
    auto op = ipxeOperational();
    op.emplace_back("AuthMethod", "None");
    expectFail(t.send(1, true, 3, op), ls::InitiatorError);
  }
  {  // the same key twice in one request
    Harness t;
    expectFail(t.send(0, true, 1, {{"InitiatorName", kInitiator}, {"InitiatorName", kInitiator}}), ls::InitiatorError);
  }
  {  // security keys outside the security stage
    Harness t;
    t.send(0, true, 1, ipxeSecurity());
    expectFail(t.send(1, true, 3, {{"CHAP_A", "5"}}), ls::InitiatorError);
  }
  {  // malformed text
    Harness t;
    wire::LoginRequest h;
    h.transit = true;
    h.nsg = 1;
    std::vector<std::uint8_t> d = {'I', 'n', 'i', 't'};
    expectFail(t.m().rxLoginRequest(h, d), ls::InitiatorError);
  }
}

TEST(IscsiLogin, AdmissionDecides) {
  {
    Harness t;
    t.tsih = 0x55;  // adding a connection to a session
    t.admission = {ls::TooManyConnections, 0};
    t.send(0, true, 1, ipxeSecurity());
    expectFail(t.send(1, true, 3, ipxeOperational()), ls::TooManyConnections);
    EXPECT_EQ(t.admitted.at(0).tsih, 0x55);
  }
  {
    Harness t;
    t.admission = {ls::Success, 0};  // a hook that forgot the TSIH
    t.send(0, true, 1, ipxeSecurity());
    expectFail(t.send(1, true, 3, ipxeOperational()), ls::TargetError);
  }
  {
    Harness t;
    t.send(0, true, 1, ipxeSecurity());
    auto r = t.send(1, true, 3, ipxeOperational());
    ASSERT_EQ(r.outcome, LoginReply::Outcome::Complete);
    expectFail(t.send(1, true, 3, {}), ls::InvalidDuringLogin);  // after completion
  }
}

TEST(IscsiLogin, MissingHooksFailClosed) {
  LoginConfig cfg;
  LoginMachine m(cfg, {});
  wire::LoginRequest h;
  h.transit = true;
  h.nsg = 1;
  auto data = textOf(ipxeSecurity());
  auto r = m.rxLoginRequest(h, data);
  EXPECT_EQ(r.outcome, LoginReply::Outcome::Failed);
  EXPECT_EQ(r.header.statusClass, 3);
}

TEST(IscsiLogin, ResponseHeaderSerializes) {
  Harness t;
  auto r = t.send(0, true, 1, ipxeSecurity());
  r.header.statSn = 1;
  auto b = wire::serialize(r.header);
  EXPECT_EQ(b[0], 0x23);
  EXPECT_EQ(b[1], 0x81);  // T=1 CSG=0 NSG=1
  EXPECT_EQ(b[7], r.data.size());
}
