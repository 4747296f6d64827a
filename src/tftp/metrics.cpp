// TFTP's metric families: the rows of PXEDUST_TFTP_COUNTERS, the drops and the transfers gauge.
#include "tftp/metrics.hpp"

#include "metrics/counters.hpp"

namespace pxedust::tftp {
namespace {

#define ROW(member, name, help) PXEDUST_COUNTER_ROW(TftpStats, member, name, help)
constexpr metrics::CounterRow<TftpStats> kCounters[] = {PXEDUST_TFTP_COUNTERS(ROW)};
#undef ROW

constexpr std::string_view kReason[] = {"reason"};
constexpr metrics::Family kDrops{"pxedust_tftp_drops_total",
                                 "Datagrams to the request ports that did not start a transfer, by reason.",
                                 metrics::Type::Counter, kReason};
constexpr metrics::Family kTransfers{"pxedust_tftp_transfers_active", "Transfers in flight now.",
                                     metrics::Type::Gauge};

}  // namespace

void collectMetrics(const TftpStats& stats, std::size_t activeTransfers, metrics::Writer& out) {
  metrics::writeCounters(stats, kCounters, out);
  metrics::writeIndexed(kDrops, kDropNames, stats.drops, out);
  out.sample(kTransfers, activeTransfers);
}

}  // namespace pxedust::tftp
