#include "daemon/privileges.hpp"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "common/log.hpp"
#include "dhcp/config.hpp"

namespace pxedust::daemon {
namespace {

namespace fs = std::filesystem;

struct CapabilityName {
  int cap;
  const char* name;
};
constexpr CapabilityName kKept[] = {
    {CAP_NET_BIND_SERVICE, "cap_net_bind_service"},
    {CAP_NET_RAW, "cap_net_raw"},
    {CAP_NET_ADMIN, "cap_net_admin"},
};

std::string errnoText(int err) { return std::strerror(err); }

// The error of the system call that just failed: errno is read before anything else may change it.
template <typename... Args>
Error lastError(fmt::format_string<Args...> what, Args&&... args) {
  const int err = errno;
  return errnoError(fmt::format(what, std::forward<Args>(args)...) + ": " + errnoText(err), err);
}

// capget/capset with the 64-bit (version 3) layout: two 32-bit words per set.
Result<std::uint64_t> permittedCapabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &header, data) != 0) return lastError("capget");
  return std::uint64_t{data[0].permitted} | (std::uint64_t{data[1].permitted} << 32);
}

Result<void> setCapabilities(std::uint64_t mask) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  for (int i = 0; i < 2; ++i) {
    data[i].effective = data[i].permitted = static_cast<std::uint32_t>(mask >> (32 * i));
    data[i].inheritable = 0;
  }
  if (::syscall(SYS_capset, &header, data) != 0) return lastError("capset");
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)  // EINVAL: a kernel before 4.3
    return lastError("clearing ambient capabilities");
  return {};
}

std::string absolute(const std::string& p) {
  std::error_code ec;
  auto a = fs::absolute(p, ec);
  return ec ? p : a.lexically_normal().string();
}

}  // namespace

Result<Identity> lookupIdentity(const std::string& user, const std::optional<std::string>& groupName) {
  Identity id;
  id.user = user;
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* pwFound = nullptr;
  int err = ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &pwFound);
  if (pwFound == nullptr)
    return Error{fmt::format("[daemon] user \"{}\": {}", user, err != 0 ? errnoText(err) : "no such user"), err != 0 ? err : ENOENT};
  id.uid = pw.pw_uid;
  id.gid = pw.pw_gid;
  struct group grp {};
  struct group* grFound = nullptr;
  if (groupName) {
    err = ::getgrnam_r(groupName->c_str(), &grp, buf.data(), buf.size(), &grFound);
    if (grFound == nullptr)
      return Error{fmt::format("[daemon] group \"{}\": {}", *groupName, err != 0 ? errnoText(err) : "no such group"),
                   err != 0 ? err : ENOENT};
    id.gid = grFound->gr_gid;
    id.group = *groupName;
  } else {
    ::getgrgid_r(id.gid, &grp, buf.data(), buf.size(), &grFound);
    id.group = grFound != nullptr ? grFound->gr_name : std::to_string(id.gid);
  }
  // The user's supplementary groups, as a login would have them; `gid` is among them.
  int n = 32;
  for (;;) {
    id.groups.resize(static_cast<std::size_t>(n));
    int want = n;
    if (::getgrouplist(user.c_str(), id.gid, id.groups.data(), &want) >= 0) {
      id.groups.resize(static_cast<std::size_t>(want));
      break;
    }
    if (want <= n) want = n * 2;
    n = want;
  }
  return id;
}

std::uint64_t keptCapabilities() {
  std::uint64_t mask = 0;
  for (const auto& c : kKept) mask |= std::uint64_t{1} << c.cap;
  return mask;
}

std::string capabilityNames(std::uint64_t mask) {
  std::string out;
  for (const auto& c : kKept)
    if ((mask & (std::uint64_t{1} << c.cap)) != 0) out += (out.empty() ? "" : ",") + std::string(c.name);
  for (int cap = 0; cap < 64; ++cap) {
    bool named = false;
    for (const auto& c : kKept) named = named || c.cap == cap;
    if (!named && (mask & (std::uint64_t{1} << cap)) != 0) out += (out.empty() ? "" : ",") + fmt::format("cap_{}", cap);
  }
  return out.empty() ? "none" : out;
}

std::vector<WritableDir> writableDirs(const config::Config& config) {
  std::vector<WritableDir> dirs;
  if (!config.daemon.stateDir.empty()) dirs.push_back({"state dir ([daemon] state_dir)", absolute(config.daemon.stateDir)});
  dirs.push_back({"storage dir ([storage] dir)", absolute(config.storage.dir)});
  if (const auto* dhcp = dhcp::configIn(config); dhcp != nullptr && dhcp->mode == dhcp::Mode::Server)
    dirs.push_back({"lease file directory ([dhcp] lease_file)", fs::path(absolute(dhcp->leaseFile)).parent_path().string()});
  return dirs;
}

