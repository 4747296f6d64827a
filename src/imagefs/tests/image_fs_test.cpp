// ImageFs against real images: one source tree, built into images of several formats by mke2fs -d
// (no root needed), every file, link and directory compared with what the source tree says.
#include "imagefs/image_fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "imagefs/tests/test_util.hpp"

namespace pxedust::imagefs {
namespace {

using namespace testing;
namespace fs = std::filesystem;

// Enough for a directory of many blocks, linear and as an htree. mke2fs -d fills a directory in
// quadratic time, and every test case runs in its own process under CTest, so each that uses these
// formats builds the image again: 4,000 keeps that to a second. The 20,000-entry listing, through a
// real NFS client, is tests/integration/test_nfs.py's.
constexpr int kBigDirEntries = 4'000;

std::vector<std::uint8_t> pattern(std::size_t n, std::uint64_t seed) {
  std::vector<std::uint8_t> v(n);
  std::uint64_t x = seed;
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    v[i] = static_cast<std::uint8_t>(x >> 56);
  }
  return v;
}

void writeAt(const fs::path& p, std::uint64_t offset, const std::vector<std::uint8_t>& bytes) {
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

std::vector<std::uint8_t> readSource(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string bigDirName(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "entry-%05d-", i);
  return buf + std::string(static_cast<std::size_t>(i % 40), 'x');
}

struct Format {
  const char* name;
  const char* options;
  bool full;   // the tree with the big directory (kBigDirEntries entries)
  bool index;  // e2fsck -fD afterwards, which turns directories of more than a block into htrees
};

// The source trees and their images, built once for the whole test program.
class Source {
 public:
  static Source& get() {
    static Source s;
    return s;
  }
  [[nodiscard]] fs::path root(bool full) const { return dir_.path() / (full ? "full" : "lite"); }
  std::string slowTarget;

  // The image of `f`, built on first use. The indexed full image is a copy of the linear one that
  // e2fsck -D then indexes.
  fs::path image(const Format& f) {
    auto it = images_.find(f.name);
    if (it != images_.end()) return it->second;
    fs::path img = dir_.path() / (std::string(f.name) + ".img");
    bool ok = false;
    if (f.full) {
      const fs::path linear = dir_.path() / "full-linear.img";
      if (!fs::exists(linear) && !makeImage(linear, root(true), "-t ext4 -N 30000", "96M")) return {};
      ok = run("cp --sparse=always " + shellQuote(linear.string()) + " " + shellQuote(img.string()));
    } else {
      ok = makeImage(img, root(false), std::string(f.options) + " -N 30000", "96M");
    }
    if (!ok) return {};
    if (f.index) {
      // e2fsck exits 1 when it changed something (it indexed directories): both are fine.
      int rc = std::system((tool("e2fsck") + " -fyD " + shellQuote(img.string()) + " >/dev/null 2>&1").c_str());
      if (!WIFEXITED(rc) || WEXITSTATUS(rc) > 1) return {};
    }
    images_[f.name] = img;
    return img;
  }

 private:
  Source() {
    slowTarget = std::string(190, 'y') + "/0123456789";  // 201 bytes: past i_block's 60
    fillTree(root(false));
    fillTree(root(true));
    fs::create_directories(root(true) / "bigdir");
    for (int i = 0; i < kBigDirEntries; ++i) {
      int fd = ::open((root(true) / "bigdir" / bigDirName(i)).c_str(), O_WRONLY | O_CREAT, 0644);
      if (fd < 0) std::abort();
      ::close(fd);
    }
  }
  void fillTree(const fs::path& root) {
    fs::create_directories(root / "a/b/c");
    fs::create_directories(root / "smalldir");
    writeAt(root / "empty", 0, {});
    const std::string hello = "hello, world\n";
    writeAt(root / "small", 0, {hello.begin(), hello.end()});
    writeAt(root / "oneblock", 0, pattern(4096, 1));
    writeAt(root / "big", 0, pattern(5 * 1024 * 1024 + 17, 2));
    // Sparse: data at the start, in the middle (unaligned) and at the very end, holes between.
    writeAt(root / "sparse", 0, pattern(5000, 3));
    writeAt(root / "sparse", 1024 * 1024 + 123, pattern(777, 4));
    fs::resize_file(root / "sparse", 10 * 1024 * 1024);
    writeAt(root / "sparse", 10 * 1024 * 1024 - 100, pattern(100, 5));
    writeAt(root / "a/b/c/deep.txt", 0, pattern(300, 6));
    writeAt(root / "smalldir/one", 0, pattern(10, 7));
    writeAt(root / "smalldir/two", 0, {});
    writeAt(root / "mode0751", 0, pattern(20, 8));
    ::chmod((root / "mode0751").c_str(), 0751);
    writeAt(root / "setuid", 0, pattern(20, 9));
    ::chmod((root / "setuid").c_str(), 04755);
    writeAt(root / "owned", 0, pattern(20, 10));
    if (::geteuid() == 0) {
      // Owners above 65535 test the high 16 bits of uid and gid.
      if (::chown((root / "owned").c_str(), 70000, 80000) != 0) std::abort();
    }
    struct timespec times[2] = {{1'500'000'000, 0}, {1'600'000'000, 0}};
    ::utimensat(AT_FDCWD, (root / "small").c_str(), times, AT_SYMLINK_NOFOLLOW);
    fs::create_symlink("small", root / "fast");
    fs::create_symlink(slowTarget, root / "slow");
    fs::create_symlink("/etc/passwd", root / "absolute");
    if (::mkfifo((root / "fifo").c_str(), 0640) != 0) std::abort();
    fs::create_hard_link(root / "small", root / "small.link");
  }
  TempDir dir_;
  std::map<std::string, fs::path> images_;
};

class ImageFsTest : public ::testing::TestWithParam<Format> {
 protected:
  void SetUp() override {
    if (tool("mke2fs").empty() || tool("debugfs").empty() || tool("e2fsck").empty()) GTEST_SKIP() << "e2fsprogs missing";
    src_ = &Source::get();
    srcRoot_ = src_->root(GetParam().full);
    img_ = src_->image(GetParam());
    ASSERT_FALSE(img_.empty()) << "building the image failed";
    auto opened = ImageFs::open(img_);
    ASSERT_TRUE(opened) << opened.error().message;
    fs_ = *opened;
  }

  Ino ino(const std::string& rel) {
    auto r = resolve(*fs_, rel);
    EXPECT_TRUE(r) << rel << ": " << r.error().message;
    return r ? *r : 0;
  }
  std::vector<std::uint8_t> readAll(Ino i, std::size_t chunk) {
    std::vector<std::uint8_t> out;
    std::vector<std::uint8_t> buf(chunk);
    for (std::uint64_t off = 0;;) {
      auto r = fs_->read(i, off, buf);
      if (!r) {
        ADD_FAILURE() << r.error().message;
        return out;
      }
      out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(r->bytes));
      off += r->bytes;
      if (r->eof) return out;
      if (r->bytes == 0) {
        ADD_FAILURE() << "short read without eof";
        return out;
      }
    }
  }

  TempDir tmp_;
  Source* src_ = nullptr;
  fs::path srcRoot_;
  fs::path img_;
  std::shared_ptr<ImageFs> fs_;
};

FileType typeOf(const struct stat& st) {
  if (S_ISREG(st.st_mode)) return FileType::Regular;
  if (S_ISDIR(st.st_mode)) return FileType::Directory;
  if (S_ISLNK(st.st_mode)) return FileType::Symlink;
  if (S_ISFIFO(st.st_mode)) return FileType::Fifo;
  if (S_ISCHR(st.st_mode)) return FileType::CharDevice;
  if (S_ISBLK(st.st_mode)) return FileType::BlockDevice;
  if (S_ISSOCK(st.st_mode)) return FileType::Socket;
  return FileType::Unknown;
}

TEST_P(ImageFsTest, EveryObjectMatchesTheSourceTree) {
  std::map<std::string, Ino> inodes;  // relative path -> inode
  inodes[""] = kRootIno;
  std::vector<fs::path> paths{srcRoot_};
  for (const auto& e : fs::recursive_directory_iterator(srcRoot_)) paths.push_back(e.path());
  for (const auto& p : paths) {
    // lexically: fs::relative() would resolve the symlinks
    const std::string rel = p == srcRoot_ ? "" : p.lexically_relative(srcRoot_).string();
    SCOPED_TRACE(rel);
    struct stat st{};
    ASSERT_EQ(::lstat(p.c_str(), &st), 0);
    const Ino i = rel.empty() ? kRootIno : ino(rel);
    ASSERT_NE(i, 0u);
    inodes[rel] = i;
    auto a = fs_->getattr(i);
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(a->ino, i);
    EXPECT_EQ(a->type, typeOf(st));
    EXPECT_EQ(a->mode, st.st_mode & 07777);
    EXPECT_EQ(a->uid, st.st_uid);
    EXPECT_EQ(a->gid, st.st_gid);
    if (!S_ISDIR(st.st_mode)) {
      EXPECT_EQ(a->nlink, st.st_nlink);
      EXPECT_EQ(a->size, static_cast<std::uint64_t>(st.st_size));
    }
    if (!S_ISLNK(st.st_mode) && !S_ISDIR(st.st_mode)) {
      EXPECT_EQ(a->mtime.seconds, st.st_mtim.tv_sec);
    }

    if (S_ISREG(st.st_mode)) {
      EXPECT_EQ(readAll(i, 65536 + 3), readSource(p));
      // At and past the end: nothing, with eof.
      std::vector<std::uint8_t> buf(10);
      auto r = fs_->read(i, static_cast<std::uint64_t>(st.st_size), buf);
      ASSERT_TRUE(r);
      EXPECT_EQ(r->bytes, 0u);
      EXPECT_TRUE(r->eof);
      r = fs_->read(i, UINT64_MAX, buf);
      ASSERT_TRUE(r);
      EXPECT_EQ(r->bytes, 0u);
    } else if (S_ISLNK(st.st_mode)) {
      auto t = fs_->readlink(i);
      ASSERT_TRUE(t) << t.error().message;
      EXPECT_EQ(*t, fs::read_symlink(p).string());
      std::vector<std::uint8_t> buf(10);
      auto r = fs_->read(i, 0, buf);
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code, EINVAL);
    } else if (S_ISDIR(st.st_mode)) {
      // Every name exactly once, in batches of 7, plus "." and "..".
      std::multiset<std::string> want{".", ".."};
      if (rel.empty()) want.insert("lost+found");  // mke2fs makes it
      for (const auto& e : fs::directory_iterator(p)) want.insert(e.path().filename().string());
      std::multiset<std::string> got;
      for (const auto& e : listAll(*fs_, i, 7)) {
        got.insert(e.name);
        if (e.name == ".") {
          EXPECT_EQ(e.ino, i);
        }
        if (e.name == "..") {
          EXPECT_EQ(e.ino, rel.empty() ? kRootIno : inodes[fs::path(rel).parent_path().string()]);
        }
        if (e.name != "." && e.name != ".." && e.type != FileType::Unknown) {
          auto ea = fs_->getattr(e.ino);
          ASSERT_TRUE(ea) << e.name;
          EXPECT_EQ(ea->type, e.type) << e.name;
        }
      }
      EXPECT_EQ(got, want);
      if (rel != "bigdir") {
        EXPECT_EQ(fs_->getattr(i)->nlink, st.st_nlink + (rel.empty() ? 1 : 0));
      }
    }
  }
  // Hard links share an inode.
  EXPECT_EQ(inodes["small"], inodes["small.link"]);
  EXPECT_EQ(fs_->getattr(inodes["small"])->nlink, 2u);
}

