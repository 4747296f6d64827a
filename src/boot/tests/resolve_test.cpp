// Which entry an event lands on: configured hosts by MAC or IP, unknown clients by MAC with the
// IP -> MAC bindings DHCP ACKs teach, else by IP; the disk owner as a last resort.
#include <gtest/gtest.h>

#include "boot/tracker.hpp"
#include "lab.hpp"

namespace pxedust::boot::testing {
namespace {

TEST(Resolve, ConfiguredHostsByMacAndByIp) {
  Lab lab;
  lab.then(pxeDiscover(mac("52:54:00:00:00:01")));
  lab.then(served(ip("10.0.0.11"), "pxelinux.0"));  // node01's configured address, no ACK seen
  const HostState* node01 = lab.tracker.findByName("node01");
  EXPECT_EQ(node01->events.size(), 2u);
  EXPECT_EQ(lab.tracker.findByIp(ip("10.0.0.11")), node01);
  EXPECT_EQ(lab.tracker.findByMac(mac("52:54:00:00:00:01")), node01);
  EXPECT_EQ(lab.tracker.unknownCount(), 0u);
}

TEST(Resolve, AConfiguredHostWithAPoolAddressIsFoundThroughItsAck) {
  Lab lab;
  const MacAddress node02 = mac("52:54:00:00:00:02");
  dhcpExchange(lab, pxeDiscover(node02), ip("10.0.0.150"));
  lab.then(served(ip("10.0.0.150"), "undionly.kpxe"));
  lab.then(login(ip("10.0.0.150"), "node02"));
  const HostState* host = lab.tracker.findByName("node02");
  EXPECT_EQ(host->ip, ip("10.0.0.150"));
  EXPECT_EQ(host->stage, Stage::RootDisk);
  EXPECT_EQ(host->events.size(), 5u);
  EXPECT_EQ(lab.tracker.unknownCount(), 0u);
}

TEST(Resolve, AnUnknownClientIsTrackedByMacAndItsFilesFollowTheAck) {
  Lab lab;
  const MacAddress stranger = mac("02:00:00:00:00:99");
  dhcpExchange(lab, pxeDiscover(stranger, 7), ip("10.0.0.160"));
  lab.then(served(ip("10.0.0.160"), "ipxe.efi"));
  ASSERT_EQ(lab.tracker.unknownCount(), 1u);
  const HostState* host = lab.tracker.findByMac(stranger);
  ASSERT_NE(host, nullptr);
  EXPECT_FALSE(host->configured);
  EXPECT_EQ(host->name, "");
  EXPECT_EQ(host->stage, Stage::BootProgram);
  EXPECT_EQ(host->boots, 1u);
  EXPECT_EQ(lab.tracker.findByIp(ip("10.0.0.160")), host);
}

TEST(Resolve, WithoutABindingAnUnknownClientIsTrackedByIpAndFoldedInAtItsAck) {
  Lab lab;
  // pxedust restarted under a running machine: its disk reconnects before any DHCP.
  lab.then(login(ip("10.0.0.170"), ""));
  ASSERT_EQ(lab.tracker.unknownCount(), 1u);
  const HostState* byIp = lab.tracker.findByIp(ip("10.0.0.170"));
  ASSERT_NE(byIp, nullptr);
  EXPECT_FALSE(byIp->mac);
  EXPECT_EQ(byIp->stage, Stage::RootDisk);

  const MacAddress stranger = mac("02:00:00:00:00:77");
  lab.at(std::chrono::minutes(30), ack(stranger, ip("10.0.0.170")));  // its renewal
  ASSERT_EQ(lab.tracker.unknownCount(), 1u);  // one machine, one entry
  const HostState* host = lab.tracker.findByMac(stranger);
  ASSERT_NE(host, nullptr);
  EXPECT_EQ(lab.tracker.findByIp(ip("10.0.0.170")), host);
  EXPECT_EQ(host->stage, Stage::RootDisk);  // what it was doing, not a step back to address
  ASSERT_EQ(host->events.size(), 2u);
  EXPECT_EQ(kindName(host->events[0]), "disk.login");
  EXPECT_EQ(kindName(host->events[1]), "dhcp.ack");
  ASSERT_TRUE(host->disk);
  EXPECT_EQ(host->disk->sessions, 1u);
}

TEST(Resolve, ADiskEventFromAnUnknownAddressFallsBackToTheDisksOwner) {
  Lab lab;
  lab.then(login(ip("192.168.7.7"), "node02"));  // no ACK seen, address not configured
  EXPECT_EQ(lab.tracker.findByName("node02")->stage, Stage::RootDisk);
  EXPECT_EQ(lab.tracker.findByName("node02")->ip, ip("192.168.7.7"));
  EXPECT_EQ(lab.tracker.unknownCount(), 0u);
}

TEST(Resolve, TheClientsOwnAddressWinsOverTheDisksOwner) {
  Lab lab;
  lab.then(login(ip("10.0.0.11"), "node02"));  // node01 logs in to node02's disk
  EXPECT_EQ(lab.tracker.findByName("node01")->stage, Stage::RootDisk);
  EXPECT_EQ(lab.tracker.findByName("node01")->disk->hostName, "node02");
  EXPECT_EQ(lab.tracker.findByName("node02")->stage, Stage::Unseen);
}

TEST(Resolve, TheNextAckForAnAddressMovesItsBinding) {
  Lab lab;
  const MacAddress first = mac("02:00:00:00:00:01");
  const MacAddress second = mac("02:00:00:00:00:02");
  dhcpExchange(lab, pxeDiscover(first), ip("10.0.0.180"));
  dhcpExchange(lab, pxeDiscover(second), ip("10.0.0.180"));  // the lease went to another machine
  lab.then(served(ip("10.0.0.180"), "undionly.kpxe"));
  EXPECT_EQ(lab.tracker.findByMac(second)->stage, Stage::BootProgram);
  EXPECT_EQ(lab.tracker.findByMac(first)->stage, Stage::Address);
}

TEST(Resolve, AHostThatMovesToANewAddressLeavesTheOldOneUnbound) {
  Lab lab;
  const MacAddress stranger = mac("02:00:00:00:00:01");
  dhcpExchange(lab, pxeDiscover(stranger), ip("10.0.0.180"));
  dhcpExchange(lab, pxeDiscover(stranger), ip("10.0.0.181"));
  EXPECT_EQ(lab.tracker.findByIp(ip("10.0.0.181")), lab.tracker.findByMac(stranger));
  EXPECT_EQ(lab.tracker.findByIp(ip("10.0.0.180")), nullptr);
}

}  // namespace
}  // namespace pxedust::boot::testing
