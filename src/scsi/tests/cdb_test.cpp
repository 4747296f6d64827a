// Pure parser tests: CDB validation, planning, sense bytes, parameter lists, mode pages.
#include "scsi/cdb.hpp"

#include <gtest/gtest.h>

#include "scsi/mode_pages.hpp"

namespace pxedust::scsi {
namespace {

using Bytes = std::vector<std::uint8_t>;

Geometry geo(std::uint64_t blocks = 2048) {
  Geometry g;
  g.blocks = blocks;
  return g;
}

SenseData senseOf(const Response& r) {
  auto s = parseFixedSense(r.sense);
  EXPECT_TRUE(s.has_value());
  return s.value_or(SenseData{});
}

TEST(SenseTest, FixedFormatBytesExactly) {
  auto s = invalidFieldInCdb(2, 5).fixed();
  EXPECT_EQ(s, (Bytes{0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0x00, 0, 0xCD, 0x00, 0x02}));
  auto m = miscompare(0x1234).fixed();
  EXPECT_EQ(m, (Bytes{0xF0, 0, 0x0E, 0, 0, 0x12, 0x34, 10, 0, 0, 0, 0, 0x1D, 0x00, 0, 0, 0, 0}));
  auto p = invalidFieldInParameterList(8).fixed();
  EXPECT_EQ(p[15], 0x80);  // SKSV, C/D=0, no bit pointer
  EXPECT_EQ(p[17], 8);
  EXPECT_EQ(parseFixedSense(p)->field, (FieldPointer{false, 8, std::nullopt}));
}

TEST(CdbTest, UnknownOpcodeIsInvalidCommandOperationCode) {
  auto r = parseCdb(Bytes{0xC0, 0, 0, 0, 0, 0}, geo());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.sense, invalidOpcode());
  EXPECT_FALSE(parseCdb(Bytes{}, geo()));
  // Truncated: a READ(10) opcode in 6 bytes.
  EXPECT_EQ(parseCdb(Bytes{0x28, 0, 0, 0, 0, 0}, geo()).sense, invalidOpcode());
  // An unsupported service action of a known opcode is INVALID FIELD IN CDB.
  Bytes sa(16, 0);
  sa[0] = 0x9E;
  sa[1] = 0x05;
  EXPECT_EQ(parseCdb(sa, geo()).sense, invalidFieldInCdb(1, 4));
}

TEST(CdbTest, Read10KnownAnswers) {
  Bytes c{0x28, 0x18, 0, 0, 0x01, 0x00, 0, 0x00, 0x08, 0};
  auto r = parseCdb(c, geo());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->lba, 256u);
  EXPECT_EQ(r->blocks, 8u);
  EXPECT_TRUE(r->fua);
  EXPECT_TRUE(r->dpo);
  EXPECT_EQ(r->direction, Direction::In);
  EXPECT_EQ(r->transferBytes, 4096u);
  // RDPROTECT != 0 without protection information.
  c[1] = 0x20;
  EXPECT_EQ(parseCdb(c, geo()).sense, invalidFieldInCdb(1, 5));
  // NACA in the control byte.
  c[1] = 0;
  c[9] = 0x04;
  EXPECT_EQ(parseCdb(c, geo()).sense, invalidFieldInCdb(9, 2));
}

TEST(CdbTest, RangesNeverOverflow) {
  const Geometry g = geo(1000);
  Bytes r16(16, 0);
  r16[0] = 0x88;
  // LBA = n with 0 blocks is fine; n + 1 is out of range; LBA 2^64-1 with 1 block must not wrap.
  putBe64(r16.data() + 2, 1000);
  EXPECT_TRUE(parseCdb(r16, g));
  putBe64(r16.data() + 2, 1001);
  EXPECT_EQ(parseCdb(r16, g).sense, lbaOutOfRange());
  putBe64(r16.data() + 2, UINT64_MAX);
  putBe32(r16.data() + 10, 2);
  EXPECT_EQ(parseCdb(r16, g).sense, lbaOutOfRange());
  putBe64(r16.data() + 2, 999);
  putBe32(r16.data() + 10, 1);
  EXPECT_TRUE(parseCdb(r16, g));
  putBe32(r16.data() + 10, 2);
  EXPECT_EQ(parseCdb(r16, g).sense, lbaOutOfRange());
}

