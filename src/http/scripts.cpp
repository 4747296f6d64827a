#include "http/scripts.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include "common/mac.hpp"
#include "files/files.hpp"
#include "http/ipxe.hpp"

namespace pxedust::http {
namespace {

constexpr std::size_t kMaxTemplate = 64 * 1024;

std::string baseUrl(const asio::ip::tcp::endpoint& local) {
  auto address = local.address();
  if (auto v4 = inventory::peerIpv4(address)) address = *v4;
  const std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  return local.port() == 80 ? fmt::format("http://{}/", host) : fmt::format("http://{}:{}/", host, local.port());
}

// The template's text; an error says why in words a client may see (no server paths).
Result<std::string> readTemplate(const Site& site, const std::string& name) {
  auto normalized = files::normalizeRequest(name);
  if (normalized.error) return Error{fmt::format("ipxe_template {}: {}", name, normalized.error->clientText)};
  auto file = files::openBeneath(site.root.get(), normalized.path);
  if (file.error) return Error{fmt::format("ipxe_template {}: {}", name, file.error->clientText)};
  std::string text;
  char chunk[8192];
  for (;;) {
    const ssize_t n = ::read(file.fd.get(), chunk, sizeof chunk);
    if (n < 0) return Error{fmt::format("ipxe_template {}: read error", name)};
    if (n == 0) break;
    text.append(chunk, static_cast<std::size_t>(n));
    if (text.size() > kMaxTemplate) return Error{fmt::format("ipxe_template {}: larger than 64 KiB", name)};
  }
  return text;
}

ScriptAnswer failed(int status, std::string reason, std::string body) {
  ScriptAnswer a;
  a.reply.status = status;
  a.reply.contentType = "text/plain; charset=utf-8";
  a.reply.body = std::move(body);
  a.result = boot::FileResult::Failed;
  a.reason = std::move(reason);
  return a;
}

}  // namespace

ScriptAnswer hostScript(const Site& site, std::string_view macText, const asio::ip::address& client,
                        const asio::ip::tcp::endpoint& local) {
  const auto mac = MacAddress::parse(macText);
  if (!mac) return failed(404, "not a MAC address", "404 Not Found: expected /ipxe/<mac>, e.g. /ipxe/52-54-00-12-34-56\n");
  const inventory::Host* host = site.hosts ? site.hosts->byMac(*mac) : nullptr;

  ScriptFacts facts;
  facts.baseUrl = baseUrl(local);
  facts.mac = config::macTemplateText(*mac);
  if (host != nullptr) {
    facts.name = host->name;
    facts.group = host->group;
    facts.image = host->disk.image.value_or("");
    if (host->ip) facts.ip = host->ip->to_string();
    auto server = inventory::peerIpv4(local.address());
    if (auto path = host->rootPath(server.value_or(asio::ip::address_v4::any()))) facts.rootPath = *path;
    if (const auto* own = bootSettingsOf(host->keys)) facts.boot = *own;
  }
  if (facts.ip.empty())
    if (auto v4 = inventory::peerIpv4(client)) facts.ip = v4->to_string();
  facts.boot.inherit(site.config.boot);

  ScriptAnswer answer;
  answer.reply.contentType = "text/plain; charset=utf-8";
  if (facts.boot.ipxeTemplate) {
    auto text = readTemplate(site, *facts.boot.ipxeTemplate);
    if (!text) return failed(500, text.error().message, fmt::format("500 {}\n", text.error().message));
    auto script = expandTemplate(*text, variablesOf(facts));
    if (!script) {
      auto why = fmt::format("ipxe_template {}: {}", *facts.boot.ipxeTemplate, script.error().message);
      return failed(500, why, fmt::format("500 {}\n", why));
    }
    answer.reply.body = std::move(*script);
    return answer;
  }
  auto script = defaultScript(facts);
  answer.reply.body = std::move(script.text);
  if (!script.problem.empty()) {
    answer.result = boot::FileResult::Failed;
    answer.reason = std::move(script.problem);
  }
  return answer;
}

}  // namespace pxedust::http
