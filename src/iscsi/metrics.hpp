// iSCSI's metrics: the counters of IscsiStats (one family each, from PXEDUST_ISCSI_COUNTERS), the
// drops as pxedust_iscsi_drops_total{reason} (every reason written, zeros too, so each series exists
// from the start), and gauges of the sessions and connections open now. The caller owns the numbers
// (IscsiService's stats(), sessions() and connections()) and calls this on the loop thread when a
// scrape asks.
#pragma once

#include <cstddef>

#include "iscsi/stats.hpp"
#include "metrics/registry.hpp"

namespace pxedust::iscsi {

void collectMetrics(const IscsiStats& stats, std::size_t sessions, std::size_t connections, metrics::Writer& out);

}  // namespace pxedust::iscsi
