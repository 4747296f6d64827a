// The lease database's allocation side: client keys and lease states, the pools (ranges, the
// never-used cursor, the free-longest set), the records and their indexes, offer/bind/release/decline
// and the pool statistics. The journal (format, sync, compaction, load) is in lease_journal.cpp.
#include "dhcp/leases.hpp"

#include <algorithm>
#include <cerrno>
#include <iterator>

#include <fmt/format.h>

#include "common/checked.hpp"
#include "dhcp/lease_journal.hpp"

namespace pxedust::dhcp {
namespace {

std::uint32_t maskOf(std::uint8_t prefix) { return prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix); }

Error leaseError(LeaseErrc c, std::string message) { return Error{std::move(message), static_cast<int>(c)}; }

}  // namespace

// ---- small value types -------------------------------------------------------------------------

std::string formatLeaseAddress(std::uint32_t a) {
  return fmt::format("{}.{}.{}.{}", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

std::optional<std::uint32_t> parseLeaseAddress(std::string_view text) {
  std::uint32_t out = 0;
  for (int part = 0; part < 4; ++part) {
    auto dot = text.find('.');
    auto tok = text.substr(0, dot);
    if ((dot == std::string_view::npos) != (part == 3)) return std::nullopt;
    if (tok.empty() || tok.size() > 3 || (tok.size() > 1 && tok[0] == '0')) return std::nullopt;
    auto d = parseDecimal(tok);
    if (!d || d->value > 255) return std::nullopt;
    out = out << 8 | static_cast<std::uint32_t>(d->value);
    if (dot != std::string_view::npos) text.remove_prefix(dot + 1);
  }
  return out;
}

ClientKey ClientKey::fromMac(const MacAddress& mac) {
  ClientKey k;
  k.kind_ = Kind::HwAddr;
  k.bytes_.assign(mac.bytes().begin(), mac.bytes().end());
  return k;
}

ClientKey ClientKey::fromClientId(std::span<const std::uint8_t> id) {
  ClientKey k;
  k.kind_ = Kind::ClientId;
  k.bytes_.assign(id.begin(), id.begin() + static_cast<std::ptrdiff_t>(std::min(id.size(), kMaxBytes)));
  return k;
}

ClientKey ClientKey::identify(std::span<const std::uint8_t> clientId, const MacAddress& mac) {
  return clientId.empty() ? fromMac(mac) : fromClientId(clientId);
}

std::string ClientKey::toString() const {
  std::string s = kind_ == Kind::HwAddr ? "hw:" : "id:";
  journal::appendHex(s, bytes_, true);
  return s;
}

std::optional<ClientKey> ClientKey::parse(std::string_view text) {
  ClientKey k;
  if (text.starts_with("hw:")) {
    k.kind_ = Kind::HwAddr;
  } else if (text.starts_with("id:")) {
    k.kind_ = Kind::ClientId;
  } else {
    return std::nullopt;
  }
  auto bytes = journal::parseHex(text.substr(3), true);
  if (!bytes || bytes->empty() || bytes->size() > kMaxBytes) return std::nullopt;
  if (k.kind_ == Kind::HwAddr && bytes->size() != 6) return std::nullopt;
  k.bytes_ = std::move(*bytes);
  return k;
}

std::size_t ClientKey::hash() const {
  // FNV-1a over the kind and the bytes.
  std::uint64_t h = 1469598103934665603ULL ^ static_cast<std::uint8_t>(kind_);
  for (auto b : bytes_) h = (h ^ b) * 1099511628211ULL;
  return static_cast<std::size_t>(h);
}

std::string_view leaseStateName(LeaseState s) {
  switch (s) {
    case LeaseState::Offered: return "offered";
    case LeaseState::Bound: return "bound";
    case LeaseState::Released: return "released";
    case LeaseState::Declined: return "declined";
    case LeaseState::Expired: return "expired";
  }
  return "unknown";
}

LeaseState Lease::stateAt(UnixTime now) const {
  if (state == LeaseState::Released) return state;
  return expiry > now ? state : LeaseState::Expired;
}

// ---- pools -------------------------------------------------------------------------------------

Result<std::vector<LeaseDb::Pool>> LeaseDb::buildPools(std::vector<PoolConfig> configs,
                                                        std::vector<RangeRef>& ranges) {
  std::vector<Pool> pools;
  ranges.clear();
  std::unordered_set<std::uint32_t> ids;
  for (auto& c : configs) {
    const auto name = fmt::format("pool of subnet {} ({}/{})", c.subnetId, formatLeaseAddress(c.network),
                                  c.prefixLength);
    if (c.subnetId == 0) return Error{fmt::format("{}: subnet id 0 is reserved", name), EINVAL};
    if (!ids.insert(c.subnetId).second) return Error{fmt::format("{}: duplicate subnet id", name), EINVAL};
    if (c.prefixLength > 32) return Error{fmt::format("{}: prefix length above 32", name), EINVAL};
    const auto mask = maskOf(c.prefixLength);
    if ((c.network & ~mask) != 0) return Error{fmt::format("{}: network address has host bits set", name), EINVAL};
    if (c.leaseTime == 0) return Error{fmt::format("{}: lease time must be at least 1 s", name), EINVAL};
    Pool p;
    p.broadcast = c.network | ~mask;
    for (const auto& r : c.ranges) {
      if (r.first > r.last || (r.first & mask) != c.network || (r.last & mask) != c.network) {
        return Error{fmt::format("{}: range {}-{} is empty or not inside the subnet", name, formatLeaseAddress(r.first),
                                 formatLeaseAddress(r.last)),
                     EINVAL};
      }
      p.total += std::uint64_t{r.last} - r.first + 1;
      if (c.prefixLength <= 30) {
        if (c.network >= r.first && c.network <= r.last) --p.total;
        if (p.broadcast >= r.first && p.broadcast <= r.last) --p.total;
      }
      ranges.push_back(RangeRef{r.first, r.last, pools.size()});
    }
    p.cursorNext = c.ranges.empty() ? 0 : c.ranges.front().first;
    p.config = std::move(c);
    pools.push_back(std::move(p));
  }
  std::sort(ranges.begin(), ranges.end(), [](const RangeRef& a, const RangeRef& b) { return a.first < b.first; });
  for (std::size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first <= ranges[i - 1].last) {
      return Error{fmt::format("address range {}-{} (subnet {}) overlaps {}-{} (subnet {})",
                               formatLeaseAddress(ranges[i].first), formatLeaseAddress(ranges[i].last),
                               pools[ranges[i].pool].config.subnetId, formatLeaseAddress(ranges[i - 1].first),
                               formatLeaseAddress(ranges[i - 1].last), pools[ranges[i - 1].pool].config.subnetId),
                   EINVAL};
    }
  }
  return pools;
}

void LeaseDb::applyPools(std::vector<Pool> pools, std::vector<RangeRef> ranges, std::vector<std::uint32_t> reserved) {
  pools_ = std::move(pools);
  ranges_ = std::move(ranges);
  reserved_ = std::unordered_set<std::uint32_t>(reserved.begin(), reserved.end());
  for (auto& [addr, e] : byAddr_) {
    e.pool = poolOf(addr);
    if (inFreeSet(e)) pools_[static_cast<std::size_t>(e.pool)].byFreeTime.emplace(e.lease.expiry, addr);
  }
}

int LeaseDb::poolOf(std::uint32_t address) const {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), address,
                             [](std::uint32_t a, const RangeRef& r) { return a < r.first; });
  if (it == ranges_.begin()) return -1;
  --it;
  return address <= it->last ? static_cast<int>(it->pool) : -1;
}

