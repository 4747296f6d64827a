// The negotiation table against the key sets of real initiators, and every answer kind.
#include "iscsi/login/negotiation.hpp"

#include <gtest/gtest.h>

#include "login_test_util.hpp"

using namespace pxedust::iscsi;
using namespace pxedust::iscsi::testing;

namespace {

struct Run {
  Pairs answers;
  SessionParams params;
};

Run negotiate(const Pairs& offer, SessionType type = SessionType::Normal, TargetLimits limits = {}) {
  Negotiator n(limits, type);
  auto bytes = textOf(offer);
  auto parsed = pxedust::iscsi::wire::parseText(bytes);
  EXPECT_TRUE(parsed.ok());
  pxedust::iscsi::wire::TextWriter out;
  for (const auto& kv : parsed.pairs) n.offer(kv, out);
  n.finish();
  return {pairsOf(out.bytes()), n.params()};
}

}  // namespace

TEST(IscsiNegotiation, Ipxe) {
  auto r = negotiate(ipxeOperational());
  Pairs want = {{"HeaderDigest", "None"},        {"DataDigest", "None"},        {"MaxConnections", "1"},
                {"InitialR2T", "Yes"},           {"ImmediateData", "No"},       {"MaxBurstLength", "262144"},
                {"FirstBurstLength", "65536"},   {"DefaultTime2Wait", "2"},     {"DefaultTime2Retain", "0"},
                {"MaxOutstandingR2T", "1"},      {"DataPDUInOrder", "Yes"},     {"DataSequenceInOrder", "Yes"},
                {"ErrorRecoveryLevel", "0"}};
  EXPECT_EQ(r.answers, want);
  EXPECT_EQ(r.params.initiatorMaxRecvDataSegmentLength, 8192u);
  EXPECT_TRUE(r.params.initialR2T);
  EXPECT_FALSE(r.params.immediateData);
  EXPECT_EQ(r.params.maxBurstLength, 262144u);
  EXPECT_EQ(r.params.firstBurstLength, 65536u);
  EXPECT_FALSE(r.params.headerDigest);
}

TEST(IscsiNegotiation, Iscsistart) {
  auto r = negotiate(iscsistartOperational());
  auto m = std::map<std::string, std::string>(r.answers.begin(), r.answers.end());
  EXPECT_EQ(m["InitialR2T"], "No");
  EXPECT_EQ(m["ImmediateData"], "Yes");
  EXPECT_EQ(m["MaxBurstLength"], "1048576");  // our limit under its 16776192
  EXPECT_EQ(m["FirstBurstLength"], "262144");
  EXPECT_EQ(m["IFMarker"], "No");
  EXPECT_EQ(m["OFMarker"], "No");
  EXPECT_EQ(m["MaxOutstandingR2T"], "1");  // open-iscsi fails the login on anything else
  EXPECT_EQ(m["MaxConnections"], "1");
  EXPECT_EQ(m.count("MaxRecvDataSegmentLength"), 0u);  // declarative: no answer
  EXPECT_EQ(r.answers.size(), iscsistartOperational().size() - 1);
  EXPECT_EQ(r.params.initiatorMaxRecvDataSegmentLength, 262144u);
  EXPECT_FALSE(r.params.initialR2T);
  EXPECT_TRUE(r.params.immediateData);
  EXPECT_EQ(r.params.maxBurstLength, 1048576u);
}

TEST(IscsiNegotiation, LibiscsiAndDigestLists) {
  auto r = negotiate(libiscsiOperational());
  auto m = std::map<std::string, std::string>(r.answers.begin(), r.answers.end());
  EXPECT_EQ(m["HeaderDigest"], "None");  // the first of the initiator's list we support
  EXPECT_FALSE(r.params.headerDigest);

  r = negotiate({{"HeaderDigest", "CRC32C,None"}, {"DataDigest", "CRC32C"}});
  EXPECT_EQ(r.answers, (Pairs{{"HeaderDigest", "CRC32C"}, {"DataDigest", "CRC32C"}}));
  EXPECT_TRUE(r.params.headerDigest);
  EXPECT_TRUE(r.params.dataDigest);

  TargetLimits noCrc;
  noCrc.headerDigestCrc32c = false;
  noCrc.dataDigestCrc32c = false;
  r = negotiate({{"HeaderDigest", "CRC32C,None"}, {"DataDigest", "CRC32C"}}, SessionType::Normal, noCrc);
  EXPECT_EQ(r.answers, (Pairs{{"HeaderDigest", "None"}, {"DataDigest", "Reject"}}));
  EXPECT_FALSE(r.params.dataDigest);

  r = negotiate({{"HeaderDigest", "MD5,,SHA1"}, {"DataDigest", ""}});
  EXPECT_EQ(r.answers, (Pairs{{"HeaderDigest", "Reject"}, {"DataDigest", "Reject"}}));
}

