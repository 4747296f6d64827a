// BHS known answers built by hand from the RFC 7143 §11 layouts, round trips for every opcode, and
// header errors.
#include "iscsi/wire/pdu.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace pxedust::iscsi::wire;

namespace {

Bhs bhsFrom(std::initializer_list<std::pair<std::size_t, std::uint8_t>> bytes) {
  Bhs b{};
  for (auto [i, v] : bytes) b[i] = v;
  return b;
}

template <typename T>
T parseAs(const Bhs& b) {
  auto r = parseInitiatorHeader(b);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  EXPECT_TRUE(std::holds_alternative<T>(*r));
  return std::get<T>(*r);
}

template <typename T>
T parseTargetAs(const Bhs& b) {
  auto r = parseTargetHeader(b);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(std::holds_alternative<T>(*r));
  return std::get<T>(*r);
}

}  // namespace

// iPXE's first Login Request: I|0x03, T=1 CSG=0 NSG=1, ISID type 01 (IANA enterprise number, Fen
// Systems 10019 = 0x2723), TSIH 0, DataSegmentLength 0x9b.
TEST(IscsiPdu, ParsesLoginRequestKnownBytes) {
  Bhs b = bhsFrom({{0, 0x43}, {1, 0x81}, {5, 0x00}, {6, 0x00}, {7, 0x9b},
                   {8, 0x40}, {9, 0x00}, {10, 0x27}, {11, 0x23}, {12, 0x12}, {13, 0x34},
                   {16, 0xaa}, {17, 0xbb}, {18, 0xcc}, {19, 0xdd}, {20, 0x00}, {21, 0x00},
                   {24, 0x00}, {25, 0x00}, {26, 0x00}, {27, 0x01}, {28, 0x00}, {29, 0x00}, {30, 0x00}, {31, 0x01}});
  auto h = parseAs<LoginRequest>(b);
  EXPECT_TRUE(h.immediate);
  EXPECT_TRUE(h.transit);
  EXPECT_FALSE(h.cont);
  EXPECT_EQ(h.csg, 0);
  EXPECT_EQ(h.nsg, 1);
  EXPECT_EQ(h.dataSegmentLength, 0x9bu);
  EXPECT_EQ(h.isid, (Isid{0x40, 0x00, 0x27, 0x23, 0x12, 0x34}));
  EXPECT_EQ(h.tsih, 0);
  EXPECT_EQ(h.initiatorTaskTag, 0xaabbccddu);
  EXPECT_EQ(h.cmdSn, 1u);
  EXPECT_EQ(h.expStatSn, 1u);
  EXPECT_EQ(serialize(h), b);
}

// Linux iscsistart goes straight to the operational stage: flags 0x87 (T=1 CSG=1 NSG=3), ISID 00023d000001.
TEST(IscsiPdu, ParsesOperationalLoginRequest) {
  Bhs b = bhsFrom({{0, 0x43}, {1, 0x87}, {6, 0x01}, {7, 0x20}, {8, 0x00}, {9, 0x02}, {10, 0x3d}, {13, 0x01}});
  auto h = parseAs<LoginRequest>(b);
  EXPECT_EQ(h.csg, 1);
  EXPECT_EQ(h.nsg, 3);
  EXPECT_EQ(h.dataSegmentLength, 0x120u);
  EXPECT_EQ(h.isid, (Isid{0x00, 0x02, 0x3d, 0x00, 0x00, 0x01}));
}

