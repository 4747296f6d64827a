#include "config/reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>
#include <charconv>
#include <cmath>

namespace pxedust::config {

std::string Errors::joined() const {
  auto sorted = messages;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Message& a, const Message& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  std::string all;
  for (const auto& m : sorted) all += (all.empty() ? "" : "\n") + m.text;
  return all;
}

const toml::node* Table::get(std::string_view key) {
  used_.insert(std::string(key));
  return table_.get(key);
}

void Table::fail(const toml::node* at, std::string_view key, std::string_view what) const {
  const auto& src = at != nullptr ? at->source() : table_.source();
  std::string where = src.begin.line ? fmt::format("{}:{}:{}", file_, src.begin.line, src.begin.column) : file_;
  errors_.messages.push_back({src.begin.line, src.begin.column, fmt::format("{}: {}: {}", where, qualified(key), what)});
  throw TableFailed{};
}

std::string Table::qualified(std::string_view key) const {
  return name_.empty() ? std::string(key) : fmt::format("{}.{}", name_, key);
}

std::optional<std::string> Table::string(std::string_view key) {
  const auto* n = get(key);
  if (n == nullptr) return std::nullopt;
  if (!n->is_string()) fail(n, key, fmt::format("expected a string, got {}", typeName(*n)));
  return n->as_string()->get();
}

std::string Table::requiredString(std::string_view key) {
  auto s = string(key);
  if (!s) fail(nullptr, key, fmt::format("missing required key '{}' in [{}]", key, name_));
  return *s;
}

std::optional<bool> Table::boolean(std::string_view key) {
  const auto* n = get(key);
  if (n == nullptr) return std::nullopt;
  if (!n->is_boolean()) fail(n, key, "expected true or false");
  return n->as_boolean()->get();
}

std::optional<std::int64_t> Table::integerIn(std::string_view key, std::int64_t lo, std::int64_t hi) {
  const auto* n = get(key);
  if (n == nullptr) return std::nullopt;
  if (!n->is_integer()) fail(n, key, fmt::format("expected an integer in {}..{}, got {}", lo, hi, typeName(*n)));
  auto v = n->as_integer()->get();
  if (v < lo || v > hi) fail(n, key, fmt::format("expected an integer in {}..{}, got {}", lo, hi, v));
  return v;
}

std::optional<double> Table::number(std::string_view key, double lo, double hi) {
  const auto* n = get(key);
  if (n == nullptr) return std::nullopt;
  double v = 0;
  if (n->is_integer()) {
    v = static_cast<double>(n->as_integer()->get());
  } else if (n->is_floating_point()) {
    v = n->as_floating_point()->get();
  } else {
    fail(n, key, fmt::format("expected a number in {}..{}, got {}", lo, hi, typeName(*n)));
  }
  if (!(v >= lo && v <= hi)) fail(n, key, fmt::format("expected a number in {}..{}, got {}", lo, hi, v));
  return v;
}

std::optional<std::chrono::milliseconds> Table::seconds(std::string_view key, double lo, double hi) {
  auto v = number(key, lo, hi);
  if (!v) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(*v * 1000.0)));
}

const toml::array* Table::array(std::string_view key) {
  const auto* n = get(key);
  if (n == nullptr) return nullptr;
  if (!n->is_array()) fail(n, key, fmt::format("expected an array, got {}", typeName(*n)));
  return n->as_array();
}

const toml::table* Table::subtable(std::string_view key, std::string_view example) {
  const auto* n = get(key);
  if (n == nullptr) return nullptr;
  if (!n->is_table()) fail(n, key, fmt::format("expected a table like {}", example));
  return n->as_table();
}

void Table::finish(std::string_view hint) const {
  bool unknown = false;
  for (auto&& [k, v] : table_) {
    if (!used_.contains(k.str())) {
      const auto& src = k.source();
      errors_.messages.push_back({src.begin.line, src.begin.column,
                                  fmt::format("{}:{}:{}: {}: unknown key{}", file_, src.begin.line, src.begin.column,
                                              qualified(k.str()), hint)});
      unknown = true;
    }
  }
  if (unknown) throw TableFailed{};
}

std::string_view Table::typeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
  }
}

std::optional<asio::ip::address_v4> parseV4(std::string_view text) {
  std::error_code ec;
  auto a = asio::ip::make_address_v4(std::string(text), ec);
  if (ec) return std::nullopt;
  return a;
}

