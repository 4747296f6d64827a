// TFTP counters, kept for the metrics endpoint. Touched only on the loop thread.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace pxedust::tftp {

// Why a datagram to the request port did not start a transfer (habit: every drop has a reason,
// a counter and a debug line).
enum class Drop : std::uint8_t {
  Malformed,      // not a parseable RRQ/WRQ -> ERROR 4
  NotARequest,    // DATA/ACK/OACK to the request port -> ERROR 4; ERROR -> silence
  WriteRefused,   // WRQ -> ERROR 2
  RateLimited,    // the client's request rate -> ERROR 0
  Busy,           // max_transfers reached, or no transfer port free -> ERROR 0
  Duplicate,      // a repeated RRQ from a client port that already has a transfer -> silence
  FileError,      // not found, outside the root, not a regular file, ... -> ERROR 1/2
  Count
};
constexpr std::array<std::string_view, static_cast<std::size_t>(Drop::Count)> kDropNames = {
    "malformed", "not_a_request", "write_refused", "rate_limited", "busy", "duplicate", "file_error"};

struct TftpStats {
  std::uint64_t requests = 0;
  std::uint64_t transfersStarted = 0;
  std::uint64_t transfersCompleted = 0;
  std::uint64_t transfersFailed = 0;
  std::uint64_t transfersClosedByClient = 0;  // size probes and early closes with every byte sent
  std::uint64_t blocksSent = 0;
  std::uint64_t bytesSent = 0;
  std::uint64_t retransmits = 0;
  std::uint64_t duplicateAcks = 0;
  std::uint64_t shortSends = 0;      // a window's sendmmsg took fewer blocks than asked (full send buffer)
  std::uint64_t poolReads = 0;       // a window read on the pool (not in the page cache)
  std::uint64_t readsPastTimeout = 0;  // ... that outlasted the retransmission timeout: the client waited
  std::uint64_t wrongTid = 0;
  std::array<std::uint64_t, static_cast<std::size_t>(Drop::Count)> drops{};
  void drop(Drop d) { ++drops[static_cast<std::size_t>(d)]; }
};

}  // namespace pxedust::tftp
