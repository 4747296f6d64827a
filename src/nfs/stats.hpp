// The NFS server's counters (updated on the loop) and why connections end.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "metrics/counters.hpp"

namespace pxedust::nfs {

enum class Drop : std::uint8_t {
  TooManyConnections,  // max_connections or max_connections_per_client reached: closed at accept
  BadRecord,           // a record mark over the size limit, or too many empty fragments
  PeerClosed,          // the client closed (or reset) the connection
  SendTimeout,         // replies made no progress for send_timeout
  Shutdown,            // the daemon is stopping
  Count
};
constexpr std::array<std::string_view, static_cast<std::size_t>(Drop::Count)> kDropNames = {
    "too_many_connections", "bad_record", "peer_closed", "send_timeout", "shutdown"};

// X(member, metric name, help)
#define PXEDUST_NFS_COUNTERS(X)                                                                                        \
  X(connectionsAccepted, "pxedust_nfs_connections_accepted_total",                                                     \
    "TCP connections accepted, those refused at once included (see the drops).")                                      \
  X(calls, "pxedust_nfs_calls_total", "RPC calls answered (NFS, MOUNT and PORTMAP), errors included.")               \
  X(udpDatagrams, "pxedust_nfs_udp_datagrams_total", "Datagrams received over UDP (each one call, or dropped).")         \
  X(garbage, "pxedust_nfs_garbage_args_total", "Calls whose arguments did not decode (GARBAGE_ARGS).")              \
  X(rejected, "pxedust_nfs_calls_rejected_total",                                                                     \
    "Calls refused before their procedure ran: unknown program, version or procedure, bad credentials, an "          \
    "unprivileged port when privileged_port is set.")                                                                 \
  X(dropped, "pxedust_nfs_calls_dropped_total", "Records that were not calls (no xid, a REPLY): not answered.")     \
  X(mounts, "pxedust_nfs_mounts_total", "MOUNT MNT calls answered with a root handle.")                             \
  X(mountsRefused, "pxedust_nfs_mounts_refused_total", "MOUNT MNT calls refused (no such export, not this client's).") \
  X(bytesOut, "pxedust_nfs_read_bytes_total", "File data sent by READ, in bytes.")

struct NfsStats {
  PXEDUST_NFS_COUNTERS(PXEDUST_COUNTER_MEMBER)
  std::array<std::uint64_t, static_cast<std::size_t>(Drop::Count)> drops{};
  void drop(Drop d) { ++drops[static_cast<std::size_t>(d)]; }
};

}  // namespace pxedust::nfs