TEST(CdbTest, TransferCapIsInvalidFieldOnTheLength) {
  Geometry g = geo(1u << 20);
  Bytes w16(16, 0);
  w16[0] = 0x8A;
  putBe32(w16.data() + 10, g.maxTransferBlocks);
  EXPECT_TRUE(parseCdb(w16, g));
  putBe32(w16.data() + 10, g.maxTransferBlocks + 1);
  EXPECT_EQ(parseCdb(w16, g).sense, invalidFieldInCdb(10));
}

TEST(CdbTest, Read6ZeroMeans256) {
  auto r = parseCdb(Bytes{0x08, 0, 0, 0, 0, 0}, geo());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->blocks, 256u);
  EXPECT_EQ(r->transferBytes, 256u * 512);
}

TEST(CdbTest, PlanCutsAWriteToTheExpectedWholeBlocks) {
  // WRITE(10) of 2 blocks with 1 block expected: one block is solicited (RFC 7143 11.4.5.1 overflow).
  Bytes w10{0x2A, 0, 0, 0, 0, 0, 0, 0, 2, 0};
  auto p = planCommand(w10, geo(), 512);
  EXPECT_FALSE(p.immediate);
  EXPECT_EQ(p.dataOutBytes, 512u);
  EXPECT_EQ(p.transferBytes, 1024u);
  // Expected length 0: nothing solicited, still executed (it completes with the overflow).
  p = planCommand(w10, geo(), 0);
  EXPECT_FALSE(p.immediate);
  EXPECT_EQ(p.dataOutBytes, 0u);
  // An expected length inside a block cannot be written as asked: 0E/03 with the overflow.
  p = planCommand(w10, geo(), 200);
  ASSERT_TRUE(p.immediate);
  EXPECT_EQ(senseOf(*p.immediate).code, asc::kInvalidFieldInInformationUnit);
  EXPECT_EQ(p.immediate->residual, Residual::Overflow);
  EXPECT_EQ(p.immediate->residualCount, 824u);
  auto ok = planCommand(w10, geo(), 4096);
  EXPECT_FALSE(ok.immediate);
  EXPECT_EQ(ok.direction, Direction::Out);
  EXPECT_EQ(ok.dataOutBytes, 1024u);
  auto bad = planCommand(Bytes{0xFF}, geo(), 0);
  ASSERT_TRUE(bad.immediate);
  EXPECT_EQ(senseOf(*bad.immediate).code, asc::kInvalidCommandOperationCode);
}

TEST(CdbTest, FitTransferPerCommandKind) {
  auto fit = [](const Bytes& c, std::uint32_t expected) {
    auto cdb = parseCdb(c, geo());
    EXPECT_TRUE(cdb);
    return fitTransfer(*cdb, geo(), expected);
  };
  // WRITE AND VERIFY(16) and ORWRITE are cut like WRITE.
  Bytes wv16(16, 0);
  wv16[0] = 0x8E;
  wv16[1] = 0x02;
  wv16[13] = 4;
  auto t = fit(wv16, 1024);
  EXPECT_FALSE(t.refused);
  EXPECT_EQ(t.blocks, 2u);
  EXPECT_EQ(t.dataOutBytes, 1024u);
  Bytes orw(16, 0);
  orw[0] = 0x8B;
  orw[13] = 4;
  EXPECT_EQ(fit(orw, 512).blocks, 1u);
  // VERIFY with BYTCHK=1 needs all its compare data.
  Bytes v10{0x2F, 0x02, 0, 0, 0, 0, 0, 0, 2, 0};
  EXPECT_EQ(fit(v10, 512).refused, illegalRequest(asc::kInvalidFieldInInformationUnit));
  // A parameter list longer than the expected length.
  Bytes unmap{0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0};
  EXPECT_EQ(fit(unmap, 8).refused, illegalRequest(asc::kInvalidFieldInInformationUnit));
  EXPECT_EQ(fit(unmap, 24).dataOutBytes, 24u);
  // WRITE SAME: exactly one block.
  Bytes ws10{0x41, 0, 0, 0, 0, 0, 0, 0, 4, 0};
  EXPECT_EQ(fit(ws10, 512).dataOutBytes, 512u);
  EXPECT_EQ(fit(ws10, 1024).refused, illegalRequest(asc::kInvalidFieldInInformationUnit));
  // A read is not cut (its Data-In is truncated by applyResidual instead).
  Bytes r10{0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0};
  t = fit(r10, 512);
  EXPECT_FALSE(t.refused);
  EXPECT_EQ(t.blocks, 2u);
  EXPECT_EQ(t.dataOutBytes, 0u);
}

