// A tracker with a fake clock over an inventory from TOML, and builders for the events a real boot
// sends, so each test reads as the boot it plays: firmware DHCP, files, disk logins.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "config/config.hpp"
#include "boot/event.hpp"
#include "boot/tracker.hpp"
#include "inventory/inventory.hpp"

namespace pxedust::boot::testing {

using namespace std::chrono_literals;

inline MacAddress mac(const char* text) { return *MacAddress::parse(text); }
inline Ipv4 ip(const char* text) { return *Ipv4::parse(text); }

// Two configured hosts: node01 with a fixed address, node02 by MAC only (a pool address).
inline const char* kTwoHosts = R"(
[[host]]
name = "node01"
mac = "52:54:00:00:00:01"
ip = "10.0.0.11"
[[host]]
name = "node02"
mac = "52:54:00:00:00:02"
)";

inline std::shared_ptr<const inventory::Inventory> inventoryFrom(const char* toml) {
  return inventory::Inventory::fromConfig(config::loadString(toml, "test.toml", {}));
}

struct FakeClock {
  // 2026-11-22 14:50:51 UTC
  TimePoint now = TimePoint(std::chrono::seconds(1795359051));
};

struct Lab {
  explicit Lab(const char* toml = kTwoHosts, TrackerOptions options = {})
      : tracker(inventoryFrom(toml), [this] { return clock.now; }, options) {}

  // Records `what` `after` the previous event (boots move in seconds).
  template <typename What>
  void at(std::chrono::milliseconds after, What what) {
    clock.now += after;
    tracker.record(Event{{}, std::move(what)});
  }
  template <typename What>
  void then(What what) { at(1s, std::move(what)); }

  FakeClock clock;
  Tracker tracker;
};

// ---- DHCP ----

// Firmware PXE or iPXE: option 93 and "PXEClient:Arch:..." (arch 0 = BIOS, 7 = x64 UEFI).
inline DhcpEvent pxeDiscover(MacAddress m, std::uint16_t arch = 0) {
  return {DhcpKind::Discover, m, {}, arch, fmt::format("PXEClient:Arch:{:05}:UNDI:002001", arch), {}, {}};
}
// An operating system's DHCP client: busybox udhcpc in the initramfs, no option 93.
inline DhcpEvent osDiscover(MacAddress m) {
  return {DhcpKind::Discover, m, {}, {}, "udhcp 1.35.0", {}, {}};
}
inline DhcpEvent offer(MacAddress m, Ipv4 a) { return {DhcpKind::Offer, m, a, {}, {}, {}, {}}; }
inline DhcpEvent ack(MacAddress m, Ipv4 a, std::string name = {}) {
  return {DhcpKind::Ack, m, a, {}, {}, {}, std::move(name)};
}
inline DhcpEvent nak(MacAddress m) { return {DhcpKind::Nak, m, {}, {}, {}, {}, {}}; }

// ---- Files ----

inline FileEvent served(Ipv4 client, std::string name, std::uint64_t bytes = 1000) {
  return {FileProtocol::Tftp, FileResult::Completed, client, std::move(name), {}, bytes, {}, {}, {}};
}
inline FileEvent notFound(Ipv4 client, std::string name) {
  return {FileProtocol::Tftp, FileResult::NotFound, client, std::move(name), {}, 0, "file not found", {}, {}};
}
inline FileEvent sizeQuery(Ipv4 client, std::string name) {  // UEFI PXE's tsize probe, then it stops
  return {FileProtocol::Tftp, FileResult::Aborted, client, std::move(name), {}, 0, "client error: tsize query", {}, {}};
}
inline FileEvent failed(Ipv4 client, std::string name, std::string reason) {
  return {FileProtocol::Tftp, FileResult::Failed, client, std::move(name), {}, 0, std::move(reason), {}, {}};
}

inline HostEvent up(Ipv4 client) { return {HostKind::Up, client, {}}; }
inline HostEvent bootFailed(Ipv4 client, std::string reason) { return {HostKind::Failed, client, std::move(reason)}; }

// ---- Disks ----

inline DiskEvent login(Ipv4 client, std::string host, std::string initiator = "iqn.2010-04.org.ipxe:node") {
  return {DiskProtocol::Iscsi, DiskKind::Login, client, std::move(host), std::move(initiator), {}};
}
inline DiskEvent logout(Ipv4 client, std::string host) {
  return {DiskProtocol::Iscsi, DiskKind::Logout, client, std::move(host), {}, "connection closed"};
}
inline DiskEvent loginFailed(Ipv4 client, std::string host, std::string reason) {
  return {DiskProtocol::Iscsi, DiskKind::Failed, client, std::move(host), {}, std::move(reason)};
}

// A DHCP exchange: DISCOVER, OFFER, ACK (REQUEST is not an event; its ACK is).
template <typename Discover>
void dhcpExchange(Lab& lab, Discover discover, Ipv4 address, std::string name = {}) {
  MacAddress m = discover.mac;
  lab.then(std::move(discover));
  lab.at(10ms, offer(m, address));
  lab.at(1s, ack(m, address, std::move(name)));
}

}  // namespace pxedust::boot::testing
