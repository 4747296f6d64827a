// ImageFs against bad images: not a file system, truncated, unclean, and corrupt metadata. Each
// answers a clear Error, never a crash.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "imagefs/image_fs.hpp"
#include "imagefs/tests/test_util.hpp"

namespace pxedust::imagefs {
namespace {

using namespace testing;
namespace fs = std::filesystem;

class BadImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (tool("mke2fs").empty() || tool("debugfs").empty()) GTEST_SKIP() << "e2fsprogs missing";
    src_ = tmp_.path() / "src";
    fs::create_directories(src_ / "dir");
    std::ofstream(src_ / "file") << std::string(100'000, 'f');
    for (int i = 0; i < 10; ++i) std::ofstream(src_ / "dir" / ("e" + std::to_string(i))) << i;
    img_ = tmp_.path() / "image.img";
  }
  void make(const std::string& options) { ASSERT_TRUE(makeImage(img_, src_, options, "8M")); }
  // Output of a debugfs request (read-only).
  std::string debugfs(const std::string& request) {
    std::string out;
    FILE* p = ::popen((tool("debugfs") + " -R " + shellQuote(request) + " " + shellQuote(img_.string()) + " 2>/dev/null").c_str(), "r");
    if (p == nullptr) return out;
    char buf[512];
    while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
    ::pclose(p);
    return out;
  }
  void overwrite(std::uint64_t offset, const std::vector<std::uint8_t>& bytes) {
    int fd = ::open(img_.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  }
  std::shared_ptr<ImageFs> open() {
    auto r = ImageFs::open(img_);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : nullptr;
  }

  TempDir tmp_;
  fs::path src_, img_;
};

TEST_F(BadImageTest, NotAFileSystem) {
  std::ofstream(img_) << std::string(1 << 20, 'g');
  auto r = ImageFs::open(img_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EINVAL);
  EXPECT_NE(r.error().message.find("not an ext2/ext3/ext4 file system"), std::string::npos) << r.error().message;
  std::ofstream(tmp_.path() / "tiny") << "x";
  EXPECT_FALSE(ImageFs::open(tmp_.path() / "tiny"));
  EXPECT_EQ(ImageFs::open(tmp_.path() / "missing").error().code, ENOENT);
  EXPECT_EQ(ImageFs::open(tmp_.path()).error().code, EINVAL);  // a directory
}

TEST_F(BadImageTest, TruncatedImage) {
  make("-t ext4");
  fs::resize_file(img_, 6 * 1024 * 1024);
  auto r = ImageFs::open(img_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EIO);
  EXPECT_NE(r.error().message.find("truncated"), std::string::npos) << r.error().message;
  fs::resize_file(img_, 1000);
  EXPECT_FALSE(ImageFs::open(img_));
}

TEST_F(BadImageTest, UncleanFileSystemsAreRefused) {
  make("-t ext4");
  ASSERT_TRUE(debugfsWrite(img_, "feature needs_recovery"));
  auto r = ImageFs::open(img_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EUCLEAN);
  EXPECT_NE(r.error().message.find("journal needs recovery"), std::string::npos) << r.error().message;
  ASSERT_TRUE(debugfsWrite(img_, "feature -needs_recovery"));
  ASSERT_TRUE(open());
  ASSERT_TRUE(debugfsWrite(img_, "ssv state 3"));  // valid + errors
  r = ImageFs::open(img_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EUCLEAN);
  ASSERT_TRUE(debugfsWrite(img_, "ssv state 0"));  // not cleanly unmounted
  EXPECT_EQ(ImageFs::open(img_).error().code, EUCLEAN);
}

TEST_F(BadImageTest, CorruptExtentHeaderIsAnError) {
  make("-t ext4");
  ASSERT_TRUE(debugfsWrite(img_, "sif /file block[0] 0x12345678"));  // the extent header's magic
  auto f = open();
  ASSERT_TRUE(f);
  auto ino = resolve(*f, "file");
  ASSERT_TRUE(ino);
  std::vector<std::uint8_t> buf(4096);
  auto r = f->read(*ino, 0, buf);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EIO);
  EXPECT_TRUE(f->getattr(*ino));  // the inode itself is fine
}

TEST_F(BadImageTest, ExtentOutsideTheFileSystemIsAnError) {
  make("-t ext4");
  ASSERT_TRUE(debugfsWrite(img_, "sif /file block[5] 0xfffff000"));  // first extent's physical start
  auto f = open();
  ASSERT_TRUE(f);
  std::vector<std::uint8_t> buf(4096);
  auto r = f->read(*resolve(*f, "file"), 0, buf);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EIO);
  EXPECT_NE(r.error().message.find("outside the file system"), std::string::npos) << r.error().message;
}

TEST_F(BadImageTest, IndirectBlockOutsideTheFileSystemIsAnError) {
  make("-t ext2");
  ASSERT_TRUE(debugfsWrite(img_, "sif /file block[IND] 0xfffff000"));
  auto f = open();
  ASSERT_TRUE(f);
  std::vector<std::uint8_t> buf(100'000);
  EXPECT_EQ(f->read(*resolve(*f, "file"), 0, buf).error().code, EIO);
}

TEST_F(BadImageTest, CorruptDirectoryBlockIsAnError) {
  for (const char* options : {"-t ext2", "-t ext4"}) {  // without and with metadata_csum
    SCOPED_TRACE(options);
    make(options);
    auto f = open();
    ASSERT_TRUE(f);
    const std::uint32_t bs = f->info().blockSize;
    const std::string bmap = debugfs("bmap /dir 0");
    const std::uint64_t block = std::stoull(bmap);
    ASSERT_GT(block, 0u) << bmap;
    f.reset();
    // The first record: inode 0xffffffff, rec_len 0xffff.
    overwrite(block * bs, std::vector<std::uint8_t>(8, 0xff));
    f = open();
    ASSERT_TRUE(f);
    auto dir = f->lookup(kRootIno, "dir");
    ASSERT_TRUE(dir);
    auto r = f->readdir(*dir, 0, [](const DirEntry&) { return true; });
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, EIO);
    EXPECT_EQ(f->lookup(*dir, "e1").error().code, EIO);
  }
}

TEST_F(BadImageTest, CorruptInodeChecksumIsAnError) {
  make("-t ext4");
  // "Inode 12 is part of block group 0\n\tlocated at block 1234, offset 0x0b00"
  const std::string imap = debugfs("imap /file");
  const auto at = imap.find("located at block ");
  ASSERT_NE(at, std::string::npos) << imap;
  const std::uint64_t block = std::stoull(imap.substr(at + 17));
  const std::uint64_t offset = std::stoull(imap.substr(imap.find("offset ") + 7), nullptr, 16);
  auto f = open();
  ASSERT_TRUE(f);
  const std::uint64_t ino = *resolve(*f, "file");
  const std::uint32_t bs = f->info().blockSize;
  f.reset();
  overwrite(block * bs + offset + 0x10, {0x5a, 0xa5});  // inside i_mtime
  f = open();
  ASSERT_TRUE(f);
  auto a = f->getattr(ino);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, EIO);
}

}  // namespace
}  // namespace pxedust::imagefs
