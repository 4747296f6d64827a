#include "dhcp/config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "config/reader.hpp"
#include "dhcp/wire/options.hpp"

namespace pxedust::dhcp {
namespace {

struct OptionParse {
  std::uint8_t code = 0;
  std::vector<std::uint8_t> value;
  std::string error;  // non-empty: the value was refused
};

// `name = "value"` by the DHCP option table: "routers", "ntp-servers", "150", ...
OptionParse parseOption(std::string_view nameOrCode, std::string_view value) {
  OptionParse out;
  auto def = wire::resolveOption(nameOrCode);
  if (!def) {
    out.error = def.error().message;
    return out;
  }
  if (def->space != wire::OptionSpace::Dhcp) {
    out.error = "expected a DHCP option, not a sub-option";
    return out;
  }
  auto bytes = wire::encodeOptionValue(*def, value);
  if (!bytes) {
    out.error = bytes.error().message;
    return out;
  }
  out.code = def->code;
  out.value = std::move(*bytes);
  return out;
}

void loadSettings(config::Table& s, Settings& out) {
  out.nextServer = config::ipv4(s, "next_server");
  if (auto f = s.string("boot_file")) out.boot.any = *f;
  if (const auto* n = s.get("boot")) {
    const auto* t = n->as_table();
    if (t == nullptr) s.fail(n, "boot", "expected a table like { bios = \"pxelinux.0\", uefi = \"ipxe.efi\" }");
    config::Table b = s.child(*t, s.qualified("boot"));
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
  out.routers = config::ipv4List(s, "routers");
  out.dns = config::ipv4List(s, "dns");
  if (const auto* n = s.get("options")) {
    const auto* t = n->as_table();
    if (t == nullptr) s.fail(n, "options", "expected a table like { ntp-servers = \"10.0.0.1\", 150 = \"0a:00:00:01\" }");
    for (auto&& [k, v] : *t) {
      auto value = v.value<std::string>();
      if (!value) s.fail(&v, fmt::format("options.{}", k.str()), "expected the value as a string");
      auto parsed = parseOption(k.str(), *value);
      if (!parsed.error.empty()) s.fail(&v, fmt::format("options.{}", k.str()), parsed.error);
      std::erase_if(out.options, [&](const Option& o) { return o.code == parsed.code; });
      out.options.push_back({parsed.code, std::move(parsed.value)});
    }
  }
}

std::optional<std::pair<asio::ip::address_v4, std::uint8_t>> parsePrefix(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto a = config::parseV4(text.substr(0, slash));
  unsigned len = 0;
  auto rest = text.substr(slash + 1);
  auto [p, err] = std::from_chars(rest.data(), rest.data() + rest.size(), len);
  if (!a || err != std::errc() || p != rest.data() + rest.size() || len > 32 || len < 8) return std::nullopt;
  return std::pair{*a, static_cast<std::uint8_t>(len)};
}

Config parse(config::Table& s, const std::string& storageDir) {
  Config out;
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
    if (*m == "server") out.mode = Mode::Server;
    else if (*m == "proxy") out.mode = Mode::Proxy;
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
  if (auto v = s.boolean("answer_router_solicitations")) out.answerRouterSolicitations = *v;
  if (auto v = s.integer<std::int64_t>("decline_hold", 0, 30LL * 24 * 3600)) out.declineHold = std::chrono::seconds(*v);
  loadSettings(s, out.settings);
  if (out.settings.leaseTime) out.defaultLeaseTime = *out.settings.leaseTime;

  std::size_t subnetEntries = 0;  // a subnet with an error is reported once, not again as "none"
  if (const auto* subnets = s.array("subnet")) {
    for (const auto& el : *subnets) {
      ++subnetEntries;
      const auto* t = el.as_table();
      if (t == nullptr) s.fail(&el, "subnet", "expected [[dhcp.subnet]] entries");
      config::guarded([&] {
        config::Table n = s.child(*t, "dhcp.subnet");
        Subnet sub;
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
                first = config::parseV4(std::string_view(*r).substr(0, dash));
                last = config::parseV4(std::string_view(*r).substr(dash + 1));
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
        loadSettings(n, sub.settings);
        n.finish();
        out.subnets.push_back(std::move(sub));
      });
    }
  }
  if (out.mode == Mode::Server && subnetEntries == 0)
    s.fail(nullptr, "subnet", "a DHCP server needs at least one [[dhcp.subnet]] (or mode = \"proxy\")");
  return out;
}

}  // namespace

config::ServiceSchema schema() {
  config::ServiceSchema s;
  s.section = "dhcp";
  s.parse = [](config::Table& t, const config::Config& base) { return std::any(parse(t, base.storage.dir)); };
  s.hostKeys = [](config::Table& t) {
    Settings own;
    loadSettings(t, own);
    return std::any(std::move(own));
  };
  s.inherit = [](std::any& host, const std::any& group) {
    std::any_cast<Settings&>(host).inherit(std::any_cast<const Settings&>(group));
  };
  return s;
}

const Config* configIn(const config::Config& config) { return config.section<Config>("dhcp"); }

const Settings& settingsOf(const config::Parts& keys) {
  static const Settings kNone;
  const auto* s = config::part<Settings>(keys, "dhcp");
  return s != nullptr ? *s : kNone;
}

void Settings::inherit(const Settings& p) {
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
    if (std::none_of(options.begin(), options.end(), [&](const Option& mine) { return mine.code == o.code; }))
      options.push_back(o);
}

asio::ip::address_v4 Subnet::mask() const {
  return asio::ip::address_v4(prefix == 0 ? 0U : ~std::uint32_t{0} << (32 - prefix));
}

bool Subnet::contains(asio::ip::address_v4 a) const {
  return (a.to_uint() & mask().to_uint()) == network.to_uint();
}

std::string Subnet::toString() const { return fmt::format("{}/{}", network.to_string(), prefix); }

}  // namespace pxedust::dhcp
