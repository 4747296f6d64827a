// MOUNT v3 and PORTMAP v2 answers: the root handle of a permitted export, ACCES and NOENT with the
// reason reported, EXPORT lists only what the caller may mount, GETPORT and DUMP name our ports.
#include "nfs/mount_procedures.hpp"

#include <gtest/gtest.h>

#include <cerrno>

#include "nfs/tests/test_util.hpp"

namespace pxedust::nfs {
namespace {

using wire::testing::Bytes;
using wire::testing::put32;
using wire::testing::putString;

class RootOnly : public FileSystem {
 public:
  [[nodiscard]] std::uint64_t rootInode() const override { return 2; }
  Result<Attr> getattr(std::uint64_t inode) override {
    if (inode != 2) return Error{"no such inode", ESTALE};
    Attr a;
    a.type = wire::Ftype3::Dir;
    a.mode = 0755;
    a.inode = 2;
    a.generation = 1;
    return a;
  }
  Result<std::uint64_t> lookup(std::uint64_t, std::string_view) override { return Error{"empty", ENOENT}; }
  Result<bool> readdir(std::uint64_t, std::uint64_t, const std::function<bool(const DirItem&)>&) override { return true; }
  Result<std::string> readlink(std::uint64_t) override { return Error{"not a link", EINVAL}; }
  Result<std::size_t> read(std::uint64_t, std::uint64_t, std::span<std::uint8_t>) override { return std::size_t{0}; }
  Result<Stat> statfs() override { return Stat{}; }
};

class Catalog : public MountCatalog {
 public:
  explicit Catalog(std::shared_ptr<const Export> e) : exp_(std::move(e)) {}
  Found find(std::string_view path) override {
    if (path == "/images/debian/3") return {wire::MountStat::Ok, exp_, {}, {}};
    if (path == "/images/other/1") return {wire::MountStat::Acces, nullptr, "10.0.0.9 is not admitted", {}};
    return {wire::MountStat::NoEnt, nullptr, "no such export", {}};
  }
  std::vector<std::string> list() override { return {"/images/debian/3", "/images/debian"}; }

