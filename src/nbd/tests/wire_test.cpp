// The transmission codec: request headers byte for byte, every check of validateRequest() with the
// errno the spec names for it, the transmission flags derived from device capabilities, and every
// reply and chunk builder against hand-assembled bytes.
#include "nbd/wire/transmission.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

namespace pxedust::nbd::wire {
namespace {

using Bytes = std::vector<std::uint8_t>;

template <std::size_t N>
Bytes bytesOf(const std::array<std::uint8_t, N>& a) {
  return Bytes(a.begin(), a.end());
}

void putBe(Bytes& out, std::uint64_t v, int n) {
  for (int shift = (n - 1) * 8; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

// ---- Request headers ----

TEST(NbdRequestHeader, ParsesTheSpecLayout) {
  // A READ as the Linux kernel sends it: magic, flags, type, cookie, offset, length.
  const Bytes wire = {0x25, 0x60, 0x95, 0x13, 0x00, 0x01, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44,
                      0x55, 0x66, 0x77, 0x88, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00,
                      0x00, 0x02, 0x00, 0x00};
  auto r = parseRequest(wire);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->flags, cmdflag::kFua);
  EXPECT_EQ(r->type, cmd::kRead);
  EXPECT_EQ(r->cookie, 0x1122334455667788ull);
  EXPECT_EQ(r->offset, 0x100000u);
  EXPECT_EQ(r->length, 0x20000u);
  EXPECT_EQ(bytesOf(serializeRequest(*r)), wire);
}

TEST(NbdRequestHeader, RoundTripsExtremes) {
  Request req{0xffff, 0xffff, UINT64_MAX, UINT64_MAX, UINT32_MAX};
  auto wire = serializeRequest(req);
  auto r = parseRequest(wire);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, req);
}

TEST(NbdRequestHeader, ShortHeaderIsAnError) {
  auto wire = serializeRequest({});
  auto r = parseRequest(std::span(wire).first(27));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, EINVAL);
}

TEST(NbdRequestHeader, BadMagicIsAProtocolError) {
  for (std::uint32_t magic : {0u, 0x12560953u /* historic */, kSimpleReplyMagic, kExtendedRequestMagic}) {
    auto wire = serializeRequest({});
    wire[0] = static_cast<std::uint8_t>(magic >> 24);
    wire[1] = static_cast<std::uint8_t>(magic >> 16);
    wire[2] = static_cast<std::uint8_t>(magic >> 8);
    wire[3] = static_cast<std::uint8_t>(magic);
    auto r = parseRequest(wire);
    ASSERT_FALSE(r.ok()) << std::hex << magic;
    EXPECT_EQ(r.error().code, EPROTO);
  }
}

TEST(NbdRequestHeader, ExtraBytesAreNotLookedAt) {
  auto wire = serializeRequest({0, cmd::kWrite, 7, 512, 4});
  Bytes withPayload(wire.begin(), wire.end());
  withPayload.insert(withPayload.end(), {1, 2, 3, 4});
  auto r = parseRequest(withPayload);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->length, 4u);
  EXPECT_EQ(payloadLength(*r), 4u);
  EXPECT_EQ(payloadLength(Request{0, cmd::kRead, 7, 512, 4}), 0u);
}

// ---- Validation ----

constexpr std::uint64_t kSize = 1u << 30;

// Every feature advertised: the checks that remain are the ones under test.
ExportProperties fullExport() {
  ExportProperties p;
  p.size = kSize;
  DeviceCapabilities caps;
  caps.canFlush = caps.canFua = caps.canTrim = caps.canWriteZeroes = caps.canFastZero = true;
  caps.canMultiConn = caps.canCache = caps.canDf = true;
  p.flags = transmissionFlags(caps);
  p.structuredReplies = true;
  p.metaContexts = true;
  return p;
}

Verdict check(const ExportProperties& p, std::uint16_t type, std::uint64_t offset, std::uint32_t length,
              std::uint16_t flags = 0, bool shuttingDown = false) {
  return validateRequest(p, Request{flags, type, 0x42, offset, length}, shuttingDown);
}

