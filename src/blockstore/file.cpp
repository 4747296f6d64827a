#include "blockstore/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace pxedust::blockstore {

std::string errnoText(int err) { return std::strerror(err); }

Result<UniqueFd> openFile(const std::filesystem::path& path, int flags, mode_t mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    int err = errno;
    return errnoError(fmt::format("cannot open {}: {}", path.string(), errnoText(err)), err);
  }
  return UniqueFd(fd);
}

Result<void> preadFull(int fd, std::span<std::uint8_t> buf, std::uint64_t offset, const std::string& what) {
  std::size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::pread(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      return errnoError(fmt::format("read of {} at offset {} failed: {}", what, offset + done, errnoText(err)), err);
    }
    if (n == 0) {
      return errnoError(fmt::format("read of {} at offset {}: unexpected end of file", what, offset + done),
                        ENODATA);
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

std::optional<Result<void>> preadNoWait(int fd, std::span<std::uint8_t> buf, std::uint64_t offset,
                                        const std::string& what) {
  std::size_t done = 0;
  while (done < buf.size()) {
    iovec iov{buf.data() + done, buf.size() - done};
    ssize_t n = ::preadv2(fd, &iov, 1, static_cast<off_t>(offset + done), RWF_NOWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      if (err == EAGAIN || err == EOPNOTSUPP) return std::nullopt;
      return Result<void>(
          errnoError(fmt::format("read of {} at offset {} failed: {}", what, offset + done, errnoText(err)), err));
    }
    // A short read means the rest is not cached (or end of file): the blocking path decides.
    if (n == 0 || static_cast<std::size_t>(n) < iov.iov_len) return std::nullopt;
    done += static_cast<std::size_t>(n);
  }
  return Result<void>{};
}

Result<void> pwriteFull(int fd, std::span<const std::uint8_t> data, std::uint64_t offset, const std::string& what) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      return errnoError(fmt::format("write of {} at offset {} failed: {}", what, offset + done, errnoText(err)), err);
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

Result<void> syncData(int fd, const std::string& what) {
  if (::fdatasync(fd) != 0) {
    int err = errno;
    return errnoError(fmt::format("fdatasync of {} failed: {}", what, errnoText(err)), err);
  }
  return {};
}

Result<void> syncDir(const std::filesystem::path& dir) {
  auto fd = openFile(dir.empty() ? std::filesystem::path(".") : dir, O_RDONLY | O_DIRECTORY);
  if (!fd) return fd.error();
  if (::fsync(fd->get()) != 0) {
    int err = errno;
    return errnoError(fmt::format("fsync of directory {} failed: {}", dir.string(), errnoText(err)), err);
  }
  return {};
}

Result<std::uint64_t> fileSize(int fd, const std::string& what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    return errnoError(fmt::format("stat of {} failed: {}", what, errnoText(err)), err);
  }
  return static_cast<std::uint64_t>(st.st_size);
}

Result<std::uint64_t> allocatedBytes(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    return errnoError(fmt::format("stat of {} failed: {}", path.string(), errnoText(err)), err);
  }
  return static_cast<std::uint64_t>(st.st_blocks) * 512U;
}

Result<void> writeFileAtomic(const std::filesystem::path& path, std::span<const std::uint8_t> contents) {
  auto tmp = path;
  tmp += ".tmp";
  {
    auto fd = openFile(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (!fd) return fd.error();
    if (auto r = pwriteFull(fd->get(), contents, 0, tmp.string()); !r) return r;
    if (auto r = syncData(fd->get(), tmp.string()); !r) return r;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return errnoError(fmt::format("rename {} -> {} failed: {}", tmp.string(), path.string(), errnoText(err)), err);
  }
  return syncDir(path.parent_path());
}

Result<std::string> readSmallFile(const std::filesystem::path& path, std::size_t maxBytes) {
  auto fd = openFile(path, O_RDONLY);
  if (!fd) return fd.error();
  auto size = fileSize(fd->get(), path.string());
  if (!size) return size.error();
  if (*size > maxBytes) {
    return Error{fmt::format("{} is {} bytes, more than the {} allowed", path.string(), *size, maxBytes), EFBIG};
  }
  std::string out(static_cast<std::size_t>(*size), '\0');
  if (auto r = preadFull(fd->get(), {reinterpret_cast<std::uint8_t*>(out.data()), out.size()}, 0, path.string()); !r) {
    return r.error();
  }
  return out;
}

}  // namespace pxedust::blockstore