TEST(IscsiNegotiation, DiscoveryAnswersIrrelevant) {
  auto r = negotiate({{"MaxRecvDataSegmentLength", "32768"}, {"InitialR2T", "No"}, {"ImmediateData", "Yes"},
                      {"MaxBurstLength", "262144"}, {"FirstBurstLength", "65536"}, {"MaxOutstandingR2T", "1"},
                      {"DataPDUInOrder", "Yes"}, {"DataSequenceInOrder", "Yes"}, {"MaxConnections", "1"},
                      {"HeaderDigest", "None"}, {"ErrorRecoveryLevel", "0"}, {"DefaultTime2Wait", "2"}},
                     SessionType::Discovery);
  Pairs want = {{"InitialR2T", "Irrelevant"},       {"ImmediateData", "Irrelevant"},
                {"MaxBurstLength", "Irrelevant"},   {"FirstBurstLength", "Irrelevant"},
                {"MaxOutstandingR2T", "Irrelevant"}, {"DataPDUInOrder", "Irrelevant"},
                {"DataSequenceInOrder", "Irrelevant"}, {"MaxConnections", "Irrelevant"},
                {"HeaderDigest", "None"},           {"ErrorRecoveryLevel", "0"},
                {"DefaultTime2Wait", "2"}};
  EXPECT_EQ(r.answers, want);
  EXPECT_EQ(r.params.initiatorMaxRecvDataSegmentLength, 32768u);
}

TEST(IscsiNegotiation, RulesAndRanges) {
  auto r = negotiate({{"ErrorRecoveryLevel", "2"},        // min with our 0
                      {"MaxConnections", "4"},            // min with our 1
                      {"DefaultTime2Wait", "10"},         // max with our 2
                      {"DefaultTime2Retain", "3600"},     // min with our 20
                      {"MaxOutstandingR2T", "0x40"},      // hex numbers are numbers (§6.1)
                      {"iSCSIProtocolLevel", "2"},        // min with our 1 (RFC 7143 level)
                      {"DataPDUInOrder", "No"},           // OR with our Yes
                      {"ImmediateData", "Yes"}});         // AND with our Yes
  Pairs want = {{"ErrorRecoveryLevel", "0"}, {"MaxConnections", "1"},  {"DefaultTime2Wait", "10"},
                {"DefaultTime2Retain", "20"}, {"MaxOutstandingR2T", "16"}, {"iSCSIProtocolLevel", "1"},
                {"DataPDUInOrder", "Yes"},   {"ImmediateData", "Yes"}};
  EXPECT_EQ(r.answers, want);
  EXPECT_EQ(r.params.defaultTime2Wait, 10u);
  EXPECT_EQ(r.params.maxOutstandingR2T, 16u);
}

TEST(IscsiNegotiation, InvalidValuesAreRejectedAndKeepDefaults) {
  auto r = negotiate({{"MaxBurstLength", "511"},           {"FirstBurstLength", "16777216"},
                      {"MaxOutstandingR2T", "0"},          {"ErrorRecoveryLevel", "3"},
                      {"DefaultTime2Wait", "3601"},        {"MaxConnections", "-1"},
                      {"InitialR2T", "yes"},               {"ImmediateData", ""},
                      {"DataSequenceInOrder", "Maybe"},    {"DefaultTime2Retain", "12abc"},
                      {"iSCSIProtocolLevel", "99999999999999999999"}});
  for (const auto& [k, v] : r.answers) EXPECT_EQ(v, "Reject") << k;
  EXPECT_EQ(r.answers.size(), 11u);
  SessionParams defaults;
  EXPECT_EQ(r.params.maxBurstLength, defaults.maxBurstLength);
  EXPECT_EQ(r.params.firstBurstLength, defaults.firstBurstLength);
  EXPECT_EQ(r.params.initialR2T, defaults.initialR2T);
}

