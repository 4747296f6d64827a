// CpioWriter: the "newc" cpio archive the Linux kernel unpacks as its initramfs.
//
// Format (Documentation/driver-api/early-userspace/buffer-format.rst): per entry a 110-byte ASCII
// header of 8-hex-digit fields, the NUL-terminated name, padding to 4 bytes, the data, padding to 4
// bytes; the archive ends with an entry named "TRAILER!!!". Entries are written in memory with
// fixed owner root:root and mtime 0, so the same inputs give byte-identical archives. Device nodes
// need no privileges here: /dev/console must exist before init runs, or init starts with no console.
#pragma once

#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pxedust::initramfs {

class CpioWriter {
 public:
  // Paths are relative ("bin/busybox"); missing parent directories are added (mode 0755) first.
  void addDirectory(std::string_view path, std::uint32_t mode = 0755);
  void addFile(std::string_view path, std::span<const std::uint8_t> data, std::uint32_t mode = 0644);
  void addSymlink(std::string_view path, std::string_view target);
  void addCharDevice(std::string_view path, std::uint32_t major, std::uint32_t minor, std::uint32_t mode = 0600);
  [[nodiscard]] bool contains(std::string_view path) const { return paths_.contains(std::string(path)); }
  // Appends the trailer and returns the archive; the writer is empty afterwards.
  std::vector<std::uint8_t> finish();

 private:
  void parents(std::string_view path);
  void entry(std::string_view path, std::uint32_t mode, std::span<const std::uint8_t> data, std::uint32_t rdevMajor = 0,
             std::uint32_t rdevMinor = 0);

  std::vector<std::uint8_t> out_;
  std::set<std::string> paths_;
  std::uint32_t ino_ = 1;
};

}  // namespace pxedust::initramfs