TEST_P(ImageFsTest, SparseFileReadsZerosInItsHolesAndUsesLittleSpace) {
  const Ino i = ino("sparse");
  auto a = fs_->getattr(i);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->size, 10u * 1024 * 1024);
  EXPECT_LT(a->usedBytes, 1024u * 1024);
  std::vector<std::uint8_t> buf(4096, 0xee);
  auto r = fs_->read(i, 512 * 1024, buf);  // entirely inside a hole
  ASSERT_TRUE(r);
  EXPECT_EQ(r->bytes, buf.size());
  EXPECT_EQ(buf, std::vector<std::uint8_t>(4096, 0));
  // A read that ends exactly at EOF says so.
  std::vector<std::uint8_t> tail(100);
  r = fs_->read(i, 10 * 1024 * 1024 - 100, tail);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->bytes, 100u);
  EXPECT_TRUE(r->eof);
  EXPECT_EQ(tail, pattern(100, 5));
  auto big = fs_->getattr(ino("big"));
  EXPECT_GE(big->usedBytes, big->size);
}

TEST_P(ImageFsTest, BigDirectoryResumesAtEveryCookieAlsoAfterReopening) {
  if (!GetParam().full) GTEST_SKIP() << "only the full tree has the big directory";
  const Ino dir = ino("bigdir");
  auto t0 = std::chrono::steady_clock::now();
  auto all = listAll(*fs_, dir, SIZE_MAX);
  auto t1 = std::chrono::steady_clock::now();
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kBigDirEntries) + 2);
  std::set<std::string> names;
  std::set<std::uint64_t> cookies;
  for (const auto& e : all) {
    names.insert(e.name);
    cookies.insert(e.cookie);
    EXPECT_NE(e.cookie, 0u);
  }
  EXPECT_EQ(names.size(), all.size());
  EXPECT_EQ(cookies.size(), all.size());
  for (int i = 0; i < kBigDirEntries; ++i) ASSERT_TRUE(names.count(bigDirName(i))) << bigDirName(i);
  RecordProperty("full_listing_us",
                 static_cast<int>(std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count()));

  auto firstAfter = [&](ImageFs& f, std::uint64_t cookie) -> std::optional<std::string> {
    std::optional<std::string> first;
    auto r = f.readdir(dir, cookie, [&](const DirEntry& e) {
      first = std::string(e.name);
      return false;
    });
    EXPECT_TRUE(r);
    if (r) {
      EXPECT_EQ(r->eof, !first.has_value());
    }
    return first;
  };
  // One entry per call, from every cookie: always exactly the next entry.
  for (std::size_t k = 0; k + 1 < all.size(); ++k) ASSERT_EQ(firstAfter(*fs_, all[k].cookie), all[k + 1].name) << k;
  EXPECT_EQ(firstAfter(*fs_, all.back().cookie), std::nullopt);
  EXPECT_EQ(firstAfter(*fs_, UINT64_MAX), std::nullopt);

  // Batches of 13 give the same sequence.
  auto batched = listAll(*fs_, dir, 13);
  ASSERT_EQ(batched.size(), all.size());
  for (std::size_t k = 0; k < all.size(); ++k) EXPECT_EQ(batched[k].cookie, all[k].cookie);

  // A new process (a new ImageFs) honours the cookies the old one gave.
  auto again = ImageFs::open(img_);
  ASSERT_TRUE(again);
  for (std::size_t k = 0; k + 1 < all.size(); k += 97) ASSERT_EQ(firstAfter(**again, all[k].cookie), all[k + 1].name);
  // Lookup of entries anywhere in the directory.
  for (int i : {0, 1, kBigDirEntries / 2, kBigDirEntries - 1}) {
    auto r = fs_->lookup(dir, bigDirName(i));
    ASSERT_TRUE(r) << bigDirName(i);
  }
}

