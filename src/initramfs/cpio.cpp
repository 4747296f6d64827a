#include "initramfs/cpio.hpp"

#include <sys/stat.h>

#include <fmt/format.h>

namespace pxedust::initramfs {

void CpioWriter::parents(std::string_view path) {
  for (std::size_t slash = path.find('/'); slash != std::string_view::npos; slash = path.find('/', slash + 1)) {
    auto dir = path.substr(0, slash);
    if (!dir.empty() && !contains(dir)) entry(dir, S_IFDIR | 0755, {});
  }
}

void CpioWriter::addDirectory(std::string_view path, std::uint32_t mode) {
  parents(path);
  if (!contains(path)) entry(path, S_IFDIR | (mode & 07777), {});
}

void CpioWriter::addFile(std::string_view path, std::span<const std::uint8_t> data, std::uint32_t mode) {
  parents(path);
  entry(path, S_IFREG | (mode & 07777), data);
}

void CpioWriter::addSymlink(std::string_view path, std::string_view target) {
  parents(path);
  entry(path, S_IFLNK | 0777,
        std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(target.data()), target.size()));
}

void CpioWriter::addCharDevice(std::string_view path, std::uint32_t major, std::uint32_t minor, std::uint32_t mode) {
  parents(path);
  entry(path, S_IFCHR | (mode & 07777), {}, major, minor);
}

void CpioWriter::entry(std::string_view path, std::uint32_t mode, std::span<const std::uint8_t> data,
                       std::uint32_t rdevMajor, std::uint32_t rdevMinor) {
  if (!path.empty() && path != "TRAILER!!!") paths_.insert(std::string(path));
  std::uint32_t nlink = (mode & S_IFMT) == S_IFDIR ? 2 : 1;
  // magic ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
  auto header = fmt::format("070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
                            ino_++, mode, 0, 0, nlink, 0, data.size(), 0, 0, rdevMajor, rdevMinor, path.size() + 1, 0);
  out_.insert(out_.end(), header.begin(), header.end());
  out_.insert(out_.end(), path.begin(), path.end());
  out_.push_back(0);
  out_.resize((out_.size() + 3) & ~std::size_t{3}, 0);
  out_.insert(out_.end(), data.begin(), data.end());
  out_.resize((out_.size() + 3) & ~std::size_t{3}, 0);
}

std::vector<std::uint8_t> CpioWriter::finish() {
  entry("TRAILER!!!", 0, {});
  // The kernel reads the archive in 512-byte blocks as cpio(1) writes them; pad for good measure.
  out_.resize((out_.size() + 511) & ~std::size_t{511}, 0);
  paths_.clear();
  ino_ = 1;
  return std::move(out_);
}

}  // namespace pxedust::initramfs
