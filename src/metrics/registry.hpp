// Metrics: each family declared once, samples pulled from their owners at scrape time, Prometheus text out.
//
// A Family is a compile-time constant (name, help, type, label names) and is checked when it is
// compiled: snake_case names, counters and only counters ending in _total, a help text, unique label
// names. A typo fails the build, not a scrape. Services keep plain counters of their own (an increment
// in place on the hot path, no lookup, no registration) and write them into a Writer when asked,
// through a Collector or a collect function. Nothing is kept between scrapes.
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
// the scrape.
//
// Programming errors, not input: one name declared twice with another help, type or label names; a
// sample with the wrong number of label values; the same label values twice in one family. Debug
// builds assert; release builds keep the first and drop the rest.
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
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

enum class Type : std::uint8_t { Counter, Gauge };

namespace detail {
// [a-z][a-z0-9_]*: Prometheus allows more (capitals, ':'), promtool's lint and our convention do not.
constexpr bool isSnakeCase(std::string_view s) {
  if (s.empty() || s[0] < 'a' || s[0] > 'z') return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}
}  // namespace detail

// A metric family. Declare it once, as a constexpr next to the code that writes it:
//   constexpr std::string_view kReason[] = {"reason"};
//   constexpr metrics::Family kDrops{"pxedust_tftp_drops_total", "Requests dropped, by reason.",
//                                    metrics::Type::Counter, kReason};
// Its strings must outlive every Writer it is written to; a constant's always do.
struct Family {
  // A throw here is a compile error naming the broken rule.
  consteval Family(std::string_view n, std::string_view h, Type t, std::span<const std::string_view> l = {})
      : name(n), help(h), type(t), labels(l) {
    if (!detail::isSnakeCase(name)) throw "metric names are snake_case: [a-z][a-z0-9_]*";
    if ((type == Type::Counter) != name.ends_with("_total")) throw "counters, and only counters, end in _total";
    if (help.empty()) throw "every family has a help text";
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (!detail::isSnakeCase(labels[i])) throw "label names are snake_case: [a-z][a-z0-9_]*";
      for (std::size_t j = 0; j < i; ++j)
        if (labels[j] == labels[i]) throw "label names are unique within a family";
    }
  }

  std::string_view name;
  std::string_view help;
  Type type;
  std::span<const std::string_view> labels;
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

// Collects the samples of one scrape, then renders them.
class Writer {
 public:
  // The family is rendered (HELP and TYPE) even if no sample follows. sample() declares it too.
  void declare(const Family& family);
  // One sample. `labelValues` are in the order of family.labels, one for each.
  void sample(const Family& family, std::initializer_list<std::string_view> labelValues, Value value);
  void sample(const Family& family, Value value) { sample(family, {}, value); }

  [[nodiscard]] std::string renderPrometheus() const;

 private:
  struct Entry {
    Family family;
    std::map<std::string, Value> samples;  // by rendered label set, `{a="x",b="y"}` (or "")
  };
  Entry* entryFor(const Family& family);  // null: `family` conflicts with an earlier declaration

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
