// Lease database tests: allocation policy, flows, journal persistence and damage, compaction,
// reconfiguration, a 60k-lease scale run, a randomized model check and a kill -9 crash test.
#include "dhcp/leases.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

namespace pxedust::dhcp {
namespace {

constexpr UnixTime kT0 = 1'700'000'000;

constexpr std::uint32_t ip(std::uint32_t a, std::uint32_t b, std::uint32_t c, std::uint32_t d) {
  return a << 24 | b << 16 | c << 8 | d;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "pxd-leases-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, ec);
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& s) const { return path_ / s; }

 private:
  std::filesystem::path path_;
};

MacAddress macOf(std::uint32_t n) {
  return MacAddress({0x52, 0x54, static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
                     static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)});
}
std::uint32_t idOf(const MacAddress& m) {
  const auto& b = m.bytes();
  return std::uint32_t{b[2]} << 24 | std::uint32_t{b[3]} << 16 | std::uint32_t{b[4]} << 8 | b[5];
}

// Client n: even ones identify by MAC, odd ones by a client identifier (type 0xff + n).
ClientInfo client(std::uint32_t n, std::string host = {}) {
  ClientInfo c;
  c.mac = macOf(n);
  if (n % 2 == 1) {
    std::vector<std::uint8_t> id = {0xff, static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
                                    static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
    c.key = ClientKey::identify(id, c.mac);
  } else {
    c.key = ClientKey::identify({}, c.mac);
  }
  c.hostname = std::move(host);
  return c;
}

PoolConfig pool(std::uint32_t id, std::uint32_t first, std::uint32_t last, std::uint32_t leaseTime = 3600) {
  PoolConfig p;
  p.subnetId = id;
  p.network = first & 0xFFFFFF00U;
  p.prefixLength = 24;
  p.ranges = {{first, last}};
  p.leaseTime = leaseTime;
  return p;
}

LeaseDbOptions opts(const TempDir& dir) {
  LeaseDbOptions o;
  o.path = dir / "leases";
  return o;
}

LeaseDb openOk(LeaseDbOptions o, std::vector<PoolConfig> pools, std::vector<std::uint32_t> reserved = {},
               UnixTime now = kT0) {
  auto db = LeaseDb::open(std::move(o), std::move(pools), std::move(reserved), now);
  if (!db) ADD_FAILURE() << db.error().message;
  EXPECT_TRUE(db.ok());
  return std::move(db).value();
}

std::uint32_t offerBind(LeaseDb& db, std::uint32_t subnet, const ClientInfo& c, UnixTime now) {
  auto o = db.offer(subnet, c, std::nullopt, now);
  EXPECT_TRUE(o.ok()) << (o.ok() ? "" : o.error().message);
  if (!o) return 0;
  auto b = db.bind(subnet, c, o->address, now);
  EXPECT_TRUE(b.ok()) << (b.ok() ? "" : b.error().message);
  return o->address;
}

std::map<std::uint32_t, Lease> snapshot(const LeaseDb& db) {
  std::map<std::uint32_t, Lease> out;
  db.forEach([&](const Lease& l) { out.emplace(l.address, l); });
  return out;
}

std::string readText(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
void writeText(const std::filesystem::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << s;
}

// ---- value types -------------------------------------------------------------------------------

TEST(LeaseTypes, AddressText) {
  EXPECT_EQ(formatLeaseAddress(ip(10, 0, 0, 5)), "10.0.0.5");
  EXPECT_EQ(parseLeaseAddress("192.168.1.254"), ip(192, 168, 1, 254));
  EXPECT_EQ(parseLeaseAddress("0.0.0.0"), 0U);
  for (auto bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.", "a.b.c.d", "1..2.3"})
    EXPECT_FALSE(parseLeaseAddress(bad)) << bad;
}

TEST(LeaseTypes, ClientKeyPrefersClientId) {
  auto mac = macOf(7);
  std::vector<std::uint8_t> id = {1, 0x52, 0x54, 0, 0, 0, 7};
  auto byId = ClientKey::identify(id, mac);
  EXPECT_EQ(byId.kind(), ClientKey::Kind::ClientId);
  EXPECT_EQ(byId.toString(), "id:01:52:54:00:00:00:07");
  auto byMac = ClientKey::identify({}, mac);
  EXPECT_EQ(byMac.kind(), ClientKey::Kind::HwAddr);
  EXPECT_EQ(byMac.toString(), "hw:52:54:00:00:00:07");
  EXPECT_NE(byId, byMac);  // same bytes after the type, still different clients
  EXPECT_EQ(ClientKey::parse(byId.toString()), byId);
  EXPECT_EQ(ClientKey::parse(byMac.toString()), byMac);
  EXPECT_FALSE(ClientKey::parse("hw:52:54"));
  EXPECT_FALSE(ClientKey::parse("id:"));
  EXPECT_FALSE(ClientKey::parse("xx:01"));
}

// ---- flows -------------------------------------------------------------------------------------

TEST(Leases, OfferAckRelease) {
  TempDir dir;
  auto db = openOk(opts(dir), {pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 20))});
  auto c = client(2, "pc-02");
  auto o = db.offer(1, c, std::nullopt, kT0);
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->address, ip(10, 0, 0, 10));
  EXPECT_EQ(o->state, LeaseState::Offered);
  EXPECT_EQ(o->expiry, kT0 + 60);
  EXPECT_EQ(o->subnetId, 1U);

  auto b = db.bind(1, c, o->address, kT0 + 1);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->state, LeaseState::Bound);
  EXPECT_EQ(b->start, kT0 + 1);
  EXPECT_EQ(b->expiry, kT0 + 1 + 3600);
  EXPECT_EQ(b->hostname, "pc-02");
  EXPECT_EQ(b->mac, c.mac);
  EXPECT_TRUE(db.syncPending());
  ASSERT_TRUE(db.sync(kT0 + 1).ok());
  EXPECT_FALSE(db.syncPending());

  ASSERT_NE(db.findByAddress(o->address), nullptr);
  EXPECT_EQ(db.findByAddress(o->address)->client, c.key);
  ASSERT_NE(db.findByClient(1, c.key), nullptr);
  EXPECT_EQ(db.findByClient(1, c.key)->address, o->address);
  EXPECT_EQ(db.findByAddress(o->address)->stateAt(kT0 + 3600), LeaseState::Bound);
  EXPECT_EQ(db.findByAddress(o->address)->stateAt(kT0 + 3601), LeaseState::Expired);

  // Renewal extends; a lease time from the caller wins over the pool's.
  auto renewed = db.bind(1, c, o->address, kT0 + 1800, 600);
  ASSERT_TRUE(renewed.ok());
  EXPECT_EQ(renewed->expiry, kT0 + 2400);

  auto stats = db.stats(kT0 + 1800);
  ASSERT_EQ(stats.size(), 1U);
  EXPECT_EQ(stats[0].total, 11U);
  EXPECT_EQ(stats[0].bound, 1U);
  EXPECT_EQ(stats[0].free, 10U);

  // Only the holder can release.
  auto wrong = db.release(client(4).key, o->address, kT0 + 1900);
  ASSERT_FALSE(wrong.ok());
  EXPECT_TRUE(isLeaseError(wrong.error(), LeaseErrc::NoLease));
  ASSERT_TRUE(db.release(c.key, o->address, kT0 + 1900).ok());
  EXPECT_EQ(db.findByAddress(o->address)->state, LeaseState::Released);
  EXPECT_EQ(db.stats(kT0 + 1900)[0].free, 11U);
  EXPECT_FALSE(db.release(c.key, o->address, kT0 + 1901).ok());  // twice: nothing to release
}

