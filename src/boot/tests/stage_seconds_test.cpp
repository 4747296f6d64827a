// The stage durations (tracker.hpp, "Stage durations"): the seconds from a boot's DISCOVER to the
// first time it reaches each stage, with the fake clock; once per boot and stage, nothing for a
// boot whose start was not seen.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "boot/tracker.hpp"
#include "lab.hpp"
#include "metrics/registry.hpp"
#include "metrics/tests/promtool.hpp"

namespace pxedust::boot::testing {
namespace {

const MacAddress kNode01 = mac("52:54:00:00:00:01");
const Ipv4 kIp01 = ip("10.0.0.11");
const MacAddress kNode02 = mac("52:54:00:00:00:02");
const Ipv4 kIp02 = ip("10.0.0.50");

std::uint64_t count(const Lab& lab, Stage stage) { return lab.tracker.stageSeconds(stage).count(); }
double sum(const Lab& lab, Stage stage) { return lab.tracker.stageSeconds(stage).sum(); }

TEST(StageSeconds, AWholeBootIsTimedFromItsDiscover) {
  Lab lab;
  lab.then(pxeDiscover(kNode01, 7));                       // t = 0: the boot starts
  lab.at(500ms, offer(kNode01, kIp01));                    // 0.5
  lab.at(500ms, ack(kNode01, kIp01, "node01"));            // 1: address
  lab.at(500ms, sizeQuery(kIp01, "snponly.efi"));          // 1.5: no stage
  lab.at(500ms, served(kIp01, "snponly.efi", 200000));     // 2: boot_program
  dhcpExchange(lab, pxeDiscover(kNode01, 7), kIp01);       // 3, 3.01, 4.01: iPXE's own DHCP, no stage
  lab.at(990ms, served(kIp01, "boot.ipxe", 150));          // 5: boot_files
  lab.at(2s, login(kIp01, "node01"));                      // 7: root_disk (iPXE's sanhook login)
  lab.at(1s, served(kIp01, "vmlinuz", 8000000));           // 8: boot_files again, not timed again
  lab.at(4s, served(kIp01, "initrd.img", 30000000));       // 12
  dhcpExchange(lab, osDiscover(kNode01), kIp01);           // the initramfs's DHCP: no new boot
  lab.then(login(kIp01, "node01"));                        // root_disk again, not timed again
  EXPECT_EQ(lab.tracker.findByName("node01")->boots, 1U);
  EXPECT_EQ(lab.tracker.findByName("node01")->stage, Stage::RootDisk);

  EXPECT_EQ(count(lab, Stage::Unseen), 0U);
  EXPECT_EQ(count(lab, Stage::Dhcp), 0U);
  EXPECT_EQ(count(lab, Stage::Failed), 0U);
  for (Stage stage : {Stage::Address, Stage::BootProgram, Stage::BootFiles, Stage::RootDisk})
    EXPECT_EQ(count(lab, stage), 1U) << stageName(stage);
  EXPECT_DOUBLE_EQ(sum(lab, Stage::Address), 1.0);
  EXPECT_DOUBLE_EQ(sum(lab, Stage::BootProgram), 2.0);
  EXPECT_DOUBLE_EQ(sum(lab, Stage::BootFiles), 5.0);
  EXPECT_DOUBLE_EQ(sum(lab, Stage::RootDisk), 7.0);

  metrics::Writer w;
  lab.tracker.writeStageSeconds(w);
  const std::string text = w.renderPrometheus();
  EXPECT_EQ(text.substr(0, text.find("pxedust_boot_stage_seconds_bucket")),
            "# HELP pxedust_boot_stage_seconds Seconds from a boot's start (the client's network-boot DHCP "
            "DISCOVER) to the first time the boot reached each stage (address, boot_program, boot_files, "
            "root_disk, up, failed); once per boot and stage.\n"
            "# TYPE pxedust_boot_stage_seconds histogram\n");
  // root_disk at 7 s: above the 5 s bound, at or below 10 s.
  EXPECT_NE(text.find("pxedust_boot_stage_seconds_bucket{stage=\"root_disk\",le=\"5\"} 0\n"
                      "pxedust_boot_stage_seconds_bucket{stage=\"root_disk\",le=\"10\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("pxedust_boot_stage_seconds_sum{stage=\"root_disk\"} 7\n"
                      "pxedust_boot_stage_seconds_count{stage=\"root_disk\"} 1\n"),
            std::string::npos)
      << text;
  // A stage not reached yet is there with zeros; unseen and dhcp are not timed.
  EXPECT_NE(text.find("pxedust_boot_stage_seconds_bucket{stage=\"failed\",le=\"+Inf\"} 0\n"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("stage=\"dhcp\""), std::string::npos) << text;
  EXPECT_EQ(text.find("stage=\"unseen\""), std::string::npos) << text;
}

TEST(StageSeconds, ARetryWithinABootTimesEachStageOnce) {
  Lab lab;
  dhcpExchange(lab, pxeDiscover(kNode01, 0), kIp01, "node01");  // t = 0; address at 1.01
  lab.then(served(kIp01, "pxelinux.0"));                        // 2.01: boot_program
  lab.then(served(kIp01, "ldlinux.c32"));                       // 3.01: boot_files
  lab.then(failed(kIp01, "vmlinuz", "timeout"));                // 4.01: failed
  lab.then(served(kIp01, "vmlinuz"));                           // the retry worked: boot_files again
  lab.then(failed(kIp01, "initrd.img", "timeout"));             // failed again
  lab.then(served(kIp01, "initrd.img"));
  lab.then(loginFailed(kIp01, "node01", "no such target"));     // failed a third time
  lab.then(login(kIp01, "node01"));                             // 9.01: root_disk
  const HostState& host = *lab.tracker.findByName("node01");
  EXPECT_EQ(host.boots, 1U);
  EXPECT_EQ(host.failures, 3U);
  EXPECT_EQ(host.stage, Stage::RootDisk);
  for (Stage stage : {Stage::Address, Stage::BootProgram, Stage::BootFiles, Stage::Failed, Stage::RootDisk})
    EXPECT_EQ(count(lab, stage), 1U) << stageName(stage);
  EXPECT_NEAR(sum(lab, Stage::BootFiles), 3.01, 1e-9);  // the first time, not the retry's
  EXPECT_NEAR(sum(lab, Stage::Failed), 4.01, 1e-9);     // the first failure
  EXPECT_NEAR(sum(lab, Stage::RootDisk), 9.01, 1e-9);
}

TEST(StageSeconds, AFailureEndsTheBootAndTheNextBootIsTimedAgain) {
  Lab lab;
  lab.then(pxeDiscover(kNode01, 0));                           // boot 1 at t = 0
  lab.then(ack(kNode01, kIp01));                               // 1
  lab.then(failed(kIp01, "pxelinux.0", "timeout"));            // 2: failed
  lab.at(5s, pxeDiscover(kNode01, 0));                         // boot 2 at 7: the firmware retries
  lab.at(500ms, ack(kNode01, kIp01));                          // 0.5 into boot 2
  lab.at(500ms, served(kIp01, "pxelinux.0"));                  // 1
  lab.then(served(kIp01, "ldlinux.c32"));                      // 2
  lab.at(3min, login(kIp01, "node01"));                        // 182: past the 120 s bound
  EXPECT_EQ(lab.tracker.findByName("node01")->boots, 2U);
  EXPECT_EQ(count(lab, Stage::Address), 2U);
  EXPECT_DOUBLE_EQ(sum(lab, Stage::Address), 1.5);
  EXPECT_EQ(count(lab, Stage::Failed), 1U);
  EXPECT_DOUBLE_EQ(sum(lab, Stage::Failed), 2.0);
  EXPECT_EQ(count(lab, Stage::BootProgram), 1U);  // boot 1 failed before it had one
  EXPECT_DOUBLE_EQ(sum(lab, Stage::BootProgram), 1.0);
  EXPECT_EQ(count(lab, Stage::RootDisk), 1U);
  EXPECT_DOUBLE_EQ(sum(lab, Stage::RootDisk), 182.0);
  // Per bucket: 182 s is in (120, 300], the tenth of 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, +Inf.
  const auto rootDisk = lab.tracker.stageSeconds(Stage::RootDisk).counts();
  EXPECT_EQ(std::vector<std::uint64_t>(rootDisk.begin(), rootDisk.end()),
            (std::vector<std::uint64_t>{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}));
}

// pxedust restarted under running hosts: their events come without the DISCOVER that started their
// boot, so nothing is timed until one of them boots again.
TEST(StageSeconds, EventsWithoutABootStartAreNotTimed) {
  Lab lab;
  lab.then(ack(kNode01, kIp01));                 // a lease renewal: address, no boot start
  lab.then(served(kIp01, "vmlinuz"));            // boot_program
  lab.then(served(kIp01, "initrd.img"));         // boot_files
  lab.then(failed(kIp01, "extra.img", "timeout"));
  lab.then(login(kIp01, "node01"));              // root_disk
  dhcpExchange(lab, osDiscover(kNode01), kIp01);  // an operating system's DHCP starts no boot
  lab.then(served(ip("10.0.0.99"), "pxelinux.0"));  // an unknown client known by IP only
  EXPECT_EQ(lab.tracker.findByName("node01")->stage, Stage::RootDisk);
  EXPECT_FALSE(lab.tracker.findByName("node01")->bootStarted.has_value());
  for (Stage stage : {Stage::Address, Stage::BootProgram, Stage::BootFiles, Stage::RootDisk, Stage::Failed})
    EXPECT_EQ(count(lab, stage), 0U) << stageName(stage);

  lab.at(10s, pxeDiscover(kNode01, 0));  // it reboots: this boot is timed
  lab.at(500ms, ack(kNode01, kIp01));
  lab.at(500ms, served(kIp01, "pxelinux.0"));
  EXPECT_EQ(count(lab, Stage::Address), 1U);
  EXPECT_DOUBLE_EQ(sum(lab, Stage::Address), 0.5);
  EXPECT_EQ(count(lab, Stage::BootProgram), 1U);
  EXPECT_DOUBLE_EQ(sum(lab, Stage::BootProgram), 1.0);
  EXPECT_EQ(count(lab, Stage::RootDisk), 0U);
}

// An unknown client seen by IP before its DISCOVER: the file before the boot start is not timed;
// the ACK folds the IP entry into the MAC's, whose boot is timed from its DISCOVER.
TEST(StageSeconds, AClientSeenByIpFirstIsTimedFromItsDiscover) {
  Lab lab;
  const MacAddress stranger = mac("52:54:00:00:00:77");
  const Ipv4 strangerIp = ip("10.0.0.77");
  lab.then(served(strangerIp, "pxelinux.0"));  // by IP: no boot start, not timed
  lab.then(pxeDiscover(stranger, 0));          // a new entry by MAC: its boot starts
  lab.then(ack(stranger, strangerIp));         // 1 s: address; the IP entry is folded in
  lab.then(served(strangerIp, "pxelinux.0"));  // 2 s: the boot's first file
  lab.then(served(strangerIp, "ldlinux.c32"));
  EXPECT_EQ(lab.tracker.unknownCount(), 1U);
  EXPECT_EQ(count(lab, Stage::Address), 1U);
  EXPECT_EQ(count(lab, Stage::BootProgram), 1U);
  EXPECT_DOUBLE_EQ(sum(lab, Stage::BootProgram), 2.0);
  EXPECT_EQ(count(lab, Stage::BootFiles), 1U);
  EXPECT_DOUBLE_EQ(sum(lab, Stage::BootFiles), 3.0);
}

TEST(StageSeconds, TwoHostsAreTimedEachFromItsOwnStart) {
  Lab lab;
  lab.then(pxeDiscover(kNode01, 0));                         // node01 starts at t = 0
  lab.at(2s, pxeDiscover(kNode02, 7));                       // node02 starts at 2
  lab.at(500ms, ack(kNode02, kIp02));                        // 2.5: node02 address after 0.5
  lab.at(500ms, ack(kNode01, kIp01));                        // 3: node01 address after 3
  lab.then(served(kIp02, "ipxe.efi"));                       // 4: node02 boot_program after 2
  lab.then(served(kIp01, "pxelinux.0"));                     // 5: node01 boot_program after 5
  lab.at(15s, login(kIp02, "node02"));                       // 20: node02 root_disk after 18
  lab.at(20s, login(kIp01, "node01"));                       // 40: node01 root_disk after 40
  EXPECT_EQ(count(lab, Stage::Address), 2U);
  EXPECT_DOUBLE_EQ(sum(lab, Stage::Address), 3.5);
  EXPECT_EQ(count(lab, Stage::BootProgram), 2U);
  EXPECT_DOUBLE_EQ(sum(lab, Stage::BootProgram), 7.0);
  EXPECT_EQ(count(lab, Stage::RootDisk), 2U);
  EXPECT_DOUBLE_EQ(sum(lab, Stage::RootDisk), 58.0);
  EXPECT_EQ(count(lab, Stage::BootFiles), 0U);

  metrics::Writer w;
  lab.tracker.writeStageSeconds(w);
  const std::string text = w.renderPrometheus();
  // address: 0.5 and 3 s; root_disk: 18 and 40 s.
  EXPECT_NE(text.find("pxedust_boot_stage_seconds_bucket{stage=\"address\",le=\"0.5\"} 1\n"
                      "pxedust_boot_stage_seconds_bucket{stage=\"address\",le=\"1\"} 1\n"
                      "pxedust_boot_stage_seconds_bucket{stage=\"address\",le=\"2\"} 1\n"
                      "pxedust_boot_stage_seconds_bucket{stage=\"address\",le=\"5\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("pxedust_boot_stage_seconds_bucket{stage=\"root_disk\",le=\"10\"} 0\n"
                      "pxedust_boot_stage_seconds_bucket{stage=\"root_disk\",le=\"20\"} 1\n"
                      "pxedust_boot_stage_seconds_bucket{stage=\"root_disk\",le=\"30\"} 1\n"
                      "pxedust_boot_stage_seconds_bucket{stage=\"root_disk\",le=\"60\"} 2\n"),
            std::string::npos)
      << text;
  if (!metrics::test::promtoolAvailable()) GTEST_SKIP() << metrics::test::kPromtool << " is missing";
  const auto result = metrics::test::promtoolCheck(text);
  EXPECT_EQ(result.status, 0) << result.output << "\n--- input:\n" << text;
  EXPECT_EQ(result.output, "") << text;
}

TEST(StageSeconds, AClockStepBackCountsAsZero) {
  Lab lab;
  lab.then(pxeDiscover(kNode01, 0));
  lab.clock.now -= 1h;  // the wall clock stepped back
  lab.at(0ms, ack(kNode01, kIp01));
  EXPECT_EQ(count(lab, Stage::Address), 1U);
  EXPECT_DOUBLE_EQ(sum(lab, Stage::Address), 0.0);
  EXPECT_EQ(lab.tracker.stageSeconds(Stage::Address).counts()[0], 1U);
}

}  // namespace
}  // namespace pxedust::boot::testing
