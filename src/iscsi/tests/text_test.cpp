// Text key=value parsing and writing (RFC 7143 §6.1).
#include "iscsi/wire/text.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace pxedust::iscsi::wire;
using namespace std::string_literals;

namespace {
std::vector<std::uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }
}  // namespace

TEST(IscsiText, ParsesIpxeSecurityStage) {
  auto d = bytes("InitiatorName=iqn.2010-04.org.ipxe:node01\0TargetName=iqn.2026-11.org.example:node01\0"
                             "SessionType=Normal\0AuthMethod=None\0"s);
  auto t = parseText(d);
  ASSERT_TRUE(t.ok()) << textErrorName(t.error);
  ASSERT_EQ(t.pairs.size(), 4u);
  EXPECT_EQ(t.pairs[0].key, "InitiatorName");
  EXPECT_EQ(t.pairs[0].value, "iqn.2010-04.org.ipxe:node01");
  EXPECT_EQ(t.pairs[3].key, "AuthMethod");
  EXPECT_EQ(t.pairs[3].value, "None");
}

TEST(IscsiText, EmptyValuesStrayNulsAndVendorKeys) {
  auto d = bytes("InitiatorAlias=\0\0\0X-com.example.Foo=1\0X#org.example=2\0"s);
  auto t = parseText(d);
  ASSERT_TRUE(t.ok()) << textErrorName(t.error);
  ASSERT_EQ(t.pairs.size(), 3u);
  EXPECT_EQ(t.pairs[0].value, "");
  EXPECT_EQ(t.pairs[2].key, "X#org.example");
  EXPECT_TRUE(parseText({}).ok());
}

TEST(IscsiText, Errors) {
  EXPECT_EQ(parseText(bytes("A=1")).error, TextError::MissingNul);
  EXPECT_EQ(parseText(bytes("A1\0"s)).error, TextError::MissingEquals);
  EXPECT_EQ(parseText(bytes("=1\0"s)).error, TextError::BadKey);
  EXPECT_EQ(parseText(bytes("1abc=1\0"s)).error, TextError::BadKey);
  EXPECT_TRUE(parseText(bytes("iSCSIProtocolLevel=1\0"s)).ok());
  EXPECT_EQ(parseText(bytes("Bad Key=1\0"s)).error, TextError::BadKey);
  std::string key64(64, 'K');
  EXPECT_EQ(parseText(bytes(key64 + "=1" + std::string(1, '\0'))).error, TextError::BadKey);
  std::string key63(63, 'K');
  EXPECT_TRUE(parseText(bytes(key63 + "=1" + std::string(1, '\0'))).ok());
  EXPECT_EQ(parseText(bytes("A=1\0B=2\0A=3\0"s)).error, TextError::DuplicateKey);
  EXPECT_EQ(parseText(bytes("A=1\0B=2\0A=3\0"s)).badKey, "A");
}

TEST(IscsiText, ValueLengths) {
  std::string v255(255, 'v'), v256(256, 'v');
  EXPECT_TRUE(parseText(bytes("TargetAlias=" + v255 + std::string(1, '\0'))).ok());
  EXPECT_EQ(parseText(bytes("TargetAlias=" + v256 + std::string(1, '\0'))).error, TextError::ValueTooLong);
  // CHAP_C/CHAP_R may carry 1024 binary bytes in hex.
  std::string hex1024 = "0x" + std::string(2048, 'a');
  EXPECT_TRUE(parseText(bytes("CHAP_C=" + hex1024 + std::string(1, '\0'))).ok());
  EXPECT_EQ(parseText(bytes("CHAP_C=" + hex1024 + "a" + std::string(1, '\0'))).error, TextError::ValueTooLong);
  // A 64 KiB value is refused, not processed.
  std::string huge(65536, 'x');
  EXPECT_EQ(parseText(bytes("InitiatorName=" + huge + std::string(1, '\0'))).error, TextError::ValueTooLong);
}

TEST(IscsiText, KeyFloodIsCapped) {
  std::string s;
  for (int i = 0; i < 200; ++i) s += "X-k" + std::to_string(i) + "=1" + std::string(1, '\0');
  auto d = bytes(s);
  auto t = parseText(d);
  EXPECT_EQ(t.error, TextError::TooManyPairs);
  EXPECT_TRUE(t.pairs.empty());
  TextLimits lim;
  lim.maxPairs = 256;
  EXPECT_TRUE(parseText(bytes(s), lim).ok());
}

TEST(IscsiText, WriterRoundTrip) {
  TextWriter w;
  w.add("HeaderDigest", "None");
  w.add("TargetAlias", "");
  w.add("MaxRecvDataSegmentLength", "262144");
  auto t = parseText(w.bytes());
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t.pairs.size(), 3u);
  EXPECT_EQ(t.pairs[2].value, "262144");
  EXPECT_EQ(w.bytes().back(), 0);
}

TEST(IscsiText, AccumulatorJoinsPairsSplitAcrossPdus) {
  TextAccumulator acc(64);
  EXPECT_TRUE(acc.append(bytes("InitiatorNa")));
  EXPECT_TRUE(acc.append(bytes("me=iqn.x\0Targ"s)));
  EXPECT_TRUE(acc.append(bytes("etName=t\0"s)));
  auto t = parseText(acc.bytes());
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t.pairs.size(), 2u);
  EXPECT_EQ(t.pairs[1].key, "TargetName");
  EXPECT_FALSE(acc.append(bytes(std::string(64, 'x'))));  // over the cap: refused, nothing kept
  EXPECT_EQ(acc.size(), 33u);
  acc.clear();
  EXPECT_EQ(acc.size(), 0u);
}

TEST(IscsiText, SetReplacesAKeyOrAddsIt) {
  TextWriter w;
  w.add("TargetPortalGroupTag", "Reject");
  w.add("MaxRecvDataSegmentLength", "262144");
  w.set("TargetPortalGroupTag", "1");
  w.set("TargetAlias", "node01");
  w.set("Target", "x");  // a prefix of another key is another key
  const std::string text(w.bytes().begin(), w.bytes().end());
  EXPECT_EQ(text, "TargetPortalGroupTag=1\0MaxRecvDataSegmentLength=262144\0TargetAlias=node01\0Target=x\0"s);
  EXPECT_TRUE(parseText(w.bytes()).ok());
}