bool LeaseDb::assignable(const Pool& p, std::uint32_t a) const {
  if (p.config.prefixLength <= 30 && (a == p.config.network || a == p.broadcast)) return false;
  return !reserved_.contains(a);
}

bool LeaseDb::inFreeSet(const Entry& e) const {
  return e.pool >= 0 && assignable(pools_[static_cast<std::size_t>(e.pool)], e.lease.address);
}

LeaseDb::Pool* LeaseDb::findPool(std::uint32_t subnetId) {
  for (auto& p : pools_)
    if (p.config.subnetId == subnetId) return &p;
  return nullptr;
}

Result<void> LeaseDb::reconfigure(std::vector<PoolConfig> pools, std::vector<std::uint32_t> reserved) {
  auto plan = planPools(std::move(pools), std::move(reserved));
  if (!plan) return plan.error();
  applyPlan(std::move(*plan));
  return {};
}

Result<LeaseDb::PoolPlan> LeaseDb::planPools(std::vector<PoolConfig> pools, std::vector<std::uint32_t> reserved) {
  PoolPlan plan;
  auto built = buildPools(std::move(pools), plan.ranges);
  if (!built) return built.error();
  plan.pools = std::move(*built);
  plan.reserved = std::move(reserved);
  return plan;
}

void LeaseDb::applyPlan(PoolPlan plan) {
  applyPools(std::move(plan.pools), std::move(plan.ranges), std::move(plan.reserved));
}

