// The Prometheus text renderer behind metrics::Writer, and the Registry that feeds it.
//
// Escaping, text format 0.0.4: in HELP `\` -> `\\` and newline -> `\n`; in label values `"` -> `\"`
// as well. The parser refuses any other escape and any label value that is not UTF-8, so bytes that
// are not well-formed UTF-8 (Unicode 15 table 3-7) become U+FFFD, one for each.
//
// A histogram's `le` is spelled as Go's strconv.FormatFloat(v, 'g', -1, 64) does, which is what
// Prometheus' client_golang writes (expfmt writeFloat): the shortest digits that read back as the
// same double, in exponent form (1e+06, 1e-05) when the exponent is below -4 or 6 and above.
#include "metrics/registry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <type_traits>

namespace pxedust::metrics {
namespace {

// The length of the well-formed UTF-8 sequence `s` starts with, or 0.
std::size_t utf8Length(std::string_view s) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = byte(0);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range, narrower after E0, ED, F0, F4
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // no overlong forms
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // no overlong forms
    if (c == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < n || byte(1) < lo || byte(1) > hi) return 0;
  for (std::size_t i = 2; i < n; ++i)
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  return n;
}

enum class Context : std::uint8_t { Help, LabelValue };

void appendEscaped(std::string& out, std::string_view s, Context context) {
  while (!s.empty()) {
    const char c = s[0];
    std::size_t n = 1;
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && context == Context::LabelValue) {
      out += "\\\"";
    } else if (const std::size_t len = utf8Length(s); len == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER, for this one byte
    } else {
      n = len;
      out.append(s.substr(0, n));
    }
    s.remove_prefix(n);
  }
}

// A bucket bound as client_golang writes it: strconv.FormatFloat(v, 'g', -1, 64) (the Family
// check keeps the bounds finite).
std::string boundText(double v) {
  // to_chars gives the shortest round-trip digits, as Go does: "[-]d[.ddd]e(+|-)XX".
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  if (ec != std::errc{}) return fmt::format("{}", v);  // cannot happen: 32 bytes hold any double
  std::string_view s(buf, static_cast<std::size_t>(end - buf));
  std::string out;
  if (s.starts_with('-')) {
    out += '-';
    s.remove_prefix(1);
  }
  const std::size_t e = s.find('e');
  std::string digits;
  for (char c : s.substr(0, e))
    if (c != '.') digits += c;
  std::string_view expText = s.substr(e + 1);
  const bool negativeExp = expText.starts_with('-');
  expText.remove_prefix(1);  // the sign
  int exp = 0;
  std::from_chars(expText.data(), expText.data() + expText.size(), exp);
  if (negativeExp) exp = -exp;

  const int nd = static_cast<int>(digits.size());
  if (exp < -4 || exp >= 6) {  // Go: %e form, the exponent at least two digits
    out += digits[0];
    if (nd > 1) {
      out += '.';
      out.append(digits, 1);
    }
    out += fmt::format("e{}{:02}", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    return out;
  }
  const int point = exp + 1;  // digits before the decimal point
  if (point <= 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-point), '0');
    out += digits;
  } else if (point >= nd) {
    out += digits;
    out.append(static_cast<std::size_t>(point - nd), '0');
  } else {
    out.append(digits, 0, static_cast<std::size_t>(point));
    out += '.';
    out.append(digits, static_cast<std::size_t>(point));
  }
  return out;
}

// `key` (`{a="x"}` or "") with le="<bound>" added last.
std::string withLe(const std::string& key, std::string_view bound) {
  std::string out = key.empty() ? std::string("{") : key.substr(0, key.size() - 1) + ',';
  out += "le=\"";
  out += bound;
  out += "\"}";
  return out;
}

