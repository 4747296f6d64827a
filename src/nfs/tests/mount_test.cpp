// PORTMAP v2 (RFC 1833 §3) and MOUNT v3 (RFC 1813 Appendix I): arguments and results byte for byte.
#include "nfs/wire/mount.hpp"

#include <gtest/gtest.h>

#include <array>

#include "nfs/tests/test_util.hpp"

namespace pxedust::nfs::wire {
namespace {

using testing::Bytes;
using testing::words;

Bytes encoded(auto&& fn) {
  std::array<std::uint8_t, 512> buf{};
  XdrWriter w(buf);
  fn(w);
  EXPECT_TRUE(w.ok());
  return testing::toBytes(w.written());
}

TEST(Portmap, GetportArgumentsAndResult) {
  // "Which port is MOUNT v3 over TCP on?", as rpcbind clients ask it.
  const Bytes args = words({100005, 3, 6, 0});
  auto m = decodePortMapping(args);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, (PortMapping{kMountProgram, 3, kIpprotoTcp, 0}));
  EXPECT_EQ(encoded([](XdrWriter& w) { encodeGetportResult(w, 2049); }), words({2049}));
  EXPECT_FALSE(decodePortMapping(std::span(args).first(15)).ok());
}

TEST(Portmap, DumpIsAnOptionalDataChain) {
  const std::array<PortMapping, 2> maps{{{100000, 2, 6, 111}, {100003, 3, 17, 2049}}};
  EXPECT_EQ(encoded([&](XdrWriter& w) { encodePortmapDump(w, maps); }),
            words({1, 100000, 2, 6, 111, 1, 100003, 3, 17, 2049, 0}));
  EXPECT_EQ(encoded([](XdrWriter& w) { encodePortmapDump(w, {}); }), words({0}));
}

TEST(Mount, DirpathUpTo1024Bytes) {
  Bytes args;
  testing::putString(args, "/images/debian");
  auto p = decodeDirpath(args);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, "/images/debian");

  Bytes max;
  testing::putString(max, std::string(1024, 'a'));
  EXPECT_TRUE(decodeDirpath(max).ok());
  Bytes over;
  testing::putString(over, std::string(1025, 'a'));
  auto r = decodeDirpath(over);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, static_cast<int>(XdrError::TooLong));
}

TEST(Mount, MntResults) {
  const std::array<std::uint8_t, 5> fh{1, 2, 3, 4, 5};
  const std::array<std::uint32_t, 1> flavors{authflavor::kSys};
  Bytes expected = words({0, 5});
  expected.insert(expected.end(), {1, 2, 3, 4, 5, 0, 0, 0});
  testing::put32(expected, 1);
  testing::put32(expected, 1);
  EXPECT_EQ(encoded([&](XdrWriter& w) { encodeMntOk(w, fh, flavors); }), expected);
  EXPECT_EQ(encoded([](XdrWriter& w) { encodeMntError(w, MountStat::Acces); }), words({13}));
}

TEST(Mount, DumpAndExportLists) {
  const std::array<MountEntry, 1> mounts{{{"node1", "/img"}}};
  Bytes dump = words({1});
  testing::putString(dump, "node1");
  testing::putString(dump, "/img");
  testing::put32(dump, 0);
  EXPECT_EQ(encoded([&](XdrWriter& w) { encodeMountList(w, mounts); }), dump);

  const std::array<std::string_view, 2> groups{"10.0.0.0/24", "node9"};
  const std::array<ExportEntry, 2> exports{{{"/a", groups}, {"/b", {}}}};
  Bytes ex = words({1});
  testing::putString(ex, "/a");
  testing::put32(ex, 1);
  testing::putString(ex, "10.0.0.0/24");
  testing::put32(ex, 1);
  testing::putString(ex, "node9");
  testing::put32(ex, 0);  // end of groups
  testing::put32(ex, 1);
  testing::putString(ex, "/b");
  testing::put32(ex, 0);  // no groups
  testing::put32(ex, 0);  // end of exports
  EXPECT_EQ(encoded([&](XdrWriter& w) { encodeExports(w, exports); }), ex);
}

TEST(Mount, ListThatDoesNotFitFailsTheWriter) {
  std::array<std::uint8_t, 16> buf{};
  XdrWriter w(buf);
  const std::array<MountEntry, 2> mounts{{{"node1", "/img"}, {"node2", "/img"}}};
  encodeMountList(w, mounts);
  EXPECT_FALSE(w.ok());
}

}  // namespace
}  // namespace pxedust::nfs::wire
