// NFSv3 (RFC 1813) arguments and results: every decoder's layout and limits, the read-only failure
// reply of every modifying procedure, and the resok layouts of the query procedures.
#include "nfs/wire/nfs3.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>

#include "nfs/tests/test_util.hpp"

namespace pxedust::nfs::wire {
namespace {

using testing::Bytes;
using testing::put32;
using testing::put64;
using testing::words;

const Bytes kFh = {0xf5, 1, 0, 0, 9, 9, 9, 9};

Bytes withFh(const Bytes& fh = kFh) {
  Bytes b;
  testing::putOpaque(b, fh);
  return b;
}

Bytes encoded(auto&& fn) {
  std::array<std::uint8_t, 1024> buf{};
  XdrWriter w(buf);
  fn(w);
  EXPECT_TRUE(w.ok());
  return testing::toBytes(w.written());
}

TEST(Nfs3Args, HandleUpTo64Bytes) {
  EXPECT_TRUE(decodeFhArgs(withFh(Bytes(64, 1))).ok());
  auto r = decodeFhArgs(withFh(Bytes(65, 1)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, static_cast<int>(XdrError::TooLong));
  EXPECT_FALSE(decodeFhArgs(words({8, 1})).ok());  // shorter than it says
  EXPECT_FALSE(decodeFhArgs({}).ok());
}

TEST(Nfs3Args, LookupNameRules) {
  Bytes storage;  // the decoded views point into it: valid until the next lookup
  auto lookup = [&storage](std::string_view name) {
    storage = withFh();
    testing::putString(storage, name);
    return decodeLookupArgs(storage);
  };
  auto ok = lookup("vmlinuz");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->name, "vmlinuz");
  EXPECT_EQ(testing::toBytes(ok->dir), kFh);
  EXPECT_TRUE(lookup("..").ok());  // the caller resolves it
  EXPECT_TRUE(lookup(std::string(255, 'x')).ok());
  EXPECT_EQ(lookup(std::string(256, 'x')).error().code, static_cast<int>(XdrError::TooLong));
  EXPECT_EQ(lookup("").error().code, static_cast<int>(XdrError::BadValue));
  EXPECT_EQ(lookup("a/b").error().code, static_cast<int>(XdrError::BadValue));
  EXPECT_EQ(lookup("/").error().code, static_cast<int>(XdrError::BadValue));
  EXPECT_EQ(lookup(std::string("a\0b", 3)).error().code, static_cast<int>(XdrError::BadValue));
}

TEST(Nfs3Args, AccessReadReaddirReaddirplus) {
  Bytes acc = withFh();
  put32(acc, access3::kRead | access3::kLookup);
  auto a = decodeAccessArgs(acc);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->access, 3u);

  Bytes rd = withFh();
  put64(rd, 0x100000000ull);
  put32(rd, 131072);
  auto r = decodeReadArgs(rd);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->offset, 0x100000000ull);
  EXPECT_EQ(r->count, 131072u);
  EXPECT_FALSE(decodeReadArgs(std::span(rd).first(rd.size() - 1)).ok());

