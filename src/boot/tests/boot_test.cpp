// The stage rules and the "a new boot started" rule, played with the event sequences real boots
// send: BIOS iPXE ROM + pxelinux over TFTP, UEFI PXE -> iPXE -> script -> iSCSI root, the
// initramfs's DHCP and second login, a reboot, failures.
#include <gtest/gtest.h>

#include "boot/tracker.hpp"
#include "lab.hpp"

namespace pxedust::boot::testing {
namespace {

const MacAddress kNode01 = mac("52:54:00:00:00:01");
const Ipv4 kIp01 = ip("10.0.0.11");

// QEMU's iPXE ROM does DHCP and loads pxelinux.0; pxelinux reuses that DHCP (PXE API), probes its
// config names and loads the kernel and initrd; the initramfs then does DHCP of its own.
void biosPxelinuxBoot(Lab& lab) {
  dhcpExchange(lab, pxeDiscover(kNode01, 0), kIp01, "node01");
  lab.then(served(kIp01, "pxelinux.0", 46909));
  lab.then(served(kIp01, "ldlinux.c32", 120000));
  lab.then(notFound(kIp01, "pxelinux.cfg/44454c4c-0000-1000-8000-000000000000"));
  lab.then(notFound(kIp01, "pxelinux.cfg/01-52-54-00-00-00-01"));
  lab.then(notFound(kIp01, "pxelinux.cfg/0A00000B"));
  lab.then(served(kIp01, "pxelinux.cfg/default", 120));
  lab.then(served(kIp01, "vmlinuz", 8000000));
  lab.then(served(kIp01, "initrd.img", 30000000));
}

// OVMF's PXE asks snponly.efi's size, then fetches it; iPXE does its own DHCP and gets the script
// and a root-path, logs in to the SAN disk (sanhook, for the iBFT), loads kernel and initrd; the
// initramfs does DHCP and logs in again from the iBFT.
void uefiIpxeIscsiBoot(Lab& lab) {
  dhcpExchange(lab, pxeDiscover(kNode01, 7), kIp01, "node01");
  lab.then(sizeQuery(kIp01, "snponly.efi"));
  lab.at(100ms, served(kIp01, "snponly.efi", 200000));
  dhcpExchange(lab, pxeDiscover(kNode01, 7), kIp01, "node01");  // iPXE
  lab.then(served(kIp01, "boot.ipxe", 150));
  lab.then(login(kIp01, "node01", "iqn.2010-04.org.ipxe:node01"));
  lab.then(served(kIp01, "vmlinuz", 8000000));
  lab.then(served(kIp01, "initrd.img", 30000000));
  dhcpExchange(lab, osDiscover(kNode01), kIp01);  // the initramfs's udhcpc
  lab.then(login(kIp01, "node01", "iqn.2010-04.org.ipxe:node01"));
}

TEST(Boot, BiosIpxeRomThroughPxelinux) {
  Lab lab;
  const HostState& host = *lab.tracker.findByName("node01");
  EXPECT_EQ(host.stage, Stage::Unseen);

  lab.then(pxeDiscover(kNode01, 0));
  EXPECT_EQ(host.stage, Stage::Dhcp);
  EXPECT_EQ(host.boots, 1u);
  EXPECT_EQ(host.bootStarted, lab.clock.now);
  const TimePoint started = lab.clock.now;
  lab.at(10ms, offer(kNode01, kIp01));
  EXPECT_EQ(host.stage, Stage::Dhcp);
  lab.then(ack(kNode01, kIp01, "node01"));
  EXPECT_EQ(host.stage, Stage::Address);
  EXPECT_EQ(host.stageSince, lab.clock.now);

  lab.then(served(kIp01, "pxelinux.0"));
  EXPECT_EQ(host.stage, Stage::BootProgram);
  EXPECT_EQ(host.lastFile, "pxelinux.0");
  lab.then(served(kIp01, "ldlinux.c32"));
  EXPECT_EQ(host.stage, Stage::BootFiles);
  const TimePoint filesSince = lab.clock.now;
  lab.then(notFound(kIp01, "pxelinux.cfg/01-52-54-00-00-00-01"));  // a probe, not a failure
  EXPECT_EQ(host.stage, Stage::BootFiles);
  EXPECT_EQ(host.lastFile, "ldlinux.c32");
  lab.then(served(kIp01, "pxelinux.cfg/default"));
  lab.then(served(kIp01, "vmlinuz"));
  lab.then(served(kIp01, "initrd.img"));
  EXPECT_EQ(host.stage, Stage::BootFiles);
  EXPECT_EQ(host.stageSince, filesSince);  // staying in a stage does not re-enter it
  EXPECT_EQ(host.lastFile, "initrd.img");

  dhcpExchange(lab, osDiscover(kNode01), kIp01);  // the initramfs
  EXPECT_EQ(host.stage, Stage::BootFiles);
  EXPECT_EQ(host.boots, 1u);
  EXPECT_EQ(host.bootStarted, started);
  EXPECT_EQ(host.failures, 0u);
}

TEST(Boot, UefiIpxeScriptIscsiRootIsOneBoot) {
  Lab lab;
  const HostState& host = *lab.tracker.findByName("node01");
  dhcpExchange(lab, pxeDiscover(kNode01, 7), kIp01, "node01");
  lab.then(sizeQuery(kIp01, "snponly.efi"));
  EXPECT_EQ(host.stage, Stage::Address);  // the size query is not the boot program yet
  lab.at(100ms, served(kIp01, "snponly.efi"));
  EXPECT_EQ(host.stage, Stage::BootProgram);

  dhcpExchange(lab, pxeDiscover(kNode01, 7), kIp01, "node01");  // iPXE, chain-loaded
  EXPECT_EQ(host.stage, Stage::BootProgram);
  EXPECT_EQ(host.boots, 1u);
  lab.then(served(kIp01, "boot.ipxe"));
  EXPECT_EQ(host.stage, Stage::BootFiles);
  lab.then(login(kIp01, "node01"));  // sanhook
  EXPECT_EQ(host.stage, Stage::RootDisk);
  lab.then(served(kIp01, "vmlinuz"));  // loaded after the SAN hook
  EXPECT_EQ(host.stage, Stage::BootFiles);
  lab.then(served(kIp01, "initrd.img"));

  dhcpExchange(lab, osDiscover(kNode01), kIp01);  // the initramfs
  EXPECT_EQ(host.stage, Stage::BootFiles);
  lab.then(login(kIp01, "node01"));
  EXPECT_EQ(host.stage, Stage::RootDisk);
  EXPECT_EQ(host.boots, 1u);
  ASSERT_TRUE(host.disk);
  EXPECT_EQ(host.disk->sessions, 2u);
  EXPECT_EQ(host.disk->hostName, "node01");

  lab.then(logout(kIp01, "node01"));  // the target ends iPXE's abandoned session
  EXPECT_EQ(host.stage, Stage::RootDisk);
  EXPECT_EQ(host.disk->sessions, 1u);
}

TEST(Boot, RebootFromRootDiskStartsANewBoot) {
  Lab lab;
  const HostState& host = *lab.tracker.findByName("node01");
  uefiIpxeIscsiBoot(lab);
  ASSERT_EQ(host.stage, Stage::RootDisk);

  lab.at(5s, pxeDiscover(kNode01, 7));  // a quick reboot: the firmware starts over
  EXPECT_EQ(host.stage, Stage::Dhcp);
  EXPECT_EQ(host.boots, 2u);
  EXPECT_EQ(host.bootStarted, lab.clock.now);
  EXPECT_EQ(host.lastFile, "");
  ASSERT_TRUE(host.disk);  // the old session lives on in the target until it ends
  EXPECT_EQ(host.disk->sessions, 2u);

  lab.at(10ms, offer(kNode01, kIp01));
  lab.then(ack(kNode01, kIp01));
  EXPECT_EQ(host.stage, Stage::Address);
  lab.then(served(kIp01, "snponly.efi"));
  EXPECT_EQ(host.stage, Stage::BootProgram);  // the new boot's first file
}

TEST(Boot, AHostThatSaysItIsUpStaysUpUntilItsNextBoot) {
  Lab lab;
  const HostState& host = *lab.tracker.findByName("node01");
  uefiIpxeIscsiBoot(lab);
  ASSERT_EQ(host.stage, Stage::RootDisk);
  lab.at(3s, up(kIp01));
  EXPECT_EQ(host.stage, Stage::Up);
  EXPECT_EQ(host.events.back().what.index(), 4u);
  lab.then(login(kIp01, "node01"));  // the running system logs in again (a reconnect): still up
  lab.then(served(kIp01, "late.conf"));
  EXPECT_EQ(host.stage, Stage::Up);
  lab.then(loginFailed(kIp01, "node01", "CHAP"));  // but a failure shows
  EXPECT_EQ(host.stage, Stage::Failed);
  lab.then(up(kIp01));
  EXPECT_EQ(host.stage, Stage::Up);
  EXPECT_EQ(host.failure, "");
  EXPECT_EQ(lab.tracker.stageSeconds(Stage::Up).count(), 1u);  // timed once per boot

  lab.at(5s, pxeDiscover(kNode01, 7));  // a reboot
  EXPECT_EQ(host.stage, Stage::Dhcp);
  EXPECT_EQ(host.boots, 2u);

  lab.then(up(*Ipv4::parse("10.0.0.99")));  // an address no host has: an unknown client, up
  ASSERT_NE(lab.tracker.findByIp(*Ipv4::parse("10.0.0.99")), nullptr);
  EXPECT_EQ(lab.tracker.findByIp(*Ipv4::parse("10.0.0.99"))->stage, Stage::Up);
}

TEST(Boot, AHostThatSaysItsBootFailedShowsWhy) {
  Lab lab;
  const HostState& host = *lab.tracker.findByName("node01");
  uefiIpxeIscsiBoot(lab);
  lab.at(3s, bootFailed(kIp01, "ram: the image needs 390 MiB and 128 MiB to run in; this host has 300 MiB free"));
  EXPECT_EQ(host.stage, Stage::Failed);
  EXPECT_EQ(host.failure, "boot: ram: the image needs 390 MiB and 128 MiB to run in; this host has 300 MiB free");
  EXPECT_EQ(host.failures, 1u);
  EXPECT_EQ(kindName(host.events.back()), "host.failed");
  lab.at(5s, pxeDiscover(kNode01, 7));  // the host retries: a new boot
  EXPECT_EQ(host.stage, Stage::Dhcp);
  EXPECT_EQ(host.boots, 2u);
  EXPECT_EQ(host.failure, "");
}

TEST(Boot, RebootOfAHostWithoutADiskStartsANewBoot) {
  Lab lab;
  const HostState& host = *lab.tracker.findByName("node01");
  biosPxelinuxBoot(lab);
  dhcpExchange(lab, osDiscover(kNode01), kIp01);
  ASSERT_EQ(host.stage, Stage::BootFiles);
  lab.at(30s, pxeDiscover(kNode01, 0));
  EXPECT_EQ(host.stage, Stage::Dhcp);
  EXPECT_EQ(host.boots, 2u);
}

TEST(Boot, AnOperatingSystemsDhcpNeverStartsABoot) {
  Lab lab;
  const HostState& host = *lab.tracker.findByName("node01");
  uefiIpxeIscsiBoot(lab);
  lab.at(std::chrono::hours(30), osDiscover(kNode01));  // a day later, the OS lost its lease
  lab.at(10ms, offer(kNode01, kIp01));
  lab.then(ack(kNode01, kIp01));
  lab.at(std::chrono::hours(1), ack(kNode01, kIp01));  // a renewal
  EXPECT_EQ(host.stage, Stage::RootDisk);
  EXPECT_EQ(host.boots, 1u);
}

TEST(Boot, DiscoverRetransmissionsAndANakRestartAreOneBoot) {
  Lab lab;
  const HostState& host = *lab.tracker.findByName("node01");
  lab.then(pxeDiscover(kNode01));
  lab.at(4s, pxeDiscover(kNode01));
  lab.at(8s, pxeDiscover(kNode01));
  lab.at(10ms, offer(kNode01, kIp01));
  lab.then(nak(kNode01));
  EXPECT_EQ(host.stage, Stage::Dhcp);
  dhcpExchange(lab, pxeDiscover(kNode01), kIp01);
  EXPECT_EQ(host.stage, Stage::Address);
  lab.at(20s, pxeDiscover(kNode01));  // no file came; the firmware tries DHCP again
  EXPECT_EQ(host.stage, Stage::Address);
  EXPECT_EQ(host.boots, 1u);
}

TEST(Boot, ANetworkBootDiscoverAfterIdleBootStartsANewBootAtAnyStage) {
  TrackerOptions options;
  options.idleBoot = std::chrono::minutes(5);
  Lab lab(kTwoHosts, options);
  const HostState& host = *lab.tracker.findByName("node01");
  dhcpExchange(lab, pxeDiscover(kNode01, 7), kIp01);
  lab.then(served(kIp01, "snponly.efi"));
  ASSERT_EQ(host.stage, Stage::BootProgram);
  lab.at(std::chrono::minutes(4), pxeDiscover(kNode01, 7));  // still counts as the chain-loaded iPXE
  EXPECT_EQ(host.boots, 1u);
  lab.at(std::chrono::minutes(5), pxeDiscover(kNode01, 7));  // stuck, then power-cycled
  EXPECT_EQ(host.boots, 2u);
  EXPECT_EQ(host.stage, Stage::Dhcp);
}

TEST(Boot, AFailedFileFailsTheBootAndARebootStartsANewOne) {
  Lab lab;
  const HostState& host = *lab.tracker.findByName("node01");
  dhcpExchange(lab, pxeDiscover(kNode01, 0), kIp01);
  lab.then(served(kIp01, "pxelinux.0"));
  lab.then(served(kIp01, "ldlinux.c32"));
  lab.at(30s, failed(kIp01, "vmlinuz", "timeout"));
  EXPECT_EQ(host.stage, Stage::Failed);
  EXPECT_EQ(host.stageSince, lab.clock.now);
  EXPECT_EQ(host.failure, "vmlinuz: timeout");
  EXPECT_EQ(host.failures, 1u);
  EXPECT_EQ(host.lastFile, "ldlinux.c32");

  lab.at(5s, pxeDiscover(kNode01, 0));  // the machine starts over
  EXPECT_EQ(host.stage, Stage::Dhcp);
  EXPECT_EQ(host.boots, 2u);
  EXPECT_EQ(host.failure, "");
  EXPECT_EQ(host.failures, 1u);
}

TEST(Boot, AServedFileAfterAFailureMovesTheBootOn) {
  Lab lab;
  const HostState& host = *lab.tracker.findByName("node01");
  dhcpExchange(lab, pxeDiscover(kNode01, 7), kIp01);
  lab.then(served(kIp01, "ipxe.efi"));
  lab.then(failed(kIp01, "boot.ipxe", "read error"));
  ASSERT_EQ(host.stage, Stage::Failed);
  lab.then(served(kIp01, "boot.ipxe"));  // the script's retry worked
  EXPECT_EQ(host.stage, Stage::BootFiles);
  EXPECT_EQ(host.boots, 1u);
}

TEST(Boot, AnOperatingSystemsDhcpAfterAFailureDoesNotStartABoot) {
  Lab lab;
  const HostState& host = *lab.tracker.findByName("node01");
  uefiIpxeIscsiBoot(lab);
  lab.then(loginFailed(kIp01, "node01", "authentication failure"));
  ASSERT_EQ(host.stage, Stage::Failed);
  dhcpExchange(lab, osDiscover(kNode01), kIp01);
  EXPECT_EQ(host.stage, Stage::Failed);
  EXPECT_EQ(host.boots, 1u);
}

TEST(Boot, AFailedDiskLoginFailsTheBoot) {
  Lab lab;
  const HostState& host = *lab.tracker.findByName("node01");
  dhcpExchange(lab, pxeDiscover(kNode01, 7), kIp01);
  lab.then(served(kIp01, "snponly.efi"));
  dhcpExchange(lab, pxeDiscover(kNode01, 7), kIp01);
  lab.then(served(kIp01, "boot.ipxe"));
  lab.then(loginFailed(kIp01, "node01", "initiator not allowed"));
  EXPECT_EQ(host.stage, Stage::Failed);
  EXPECT_EQ(host.failure, "iscsi login to node01: initiator not allowed");
  ASSERT_TRUE(host.disk);
  EXPECT_EQ(host.disk->last, DiskKind::Failed);
  EXPECT_EQ(host.disk->sessions, 0u);
}

TEST(Boot, AFirstNonNetworkBootDiscoverShowsDhcpWithoutCountingABoot) {
  Lab lab;
  const HostState& host = *lab.tracker.findByName("node01");
  lab.then(osDiscover(kNode01));  // pxedust restarted under a running host that lost its lease
  EXPECT_EQ(host.stage, Stage::Dhcp);
  EXPECT_EQ(host.boots, 0u);
  EXPECT_FALSE(host.bootStarted);
  lab.then(ack(kNode01, kIp01));
  EXPECT_EQ(host.stage, Stage::Address);
  lab.at(20s, pxeDiscover(kNode01));  // it reboots: no boot was in progress, so one starts
  EXPECT_EQ(host.boots, 1u);
  EXPECT_EQ(host.bootStarted, lab.clock.now);
}

TEST(Boot, ProxyDhcpAnswerStartsNoStageBeyondDhcp) {
  Lab lab;
  const HostState& host = *lab.tracker.findByName("node02");
  const MacAddress node02 = mac("52:54:00:00:00:02");
  lab.then(pxeDiscover(node02, 7));
  lab.at(10ms, ProxyDhcpEvent{node02, "ipxe.efi", {}});
  EXPECT_EQ(host.stage, Stage::Dhcp);
  lab.then(ProxyDhcpEvent{node02, "ipxe.efi", ip("192.168.1.50")});  // port 4011, from its address
  EXPECT_EQ(host.ip, ip("192.168.1.50"));
  lab.then(served(ip("192.168.1.50"), "ipxe.efi"));
  EXPECT_EQ(host.stage, Stage::BootProgram);
}

}  // namespace
}  // namespace pxedust::boot::testing
