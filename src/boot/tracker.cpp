// The boot tracker (tracker.hpp): resolution of events to hosts, the stage rules, the bounds.
//
// Configured hosts live in a vector parallel to the inventory's hosts, so an inventory lookup is
// the index. Unknown clients live in a list ordered by last event (splice on each event: O(1)), with
// one index by MAC and one for clients known by IP only; eviction takes the list's tail.
//
// Each host's state is held by a shared pointer and copied on write: a snapshot (copyOf) shares
// the states as they are (10,000 hosts: a pointer each, well under a millisecond on the loop), and
// the first change to a host that a snapshot still holds copies that one host (own()). Every write
// access also moves the state's version, so a writer of snapshot text can tell a host it rendered
// already without holding on to its state (which would make every change a copy).
#include "boot/tracker.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <iterator>
#include <utility>
#include <variant>

#include <fmt/format.h>

#include "boot/text.hpp"

namespace pxedust::boot {
namespace {

// Buckets for a network boot: it reaches its root disk in ~5 s under KVM, ~35 s under TCG and
// 10-60 s on real hardware (firmware, then a 30 MB initrd); the early stages (address, boot
// program) take from under a second to a few; a stuck boot takes minutes (TrackerOptions::idleBoot,
// after which its next DISCOVER starts a new boot, is 300 s by default).
constexpr double kStageBuckets[] = {0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600};
constexpr std::string_view kStageLabel[] = {"stage"};
constexpr metrics::Family kStageSeconds{
    "pxedust_boot_stage_seconds",
    "Seconds from a boot's start (the client's network-boot DHCP DISCOVER) to the first time the boot reached "
    "each stage (address, boot_program, boot_files, root_disk, up, failed); once per boot and stage.",
    metrics::Type::Histogram, kStageLabel, kStageBuckets};

// The stages a boot is timed to: those after its start.
constexpr Stage kTimedStages[] = {Stage::Address, Stage::BootProgram, Stage::BootFiles, Stage::RootDisk,
                                  Stage::Up, Stage::Failed};
static_assert(kStageCount <= 8, "HostState::stagesTimed has a bit for each stage");

}  // namespace

std::string_view stageName(Stage stage) {
  switch (stage) {
    case Stage::Unseen: return "unseen";
    case Stage::Dhcp: return "dhcp";
    case Stage::Address: return "address";
    case Stage::BootProgram: return "boot_program";
    case Stage::BootFiles: return "boot_files";
    case Stage::RootDisk: return "root_disk";
    case Stage::Up: return "up";
    case Stage::Failed: return "failed";
  }
  return "unknown";
}

namespace {

HostState configuredState(const inventory::Host& host) {
  HostState state;
  state.name = host.name;
  state.configured = true;
  state.mac = host.mac;
  if (host.ip) state.ip = Ipv4(host.ip->to_uint());
  return state;
}

// The state behind `held`, for writing: copied first if a snapshot shares it, and its version moved.
HostState& own(std::shared_ptr<HostState>& held) {
  if (held.use_count() != 1) {
    held = std::make_shared<HostState>(std::as_const(*held));
  } else {
    // The snapshot that last shared it let go on another thread: see its reads as done.
    std::atomic_thread_fence(std::memory_order_acquire);
  }
  ++held->version;
  return *held;
}

// The new inventory's host that `old` is: same configured MAC, else IP, else name.
const inventory::Host* sameHost(const inventory::Inventory& inventory, const inventory::Host& old) {
  if (old.mac)
    if (const auto* host = inventory.byMac(*old.mac)) return host;
  if (old.ip)
    if (const auto* host = inventory.byIp(*old.ip)) return host;
  return inventory.byName(old.name);
}

// `state`'s history under `slot`'s identity (name, configured MAC and IP win over observed ones).
void adopt(HostState& slot, HostState state) {
  state.name = std::move(slot.name);
  state.configured = true;
  if (slot.mac) state.mac = slot.mac;
  if (slot.ip) state.ip = slot.ip;
  slot = std::move(state);
}

void forget(HostState& state) {
  state.name.clear();
  state.configured = false;
}

std::string fileFailure(const FileEvent& file) {
  const std::string& name = file.served.empty() ? file.requested : file.served;
  return fmt::format("{}: {}", name, file.reason.empty() ? "failed" : file.reason);
}

std::string diskFailure(const DiskEvent& disk) {
  return fmt::format("{} login{}{}: {}", protocolName(disk.protocol), disk.hostName.empty() ? "" : " to ",
                     disk.hostName, disk.reason.empty() ? "failed" : disk.reason);
}

}  // namespace

Tracker::Tracker(std::shared_ptr<const inventory::Inventory> inventory, Now clock, TrackerOptions options)
    : inventory_(std::move(inventory)),
      clock_(std::move(clock)),
      options_(options),
      stageSeconds_(kStageCount, metrics::Histogram(kStageSeconds)) {
  options_.eventsPerHost = std::max<std::size_t>(options_.eventsPerHost, 1);
  options_.maxUnknownHosts = std::max<std::size_t>(options_.maxUnknownHosts, 1);
  configured_ = configuredStates(*inventory_);
}

std::vector<std::shared_ptr<HostState>> Tracker::configuredStates(const inventory::Inventory& inventory) {
  std::vector<std::shared_ptr<HostState>> states;
  states.reserve(inventory.hosts().size());
  for (const auto& host : inventory.hosts()) {
    states.push_back(std::make_shared<HostState>(configuredState(host)));
    states.back()->id = nextId_++;
  }
  return states;
}

void Tracker::record(const Event& event) {
  Event stamped = event;
  stamped.time = clock_();
  stamped.seq = ++lastEventSeq_;
  boundTexts(stamped, options_.maxText);
  HostState& host = std::visit([&](const auto& what) -> HostState& { return handle(what, stamped); }, stamped.what);
  remember(host, std::move(stamped));
  changed();
}

// ---- Stage rules --------------------------------------------------------------------------------

HostState& Tracker::handle(const DhcpEvent& dhcp, const Event& event) {
  HostState& host = entryForMac(dhcp.mac);
  const TimePoint now = event.time;
  switch (dhcp.kind) {
    case DhcpKind::Discover:
      if (startsNewBoot(host, dhcp, now))
        startBoot(host, now);
      else if (host.stage == Stage::Unseen)
        enter(host, Stage::Dhcp, now);
      break;
    case DhcpKind::Offer:
      if (host.stage == Stage::Unseen) enter(host, Stage::Dhcp, now);
      break;
    case DhcpKind::Ack:
      if (dhcp.ip) bind(host, *dhcp.ip);
      if (host.stage == Stage::Unseen || host.stage == Stage::Dhcp) enter(host, Stage::Address, now);
      break;
    case DhcpKind::Nak:
    case DhcpKind::Decline:
    case DhcpKind::Release:
      break;  // the client starts over or goes away; its next DISCOVER says which
  }
  return host;
}

HostState& Tracker::handle(const ProxyDhcpEvent& proxy, const Event& event) {
  HostState& host = entryForMac(proxy.mac);
  if (proxy.ip) bind(host, *proxy.ip);
  if (host.stage == Stage::Unseen) enter(host, Stage::Dhcp, event.time);
  return host;
}

HostState& Tracker::handle(const FileEvent& file, const Event& event) {
  HostState& host = entryForIp(file.client, {});
  if (!host.ip) host.ip = file.client;
  switch (file.result) {
    case FileResult::Completed:
      // lastFile is cleared when a boot starts: the boot's first file is its boot program.
      if (host.stage != Stage::Up) enter(host, host.lastFile.empty() ? Stage::BootProgram : Stage::BootFiles, event.time);
      host.lastFile = file.served.empty() ? file.requested : file.served;
      break;
    case FileResult::NotFound:
    case FileResult::Aborted:
      break;  // probes and size queries, part of a normal boot
    case FileResult::Failed:
      fail(host, fileFailure(file), event.time);
      break;
  }
  return host;
}

HostState& Tracker::handle(const DiskEvent& disk, const Event& event) {
  HostState& host = entryForIp(disk.client, disk.hostName);
  if (!host.ip) host.ip = disk.client;
  DiskState& state = host.disk ? *host.disk : host.disk.emplace();
  state.protocol = disk.protocol;
  if (!disk.hostName.empty()) state.hostName = disk.hostName;
  if (!disk.initiator.empty()) state.initiator = disk.initiator;
  state.last = disk.kind;
  state.reason = disk.reason;
  state.since = event.time;
  switch (disk.kind) {
    case DiskKind::Login:
      ++state.sessions;
      if (host.stage != Stage::Up) enter(host, Stage::RootDisk, event.time);
      break;
    case DiskKind::Logout:
      if (state.sessions > 0) --state.sessions;  // a session that began before we were told
      break;
    case DiskKind::Failed:
      fail(host, diskFailure(disk), event.time);
      break;
  }
  return host;
}

HostState& Tracker::handle(const HostEvent& report, const Event& event) {
  HostState& host = entryForIp(report.client, {});
  if (!host.ip) host.ip = report.client;
  if (report.kind == HostKind::Failed) {
    fail(host, "boot: " + (report.reason.empty() ? std::string("failed") : report.reason), event.time);
    return host;
  }
  host.failure.clear();
  enter(host, Stage::Up, event.time);
  return host;
}

bool Tracker::startsNewBoot(const HostState& host, const DhcpEvent& discover, TimePoint now) const {
  if (!fromNetworkBootClient(discover)) return false;  // an operating system's DHCP client
  if (!host.bootStarted) return true;
  switch (host.stage) {
    case Stage::BootFiles:
    case Stage::RootDisk:
    case Stage::Up:
    case Stage::Failed:
      return true;  // the firmware starting over after the boot got somewhere
    default:
      break;  // a retransmission, a restart after NAK/DECLINE, or a chain-loaded iPXE's own DHCP
  }
  return host.lastSeen && now - *host.lastSeen >= options_.idleBoot;
}

void Tracker::startBoot(HostState& host, TimePoint now) {
  host.stage = Stage::Dhcp;
  host.stageSince = now;
  host.bootStarted = now;
  ++host.boots;
  host.failure.clear();
  host.lastFile.clear();
  host.stagesTimed = 0;
  // The disk stays: sessions of the previous boot live on in the target until it sees them end.
}

void Tracker::enter(HostState& host, Stage stage, TimePoint now) {
  if (host.stage == stage) return;
  host.stage = stage;
  host.stageSince = now;
  timeStage(host, stage, now);
}

void Tracker::timeStage(HostState& host, Stage stage, TimePoint now) {
  const auto bit = static_cast<std::uint8_t>(1U << static_cast<unsigned>(stage));
  if (!host.bootStarted || std::ranges::find(kTimedStages, stage) == std::end(kTimedStages) ||
      (host.stagesTimed & bit) != 0)
    return;
  host.stagesTimed |= bit;
  const std::chrono::duration<double> seconds = now - *host.bootStarted;
  stageSeconds_[static_cast<std::size_t>(stage)].observe(std::max(seconds.count(), 0.0));
}

void Tracker::fail(HostState& host, std::string reason, TimePoint now) {
  enter(host, Stage::Failed, now);
  host.failure = std::move(reason);
  ++host.failures;
}

void Tracker::remember(HostState& host, Event event) const {
  host.lastSeen = event.time;
  host.events.push_back(std::move(event));
  while (host.events.size() > options_.eventsPerHost) host.events.pop_front();
}

// `from` and `into` are one machine seen two ways (by IP first, by MAC later): `into` keeps its
// own boot if it has seen one, else takes `from`'s; the events interleave by time.
void Tracker::fold(HostState& from, HostState& into) const {
  std::deque<Event> events;
  std::merge(std::make_move_iterator(from.events.begin()), std::make_move_iterator(from.events.end()),
             std::make_move_iterator(into.events.begin()), std::make_move_iterator(into.events.end()),
             std::back_inserter(events), [](const Event& a, const Event& b) { return a.time < b.time; });
  while (events.size() > options_.eventsPerHost) events.pop_front();
  into.events = std::move(events);
  into.boots += from.boots;
  into.failures += from.failures;
  if (into.stage == Stage::Unseen) {
    into.stage = from.stage;
    into.stageSince = from.stageSince;
    into.bootStarted = from.bootStarted;
    into.failure = std::move(from.failure);
    into.lastFile = std::move(from.lastFile);
    into.stagesTimed = from.stagesTimed;
  }
  if (!into.disk) into.disk = std::move(from.disk);
  if (!into.mac) into.mac = from.mac;
  if (!into.ip) into.ip = from.ip;
  if (!into.lastSeen || (from.lastSeen && *from.lastSeen > *into.lastSeen)) into.lastSeen = from.lastSeen;
}

void Tracker::changed() {
  ++generation_;
  if (onChange_) onChange_();
}

// ---- Resolution ---------------------------------------------------------------------------------

std::optional<std::size_t> Tracker::configuredIndex(const inventory::Host* host) const {
  if (!host) return std::nullopt;
  return static_cast<std::size_t>(host - inventory_->hosts().data());
}

std::optional<std::size_t> Tracker::configuredByMac(const MacAddress& mac) const {
  return configuredIndex(inventory_->byMac(mac));
}

std::optional<std::size_t> Tracker::configuredByIp(Ipv4 ip) const {
  return configuredIndex(inventory_->byIp(asio::ip::address_v4(ip.value())));
}

HostState& Tracker::entryForMac(const MacAddress& mac) {
  if (auto i = configuredByMac(mac)) return own(configured_[*i]);
  if (auto it = unknownByMac_.find(mac.value()); it != unknownByMac_.end()) return touchUnknown(it->second);
  HostState state;
  state.mac = mac;
  return addUnknown(std::move(state));
}

HostState& Tracker::entryForIp(Ipv4 ip, std::string_view diskOwner) {
  if (auto i = configuredByIp(ip)) return own(configured_[*i]);
  if (auto bound = bindings_.find(ip.value()); bound != bindings_.end()) {
    if (auto i = configuredByMac(bound->second)) return own(configured_[*i]);
    if (auto it = unknownByMac_.find(bound->second.value()); it != unknownByMac_.end())
      return touchUnknown(it->second);
  }
  if (!diskOwner.empty())
    if (auto i = configuredIndex(inventory_->byName(diskOwner))) return own(configured_[*i]);
  if (auto it = unknownByIp_.find(ip.value()); it != unknownByIp_.end()) return touchUnknown(it->second);
  HostState state;
  state.ip = ip;
  return addUnknown(std::move(state));
}

HostState& Tracker::touchUnknown(UnknownList::iterator it) {
  unknown_.splice(unknown_.begin(), unknown_, it);
  return own(*it);
}

HostState& Tracker::addUnknown(HostState state) {
  state.id = nextId_++;
  unknown_.push_front(std::make_shared<HostState>(std::move(state)));
  auto it = unknown_.begin();
  if ((*it)->mac)
    unknownByMac_[(*it)->mac->value()] = it;
  else
    unknownByIp_[(*it)->ip->value()] = it;
  evictOverBound();  // the new entry is at the front and the bound is at least 1: it stays
  return **it;
}

void Tracker::eraseUnknown(UnknownList::iterator it) {
  const HostState& state = **it;
  if (state.mac) {
    unknownByMac_.erase(state.mac->value());
    if (state.ip)
      if (auto bound = bindings_.find(state.ip->value()); bound != bindings_.end() && bound->second == *state.mac)
        bindings_.erase(bound);
  } else if (state.ip) {
    unknownByIp_.erase(state.ip->value());
  }
  unknown_.erase(it);
}

void Tracker::evictOverBound() {
  while (unknown_.size() > options_.maxUnknownHosts) eraseUnknown(std::prev(unknown_.end()));
}

void Tracker::bind(HostState& host, Ipv4 ip) {
  if (host.mac) {
    if (host.ip && *host.ip != ip)
      if (auto old = bindings_.find(host.ip->value()); old != bindings_.end() && old->second == *host.mac)
        bindings_.erase(old);
    bindings_[ip.value()] = *host.mac;
  }
  host.ip = ip;
  if (auto byIp = unknownByIp_.find(ip.value()); byIp != unknownByIp_.end() && byIp->second->get() != &host) {
    auto it = byIp->second;
    fold(own(*it), host);
    eraseUnknown(it);
  }
}

// ---- Reload -------------------------------------------------------------------------------------

void Tracker::setInventory(std::shared_ptr<const inventory::Inventory> inventory) {
  std::vector<std::shared_ptr<HostState>> next = configuredStates(*inventory);
  std::vector<bool> taken(next.size(), false);
  auto place = [&](std::size_t slot, std::shared_ptr<HostState>& state) {
    if (taken[slot]) {
      fold(own(state), *next[slot]);
    } else {
      adopt(*next[slot], std::move(own(state)));
      taken[slot] = true;
    }
  };
  // Configured hosts follow their match; those gone become unknown clients if they were seen.
  for (std::size_t i = 0; i < configured_.size(); ++i) {
    auto& state = configured_[i];
    const auto* host = sameHost(*inventory, inventory_->hosts()[i]);
    if (host) {
      place(static_cast<std::size_t>(host - inventory->hosts().data()), state);
    } else if (state->lastSeen && (state->mac || state->ip)) {
      forget(own(state));
      unknown_.push_back(std::move(state));
    }
  }
  // Unknown clients that are configured now become those hosts.
  for (auto it = unknown_.begin(); it != unknown_.end();) {
    const HostState& state = **it;
    const auto* host = state.mac ? inventory->byMac(*state.mac)
                                 : inventory->byIp(asio::ip::address_v4(state.ip->value()));
    if (!host) {
      ++it;
      continue;
    }
    place(static_cast<std::size_t>(host - inventory->hosts().data()), *it);
    it = unknown_.erase(it);
  }
  inventory_ = std::move(inventory);
  configured_ = std::move(next);
  unknown_.sort([](const auto& a, const auto& b) { return a->lastSeen > b->lastSeen; });
  rebuildUnknownIndexes();
  evictOverBound();
  pruneBindings();
  changed();
}

// After a reload two unknown entries may share a key (a removed host's MAC was also seen as an
// unknown client before it was configured): the more recent keeps the key and the other is folded.
void Tracker::rebuildUnknownIndexes() {
  unknownByMac_.clear();
  unknownByIp_.clear();
  for (auto it = unknown_.begin(); it != unknown_.end();) {
    const auto next = std::next(it);
    std::optional<UnknownList::iterator> holder;
    const HostState& state = **it;
    if (state.mac) {
      auto [slot, added] = unknownByMac_.try_emplace(state.mac->value(), it);
      if (!added) holder = slot->second;
    } else {
      auto [slot, added] = unknownByIp_.try_emplace(state.ip->value(), it);
      if (!added) holder = slot->second;
    }
    if (holder) {
      fold(own(*it), own(**holder));
      unknown_.erase(it);
    }
    it = next;
  }
}

// A binding is kept only while an entry with that MAC holds that address.
void Tracker::pruneBindings() {
  auto holds = [&](const HostState& state, std::uint32_t ip, const MacAddress& mac) {
    return state.mac && *state.mac == mac && state.ip && state.ip->value() == ip;
  };
  std::erase_if(bindings_, [&](const auto& binding) {
    const auto& [ip, mac] = binding;
    if (auto i = configuredByMac(mac)) return !holds(*configured_[*i], ip, mac);
    auto it = unknownByMac_.find(mac.value());
    return it == unknownByMac_.end() || !holds(**it->second, ip, mac);
  });
}

// ---- Reading ------------------------------------------------------------------------------------

std::vector<const HostState*> Tracker::hosts() const {
  std::vector<const HostState*> out;
  out.reserve(configured_.size() + unknown_.size());
  for (const auto& state : configured_) out.push_back(state.get());
  for (const auto& state : unknown_) out.push_back(state.get());
  return out;
}

std::vector<std::shared_ptr<const HostState>> Tracker::sharedHosts() const {
  std::vector<std::shared_ptr<const HostState>> out;
  out.reserve(configured_.size() + unknown_.size());
  out.insert(out.end(), configured_.begin(), configured_.end());
  out.insert(out.end(), unknown_.begin(), unknown_.end());
  return out;
}

const HostState* Tracker::findByName(std::string_view name) const {
  auto i = configuredIndex(inventory_->byName(name));
  return i ? configured_[*i].get() : nullptr;
}

const HostState* Tracker::findByMac(const MacAddress& mac) const {
  if (auto i = configuredByMac(mac)) return configured_[*i].get();
  auto it = unknownByMac_.find(mac.value());
  return it == unknownByMac_.end() ? nullptr : it->second->get();
}

const HostState* Tracker::findByIp(Ipv4 ip) const {
  if (auto i = configuredByIp(ip)) return configured_[*i].get();
  if (auto bound = bindings_.find(ip.value()); bound != bindings_.end())
    if (const auto* state = findByMac(bound->second)) return state;
  auto it = unknownByIp_.find(ip.value());
  return it == unknownByIp_.end() ? nullptr : it->second->get();
}

void Tracker::writeStageSeconds(metrics::Writer& out) const {
  out.declare(kStageSeconds);
  for (Stage stage : kTimedStages) out.histogram(kStageSeconds, {stageName(stage)}, stageSeconds(stage));
}

std::vector<std::pair<std::string_view, std::size_t>> Tracker::stageCounts() const {
  std::array<std::size_t, kStageCount> counts{};
  for (const auto* state : hosts()) ++counts[static_cast<std::size_t>(state->stage)];
  std::vector<std::pair<std::string_view, std::size_t>> out;
  out.reserve(kStageCount);
  for (std::size_t s = 0; s < kStageCount; ++s) out.emplace_back(stageName(static_cast<Stage>(s)), counts[s]);
  return out;
}

}  // namespace pxedust::boot