std::optional<Ipv4Network> parseNetwork(std::string_view text) {
  auto slash = text.find('/');
  auto a = parseV4(text.substr(0, slash));
  if (!a) return std::nullopt;
  Ipv4Network n{*a, 32};
  if (slash != std::string_view::npos) {
    auto p = text.substr(slash + 1);
    unsigned v = 0;
    auto [end, err] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (err != std::errc() || end != p.data() + p.size() || p.empty() || v > 32) return std::nullopt;
    n.prefix = static_cast<std::uint8_t>(v);
  }
  std::uint32_t mask = n.prefix == 0 ? 0U : ~std::uint32_t{0} << (32 - n.prefix);
  if ((a->to_uint() & ~mask) != 0) return std::nullopt;  // "10.0.0.5/24" is a typo, not a network
  return n;
}

std::optional<asio::ip::address_v4> ipv4(Table& t, std::string_view key) {
  auto text = t.string(key);
  if (!text) return std::nullopt;
  auto a = parseV4(*text);
  if (!a) t.fail(t.get(key), key, fmt::format("expected an IPv4 address, got '{}'", *text));
  return a;
}

std::optional<std::vector<asio::ip::address_v4>> ipv4List(Table& t, std::string_view key) {
  const auto* n = t.get(key);
  if (n == nullptr) return std::nullopt;
  std::vector<asio::ip::address_v4> out;
  auto add = [&](const toml::node& el) {
    auto text = el.value<std::string>();
    auto a = text ? parseV4(*text) : std::nullopt;
    if (!a) t.fail(&el, key, "expected IPv4 addresses like [\"10.0.0.1\", \"10.0.0.2\"]");
    out.push_back(*a);
  };
  if (const auto* arr = n->as_array()) {
    for (const auto& el : *arr) add(el);
  } else {
    add(*n);
  }
  if (out.empty()) t.fail(n, key, "expected at least one IPv4 address");
  return out;
}

std::optional<std::vector<std::string>> stringList(Table& t, std::string_view key, std::string_view example) {
  const auto* arr = t.array(key);
  if (arr == nullptr) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& el : *arr) {
    auto v = el.value<std::string>();
    if (!v) t.fail(&el, key, fmt::format("expected a list of strings like {}", example));
    out.push_back(*v);
  }
  return out;
}

std::vector<SocketAddress> listenAddresses(Table& t, std::string_view key, std::uint16_t defaultPort) {
  std::vector<SocketAddress> out;
  const auto* arr = t.array(key);
  if (arr == nullptr) return {{asio::ip::address_v4::any(), defaultPort}};
  for (const auto& el : *arr) {
    auto text = el.value<std::string>();
    std::optional<SocketAddress> a;
    if (text) a = parseSocketAddress(*text, defaultPort);
    if (!a)
      t.fail(&el, key, fmt::format("expected addresses like \"0.0.0.0:{0}\", \"10.0.0.1\" or \"[::]:{0}\"", defaultPort));
    if (std::find(out.begin(), out.end(), *a) != out.end()) t.fail(&el, key, fmt::format("{} is listed twice", a->toString()));
    out.push_back(*a);
  }
  if (out.empty()) t.fail(t.get(key), key, "expected at least one address");
  return out;
}

std::optional<ChapCredentials> chapPair(Table& t, std::string_view userKey, std::string_view secretKey,
                                        std::string_view defaultUser) {
  auto user = t.string(userKey);
  auto secret = t.string(secretKey);
  if (!secret) {
    if (user) t.fail(t.get(userKey), userKey, fmt::format("is set but {} is not", secretKey));
    return std::nullopt;
  }
  // RFC 7143 section 9.2.1: CHAP secrets of at least 96 bits; a short one is guessable offline.
  if (secret->size() < 12 || secret->size() > 255)
    t.fail(t.get(secretKey), secretKey, fmt::format("expected 12..255 characters, got {}", secret->size()));
  ChapCredentials c{user.value_or(std::string(defaultUser)), *secret};
  if (user && (user->empty() || user->size() > 255))
    t.fail(t.get(userKey), userKey, "expected 1..255 characters (it defaults to the host name)");
  return c;
}

bool isHostLabel(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

}  // namespace pxedust::config
