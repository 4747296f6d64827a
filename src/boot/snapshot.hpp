// The tracker's state as JSON: what the daemon writes to its state file and the HTTP API serves
// (/api/v1/hosts), and the dashboard will draw. Key names are stable; new keys may be added, none
// renamed. Written as text straight from the state (no JSON tree), one host per line.
//
//   {
//     "generation": 42,                          Tracker::generation() at the snapshot
//                                                (the daemon's hosts.json adds "pid": the writer's,
//                                                before "hosts")
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

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "boot/event.hpp"
#include "boot/tracker.hpp"

namespace pxedust::boot {

// What a snapshot is made of, taken off the tracker on the loop: it shares each host's state (the
// tracker copies a host on write), so taking it costs a pointer per host, and the text is made
// from it on another thread while the loop goes on.
struct TrackerCopy {
  std::uint64_t generation = 0;
  TimePoint time;
  std::vector<std::pair<std::string_view, std::size_t>> stages;  // views of static stage names
  std::vector<std::shared_ptr<const HostState>> hosts;
};
TrackerCopy copyOf(const Tracker& tracker);

// Makes snapshot text, reusing each host's text from the previous render while the host's state
// has the same id and version (tracker.hpp), and for a host that changed, the text of each event it
// already had (events never change; Event::seq names them). A render costs the new events plus
// copies of text: with 10,000 hosts busy in DHCP, formatting every event of every changed host made
// the writer thread a fifth of the server's CPU samples. One thread at a time.
// One host's object, appended to `out`.
void appendHostJson(std::string& out, const HostState& host);

class SnapshotWriter {
 public:
  // `extra`: members for the top level, as JSON text (`"pid":123`), or empty. The text stays
  // valid until the next render.
  const std::string& render(const TrackerCopy& copy, std::string_view extra = {});

 private:
  friend void appendHostJson(std::string& out, const HostState& host);
  struct EventSpan {  // where an event's text sits in its host's text
    std::uint64_t seq = 0;
    std::size_t offset = 0, size = 0;
  };
  struct Cached {
    std::uint64_t version = 0;
    std::string text;
    std::vector<EventSpan> events;  // in the order of the host's events
  };
  // appendHostJson(), taking the text of events `old` has and noting where each event went.
  static void appendHost(std::string& out, const HostState& host, const Cached* old, std::vector<EventSpan>* spans);
  std::unordered_map<std::uint64_t, Cached> cache_;  // by HostState::id
  std::string out_;
};

// The whole snapshot as one JSON value (tests, and readers of a few hosts).
nlohmann::json snapshot(const Tracker& tracker);
nlohmann::json snapshot(const TrackerCopy& copy);

// RFC 3339 in UTC with milliseconds: "2026-11-22T14:50:51.123Z".
std::string rfc3339(TimePoint time);

}  // namespace pxedust::boot
