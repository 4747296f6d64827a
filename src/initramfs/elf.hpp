// Just enough ELF64 reading to build an initramfs: a kernel module's dependencies (its .modinfo
// "depends=" entry), and a program's shared libraries (DT_NEEDED) and program interpreter (PT_INTERP).
// The files come from the local system or a kernel package, not from a peer, but are still read
// with every offset checked: a truncated or foreign file is an error, never a crash.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace pxedust::initramfs {

struct ElfInfo {
  std::string interpreter;           // "/lib64/ld-linux-x86-64.so.2", empty for static programs
  std::vector<std::string> needed;   // DT_NEEDED sonames
  std::vector<std::string> modinfo;  // .modinfo strings ("depends=a,b", "license=GPL", ...)
};

Result<ElfInfo> readElf(std::span<const std::uint8_t> bytes);
Result<ElfInfo> readElfFile(const std::filesystem::path& path);

}  // namespace pxedust::initramfs
