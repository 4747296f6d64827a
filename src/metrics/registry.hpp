// Metrics: each family declared once, samples pulled from their owners at scrape time, Prometheus text out.
//
// A Family is a compile-time constant (name, help, type, label names, and a histogram's bucket
// bounds) and is checked when it is compiled: snake_case names, counters and only counters ending in
// _total, a help text, unique label names, the suffixes and label names a histogram's series use
// reserved for them, a histogram's name ending in its unit, its bounds increasing. A typo fails the
// build, not a scrape. Services keep plain counters of their own (an increment in place on the hot
// path, no lookup, no registration), and a Histogram for each distribution they measure, and write
// them into a Writer when asked, through a Collector or a collect function. The Writer keeps nothing
// between scrapes.
//
// The Registry holds collectors without owning them: an owner adds itself and removes itself before
// it goes away. There is no global registry and no lock: the registry, the collectors and the counters
// they read all live on the event loop thread, and a scrape runs there too. The daemon makes one
// Registry and hands it to whoever serves it.
//
// Output is the text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/): families sorted by name, each with
// HELP and TYPE even without samples (a dashboard sees the family before its first event); a family's
// samples together however they were written, sorted by their label values; integers written exactly
// (a uint64 counter past 2^53 too), NaN and +Inf/-Inf as Prometheus spells them; label values escaped
// and made valid UTF-8 (one bad byte would fail the whole scrape). No timestamps: Prometheus stamps
// the scrape. A histogram's label set is written as the format has it: name_bucket{...,le="<bound>"}
// for each bound with the observations at or below it (cumulative), le="+Inf" with all of them,
// then name_sum and name_count; its bounds spelled as Prometheus' Go client spells them (0.5, 1,
// 2.5, 1e+06), since `le` is a label and "1" and "1.0" would be two series.
//
// Programming errors, not input: one name declared twice with another help, type, label names or
// bucket bounds; a sample with the wrong number of label values, or a histogram with the wrong number
// of bucket counts; sample() for a histogram family or histogram() for another; the same label values
// twice in one family. Debug builds assert; release builds keep the first and drop the rest.
#pragma once

#include <concepts>
#include <cstdint>
#include <limits>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace pxedust::metrics {

// The Content-Type of renderPrometheus()'s output.
constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class Type : std::uint8_t { Counter, Gauge, Histogram };

namespace detail {
// [a-z][a-z0-9_]*: Prometheus allows more (capitals, ':'), promtool's lint and our convention do not.
constexpr bool isSnakeCase(std::string_view s) {
  if (s.empty() || s[0] < 'a' || s[0] > 'z') return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

// The units a histogram's name may end in: base units, as Prometheus names them
// (https://prometheus.io/docs/practices/naming/#base-units). A histogram of another unit adds a row.
inline constexpr std::string_view kHistogramUnits[] = {"_seconds", "_bytes"};

constexpr bool endsInUnit(std::string_view name) {
  for (std::string_view unit : kHistogramUnits)
    if (name.ends_with(unit)) return true;
  return false;
}
}  // namespace detail

// A metric family. Declare it once, as a constexpr next to the code that writes it:
//   constexpr std::string_view kReason[] = {"reason"};
//   constexpr metrics::Family kDrops{"pxedust_tftp_drops_total", "Requests dropped, by reason.",
//                                    metrics::Type::Counter, kReason};
// A histogram has its bucket upper bounds too (+Inf is implied, not listed):
//   constexpr double kBuckets[] = {0.5, 1, 2, 5, 10};
//   constexpr metrics::Family kWait{"pxedust_test_wait_seconds", "Seconds waited.", metrics::Type::Histogram,
//                                   {}, kBuckets};
// Its strings and bounds must outlive every Writer it is written to; a constant's always do.
struct Family {
  // A throw here is a compile error naming the broken rule.
  consteval Family(std::string_view n, std::string_view h, Type t, std::span<const std::string_view> l = {},
                   std::span<const double> b = {})
      : name(n), help(h), type(t), labels(l), buckets(b) {
    if (!detail::isSnakeCase(name)) throw "metric names are snake_case: [a-z][a-z0-9_]*";
    if ((type == Type::Counter) != name.ends_with("_total")) throw "counters, and only counters, end in _total";
    if (name.ends_with("_bucket") || name.ends_with("_sum") || name.ends_with("_count"))
      throw "no family name ends in _bucket, _sum or _count: a histogram's series are named so";
    if (help.empty()) throw "every family has a help text";
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (!detail::isSnakeCase(labels[i])) throw "label names are snake_case: [a-z][a-z0-9_]*";
      if (labels[i] == "le" || labels[i] == "quantile")
        throw "le and quantile are not label names: histogram buckets and summary quantiles use them";
      for (std::size_t j = 0; j < i; ++j)
        if (labels[j] == labels[i]) throw "label names are unique within a family";
    }
    if (type != Type::Histogram) {
      if (!buckets.empty()) throw "only a histogram has bucket bounds";
      return;
    }
    if (!detail::endsInUnit(name)) throw "a histogram's name ends in its base unit (detail::kHistogramUnits)";
    if (buckets.empty()) throw "a histogram has at least one bucket bound besides +Inf";
    for (std::size_t i = 0; i < buckets.size(); ++i) {
      if (!(buckets[i] < std::numeric_limits<double>::infinity()) ||
          !(buckets[i] > -std::numeric_limits<double>::infinity()))
        throw "bucket bounds are finite numbers (+Inf is implied)";
      if (i > 0 && !(buckets[i - 1] < buckets[i])) throw "bucket bounds increase strictly";
    }
  }