TEST(Leases, OfferHoldsAddressUntilTimeout) {
  TempDir dir;
  auto o = opts(dir);
  o.offerTimeout = 30;
  auto db = openOk(o, {pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 10))});
  auto x = client(2);
  auto y = client(4);
  auto ox = db.offer(1, x, std::nullopt, kT0);
  ASSERT_TRUE(ox.ok());
  EXPECT_EQ(db.stats(kT0)[0].offered, 1U);
  auto oy = db.offer(1, y, std::nullopt, kT0 + 29);
  ASSERT_FALSE(oy.ok());
  EXPECT_TRUE(isLeaseError(oy.error(), LeaseErrc::NoFreeAddress)) << oy.error().message;
  // Asking for the offered address does not take it either.
  EXPECT_FALSE(db.offer(1, y, ip(10, 0, 0, 10), kT0 + 29).ok());
  EXPECT_FALSE(db.bind(1, y, ip(10, 0, 0, 10), kT0 + 29).ok());
  // A repeated DISCOVER from x refreshes its own offer.
  auto again = db.offer(1, x, std::nullopt, kT0 + 20);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->expiry, kT0 + 50);
  EXPECT_FALSE(db.offer(1, y, std::nullopt, kT0 + 49).ok());
  // Timed out: y gets it, and x's late REQUEST is refused.
  oy = db.offer(1, y, std::nullopt, kT0 + 50);
  ASSERT_TRUE(oy.ok());
  EXPECT_EQ(oy->address, ip(10, 0, 0, 10));
  auto late = db.bind(1, x, ip(10, 0, 0, 10), kT0 + 51);
  ASSERT_FALSE(late.ok());
  EXPECT_TRUE(isLeaseError(late.error(), LeaseErrc::AddressUnavailable)) << late.error().message;
  EXPECT_TRUE(db.bind(1, y, ip(10, 0, 0, 10), kT0 + 51).ok());
}

TEST(Leases, ConcurrentClientsGetDistinctOffersThenExhaustion) {
  TempDir dir;
  auto db = openOk(opts(dir), {pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 20))});
  std::set<std::uint32_t> seen;
  for (std::uint32_t n = 0; n < 11; ++n) {
    auto o = db.offer(1, client(n), std::nullopt, kT0);
    ASSERT_TRUE(o.ok()) << o.error().message;
    EXPECT_TRUE(seen.insert(o->address).second) << formatLeaseAddress(o->address) << " offered twice";
  }
  auto full = db.offer(1, client(99), std::nullopt, kT0);
  ASSERT_FALSE(full.ok());
  EXPECT_TRUE(isLeaseError(full.error(), LeaseErrc::NoFreeAddress));
  EXPECT_NE(full.error().message.find("no free address"), std::string::npos) << full.error().message;
  EXPECT_EQ(db.stats(kT0)[0].free, 0U);
  EXPECT_EQ(db.stats(kT0)[0].offered, 11U);

  auto unknown = db.offer(7, client(1), std::nullopt, kT0);
  ASSERT_FALSE(unknown.ok());
  EXPECT_TRUE(isLeaseError(unknown.error(), LeaseErrc::UnknownSubnet));
}

TEST(Leases, ExpiredLeaseIsReused) {
  TempDir dir;
  auto db = openOk(opts(dir), {pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 10), 100)});
  auto a = offerBind(db, 1, client(2), kT0);
  EXPECT_FALSE(db.offer(1, client(4), std::nullopt, kT0 + 99).ok());
  auto o = db.offer(1, client(4), std::nullopt, kT0 + 100);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->address, a);
  EXPECT_EQ(db.stats(kT0 + 100)[0].bound, 0U);
}

TEST(Leases, OtherClientCannotTakeABoundAddress) {
  TempDir dir;
  auto db = openOk(opts(dir), {pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 20))});
  auto a = offerBind(db, 1, client(2), kT0);
  auto r = db.bind(1, client(4), a, kT0 + 5);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(isLeaseError(r.error(), LeaseErrc::AddressUnavailable));
  // The holder's DISCOVER gets its lease back unchanged.
  auto o = db.offer(1, client(2), std::nullopt, kT0 + 10);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->address, a);
  EXPECT_EQ(o->state, LeaseState::Bound);
  EXPECT_EQ(o->expiry, kT0 + 3600);
  // Out of the pool, or not a known subnet.
  EXPECT_TRUE(isLeaseError(db.bind(1, client(4), ip(10, 0, 0, 30), kT0).error(), LeaseErrc::AddressUnavailable));
  EXPECT_TRUE(isLeaseError(db.bind(9, client(4), ip(10, 0, 0, 11), kT0).error(), LeaseErrc::UnknownSubnet));
}

TEST(Leases, BindingANewAddressReleasesTheOldOne) {
  TempDir dir;
  auto db = openOk(opts(dir), {pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 20))});
  auto c = client(3);
  auto a = offerBind(db, 1, c, kT0);
  auto b = db.bind(1, c, ip(10, 0, 0, 15), kT0 + 10);  // INIT-REBOOT with another address
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(db.findByAddress(a)->state, LeaseState::Released);
  EXPECT_EQ(db.findByClient(1, c.key)->address, ip(10, 0, 0, 15));
  EXPECT_EQ(db.stats(kT0 + 10)[0].bound, 1U);
}

TEST(Leases, DeclineQuarantinesTheAddress) {
  TempDir dir;
  auto o = opts(dir);
  o.declineQuarantine = 600;
  auto db = openOk(o, {pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 11))});
  auto x = client(2);
  auto a = offerBind(db, 1, x, kT0);
  EXPECT_FALSE(db.decline(client(4).key, a, kT0 + 1).ok());  // not the holder
  ASSERT_TRUE(db.decline(x.key, a, kT0 + 1).ok());
  EXPECT_EQ(db.findByAddress(a)->state, LeaseState::Declined);
  auto s = db.stats(kT0 + 1)[0];
  EXPECT_EQ(s.declined, 1U);
  EXPECT_EQ(s.free, 1U);
  // x is not sent back to the declined address, and nobody gets it during the quarantine.
  auto ox = db.offer(1, x, std::nullopt, kT0 + 2);
  ASSERT_TRUE(ox.ok());
  EXPECT_NE(ox->address, a);
  EXPECT_FALSE(db.offer(1, client(4), a, kT0 + 2).ok());
  EXPECT_TRUE(isLeaseError(db.bind(1, x, a, kT0 + 2).error(), LeaseErrc::AddressUnavailable));
  ASSERT_TRUE(db.sync(kT0 + 2).ok());
  // The quarantine survives a restart.
  {
    LeaseDb moved = std::move(db);
  }
  auto db2 = openOk(o, {pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 11))}, {}, kT0 + 3);
  EXPECT_EQ(db2.stats(kT0 + 3)[0].declined, 1U);
  auto o4 = db2.offer(1, client(4), std::nullopt, kT0 + 3);  // x's offer was not durable: the other address
  ASSERT_TRUE(o4.ok());
  EXPECT_NE(o4->address, a);
  EXPECT_FALSE(db2.offer(1, client(6), std::nullopt, kT0 + 3).ok());
  // Afterwards it is free again (after the other address, which has been free for longer).
  auto later = db2.offer(1, client(6), std::nullopt, kT0 + 601);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->address, o4->address);
  later = db2.offer(1, client(8), std::nullopt, kT0 + 601);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->address, a);
  EXPECT_EQ(db2.stats(kT0 + 601)[0].declined, 0U);
}