std::string_view typeName(Type type) {
  switch (type) {
    case Type::Counter: return "counter";
    case Type::Gauge: return "gauge";
    case Type::Histogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

Histogram::Histogram(const Family& family) : bounds_(family.buckets), counts_(family.buckets.size() + 1, 0) {
  assert(family.type == Type::Histogram && "a Histogram is kept for a histogram family");
}

void Histogram::observe(double value) {
  if (std::isnan(value)) return;
  // The first bound not below the value: the bucket whose `le` holds it, or the one past the end.
  const auto bucket = std::ranges::lower_bound(bounds_, value) - bounds_.begin();
  ++counts_[static_cast<std::size_t>(bucket)];
  sum_ += value;
  ++count_;
}

std::string Value::text() const {
  return std::visit(
      [](auto v) -> std::string {
        if constexpr (std::is_same_v<decltype(v), double>) {
          if (std::isnan(v)) return "NaN";
          if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
        }
        return fmt::format("{}", v);  // integers exactly; doubles shortest round-trip (Go's ParseFloat reads them)
      },
      v_);
}

Writer::Entry* Writer::entryFor(const Family& family) {
  auto [it, added] = families_.try_emplace(family.name, Entry{family, {}, {}});
  if (added) return &it->second;
  const Family& first = it->second.family;
  const bool same = first.help == family.help && first.type == family.type &&
                    std::ranges::equal(first.labels, family.labels) && std::ranges::equal(first.buckets, family.buckets);
  assert(same && "one metric family declared twice with another help, type, label names or buckets");
  return same ? &it->second : nullptr;
}

std::optional<std::string> Writer::labelKey(const Family& family, std::initializer_list<std::string_view> values) {
  assert(values.size() == family.labels.size() && "one label value for each label name");
  if (values.size() != family.labels.size()) return std::nullopt;
  std::string key;
  if (values.size() > 0) {
    key += '{';
    const std::string_view* v = values.begin();
    for (std::size_t i = 0; i < family.labels.size(); ++i, ++v) {
      if (i > 0) key += ',';
      key += family.labels[i];
      key += "=\"";
      appendEscaped(key, *v, Context::LabelValue);
      key += '"';
    }
    key += '}';
  }
  return key;
}

void Writer::declare(const Family& family) { entryFor(family); }

void Writer::sample(const Family& family, std::initializer_list<std::string_view> labelValues, Value value) {
  Entry* entry = entryFor(family);
  if (entry == nullptr) return;
  assert(family.type != Type::Histogram && "a histogram family is written with histogram()");
  if (family.type == Type::Histogram) return;
  auto key = labelKey(family, labelValues);
  if (!key) return;
  [[maybe_unused]] const bool added = entry->samples.try_emplace(std::move(*key), value).second;
  assert(added && "the same label values twice in one metric family");
}

void Writer::histogram(const Family& family, std::initializer_list<std::string_view> labelValues,
                       std::span<const std::uint64_t> counts, double sum) {
  Entry* entry = entryFor(family);
  if (entry == nullptr) return;
  assert(family.type == Type::Histogram && "histogram() writes a histogram family");
  if (family.type != Type::Histogram) return;
  assert(counts.size() == family.buckets.size() + 1 && "one count for each bucket bound, and one past the last");
  if (counts.size() != family.buckets.size() + 1) return;
  auto key = labelKey(family, labelValues);
  if (!key) return;
  [[maybe_unused]] const bool added =
      entry->histograms.try_emplace(std::move(*key), HistogramSample{{counts.begin(), counts.end()}, sum}).second;
  assert(added && "the same label values twice in one metric family");
}

void Writer::histogram(const Family& family, std::initializer_list<std::string_view> labelValues,
                       const Histogram& h) {
  assert(std::ranges::equal(h.bounds(), family.buckets) && "a Histogram written to the family it was kept for");
  if (!std::ranges::equal(h.bounds(), family.buckets)) return;
  histogram(family, labelValues, h.counts(), h.sum());
}

std::string Writer::renderPrometheus() const {
  std::string out;
  for (const auto& [name, entry] : families_) {
    out += "# HELP ";
    out += name;
    out += ' ';
    appendEscaped(out, entry.family.help, Context::Help);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += typeName(entry.family.type);
    out += '\n';
    for (const auto& [labels, value] : entry.samples) {
      out += name;
      out += labels;
      out += ' ';
      out += value.text();
      out += '\n';
    }
    if (entry.histograms.empty()) continue;
    std::vector<std::string> bounds;
    bounds.reserve(entry.family.buckets.size() + 1);
    for (double b : entry.family.buckets) bounds.push_back(boundText(b));
    bounds.emplace_back("+Inf");
    for (const auto& [labels, h] : entry.histograms) {
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < h.counts.size(); ++i) {
        cumulative += h.counts[i];
        out += name;
        out += "_bucket";
        out += withLe(labels, bounds[i]);
        out += ' ';
        out += Value(cumulative).text();
        out += '\n';
      }
      out += name;
      out += "_sum";
      out += labels;
      out += ' ';
      out += Value(h.sum).text();
      out += '\n';
      out += name;
      out += "_count";
      out += labels;
      out += ' ';
      out += Value(cumulative).text();  // the +Inf bucket's
      out += '\n';
    }
  }
  return out;
}

void Registry::add(const Collector& collector) {
  const bool present = std::ranges::find(collectors_, &collector) != collectors_.end();
  assert(!present && "a metrics collector added twice");
  if (!present) collectors_.push_back(&collector);
}

void Registry::remove(const Collector& collector) { std::erase(collectors_, &collector); }

std::string Registry::renderPrometheus() const {
  Writer writer;
  for (const Collector* c : collectors_) c->collect(writer);
  return writer.renderPrometheus();
}

}  // namespace pxedust::metrics
