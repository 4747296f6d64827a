// HTTP counters, kept for the metrics endpoint. Touched only on the loop thread.
//
// Each counter is declared once, in PXEDUST_HTTP_COUNTERS (metrics/counters.hpp). Responses are one
// family by status code, connections refused or cut off another by reason.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "metrics/counters.hpp"

namespace pxedust::http {

// Why a connection was refused or closed before its client was done with it.
enum class Drop : std::uint8_t {
  TooManyConnections,  // max_connections reached: closed at once
  TooManyFromClient,   // max_connections_per_client reached: closed at once
  BadRequest,          // the head did not parse (400, 413, 414, 431, 501, 505 sent, then closed)
  HeaderTimeout,       // the head did not arrive within header_timeout (408 sent, then closed)
  SendTimeout,         // the client stopped reading for send_timeout
  ClientClosed,        // the client closed or reset the connection in the middle of a response
  FileShrank,          // the file got shorter while it was sent: the connection is cut (its length was promised)
  Shutdown,            // the daemon stopping
  Count
};
constexpr std::array<std::string_view, static_cast<std::size_t>(Drop::Count)> kDropNames = {
    "too_many_connections", "too_many_from_client", "bad_request", "header_timeout",
    "send_timeout",         "client_closed",        "file_shrank", "shutdown"};

// The status codes counted one by one; anything else is counted as "other".
constexpr std::array<int, 15> kStatuses = {200, 206, 304, 400, 403, 404, 405, 408, 413, 414, 416, 431, 500, 501, 505};

// X(member, metric name, help)
#define PXEDUST_HTTP_COUNTERS(X)                                                                                       \
  X(connectionsAccepted, "pxedust_http_connections_accepted_total", "TCP connections accepted.")                       \
  X(requests, "pxedust_http_requests_total", "Requests whose head arrived whole (parsed or not).")                      \
  X(bytesSent, "pxedust_http_sent_bytes_total", "Body bytes sent (file contents and generated bodies).")               \
  X(filesCompleted, "pxedust_http_files_completed_total", "Whole files sent to the end (GET without a range).")        \
  X(yields, "pxedust_http_send_yields_total",                                                                          \
    "Times a fast client's response paused to let the rest of the loop run (fairness).")                              \
  X(coldReads, "pxedust_http_cold_reads_total",                                                                        \
    "Chunks of a file body that were not in the page cache, read from disk on a reader thread before being sent.")

struct HttpStats {
  PXEDUST_HTTP_COUNTERS(PXEDUST_COUNTER_MEMBER)
  std::array<std::uint64_t, static_cast<std::size_t>(Drop::Count)> drops{};  // pxedust_http_drops_total
  std::array<std::uint64_t, kStatuses.size() + 1> responses{};               // by kStatuses, then other
  void drop(Drop d) { ++drops[static_cast<std::size_t>(d)]; }
  void responded(int status) {
    for (std::size_t i = 0; i < kStatuses.size(); ++i)
      if (kStatuses[i] == status) {
        ++responses[i];
        return;
      }
    ++responses.back();
  }
};

}  // namespace pxedust::http
