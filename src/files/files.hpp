// Files served by name, shared by TFTP and (next) HTTP: from a requested name to an open file
// beneath the served root.
//
// 1. normalizeRequest(): backslashes become '/', leading '/' are stripped (clients ask for
//    "/pxelinux.0"), empty and "." components collapse; a ".." component, a control character or an
//    over-long name is refused. Done on the text, before any system call.
// 2. applyPerHost(): a per-host rule may replace the name with a host's own file.
// 3. openBeneath(): openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) on the root's descriptor, so
//    the kernel itself refuses any escape, including through symlinks (absolute ones, or ones that
//    climb out) and ones swapped in after step 1. Only regular files are served; FIFOs are opened
//    non-blocking so a FIFO planted in the root cannot stall the loop.
// Errors are protocol-neutral: each protocol maps an ErrorKind to its own answer (TFTP: tftp/file_error.hpp;
// HTTP: 404/403/...). Their texts are client-safe: they never include a server path.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.hpp"
#include "common/result.hpp"
#include "config/config.hpp"
#include "config/reader.hpp"
#include "inventory/inventory.hpp"

namespace pxedust::files {

// Longest accepted request name, in bytes. Boot paths are short; this keeps peers' names bounded.
constexpr std::size_t kMaxRequestName = 255;

enum class ErrorKind : std::uint8_t {
  NotFound,          // no such file (or an empty name)
  OutsideRoot,       // a ".." component, or a symlink that leads out of the root
  PermissionDenied,  // the file system refused the open
  NotAFile,          // a directory, FIFO, device, ...
  NameTooLong,       // longer than kMaxRequestName, or than the file system allows
  BadName,           // a control character in the name
  OpenFailed,        // anything else (logged as files.open_failed)
};

struct FileError {
  ErrorKind kind;
  std::string_view clientText;  // safe to send: no server paths
  std::string_view reason;      // for logs and counters
};

struct Normalized {
  std::string path;
  std::optional<FileError> error;
};
Normalized normalizeRequest(std::string_view requested);

// Serve a different file to each host under one requested name: `request` is matched exactly (after
// the leading '/' is stripped); `file` is a template with {name} {mac} {ip} {group}.
struct PerHostRule {
  std::string request;
  std::string file;
};

// Why a per-host file template is refused ("uses unknown variable {x} ...", "must not contain a '..'
// component"), or nullopt when it is a relative path whose {variables} are all known.
std::optional<std::string> checkTemplate(std::string_view fileTemplate);

// `key = [{ request = "boot.cfg", file = "hosts/{name}.cfg" }, ...]` from a service's section: each
// request named once (a leading '/' dropped), each file a valid template. Errors go to the table.
std::vector<PerHostRule> readPerHostRules(config::Table& table, std::string_view key);

// The per-host file for `path`, or `path` itself when no rule matches or the host is unknown.
// Template variables (checked at config load): {name}; {mac} as config::macTemplateText() spells it,
// 52-54-00-12-34-56 ("unknown" when the host has no MAC); {ip} ("unknown" without one); {group}
// ("default" without one).
std::string applyPerHost(const std::vector<PerHostRule>& rules, const std::string& path,
                         const inventory::Host* host);

struct OpenFile {
  UniqueFd fd;
  std::uint64_t size = 0;
  std::optional<FileError> error;
};
OpenFile openBeneath(int rootFd, const std::string& relativePath);

// The root directory as an O_PATH descriptor, for openBeneath(). The error's code is the errno.
Result<UniqueFd> openRoot(const std::string& dir);

}  // namespace pxedust::files