std::vector<std::string> missingPaths(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const auto& p : paths) {
    std::vector<std::string> chain;  // innermost first
    std::error_code ec;
    for (fs::path at = absolute(p); !at.empty() && !fs::exists(fs::symlink_status(at, ec)); at = at.parent_path()) {
      chain.push_back(at.string());
      if (at == at.root_path()) break;
    }
    for (auto it = chain.rbegin(); it != chain.rend(); ++it)
      if (std::find(out.begin(), out.end(), *it) == out.end()) out.push_back(*it);
  }
  return out;
}

Result<PrivilegeDrop> PrivilegeDrop::prepare(const config::Config& config) {
  PrivilegeDrop drop;
  auto id = lookupIdentity(*config.daemon.user, config.daemon.group);
  if (!id) return id.error();
  drop.id_ = std::move(*id);
  const uid_t uid = ::geteuid();
  if (uid == 0) {
    drop.switchUser_ = true;
  } else if (uid != drop.id_.uid || ::getuid() != drop.id_.uid) {
    return Error{fmt::format("[daemon] user = \"{}\": pxedust runs as uid {} and only root can switch users: start it as "
                             "root, or as {}",
                             drop.id_.user, uid, drop.id_.user),
                 EPERM};
  } else if (::getegid() != drop.id_.gid) {
    return Error{fmt::format("[daemon] group = \"{}\": pxedust runs as gid {} and only root can switch groups: start it "
                             "as root, or with group {}",
                             drop.id_.group, ::getegid(), drop.id_.group),
                 EPERM};
  }
  drop.dirs_ = writableDirs(config);
  // What the daemon makes in those directories before it drops: the store's two directories and the
  // lease journal with its lock (blockstore/store.cpp, dhcp/lease_journal.cpp).
  std::vector<std::string> made;
  for (const auto& d : drop.dirs_) made.push_back(d.path);
  made.push_back((fs::path(absolute(config.storage.dir)) / "images").string());
  made.push_back((fs::path(absolute(config.storage.dir)) / "overlays").string());
  if (const auto* dhcp = dhcp::configIn(config); dhcp != nullptr && dhcp->mode == dhcp::Mode::Server) {
    made.push_back(absolute(dhcp->leaseFile));
    made.push_back(absolute(dhcp->leaseFile) + ".lock");
  }
  drop.made_ = missingPaths(made);
  return drop;
}

Result<void> PrivilegeDrop::commit() {
  const auto& id = id_;
  if (switchUser_) {
    for (const auto& p : made_) {
      std::error_code ec;
      if (!fs::exists(fs::symlink_status(p, ec))) continue;  // the configuration did not need it
      if (::lchown(p.c_str(), id.uid, id.gid) != 0) return lastError("chown {} to {}:{}", p, id.user, id.group);
      PXD_INFO("daemon.chowned", "path={} user={} group={} note=\"made by pxedust at start\"", log::q(p), id.user, id.group);
    }
    if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return lastError("PR_SET_KEEPCAPS");
    if (::setgroups(id.groups.size(), id.groups.data()) != 0) return lastError("setgroups for {}", id.user);
    if (::setresgid(id.gid, id.gid, id.gid) != 0) return lastError("setresgid {}", id.gid);
    if (::setresuid(id.uid, id.uid, id.uid) != 0) return lastError("setresuid {}", id.uid);
    ::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
  }
  // Already the user (e.g. systemd's User= with AmbientCapabilities=): keep no more than the kept set.
  auto permitted = permittedCapabilities();
  if (!permitted) return permitted.error();
  const std::uint64_t keep = keptCapabilities() & *permitted;
  if (auto r = setCapabilities(keep); !r) return r;
  PXD_INFO("daemon.privileges_dropped", "user={} uid={} group={} gid={} groups={} capabilities={}", id.user, id.uid,
           id.group, id.gid, id.groups.size(), capabilityNames(keep));
  // Checked as the user: what it cannot write now, it could not write while serving.
  for (const auto& d : dirs_) {
    if (::access(d.path.c_str(), W_OK | X_OK) == 0) continue;
    const int err = errno;
    return errnoError(fmt::format("{} {} is not writable by user {} ({}): make it theirs (chown {}:{} {}) and make "
                                  "every directory above it searchable by them",
                                  d.what, d.path, id.user, errnoText(err), id.user, id.group, d.path),
                      err);
  }
  return {};
}

}  // namespace pxedust::daemon