void expectAccept(const Verdict& v) {
  EXPECT_EQ(v.kind, Verdict::Kind::Accept) << v.reason;
  EXPECT_EQ(v.error, Errno::None);
  EXPECT_EQ(v.drain, 0u);
}

void expectError(const Verdict& v, Errno e, std::uint32_t drain = 0) {
  EXPECT_EQ(v.kind, Verdict::Kind::ErrorReply) << v.reason;
  EXPECT_EQ(v.error, e) << errnoName(v.error) << " (" << v.reason << ")";
  EXPECT_EQ(v.drain, drain);
  EXPECT_FALSE(v.reason.empty());
}

TEST(NbdValidate, EveryCommandAcceptedWhenAdvertised) {
  auto p = fullExport();
  expectAccept(check(p, cmd::kRead, 0, 4096));
  expectAccept(check(p, cmd::kWrite, 4096, 4096));
  expectAccept(check(p, cmd::kFlush, 0, 0));
  expectAccept(check(p, cmd::kTrim, 0, 1u << 20));
  expectAccept(check(p, cmd::kCache, 0, 1u << 20));
  expectAccept(check(p, cmd::kWriteZeroes, 0, 1u << 20));
  expectAccept(check(p, cmd::kBlockStatus, 0, 1u << 20));
  expectAccept(check(p, cmd::kDisc, 0, 0));
}

TEST(NbdValidate, EveryDocumentedFlagAcceptedWhenAdvertised) {
  auto p = fullExport();
  using namespace cmdflag;
  expectAccept(check(p, cmd::kRead, 0, 512, kFua | kDf));
  expectAccept(check(p, cmd::kWrite, 0, 512, kFua));
  expectAccept(check(p, cmd::kFlush, 0, 0, kFua));  // "valid for all commands", existing clients do it
  expectAccept(check(p, cmd::kTrim, 0, 512, kFua));
  expectAccept(check(p, cmd::kCache, 0, 512, kFua));
  expectAccept(check(p, cmd::kWriteZeroes, 0, 512, kFua | kNoHole | kFastZero));
  expectAccept(check(p, cmd::kBlockStatus, 0, 512, kFua | kReqOne));
}

TEST(NbdValidate, DiscIsAlwaysAccepted) {
  // There is no reply to NBD_CMD_DISC, so nothing to refuse it with, whatever its fields.
  ExportProperties readOnly;
  readOnly.flags = txflag::kHasFlags | txflag::kReadOnly;
  expectAccept(check(readOnly, cmd::kDisc, 5, 5, 0xffff));
  expectAccept(check(fullExport(), cmd::kDisc, 0, 0, 0, /*shuttingDown=*/true));
}

TEST(NbdValidate, UnknownCommandIsEinval) {
  auto p = fullExport();
  for (std::uint16_t type : {cmd::kResize, std::uint16_t{9}, std::uint16_t{0x100}, std::uint16_t{0xffff}}) {
    expectError(check(p, type, 0, 0), Errno::Inval);
  }
}

TEST(NbdValidate, ShuttingDownIsEshutdownAndDrainsAWrite) {
  auto p = fullExport();
  expectError(check(p, cmd::kRead, 0, 512, 0, true), Errno::Shutdown);
  expectError(check(p, cmd::kWrite, 0, 512, 0, true), Errno::Shutdown, 512);
  expectError(check(p, 0x77, 0, 512, 0, true), Errno::Shutdown);
}

TEST(NbdValidate, ReadOnlyRefusesWritesWithEperm) {
  DeviceCapabilities caps;
  caps.readOnly = true;
  caps.canTrim = caps.canWriteZeroes = caps.canFlush = true;
  ExportProperties p;
  p.size = kSize;
  p.flags = transmissionFlags(caps);
  expectError(check(p, cmd::kWrite, 0, 4096), Errno::Perm, 4096);
  expectError(check(p, cmd::kTrim, 0, 4096), Errno::Perm);
  expectError(check(p, cmd::kWriteZeroes, 0, 4096), Errno::Perm);
  // EPERM even past the end: the command is refused as a whole.
  expectError(check(p, cmd::kWrite, kSize, 4096), Errno::Perm, 4096);
  expectAccept(check(p, cmd::kRead, 0, 4096));
  expectAccept(check(p, cmd::kFlush, 0, 0));
}

