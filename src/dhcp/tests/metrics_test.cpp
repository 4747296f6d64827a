#include "dhcp/metrics.hpp"

#include <gtest/gtest.h>

#include "metrics/tests/promtool.hpp"

namespace pxedust::dhcp {
namespace {

bool has(const std::string& text, const std::string& line) { return text.find(line + "\n") != std::string::npos; }

std::size_t at(MessageType t) { return static_cast<std::size_t>(t); }

TEST(DhcpMetrics, TypesReasonsAndCounters) {
  PolicyStats s;
  s.received[at(MessageType::Discover)] = 10;
  s.received[at(MessageType::Request)] = 8;
  s.received[at(MessageType::Inform)] = 1;
  s.sent[at(MessageType::Offer)] = 9;
  s.sent[at(MessageType::Ack)] = 7;
  s.sent[at(MessageType::Nak)] = 1;
  s.dropped[static_cast<std::size_t>(Drop::PoolExhausted)] = 3;
  s.dropped[static_cast<std::size_t>(Drop::LeaseStoreFailed)] = 1;
  RouterAdvertStats ra;
  ra.solicitations = 12;
  ra.advertisements = 11;
  ra.limited = 1;
  metrics::Writer w;
  collectMetrics(s, 5, 4, 2, ra, w);
  const std::string text = w.renderPrometheus();
  EXPECT_TRUE(has(text, "# TYPE pxedust_dhcp_received_messages_total counter")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_received_messages_total{type=\"discover\"} 10")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_received_messages_total{type=\"request\"} 8")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_received_messages_total{type=\"inform\"} 1")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_received_messages_total{type=\"release\"} 0")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_sent_messages_total{type=\"offer\"} 9")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_sent_messages_total{type=\"ack\"} 7")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_sent_messages_total{type=\"nak\"} 1")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_sent_messages_total{type=\"decline\"} 0")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_drops_total{reason=\"pool_exhausted\"} 3")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_drops_total{reason=\"lease_store_failed\"} 1")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_drops_total{reason=\"bootp_not_served\"} 0")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_batches_total 5")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_lease_syncs_total 4")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_send_errors_total 2")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_router_solicitations_total 12")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_router_advertisements_total 11")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_router_solicitations_limited_total 1")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_router_advert_errors_total 0")) << text;
  // Eight types for each direction, one line per drop reason.
  std::size_t received = 0;
  for (std::size_t p = 0; (p = text.find("\npxedust_dhcp_received_messages_total{", p)) != std::string::npos; ++p)
    ++received;
  EXPECT_EQ(received, 8U);
}

TEST(DhcpMetrics, PoolsByState) {
  PoolStats p;
  p.network = 0x0A000000;
  p.prefixLength = 24;
  p.total = 253;
  p.reserved = 3;
  p.bound = 10;
  p.offered = 2;
  p.free = 238;
  metrics::Writer w;
  collectPoolMetrics({p}, w);
  const std::string text = w.renderPrometheus();
  EXPECT_TRUE(has(text, "# TYPE pxedust_dhcp_pool_addresses gauge")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_pool_addresses{subnet=\"10.0.0.0/24\",state=\"total\"} 253")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_pool_addresses{subnet=\"10.0.0.0/24\",state=\"bound\"} 10")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_pool_addresses{subnet=\"10.0.0.0/24\",state=\"declined\"} 0")) << text;
  EXPECT_TRUE(has(text, "pxedust_dhcp_pool_addresses{subnet=\"10.0.0.0/24\",state=\"free\"} 238")) << text;
}

TEST(DhcpMetrics, PromtoolAccepts) {
  if (!metrics::test::promtoolAvailable()) GTEST_SKIP() << metrics::test::kPromtool << " is missing";
  PolicyStats s;
  s.received[at(MessageType::Discover)] = 1;
  s.sent[at(MessageType::Offer)] = 1;
  metrics::Writer w;
  collectMetrics(s, 1, 0, 0, RouterAdvertStats{}, w);
  PoolStats p;
  p.network = 0x0A000000;
  p.total = 253;
  collectPoolMetrics({p}, w);
  const std::string text = w.renderPrometheus();
  const auto result = metrics::test::promtoolCheck(text);
  EXPECT_EQ(result.status, 0) << result.output << "\n--- input:\n" << text;
  EXPECT_EQ(result.output, "") << text;
}

}  // namespace
}  // namespace pxedust::dhcp
