// DHCP's metric families. PolicyStats counts messages in arrays indexed by the MessageType value
// (RFC 2132 section 9.6: 1 DISCOVER ... 8 INFORM; index 0 is never counted) and drops indexed by Drop;
// here they become one family each, labelled by type or reason.
#include "dhcp/metrics.hpp"

#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "metrics/counters.hpp"

namespace pxedust::dhcp {
namespace {

#define ROW(member, name, help) PXEDUST_COUNTER_ROW(RouterAdvertStats, member, name, help)
constexpr metrics::CounterRow<RouterAdvertStats> kAdvertCounters[] = {PXEDUST_ROUTER_ADVERT_COUNTERS(ROW)};
#undef ROW

constexpr std::pair<MessageType, std::string_view> kTypes[] = {
    {MessageType::Discover, "discover"}, {MessageType::Offer, "offer"}, {MessageType::Request, "request"},
    {MessageType::Ack, "ack"},           {MessageType::Nak, "nak"},     {MessageType::Decline, "decline"},
    {MessageType::Release, "release"},   {MessageType::Inform, "inform"}};
static_assert(static_cast<std::size_t>(MessageType::Inform) < std::tuple_size_v<decltype(PolicyStats::received)>);

constexpr std::string_view kType[] = {"type"};
constexpr std::string_view kReason[] = {"reason"};
constexpr metrics::Family kReceived{"pxedust_dhcp_received_messages_total",
                                    "DHCP messages received and decoded, by message type (the undecodable are drops).",
                                    metrics::Type::Counter, kType};
constexpr metrics::Family kSent{"pxedust_dhcp_sent_messages_total", "DHCP replies sent, by message type.",
                                metrics::Type::Counter, kType};
constexpr metrics::Family kDrops{"pxedust_dhcp_drops_total", "DHCP requests left unanswered, by reason.",
                                 metrics::Type::Counter, kReason};
constexpr metrics::Family kBatches{"pxedust_dhcp_batches_total",
                                   "Batches of requests answered (one per wake-up with requests waiting).",
                                   metrics::Type::Counter};
constexpr metrics::Family kSyncs{"pxedust_dhcp_lease_syncs_total",
                                 "Lease journal writes made durable with fdatasync (a group commit for the ACKs "
                                 "waiting on it).",
                                 metrics::Type::Counter};
constexpr metrics::Family kSendErrors{"pxedust_dhcp_send_errors_total", "Replies that could not be encoded or sent.",
                                      metrics::Type::Counter};

constexpr std::string_view kSubnetState[] = {"subnet", "state"};
constexpr metrics::Family kPool{"pxedust_dhcp_pool_addresses",
                                "Addresses of each dynamic pool, by state: total, reserved (static reservations), bound, "
                                "offered, declined (in quarantine), free.",
                                metrics::Type::Gauge, kSubnetState};

}  // namespace

void collectPoolMetrics(const std::vector<PoolStats>& pools, metrics::Writer& out) {
  out.declare(kPool);
  for (const auto& p : pools) {
    const std::string subnet = fmt::format("{}.{}.{}.{}/{}", p.network >> 24, (p.network >> 16) & 255,
                                           (p.network >> 8) & 255, p.network & 255, p.prefixLength);
    for (const auto& [state, value] : {std::pair<std::string_view, std::uint64_t>{"total", p.total},
                                       {"reserved", p.reserved}, {"bound", p.bound}, {"offered", p.offered},
                                       {"declined", p.declined}, {"free", p.free}})
      out.sample(kPool, {subnet, state}, value);
  }
}

void collectMetrics(const PolicyStats& stats, std::uint64_t batches, std::uint64_t syncs, std::uint64_t sendErrors,
                    const RouterAdvertStats& adverts, metrics::Writer& out) {
  for (const auto& [type, name] : kTypes) {
    out.sample(kReceived, {name}, stats.received[static_cast<std::size_t>(type)]);
    out.sample(kSent, {name}, stats.sent[static_cast<std::size_t>(type)]);
  }
  for (std::size_t i = 0; i < stats.dropped.size(); ++i)
    out.sample(kDrops, {dropName(static_cast<Drop>(i))}, stats.dropped[i]);
  out.sample(kBatches, batches);
  out.sample(kSyncs, syncs);
  out.sample(kSendErrors, sendErrors);
  metrics::writeCounters(adverts, kAdvertCounters, out);
}

}  // namespace pxedust::dhcp
