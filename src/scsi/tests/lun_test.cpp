// Lun tests: every command against a real Overlay (over a RawImage) and, for edge cases, a small
// in-memory BlockDevice; sense bytes are checked exactly.
#include "scsi/lun.hpp"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <utility>

#include "blockstore/fault_device.hpp"
#include "blockstore/overlay.hpp"
#include "blockstore/tests/test_util.hpp"

namespace pxedust::scsi {
namespace {

using Bytes = std::vector<std::uint8_t>;
using blockstore::Capabilities;
using blockstore::Extent;
using blockstore::ExtentState;

// A small in-memory device: per-512-byte-block state, configurable capabilities.
class MemDevice final : public blockstore::BlockDevice {
 public:
  MemDevice(std::uint64_t blocks, Capabilities caps) : data_(blocks * 512, 0), state_(blocks, ExtentState::Data), caps_(caps) {}
  std::uint64_t size() const override { return data_.size(); }
  std::uint32_t logicalBlockSize() const override { return 512; }
  Capabilities capabilities() const override { return caps_; }
  std::string describe() const override { return "mem"; }
  Result<void> read(std::uint64_t o, std::span<std::uint8_t> b) override {
    if (auto r = blockstore::checkRange(*this, "read", o, b.size()); !r) return r;
    std::lock_guard g(m_);
    std::copy_n(data_.begin() + static_cast<std::ptrdiff_t>(o), b.size(), b.begin());
    return {};
  }
  Result<void> write(std::uint64_t o, std::span<const std::uint8_t> d, blockstore::WriteFlags f) override {
    if (caps_.readOnly) return Error{"ro", EROFS};
    if (auto r = blockstore::checkRange(*this, "write", o, d.size()); !r) return r;
    std::lock_guard g(m_);
    std::copy(d.begin(), d.end(), data_.begin() + static_cast<std::ptrdiff_t>(o));
    for (auto b = o / 512; b < (o + d.size() + 511) / 512; ++b) state_[b] = ExtentState::Data;
    if (f.fua) ++fuaWrites;
    return {};
  }
  Result<void> flush() override {
    ++flushes;
    return {};
  }
  Result<void> trim(std::uint64_t o, std::uint64_t l) override { return zero(o, l); }
  Result<void> writeZeroes(std::uint64_t o, std::uint64_t l, blockstore::WriteFlags) override { return zero(o, l); }
  Result<std::vector<Extent>> extents(std::uint64_t o, std::uint64_t l) override {
    if (auto r = blockstore::checkRange(*this, "extents", o, l); !r) return r.error();
    std::vector<Extent> out;
    for (auto b = o / 512; b < (o + l) / 512; ++b) {
      if (!out.empty() && out.back().state == state_[b]) {
        out.back().length += 512;
      } else {
        out.push_back({b * 512, 512, state_[b]});
      }
    }
    return out;
  }
  std::atomic<int> fuaWrites{0}, flushes{0};

 private:
  Result<void> zero(std::uint64_t o, std::uint64_t l) {
    if (auto r = blockstore::checkRange(*this, "zero", o, l); !r) return r;
    std::lock_guard g(m_);
    std::fill_n(data_.begin() + static_cast<std::ptrdiff_t>(o), l, 0);
    for (auto b = o / 512; b < (o + l) / 512; ++b) state_[b] = ExtentState::Zero;
    return {};
  }
  std::mutex m_;
  Bytes data_;
  std::vector<ExtentState> state_;
  Capabilities caps_;
};

Bytes cdb10(std::uint8_t op, std::uint32_t lba, std::uint16_t blocks, std::uint8_t b1 = 0) {
  Bytes c(10, 0);
  c[0] = op;
  c[1] = b1;
  putBe32(c.data() + 2, lba);
  putBe16(c.data() + 7, blocks);
  return c;
}
Bytes cdb16(std::uint8_t op, std::uint64_t lba, std::uint32_t blocks, std::uint8_t b1 = 0) {
  Bytes c(16, 0);
  c[0] = op;
  c[1] = b1;
  putBe64(c.data() + 2, lba);
  putBe32(c.data() + 10, blocks);
  return c;
}
Bytes inquiryCdb(bool evpd, std::uint8_t page, std::uint16_t alloc = 255) {
  Bytes c{0x12, static_cast<std::uint8_t>(evpd ? 1 : 0), page, 0, 0, 0};
  putBe16(c.data() + 3, alloc);
  return c;
}
Bytes prOut(std::uint8_t sa, std::uint8_t type, std::uint64_t key, std::uint64_t saKey, Bytes* params) {
  params->assign(24, 0);
  putBe64(params->data(), key);
  putBe64(params->data() + 8, saKey);
  Bytes c(10, 0);
  c[0] = 0x5F;
  c[1] = sa;
  c[2] = type;
  putBe32(c.data() + 5, 24);
  return c;
}
Bytes prIn(std::uint8_t sa) {
  Bytes c(10, 0);
  c[0] = 0x5E;
  c[1] = sa;
  putBe16(c.data() + 7, 1024);
  return c;
}

SenseData senseOf(const Response& r) {
  auto s = parseFixedSense(r.sense);
  return s.value_or(SenseData{});
}

class LunHarness {
 public:
  explicit LunHarness(std::shared_ptr<blockstore::BlockDevice> dev, LunOptions opts = {}) : dev_(std::move(dev)) {
    adev_ = std::make_shared<blockstore::AsyncBlockDevice>(dev_, pool_, io_.get_executor());
    opts.identity.serial = "node01";
    opts.identity.deviceId = stableDeviceId("node01");
    opts.identity.targetName = "iqn.2026-11.org.example:node01";
    lun_ = std::make_unique<Lun>(io_.get_executor(), adev_, opts);
  }

