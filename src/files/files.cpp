#include "files/files.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <set>

#include <fmt/format.h>

#include "common/log.hpp"

namespace pxedust::files {
namespace {
constexpr FileError kNotFound{ErrorKind::NotFound, "File not found", "not_found"};
constexpr FileError kEscape{ErrorKind::OutsideRoot, "Access violation", "outside_root"};
constexpr FileError kDenied{ErrorKind::PermissionDenied, "Permission denied", "permission"};
constexpr FileError kNotRegular{ErrorKind::NotAFile, "Not a regular file", "not_regular"};
constexpr FileError kTooLong{ErrorKind::NameTooLong, "File name too long", "name_too_long"};
constexpr FileError kBadName{ErrorKind::BadName, "Invalid file name", "bad_name"};
constexpr FileError kInternal{ErrorKind::OpenFailed, "Cannot open file", "open_failed"};
}  // namespace

Normalized normalizeRequest(std::string_view requested) {
  Normalized out;
  if (requested.size() > kMaxRequestName) {
    out.error = kTooLong;
    return out;
  }
  out.path.reserve(requested.size());
  std::size_t i = 0;
  while (i < requested.size()) {
    // One component: up to the next '/' or '\'.
    std::size_t j = i;
    while (j < requested.size() && requested[j] != '/' && requested[j] != '\\') ++j;
    auto part = requested.substr(i, j - i);
    i = j + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      out.error = kEscape;
      return out;
    }
    for (unsigned char c : part) {
      if (c < 0x20 || c == 0x7f) {
        out.error = kBadName;
        return out;
      }
    }
    if (!out.path.empty()) out.path.push_back('/');
    out.path.append(part);
  }
  if (out.path.empty()) out.error = kNotFound;
  return out;
}

std::optional<std::string> checkTemplate(std::string_view t) {
  static constexpr std::array<std::string_view, 4> kVars = {"name", "mac", "ip", "group"};
  if (t.empty()) return "is empty";
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '}') return "has a '}' without '{'";
    if (t[i] != '{') continue;
    auto end = t.find('}', i);
    if (end == std::string_view::npos) return "has a '{' without '}'";
    auto var = t.substr(i + 1, end - i - 1);
    if (std::find(kVars.begin(), kVars.end(), var) == kVars.end())
      return fmt::format("uses unknown variable {{{}}} (known: {{name}} {{mac}} {{ip}} {{group}})", var);
    i = end;
  }
  std::size_t start = 0;
  while (start <= t.size()) {
    auto slash = t.find('/', start);
    auto part = t.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part == "..") return "must not contain a '..' component";
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return std::nullopt;
}

std::string applyPerHost(const std::vector<PerHostRule>& rules, const std::string& path,
                         const inventory::Host* host) {
  if (host == nullptr) return path;
  for (const auto& rule : rules) {
    if (rule.request != path) continue;
    std::string out;
    const std::string& t = rule.file;
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (t[i] != '{') {
        out.push_back(t[i]);
        continue;
      }
      auto end = t.find('}', i);  // validated at config load: always present, variable known
      auto var = std::string_view(t).substr(i + 1, end - i - 1);
      if (var == "name") out += host->name;
      else if (var == "mac") out += host->mac ? config::macTemplateText(*host->mac) : "unknown";
      else if (var == "ip") out += host->ip ? host->ip->to_string() : "unknown";
      else if (var == "group") out += host->group.empty() ? "default" : host->group;
      i = end;
    }
    return out;
  }
  return path;
}

OpenFile openBeneath(int rootFd, const std::string& relativePath) {
  OpenFile out;
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, rootFd, relativePath.c_str(), &how, sizeof how);
  if (fd < 0) {
    switch (errno) {
      case ENOENT:
      case ENOTDIR: out.error = kNotFound; break;
      case ENAMETOOLONG: out.error = kTooLong; break;
      case EXDEV:
      case ELOOP: out.error = kEscape; break;  // RESOLVE_BENEATH refused an escape
      case EACCES:
      case EPERM: out.error = kDenied; break;
      case EISDIR: out.error = kNotRegular; break;
      default:
        PXD_WARN("files.open_failed", "path={} error={}", log::q(relativePath), log::q(std::strerror(errno)));
        out.error = kInternal;
    }
    return out;
  }
  out.fd.reset(static_cast<int>(fd));
  struct stat st{};
  if (::fstat(out.fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    out.fd.reset();
    out.error = kNotRegular;
    return out;
  }
  out.size = static_cast<std::uint64_t>(st.st_size);
  return out;
}

Result<UniqueFd> openRoot(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errnoError("cannot open " + dir + ": " + std::strerror(errno), errno);
  return UniqueFd(fd);
}

std::vector<PerHostRule> readPerHostRules(config::Table& s, std::string_view key) {
  std::vector<PerHostRule> out;
  const auto* rules = s.array(key);
  if (rules == nullptr) return out;
  std::set<std::string, std::less<>> seen;
  for (const auto& el : *rules) {
    const auto* t = el.as_table();
    if (t == nullptr)
      s.fail(&el, key, "expected tables like { request = \"boot.cfg\", file = \"hosts/{name}.cfg\" }");
    config::Table r = s.child(*t, s.qualified(key));
    PerHostRule rule{r.requiredString("request"), r.requiredString("file")};
    while (!rule.request.empty() && rule.request.front() == '/') rule.request.erase(0, 1);
    if (rule.request.empty()) r.fail(r.get("request"), "request", "expected a file name");
    if (!seen.insert(rule.request).second)
      r.fail(r.get("request"), "request", fmt::format("'{}' has two rules", rule.request));
    if (auto why = checkTemplate(rule.file)) r.fail(r.get("file"), "file", fmt::format("template {}", *why));
    r.finish();
    out.push_back(std::move(rule));
  }
  return out;
}

}  // namespace pxedust::files
