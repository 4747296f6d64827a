// The JSON snapshot (snapshot.hpp), written as text: keys in document order, one host per line.
// Texts are valid UTF-8 (the tracker bounds every peer text, config names are TOML strings), so
// escaping is the JSON string rules alone.
#include "boot/snapshot.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <iterator>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace pxedust::boot {

namespace {

// "2026-11-22T14:50:52.123Z", quoted. Written by hand, not with gmtime_r and fmt: a snapshot of
// 10,000 hosts holds ~150,000 times and this was most of its render.
void appendRfc3339(std::string& out, TimePoint time) {
  using namespace std::chrono;
  const auto millisTotal = floor<milliseconds>(time).time_since_epoch().count();
  constexpr std::int64_t kDay = 86'400'000;
  const std::int64_t daysTotal = millisTotal / kDay - (millisTotal % kDay < 0 ? 1 : 0);  // floor, before 1970 too
  std::int64_t ms = millisTotal - daysTotal * kDay;
  const year_month_day date{sys_days{days{daysTotal}}};
  const auto put = [](char* at, std::int64_t value, int width) {
    for (int i = width - 1; i >= 0; --i, value /= 10) at[i] = static_cast<char>('0' + value % 10);
  };
  char text[] = "\"0000-00-00T00:00:00.000Z\"";
  put(text + 1, std::clamp(static_cast<int>(date.year()), 0, 9999), 4);
  put(text + 6, static_cast<unsigned>(date.month()), 2);
  put(text + 9, static_cast<unsigned>(date.day()), 2);
  put(text + 12, ms / 3'600'000, 2);
  ms %= 3'600'000;
  put(text + 15, ms / 60'000, 2);
  ms %= 60'000;
  put(text + 18, ms / 1000, 2);
  put(text + 21, ms % 1000, 3);
  out.append(text, sizeof text - 1);
}

void appendString(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20)
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(c));
        else
          out += c;
    }
  }
  out += '"';
}

// Members of one object: the separators and key quoting in one place.
class Object {
 public:
  explicit Object(std::string& out) : out_(out) { out_ += '{'; }
  ~Object() { out_ += '}'; }
  Object(const Object&) = delete;
  Object& operator=(const Object&) = delete;

  std::string& key(std::string_view name) {
    if (!first_) out_ += ',';
    first_ = false;
    out_ += '"';
    out_ += name;
    out_ += "\":";
    return out_;
  }
  void text(std::string_view name, std::string_view value) { appendString(key(name), value); }
  void textOrNull(std::string_view name, std::string_view value) {
    if (value.empty())
      key(name) += "null";
    else
      text(name, value);
  }
  void textIfAny(std::string_view name, std::string_view value) {
    if (!value.empty()) text(name, value);
  }
  void number(std::string_view name, std::uint64_t value) { fmt::format_to(std::back_inserter(key(name)), "{}", value); }
  void boolean(std::string_view name, bool value) { key(name) += value ? "true" : "false"; }
  void time(std::string_view name, TimePoint value) { appendRfc3339(key(name), value); }
  void timeOrNull(std::string_view name, const std::optional<TimePoint>& value) {
    if (value)
      time(name, *value);
    else
      key(name) += "null";
  }
  void mac(std::string_view name, const MacAddress& value) {
    static constexpr char kHex[] = "0123456789abcdef";
    char text[] = "\"00:00:00:00:00:00\"";
    for (std::size_t i = 0; i < 6; ++i) {
      text[1 + 3 * i] = kHex[value.bytes()[i] >> 4];
      text[2 + 3 * i] = kHex[value.bytes()[i] & 0xf];
    }
    key(name).append(text, sizeof text - 1);
  }
  void ip(std::string_view name, const std::optional<Ipv4>& value) {
    if (value) text(name, value->toString());
  }

 private:
  std::string& out_;
  bool first_ = true;
};

struct EventDetails {
  Object& o;
  void operator()(const DhcpEvent& e) const {
    o.mac("mac", e.mac);
    o.ip("ip", e.ip);
    if (e.arch) o.number("arch", *e.arch);
    o.textIfAny("vendor_class", e.vendorClass);
    o.ip("relay", e.relay);
    o.textIfAny("host_name", e.hostName);
  }
  void operator()(const ProxyDhcpEvent& e) const {
    o.mac("mac", e.mac);
    o.text("boot_file", e.bootFile);
    o.ip("ip", e.ip);
  }
  void operator()(const FileEvent& e) const {
    o.text("protocol", protocolName(e.protocol));
    o.text("client", e.client.toString());
    o.text("requested", e.requested);
    if (e.served != e.requested) o.textIfAny("served", e.served);
    o.number("bytes", e.bytes);
    o.textIfAny("reason", e.reason);
    if (e.blksize) o.number("blksize", *e.blksize);
    if (e.windowsize) o.number("windowsize", *e.windowsize);
  }
  void operator()(const DiskEvent& e) const {
    o.text("protocol", protocolName(e.protocol));
    o.text("client", e.client.toString());
    o.textIfAny("host", e.hostName);
    o.textIfAny("initiator", e.initiator);
    o.textIfAny("reason", e.reason);
  }
  void operator()(const HostEvent& e) const {
    o.text("client", e.client.toString());
    o.textIfAny("reason", e.reason);
  }
};

