#include "http/metrics.hpp"

#include <fmt/format.h>

#include <string>

namespace pxedust::http {
namespace {

#define ROW(member, name, help) PXEDUST_COUNTER_ROW(HttpStats, member, name, help)
constexpr metrics::CounterRow<HttpStats> kCounters[] = {PXEDUST_HTTP_COUNTERS(ROW)};
#undef ROW

constexpr std::string_view kReason[] = {"reason"};
constexpr std::string_view kCode[] = {"code"};
constexpr metrics::Family kDrops{"pxedust_http_drops_total",
                                 "Connections refused or closed before the client was done, by reason.",
                                 metrics::Type::Counter, kReason};
constexpr metrics::Family kResponses{"pxedust_http_responses_total", "Responses sent, by status code.",
                                     metrics::Type::Counter, kCode};
constexpr metrics::Family kConnections{"pxedust_http_connections_open", "Connections open now.",
                                       metrics::Type::Gauge};
constexpr metrics::Family kSending{"pxedust_http_responses_in_flight", "Responses being sent now.",
                                   metrics::Type::Gauge};

}  // namespace

void collectMetrics(const HttpStats& stats, std::size_t connections, std::size_t sending, metrics::Writer& out) {
  metrics::writeCounters(stats, kCounters, out);
  metrics::writeIndexed(kDrops, kDropNames, stats.drops, out);
  for (std::size_t i = 0; i < kStatuses.size(); ++i)
    out.sample(kResponses, {std::to_string(kStatuses[i])}, stats.responses[i]);
  out.sample(kResponses, {"other"}, stats.responses.back());
  out.sample(kConnections, connections);
  out.sample(kSending, sending);
}

}  // namespace pxedust::http
