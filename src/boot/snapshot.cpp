// The JSON snapshot (snapshot.hpp): one function per object, keys as documented there.
#include "boot/snapshot.hpp"

#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace pxedust::boot {

using nlohmann::json;

std::string rfc3339(TimePoint time) {
  using namespace std::chrono;
  const auto seconds = floor<std::chrono::seconds>(time);
  const auto millis = duration_cast<milliseconds>(time - seconds).count();
  const std::time_t t = Clock::to_time_t(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
}

namespace {

json timeOrNull(const std::optional<TimePoint>& time) { return time ? json(rfc3339(*time)) : json(nullptr); }
json textOrNull(const std::string& text) { return text.empty() ? json(nullptr) : json(text); }

void putText(json& out, const char* key, const std::string& text) {
  if (!text.empty()) out[key] = text;
}
void putIp(json& out, const char* key, const std::optional<Ipv4>& ip) {
  if (ip) out[key] = ip->toString();
}

struct EventDetails {
  json& out;
  void operator()(const DhcpEvent& e) const {
    out["mac"] = e.mac.toString();
    putIp(out, "ip", e.ip);
    if (e.arch) out["arch"] = *e.arch;
    putText(out, "vendor_class", e.vendorClass);
    putIp(out, "relay", e.relay);
    putText(out, "host_name", e.hostName);
  }
  void operator()(const ProxyDhcpEvent& e) const {
    out["mac"] = e.mac.toString();
    out["boot_file"] = e.bootFile;
    putIp(out, "ip", e.ip);
  }
  void operator()(const FileEvent& e) const {
    out["protocol"] = protocolName(e.protocol);
    out["client"] = e.client.toString();
    out["requested"] = e.requested;
    if (e.served != e.requested) putText(out, "served", e.served);
    out["bytes"] = e.bytes;
    putText(out, "reason", e.reason);
    if (e.blksize) out["blksize"] = *e.blksize;
    if (e.windowsize) out["windowsize"] = *e.windowsize;
  }
  void operator()(const DiskEvent& e) const {
    out["protocol"] = protocolName(e.protocol);
    out["client"] = e.client.toString();
    putText(out, "host", e.hostName);
    putText(out, "initiator", e.initiator);
    putText(out, "reason", e.reason);
  }
};

std::string_view diskStateName(const DiskState& disk) {
  if (disk.last == DiskKind::Failed) return "failed";
  return disk.sessions > 0 ? "logged_in" : "logged_out";
}

json diskJson(const DiskState& disk) {
  json out = {{"protocol", protocolName(disk.protocol)},
              {"host", disk.hostName},
              {"initiator", disk.initiator},
              {"sessions", disk.sessions},
              {"state", diskStateName(disk)},
              {"since", rfc3339(disk.since)}};
  putText(out, "reason", disk.reason);
  return out;
}

}  // namespace

json eventJson(const Event& event) {
  json out = {{"time", rfc3339(event.time)}, {"kind", kindName(event)}};
  std::visit(EventDetails{out}, event.what);
  return out;
}

json hostJson(const HostState& host) {
  json events = json::array();
  for (const auto& event : host.events) events.push_back(eventJson(event));
  const bool seen = host.stage != Stage::Unseen;
  return {
      {"name", textOrNull(host.name)},
      {"configured", host.configured},
      {"mac", host.mac ? json(host.mac->toString()) : json(nullptr)},
      {"ip", host.ip ? json(host.ip->toString()) : json(nullptr)},
      {"stage", stageName(host.stage)},
      {"stage_since", seen ? json(rfc3339(host.stageSince)) : json(nullptr)},
      {"failure", host.stage == Stage::Failed ? textOrNull(host.failure) : json(nullptr)},
      {"boot_started", timeOrNull(host.bootStarted)},
      {"last_seen", timeOrNull(host.lastSeen)},
      {"boots", host.boots},
      {"failures", host.failures},
      {"last_file", textOrNull(host.lastFile)},
      {"disk", host.disk ? diskJson(*host.disk) : json(nullptr)},
      {"events", std::move(events)},
  };
}

TrackerCopy copyOf(const Tracker& tracker) {
  return {tracker.generation(), tracker.now(), tracker.stageCounts(), tracker.sharedHosts()};
}

json snapshot(const TrackerCopy& copy) {
  json stages = json::object();
  for (const auto& [stage, count] : copy.stages) stages[std::string(stage)] = count;
  json hosts = json::array();
  for (const auto& host : copy.hosts) hosts.push_back(hostJson(*host));
  return {{"generation", copy.generation},
          {"time", rfc3339(copy.time)},
          {"stages", std::move(stages)},
          {"hosts", std::move(hosts)}};
}

json snapshot(const Tracker& tracker) { return snapshot(copyOf(tracker)); }

}  // namespace pxedust::boot
