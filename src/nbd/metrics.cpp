// NBD's metric families: the rows of PXEDUST_NBD_COUNTERS, the labelled counters and the two gauges.
#include "nbd/metrics.hpp"

#include "metrics/counters.hpp"

namespace pxedust::nbd {
namespace {

#define ROW(member, name, help) PXEDUST_COUNTER_ROW(NbdStats, member, name, help)
constexpr metrics::CounterRow<NbdStats> kCounters[] = {PXEDUST_NBD_COUNTERS(ROW)};
#undef ROW

constexpr std::string_view kCommand[] = {"command"};
constexpr metrics::Family kRequests{"pxedust_nbd_requests_total",
                                    "Transmission requests received, by command (refused ones included).",
                                    metrics::Type::Counter, kCommand};
constexpr std::string_view kError[] = {"error"};
constexpr metrics::Family kErrors{"pxedust_nbd_request_errors_total",
                                  "Requests answered with an error, by the NBD error value sent.",
                                  metrics::Type::Counter, kError};
constexpr std::string_view kReason[] = {"reason"};
constexpr metrics::Family kDrops{
    "pxedust_nbd_drops_total",
    "Connections ended, by reason; each connection ends with one reason (disconnect when the client sent "
    "NBD_CMD_DISC, peer_closed when it just closed).",
    metrics::Type::Counter, kReason};
constexpr metrics::Family kSessions{"pxedust_nbd_sessions_active",
                                    "Connections in the transmission phase now (one per open export).",
                                    metrics::Type::Gauge};
constexpr metrics::Family kConnections{"pxedust_nbd_connections_active",
                                       "TCP connections open now, in the handshake or transmitting.",
                                       metrics::Type::Gauge};

}  // namespace

void collectMetrics(const NbdStats& stats, std::size_t sessions, std::size_t connections, metrics::Writer& out) {
  metrics::writeCounters(stats, kCounters, out);
  metrics::writeIndexed(kRequests, kCommandLabels, stats.requests, out);
  metrics::writeIndexed(kErrors, kErrorLabels, stats.errors, out);
  metrics::writeIndexed(kDrops, kDropNames, stats.drops, out);
  out.sample(kSessions, sessions);
  out.sample(kConnections, connections);
}

}  // namespace pxedust::nbd
