// DHCP's metrics: messages received and sent by type (discover, offer, request, ack, nak, decline,
// release, inform), the drops by reason (every type and reason written, zeros too, so each series
// exists from the start), the service's batches, lease syncs and send errors, and the IPv6 router
// solicitation answers (PXEDUST_ROUTER_ADVERT_COUNTERS). The caller owns the numbers (DhcpService's
// stats(), whose PolicyStats part and three counters are passed here, and routerAdvertStats()) and
// calls this on the loop thread when a scrape asks.
#pragma once

#include <cstdint>
#include <vector>

#include "dhcp/leases.hpp"
#include "dhcp/policy.hpp"
#include "dhcp/router_adverts.hpp"
#include "metrics/registry.hpp"

namespace pxedust::dhcp {

void collectMetrics(const PolicyStats& stats, std::uint64_t batches, std::uint64_t syncs, std::uint64_t sendErrors,
                    const RouterAdvertStats& adverts, metrics::Writer& out);

// Each pool's addresses by state (pxedust_dhcp_pool_addresses{subnet, state}): total, reserved,
// bound, offered, declined, free, as LeaseDb::stats() counts them (a walk of the lease table, at
// each scrape).
void collectPoolMetrics(const std::vector<PoolStats>& pools, metrics::Writer& out);

}  // namespace pxedust::dhcp