// ---- the records -------------------------------------------------------------------------------

const Lease& LeaseDb::put(Lease lease, bool durable) {
  const auto addr = lease.address;
  auto it = byAddr_.find(addr);
  if (it != byAddr_.end()) {
    Entry& old = it->second;
    if (inFreeSet(old)) pools_[static_cast<std::size_t>(old.pool)].byFreeTime.erase({old.lease.expiry, addr});
    auto cit = byClient_.find(Slot{old.lease.subnetId, old.lease.client});
    if (cit != byClient_.end() && cit->second == addr) byClient_.erase(cit);
    old.lease = std::move(lease);
  } else {
    it = byAddr_.emplace(addr, Entry{std::move(lease), 0, poolOf(addr)}).first;
  }
  Entry& e = it->second;
  e.seq = ++seq_;
  if (inFreeSet(e)) pools_[static_cast<std::size_t>(e.pool)].byFreeTime.emplace(e.lease.expiry, addr);
  // A declined address is not the client's to come back to.
  if (e.lease.state != LeaseState::Declined) byClient_[Slot{e.lease.subnetId, e.lease.client}] = addr;
  if (durable) {
    journal::appendLine(pending_, e.lease);
    ++pendingRecords_;
    ++changes_;
  }
  return e.lease;
}

void LeaseDb::eraseRecord(std::uint32_t address) {
  auto it = byAddr_.find(address);
  if (it == byAddr_.end()) return;
  const Entry& e = it->second;
  if (inFreeSet(e)) pools_[static_cast<std::size_t>(e.pool)].byFreeTime.erase({e.lease.expiry, address});
  auto cit = byClient_.find(Slot{e.lease.subnetId, e.lease.client});
  if (cit != byClient_.end() && cit->second == address) byClient_.erase(cit);
  byAddr_.erase(it);
}

std::optional<std::uint32_t> LeaseDb::takeNeverUsed(Pool& p) {
  const auto& ranges = p.config.ranges;
  while (p.cursorRange < ranges.size()) {
    if (p.cursorNext > ranges[p.cursorRange].last) {
      if (++p.cursorRange < ranges.size()) p.cursorNext = ranges[p.cursorRange].first;
      continue;
    }
    auto a = static_cast<std::uint32_t>(p.cursorNext++);
    if (assignable(p, a) && !byAddr_.contains(a)) return a;
  }
  return std::nullopt;
}

Lease LeaseDb::newLease(std::uint32_t subnetId, const ClientInfo& client, std::uint32_t address, LeaseState state,
                        UnixTime now, UnixTime expiry) {
  Lease l;
  l.address = address;
  l.state = state;
  l.kind = LeaseKind::Dynamic;
  l.subnetId = subnetId;
  l.start = now;
  l.expiry = expiry;
  l.client = client.key;
  l.mac = client.mac;
  l.hostname = client.hostname.substr(0, journal::kMaxTextField);
  const auto uuidBytes = std::min(client.uuid.size(), journal::kMaxTextField);
  l.uuid.assign(client.uuid.begin(), client.uuid.begin() + static_cast<std::ptrdiff_t>(uuidBytes));
  return l;
}