TEST(Leases, ReturningClientGetsItsPreviousAddress) {
  TempDir dir;
  auto db = openOk(opts(dir), {pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 40), 100)});
  auto x = client(3);  // identified by client id
  auto a = offerBind(db, 1, x, kT0);
  ASSERT_TRUE(db.release(x.key, a, kT0 + 10).ok());
  // Others take never-used addresses first.
  for (std::uint32_t n = 10; n < 20; ++n) EXPECT_NE(offerBind(db, 1, client(n * 2), kT0 + 11), a);
  // Same client id from another NIC: still the same client.
  auto x2 = x;
  x2.mac = macOf(12345);
  auto back = db.offer(1, x2, std::nullopt, kT0 + 12);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->address, a);
  ASSERT_TRUE(db.bind(1, x2, a, kT0 + 12).ok());

  // After expiry too, and across a restart.
  ASSERT_TRUE(db.sync(kT0 + 12).ok());
  { LeaseDb closed = std::move(db); }
  auto db2 = openOk(opts(dir), {pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 40), 100)});
  auto back2 = db2.offer(1, x, std::nullopt, kT0 + 500);
  ASSERT_TRUE(back2.ok());
  EXPECT_EQ(back2->address, a);
}

TEST(Leases, NeverUsedFirstThenLeastRecentlyFreed) {
  TempDir dir;
  auto db = openOk(opts(dir), {pool(1, ip(10, 0, 0, 1), ip(10, 0, 0, 4), 1000)});
  std::vector<std::uint32_t> addr;
  for (std::uint32_t n = 0; n < 4; ++n) addr.push_back(offerBind(db, 1, client(n * 2), kT0));
  EXPECT_EQ(addr, (std::vector<std::uint32_t>{ip(10, 0, 0, 1), ip(10, 0, 0, 2), ip(10, 0, 0, 3), ip(10, 0, 0, 4)}));
  // Freed in the order .3 (release), .1 (release), .4 (expiry at kT0+1000, renewed shorter), .2 stays.
  ASSERT_TRUE(db.release(client(4).key, addr[2], kT0 + 10).ok());
  ASSERT_TRUE(db.release(client(0).key, addr[0], kT0 + 20).ok());
  ASSERT_TRUE(db.bind(1, client(6), addr[3], kT0 + 25, 5).ok());  // expires at kT0+30
  EXPECT_EQ(db.offer(1, client(100), std::nullopt, kT0 + 40)->address, addr[2]);
  EXPECT_EQ(db.offer(1, client(102), std::nullopt, kT0 + 40)->address, addr[0]);
  EXPECT_EQ(db.offer(1, client(104), std::nullopt, kT0 + 40)->address, addr[3]);
  EXPECT_FALSE(db.offer(1, client(106), std::nullopt, kT0 + 40).ok());
}

TEST(Leases, RequestedAddressIsHonouredWhenFree) {
  TempDir dir;
  auto db = openOk(opts(dir), {pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 20))});
  auto a = db.offer(1, client(2), ip(10, 0, 0, 17), kT0);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->address, ip(10, 0, 0, 17));
  auto b = db.offer(1, client(4), ip(10, 0, 0, 17), kT0);  // taken: something else
  ASSERT_TRUE(b.ok());
  EXPECT_NE(b->address, ip(10, 0, 0, 17));
  auto c = db.offer(1, client(6), ip(10, 0, 1, 17), kT0);  // outside the pool: ignored
  ASSERT_TRUE(c.ok());
  EXPECT_NE(c->address, ip(10, 0, 1, 17));
}

TEST(Leases, ReservationsNetworkAndBroadcastAreNeverOffered) {
  TempDir dir;
  PoolConfig p;
  p.subnetId = 1;
  p.network = ip(10, 0, 0, 0);
  p.prefixLength = 29;  // .0 .. .7
  p.ranges = {{ip(10, 0, 0, 0), ip(10, 0, 0, 7)}};
  auto db = openOk(opts(dir), {p}, {ip(10, 0, 0, 3)});
  EXPECT_EQ(db.stats(kT0)[0].total, 6U);
  EXPECT_EQ(db.stats(kT0)[0].reserved, 1U);
  std::set<std::uint32_t> got;
  for (std::uint32_t n = 0;; ++n) {
    auto o = db.offer(1, client(n * 2), std::nullopt, kT0);
    if (!o) break;
    got.insert(o->address);
  }
  EXPECT_EQ(got, (std::set<std::uint32_t>{ip(10, 0, 0, 1), ip(10, 0, 0, 2), ip(10, 0, 0, 4), ip(10, 0, 0, 5),
                                          ip(10, 0, 0, 6)}));
  EXPECT_TRUE(isLeaseError(db.bind(1, client(1), ip(10, 0, 0, 3), kT0).error(), LeaseErrc::AddressUnavailable));

  // The static host's ACK is recorded (also outside any pool) and shows after a restart.
  auto s = db.bindStatic(1, client(1, "fixed"), ip(10, 0, 0, 3), 7200, kT0);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->kind, LeaseKind::Static);
  ASSERT_TRUE(db.bindStatic(1, client(9), ip(192, 168, 5, 5), 7200, kT0).ok());
  auto conflict = db.bindStatic(1, client(11), ip(10, 0, 0, 1), 7200, kT0);  // offered to another client
  ASSERT_FALSE(conflict.ok());
  EXPECT_TRUE(isLeaseError(conflict.error(), LeaseErrc::AddressUnavailable));
  EXPECT_EQ(db.stats(kT0)[0].bound, 1U);
  EXPECT_EQ(db.stats(kT0)[0].free, 0U);
  // The same machine in its next boot stage, with another client identifier (UEFI PXE sends one,
  // iPXE another, or none): the reservation is the machine's, so it gets the address again.
  ClientInfo nextStage = client(1, "fixed");
  nextStage.key = ClientKey::identify({}, nextStage.mac);
  ASSERT_NE(nextStage.key, client(1).key);
  auto again = db.bindStatic(1, nextStage, ip(10, 0, 0, 3), 7200, kT0);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->client, nextStage.key);
  // Another machine still may not take a reserved address that is bound.
  EXPECT_FALSE(db.bindStatic(1, client(5), ip(10, 0, 0, 3), 7200, kT0).ok());
  ASSERT_TRUE(db.sync(kT0).ok());
  { LeaseDb closed = std::move(db); }
  auto db2 = openOk(opts(dir), {p}, {ip(10, 0, 0, 3)});
  ASSERT_NE(db2.findByAddress(ip(192, 168, 5, 5)), nullptr);
  EXPECT_EQ(db2.findByAddress(ip(10, 0, 0, 3))->kind, LeaseKind::Static);
  EXPECT_EQ(db2.findByAddress(ip(10, 0, 0, 3))->hostname, "fixed");
}

// ---- persistence -------------------------------------------------------------------------------

