#include "initramfs/elf.hpp"

#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <span>

#include "common/checked.hpp"

namespace pxedust::initramfs {
namespace {

// Little-endian reads at an absolute offset; `ok` turns false on the first read past the end.
struct View {
  std::span<const std::uint8_t> b;
  bool ok = true;
  template <typename T>
  T at(std::uint64_t off) {
    if (!within<std::uint64_t>(off, sizeof(T), b.size())) {
      ok = false;
      return 0;
    }
    T v{};
    std::memcpy(&v, b.data() + off, sizeof v);  // x86-64 and aarch64 builders are little-endian hosts
    return v;
  }
  std::string cstr(std::uint64_t off, std::uint64_t limit) {
    std::string s;
    while (off < b.size() && off < limit && b[off] != 0) s.push_back(static_cast<char>(b[off++]));
    if (off >= b.size() || off >= limit) ok = false;
    return s;
  }
};

constexpr std::uint32_t kPtLoad = 1, kPtDynamic = 2, kPtInterp = 3;
constexpr std::uint64_t kDtNeeded = 1, kDtStrtab = 5;

}  // namespace

Result<ElfInfo> readElf(std::span<const std::uint8_t> bytes) {
  View v{bytes};
  if (bytes.size() < 64 || std::memcmp(bytes.data(), "\x7f" "ELF", 4) != 0) return Error{"not an ELF file"};
  if (bytes[4] != 2 || bytes[5] != 1) return Error{"not a 64-bit little-endian ELF file"};
  ElfInfo info;
  auto phoff = v.at<std::uint64_t>(0x20), shoff = v.at<std::uint64_t>(0x28);
  auto phentsize = v.at<std::uint16_t>(0x36), phnum = v.at<std::uint16_t>(0x38);
  auto shentsize = v.at<std::uint16_t>(0x3A), shnum = v.at<std::uint16_t>(0x3C), shstrndx = v.at<std::uint16_t>(0x3E);

  struct Load {
    std::uint64_t offset, vaddr, filesz;
  };
  std::vector<Load> loads;
  std::uint64_t dynOff = 0, dynSize = 0;
  for (std::uint64_t i = 0; phentsize >= 56 && i < phnum; ++i) {
    std::uint64_t ph = phoff + i * phentsize;
    auto type = v.at<std::uint32_t>(ph);
    auto off = v.at<std::uint64_t>(ph + 8), vaddr = v.at<std::uint64_t>(ph + 16), filesz = v.at<std::uint64_t>(ph + 32);
    if (!v.ok) return Error{"truncated program headers"};
    if (type == kPtLoad) loads.push_back({off, vaddr, filesz});
    if (type == kPtDynamic) dynOff = off, dynSize = filesz;
    if (type == kPtInterp) info.interpreter = v.cstr(off, off + filesz);
  }
  if (dynSize > 0) {
    std::vector<std::uint64_t> neededOffsets;
    std::uint64_t strtabAddr = 0;
    for (std::uint64_t d = dynOff; d + 16 <= dynOff + dynSize; d += 16) {
      auto tag = v.at<std::uint64_t>(d), val = v.at<std::uint64_t>(d + 8);
      if (!v.ok || tag == 0) break;
      if (tag == kDtNeeded) neededOffsets.push_back(val);
      if (tag == kDtStrtab) strtabAddr = val;
    }
    std::optional<std::uint64_t> strtab;
    for (const auto& l : loads)
      if (strtabAddr >= l.vaddr && strtabAddr - l.vaddr < l.filesz) strtab = strtabAddr - l.vaddr + l.offset;
    if (!neededOffsets.empty() && !strtab) return Error{"DT_STRTAB is outside every loaded segment"};
    for (auto o : neededOffsets) info.needed.push_back(v.cstr(*strtab + o, bytes.size()));
  }
  if (shentsize >= 64 && shnum > 0 && shstrndx < shnum) {
    auto sh = [&](std::uint64_t i) { return shoff + i * shentsize; };
    auto strOff = v.at<std::uint64_t>(sh(shstrndx) + 24), strSize = v.at<std::uint64_t>(sh(shstrndx) + 32);
    for (std::uint64_t i = 0; i < shnum && v.ok; ++i) {
      auto name = v.cstr(strOff + v.at<std::uint32_t>(sh(i)), strOff + strSize);
      if (name != ".modinfo") continue;
      auto off = v.at<std::uint64_t>(sh(i) + 24), size = v.at<std::uint64_t>(sh(i) + 32);
      if (!within<std::uint64_t>(off, size, bytes.size())) return Error{".modinfo runs past the end of the file"};
      std::string cur;
      for (std::uint64_t p = off; p < off + size; ++p) {
        if (bytes[p] != 0) {
          cur.push_back(static_cast<char>(bytes[p]));
        } else if (!cur.empty()) {
          info.modinfo.push_back(std::move(cur));
          cur.clear();
        }
      }
      if (!cur.empty()) info.modinfo.push_back(std::move(cur));
    }
  }
  if (!v.ok) return Error{"truncated ELF file"};
  return info;
}

Result<ElfInfo> readElfFile(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Error{fmt::format("{}: cannot open", path.string())};
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto r = readElf(bytes);
  if (!r) return Error{fmt::format("{}: {}", path.string(), r.error().message)};
  return r;
}

}  // namespace pxedust::initramfs
