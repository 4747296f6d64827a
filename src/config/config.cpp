#include "config/config.hpp"

#include "config/reader.hpp"
#include "common/fd.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <toml++/toml.h>

namespace pxedust::config {
namespace {

void loadLog(Table s, LogConfig& out) {
  if (auto lv = s.string("level")) {
    auto parsed = log::parseLevel(*lv);
    if (!parsed) s.fail(s.get("level"), "level", fmt::format("expected one of trace, debug, info, warn, error; got '{}'", *lv));
    out.level = *parsed;
  }
  s.finish();
}

void loadDaemon(Table s, DaemonConfig& out) {
  if (auto g = s.seconds("shutdown_grace", 0, 3600)) out.shutdownGrace = *g;
  if (auto d = s.string("state_dir")) {
    if (d->empty() || d->front() != '/') s.fail(s.get("state_dir"), "state_dir", "expected an absolute directory path");
    out.stateDir = *d;
  }
  // Names as in /etc/passwd and /etc/group; whether they exist is checked at start, on the machine
  // that runs the daemon.
  if (auto u = s.string("user")) {
    if (u->empty()) s.fail(s.get("user"), "user", "expected a user name, got an empty string");
    out.user = *u;
  }
  if (auto g = s.string("group")) {
    if (g->empty()) s.fail(s.get("group"), "group", "expected a group name, got an empty string");
    if (!out.user) s.fail(s.get("group"), "group", "needs `user` as well (the group of the user the daemon runs as)");
    out.group = *g;
  }
  s.finish();
}

void loadStorage(Table s, StorageConfig& out) {
  if (auto d = s.string("dir")) {
    if (d->empty()) s.fail(s.get("dir"), "dir", "expected a directory path, got an empty string");
    out.dir = *d;
  }
  s.finish();
}

void loadDiskSettings(Table& s, DiskSettings& out, std::string_view owner) {
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
  if (auto p = s.string("root_protocol")) {
    if (*p != "iscsi" && *p != "nbd" && *p != "ram" && *p != "nfs")
      s.fail(s.get("root_protocol"), "root_protocol", "expected \"iscsi\", \"nbd\", \"ram\" or \"nfs\"");
    out.rootProtocol = *p;
  }
  out.chap = chapPair(s, "chap_user", "chap_secret", owner);
  out.mutualChap = chapPair(s, "mutual_chap_user", "mutual_chap_secret", owner);
}

// On a host's settings once its group's are applied.
void checkChap(Table& s, const DiskSettings& d) {
  if (d.mutualChap && !d.chap)
    s.fail(s.get("mutual_chap_secret"), "mutual_chap_secret", "mutual CHAP needs chap_secret as well");
  if (d.chap && d.mutualChap && d.chap->secret == d.mutualChap->secret)
    s.fail(s.get("mutual_chap_secret"), "mutual_chap_secret",
           "must differ from chap_secret (RFC 7143 section 12.1.3: the same secret both ways invites reflection)");
}

Config build(const toml::table& root, const std::string& file, const Schema& schema, const LoadOptions& options) {
  Config c;
  c.source = file;
  Errors errors;
  Table top(root, "", file, errors);
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
  load("log", [&](Table s) { loadLog(std::move(s), c.log); });
  load("daemon", [&](Table s) { loadDaemon(std::move(s), c.daemon); });
  load("storage", [&](Table s) { loadStorage(std::move(s), c.storage); });
  for (const auto& svc : schema)
    load(svc.section, [&](Table s) {
      auto parsed = svc.parse(s, c);
      s.finish();
      c.sections.emplace(svc.section, std::move(parsed));
    });

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
  // Each service's keys on a [[group]] or [[host]] table.
  auto serviceKeys = [&](Table& t) {
    Parts keys;
    for (const auto& svc : schema)
      if (svc.hostKeys) keys.emplace(svc.section, svc.hostKeys(t));
    return keys;
  };

  std::vector<const toml::table*> groupTables, hostTables;
  guarded([&] { groupTables = tables("group"); });
  guarded([&] { hostTables = tables("host"); });
  std::set<std::string> groupNames;  // also of groups with errors, so their hosts are not reported again
  for (const auto* t : groupTables) {
    guarded([&] {
      Table g = top.child(*t, "group");
      GroupConfig gc{g.requiredString("name"), {}, {}};
      if (!isHostLabel(gc.name)) g.fail(g.get("name"), "name", "expected letters, digits and '-' (at most 63)");
      if (!groupNames.insert(gc.name).second)
        g.fail(g.get("name"), "name", fmt::format("group '{}' is defined twice", gc.name));
      gc.keys = serviceKeys(g);
      loadDiskSettings(g, gc.disk, "");
      g.finish();
      c.groups.push_back(std::move(gc));
    });
  }

  // Each present service's host checker, for this load.
  std::vector<ServiceSchema::HostChecker> checkers;
  for (const auto& svc : schema)
    if (auto it = c.sections.find(svc.section); svc.hosts && it != c.sections.end())
      checkers.push_back(svc.hosts(it->second));
  std::map<std::string, std::string> names, macs, ips;  // value -> "line N" of its first definition
  for (const auto* t : hostTables) {
    guarded([&] {
      Table h = top.child(*t, "host");
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
        auto a = parseV4(*ip);
        if (!a) h.fail(h.get("ip"), "ip", fmt::format("expected an IPv4 address, got '{}'", *ip));
        hc.ip = a;
        if (auto [it, fresh] = ips.emplace(a->to_string(), hc.name); !fresh)
          h.fail(h.get("ip"), "ip", fmt::format("{} already belongs to host '{}'", a->to_string(), it->second));
      }
      if (auto g = h.string("group")) {
        if (!groupNames.contains(*g)) h.fail(h.get("group"), "group", fmt::format("no [[group]] is named '{}'", *g));
        hc.group = *g;
      }
      hc.configuredGroup = hc.group;
      if (auto o = options.hostGroups.find(hc.name); o != options.hostGroups.end() && groupNames.contains(o->second))
        hc.group = o->second;
      hc.keys = serviceKeys(h);
      loadDiskSettings(h, hc.disk, "");
      for (const auto& grp : c.groups) {
        if (grp.name != hc.group) continue;
        hc.disk.inherit(grp.disk);
        for (const auto& svc : schema) {
          auto mine = hc.keys.find(svc.section);
          auto theirs = grp.keys.find(svc.section);
          if (svc.inherit && mine != hc.keys.end() && theirs != grp.keys.end()) svc.inherit(mine->second, theirs->second);
        }
      }
      // CHAP user names default to the host's name (a group's secret is shared, each host keeps its name).
      if (hc.disk.chap && hc.disk.chap->user.empty()) hc.disk.chap->user = hc.name;
      if (hc.disk.mutualChap && hc.disk.mutualChap->user.empty()) hc.disk.mutualChap->user = hc.name;
      checkChap(h, hc.disk);
      for (const auto& check : checkers)
        if (auto disk = check(h, hc); disk && !hc.rootDisk) hc.rootDisk = std::move(disk);
      h.finish();
      c.hosts.push_back(std::move(hc));
    });
  }
  std::string sections = "[log], [daemon], [storage]";
  for (const auto& svc : schema) sections += fmt::format(", [{}]", svc.section);
  guarded([&] { top.finish(fmt::format(" (sections are {}, [[group]], [[host]])", sections)); });
  if (!errors.messages.empty()) throw ConfigError(errors.joined());
  return c;
}

}  // namespace

