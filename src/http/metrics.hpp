// HTTP's metrics: the counters of HttpStats, responses by status code, drops by reason, and gauges of
// the connections open and the responses being sent. Called on the loop thread when a scrape asks.
#pragma once

#include <cstddef>

#include "http/stats.hpp"
#include "metrics/registry.hpp"

namespace pxedust::http {

void collectMetrics(const HttpStats& stats, std::size_t connections, std::size_t sending, metrics::Writer& out);

}  // namespace pxedust::http
