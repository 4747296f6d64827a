// nfs::Procedures over an in-memory file system: handles, lookups (".." at the root), reads,
// listings resumed by cookie until every entry came exactly once, stale and forged handles, and
// every write answered ROFS.
#include "nfs/procedures.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <map>
#include <set>
#include <string>

#include "nfs/tests/test_util.hpp"

namespace pxedust::nfs {
namespace {

using wire::Nfsstat3;
using wire::testing::Bytes;
using wire::testing::put32;
using wire::testing::put64;
using wire::testing::putOpaque;
using wire::testing::putString;
namespace proc = wire::nfsproc;

// Inodes: 2 the root; 3 "hello" (a file); 4 "link" -> "hello"; 5 "big" (a directory of 1000 files
// 1000..1999). Every inode has generation 7 unless bumped.
class MemFs : public FileSystem {
 public:
  MemFs() {
    add(2, wire::Ftype3::Dir, 0755, 2);
    add(3, wire::Ftype3::Reg, 0640, 2, "hello, world\n");
    add(4, wire::Ftype3::Lnk, 0777, 2, "hello");
    add(5, wire::Ftype3::Dir, 0755, 2);
    children[2] = {{"hello", 3}, {"link", 4}, {"big", 5}};
    for (std::uint64_t i = 0; i < 1000; ++i) {
      add(1000 + i, wire::Ftype3::Reg, 0644, 5);
      children[5].emplace_back("file-" + std::to_string(i) + std::string(i % 40, 'x'), 1000 + i);
    }
  }
  [[nodiscard]] std::uint64_t rootInode() const override { return 2; }
  Result<Attr> getattr(std::uint64_t inode) override {
    auto it = inodes.find(inode);
    if (it == inodes.end()) return Error{"no such inode", ESTALE};
    return it->second.attr;
  }
  Result<std::uint64_t> lookup(std::uint64_t dir, std::string_view name) override {
    auto it = inodes.find(dir);
    if (it == inodes.end()) return Error{"no such inode", ESTALE};
    if (it->second.attr.type != wire::Ftype3::Dir) return Error{"not a directory", ENOTDIR};
    if (name == ".") return dir;
    if (name == "..") return it->second.parent;
    for (const auto& [n, ino] : children[dir])
      if (n == name) return ino;
    return Error{"no such name", ENOENT};
  }
  Result<bool> readdir(std::uint64_t dir, std::uint64_t cookie, const std::function<bool(const DirItem&)>& visit) override {
    const auto& list = children[dir];
    for (std::size_t i = cookie; i < list.size(); ++i)
      if (!visit(DirItem{list[i].second, list[i].first, i + 1})) return false;
    return true;
  }
  Result<std::string> readlink(std::uint64_t inode) override { return inodes.at(inode).data; }
  Result<std::size_t> read(std::uint64_t inode, std::uint64_t offset, std::span<std::uint8_t> out) override {
    const auto& d = inodes.at(inode).data;
    if (offset >= d.size()) return std::size_t{0};
    const std::size_t n = std::min<std::size_t>(out.size(), d.size() - offset);
    std::copy_n(d.begin() + static_cast<std::ptrdiff_t>(offset), n, out.begin());
    return n;
  }
  Result<Stat> statfs() override { return Stat{1u << 30, 1u << 29, 65536, 60000}; }
  Result<std::vector<wire::AclEntry>> acl(std::uint64_t inode, bool dflt) override {
    auto it = acls.find({inode, dflt});
    return it == acls.end() ? std::vector<wire::AclEntry>{} : it->second;
  }