void DiskSettings::inherit(const DiskSettings& p) {
  if (!image) image = p.image;
  if (!initiators) initiators = p.initiators;
  if (!allow) allow = p.allow;
  if (!chap) chap = p.chap;
  if (!mutualChap) mutualChap = p.mutualChap;
  if (!rootProtocol) rootProtocol = p.rootProtocol;
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

std::string macTemplateText(const MacAddress& mac) { return mac.toString('-'); }

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

Config loadString(std::string_view text, const std::string& sourceName, const Schema& schema,
                  const LoadOptions& options) {
  try {
    auto table = toml::parse(text, sourceName);
    auto config = build(table, sourceName, schema, options);
    config.text = std::string(text);
    return config;
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    throw ConfigError(fmt::format("{}:{}:{}: {}", sourceName, b.line, b.column, e.description()));
  }
}

Config loadFile(const std::string& path, const Schema& schema, const LoadOptions& options) {
  // Read whole first: Config::text keeps what was loaded.
  std::string text;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) throw ConfigError(fmt::format("{}: cannot open it: {}", path, std::strerror(errno)));
  for (char chunk[65536];;) {
    const ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ConfigError(fmt::format("{}: cannot read it: {}", path, std::strerror(errno)));
    if (n == 0) break;
    text.append(chunk, static_cast<std::size_t>(n));
  }
  return loadString(text, path, schema, options);
}

}  // namespace pxedust::config