// Login Response serialization, byte by byte (§11.13).
TEST(IscsiPdu, SerializesLoginResponseKnownBytes) {
  LoginResponse r;
  r.transit = true;
  r.csg = 1;
  r.nsg = 3;
  r.dataSegmentLength = 0x1234;
  r.isid = {0x00, 0x02, 0x3d, 0x00, 0x00, 0x01};
  r.tsih = 0x0101;
  r.initiatorTaskTag = 0x01020304;
  r.statSn = 0x11;
  r.expCmdSn = 0x22;
  r.maxCmdSn = 0x33;
  r.statusClass = 2;
  r.statusDetail = 1;
  Bhs want = bhsFrom({{0, 0x23}, {1, 0x87}, {6, 0x12}, {7, 0x34}, {9, 0x02}, {10, 0x3d}, {13, 0x01},
                      {14, 0x01}, {15, 0x01}, {16, 1}, {17, 2}, {18, 3}, {19, 4}, {27, 0x11}, {31, 0x22},
                      {35, 0x33}, {36, 2}, {37, 1}});
  EXPECT_EQ(serialize(r), want);
}

// SCSI Command READ(10) as in RFC 3720 B.4: F=1 R=1, attr simple; ITT 0x14, EDTL 0x400, CmdSN 0x14.
TEST(IscsiPdu, ParsesScsiCommandKnownBytes) {
  Bhs b = bhsFrom({{0, 0x01}, {1, 0xc0}, {16, 0x14}, {22, 0x04}, {27, 0x14}, {31, 0x18},
                   {32, 0x28}, {40, 0x02}});
  auto h = parseAs<ScsiCommand>(b);
  EXPECT_TRUE(h.final);
  EXPECT_TRUE(h.read);
  EXPECT_FALSE(h.write);
  EXPECT_FALSE(h.immediate);
  EXPECT_EQ(h.initiatorTaskTag, 0x14000000u);
  EXPECT_EQ(h.expectedDataTransferLength, 0x400u);
  EXPECT_EQ(h.cmdSn, 0x14u);
  EXPECT_EQ(h.expStatSn, 0x18u);
  EXPECT_EQ(h.cdb[0], 0x28);
  EXPECT_EQ(h.cdb[8], 0x02);
  EXPECT_EQ(serialize(h), b);
}

TEST(IscsiPdu, SerializesDataInWithStatusKnownBytes) {
  DataIn d;
  d.final = true;
  d.statusPresent = true;
  d.residualUnderflow = true;
  d.status = 0;
  d.dataSegmentLength = 512;
  d.lun = encodeLun(0);
  d.initiatorTaskTag = 7;
  d.statSn = 5;
  d.expCmdSn = 6;
  d.maxCmdSn = 37;
  d.dataSn = 2;
  d.bufferOffset = 1024;
  d.residualCount = 512;
  Bhs want = bhsFrom({{0, 0x25}, {1, 0x83}, {6, 0x02}, {19, 7}, {20, 0xff}, {21, 0xff}, {22, 0xff}, {23, 0xff},
                      {27, 5}, {31, 6}, {35, 37}, {39, 2}, {42, 0x04}, {46, 0x02}});
  EXPECT_EQ(serialize(d), want);
  // Without S, StatSN/status/residual are reserved and written as zero (§11.7.4).
  d.statusPresent = false;
  d.residualUnderflow = false;
  d.status = 2;
  auto b = serialize(d);
  EXPECT_EQ(b[1], 0x80);
  EXPECT_EQ(b[3], 0);
  EXPECT_EQ(b[27], 0);
  EXPECT_EQ(b[46], 0);
}

TEST(IscsiPdu, SerializesR2tAndRejectKnownBytes) {
  R2t r;
  r.lun = encodeLun(0);
  r.initiatorTaskTag = 0x10;
  r.targetTransferTag = 0x20;
  r.statSn = 1;
  r.expCmdSn = 2;
  r.maxCmdSn = 3;
  r.r2tSn = 4;
  r.bufferOffset = 0x10000;
  r.desiredDataTransferLength = 0x40000;
  Bhs want = bhsFrom({{0, 0x31}, {1, 0x80}, {19, 0x10}, {23, 0x20}, {27, 1}, {31, 2}, {35, 3}, {39, 4},
                      {41, 0x01}, {45, 0x04}});
  EXPECT_EQ(serialize(r), want);

  auto rej = makeReject(RejectReason::DataDigestError);
  rej.statSn = 9;
  Bhs wantRej = bhsFrom({{0, 0x3f}, {1, 0x80}, {2, 0x02}, {7, 48}, {16, 0xff}, {17, 0xff}, {18, 0xff},
                         {19, 0xff}, {27, 9}});
  EXPECT_EQ(serialize(rej), wantRej);
}

