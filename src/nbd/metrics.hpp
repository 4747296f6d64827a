// NBD's metrics: the counters of NbdStats (one family each, from PXEDUST_NBD_COUNTERS), requests by
// command, refused requests by error, drops by reason (every label written, zeros too, so each
// series exists from the start), and gauges of the sessions and connections open now. Called on the
// loop thread when a scrape asks.
#pragma once

#include <cstddef>

#include "metrics/registry.hpp"
#include "nbd/stats.hpp"

namespace pxedust::nbd {

void collectMetrics(const NbdStats& stats, std::size_t sessions, std::size_t connections, metrics::Writer& out);

}  // namespace pxedust::nbd
