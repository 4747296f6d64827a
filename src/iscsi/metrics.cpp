// iSCSI's metric families: the rows of PXEDUST_ISCSI_COUNTERS, the drops and the two gauges.
#include "iscsi/metrics.hpp"

#include "metrics/counters.hpp"

namespace pxedust::iscsi {
namespace {

#define ROW(member, name, help) PXEDUST_COUNTER_ROW(IscsiStats, member, name, help)
constexpr metrics::CounterRow<IscsiStats> kCounters[] = {PXEDUST_ISCSI_COUNTERS(ROW)};
#undef ROW

constexpr std::string_view kReason[] = {"reason"};
constexpr metrics::Family kDrops{
    "pxedust_iscsi_drops_total",
    "Connections ended and PDUs refused or ignored, by reason; each connection ends with one reason "
    "(peer_closed when the initiator closed it).",
    metrics::Type::Counter, kReason};
constexpr metrics::Family kSessions{"pxedust_iscsi_sessions_active", "Sessions open now, normal and discovery.",
                                    metrics::Type::Gauge};
constexpr metrics::Family kConnections{"pxedust_iscsi_connections_active",
                                       "TCP connections open now, logging in or logged in.", metrics::Type::Gauge};

}  // namespace

void collectMetrics(const IscsiStats& stats, std::size_t sessions, std::size_t connections, metrics::Writer& out) {
  metrics::writeCounters(stats, kCounters, out);
  metrics::writeIndexed(kDrops, kDropNames, stats.drops, out);
  out.sample(kSessions, sessions);
  out.sample(kConnections, connections);
}

}  // namespace pxedust::iscsi
