// The daemon's configuration: one TOML file, one section per service, plus [[group]] and [[host]].
//
// This is the only module that throws on bad input: load() validates everything up front and fails
// with a ConfigError naming file, line, column and key and saying what was expected. Unknown keys are
// errors (a typo must not silently fall back to a default). Every default is stated where it is
// declared below. Values are immutable once loaded; a reload builds a whole new Config.
#pragma once

#include <asio/ip/address.hpp>
#include <asio/ip/address_v4.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
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
};

struct StorageConfig {
  // Where base images and per-host overlays live.
  std::string dir = "/var/lib/pxedust";
};

// Serve a different file to each host under one requested name (files/files.hpp applies it): `request`
// is matched exactly (after the leading '/' is stripped); `file` is a template with {name} {mac} {ip} {group}
// ({mac} as macTemplateText() spells it).
struct PerHostFileRule {
  std::string request;
  std::string file;
};

struct TftpConfig {
  bool enabled = false;  // true when the file has a [tftp] section
  std::vector<SocketAddress> listen;  // default: 0.0.0.0:69
  std::string root;                   // required: the directory served; nothing outside it is reachable
  // Local ports for transfer sockets (each transfer has its own TID); 0,0 lets the kernel choose.
  std::uint16_t transferPortLow = 0;
  std::uint16_t transferPortHigh = 0;
  std::uint32_t maxTransfers = 4096;   // concurrent transfers; beyond it, requests get an error
  std::uint32_t maxBlksize = 65464;    // RFC 2348 maximum; also clamped to the interface MTU - 32
  std::uint32_t maxWindowsize = 64;    // RFC 7440 windowsize granted at most
  std::chrono::milliseconds timeout{1000};  // retransmit timeout when the client negotiates none
  std::uint32_t retries = 6;           // retransmissions of one packet before the transfer is abandoned
  double clientRate = 50.0;            // new requests per second per client address; 0 = unlimited
  std::uint32_t clientBurst = 100;     // requests a client may make at once before the rate applies
  std::vector<PerHostFileRule> perHost;
};

// DHCP answers that hosts inherit, most specific first: [[host]] < its [[group]] < its
// [[dhcp.subnet]] < [dhcp]. An unset field inherits; the same keys are accepted at every level.
struct DhcpBootFiles {
  // The boot program for each client architecture (option 93): bios = 0; uefi = 6, 7, 9;
  // arm32 = 10; arm64 = 11; http = 16 (x64 UEFI HTTP boot, a URL) and 19 (arm64 HTTP, a URL);
  // riscv64 = 27 (and 28 HTTP). `any` is used when the architecture has no file of its own.
  std::optional<std::string> any, bios, uefi, uefi32, arm32, arm64, http, httpArm64, riscv64;
};

struct DhcpOption {
  std::uint8_t code = 0;
  std::vector<std::uint8_t> value;
};

struct DhcpSettings {
  std::optional<asio::ip::address_v4> nextServer;  // siaddr: the TFTP server
  DhcpBootFiles boot;
  std::optional<std::string> ipxeScript;    // what iPXE clients boot instead (a URL or file name)
  std::optional<std::string> rootPath;      // option 17, e.g. "iscsi:10.0.0.1::::iqn..."
  std::optional<std::string> initiatorIqn;  // option 203
  std::optional<std::chrono::seconds> leaseTime;
  std::optional<std::vector<asio::ip::address_v4>> routers;  // option 3
  std::optional<std::vector<asio::ip::address_v4>> dns;      // option 6
  std::optional<std::string> domain;                         // option 15
  std::vector<DhcpOption> options;  // any option by name or code; later levels replace by code

  // Fills every unset field of *this from `parent`.
  void inherit(const DhcpSettings& parent);
};

struct DhcpRange {
  asio::ip::address_v4 first, last;
};

struct DhcpSubnet {
  asio::ip::address_v4 network;
  std::uint8_t prefix = 24;
  std::vector<DhcpRange> pools;  // dynamic ranges inside the subnet; may be empty (reservations only)
  DhcpSettings settings;
  [[nodiscard]] bool contains(asio::ip::address_v4 a) const;
  [[nodiscard]] asio::ip::address_v4 mask() const;
  [[nodiscard]] std::string toString() const;  // "10.0.0.0/24"
};