TEST(LeaseJournal, RoundTripKeepsEveryField) {
  TempDir dir;
  auto pools = std::vector<PoolConfig>{pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 99)), pool(2, ip(10, 0, 1, 10), ip(10, 0, 1, 99))};
  auto db = openOk(opts(dir), pools);
  EXPECT_TRUE(db.loadReport().created);
  auto weird = client(5, "name with spaces\nand a newline, 100% \xff\x01 crc=00000000");
  weird.uuid = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01};
  offerBind(db, 1, weird, kT0);
  offerBind(db, 2, client(6, "pc-06"), kT0 + 1);
  auto r = offerBind(db, 1, client(8), kT0 + 2);
  ASSERT_TRUE(db.release(client(8).key, r, kT0 + 3).ok());
  auto d = offerBind(db, 2, client(10), kT0 + 4);
  ASSERT_TRUE(db.decline(client(10).key, d, kT0 + 5).ok());
  auto offered = db.offer(1, client(12), std::nullopt, kT0 + 6);  // offers are not written
  ASSERT_TRUE(offered.ok());
  ASSERT_TRUE(db.sync(kT0 + 6).ok());
  auto before = snapshot(db);
  before.erase(offered->address);
  { LeaseDb closed = std::move(db); }

  auto text = readText(dir / "leases");
  EXPECT_TRUE(text.starts_with("# pxedust lease journal v1\n"));
  EXPECT_NE(text.find("state=bound kind=dynamic subnet=2"), std::string::npos) << text;
  EXPECT_NE(text.find("host=pc-06 "), std::string::npos) << text;
  std::size_t leaseLines = 0;
  for (auto p = text.find("\nlease "); p != std::string::npos; p = text.find("\nlease ", p + 1)) ++leaseLines;
  EXPECT_EQ(leaseLines, 6U) << text;  // one line per durable change, none for the offer

  auto db2 = openOk(opts(dir), pools);
  EXPECT_FALSE(db2.loadReport().created);
  EXPECT_EQ(db2.loadReport().lines, 6U);
  EXPECT_EQ(db2.loadReport().corruptLines, 0U);
  EXPECT_EQ(snapshot(db2), before);
  EXPECT_EQ(db2.findByClient(1, weird.key)->hostname, weird.hostname);
}

// The format is for people and scripts too: a known line, its CRC the same as zlib's crc32().
TEST(LeaseJournal, LineFormatIsStable) {
  TempDir dir;
  auto db = openOk(opts(dir), {pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 99))});
  auto c = client(2, "pc 05");
  c.uuid = {0x00, 0x11};
  offerBind(db, 1, c, kT0);
  ASSERT_TRUE(db.sync(kT0).ok());
  auto text = readText(dir / "leases");
  EXPECT_TRUE(text.ends_with(
      "\nlease addr=10.0.0.10 state=bound kind=dynamic subnet=1 start=1700000000 expire=1700003600 "
      "client=hw:52:54:00:00:00:02 mac=52:54:00:00:00:02 host=pc%2005 uuid=0011 crc=1eabcc9c\n"))
      << text;
}

TEST(LeaseJournal, OnlySyncedChangesSurvive) {
  TempDir dir;
  auto pools = std::vector<PoolConfig>{pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 99))};
  std::uint32_t kept = 0;
  {
    auto db = openOk(opts(dir), pools);
    kept = offerBind(db, 1, client(2), kT0);
    ASSERT_TRUE(db.sync(kT0).ok());
    offerBind(db, 1, client(4), kT0);  // never synced: as if the process died here
  }
  auto db = openOk(opts(dir), pools);
  EXPECT_EQ(db.size(), 1U);
  EXPECT_NE(db.findByAddress(kept), nullptr);
}

TEST(LeaseJournal, TornLastLineIsCutOff) {
  TempDir dir;
  auto pools = std::vector<PoolConfig>{pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 99))};
  std::map<std::uint32_t, Lease> before;
  {
    auto db = openOk(opts(dir), pools);
    for (std::uint32_t n = 0; n < 5; ++n) offerBind(db, 1, client(n), kT0);
    ASSERT_TRUE(db.sync(kT0).ok());
    before = snapshot(db);
  }
  const auto good = readText(dir / "leases");
  // Half of a sixth line, as a crash in the middle of write() leaves it.
  auto line = good.substr(good.rfind('\n', good.size() - 2) + 1);
  writeText(dir / "leases", good + line.substr(0, line.size() / 2));
  {
    auto db = openOk(opts(dir), pools);
    EXPECT_EQ(db.loadReport().tornBytes, line.size() / 2);
    EXPECT_EQ(db.loadReport().corruptLines, 0U);
    EXPECT_EQ(snapshot(db), before);
    EXPECT_EQ(readText(dir / "leases"), good);  // truncated back
    offerBind(db, 1, client(50), kT0 + 1);
    ASSERT_TRUE(db.sync(kT0 + 1).ok());
    before = snapshot(db);
  }
  auto db = openOk(opts(dir), pools);
  EXPECT_EQ(db.loadReport().tornBytes, 0U);
  EXPECT_EQ(snapshot(db), before);
}

TEST(LeaseJournal, CorruptLinesAreSkippedCountedAndKept) {
  TempDir dir;
  auto pools = std::vector<PoolConfig>{pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 99))};
  std::map<std::uint32_t, Lease> before;
  {
    auto db = openOk(opts(dir), pools);
    for (std::uint32_t n = 0; n < 6; ++n) offerBind(db, 1, client(n), kT0);
    ASSERT_TRUE(db.sync(kT0).ok());
    before = snapshot(db);
  }
  auto text = readText(dir / "leases");
  // Flip one character in the third lease line (a bit rot / hand edit), and add junk lines.
  std::size_t third = 0;
  for (int i = 0; i < 3; ++i) third = text.find("\nlease ", third) + 1;
  const auto victimAddr = text.substr(third + 11, text.find(' ', third + 11) - third - 11);
  text[third + 11 + victimAddr.size() + 8] ^= 1;  // inside "state=..."
  text.insert(third, "this is not a lease\nlease addr=1.2.3.4 crc=00000000\n");
  writeText(dir / "leases", text);

  auto db = openOk(opts(dir), pools);
  EXPECT_EQ(db.loadReport().corruptLines, 3U);
  EXPECT_EQ(db.loadReport().lines, 8U);
  EXPECT_EQ(db.loadReport().savedCopy, dir / "leases.bad");
  EXPECT_EQ(readText(dir / "leases.bad"), text);
  auto victim = parseLeaseAddress(victimAddr);
  ASSERT_TRUE(victim);
  EXPECT_EQ(db.findByAddress(*victim), nullptr);
  before.erase(*victim);
  EXPECT_EQ(snapshot(db), before);
  // The journal was rewritten clean.
  { LeaseDb closed = std::move(db); }
  auto db2 = openOk(opts(dir), pools);
  EXPECT_EQ(db2.loadReport().corruptLines, 0U);
  EXPECT_EQ(snapshot(db2), before);
}

TEST(LeaseJournal, ForeignFileIsRefusedAndLeftAlone) {
  TempDir dir;
  writeText(dir / "leases", "address,hwaddr,client_id,valid_lifetime\n10.0.0.1,...\n");
  auto db = LeaseDb::open(opts(dir), {pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 99))}, {}, kT0);
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.error().message.find("not a pxedust lease journal"), std::string::npos) << db.error().message;
  EXPECT_EQ(readText(dir / "leases"), "address,hwaddr,client_id,valid_lifetime\n10.0.0.1,...\n");
}

