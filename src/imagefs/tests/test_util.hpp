// Shared helpers for the imagefs tests: a self-deleting temporary directory, running e2fsprogs'
// tools (mke2fs -d builds an image from a directory tree without root), and resolving paths.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "imagefs/image_fs.hpp"

namespace pxedust::imagefs::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/pxd-imagefs-XXXXXX";
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

inline std::string shellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

// Runs a command line with its output discarded; true when it exits 0.
inline bool run(const std::string& cmd) {
  int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
  return rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
}

inline std::string tool(const char* name) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/"}) {
    std::string p = std::string(dir) + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return {};
}

// mke2fs -t TYPE -d SRC with extra options; false if it failed.
inline bool makeImage(const std::filesystem::path& img, const std::filesystem::path& src, const std::string& options,
                      const std::string& size) {
  return run(tool("mke2fs") + " -q -F " + options + " -d " + shellQuote(src.string()) + " " + shellQuote(img.string()) +
             " " + size);
}

inline bool debugfsWrite(const std::filesystem::path& img, const std::string& request) {
  return run(tool("debugfs") + " -w -R " + shellQuote(request) + " " + shellQuote(img.string()));
}

// The inode of a relative path, resolved one component at a time from the root.
inline Result<Ino> resolve(ImageFs& fs, const std::filesystem::path& rel) {
  Ino ino = kRootIno;
  for (const auto& part : rel) {
    if (part.empty() || part == ".") continue;
    auto r = fs.lookup(ino, part.string());
    if (!r) return r.error();
    ino = *r;
  }
  return ino;
}

// Every entry of a directory, resuming every `batch` entries with the last cookie taken.
struct Listed {
  std::string name;
  Ino ino = 0;
  FileType type = FileType::Unknown;
  std::uint64_t cookie = 0;
};
inline std::vector<Listed> listAll(ImageFs& fs, Ino dir, std::size_t batch) {
  std::vector<Listed> out;
  std::uint64_t cookie = 0;
  for (int calls = 0; calls < 1'000'000; ++calls) {
    std::size_t taken = 0;
    auto r = fs.readdir(dir, cookie, [&](const DirEntry& e) {
      if (taken == batch) return false;
      ++taken;
      out.push_back({std::string(e.name), e.ino, e.type, e.cookie});
      cookie = e.cookie;
      return true;
    });
    if (!r) {
      ADD_FAILURE() << r.error().message;
      return out;
    }
    if (r->eof) return out;
  }
  ADD_FAILURE() << "readdir never ended";
  return out;
}

}  // namespace pxedust::imagefs::testing
