#include "dhcp/interfaces.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <fmt/format.h>

namespace pxedust::dhcp {

Result<InterfaceInfo> lookupInterface(const std::string& name) {
  InterfaceInfo info;
  info.name = name;
  info.index = ::if_nametoindex(name.c_str());
  if (info.index == 0) return Error{fmt::format("interface {}: no such interface", name), ENODEV};
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return Error{fmt::format("getifaddrs: {}", std::strerror(errno)), errno};
  std::unique_ptr<ifaddrs, decltype(&::freeifaddrs)> guard(list, &::freeifaddrs);
  for (auto* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET || name != a->ifa_name) continue;
    info.address = ntohl(reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr);
    info.netmask = a->ifa_netmask != nullptr ? ntohl(reinterpret_cast<const sockaddr_in*>(a->ifa_netmask)->sin_addr.s_addr)
                                             : 0xFFFFFFFFU;
    return info;
  }
  return Error{fmt::format("interface {}: has no IPv4 address (DHCP answers from the interface's own address)", name),
               EADDRNOTAVAIL};
}

Result<void> setNeighbour(int fd, const std::string& interface, std::uint32_t address, const MacAddress& mac) {
  arpreq req{};
  auto* pa = reinterpret_cast<sockaddr_in*>(&req.arp_pa);
  pa->sin_family = AF_INET;
  pa->sin_addr.s_addr = htonl(address);
  req.arp_ha.sa_family = ARPHRD_ETHER;
  auto bytes = mac.bytes();
  std::memcpy(req.arp_ha.sa_data, bytes.data(), bytes.size());
  req.arp_flags = ATF_COM;
  std::snprintf(req.arp_dev, sizeof req.arp_dev, "%s", interface.c_str());
  if (::ioctl(fd, SIOCSARP, &req) != 0)
    return Error{fmt::format("SIOCSARP {} on {}: {}", address, interface, std::strerror(errno)), errno};
  return {};
}

}  // namespace pxedust::dhcp
