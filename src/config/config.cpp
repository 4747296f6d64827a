#include "config/config.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <toml++/toml.h>

namespace pxedust::config {
namespace {

// Reads one TOML table, remembering which keys were consumed so that finish() can reject the rest.
class Section {
 public:
  Section(const toml::table& table, std::string name, const std::string& file)
      : table_(table), name_(std::move(name)), file_(file) {}

  const toml::node* get(std::string_view key) {
    used_.insert(std::string(key));
    return table_.get(key);
  }

  [[noreturn]] void fail(const toml::node* at, std::string_view key, std::string_view what) const {
    const auto& src = at != nullptr ? at->source() : table_.source();
    std::string where = src.begin.line ? fmt::format("{}:{}:{}", file_, src.begin.line, src.begin.column)
                                       : file_;
    throw ConfigError(fmt::format("{}: {}: {}", where, qualified(key), what));
  }

  std::string qualified(std::string_view key) const {
    return name_.empty() ? std::string(key) : fmt::format("{}.{}", name_, key);
  }

  std::optional<std::string> string(std::string_view key) {
    const auto* n = get(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_string()) fail(n, key, fmt::format("expected a string, got {}", typeName(*n)));
    return n->as_string()->get();
  }

  std::string requiredString(std::string_view key) {
    auto s = string(key);
    if (!s) fail(nullptr, key, fmt::format("missing required key '{}' in [{}]", key, name_));
    return *s;
  }

  template <typename T>
  std::optional<T> integer(std::string_view key, std::int64_t lo, std::int64_t hi) {
    const auto* n = get(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_integer()) fail(n, key, fmt::format("expected an integer in {}..{}, got {}", lo, hi, typeName(*n)));
    auto v = n->as_integer()->get();
    if (v < lo || v > hi) fail(n, key, fmt::format("expected an integer in {}..{}, got {}", lo, hi, v));
    return static_cast<T>(v);
  }

  std::optional<double> number(std::string_view key, double lo, double hi) {
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

  std::optional<std::chrono::milliseconds> seconds(std::string_view key, double lo, double hi) {
    auto v = number(key, lo, hi);
    if (!v) return std::nullopt;
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(*v * 1000.0)));
  }

  const toml::array* array(std::string_view key) {
    const auto* n = get(key);
    if (n == nullptr) return nullptr;
    if (!n->is_array()) fail(n, key, fmt::format("expected an array, got {}", typeName(*n)));
    return n->as_array();
  }

  // Every key present must have been asked for.
  void finish() const {
    for (auto&& [k, v] : table_) {
      if (!used_.contains(std::string(k.str()))) {
        const auto& src = k.source();
        throw ConfigError(fmt::format("{}:{}:{}: {}: unknown key{}", file_, src.begin.line, src.begin.column,
                                      qualified(k.str()),
                                      name_.empty() ? " (sections are [log], [daemon], [storage], [tftp], "
                                                      "[[group]], [[host]])"
                                                    : ""));
      }
    }
  }