TEST(IscsiPdu, RoundTripsEveryInitiatorOpcode) {
  NopOut nop;
  nop.immediate = true;
  nop.lun = encodeLun(3);
  nop.initiatorTaskTag = 0xfeedf00d;
  nop.cmdSn = 77;
  nop.expStatSn = 78;
  ScsiCommand cmd;
  cmd.write = true;
  cmd.attr = 1;
  cmd.totalAhsLength = 2;
  cmd.dataSegmentLength = 4096;
  cmd.expectedDataTransferLength = 65536;
  cmd.cdb = {0x2a, 0, 0, 0, 0x10, 0, 0, 0, 0x80, 0};
  TaskMgmtRequest tmf;
  tmf.function = static_cast<std::uint8_t>(TmfFunction::AbortTask);
  tmf.referencedTaskTag = 42;
  tmf.refCmdSn = 5;
  tmf.expDataSn = 6;
  LoginRequest login;
  login.transit = true;
  login.csg = 1;
  login.nsg = 3;
  login.tsih = 9;
  login.cid = 2;
  TextRequest text;
  text.cont = true;
  text.final = false;
  text.targetTransferTag = 12;
  DataOut dout;
  dout.dataSn = 3;
  dout.bufferOffset = 8192;
  dout.targetTransferTag = 99;
  LogoutRequest logout;
  logout.reason = static_cast<std::uint8_t>(LogoutReason::CloseConnection);
  logout.cid = 4;
  SnackRequest snack;
  snack.type = 1;
  snack.begRun = 10;
  snack.runLength = 20;
  for (const InitiatorHeader& h : std::vector<InitiatorHeader>{nop, cmd, tmf, login, text, dout, logout, snack}) {
    Bhs b = serialize(h);
    auto back = parseInitiatorHeader(b);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->index(), h.index());
    EXPECT_EQ(serialize(*back), b) << "opcode " << int(b[0] & 0x3f);
  }
}

TEST(IscsiPdu, RoundTripsEveryTargetOpcode) {
  NopIn nop;
  nop.targetTransferTag = 5;
  nop.statSn = 1;
  ScsiResponse rsp;
  rsp.residualOverflow = true;
  rsp.bidiUnderflow = true;
  rsp.status = 2;
  rsp.residualCount = 100;
  rsp.expDataSn = 3;
  TaskMgmtResponse tmf;
  tmf.response = static_cast<std::uint8_t>(TmfResponseCode::TaskDoesNotExist);
  LoginResponse login;
  login.csg = 0;
  login.nsg = 1;
  login.transit = true;
  login.statusClass = 2;
  TextResponse text;
  text.cont = true;
  text.final = false;
  DataIn din;
  din.acknowledge = true;
  din.final = false;
  din.dataSn = 9;
  LogoutResponse logout;
  logout.time2Wait = 2;
  logout.time2Retain = 20;
  R2t r2t;
  r2t.desiredDataTransferLength = 1;
  AsyncMessage async;
  async.asyncEvent = 1;
  async.parameter3 = 5;
  async.initiatorTaskTag = kReservedTag;
  Reject rej = makeReject(RejectReason::ProtocolError);
  for (const TargetHeader& h :
       std::vector<TargetHeader>{nop, rsp, tmf, login, text, din, logout, r2t, async, rej}) {
    Bhs b = serialize(h);
    auto back = parseTargetHeader(b);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->index(), h.index());
    EXPECT_EQ(serialize(*back), b) << "opcode " << int(b[0] & 0x3f);
    // A target opcode from an initiator is a protocol error, not a crash.
    auto wrong = parseInitiatorHeader(b);
    ASSERT_FALSE(wrong.ok());
    EXPECT_EQ(wrong.error().code, static_cast<int>(RejectReason::ProtocolError));
  }
}

