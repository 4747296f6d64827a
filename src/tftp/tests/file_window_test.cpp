#include "tftp/file_window.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/mman.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_future.hpp>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

using namespace pxedust::tftp;

namespace {

// A file of `size` bytes where byte i is a function of i, opened read-only.
class TestFile {
 public:
  explicit TestFile(std::size_t size) : bytes_(size) {
    for (std::size_t i = 0; i < size; ++i) bytes_[i] = static_cast<std::uint8_t>((i * 131) ^ (i >> 9));
    char path[] = "/tmp/pxedust-file-window-XXXXXX";
    fd_ = ::mkstemp(path);
    EXPECT_GE(fd_, 0);
    ::unlink(path);
    EXPECT_EQ(::pwrite(fd_, bytes_.data(), size, 0), static_cast<ssize_t>(size));
  }
  ~TestFile() { ::close(fd_); }
  // Drops the file's pages from the page cache; false where that cannot be done (tmpfs).
  bool evict() const {
    ::fdatasync(fd_);
    ::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED);
    return ::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED) == 0 && !resident();
  }
  [[nodiscard]] bool resident() const {
    void* m = ::mmap(nullptr, bytes_.size(), PROT_READ, MAP_SHARED, fd_, 0);
    std::vector<unsigned char> v((bytes_.size() + 4095) / 4096);
    bool all = ::mincore(m, bytes_.size(), v.data()) == 0;
    for (auto c : v) all = all && (c & 1);
    ::munmap(m, bytes_.size());
    return all;
  }
  TestFile(const TestFile&) = delete;
  TestFile& operator=(const TestFile&) = delete;

  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] std::size_t size() const { return bytes_.size(); }
  // The bytes block `b` (from 1) must hold.
  [[nodiscard]] std::vector<std::uint8_t> block(std::uint64_t b, std::uint32_t blksize) const {
    std::size_t start = std::min(bytes_.size(), static_cast<std::size_t>((b - 1) * blksize));
    std::size_t end = std::min(bytes_.size(), start + blksize);
    return {bytes_.begin() + static_cast<std::ptrdiff_t>(start), bytes_.begin() + static_cast<std::ptrdiff_t>(end)};
  }

 private:
  std::vector<std::uint8_t> bytes_;
  int fd_ = -1;
};

// FileWindow::fill from block `first`, run to completion on a one-thread pool.
pxedust::Result<void> fillOnPool(FileWindow& w, std::uint64_t first) {
  asio::io_context io;
  asio::thread_pool pool(1);
  auto done = asio::co_spawn(io, w.fill(first, pool), asio::use_future);
  io.run();
  pool.join();
  return done.get();
}

std::vector<std::uint8_t> held(const FileWindow& w, std::uint64_t b) {
  auto s = w.block(b);
  return {s.begin(), s.end()};
}

}  // namespace

