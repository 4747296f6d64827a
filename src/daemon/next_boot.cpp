#include "daemon/next_boot.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace pxedust::daemon {

namespace {

using json = nlohmann::json;

// As the config spells host and group names: letters, digits and '-', at most 63.
bool isName(std::string_view s) {
  return !s.empty() && s.size() <= 63 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
  });
}

}  // namespace

std::string_view nextBootStateName(NextBootEntry::State state) {
  return state == NextBootEntry::State::Armed ? "armed" : "booting";
}

void NextBoot::arm(std::string host, std::string group, std::uint64_t boots, std::int64_t nowMs) {
  entries_.insert_or_assign(std::move(host), NextBootEntry{std::move(group), NextBootEntry::State::Armed, nowMs,
                                                           std::nullopt, boots});
}

bool NextBoot::cancel(std::string_view host) {
  auto it = entries_.find(host);
  if (it == entries_.end()) return false;
  entries_.erase(it);
  return true;
}

NextBoot::Change NextBoot::observe(std::string_view host, const Seen& seen, std::int64_t nowMs) {
  auto it = entries_.find(host);
  if (it == entries_.end()) return Change::None;
  auto& e = it->second;
  if (e.state == NextBootEntry::State::Armed) {
    if (seen.boots <= e.bootsMark) return Change::None;
    // Its boot started. Up within the same observation (a boot whose start was missed, then up) is
    // the next observation's: booting is written first, so a restart between them loses nothing.
    e.state = NextBootEntry::State::Booting;
    e.bootStartedAtMs = nowMs;
    e.bootsMark = seen.boots;
    return Change::Booting;
  }
  if (seen.boots > e.bootsMark || seen.up) {
    entries_.erase(it);
    return Change::Done;
  }
  return Change::None;
}

const NextBootEntry* NextBoot::find(std::string_view host) const {
  auto it = entries_.find(host);
  return it == entries_.end() ? nullptr : &it->second;
}

std::map<std::string, std::string, std::less<>> NextBoot::hostGroups() const {
  std::map<std::string, std::string, std::less<>> out;
  for (const auto& [host, e] : entries_) out.emplace(host, e.group);
  return out;
}

std::string NextBoot::toJson() const {
  json hosts = json::object();
  for (const auto& [host, e] : entries_) {
    json h = {{"group", e.group}, {"state", nextBootStateName(e.state)}, {"armed_at_ms", e.armedAtMs}};
    if (e.bootStartedAtMs) h["boot_started_at_ms"] = *e.bootStartedAtMs;
    hosts[host] = std::move(h);
  }
  return json{{"version", 1}, {"hosts", std::move(hosts)}}.dump(2) + "\n";
}

Result<NextBoot> NextBoot::fromJson(std::string_view text) {
  const json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return Error{"not a JSON object"};
  if (doc.value("version", json()) != json(1)) return Error{"expected \"version\": 1"};
  const auto hosts = doc.find("hosts");
  if (hosts == doc.end() || !hosts->is_object()) return Error{"expected \"hosts\": {...}"};
  NextBoot out;
  for (const auto& [host, h] : hosts->items()) {
    auto bad = [&](std::string_view what) { return Error{fmt::format("host \"{}\": {}", host, what)}; };
    if (!isName(host)) return bad("not a host name");
    if (!h.is_object()) return bad("expected an object");
    NextBootEntry e;
    const auto group = h.find("group");
    if (group == h.end() || !group->is_string() || !isName(group->get<std::string>())) return bad("expected a group name");
    e.group = group->get<std::string>();
    const auto state = h.find("state");
    if (state == h.end() || !state->is_string()) return bad("expected \"state\"");
    if (*state == "armed") e.state = NextBootEntry::State::Armed;
    else if (*state == "booting") e.state = NextBootEntry::State::Booting;
    else return bad("\"state\" is armed or booting");
    const auto armed = h.find("armed_at_ms");
    if (armed == h.end() || !armed->is_number_integer()) return bad("expected \"armed_at_ms\"");
    e.armedAtMs = armed->get<std::int64_t>();
    if (const auto started = h.find("boot_started_at_ms"); started != h.end()) {
      if (!started->is_number_integer()) return bad("\"boot_started_at_ms\" is a number");
      e.bootStartedAtMs = started->get<std::int64_t>();
    }
    e.bootsMark = 0;
    out.entries_.emplace(host, std::move(e));
  }
  return out;
}

}  // namespace pxedust::daemon
