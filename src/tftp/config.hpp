// The [tftp] section: where TFTP listens, the root it serves, its limits and per-host file rules.
// Parsed through the shared reader (config/reader.hpp); the daemon lists schema() with the others.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "files/files.hpp"

namespace pxedust::tftp {

struct Config {
  std::vector<config::SocketAddress> listen;  // default: 0.0.0.0:69
  std::string root;                           // required: the directory served; nothing outside it is reachable
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
  std::vector<files::PerHostRule> perHost;  // `per_host = [{ request = "boot.cfg", file = "hosts/{name}.cfg" }]`
};

config::ServiceSchema schema();

// The [tftp] section of a loaded config, or null when the file has none.
const Config* configIn(const config::Config& config);

}  // namespace pxedust::tftp