  Response run(const Nexus& n, const Bytes& cdb, const Bytes& out = {}, std::optional<std::uint32_t> expected = {}) {
    Command c;
    c.cdb = cdb;
    c.dataOut = out;
    c.nexus = &n;
    c.expectedLength = expected ? *expected : std::max<std::uint32_t>(static_cast<std::uint32_t>(out.size()),
                                                                      lun_->plan(cdb, UINT32_MAX).transferBytes);
    std::optional<Response> r;
    asio::co_spawn(io_, lun_->execute(c), [&](std::exception_ptr e, Response resp) {
      EXPECT_FALSE(e);
      r = std::move(resp);
    });
    io_.restart();
    io_.run();
    EXPECT_TRUE(r.has_value());
    return r.value_or(Response{});
  }
  // Clears the power-on unit attention of a nexus.
  void hello(const Nexus& n) {
    auto r = run(n, Bytes{0, 0, 0, 0, 0, 0});
    EXPECT_EQ(senseOf(r).code, asc::kPowerOnResetOccurred);
  }

  asio::io_context io_;
  blockstore::WorkerPool pool_{2};
  std::shared_ptr<blockstore::BlockDevice> dev_;
  std::shared_ptr<blockstore::AsyncBlockDevice> adev_;
  std::unique_ptr<Lun> lun_;
  Nexus a_{"iqn.2026-11.org.example:a", "00023d000001"};
  Nexus b_{"iqn.2026-11.org.example:b", "00023d000002"};
};

// The real thing: an overlay over a 1 MiB random base.
class OverlayLunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    baseBytes_ = blockstore::testing::randomBytes(1 << 20, 11);
    base_ = blockstore::testing::makeBase(dir_.path(), baseBytes_);
    ASSERT_TRUE(blockstore::Overlay::create(paths_, base_->identity(), 4096));
    auto ov = blockstore::Overlay::open(paths_, base_);
    ASSERT_TRUE(ov);
    h_ = std::make_unique<LunHarness>(*ov);
    h_->hello(h_->a_);
  }
  Response run(const Bytes& cdb, const Bytes& out = {}, std::optional<std::uint32_t> expected = {}) {
    return h_->run(h_->a_, cdb, out, expected);
  }
  blockstore::testing::TempDir dir_;
  Bytes baseBytes_;
  std::shared_ptr<blockstore::RawImage> base_;
  blockstore::OverlayPaths paths_{dir_ / "h.map", dir_ / "h.data"};
  std::unique_ptr<LunHarness> h_;
};

TEST_F(OverlayLunTest, UnitAttentionOnlyOnceAndNotForInquiry) {
  // A second nexus: INQUIRY does not consume its UA; REQUEST SENSE returns it as data.
  auto inq = h_->run(h_->b_, inquiryCdb(false, 0));
  EXPECT_TRUE(inq.isGood());
  auto rs = h_->run(h_->b_, Bytes{0x03, 0, 0, 0, 18, 0});
  ASSERT_TRUE(rs.isGood());
  EXPECT_EQ(rs.dataIn, unitAttention(asc::kPowerOnResetOccurred).fixed());
  EXPECT_TRUE(h_->run(h_->b_, Bytes(6, 0)).isGood());
  // Nexus loss: the same name and ISID logging in again gets 29/00 again.
  h_->lun_->nexusLost(h_->b_);
  auto tur = h_->run(h_->b_, Bytes(6, 0));
  EXPECT_EQ(tur.status, Status::CheckCondition);
  EXPECT_EQ(tur.sense, unitAttention(asc::kPowerOnResetOccurred).fixed());
  // LUN reset: 29/03 to everybody.
  h_->lun_->reset();
  EXPECT_EQ(senseOf(run(Bytes(6, 0))).code, asc::kBusDeviceResetOccurred);
  EXPECT_TRUE(run(Bytes(6, 0)).isGood());
  // REQUEST SENSE with nothing pending: NO SENSE. DESC=1 is refused (fixed format only).
  rs = run(Bytes{0x03, 0, 0, 0, 252, 0});
  EXPECT_EQ(rs.dataIn, SenseData{}.fixed());
  EXPECT_EQ(run(Bytes{0x03, 1, 0, 0, 252, 0}).sense, invalidFieldInCdb(1, 0).fixed());
}

TEST_F(OverlayLunTest, StandardInquiry) {
  auto r = run(inquiryCdb(false, 0, 260));
  ASSERT_TRUE(r.isGood());
  ASSERT_EQ(r.dataIn.size(), 96u);
  EXPECT_EQ(r.dataIn[0], 0x00);
  EXPECT_EQ(r.dataIn[2], 0x06);
  EXPECT_EQ(r.dataIn[3], 0x12);
  EXPECT_EQ(r.dataIn[4], 91);
  EXPECT_EQ(r.dataIn[7], 0x02);
  EXPECT_EQ(std::string(r.dataIn.begin() + 8, r.dataIn.begin() + 16), "PXEDUST ");
  EXPECT_EQ(getBe16(r.dataIn.data() + 62), 0x04C0);  // SBC-3
  // Allocation length truncates; residual is against the expected length.
  r = run(inquiryCdb(false, 0, 5), {}, 5);
  EXPECT_EQ(r.dataIn.size(), 5u);
  EXPECT_EQ(r.residual, Residual::None);
  r = run(inquiryCdb(false, 0, 255), {}, 255);
  EXPECT_EQ(r.residual, Residual::Underflow);
  EXPECT_EQ(r.residualCount, 255u - 96);
  // A page code without EVPD, an unknown VPD page.
  EXPECT_EQ(run(inquiryCdb(false, 0x80)).sense, invalidFieldInCdb(2).fixed());
  EXPECT_EQ(run(inquiryCdb(true, 0x99)).sense, invalidFieldInCdb(2).fixed());
}

