#include "http/config.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "config/reader.hpp"

namespace pxedust::http {
namespace {

void readBoot(config::Table& t, BootSettings& out) {
  auto text = [&](std::string_view key, std::optional<std::string>& into, std::size_t max) {
    if (auto v = t.string(key)) {
      if (v->empty() || v->size() > max) t.fail(t.get(key), key, fmt::format("expected 1..{} characters", max));
      into = *v;
    }
  };
  text("kernel", out.kernel, 1024);
  text("ipxe_template", out.ipxeTemplate, 1024);
  if (auto v = t.string("kernel_args")) {
    if (v->size() > 4096 || v->find('\n') != std::string::npos)
      t.fail(t.get("kernel_args"), "kernel_args", "expected one line of at most 4096 characters");
    out.kernelArgs = *v;
  }
  if (const auto* n = t.get("initrd")) {
    std::vector<std::string> files;
    auto add = [&](const toml::node& el) {
      auto v = el.value<std::string>();
      if (!v || v->empty() || v->size() > 1024)
        t.fail(&el, "initrd", "expected a file name or URL, or a list of them, e.g. [\"initrd.img\", \"firmware.cpio\"]");
      files.push_back(*v);
    };
    if (const auto* list = n->as_array()) {
      for (const auto& el : *list) add(el);
    } else {
      add(*n);
    }
    out.initrd = std::move(files);
  }
}

Config parse(config::Table& s) {
  Config out;
  out.listen = config::listenAddresses(s, "listen", 80);
  if (s.get("api_listen") != nullptr) out.apiListen = config::listenAddresses(s, "api_listen", 8080);
  for (const auto& a : out.apiListen) {
    const bool shared = std::any_of(out.listen.begin(), out.listen.end(), [&](const config::SocketAddress& l) {
      return l.port == a.port && (l.address == a.address || l.address.is_unspecified() || a.address.is_unspecified());
    });
    if (shared)
      s.fail(s.get("api_listen"), "api_listen",
             fmt::format("{}:{} is also in listen: the API's addresses must be others than the boot files' ones",
                         a.address.to_string(), a.port));
  }
  out.root = s.requiredString("root");
  if (out.root.empty()) s.fail(s.get("root"), "root", "expected a directory path, got an empty string");
  out.perHost = files::readPerHostRules(s, "per_host");
  if (auto v = s.integer<std::uint32_t>("max_connections", 1, 1'000'000)) out.maxConnections = *v;
  if (auto v = s.integer<std::uint32_t>("max_connections_per_client", 1, 1'000'000)) out.maxConnectionsPerClient = *v;
  if (auto v = s.seconds("header_timeout", 0.1, 3600)) out.headerTimeout = *v;
  if (auto v = s.seconds("idle_timeout", 0.1, 86400)) out.idleTimeout = *v;
  if (auto v = s.seconds("send_timeout", 0.1, 3600)) out.sendTimeout = *v;
  readBoot(s, out.boot);
  if (auto token = s.string("api_token")) {
    if (token->size() < 16 || token->size() > 256 ||
        std::any_of(token->begin(), token->end(), [](char c) { return c <= ' ' || c == 0x7f; }))
      s.fail(s.get("api_token"), "api_token", "expected 16..256 printable characters without spaces");
    out.apiToken = *token;
  }
  return out;
}

}  // namespace

config::ServiceSchema schema() {
  config::ServiceSchema s;
  s.section = "http";
  s.parse = [](config::Table& t, const config::Config&) { return std::any(parse(t)); };
  s.hostKeys = [](config::Table& t) {
    BootSettings own;
    readBoot(t, own);
    return own.empty() ? std::any() : std::any(std::move(own));
  };
  s.inherit = [](std::any& host, const std::any& group) {
    if (!group.has_value()) return;
    if (!host.has_value()) host = BootSettings{};
    std::any_cast<BootSettings&>(host).inherit(std::any_cast<const BootSettings&>(group));
  };
  return s;
}

const BootSettings* bootSettingsOf(const config::Parts& keys) { return config::part<BootSettings>(keys, "http"); }

const Config* configIn(const config::Config& config) { return config.section<Config>("http"); }

}  // namespace pxedust::http
