#include "tftp/metrics.hpp"

#include <gtest/gtest.h>

#include "metrics/tests/promtool.hpp"

namespace pxedust::tftp {
namespace {

std::string render(const TftpStats& stats, std::size_t active) {
  metrics::Writer w;
  collectMetrics(stats, active, w);
  return w.renderPrometheus();
}

bool has(const std::string& text, const std::string& line) { return text.find(line + "\n") != std::string::npos; }

TEST(TftpMetrics, CountersDropsAndGauge) {
  TftpStats s;
  s.requests = 12;
  s.transfersStarted = 9;
  s.transfersCompleted = 7;
  s.bytesSent = 5'000'000'000;
  s.wrongTid = 1;
  s.drop(Drop::Busy);
  s.drop(Drop::Busy);
  s.drop(Drop::FileError);
  const std::string text = render(s, 2);
  EXPECT_TRUE(has(text, "# TYPE pxedust_tftp_requests_total counter")) << text;
  EXPECT_TRUE(has(text, "pxedust_tftp_requests_total 12")) << text;
  EXPECT_TRUE(has(text, "pxedust_tftp_transfers_started_total 9")) << text;
  EXPECT_TRUE(has(text, "pxedust_tftp_transfers_completed_total 7")) << text;
  EXPECT_TRUE(has(text, "pxedust_tftp_transfers_failed_total 0")) << text;
  EXPECT_TRUE(has(text, "pxedust_tftp_sent_bytes_total 5000000000")) << text;
  EXPECT_TRUE(has(text, "pxedust_tftp_wrong_tid_total 1")) << text;
  EXPECT_TRUE(has(text, "pxedust_tftp_drops_total{reason=\"busy\"} 2")) << text;
  EXPECT_TRUE(has(text, "pxedust_tftp_drops_total{reason=\"file_error\"} 1")) << text;
  EXPECT_TRUE(has(text, "pxedust_tftp_drops_total{reason=\"malformed\"} 0")) << text;  // every reason, zeros too
  EXPECT_TRUE(has(text, "# TYPE pxedust_tftp_transfers_active gauge")) << text;
  EXPECT_TRUE(has(text, "pxedust_tftp_transfers_active 2")) << text;
}

TEST(TftpMetrics, PromtoolAccepts) {
  if (!metrics::test::promtoolAvailable()) GTEST_SKIP() << metrics::test::kPromtool << " is missing";
  TftpStats s;
  s.requests = 3;
  s.drop(Drop::RateLimited);
  const std::string text = render(s, 0);
  const auto result = metrics::test::promtoolCheck(text);
  EXPECT_EQ(result.status, 0) << result.output << "\n--- input:\n" << text;
  EXPECT_EQ(result.output, "") << text;
}

}  // namespace
}  // namespace pxedust::tftp
