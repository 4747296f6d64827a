#include "daemon/notify.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "common/log.hpp"

namespace pxedust::daemon {

Result<NotifyAddress> notifyAddress(std::string_view socketEnv) {
  NotifyAddress a;
  a.addr.sun_family = AF_UNIX;
  if (socketEnv.empty() || (socketEnv.front() != '/' && socketEnv.front() != '@'))
    return Error{fmt::format("NOTIFY_SOCKET=\"{}\": expected an absolute path or '@' and an abstract name", socketEnv), EINVAL};
  // A path needs its terminating NUL inside sun_path; an abstract name does not have one.
  const bool abstract = socketEnv.front() == '@';
  if (socketEnv.size() < 2 || socketEnv.size() + (abstract ? 0 : 1) > sizeof a.addr.sun_path)
    return Error{fmt::format("NOTIFY_SOCKET=\"{}\": expected a name of 1..{} bytes", socketEnv, sizeof a.addr.sun_path - 1),
                 ENAMETOOLONG};
  std::memcpy(a.addr.sun_path, socketEnv.data(), socketEnv.size());
  if (abstract) a.addr.sun_path[0] = '\0';
  a.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socketEnv.size() + (abstract ? 0 : 1));
  return a;
}

std::string statusLine(std::string_view status) {
  std::string out;
  out.reserve(status.size());
  for (std::size_t i = 0; i < status.size(); ++i) {
    if (status[i] == '\r') continue;
    if (status[i] == '\n') {
      if (i + 1 < status.size()) out += "; ";
      continue;
    }
    out += status[i];
  }
  return out;
}

std::string readyMessage(std::string_view status, pid_t mainPid) {
  return fmt::format("READY=1\nSTATUS={}\nMAINPID={}\n", statusLine(status), mainPid);
}

std::string reloadingMessage(std::string_view status, std::uint64_t monotonicUsec) {
  return fmt::format("RELOADING=1\nSTATUS={}\nMONOTONIC_USEC={}\n", statusLine(status), monotonicUsec);
}

std::string stoppingMessage(std::string_view status) { return fmt::format("STOPPING=1\nSTATUS={}\n", statusLine(status)); }

SystemdNotifier::SystemdNotifier(const char* socketEnv) {
  if (socketEnv == nullptr || *socketEnv == '\0') return;
  where_ = socketEnv;
  auto address = notifyAddress(where_);
  if (!address) {
    PXD_WARN("daemon.notify_unavailable", "error={} note=\"systemd is not told when pxedust is ready\"",
             log::q(address.error().message));
    return;
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd || ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address->addr), address->length) != 0) {
    PXD_WARN("daemon.notify_unavailable", "socket={} error={} note=\"systemd is not told when pxedust is ready\"",
             log::q(where_), log::q(std::strerror(errno)));
    return;
  }
  fd_ = std::move(fd);
}

SystemdNotifier SystemdNotifier::fromEnvironment() { return SystemdNotifier(std::getenv("NOTIFY_SOCKET")); }

bool SystemdNotifier::send(std::string_view message) {
  if (!fd_) return false;
  if (::send(fd_.get(), message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT) == static_cast<ssize_t>(message.size()))
    return true;
  if (!warned_) {
    warned_ = true;
    PXD_WARN("daemon.notify_failed", "socket={} error={} note=\"logged once; pxedust keeps serving\"", log::q(where_),
             log::q(std::strerror(errno)));
  }
  return false;
}

void SystemdNotifier::ready(std::string_view status) { send(readyMessage(status, ::getpid())); }

void SystemdNotifier::reloading(std::string_view status) {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  send(reloadingMessage(status, static_cast<std::uint64_t>(now.tv_sec) * 1'000'000U +
                                    static_cast<std::uint64_t>(now.tv_nsec) / 1000U));
}

void SystemdNotifier::stopping(std::string_view status) { send(stoppingMessage(status)); }

}  // namespace pxedust::daemon