TEST_P(ImageFsTest, DotAndDotDot) {
  EXPECT_EQ(*fs_->lookup(kRootIno, "."), kRootIno);
  EXPECT_EQ(*fs_->lookup(kRootIno, ".."), kRootIno);
  const Ino a = ino("a");
  const Ino b = ino("a/b");
  EXPECT_EQ(*fs_->lookup(a, ".."), kRootIno);
  EXPECT_EQ(*fs_->lookup(b, "."), b);
  EXPECT_EQ(*fs_->lookup(b, ".."), a);
  EXPECT_EQ(*fs_->lookup(ino("smalldir"), ".."), kRootIno);
}

TEST_P(ImageFsTest, SymlinksAreNeverFollowed) {
  const Ino abs = ino("absolute");
  EXPECT_EQ(fs_->getattr(abs)->type, FileType::Symlink);
  EXPECT_EQ(*fs_->readlink(abs), "/etc/passwd");
  EXPECT_EQ(*fs_->readlink(ino("slow")), src_->slowTarget);
  auto r = fs_->lookup(ino("fast"), "x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOTDIR);
}

TEST_P(ImageFsTest, ErrorsCarryErrnoCodes) {
  auto st = fs_->statfs();
  ASSERT_TRUE(st);
  for (std::uint64_t bad : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{8}, st->inodes + 1, std::uint64_t{UINT32_MAX} + 1,
                            UINT64_MAX}) {
    auto a = fs_->getattr(bad);
    ASSERT_FALSE(a) << bad;
    EXPECT_EQ(a.error().code, ESTALE) << bad;
    std::vector<std::uint8_t> buf(1);
    EXPECT_EQ(fs_->read(bad, 0, buf).error().code, ESTALE);
  }
  EXPECT_EQ(fs_->getattr(st->inodes - 1).error().code, ESTALE);  // never allocated
  const Ino file = ino("small");
  EXPECT_EQ(fs_->lookup(file, "x").error().code, ENOTDIR);
  EXPECT_EQ(fs_->readdir(file, 0, [](const DirEntry&) { return true; }).error().code, ENOTDIR);
  EXPECT_EQ(fs_->lookup(kRootIno, "missing").error().code, ENOENT);
  EXPECT_EQ(fs_->lookup(kRootIno, std::string(256, 'n')).error().code, ENAMETOOLONG);
  EXPECT_EQ(fs_->lookup(kRootIno, "").error().code, EINVAL);
  EXPECT_EQ(fs_->lookup(kRootIno, "a/b").error().code, EINVAL);
  std::vector<std::uint8_t> buf(16);
  EXPECT_EQ(fs_->read(kRootIno, 0, buf).error().code, EISDIR);
  EXPECT_EQ(fs_->read(ino("fifo"), 0, buf).error().code, EINVAL);
  EXPECT_EQ(fs_->readlink(file).error().code, EINVAL);
}

