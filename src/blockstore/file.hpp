// Small POSIX file helpers for the block store: whole-buffer pread/pwrite that retry on EINTR and
// short transfers, data and directory syncs, and errors that name the file and the operation.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>

#include "common/fd.hpp"
#include "common/result.hpp"

namespace pxedust::blockstore {

Result<UniqueFd> openFile(const std::filesystem::path& path, int flags, mode_t mode = 0644);
// Reads exactly buf.size() bytes; reaching end of file first is an error (ENODATA) naming `what`.
Result<void> preadFull(int fd, std::span<std::uint8_t> buf, std::uint64_t offset, const std::string& what);
// preadFull without blocking (preadv2 RWF_NOWAIT): nullopt when the bytes are not all in the page cache
// (EAGAIN, a short read) or the file system cannot say (EOPNOTSUPP); an Error for anything else.
std::optional<Result<void>> preadNoWait(int fd, std::span<std::uint8_t> buf, std::uint64_t offset,
                                        const std::string& what);
Result<void> pwriteFull(int fd, std::span<const std::uint8_t> data, std::uint64_t offset, const std::string& what);
Result<void> syncData(int fd, const std::string& what);
// fsync of a directory, so a rename() or unlink() inside it is durable.
Result<void> syncDir(const std::filesystem::path& dir);
Result<std::uint64_t> fileSize(int fd, const std::string& what);
// Bytes the file occupies on disk (st_blocks * 512).
Result<std::uint64_t> allocatedBytes(const std::filesystem::path& path);
// Creates `path` with `contents`, synced, atomically: written as path.tmp, fsync, rename, fsync dir.
Result<void> writeFileAtomic(const std::filesystem::path& path, std::span<const std::uint8_t> contents);
Result<std::string> readSmallFile(const std::filesystem::path& path, std::size_t maxBytes);

std::string errnoText(int err);

}  // namespace pxedust::blockstore
