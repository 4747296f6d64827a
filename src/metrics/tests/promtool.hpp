// Test helper: runs Prometheus' own checker, `promtool check metrics`, on rendered text.
// Tests skip (GTEST_SKIP) when /usr/bin/promtool is missing (Debian: the `prometheus` package).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace pxedust::metrics::test {

constexpr const char* kPromtool = "/usr/bin/promtool";

inline bool promtoolAvailable() { return ::access(kPromtool, X_OK) == 0; }

struct PromtoolResult {
  int status = -1;     // its exit status: 0 = valid and no lint findings, 1 = errors, 3 = lint findings
  std::string output;  // stdout and stderr together
};

inline PromtoolResult promtoolCheck(const std::string& text) {
  PromtoolResult result;
  const char* dir = std::getenv("TMPDIR");
  std::string path = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/pxedust-metrics-XXXXXX";
  const int fd = ::mkstemp(path.data());
  if (fd < 0) return result;
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (written) {
    const std::string command = std::string(kPromtool) + " check metrics < '" + path + "' 2>&1";
    if (FILE* p = ::popen(command.c_str(), "r")) {
      char buf[4096];
      std::size_t n = 0;
      while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) result.output.append(buf, n);
      const int status = ::pclose(p);
      result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
  }
  ::unlink(path.c_str());
  return result;
}

}  // namespace pxedust::metrics::test
