// The network interfaces DHCP answers on: their index, IPv4 address and netmask, and the kernel
// calls the server needs to reach a client that has no address yet.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/mac.hpp"
#include "common/result.hpp"

namespace pxedust::dhcp {

struct InterfaceInfo {
  std::string name;
  unsigned index = 0;
  std::uint32_t address = 0;  // host order; the first IPv4 address on the interface
  std::uint32_t netmask = 0;  // host order
  [[nodiscard]] std::uint32_t network() const { return address & netmask; }
};

// The interface's index and first IPv4 address. An error names the interface and says what is
// missing (no such interface, no IPv4 address).
Result<InterfaceInfo> lookupInterface(const std::string& name);

// Tells the kernel that `address` is at `mac` on `interface` (SIOCSARP), so a reply can be
// unicast to a client that does not answer ARP yet (RFC 2131 §4.1). `fd` is any AF_INET socket.
Result<void> setNeighbour(int fd, const std::string& interface, std::uint32_t address, const MacAddress& mac);

}  // namespace pxedust::dhcp
