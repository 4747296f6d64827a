// Running as [daemon] user: started as root, the daemon binds every socket of its first
// configuration, then becomes that user, keeping only the capabilities its services may still need.
//
// The order at start (Daemon::run):
//   PrivilegeDrop::prepare  resolves user and group, checks the switch is possible (we are root, or
//                           already that user), and notes which of the directories and files the
//                           daemon makes (state dir, store with images/ and overlays/, the DHCP lease
//                           file with its lock) do not exist yet
//   Daemon::apply           binds and opens everything, as root
//   PrivilegeDrop::commit   chowns what the daemon made to the user; setgroups (the user's groups),
//                           setresgid, setresuid with PR_SET_KEEPCAPS; then capset to the kept set
//                           (effective = permitted = kept, inheritable empty) and no ambient
//                           capabilities; then checks, as the user, that every directory it writes
//                           is writable, and fails naming the path and the fix if one is not
//
// The kept set (keptCapabilities()), each for code that runs after start, when a reload binds anew:
//   CAP_NET_BIND_SERVICE  ports below 1024 (DHCP 67, TFTP 69, HTTP 80, iSCSI 3260) in a reload
//   CAP_NET_RAW           DHCP's raw ICMPv6 socket that answers router solicitations, and
//                         SO_BINDTODEVICE on DHCP sockets (kernels before 5.7 require it)
//   CAP_NET_ADMIN         DHCP's SIOCSARP: a reply unicast to a client that has no address yet puts
//                         the client in the ARP table first (dhcp/interfaces.hpp); without it those
//                         replies are broadcast. It also lets SO_RCVBUFFORCE/SO_SNDBUFFORCE
//                         (event/udp.cpp) pass net.core.[rw]mem_max for DHCP and TFTP sockets.
// They are kept whatever the configuration holds: a reload may add [dhcp], and a dropped capability
// cannot be taken back. Nothing else is kept (no CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_SETUID: files are
// reached as the user).
//
// Capabilities are per thread. The main thread (the loop, which binds) keeps the set; the threads
// that exist already (disk workers, the state writer) switch users with it (glibc applies setresuid
// to every thread) without PR_SET_KEEPCAPS, so they keep no capabilities at all.
//
// The system calls are made directly (capget/capset, prctl) rather than through libcap: three fixed
// masks need no library, and the daemon gains no dependency.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "config/config.hpp"

namespace pxedust::daemon {

struct Identity {
  std::string user;
  std::string group;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // the user's supplementary groups (getgrouplist), with `gid`
};

// [daemon] user and group from the system's user database; `groupName` unset = the user's primary group.
Result<Identity> lookupIdentity(const std::string& user, const std::optional<std::string>& groupName);

// The kept capabilities as a mask of (1 << CAP_*) bits, and a mask's names ("cap_net_raw,...").
std::uint64_t keptCapabilities();
std::string capabilityNames(std::uint64_t mask);

// A directory the daemon writes in, and what it is for messages ("state dir").
struct WritableDir {
  std::string what;
  std::string path;
};
// The state dir (if any), the store, and the DHCP lease file's directory (a DHCP server).
std::vector<WritableDir> writableDirs(const config::Config& config);

// Of `paths`, those that do not exist, with every missing parent (outermost first): what the daemon
// will have made once it is running.
std::vector<std::string> missingPaths(const std::vector<std::string>& paths);

class PrivilegeDrop {
 public:
  // Before anything is made. `config` has [daemon] user set.
  static Result<PrivilegeDrop> prepare(const config::Config& config);
  // After the first configuration is bound; an error: the daemon must not serve.
  Result<void> commit();

  [[nodiscard]] const Identity& identity() const { return id_; }

 private:
  Identity id_;
  bool switchUser_ = false;           // we are root; else we are the user already
  std::vector<std::string> made_;     // missing at prepare(): chowned at commit() if they exist then
  std::vector<WritableDir> dirs_;
};

}  // namespace pxedust::daemon
