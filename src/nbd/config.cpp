#include "nbd/config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>

#include "config/reader.hpp"
#include "nbd/tls.hpp"
#include "nbd/wire/protocol.hpp"

namespace pxedust::nbd {
namespace {

constexpr std::uint16_t kNbdPort = 10809;  // IANA "nbd"

// A credential file's path: a non-empty string.
std::optional<std::string> credentialPath(config::Table& s, std::string_view key) {
  auto p = s.string(key);
  if (p && p->empty()) s.fail(s.get(key), key, "expected a file path, got an empty string");
  return p;
}

// The files named by tls_certificate/tls_key and tls_psk_file, read and checked now. Each problem is
// reported at the key that names the file.
std::shared_ptr<const TlsCredentials> loadCredentials(config::Table& s, const Config& c) {
  auto creds = std::make_shared<TlsCredentials>();
  if (!c.tlsCertificate.empty()) {
    auto cert = readCredentialFile(c.tlsCertificate);
    if (!cert) s.fail(s.get("tls_certificate"), "tls_certificate", cert.error().message);
    auto key = readCredentialFile(c.tlsKey);
    if (!key) s.fail(s.get("tls_key"), "tls_key", key.error().message);
    auto loaded = creds->setCertificate(*cert, *key);
    wipeSecret(*key);
    if (!loaded)
      s.fail(s.get("tls_certificate"), "tls_certificate",
             fmt::format("{} with the key {}: {}", c.tlsCertificate, c.tlsKey, loaded.error().message));
  }
  if (!c.tlsPskFile.empty()) {
    auto text = readCredentialFile(c.tlsPskFile);
    if (!text) s.fail(s.get("tls_psk_file"), "tls_psk_file", text.error().message);
    auto keys = parsePskFile(*text);
    wipeSecret(*text);
    if (!keys) s.fail(s.get("tls_psk_file"), "tls_psk_file", fmt::format("{}: {}", c.tlsPskFile, keys.error().message));
    creds->setPskKeys(std::move(*keys));
  }
  if (auto r = creds->finish(); !r) s.fail(s.get("tls"), "tls", r.error().message);
  return creds;
}

void parseTls(config::Table& s, Config& out) {
  if (auto t = s.string("tls")) {
    if (*t == "off") out.tls = wire::TlsMode::None;
    else if (*t == "optional") out.tls = wire::TlsMode::Optional;
    else if (*t == "require") out.tls = wire::TlsMode::Required;
    else s.fail(s.get("tls"), "tls", "expected \"off\", \"optional\" or \"require\"");
  }
  auto cert = credentialPath(s, "tls_certificate");
  auto key = credentialPath(s, "tls_key");
  auto psk = credentialPath(s, "tls_psk_file");
  if (cert && !key) s.fail(s.get("tls_certificate"), "tls_certificate", "needs tls_key (the certificate's private key)");
  if (key && !cert) s.fail(s.get("tls_key"), "tls_key", "needs tls_certificate (the key's certificate)");
  out.tlsCertificate = cert.value_or("");
  out.tlsKey = key.value_or("");
  out.tlsPskFile = psk.value_or("");
  if (out.tls == wire::TlsMode::None) return;  // the files are not read: nothing uses them
  if (!cert && !psk)
    s.fail(s.get("tls"), "tls",
           fmt::format("\"{}\" needs tls_certificate and tls_key, or tls_psk_file", tlsModeName(out.tls)));
  out.tlsCredentials = loadCredentials(s, out);
}

Config parse(config::Table& s) {
  Config out;
  out.listen = config::listenAddresses(s, "listen", kNbdPort);
  if (auto t = s.string("export_name")) {
    static constexpr std::array<std::string_view, 3> kVars = {"name", "mac", "group"};
    for (std::size_t i = 0; i < t->size(); ++i) {
      if ((*t)[i] != '{') continue;
      auto end = t->find('}', i);
      auto var = end == std::string::npos ? std::string_view{} : std::string_view(*t).substr(i + 1, end - i - 1);
      if (std::find(kVars.begin(), kVars.end(), var) == kVars.end()) {
        s.fail(s.get("export_name"), "export_name", "template variables are {name}, {mac} and {group}");
        break;
      }
      i = end;
    }
    if (t->find("{name}") == std::string::npos && t->find("{mac}") == std::string::npos)
      s.fail(s.get("export_name"), "export_name", "must contain {name} or {mac}: every host needs its own export");
    out.exportName = *t;
  }
  if (auto v = s.integer<std::uint32_t>("max_connections", 1, 1'000'000)) out.maxConnections = *v;
  if (auto v = s.integer<std::uint32_t>("max_connections_per_client", 1, 65'536)) out.maxConnectionsPerClient = *v;
  if (auto v = s.integer<std::uint32_t>("max_in_flight", 1, 4096)) out.maxInFlight = *v;
  if (auto v = s.seconds("handshake_timeout", 0.1, 3600)) out.handshakeTimeout = *v;
  if (auto v = s.seconds("idle_timeout", 0, 7 * 86400)) out.idleTimeout = *v;
  if (auto v = s.seconds("send_timeout", 0.1, 3600)) out.sendTimeout = *v;
  if (auto v = s.boolean("image_exports")) out.imageExports = *v;
  parseTls(s, out);
  return out;
}

// One load's check of the hosts: export names are distinct and fit the protocol's strings.
config::ServiceSchema::HostChecker hostChecker(const Config& nbd) {
  auto exports = std::make_shared<std::map<std::string, std::string>>();  // export name -> host
  std::optional<config::SocketAddress> portal;
  for (const auto& a : nbd.listen)
    if (a.address.is_v4() && !portal) portal = a;
  return [nbd, exports, portal](config::Table& h, const config::HostConfig& hc) -> std::optional<config::RootDisk> {
    if (!hc.disk.image) return std::nullopt;
    const bool rootNbd = hc.disk.rootProtocol == "nbd";
    const bool rootRam = hc.disk.rootProtocol == "ram";
    if (rootRam && !nbd.imageExports)
      h.fail(h.get("name"), "name",
             fmt::format("host '{}' has root_protocol = \"ram\": its image is copied over NBD, which needs [nbd] "
                         "image_exports = true",
                         hc.name));
    auto why = notExportedBecause(hc.disk, hc.ip);
    if ((rootNbd || rootRam) && why)
      h.fail(h.get("name"), "name",
             fmt::format("host '{}' has root_protocol = \"{}\" but {}", hc.name, rootNbd ? "nbd" : "ram", *why));
    if (why) return std::nullopt;
    auto name = exportName(nbd, hc.name, hc.mac, hc.group);
    if (name.size() > wire::kMaxString)
      h.fail(h.get("name"), "name", fmt::format("export name '{}...' (from [nbd] export_name) is over 4096 bytes",
                                                name.substr(0, 64)));
    if (auto [it, fresh] = exports->emplace(name, hc.name); !fresh)
      h.fail(h.get("name"), "name", fmt::format("export name '{}' is also host '{}''s", name, it->second));
    if (!portal) return std::nullopt;
    if (rootRam) return config::RootDisk{"ram", *portal, "images/" + *hc.disk.image};
    if (!rootNbd) return std::nullopt;
    return config::RootDisk{"nbd", *portal, name};
  };
}

}  // namespace

config::ServiceSchema schema() {
  config::ServiceSchema s;
  s.section = "nbd";
  s.parse = [](config::Table& t, const config::Config&) { return std::any(parse(t)); };
  s.hosts = [](const std::any& section) { return hostChecker(std::any_cast<const Config&>(section)); };
  return s;
}

const Config* configIn(const config::Config& config) { return config.section<Config>("nbd"); }

std::string_view tlsModeName(wire::TlsMode mode) {
  switch (mode) {
    case wire::TlsMode::None: return "off";
    case wire::TlsMode::Optional: return "optional";
    case wire::TlsMode::Required: return "require";
  }
  return "off";
}

std::string exportName(const Config& config, std::string_view host, const std::optional<MacAddress>& mac,
                       std::string_view group) {
  std::string out;
  const std::string& t = config.exportName;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '{') {
      auto end = t.find('}', i);
      if (end == std::string::npos) break;  // refused by parse()
      auto var = std::string_view(t).substr(i + 1, end - i - 1);
      if (var == "name") out += host;
      else if (var == "mac") out += mac ? config::macTemplateText(*mac) : std::string();
      else if (var == "group") out += group;
      i = end;
      continue;
    }
    out += t[i];
  }
  return out;
}

std::optional<std::string_view> notExportedBecause(const config::DiskSettings& disk,
                                                   const std::optional<asio::ip::address_v4>& ip) {
  if (disk.chap) return "it requires CHAP, which NBD cannot check (no NBD export)";
  if (!ip && !disk.allow) return "it has neither ip nor iscsi_allow: NBD can check addresses only (no NBD export)";
  return std::nullopt;
}

}  // namespace pxedust::nbd
