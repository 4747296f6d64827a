#include "http/config.hpp"

#include "config/reader.hpp"

namespace pxedust::http {
namespace {

Config parse(config::Table& s) {
  Config out;
  out.listen = config::listenAddresses(s, "listen", 80);
  out.root = s.requiredString("root");
  if (out.root.empty()) s.fail(s.get("root"), "root", "expected a directory path, got an empty string");
  out.perHost = files::readPerHostRules(s, "per_host");
  if (auto v = s.integer<std::uint32_t>("max_connections", 1, 1'000'000)) out.maxConnections = *v;
  if (auto v = s.integer<std::uint32_t>("max_connections_per_client", 1, 1'000'000)) out.maxConnectionsPerClient = *v;
  if (auto v = s.seconds("header_timeout", 0.1, 3600)) out.headerTimeout = *v;
  if (auto v = s.seconds("idle_timeout", 0.1, 86400)) out.idleTimeout = *v;
  if (auto v = s.seconds("send_timeout", 0.1, 3600)) out.sendTimeout = *v;
  return out;
}

}  // namespace

config::ServiceSchema schema() {
  config::ServiceSchema s;
  s.section = "http";
  s.parse = [](config::Table& t, const config::Config&) { return std::any(parse(t)); };
  return s;
}

const Config* configIn(const config::Config& config) { return config.section<Config>("http"); }

}  // namespace pxedust::http
