// READDIR/READDIRPLUS budgets (RFC 1813 §3.3.16-17): the encoder stops before a budget would be
// exceeded, says how many entries it took, sends eof only when nothing was left out, answers
// NFS3ERR_TOOSMALL when not one entry fits, and a directory listed call after call comes out
// exactly once.
#include "nfs/wire/readdir.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "nfs/tests/test_util.hpp"

namespace pxedust::nfs::wire {
namespace {

using testing::Bytes;
using testing::words;

constexpr CookieVerf kVerf{0, 0, 0, 0, 0, 0, 0, 1};
const Bytes kHandle = {1, 2, 3, 4, 5, 6, 7, 8};

DirEntry entry(std::uint64_t i, std::string_view name, bool plus) {
  DirEntry e;
  e.fileid = 100 + i;
  e.name = name;
  e.cookie = i + 1;
  if (plus) {
    Fattr3 a;
    a.fileid = e.fileid;
    e.attr = a;
    e.handle = kHandle;
  }
  return e;
}

// Parses a listing back as a client would; returns the cookies and eof.
struct Parsed {
  std::vector<std::uint64_t> cookies;
  bool eof = false;
  std::size_t resok = 0;
};
Parsed parse(std::span<const std::uint8_t> reply, bool plus) {
  XdrReader r(reply);
  Parsed p;
  EXPECT_EQ(r.u32(), 0u);
  readPostOpAttr(r);
  r.fixedOpaque(8);
  while (r.boolean()) {
    r.u64();
    r.string(255);
    p.cookies.push_back(r.u64());
    if (plus) {
      readPostOpAttr(r);
      if (r.boolean()) readFh3(r);
    }
  }
  p.eof = r.boolean();
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.remaining(), 0u);
  p.resok = reply.size() - 4;
  return p;
}

TEST(NfsReaddir, KnownLayoutOfOneEntry) {
  std::array<std::uint8_t, 256> buf{};
  auto enc = DirEncoder::readdir(buf, 4096, std::nullopt, kVerf);
  EXPECT_TRUE(enc.add(entry(0, "abc", false)));
  EXPECT_EQ(enc.finish(true), Nfsstat3::Ok);
  Bytes expected = words({0, 0, 0, 1, 1, 0, 100});
  testing::putString(expected, "abc");
  testing::put64(expected, 1);
  testing::put32(expected, 0);
  testing::put32(expected, 1);
  EXPECT_EQ(testing::toBytes(enc.written()), expected);
  EXPECT_EQ(enc.resokBytes(), expected.size() - 4);
}

TEST(NfsReaddir, CountStopsBeforeItIsExceeded) {
  // header 12 (no attributes, verifier) + trailer 8 + 28 per one-letter entry
  std::array<std::uint8_t, 4096> buf{};
  auto enc = DirEncoder::readdir(buf, 12 + 8 + 2 * 28, std::nullopt, kVerf);
  EXPECT_TRUE(enc.add(entry(0, "a", false)));
  EXPECT_TRUE(enc.add(entry(1, "b", false)));
  EXPECT_FALSE(enc.add(entry(2, "c", false)));
  EXPECT_FALSE(enc.add(entry(3, "d", false)));  // refused once, refused after
  EXPECT_EQ(enc.entries(), 2u);
  EXPECT_TRUE(enc.full());
  EXPECT_EQ(enc.finish(true), Nfsstat3::Ok);
  auto p = parse(enc.written(), false);
  EXPECT_EQ(p.cookies, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_FALSE(p.eof);  // an entry was left out, whatever the caller said
  EXPECT_EQ(p.resok, 12u + 8 + 2 * 28);
}

TEST(NfsReaddirplus, MaxcountSmallStopsAndReports) {
  // Each entry: 28 (directory part) + 88 (attributes) + 4 + 12 (handle) = 132.
  const DirEntry probe = entry(0, "a", true);
  ASSERT_EQ(dirEntrySize(probe), 28u);
  ASSERT_EQ(dirEntryPlusSize(probe), 132u);
  std::array<std::uint8_t, 4096> buf{};
  const std::uint32_t maxcount = 12 + 8 + 3 * 132 - 1;
  auto enc = DirEncoder::readdirplus(buf, 100000, maxcount, std::nullopt, kVerf);
  std::size_t taken = 0;
  for (int i = 0; i < 10 && enc.add(entry(static_cast<std::uint64_t>(i), "a", true)); ++i) ++taken;
  EXPECT_EQ(taken, 2u);
  EXPECT_EQ(enc.entries(), 2u);
  EXPECT_EQ(enc.finish(false), Nfsstat3::Ok);
  auto p = parse(enc.written(), true);
  EXPECT_EQ(p.cookies.size(), 2u);
  EXPECT_LE(p.resok, maxcount);
}

TEST(NfsReaddirplus, DircountCountsOnlyTheDirectoryPart) {
  std::array<std::uint8_t, 8192> buf{};
  auto enc = DirEncoder::readdirplus(buf, 3 * 28, 8192, std::nullopt, kVerf);
  std::size_t taken = 0;
  while (enc.add(entry(taken, "a", true))) ++taken;
  EXPECT_EQ(taken, 3u);
  EXPECT_EQ(enc.dirBytes(), 3u * 28);
}

TEST(NfsReaddirplus, NotOneEntryFitsIsTooSmall) {
  std::array<std::uint8_t, 4096> buf{};
  auto enc = DirEncoder::readdirplus(buf, 4096, 12 + 8 + 131, std::nullopt, kVerf);
  EXPECT_FALSE(enc.add(entry(0, "a", true)));
  EXPECT_EQ(enc.finish(true), Nfsstat3::TooSmall);
  EXPECT_EQ(testing::toBytes(enc.written()), words({10005, 0}));
  EXPECT_TRUE(enc.ok());
  std::array<std::uint8_t, 6> tinyBuf{};  // not even status and dir_attributes fit
  auto none = DirEncoder::readdir(tinyBuf, 4096, std::nullopt, kVerf);
  EXPECT_EQ(none.finish(true), Nfsstat3::TooSmall);
  EXPECT_FALSE(none.ok());
  // A budget that cannot hold even an empty list.
  auto tiny = DirEncoder::readdir(buf, 19, std::nullopt, kVerf);
  EXPECT_FALSE(tiny.add(entry(0, "a", false)));
  EXPECT_EQ(tiny.finish(true), Nfsstat3::TooSmall);
  // An empty directory within budget is an empty, eof listing, not TOOSMALL.
  auto empty = DirEncoder::readdir(buf, 20, std::nullopt, kVerf);
  EXPECT_EQ(empty.finish(true), Nfsstat3::Ok);
  EXPECT_TRUE(parse(empty.written(), false).eof);
}

TEST(NfsReaddirplus, BufferIsABudgetToo) {
  std::array<std::uint8_t, 4 + 12 + 8 + 132> buf{};
  auto enc = DirEncoder::readdirplus(buf, 1u << 20, 1u << 20, std::nullopt, kVerf);
  EXPECT_TRUE(enc.add(entry(0, "a", true)));
  EXPECT_FALSE(enc.add(entry(1, "a", true)));
  EXPECT_EQ(enc.finish(true), Nfsstat3::Ok);
  EXPECT_EQ(enc.written().size(), buf.size());
}

TEST(NfsReaddirplus, EntriesNeverExceedAnyBudget) {
  std::vector<std::string> names;
  for (int i = 0; i < 40; ++i) names.push_back(std::string(static_cast<std::size_t>(1 + (i * 7) % 30), 'n'));
  std::array<std::uint8_t, 16384> buf{};
  for (std::uint32_t maxcount = 0; maxcount < 3000; maxcount += 37) {
    for (std::uint32_t dircount : {0u, 50u, 300u, 100000u}) {
      for (bool withDirAttr : {false, true}) {
        PostOpAttr dirAttr = withDirAttr ? PostOpAttr(Fattr3{}) : std::nullopt;
        auto enc = DirEncoder::readdirplus(buf, dircount, maxcount, dirAttr, kVerf);
        std::size_t i = 0;
        while (i < names.size() && enc.add(entry(i, names[i], i % 3 != 0))) ++i;
        const bool all = i == names.size();
        const Nfsstat3 st = enc.finish(true);
        if (st == Nfsstat3::TooSmall) {
          EXPECT_EQ(enc.entries(), 0u);
          continue;
        }
        EXPECT_LE(enc.resokBytes(), maxcount);
        EXPECT_LE(enc.dirBytes(), dircount);
        EXPECT_EQ(enc.written().size(), 4 + enc.resokBytes());
        auto p = parse(enc.written(), true);
        EXPECT_EQ(p.cookies.size(), i);
        EXPECT_EQ(p.eof, all);
      }
    }
  }
}

TEST(NfsReaddirplus, HugeDirectoryIsListedExactlyOnce) {
  std::vector<std::string> names;
  for (int i = 0; i < 1000; ++i) names.push_back("file-" + std::to_string(i));
  std::vector<std::uint64_t> seen;
  std::uint64_t cookie = 0;  // 0: from the start; else the cookie of the last entry sent
  std::array<std::uint8_t, 4096> buf{};
  for (int call = 0; call < 1000; ++call) {
    auto enc = DirEncoder::readdirplus(buf, 512, 4096, std::nullopt, kVerf);
    std::size_t i = cookie;  // the server maps cookie -> position
    while (i < names.size() && enc.add(entry(i, names[i], true))) ++i;
    ASSERT_EQ(enc.finish(i == names.size()), Nfsstat3::Ok);
    auto p = parse(enc.written(), true);
    seen.insert(seen.end(), p.cookies.begin(), p.cookies.end());
    if (p.eof) break;
    ASSERT_FALSE(p.cookies.empty());
    cookie = p.cookies.back();
  }
  ASSERT_EQ(seen.size(), names.size());
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 1);
}

}  // namespace
}  // namespace pxedust::nfs::wire