TEST(LeaseJournal, EmptyFileIsAnEmptyDatabase) {
  TempDir dir;
  writeText(dir / "leases", "");
  auto db = openOk(opts(dir), {pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 99))});
  EXPECT_EQ(db.size(), 0U);
  EXPECT_TRUE(readText(dir / "leases").starts_with("# pxedust lease journal v1\n"));
}

TEST(LeaseJournal, UnusableDirectoryGivesAClearError) {
  TempDir dir;
  auto pools = std::vector<PoolConfig>{pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 99))};
  {
    LeaseDbOptions o;
    o.path = dir / "missing" / "leases";
    auto db = LeaseDb::open(o, pools, {}, kT0);
    ASSERT_FALSE(db.ok());
    EXPECT_EQ(db.error().code, ENOENT);
    EXPECT_NE(db.error().message.find("not usable"), std::string::npos) << db.error().message;
    EXPECT_NE(db.error().message.find((dir / "missing").string()), std::string::npos) << db.error().message;
  }
  {
    writeText(dir / "file", "x");
    LeaseDbOptions o;
    o.path = dir / "file" / "leases";
    auto db = LeaseDb::open(o, pools, {}, kT0);
    ASSERT_FALSE(db.ok());
    EXPECT_EQ(db.error().code, ENOTDIR) << db.error().message;
  }
  if (::geteuid() == 0) {
    // root ignores directory permissions; the failure is injected at the snapshot that creates the file.
    LeaseDbOptions o = opts(dir);
    o.faultHook = [](JournalOp op) { return op == JournalOp::Compact ? EACCES : 0; };
    auto db = LeaseDb::open(o, pools, {}, kT0);
    ASSERT_FALSE(db.ok());
    EXPECT_EQ(db.error().code, EACCES);
    EXPECT_NE(db.error().message.find("Permission denied"), std::string::npos) << db.error().message;
  } else {
    auto ro = dir / "ro";
    std::filesystem::create_directory(ro);
    ::chmod(ro.c_str(), 0555);
    LeaseDbOptions o;
    o.path = ro / "leases";
    auto db = LeaseDb::open(o, pools, {}, kT0);
    ASSERT_FALSE(db.ok());
    EXPECT_EQ(db.error().code, EACCES);
    EXPECT_NE(db.error().message.find("not usable"), std::string::npos) << db.error().message;
  }
}

TEST(LeaseJournal, SecondOpenOfTheSameJournalIsRefused) {
  TempDir dir;
  auto pools = std::vector<PoolConfig>{pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 99))};
  auto db = openOk(opts(dir), pools);
  auto second = LeaseDb::open(opts(dir), pools, {}, kT0);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, EBUSY);
  EXPECT_NE(second.error().message.find("in use by another process"), std::string::npos);
}

TEST(LeaseJournal, FailedSyncIsRetriedByRewritingTheFile) {
  TempDir dir;
  auto pools = std::vector<PoolConfig>{pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 99))};
  auto failing = std::make_shared<JournalOp>(JournalOp::Sync);
  auto armed = std::make_shared<bool>(false);
  auto o = opts(dir);
  o.faultHook = [failing, armed](JournalOp op) { return *armed && op == *failing ? EIO : 0; };
  std::map<std::uint32_t, Lease> before;
  {
    auto db = openOk(o, pools);
    offerBind(db, 1, client(2), kT0);
    ASSERT_TRUE(db.sync(kT0).ok());
    offerBind(db, 1, client(4), kT0);
    *armed = true;
    auto r = db.sync(kT0);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, EIO);
    EXPECT_TRUE(db.syncPending());
    *failing = JournalOp::Compact;
    EXPECT_FALSE(db.sync(kT0).ok());  // the retry rewrites the whole file, and that fails too
    EXPECT_TRUE(db.syncPending());
    *armed = false;
    ASSERT_TRUE(db.sync(kT0).ok());
    EXPECT_FALSE(db.syncPending());
    offerBind(db, 1, client(6), kT0 + 1);
    *failing = JournalOp::Write;
    *armed = true;
    EXPECT_EQ(db.sync(kT0 + 1).error().code, EIO);
    *armed = false;
    ASSERT_TRUE(db.sync(kT0 + 1).ok());
    before = snapshot(db);
  }
  auto db = openOk(opts(dir), pools);
  EXPECT_EQ(snapshot(db), before);
  EXPECT_EQ(db.size(), 3U);
}

// The split form the service uses: the job runs (here: on another thread) while changes go on; each
// change is durable once durableCount() reaches its number; a failed compaction gives its lines back.
TEST(LeaseJournal, SyncJobsRunOffThreadWhileChangesGoOn) {
  TempDir dir;
  auto pools = std::vector<PoolConfig>{pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 99))};
  auto failCompact = std::make_shared<bool>(false);
  auto o = opts(dir);
  o.compactMinRecords = 4;
  o.compactFactor = 1;
  o.faultHook = [failCompact](JournalOp op) { return *failCompact && op == JournalOp::Compact ? ENOSPC : 0; };
  std::map<std::uint32_t, Lease> before;
  {
    auto db = openOk(o, pools);
    EXPECT_EQ(db.beginSync(kT0), nullptr);  // nothing pending
    const auto a2 = offerBind(db, 1, client(2), kT0);
    const auto first = db.changeCount();
    EXPECT_EQ(first, 1U);
    auto job = db.beginSync(kT0);
    ASSERT_NE(job, nullptr);
    EXPECT_FALSE(job->snapshot);
    EXPECT_TRUE(db.syncInFlight());
    EXPECT_EQ(db.beginSync(kT0), nullptr);  // one at a time
    std::thread worker([&] { LeaseDb::runSync(*job); });
    offerBind(db, 1, client(4), kT0);  // while the job runs
    worker.join();
    ASSERT_TRUE(db.finishSync(*job).ok());
    EXPECT_EQ(db.durableCount(), first);  // the second change is not covered by that job
    EXPECT_LT(db.durableCount(), db.changeCount());
    EXPECT_TRUE(db.syncPending());
    ASSERT_TRUE(db.sync(kT0).ok());
    EXPECT_EQ(db.durableCount(), db.changeCount());

    // Enough records for a compaction, which fails with the old journal intact: its lines come back
    // pending and go out as an append, before what came after.
    for (int i = 0; i < 6; ++i) ASSERT_TRUE(db.bind(1, client(2), a2, kT0 + 1 + i).ok());  // renewals: lines, no records
    *failCompact = true;
    auto c = db.beginSync(kT0 + 1);
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->snapshot && c->compaction);
    LeaseDb::runSync(*c);
    offerBind(db, 1, client(16), kT0 + 1);
    EXPECT_EQ(db.finishSync(*c).error().code, ENOSPC);
    EXPECT_TRUE(db.syncPending());
    auto a = db.beginSync(kT0 + 1);
    ASSERT_NE(a, nullptr);
    EXPECT_FALSE(a->snapshot);  // not retried at once: appended to the old journal
    LeaseDb::runSync(*a);
    ASSERT_TRUE(db.finishSync(*a).ok());
    EXPECT_EQ(db.durableCount(), db.changeCount());
    before = snapshot(db);
  }
  auto db = openOk(opts(dir), pools);
  EXPECT_EQ(snapshot(db), before);
  EXPECT_EQ(db.size(), 3U);
}

