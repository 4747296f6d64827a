// The [nbd] section, and NBD's keys on [[host]]/[[group]] (NetworkBlockDevice doc/proto.md).
//
// Every host with a disk (`image`) is an NBD export named by `export_name`, serving the same overlay
// over the same base image as iSCSI does (blockstore/host_disks.hpp: one open device per host). Who
// may open it is the host model's address rule (inventory::Host::admitsAddress), applied only when
// the host has one: NBD has no initiator names or CHAP, so a host protected by nothing but those (no
// `ip`, no `iscsi_allow`), or one that asks for CHAP, is not exported over NBD at all.
//
// TLS (doc/proto.md "TLS support"): `tls` = "off" | "optional" | "require", with X.509 credentials
// (`tls_certificate`, `tls_key`: PEM) and/or pre-shared keys (`tls_psk_file`: psktool's
// "identity:hexkey" lines). The files are read and checked when the configuration is loaded (start,
// reload, check-config): a file that cannot be read, a key that is not the certificate's, a malformed
// key line make the configuration invalid with the key's file:line, so a reload changes nothing.
// With tls = "off" they are not read. Who may open what over TLS: nbd/exports.hpp.
//
// Which protocol a host's root disk is handed out for (DHCP root-path, iPXE {root_path}) is chosen
// per host or group by `root_protocol`: "iscsi" (the default, when [iscsi] is configured), "nbd"
// (Debian's "nbd:SERVER:PORT:EXPORT"), or "ram" ("ram:nbd:SERVER:PORT:images/IMAGE": the pxedust
// initramfs copies the host's base image into RAM from the read-only image export, disconnects and
// runs from memory; needs image_exports), or "nfs" (nfs/config.hpp). The key is the host model's
// (config::DiskSettings); it takes effect only while its protocol's section is in the file.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/mac.hpp"
#include "config/config.hpp"
#include "nbd/wire/handshake.hpp"

namespace pxedust::nbd {

class TlsCredentials;  // nbd/tls.hpp

struct Config {
  std::vector<config::SocketAddress> listen;  // default: 0.0.0.0:10809 (the IANA port)
  // Each exported host's name, from its {name}, {mac} and {group} ({mac} as config::macTemplateText()
  // spells it). Export names are case-sensitive (unlike iSCSI names): kept as written.
  std::string exportName = "{name}";
  std::uint32_t maxConnections = 1024;         // in all; beyond it new connections are closed at once
  // Per client address: a root disk needs one (a multi-queue client a few more); a loop that
  // reconnects without closing is cut off here rather than at the global limit.
  std::uint32_t maxConnectionsPerClient = 16;
  // Requests one connection may have in flight on the worker pool; the reader stops reading until
  // one completes (the client waits, nothing is refused). 128 covers Linux's nbd queue depth and
  // fio at iodepth 64 with room.
  std::uint32_t maxInFlight = 128;
  // Time from accept to the end of the handshake (GO/EXPORT_NAME).
  std::chrono::milliseconds handshakeTimeout{30'000};
  // A connection in transmission with no request and nothing in flight for this long is closed.
  // 0 (default): never. NBD has no keep-alive, and a mounted root file system can be quiet for hours.
  std::chrono::milliseconds idleTimeout{0};
  // Replies waiting to go out with no progress for this long (the client stopped reading, or its
  // host died with our data unacknowledged): the connection is closed, so it frees its requests'
  // buffers and its session ends. A batch of replies is at most 4 MiB: this allows well under
  // 100 KB/s before a client counts as gone.
  std::chrono::milliseconds sendTimeout{60'000};
  // Read-only exports of the base images, "images/NAME" (its newest version when opened) and
  // "images/NAME/vVERSION", for the hosts that boot that image (the same address rule): a root
  // copied into RAM, a local cache. Off by default.
  bool imageExports = false;
  // `tls`: "off" (default: STARTTLS is refused with ERR_POLICY), "optional" (offered; a client may
  // also stay in the clear) or "require" (nothing but STARTTLS and ABORT until TLS runs). The
  // handshake timeout covers the TLS handshake too.
  wire::TlsMode tls = wire::TlsMode::None;
  std::string tlsCertificate;  // `tls_certificate`: PEM certificate chain (empty: none)
  std::string tlsKey;          // `tls_key`: its PEM private key, unencrypted
  std::string tlsPskFile;      // `tls_psk_file`: "identity:hexkey" lines (psktool -u NAME -p FILE)
  // Loaded from those files when the config was loaded; null when tls = "off".
  std::shared_ptr<const TlsCredentials> tlsCredentials;
};

// "off", "optional", "require": as the `tls` key spells each mode.
std::string_view tlsModeName(wire::TlsMode mode);

// [nbd]. The `hosts` hook checks export names are distinct, and gives DHCP the
// host's root disk ("nbd", the first IPv4 listen address, the export name) when root_protocol = "nbd"
// (config::DiskSettings), and the image export ("ram") when it is "ram".
config::ServiceSchema schema();

// The [nbd] section of a loaded config, or null when the file has none.
const Config* configIn(const config::Config& config);

// The export name `config.exportName` gives a host.
std::string exportName(const Config& config, std::string_view host, const std::optional<MacAddress>& mac,
                       std::string_view group);

// Why a host with a disk is not exported over NBD (nullopt: it is): NBD can apply the address rule
// only, so a host without one, or one that requires CHAP, is left out.
std::optional<std::string_view> notExportedBecause(const config::DiskSettings& disk,
                                                   const std::optional<asio::ip::address_v4>& ip);

}  // namespace pxedust::nbd
