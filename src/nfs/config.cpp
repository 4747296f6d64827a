#include "nfs/config.hpp"

#include "config/reader.hpp"

namespace pxedust::nfs {
namespace {

constexpr std::uint16_t kNfsPort = 2049;  // IANA "nfs"

Config parse(config::Table& s) {
  Config out;
  out.listen = config::listenAddresses(s, "listen", kNfsPort);
  if (auto v = s.integer<std::uint32_t>("max_connections", 1, 1'000'000)) out.maxConnections = *v;
  if (auto v = s.integer<std::uint32_t>("max_connections_per_client", 1, 65'536)) out.maxConnectionsPerClient = *v;
  if (auto v = s.integer<std::uint32_t>("max_in_flight", 1, 1024)) out.maxInFlight = *v;
  if (auto v = s.seconds("send_timeout", 0.1, 3600)) out.sendTimeout = *v;
  if (auto v = s.boolean("udp")) out.udp = *v;
  if (auto v = s.boolean("portmap")) out.portmap = *v;
  if (auto v = s.boolean("auth_none")) out.authNone = *v;
  if (auto v = s.boolean("privileged_port")) out.privilegedPort = *v;
  return out;
}

// A host with root_protocol = "nfs" boots its image's export, "/images/NAME": the image's newest
// version when it mounts, which it then keeps until it reboots (nfs/exports.hpp).
config::ServiceSchema::HostChecker hostChecker(const Config& nfs) {
  std::optional<config::SocketAddress> portal;
  for (const auto& a : nfs.listen)
    if (a.address.is_v4() && !portal) portal = a;
  return [portal](config::Table&, const config::HostConfig& hc) -> std::optional<config::RootDisk> {
    if (!hc.disk.image || hc.disk.rootProtocol != "nfs" || !portal) return std::nullopt;
    return config::RootDisk{"nfs", *portal, "/images/" + *hc.disk.image};
  };
}

}  // namespace

config::ServiceSchema schema() {
  config::ServiceSchema s;
  s.section = "nfs";
  s.parse = [](config::Table& t, const config::Config&) { return std::any(parse(t)); };
  s.hosts = [](const std::any& section) { return hostChecker(std::any_cast<const Config&>(section)); };
  return s;
}

const Config* configIn(const config::Config& config) { return config.section<Config>("nfs"); }

}  // namespace pxedust::nfs