TEST(NbdValidate, CommandsNotAdvertisedAreEinval) {
  ExportProperties p;  // HAS_FLAGS only, simple replies
  p.size = kSize;
  expectError(check(p, cmd::kFlush, 0, 0), Errno::Inval);
  expectError(check(p, cmd::kTrim, 0, 512), Errno::Inval);
  expectError(check(p, cmd::kWriteZeroes, 0, 512), Errno::Inval);
  expectError(check(p, cmd::kCache, 0, 512), Errno::Inval);
  expectError(check(p, cmd::kBlockStatus, 0, 512), Errno::Inval);
  expectAccept(check(p, cmd::kRead, 0, 512));
  expectAccept(check(p, cmd::kWrite, 0, 512));
}

TEST(NbdValidate, BlockStatusNeedsStructuredRepliesAndAContext) {
  auto p = fullExport();
  p.metaContexts = false;
  expectError(check(p, cmd::kBlockStatus, 0, 512), Errno::Inval);
  p = fullExport();
  p.structuredReplies = false;
  expectError(check(p, cmd::kBlockStatus, 0, 512), Errno::Inval);
}

TEST(NbdValidate, UnknownOrMisplacedFlagsAreEinval) {
  auto p = fullExport();
  using namespace cmdflag;
  expectError(check(p, cmd::kRead, 0, 512, kPayloadLen), Errno::Inval);
  expectError(check(p, cmd::kRead, 0, 512, 0x8000), Errno::Inval);
  expectError(check(p, cmd::kRead, 0, 512, kReqOne), Errno::Inval);
  expectError(check(p, cmd::kRead, 0, 512, kNoHole), Errno::Inval);
  expectError(check(p, cmd::kWrite, 0, 512, kDf), Errno::Inval, 512);
  expectError(check(p, cmd::kWrite, 0, 512, kNoHole), Errno::Inval, 512);
  expectError(check(p, cmd::kTrim, 0, 512, kFastZero), Errno::Inval);
  expectError(check(p, cmd::kCache, 0, 512, kNoHole), Errno::Inval);
  expectError(check(p, cmd::kFlush, 0, 0, kReqOne), Errno::Inval);
  expectError(check(p, cmd::kBlockStatus, 0, 512, kDf), Errno::Inval);
  expectError(check(p, cmd::kWriteZeroes, 0, 512, kReqOne), Errno::Inval);
}

TEST(NbdValidate, FlagsNeedTheirTransmissionFlag) {
  using namespace cmdflag;
  auto p = fullExport();
  p.flags = static_cast<std::uint16_t>(p.flags & ~txflag::kSendFua);
  expectError(check(p, cmd::kWrite, 0, 512, kFua), Errno::Inval, 512);
  expectError(check(p, cmd::kRead, 0, 512, kFua), Errno::Inval);
  p = fullExport();
  p.flags = static_cast<std::uint16_t>(p.flags & ~txflag::kSendDf);
  expectError(check(p, cmd::kRead, 0, 512, kDf), Errno::Inval);
  p = fullExport();
  p.flags = static_cast<std::uint16_t>(p.flags & ~txflag::kSendFastZero);
  expectError(check(p, cmd::kWriteZeroes, 0, 512, kFastZero), Errno::Inval);
  expectAccept(check(p, cmd::kWriteZeroes, 0, 512, kNoHole));
}

TEST(NbdValidate, FlushMustHaveZeroOffsetAndLength) {
  auto p = fullExport();
  expectError(check(p, cmd::kFlush, 512, 0), Errno::Inval);
  expectError(check(p, cmd::kFlush, 0, 512), Errno::Inval);
}