  static std::string_view typeName(const toml::node& n) {
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

  const toml::table& table() const { return table_; }

 private:
  const toml::table& table_;
  std::string name_;
  const std::string& file_;
  std::set<std::string> used_;
};

bool isHostLabel(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

// A per-host file template: a relative path whose {variables} are known, with no '..' component.
std::optional<std::string> checkTemplate(std::string_view t) {
  static const std::set<std::string_view> kVars = {"name", "mac", "ip", "group"};
  if (t.empty()) return "is empty";
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '}') return "has a '}' without '{'";
    if (t[i] != '{') continue;
    auto end = t.find('}', i);
    if (end == std::string_view::npos) return "has a '{' without '}'";
    auto var = t.substr(i + 1, end - i - 1);
    if (!kVars.contains(var)) return fmt::format("uses unknown variable {{{}}} (known: {{name}} {{mac}} {{ip}} {{group}})", var);
    i = end;
  }
  std::size_t start = 0;
  while (start <= t.size()) {
    auto slash = t.find('/', start);
    auto part = t.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part == "..") return "must not contain a '..' component";
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return std::nullopt;
}

void loadLog(Section s, LogConfig& out) {
  if (auto lv = s.string("level")) {
    auto parsed = log::parseLevel(*lv);
    if (!parsed) s.fail(s.get("level"), "level", fmt::format("expected one of trace, debug, info, warn, error; got '{}'", *lv));
    out.level = *parsed;
  }
  s.finish();
}

void loadDaemon(Section s, DaemonConfig& out) {
  if (auto g = s.seconds("shutdown_grace", 0, 3600)) out.shutdownGrace = *g;
  s.finish();
}

void loadStorage(Section s, StorageConfig& out) {
  if (auto d = s.string("dir")) {
    if (d->empty()) s.fail(s.get("dir"), "dir", "expected a directory path, got an empty string");
    out.dir = *d;
  }
  s.finish();
}

void loadTftp(Section s, TftpConfig& out, const std::string& file) {
  out.enabled = true;
  if (const auto* arr = s.array("listen")) {
    for (const auto& el : *arr) {
      auto text = el.value<std::string>();
      std::optional<SocketAddress> a;
      if (text) a = parseSocketAddress(*text, 69);
      if (!a) s.fail(&el, "listen", "expected addresses like \"0.0.0.0:69\", \"10.0.0.1\" or \"[::]:69\"");
      if (std::find(out.listen.begin(), out.listen.end(), *a) != out.listen.end())
        s.fail(&el, "listen", fmt::format("{} is listed twice", a->toString()));
      out.listen.push_back(*a);
    }
    if (out.listen.empty()) s.fail(s.get("listen"), "listen", "expected at least one address");
  } else {
    out.listen.push_back({asio::ip::address_v4::any(), 69});
  }
  out.root = s.requiredString("root");
  if (out.root.empty()) s.fail(s.get("root"), "root", "expected a directory path, got an empty string");
  if (const auto* ports = s.array("transfer_ports")) {
    auto lo = ports->size() == 2 ? (*ports)[0].value<std::int64_t>() : std::nullopt;
    auto hi = ports->size() == 2 ? (*ports)[1].value<std::int64_t>() : std::nullopt;
    if (!lo || !hi || *lo < 1 || *hi > 65535 || *lo > *hi)
      s.fail(s.get("transfer_ports"), "transfer_ports", "expected [low, high] with 1 <= low <= high <= 65535");
    out.transferPortLow = static_cast<std::uint16_t>(*lo);
    out.transferPortHigh = static_cast<std::uint16_t>(*hi);
  }
  if (auto v = s.integer<std::uint32_t>("max_transfers", 1, 1'000'000)) out.maxTransfers = *v;
  if (auto v = s.integer<std::uint32_t>("max_blksize", 512, 65464)) out.maxBlksize = *v;
  if (auto v = s.integer<std::uint32_t>("max_windowsize", 1, 65535)) out.maxWindowsize = *v;
  if (auto v = s.seconds("timeout", 0.01, 255)) out.timeout = *v;
  if (auto v = s.integer<std::uint32_t>("retries", 0, 100)) out.retries = *v;
  if (auto v = s.number("client_rate", 0, 1e9)) out.clientRate = *v;
  if (auto v = s.integer<std::uint32_t>("client_burst", 1, 1'000'000)) out.clientBurst = *v;
  if (const auto* rules = s.array("per_host")) {
    std::set<std::string> seen;
    for (const auto& el : *rules) {
      const auto* t = el.as_table();
      if (t == nullptr) s.fail(&el, "per_host", "expected tables like { request = \"boot.cfg\", file = \"hosts/{name}.cfg\" }");
      Section r(*t, s.qualified("per_host"), file);
      TftpPerHostRule rule{r.requiredString("request"), r.requiredString("file")};
      while (!rule.request.empty() && rule.request.front() == '/') rule.request.erase(0, 1);
      if (rule.request.empty()) r.fail(r.get("request"), "request", "expected a file name");
      if (!seen.insert(rule.request).second) r.fail(r.get("request"), "request", fmt::format("'{}' has two rules", rule.request));
      if (auto why = checkTemplate(rule.file)) r.fail(r.get("file"), "file", fmt::format("template {}", *why));
      r.finish();
      out.perHost.push_back(std::move(rule));
    }
  }
  s.finish();
}

Config build(const toml::table& root, const std::string& file) {
  Config c;
  c.source = file;
  Section top(root, "", file);
  auto section = [&](std::string_view name) -> const toml::table* {
    const auto* n = top.get(name);
    if (n == nullptr) return nullptr;
    if (!n->is_table()) top.fail(n, name, fmt::format("expected a [{}] section", name));
    return n->as_table();
  };
  if (const auto* t = section("log")) loadLog(Section(*t, "log", file), c.log);
  if (const auto* t = section("daemon")) loadDaemon(Section(*t, "daemon", file), c.daemon);
  if (const auto* t = section("storage")) loadStorage(Section(*t, "storage", file), c.storage);
  if (const auto* t = section("tftp")) loadTftp(Section(*t, "tftp", file), c.tftp, file);

  auto tables = [&](std::string_view key) {
    std::vector<const toml::table*> out;
    const auto* arr = top.array(key);
    if (arr == nullptr) {
      if (const auto* n = root.get(key); n != nullptr && !n->is_array())
        top.fail(n, key, fmt::format("expected [[{}]] entries", key));
      return out;
    }
    for (const auto& el : *arr) {
      if (!el.is_table()) top.fail(&el, key, fmt::format("expected [[{}]] entries", key));
      out.push_back(el.as_table());
    }
    return out;
  };

  std::set<std::string> groupNames;
  for (const auto* t : tables("group")) {
    Section g(*t, "group", file);
    GroupConfig gc{g.requiredString("name")};
    if (!isHostLabel(gc.name)) g.fail(g.get("name"), "name", "expected letters, digits and '-' (at most 63)");
    if (!groupNames.insert(gc.name).second) g.fail(g.get("name"), "name", fmt::format("group '{}' is defined twice", gc.name));
    g.finish();
    c.groups.push_back(std::move(gc));
  }

  std::map<std::string, std::string> names, macs, ips;  // value -> "line N" of its first definition
  for (const auto* t : tables("host")) {
    Section h(*t, "host", file);
    HostConfig hc;
    hc.name = h.requiredString("name");
    auto here = fmt::format("line {}", t->source().begin.line);
    if (!isHostLabel(hc.name)) h.fail(h.get("name"), "name", fmt::format("'{}' is not a host name: expected letters, digits and '-' (at most 63)", hc.name));
    if (auto [it, fresh] = names.emplace(hc.name, here); !fresh)
      h.fail(h.get("name"), "name", fmt::format("host '{}' is already defined at {}", hc.name, it->second));
    if (auto m = h.string("mac")) {
      hc.mac = MacAddress::parse(*m);
      if (!hc.mac) h.fail(h.get("mac"), "mac", fmt::format("expected a MAC like 52:54:00:12:34:56, got '{}'", *m));
      if (auto [it, fresh] = macs.emplace(hc.mac->toString(), hc.name); !fresh)
        h.fail(h.get("mac"), "mac", fmt::format("{} already belongs to host '{}'", hc.mac->toString(), it->second));
    }
    if (auto ip = h.string("ip")) {
      std::error_code ec;
      auto a = asio::ip::make_address_v4(*ip, ec);
      if (ec) h.fail(h.get("ip"), "ip", fmt::format("expected an IPv4 address, got '{}'", *ip));
      hc.ip = a;
      if (auto [it, fresh] = ips.emplace(a.to_string(), hc.name); !fresh)
        h.fail(h.get("ip"), "ip", fmt::format("{} already belongs to host '{}'", a.to_string(), it->second));
    }
    if (auto g = h.string("group")) {
      if (!groupNames.contains(*g)) h.fail(h.get("group"), "group", fmt::format("no [[group]] is named '{}'", *g));
      hc.group = *g;
    }
    h.finish();
    c.hosts.push_back(std::move(hc));
  }
  top.finish();
  return c;
}

}  // namespace

