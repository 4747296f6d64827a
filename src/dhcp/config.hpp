// The [dhcp] section and DHCP's keys on [[group]] and [[host]]: interfaces, mode, pools per
// [[dhcp.subnet]], and the answers hosts inherit. Parsed through the shared reader
// (config/reader.hpp); option names and values by the option table of dhcp/wire/options.hpp.
#pragma once

#include <asio/ip/address_v4.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace pxedust::dhcp {

// DHCP answers that hosts inherit, most specific first: [[host]] < its [[group]] < its
// [[dhcp.subnet]] < [dhcp]. An unset field inherits; the same keys are accepted at every level.
struct BootFiles {
  // The boot program for each client architecture (option 93): bios = 0; uefi = 6, 7, 9;
  // arm32 = 10; arm64 = 11; http = 16 (x64 UEFI HTTP boot, a URL) and 19 (arm64 HTTP, a URL);
  // riscv64 = 27 (and 28 HTTP). `any` is used when the architecture has no file of its own.
  std::optional<std::string> any, bios, uefi, uefi32, arm32, arm64, http, httpArm64, riscv64;
};

struct Option {
  std::uint8_t code = 0;
  std::vector<std::uint8_t> value;
};

struct Settings {
  std::optional<asio::ip::address_v4> nextServer;  // siaddr: the TFTP server
  BootFiles boot;
  std::optional<std::string> ipxeScript;    // what iPXE clients boot instead (a URL or file name)
  std::optional<std::string> rootPath;      // option 17, e.g. "iscsi:10.0.0.1::::iqn..."
  std::optional<std::string> initiatorIqn;  // option 203
  std::optional<std::chrono::seconds> leaseTime;
  std::optional<std::vector<asio::ip::address_v4>> routers;  // option 3
  std::optional<std::vector<asio::ip::address_v4>> dns;      // option 6
  std::optional<std::string> domain;                         // option 15
  std::vector<Option> options;  // any option by name or code; later levels replace by code

  // Fills every unset field of *this from `parent`.
  void inherit(const Settings& parent);
};

struct Range {
  asio::ip::address_v4 first, last;
};

struct Subnet {
  asio::ip::address_v4 network;
  std::uint8_t prefix = 24;
  std::vector<Range> pools;  // dynamic ranges inside the subnet; may be empty (reservations only)
  Settings settings;
  [[nodiscard]] bool contains(asio::ip::address_v4 a) const;
  [[nodiscard]] asio::ip::address_v4 mask() const;
  [[nodiscard]] std::string toString() const;  // "10.0.0.0/24"
};

enum class Mode { Server, Proxy };

struct Config {
  std::vector<std::string> interfaces;  // required: answer on these and never on others
  Mode mode = Mode::Server;
  bool serveUnknown = true;         // clients without a [[host]]: served from a pool, or ignored
  std::string leaseFile;            // default: <storage.dir>/dhcp.leases
  std::chrono::seconds offerHold{60};      // an offered address stays reserved this long
  std::chrono::seconds declineHold{3600};  // a DECLINEd address is not offered for this long
  std::chrono::seconds defaultLeaseTime{3600};
  // Answer IPv6 router solicitations on the interfaces with "no IPv6 router here" (lifetime 0), so
  // firmware such as iPXE does not wait seconds for one on every boot (dhcp/router_adverts.hpp).
  bool answerRouterSolicitations = true;
  Settings settings;            // [dhcp]'s own answers, inherited by subnets and hosts
  std::vector<Subnet> subnets;
  // Where pxedust's HTTP serves boot files, when [http] is on (the daemon sets it from [http]
  // listen; no key of its own). Then iPXE clients are given http://<address>/ipxe/<mac>, their
  // per-host script, unless ipxe_script says otherwise, and UEFI HTTP Boot clients the UEFI boot
  // program's URL unless boot.http names one. An unspecified address: the one the client reached.
  struct HttpBoot {
    asio::ip::address_v4 address;
    std::uint16_t port = 80;
  };
  std::optional<HttpBoot> httpBoot;
};

config::ServiceSchema schema();

// The [dhcp] section of a loaded config, or null when the file has none.
const Config* configIn(const config::Config& config);
// A host's (or group's) own DHCP keys, its group's applied for a host; empty when it has none.
const Settings& settingsOf(const config::Parts& keys);

}  // namespace pxedust::dhcp
