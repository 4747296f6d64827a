// The JSON snapshot's keys and values, the stage counts and the change counter.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "boot/snapshot.hpp"
#include "boot/tracker.hpp"
#include "lab.hpp"

namespace pxedust::boot::testing {
namespace {

using nlohmann::json;

TEST(Snapshot, Rfc3339InUtcWithMilliseconds) {
  EXPECT_EQ(rfc3339(FakeClock{}.now), "2026-11-22T14:50:51.000Z");
  EXPECT_EQ(rfc3339(FakeClock{}.now + 1234ms), "2026-11-22T14:50:52.234Z");
  EXPECT_EQ(rfc3339(TimePoint{}), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(rfc3339(TimePoint{} - 1ms), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(rfc3339(std::chrono::sys_days{std::chrono::year{2024} / 2 / 29} + 86'399'999ms), "2024-02-29T23:59:59.999Z");
}

TEST(Snapshot, AnUnseenHost) {
  Lab lab;
  json j = snapshot(lab.tracker);
  EXPECT_EQ(j["generation"], 0);
  EXPECT_EQ(j["time"], "2026-11-22T14:50:51.000Z");
  ASSERT_EQ(j["hosts"].size(), 2u);
  EXPECT_EQ(j["hosts"][1], json::parse(R"({
    "name": "node02", "configured": true, "mac": "52:54:00:00:00:02", "ip": null,
    "stage": "unseen", "stage_since": null, "failure": null, "boot_started": null, "last_seen": null,
    "boots": 0, "failures": 0, "last_file": null, "disk": null, "events": []})"));
  EXPECT_EQ(j["stages"], json::parse(R"({"unseen": 2, "dhcp": 0, "address": 0, "boot_program": 0,
    "boot_files": 0, "root_disk": 0, "up": 0, "failed": 0})"));
}

TEST(Snapshot, ABootedHostWithItsEvents) {
  Lab lab;
  const MacAddress m = mac("52:54:00:00:00:01");
  lab.then(DhcpEvent{DhcpKind::Discover, m, {}, 7, "PXEClient:Arch:00007:UNDI:003016", ip("10.1.0.1"), {}});
  lab.then(ack(m, ip("10.0.0.11"), "node01"));
  lab.then(FileEvent{FileProtocol::Http, FileResult::Completed, ip("10.0.0.11"), "boot.ipxe",
                     "hosts/node01.ipxe", 150, {}, {}, {}});
  lab.then(login(ip("10.0.0.11"), "node01", "iqn.2010-04.org.ipxe:node01"));
  lab.then(failed(ip("10.0.0.11"), "vmlinuz", "timeout"));

  json host = snapshot(lab.tracker)["hosts"][0];
  EXPECT_EQ(host["name"], "node01");
  EXPECT_EQ(host["mac"], "52:54:00:00:00:01");
  EXPECT_EQ(host["ip"], "10.0.0.11");
  EXPECT_EQ(host["stage"], "failed");
  EXPECT_EQ(host["stage_since"], "2026-11-22T14:50:56.000Z");
  EXPECT_EQ(host["failure"], "vmlinuz: timeout");
  EXPECT_EQ(host["boot_started"], "2026-11-22T14:50:52.000Z");
  EXPECT_EQ(host["last_seen"], "2026-11-22T14:50:56.000Z");
  EXPECT_EQ(host["boots"], 1);
  EXPECT_EQ(host["failures"], 1);
  EXPECT_EQ(host["last_file"], "hosts/node01.ipxe");
  EXPECT_EQ(host["disk"], json::parse(R"({"protocol": "iscsi", "host": "node01",
    "initiator": "iqn.2010-04.org.ipxe:node01", "sessions": 1, "state": "logged_in",
    "since": "2026-11-22T14:50:55.000Z"})"));
  ASSERT_EQ(host["events"].size(), 5u);
  EXPECT_EQ(host["events"][0], json::parse(R"({"time": "2026-11-22T14:50:52.000Z", "kind": "dhcp.discover",
    "mac": "52:54:00:00:00:01", "arch": 7, "vendor_class": "PXEClient:Arch:00007:UNDI:003016",
    "relay": "10.1.0.1"})"));
  EXPECT_EQ(host["events"][1], json::parse(R"({"time": "2026-11-22T14:50:53.000Z", "kind": "dhcp.ack",
    "mac": "52:54:00:00:00:01", "ip": "10.0.0.11", "host_name": "node01"})"));
  EXPECT_EQ(host["events"][2], json::parse(R"({"time": "2026-11-22T14:50:54.000Z", "kind": "file.completed",
    "protocol": "http", "client": "10.0.0.11", "requested": "boot.ipxe", "served": "hosts/node01.ipxe",
    "bytes": 150})"));
  EXPECT_EQ(host["events"][3], json::parse(R"({"time": "2026-11-22T14:50:55.000Z", "kind": "disk.login",
    "protocol": "iscsi", "client": "10.0.0.11", "host": "node01",
    "initiator": "iqn.2010-04.org.ipxe:node01"})"));
  EXPECT_EQ(host["events"][4], json::parse(R"({"time": "2026-11-22T14:50:56.000Z", "kind": "file.failed",
    "protocol": "tftp", "client": "10.0.0.11", "requested": "vmlinuz", "bytes": 0, "reason": "timeout"})"));
}

TEST(Snapshot, TftpFileEventsSayTheNegotiatedBlockAndWindowSize) {
  Lab lab;
  const MacAddress m = mac("52:54:00:00:00:01");
  lab.then(ack(m, ip("10.0.0.11"), "node01"));
  FileEvent windowed = served(ip("10.0.0.11"), "snponly.efi", 1000);
  windowed.blksize = 1468;
  windowed.windowsize = 4;
  lab.then(windowed);
  lab.then(notFound(ip("10.0.0.11"), "pxelinux.cfg/default"));  // never started: no sizes

  json events = snapshot(lab.tracker)["hosts"][0]["events"];
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1], json::parse(R"({"time": "2026-11-22T14:50:53.000Z", "kind": "file.completed",
    "protocol": "tftp", "client": "10.0.0.11", "requested": "snponly.efi", "bytes": 1000,
    "blksize": 1468, "windowsize": 4})"));
  EXPECT_FALSE(events[2].contains("blksize"));
  EXPECT_FALSE(events[2].contains("windowsize"));
}

TEST(Snapshot, UnknownClientsFollowConfiguredHosts) {
  Lab lab;
  lab.then(pxeDiscover(mac("02:00:00:00:00:01")));
  lab.then(ProxyDhcpEvent{mac("02:00:00:00:00:02"), "ipxe.efi", ip("192.168.1.9")});
  json hosts = snapshot(lab.tracker)["hosts"];
  ASSERT_EQ(hosts.size(), 4u);
  EXPECT_EQ(hosts[2]["mac"], "02:00:00:00:00:02");  // most recently seen first
  EXPECT_EQ(hosts[2]["name"], nullptr);
  EXPECT_EQ(hosts[2]["configured"], false);
  EXPECT_EQ(hosts[2]["events"][0], json::parse(R"({"time": "2026-11-22T14:50:53.000Z",
    "kind": "dhcp.proxy_answer", "mac": "02:00:00:00:00:02", "boot_file": "ipxe.efi", "ip": "192.168.1.9"})"));
  EXPECT_EQ(hosts[3]["mac"], "02:00:00:00:00:01");
}

TEST(Snapshot, StageCountsCoverEveryStageInOrder) {
  Lab lab;
  lab.then(pxeDiscover(mac("52:54:00:00:00:01")));
  lab.then(pxeDiscover(mac("02:00:00:00:00:01")));
  auto counts = lab.tracker.stageCounts();
  ASSERT_EQ(counts.size(), kStageCount);
  EXPECT_EQ(counts[0], (std::pair<std::string_view, std::size_t>{"unseen", 1}));
  EXPECT_EQ(counts[1], (std::pair<std::string_view, std::size_t>{"dhcp", 2}));
  EXPECT_EQ(counts[6], (std::pair<std::string_view, std::size_t>{"up", 0}));
  EXPECT_EQ(counts[7], (std::pair<std::string_view, std::size_t>{"failed", 0}));
}

TEST(Snapshot, PeerTextThatIsNotUtf8StillDumps) {
  Lab lab;
  lab.then(DhcpEvent{DhcpKind::Discover, mac("02:00:00:00:00:01"), {}, {}, "PXE\xff\xc3", {}, {}});
  lab.then(failed(ip("10.0.0.11"), "boot\x80.ipxe", "bad \xed\xa0\x80"));
  std::string text;
  ASSERT_NO_THROW(text = snapshot(lab.tracker).dump());
  json j = json::parse(text);
  EXPECT_EQ(j["hosts"][2]["events"][0]["vendor_class"], "PXE??");
  EXPECT_EQ(j["hosts"][0]["failure"], "boot?.ipxe: bad ???");
}

TEST(Snapshot, EveryChangeMovesTheGenerationAndCallsBack) {
  Lab lab;
  int calls = 0;
  lab.tracker.setOnChange([&] { ++calls; });
  lab.then(pxeDiscover(mac("52:54:00:00:00:01")));
  lab.then(notFound(ip("10.0.0.11"), "pxelinux.cfg/default"));  // no stage moved, an event kept
  EXPECT_EQ(lab.tracker.generation(), 2u);
  lab.tracker.setInventory(inventoryFrom(kTwoHosts));
  EXPECT_EQ(lab.tracker.generation(), 3u);
  EXPECT_EQ(calls, 3);
}

// A copy is what the writer thread renders while the loop goes on: it must stay as it was taken,
// whatever the tracker does next to the hosts it shares (a new event, a fold at an ACK, a reload).
TEST(Snapshot, ACopyStaysAsTakenWhileTheTrackerMovesOn) {
  Lab lab;
  const MacAddress known = mac("52:54:00:00:00:01");
  lab.then(pxeDiscover(known));
  lab.then(notFound(ip("10.9.0.7"), "pxelinux.0"));  // an unknown client known by IP only
  const TrackerCopy copy = copyOf(lab.tracker);
  const std::string before = snapshot(copy).dump();

  lab.then(ack(known, ip("10.0.0.11"), "node01"));
  const auto* now = lab.tracker.findByMac(known);
  ASSERT_NE(now, nullptr);
  EXPECT_EQ(now->stage, Stage::Address);
  EXPECT_EQ(copy.hosts[0]->stage, Stage::Dhcp);
  EXPECT_NE(copy.hosts[0].get(), now);  // the changed host was copied, the copy's left alone
  EXPECT_EQ(copyOf(lab.tracker).hosts[1].get(), copy.hosts[1].get());  // an unchanged one is shared

  lab.then(ack(mac("02:00:00:00:00:09"), ip("10.9.0.7"), {}));  // folds the IP-only client in
  lab.tracker.setInventory(inventoryFrom(kTwoHosts));
  EXPECT_EQ(snapshot(copy).dump(), before);
}

// The writer reuses an unchanged host's text: what it writes after changes, a reload and evictions
// is what a fresh render of the same copy says.
TEST(Snapshot, TheWritersReusedTextsMatchAFreshRender) {
  Lab lab;
  SnapshotWriter writer;
  auto same = [&](const TrackerCopy& copy) {
    EXPECT_EQ(json::parse(writer.render(copy, "\"pid\":7")).erase("pid"), 1u);
    EXPECT_EQ(json::parse(writer.render(copy)), snapshot(copy));
  };
  same(copyOf(lab.tracker));
  lab.then(pxeDiscover(mac("52:54:00:00:00:01")));
  same(copyOf(lab.tracker));
  lab.then(ack(mac("52:54:00:00:00:01"), ip("10.0.0.11"), "node01"));
  lab.then(pxeDiscover(mac("02:00:00:00:00:05")));
  auto copy = copyOf(lab.tracker);
  same(copy);
  lab.then(notFound(ip("10.0.0.11"), "a \"quoted\"\\ name\n"));
  lab.tracker.setInventory(inventoryFrom(kTwoHosts));
  same(copyOf(lab.tracker));
  EXPECT_EQ(snapshot(lab.tracker)["hosts"][0]["events"][2]["requested"], "a \"quoted\"\\ name\n");
  same(copy);  // an older copy again: its states were let go of by the cache, and rendered anew
  lab.then(notFound(ip("10.9.0.8"), "early.cfg"));  // a client known by IP only...
  same(copyOf(lab.tracker));
  lab.then(ack(mac("02:00:00:00:00:05"), ip("10.9.0.8"), {}));  // ...folded into the MAC's entry
  same(copyOf(lab.tracker));
}

}  // namespace
}  // namespace pxedust::boot::testing