std::string SocketAddress::toString() const {
  return address.is_v6() ? fmt::format("[{}]:{}", address.to_string(), port)
                         : fmt::format("{}:{}", address.to_string(), port);
}

std::optional<SocketAddress> parseSocketAddress(std::string_view text, std::uint16_t defaultPort) {
  std::string_view host = text;
  std::optional<std::string_view> port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
    }
  } else if (auto colon = text.find(':'); colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  std::error_code ec;
  auto addr = asio::ip::make_address(std::string(host), ec);
  if (ec) return std::nullopt;
  SocketAddress out{addr, defaultPort};
  if (port) {
    unsigned v = 0;
    auto [p, err] = std::from_chars(port->data(), port->data() + port->size(), v);
    if (err != std::errc() || p != port->data() + port->size() || v == 0 || v > 65535) return std::nullopt;
    out.port = static_cast<std::uint16_t>(v);
  }
  return out;
}

Config loadString(std::string_view text, const std::string& sourceName) {
  try {
    auto table = toml::parse(text, sourceName);
    return build(table, sourceName);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    throw ConfigError(fmt::format("{}:{}:{}: {}", sourceName, b.line, b.column, e.description()));
  }
}

Config loadFile(const std::string& path) {
  try {
    auto table = toml::parse_file(path);
    return build(table, path);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    if (b.line == 0) throw ConfigError(fmt::format("{}: {}", path, e.description()));
    throw ConfigError(fmt::format("{}:{}:{}: {}", path, b.line, b.column, e.description()));
  }
}

}  // namespace pxedust::config
