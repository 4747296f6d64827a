#include "blockstore/host_disks.hpp"

#include <gtest/gtest.h>

#include "blockstore/tests/test_util.hpp"

namespace pxedust::blockstore {
namespace {

using testing::TempDir;

TEST(HostDisks, CreatesOnFirstOpenAndSharesOneDevicePerHost) {
  TempDir dir;
  auto store = Store::open(dir / "store");
  ASSERT_TRUE(store) << store.error().message;
  auto bytes = testing::randomBytes(1 << 20, 7);
  testing::writeWhole(dir / "a.img", bytes);
  ASSERT_TRUE((*store)->importImage(dir / "a.img", "deb"));
  ASSERT_TRUE((*store)->importImage(dir / "a.img", "other"));
  HostDisks disks(*store);

  auto a1 = disks.open("node1", "deb");
  ASSERT_TRUE(a1) << a1.error().message;
  auto a2 = disks.open("node1", "deb");  // a second session of the same host: the same device
  ASSERT_TRUE(a2) << a2.error().message;
  EXPECT_EQ(a1->get(), a2->get());
  auto b = disks.open("node2", "deb");
  ASSERT_TRUE(b);
  EXPECT_NE(a1->get(), b->get());
  EXPECT_EQ(disks.openCount(), 2U);

  std::vector<std::uint8_t> w(4096, 0xAB), r(4096);
  ASSERT_TRUE((*a1)->write(0, w));
  ASSERT_TRUE((*a1)->flush());
  ASSERT_TRUE((*b)->read(0, r));
  EXPECT_TRUE(std::equal(r.begin(), r.end(), bytes.begin()));  // host 2 sees the base, not host 1's write

  // The config now names another image: refused, never silently re-based.
  auto wrong = disks.open("node1", "other");
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("now names image 'other'"), std::string::npos) << wrong.error().message;

  // Closed by every holder, then reopened: the write persisted.
  a1->reset();
  a2->reset();
  EXPECT_EQ(disks.openCount(), 1U);
  wrong = disks.open("node1", "other");  // closed now, and still refused: the overlay is on "deb"
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("overlay delete node1"), std::string::npos) << wrong.error().message;
  auto again = disks.open("node1", "deb");
  ASSERT_TRUE(again) << again.error().message;
  ASSERT_TRUE((*again)->read(0, r));
  EXPECT_EQ(r, w);

  EXPECT_FALSE(disks.open("node3", "missing"));
  EXPECT_FALSE(disks.open("../evil", "deb"));
}

}  // namespace
}  // namespace pxedust::blockstore