TEST_F(OverlayLunTest, VpdPages) {
  auto r = run(inquiryCdb(true, 0x00));
  EXPECT_EQ(r.dataIn, (Bytes{0, 0, 0, 6, 0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2}));
  r = run(inquiryCdb(true, 0x80));
  EXPECT_EQ(std::string(r.dataIn.begin() + 4, r.dataIn.end()), "node01");
  r = run(inquiryCdb(true, 0x83));
  ASSERT_GE(r.dataIn.size(), 16u);
  EXPECT_EQ(r.dataIn[4], 0x01);  // binary
  EXPECT_EQ(r.dataIn[5], 0x03);  // LU, NAA
  EXPECT_EQ(r.dataIn[7], 8);
  EXPECT_EQ(r.dataIn[8] >> 4, 3);  // NAA locally assigned
  EXPECT_EQ(getBe64(r.dataIn.data() + 8) & 0x0FFFFFFFFFFFFFFFULL, stableDeviceId("node01") & 0x0FFFFFFFFFFFFFFFULL);
  EXPECT_EQ(getBe16(r.dataIn.data() + 2), r.dataIn.size() - 4);
  r = run(inquiryCdb(true, 0xB0));
  ASSERT_EQ(r.dataIn.size(), 64u);
  EXPECT_EQ(r.dataIn[3], 0x3C);
  EXPECT_EQ(r.dataIn[4], 0x00);                          // WSNZ=0: 0 blocks means to the end
  EXPECT_EQ(r.dataIn[5], 255);                           // MAXIMUM COMPARE AND WRITE LENGTH
  EXPECT_EQ(getBe32(r.dataIn.data() + 8), 65536u);       // 32 MiB
  EXPECT_EQ(getBe32(r.dataIn.data() + 20), 1u << 20);    // MAXIMUM UNMAP LBA COUNT
  EXPECT_EQ(getBe32(r.dataIn.data() + 24), 256u);        // MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT
  EXPECT_EQ(getBe16(r.dataIn.data() + 6), 8u);           // OPTIMAL TRANSFER LENGTH GRANULARITY: a chunk
  EXPECT_EQ(getBe32(r.dataIn.data() + 28), 8u);          // OPTIMAL UNMAP GRANULARITY: a chunk
  r = run(inquiryCdb(true, 0xB1));
  EXPECT_EQ(getBe16(r.dataIn.data() + 4), 1);            // non-rotating
  r = run(inquiryCdb(true, 0xB2));
  EXPECT_EQ(r.dataIn, (Bytes{0, 0xB2, 0, 4, 0, 0xE4, 0x02, 0}));
}