TEST_P(ImageFsTest, StatfsDescribesTheFileSystem) {
  auto st = fs_->statfs();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->blockSize, fs_->info().blockSize);
  EXPECT_EQ(st->blocks * st->blockSize, 96u * 1024 * 1024);
  EXPECT_LT(st->freeBlocks, st->blocks);
  EXPECT_LE(st->reservedBlocks, st->freeBlocks);
  EXPECT_GE(st->inodes, 29'000u);  // -N 30000, rounded to whole inode table blocks
  EXPECT_LT(st->freeInodes, st->inodes - (GetParam().full ? kBigDirEntries : 20));
  EXPECT_NE(fs_->info().uuid, (std::array<std::uint8_t, 16>{}));
}

TEST_P(ImageFsTest, ConcurrentReadsAgree) {
  const Ino big = ino("big");
  const auto want = readSource(srcRoot_ / "big");
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::uint8_t> buf(100'000);
      for (std::uint64_t off = static_cast<std::uint64_t>(t) * 7919; off < want.size(); off += buf.size()) {
        auto r = fs_->read(big, off, buf);
        if (!r || std::memcmp(buf.data(), want.data() + off, r->bytes) != 0) ++bad;
        if (!fs_->getattr(big)) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Formats, ImageFsTest,
                         ::testing::Values(Format{"ext4_linear", "-t ext4", true, false},
                                           Format{"ext4_htree", "-t ext4", true, true},
                                           Format{"ext4_1k", "-t ext4 -b 1024", false, true},
                                           Format{"ext4_inline", "-t ext4 -O inline_data", false, false},
                                           Format{"ext3", "-t ext3", false, true},
                                           Format{"ext2_small_inodes", "-t ext2 -I 128", false, false}),
                         [](const auto& p) { return std::string(p.param.name); });

// What mke2fs -d cannot make without root or does not copy: device nodes (debugfs mknod), nanosecond
// and post-2038 timestamps (debugfs set_inode_field).
class ImageFsDebugfsTest : public ImageFsTest {};

TEST_P(ImageFsDebugfsTest, DevicesTimestampsAndHtree) {
  const fs::path shared = img_;
  img_ = tmp_.path() / "changed.img";
  ASSERT_TRUE(run("cp --sparse=always " + shellQuote(shared.string()) + " " + shellQuote(img_.string())));
  ASSERT_TRUE(debugfsWrite(img_, "mknod null c 1 3"));            // old encoding (8-bit numbers)
  ASSERT_TRUE(debugfsWrite(img_, "mknod disk b 300 1000"));       // new encoding
  // mtime_extra: nanoseconds << 2 | epoch bits; epoch 1 adds 2^32 seconds.
  ASSERT_TRUE(debugfsWrite(img_, "sif /small mtime_extra 0x1D6F3455"));
  auto reopened = ImageFs::open(img_);
  ASSERT_TRUE(reopened) << reopened.error().message;
  auto& f = **reopened;
  auto nullIno = resolve(f, "null");
  ASSERT_TRUE(nullIno) << nullIno.error().message;
  auto diskIno = resolve(f, "disk");
  ASSERT_TRUE(diskIno) << diskIno.error().message;
  auto null = f.getattr(*nullIno);
  ASSERT_TRUE(null);
  EXPECT_EQ(null->type, FileType::CharDevice);
  EXPECT_EQ(null->rdevMajor, 1u);
  EXPECT_EQ(null->rdevMinor, 3u);
  auto disk = f.getattr(*diskIno);
  ASSERT_TRUE(disk);
  EXPECT_EQ(disk->type, FileType::BlockDevice);
  EXPECT_EQ(disk->rdevMajor, 300u);
  EXPECT_EQ(disk->rdevMinor, 1000u);
  std::vector<std::uint8_t> buf(4);
  EXPECT_EQ(f.read(*diskIno, 0, buf).error().code, EINVAL);
  auto small = f.getattr(*resolve(f, "small"));
  ASSERT_TRUE(small);
  EXPECT_EQ(small->mtime.seconds, 1'600'000'000LL + (1LL << 32));
  EXPECT_EQ(small->mtime.nanoseconds, 123'456'789u);
  // The big directory really is an htree here.
  EXPECT_TRUE(run(tool("debugfs") + " -R 'htree_dump /bigdir' " + shellQuote(img_.string()) + " 2>&1 | grep -q 'Root node dump'"));
}

INSTANTIATE_TEST_SUITE_P(Ext4, ImageFsDebugfsTest, ::testing::Values(Format{"ext4_htree", "-t ext4", true, true}),
                         [](const auto& p) { return std::string(p.param.name); });

// POSIX ACLs come back as the entries Linux stored (debugfs ea_set writes them as the kernel would);
// a file without one has none, and only directories have a default ACL.
TEST(ImageFsAcl, EntriesAsStoredAndNoneWithout) {
  TempDir tmp;
  fs::create_directories(tmp / "tree" / "shared");
  std::ofstream(tmp / "tree" / "log") << "x";
  std::ofstream(tmp / "tree" / "plain") << "y";
  const fs::path img = tmp / "acl.img";
  ASSERT_TRUE(makeImage(img, tmp / "tree", "-t ext4", "8M"));
  // Linux's xattr form: version 2, then {tag, perm, id} little-endian.
  auto value = [](std::initializer_list<AclEntry> entries) {
    std::string v{'\x02', '\0', '\0', '\0'};
    for (const auto& e : entries)
      for (std::uint32_t x : {std::uint32_t{e.tag} | std::uint32_t{e.perm} << 16, e.id})
        for (int i = 0; i < 4; ++i) v += static_cast<char>((x >> (8 * i)) & 0xff);
    return v;
  };
  constexpr std::uint32_t kNone = 0xffffffff;  // what Linux writes for the tags without an id
  std::vector<AclEntry> access{{acltag::kUserObj, 6, kNone}, {acltag::kUser, 4, 1234},
                                     {acltag::kGroupObj, 4, kNone}, {acltag::kMask, 4, kNone},
                                     {acltag::kOther, 0, kNone}};
  std::vector<AclEntry> dflt{{acltag::kUserObj, 7, kNone}, {acltag::kGroupObj, 5, kNone},
                                   {acltag::kGroup, 7, 50}, {acltag::kMask, 7, kNone}, {acltag::kOther, 5, kNone}};
  std::ofstream(tmp / "access.bin", std::ios::binary)
      << value({access[0], access[1], access[2], access[3], access[4]});
  std::ofstream(tmp / "default.bin", std::ios::binary) << value({dflt[0], dflt[1], dflt[2], dflt[3], dflt[4]});
  ASSERT_TRUE(debugfsWrite(img, "ea_set -f " + (tmp / "access.bin").string() + " log system.posix_acl_access"));
  ASSERT_TRUE(
      debugfsWrite(img, "ea_set -f " + (tmp / "default.bin").string() + " shared system.posix_acl_default"));
  for (auto* acl : {&access, &dflt})  // ... and what comes back for them
    for (auto& e : *acl)
      if (e.id == kNone) e.id = 0;
  auto opened = ImageFs::open(img);
  ASSERT_TRUE(opened) << opened.error().message;
  auto& f = **opened;
  auto log = resolve(f, "log");
  auto plain = resolve(f, "plain");
  auto shared = resolve(f, "shared");
  ASSERT_TRUE(log && plain && shared);
  auto a = f.acl(*log, AclKind::Access);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(*a, access);
  EXPECT_TRUE(f.acl(*log, AclKind::Default)->empty());  // not a directory
  EXPECT_TRUE(f.acl(*plain, AclKind::Access)->empty());
  auto d = f.acl(*shared, AclKind::Default);
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(*d, dflt);
  EXPECT_TRUE(f.acl(*shared, AclKind::Access)->empty());
  EXPECT_FALSE(f.acl(999999, AclKind::Access));  // no such inode
}

}  // namespace
}  // namespace pxedust::imagefs
