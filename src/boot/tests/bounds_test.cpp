// The bounds: events per host, unknown clients (least recently seen evicted, configured kept),
// bindings released with their entry, peer text cut.
#include <gtest/gtest.h>

#include "boot/tracker.hpp"
#include "lab.hpp"

namespace pxedust::boot::testing {
namespace {

MacAddress nthMac(unsigned n) {
  return MacAddress({0x02, 0x00, static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
                     static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)});
}

TEST(Bounds, AHostKeepsItsLatestEventsOnly) {
  TrackerOptions options;
  options.eventsPerHost = 8;
  Lab lab(kTwoHosts, options);
  for (int i = 0; i < 20; ++i) lab.then(ack(mac("52:54:00:00:00:01"), ip("10.0.0.11")));
  const HostState* host = lab.tracker.findByName("node01");
  ASSERT_EQ(host->events.size(), 8u);
  EXPECT_EQ(host->events.back().time, lab.clock.now);
  EXPECT_EQ(host->events.front().time, lab.clock.now - 7s);
}

TEST(Bounds, AFloodOfRandomMacsKeepsTheMostRecentUnknownClientsAndEveryConfiguredHost) {
  TrackerOptions options;
  options.maxUnknownHosts = 16;
  Lab lab(kTwoHosts, options);
  lab.then(pxeDiscover(mac("52:54:00:00:00:01")));  // long before the flood
  for (unsigned n = 0; n < 5000; ++n) lab.at(1ms, pxeDiscover(nthMac(n)));
  EXPECT_EQ(lab.tracker.unknownCount(), 16u);
  EXPECT_EQ(lab.tracker.hosts().size(), 18u);
  EXPECT_NE(lab.tracker.findByName("node01"), nullptr);
  EXPECT_EQ(lab.tracker.findByName("node01")->boots, 1u);
  EXPECT_EQ(lab.tracker.findByName("node02")->stage, Stage::Unseen);
  EXPECT_NE(lab.tracker.findByMac(nthMac(4999)), nullptr);
  EXPECT_NE(lab.tracker.findByMac(nthMac(4984)), nullptr);
  EXPECT_EQ(lab.tracker.findByMac(nthMac(4983)), nullptr);
  EXPECT_EQ(lab.tracker.findByMac(nthMac(0)), nullptr);
}

TEST(Bounds, TheLeastRecentlySeenUnknownClientIsTheOneEvicted) {
  TrackerOptions options;
  options.maxUnknownHosts = 3;
  Lab lab(kTwoHosts, options);
  lab.then(pxeDiscover(nthMac(1)));
  lab.then(pxeDiscover(nthMac(2)));
  lab.then(pxeDiscover(nthMac(3)));
  lab.then(offer(nthMac(1), ip("10.0.0.101")));  // 1 is seen again: 2 is now the oldest
  lab.then(pxeDiscover(nthMac(4)));
  EXPECT_NE(lab.tracker.findByMac(nthMac(1)), nullptr);
  EXPECT_EQ(lab.tracker.findByMac(nthMac(2)), nullptr);
  EXPECT_NE(lab.tracker.findByMac(nthMac(3)), nullptr);
  EXPECT_NE(lab.tracker.findByMac(nthMac(4)), nullptr);
  // Most recently seen first.
  auto hosts = lab.tracker.hosts();
  ASSERT_EQ(hosts.size(), 5u);
  EXPECT_EQ(hosts[2]->mac, nthMac(4));
  EXPECT_EQ(hosts[3]->mac, nthMac(1));
  EXPECT_EQ(hosts[4]->mac, nthMac(3));
}

TEST(Bounds, AnEvictedClientsBindingGoesWithIt) {
  TrackerOptions options;
  options.maxUnknownHosts = 2;
  Lab lab(kTwoHosts, options);
  dhcpExchange(lab, pxeDiscover(nthMac(1)), ip("10.0.0.101"));
  lab.then(pxeDiscover(nthMac(2)));
  lab.then(pxeDiscover(nthMac(3)));  // evicts 1
  ASSERT_EQ(lab.tracker.findByMac(nthMac(1)), nullptr);
  EXPECT_EQ(lab.tracker.findByIp(ip("10.0.0.101")), nullptr);
  lab.then(served(ip("10.0.0.101"), "undionly.kpxe"));  // a client known by its address only
  const HostState* host = lab.tracker.findByIp(ip("10.0.0.101"));
  ASSERT_NE(host, nullptr);
  EXPECT_FALSE(host->mac);
  EXPECT_EQ(host->events.size(), 1u);
}

TEST(Bounds, PeerTextIsBoundedBeforeItIsKept) {
  TrackerOptions options;
  options.maxText = 32;
  Lab lab(kTwoHosts, options);
  std::string name(1000, 'a');
  name[5] = '\xfe';
  lab.then(failed(ip("10.0.0.11"), name, std::string(500, 'r')));
  const HostState* host = lab.tracker.findByName("node01");
  const auto& file = std::get<FileEvent>(host->events.back().what);
  EXPECT_EQ(file.requested.size(), 32u);
  EXPECT_EQ(file.requested.substr(0, 7), "aaaaa?a");
  EXPECT_EQ(file.reason.size(), 32u);
}

}  // namespace
}  // namespace pxedust::boot::testing
