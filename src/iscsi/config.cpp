#include "iscsi/config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <memory>

#include "config/reader.hpp"

namespace pxedust::iscsi {
namespace {

Config parse(config::Table& s) {
  Config out;
  out.listen = config::listenAddresses(s, "listen", 3260);
  if (auto t = s.string("target_name")) {
    static constexpr std::array<std::string_view, 3> kVars = {"name", "mac", "group"};
    for (std::size_t i = 0; i < t->size(); ++i) {
      if ((*t)[i] != '{') continue;
      auto end = t->find('}', i);
      auto var = end == std::string::npos ? std::string_view{} : std::string_view(*t).substr(i + 1, end - i - 1);
      if (std::find(kVars.begin(), kVars.end(), var) == kVars.end())
        s.fail(s.get("target_name"), "target_name", "template variables are {name}, {mac} and {group}");
      i = end;
    }
    if (t->find("{name}") == std::string::npos && t->find("{mac}") == std::string::npos)
      s.fail(s.get("target_name"), "target_name", "must contain {name} or {mac}: every host needs its own target");
    out.targetName = *t;
  }
  if (auto v = s.integer<std::uint16_t>("portal_group_tag", 1, 65535)) out.portalGroupTag = *v;
  if (auto v = s.seconds("nop_interval", 0.1, 3600)) out.nopInterval = *v;
  if (auto v = s.seconds("nop_timeout", 0.1, 3600)) out.nopTimeout = *v;
  if (auto v = s.integer<std::uint32_t>("max_connections", 1, 1'000'000)) out.maxConnections = *v;
  out.discoveryChap = config::chapPair(s, "discovery_chap_user", "discovery_chap_secret", "discovery");
  return out;
}

// One load's check of the hosts: target names are distinct across them.
config::ServiceSchema::HostChecker hostChecker(const Config& iscsi) {
  auto targets = std::make_shared<std::map<std::string, std::string>>();  // target name -> host
  std::optional<config::SocketAddress> portal;
  for (const auto& a : iscsi.listen)
    if (a.address.is_v4() && !portal) portal = a;
  return [iscsi, targets, portal](config::Table& h, const config::HostConfig& hc) -> std::optional<config::RootDisk> {
    if (!hc.disk.image) return std::nullopt;
    // Host A must never reach host B's disk: a target needs something that tells its host apart.
    if (!hc.ip && !hc.disk.allow && !hc.disk.initiators && !hc.disk.chap)
      h.fail(h.get("image"), "image",
             fmt::format("host '{}' has a disk but nothing tells it apart from other machines: set ip, "
                         "iscsi_allow, iscsi_initiators or chap_secret (here or on its group)", hc.name));
    auto target = targetName(iscsi, hc.name, hc.mac, hc.group);
    if (auto why = config::checkIscsiName(target))
      h.fail(h.get("name"), "name", fmt::format("target name '{}' (from [iscsi] target_name) {}", target, *why));
    if (auto [it, fresh] = targets->emplace(target, hc.name); !fresh)
      h.fail(h.get("name"), "name", fmt::format("target name '{}' is also host '{}''s", target, it->second));
    // Its root disk is its target unless root_protocol names another protocol.
    if (!portal || (hc.disk.rootProtocol && *hc.disk.rootProtocol != "iscsi")) return std::nullopt;
    return config::RootDisk{"iscsi", *portal, target};
  };
}

}  // namespace

config::ServiceSchema schema() {
  config::ServiceSchema s;
  s.section = "iscsi";
  s.parse = [](config::Table& t, const config::Config&) { return std::any(parse(t)); };
  s.hosts = [](const std::any& section) { return hostChecker(std::any_cast<const Config&>(section)); };
  return s;
}

const Config* configIn(const config::Config& config) { return config.section<Config>("iscsi"); }

std::string targetName(const Config& config, std::string_view host, const std::optional<MacAddress>& mac,
                       std::string_view group) {
  std::string out;
  const std::string& t = config.targetName;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '{') {
      auto end = t.find('}', i);
      auto var = std::string_view(t).substr(i + 1, end - i - 1);
      if (var == "name") out += host;
      else if (var == "mac") out += mac ? config::macTemplateText(*mac) : std::string();
      else if (var == "group") out += group;
      i = end;
      continue;
    }
    out += t[i];
  }
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace pxedust::iscsi
