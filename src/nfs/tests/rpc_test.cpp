// ONC RPC (RFC 5531): the TCP record framer in any split and at every limit, the call header as a
// Linux client sends it (a GETATTR with AUTH_SYS, assembled by hand), the outcome for every kind
// of bad header, and the reply headers byte for byte.
#include "nfs/wire/rpc.hpp"

#include <gtest/gtest.h>

#include <array>

#include "nfs/tests/test_util.hpp"
#include "nfs/wire/nfs3.hpp"

namespace pxedust::nfs::wire {
namespace {

using testing::Bytes;
using testing::put32;

// An NFSv3 GETATTR call over TCP, as the Linux client lays it out: record mark, RPC call header,
// AUTH_SYS credential (machine "client1", uid 0, gid 0, one supplementary gid 0), AUTH_NONE
// verifier, then GETATTR3args (an 8-byte handle).
const Bytes kGetattrCall = {
    0x80, 0x00, 0x00, 0x54,  // record mark: last fragment, 84 bytes
    0x6c, 0x0a, 0x1f, 0x2e,  // xid
    0x00, 0x00, 0x00, 0x00,  // CALL
    0x00, 0x00, 0x00, 0x02,  // rpcvers 2
    0x00, 0x01, 0x86, 0xa3,  // program 100003 (NFS)
    0x00, 0x00, 0x00, 0x03,  // version 3
    0x00, 0x00, 0x00, 0x01,  // procedure 1 (GETATTR)
    0x00, 0x00, 0x00, 0x01,  // cred flavour AUTH_SYS
    0x00, 0x00, 0x00, 0x20,  // cred body: 32 bytes
    0x5f, 0x3e, 0x2a, 0x10,  //   stamp
    0x00, 0x00, 0x00, 0x07,  //   machinename length 7
    'c', 'l', 'i', 'e',      //
    'n', 't', '1', 0x00,     //   ... and one byte of padding
    0x00, 0x00, 0x00, 0x00,  //   uid 0
    0x00, 0x00, 0x00, 0x00,  //   gid 0
    0x00, 0x00, 0x00, 0x01,  //   one gid
    0x00, 0x00, 0x00, 0x00,  //   gid 0
    0x00, 0x00, 0x00, 0x00,  // verf flavour AUTH_NONE
    0x00, 0x00, 0x00, 0x00,  // verf body: 0 bytes
    0x00, 0x00, 0x00, 0x08,  // nfs_fh3: 8 bytes
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
};

// Its answer: GETATTR3resok with a directory's attributes.
const Bytes kGetattrReply = {
    0x80, 0x00, 0x00, 0x70,  // record mark: last fragment, 112 bytes
    0x6c, 0x0a, 0x1f, 0x2e,  // xid
    0x00, 0x00, 0x00, 0x01,  // REPLY
    0x00, 0x00, 0x00, 0x00,  // MSG_ACCEPTED
    0x00, 0x00, 0x00, 0x00,  // verf AUTH_NONE
    0x00, 0x00, 0x00, 0x00,  //   empty
    0x00, 0x00, 0x00, 0x00,  // SUCCESS
    0x00, 0x00, 0x00, 0x00,  // NFS3_OK
    0x00, 0x00, 0x00, 0x02,  // type NF3DIR
    0x00, 0x00, 0x01, 0xed,  // mode 0755
    0x00, 0x00, 0x00, 0x12,  // nlink 18
    0x00, 0x00, 0x00, 0x00,  // uid
    0x00, 0x00, 0x00, 0x00,  // gid
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,  // size 4096
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,  // used 4096
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // rdev
    0x00, 0x00, 0x00, 0x00, 0xca, 0xfe, 0x00, 0x01,  // fsid
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,  // fileid 2
    0x65, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,  // atime
    0x65, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,  // mtime
    0x65, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03,  // ctime
};

Fattr3 rootAttr() {
  Fattr3 a;
  a.type = Ftype3::Dir;
  a.mode = 0755;
  a.nlink = 18;
  a.size = 4096;
  a.used = 4096;
  a.fsid = 0xcafe0001;
  a.fileid = 2;
  a.atime = {0x65000000, 1};
  a.mtime = {0x65000001, 2};
  a.ctime = {0x65000002, 3};
  return a;
}

std::span<const std::uint8_t> recordOf(RecordFramer& f, std::span<const std::uint8_t> in) {
  auto r = f.feed(in);
  EXPECT_EQ(r.status, RecordStatus::Record);
  EXPECT_EQ(r.consumed, in.size());
  return f.record();
}

TEST(NfsRpcKnownAnswer, DecodesLinuxGetattrCall) {
  RecordFramer framer;
  auto record = recordOf(framer, kGetattrCall);
  ASSERT_EQ(record.size(), 84u);
  CallOutcome o = decodeCall(record);
  ASSERT_EQ(o.action, CallOutcome::Action::Dispatch) << o.why;
  EXPECT_EQ(o.call.xid, 0x6c0a1f2eu);
  EXPECT_EQ(o.call.program, kNfsProgram);
  EXPECT_EQ(o.call.version, 3u);
  EXPECT_EQ(o.call.procedure, nfsproc::kGetattr);
  EXPECT_EQ(o.call.credFlavor, authflavor::kSys);
  ASSERT_TRUE(o.call.sys.has_value());
  EXPECT_EQ(o.call.sys->stamp, 0x5f3e2a10u);
  EXPECT_EQ(o.call.sys->machineName, "client1");
  EXPECT_EQ(o.call.sys->uid, 0u);
  EXPECT_EQ(o.call.sys->gidCount, 1u);
  auto check = checkDispatch(o.call.program, o.call.version, o.call.procedure);
  ASSERT_EQ(check.stat, AcceptStat::Success);
  EXPECT_EQ(check.proc->name, "NFSPROC3_GETATTR");
  auto args = decodeFhArgs(o.call.args);
  ASSERT_TRUE(args.ok());
  EXPECT_EQ(testing::toBytes(args->object), Bytes({1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(NfsRpcKnownAnswer, EncodesGetattrReply) {
  std::array<std::uint8_t, 256> buf{};
  XdrWriter w{std::span(buf).subspan(kRecordMarkSize)};
  encodeReplyHeader(w, ReplyHeader::accepted(0x6c0a1f2e, AcceptStat::Success));
  encodeGetattrOk(w, rootAttr());
  ASSERT_TRUE(w.ok());
  auto mark = recordMark(static_cast<std::uint32_t>(w.size()));
  std::copy(mark.begin(), mark.end(), buf.begin());
  EXPECT_EQ(Bytes(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(kRecordMarkSize + w.size())), kGetattrReply);
  // And a client reads the attributes back.
  XdrReader r{std::span(kGetattrReply).subspan(28)};
  EXPECT_EQ(r.u32(), 0u);
  EXPECT_EQ(readFattr3(r), rootAttr());
  EXPECT_TRUE(r.ok());
}

TEST(NfsRpcKnownAnswer, EncodeCallHeaderMatchesTheCapture) {
  AuthSys sys;
  sys.stamp = 0x5f3e2a10;
  sys.machineName = "client1";
  sys.gidCount = 1;
  std::array<std::uint8_t, 128> buf{};
  XdrWriter w(buf);
  encodeCallHeader(w, 0x6c0a1f2e, kNfsProgram, 3, nfsproc::kGetattr, &sys);
  const std::array<std::uint8_t, 8> fh{1, 2, 3, 4, 5, 6, 7, 8};
  writeFh3(w, fh);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(testing::toBytes(w.written()), Bytes(kGetattrCall.begin() + 4, kGetattrCall.end()));
}

TEST(NfsRpcKnownAnswer, UdpDatagramIsOneRecordWithoutAMark) {
  CallOutcome o = decodeCall(std::span(kGetattrCall).subspan(kRecordMarkSize));
  ASSERT_EQ(o.action, CallOutcome::Action::Dispatch) << o.why;
  EXPECT_EQ(o.call.procedure, nfsproc::kGetattr);
  EXPECT_EQ(o.call.args.size(), 12u);
}

// ---- Record framer ----

TEST(NfsRecordFramer, ResumesAtEverySplit) {
  for (std::size_t cut = 0; cut <= kGetattrCall.size(); ++cut) {
    RecordFramer f;
    auto first = f.feed(std::span(kGetattrCall).first(cut));
    EXPECT_EQ(first.consumed, cut);
    if (cut < kGetattrCall.size()) {
      EXPECT_EQ(first.status, RecordStatus::NeedMore) << cut;
      auto second = f.feed(std::span(kGetattrCall).subspan(cut));
      EXPECT_EQ(second.status, RecordStatus::Record) << cut;
    } else {
      EXPECT_EQ(first.status, RecordStatus::Record);
    }
    EXPECT_EQ(testing::toBytes(f.record()), Bytes(kGetattrCall.begin() + 4, kGetattrCall.end()));
    EXPECT_TRUE(f.idle());
  }
}

TEST(NfsRecordFramer, JoinsFragmentsAndStopsAfterEachRecord) {
  Bytes stream = {0x00, 0x00, 0x00, 0x02, 'a', 'b', 0x00, 0x00, 0x00, 0x00,  // empty non-last fragment
                  0x80, 0x00, 0x00, 0x01, 'c', 0x80, 0x00, 0x00, 0x03, 'x', 'y', 'z'};
  RecordFramer f;
  auto r1 = f.feed(stream);
  ASSERT_EQ(r1.status, RecordStatus::Record);
  EXPECT_EQ(r1.consumed, 15u);
  EXPECT_EQ(testing::toBytes(f.record()), Bytes({'a', 'b', 'c'}));
  auto r2 = f.feed(std::span(stream).subspan(r1.consumed));
  ASSERT_EQ(r2.status, RecordStatus::Record);
  EXPECT_EQ(testing::toBytes(f.record()), Bytes({'x', 'y', 'z'}));
}

TEST(NfsRecordFramer, TruncatedMarkNeedsMore) {
  const Bytes partial = {0x80, 0x00, 0x00};
  RecordFramer f;
  auto r = f.feed(partial);
  EXPECT_EQ(r.status, RecordStatus::NeedMore);
  EXPECT_EQ(r.consumed, 3u);
  EXPECT_FALSE(f.idle());
}

TEST(NfsRecordFramer, HugeFragmentIsRefusedFromItsMark) {
  for (std::uint32_t word : {0x7fffffffu, 0xffffffffu, kDefaultMaxRecord + 1, kLastFragment | (kDefaultMaxRecord + 1)}) {
    Bytes mark;
    put32(mark, word);
    RecordFramer f;
    auto r = f.feed(mark);
    EXPECT_EQ(r.status, RecordStatus::TooLarge) << word;
    EXPECT_TRUE(f.broken());
    EXPECT_EQ(f.feed(mark).status, RecordStatus::TooLarge);  // and stays refused
  }
}

TEST(NfsRecordFramer, CapCountsEveryFragmentOfARecord) {
  RecordFramer f(RecordLimits{.maxRecord = 10, .maxEmptyFragments = 4});
  Bytes s = {0x00, 0x00, 0x00, 0x06, 1, 2, 3, 4, 5, 6};
  EXPECT_EQ(f.feed(s).status, RecordStatus::NeedMore);
  const Bytes over = {0x80, 0x00, 0x00, 0x05};  // 6 + 5 > 10
  EXPECT_EQ(f.feed(over).status, RecordStatus::TooLarge);
  RecordFramer g(RecordLimits{.maxRecord = 10, .maxEmptyFragments = 4});
  EXPECT_EQ(g.feed(s).status, RecordStatus::NeedMore);
  const Bytes exact = {0x80, 0x00, 0x00, 0x04, 7, 8, 9, 10};
  EXPECT_EQ(g.feed(exact).status, RecordStatus::Record);
  EXPECT_EQ(g.record().size(), 10u);
}

TEST(NfsRecordFramer, EmptyFragmentsAreCapped) {
  Bytes s;
  for (int i = 0; i < 5; ++i) put32(s, 0);
  RecordFramer f;
  auto r = f.feed(s);
  EXPECT_EQ(r.status, RecordStatus::TooManyEmptyFragments);
  EXPECT_EQ(r.consumed, 20u);
  // Four are tolerated, and the count starts again with each record.
  RecordFramer g;
  Bytes ok;
  for (int i = 0; i < 4; ++i) put32(ok, 0);
  put32(ok, kLastFragment | 1);
  ok.push_back(0x42);
  for (int round = 0; round < 3; ++round) EXPECT_EQ(g.feed(ok).status, RecordStatus::Record);
}

TEST(NfsRecordFramer, EmptyLastFragmentIsAnEmptyRecordThatDrops) {
  const Bytes s = {0x80, 0x00, 0x00, 0x00};
  RecordFramer f;
  EXPECT_EQ(f.feed(s).status, RecordStatus::Record);
  EXPECT_TRUE(f.record().empty());
  EXPECT_EQ(decodeCall(f.record()).action, CallOutcome::Action::Drop);
}

// ---- Call header outcomes ----

Bytes callHeader(std::uint32_t rpcvers, std::uint32_t credFlavor, const Bytes& credBody, std::uint32_t verfFlavor = 0,
                 const Bytes& verfBody = {}) {
  Bytes b = testing::words({0x1234, 0, rpcvers, kNfsProgram, 3, 0, credFlavor});
  testing::putOpaque(b, credBody);
  put32(b, verfFlavor);
  testing::putOpaque(b, verfBody);
  return b;
}

Bytes authSysBody(std::uint32_t gidCount, std::string_view machine = "m") {
  Bytes b;
  put32(b, 1);
  testing::putString(b, machine);
  put32(b, 1000);
  put32(b, 1000);
  put32(b, gidCount);
  for (std::uint32_t i = 0; i < gidCount; ++i) put32(b, i);
  return b;
}

TEST(NfsCallHeader, AuthNoneNullCallDispatches) {
  auto rec = callHeader(2, authflavor::kNone, {});
  CallOutcome o = decodeCall(rec);
  ASSERT_EQ(o.action, CallOutcome::Action::Dispatch);
  EXPECT_FALSE(o.call.sys.has_value());
  EXPECT_TRUE(o.call.args.empty());
}

TEST(NfsCallHeader, SixteenGidsAreAcceptedSeventeenAreBadCred) {
  auto ok = callHeader(2, authflavor::kSys, authSysBody(16));
  CallOutcome a = decodeCall(ok);
  ASSERT_EQ(a.action, CallOutcome::Action::Dispatch);
  EXPECT_EQ(a.call.sys->gidCount, 16u);
  EXPECT_EQ(a.call.sys->gids[15], 15u);
  auto bad = callHeader(2, authflavor::kSys, authSysBody(17));
  CallOutcome b = decodeCall(bad);
  ASSERT_EQ(b.action, CallOutcome::Action::Reply);
  EXPECT_EQ(b.reply.kind, ReplyHeader::Kind::AuthError);
  EXPECT_EQ(b.reply.auth, AuthStat::BadCred);
  EXPECT_EQ(b.reply.xid, 0x1234u);
}

TEST(NfsCallHeader, CredentialBodyOf401BytesIsBadCred) {
  Bytes body(400, 0);
  auto at400 = callHeader(2, 99, body);  // within the limit, an unknown flavour: BadCred too
  EXPECT_EQ(decodeCall(at400).reply.auth, AuthStat::BadCred);
  body.push_back(0);
  auto rec = callHeader(2, authflavor::kSys, body);
  CallOutcome o = decodeCall(rec);
  ASSERT_EQ(o.action, CallOutcome::Action::Reply);
  EXPECT_EQ(o.reply.kind, ReplyHeader::Kind::AuthError);
  EXPECT_EQ(o.reply.auth, AuthStat::BadCred);
}

TEST(NfsCallHeader, MachineNameOver255IsBadCred) {
  std::string name(256, 'n');
  auto rec = callHeader(2, authflavor::kSys, authSysBody(0, name));
  EXPECT_EQ(decodeCall(rec).reply.auth, AuthStat::BadCred);
  name.pop_back();
  auto ok = callHeader(2, authflavor::kSys, authSysBody(0, name));
  EXPECT_EQ(decodeCall(ok).action, CallOutcome::Action::Dispatch);
}

TEST(NfsCallHeader, AuthSysBodyWithTrailingBytesIsBadCred) {
  Bytes body = authSysBody(1);
  put32(body, 0);
  EXPECT_EQ(decodeCall(callHeader(2, authflavor::kSys, body)).reply.auth, AuthStat::BadCred);
  EXPECT_EQ(decodeCall(callHeader(2, authflavor::kNone, {0, 0, 0, 0})).reply.auth, AuthStat::BadCred);
}

TEST(NfsCallHeader, VerifierMustBeEmptyAuthNone) {
  EXPECT_EQ(decodeCall(callHeader(2, authflavor::kNone, {}, authflavor::kSys)).reply.auth, AuthStat::BadVerf);
  EXPECT_EQ(decodeCall(callHeader(2, authflavor::kNone, {}, 0, {1, 2, 3, 4})).reply.auth, AuthStat::BadVerf);
  EXPECT_EQ(decodeCall(callHeader(2, authflavor::kNone, {}, 0, Bytes(401, 0))).reply.auth, AuthStat::BadVerf);
}

TEST(NfsCallHeader, RpcVersionOtherThanTwoIsRpcMismatch) {
  CallOutcome o = decodeCall(callHeader(3, authflavor::kNone, {}));
  ASSERT_EQ(o.action, CallOutcome::Action::Reply);
  EXPECT_EQ(o.reply.kind, ReplyHeader::Kind::RpcMismatch);
  EXPECT_EQ(o.reply.low, 2u);
  EXPECT_EQ(o.reply.high, 2u);
}

TEST(NfsCallHeader, CutShortAfterTheXidIsGarbageArgs) {
  const Bytes full = callHeader(2, authflavor::kSys, authSysBody(2));
  for (std::size_t n = 4; n < full.size(); ++n) {
    CallOutcome o = decodeCall(std::span(full).first(n));
    ASSERT_EQ(o.action, CallOutcome::Action::Reply) << n;
    EXPECT_EQ(o.reply.kind, ReplyHeader::Kind::Accepted) << n;
    EXPECT_EQ(o.reply.accept, AcceptStat::GarbageArgs) << n;
    EXPECT_EQ(o.reply.xid, 0x1234u);
  }
}

TEST(NfsCallHeader, NoXidOrAReplyIsDropped) {
  const Bytes three = {0, 0, 1};
  EXPECT_EQ(decodeCall(three).drop, DropReason::NoXid);
  const Bytes replyMsg = testing::words({7, 1, 0, 0});
  CallOutcome o = decodeCall(replyMsg);
  EXPECT_EQ(o.action, CallOutcome::Action::Drop);
  EXPECT_EQ(o.drop, DropReason::NotACall);
}

// ---- Dispatch table ----

TEST(NfsDispatch, ProgramVersionAndProcedureChecks) {
  EXPECT_EQ(checkDispatch(100004, 1, 0).stat, AcceptStat::ProgUnavail);
  auto mm = checkDispatch(kNfsProgram, 4, 0);
  EXPECT_EQ(mm.stat, AcceptStat::ProgMismatch);
  EXPECT_EQ(mm.low, 3u);
  EXPECT_EQ(mm.high, 3u);
  EXPECT_EQ(checkDispatch(kNfsProgram, 3, 22).stat, AcceptStat::ProcUnavail);
  EXPECT_EQ(checkDispatch(kMountProgram, 3, 6).stat, AcceptStat::ProcUnavail);
  EXPECT_EQ(checkDispatch(kPortmapProgram, 2, pmapproc::kGetport).proc->name, "PMAPPROC_GETPORT");
  EXPECT_EQ(checkDispatch(kNfsProgram, 3, nfsproc::kCommit).proc->kind, ProcKind::Modify);
  // Every row sits at its own number.
  for (const auto& prog : kPrograms)
    for (std::size_t i = 0; i < prog.procs.size(); ++i) EXPECT_EQ(prog.procs[i].number, i) << prog.name;
}

// ---- Reply headers ----

Bytes replyBytes(const ReplyHeader& h) {
  std::array<std::uint8_t, 64> buf{};
  XdrWriter w(buf);
  encodeReplyHeader(w, h);
  EXPECT_TRUE(w.ok());
  return testing::toBytes(w.written());
}

TEST(NfsReplyHeader, EveryAcceptedAndDeniedLayout) {
  EXPECT_EQ(replyBytes(ReplyHeader::accepted(9, AcceptStat::ProgUnavail)), testing::words({9, 1, 0, 0, 0, 1}));
  EXPECT_EQ(replyBytes(ReplyHeader::progMismatch(9, 3, 3)), testing::words({9, 1, 0, 0, 0, 2, 3, 3}));
  EXPECT_EQ(replyBytes(ReplyHeader::accepted(9, AcceptStat::ProcUnavail)), testing::words({9, 1, 0, 0, 0, 3}));
  EXPECT_EQ(replyBytes(ReplyHeader::accepted(9, AcceptStat::GarbageArgs)), testing::words({9, 1, 0, 0, 0, 4}));
  EXPECT_EQ(replyBytes(ReplyHeader::accepted(9, AcceptStat::SystemErr)), testing::words({9, 1, 0, 0, 0, 5}));
  EXPECT_EQ(replyBytes(ReplyHeader::rpcMismatch(9)), testing::words({9, 1, 1, 0, 2, 2}));
  EXPECT_EQ(replyBytes(ReplyHeader::authError(9, AuthStat::BadCred)), testing::words({9, 1, 1, 1, 1}));
  EXPECT_EQ(replyBytes(ReplyHeader::authError(9, AuthStat::TooWeak)), testing::words({9, 1, 1, 1, 5}));
}

TEST(NfsReplyHeader, RecordMarkSetsTheLastFragmentBit) {
  auto m = recordMark(0x1234);
  EXPECT_EQ(Bytes(m.begin(), m.end()), Bytes({0x80, 0x00, 0x12, 0x34}));
}

}  // namespace
}  // namespace pxedust::nfs::wire
