// iSCSI counters, kept for the metrics endpoint. Touched only on the loop thread.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

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
  Shutdown,            // the daemon is stopping
  Count
};
constexpr std::array<std::string_view, static_cast<std::size_t>(Drop::Count)> kDropNames = {
    "too_many_connections", "login_failed", "login_timeout", "wrong_phase", "header_digest", "data_digest",
    "oversized", "bad_header", "protocol_error", "out_of_window", "unknown_task", "data_sequence", "nop_timeout",
    "peer_closed", "reinstated", "target_reset", "target_removed", "shutdown"};

struct IscsiStats {
  std::uint64_t connectionsAccepted = 0;
  std::uint64_t connectionsActive = 0;
  std::uint64_t loginsNormal = 0;
  std::uint64_t loginsDiscovery = 0;
  std::uint64_t sessionsReinstated = 0;
  std::uint64_t commands = 0;
  std::uint64_t commandsFailed = 0;  // ended with a status other than GOOD
  std::uint64_t bytesIn = 0;         // Data-Out and immediate data
  std::uint64_t bytesOut = 0;        // Data-In
  std::uint64_t r2ts = 0;
  std::uint64_t taskManagement = 0;
  std::uint64_t nopPings = 0;
  std::uint64_t rejects = 0;
  std::array<std::uint64_t, static_cast<std::size_t>(Drop::Count)> drops{};
  void drop(Drop d) { ++drops[static_cast<std::size_t>(d)]; }
};

}  // namespace pxedust::iscsi
