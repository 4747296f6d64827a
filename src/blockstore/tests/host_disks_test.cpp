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

TEST(HostDisks, ResetRefusedWhileOpenAndHeldHostsCannotOpen) {
  TempDir dir;
  auto store = Store::open(dir / "store");
  ASSERT_TRUE(store) << store.error().message;
  auto bytes = testing::randomBytes(1 << 20, 9);
  testing::writeWhole(dir / "a.img", bytes);
  ASSERT_TRUE((*store)->importImage(dir / "a.img", "deb"));
  HostDisks disks(*store);

  auto dev = disks.open("node1", "deb");
  ASSERT_TRUE(dev) << dev.error().message;
  std::vector<std::uint8_t> w(4096, 0xCD), r(4096);
  ASSERT_TRUE((*dev)->write(0, w));
  ASSERT_TRUE((*dev)->flush());
  EXPECT_TRUE(disks.isOpen("node1"));
  EXPECT_FALSE(disks.isOpen("node2"));

  auto busy = disks.reset("node1", {});
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code, EBUSY);

  // Held: the open device stays, new opens are refused; once let go of, the reset goes through.
  disks.hold("node1");
  auto refused = disks.open("node1", "deb");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, EAGAIN);
  dev->reset();
  EXPECT_FALSE(disks.isOpen("node1"));
  auto done = disks.reset("node1", {});
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ(done->base.name, "deb");
  disks.unhold("node1");

  auto again = disks.open("node1", "deb");
  ASSERT_TRUE(again) << again.error().message;
  ASSERT_TRUE((*again)->read(0, r));
  EXPECT_TRUE(std::equal(r.begin(), r.end(), bytes.begin()));  // back to the base

  auto missing = disks.reset("node9", {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENOENT);
}

}  // namespace
}  // namespace pxedust::blockstore