Result<Lease> LeaseDb::offer(std::uint32_t subnetId, const ClientInfo& client,
                             std::optional<std::uint32_t> requested, UnixTime now) {
  Pool* p = findPool(subnetId);
  if (p == nullptr) return leaseError(LeaseErrc::UnknownSubnet, fmt::format("no pool for subnet {}", subnetId));
  const int pi = static_cast<int>(p - pools_.data());
  const UnixTime offerEnd = now + options_.offerTimeout;

  // 1. The client's own record: still held, or free again.
  if (auto cit = byClient_.find(Slot{subnetId, client.key}); cit != byClient_.end()) {
    const Entry& e = byAddr_.at(cit->second);
    if (e.pool == pi && assignable(*p, e.lease.address)) {
      if (e.lease.state == LeaseState::Bound && e.lease.activeAt(now)) return e.lease;  // renewed by bind()
      if (e.lease.state == LeaseState::Offered || !e.lease.activeAt(now)) {
        return put(newLease(subnetId, client, e.lease.address, LeaseState::Offered, now, offerEnd), false);
      }
    }
  }
  // 2. The address it asked for, if nobody holds it.
  if (requested && poolOf(*requested) == pi && assignable(*p, *requested)) {
    auto it = byAddr_.find(*requested);
    if (it == byAddr_.end() || !it->second.lease.activeAt(now)) {
      return put(newLease(subnetId, client, *requested, LeaseState::Offered, now, offerEnd), false);
    }
  }
  // 3. Never used. 4. Free the longest.
  std::optional<std::uint32_t> pick = takeNeverUsed(*p);
  if (!pick && !p->byFreeTime.empty() && p->byFreeTime.begin()->first <= now) pick = p->byFreeTime.begin()->second;
  if (!pick) {
    return leaseError(LeaseErrc::NoFreeAddress,
                      fmt::format("no free address in the pool of subnet {} ({}/{}, {} addresses)", subnetId,
                                  formatLeaseAddress(p->config.network), p->config.prefixLength, p->total));
  }
  return put(newLease(subnetId, client, *pick, LeaseState::Offered, now, offerEnd), false);
}

// A client keeps one lease per subnet: binding a new address frees the one it held before.
void LeaseDb::releaseOther(std::uint32_t subnetId, const ClientKey& client, std::uint32_t address, UnixTime now) {
  auto cit = byClient_.find(Slot{subnetId, client});
  if (cit == byClient_.end() || cit->second == address) return;
  const Lease& other = byAddr_.at(cit->second).lease;
  if (!other.activeAt(now) || other.state == LeaseState::Declined) return;
  Lease r = other;
  r.state = LeaseState::Released;
  r.start = now;
  r.expiry = now;
  put(std::move(r), other.state == LeaseState::Bound);
}

Result<Lease> LeaseDb::bind(std::uint32_t subnetId, const ClientInfo& client, std::uint32_t address, UnixTime now,
                            std::optional<std::uint32_t> leaseTime) {
  Pool* p = findPool(subnetId);
  if (p == nullptr) return leaseError(LeaseErrc::UnknownSubnet, fmt::format("no pool for subnet {}", subnetId));
  const int pi = static_cast<int>(p - pools_.data());
  if (poolOf(address) != pi) {
    return leaseError(LeaseErrc::AddressUnavailable,
                      fmt::format("{} is not in the pool of subnet {}", formatLeaseAddress(address), subnetId));
  }
  if (!assignable(*p, address)) {
    return leaseError(LeaseErrc::AddressUnavailable,
                      fmt::format("{} is reserved or not a host address", formatLeaseAddress(address)));
  }
  if (auto it = byAddr_.find(address); it != byAddr_.end()) {
    const Lease& l = it->second.lease;
    if (l.activeAt(now) && l.state == LeaseState::Declined) {
      return leaseError(LeaseErrc::AddressUnavailable,
                        fmt::format("{} was declined and is quarantined until {}", formatLeaseAddress(address),
                                    l.expiry));
    }
    if (l.activeAt(now) && l.client != client.key) {
      return leaseError(LeaseErrc::AddressUnavailable,
                        fmt::format("{} is {} to {} until {}", formatLeaseAddress(address), leaseStateName(l.state),
                                    l.client.toString(), l.expiry));
    }
  }
  releaseOther(subnetId, client.key, address, now);
  const UnixTime end = now + leaseTime.value_or(p->config.leaseTime);
  return put(newLease(subnetId, client, address, LeaseState::Bound, now, end), true);
}

