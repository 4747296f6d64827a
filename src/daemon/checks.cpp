#include "daemon/checks.hpp"

#include <fmt/format.h>

#include <map>
#include <set>

#include "dhcp/config.hpp"
#include "files/files.hpp"
#include "http/config.hpp"
#include "nbd/config.hpp"
#include "nbd/tls.hpp"

namespace pxedust::daemon {
namespace {

bool isUrl(std::string_view s) { return s.find("://") != std::string_view::npos; }

// "alpha, beta, gamma and 12 more"
std::string listed(const std::set<std::string>& names) {
  std::string out;
  std::size_t shown = 0;
  for (const auto& n : names) {
    if (shown == 3) return fmt::format("{} and {} more", out, names.size() - shown);
    out += (shown++ == 0 ? "" : ", ") + n;
  }
  return out;
}

}  // namespace

std::vector<std::string> configWarnings(const config::Config& config) {
  std::vector<std::string> out;
  const auto* http = http::configIn(config);
  const auto* dhcp = dhcp::configIn(config);

  // root_protocol = "nbd" (or "ram": copied over NBD; or "nfs") takes effect only while its
  // protocol's section is in the file; without it the host gets no root-path at all.
  for (auto [protocol, section] : {std::pair{"nbd", "nbd"}, std::pair{"ram", "nbd"}, std::pair{"nfs", "nfs"}}) {
    std::set<std::string> roots;
    for (const auto& h : config.hosts)
      if (h.disk.rootProtocol == protocol && h.disk.image && (!h.rootDisk || h.rootDisk->protocol != protocol))
        roots.insert(h.name);
    if (!roots.empty())
      out.push_back(fmt::format("{}: root_protocol = \"{}\" on {}, but the file has no [{}] section: they get "
                                "no root-path",
                                section, protocol, listed(roots), section));
  }

  // NBD over TLS-PSK: a host's export opens only for the identity that is its name (nbd/exports.hpp).
  // Identities that name no exported host open nothing; under tls = "require" with keys alone, a host
  // without an identity cannot open its disk at all.
  if (const auto* nbd = nbd::configIn(config); nbd && nbd->tlsCredentials && nbd->tlsCredentials->hasPsk()) {
    std::set<std::string> exported, orphans, keyless;
    for (const auto& h : config.hosts)
      if (h.disk.image && !nbd::notExportedBecause(h.disk, h.ip)) exported.insert(h.name);
    for (const auto& [identity, key] : nbd->tlsCredentials->pskKeys())
      if (!exported.contains(identity)) orphans.insert(identity);
    for (const auto& name : exported)
      if (!nbd->tlsCredentials->knowsIdentity(name)) keyless.insert(name);
    if (!orphans.empty())
      out.push_back(fmt::format("nbd: tls_psk_file identities that name no host exported over NBD, so a client "
                                "with them can open nothing: {}",
                                listed(orphans)));
    if (nbd->tls == nbd::wire::TlsMode::Required && !nbd->tlsCredentials->hasCertificate() && !keyless.empty())
      out.push_back(fmt::format("nbd: tls = \"require\" with pre-shared keys only: hosts without an identity in "
                                "tls_psk_file cannot open their exports: {}",
                                listed(keyless)));
  }

  if (http == nullptr) return out;

  // Every file the iPXE scripts name, with the hosts whose scripts name it ("[http]" for the default).
  std::map<std::pair<std::string, std::string>, std::set<std::string>> named;  // (key, file) -> hosts
  auto note = [&](const http::BootSettings& b, const std::string& who) {
    if (b.kernel) named[{"kernel", *b.kernel}].insert(who);
    if (b.initrd)
      for (const auto& i : *b.initrd) named[{"initrd", i}].insert(who);
    if (b.ipxeTemplate) named[{"ipxe_template", *b.ipxeTemplate}].insert(who);
  };
  note(http->boot, "[http]");
  for (const auto& h : config.hosts) {
    http::BootSettings merged;
    if (const auto* own = http::bootSettingsOf(h.keys)) merged = *own;
    merged.inherit(http->boot);
    note(merged, h.name);
  }
  if (dhcp != nullptr && dhcp->settings.ipxeScript) {
    if (!named.empty())
      out.push_back(fmt::format("dhcp: ipxe_script = \"{}\" sends iPXE there, so the per-host scripts of [http] "
                                "(kernel, initrd, ipxe_template) are never used; remove it to use them",
                                *dhcp->settings.ipxeScript));
  }
  auto root = files::openRoot(http->root);
  if (!root) {
    out.push_back(fmt::format("http: root {} cannot be opened: {}", http->root, root.error().message));
    return out;
  }
  auto missing = [&](const std::string& file) {
    if (isUrl(file)) return false;
    auto n = files::normalizeRequest(file);
    return n.error || files::openBeneath(root->get(), n.path).error.has_value();
  };
  for (const auto& [what, hosts] : named) {
    const auto& [key, file] = what;
    if (missing(file))
      out.push_back(fmt::format("http: {} \"{}\" ({}) is not a file under {}: iPXE will get 404 and the boot fails",
                                key, file, listed(hosts), http->root));
  }
  if (dhcp != nullptr && dhcp->httpBoot) {
    std::set<std::string> programs;
    auto add = [&](const dhcp::Settings& s) {
      for (const auto* f : {&s.boot.uefi, &s.boot.arm64})
        if (*f && !isUrl(**f)) programs.insert(**f);
    };
    add(dhcp->settings);
    for (const auto& sub : dhcp->subnets) add(sub.settings);
    for (const auto& p : programs)
      if (missing(p))
        out.push_back(fmt::format("dhcp: boot program \"{}\" is not a file under [http] root {}: UEFI HTTP Boot "
                                  "clients will get 404 (TFTP clients are not affected)",
                                  p, http->root));
  }
  return out;
}

}  // namespace pxedust::daemon
