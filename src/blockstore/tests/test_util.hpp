// Shared helpers for the block store tests: a self-deleting temporary directory and base images
// filled with reproducible pseudo-random bytes.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "blockstore/file.hpp"
#include "blockstore/raw_image.hpp"

namespace pxedust::blockstore::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "pxd-bs-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& s) const { return path_ / s; }

 private:
  std::filesystem::path path_;
};

// splitmix64: cheap enough to fill megabytes per operation even in an unoptimized ASan build.
inline std::vector<std::uint8_t> randomBytes(std::size_t n, std::uint64_t seed) {
  std::vector<std::uint8_t> v(n);
  std::uint64_t x = seed;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    std::memcpy(v.data() + i, &z, 8);
  }
  for (; i < n; ++i) v[i] = static_cast<std::uint8_t>(x >> (i % 8 * 8));
  return v;
}

inline void writeWhole(const std::filesystem::path& p, const std::vector<std::uint8_t>& bytes) {
  auto fd = openFile(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!fd || !pwriteFull(fd->get(), bytes, 0, p.string())) std::abort();
}

inline std::vector<std::uint8_t> readWhole(const std::filesystem::path& p) {
  auto fd = openFile(p, O_RDONLY);
  if (!fd) return {};
  auto size = fileSize(fd->get(), p.string());
  std::vector<std::uint8_t> v(*size);
  if (!preadFull(fd->get(), v, 0, p.string())) std::abort();
  return v;
}

inline BaseIdentity identityFor(std::string name, std::uint64_t size, std::uint64_t version = 1) {
  BaseIdentity id;
  id.name = std::move(name);
  id.version = version;
  id.uuid = randomUuid();
  id.size = size;
  id.sha256[0] = static_cast<std::uint8_t>(version);
  return id;
}

// Writes `content` as a base file in `dir` and opens it.
inline std::shared_ptr<RawImage> makeBase(const std::filesystem::path& dir, const std::vector<std::uint8_t>& content,
                                          std::string name = "base", std::uint64_t version = 1) {
  auto p = dir / (name + "-v" + std::to_string(version) + ".img");
  writeWhole(p, content);
  auto img = RawImage::open(p, identityFor(name, content.size(), version));
  if (!img) std::abort();
  return *img;
}

}  // namespace pxedust::blockstore::testing