TEST(CdbTest, CompareAndWriteExpectsExactlyTwiceItsBlocks) {
  Bytes caw(16, 0);
  caw[0] = 0x89;
  caw[13] = 2;
  auto p = planCommand(caw, geo(), 2048);
  EXPECT_FALSE(p.immediate);
  EXPECT_EQ(p.dataOutBytes, 2048u);
  // Half the data (or more than asked): the NUMBER OF LOGICAL BLOCKS field is refused.
  p = planCommand(caw, geo(), 1024);
  ASSERT_TRUE(p.immediate);
  EXPECT_EQ(senseOf(*p.immediate), invalidFieldInCdb(13));
  EXPECT_EQ(p.immediate->residual, Residual::Overflow);
  EXPECT_EQ(p.immediate->residualCount, 1024u);
  p = planCommand(caw, geo(), 4096);
  ASSERT_TRUE(p.immediate);
  EXPECT_EQ(senseOf(*p.immediate), invalidFieldInCdb(13));
  // 0 blocks: a no-op (SBC-4 5.3) when nothing is announced; data announced for it contradicts the
  // CDB (an initiator that put 256 in the one-byte field gets 0).
  caw[13] = 0;
  p = planCommand(caw, geo(), 0);
  EXPECT_FALSE(p.immediate);
  EXPECT_EQ(p.direction, Direction::None);
  p = planCommand(caw, geo(), 2 * 256 * 512);
  ASSERT_TRUE(p.immediate);
  EXPECT_EQ(senseOf(*p.immediate), invalidFieldInCdb(13));
  EXPECT_EQ(p.immediate->residual, Residual::Underflow);
  EXPECT_EQ(p.dataOutBytes, 0u);
}

TEST(CdbTest, WriteSameAndCompareAndWriteLengths) {
  // NUMBER OF LOGICAL BLOCKS 0 (WSNZ=0): from the LBA to the last LBA, within the cap.
  Bytes ws10{0x41, 0x08, 0, 0, 0, 0, 0, 0, 0, 0};
  putBe32(ws10.data() + 2, 2000);
  auto r = parseCdb(ws10, geo());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->lba, 2000u);
  EXPECT_EQ(r->blocks, 48u);
  putBe32(ws10.data() + 2, 2048);
  EXPECT_EQ(parseCdb(ws10, geo()).sense, lbaOutOfRange());
  putBe32(ws10.data() + 2, 0);
  Geometry capped = geo();
  capped.maxWriteSameBlocks = 1024;
  EXPECT_EQ(parseCdb(ws10, capped).sense, invalidFieldInCdb(7));
  ws10[8] = 4;
  r = parseCdb(ws10, geo());
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->unmap);
  EXPECT_EQ(r->transferBytes, 512u);
  ws10[1] = 0x10;  // ANCHOR: not supported
  EXPECT_EQ(parseCdb(ws10, geo()).sense, invalidFieldInCdb(1, 4));
  Bytes ws16(16, 0);
  ws16[0] = 0x93;
  ws16[1] = 0x09;  // UNMAP + NDOB
  ws16[13] = 8;
  r = parseCdb(ws16, geo());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->direction, Direction::None);
  Bytes caw(16, 0);
  caw[0] = 0x89;
  caw[13] = 3;
  r = parseCdb(caw, geo());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->transferBytes, 3u * 1024);
}

