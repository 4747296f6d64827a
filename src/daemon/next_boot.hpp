// One-shot boots: "boot this host as a member of group G next time" (POST /api/v1/hosts/<name>/next-boot),
// as an operator sends a machine to a rescue or installer group once, and it comes back by itself.
//
// An entry makes the host resolve as a member of G (config::LoadOptions::hostGroups: G's keys apply,
// what the host sets itself still wins) from the moment it is armed until the boot after it ends:
//   armed    until the tracker sees the host start a boot (boots counted past `bootsMark`)
//   booting  that boot runs as G: every DHCP exchange, script and disk login of it
//   done     the entry goes, and the host is resolved with its own group again, when that boot
//            reaches `up`, or when the host starts another boot (it was rebooted, or it failed and
//            the firmware started over)
// The last rule means that a host that never says it is up is answered as G until its next boot
// starts: the DISCOVER that starts it may still be offered G's settings, the ACK that follows is the
// host's own (the change is applied on the loop right after the event that ended the entry).
//
// Pure bookkeeping: the daemon feeds it the tracker's view of each host it names and applies what
// it says. Entries are kept across restarts in <storage.dir>/next-boot.json (toJson/fromJson), each
// change written durably before it is acknowledged. Boot counts are the tracker's, which starts at
// zero with the daemon: an entry read at start is marked at zero boots, so the first boot start seen
// after a restart counts as the host's next one.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace pxedust::daemon {

struct NextBootEntry {
  enum class State : std::uint8_t { Armed, Booting };
  std::string group;
  State state = State::Armed;
  std::int64_t armedAtMs = 0;                  // Unix time, milliseconds
  std::optional<std::int64_t> bootStartedAtMs;  // when state became Booting
  std::uint64_t bootsMark = 0;                  // the tracker's boot count when armed / when booting began
  friend bool operator==(const NextBootEntry&, const NextBootEntry&) = default;
};

std::string_view nextBootStateName(NextBootEntry::State state);  // "armed", "booting"

class NextBoot {
 public:
  // The tracker's view of one host, as observe() needs it.
  struct Seen {
    std::uint64_t boots = 0;  // boot starts seen
    bool up = false;          // the current boot is at `up`
  };
  enum class Change : std::uint8_t { None, Booting, Done };

  // Replaces any entry of `host`; `boots` is the tracker's count now.
  void arm(std::string host, std::string group, std::uint64_t boots, std::int64_t nowMs);
  // False if `host` had no entry.
  bool cancel(std::string_view host);
  // Applies the rules above to `host`'s entry (none: None). Done removes it.
  Change observe(std::string_view host, const Seen& seen, std::int64_t nowMs);

  [[nodiscard]] const std::map<std::string, NextBootEntry, std::less<>>& entries() const { return entries_; }
  [[nodiscard]] const NextBootEntry* find(std::string_view host) const;
  [[nodiscard]] bool empty() const { return entries_.empty(); }
  // Host -> group, for config::LoadOptions::hostGroups.
  [[nodiscard]] std::map<std::string, std::string, std::less<>> hostGroups() const;

  // The file's text: {"version": 1, "hosts": {"<host>": {"group", "state", "armed_at_ms",
  // "boot_started_at_ms"}}}. fromJson marks every entry at zero boots (above) and refuses a file
  // it cannot read whole, saying why: a damaged file is set aside by the caller, never half-applied.
  [[nodiscard]] std::string toJson() const;
  static Result<NextBoot> fromJson(std::string_view text);

 private:
  std::map<std::string, NextBootEntry, std::less<>> entries_;
};

}  // namespace pxedust::daemon
