#include "tftp/config.hpp"

#include "config/reader.hpp"

namespace pxedust::tftp {
namespace {

Config parse(config::Table& s) {
  Config out;
  out.listen = config::listenAddresses(s, "listen", 69);
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
  out.perHost = files::readPerHostRules(s, "per_host");
  return out;
}

}  // namespace

config::ServiceSchema schema() {
  config::ServiceSchema s;
  s.section = "tftp";
  s.parse = [](config::Table& t, const config::Config&) { return std::any(parse(t)); };
  return s;
}

const Config* configIn(const config::Config& config) { return config.section<Config>("tftp"); }

}  // namespace pxedust::tftp
