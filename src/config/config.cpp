#include "config/config.hpp"

#include "dhcp/wire/options.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <toml++/toml.h>

namespace pxedust::config {
namespace {

// Every error in the file is reported, not only the first: a failure is recorded here and ends the
// table it is in (a section, one [[host]], one [[group]], one [[dhcp.subnet]]); loading goes on with
// the next table, and the load fails at the end with every error, one per line.
struct Errors {
  std::vector<std::string> messages;
};
struct TableFailed {};  // thrown by Section::fail after recording; caught at the table's boundary

// Runs the load of one table; a failure in it is already recorded.
template <typename F>
void guarded(F&& load) {
  try {
    load();
  } catch (const TableFailed&) {
  }
}

// Reads one TOML table, remembering which keys were consumed so that finish() can reject the rest.
class Section {
 public:
  Section(const toml::table& table, std::string name, const std::string& file, Errors& errors)
      : table_(table), name_(std::move(name)), file_(file), errors_(errors) {}
  // A table inside this one (an array of tables' entry), reporting to the same list.
  Section child(const toml::table& table, std::string name) const { return Section(table, std::move(name), file_, errors_); }

  const toml::node* get(std::string_view key) {
    used_.insert(std::string(key));
    return table_.get(key);
  }

  [[noreturn]] void fail(const toml::node* at, std::string_view key, std::string_view what) const {
    const auto& src = at != nullptr ? at->source() : table_.source();
    std::string where = src.begin.line ? fmt::format("{}:{}:{}", file_, src.begin.line, src.begin.column)
                                       : file_;
    errors_.messages.push_back(fmt::format("{}: {}: {}", where, qualified(key), what));
    throw TableFailed{};
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

  // Every key present must have been asked for; each one that was not is an error.
  void finish() const {
    bool unknown = false;
    for (auto&& [k, v] : table_) {
      if (!used_.contains(std::string(k.str()))) {
        const auto& src = k.source();
        errors_.messages.push_back(fmt::format("{}:{}:{}: {}: unknown key{}", file_, src.begin.line, src.begin.column,
                                               qualified(k.str()),
                                               name_.empty() ? " (sections are [log], [daemon], [storage], [tftp], "
                                                               "[dhcp], [iscsi], [[group]], [[host]])"
                                                             : ""));
        unknown = true;
      }
    }
    if (unknown) throw TableFailed{};
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
  const std::string& file() const { return file_; }

 private:
  const toml::table& table_;
  std::string name_;
  const std::string& file_;
  Errors& errors_;
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
  if (auto d = s.string("state_dir")) {
    if (d->empty() || d->front() != '/') s.fail(s.get("state_dir"), "state_dir", "expected an absolute directory path");
    out.stateDir = *d;
  }
  s.finish();
}

void loadStorage(Section s, StorageConfig& out) {
  if (auto d = s.string("dir")) {
    if (d->empty()) s.fail(s.get("dir"), "dir", "expected a directory path, got an empty string");
    out.dir = *d;
  }
  s.finish();
}

void loadTftp(Section s, TftpConfig& out) {
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
      Section r = s.child(*t, s.qualified("per_host"));
      PerHostFileRule rule{r.requiredString("request"), r.requiredString("file")};
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

std::optional<asio::ip::address_v4> parseV4(std::string_view text) {
  std::error_code ec;
  auto a = asio::ip::make_address_v4(std::string(text), ec);
  if (ec) return std::nullopt;
  return a;
}

std::optional<asio::ip::address_v4> ipv4(Section& s, std::string_view key) {
  auto text = s.string(key);
  if (!text) return std::nullopt;
  auto a = parseV4(*text);
  if (!a) s.fail(s.get(key), key, fmt::format("expected an IPv4 address, got '{}'", *text));
  return a;
}

// A list of IPv4 addresses: ["10.0.0.1", "10.0.0.2"] or one string.
std::optional<std::vector<asio::ip::address_v4>> ipv4List(Section& s, std::string_view key) {
  const auto* n = s.get(key);
  if (n == nullptr) return std::nullopt;
  std::vector<asio::ip::address_v4> out;
  auto add = [&](const toml::node& el) {
    auto text = el.value<std::string>();
    auto a = text ? parseV4(*text) : std::nullopt;
    if (!a) s.fail(&el, key, "expected IPv4 addresses like [\"10.0.0.1\", \"10.0.0.2\"]");
    out.push_back(*a);
  };
  if (const auto* arr = n->as_array()) {
    for (const auto& el : *arr) add(el);
  } else {
    add(*n);
  }
  if (out.empty()) s.fail(n, key, "expected at least one IPv4 address");
  return out;
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

std::optional<std::vector<std::string>> stringList(Section& s, std::string_view key, std::string_view example) {
  const auto* arr = s.array(key);
  if (arr == nullptr) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& el : *arr) {
    auto v = el.value<std::string>();
    if (!v) s.fail(&el, key, fmt::format("expected a list of strings like {}", example));
    out.push_back(*v);
  }
  return out;
}

std::optional<ChapCredentials> chapPair(Section& s, std::string_view userKey, std::string_view secretKey,
                                        std::string_view defaultUser) {
  auto user = s.string(userKey);
  auto secret = s.string(secretKey);
  if (!secret) {
    if (user) s.fail(s.get(userKey), userKey, fmt::format("is set but {} is not", secretKey));
    return std::nullopt;
  }
  // RFC 7143 section 9.2.1: CHAP secrets of at least 96 bits; a short one is guessable offline.
  if (secret->size() < 12 || secret->size() > 255)
    s.fail(s.get(secretKey), secretKey, fmt::format("expected 12..255 characters, got {}", secret->size()));
  ChapCredentials c{user.value_or(std::string(defaultUser)), *secret};
  if (user && (user->empty() || user->size() > 255))
    s.fail(s.get(userKey), userKey, "expected 1..255 characters (it defaults to the host name)");
  return c;
}

void loadDiskSettings(Section& s, DiskSettings& out, std::string_view owner) {
  if (auto v = s.string("image")) {
    if (v->empty() || v->size() > 64) s.fail(s.get("image"), "image", "expected an image name (1..64 characters)");
    out.image = *v;
  }
  if (auto names = stringList(s, "iscsi_initiators", "[\"iqn.2010-04.org.ipxe:node1\"]")) {
    for (const auto& n : *names)
      if (auto why = checkIscsiName(n); why || n.empty())
        s.fail(s.get("iscsi_initiators"), "iscsi_initiators",
               fmt::format("'{}' is not an iSCSI name: {}", n, why.value_or("empty")));
    out.initiators = std::move(*names);
  }
  if (auto nets = stringList(s, "iscsi_allow", "[\"10.0.0.0/24\", \"10.0.1.7\"]")) {
    std::vector<Ipv4Network> v;
    for (const auto& n : *nets) {
      auto net = parseNetwork(n);
      if (!net)
        s.fail(s.get("iscsi_allow"), "iscsi_allow",
               fmt::format("expected IPv4 networks like \"10.0.0.0/24\" or addresses, got '{}'", n));
      v.push_back(*net);
    }
    if (v.empty()) s.fail(s.get("iscsi_allow"), "iscsi_allow", "expected at least one network");
    out.allow = std::move(v);
  }
  out.chap = chapPair(s, "chap_user", "chap_secret", owner);
  out.mutualChap = chapPair(s, "mutual_chap_user", "mutual_chap_secret", owner);
}

// On a host's settings once its group's are applied.
void checkChap(Section& s, const DiskSettings& d) {
  if (d.mutualChap && !d.chap)
    s.fail(s.get("mutual_chap_secret"), "mutual_chap_secret", "mutual CHAP needs chap_secret as well");
  if (d.chap && d.mutualChap && d.chap->secret == d.mutualChap->secret)
    s.fail(s.get("mutual_chap_secret"), "mutual_chap_secret",
           "must differ from chap_secret (RFC 7143 section 12.1.3: the same secret both ways invites reflection)");
}

void loadIscsi(Section s, IscsiConfig& out) {
  out.enabled = true;
  if (const auto* arr = s.array("listen")) {
    for (const auto& el : *arr) {
      auto text = el.value<std::string>();
      std::optional<SocketAddress> a;
      if (text) a = parseSocketAddress(*text, 3260);
      if (!a) s.fail(&el, "listen", "expected addresses like \"0.0.0.0:3260\", \"10.0.0.1\" or \"[::]:3260\"");
      if (std::find(out.listen.begin(), out.listen.end(), *a) != out.listen.end())
        s.fail(&el, "listen", fmt::format("{} is listed twice", a->toString()));
      out.listen.push_back(*a);
    }
    if (out.listen.empty()) s.fail(s.get("listen"), "listen", "expected at least one address");
  } else {
    out.listen.push_back({asio::ip::address_v4::any(), 3260});
  }
  if (auto t = s.string("target_name")) {
    static const std::set<std::string_view> kVars = {"name", "mac", "group"};
    for (std::size_t i = 0; i < t->size(); ++i) {
      if ((*t)[i] != '{') continue;
      auto end = t->find('}', i);
      auto var = end == std::string::npos ? std::string_view{} : std::string_view(*t).substr(i + 1, end - i - 1);
      if (!kVars.contains(var))
        s.fail(s.get("target_name"), "target_name", "template variables are {name}, {mac} and {group}");
      i = end;
    }
    if (t->find("{name}") == std::string::npos && t->find("{mac}") == std::string::npos)
      s.fail(s.get("target_name"), "target_name", "must contain {name} or {mac}: every host needs its own target");
    out.targetName = *t;
  }
  if (auto v = s.integer<std::uint16_t>("portal_group_tag", 1, 65535)) out.portalGroupTag = *v;
  if (auto v = s.seconds("nop_interval", 0.1, 3600)) out.nopInterval = *v;
  if (auto v = s.seconds("nop_timeout", 0.1, 3600)) out.nopTimeout = *v;
  if (auto v = s.integer<std::uint32_t>("max_connections", 1, 1'000'000)) out.maxConnections = *v;
  out.discoveryChap = chapPair(s, "discovery_chap_user", "discovery_chap_secret", "discovery");
  s.finish();
}

struct DhcpOptionParse {
  std::uint8_t code = 0;
  std::vector<std::uint8_t> value;
  std::string error;  // non-empty: the value was refused
};

// `name = "value"` by the DHCP option table: "routers", "ntp-servers", "150", ...
DhcpOptionParse parseDhcpOption(std::string_view nameOrCode, std::string_view value) {
  DhcpOptionParse out;
  auto def = dhcp::wire::resolveOption(nameOrCode);
  if (!def) {
    out.error = def.error().message;
    return out;
  }
  if (def->space != dhcp::wire::OptionSpace::Dhcp) {
    out.error = "expected a DHCP option, not a sub-option";
    return out;
  }
  auto bytes = dhcp::wire::encodeOptionValue(*def, value);
  if (!bytes) {
    out.error = bytes.error().message;
    return out;
  }
  out.code = def->code;
  out.value = std::move(*bytes);
  return out;
}

void loadDhcpSettings(Section& s, DhcpSettings& out) {
  out.nextServer = ipv4(s, "next_server");
  if (auto f = s.string("boot_file")) out.boot.any = *f;
  if (const auto* n = s.get("boot")) {
    const auto* t = n->as_table();
    if (t == nullptr) s.fail(n, "boot", "expected a table like { bios = \"pxelinux.0\", uefi = \"ipxe.efi\" }");
    Section b = s.child(*t, s.qualified("boot"));
    auto take = [&](std::string_view key, std::optional<std::string>& dst) {
      if (auto v = b.string(key)) {
        if (v->empty() || v->size() > 1024) b.fail(b.get(key), key, "expected a file name or URL (1..1024 characters)");
        dst = *v;
      }
    };
    take("any", out.boot.any);
    take("bios", out.boot.bios);
    take("uefi", out.boot.uefi);
    take("uefi32", out.boot.uefi32);
    take("arm32", out.boot.arm32);
    take("arm64", out.boot.arm64);
    take("http", out.boot.http);
    take("http_arm64", out.boot.httpArm64);
    take("riscv64", out.boot.riscv64);
    b.finish();
  }
  auto text = [&](std::string_view key, std::optional<std::string>& dst, std::size_t max) {
    if (auto v = s.string(key)) {
      if (v->empty() || v->size() > max) s.fail(s.get(key), key, fmt::format("expected 1..{} characters", max));
      dst = *v;
    }
  };
  text("ipxe_script", out.ipxeScript, 1024);
  text("root_path", out.rootPath, 1024);
  text("initiator_iqn", out.initiatorIqn, 223);
  text("domain", out.domain, 255);
  if (auto v = s.integer<std::int64_t>("lease_time", 60, 365LL * 24 * 3600)) out.leaseTime = std::chrono::seconds(*v);
  out.routers = ipv4List(s, "routers");
  out.dns = ipv4List(s, "dns");
  if (const auto* n = s.get("options")) {
    const auto* t = n->as_table();
    if (t == nullptr) s.fail(n, "options", "expected a table like { ntp-servers = \"10.0.0.1\", 150 = \"0a:00:00:01\" }");
    for (auto&& [k, v] : *t) {
      auto value = v.value<std::string>();
      if (!value) s.fail(&v, fmt::format("options.{}", k.str()), "expected the value as a string");
      auto parsed = parseDhcpOption(k.str(), *value);
      if (!parsed.error.empty()) s.fail(&v, fmt::format("options.{}", k.str()), parsed.error);
      std::erase_if(out.options, [&](const DhcpOption& o) { return o.code == parsed.code; });
      out.options.push_back({parsed.code, std::move(parsed.value)});
    }
  }
}

std::optional<std::pair<asio::ip::address_v4, std::uint8_t>> parsePrefix(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto a = parseV4(text.substr(0, slash));
  unsigned len = 0;
  auto rest = text.substr(slash + 1);
  auto [p, err] = std::from_chars(rest.data(), rest.data() + rest.size(), len);
  if (!a || err != std::errc() || p != rest.data() + rest.size() || len > 32 || len < 8) return std::nullopt;
  return std::pair{*a, static_cast<std::uint8_t>(len)};
}

void loadDhcp(Section s, DhcpConfig& out, const std::string& storageDir) {
  out.enabled = true;
  const auto* ifs = s.array("interfaces");
  if (ifs == nullptr) s.fail(nullptr, "interfaces", "missing required key 'interfaces' in [dhcp]: the interfaces DHCP answers on, e.g. [\"eth1\"]");
  for (const auto& el : *ifs) {
    auto name = el.value<std::string>();
    if (!name || name->empty() || name->size() >= 16 || name->find('/') != std::string::npos)
      s.fail(&el, "interfaces", "expected interface names like \"eth1\"");
    if (std::find(out.interfaces.begin(), out.interfaces.end(), *name) != out.interfaces.end())
      s.fail(&el, "interfaces", fmt::format("{} is listed twice", *name));
    out.interfaces.push_back(*name);
  }
  if (out.interfaces.empty()) s.fail(s.get("interfaces"), "interfaces", "expected at least one interface");
  if (auto m = s.string("mode")) {
    if (*m == "server") out.mode = DhcpMode::Server;
    else if (*m == "proxy") out.mode = DhcpMode::Proxy;
    else s.fail(s.get("mode"), "mode", fmt::format("expected \"server\" or \"proxy\", got '{}'", *m));
  }
  if (auto u = s.string("unknown_clients")) {
    if (*u == "pool") out.serveUnknown = true;
    else if (*u == "ignore") out.serveUnknown = false;
    else s.fail(s.get("unknown_clients"), "unknown_clients", fmt::format("expected \"pool\" or \"ignore\", got '{}'", *u));
  }
  out.leaseFile = s.string("lease_file").value_or(storageDir + "/dhcp.leases");
  if (out.leaseFile.empty()) s.fail(s.get("lease_file"), "lease_file", "expected a file path");
  if (auto v = s.integer<std::int64_t>("offer_hold", 1, 3600)) out.offerHold = std::chrono::seconds(*v);
  if (const auto* n = s.get("answer_router_solicitations")) {
    if (!n->is_boolean()) s.fail(n, "answer_router_solicitations", "expected true or false");
    out.answerRouterSolicitations = n->as_boolean()->get();
  }
  if (auto v = s.integer<std::int64_t>("decline_hold", 0, 30LL * 24 * 3600)) out.declineHold = std::chrono::seconds(*v);
  loadDhcpSettings(s, out.settings);
  if (out.settings.leaseTime) out.defaultLeaseTime = *out.settings.leaseTime;

  std::size_t subnetEntries = 0;  // a subnet with an error is reported once, not again as "none"
  if (const auto* subnets = s.array("subnet")) {
    for (const auto& el : *subnets) {
      ++subnetEntries;
      const auto* t = el.as_table();
      if (t == nullptr) s.fail(&el, "subnet", "expected [[dhcp.subnet]] entries");
      guarded([&] {
        Section n = s.child(*t, "dhcp.subnet");
        DhcpSubnet sub;
        auto text = n.requiredString("subnet");
        auto pfx = parsePrefix(text);
        if (!pfx) n.fail(n.get("subnet"), "subnet", fmt::format("expected a network like \"10.0.0.0/24\" (prefix 8..32), got '{}'", text));
        sub.prefix = pfx->second;
        sub.network = asio::ip::address_v4(pfx->first.to_uint() & sub.mask().to_uint());
        if (sub.network != pfx->first) n.fail(n.get("subnet"), "subnet", fmt::format("'{}' has host bits set; the network is {}", text, sub.toString()));
        for (const auto& other : out.subnets)
          if (other.contains(sub.network) || sub.contains(other.network))
            n.fail(n.get("subnet"), "subnet", fmt::format("{} overlaps {}", sub.toString(), other.toString()));
        if (const auto* pools = n.array("pools")) {
          for (const auto& p : *pools) {
            auto r = p.value<std::string>();
            std::optional<asio::ip::address_v4> first, last;
            if (r) {
              auto dash = r->find('-');
              if (dash != std::string::npos) {
                first = parseV4(std::string_view(*r).substr(0, dash));
                last = parseV4(std::string_view(*r).substr(dash + 1));
              }
            }
            if (!first || !last || first->to_uint() > last->to_uint())
              n.fail(&p, "pools", "expected ranges like \"10.0.0.100-10.0.0.199\" (first <= last)");
            if (!sub.contains(*first) || !sub.contains(*last))
              n.fail(&p, "pools", fmt::format("{} is not inside {}", *r, sub.toString()));
            for (const auto& q : sub.pools)
              if (first->to_uint() <= q.last.to_uint() && q.first.to_uint() <= last->to_uint())
                n.fail(&p, "pools", fmt::format("{} overlaps another pool", *r));
            sub.pools.push_back({*first, *last});
          }
        }
        loadDhcpSettings(n, sub.settings);
        n.finish();
        out.subnets.push_back(std::move(sub));
      });
    }
  }
  if (out.mode == DhcpMode::Server && subnetEntries == 0)
    s.fail(nullptr, "subnet", "a DHCP server needs at least one [[dhcp.subnet]] (or mode = \"proxy\")");
  s.finish();
}

Config build(const toml::table& root, const std::string& file) {
  Config c;
  c.source = file;
  Errors errors;
  Section top(root, "", file, errors);
  auto section = [&](std::string_view name) -> const toml::table* {
    const auto* n = top.get(name);
    if (n == nullptr) return nullptr;
    if (!n->is_table()) top.fail(n, name, fmt::format("expected a [{}] section", name));
    return n->as_table();
  };
  auto load = [&](std::string_view name, auto&& fn) {
    guarded([&] {
      if (const auto* t = section(name)) fn(top.child(*t, std::string(name)));
    });
  };
  load("log", [&](Section s) { loadLog(std::move(s), c.log); });
  load("daemon", [&](Section s) { loadDaemon(std::move(s), c.daemon); });
  load("storage", [&](Section s) { loadStorage(std::move(s), c.storage); });
  load("tftp", [&](Section s) { loadTftp(std::move(s), c.tftp); });
  load("dhcp", [&](Section s) { loadDhcp(std::move(s), c.dhcp, c.storage.dir); });
  load("iscsi", [&](Section s) { loadIscsi(std::move(s), c.iscsi); });

  auto tables = [&](std::string_view key) {
    std::vector<const toml::table*> out;
    const auto* arr = top.array(key);
    if (arr == nullptr) {
      if (const auto* n = root.get(key); n != nullptr && !n->is_array())
        top.fail(n, key, fmt::format("expected [[{}]] entries", key));
      return out;
    }
    for (const auto& el : *arr) {
      if (el.is_table()) out.push_back(el.as_table());
      else guarded([&] { top.fail(&el, key, fmt::format("expected [[{}]] entries", key)); });
    }
    return out;
  };

  std::vector<const toml::table*> groupTables, hostTables;
  guarded([&] { groupTables = tables("group"); });
  guarded([&] { hostTables = tables("host"); });
  std::set<std::string> groupNames;  // also of groups with errors, so their hosts are not reported again
  for (const auto* t : groupTables) {
    guarded([&] {
      Section g = top.child(*t, "group");
      GroupConfig gc{g.requiredString("name"), {}, {}};
      if (!isHostLabel(gc.name)) g.fail(g.get("name"), "name", "expected letters, digits and '-' (at most 63)");
      if (!groupNames.insert(gc.name).second)
        g.fail(g.get("name"), "name", fmt::format("group '{}' is defined twice", gc.name));
      loadDhcpSettings(g, gc.dhcp);
      loadDiskSettings(g, gc.disk, "");
      g.finish();
      c.groups.push_back(std::move(gc));
    });
  }

  std::map<std::string, std::string> names, macs, ips;  // value -> "line N" of its first definition
  std::map<std::string, std::string> targets;          // iSCSI target name -> host
  for (const auto* t : hostTables) {
    guarded([&] {
      Section h = top.child(*t, "host");
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
      loadDhcpSettings(h, hc.dhcp);
      loadDiskSettings(h, hc.disk, "");
      for (const auto& grp : c.groups)
        if (grp.name == hc.group) hc.disk.inherit(grp.disk);
      // CHAP user names default to the host's name (a group's secret is shared, each host keeps its name).
      if (hc.disk.chap && hc.disk.chap->user.empty()) hc.disk.chap->user = hc.name;
      if (hc.disk.mutualChap && hc.disk.mutualChap->user.empty()) hc.disk.mutualChap->user = hc.name;
      checkChap(h, hc.disk);
      if (c.iscsi.enabled && hc.disk.image) {
        // Host A must never reach host B's disk: a target needs something that tells its host apart.
        if (!hc.ip && !hc.disk.allow && !hc.disk.initiators && !hc.disk.chap)
          h.fail(h.get("image"), "image",
                 fmt::format("host '{}' has a disk but nothing tells it apart from other machines: set ip, "
                             "iscsi_allow, iscsi_initiators or chap_secret (here or on its group)", hc.name));
        auto target = iscsiTargetName(c.iscsi, hc);
        if (auto why = checkIscsiName(target))
          h.fail(h.get("name"), "name", fmt::format("target name '{}' (from [iscsi] target_name) {}", target, *why));
        if (auto [it, fresh] = targets.emplace(target, hc.name); !fresh)
          h.fail(h.get("name"), "name", fmt::format("target name '{}' is also host '{}''s", target, it->second));
      }
      h.finish();
      c.hosts.push_back(std::move(hc));
    });
  }
  guarded([&] { top.finish(); });
  if (!errors.messages.empty()) {
    std::string all;
    for (const auto& m : errors.messages) all += (all.empty() ? "" : "\n") + m;
    throw ConfigError(all);
  }
  return c;
}

}  // namespace

void DhcpSettings::inherit(const DhcpSettings& p) {
  auto take = [](auto& mine, const auto& theirs) {
    if (!mine && theirs) mine = theirs;
  };
  take(nextServer, p.nextServer);
  take(boot.any, p.boot.any);
  take(boot.bios, p.boot.bios);
  take(boot.uefi, p.boot.uefi);
  take(boot.uefi32, p.boot.uefi32);
  take(boot.arm32, p.boot.arm32);
  take(boot.arm64, p.boot.arm64);
  take(boot.http, p.boot.http);
  take(boot.httpArm64, p.boot.httpArm64);
  take(boot.riscv64, p.boot.riscv64);
  take(ipxeScript, p.ipxeScript);
  take(rootPath, p.rootPath);
  take(initiatorIqn, p.initiatorIqn);
  take(leaseTime, p.leaseTime);
  take(routers, p.routers);
  take(dns, p.dns);
  take(domain, p.domain);
  for (const auto& o : p.options)
    if (std::none_of(options.begin(), options.end(), [&](const DhcpOption& mine) { return mine.code == o.code; }))
      options.push_back(o);
}

void DiskSettings::inherit(const DiskSettings& p) {
  if (!image) image = p.image;
  if (!initiators) initiators = p.initiators;
  if (!allow) allow = p.allow;
  if (!chap) chap = p.chap;
  if (!mutualChap) mutualChap = p.mutualChap;
}

bool Ipv4Network::contains(asio::ip::address_v4 a) const {
  std::uint32_t mask = prefix == 0 ? 0U : ~std::uint32_t{0} << (32 - prefix);
  return (a.to_uint() & mask) == network.to_uint();
}

std::string Ipv4Network::toString() const { return fmt::format("{}/{}", network.to_string(), prefix); }

std::optional<std::string> checkIscsiName(std::string_view n) {
  if (n.empty()) return std::nullopt;
  if (n.size() > 223) return std::string("is longer than 223 bytes");
  auto hex = [](std::string_view h) {
    return std::all_of(h.begin(), h.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); });
  };
  if (n.starts_with("eui.")) {
    if (n.size() == 20 && hex(n.substr(4))) return std::nullopt;
    return std::string("an eui. name has 16 hex digits");
  }
  if (n.starts_with("naa.")) {
    if ((n.size() == 20 || n.size() == 36) && hex(n.substr(4))) return std::nullopt;
    return std::string("a naa. name has 16 or 32 hex digits");
  }
  if (!n.starts_with("iqn.")) return std::string("expected iqn., eui. or naa. at the start");
  // iqn.YYYY-MM.reversed-domain...
  auto d = n.substr(4);
  auto digits = [](std::string_view x) { return std::all_of(x.begin(), x.end(), [](char c) { return c >= '0' && c <= '9'; }); };
  if (d.size() < 9 || !digits(d.substr(0, 4)) || d[4] != '-' || !digits(d.substr(5, 2)) || d[7] != '.')
    return std::string("expected iqn.YYYY-MM.domain (e.g. iqn.2026-11.org.example:node1)");
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == ':'))
      return fmt::format("has '{}': iqn names use lower-case letters, digits, '-', '.' and ':'", c);
  return std::nullopt;
}