TEST(CdbTest, EveryTableEntryParsesAndMasksItsOwnBits) {
  for (const auto& info : commandTable()) {
    Bytes c(info.length, 0);
    c[0] = info.opcode;
    if (info.serviceAction >= 0) c[1] = static_cast<std::uint8_t>(info.serviceAction);
    auto r = parseCdb(c, geo());
    EXPECT_TRUE(r) << info.name;
    if (r) {
      EXPECT_EQ(r->info, &info);
    }
  }
}

TEST(CdbTest, ReportSupportedOpcodes) {
  Bytes c(12, 0);
  c[0] = 0xA3;
  c[1] = 0x0C;
  putBe32(c.data() + 6, 65535);
  auto all = reportSupportedOpcodes(*parseCdb(c, geo()));
  ASSERT_TRUE(all);
  EXPECT_EQ(getBe32(all->data()), commandTable().size() * 8);
  c[2] = 0x80;  // RCTD: each descriptor gets a 12-byte timeouts descriptor
  all = reportSupportedOpcodes(*parseCdb(c, geo()));
  EXPECT_EQ(getBe32(all->data()), commandTable().size() * 20);
  // One command: READ(10) usage data, with DPO/FUA.
  c[2] = 0x01;
  c[3] = 0x28;
  auto one = reportSupportedOpcodes(*parseCdb(c, geo()));
  ASSERT_TRUE(one);
  EXPECT_EQ((*one)[1] & 0x07, 3);
  EXPECT_EQ(getBe16(one->data() + 2), 10);
  EXPECT_EQ((*one)[4], 0x28);
  EXPECT_EQ((*one)[5] & 0x18, 0x18);
  // Option 1 on an opcode with service actions, option 2 on one without.
  c[3] = 0x9E;
  EXPECT_EQ(reportSupportedOpcodes(*parseCdb(c, geo())).sense, invalidFieldInCdb(3));
  c[2] = 0x02;
  c[3] = 0x28;
  EXPECT_EQ(reportSupportedOpcodes(*parseCdb(c, geo())).sense, invalidFieldInCdb(3));
  c[3] = 0x9E;
  putBe16(c.data() + 4, 0x10);
  one = reportSupportedOpcodes(*parseCdb(c, geo()));
  ASSERT_TRUE(one);
  EXPECT_EQ((*one)[5], 0x10);  // the service action in the usage data
  c[3] = 0xC7;  // unsupported: SUPPORT=001b
  c[2] = 0x01;
  one = reportSupportedOpcodes(*parseCdb(c, geo()));
  ASSERT_TRUE(one);
  EXPECT_EQ((*one)[1] & 0x07, 1);
}

Bytes unmapList(std::initializer_list<UnmapDescriptor> ds) {
  Bytes b(8, 0);
  for (const auto& d : ds) {
    std::uint8_t e[16] = {};
    putBe64(e, d.lba);
    putBe32(e + 8, d.blocks);
    b.insert(b.end(), e, e + 16);
  }
  putBe16(b.data(), static_cast<std::uint16_t>(b.size() - 2));
  putBe16(b.data() + 2, static_cast<std::uint16_t>(b.size() - 8));
  return b;
}

TEST(UnmapTest, ParameterListValidation) {
  auto g = geo(1000);
  auto ok = parseUnmapParameters(unmapList({{0, 8}, {100, 0}, {992, 8}}), g);
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, (std::vector<UnmapDescriptor>{{0, 8}, {992, 8}}));
  EXPECT_TRUE(parseUnmapParameters({}, g));
  EXPECT_EQ(parseUnmapParameters(Bytes{0, 6, 0}, g).sense, parameterListLengthError());
  EXPECT_EQ(parseUnmapParameters(unmapList({{993, 8}}), g).sense, lbaOutOfRange());
  EXPECT_EQ(parseUnmapParameters(unmapList({{UINT64_MAX, 2}}), g).sense, lbaOutOfRange());
  auto lie = unmapList({{0, 8}});
  putBe16(lie.data() + 2, 32);  // claims two descriptors, sends one
  EXPECT_EQ(parseUnmapParameters(lie, g).sense, parameterListLengthError());
  g.maxUnmapDescriptors = 1;
  EXPECT_EQ(parseUnmapParameters(unmapList({{0, 1}, {1, 1}}), g).sense, invalidFieldInParameterList(2));
  g.maxUnmapDescriptors = 256;
  g.maxUnmapBlocks = 10;
  EXPECT_EQ(parseUnmapParameters(unmapList({{0, 8}, {8, 8}}), g).sense, invalidFieldInParameterList(32));
}