TEST_F(OverlayLunTest, ReadCapacity) {
  Bytes rc10{0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  auto r = run(rc10);
  EXPECT_EQ(r.dataIn, (Bytes{0, 0, 0x07, 0xFF, 0, 0, 0x02, 0}));
  Bytes rc16(16, 0);
  rc16[0] = 0x9E;
  rc16[1] = 0x10;
  rc16[13] = 32;
  r = run(rc16);
  ASSERT_EQ(r.dataIn.size(), 32u);
  EXPECT_EQ(getBe64(r.dataIn.data()), 2047u);
  EXPECT_EQ(getBe32(r.dataIn.data() + 8), 512u);
  EXPECT_EQ(r.dataIn[13], 0);     // LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT (chunks: VPD B0h)
  EXPECT_EQ(r.dataIn[14], 0xC0);  // LBPME, LBPRZ; lowest aligned LBA 0
  rc16[13] = 12;  // allocation lengths below 32 truncate
  EXPECT_EQ(run(rc16).dataIn.size(), 12u);
}

TEST_F(OverlayLunTest, ReadWriteRoundTripsAllSizes) {
  auto r = run(cdb10(0x28, 3, 2));
  ASSERT_TRUE(r.isGood());
  EXPECT_EQ(r.dataIn, Bytes(baseBytes_.begin() + 1536, baseBytes_.begin() + 2560));
  Bytes data = blockstore::testing::randomBytes(3 * 512, 5);
  EXPECT_TRUE(run(cdb10(0x2A, 100, 3, 0x08), data).isGood());  // WRITE(10) FUA
  EXPECT_EQ(run(cdb16(0x88, 100, 3)).dataIn, data);
  Bytes w6{0x0A, 0, 0, 50, 1, 0};
  EXPECT_TRUE(run(w6, Bytes(512, 0xAB)).isGood());
  Bytes r12(12, 0);
  r12[0] = 0xA8;
  putBe32(r12.data() + 2, 50);
  putBe32(r12.data() + 6, 1);
  EXPECT_EQ(run(r12).dataIn, Bytes(512, 0xAB));
  Bytes w12 = r12;
  w12[0] = 0xAA;
  EXPECT_TRUE(run(w12, Bytes(512, 0xCD)).isGood());
  EXPECT_EQ(run(Bytes{0x08, 0, 0, 50, 1, 0}).dataIn, Bytes(512, 0xCD));
  // Zero-length transfers succeed without touching anything.
  EXPECT_TRUE(run(cdb10(0x28, 0, 0)).isGood());
  EXPECT_TRUE(run(cdb10(0x2A, 2048, 0)).isGood());
  // Out of range.
  EXPECT_EQ(run(cdb10(0x28, 2047, 2)).sense, lbaOutOfRange().fixed());
  EXPECT_EQ(run(cdb16(0x8A, UINT64_MAX, 1), Bytes(512)).sense, lbaOutOfRange().fixed());
  // WRITE AND VERIFY, with and without BYTCHK.
  EXPECT_TRUE(run(cdb10(0x2E, 7, 1, 0x02), Bytes(512, 0x11)).isGood());
  EXPECT_EQ(run(cdb10(0x28, 7, 1)).dataIn, Bytes(512, 0x11));
  EXPECT_EQ(run(cdb10(0x2E, 7, 1, 0x06), Bytes(512, 0x11)).sense, invalidFieldInCdb(1, 2).fixed());
}

TEST_F(OverlayLunTest, Residuals) {
  // READ(10) of one block: expected 200 -> 200 bytes and overflow 312; expected 10000 -> underflow.
  auto r = run(cdb10(0x28, 0, 1), {}, 200);
  EXPECT_TRUE(r.isGood());
  EXPECT_EQ(r.dataIn.size(), 200u);
  EXPECT_EQ(r.residual, Residual::Overflow);
  EXPECT_EQ(r.residualCount, 312u);
  r = run(cdb10(0x28, 0, 1), {}, 10000);
  EXPECT_EQ(r.dataIn.size(), 512u);
  EXPECT_EQ(r.residual, Residual::Underflow);
  EXPECT_EQ(r.residualCount, 10000u - 512);
  // WRITE(10) of one block with 2 blocks of Data-Out: the first block is written, underflow 512.
  r = run(cdb10(0x2A, 9, 1), Bytes(1024, 0x77), 1024);
  EXPECT_TRUE(r.isGood());
  EXPECT_EQ(r.residual, Residual::Underflow);
  EXPECT_EQ(r.residualCount, 512u);
  EXPECT_EQ(run(cdb10(0x28, 10, 1)).dataIn, Bytes(baseBytes_.begin() + 5120, baseBytes_.begin() + 5632));
  // WRITE(10) of 2 blocks with 1 block expected: the first block is written, overflow 512, and the
  // second block keeps its data.
  r = run(cdb10(0x2A, 20, 2), Bytes(512, 0x55), 512);
  EXPECT_TRUE(r.isGood());
  EXPECT_EQ(r.residual, Residual::Overflow);
  EXPECT_EQ(r.residualCount, 512u);
  EXPECT_EQ(run(cdb10(0x28, 20, 1)).dataIn, Bytes(512, 0x55));
  EXPECT_EQ(run(cdb10(0x28, 21, 1)).dataIn, Bytes(baseBytes_.begin() + 10752, baseBytes_.begin() + 11264));
  // WRITE AND VERIFY(10) of one block with expected length 0: nothing written, overflow 512.
  r = run(cdb10(0x2E, 30, 1, 0x02), {}, 0);
  EXPECT_TRUE(r.isGood());
  EXPECT_EQ(r.residual, Residual::Overflow);
  EXPECT_EQ(r.residualCount, 512u);
  EXPECT_EQ(run(cdb10(0x28, 30, 1)).dataIn, Bytes(baseBytes_.begin() + 15360, baseBytes_.begin() + 15872));
  // An expected length inside a block: 0E/03, overflow 312, nothing written.
  r = run(cdb10(0x2A, 30, 1), Bytes(200, 0x66), 200);
  EXPECT_EQ(senseOf(r).code, asc::kInvalidFieldInInformationUnit);
  EXPECT_EQ(r.residual, Residual::Overflow);
  EXPECT_EQ(r.residualCount, 312u);
  EXPECT_EQ(run(cdb10(0x28, 30, 1)).dataIn, Bytes(baseBytes_.begin() + 15360, baseBytes_.begin() + 15872));
  // COMPARE AND WRITE with 0 blocks but data announced: INVALID FIELD IN CDB, nothing compared.
  Bytes caw(16, 0);
  caw[0] = 0x89;
  r = run(caw, Bytes(1024, 0), 1024);
  EXPECT_EQ(senseOf(r), invalidFieldInCdb(13));
  EXPECT_EQ(r.residual, Residual::Underflow);
}

TEST_F(OverlayLunTest, VerifyAndMiscompare) {
  Bytes block(baseBytes_.begin() + 512, baseBytes_.begin() + 1536);
  EXPECT_TRUE(run(cdb10(0x2F, 1, 2, 0x02), block).isGood());
  EXPECT_TRUE(run(cdb10(0x2F, 1, 2, 0x00)).isGood());  // BYTCHK=0: medium check, no Data-Out
  block[700] ^= 0xFF;
  auto r = run(cdb10(0x2F, 1, 2, 0x02), block);
  EXPECT_EQ(r.sense, miscompare(700).fixed());
  EXPECT_EQ(run(cdb16(0x8F, 2048, 1, 0x02), Bytes(512)).sense, lbaOutOfRange().fixed());
  EXPECT_EQ(run(cdb16(0x8F, 0, 1, 0x04), Bytes(512)).sense, invalidFieldInCdb(1, 2).fixed());  // BYTCHK 10b
  // BYTCHK 11b: one block compared with each.
  EXPECT_TRUE(run(cdb10(0x2A, 30, 3), Bytes(1536, 0x42)).isGood());
  EXPECT_TRUE(run(cdb10(0x2F, 30, 3, 0x06), Bytes(512, 0x42)).isGood());
  EXPECT_EQ(run(cdb10(0x2F, 29, 3, 0x06), Bytes(512, 0x42)).sense, miscompare(0).fixed());
}

TEST_F(OverlayLunTest, WriteSameUnmapAndLbaStatus) {
  // Pattern over 10 blocks.
  Bytes pattern = blockstore::testing::randomBytes(512, 9);
  EXPECT_TRUE(run(cdb10(0x41, 64, 10), pattern).isGood());
  auto r = run(cdb10(0x28, 64, 10));
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(std::equal(pattern.begin(), pattern.end(), r.dataIn.begin() + i * 512));
  // WRITE SAME(16) UNMAP with NDOB over 4 KiB-aligned blocks: deallocated, reads zeros.
  EXPECT_TRUE(run(cdb16(0x93, 64, 16, 0x09)).isGood());
  EXPECT_EQ(run(cdb10(0x28, 64, 16)).dataIn, Bytes(8192, 0));
  Bytes gls(16, 0);
  gls[0] = 0x9E;
  gls[1] = 0x12;
  putBe64(gls.data() + 2, 64);
  putBe32(gls.data() + 10, 24);
  r = run(gls);
  ASSERT_EQ(r.dataIn.size(), 24u);
  EXPECT_EQ(getBe32(r.dataIn.data()), 20u + 16);  // two descriptors exist; one fits
  EXPECT_EQ(getBe64(r.dataIn.data() + 8), 64u);
  EXPECT_EQ(getBe32(r.dataIn.data() + 16), 16u);
  EXPECT_EQ(r.dataIn[20], 1);  // deallocated
  putBe32(gls.data() + 10, 1024);
  r = run(gls);
  EXPECT_EQ(getBe64(r.dataIn.data() + 24), 80u);
  EXPECT_EQ(r.dataIn[36], 0);  // mapped (base)
  putBe64(gls.data() + 2, 2048);
  EXPECT_EQ(run(gls).sense, lbaOutOfRange().fixed());
  // NUMBER OF LOGICAL BLOCKS 0: to the last LBA (WSNZ=0), here with UNMAP over the last 8 blocks.
  EXPECT_TRUE(run(cdb10(0x2A, 2040, 8), Bytes(4096, 0xEE)).isGood());
  EXPECT_TRUE(run(cdb16(0x93, 2040, 0, 0x08), Bytes(512, 0)).isGood());
  EXPECT_EQ(run(cdb10(0x28, 2040, 8)).dataIn, Bytes(4096, 0));
  // And without UNMAP, a pattern over the last 3 blocks.
  EXPECT_TRUE(run(cdb10(0x41, 2045, 0), pattern).isGood());
  r = run(cdb10(0x28, 2045, 3));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(std::equal(pattern.begin(), pattern.end(), r.dataIn.begin() + i * 512));
  EXPECT_EQ(run(cdb10(0x41, 2048, 0), pattern).sense, lbaOutOfRange().fixed());
  // UNMAP=1 unmaps whatever the Data-Out holds: the blocks read as zeros, not as the pattern.
  EXPECT_TRUE(run(cdb10(0x41, 2045, 0, 0x08), pattern).isGood());
  EXPECT_EQ(run(cdb10(0x28, 2045, 3)).dataIn, Bytes(1536, 0));
  // The WRITE SAME Data-Out must be exactly one block.
  EXPECT_EQ(senseOf(run(cdb10(0x41, 0, 1), Bytes(1024), 1024)).code, asc::kInvalidFieldInInformationUnit);
}

Bytes unmapCdb(std::size_t len) {
  Bytes c(10, 0);
  c[0] = 0x42;
  putBe16(c.data() + 7, static_cast<std::uint16_t>(len));
  return c;
}
Bytes unmapParams(std::uint64_t lba, std::uint32_t blocks) {
  Bytes p(24, 0);
  putBe16(p.data(), 22);
  putBe16(p.data() + 2, 16);
  putBe64(p.data() + 8, lba);
  putBe32(p.data() + 16, blocks);
  return p;
}

TEST_F(OverlayLunTest, Unmap) {
  EXPECT_TRUE(run(cdb10(0x2A, 8, 8), Bytes(4096, 0xEE)).isGood());
  auto p = unmapParams(8, 8);
  EXPECT_TRUE(run(unmapCdb(p.size()), p).isGood());
  EXPECT_EQ(run(cdb10(0x28, 8, 8)).dataIn, Bytes(4096, 0));
  // Unaligned: still reads zeros.
  p = unmapParams(1, 2);
  EXPECT_TRUE(run(unmapCdb(p.size()), p).isGood());
  EXPECT_EQ(run(cdb10(0x28, 1, 2)).dataIn, Bytes(1024, 0));
  EXPECT_TRUE(run(unmapCdb(0)).isGood());
  p = unmapParams(2048, 1);
  EXPECT_EQ(run(unmapCdb(p.size()), p).sense, lbaOutOfRange().fixed());
  Bytes shortList(6, 0);
  EXPECT_EQ(run(unmapCdb(6), shortList).sense, parameterListLengthError().fixed());
}

TEST_F(OverlayLunTest, CompareAndWrite) {
  Bytes caw(16, 0);
  caw[0] = 0x89;
  putBe64(caw.data() + 2, 4);
  caw[13] = 2;
  Bytes current(baseBytes_.begin() + 2048, baseBytes_.begin() + 3072);
  Bytes data = current;
  Bytes next(1024, 0x5A);
  data.insert(data.end(), next.begin(), next.end());
  EXPECT_TRUE(run(caw, data).isGood());
  EXPECT_EQ(run(cdb10(0x28, 4, 2)).dataIn, next);
  // Mismatch at byte 600 of the compare data: nothing written, INFORMATION = 600.
  Bytes bad(1024, 0x5A);
  bad[600] = 0;
  bad.insert(bad.end(), 1024, 0x11);
  EXPECT_EQ(run(caw, bad).sense, miscompare(600).fixed());
  EXPECT_EQ(run(cdb10(0x28, 4, 2)).dataIn, next);
  // Zero blocks; too many blocks is caught by the parser (one byte field, cap 255: always fits).
  caw[13] = 0;
  EXPECT_TRUE(run(caw).isGood());
}

TEST_F(OverlayLunTest, CompareAndWriteIsAtomicAgainstRacingWriters) {
  // 16 COMPARE AND WRITEs all expect the same old block; exactly one may win. Ordinary writes to a
  // neighbouring block run at the same time.
  Bytes old(baseBytes_.begin(), baseBytes_.begin() + 512);
  std::vector<Bytes> cdbs, datas;
  std::vector<Response> results(32);
  std::vector<Command> cmds(32);
  cdbs.reserve(32);
  datas.reserve(32);
  for (int i = 0; i < 32; ++i) {
    if (i % 2 == 0) {
      Bytes caw(16, 0);
      caw[0] = 0x89;
      caw[13] = 1;
      Bytes d = old;
      d.insert(d.end(), 512, static_cast<std::uint8_t>(i + 1));
      cdbs.push_back(caw);
      datas.push_back(d);
    } else {
      cdbs.push_back(cdb10(0x2A, 1, 1));
      datas.push_back(Bytes(512, static_cast<std::uint8_t>(i)));
    }
    cmds[i].cdb = cdbs.back();
    cmds[i].dataOut = datas.back();
    cmds[i].expectedLength = static_cast<std::uint32_t>(datas.back().size());
    cmds[i].nexus = &h_->a_;
  }
  int done = 0;
  for (int i = 0; i < 32; ++i) {
    h_->lun_->executeAsync(cmds[i], [&, i](Response r) {
      results[i] = std::move(r);
      ++done;
    });
  }
  h_->io_.restart();
  h_->io_.run();
  EXPECT_EQ(done, 32);
  int winners = 0;
  for (int i = 0; i < 32; i += 2) {
    if (results[i].isGood()) {
      ++winners;
      EXPECT_EQ(run(cdb10(0x28, 0, 1)).dataIn, Bytes(512, static_cast<std::uint8_t>(i + 1)));
    } else {
      EXPECT_EQ(senseOf(results[i]).key, SenseKey::Miscompare);
    }
  }
  EXPECT_EQ(winners, 1);
  for (int i = 1; i < 32; i += 2) EXPECT_TRUE(results[i].isGood());
}

TEST_F(OverlayLunTest, OrWritePreFetchAndDefectData) {
  EXPECT_TRUE(run(cdb10(0x2A, 40, 1), Bytes(512, 0x0F)).isGood());
  EXPECT_TRUE(run(cdb16(0x8B, 40, 1), Bytes(512, 0xF0 | 0x01)).isGood());
  EXPECT_EQ(run(cdb10(0x28, 40, 1)).dataIn, Bytes(512, 0xFF));
  EXPECT_EQ(run(cdb16(0x8B, 40, 1, 0x20), Bytes(512)).sense, invalidFieldInCdb(1, 5).fixed());  // ORPROTECT
  EXPECT_TRUE(run(cdb10(0x34, 0, 256, 0x02)).isGood());
  EXPECT_TRUE(run(cdb16(0x90, 2047, 1)).isGood());
  EXPECT_EQ(run(cdb16(0x90, 2047, 2)).sense, lbaOutOfRange().fixed());
  Bytes rdd{0x37, 0, 0x18 | 0x05, 0, 0, 0, 0, 0, 32, 0};
  EXPECT_EQ(run(rdd).dataIn, (Bytes{0, 0x05, 0, 0}));
}

TEST_F(OverlayLunTest, ModeSenseSelectAndSoftwareWriteProtect) {
  h_->hello(h_->b_);
  Bytes ms6{0x1A, 0x00, 0x0A, 0x00, 0xFF, 0x00};
  auto r = run(ms6);
  ASSERT_TRUE(r.isGood());
  ASSERT_EQ(r.dataIn.size(), 4u + 8 + 12);
  // Turn SWP on through MODE SELECT(6) with the control page as returned (header zeroed).
  Bytes sel(4, 0);
  sel.insert(sel.end(), r.dataIn.begin() + 12, r.dataIn.end());
  sel[4 + 4] |= 0x08;
  Bytes cdb{0x15, 0x10, 0, 0, static_cast<std::uint8_t>(sel.size()), 0};
  EXPECT_TRUE(run(cdb, sel).isGood());
  EXPECT_TRUE(h_->lun_->modeState().swp);
  EXPECT_EQ(run(cdb10(0x2A, 0, 1), Bytes(512)).sense, writeProtected(asc::kSoftwareWriteProtected).fixed());
  EXPECT_TRUE(run(cdb10(0x28, 0, 1)).isGood());
  EXPECT_EQ(run(ms6).dataIn[2], 0x90);  // WP in the header
  // The other nexus hears about it once.
  EXPECT_EQ(h_->run(h_->b_, Bytes(6, 0)).sense, unitAttention(asc::kModeParametersChanged).fixed());
  EXPECT_TRUE(h_->run(h_->b_, Bytes(6, 0)).isGood());
  sel[4 + 4] &= static_cast<std::uint8_t>(~0x08);
  EXPECT_TRUE(run(cdb, sel).isGood());
  EXPECT_TRUE(run(cdb10(0x2A, 0, 1), Bytes(512)).isGood());
  // MODE SENSE(10) with LLBAA: a 16-byte block descriptor.
  Bytes ms10{0x5A, 0x10, 0x3F, 0, 0, 0, 0, 0x01, 0x00, 0};
  r = run(ms10);
  ASSERT_TRUE(r.isGood());
  EXPECT_EQ(getBe16(r.dataIn.data() + 6), 16);
  EXPECT_EQ(getBe64(r.dataIn.data() + 8), 2048u);
  // Changeable values.
  ms6[2] = 0x48;
  r = run(ms6);
  EXPECT_EQ(r.dataIn[12 + 2], 0x04);
}

TEST_F(OverlayLunTest, WceOffMakesWritesDurable) {
  Bytes ms6{0x1A, 0x08, 0x08, 0x00, 0xFF, 0x00};  // DBD
  auto r = run(ms6);
  ASSERT_EQ(r.dataIn.size(), 24u);
  Bytes sel(4, 0);
  sel.insert(sel.end(), r.dataIn.begin() + 4, r.dataIn.end());
  sel[4 + 2] = 0;
  EXPECT_TRUE(run(Bytes{0x15, 0x10, 0, 0, static_cast<std::uint8_t>(sel.size()), 0}, sel).isGood());
  EXPECT_FALSE(h_->lun_->modeState().wce);
  EXPECT_TRUE(run(cdb10(0x2A, 0, 1), Bytes(512, 1)).isGood());
  EXPECT_TRUE(run(cdb10(0x35, 0, 0)).isGood());  // SYNCHRONIZE CACHE(10)
  EXPECT_TRUE(run(cdb16(0x91, 0, 0)).isGood());
}

TEST_F(OverlayLunTest, ReportLunsAndSupportedOpcodes) {
  Bytes rl(12, 0);
  rl[0] = 0xA0;
  putBe32(rl.data() + 6, 64);
  auto r = run(rl);
  EXPECT_EQ(r.dataIn, (Bytes{0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  Bytes rsoc(12, 0);
  rsoc[0] = 0xA3;
  rsoc[1] = 0x0C;
  putBe32(rsoc.data() + 6, 65535);
  r = run(rsoc);
  ASSERT_TRUE(r.isGood());
  EXPECT_EQ(getBe32(r.dataIn.data()), commandTable().size() * 8);
  EXPECT_TRUE(run(Bytes{0x1B, 0, 0, 0, 0x01, 0}).isGood());  // START STOP UNIT
  EXPECT_TRUE(run(Bytes{0x1E, 0, 0, 0, 0x01, 0}).isGood());  // PREVENT ALLOW
  EXPECT_EQ(run(Bytes{0x04, 0, 0, 0, 0, 0}).sense, invalidOpcode().fixed());  // FORMAT UNIT
}

TEST_F(OverlayLunTest, PersistentReservationsAcrossTwoNexuses) {
  auto& a = h_->a_;
  auto& b = h_->b_;
  h_->hello(b);
  Bytes p;
  // REGISTER both, then READ KEYS.
  EXPECT_TRUE(h_->run(a, prOut(0x00, 0, 0, 0xAAAA, &p), p).isGood());
  EXPECT_TRUE(h_->run(b, prOut(0x06, 0, 0, 0xBBBB, &p), p).isGood());
  // REGISTER with a wrong current key: RESERVATION CONFLICT.
  EXPECT_EQ(h_->run(b, prOut(0x00, 0, 0x1234, 0xCCCC, &p), p).status, Status::ReservationConflict);
  auto keys = h_->run(a, prIn(0x00));
  ASSERT_TRUE(keys.isGood());
  EXPECT_EQ(getBe32(keys.dataIn.data()), 2u);  // generation
  EXPECT_EQ(getBe32(keys.dataIn.data() + 4), 16u);
  // A reserves WRITE EXCLUSIVE: B may read, not write.
  EXPECT_TRUE(h_->run(a, prOut(0x01, 0x01, 0xAAAA, 0, &p), p).isGood());
  auto rr = h_->run(b, prIn(0x01));
  EXPECT_EQ(getBe32(rr.dataIn.data() + 4), 16u);
  EXPECT_EQ(getBe64(rr.dataIn.data() + 8), 0xAAAAu);
  EXPECT_EQ(rr.dataIn[21], 0x01);
  EXPECT_TRUE(h_->run(b, cdb10(0x28, 0, 1)).isGood());
  EXPECT_EQ(h_->run(b, cdb10(0x2A, 0, 1), Bytes(512)).status, Status::ReservationConflict);
  EXPECT_TRUE(h_->run(a, cdb10(0x2A, 0, 1), Bytes(512)).isGood());
  // B cannot reserve; RELEASE with the wrong type from A is an error.
  EXPECT_EQ(h_->run(b, prOut(0x01, 0x01, 0xBBBB, 0, &p), p).status, Status::ReservationConflict);
  EXPECT_EQ(h_->run(a, prOut(0x02, 0x03, 0xAAAA, 0, &p), p).sense, illegalRequest(Asc{0x26, 0x04}).fixed());
  // READ FULL STATUS: two descriptors, A the holder, iSCSI TransportIDs.
  auto fs = h_->run(a, prIn(0x03));
  ASSERT_TRUE(fs.isGood());
  EXPECT_GT(getBe32(fs.dataIn.data() + 4), 48u);
  EXPECT_EQ(fs.dataIn[8 + 12], 0x01);
  EXPECT_EQ(fs.dataIn[8 + 24], 0x45);
  // B preempts A: A's registration goes, B holds EXCLUSIVE ACCESS; A learns it by unit attention.
  EXPECT_TRUE(h_->run(b, prOut(0x04, 0x03, 0xBBBB, 0xAAAA, &p), p).isGood());
  EXPECT_EQ(h_->run(a, Bytes(6, 0)).sense, unitAttention(asc::kRegistrationsPreempted).fixed());
  EXPECT_EQ(h_->run(a, cdb10(0x28, 0, 1)).status, Status::ReservationConflict);
  EXPECT_TRUE(h_->run(a, inquiryCdb(false, 0)).isGood());
  // EXCLUSIVE ACCESS - REGISTRANTS ONLY: registering gives A access back.
  EXPECT_TRUE(h_->run(b, prOut(0x02, 0x03, 0xBBBB, 0, &p), p).isGood());
  EXPECT_TRUE(h_->run(b, prOut(0x01, 0x06, 0xBBBB, 0, &p), p).isGood());
  EXPECT_EQ(h_->run(a, cdb10(0x28, 0, 1)).status, Status::ReservationConflict);
  EXPECT_TRUE(h_->run(a, prOut(0x00, 0, 0, 0xA2, &p), p).isGood());
  EXPECT_TRUE(h_->run(a, cdb10(0x2A, 0, 1), Bytes(512)).isGood());
  // CLEAR from A: everything goes; B gets a unit attention.
  EXPECT_TRUE(h_->run(a, prOut(0x03, 0, 0xA2, 0, &p), p).isGood());
  EXPECT_EQ(h_->run(b, Bytes(6, 0)).sense, unitAttention(asc::kReservationsPreempted).fixed());
  keys = h_->run(b, prIn(0x00));
  EXPECT_EQ(getBe32(keys.dataIn.data() + 4), 0u);
  // REPORT CAPABILITIES.
  auto caps = h_->run(a, prIn(0x02));
  EXPECT_EQ(caps.dataIn, (Bytes{0, 8, 0, 0x80, 0xEA, 0x01, 0, 0}));
  // Bad parameter list length, bad type.
  Bytes c = prOut(0x00, 0, 0, 1, &p);
  p.resize(20);
  putBe32(c.data() + 5, 20);
  EXPECT_EQ(h_->run(a, c, p).sense, parameterListLengthError().fixed());
  EXPECT_EQ(h_->run(a, prOut(0x01, 0x02, 0, 0, &p), p).sense, invalidFieldInCdb(2, 3).fixed());
}

TEST_F(OverlayLunTest, AllRegistrantsReservation) {
  auto& a = h_->a_;
  auto& b = h_->b_;
  h_->hello(b);
  Bytes p;
  EXPECT_TRUE(h_->run(a, prOut(0x06, 0, 0, 1, &p), p).isGood());
  EXPECT_TRUE(h_->run(b, prOut(0x06, 0, 0, 2, &p), p).isGood());
  EXPECT_TRUE(h_->run(a, prOut(0x01, 0x07, 1, 0, &p), p).isGood());
  auto rr = h_->run(b, prIn(0x01));
  EXPECT_EQ(getBe64(rr.dataIn.data() + 8), 0u);  // key 0 for all-registrants
  EXPECT_TRUE(h_->run(b, cdb10(0x2A, 0, 1), Bytes(512)).isGood());
  // The reservation survives A unregistering, and goes with the last registrant.
  EXPECT_TRUE(h_->run(a, prOut(0x00, 0, 1, 0, &p), p).isGood());
  EXPECT_EQ(h_->run(a, cdb10(0x2A, 0, 1), Bytes(512)).status, Status::ReservationConflict);
  EXPECT_TRUE(h_->run(b, prOut(0x00, 0, 2, 0, &p), p).isGood());
  EXPECT_TRUE(h_->run(a, cdb10(0x2A, 0, 1), Bytes(512)).isGood());
}

TEST_F(OverlayLunTest, Reserve6) {
  auto& a = h_->a_;
  auto& b = h_->b_;
  h_->hello(b);
  Bytes reserve{0x16, 0, 0, 0, 0, 0}, release{0x17, 0, 0, 0, 0, 0};
  EXPECT_TRUE(h_->run(a, reserve).isGood());
  EXPECT_TRUE(h_->run(a, reserve).isGood());
  EXPECT_EQ(h_->run(b, reserve).status, Status::ReservationConflict);
  EXPECT_EQ(h_->run(b, cdb10(0x28, 0, 1)).status, Status::ReservationConflict);
  EXPECT_TRUE(h_->run(b, inquiryCdb(false, 0)).isGood());
  EXPECT_TRUE(h_->run(b, release).isGood());  // no effect
  EXPECT_EQ(h_->run(b, reserve).status, Status::ReservationConflict);
  h_->lun_->nexusLost(a);
  EXPECT_TRUE(h_->run(b, reserve).isGood());
  EXPECT_TRUE(h_->run(b, release).isGood());
  h_->lun_->reset();
  EXPECT_EQ(senseOf(h_->run(b, reserve)).code, asc::kBusDeviceResetOccurred);
}

// Edge cases on an in-memory device.
TEST(MemLunTest, ReadOnlyDevice) {
  Capabilities caps;
  caps.readOnly = true;
  caps.canTrim = false;
  LunHarness h(std::make_shared<MemDevice>(64, caps));
  h.hello(h.a_);
  EXPECT_EQ(h.run(h.a_, cdb10(0x2A, 0, 1), Bytes(512)).sense, writeProtected().fixed());
  EXPECT_EQ(h.run(h.a_, cdb10(0x41, 0, 1), Bytes(512)).sense, writeProtected().fixed());
  Bytes caw(16, 0);
  caw[0] = 0x89;
  caw[13] = 1;
  EXPECT_EQ(h.run(h.a_, caw, Bytes(1024)).sense, writeProtected().fixed());
  // No thin provisioning advertised: UNMAP does not exist, B2h is empty, no LBPME.
  auto p = unmapParams(0, 1);
  EXPECT_EQ(h.run(h.a_, unmapCdb(p.size()), p).sense, invalidOpcode().fixed());
  EXPECT_EQ(h.run(h.a_, inquiryCdb(true, 0xB2)).dataIn, (Bytes{0, 0xB2, 0, 4, 0, 0, 0, 0}));
  auto b0 = h.run(h.a_, inquiryCdb(true, 0xB0)).dataIn;
  EXPECT_EQ(getBe32(b0.data() + 20), 0u);
  EXPECT_EQ(getBe32(b0.data() + 24), 0u);
  Bytes rc16(16, 0);
  rc16[0] = 0x9E;
  rc16[1] = 0x10;
  rc16[13] = 32;
  EXPECT_EQ(h.run(h.a_, rc16).dataIn[14], 0x00);
  Bytes ms6{0x1A, 0, 0x3F, 0, 0xFF, 0};
  EXPECT_EQ(h.run(h.a_, ms6).dataIn[2], 0x90);
  EXPECT_TRUE(h.run(h.a_, cdb10(0x28, 63, 1)).isGood());
}

TEST(MemLunTest, WriteGranularityIsTheOptimalTransferAndUnmapGranularity) {
  for (auto [granularity, blocks] : {std::pair{512u, 1u}, {4096u, 8u}, {65536u, 128u}}) {
    Capabilities caps;
    caps.writeGranularity = granularity;
    LunHarness h(std::make_shared<MemDevice>(64, caps));
    h.hello(h.a_);
    auto b0 = h.run(h.a_, inquiryCdb(true, 0xB0)).dataIn;
    EXPECT_EQ(getBe16(b0.data() + 6), blocks) << granularity;
    EXPECT_EQ(getBe32(b0.data() + 28), blocks) << granularity;
  }
}

TEST(MemLunTest, FuaAndDeviceErrors) {
  Capabilities caps;
  auto mem = std::make_shared<MemDevice>(64, caps);
  auto faulty = std::make_shared<blockstore::FaultyDevice>(mem);
  LunHarness h(faulty);
  h.hello(h.a_);
  EXPECT_TRUE(h.run(h.a_, cdb16(0x8A, 0, 1, 0x08), Bytes(512)).isGood());
  EXPECT_EQ(mem->fuaWrites.load(), 1);
  faulty->failAfter(blockstore::FaultyDevice::Read, 0, EIO);
  EXPECT_EQ(h.run(h.a_, cdb10(0x28, 0, 1)).sense, mediumError(asc::kUnrecoveredReadError).fixed());
  faulty->failAfter(blockstore::FaultyDevice::Write, 0, EIO);
  EXPECT_EQ(h.run(h.a_, cdb10(0x2A, 0, 1), Bytes(512)).sense, mediumError(asc::kWriteError).fixed());
  faulty->failAfter(blockstore::FaultyDevice::Write, 0, ENOSPC);
  EXPECT_EQ(h.run(h.a_, cdb10(0x2A, 0, 1), Bytes(512)).sense, writeProtected(Asc{0x27, 0x07}).fixed());
  faulty->failAfter(blockstore::FaultyDevice::Flush, 0, EIO);
  EXPECT_EQ(h.run(h.a_, cdb10(0x35, 0, 0)).sense, mediumError(asc::kWriteError).fixed());
  // GET LBA STATUS on a whole-device-sized range; WRITE SAME of zeros deallocates (MemDevice).
  EXPECT_TRUE(h.run(h.a_, cdb10(0x41, 8, 4), Bytes(512)).isGood());
  Bytes gls(16, 0);
  gls[0] = 0x9E;
  gls[1] = 0x12;
  putBe32(gls.data() + 10, 1024);
  auto r = h.run(h.a_, gls);
  ASSERT_TRUE(r.isGood());
  EXPECT_EQ(getBe32(r.dataIn.data()), 4u + 3 * 16);
  EXPECT_EQ(getBe64(r.dataIn.data() + 24), 8u);
  EXPECT_EQ(getBe32(r.dataIn.data() + 32), 4u);
  EXPECT_EQ(r.dataIn[36], 1);
}

TEST(MemLunTest, NoFuaDeviceFlushesInstead) {
  Capabilities caps;
  caps.canFua = false;
  auto mem = std::make_shared<MemDevice>(64, caps);
  LunHarness h(mem);
  h.hello(h.a_);
  EXPECT_TRUE(h.run(h.a_, cdb10(0x2A, 0, 1, 0x08), Bytes(512)).isGood());
  EXPECT_EQ(mem->fuaWrites.load(), 0);
  EXPECT_EQ(mem->flushes.load(), 1);
}

}  // namespace
}  // namespace pxedust::scsi
