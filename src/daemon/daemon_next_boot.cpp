// The daemon's side of one-shot boots (next_boot.hpp): arming and cancelling from the API, ending
// an entry as the tracker sees its boot, and keeping <storage.dir>/next-boot.json.
//
// The in-memory entries and the running configuration change together on the loop, through the same
// all-or-nothing apply() as a reload; the file follows on the state writer, which writes the whole
// current set each time, in order. An API action is acknowledged only once a write that holds it is
// on disk; if that write fails, the action is undone and refused.
#include <asio/post.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>

#include "blockstore/file.hpp"
#include "common/log.hpp"
#include "daemon/daemon.hpp"

namespace pxedust::daemon {
namespace {

constexpr std::string_view kNextBootFile = "next-boot.json";
constexpr std::size_t kNextBootFileMax = 4 << 20;  // 4 MiB: some 40,000 entries

std::int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The configured host of that name, or null.
const config::HostConfig* hostNamed(const config::Config& config, std::string_view name) {
  for (const auto& c : config.hosts)
    if (c.name == name) return &c;
  return nullptr;
}

}  // namespace

std::filesystem::path Daemon::nextBootPath() const { return std::filesystem::path(config_.storage.dir) / kNextBootFile; }

config::Config Daemon::resolve(const config::Config& base, const NextBoot& entries) const {
  auto config = config::loadString(base.text, base.source, standardSchema(), {entries.hostGroups()});
  linkServices(config);
  return config;
}

void Daemon::dropUnappliedNextBoot(const config::Config& config) {
  std::vector<std::string> gone;
  for (const auto& [host, e] : nextBoot_.entries()) {
    const auto* h = hostNamed(config, host);
    if (h == nullptr || h->group != e.group) gone.push_back(host);
  }
  for (const auto& host : gone) {
    PXD_WARN("next_boot.dropped", "host={} group={} reason=\"the config has no such host or group now\"", log::q(host),
             log::q(nextBoot_.find(host)->group));
    nextBoot_.cancel(host);
  }
  if (!gone.empty()) persistNextBoot(nullptr);
}

void Daemon::loadNextBoot() {
  const auto path = nextBootPath();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return;
  auto text = blockstore::readSmallFile(path, kNextBootFileMax);
  Result<NextBoot> parsed = text ? NextBoot::fromJson(*text) : Result<NextBoot>(text.error());
  if (!parsed) {
    // Set aside, not overwritten: what it held is the operator's to recover.
    auto aside = path;
    aside += ".bad";
    std::filesystem::rename(path, aside, ec);
    PXD_ERROR("next_boot.unreadable", "file={} error={} moved_to={} note=\"starting with no one-shot boots\"",
              log::q(path.string()), log::q(parsed.error().message), log::q(ec ? std::string("(not moved)") : aside.string()));
    return;
  }
  nextBoot_ = std::move(*parsed);
  if (nextBoot_.empty()) return;
  try {
    config_ = resolve(config_, nextBoot_);
  } catch (const config::ConfigError& e) {
    PXD_ERROR("next_boot.refused", "error={} note=\"starting with no one-shot boots\"", log::q(e.what()));
    nextBoot_ = NextBoot{};
    persistNextBoot(nullptr);
    return;
  }
  dropUnappliedNextBoot(config_);
  PXD_INFO("next_boot.loaded", "file={} hosts={}", log::q(path.string()), nextBoot_.entries().size());
}

void Daemon::persistNextBoot(std::function<void(Result<void>)> done) {
  auto text = std::make_shared<std::string>(nextBoot_.toJson());
  auto path = nextBootPath();
  asio::post(stateWriter_, [this, text, path, done = std::move(done)] {
    auto bytes = std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(text->data()), text->size());
    Result<void> r = blockstore::writeFileAtomic(path, bytes);
    if (!r) PXD_ERROR("next_boot.write_failed", "file={} error={}", log::q(path.string()), log::q(r.error().message));
    if (done) asio::post(loop_.io(), [done, r] { done(r); });
  });
}

