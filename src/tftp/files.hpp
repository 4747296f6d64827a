// From a requested file name to an open file beneath the served root.
//
// 1. normalizeRequest(): backslashes become '/', leading '/' are stripped (clients ask for
//    "/pxelinux.0"), empty and "." components collapse; a ".." component, a control character or an
//    over-long name is refused. Done on the text, before any system call.
// 2. applyPerHost(): a per-host rule may replace the name with a host's own file.
// 3. openBeneath(): openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) on the root's descriptor, so
//    the kernel itself refuses any escape, including through symlinks (absolute ones, or ones that
//    climb out) and ones swapped in after step 1. Only regular files are served; FIFOs are opened
//    non-blocking so a FIFO planted in the root cannot stall the loop.
// Errors carry a client-safe text: it never includes a server path.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.hpp"
#include "common/result.hpp"
#include "config/config.hpp"
#include "inventory/inventory.hpp"
#include "tftp/wire/packet.hpp"

namespace pxedust::tftp {

// Longest accepted request name, in bytes. Boot paths are short; this keeps peers' names bounded.
constexpr std::size_t kMaxRequestName = 255;

struct FileError {
  wire::ErrorCode code;
  std::string_view clientText;  // safe to send: no server paths
  std::string_view reason;      // for logs and counters
};

struct Normalized {
  std::string path;
  std::optional<FileError> error;
};
Normalized normalizeRequest(std::string_view requested);

// The per-host file for `path`, or `path` itself when no rule matches or the host is unknown.
std::string applyPerHost(const std::vector<config::TftpPerHostRule>& rules, const std::string& path,
                         const inventory::Host* host);

struct OpenFile {
  UniqueFd fd;
  std::uint64_t size = 0;
  std::optional<FileError> error;
};
OpenFile openBeneath(int rootFd, const std::string& relativePath);

// The root directory as an O_PATH descriptor, for openBeneath().
Result<UniqueFd> openRoot(const std::string& dir);

}  // namespace pxedust::tftp
