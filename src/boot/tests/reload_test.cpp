// setInventory(): a host's state follows it through a reload that renames it; a removed host
// becomes an unknown client; an unknown client that is configured now becomes that host.
#include <gtest/gtest.h>

#include "boot/tracker.hpp"
#include "lab.hpp"

namespace pxedust::boot::testing {
namespace {

const char* kRenamed = R"(
[[host]]
name = "lab-a"
mac = "52:54:00:00:00:01"
ip = "10.0.0.11"
[[host]]
name = "node02"
mac = "52:54:00:00:00:02"
)";

const char* kNode02Only = R"(
[[host]]
name = "node02"
mac = "52:54:00:00:00:02"
)";

void bootNode01(Lab& lab) {
  dhcpExchange(lab, pxeDiscover(mac("52:54:00:00:00:01"), 7), ip("10.0.0.11"));
  lab.then(served(ip("10.0.0.11"), "snponly.efi"));
  lab.then(login(ip("10.0.0.11"), "node01"));
}

TEST(Reload, ARenamedHostKeepsItsBoot) {
  Lab lab;
  bootNode01(lab);
  const auto before = lab.tracker.generation();
  lab.tracker.setInventory(inventoryFrom(kRenamed));
  EXPECT_GT(lab.tracker.generation(), before);
  EXPECT_EQ(lab.tracker.findByName("node01"), nullptr);
  const HostState* host = lab.tracker.findByName("lab-a");
  ASSERT_NE(host, nullptr);
  EXPECT_TRUE(host->configured);
  EXPECT_EQ(host->stage, Stage::RootDisk);
  EXPECT_EQ(host->boots, 1u);
  EXPECT_EQ(host->events.size(), 5u);
  EXPECT_EQ(lab.tracker.unknownCount(), 0u);
  lab.then(served(ip("10.0.0.11"), "vmlinuz"));
  EXPECT_EQ(host->stage, Stage::BootFiles);
}

TEST(Reload, AHostMatchedByNameKeepsItsBootWhenItsMacChanges) {
  Lab lab;
  bootNode01(lab);
  lab.tracker.setInventory(inventoryFrom(R"(
[[host]]
name = "node01"
mac = "52:54:00:00:01:01"
)"));
  const HostState* host = lab.tracker.findByName("node01");
  EXPECT_EQ(host->mac, mac("52:54:00:00:01:01"));
  EXPECT_EQ(host->stage, Stage::RootDisk);
}

TEST(Reload, ARemovedHostThatWasSeenBecomesAnUnknownClient) {
  Lab lab;
  bootNode01(lab);
  lab.tracker.setInventory(inventoryFrom(kNode02Only));
  EXPECT_EQ(lab.tracker.findByName("node01"), nullptr);
  ASSERT_EQ(lab.tracker.unknownCount(), 1u);
  const HostState* host = lab.tracker.findByMac(mac("52:54:00:00:00:01"));
  ASSERT_NE(host, nullptr);
  EXPECT_FALSE(host->configured);
  EXPECT_EQ(host->name, "");
  EXPECT_EQ(host->stage, Stage::RootDisk);
  EXPECT_EQ(lab.tracker.findByIp(ip("10.0.0.11")), host);  // its ACK's binding still holds
  lab.then(served(ip("10.0.0.11"), "vmlinuz"));
  EXPECT_EQ(host->stage, Stage::BootFiles);
  EXPECT_EQ(lab.tracker.unknownCount(), 1u);
}

TEST(Reload, ARemovedHostNeverSeenIsDropped) {
  Lab lab;
  lab.tracker.setInventory(inventoryFrom(kNode02Only));
  EXPECT_EQ(lab.tracker.hosts().size(), 1u);
  EXPECT_EQ(lab.tracker.unknownCount(), 0u);
}

TEST(Reload, AnUnknownClientThatIsNowConfiguredBecomesThatHost) {
  Lab lab;
  const MacAddress stranger = mac("02:00:00:00:00:42");
  dhcpExchange(lab, pxeDiscover(stranger), ip("10.0.0.150"));
  lab.then(served(ip("10.0.0.150"), "undionly.kpxe"));
  ASSERT_EQ(lab.tracker.unknownCount(), 1u);
  lab.tracker.setInventory(inventoryFrom(R"(
[[host]]
name = "node03"
mac = "02:00:00:00:00:42"
)"));
  EXPECT_EQ(lab.tracker.unknownCount(), 0u);
  const HostState* host = lab.tracker.findByName("node03");
  ASSERT_NE(host, nullptr);
  EXPECT_EQ(host->stage, Stage::BootProgram);
  EXPECT_EQ(host->ip, ip("10.0.0.150"));
  EXPECT_EQ(host->events.size(), 4u);
  lab.then(served(ip("10.0.0.150"), "boot.ipxe"));  // the binding leads to it
  EXPECT_EQ(host->stage, Stage::BootFiles);
}

TEST(Reload, RemovedHostsOverTheBoundAreEvictedOldestFirst) {
  TrackerOptions options;
  options.maxUnknownHosts = 1;
  Lab lab(kTwoHosts, options);
  lab.then(pxeDiscover(mac("52:54:00:00:00:01")));
  lab.then(pxeDiscover(mac("52:54:00:00:00:02")));
  lab.tracker.setInventory(inventoryFrom(R"(
[[host]]
name = "other"
mac = "52:54:00:00:00:09"
)"));
  EXPECT_EQ(lab.tracker.unknownCount(), 1u);
  EXPECT_NE(lab.tracker.findByMac(mac("52:54:00:00:00:02")), nullptr);
  EXPECT_EQ(lab.tracker.findByMac(mac("52:54:00:00:00:01")), nullptr);
}

}  // namespace
}  // namespace pxedust::boot::testing
