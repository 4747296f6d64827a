// The [http] section: where HTTP listens, the root it serves (the same kind of root and per-host
// rules as TFTP), and the limits that keep one client from holding the server.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "files/files.hpp"
#include "http/ipxe.hpp"

namespace pxedust::http {

struct Config {
  std::vector<config::SocketAddress> listen;  // default: 0.0.0.0:80
  // Where the daemon's own pages (the API, /metrics, the dashboard) are served, when they should
  // not be on the boot network: set, they are answered only here and `listen` serves boot files
  // and scripts only. Empty (the default): everything on `listen`. Port 8080 unless given.
  std::vector<config::SocketAddress> apiListen;
  std::string root;                           // required: the directory served; nothing outside it is reachable
  std::vector<files::PerHostRule> perHost;    // `per_host = [{ request = "boot.ipxe", file = "hosts/{name}.ipxe" }]`
  // The daemon's API actions (POST /api/v1/reload, ...) need this as "Authorization: Bearer <token>";
  // unset, actions are off. Read endpoints stay open. At least 16 characters.
  std::optional<std::string> apiToken;
  // What iPXE boots (http/ipxe.hpp): kernel, initrd, kernel_args, ipxe_template, for every host
  // that does not set its own (on the [[host]] or its [[group]]).
  BootSettings boot;
  std::uint32_t maxConnections = 4096;        // open connections in all; beyond it, new ones are closed at once
  // Open connections from one client address. Firmware uses one or two; a few hundred hosts behind
  // one NAT address would need more.
  std::uint32_t maxConnectionsPerClient = 32;
  // A request's head must arrive whole within this long of its first byte (slow-loris), and a
  // keep-alive connection may sit idle between requests this long.
  std::chrono::milliseconds headerTimeout{10'000};
  std::chrono::milliseconds idleTimeout{60'000};
  // A response that makes no progress for this long (the client stopped reading) is cut off.
  std::chrono::milliseconds sendTimeout{60'000};
};

config::ServiceSchema schema();

// The [http] section of a loaded config, or null when the file has none.
const Config* configIn(const config::Config& config);

// A host's kernel, initrd, kernel_args and ipxe_template, its group's applied (not [http]'s); null
// when it sets none of them.
const BootSettings* bootSettingsOf(const config::Parts& keys);

}  // namespace pxedust::http
