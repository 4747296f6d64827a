// iSCSI counters, kept for the metrics endpoint. Touched only on the loop thread.
//
// Each counter is declared once, in PXEDUST_ISCSI_COUNTERS: the row gives IscsiStats its member and
// iscsi/metrics.cpp its metric name and help (metrics/counters.hpp). The drops are one family,
// pxedust_iscsi_drops_total, labelled by reason from kDropNames.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "metrics/counters.hpp"

namespace pxedust::iscsi {

// Why a connection ended or a PDU was refused (every drop has a reason, a counter and a log line).
enum class Drop : std::uint8_t {
  TooManyConnections,  // [iscsi] max_connections reached: closed at accept
  LoginFailed,         // the login machine refused (status in the log line)
  LoginTimeout,        // no full feature phase within the login time
  WrongPhase,          // a non-Login PDU during login, a Login PDU afterwards
  HeaderDigest,        // header digest mismatch: the lengths cannot be trusted
  DataDigest,          // data digest mismatch: Reject 0x02
  Oversized,           // data segment or AHS over our limits: Reject / close during login
  BadHeader,           // unknown or target opcode: Reject
  ProtocolError,       // a field that makes no sense in its context: Reject
  OutOfWindow,         // CmdSN outside [ExpCmdSN, MaxCmdSN]: silently ignored (§4.2.2.1)
  UnknownTask,         // Data-Out / SNACK for a task we do not have: Reject
  DataSequence,        // Data-Out out of DataSN order: its task ends with CHECK CONDITION 0B/47/05 (§7.9)
  NopTimeout,          // the initiator stopped answering NOP-In pings
  PeerClosed,          // the initiator closed (or reset) the connection
  Reinstated,          // a new login with the same initiator name and ISID replaced the session
  TargetReset,         // TARGET COLD RESET: every connection to the target closes (§11.5.1)
  TargetRemoved,       // the host left the config on reload
  DiskReleased,        // an operator reset the host's overlay with force (API)
  Shutdown,            // the daemon is stopping
  Count
};
constexpr std::array<std::string_view, static_cast<std::size_t>(Drop::Count)> kDropNames = {
    "too_many_connections", "login_failed", "login_timeout", "wrong_phase", "header_digest", "data_digest",
    "oversized", "bad_header", "protocol_error", "out_of_window", "unknown_task", "data_sequence", "nop_timeout",
    "peer_closed", "reinstated", "target_reset", "target_removed", "disk_released", "shutdown"};

// X(member, metric name, help)
#define PXEDUST_ISCSI_COUNTERS(X)                                                                                      \
  X(connectionsAccepted, "pxedust_iscsi_connections_accepted_total",                                                   \
    "TCP connections accepted by the listeners, those refused at once included (see the drops).")                      \
  X(loginsNormal, "pxedust_iscsi_logins_normal_total", "Logins that reached full feature phase in a normal session.")  \
  X(loginsDiscovery, "pxedust_iscsi_logins_discovery_total",                                                           \
    "Logins that reached full feature phase in a discovery (SendTargets) session.")                                    \
  X(sessionsReinstated, "pxedust_iscsi_sessions_reinstated_total",                                                     \
    "Logins that replaced an existing session or connection of the same initiator (a rebooted host).")                 \
  X(commands, "pxedust_iscsi_commands_total", "SCSI commands accepted.")                                               \
  X(commandsFailed, "pxedust_iscsi_commands_failed_total", "SCSI commands that ended with a status other than GOOD.")  \
  X(bytesIn, "pxedust_iscsi_received_bytes_total",                                                                     \
    "Write data received in Data-Out PDUs and as immediate data, in bytes.")                                           \
  X(bytesOut, "pxedust_iscsi_sent_bytes_total", "Read data sent in Data-In PDUs, in bytes.")                           \
  X(r2ts, "pxedust_iscsi_r2ts_total", "Ready To Transfer (R2T) PDUs sent.")                                            \
  X(taskManagement, "pxedust_iscsi_task_management_requests_total", "Task management requests answered.")              \
  X(nopPings, "pxedust_iscsi_nop_pings_total", "NOP-In pings sent to an idle initiator to check it is still there.")   \
  X(rejects, "pxedust_iscsi_rejects_total", "Reject PDUs sent.")

struct IscsiStats {
  PXEDUST_ISCSI_COUNTERS(PXEDUST_COUNTER_MEMBER)
  // Goes down as well as up, so not a counter: the same number as IscsiService::connections(), which
  // the pxedust_iscsi_connections_active gauge reads.
  std::uint64_t connectionsActive = 0;
  std::array<std::uint64_t, static_cast<std::size_t>(Drop::Count)> drops{};  // by Drop: pxedust_iscsi_drops_total
  void drop(Drop d) { ++drops[static_cast<std::size_t>(d)]; }
};

}  // namespace pxedust::iscsi