TEST(IscsiPdu, UnknownAndVendorOpcodesAreNotSupported) {
  for (std::uint8_t op : {0x07, 0x0f, 0x1c, 0x1d, 0x1e, 0x3c, 0x2f}) {
    Bhs b{};
    b[0] = op;
    auto r = parseInitiatorHeader(b);
    ASSERT_FALSE(r.ok()) << int(op);
    EXPECT_EQ(r.error().code, static_cast<int>(RejectReason::CommandNotSupported));
  }
  EXPECT_EQ(opcodeName(Opcode::R2t), "R2T");
}

TEST(IscsiPdu, LunEncoding) {
  EXPECT_EQ(encodeLun(0), 0u);
  EXPECT_EQ(encodeLun(5), 0x0005000000000000ull);
  EXPECT_EQ(encodeLun(300), 0x412c000000000000ull);
  for (std::uint16_t l : {0, 1, 255, 256, 16383}) EXPECT_EQ(decodeLun(encodeLun(l)), l);
  EXPECT_EQ(decodeLun(0x0105000000000000ull), UINT32_MAX);  // bus 1
  EXPECT_EQ(decodeLun(0x0000000000000001ull), UINT32_MAX);  // second level
  EXPECT_EQ(decodeLun(0xc000000000000000ull), UINT32_MAX);  // extended addressing
}

TEST(IscsiPdu, AhsAndExtendedCdb) {
  // A 32-byte CDB (VARIABLE LENGTH, 0x7f): 16 bytes in the BHS, 16 in an Extended CDB AHS of
  // AHSLength 17 (reserved byte + 16; 3 + 17 = 20 bytes, no padding), then a bidi read length AHS.
  std::vector<std::uint8_t> area = {0x00, 0x11, 0x01, 0x00};
  for (int i = 0; i < 16; ++i) area.push_back(static_cast<std::uint8_t>(0xa0 + i));
  area.insert(area.end(), {0x00, 0x05, 0x02, 0x00, 0x00, 0x00, 0x10, 0x00});  // bidi read length 4096
  ASSERT_EQ(area.size() % 4, 0u);
  auto segs = parseAhs(area);
  ASSERT_TRUE(segs.ok()) << segs.error().message;
  ASSERT_EQ(segs->size(), 2u);
  EXPECT_EQ((*segs)[0].type, 1);
  EXPECT_EQ((*segs)[0].body.size(), 17u);
  EXPECT_EQ((*segs)[1].type, 2);
  EXPECT_EQ((*segs)[1].body.size(), 5u);

  ScsiCommand cmd;
  cmd.cdb[0] = 0x7f;
  std::array<std::uint8_t, 1040> out{};
  auto n = fullCdb(cmd, area, out);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 32u);
  EXPECT_EQ(out[0], 0x7f);
  EXPECT_EQ(out[16], 0xa0);
  EXPECT_EQ(out[31], 0xaf);

  // Overruns and empty segments are errors.
  EXPECT_FALSE(parseAhs(std::vector<std::uint8_t>{0x00, 0x09, 0x01, 0x00, 0, 0, 0, 0}).ok());
  EXPECT_FALSE(parseAhs(std::vector<std::uint8_t>{0x00, 0x00, 0x01, 0x00}).ok());
  EXPECT_FALSE(parseAhs(std::vector<std::uint8_t>{0x00, 0x01}).ok());
  EXPECT_TRUE(parseAhs({}).ok());
  // Two extended CDBs.
  std::vector<std::uint8_t> two = {0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x01, 0x00};
  EXPECT_FALSE(fullCdb(cmd, two, out).ok());
}