TEST(LeaseJournal, CompactionPreservesEverything) {
  TempDir dir;
  auto pools = std::vector<PoolConfig>{pool(1, ip(10, 0, 0, 1), ip(10, 0, 0, 200), 500)};
  auto o = opts(dir);
  o.compactMinRecords = 50;
  o.compactFactor = 2;
  std::mt19937 rng(7);
  std::map<std::uint32_t, Lease> before;
  UnixTime now = kT0;
  {
    auto db = openOk(o, pools);
    for (int i = 0; i < 3000; ++i, now += 1) {
      auto n = static_cast<std::uint32_t>(rng() % 300);
      auto c = client(n, fmt::format("host-{}", n));
      if (rng() % 5 == 0) {
        if (const Lease* l = db.findByClient(1, c.key)) (void)db.release(c.key, l->address, now);
      } else if (rng() % 20 == 0) {
        if (const Lease* l = db.findByClient(1, c.key)) (void)db.decline(c.key, l->address, now);
      } else {
        auto off = db.offer(1, c, std::nullopt, now);
        if (off) {
          ASSERT_TRUE(db.bind(1, c, off->address, now).ok());
        }
      }
      if (i % 7 == 0) {
        ASSERT_TRUE(db.sync(now).ok());
      }
      EXPECT_LE(db.journalRecords(), 2 * db.size() + 50 + 10);
    }
    ASSERT_TRUE(db.sync(now).ok());
    // Offers are not durable; everything else must come back.
    db.forEach([&](const Lease& l) {
      if (l.state != LeaseState::Offered) before.emplace(l.address, l);
    });
  }
  auto lines = readText(dir / "leases");
  EXPECT_LT(std::count(lines.begin(), lines.end(), '\n'), 2 * 200 + 60);
  auto db = openOk(o, pools, {}, now);
  EXPECT_EQ(db.loadReport().corruptLines, 0U);
  EXPECT_EQ(snapshot(db), before);
  ASSERT_TRUE(db.compact(now).ok());
  EXPECT_EQ(db.journalRecords(), before.size());
  { LeaseDb closed = std::move(db); }
  auto db2 = openOk(o, pools, {}, now);
  EXPECT_EQ(snapshot(db2), before);
}

// ---- reconfiguration ---------------------------------------------------------------------------

TEST(Leases, ReconfigureShrinksGrowsAndRemovesPools) {
  TempDir dir;
  auto db = openOk(opts(dir), {pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 19), 1000)});
  std::vector<std::uint32_t> a;
  for (std::uint32_t n = 0; n < 10; ++n) a.push_back(offerBind(db, 1, client(n * 2), kT0));
  ASSERT_TRUE(db.sync(kT0).ok());

  // Shrink to .10-.14: leases on .15-.19 stay until they expire but are not renewed or re-offered.
  ASSERT_TRUE(db.reconfigure({pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 14), 1000)}, {}).ok());
  EXPECT_EQ(db.size(), 10U);
  EXPECT_EQ(db.findByAddress(ip(10, 0, 0, 19))->state, LeaseState::Bound);
  auto s = db.stats(kT0 + 1)[0];
  EXPECT_EQ(s.total, 5U);
  EXPECT_EQ(s.bound, 5U);
  EXPECT_EQ(s.free, 0U);
  EXPECT_TRUE(isLeaseError(db.bind(1, client(18), ip(10, 0, 0, 19), kT0 + 1).error(), LeaseErrc::AddressUnavailable));
  EXPECT_FALSE(db.offer(1, client(200), std::nullopt, kT0 + 1).ok());
  // After expiry, only pool addresses are offered, and the out-of-pool records go at compaction.
  std::set<std::uint32_t> offered;
  for (std::uint32_t n = 100; n < 106; ++n) {
    auto o = db.offer(1, client(n * 2), std::nullopt, kT0 + 1001);
    if (o) offered.insert(o->address);
  }
  EXPECT_EQ(offered, (std::set<std::uint32_t>(a.begin(), a.begin() + 5)));
  ASSERT_TRUE(db.compact(kT0 + 1001).ok());
  EXPECT_EQ(db.findByAddress(ip(10, 0, 0, 19)), nullptr);

  // Grow: the new addresses are offered.
  ASSERT_TRUE(db.reconfigure({pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 30), 1000)}, {}).ok());
  auto grown = db.offer(1, client(300), std::nullopt, kT0 + 1002);
  ASSERT_TRUE(grown.ok());
  EXPECT_GE(grown->address, ip(10, 0, 0, 15));

  // Invalid configurations are refused and change nothing.
  auto overlap = db.reconfigure({pool(1, ip(10, 0, 0, 10), ip(10, 0, 0, 30)), pool(2, ip(10, 0, 0, 30), ip(10, 0, 0, 40))}, {});
  ASSERT_FALSE(overlap.ok());
  EXPECT_NE(overlap.error().message.find("overlaps"), std::string::npos) << overlap.error().message;
  PoolConfig outside = pool(3, ip(10, 0, 0, 10), ip(10, 0, 1, 10));
  EXPECT_FALSE(db.reconfigure({outside}, {}).ok());
  EXPECT_FALSE(db.reconfigure({pool(0, ip(10, 0, 0, 10), ip(10, 0, 0, 20))}, {}).ok());
  EXPECT_EQ(db.stats(kT0 + 1002)[0].total, 21U);

  // Remove the pool entirely.
  ASSERT_TRUE(db.reconfigure({}, {}).ok());
  EXPECT_TRUE(db.stats(kT0).empty());
  EXPECT_TRUE(isLeaseError(db.offer(1, client(2), std::nullopt, kT0 + 1003).error(), LeaseErrc::UnknownSubnet));
  EXPECT_TRUE(db.release(client(200).key, *offered.begin(), kT0 + 1003).ok());
  ASSERT_TRUE(db.sync(kT0 + 1003).ok());
}

// ---- scale -------------------------------------------------------------------------------------

