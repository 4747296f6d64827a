// Telling systemd how the daemon is doing: the sd_notify(3) protocol, written out here rather than
// linked from libsystemd (it is one datagram of "KEY=value" lines to a unix socket).
//
// When the service manager sets $NOTIFY_SOCKET (a path, or an abstract socket name when it starts
// with '@'), the daemon sends:
//   READY=1 STATUS=... MAINPID=<pid>   once the services are up: when daemon.json says "running"
//   RELOADING=1 STATUS=... MONOTONIC_USEC=<now>   when a reload starts (SIGHUP or the API)
//   READY=1 STATUS=reload applied|refused: ...    when it ends, either way
//   STOPPING=1 STATUS=...               at shutdown
// With a unit's Type=notify, systemd counts the service as started on the first READY=1.
//
// The socket is connected when the notifier is made, so a daemon that later drops its privileges
// can still reach a socket its new user could not open. A datagram that cannot be sent is logged
// once (later failures are not) and never stops the daemon.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/fd.hpp"
#include "common/result.hpp"

namespace pxedust::daemon {

// The address $NOTIFY_SOCKET names: "/run/systemd/notify" or "@name" (abstract: a leading NUL
// instead of the '@', and the length says where the name ends). Anything else (a relative path,
// systemd's "vsock:" form, a name longer than sun_path) is an error that says why.
struct NotifyAddress {
  sockaddr_un addr{};
  socklen_t length = 0;
};
Result<NotifyAddress> notifyAddress(std::string_view socketEnv);

// The datagrams' texts. `status` becomes one STATUS= line (line breaks replaced by "; ").
std::string readyMessage(std::string_view status, pid_t mainPid);
std::string reloadingMessage(std::string_view status, std::uint64_t monotonicUsec);
std::string stoppingMessage(std::string_view status);
std::string statusLine(std::string_view status);

class SystemdNotifier {
 public:
  // `socketEnv`: the value of $NOTIFY_SOCKET; null or empty turns the notifier off.
  explicit SystemdNotifier(const char* socketEnv);
  static SystemdNotifier fromEnvironment();

  [[nodiscard]] bool enabled() const { return fd_.valid(); }
  void ready(std::string_view status);
  void reloading(std::string_view status);
  void stopping(std::string_view status);
  // One datagram as it is; false when it could not be sent (or the notifier is off).
  bool send(std::string_view message);

 private:
  UniqueFd fd_;
  std::string where_;  // $NOTIFY_SOCKET, for the log
  bool warned_ = false;
};

}  // namespace pxedust::daemon