TEST(NbdValidate, RangePastTheEndGetsTheErrnoOfItsCommand) {
  auto p = fullExport();
  // Up to the end is fine, one byte more is not.
  expectAccept(check(p, cmd::kRead, kSize - 512, 512));
  expectAccept(check(p, cmd::kRead, kSize, 0));
  expectError(check(p, cmd::kWrite, kSize - 512, 513), Errno::NoSpc, 513);
  expectError(check(p, cmd::kWriteZeroes, kSize - 512, 513), Errno::NoSpc);
  expectError(check(p, cmd::kRead, kSize - 512, 513), Errno::Inval);
  expectError(check(p, cmd::kTrim, kSize - 512, 513), Errno::Inval);
  expectError(check(p, cmd::kCache, kSize - 512, 513), Errno::Inval);
  expectError(check(p, cmd::kBlockStatus, kSize - 512, 513), Errno::Inval);
  expectError(check(p, cmd::kRead, kSize + 1, 0), Errno::Inval);
}

TEST(NbdValidate, OffsetPlusLengthNeverWraps) {
  auto p = fullExport();
  p.size = UINT64_MAX;
  // offset + length would wrap to a small number if it were added.
  expectError(check(p, cmd::kRead, UINT64_MAX - 10, 512), Errno::Inval);
  expectError(check(p, cmd::kWrite, UINT64_MAX - 10, 512), Errno::NoSpc, 512);
  expectAccept(check(p, cmd::kRead, UINT64_MAX - 512, 512));
  p = fullExport();
  expectError(check(p, cmd::kTrim, UINT64_MAX, UINT32_MAX), Errno::Inval);
}

TEST(NbdValidate, MinimumBlockSizeAlignment) {
  auto p = fullExport();
  p.blockSizes = {512, 4096, 1u << 20};
  expectAccept(check(p, cmd::kRead, 512, 1024));
  expectError(check(p, cmd::kRead, 1, 512), Errno::Inval);
  expectError(check(p, cmd::kRead, 512, 100), Errno::Inval);
  expectError(check(p, cmd::kWrite, 512, 100), Errno::Inval, 100);
  expectError(check(p, cmd::kTrim, 100, 512), Errno::Inval);
  expectError(check(p, cmd::kBlockStatus, 0, 100), Errno::Inval);
}

TEST(NbdValidate, MaximumPayload) {
  auto p = fullExport();
  p.blockSizes = {1, 4096, 1u << 20};
  expectAccept(check(p, cmd::kRead, 0, 1u << 20));
  expectAccept(check(p, cmd::kWrite, 0, 1u << 20));
  // A READ over the maximum: EOVERFLOW with structured replies (retry smaller), EINVAL without.
  expectError(check(p, cmd::kRead, 0, (1u << 20) + 1), Errno::Overflow);
  p.structuredReplies = false;
  p.metaContexts = false;
  expectError(check(p, cmd::kRead, 0, (1u << 20) + 1), Errno::Inval);
  // A WRITE over the maximum is drained while the spec says that is no denial of service (2^25).
  expectError(check(p, cmd::kWrite, 0, (1u << 20) + 1), Errno::Inval, (1u << 20) + 1);
  expectError(check(p, cmd::kWrite, 0, 1u << 25), Errno::Inval, 1u << 25);
  // Commands without a payload are not held to it.
  p = fullExport();
  p.blockSizes = {1, 4096, 1u << 20};
  expectAccept(check(p, cmd::kTrim, 0, 1u << 28));
  expectAccept(check(p, cmd::kWriteZeroes, 0, 1u << 28, cmdflag::kFastZero));
  expectAccept(check(p, cmd::kCache, 0, 1u << 28));
  expectAccept(check(p, cmd::kBlockStatus, 0, 1u << 29));  // a hint, larger than any payload
}

TEST(NbdValidate, HugeRefusedWriteDisconnects) {
  auto p = fullExport();
  p.blockSizes = {1, 4096, 1u << 20};
  auto v = check(p, cmd::kWrite, 0, (1u << 25) + 1);
  EXPECT_EQ(v.kind, Verdict::Kind::Disconnect);
  // The same length within what we advertised is drained, even when refused for another reason.
  p.blockSizes.maximum = UINT32_MAX;
  p.flags |= txflag::kReadOnly;
  expectError(check(p, cmd::kWrite, 0, UINT32_MAX - 4095), Errno::Perm, UINT32_MAX - 4095);
}

TEST(NbdValidate, ZeroLengthRequestsAreAccepted) {
  auto p = fullExport();
  for (auto type : {cmd::kRead, cmd::kWrite, cmd::kTrim, cmd::kCache, cmd::kWriteZeroes, cmd::kBlockStatus}) {
    expectAccept(check(p, type, 4096, 0));
  }
}

