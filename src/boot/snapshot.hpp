// The tracker's state as JSON: what the daemon writes to its state file, and later what the HTTP
// API serves and the dashboard draws. Key names are stable; new keys may be added, none renamed.
//
//   {
//     "generation": 42,                          Tracker::generation() at the snapshot
//                                                (the daemon's hosts.json adds "pid": the writer's)
//     "time": "2026-11-22T14:50:51.123Z",        the tracker's clock (RFC 3339, UTC, milliseconds)
//     "stages": {"unseen": 1, "dhcp": 0, ...},   hosts in each stage, every stage present
//     "hosts": [                                 configured in config order, then unknown clients,
//       {                                        most recently seen first
//         "name": "node01",                      null for an unknown client
//         "configured": true,
//         "mac": "52:54:00:12:34:01",            null when not known
//         "ip": "10.0.0.11",                     null when not known
//         "stage": "boot_files",                 unseen|dhcp|address|boot_program|boot_files|root_disk|failed
//         "stage_since": "...",                  null while unseen
//         "failure": "vmlinuz: timeout",         null unless the stage is failed
//         "boot_started": "...",                 null until a boot start was seen
//         "last_seen": "...",                    null while unseen
//         "boots": 2, "failures": 0,
//         "last_file": "initrd.img",             null before the boot's first file
//         "disk": null | {"protocol": "iscsi", "host": "node01", "initiator": "iqn...",
//                         "sessions": 1, "state": "logged_in"|"logged_out"|"failed",
//                         "since": "...", "reason": "..." (only when given)},
//         "events": [ {"time": "...", "kind": "dhcp.discover", ...details}, ... ]   oldest first
//       }
//     ]
//   }
//
// Event details, by kind (a key is left out when the event has no value for it):
//   dhcp.discover|offer|ack|nak|decline|release   mac, ip, arch, vendor_class, relay, host_name
//   dhcp.proxy_answer                             mac, boot_file, ip
//   file.completed|not_found|aborted|failed       protocol (tftp|http), client, requested,
//                                                 served (when it differs), bytes, reason,
//                                                 blksize, windowsize (TFTP: what the transfer
//                                                 negotiated; absent when it never started)
//   disk.login|logout|failed                      protocol (iscsi|nbd|nfs), client, host,
//                                                 initiator, reason
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>

#include "boot/event.hpp"
#include "boot/tracker.hpp"

namespace pxedust::boot {

nlohmann::json snapshot(const Tracker& tracker);

// What a snapshot is made of, taken off the tracker: the copy is taken on the loop (it shares each
// host's state, copied on write by the tracker: 10,000 hosts well under a millisecond), the JSON
// made from it on another thread (the same hosts: ~250 ms), so a big hosts.json does not stop the
// loop that answers DHCP.
struct TrackerCopy {
  std::uint64_t generation = 0;
  TimePoint time;
  std::vector<std::pair<std::string_view, std::size_t>> stages;  // views of static stage names
  std::vector<std::shared_ptr<const HostState>> hosts;
};
TrackerCopy copyOf(const Tracker& tracker);
nlohmann::json snapshot(const TrackerCopy& copy);
nlohmann::json hostJson(const HostState& host);
nlohmann::json eventJson(const Event& event);

// RFC 3339 in UTC with milliseconds: "2026-11-22T14:50:51.123Z".
std::string rfc3339(TimePoint time);

}  // namespace pxedust::boot