  Bytes dir = withFh();
  put64(dir, 77);
  dir.insert(dir.end(), {1, 2, 3, 4, 5, 6, 7, 8});
  Bytes plain = dir;
  put32(plain, 4096);
  auto d = decodeReaddirArgs(plain);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->cookie, 77u);
  EXPECT_EQ(d->verf, (CookieVerf{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(d->count, 4096u);
  Bytes plus = dir;
  put32(plus, 512);
  put32(plus, 32768);
  auto p = decodeReaddirplusArgs(plus);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->dircount, 512u);
  EXPECT_EQ(p->maxcount, 32768u);
  EXPECT_FALSE(decodeReaddirplusArgs(plain).ok());
}

TEST(Nfs3Args, ModifyingProceduresDecodeTheirHandles) {
  const Bytes other = {7, 7, 7, 7};
  // SETATTR/WRITE/COMMIT: a file handle first; CREATE..RMDIR: diropargs3's directory.
  for (std::uint32_t proc : {nfsproc::kSetattr, nfsproc::kWrite, nfsproc::kCommit, nfsproc::kCreate,
                             nfsproc::kMkdir, nfsproc::kSymlink, nfsproc::kMknod, nfsproc::kRemove, nfsproc::kRmdir}) {
    Bytes b = withFh();
    testing::putString(b, "whatever follows is not read");
    auto m = decodeModifyArgs(proc, b);
    ASSERT_TRUE(m.ok()) << proc;
    EXPECT_EQ(testing::toBytes(m->first), kFh);
    EXPECT_FALSE(m->second.has_value());
  }
  Bytes rename = withFh();
  testing::putString(rename, "old");
  testing::putOpaque(rename, other);
  testing::putString(rename, "new");
  auto rn = decodeModifyArgs(nfsproc::kRename, rename);
  ASSERT_TRUE(rn.ok());
  EXPECT_EQ(testing::toBytes(*rn->second), other);
  Bytes link = withFh();
  testing::putOpaque(link, other);
  testing::putString(link, "name");
  auto ln = decodeModifyArgs(nfsproc::kLink, link);
  ASSERT_TRUE(ln.ok());
  EXPECT_EQ(testing::toBytes(*ln->second), other);
  EXPECT_FALSE(decodeModifyArgs(nfsproc::kRename, withFh()).ok());
  EXPECT_FALSE(decodeModifyArgs(nfsproc::kRead, withFh()).ok());
  EXPECT_FALSE(decodeModifyArgs(99, withFh()).ok());
}

Fattr3 fileAttr() {
  Fattr3 a;
  a.type = Ftype3::Reg;
  a.mode = 0644;
  a.nlink = 1;
  a.size = 10;
  a.fileid = 12;
  return a;
}

Bytes fattrBytes(const Fattr3& a) {
  return encoded([&](XdrWriter& w) { writeFattr3(w, a); });
}

TEST(Nfs3Results, Fattr3Is84Bytes) {
  auto b = fattrBytes(fileAttr());
  EXPECT_EQ(b.size(), kFattr3Size);
  EXPECT_EQ(Bytes(b.begin(), b.begin() + 12), words({1, 0644, 1}));
}

TEST(Nfs3Results, ReadOnlyFailureOfEveryModifyingProcedure) {
  const WccData dirWcc{WccAttr{4096, {1, 2}, {3, 4}}, fileAttr()};
  Bytes wcc = words({1, 0, 4096, 1, 2, 3, 4, 1});  // pre_op_attr (wcc_attr), then post_op_attr
  const Bytes attr = fattrBytes(fileAttr());
  wcc.insert(wcc.end(), attr.begin(), attr.end());
  const Bytes emptyWcc = words({0, 0});

  for (const auto& proc : kNfsProcs) {
    if (proc.kind != ProcKind::Modify) continue;
    Bytes expected = words({30});
    if (proc.number == nfsproc::kRename) {
      expected.insert(expected.end(), wcc.begin(), wcc.end());
      expected.insert(expected.end(), emptyWcc.begin(), emptyWcc.end());
    } else if (proc.number == nfsproc::kLink) {
      put32(expected, 0);  // file_attributes absent
      expected.insert(expected.end(), emptyWcc.begin(), emptyWcc.end());
    } else {
      expected.insert(expected.end(), wcc.begin(), wcc.end());
    }
    EXPECT_EQ(encoded([&](XdrWriter& w) { encodeModifyFailure(w, proc.number, Nfsstat3::Rofs, dirWcc); }), expected)
        << proc.name;
  }
  EXPECT_EQ(nfsstat3Name(Nfsstat3::Rofs), "NFS3ERR_ROFS");
}

TEST(Nfs3Results, QueryFailuresCarryPostOpAttrButGetattr) {
  EXPECT_EQ(encoded([](XdrWriter& w) { encodeFailure(w, nfsproc::kGetattr, Nfsstat3::Stale, fileAttr()); }),
            words({70}));
  EXPECT_EQ(encoded([](XdrWriter& w) { encodeFailure(w, nfsproc::kLookup, Nfsstat3::NoEnt, std::nullopt); }),
            words({2, 0}));
  Bytes expected = words({10001, 1});
  const Bytes attr = fattrBytes(fileAttr());
  expected.insert(expected.end(), attr.begin(), attr.end());
  EXPECT_EQ(encoded([](XdrWriter& w) { encodeFailure(w, nfsproc::kRead, Nfsstat3::BadHandle, fileAttr()); }), expected);
}

TEST(Nfs3Results, LookupAccessReadlinkRead) {
  Bytes lookup = words({0});
  testing::putOpaque(lookup, kFh);
  put32(lookup, 0);
  put32(lookup, 0);
  EXPECT_EQ(encoded([](XdrWriter& w) { encodeLookupOk(w, kFh, std::nullopt, std::nullopt); }), lookup);
  EXPECT_EQ(encoded([](XdrWriter& w) { encodeAccessOk(w, std::nullopt, access3::kRead); }), words({0, 0, 1}));
  Bytes link = words({0, 0});
  testing::putString(link, "../lib");
  EXPECT_EQ(encoded([](XdrWriter& w) { encodeReadlinkOk(w, std::nullopt, "../lib"); }), link);
  const Bytes data = {'a', 'b', 'c', 'd', 'e'};
  Bytes read = words({0, 0, 5, 1, 5});
  read.insert(read.end(), {'a', 'b', 'c', 'd', 'e', 0, 0, 0});
  EXPECT_EQ(encoded([&](XdrWriter& w) { encodeReadOk(w, std::nullopt, true, data); }), read);
}

TEST(Nfs3Results, FsstatFsinfoPathconf) {
  FsstatOk st{1, 2, 3, 4, 5, 6, 7};
  EXPECT_EQ(encoded([&](XdrWriter& w) { encodeFsstatOk(w, std::nullopt, st); }),
            words({0, 0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 7}));
  FsinfoOk fi{1048576, 1048576, 4096, 0, 0, 1, 8192, 0xffffffffffffffffull, {0, 1}, fsf3::kLink | fsf3::kSymlink | fsf3::kHomogeneous};
  EXPECT_EQ(encoded([&](XdrWriter& w) { encodeFsinfoOk(w, std::nullopt, fi); }),
            words({0, 0, 1048576, 1048576, 4096, 0, 0, 1, 8192, 0xffffffff, 0xffffffff, 0, 1, 0x0b}));
  PathconfOk pc{32000, 255, true, true, false, true};
  EXPECT_EQ(encoded([&](XdrWriter& w) { encodePathconfOk(w, std::nullopt, pc); }),
            words({0, 0, 32000, 255, 1, 1, 0, 1}));
}

TEST(Nfs3Results, PostOpAttrRoundTrip) {
  auto b = encoded([](XdrWriter& w) { writePostOpAttr(w, fileAttr()); });
  XdrReader r(b);
  EXPECT_EQ(readPostOpAttr(r), PostOpAttr(fileAttr()));
  Bytes badType = b;
  badType[7] = 9;  // ftype3 9 does not exist
  XdrReader r2(badType);
  EXPECT_FALSE(readPostOpAttr(r2).has_value());
  EXPECT_EQ(r2.error(), XdrError::BadValue);
}

}  // namespace
}  // namespace pxedust::nfs::wire