Result<Lease> LeaseDb::bindStatic(std::uint32_t subnetId, const ClientInfo& client, std::uint32_t address,
                                  std::uint32_t leaseTime, UnixTime now) {
  if (auto it = byAddr_.find(address); it != byAddr_.end()) {
    const Lease& l = it->second.lease;
    // A reservation belongs to the machine (its MAC), not to one client identifier: each boot stage
    // (UEFI PXE, then iPXE, then the kernel) may send its own option 61, and every one of them must
    // get the machine's address. Another machine's lease on it is still a conflict.
    if (l.activeAt(now) && l.client != client.key && l.mac != client.mac) {
      return leaseError(LeaseErrc::AddressUnavailable,
                        fmt::format("{} is {} to {} until {}", formatLeaseAddress(address), leaseStateName(l.state),
                                    l.client.toString(), l.expiry));
    }
  }
  releaseOther(subnetId, client.key, address, now);
  Lease l = newLease(subnetId, client, address, LeaseState::Bound, now, now + leaseTime);
  l.kind = LeaseKind::Static;
  return put(std::move(l), true);
}

Result<void> LeaseDb::release(const ClientKey& client, std::uint32_t address, UnixTime now) {
  auto it = byAddr_.find(address);
  if (it == byAddr_.end() || it->second.lease.client != client || !it->second.lease.activeAt(now) ||
      it->second.lease.state == LeaseState::Declined) {
    return leaseError(LeaseErrc::NoLease, fmt::format("{} holds no lease on {}", client.toString(),
                                                      formatLeaseAddress(address)));
  }
  Lease r = it->second.lease;
  const bool durable = r.state == LeaseState::Bound;  // an offer was never written
  r.state = LeaseState::Released;
  r.start = now;
  r.expiry = now;
  put(std::move(r), durable);
  return {};
}

Result<void> LeaseDb::decline(const ClientKey& client, std::uint32_t address, UnixTime now) {
  auto it = byAddr_.find(address);
  if (it == byAddr_.end() || it->second.lease.client != client || !it->second.lease.activeAt(now) ||
      it->second.lease.state == LeaseState::Declined) {
    return leaseError(LeaseErrc::NoLease, fmt::format("{} holds no lease on {}", client.toString(),
                                                      formatLeaseAddress(address)));
  }
  Lease d = it->second.lease;
  d.state = LeaseState::Declined;
  d.start = now;
  d.expiry = now + options_.declineQuarantine;
  put(std::move(d), true);
  return {};
}

const Lease* LeaseDb::findByAddress(std::uint32_t address) const {
  auto it = byAddr_.find(address);
  return it == byAddr_.end() ? nullptr : &it->second.lease;
}

const Lease* LeaseDb::findByClient(std::uint32_t subnetId, const ClientKey& client) const {
  auto cit = byClient_.find(Slot{subnetId, client});
  return cit == byClient_.end() ? nullptr : &byAddr_.at(cit->second).lease;
}

void LeaseDb::forEach(const std::function<void(const Lease&)>& fn) const {
  for (const auto& [addr, e] : byAddr_) fn(e.lease);
}

std::vector<PoolStats> LeaseDb::stats(UnixTime now) const {
  std::vector<PoolStats> out(pools_.size());
  std::vector<std::uint64_t> used(pools_.size());
  for (std::size_t i = 0; i < pools_.size(); ++i) {
    out[i].subnetId = pools_[i].config.subnetId;
    out[i].network = pools_[i].config.network;
    out[i].prefixLength = pools_[i].config.prefixLength;
    out[i].total = pools_[i].total;
  }
  for (auto a : reserved_) {
    int pi = poolOf(a);
    if (pi < 0) continue;
    const Pool& p = pools_[static_cast<std::size_t>(pi)];
    if (p.config.prefixLength <= 30 && (a == p.config.network || a == p.broadcast)) continue;
    ++out[static_cast<std::size_t>(pi)].reserved;
  }
  for (const auto& [addr, e] : byAddr_) {
    if (e.pool < 0 || !e.lease.activeAt(now)) continue;
    auto& s = out[static_cast<std::size_t>(e.pool)];
    const Pool& p = pools_[static_cast<std::size_t>(e.pool)];
    if (p.config.prefixLength <= 30 && (addr == p.config.network || addr == p.broadcast)) continue;
    if (e.lease.state == LeaseState::Bound) ++s.bound;
    if (e.lease.state == LeaseState::Offered) ++s.offered;
    if (e.lease.state == LeaseState::Declined) ++s.declined;
    if (!reserved_.contains(addr)) ++used[static_cast<std::size_t>(e.pool)];
  }
  for (std::size_t i = 0; i < out.size(); ++i) out[i].free = out[i].total - out[i].reserved - used[i];
  return out;
}

}  // namespace pxedust::dhcp
