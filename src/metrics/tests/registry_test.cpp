#include "metrics/registry.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <iterator>
#include <limits>
#include <vector>

#include "metrics/counters.hpp"
#include "metrics/tests/promtool.hpp"

namespace pxedust::metrics {
namespace {

constexpr std::string_view kReason[] = {"reason"};
constexpr std::string_view kTwo[] = {"service", "result"};
constexpr Family kRequests{"pxedust_test_requests_total", "Requests received.", Type::Counter};
constexpr Family kDrops{"pxedust_test_drops_total", "Requests dropped, by reason.", Type::Counter, kReason};
constexpr Family kActive{"pxedust_test_sessions_active", "Sessions open now.", Type::Gauge};
constexpr Family kLogins{"pxedust_test_logins_total", "Logins, by service and result.", Type::Counter, kTwo};

// The names are checked when compiled (a bad one would not build); the checks themselves:
static_assert(detail::isSnakeCase("pxedust_tftp_requests_total"));
static_assert(!detail::isSnakeCase("pxedust_tftp_requestsTotal"));
static_assert(!detail::isSnakeCase("_pxedust"));
static_assert(!detail::isSnakeCase("pxedust:tftp"));
static_assert(!detail::isSnakeCase(""));

TEST(Writer, HelpAndTypeAndSamples) {
  Writer w;
  w.sample(kRequests, 42);
  w.sample(kActive, 3);
  EXPECT_EQ(w.renderPrometheus(),
            "# HELP pxedust_test_requests_total Requests received.\n"
            "# TYPE pxedust_test_requests_total counter\n"
            "pxedust_test_requests_total 42\n"
            "# HELP pxedust_test_sessions_active Sessions open now.\n"
            "# TYPE pxedust_test_sessions_active gauge\n"
            "pxedust_test_sessions_active 3\n");
}

TEST(Writer, EscapesHelpAndLabelValues) {
  static constexpr Family f{"pxedust_test_escapes_total", "A \\ backslash,\na newline and \"quotes\".",
                            Type::Counter, kReason};
  Writer w;
  w.sample(f, {"back\\slash \"quoted\"\nnext line"}, 1);
  // HELP escapes backslash and newline only; a label value the double quote too.
  EXPECT_EQ(w.renderPrometheus(),
            "# HELP pxedust_test_escapes_total A \\\\ backslash,\\na newline and \"quotes\".\n"
            "# TYPE pxedust_test_escapes_total counter\n"
            "pxedust_test_escapes_total{reason=\"back\\\\slash \\\"quoted\\\"\\nnext line\"} 1\n");
}

TEST(Writer, LabelValuesBecomeValidUtf8) {
  Writer w;
  w.sample(kDrops, {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"}, 1);  // well-formed: kept as is
  w.sample(kDrops, {"a\xFF" "b"}, 2);                                 // a stray byte
  w.sample(kDrops, {"\xC0\xAF|\xED\xA0\x80|\xE2\x82"}, 3);            // overlong, surrogate, truncated
  const std::string text = w.renderPrometheus();
  EXPECT_NE(text.find("{reason=\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("{reason=\"a\xEF\xBF\xBD" "b\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("{reason=\"\xEF\xBF\xBD\xEF\xBF\xBD|\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD|"
                      "\xEF\xBF\xBD\xEF\xBF\xBD\"} 3\n"),
            std::string::npos)
      << text;
}

TEST(Writer, GroupsInterleavedSamplesByFamily) {
  Writer w;
  w.sample(kDrops, {"busy"}, 1);
  w.sample(kRequests, 10);
  w.sample(kDrops, {"malformed"}, 2);
  w.sample(kActive, 1);
  w.sample(kDrops, {"duplicate"}, 3);
  EXPECT_EQ(w.renderPrometheus(),
            "# HELP pxedust_test_drops_total Requests dropped, by reason.\n"
            "# TYPE pxedust_test_drops_total counter\n"
            "pxedust_test_drops_total{reason=\"busy\"} 1\n"
            "pxedust_test_drops_total{reason=\"duplicate\"} 3\n"
            "pxedust_test_drops_total{reason=\"malformed\"} 2\n"
            "# HELP pxedust_test_requests_total Requests received.\n"
            "# TYPE pxedust_test_requests_total counter\n"
            "pxedust_test_requests_total 10\n"
            "# HELP pxedust_test_sessions_active Sessions open now.\n"
            "# TYPE pxedust_test_sessions_active gauge\n"
            "pxedust_test_sessions_active 1\n");
}

TEST(Writer, FamilyWithoutSamplesStillHasHelpAndType) {
  Writer w;
  w.declare(kDrops);
  w.declare(kDrops);  // declaring again is fine
  EXPECT_EQ(w.renderPrometheus(),
            "# HELP pxedust_test_drops_total Requests dropped, by reason.\n"
            "# TYPE pxedust_test_drops_total counter\n");
  EXPECT_EQ(Writer().renderPrometheus(), "");
}

TEST(Writer, SeveralLabelsInDeclaredOrder) {
  Writer w;
  w.sample(kLogins, {"iscsi", "ok"}, 5);
  w.sample(kLogins, {"iscsi", "failed"}, 1);
  EXPECT_EQ(w.renderPrometheus(),
            "# HELP pxedust_test_logins_total Logins, by service and result.\n"
            "# TYPE pxedust_test_logins_total counter\n"
            "pxedust_test_logins_total{service=\"iscsi\",result=\"failed\"} 1\n"
            "pxedust_test_logins_total{service=\"iscsi\",result=\"ok\"} 5\n");
}

TEST(Writer, OrderDoesNotDependOnWriteOrder) {
  Writer a, b;
  a.sample(kActive, 1);
  a.sample(kDrops, {"x"}, 1);
  a.sample(kDrops, {"y"}, 2);
  a.sample(kRequests, 3);
  b.sample(kRequests, 3);
  b.sample(kDrops, {"y"}, 2);
  b.sample(kActive, 1);
  b.sample(kDrops, {"x"}, 1);
  EXPECT_EQ(a.renderPrometheus(), b.renderPrometheus());
}

// ---- Histograms -------------------------------------------------------------------------------

constexpr std::string_view kStage[] = {"stage"};
constexpr double kWaitBuckets[] = {0.5, 1, 2.5};
constexpr Family kWait{"pxedust_test_wait_seconds", "Seconds waited, by stage.", Type::Histogram, kStage,
                       kWaitBuckets};
constexpr Family kSize{"pxedust_test_size_bytes", "Sizes seen.", Type::Histogram, {}, kWaitBuckets};

static_assert(detail::endsInUnit("pxedust_boot_stage_seconds"));
static_assert(detail::endsInUnit("pxedust_tftp_file_bytes"));
static_assert(!detail::endsInUnit("pxedust_boot_stage_duration"));
static_assert(!detail::endsInUnit("pxedust_boot_seconds_total"));

TEST(Writer, HistogramBucketsAreCumulativeThenSumAndCount) {
  Writer w;
  // Per bucket: 1 at or below 0.5, 2 in (0.5, 1], none in (1, 2.5], 3 above 2.5.
  const std::uint64_t counts[] = {1, 2, 0, 3};
  w.histogram(kWait, {"root_disk"}, counts, 40.25);
  EXPECT_EQ(w.renderPrometheus(),
            "# HELP pxedust_test_wait_seconds Seconds waited, by stage.\n"
            "# TYPE pxedust_test_wait_seconds histogram\n"
            "pxedust_test_wait_seconds_bucket{stage=\"root_disk\",le=\"0.5\"} 1\n"
            "pxedust_test_wait_seconds_bucket{stage=\"root_disk\",le=\"1\"} 3\n"
            "pxedust_test_wait_seconds_bucket{stage=\"root_disk\",le=\"2.5\"} 3\n"
            "pxedust_test_wait_seconds_bucket{stage=\"root_disk\",le=\"+Inf\"} 6\n"
            "pxedust_test_wait_seconds_sum{stage=\"root_disk\"} 40.25\n"
            "pxedust_test_wait_seconds_count{stage=\"root_disk\"} 6\n");
}

TEST(Writer, HistogramWithoutLabels) {
  Writer w;
  const std::uint64_t counts[] = {0, 0, 0, 0};
  w.histogram(kSize, {}, counts, 0.0);
  EXPECT_EQ(w.renderPrometheus(),
            "# HELP pxedust_test_size_bytes Sizes seen.\n"
            "# TYPE pxedust_test_size_bytes histogram\n"
            "pxedust_test_size_bytes_bucket{le=\"0.5\"} 0\n"
            "pxedust_test_size_bytes_bucket{le=\"1\"} 0\n"
            "pxedust_test_size_bytes_bucket{le=\"2.5\"} 0\n"
            "pxedust_test_size_bytes_bucket{le=\"+Inf\"} 0\n"
            "pxedust_test_size_bytes_sum 0\n"
            "pxedust_test_size_bytes_count 0\n");
}

TEST(Writer, HistogramLabelSetsSortedUnderOneHelpAndType) {
  Writer w;
  w.declare(kWait);
  EXPECT_EQ(w.renderPrometheus(),
            "# HELP pxedust_test_wait_seconds Seconds waited, by stage.\n"
            "# TYPE pxedust_test_wait_seconds histogram\n");
  const std::uint64_t one[] = {0, 1, 0, 0};
  const std::uint64_t two[] = {0, 0, 0, 2};
  w.histogram(kWait, {"failed"}, two, 1e3);
  w.histogram(kWait, {"address"}, one, 0.75);
  EXPECT_EQ(w.renderPrometheus(),
            "# HELP pxedust_test_wait_seconds Seconds waited, by stage.\n"
            "# TYPE pxedust_test_wait_seconds histogram\n"
            "pxedust_test_wait_seconds_bucket{stage=\"address\",le=\"0.5\"} 0\n"
            "pxedust_test_wait_seconds_bucket{stage=\"address\",le=\"1\"} 1\n"
            "pxedust_test_wait_seconds_bucket{stage=\"address\",le=\"2.5\"} 1\n"
            "pxedust_test_wait_seconds_bucket{stage=\"address\",le=\"+Inf\"} 1\n"
            "pxedust_test_wait_seconds_sum{stage=\"address\"} 0.75\n"
            "pxedust_test_wait_seconds_count{stage=\"address\"} 1\n"
            "pxedust_test_wait_seconds_bucket{stage=\"failed\",le=\"0.5\"} 0\n"
            "pxedust_test_wait_seconds_bucket{stage=\"failed\",le=\"1\"} 0\n"
            "pxedust_test_wait_seconds_bucket{stage=\"failed\",le=\"2.5\"} 0\n"
            "pxedust_test_wait_seconds_bucket{stage=\"failed\",le=\"+Inf\"} 2\n"
            "pxedust_test_wait_seconds_sum{stage=\"failed\"} 1000\n"
            "pxedust_test_wait_seconds_count{stage=\"failed\"} 2\n");
}

// `le` is a label: Prometheus' Go client spells bounds with strconv.FormatFloat(v, 'g', -1, 64).
TEST(Writer, BucketBoundsSpelledAsPrometheusDoes) {
  static constexpr double kBounds[] = {-2.5, 0, 1e-05, 0.0001, 0.25, 1, 2.5, 10, 600, 100000, 1e6, 1234567, 1e21};
  static constexpr Family kOdd{"pxedust_test_odd_seconds", "Odd bounds.", Type::Histogram, {}, kBounds};
  Writer w;
  std::uint64_t counts[std::size(kBounds) + 1] = {};
  w.histogram(kOdd, {}, counts, 0.0);
  const std::string text = w.renderPrometheus();
  std::string les;
  for (std::size_t at = text.find("le=\""); at != std::string::npos; at = text.find("le=\"", at + 1)) {
    const std::size_t start = at + 4;
    les += text.substr(start, text.find('"', start) - start);
    les += ' ';
  }
  EXPECT_EQ(les, "-2.5 0 1e-05 0.0001 0.25 1 2.5 10 600 100000 1e+06 1.234567e+06 1e+21 +Inf ") << text;
}

TEST(Histogram, CountsEachValueInTheFirstBucketAtOrAboveIt) {
  Histogram h(kWait);
  EXPECT_EQ(h.bounds().size(), 3U);
  EXPECT_EQ(std::vector<std::uint64_t>(h.counts().begin(), h.counts().end()), (std::vector<std::uint64_t>{0, 0, 0, 0}));
  h.observe(0.5);   // le="0.5": a bound holds the value equal to it
  h.observe(0.25);  // le="0.5"
  h.observe(0.75);  // le="1"
  h.observe(2.5);   // le="2.5"
  h.observe(3);     // past the last bound: only +Inf
  h.observe(std::numeric_limits<double>::quiet_NaN());  // not counted
  EXPECT_EQ(std::vector<std::uint64_t>(h.counts().begin(), h.counts().end()), (std::vector<std::uint64_t>{2, 1, 1, 1}));
  EXPECT_EQ(h.count(), 5U);
  EXPECT_DOUBLE_EQ(h.sum(), 7.0);
  Writer w;
  w.histogram(kWait, {"boot_files"}, h);
  EXPECT_EQ(w.renderPrometheus(),
            "# HELP pxedust_test_wait_seconds Seconds waited, by stage.\n"
            "# TYPE pxedust_test_wait_seconds histogram\n"
            "pxedust_test_wait_seconds_bucket{stage=\"boot_files\",le=\"0.5\"} 2\n"
            "pxedust_test_wait_seconds_bucket{stage=\"boot_files\",le=\"1\"} 3\n"
            "pxedust_test_wait_seconds_bucket{stage=\"boot_files\",le=\"2.5\"} 4\n"
            "pxedust_test_wait_seconds_bucket{stage=\"boot_files\",le=\"+Inf\"} 5\n"
            "pxedust_test_wait_seconds_sum{stage=\"boot_files\"} 7\n"
            "pxedust_test_wait_seconds_count{stage=\"boot_files\"} 5\n");
}

TEST(Value, Numbers) {
  EXPECT_EQ(Value(0).text(), "0");
  EXPECT_EQ(Value(std::numeric_limits<std::uint64_t>::max()).text(), "18446744073709551615");
  EXPECT_EQ(Value(std::uint64_t{9007199254740993}).text(), "9007199254740993");  // 2^53 + 1, exactly
  EXPECT_EQ(Value(std::numeric_limits<std::int64_t>::min()).text(), "-9223372036854775808");
  EXPECT_EQ(Value(-7).text(), "-7");
  EXPECT_EQ(Value(std::size_t{12}).text(), "12");
  EXPECT_EQ(Value(true).text(), "1");
  EXPECT_EQ(Value(0.25).text(), "0.25");
  EXPECT_EQ(Value(3.0).text(), "3");
  EXPECT_EQ(Value(-1.5).text(), "-1.5");
  EXPECT_EQ(Value(1e21).text(), "1e+21");
  EXPECT_EQ(Value(std::numeric_limits<double>::quiet_NaN()).text(), "NaN");
  EXPECT_EQ(Value(std::numeric_limits<double>::infinity()).text(), "+Inf");
  EXPECT_EQ(Value(-std::numeric_limits<double>::infinity()).text(), "-Inf");
}

// Programming errors: debug builds stop at an assert, release builds keep the first and drop the rest.
constexpr Family kRequestsOtherHelp{"pxedust_test_requests_total", "Something else.", Type::Counter};
constexpr Family kActiveWithLabel{"pxedust_test_sessions_active", "Sessions open now.", Type::Gauge, kReason};
constexpr double kOtherBuckets[] = {1, 2};
constexpr Family kWaitOtherBuckets{"pxedust_test_wait_seconds", "Seconds waited, by stage.", Type::Histogram, kStage,
                                   kOtherBuckets};
constexpr Family kOtherWait{"pxedust_test_other_seconds", "Other buckets.", Type::Histogram, {}, kOtherBuckets};
constexpr std::uint64_t kThreeCounts[] = {1, 2, 3};  // one short for kWait's three bounds

#ifdef NDEBUG
TEST(Writer, ProgrammingErrorsKeepTheFirst) {
  Writer w;
  w.sample(kRequests, 1);
  w.sample(kRequestsOtherHelp, 2);  // conflicting declaration: dropped
  w.sample(kRequests, 3);           // the same labels (none) again: dropped
  w.sample(kDrops, {"a", "b"}, 4);  // one label value too many: dropped
  w.declare(kActiveWithLabel);
  w.declare(kActive);  // conflicting label names: dropped
  const std::uint64_t four[] = {1, 2, 3, 4};
  w.histogram(kWait, {"x"}, kThreeCounts, 1.0);  // one bucket count short: dropped
  w.sample(kWait, {"x"}, 1);              // a histogram written as a sample: dropped
  w.histogram(kActive, {}, four, 1.0);    // a gauge written as a histogram: dropped
  w.histogram(kSize, {}, Histogram(kWait));  // another family's histogram: same bounds, written
  EXPECT_EQ(w.renderPrometheus(),
            "# HELP pxedust_test_drops_total Requests dropped, by reason.\n"
            "# TYPE pxedust_test_drops_total counter\n"
            "# HELP pxedust_test_requests_total Requests received.\n"
            "# TYPE pxedust_test_requests_total counter\n"
            "pxedust_test_requests_total 1\n"
            "# HELP pxedust_test_sessions_active Sessions open now.\n"
            "# TYPE pxedust_test_sessions_active gauge\n"
            "# HELP pxedust_test_size_bytes Sizes seen.\n"
            "# TYPE pxedust_test_size_bytes histogram\n"
            "pxedust_test_size_bytes_bucket{le=\"0.5\"} 0\n"
            "pxedust_test_size_bytes_bucket{le=\"1\"} 0\n"
            "pxedust_test_size_bytes_bucket{le=\"2.5\"} 0\n"
            "pxedust_test_size_bytes_bucket{le=\"+Inf\"} 0\n"
            "pxedust_test_size_bytes_sum 0\n"
            "pxedust_test_size_bytes_count 0\n"
            "# HELP pxedust_test_wait_seconds Seconds waited, by stage.\n"
            "# TYPE pxedust_test_wait_seconds histogram\n");
}
#else
TEST(WriterDeathTest, ProgrammingErrorsAssert) {
  EXPECT_DEATH(
      {
        Writer w;
        w.declare(kRequests);
        w.declare(kRequestsOtherHelp);
      },
      "declared twice");
  EXPECT_DEATH(
      {
        Writer w;
        w.declare(kActiveWithLabel);
        w.declare(kActive);
      },
      "declared twice");
  EXPECT_DEATH(
      {
        Writer w;
        w.sample(kDrops, {"a", "b"}, 1);
      },
      "one label value for each label name");
  EXPECT_DEATH(
      {
        Writer w;
        w.sample(kDrops, {"a"}, 1);
        w.sample(kDrops, {"a"}, 2);
      },
      "same label values twice");
  EXPECT_DEATH(
      {
        Writer w;
        w.histogram(kWait, {"x"}, kThreeCounts, 1.0);
      },
      "one count for each bucket bound");
  EXPECT_DEATH(
      {
        Writer w;
        w.sample(kWait, {"x"}, 1);
      },
      "written with histogram");
  EXPECT_DEATH(
      {
        Writer w;
        const std::uint64_t one[] = {1};
        w.histogram(kActive, {}, one, 1.0);
      },
      "writes a histogram family");
  EXPECT_DEATH(
      {
        Writer w;
        w.declare(kWait);
        w.declare(kWaitOtherBuckets);
      },
      "declared twice");
  EXPECT_DEATH(
      {
        Writer w;
        w.histogram(kOtherWait, {}, Histogram(kWait));
      },
      "written to the family it was kept for");
}
#endif

struct TestCollector final : Collector {
  std::uint64_t requests = 0;
  void collect(Writer& out) const override { out.sample(kRequests, requests); }
};

TEST(Registry, PullsFromCollectorsWhenRendered) {
  Registry r;
  EXPECT_EQ(r.renderPrometheus(), "");
  TestCollector c;
  FunctionCollector gauge{[](Writer& w) {
    w.sample(kActive, 2);
    w.declare(kDrops);
  }};
  r.add(c);
  r.add(gauge);
  EXPECT_EQ(r.size(), 2U);
  c.requests = 7;  // read at render time, not when added
  EXPECT_EQ(r.renderPrometheus(),
            "# HELP pxedust_test_drops_total Requests dropped, by reason.\n"
            "# TYPE pxedust_test_drops_total counter\n"
            "# HELP pxedust_test_requests_total Requests received.\n"
            "# TYPE pxedust_test_requests_total counter\n"
            "pxedust_test_requests_total 7\n"
            "# HELP pxedust_test_sessions_active Sessions open now.\n"
            "# TYPE pxedust_test_sessions_active gauge\n"
            "pxedust_test_sessions_active 2\n");
  r.remove(gauge);
  r.remove(gauge);  // not there any more: nothing happens
  EXPECT_EQ(r.size(), 1U);
  EXPECT_EQ(r.renderPrometheus(),
            "# HELP pxedust_test_requests_total Requests received.\n"
            "# TYPE pxedust_test_requests_total counter\n"
            "pxedust_test_requests_total 7\n");
}

// The X-macro convention of counters.hpp, on a struct of its own.
#define TEST_COUNTERS(X)                                           \
  X(received, "pxedust_test_received_total", "Packets received.") \
  X(sentBytes, "pxedust_test_sent_bytes_total", "Bytes sent.")
struct TestStats {
  TEST_COUNTERS(PXEDUST_COUNTER_MEMBER)
  std::array<std::uint64_t, 2> drops{};
};
#define ROW(member, name, help) PXEDUST_COUNTER_ROW(TestStats, member, name, help)
constexpr CounterRow<TestStats> kTestCounters[] = {TEST_COUNTERS(ROW)};
#undef ROW
constexpr std::array<std::string_view, 2> kTestDropNames = {"busy", "malformed"};

TEST(Counters, OneListGivesMembersAndFamilies) {
  TestStats s;
  s.received = 5;
  s.sentBytes = 1024;
  s.drops = {1, 2};
  Writer w;
  writeCounters(s, kTestCounters, w);
  writeIndexed(kDrops, kTestDropNames, s.drops, w);
  EXPECT_EQ(w.renderPrometheus(),
            "# HELP pxedust_test_drops_total Requests dropped, by reason.\n"
            "# TYPE pxedust_test_drops_total counter\n"
            "pxedust_test_drops_total{reason=\"busy\"} 1\n"
            "pxedust_test_drops_total{reason=\"malformed\"} 2\n"
            "# HELP pxedust_test_received_total Packets received.\n"
            "# TYPE pxedust_test_received_total counter\n"
            "pxedust_test_received_total 5\n"
            "# HELP pxedust_test_sent_bytes_total Bytes sent.\n"
            "# TYPE pxedust_test_sent_bytes_total counter\n"
            "pxedust_test_sent_bytes_total 1024\n");
}

// Every feature at once, through Prometheus' own parser and linter.
TEST(Promtool, AcceptsEverythingTheWriterWrites) {
  if (!test::promtoolAvailable()) GTEST_SKIP() << test::kPromtool << " is missing (package prometheus)";
  static constexpr Family kTemperature{"pxedust_test_temperature_celsius", "A gauge with odd values.", Type::Gauge,
                                       kReason};
  static constexpr Family kHelp{"pxedust_test_escapes_total", "Help with a \\ backslash\nand a newline.",
                                Type::Counter, kReason};
  Writer w;
  w.sample(kRequests, std::numeric_limits<std::uint64_t>::max());
  w.sample(kDrops, {"busy"}, 1);
  w.sample(kActive, 0);
  w.sample(kDrops, {"quote\" backslash\\ newline\n end"}, 2);
  w.sample(kDrops, {"bad utf-8 \xFF\xC0"}, 3);
  w.sample(kDrops, {""}, 4);  // an empty label value
  w.declare(kLogins);         // no samples
  w.sample(kTemperature, {"nan"}, std::numeric_limits<double>::quiet_NaN());
  w.sample(kTemperature, {"inf"}, std::numeric_limits<double>::infinity());
  w.sample(kTemperature, {"minus_inf"}, -std::numeric_limits<double>::infinity());
  w.sample(kTemperature, {"small"}, 1.5e-7);
  w.sample(kTemperature, {"large"}, 1e21);
  w.sample(kTemperature, {"negative"}, -40);
  w.sample(kHelp, {"x"}, 0);
  static constexpr double kOddBounds[] = {-1, 0, 1e-05, 0.25, 1, 600, 1e6};
  static constexpr Family kOdd{"pxedust_test_odd_bytes", "A histogram without labels, odd bounds.", Type::Histogram,
                               {}, kOddBounds};
  Histogram odd(kOdd);
  for (double v : {-3.0, 0.0, 0.1, 1e7}) odd.observe(v);
  w.histogram(kOdd, {}, odd);
  Histogram wait(kWait);
  for (double v : {0.2, 0.7, 1.0, 30.0}) wait.observe(v);
  w.histogram(kWait, {"root_disk"}, wait);
  w.histogram(kWait, {"quote\" and \xFF"}, Histogram(kWait));  // empty, an escaped label value
  static constexpr Family kNone{"pxedust_test_none_seconds", "A histogram without samples.", Type::Histogram,
                                kStage, kWaitBuckets};
  w.declare(kNone);
  const std::string text = w.renderPrometheus();
  const auto result = test::promtoolCheck(text);
  EXPECT_EQ(result.status, 0) << result.output << "\n--- input:\n" << text;
  EXPECT_EQ(result.output, "") << text;
}

}  // namespace
}  // namespace pxedust::metrics