TEST(LeaseScale, SixtyThousandLeasesInASlash16) {
  TempDir dir;
  PoolConfig p;
  p.subnetId = 1;
  p.network = ip(10, 1, 0, 0);
  p.prefixLength = 16;
  p.ranges = {{ip(10, 1, 0, 0), ip(10, 1, 255, 255)}};
  p.leaseTime = 3600;
  auto o = opts(dir);
  o.compactMinRecords = 1'000'000;  // measure the compaction separately
  auto db = openOk(o, {p});
  using Clock = std::chrono::steady_clock;
  auto ms = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
  constexpr std::uint32_t kN = 60000;

  auto t0 = Clock::now();
  for (std::uint32_t n = 0; n < kN; ++n) {
    auto c = client(n);
    auto off = db.offer(1, c, std::nullopt, kT0);
    ASSERT_TRUE(off.ok());
    ASSERT_TRUE(db.bind(1, c, off->address, kT0).ok());
    if (n % 256 == 255) {
      ASSERT_TRUE(db.sync(kT0).ok());
    }
  }
  ASSERT_TRUE(db.sync(kT0).ok());
  auto t1 = Clock::now();
  EXPECT_EQ(db.size(), kN);
  EXPECT_EQ(db.stats(kT0)[0].bound, kN);
  EXPECT_EQ(db.stats(kT0)[0].free, 65534U - kN);

  ASSERT_TRUE(db.compact(kT0).ok());
  auto t2 = Clock::now();
  { LeaseDb closed = std::move(db); }
  auto t3 = Clock::now();
  auto db2 = openOk(o, {p}, {}, kT0 + 4000);
  auto t4 = Clock::now();
  EXPECT_EQ(db2.size(), kN);

  // All expired: 60k new clients take the 5534 never-used addresses, then the 54466 freed longest ago.
  for (std::uint32_t n = kN; n < 2 * kN; ++n) {
    auto off = db2.offer(1, client(n), std::nullopt, kT0 + 4000);
    ASSERT_TRUE(off.ok());
  }
  auto t5 = Clock::now();
  // The rest of the /16, then exhaustion.
  std::uint32_t more = 0;
  while (db2.offer(1, client(3 * kN + more), std::nullopt, kT0 + 4000).ok()) ++more;
  EXPECT_EQ(more, 65534U - kN);
  auto full = db2.offer(1, client(4 * kN), std::nullopt, kT0 + 4000);
  ASSERT_FALSE(full.ok());
  EXPECT_TRUE(isLeaseError(full.error(), LeaseErrc::NoFreeAddress));
  EXPECT_EQ(db2.stats(kT0 + 4000)[0].offered, 65534U);
  EXPECT_EQ(db2.stats(kT0 + 4000)[0].free, 0U);
  std::printf("[ figures  ] %u offer+bind in a /16 (sync per 256): %.0f ms (%.1f us each)\n", kN, ms(t1 - t0),
              ms(t1 - t0) * 1000 / kN);
  std::printf("[ figures  ] compaction of %u leases: %.0f ms; reload: %.0f ms\n", kN, ms(t2 - t1), ms(t4 - t3));
  std::printf("[ figures  ] %u offers over expired leases (5534 never used, then oldest freed): %.0f ms (%.1f us each)\n",
              kN, ms(t5 - t4), ms(t5 - t4) * 1000 / kN);
}

// ---- randomized model --------------------------------------------------------------------------

// Random DISCOVER/REQUEST/RELEASE/DECLINE traffic over a small pool with time moving on; after every
// step, no active record may be shared and every bound lease must be one this test was told about.
TEST(LeaseModel, RandomTrafficKeepsInvariants) {
  TempDir dir;
  auto o = opts(dir);
  o.offerTimeout = 5;
  o.declineQuarantine = 50;
  o.compactMinRecords = 30;
  auto pools = std::vector<PoolConfig>{pool(1, ip(10, 0, 0, 1), ip(10, 0, 0, 16), 40)};
  auto db = std::make_unique<LeaseDb>(openOk(o, pools));
  std::mt19937 rng(1234);
  std::map<std::uint32_t, std::pair<std::uint32_t, UnixTime>> bound;  // addr -> (client, expiry) we ACKed
  UnixTime now = kT0;
  for (int step = 0; step < 12000; ++step) {
    now += rng() % 3;
    auto n = static_cast<std::uint32_t>(rng() % 24);
    auto c = client(n);
    switch (rng() % 8) {
      case 0: case 1: case 2: {
        auto off = db->offer(1, c, std::nullopt, now);
        if (!off) {
          ASSERT_TRUE(isLeaseError(off.error(), LeaseErrc::NoFreeAddress));
          break;
        }
        auto it = bound.find(off->address);
        if (it != bound.end() && it->second.second > now) {
          ASSERT_EQ(it->second.first, n) << "offered a bound address";
        }
        if (rng() % 4 != 0) {
          auto b = db->bind(1, c, off->address, now);
          ASSERT_TRUE(b.ok()) << b.error().message;
          if (b) {
            for (auto& [a, v] : bound)
              if (v.first == n && a != off->address) v.second = std::min(v.second, now);  // released
            bound[off->address] = {n, b->expiry};
          }
        }
        break;
      }
      case 3: {  // REQUEST for a random address: granted only when nobody else holds it
        auto a = ip(10, 0, 0, 1 + rng() % 16);
        auto b = db->bind(1, c, a, now);
        auto it = bound.find(a);
        if (b) {
          if (it != bound.end() && it->second.second > now) {
            ASSERT_EQ(it->second.first, n);
          }
          for (auto& [x, v] : bound)
            if (v.first == n && x != a) v.second = std::min(v.second, now);
          bound[a] = {n, b->expiry};
        }
        break;
      }
      case 4:
        if (const Lease* l = db->findByClient(1, c.key); l && db->release(c.key, l->address, now).ok()) {
          if (auto it = bound.find(l->address); it != bound.end() && it->second.first == n) it->second.second = now;
        }
        break;
      case 5:
        if (rng() % 8 == 0) {
          if (const Lease* l = db->findByClient(1, c.key); l && db->decline(c.key, l->address, now).ok()) {
            if (auto it = bound.find(l->address); it != bound.end()) it->second.second = now;
          }
        }
        break;
      case 6:
        if (rng() % 2 == 0) {
          ASSERT_TRUE(db->sync(now).ok());
        }
        break;
      default:
        if (rng() % 50 == 0) {  // restart
          ASSERT_TRUE(db->sync(now).ok());
          db.reset();
          db = std::make_unique<LeaseDb>(openOk(o, pools, {}, now));
        }
        break;
    }
    // Every lease we ACKed and that is still valid is held by that client.
    for (const auto& [a, v] : bound) {
      if (v.second <= now) continue;
      const Lease* l = db->findByAddress(a);
      ASSERT_NE(l, nullptr);
      ASSERT_EQ(l->client, client(v.first).key) << "step " << step;
      ASSERT_TRUE(l->activeAt(now));
    }
    auto s = db->stats(now)[0];
    ASSERT_EQ(s.bound + s.offered + s.declined + s.free, s.total);
  }
}

// ---- kill -9 -----------------------------------------------------------------------------------

// A child binds, renews and releases leases, calling sync() every few changes and reporting over a
// pipe what it did and what sync() acknowledged; the parent SIGKILLs it at a random moment (also
// inside open()'s replay and inside compactions, whose threshold is tiny), reopens the journal and
// checks: every address is in a state that some prefix of the child's changes, at least as long as
// the acknowledged one, produces; nothing appears that the child never did; and no bind ever gave a
// second client an address with a valid lease. SIGKILL keeps the page cache, so this proves the
// ordering of the protocol, not the fdatasync calls (those need a power cut).
struct Msg {
  std::uint32_t kind;  // 1 bind, 2 release, 3 "changes < op are synced"
  std::uint32_t op;
  std::uint32_t addr;
  std::uint32_t client;
  std::int64_t expiry;
};

struct AddrState {
  bool bound = false;  // else free (released, or no record)
  std::uint32_t client = 0;
  UnixTime expiry = 0;
  friend bool operator==(const AddrState&, const AddrState&) = default;
};

constexpr std::uint32_t kCrashLeaseTime = 86400 * 30;

std::vector<PoolConfig> crashPools() {
  PoolConfig p;
  p.subnetId = 1;
  p.network = ip(10, 2, 0, 0);
  p.prefixLength = 16;
  p.ranges = {{ip(10, 2, 0, 1), ip(10, 2, 127, 255)}, {ip(10, 2, 200, 0), ip(10, 2, 255, 254)}};
  p.leaseTime = kCrashLeaseTime;
  return {p};
}