  struct Node {
    Attr attr;
    std::uint64_t parent = 2;
    std::string data;
  };
  void add(std::uint64_t ino, wire::Ftype3 type, std::uint32_t mode, std::uint64_t parent, std::string data = {}) {
    Node n;
    n.attr.type = type;
    n.attr.mode = mode;
    n.attr.nlink = 1;
    n.attr.uid = 1000;
    n.attr.gid = 100;
    n.attr.size = data.size();
    n.attr.inode = ino;
    n.attr.generation = 7;
    n.parent = parent;
    n.data = std::move(data);
    inodes[ino] = std::move(n);
  }
  std::map<std::uint64_t, Node> inodes;
  std::map<std::pair<std::uint64_t, bool>, std::vector<wire::AclEntry>> acls;  // (inode, default)
  std::map<std::uint64_t, std::vector<std::pair<std::string, std::uint64_t>>> children;
};

constexpr wire::HandleKey kKey{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

class ProceduresTest : public ::testing::Test {
 protected:
  ProceduresTest() {
    exp_ = std::make_shared<Export>();
    exp_->image = wire::ImageId{0xaa, 0xbb};
    exp_->version = 3;
    exp_->fsid = 0x1234;
    exp_->fs = fs_;
  }
  Procedures procedures(Limits limits = {}) {
    return Procedures(kKey, [this](const wire::ImageId& id, std::uint32_t v) -> std::shared_ptr<const Export> {
      return exported_ && id == exp_->image && v == exp_->version ? exp_ : nullptr;
    }, limits);
  }
  Bytes root() {
    auto h = procedures().rootHandle(*exp_);
    EXPECT_TRUE(h);
    return Bytes(h->begin(), h->end());
  }
  // The reply body of a call; an empty optional when the arguments did not decode.
  std::optional<Bytes> call(std::uint32_t procedure, const Bytes& args, Limits limits = {}) {
    wire::Call c;
    c.program = wire::kNfsProgram;
    c.version = 3;
    c.procedure = procedure;
    c.args = args;
    wire::AuthSys sys;
    sys.uid = 1000;
    sys.gid = 100;
    c.credFlavor = wire::authflavor::kSys;
    c.sys = sys;
    Bytes out;
    if (!procedures(limits).dispatch(c, out)) return std::nullopt;
    return out;
  }
  static Bytes fhArgs(const Bytes& fh) {
    Bytes b;
    putOpaque(b, fh);
    return b;
  }
  static Nfsstat3 status(const Bytes& reply) {
    wire::XdrReader r(reply);
    return static_cast<Nfsstat3>(r.u32());
  }
  // LOOKUP `name` in `dir`: the object's handle (empty on failure).
  Bytes lookup(const Bytes& dir, std::string_view name, Nfsstat3* s = nullptr) {
    Bytes a;
    putOpaque(a, dir);
    putString(a, name);
    auto reply = call(proc::kLookup, a);
    EXPECT_TRUE(reply);
    wire::XdrReader r(*reply);
    const auto st = static_cast<Nfsstat3>(r.u32());
    if (s != nullptr) *s = st;
    if (st != Nfsstat3::Ok) return {};
    auto fh = r.opaque(wire::kFhSize3);
    return Bytes(fh.begin(), fh.end());
  }
  wire::Fattr3 getattr(const Bytes& fh) {
    auto reply = call(proc::kGetattr, fhArgs(fh));
    EXPECT_TRUE(reply);
    wire::XdrReader r(*reply);
    EXPECT_EQ(static_cast<Nfsstat3>(r.u32()), Nfsstat3::Ok);
    return wire::readFattr3(r);
  }

  std::shared_ptr<MemFs> fs_ = std::make_shared<MemFs>();
  std::shared_ptr<Export> exp_;
  bool exported_ = true;
};

TEST_F(ProceduresTest, RootLookupReadAndReadlink) {
  const Bytes r = root();
  const auto ra = getattr(r);
  EXPECT_EQ(ra.type, wire::Ftype3::Dir);
  EXPECT_EQ(ra.fileid, 2U);
  EXPECT_EQ(ra.fsid, 0x1234U);
  EXPECT_EQ(lookup(r, ".."), r);  // nothing above the image's root
  EXPECT_EQ(lookup(r, "."), r);
  Nfsstat3 s{};
  EXPECT_TRUE(lookup(r, "nothing", &s).empty());
  EXPECT_EQ(s, Nfsstat3::NoEnt);

  const Bytes hello = lookup(r, "hello");
  ASSERT_FALSE(hello.empty());
  EXPECT_EQ(getattr(hello).size, 13U);
  EXPECT_TRUE(lookup(hello, "x", &s).empty());
  EXPECT_EQ(s, Nfsstat3::NotDir);

  Bytes ra1 = fhArgs(hello);
  put64(ra1, 7);
  put32(ra1, 100000);  // more than the file has
  auto reply = call(proc::kRead, ra1);
  ASSERT_TRUE(reply);
  wire::XdrReader rr(*reply);
  ASSERT_EQ(static_cast<Nfsstat3>(rr.u32()), Nfsstat3::Ok);
  ASSERT_TRUE(wire::readPostOpAttr(rr));
  EXPECT_EQ(rr.u32(), 6U);     // count
  EXPECT_TRUE(rr.boolean());   // eof
  EXPECT_EQ(rr.string(100), "world\n");

  Bytes past = fhArgs(hello);
  put64(past, 1u << 30);
  put32(past, 4096);
  reply = call(proc::kRead, past);
  ASSERT_TRUE(reply);
  wire::XdrReader pr(*reply);
  ASSERT_EQ(static_cast<Nfsstat3>(pr.u32()), Nfsstat3::Ok);
  ASSERT_TRUE(wire::readPostOpAttr(pr));
  EXPECT_EQ(pr.u32(), 0U);
  EXPECT_TRUE(pr.boolean());

  Bytes dirRead = fhArgs(r);
  put64(dirRead, 0);
  put32(dirRead, 10);
  EXPECT_EQ(status(*call(proc::kRead, dirRead)), Nfsstat3::IsDir);

  const Bytes link = lookup(r, "link");
  reply = call(proc::kReadlink, fhArgs(link));
  ASSERT_TRUE(reply);
  wire::XdrReader lr(*reply);
  ASSERT_EQ(static_cast<Nfsstat3>(lr.u32()), Nfsstat3::Ok);
  ASSERT_TRUE(wire::readPostOpAttr(lr));
  EXPECT_EQ(lr.string(4096), "hello");
  EXPECT_EQ(status(*call(proc::kReadlink, fhArgs(hello))), Nfsstat3::Inval);
}

TEST_F(ProceduresTest, ForgedStaleAndReusedHandles) {
  const Bytes r = root();
  Bytes hello = lookup(r, "hello");
  Bytes forged = hello;
  forged[20] ^= 1;  // a byte of the image version: the MAC no longer matches
  EXPECT_EQ(status(*call(proc::kGetattr, fhArgs(forged))), Nfsstat3::BadHandle);
  EXPECT_EQ(status(*call(proc::kGetattr, fhArgs(Bytes(10, 0)))), Nfsstat3::BadHandle);
  fs_->inodes[3].attr.generation = 8;  // the inode now holds another file
  EXPECT_EQ(status(*call(proc::kGetattr, fhArgs(hello))), Nfsstat3::Stale);
  exported_ = false;  // the image version was deleted
  EXPECT_EQ(status(*call(proc::kGetattr, fhArgs(r))), Nfsstat3::Stale);
  EXPECT_FALSE(call(proc::kGetattr, Bytes{0, 0}));  // arguments that do not decode: GARBAGE_ARGS
}

TEST_F(ProceduresTest, WritesAreRefusedAndAccessNeverGrantsThem) {
  const Bytes r = root();
  for (std::uint32_t p : {proc::kSetattr, proc::kWrite, proc::kCreate, proc::kMkdir, proc::kSymlink, proc::kMknod,
                          proc::kRemove, proc::kRmdir, proc::kRename, proc::kLink, proc::kCommit}) {
    Bytes a = fhArgs(r);
    if (p == proc::kRename || p == proc::kLink) {
      if (p == proc::kRename) putString(a, "a");
      putOpaque(a, r);
    }
    putString(a, "name");
    for (int i = 0; i < 32; ++i) put32(a, 0);
    auto reply = call(p, a);
    ASSERT_TRUE(reply) << p;
    EXPECT_EQ(status(*reply), Nfsstat3::Rofs) << p;
  }
  Bytes acc = fhArgs(lookup(r, "hello"));
  put32(acc, wire::access3::kAll);
  auto reply = call(proc::kAccess, acc);
  ASSERT_TRUE(reply);
  wire::XdrReader ar(*reply);
  ASSERT_EQ(static_cast<Nfsstat3>(ar.u32()), Nfsstat3::Ok);
  ASSERT_TRUE(wire::readPostOpAttr(ar));
  EXPECT_EQ(ar.u32(), wire::access3::kRead);  // 0640, the owner: read; no write of any kind
}

// NFS_ACL v3: GETACL answers an inode without ACLs with empty access and default ACLs (the mode bits
// are all there is) and one with ACLs with their entries, echoing the mask asked for, as the Linux
// client requires; SETACL is refused.
TEST_F(ProceduresTest, AclsAreTheModeBitsAndCannotBeSet) {
  const Bytes r = root();
  auto acl = [&](std::uint32_t procedure, const Bytes& args) -> std::optional<Bytes> {
    wire::Call c;
    c.program = wire::kNfsAclProgram;
    c.version = 3;
    c.procedure = procedure;
    c.args = args;
    Bytes out;
    if (!procedures().dispatchAcl(c, out)) return std::nullopt;
    return out;
  };
  Bytes args = fhArgs(lookup(r, "hello"));
  put32(args, wire::aclmask::kAll);
  auto reply = acl(wire::aclproc::kGetacl, args);
  ASSERT_TRUE(reply);
  wire::XdrReader x(*reply);
  EXPECT_EQ(static_cast<Nfsstat3>(x.u32()), Nfsstat3::Ok);
  auto attr = wire::readPostOpAttr(x);
  ASSERT_TRUE(attr);
  EXPECT_EQ(attr->mode, 0640U);
  EXPECT_EQ(x.u32(), wire::aclmask::kAll);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(x.u32(), 0U);  // access: count, array; default: count, array
  EXPECT_TRUE(x.ok());
  EXPECT_EQ(x.remaining(), 0U);

  // A directory with a default ACL: its entries carry NFS_ACL_DEFAULT, the owner's the owner's ids.
  namespace tag = wire::acltag;
  fs_->acls[{5, true}] = {{tag::kUserObj, 0, 7}, {tag::kGroupObj, 0, 5}, {tag::kGroup, 50, 7}, {tag::kMask, 0, 7},
                         {tag::kOther, 0, 5}};
  fs_->inodes[5].attr.uid = 1000;
  fs_->inodes[5].attr.gid = 100;
  Bytes dirArgs = fhArgs(lookup(r, "big"));
  put32(dirArgs, wire::aclmask::kDefault | wire::aclmask::kDefaultCount);
  reply = acl(wire::aclproc::kGetacl, dirArgs);
  ASSERT_TRUE(reply);
  wire::XdrReader d(*reply);
  EXPECT_EQ(static_cast<Nfsstat3>(d.u32()), Nfsstat3::Ok);
  ASSERT_TRUE(wire::readPostOpAttr(d));
  EXPECT_EQ(d.u32(), wire::aclmask::kDefault | wire::aclmask::kDefaultCount);
  EXPECT_EQ(d.u32(), 0U);  // no access ACL
  EXPECT_EQ(d.u32(), 0U);
  EXPECT_EQ(d.u32(), 5U);  // five default entries
  EXPECT_EQ(d.u32(), 5U);
  const std::uint32_t want[5][3] = {{tag::kUserObj, 1000, 7}, {tag::kGroupObj, 100, 5}, {tag::kGroup, 50, 7},
                                    {tag::kMask, 0, 7}, {tag::kOther, 0, 5}};
  for (const auto& e : want) {
    EXPECT_EQ(d.u32(), e[0] | wire::kAclDefaultFlag);
    EXPECT_EQ(d.u32(), e[1]);
    EXPECT_EQ(d.u32(), e[2]);
  }
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(d.remaining(), 0U);

  Bytes bad = fhArgs(r);
  put32(bad, 0x10);  // no such mask bit
  EXPECT_EQ(status(*acl(wire::aclproc::kGetacl, bad)), Nfsstat3::Inval);
  exported_ = false;
  EXPECT_EQ(status(*acl(wire::aclproc::kGetacl, args)), Nfsstat3::Stale);
  exported_ = true;
  Bytes set = fhArgs(r);
  put32(set, wire::aclmask::kAccess);
  EXPECT_EQ(status(*acl(wire::aclproc::kSetacl, set)), Nfsstat3::Rofs);
  EXPECT_FALSE(acl(wire::aclproc::kGetacl, Bytes{0, 0}));  // GARBAGE_ARGS
  EXPECT_TRUE(acl(wire::aclproc::kNull, {}));
}

TEST(Access, ModeBitsForOwnerGroupOthersAndRoot) {
  Attr a;
  a.type = wire::Ftype3::Reg;
  a.mode = 0750;
  a.uid = 10;
  a.gid = 20;
  wire::AuthSys owner, member, other, root;
  owner.uid = 10;
  member.uid = 11;
  member.gid = 99;
  member.gidCount = 1;
  member.gids[0] = 20;
  other.uid = 12;
  root.uid = 0;
  namespace acc = wire::access3;
  EXPECT_EQ(accessFor(a, &owner, acc::kAll), acc::kRead | acc::kExecute);
  EXPECT_EQ(accessFor(a, &member, acc::kAll), acc::kRead | acc::kExecute);
  EXPECT_EQ(accessFor(a, &other, acc::kAll), 0U);
  EXPECT_EQ(accessFor(a, &root, acc::kAll), acc::kRead | acc::kExecute);
  a.mode = 0600;
  EXPECT_EQ(accessFor(a, &root, acc::kAll), acc::kRead);  // no execute bit anywhere
  a.type = wire::Ftype3::Dir;
  EXPECT_EQ(accessFor(a, &root, acc::kAll), acc::kRead | acc::kLookup);
}

// READDIRPLUS of 1000 entries with a small maxcount, resumed by cookie: every name exactly once;
// READDIR the same; a cookie with another version's verifier is BAD_COOKIE.
TEST_F(ProceduresTest, ListingsResumeByCookieAndEveryEntryComesOnce) {
  const Bytes big = lookup(root(), "big");
  for (const bool plus : {false, true}) {
    std::multiset<std::string> seen;
    std::uint64_t cookie = 0;
    std::array<std::uint8_t, 8> verf{};
    int calls = 0;
    for (bool eof = false; !eof; ++calls) {
      ASSERT_LT(calls, 1000);
      Bytes a = fhArgs(big);
      put64(a, cookie);
      a.insert(a.end(), verf.begin(), verf.end());
      if (plus) put32(a, 2048);  // dircount
      put32(a, 4096);            // count / maxcount
      auto reply = call(plus ? proc::kReaddirplus : proc::kReaddir, a);
      ASSERT_TRUE(reply);
      ASSERT_LE(reply->size(), 4U + 4096U);  // the status, then a resok of at most count/maxcount
      wire::XdrReader r(*reply);
      ASSERT_EQ(static_cast<Nfsstat3>(r.u32()), Nfsstat3::Ok);
      ASSERT_TRUE(wire::readPostOpAttr(r));
      auto v = r.fixedOpaque(8);
      std::copy(v.begin(), v.end(), verf.begin());
      int entries = 0;
      while (r.boolean()) {
        r.u64();  // fileid
        seen.emplace(r.string(255));
        cookie = r.u64();
        if (plus) {
          ASSERT_TRUE(wire::readPostOpAttr(r));
          ASSERT_TRUE(r.boolean());
          EXPECT_EQ(r.opaque(64).size(), wire::kHandleSize);
        }
        ++entries;
      }
      eof = r.boolean();
      ASSERT_TRUE(r.ok());
      ASSERT_GT(entries, 0);
    }
    EXPECT_EQ(seen.size(), 1000U) << plus;
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 1000U) << plus;
    EXPECT_GT(calls, 5) << plus;  // it did take several replies
  }
  Bytes stale = fhArgs(big);
  put64(stale, 10);
  for (int i = 0; i < 8; ++i) stale.push_back(0xee);
  put32(stale, 4096);
  EXPECT_EQ(status(*call(proc::kReaddir, stale)), Nfsstat3::BadCookie);
}

TEST_F(ProceduresTest, FsinfoAnnouncesOneMebibyteReads) {
  auto reply = call(proc::kFsinfo, fhArgs(root()));
  ASSERT_TRUE(reply);
  wire::XdrReader r(*reply);
  ASSERT_EQ(static_cast<Nfsstat3>(r.u32()), Nfsstat3::Ok);
  ASSERT_TRUE(wire::readPostOpAttr(r));
  EXPECT_EQ(r.u32(), 1u << 20);  // rtmax
  EXPECT_EQ(r.u32(), 1u << 20);  // rtpref
  auto st = call(proc::kFsstat, fhArgs(root()));
  ASSERT_TRUE(st);
  EXPECT_EQ(status(*st), Nfsstat3::Ok);
}

}  // namespace
}  // namespace pxedust::nfs
