#include "daemon/state_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/fd.hpp"
#include "common/log.hpp"

namespace pxedust::daemon {

Result<void> StateFiles::open() {
  if (dir_.empty()) return {};
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return Error{"state dir " + dir_ + ": " + ec.message(), ec.value()};
  ok_ = true;
  return {};
}

void StateFiles::write(std::string_view name, std::string_view text) {
  if (!ok_) return;
  const std::string path = dir_ + "/" + std::string(name);
  const std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  bool done = fd.valid();
  for (std::size_t off = 0; done && off < text.size();) {
    ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) done = false;
    else off += static_cast<std::size_t>(n);
  }
  if (done) done = ::rename(tmp.c_str(), path.c_str()) == 0;
  if (!done) {
    PXD_WARN("daemon.state_file_failed", "file={} error={}", log::q(path), log::q(std::strerror(errno)));
    ::unlink(tmp.c_str());
  }
}

}  // namespace pxedust::daemon