// ---- Transmission flags ----

TEST(NbdTransmissionFlags, FromCapabilities) {
  EXPECT_EQ(transmissionFlags(DeviceCapabilities{.canDf = false}), txflag::kHasFlags);
  DeviceCapabilities all{false, true, true, true, true, true, true, true, true};
  EXPECT_EQ(transmissionFlags(all), txflag::kHasFlags | txflag::kSendFlush | txflag::kSendFua | txflag::kSendTrim |
                                        txflag::kSendWriteZeroes | txflag::kSendDf | txflag::kCanMultiConn |
                                        txflag::kSendCache | txflag::kSendFastZero);
}

TEST(NbdTransmissionFlags, ReadOnlyAdvertisesNoWriteFeature) {
  DeviceCapabilities ro{true, true, true, true, true, true, true, true, false};
  EXPECT_EQ(transmissionFlags(ro),
            txflag::kHasFlags | txflag::kReadOnly | txflag::kSendFlush | txflag::kCanMultiConn | txflag::kSendCache);
}

TEST(NbdTransmissionFlags, FastZeroOnlyWithWriteZeroesAndNeverRotational) {
  DeviceCapabilities c;
  c.canFastZero = true;
  c.canDf = false;
  EXPECT_EQ(transmissionFlags(c), txflag::kHasFlags);
  for (int bits = 0; bits < 512; ++bits) {
    DeviceCapabilities d{(bits & 1) != 0,  (bits & 2) != 0,  (bits & 4) != 0,  (bits & 8) != 0,  (bits & 16) != 0,
                         (bits & 32) != 0, (bits & 64) != 0, (bits & 128) != 0, (bits & 256) != 0};
    auto f = transmissionFlags(d);
    EXPECT_NE(f & txflag::kHasFlags, 0);
    EXPECT_EQ(f & txflag::kRotational, 0);
    if ((f & txflag::kSendFastZero) != 0) {
      EXPECT_NE(f & txflag::kSendWriteZeroes, 0);
    }
  }
}

TEST(NbdErrno, PosixValuesMapOntoTheSpecsSet) {
  EXPECT_EQ(toNbdError(0), Errno::None);
  EXPECT_EQ(toNbdError(EPERM), Errno::Perm);
  EXPECT_EQ(toNbdError(EROFS), Errno::Perm);
  EXPECT_EQ(toNbdError(EIO), Errno::Io);
  EXPECT_EQ(toNbdError(ENOMEM), Errno::NoMem);
  EXPECT_EQ(toNbdError(EINVAL), Errno::Inval);
  EXPECT_EQ(toNbdError(ERANGE), Errno::Inval);
  EXPECT_EQ(toNbdError(ENOSPC), Errno::NoSpc);
  EXPECT_EQ(toNbdError(EDQUOT), Errno::NoSpc);
  EXPECT_EQ(toNbdError(EFBIG), Errno::NoSpc);
  EXPECT_EQ(toNbdError(EOVERFLOW), Errno::Overflow);
  EXPECT_EQ(toNbdError(ENOTSUP), Errno::NotSup);
  EXPECT_EQ(toNbdError(EOPNOTSUPP), Errno::NotSup);
  EXPECT_EQ(toNbdError(ESHUTDOWN), Errno::Shutdown);
  EXPECT_EQ(toNbdError(ENOENT), Errno::Io);
  // The wire values are the spec's.
  EXPECT_EQ(static_cast<std::uint32_t>(Errno::Perm), 1u);
  EXPECT_EQ(static_cast<std::uint32_t>(Errno::Io), 5u);
  EXPECT_EQ(static_cast<std::uint32_t>(Errno::NoMem), 12u);
  EXPECT_EQ(static_cast<std::uint32_t>(Errno::Inval), 22u);
  EXPECT_EQ(static_cast<std::uint32_t>(Errno::NoSpc), 28u);
  EXPECT_EQ(static_cast<std::uint32_t>(Errno::Overflow), 75u);
  EXPECT_EQ(static_cast<std::uint32_t>(Errno::NotSup), 95u);
  EXPECT_EQ(static_cast<std::uint32_t>(Errno::Shutdown), 108u);
}