TEST(IscsiNegotiation, MaxRecvDataSegmentLengthRange) {
  EXPECT_EQ(negotiate({{"MaxRecvDataSegmentLength", "512"}}).params.initiatorMaxRecvDataSegmentLength, 512u);
  EXPECT_EQ(negotiate({{"MaxRecvDataSegmentLength", "16777215"}}).params.initiatorMaxRecvDataSegmentLength,
            16777215u);
  for (const char* bad : {"511", "16777216", "0", "x", ""}) {
    auto r = negotiate({{"MaxRecvDataSegmentLength", bad}});
    EXPECT_EQ(r.answers, (Pairs{{"MaxRecvDataSegmentLength", "Reject"}})) << bad;
    EXPECT_EQ(r.params.initiatorMaxRecvDataSegmentLength, 8192u);
  }
}

TEST(IscsiNegotiation, FirstBurstNeverExceedsMaxBurst) {
  auto r = negotiate({{"MaxBurstLength", "4096"}, {"FirstBurstLength", "65536"}});
  EXPECT_EQ(r.answers, (Pairs{{"MaxBurstLength", "4096"}, {"FirstBurstLength", "4096"}}));
  // Offered the other way round, the answer was already given; the result is still clamped.
  r = negotiate({{"FirstBurstLength", "65536"}, {"MaxBurstLength", "4096"}});
  EXPECT_EQ(r.params.firstBurstLength, 4096u);
}

TEST(IscsiNegotiation, UnknownVendorObsoleteAndTargetOnlyKeys) {
  auto r = negotiate({{"X-com.cisco.PingTimeout", "5"}, {"X#org.example.foo", "bar"}, {"TaskReporting", "RFC3720"},
                      {"RDMAExtensions", "Yes"}, {"IFMarker", "Yes"}, {"OFMarker", "Yes"}, {"IFMarkInt", "2048~8192"},
                      {"OFMarkInt", "2048"}, {"TargetAlias", "x"}, {"TargetPortalGroupTag", "1"},
                      {"TargetAddress", "1.2.3.4"}, {"SendTargets", "All"}});
  Pairs want = {{"X-com.cisco.PingTimeout", "NotUnderstood"}, {"X#org.example.foo", "NotUnderstood"},
                {"TaskReporting", "NotUnderstood"},          {"RDMAExtensions", "NotUnderstood"},
                {"IFMarker", "No"},                          {"OFMarker", "No"},
                {"IFMarkInt", "Reject"},                     {"OFMarkInt", "Reject"},
                {"TargetAlias", "Reject"},                   {"TargetPortalGroupTag", "Reject"},
                {"TargetAddress", "Reject"},                 {"SendTargets", "Irrelevant"}};
  EXPECT_EQ(r.answers, want);
}

TEST(IscsiNegotiation, IdentityAndSecurityKeysGoToTheLoginMachine) {
  Negotiator n({}, SessionType::Normal);
  pxedust::iscsi::wire::TextWriter out;
  EXPECT_EQ(n.offer({"InitiatorName", "iqn.x"}, out), KeyOutcome::Identity);
  EXPECT_EQ(n.offer({"AuthMethod", "None"}, out), KeyOutcome::Security);
  EXPECT_EQ(n.offer({"CHAP_R", "0x00"}, out), KeyOutcome::Security);
  EXPECT_EQ(n.offer({"MaxRecvDataSegmentLength", "8192"}, out), KeyOutcome::Settled);
  EXPECT_TRUE(out.empty());
  n.declare(out);
  n.declare(out);  // once only
  EXPECT_EQ(pairsOf(out.bytes()), (Pairs{{"MaxRecvDataSegmentLength", "262144"}}));
  EXPECT_EQ(n.params().targetMaxRecvDataSegmentLength, 262144u);
}

TEST(IscsiNegotiation, ParseNumber) {
  EXPECT_EQ(parseNumber("0"), 0u);
  EXPECT_EQ(parseNumber("4294967295"), 4294967295u);
  EXPECT_EQ(parseNumber("0x10"), 16u);
  EXPECT_EQ(parseNumber("0XFF"), 255u);
  for (const char* bad : {"", "4294967296", "-1", "+1", " 1", "1 ", "0x", "0xg", "1e3", "99999999999999999"}) {
    EXPECT_FALSE(parseNumber(bad).has_value()) << bad;
  }
}
