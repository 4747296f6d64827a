// TFTP's metrics: the counters of TftpStats (one family each, from PXEDUST_TFTP_COUNTERS), the drops
// as pxedust_tftp_drops_total{reason} (every reason written, zeros too, so each series exists from
// the start), and a gauge of the transfers in flight. The caller owns the numbers (TftpService's
// stats() and activeTransfers()) and calls this on the loop thread when a scrape asks.
#pragma once

#include <cstddef>

#include "metrics/registry.hpp"
#include "tftp/stats.hpp"

namespace pxedust::tftp {

void collectMetrics(const TftpStats& stats, std::size_t activeTransfers, metrics::Writer& out);

}  // namespace pxedust::tftp