LeaseDbOptions crashOptions(const TempDir& dir, int round) {
  auto o = opts(dir);
  o.compactMinRecords = 40;
  o.compactFactor = round % 3 == 0 ? 0 : 1;
  return o;
}

[[noreturn]] void crashChild(const TempDir& dir, int round, int fd) {
  const UnixTime now = kT0 + round;
  auto opened = LeaseDb::open(crashOptions(dir, round), crashPools(), {}, now);
  if (!opened) _exit(3);
  LeaseDb db = std::move(opened).value();
  std::mt19937 rng(static_cast<std::uint32_t>(round) * 7919U);
  std::vector<Lease> existing;
  db.forEach([&](const Lease& l) {
    if (l.state == LeaseState::Bound) existing.push_back(l);
  });
  std::sort(existing.begin(), existing.end(), [](const Lease& a, const Lease& b) { return a.address < b.address; });
  std::vector<std::pair<std::uint32_t, std::uint32_t>> mine;  // (addr, client) bound this round
  auto send = [&](const Msg& m) {
    if (::write(fd, &m, sizeof m) != static_cast<ssize_t>(sizeof m)) _exit(4);
  };
  std::uint32_t op = 0;
  for (; op < 400; ++op) {
    auto r = rng() % 8;
    if (r == 0 && !mine.empty()) {
      auto i = rng() % mine.size();
      auto [addr, id] = mine[i];
      mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(i));
      if (!db.release(client(id).key, addr, now)) _exit(5);
      send({2, op, addr, id, now});
    } else if (r == 1 && !existing.empty()) {
      const Lease& l = existing[rng() % existing.size()];
      auto id = idOf(l.mac);
      auto b = db.bind(1, client(id), l.address, now);
      if (!b) _exit(6);
      send({1, op, l.address, id, b->expiry});
    } else {
      auto id = static_cast<std::uint32_t>(round) * 1000 + op;
      auto c = client(id);
      auto off = db.offer(1, c, std::nullopt, now);
      if (!off) _exit(7);
      auto b = db.bind(1, c, off->address, now);
      if (!b) _exit(8);
      mine.emplace_back(off->address, id);
      send({1, op, off->address, id, b->expiry});
    }
    if (rng() % 3 == 0) {
      if (!db.sync(now)) _exit(9);
      send({3, op + 1, 0, 0, 0});
    }
  }
  if (!db.sync(now)) _exit(9);
  send({3, op, 0, 0, 0});
  _exit(0);
}

TEST(LeaseCrash, KillNineNeverLosesAnAcknowledgedLease) {
  TempDir dir;
  std::map<std::uint32_t, AddrState> model;  // what the journal held after the previous round
  std::mt19937 timing(std::random_device{}());
  int killedEarly = 0, completed = 0, beforeFirstChange = 0, inCompaction = 0;
  std::uint64_t ackedOps = 0, tornSeen = 0;
  for (int round = 1; round <= 50; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      crashChild(dir, round, fds[1]);
    }
    ::close(fds[1]);
    std::vector<Msg> msgs;
    std::string buf;
    auto drain = [&](int timeoutMs) {
      pollfd p{fds[0], POLLIN, 0};
      if (::poll(&p, 1, timeoutMs) <= 0) return false;
      char tmp[4096];
      ssize_t n = ::read(fds[0], tmp, sizeof tmp);
      if (n <= 0) return false;
      buf.append(tmp, static_cast<std::size_t>(n));
      return true;
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(timing() % 80000);
    bool eof = false;
    while (!eof && std::chrono::steady_clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fds[0], POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) > 0) eof = !drain(0);
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    while (drain(0)) {
    }
    ::close(fds[0]);
    if (WIFEXITED(status)) {
      ASSERT_EQ(WEXITSTATUS(status), 0) << "child failed in round " << round;
      ++completed;
    } else {
      ++killedEarly;
    }
    for (std::size_t off = 0; off + sizeof(Msg) <= buf.size(); off += sizeof(Msg)) {
      Msg m;
      std::memcpy(&m, buf.data() + off, sizeof m);
      msgs.push_back(m);
    }

    // Replay the child's story over the model: the states each address may be in now.
    std::uint32_t acked = 0;
    for (const auto& m : msgs)
      if (m.kind == 3) acked = std::max(acked, m.op);
    ackedOps += acked;
    std::map<std::uint32_t, std::vector<AddrState>> allowed;  // addr -> acceptable states
    std::map<std::uint32_t, AddrState> current = model;
    for (const auto& m : msgs) {
      if (m.kind == 3) continue;
      AddrState before = current.count(m.addr) ? current[m.addr] : AddrState{};
      if (m.kind == 1) {
        ASSERT_TRUE(!before.bound || before.expiry <= kT0 + round || before.client == m.client)
            << "round " << round << ": " << formatLeaseAddress(m.addr) << " given to client " << m.client
            << " while bound to " << before.client;
      }
      AddrState after = m.kind == 1 ? AddrState{true, m.client, m.expiry} : AddrState{false, 0, 0};
      auto& list = allowed[m.addr];
      if (m.op < acked) list.clear();  // acknowledged: the earlier states are gone for good
      if (list.empty() && m.op >= acked) list.push_back(before);
      list.push_back(after);
      current[m.addr] = after;
    }

    if (msgs.empty()) ++beforeFirstChange;
    if (std::filesystem::exists(dir / "leases.tmp")) ++inCompaction;
    auto opened = LeaseDb::open(crashOptions(dir, round), crashPools(), {}, kT0 + round);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    LeaseDb db = std::move(opened).value();
    if (db.loadReport().tornBytes) ++tornSeen;
    ASSERT_EQ(db.loadReport().corruptLines, 0U) << "round " << round;
    std::map<std::uint32_t, AddrState> found;
    db.forEach([&](const Lease& l) {
      found[l.address] = l.state == LeaseState::Bound ? AddrState{true, idOf(l.mac), l.expiry} : AddrState{};
      EXPECT_EQ(l.client, client(idOf(l.mac)).key);
    });
    std::set<std::uint32_t> addrs;
    for (const auto& [a, s] : found) addrs.insert(a);
    for (const auto& [a, s] : model) addrs.insert(a);
    for (const auto& [a, s] : allowed) addrs.insert(a);
    for (auto a : addrs) {
      AddrState got = found.count(a) ? found[a] : AddrState{};
      auto it = allowed.find(a);
      if (it == allowed.end()) {
        AddrState was = model.count(a) ? model[a] : AddrState{};
        ASSERT_EQ(got, was) << "round " << round << ": untouched " << formatLeaseAddress(a) << " changed";
      } else {
        bool ok = std::find(it->second.begin(), it->second.end(), got) != it->second.end();
        ASSERT_TRUE(ok) << "round " << round << ": " << formatLeaseAddress(a) << " is bound=" << got.bound
                        << " client=" << got.client << ", not a state the acknowledged changes allow";
      }
    }
    model = found;
  }
  std::printf("[ figures  ] crash rounds: %d killed (%d before their first change, %d inside a compaction), %d ran "
              "to the end; %llu acknowledged changes; %llu torn tails; %zu addresses\n",
              killedEarly, beforeFirstChange, inCompaction, completed, static_cast<unsigned long long>(ackedOps),
              static_cast<unsigned long long>(tornSeen), model.size());
}

}  // namespace
}  // namespace pxedust::dhcp