TEST(NbdBlockSizes, SpecRules) {
  EXPECT_TRUE(validBlockSizes({}));
  EXPECT_TRUE(validBlockSizes({512, 4096, 1u << 25}));
  EXPECT_TRUE(validBlockSizes({1u << 16, 1u << 16, 1u << 16}));
  EXPECT_TRUE(validBlockSizes({1, 512, UINT32_MAX}));
  EXPECT_FALSE(validBlockSizes({0, 4096, 1u << 25}));        // minimum not a power of 2
  EXPECT_FALSE(validBlockSizes({3, 4096, 1u << 25}));
  EXPECT_FALSE(validBlockSizes({1u << 17, 1u << 17, 1u << 25}));  // minimum over 2^16
  EXPECT_FALSE(validBlockSizes({1, 256, 1u << 25}));        // preferred under 512
  EXPECT_FALSE(validBlockSizes({4096, 2048, 1u << 25}));    // preferred under minimum
  EXPECT_FALSE(validBlockSizes({1, 3000, 1u << 25}));       // preferred not a power of 2
  EXPECT_FALSE(validBlockSizes({1, 4096, 4095}));           // maximum under preferred
}

// ---- Replies ----

TEST(NbdReplies, SimpleReply) {
  Bytes expect;
  putBe(expect, kSimpleReplyMagic, 4);
  putBe(expect, 22, 4);
  putBe(expect, 0x0102030405060708ull, 8);
  EXPECT_EQ(bytesOf(simpleReply(0x0102030405060708ull, Errno::Inval)), expect);
  EXPECT_EQ(bytesOf(simpleReply(1, Errno::None))[7], 0);
}

Bytes chunkHead(std::uint16_t flags, std::uint16_t type, std::uint64_t cookie, std::uint32_t length) {
  Bytes b;
  putBe(b, kStructuredReplyMagic, 4);
  putBe(b, flags, 2);
  putBe(b, type, 2);
  putBe(b, cookie, 8);
  putBe(b, length, 4);
  return b;
}

TEST(NbdReplies, ChunkHeaderAndNone) {
  EXPECT_EQ(bytesOf(chunkHeader(9, 0, chunk::kOffsetData, 100)), chunkHead(0, chunk::kOffsetData, 9, 100));
  EXPECT_EQ(bytesOf(noneChunk(9)), chunkHead(replyflag::kDone, chunk::kNone, 9, 0));
}

TEST(NbdReplies, OffsetData) {
  auto h = offsetDataHeader(5, 0x200, 4096, true);
  ASSERT_TRUE(h.ok());
  Bytes expect = chunkHead(replyflag::kDone, chunk::kOffsetData, 5, 4096 + 8);
  putBe(expect, 0x200, 8);
  EXPECT_EQ(bytesOf(*h), expect);
  EXPECT_FALSE(offsetDataHeader(5, 0, 0, true).ok());
  EXPECT_FALSE(offsetDataHeader(5, 0, UINT32_MAX - 7, true).ok());
  auto max = offsetDataHeader(5, 0, UINT32_MAX - 8, false);
  ASSERT_TRUE(max.ok());
  EXPECT_EQ((*max)[4], 0);  // no DONE flag
  EXPECT_EQ((*max)[5], 0);
}

TEST(NbdReplies, OffsetHole) {
  auto h = offsetHoleChunk(5, 0x1000, 0x2000, false);
  ASSERT_TRUE(h.ok());
  Bytes expect = chunkHead(0, chunk::kOffsetHole, 5, 12);
  putBe(expect, 0x1000, 8);
  putBe(expect, 0x2000, 4);
  EXPECT_EQ(bytesOf(*h), expect);
  EXPECT_FALSE(offsetHoleChunk(5, 0, 0, true).ok());
}

