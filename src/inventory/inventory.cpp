#include "inventory/inventory.hpp"

#include <algorithm>

namespace pxedust::inventory {

std::shared_ptr<const Inventory> Inventory::fromConfig(const config::Config& config) {
  auto inv = std::make_shared<Inventory>();
  inv->hosts_.reserve(config.hosts.size());
  for (const auto& h : config.hosts) inv->hosts_.push_back(Host{h.name, h.mac, h.ip, h.group, h.disk, h.keys, h.rootDisk});
  // Indexes are built after hosts_ stops growing, so the name views stay valid.
  for (std::size_t i = 0; i < inv->hosts_.size(); ++i) {
    const auto& h = inv->hosts_[i];
    inv->byName_.emplace(h.name, i);
    if (h.mac) inv->byMac_.emplace(h.mac->value(), i);
    if (h.ip) inv->byIp_.emplace(h.ip->to_uint(), i);
  }
  return inv;
}

std::optional<asio::ip::address_v4> peerIpv4(const asio::ip::address& peer) {
  if (peer.is_v4()) return peer.to_v4();
  if (peer.is_v6() && peer.to_v6().is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, peer.to_v6());
  return std::nullopt;
}

std::optional<std::string> Host::rootPath(const asio::ip::address_v4& server) const {
  if (!rootDisk) return std::nullopt;
  const auto& portal = rootDisk->portal;
  std::string address = portal.address.is_unspecified() ? server.to_string() : portal.address.to_string();
  if (rootDisk->protocol == "nbd") return "nbd:" + address + ":" + std::to_string(portal.port) + ":" + rootDisk->name;
  // Root in RAM: the initramfs copies the base image (read-only NBD export) into memory.
  if (rootDisk->protocol == "ram") return "ram:nbd:" + address + ":" + std::to_string(portal.port) + ":" + rootDisk->name;
  // NFS's classic form, SERVER:/PATH[,OPTIONS]: MOUNT is served on the NFS port, so the client
  // needs no portmapper.
  if (rootDisk->protocol == "nfs") {
    const auto port = std::to_string(portal.port);
    return address + ":" + rootDisk->name + ",port=" + port + ",mountport=" + port;
  }
  if (rootDisk->protocol != "iscsi") return std::nullopt;
  std::string port = portal.port == 3260 ? "" : std::to_string(portal.port);
  return "iscsi:" + address + "::" + port + "::" + rootDisk->name;
}

bool Host::admitsAddress(const asio::ip::address& peer) const {
  const auto v4 = peerIpv4(peer);
  if (disk.allow)
    return v4 && std::any_of(disk.allow->begin(), disk.allow->end(), [&](const auto& n) { return n.contains(*v4); });
  if (ip) return v4 && *v4 == *ip;
  return true;
}

const Host* Inventory::byMac(const MacAddress& mac) const {
  auto it = byMac_.find(mac.value());
  return it == byMac_.end() ? nullptr : &hosts_[it->second];
}

const Host* Inventory::byIp(const asio::ip::address_v4& ip) const {
  auto it = byIp_.find(ip.to_uint());
  return it == byIp_.end() ? nullptr : &hosts_[it->second];
}

const Host* Inventory::byName(std::string_view name) const {
  auto it = byName_.find(name);
  return it == byName_.end() ? nullptr : &hosts_[it->second];
}

}  // namespace pxedust::inventory
