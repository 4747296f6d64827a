// TFTP counters, kept for the metrics endpoint. Touched only on the loop thread.
//
// Each counter is declared once, in PXEDUST_TFTP_COUNTERS: the row gives TftpStats its member and
// tftp/metrics.cpp its metric name and help (metrics/counters.hpp). The drops are one family,
// pxedust_tftp_drops_total, labelled by reason from kDropNames.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "metrics/counters.hpp"

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

// X(member, metric name, help)
#define PXEDUST_TFTP_COUNTERS(X)                                                                                       \
  X(requests, "pxedust_tftp_requests_total",                                                                           \
    "Datagrams received on the request ports: read and write requests, and anything else sent there.")                 \
  X(transfersStarted, "pxedust_tftp_transfers_started_total",                                                          \
    "Transfers started (a read request accepted and its file opened).")                                                \
  X(transfersCompleted, "pxedust_tftp_transfers_completed_total",                                                      \
    "Transfers that ended with the last block acknowledged.")                                                          \
  X(transfersFailed, "pxedust_tftp_transfers_failed_total",                                                            \
    "Transfers that ended without the file delivered (timeout, client error, read error, shutdown).")                  \
  X(transfersClosedByClient, "pxedust_tftp_transfers_closed_by_client_total",                                          \
    "Transfers the client closed early after every byte it asked for was sent (size probes, early closes).")           \
  X(blocksSent, "pxedust_tftp_blocks_sent_total", "DATA packets sent, retransmissions included.")                      \
  X(bytesSent, "pxedust_tftp_sent_bytes_total", "File bytes sent in DATA packets, retransmissions included.")          \
  X(retransmits, "pxedust_tftp_retransmits_total",                                                                     \
    "Retransmission timeouts: a window (or OACK) sent again because no acknowledgement came.")                         \
  X(duplicateAcks, "pxedust_tftp_duplicate_acks_total",                                                                \
    "ACKs repeating an earlier one, or stray; never answered with data.")                                              \
  X(shortSends, "pxedust_tftp_short_sends_total",                                                                      \
    "Windows the socket took only part of (send buffer full); the timer sends the rest.")                              \
  X(poolReads, "pxedust_tftp_pool_reads_total",                                                                        \
    "Windows read on the disk thread pool because they were not in the page cache.")                                   \
  X(readsPastTimeout, "pxedust_tftp_reads_past_timeout_total",                                                         \
    "Pool reads that outlasted the retransmission timeout: the client waited on the disk.")                            \
  X(wrongTid, "pxedust_tftp_wrong_tid_total",                                                                          \
    "Datagrams to a transfer port from another port than its client's: ERROR 5 (RFC 1350 section 4).")

struct TftpStats {
  PXEDUST_TFTP_COUNTERS(PXEDUST_COUNTER_MEMBER)
  std::array<std::uint64_t, static_cast<std::size_t>(Drop::Count)> drops{};  // by Drop: pxedust_tftp_drops_total
  void drop(Drop d) { ++drops[static_cast<std::size_t>(d)]; }
};

}  // namespace pxedust::tftp
