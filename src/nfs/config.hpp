// The [nfs] section: where the NFS server listens and how it judges its clients. Exports are not
// configured one by one: every image version in the store is exported read-only
// ("/images/NAME/VERSION", and "/images/NAME" for the newest when mounted), and a client may mount
// an image when the address rule of a host that boots that image admits it (inventory::Host::
// admitsAddress, the rule iSCSI and NBD apply to a host's disk).
//
// A host (or group) with root_protocol = "nfs" boots its root from its image's export: DHCP hands it
// the root-path "SERVER:/images/NAME,port=P,mountport=P" (the classic NFS root form, RFC 2132
// option 17), and the pxedust initramfs mounts it read-only with a RAM overlay.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "config/config.hpp"

namespace pxedust::nfs {

struct Config {
  // NFS v3 and MOUNT v3 on one port (default 0.0.0.0:2049): clients mount with
  // `port=2049,mountport=2049` (the pxedust initramfs does), so no portmapper is needed.
  std::vector<config::SocketAddress> listen;
  // `udp`: serve UDP too, on the same addresses and ports (a TCP address of port 0 lends its port).
  bool udp = true;
  // `portmap`: also answer on port 111 (TCP, and UDP with `udp`) of each listen address, so that a
  // plain `mount SERVER:/images/NAME` finds NFS and MOUNT with no options. Off by default: a host's
  // own rpcbind may hold that port.
  bool portmap = false;
  std::uint32_t maxConnections = 4096;          // in all; beyond it new connections are closed at once
  std::uint32_t maxConnectionsPerClient = 16;   // a Linux mount uses one or two
  // Calls one connection may have on the workers at once; the reader waits for one to finish.
  std::uint32_t maxInFlight = 64;
  // Replies with no progress for this long: the client stopped reading; its connection is closed.
  std::chrono::milliseconds sendTimeout{60'000};
  // `auth_none`: accept AUTH_NONE calls (as uid/gid 65534) besides AUTH_SYS. Off by default.
  bool authNone = false;
  // `privileged_port`: only calls from source ports below 1024 (knfsd's `secure` export option).
  bool privilegedPort = false;
};

config::ServiceSchema schema();
const Config* configIn(const config::Config& config);

}  // namespace pxedust::nfs