  std::string_view name;
  std::string_view help;
  Type type;
  std::span<const std::string_view> labels;
  std::span<const double> buckets;  // a histogram's upper bounds, increasing; empty for the others
};

// A sample's value: integers stay integers (written exactly), anything else is a double.
class Value {
 public:
  template <std::integral T>
  constexpr Value(T v) {  // NOLINT: implicit by design, w.sample(f, 3)
    if constexpr (std::is_signed_v<T>) {
      if (v < 0) {
        v_ = static_cast<std::int64_t>(v);
        return;
      }
    }
    v_ = static_cast<std::uint64_t>(v);
  }
  constexpr Value(double v) : v_(v) {}  // NOLINT: implicit by design

  // As the exposition format spells it: 42, -7, 0.25, 1e+21, NaN, +Inf, -Inf.
  [[nodiscard]] std::string text() const;

 private:
  std::variant<std::uint64_t, std::int64_t, double> v_;
};

// The observations of one histogram's label set, for its owner to keep between scrapes: a count per
// bucket of the family's bounds and the sum. observe() is a search of the bounds and two additions.
class Histogram {
 public:
  // `family` is a histogram's; its bounds outlive this (a constant's do).
  explicit Histogram(const Family& family);

  // Counted in the first bucket whose bound is at or above `value` (Prometheus' `le`), or in the
  // one past the last bound. NaN is not a measurement and is not counted.
  void observe(double value);

  [[nodiscard]] std::span<const double> bounds() const { return bounds_; }
  // Per bucket, not cumulative: bounds().size() + 1 of them, the last past the last bound.
  [[nodiscard]] std::span<const std::uint64_t> counts() const { return counts_; }
  [[nodiscard]] double sum() const { return sum_; }
  [[nodiscard]] std::uint64_t count() const { return count_; }

 private:
  std::span<const double> bounds_;
  std::vector<std::uint64_t> counts_;
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

// Collects the samples of one scrape, then renders them.
class Writer {
 public:
  // The family is rendered (HELP and TYPE) even if no sample follows. sample() declares it too.
  void declare(const Family& family);
  // One sample. `labelValues` are in the order of family.labels, one for each.
  void sample(const Family& family, std::initializer_list<std::string_view> labelValues, Value value);
  void sample(const Family& family, Value value) { sample(family, {}, value); }
  // One histogram's label set (a family of Type::Histogram; sample() writes the other types).
  // `counts` are per bucket, not cumulative: counts[i] is the observations above the bound before
  // family.buckets[i] and at or below it, and one more count at the end is those above the last
  // bound, so there are family.buckets.size() + 1 of them and the count written is their sum.
  // `sum` is the sum of the values observed. The writer adds them up into the cumulative buckets.
  void histogram(const Family& family, std::initializer_list<std::string_view> labelValues,
                 std::span<const std::uint64_t> counts, double sum);
  // The same from a Histogram kept for `family` (its bounds are the family's).
  void histogram(const Family& family, std::initializer_list<std::string_view> labelValues, const Histogram& h);

  [[nodiscard]] std::string renderPrometheus() const;

 private:
  struct HistogramSample {
    std::vector<std::uint64_t> counts;  // per bucket, as histogram() takes them
    double sum = 0;
  };
  struct Entry {
    Family family;
    // By rendered label set, `{a="x",b="y"}` (or ""): the samples of a counter or gauge, or a
    // histogram's label sets.
    std::map<std::string, Value> samples;
    std::map<std::string, HistogramSample> histograms;
  };
  Entry* entryFor(const Family& family);  // null: `family` conflicts with an earlier declaration
  // The rendered label set, or nothing when the values do not fit the family's names.
  static std::optional<std::string> labelKey(const Family& family, std::initializer_list<std::string_view> values);

  std::map<std::string_view, Entry> families_;  // by name: the render order
};

// Something that has metrics: writes its current samples when a scrape asks. Called on the loop thread.
class Collector {
 public:
  virtual ~Collector() = default;
  virtual void collect(Writer& out) const = 0;
};

// A collector made of a function, for owners that would rather not derive from Collector:
//   metrics::FunctionCollector c{[this](metrics::Writer& w) { tftp::collectMetrics(stats(), active(), w); }};
class FunctionCollector final : public Collector {
 public:
  explicit FunctionCollector(std::function<void(Writer&)> f) : f_(std::move(f)) {}
  void collect(Writer& out) const override { f_(out); }

 private:
  std::function<void(Writer&)> f_;
};

// The collectors of one daemon. Loop thread only.
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;  // a copy would hold collectors their owners do not know of
  Registry& operator=(const Registry&) = delete;

  // Not owned: the owner removes it before it is destroyed. Adding one twice is a programming error.
  void add(const Collector& collector);
  // Removing one that is not there does nothing (a stop path may run twice).
  void remove(const Collector& collector);
  [[nodiscard]] std::size_t size() const { return collectors_.size(); }

  // Asks every collector, in the order added, and renders what they wrote.
  [[nodiscard]] std::string renderPrometheus() const;

 private:
  std::vector<const Collector*> collectors_;
};

}  // namespace pxedust::metrics
