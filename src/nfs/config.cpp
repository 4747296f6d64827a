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
  if (auto v = s.boolean("auth_none")) out.authNone = *v;
  if (auto v = s.boolean("privileged_port")) out.privilegedPort = *v;
  return out;
}

}  // namespace

config::ServiceSchema schema() {
  config::ServiceSchema s;
  s.section = "nfs";
  s.parse = [](config::Table& t, const config::Config&) { return std::any(parse(t)); };
  return s;
}

const Config* configIn(const config::Config& config) { return config.section<Config>("nfs"); }

}  // namespace pxedust::nfs
