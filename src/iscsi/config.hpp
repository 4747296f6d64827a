// The [iscsi] section: where the target listens, how each host's target is named, session timers
// and limits, discovery CHAP. Parsed through the shared reader (config/reader.hpp). Who may open a
// host's disk (image, iscsi_allow, iscsi_initiators, CHAP) is the host model's (config::DiskSettings),
// as NBD and NFS apply the same rule; this schema checks, per host, what the iSCSI target needs of it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/mac.hpp"
#include "config/config.hpp"

namespace pxedust::iscsi {

struct Config {
  std::vector<config::SocketAddress> listen;  // default: 0.0.0.0:3260
  // Each host with an image gets one target named by this template ({name} {mac} {group}, {mac} as
  // config::macTemplateText() spells it); names are lower-cased, as iSCSI names compare
  // case-insensitively (RFC 3722).
  std::string targetName = "iqn.2026-11.org.pxedust:{name}";
  std::uint16_t portalGroupTag = 1;
  std::chrono::milliseconds nopInterval{5000};   // an idle connection gets a NOP-In ping this often
  std::chrono::milliseconds nopTimeout{15000};   // no answer for this long: the initiator is gone
  std::uint32_t maxConnections = 1024;           // beyond it, new connections are closed at once
  std::optional<config::ChapCredentials> discoveryChap;  // CHAP for SendTargets discovery sessions
};

// Checks each host with an image: something tells it apart from other machines, and its target
// name is valid and its own. Gives DHCP the host's root disk (the target at the first IPv4 listen
// address).
config::ServiceSchema schema();

// The [iscsi] section of a loaded config, or null when the file has none.
const Config* configIn(const config::Config& config);

// The target name `config.targetName` gives a host, lower-cased.
std::string targetName(const Config& config, std::string_view host, const std::optional<MacAddress>& mac,
                       std::string_view group);

}  // namespace pxedust::iscsi
