// The `pxedust` command: serve, check-config, version, demo (and, with the block store, image and
// overlay management). Every subcommand has --help.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <fmt/format.h>

#include <cstdlib>
#include <set>
#include <string>

#include "cli/demo.hpp"
#include "cli/demo_image.hpp"
#include "cli/image_build.hpp"
#include "cli/initramfs_command.hpp"
#include "cli/status_command.hpp"
#include "cli/storage_commands.hpp"
#include "common/log.hpp"
#include "config/config.hpp"
#include "daemon/checks.hpp"
#include "daemon/daemon.hpp"
#include "dhcp/config.hpp"
#include "http/config.hpp"
#include "iscsi/config.hpp"
#include "nbd/config.hpp"
#include "nbd/tls.hpp"
#include "nfs/config.hpp"
#include "tftp/config.hpp"

#ifndef PXEDUST_VERSION
#define PXEDUST_VERSION "0.0.0"
#endif

using namespace pxedust;

namespace {

std::string describe(const config::Config& c) {
  std::string s;
  if (c.daemon.user)
    s += fmt::format("  daemon: user {}, group {}: started as root, binds, then runs as them\n", *c.daemon.user,
                     c.daemon.group.value_or("(the user's primary group)"));
  if (const auto* tftp = tftp::configIn(c)) {
    std::string addrs;
    for (const auto& a : tftp->listen) addrs += (addrs.empty() ? "" : ", ") + a.toString();
    s += fmt::format("  tftp: listening on {}, serving {}", addrs, tftp->root);
    if (!tftp->perHost.empty()) s += fmt::format(" ({} per-host rules)", tftp->perHost.size());
    s += "\n";
  }
  if (const auto* http = http::configIn(c)) {
    std::string addrs;
    for (const auto& a : http->listen) addrs += (addrs.empty() ? "" : ", ") + a.toString();
    s += fmt::format("  http: listening on {}, serving {}; iPXE scripts at /ipxe/<mac>", addrs, http->root);
    std::string api;
    for (const auto& a : http->apiListen) api += (api.empty() ? "" : ", ") + a.toString();
    s += api.empty() ? "; API and dashboard there too" : "; API and dashboard on " + api + " only";
    s += http->apiToken ? " (actions with the api_token)\n" : " (read-only: no api_token)\n";
  }
  if (const auto* dhcp = dhcp::configIn(c)) {
    std::string ifs;
    for (const auto& i : dhcp->interfaces) ifs += (ifs.empty() ? "" : ", ") + i;
    s += fmt::format("  dhcp: {} on {}", dhcp->mode == dhcp::Mode::Proxy ? "proxyDHCP" : "server", ifs);
    for (const auto& sub : dhcp->subnets) s += fmt::format("; {} ({} pools)", sub.toString(), sub.pools.size());
    s += "\n";
  }
  if (const auto* iscsi = iscsi::configIn(c)) {
    std::string addrs;
    for (const auto& a : iscsi->listen) addrs += (addrs.empty() ? "" : ", ") + a.toString();
    std::size_t disks = 0, chap = 0;
    for (const auto& h : c.hosts) {
      if (!h.disk.image) continue;
      ++disks;
      if (h.disk.chap) ++chap;
    }
    s += fmt::format("  iscsi: listening on {}; {} targets ({} with CHAP), named {}\n", addrs, disks, chap,
                     iscsi->targetName);
  }
  if (const auto* nbd = nbd::configIn(c)) {
    std::string addrs;
    for (const auto& a : nbd->listen) addrs += (addrs.empty() ? "" : ", ") + a.toString();
    std::size_t exports = 0, roots = 0;
    for (const auto& h : c.hosts) {
      if (!h.disk.image || nbd::notExportedBecause(h.disk, h.ip)) continue;
      ++exports;
      if (h.rootDisk && h.rootDisk->protocol == "nbd") ++roots;
    }
    std::string tls = std::string(nbd::tlsModeName(nbd->tls));
    if (nbd->tlsCredentials)
      tls += fmt::format(" ({}{})", nbd->tlsCredentials->kinds(),
                         nbd->tlsCredentials->hasPsk()
                             ? fmt::format(", {} PSK identities", nbd->tlsCredentials->pskKeys().size())
                             : std::string());
    s += fmt::format("  nbd: listening on {}; {} exports ({} root disks), named {}; TLS {}\n", addrs, exports, roots,
                     nbd->exportName, tls);
  }
  if (const auto* nfs = nfs::configIn(c)) {
    std::string addrs;
    for (const auto& a : nfs->listen) addrs += (addrs.empty() ? "" : ", ") + a.toString();
    std::set<std::string> images;
    std::size_t roots = 0;
    for (const auto& h : c.hosts) {
      if (h.disk.image) images.insert(*h.disk.image);
      if (h.rootDisk && h.rootDisk->protocol == "nfs") ++roots;
    }
    s += fmt::format("  nfs: listening on {} ({}{}); {} images read-only, each to the hosts that boot it; {} NFS "
                     "roots\n",
                     addrs, nfs->udp ? "TCP and UDP" : "TCP",
                     nfs->portmap ? ", PORTMAP on 111" : "", images.size(), roots);
  }
  s += fmt::format("  hosts: {} in {} groups\n", c.hosts.size(), c.groups.size());
  return s;
}

// Where the daemon that PXEDUST_CONFIG (default /etc/pxedust/pxedust.toml) describes answers: its
// [http] api_listen, else its [http] listen, else its state directory. Throws config::ConfigError.
cli::ApiSource apiSourceFromConfig() {
  const char* env = std::getenv("PXEDUST_CONFIG");
  std::string path = env != nullptr && *env != '\0' ? env : "/etc/pxedust/pxedust.toml";
  if (env == nullptr && ::access(path.c_str(), F_OK) != 0) return cli::ApiSource{{}, config::DaemonConfig{}.stateDir, {}};
  auto c = daemon::loadConfig(path);
  if (const auto* web = http::configIn(c)) {
    const auto& addresses = web->apiListen.empty() ? web->listen : web->apiListen;
    for (const auto& l : addresses) {
      if (l.port == 0) continue;  // a port the kernel picks: daemon.json knows it, the config does not
      auto address = l.address;
      if (address.is_unspecified()) address = address.is_v4() ? asio::ip::address(asio::ip::address_v4::loopback())
                                                             : asio::ip::address(asio::ip::address_v6::loopback());
      const std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
      return cli::ApiSource{fmt::format("http://{}:{}", host, l.port), {}, web->apiToken.value_or("")};
    }
  }
  return cli::ApiSource{{}, c.daemon.stateDir, {}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pxedust: a diskless network-boot server (DHCP, TFTP, HTTP, iSCSI)", "pxedust"};
  app.require_subcommand(1);
  app.set_version_flag("--version", PXEDUST_VERSION);

  std::string configPath;
  std::string logLevel;
  auto* serve = app.add_subcommand("serve", "Run the daemon with a configuration file");
  serve->add_option("-c,--config", configPath, "Configuration file (TOML)")->required();
  serve->add_option("--log-level", logLevel, "Override [log] level: trace, debug, info, warn, error");
  std::string stateDir;
  serve->add_option("--state-dir", stateDir, "Override [daemon] state_dir: where daemon.json, hosts.json and metrics.prom go");

  std::string checkPath;
  auto* check = app.add_subcommand("check-config", "Validate a configuration file and summarize it");
  check->add_option("file", checkPath, "Configuration file (TOML)")->required();

  app.add_subcommand("version", "Print the version");

  cli::DemoOptions demo;
  auto* demoCmd = app.add_subcommand("demo", "Serve a built-in demo on loopback (no config needed)");
  demoCmd->add_option("--address", demo.address, "Address to listen on (a loopback address)")->capture_default_str();
  demoCmd->add_option("--port", demo.port, "TFTP port")->capture_default_str();

  // image/overlay: the store directory is [storage] dir of the configuration named by
  // PXEDUST_CONFIG (default /etc/pxedust/pxedust.toml) when there is one, else /var/lib/pxedust.
  // `overlay reset` goes through the daemon that configuration describes when it answers.
  const std::function<std::string()> storeDir = [] {
    const char* env = std::getenv("PXEDUST_CONFIG");
    std::string path = env != nullptr && *env != '\0' ? env : "/etc/pxedust/pxedust.toml";
    if (env == nullptr && ::access(path.c_str(), F_OK) != 0) return config::StorageConfig{}.dir;
    return daemon::loadConfig(path).storage.dir;  // a ConfigError says which file and why
  };
  cli::addStorageCommands(
      app, storeDir,
      [](const std::string& host, const std::string& body) -> std::optional<std::string> {
        cli::ApiSource source;
        try {
          source = apiSourceFromConfig();
        } catch (const std::exception& e) {
          fmt::print(stderr, "pxedust: {}\n", e.what());
          throw CLI::RuntimeError(1);
        }
        if (source.url.empty()) return std::nullopt;
        auto answer = cli::apiRequest(source.url, "POST", "/api/v1/overlays/" + host + "/reset", body, source.token);
        if (!answer) return std::nullopt;  // no daemon listens there
        const auto j = nlohmann::json::parse(answer->body, nullptr, false);
        if (answer->status != 200 || !j.is_object() || !j.contains("overlay")) {
          const std::string why = j.is_object() && j.contains("error") && j["error"].is_string()
                                      ? j["error"].get<std::string>()
                                      : fmt::format("HTTP {}", answer->status);
          fmt::print(stderr, "pxedust: the daemon at {} refused the reset: {}\n", source.url, why);
          throw CLI::RuntimeError(1);
        }
        const auto& o = j["overlay"];
        return fmt::format("reset overlay {} through the daemon: now an empty overlay on {} v{}{}", host,
                           o.value("image", "?"), o.value("version", 0),
                           j.value("sessions_ended", 0) > 0
                               ? fmt::format(" ({} session(s) ended)", j.value("sessions_ended", 0))
                               : std::string());
      });

  // status/hosts: the API of the daemon that configuration describes (its [http]), else its state files.
  cli::addStatusCommands(app, apiSourceFromConfig);
  cli::addInitramfsCommands(app);
  cli::addDemoImageCommand(*app.get_subcommand("image"));
  cli::addImageBuildCommands(*app.get_subcommand("image"), storeDir);

  CLI11_PARSE(app, argc, argv);

  if (app.got_subcommand("version")) {
    fmt::print("pxedust {}\n", PXEDUST_VERSION);
    return 0;
  }
  if (app.got_subcommand(check)) {
    try {
      auto c = daemon::loadConfig(checkPath);
      fmt::print("{}: ok\n{}", checkPath, describe(c));
      for (const auto& w : daemon::configWarnings(c)) fmt::print("warning: {}\n", w);
      return 0;
    } catch (const config::ConfigError& e) {
      fmt::print(stderr, "{}\n", e.what());
      return 1;
    }
  }
  if (app.got_subcommand(demoCmd)) return cli::runDemo(demo);
  if (app.got_subcommand(serve)) {
    config::Config c;
    try {
      c = daemon::loadConfig(configPath);
    } catch (const config::ConfigError& e) {
      fmt::print(stderr, "pxedust: {}\n", e.what());
      return 1;
    }
    if (!logLevel.empty()) {
      auto lv = log::parseLevel(logLevel);
      if (!lv) {
        fmt::print(stderr, "pxedust: --log-level: expected trace, debug, info, warn or error, got '{}'\n", logLevel);
        return 2;
      }
      c.log.level = *lv;
    }
    if (!stateDir.empty()) c.daemon.stateDir = stateDir;
    daemon::Daemon d(configPath, std::move(c));
    return d.run();
  }
  return 0;
}
