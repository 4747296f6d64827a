// The host model every service shares: who each machine is (name, MAC, IP, group), and who may use
// its disk (Host::admitsAddress).
//
// An Inventory is an immutable snapshot built from the config; services hold a
// shared_ptr<const Inventory> and a reload swaps in a new one, so a lookup never sees a half-applied
// change and needs no lock. Lookups are hash-map hits: DHCP asks by MAC, TFTP and HTTP by IP; iSCSI keeps
// its own index of target names.
#pragma once

#include <asio/ip/address.hpp>
#include <asio/ip/address_v4.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/mac.hpp"
#include "config/config.hpp"

namespace pxedust::inventory {

struct Host {
  std::string name;
  std::optional<MacAddress> mac;
  std::optional<asio::ip::address_v4> ip;
  std::string group;
  // The host's disk, its group's settings applied (who may open it: admitsAddress below).
  config::DiskSettings disk;
  // Each service's keys on the host, its group's applied: dhcp::settingsOf(keys), ...
  config::Parts keys;
  // Where its root disk is served, when a configured service serves it (iSCSI: the host's target at
  // the first IPv4 listen address; NBD or NFS, for a host whose root_protocol names them: its export
  // there). DHCP derives the host's root-path from it when none is configured.
  std::optional<config::RootDisk> rootDisk;

  // The address rule of every service that serves the host's disk (iSCSI and NBD; NFS next):
  // may a peer at `peer` use it? Yes when `peer` is in one of `disk.allow` (iscsi_allow) if that is
  // set, else when it is the host's own `ip`; a host with neither admits any address (config
  // validation then insists on initiator names or CHAP). An IPv4-mapped IPv6 peer (::ffff:a.b.c.d,
  // from a dual-stack socket) is its IPv4 address; any other IPv6 peer is refused by either rule.
  // Protocol-specific checks (iSCSI initiator names, CHAP) stay with the protocol.
  [[nodiscard]] bool admitsAddress(const asio::ip::address& peer) const;
  // A peer that proved a TLS pre-shared key identity (NBD's STARTTLS) is this host when the identity
  // is the host's name, exactly (names are what psktool -u is given). Services apply it in addition
  // to admitsAddress, not instead of it.
  [[nodiscard]] bool admitsTlsIdentity(std::string_view identity) const { return identity == name; }

  // The root-path a client is given for its disk (DHCP option 17, iPXE scripts), as RFC 4173
  // writes an iSCSI one: "iscsi:10.0.0.1::3261::iqn...", the port left out when it is 3260; an NBD
  // one as Debian's nbd-client initramfs reads it: "nbd:10.0.0.1:10809:<export>"; an NFS one in
  // the classic form "10.0.0.1:/images/<image>,port=2049,mountport=2049". A disk
  // served on every address (rootDisk's portal unspecified) is named by `server`, the address the
  // client reached us on. Empty when no service serves the host's disk.
  [[nodiscard]] std::optional<std::string> rootPath(const asio::ip::address_v4& server) const;
};

// A peer's IPv4 address, hosts being known by IPv4: its own, or the one inside an IPv4-mapped IPv6
// address (::ffff:a.b.c.d, from a dual-stack socket); nullopt for any other IPv6 peer.
std::optional<asio::ip::address_v4> peerIpv4(const asio::ip::address& peer);

class Inventory {
 public:
  static std::shared_ptr<const Inventory> fromConfig(const config::Config& config);

  [[nodiscard]] const Host* byMac(const MacAddress& mac) const;
  [[nodiscard]] const Host* byIp(const asio::ip::address_v4& ip) const;
  [[nodiscard]] const Host* byName(std::string_view name) const;
  [[nodiscard]] const std::vector<Host>& hosts() const { return hosts_; }

 private:
  std::vector<Host> hosts_;
  std::unordered_map<std::uint64_t, std::size_t> byMac_;
  std::unordered_map<std::uint32_t, std::size_t> byIp_;
  std::unordered_map<std::string_view, std::size_t> byName_;  // views into hosts_[i].name
};

}  // namespace pxedust::inventory