enum class DhcpMode { Server, Proxy };

struct DhcpConfig {
  bool enabled = false;             // true when the file has a [dhcp] section
  std::vector<std::string> interfaces;  // required: answer on these and never on others
  DhcpMode mode = DhcpMode::Server;
  bool serveUnknown = true;         // clients without a [[host]]: served from a pool, or ignored
  std::string leaseFile;            // default: <storage.dir>/dhcp.leases
  std::chrono::seconds offerHold{60};      // an offered address stays reserved this long
  std::chrono::seconds declineHold{3600};  // a DECLINEd address is not offered for this long
  std::chrono::seconds defaultLeaseTime{3600};
  // Answer IPv6 router solicitations on the interfaces with "no IPv6 router here" (lifetime 0), so
  // firmware such as iPXE does not wait seconds for one on every boot (dhcp/router_adverts.hpp).
  bool answerRouterSolicitations = true;
  DhcpSettings settings;            // [dhcp]'s own answers, inherited by subnets and hosts
  std::vector<DhcpSubnet> subnets;
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

// The disk a host boots from over iSCSI: its base image and who may open it. Keys on [[group]] and
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

  void inherit(const DiskSettings& parent);
};

struct IscsiConfig {
  bool enabled = false;               // true when the file has an [iscsi] section
  std::vector<SocketAddress> listen;  // default: 0.0.0.0:3260
  // Each host with an image gets one target named by this template ({name} {mac} {group}, {mac} as
  // macTemplateText() spells it); names are lower-cased, as iSCSI names compare case-insensitively (RFC 3722).
  std::string targetName = "iqn.2026-11.org.pxedust:{name}";
  std::uint16_t portalGroupTag = 1;
  std::chrono::milliseconds nopInterval{5000};   // an idle connection gets a NOP-In ping this often
  std::chrono::milliseconds nopTimeout{15000};   // no answer for this long: the initiator is gone
  std::uint32_t maxConnections = 1024;           // beyond it, new connections are closed at once
  std::optional<ChapCredentials> discoveryChap;  // CHAP for SendTargets discovery sessions
};

struct GroupConfig {
  std::string name;
  DhcpSettings dhcp;
  DiskSettings disk;
};

struct HostConfig {
  std::string name;  // a host name label: letters, digits and '-', at most 63
  std::optional<MacAddress> mac;
  std::optional<asio::ip::address_v4> ip;
  std::string group;  // empty: no group
  DhcpSettings dhcp;   // the host's own; Inventory resolves inheritance
  DiskSettings disk;   // likewise
};

struct Config {
  std::string source;  // the file it came from, for messages
  LogConfig log;
  DaemonConfig daemon;
  StorageConfig storage;
  TftpConfig tftp;
  DhcpConfig dhcp;
  IscsiConfig iscsi;
  std::vector<GroupConfig> groups;
  std::vector<HostConfig> hosts;
};

// An iSCSI name as RFC 3720 section 3.2.6 spells it: "iqn.YYYY-MM.reversed.domain[:anything]",
// "eui." + 16 hex digits or "naa." + 16/32 hex digits; at most 223 bytes, lower case. Empty = valid.
std::optional<std::string> checkIscsiName(std::string_view name);

// The target name [iscsi] target_name gives `host`, lower-cased.
std::string iscsiTargetName(const IscsiConfig& iscsi, const HostConfig& host);

// What {mac} becomes in every name template (per-host files, [iscsi] target_name): lower-case hex
// joined by '-', "52-54-00-12-34-56", as pxelinux names its per-host files ("01-{mac}"); the same
// text is a valid file name, URL path and iSCSI name.
std::string macTemplateText(const MacAddress& mac);

// Throws ConfigError.
Config loadFile(const std::string& path);
Config loadString(std::string_view text, const std::string& sourceName);

// "1.2.3.4:69", "1.2.3.4", "[::1]:69", "::"; the port defaults to `defaultPort`.
std::optional<SocketAddress> parseSocketAddress(std::string_view text, std::uint16_t defaultPort);

}  // namespace pxedust::config