TEST(PrOutTest, ParameterList) {
  Bytes p(24, 0);
  putBe64(p.data(), 0x1122334455667788ULL);
  putBe64(p.data() + 8, 7);
  auto r = parsePrOutParameters(p);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->key, 0x1122334455667788ULL);
  EXPECT_EQ(r->serviceActionKey, 7u);
  EXPECT_EQ(parsePrOutParameters(Bytes(23, 0)).sense, parameterListLengthError());
  p[20] = 0x01;  // APTPL: PTPL_C=0
  EXPECT_EQ(parsePrOutParameters(p).sense, invalidFieldInParameterList(20, 0));
  p[20] = 0x08;  // SPEC_I_PT
  EXPECT_EQ(parsePrOutParameters(p).sense, invalidFieldInParameterList(20, 3));
}

TEST(ModePagesTest, SenseAndSelect) {
  ModeLimits l{false, true, 512, 2048};
  ModeState cur, def;
  Bytes ms6{0x1A, 0x00, 0x3F, 0x00, 0xFF, 0x00};
  auto c = parseCdb(ms6, geo());
  ASSERT_TRUE(c);
  auto d = buildModeSense(*c, cur, def, l);
  ASSERT_TRUE(d);
  // header 4 + block descriptor 8 + caching 20 + control 12
  ASSERT_EQ(d->size(), 44u);
  EXPECT_EQ((*d)[0], 43);
  EXPECT_EQ((*d)[2], 0x10);  // DPOFUA, not WP
  EXPECT_EQ((*d)[3], 8);
  EXPECT_EQ(getBe32(d->data() + 4), 2048u);
  EXPECT_EQ((*d)[12], 0x08);
  EXPECT_EQ((*d)[14], 0x04);  // WCE
  EXPECT_EQ((*d)[32], 0x0A);
  // Saved values: not supported.
  ms6[2] = 0xC8;
  EXPECT_EQ(buildModeSense(*parseCdb(ms6, geo()), cur, def, l).sense, illegalRequest(asc::kSavingParametersNotSupported));
  // Unknown page.
  ms6[2] = 0x19;
  EXPECT_EQ(buildModeSense(*parseCdb(ms6, geo()), cur, def, l).sense, invalidFieldInCdb(2, 5));
  // Read-only: WP.
  ms6[2] = 0x08;
  l.readOnly = true;
  EXPECT_EQ((*buildModeSense(*parseCdb(ms6, geo()), cur, def, l))[2], 0x90);
  l.readOnly = false;

  // MODE SELECT(6) turning WCE off: header + caching page as MODE SENSE returned it.
  Bytes sel(4, 0);
  Bytes page(d->begin() + 12, d->begin() + 32);
  page[2] = 0x00;
  sel.insert(sel.end(), page.begin(), page.end());
  Bytes cdb{0x15, 0x10, 0, 0, static_cast<std::uint8_t>(sel.size()), 0};
  auto next = applyModeSelect(*parseCdb(cdb, geo()), sel, cur, l);
  ASSERT_TRUE(next);
  EXPECT_FALSE(next->wce);
  // A non-changeable bit (RCD) is refused with a pointer to it.
  sel[4 + 2] = 0x01;
  EXPECT_EQ(applyModeSelect(*parseCdb(cdb, geo()), sel, cur, l).sense, invalidFieldInParameterList(6, 0));
  // SP=1.
  cdb[1] = 0x11;
  EXPECT_EQ(applyModeSelect(*parseCdb(cdb, geo()), sel, cur, l).sense, invalidFieldInCdb(1, 0));
  // Truncated page.
  cdb[1] = 0x10;
  Bytes trunc(sel.begin(), sel.begin() + 10);
  EXPECT_EQ(applyModeSelect(*parseCdb(cdb, geo()), trunc, cur, l).sense, parameterListLengthError());
}

}  // namespace
}  // namespace pxedust::scsi