TEST(TftpFileWindow, SmallBlocksRefillEveryThirtyTwoKibAndDoNotReadAhead) {
  TestFile f(100'000);
  FileWindow w(f.fd(), f.size(), 512, 1, FileWindow::Mode::Buffered);
  EXPECT_EQ(w.blockCount(), 100'000 / 512 + 1);
  EXPECT_FALSE(w.ready(1, 1));
  ASSERT_TRUE(w.fillNow(1));
  EXPECT_TRUE(w.ready(1, 64));  // 32 KiB of 512-byte blocks
  EXPECT_FALSE(w.ready(64, 65));
  EXPECT_EQ(held(w, 7), f.block(7, 512));
  w.readAhead(65);  // the buffer holds many windows: nothing is read ahead
  EXPECT_FALSE(w.ready(65, 65));
  ASSERT_TRUE(w.fillNow(65));
  EXPECT_EQ(held(w, 65), f.block(65, 512));
  EXPECT_FALSE(w.ready(64, 64));
}

TEST(TftpFileWindow, BigBlocksReadTheNextWindowAhead) {
  TestFile f(5 * 65464 + 10);
  FileWindow w(f.fd(), f.size(), 65464, 1, FileWindow::Mode::Buffered);
  ASSERT_TRUE(w.fillNow(1));
  EXPECT_EQ(held(w, 1), f.block(1, 65464));
  for (std::uint64_t b = 2; b <= w.blockCount(); ++b) {
    w.readAhead(b);  // after block b - 1 was sent
    EXPECT_EQ(held(w, b - 1), f.block(b - 1, 65464)) << "the sent block stays until the next is asked for";
    ASSERT_TRUE(w.ready(b, b)) << "block " << b << " was read ahead";
    EXPECT_EQ(held(w, b), f.block(b, 65464)) << "block " << b;
  }
  EXPECT_EQ(w.block(6).size(), 10u);
  w.readAhead(7);  // past the end: nothing to do
  EXPECT_TRUE(w.ready(6, 6));
}

TEST(TftpFileWindow, WindowsReadAheadAndAPartialAckRefills) {
  // blksize 8192 x windowsize 4 = 32 KiB: every window is a read, so the next one is read ahead.
  TestFile f(10 * 8192);  // a multiple of blksize: the last block (11) is empty
  FileWindow w(f.fd(), f.size(), 8192, 4, FileWindow::Mode::Buffered);
  ASSERT_TRUE(w.fillNow(1));
  ASSERT_TRUE(w.ready(1, 4));
  w.readAhead(5);
  // The client acknowledged only block 2: blocks 3-6 span both buffers, so the window is read again.
  EXPECT_FALSE(w.ready(3, 6));
  ASSERT_TRUE(w.fillNow(3));
  ASSERT_TRUE(w.ready(3, 6));
  for (std::uint64_t b = 3; b <= 6; ++b) EXPECT_EQ(held(w, b), f.block(b, 8192)) << "block " << b;
  w.readAhead(7);
  ASSERT_TRUE(w.ready(7, 10));
  for (std::uint64_t b = 7; b <= 10; ++b) EXPECT_EQ(held(w, b), f.block(b, 8192)) << "block " << b;
  w.readAhead(11);
  ASSERT_TRUE(w.ready(11, 11) || w.fillNow(11));
  EXPECT_TRUE(w.block(11).empty());
}

TEST(TftpFileWindow, PoolFillServesTheSameBytes) {
  TestFile f(3 * 65464 + 1);
  FileWindow w(f.fd(), f.size(), 65464, 1, FileWindow::Mode::Buffered);
  auto filled = fillOnPool(w, 2);
  ASSERT_TRUE(filled);
  ASSERT_TRUE(w.ready(2, 2));
  EXPECT_EQ(held(w, 2), f.block(2, 65464));
  w.readAhead(3);
  ASSERT_TRUE(w.ready(3, 3));
  EXPECT_EQ(held(w, 3), f.block(3, 65464));
}

TEST(TftpFileWindow, MemoryWindowAndNetascii) {
  FileWindow w(toNetascii(std::vector<std::uint8_t>{'a', '\n', 'b', '\r', 'c'}), 512);
  EXPECT_EQ(w.size(), 7u);
  EXPECT_TRUE(w.fillNow(1));
  w.readAhead(2);
  ASSERT_TRUE(w.ready(1, 1));
  EXPECT_EQ(held(w, 1), (std::vector<std::uint8_t>{'a', '\r', '\n', 'b', '\r', '\0', 'c'}));
}

TEST(TftpFileWindow, MappedServesBlocksFromTheFileItself) {
  TestFile f(600'000);
  FileWindow w(f.fd(), f.size(), 1468, 1);
  ASSERT_TRUE(w.mapped());
  EXPECT_FALSE(w.ready(1, 1)) << "nothing was checked for residency yet";
  ASSERT_TRUE(w.fillNow(1));  // just written: in the page cache
  const std::uint64_t reach = FileWindow::kVerifyAhead / 1468;  // blocks wholly inside one check
  EXPECT_TRUE(w.ready(1, reach));
  EXPECT_FALSE(w.ready(reach + 1, reach + 1));
  for (std::uint64_t b : {std::uint64_t{1}, std::uint64_t{2}, reach}) EXPECT_EQ(held(w, b), f.block(b, 1468)) << "block " << b;
  EXPECT_EQ(w.block(2).data(), w.block(1).data() + 1468) << "spans of one mapping, no copy";
  ASSERT_TRUE(w.fillNow(reach + 1));
  EXPECT_TRUE(w.ready(reach + 1, reach + 1));
  const std::uint64_t last = w.blockCount();
  ASSERT_TRUE(w.fillNow(last));
  EXPECT_TRUE(w.ready(last, last));
  EXPECT_EQ(held(w, last), f.block(last, 1468));
  EXPECT_EQ(w.block(last).size(), 600'000u % 1468);
}

TEST(TftpFileWindow, MappedPagesNotInMemoryAreFaultedInOnThePool) {
  TestFile f(1'000'000);
  FileWindow w(f.fd(), f.size(), 8192, 2);
  ASSERT_TRUE(w.mapped());
  if (f.evict()) {
    EXPECT_FALSE(w.fillNow(1)) << "the loop never touches a page that is not in memory";
  }
  auto filled = fillOnPool(w, 1);
  ASSERT_TRUE(filled);
  ASSERT_TRUE(w.ready(1, 2));
  for (std::uint64_t b = 1; b <= 2; ++b) EXPECT_EQ(held(w, b), f.block(b, 8192)) << "block " << b;
}

TEST(TftpFileWindow, BigWindowsAreBuffered) {
  TestFile f(1'000'000);
  EXPECT_TRUE(FileWindow(f.fd(), f.size(), 1468, 8).mapped());
  EXPECT_FALSE(FileWindow(f.fd(), f.size(), 65464, 1).mapped()) << "read ahead instead";
  EXPECT_FALSE(FileWindow(f.fd(), f.size(), 1468, 64).mapped());
  EXPECT_FALSE(FileWindow(f.fd(), f.size(), 512, 1, FileWindow::Mode::Buffered).mapped());
}

TEST(TftpFileWindow, MappedCheckGoesStale) {
  TestFile f(100'000);
  FileWindow w(f.fd(), f.size(), 512, 1);
  ASSERT_TRUE(w.fillNow(1));
  ASSERT_TRUE(w.ready(1, 1));
  std::this_thread::sleep_for(FileWindow::kVerifyFresh + std::chrono::milliseconds(50));
  EXPECT_FALSE(w.ready(1, 1)) << "pages may have been evicted since: check again";
  EXPECT_TRUE(w.fillNow(1));
  EXPECT_TRUE(w.ready(1, 1));
}

// A file truncated under the mapping: the kernel's copy in sendmsg fails with EFAULT (no SIGBUS, which
// only a user-space read would raise), and a fill on the pool reports the file shrank.
TEST(TftpFileWindow, MappedFileTruncatedUnderIt) {
  TestFile f(200'000);
  FileWindow w(f.fd(), f.size(), 8192, 1);
  ASSERT_TRUE(w.fillNow(1));
  ASSERT_EQ(::ftruncate(f.fd(), 4096), 0);
  int s = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(s, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(9);  // discard; nothing needs to listen, the copy fails first
  auto data = w.block(3);  // bytes 16384.. are past the new end of file
  iovec iov{const_cast<std::uint8_t*>(data.data()), data.size()};
  msghdr m{};
  m.msg_name = &to;
  m.msg_namelen = sizeof to;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  EXPECT_EQ(::sendmsg(s, &m, 0), -1);
  EXPECT_EQ(errno, EFAULT);
  ::close(s);

  auto filled = fillOnPool(w, 10);
  ASSERT_FALSE(filled);
  EXPECT_NE(filled.error().message.find("shrank"), std::string::npos) << filled.error().message;
}
