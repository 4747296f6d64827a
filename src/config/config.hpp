// The daemon's configuration: one TOML file, one section per service, plus [[group]] and [[host]].
//
// This module owns the file, the reader (reader.hpp), the error positions, the daemon's own sections
// ([log], [daemon], [storage]) and the host model's keys ([[host]] name, mac, ip, group and its disk).
// Each service owns its section and its keys on hosts and groups: src/<service>/config.{hpp,cpp}
// parse them through the reader and hand a ServiceSchema to the loader, so this module knows no
// service's type.
//
// The loader is the only code that throws on bad input: load() validates everything up front and
// fails with a ConfigError naming file, line, column and key and saying what was expected, for every
// error in the file. Unknown keys are errors (a typo must not silently fall back to a default). Every
// default is stated where it is declared. Values are immutable once loaded; a reload builds a whole
// new Config.
#pragma once

#include <asio/ip/address.hpp>
#include <asio/ip/address_v4.hpp>

#include <any>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.hpp"
#include "common/mac.hpp"

namespace pxedust::config {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SocketAddress {
  asio::ip::address address;
  std::uint16_t port = 0;
  [[nodiscard]] std::string toString() const;
  friend bool operator==(const SocketAddress&, const SocketAddress&) = default;
};

struct LogConfig {
  log::Level level = log::Level::Info;
};

struct DaemonConfig {
  // How long SIGTERM waits for transfers and sessions in flight before cutting them off.
  std::chrono::milliseconds shutdownGrace{10'000};
  // Where the daemon publishes its state for programs (daemon/state_files.hpp): daemon.json (pid,
  // bound endpoints, reloads), hosts.json (each host's boot stage), metrics.prom (on SIGUSR1).
  std::string stateDir = "/run/pxedust";
  // `user`: started as root, the daemon binds everything of the first configuration, then runs as
  // this user with only the capabilities its services may still need (daemon/privileges.hpp).
  // Unset: it stays who it was started as. A change takes effect at restart.
  std::optional<std::string> user;
  // `group`: the group it runs as; unset = the user's primary group. Needs `user`.
  std::optional<std::string> group;
};

struct StorageConfig {
  // Where base images and per-host overlays live.
  std::string dir = "/var/lib/pxedust";
};

// An IPv4 network in CIDR form ("10.0.0.0/24"; a bare address is a /32).
struct Ipv4Network {
  asio::ip::address_v4 network;
  std::uint8_t prefix = 32;
  [[nodiscard]] bool contains(asio::ip::address_v4 a) const;
  [[nodiscard]] std::string toString() const;
  friend bool operator==(const Ipv4Network&, const Ipv4Network&) = default;
};

// A CHAP user name and secret (RFC 7143 section 12.1.3).
struct ChapCredentials {
  std::string user;
  std::string secret;  // 12..255 bytes: RFC 7143 section 9.2.1 wants at least 96 bits
  friend bool operator==(const ChapCredentials&, const ChapCredentials&) = default;
};

// The disk a host boots from: its base image and who may open it. Part of the host model, not of one
// service: iSCSI serves it today, NBD and NFS will apply the same rules. Keys on [[group]] and
// [[host]]; a host inherits what it does not set from its group.
struct DiskSettings {
  std::optional<std::string> image;  // `image`: base image name in the store; unset = the host has no disk
  // `iscsi_initiators`: initiator names allowed to log in; unset = any name (the other checks still apply).
  std::optional<std::vector<std::string>> initiators;
  // `iscsi_allow`: source networks allowed to connect; unset = only the host's own `ip`, if it has one.
  std::optional<std::vector<Ipv4Network>> allow;
  // `chap_user`/`chap_secret`: the initiator must prove it knows the secret (user defaults to the host name).
  std::optional<ChapCredentials> chap;
  // `mutual_chap_user`/`mutual_chap_secret`: the target proves itself to the initiator as well.
  std::optional<ChapCredentials> mutualChap;
  // `root_protocol`: how the host boots its root from the image: "iscsi" (the default, where [iscsi]
  // is configured), "nbd" (its overlay as an NBD export), "ram" (the base copied into RAM over NBD)
  // or "nfs" (the base read-only over NFS, a RAM overlay on the client). Each service's `hosts` hook
  // gives the root disk for its protocol.
  std::optional<std::string> rootProtocol;

