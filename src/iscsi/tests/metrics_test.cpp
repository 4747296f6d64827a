#include "iscsi/metrics.hpp"

#include <gtest/gtest.h>

#include "metrics/tests/promtool.hpp"

namespace pxedust::iscsi {
namespace {

std::string render(const IscsiStats& stats, std::size_t sessions, std::size_t connections) {
  metrics::Writer w;
  collectMetrics(stats, sessions, connections, w);
  return w.renderPrometheus();
}

bool has(const std::string& text, const std::string& line) { return text.find(line + "\n") != std::string::npos; }

TEST(IscsiMetrics, CountersDropsAndGauges) {
  IscsiStats s;
  s.connectionsAccepted = 4;
  s.connectionsActive = 3;
  s.loginsNormal = 2;
  s.loginsDiscovery = 1;
  s.commands = 1000;
  s.bytesOut = 1ULL << 40;
  s.r2ts = 17;
  s.drop(Drop::PeerClosed);
  s.drop(Drop::DataDigest);
  s.drop(Drop::DataDigest);
  const std::string text = render(s, 2, 3);
  EXPECT_TRUE(has(text, "# TYPE pxedust_iscsi_connections_accepted_total counter")) << text;
  EXPECT_TRUE(has(text, "pxedust_iscsi_connections_accepted_total 4")) << text;
  EXPECT_TRUE(has(text, "pxedust_iscsi_logins_normal_total 2")) << text;
  EXPECT_TRUE(has(text, "pxedust_iscsi_logins_discovery_total 1")) << text;
  EXPECT_TRUE(has(text, "pxedust_iscsi_commands_total 1000")) << text;
  EXPECT_TRUE(has(text, "pxedust_iscsi_sent_bytes_total 1099511627776")) << text;
  EXPECT_TRUE(has(text, "pxedust_iscsi_r2ts_total 17")) << text;
  EXPECT_TRUE(has(text, "pxedust_iscsi_drops_total{reason=\"peer_closed\"} 1")) << text;
  EXPECT_TRUE(has(text, "pxedust_iscsi_drops_total{reason=\"data_digest\"} 2")) << text;
  EXPECT_TRUE(has(text, "pxedust_iscsi_drops_total{reason=\"shutdown\"} 0")) << text;
  EXPECT_TRUE(has(text, "# TYPE pxedust_iscsi_sessions_active gauge")) << text;
  EXPECT_TRUE(has(text, "pxedust_iscsi_sessions_active 2")) << text;
  EXPECT_TRUE(has(text, "pxedust_iscsi_connections_active 3")) << text;
  EXPECT_EQ(text.find("connections_active_total"), std::string::npos) << text;  // a gauge, not a counter
}

TEST(IscsiMetrics, PromtoolAccepts) {
  if (!metrics::test::promtoolAvailable()) GTEST_SKIP() << metrics::test::kPromtool << " is missing";
  IscsiStats s;
  s.commands = 5;
  s.drop(Drop::LoginFailed);
  const std::string text = render(s, 1, 1);
  const auto result = metrics::test::promtoolCheck(text);
  EXPECT_EQ(result.status, 0) << result.output << "\n--- input:\n" << text;
  EXPECT_EQ(result.output, "") << text;
}

}  // namespace
}  // namespace pxedust::iscsi
