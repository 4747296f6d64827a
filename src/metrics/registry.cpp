// The Prometheus text renderer behind metrics::Writer, and the Registry that feeds it.
//
// Escaping, text format 0.0.4: in HELP `\` -> `\\` and newline -> `\n`; in label values `"` -> `\"`
// as well. The parser refuses any other escape and any label value that is not UTF-8, so bytes that
// are not well-formed UTF-8 (Unicode 15 table 3-7) become U+FFFD, one for each.
#include "metrics/registry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
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

}  // namespace

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
  auto [it, added] = families_.try_emplace(family.name, Entry{family, {}});
  if (added) return &it->second;
  const Family& first = it->second.family;
  const bool same = first.help == family.help && first.type == family.type &&
                    std::ranges::equal(first.labels, family.labels);
  assert(same && "one metric family declared twice with another help, type or label names");
  return same ? &it->second : nullptr;
}

void Writer::declare(const Family& family) { entryFor(family); }

void Writer::sample(const Family& family, std::initializer_list<std::string_view> labelValues, Value value) {
  Entry* entry = entryFor(family);
  if (entry == nullptr) return;
  assert(labelValues.size() == family.labels.size() && "one label value for each label name");
  if (labelValues.size() != family.labels.size()) return;
  std::string key;
  if (labelValues.size() > 0) {
    key += '{';
    const std::string_view* v = labelValues.begin();
    for (std::size_t i = 0; i < family.labels.size(); ++i, ++v) {
      if (i > 0) key += ',';
      key += family.labels[i];
      key += "=\"";
      appendEscaped(key, *v, Context::LabelValue);
      key += '"';
    }
    key += '}';
  }
  [[maybe_unused]] const bool added = entry->samples.try_emplace(std::move(key), value).second;
  assert(added && "the same label values twice in one metric family");
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
    out += entry.family.type == Type::Counter ? " counter\n" : " gauge\n";
    for (const auto& [labels, value] : entry.samples) {
      out += name;
      out += labels;
      out += ' ';
      out += value.text();
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
