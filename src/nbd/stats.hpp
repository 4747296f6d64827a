// NBD counters, kept for the metrics endpoint. Touched only on the loop thread.
//
// Each counter is declared once, in PXEDUST_NBD_COUNTERS (metrics/counters.hpp); requests are
// counted by command (pxedust_nbd_requests_total{command}), refused requests by the errno they got
// (pxedust_nbd_request_errors_total{error}), and every connection ends with one reason
// (pxedust_nbd_drops_total{reason}).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "metrics/counters.hpp"
#include "nbd/wire/protocol.hpp"

namespace pxedust::nbd {

// Why a connection ended (every connection has one reason, a counter and a log line).
enum class Drop : std::uint8_t {
  TooManyConnections,  // [nbd] max_connections or max_connections_per_client reached: closed at accept
  HandshakeFailed,     // the handshake machine hung up (bad flags or magic, oversized option, refused EXPORT_NAME)
  HandshakeTimeout,    // no GO/EXPORT_NAME within handshake_timeout
  Aborted,             // the client sent NBD_OPT_ABORT (nbdinfo --list does)
  BadRequest,          // a request header with a bad magic, or a WRITE too large to drain
  IdleTimeout,         // idle_timeout passed with nothing asked
  SendTimeout,         // replies made no progress for send_timeout (the client stopped reading)
  Disconnect,          // the client sent NBD_CMD_DISC (the normal end)
  PeerClosed,          // the client closed (or reset) the connection
  ExportRemoved,       // the host left the config, changed image, or no longer admits the client (reload)
  DiskReleased,        // an operator reset the host's overlay with force (API)
  Shutdown,            // the daemon is stopping
  TlsFailed,           // the TLS handshake failed (bad or no ClientHello, unknown identity, wrong key, the client
                       // leaving mid-way), or a TLS record did not decrypt
  Count
};
constexpr std::array<std::string_view, static_cast<std::size_t>(Drop::Count)> kDropNames = {
    "too_many_connections", "handshake_failed", "handshake_timeout", "aborted",      "bad_request",
    "idle_timeout",         "send_timeout",     "disconnect",        "peer_closed",  "export_removed",
    "disk_released",        "shutdown",         "tls_failed"};
inline std::string_view dropName(Drop d) { return kDropNames[static_cast<std::size_t>(d)]; }

// Commands as pxedust_nbd_requests_total labels them; the index is the command type (0..7), and one
// more slot for any other type.
constexpr std::size_t kCommandSlots = 9;
constexpr std::array<std::string_view, kCommandSlots> kCommandLabels = {
    "read", "write", "disc", "flush", "trim", "cache", "write_zeroes", "block_status", "other"};
constexpr std::size_t commandSlot(std::uint16_t type) { return type < kCommandSlots - 1 ? type : kCommandSlots - 1; }

// NBD error values as pxedust_nbd_request_errors_total labels them.
constexpr std::size_t kErrorSlots = 8;
constexpr std::array<std::string_view, kErrorSlots> kErrorLabels = {"eperm",  "eio",       "enomem",    "einval",
                                                                     "enospc", "eoverflow", "enotsup", "eshutdown"};

constexpr std::size_t errorSlot(wire::Errno e) {
  switch (e) {
    case wire::Errno::Perm: return 0;
    case wire::Errno::Io: return 1;
    case wire::Errno::NoMem: return 2;
    case wire::Errno::Inval: return 3;
    case wire::Errno::NoSpc: return 4;
    case wire::Errno::Overflow: return 5;
    case wire::Errno::NotSup: return 6;
    case wire::Errno::Shutdown: return 7;
    case wire::Errno::None: break;
  }
  return 1;
}

// X(member, metric name, help)
#define PXEDUST_NBD_COUNTERS(X)                                                                                        \
  X(connectionsAccepted, "pxedust_nbd_connections_accepted_total",                                                     \
    "TCP connections accepted by the listeners, those refused at once included (see the drops).")                      \
  X(sessionsStarted, "pxedust_nbd_sessions_started_total",                                                             \
    "Handshakes that ended in the transmission phase (NBD_OPT_GO or NBD_OPT_EXPORT_NAME accepted).")                   \
  X(exportsRefused, "pxedust_nbd_exports_refused_total",                                                               \
    "NBD_OPT_GO/EXPORT_NAME asking for an export that is unknown, not this client's, or whose disk cannot open.")      \
  X(bytesIn, "pxedust_nbd_received_bytes_total", "WRITE payload received and written, in bytes.")                      \
  X(bytesOut, "pxedust_nbd_sent_bytes_total", "READ data sent, in bytes.")                                             \
  X(drained, "pxedust_nbd_drained_bytes_total", "Payload of refused WRITEs read and thrown away, in bytes.")          \
  X(tlsHandshakes, "pxedust_nbd_tls_handshakes_total", "TLS handshakes completed after NBD_OPT_STARTTLS.")           \
  X(tlsHandshakesFailed, "pxedust_nbd_tls_handshake_failures_total",                                                 \
    "TLS handshakes begun after NBD_OPT_STARTTLS that did not complete (bad input, unknown PSK identity or wrong "    \
    "key, the client leaving, the handshake timeout); each closed its connection.")

struct NbdStats {
  PXEDUST_NBD_COUNTERS(PXEDUST_COUNTER_MEMBER)
  std::array<std::uint64_t, kCommandSlots> requests{};  // by commandSlot()
  std::array<std::uint64_t, kErrorSlots> errors{};      // by errorSlot()
  std::array<std::uint64_t, static_cast<std::size_t>(Drop::Count)> drops{};
  void drop(Drop d) { ++drops[static_cast<std::size_t>(d)]; }
};

}  // namespace pxedust::nbd