void Daemon::changeNextBoot(std::string host, std::optional<std::string> group, NextBootDone done) {
  using nlohmann::json;
  const auto* h = hostNamed(config_, host);
  if (h == nullptr) return done(404, {{"error", fmt::format("no [[host]] is named '{}'", host)}});
  if (group && std::none_of(config_.groups.begin(), config_.groups.end(), [&](const auto& g) { return g.name == *group; }))
    return done(400, {{"error", fmt::format("no [[group]] is named '{}'", *group)}});
  if (!group && nextBoot_.find(host) == nullptr)
    return done(404, {{"error", fmt::format("host '{}' has no next boot set", host)}});

  NextBoot next = nextBoot_;
  if (group) {
    const auto* seen = tracker_.findByName(host);
    next.arm(host, *group, seen ? seen->boots : 0, nowMs());
  } else {
    next.cancel(host);
  }
  config::Config resolved;
  try {
    resolved = resolve(config_, next);
  } catch (const config::ConfigError& e) {
    return done(422, {{"error", fmt::format("host '{}' cannot be resolved in group '{}': {}", host, group.value_or(h->configuredGroup),
                                            e.what())}});
  }
  if (auto r = apply(resolved); !r)
    return done(422, {{"error", r.error().message}, {"note", "nothing changed"}});
  const NextBoot before = std::move(nextBoot_);
  nextBoot_ = std::move(next);
  config_ = std::move(resolved);
  nextBootStale_ = false;  // resolved with every entry as it is now
  PXD_INFO("next_boot.set", "host={} group={}", log::q(host), log::q(group.value_or("(its own)")));
  persistNextBoot([this, host, before, done = std::move(done)](Result<void> r) mutable {
    if (r) {
      const auto* e = nextBoot_.find(host);
      json body = {{"host", host}};
      if (e != nullptr) body.update(nextBootJson(host, *e));
      return done(200, body);
    }
    // Not on disk: undo it, so what runs is what a restart would run.
    nextBoot_ = std::move(before);
    try {
      auto back = resolve(config_, nextBoot_);
      if (apply(back)) config_ = std::move(back);
    } catch (const config::ConfigError&) {
    }
    persistNextBoot(nullptr);
    done(500, {{"error", "cannot write " + nextBootPath().string() + ": " + r.error().message}, {"note", "undone"}});
  });
}

nlohmann::json Daemon::nextBootJson(const std::string& host, const NextBootEntry& e) const {
  auto at = [](std::int64_t ms) { return boot::rfc3339(boot::TimePoint(std::chrono::milliseconds(ms))); };
  nlohmann::json out = {{"host", host}, {"group", e.group}, {"state", nextBootStateName(e.state)}, {"armed_at", at(e.armedAtMs)}};
  if (const auto* h = hostNamed(config_, host)) out["configured_group"] = h->configuredGroup;
  if (e.bootStartedAtMs) out["boot_started_at"] = at(*e.bootStartedAtMs);
  return out;
}

void Daemon::observeNextBoot() {
  std::vector<std::string> hosts;  // observe() may end an entry: not while walking them
  for (const auto& [host, e] : nextBoot_.entries()) hosts.push_back(host);
  bool write = false;
  for (const auto& host : hosts) {
    const auto* seen = tracker_.findByName(host);
    if (seen == nullptr) continue;
    const auto change = nextBoot_.observe(host, {seen->boots, seen->stage == boot::Stage::Up}, nowMs());
    if (change == NextBoot::Change::None) continue;
    write = true;
    if (change == NextBoot::Change::Booting) {
      PXD_INFO("next_boot.booting", "host={} group={}", log::q(host), log::q(nextBoot_.find(host)->group));
      continue;
    }
    PXD_INFO("next_boot.done", "host={} note=\"resolved with its own group again\"", log::q(host));
    nextBootStale_ = true;
  }
  if (write) persistNextBoot(nullptr);
  if (!nextBootStale_ || nextBootApplyPosted_) return;
  // Not here: this runs inside the tracker's record(), and apply() hands the tracker a new inventory.
  nextBootApplyPosted_ = true;
  asio::post(loop_.io(), [this] {
    nextBootApplyPosted_ = false;
    if (!nextBootStale_ || shuttingDown_) return;
    try {
      auto resolved = resolve(config_, nextBoot_);
      if (auto r = apply(resolved); !r) {
        PXD_ERROR("next_boot.apply_failed", "error={} note=\"tried again at the next boot event\"", log::q(r.error().message));
        return;
      }
      config_ = std::move(resolved);
    } catch (const config::ConfigError& e) {
      PXD_ERROR("next_boot.apply_failed", "error={} note=\"tried again at the next boot event\"", log::q(e.what()));
      return;
    }
    nextBootStale_ = false;
  });
}

}  // namespace pxedust::daemon