 private:
  std::shared_ptr<const Export> exp_;
};

constexpr wire::HandleKey kKey{9};

wire::Call callOf(std::uint32_t program, std::uint32_t procedure, const Bytes& args) {
  wire::Call c;
  c.program = program;
  c.version = program == wire::kPortmapProgram ? 2 : 3;
  c.procedure = procedure;
  c.args = args;
  return c;
}

TEST(Mount, MntAnswersTheRootHandleOrWhyNot) {
  auto exp = std::make_shared<Export>();
  exp->image = wire::ImageId{1};
  exp->version = 3;
  exp->fs = std::make_shared<RootOnly>();
  Procedures nfs(kKey, [exp](const wire::ImageId&, std::uint32_t) { return exp; });
  Catalog catalog(exp);

  Bytes args;
  putString(args, "/images/debian/3");
  Bytes out;
  MountOutcome outcome;
  ASSERT_TRUE(dispatchMount(callOf(wire::kMountProgram, wire::mountproc::kMnt, args), nfs, catalog, out, outcome));
  EXPECT_EQ(outcome.kind, MountOutcome::Kind::Mounted);
  EXPECT_EQ(outcome.path, "/images/debian/3");
  wire::XdrReader r(out);
  EXPECT_EQ(r.u32(), 0U);  // MNT3_OK
  auto fh = r.opaque(wire::kFhSize3);
  auto root = nfs.rootHandle(*exp);
  ASSERT_TRUE(root);
  EXPECT_EQ(Bytes(fh.begin(), fh.end()), Bytes(root->begin(), root->end()));
  EXPECT_EQ(r.u32(), 2U);  // two flavours
  EXPECT_EQ(r.u32(), wire::authflavor::kSys);
  EXPECT_EQ(r.u32(), wire::authflavor::kNone);

  for (const auto& [path, stat] : {std::pair{"/images/other/1", wire::MountStat::Acces},
                                   std::pair{"/etc", wire::MountStat::NoEnt}}) {
    Bytes a;
    putString(a, path);
    out.clear();
    ASSERT_TRUE(dispatchMount(callOf(wire::kMountProgram, wire::mountproc::kMnt, a), nfs, catalog, out, outcome));
    EXPECT_EQ(outcome.kind, MountOutcome::Kind::Refused);
    EXPECT_FALSE(outcome.reason.empty());
    EXPECT_EQ(out, wire::testing::words({static_cast<std::uint32_t>(stat)}));
  }

  out.clear();
  ASSERT_TRUE(dispatchMount(callOf(wire::kMountProgram, wire::mountproc::kExport, {}), nfs, catalog, out, outcome));
  wire::XdrReader e(out);
  std::vector<std::string> listed;
  while (e.boolean()) {
    listed.emplace_back(e.string(1024));
    while (e.boolean()) e.string(255);  // groups
  }
  EXPECT_TRUE(e.ok());
  EXPECT_EQ(listed, (std::vector<std::string>{"/images/debian/3", "/images/debian"}));

  out.clear();
  ASSERT_TRUE(dispatchMount(callOf(wire::kMountProgram, wire::mountproc::kDump, {}), nfs, catalog, out, outcome));
  EXPECT_EQ(out, wire::testing::words({0}));  // no mount list is kept
  EXPECT_FALSE(dispatchMount(callOf(wire::kMountProgram, wire::mountproc::kMnt, Bytes{0, 0, 0}), nfs, catalog, out,
                             outcome));  // GARBAGE_ARGS
}

TEST(Portmap, GetportAndDumpNameOurPorts) {
  Ports ports;
  ports.portmapTcp = 111;
  ports.nfsTcp = 2049;
  ports.nfsUdp = 2049;
  ports.mountTcp = 20048;
  Bytes args = wire::testing::words({wire::kMountProgram, 3, wire::kIpprotoTcp, 0});
  Bytes out;
  bool noReply = true;
  ASSERT_TRUE(dispatchPortmap(callOf(wire::kPortmapProgram, wire::pmapproc::kGetport, args), ports, out, noReply));
  EXPECT_FALSE(noReply);
  EXPECT_EQ(out, wire::testing::words({20048}));
  out.clear();
  args = wire::testing::words({wire::kMountProgram, 3, wire::kIpprotoUdp, 0});  // not on UDP
  ASSERT_TRUE(dispatchPortmap(callOf(wire::kPortmapProgram, wire::pmapproc::kGetport, args), ports, out, noReply));
  EXPECT_EQ(out, wire::testing::words({0}));
  out.clear();
  args = wire::testing::words({wire::kNfsProgram, 4, wire::kIpprotoTcp, 0});  // NFSv4: not served
  ASSERT_TRUE(dispatchPortmap(callOf(wire::kPortmapProgram, wire::pmapproc::kGetport, args), ports, out, noReply));
  EXPECT_EQ(out, wire::testing::words({0}));
  out.clear();
  ASSERT_TRUE(dispatchPortmap(callOf(wire::kPortmapProgram, wire::pmapproc::kDump, {}), ports, out, noReply));
  wire::XdrReader d(out);
  int mappings = 0;
  while (d.boolean()) {
    d.u32();
    d.u32();
    d.u32();
    EXPECT_NE(d.u32(), 0U);
    ++mappings;
  }
  EXPECT_EQ(mappings, 6);  // portmap, NFS and NFS_ACL on both; MOUNT on TCP
  out.clear();
  ASSERT_TRUE(dispatchPortmap(callOf(wire::kPortmapProgram, wire::pmapproc::kCallit, {}), ports, out, noReply));
  EXPECT_TRUE(noReply);
}

}  // namespace
}  // namespace pxedust::nfs