  void inherit(const DiskSettings& parent);
};

// Where a host's root disk is served, as the service that serves it says (its schema's `hosts` hook):
// DHCP hands it out as the root-path (option 17) when none is configured.
struct RootDisk {
  std::string protocol;  // "iscsi", "nbd", "ram" (the image over NBD) or "nfs"
  SocketAddress portal;  // where; an unspecified address: whichever address the host reaches us on
  std::string name;      // the target name, NBD export name or NFS export path
  friend bool operator==(const RootDisk&, const RootDisk&) = default;
};

// What each service parsed, by section name: "dhcp" -> dhcp::Config, and on hosts and groups
// "dhcp" -> dhcp::Settings. Only the owning service knows the type; part<T>() gives it back.
using Parts = std::map<std::string, std::any, std::less<>>;

template <typename T>
const T* part(const Parts& parts, std::string_view name) {
  auto it = parts.find(name);
  return it == parts.end() ? nullptr : std::any_cast<T>(&it->second);
}

struct GroupConfig {
  std::string name;
  DiskSettings disk;
  Parts keys;  // each service's keys on the group
};

struct HostConfig {
  std::string name;  // a host name label: letters, digits and '-', at most 63
  std::optional<MacAddress> mac;
  std::optional<asio::ip::address_v4> ip;
  std::string group;  // empty: no group. The group it is resolved with: configuredGroup's, or a
                      // one-shot group (LoadOptions::hostGroups) in its place
  std::string configuredGroup;  // as the file says
  DiskSettings disk;  // with its group's applied
  Parts keys;         // each service's keys on the host, its group's applied (ServiceSchema::inherit)
  std::optional<RootDisk> rootDisk;
};

struct Config {
  std::string source;  // the file it came from, for messages
  std::string text;    // the text it was loaded from: a host can be resolved anew without re-reading the file
  LogConfig log;
  DaemonConfig daemon;
  StorageConfig storage;
  Parts sections;  // each service section present in the file, parsed by its ServiceSchema
  std::vector<GroupConfig> groups;
  std::vector<HostConfig> hosts;

  [[nodiscard]] bool has(std::string_view section) const { return sections.contains(section); }
  template <typename T>
  [[nodiscard]] const T* section(std::string_view name) const {
    return part<T>(sections, name);
  }
};

class Table;

// What a service adds to the configuration; each service's config.hpp makes its own, and the daemon
// lists them (daemon/schema.hpp). The loader calls, for every file:
//   parse     on [section], when the file has one; `base` has [log], [daemon], [storage] loaded
//   hostKeys  on every [[group]] and [[host]] table, for this service's keys there (or none: null)
//   inherit   a host's keys <- its group's keys, for what the host does not set itself
//   hosts     once per load when [section] is present: a checker called on each host once its group
//             is applied (it may keep state across hosts, e.g. names that must be distinct), which
//             returns where the host's root disk is served, if this service serves it
// Each reports errors through the Table it is given (Table::fail), which ends that table.
struct ServiceSchema {
  std::string section;
  std::function<std::any(Table& table, const Config& base)> parse;
  std::function<std::any(Table& table)> hostKeys;
  std::function<void(std::any& host, const std::any& group)> inherit;
  using HostChecker = std::function<std::optional<RootDisk>(Table& hostTable, const HostConfig& host)>;
  std::function<HostChecker(const std::any& section)> hosts;
};
using Schema = std::vector<ServiceSchema>;

// An iSCSI name as RFC 3720 section 3.2.6 spells it: "iqn.YYYY-MM.reversed.domain[:anything]",
// "eui." + 16 hex digits or "naa." + 16/32 hex digits; at most 223 bytes, lower case. Empty = valid.
std::optional<std::string> checkIscsiName(std::string_view name);

// What {mac} becomes in every name template (per-host files, [iscsi] target_name): lower-case hex
// joined by '-', "52-54-00-12-34-56", as pxelinux names its per-host files ("01-{mac}"); the same
// text is a valid file name, URL path and iSCSI name.
std::string macTemplateText(const MacAddress& mac);

struct LoadOptions {
  // Host name -> a group it is resolved with instead of its own, as if the file said so (the
  // daemon's one-shot "next boot" groups): the group's keys apply, what the host sets itself still
  // wins. An entry whose host or group the file does not have is ignored (HostConfig::group tells
  // which were applied); it is never an error in the file.
  std::map<std::string, std::string, std::less<>> hostGroups;
};

// Throws ConfigError with every error in the file, one per line. `schema`: the services whose
// sections and host keys the file may have; any other section or key is an error.
Config loadFile(const std::string& path, const Schema& schema, const LoadOptions& options = {});
Config loadString(std::string_view text, const std::string& sourceName, const Schema& schema,
                  const LoadOptions& options = {});

// "1.2.3.4:69", "1.2.3.4", "[::1]:69", "::"; the port defaults to `defaultPort`.
std::optional<SocketAddress> parseSocketAddress(std::string_view text, std::uint16_t defaultPort);

}  // namespace pxedust::config