std::string iscsiTargetName(const IscsiConfig& iscsi, const HostConfig& host) {
  std::string out;
  const std::string& t = iscsi.targetName;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '{') {
      auto end = t.find('}', i);
      auto var = std::string_view(t).substr(i + 1, end - i - 1);
      if (var == "name") out += host.name;
      else if (var == "mac") out += host.mac ? macTemplateText(*host.mac) : std::string();
      else if (var == "group") out += host.group;
      i = end;
      continue;
    }
    out += t[i];
  }
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string macTemplateText(const MacAddress& mac) { return mac.toString('-'); }

asio::ip::address_v4 DhcpSubnet::mask() const {
  return asio::ip::address_v4(prefix == 0 ? 0U : ~std::uint32_t{0} << (32 - prefix));
}

bool DhcpSubnet::contains(asio::ip::address_v4 a) const {
  return (a.to_uint() & mask().to_uint()) == network.to_uint();
}

std::string DhcpSubnet::toString() const { return fmt::format("{}/{}", network.to_string(), prefix); }

std::string SocketAddress::toString() const {
  return address.is_v6() ? fmt::format("[{}]:{}", address.to_string(), port)
                         : fmt::format("{}:{}", address.to_string(), port);
}

// Port 0 asks the kernel for a free port (tests run many daemons side by side); the daemon reports
// the bound endpoints in its ready file.
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
    if (err != std::errc() || p != port->data() + port->size() || v > 65535) return std::nullopt;
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