std::string_view diskStateName(const DiskState& disk) {
  if (disk.last == DiskKind::Failed) return "failed";
  return disk.sessions > 0 ? "logged_in" : "logged_out";
}

void appendDisk(std::string& out, const DiskState& disk) {
  Object o(out);
  o.text("protocol", protocolName(disk.protocol));
  o.text("host", disk.hostName);
  o.text("initiator", disk.initiator);
  o.number("sessions", disk.sessions);
  o.text("state", diskStateName(disk));
  o.time("since", disk.since);
  o.textIfAny("reason", disk.reason);
}

void appendEvent(std::string& out, const Event& event) {
  Object o(out);
  o.time("time", event.time);
  o.text("kind", kindName(event));
  std::visit(EventDetails{o}, event.what);
}

void appendDocument(std::string& out, const TrackerCopy& copy, std::string_view extra,
                    const std::function<void(const std::shared_ptr<const HostState>&)>& host) {
  out += "{\"generation\":";
  fmt::format_to(std::back_inserter(out), "{}", copy.generation);
  out += ",\"time\":";
  appendRfc3339(out, copy.time);
  out += ",\"stages\":";
  {
    Object stages(out);
    for (const auto& [stage, count] : copy.stages) stages.number(stage, count);
  }
  if (!extra.empty()) {
    out += ',';
    out += extra;
  }
  out += ",\"hosts\":[";
  for (std::size_t i = 0; i < copy.hosts.size(); ++i) {
    out += i == 0 ? "\n" : ",\n";
    host(copy.hosts[i]);
  }
  out += "\n]}\n";
}

}  // namespace

std::string rfc3339(TimePoint time) {
  std::string out;
  appendRfc3339(out, time);
  return out.substr(1, out.size() - 2);
}

void appendHostJson(std::string& out, const HostState& host) { SnapshotWriter::appendHost(out, host, nullptr, nullptr); }

void SnapshotWriter::appendHost(std::string& out, const HostState& host, const Cached* old, std::vector<EventSpan>* spans) {
  const std::size_t base = out.size();
  const bool seen = host.stage != Stage::Unseen;
  Object o(out);
  o.textOrNull("name", host.name);
  o.boolean("configured", host.configured);
  if (host.mac)
    o.mac("mac", *host.mac);
  else
    o.key("mac") += "null";
  if (host.ip)
    o.text("ip", host.ip->toString());
  else
    o.key("ip") += "null";
  o.text("stage", stageName(host.stage));
  o.timeOrNull("stage_since", seen ? std::optional(host.stageSince) : std::nullopt);
  o.textOrNull("failure", host.stage == Stage::Failed ? std::string_view(host.failure) : std::string_view());
  o.timeOrNull("boot_started", host.bootStarted);
  o.timeOrNull("last_seen", host.lastSeen);
  o.number("boots", host.boots);
  o.number("failures", host.failures);
  o.textOrNull("last_file", host.lastFile);
  if (host.disk)
    appendDisk(o.key("disk"), *host.disk);
  else
    o.key("disk") += "null";
  std::string& events = o.key("events");
  events += '[';
  std::size_t next = 0;  // old->events is in seq order as host.events is (but for folded hosts)
  for (const auto& event : host.events) {
    if (&event != &host.events.front()) events += ',';
    const std::size_t start = events.size();
    if (old != nullptr) {
      while (next < old->events.size() && old->events[next].seq < event.seq) ++next;
    }
    if (old != nullptr && next < old->events.size() && old->events[next].seq == event.seq) {
      events.append(old->text, old->events[next].offset, old->events[next].size);
    } else {
      appendEvent(events, event);
    }
    if (spans != nullptr) spans->push_back({event.seq, start - base, events.size() - start});
  }
  events += ']';
}

TrackerCopy copyOf(const Tracker& tracker) {
  return {tracker.generation(), tracker.now(), tracker.stageCounts(), tracker.sharedHosts()};
}

const std::string& SnapshotWriter::render(const TrackerCopy& copy, std::string_view extra) {
  std::unordered_map<std::uint64_t, Cached> next;
  next.reserve(copy.hosts.size());
  out_.clear();  // keeps its capacity: no new pages for the next render
  appendDocument(out_, copy, extra, [&](const std::shared_ptr<const HostState>& state) {
    auto [slot, added] = next.try_emplace(state->id);
    if (added) {
      auto old = cache_.find(state->id);
      if (old != cache_.end() && old->second.version == state->version) {
        slot->second = std::move(old->second);
      } else {
        slot->second.version = state->version;
        slot->second.events.reserve(state->events.size());
        appendHost(slot->second.text, *state, old != cache_.end() ? &old->second : nullptr, &slot->second.events);
      }
    }
    out_ += slot->second.text;
  });
  cache_ = std::move(next);  // states no longer in the tracker are let go
  return out_;
}

nlohmann::json snapshot(const TrackerCopy& copy) {
  std::string text;
  appendDocument(text, copy, {}, [&](const std::shared_ptr<const HostState>& state) { appendHostJson(text, *state); });
  return nlohmann::json::parse(text);
}

nlohmann::json snapshot(const Tracker& tracker) { return snapshot(copyOf(tracker)); }

}  // namespace pxedust::boot