TEST(NbdReplies, BlockStatus) {
  const BlockDescriptor ext[] = {{65536, state::kHole | state::kZero}, {4096, 0}};
  auto c = blockStatusChunk(3, 1, ext, true);
  ASSERT_TRUE(c.ok());
  Bytes expect = chunkHead(replyflag::kDone, chunk::kBlockStatus, 3, 4 + 16);
  putBe(expect, 1, 4);
  putBe(expect, 65536, 4);
  putBe(expect, 3, 4);
  putBe(expect, 4096, 4);
  putBe(expect, 0, 4);
  EXPECT_EQ(*c, expect);

  EXPECT_FALSE(blockStatusChunk(3, 1, {}, true).ok());
  const BlockDescriptor zero[] = {{512, 0}, {0, 0}};
  EXPECT_FALSE(blockStatusChunk(3, 1, zero, true).ok());
  std::vector<BlockDescriptor> many(kMaxExtentsPerChunk + 1, BlockDescriptor{512, 0});
  EXPECT_FALSE(blockStatusChunk(3, 1, many, true).ok());
  many.pop_back();
  auto biggest = blockStatusChunk(3, 1, many, true);
  ASSERT_TRUE(biggest.ok());
  EXPECT_EQ(biggest->size(), kChunkHeaderSize + 4 + 8 * kMaxExtentsPerChunk);
}

TEST(NbdReplies, ErrorAndErrorOffset) {
  auto e = errorChunk(8, Errno::Io, "disk on fire", true);
  ASSERT_TRUE(e.ok());
  Bytes expect = chunkHead(replyflag::kDone, chunk::kError, 8, 6 + 12);
  putBe(expect, 5, 4);
  putBe(expect, 12, 2);
  for (char ch : std::string("disk on fire")) expect.push_back(static_cast<std::uint8_t>(ch));
  EXPECT_EQ(*e, expect);

  auto o = errorOffsetChunk(8, Errno::Io, "", 0x400, false);
  ASSERT_TRUE(o.ok());
  expect = chunkHead(0, chunk::kErrorOffset, 8, 14);
  putBe(expect, 5, 4);
  putBe(expect, 0, 2);
  putBe(expect, 0x400, 8);
  EXPECT_EQ(*o, expect);

  EXPECT_FALSE(errorChunk(8, Errno::None, "x", true).ok());
  EXPECT_FALSE(errorOffsetChunk(8, Errno::None, "x", 0, true).ok());
}

TEST(NbdReplies, ErrorMessageCutAt4096OnAUtf8Boundary) {
  std::string msg(4095, 'a');
  msg += "\xc3\xa9";  // é straddles the limit
  msg += std::string(100, 'b');
  auto e = errorChunk(1, Errno::Inval, msg, true);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->size(), kChunkHeaderSize + 6 + 4095);
  EXPECT_EQ(clampUtf8(msg).size(), 4095u);
  EXPECT_EQ(clampUtf8(std::string(5000, 'x')).size(), 4096u);
  EXPECT_EQ(clampUtf8("short"), "short");
}

TEST(NbdReplies, ErrorReplyFollowsTheNegotiation) {
  auto simple = errorReply(0xabc, Errno::Perm, false, "ignored in a simple reply");
  ASSERT_TRUE(simple.ok());
  EXPECT_EQ(*simple, bytesOf(simpleReply(0xabc, Errno::Perm)));
  auto structured = errorReply(0xabc, Errno::Perm, true, "read-only");
  ASSERT_TRUE(structured.ok());
  EXPECT_EQ(*structured, *errorChunk(0xabc, Errno::Perm, "read-only", true));
  EXPECT_FALSE(errorReply(1, Errno::None, true).ok());
  EXPECT_FALSE(errorReply(1, Errno::None, false).ok());
}

TEST(NbdNames, EveryCodeHasAName) {
  EXPECT_EQ(errnoName(Errno::Shutdown), "NBD_ESHUTDOWN");
  EXPECT_EQ(commandName(cmd::kBlockStatus), "NBD_CMD_BLOCK_STATUS");
  EXPECT_EQ(commandName(0x4242), "NBD_CMD_?");
  EXPECT_EQ(optionName(opt::kSetMetaContext), "NBD_OPT_SET_META_CONTEXT");
  EXPECT_EQ(replyTypeName(rep::kErrBlockSizeReqd), "NBD_REP_ERR_BLOCK_SIZE_REQD");
}

}  // namespace
}  // namespace pxedust::nbd::wire
