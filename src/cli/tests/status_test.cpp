// `pxedust status` / `pxedust hosts`: the tables made from the API's JSON.
#include <gtest/gtest.h>

#include "cli/status_command.hpp"

namespace pxedust::cli {
namespace {

using nlohmann::json;

const json kHosts = json::parse(R"({
  "generation": 9, "time": "2026-11-22T14:53:51.000Z",
  "stages": {"unseen": 1, "dhcp": 0, "address": 0, "boot_program": 0, "boot_files": 0, "root_disk": 1, "failed": 1},
  "hosts": [
    {"name": "node01", "configured": true, "mac": "52:54:00:12:34:01", "ip": "10.0.0.11", "stage": "root_disk",
     "stage_since": "2026-11-22T14:50:39.000Z", "failure": null, "boots": 2, "failures": 0, "last_file": "initrd.img",
     "disk": {"protocol": "iscsi", "host": "node01", "sessions": 1, "state": "logged_in"}, "events": []},
    {"name": "node02", "configured": true, "mac": "52:54:00:12:34:02", "ip": "10.0.0.12", "stage": "failed",
     "stage_since": "2026-11-22T14:53:41.500Z", "failure": "tftp vmlinuz: timeout", "boots": 1, "failures": 1,
     "last_file": null, "disk": null, "events": []},
    {"name": null, "configured": false, "mac": "02:00:00:00:00:05", "ip": null, "stage": "unseen",
     "stage_since": null, "failure": null, "boots": 0, "failures": 0, "last_file": null, "disk": null, "events": []}
  ]})");

TEST(StatusCli, HostsTable) {
  EXPECT_EQ(hostsTable(kHosts),
            "NAME    MAC                IP         STAGE      SINCE  BOOTS  DETAIL\n"
            "node01  52:54:00:12:34:01  10.0.0.11  root_disk  3m12s  2      iscsi logged_in (1 sessions)\n"
            "node02  52:54:00:12:34:02  10.0.0.12  failed     9s     1      tftp vmlinuz: timeout\n"
            "-       02:00:00:00:00:05  -          unseen     -      0\n");
  EXPECT_EQ(hostsTable(kHosts, "failed"),
            "NAME    MAC                IP         STAGE   SINCE  BOOTS  DETAIL\n"
            "node02  52:54:00:12:34:02  10.0.0.12  failed  9s     1      tftp vmlinuz: timeout\n");
}

TEST(StatusCli, StatusTable) {
  const json status = json::parse(R"({"pid": 41, "version": "0.1.0", "config": "/etc/pxedust/pxedust.toml",
    "state": "running", "services": {"dhcp": {"endpoints": ["eth1:67"]}, "http": {"endpoints": ["0.0.0.0:80"]}},
    "hosts": 2, "reloads": {"applied": 3, "refused": 1, "last_refusal": "tftp: root /nope: No such file"}})");
  EXPECT_EQ(statusTable(status, kHosts),
            "pxedust 0.1.0 (pid 41): running\nconfig: /etc/pxedust/pxedust.toml\n\n"
            "SERVICE  LISTENING ON\ndhcp     eth1:67\nhttp     0.0.0.0:80\n\n"
            "reloads: 3 applied, 1 refused (last: tftp: root /nope: No such file)\n"
            "hosts: 2 configured; unseen 1, root_disk 1, failed 1\n");
}

// A document that is not what the API says gives dashes, never a crash.
TEST(StatusCli, OddJsonGivesDashes) {
  EXPECT_EQ(hostsTable(json::parse(R"({"hosts": [{"stage": 5}, 7, {"name": {"x": 1}}]})")),
            "NAME     MAC  IP  STAGE  SINCE  BOOTS  DETAIL\n"
            "-        -    -   5      -      -\n"
            "{\"x\":1}  -    -   -      -      -\n");
  EXPECT_NE(statusTable(json::object(), json::array()).find("hosts: - configured; none seen"), std::string::npos);
}

TEST(StatusCli, TimesAndDurations) {
  auto t = parseRfc3339("2024-02-29T23:59:59.999Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count(), 1709251199999);
  EXPECT_FALSE(parseRfc3339("2024-02-30T00:00:00.000Z"));
  EXPECT_FALSE(parseRfc3339("2024-02-29T23:59:59Z"));
  EXPECT_FALSE(parseRfc3339("2024-02-29T23:59:59.999Zjunk"));
  using namespace std::chrono_literals;
  EXPECT_EQ(shortDuration(45s), "45s");
  EXPECT_EQ(shortDuration(192s), "3m12s");
  EXPECT_EQ(shortDuration(2h + 5min), "2h05m");
  EXPECT_EQ(shortDuration(76h), "3d04h");
  EXPECT_EQ(shortDuration(-5s), "0s");
}

}  // namespace
}  // namespace pxedust::cli
