// The boot tracker: every service reports typed events (event.hpp); the tracker keeps, per host,
// where its boot is. The state file, the HTTP API, the dashboard, the demo and the tests read it.
//
// Pure bookkeeping: no loop, no sockets, no I/O; the clock is injected (tests pass a fake one).
// Threading: single-threaded. Every member is called on the event loop's thread and the tracker
// takes no lock; another thread reads it only through sharedHosts() (a snapshot) taken on the loop.
//
// Which host an event belongs to (the first that applies):
//   DHCP, proxyDHCP   the configured host with that MAC, else the unknown client with that MAC
//   file, disk        the configured host with that IP; else the MAC a DHCP ACK (or a proxyDHCP
//                     answer on port 4011) bound that IP to, as above; else, for a disk event, the
//                     configured host whose disk it is; else the unknown client with that IP
// A binding IP -> MAC is replaced by the next ACK for that IP. When an ACK binds an IP that an
// unknown client was tracked by (events by IP came first, e.g. after pxedust restarted under
// running hosts), that entry is folded into the MAC's entry, so one machine has one entry.
// Configured hosts are always kept. Unknown clients are at most TrackerOptions::maxUnknownHosts:
// a new one beyond it evicts the least recently seen, so a flood of random MACs cannot grow memory.
//
// Stages, in the order a user reads a boot:
//   unseen        no step of a boot seen yet: a configured host not heard from, or a client whose
//                 only events were ones that move no stage (a file not found, a logout, ...)
//   dhcp          a DISCOVER (or OFFER, proxyDHCP answer) started it; an operating system's
//                 DISCOVER from an unseen host shows it too, without counting a boot
//   address       the ACK: the client has its address
//   boot_program  the boot's first file served (pxelinux.0, ipxe.efi, snponly.efi, ...)
//   boot_files    further files (ldlinux.c32, configs, scripts, kernel, initrd); last_file names
//                 the latest. Also a file served after a disk login: iPXE logs in to its SAN disk
//                 (sanhook, for the iBFT) before it loads the kernel and initrd.
//   root_disk     a root-disk login (iSCSI, NBD, NFS)
//   up            the host said it is up (HostEvent: POST /boot/up from its address, sent by its
//                 init or a unit once its system runs). Files and disk logins after it move no
//                 stage: a running system that fetches a file or logs in again is still up.
//   failed        a file transfer or a disk login failed, or the host said its boot stopped
//                 (HostEvent Failed: POST /boot/failed from the pxedust initramfs, e.g. a root too
//                 large for its RAM); `failure` says what and why. A later served file or login
//                 moves the boot on again (a retry that worked); so does up.
// A file that was not found or that the client ended (FileResult::NotFound, Aborted) changes no
// stage: pxelinux probes config names that do not exist, UEFI PXE asks a file's size and stops.
// DHCP within a boot changes no stage: the ACKs of iPXE chain-loaded by UEFI PXE, or of the
// initramfs, are not a step back to `address`.
//
// A new boot (boots + 1, boot_started = now, stage dhcp, last_file and failure cleared) starts
// only at a DISCOVER from a network-boot client (option 93 or a PXEClient/HTTPClient vendor class:
// firmware PXE, iPXE, UEFI HTTP boot), and only when
//   - no boot of the host was seen yet, or
//   - the host is at boot_files, root_disk, up or failed: it loaded files, reached its disk, ran or failed,
//     and the firmware is starting over (a reboot, a power cycle, a retry after a failure), or
//   - the host sent nothing for TrackerOptions::idleBoot: a host stuck early and restarted later.
// So these are not new boots: an operating system's DHCP (the initramfs's udhcpc, dhclient send no
// option 93), at any stage; a network-boot client's DISCOVER at dhcp or address (retransmissions, a
// restart after NAK or DECLINE) or at boot_program (the boot program it just fetched, e.g. iPXE
// chain-loaded by UEFI PXE, doing its own DHCP). Limits of the rule: a boot program that is itself
// loaded late (pxelinux chaining to iPXE) and does DHCP counts as a new boot; a host rebooting
// within idleBoot while at boot_program (its boot program fails at once) does not.
//
// Disk sessions are counted as the target sees them (a login +1, a logout or a closed connection
// -1), across boots: the services report the end of every session they reported the start of.
//
// Stage durations (writeStageSeconds(), the histogram pxedust_boot_stage_seconds): for each boot,
// the seconds from its start (boot_started, the DISCOVER that started it) to the first time the
// boot is at address, boot_program, boot_files, root_disk, up and failed, one observation per stage.
// A stage the boot is at again (boot_files after a failed file was retried, root_disk at the
// initramfs's second login) is not observed again; each stage of a boot is observed at most once,
// whatever order the boot takes (an iPXE SAN boot reaches root_disk at iPXE's own login, before
// its kernel and initrd are boot_files). A host whose boot start was not seen (events after
// pxedust restarted under running hosts) has no boot_started: its stages are not observed until
// its next boot starts. A step back of the clock makes a duration negative; it is counted as 0.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/mac.hpp"
#include "boot/event.hpp"
#include "inventory/inventory.hpp"
#include "metrics/registry.hpp"

namespace pxedust::boot {

enum class Stage : std::uint8_t { Unseen, Dhcp, Address, BootProgram, BootFiles, RootDisk, Up, Failed };
inline constexpr std::size_t kStageCount = 8;
// "unseen", "dhcp", "address", "boot_program", "boot_files", "root_disk", "up", "failed"
std::string_view stageName(Stage stage);

struct DiskState {
  DiskProtocol protocol = DiskProtocol::Iscsi;
  std::string hostName;   // the host whose disk it is
  std::string initiator;  // as the last login (or failed login) gave it
  std::uint32_t sessions = 0;
  DiskKind last = DiskKind::Login;  // the latest event: Login, Logout or Failed
  std::string reason;               // of the latest Failed or Logout, when given
  TimePoint since;                  // of the latest event
};

struct HostState {
  // Which entry this is (unique within the tracker, kept by a host through reloads and folds), and
  // a count of the write accesses to it: the same id and version are the same state.
  std::uint64_t id = 0;
  std::uint64_t version = 0;
  std::string name;  // the configured host's name; empty for an unknown client
  bool configured = false;
  std::optional<MacAddress> mac;  // configured, else the MAC DHCP saw
  std::optional<Ipv4> ip;         // the latest ACK'd address, else the configured one, else the
                                  // address the client's events came from
  Stage stage = Stage::Unseen;
  TimePoint stageSince;                  // when the stage was entered (epoch while unseen)
  std::optional<TimePoint> bootStarted;  // the DISCOVER that started the current boot
  std::optional<TimePoint> lastSeen;     // the host's latest event
  std::string failure;                   // what failed and why, while stage == Failed
  std::string lastFile;                  // the latest file served in this boot (as served)
  std::uint8_t stagesTimed = 0;          // bit 1 << Stage for each stage of this boot observed in
                                         // the stage-duration histogram
  std::optional<DiskState> disk;
  std::uint64_t boots = 0;     // boot starts seen
  std::uint64_t failures = 0;  // failed files and disk logins seen
  std::deque<Event> events;    // the latest TrackerOptions::eventsPerHost, oldest first
};

struct TrackerOptions {
  // Events kept per host. A whole boot is 15-40 events (UEFI PXE -> iPXE -> script -> kernel ->
  // initramfs: three DHCP exchanges, 5-15 files counting pxelinux's probes, two disk logins), so
  // 64 keeps the current boot whole and the end of the one before; a bound at all because a host
  // left running for months (an ACK every half lease) or looping on a failure would grow forever.
  std::size_t eventsPerHost = 64;
  // Unknown clients kept (at least 1). With maxText, memory is bounded by about
  // (configured + 256) hosts x 64 events x (128 + 3 x ~140) bytes: about 9 MB for the unknown ones
  // at worst (every event a file event with three texts of the longest).
  std::size_t maxUnknownHosts = 256;
  // Longest text kept from an event (file names, vendor class, initiator, reason), in bytes; longer
  // text is cut, and bytes that are not UTF-8 become '?', so the JSON snapshot always dumps.
  std::size_t maxText = 128;
  // A network-boot client's DISCOVER after this long without any event from the host starts a new
  // boot whatever the stage. A boot's events follow each other within seconds (a whole boot is
  // ~35 s under TCG); five minutes of silence and then the firmware's DISCOVER is a restart.
  std::chrono::seconds idleBoot{300};
};

class Tracker {
 public:
  using Now = std::function<TimePoint()>;

  Tracker(std::shared_ptr<const inventory::Inventory> inventory, Now clock, TrackerOptions options = {});

  // Stamps the event with the clock, files it under its host and applies the stage rules above.
  void record(const Event& event);

  // A reload: each configured host's state follows it to the new inventory, matched by configured
  // MAC, else IP, else name (so a renamed host keeps its history). A host no longer configured
  // becomes an unknown client if anything was seen of it (it may still be on the network), and an
  // unknown client that is now configured becomes that host.
  void setInventory(std::shared_ptr<const inventory::Inventory> inventory);

  // Configured hosts in inventory order, then unknown clients, most recently seen first. The
  // pointers hold until the next record() or setInventory().
  [[nodiscard]] std::vector<const HostState*> hosts() const;
  // The same, shared: each state stays as it is for as long as the caller holds it (the tracker
  // copies a host that is still shared before it changes it), so another thread may read them.
  // Hold them briefly: every host changed meanwhile is copied.
  [[nodiscard]] std::vector<std::shared_ptr<const HostState>> sharedHosts() const;
  [[nodiscard]] const HostState* findByName(std::string_view name) const;
  [[nodiscard]] const HostState* findByMac(const MacAddress& mac) const;
  // As a file event from `ip` would be filed (without the disk-owner fallback); null if none.
  [[nodiscard]] const HostState* findByIp(Ipv4 ip) const;
  [[nodiscard]] std::size_t unknownCount() const { return unknown_.size(); }

  // Hosts in each stage, every stage in order (zeros included), for a `hosts in each stage` gauge.
  [[nodiscard]] std::vector<std::pair<std::string_view, std::size_t>> stageCounts() const;

  // The stage durations (above) of every boot since the tracker was made, for `stage` (address,
  // boot_program, boot_files, root_disk, up, failed; unseen and dhcp stay empty), and all of them as
  // the histogram pxedust_boot_stage_seconds, one label set per stage, zeros included.
  [[nodiscard]] const metrics::Histogram& stageSeconds(Stage stage) const {
    return stageSeconds_[static_cast<std::size_t>(stage)];
  }
  void writeStageSeconds(metrics::Writer& out) const;

  // Counts changes (each record() and setInventory()); the daemon writes its state file when it
  // moved. onChange, if set, is called after each change on the loop thread; it must not call back
  // into record() or setInventory().
  [[nodiscard]] std::uint64_t generation() const { return generation_; }
  void setOnChange(std::function<void()> onChange) { onChange_ = std::move(onChange); }

  [[nodiscard]] TimePoint now() const { return clock_(); }
  [[nodiscard]] const TrackerOptions& options() const { return options_; }

 private:
  using UnknownList = std::list<std::shared_ptr<HostState>>;  // most recently seen first

  // Each applies its rules and returns the host the event is filed under.
  HostState& handle(const DhcpEvent& dhcp, const Event& event);
  HostState& handle(const ProxyDhcpEvent& proxy, const Event& event);
  HostState& handle(const FileEvent& file, const Event& event);
  HostState& handle(const DiskEvent& disk, const Event& event);
  HostState& handle(const HostEvent& report, const Event& event);
  std::vector<std::shared_ptr<HostState>> configuredStates(const inventory::Inventory& inventory);

  // Resolution (the table above). The entryFor* create an unknown client when nothing matches.
  HostState& entryForMac(const MacAddress& mac);
  HostState& entryForIp(Ipv4 ip, std::string_view diskOwner);
  [[nodiscard]] std::optional<std::size_t> configuredIndex(const inventory::Host* host) const;
  [[nodiscard]] std::optional<std::size_t> configuredByMac(const MacAddress& mac) const;
  [[nodiscard]] std::optional<std::size_t> configuredByIp(Ipv4 ip) const;
  HostState& touchUnknown(UnknownList::iterator it);
  HostState& addUnknown(HostState state);
  void eraseUnknown(UnknownList::iterator it);
  void evictOverBound();
  void rebuildUnknownIndexes();
  void bind(HostState& host, Ipv4 ip);
  void pruneBindings();

  // Stage rules.
  [[nodiscard]] bool startsNewBoot(const HostState& host, const DhcpEvent& discover, TimePoint now) const;
  static void startBoot(HostState& host, TimePoint now);
  void enter(HostState& host, Stage stage, TimePoint now);
  void fail(HostState& host, std::string reason, TimePoint now);
  void timeStage(HostState& host, Stage stage, TimePoint now);
  void remember(HostState& host, Event event) const;
  void fold(HostState& from, HostState& into) const;

  void changed();

  std::shared_ptr<const inventory::Inventory> inventory_;
  Now clock_;
  TrackerOptions options_;
  std::vector<std::shared_ptr<HostState>> configured_;  // parallel to inventory_->hosts()
  UnknownList unknown_;
  std::unordered_map<std::uint64_t, UnknownList::iterator> unknownByMac_;
  std::unordered_map<std::uint32_t, UnknownList::iterator> unknownByIp_;  // clients known by IP only
  // IP -> MAC from DHCP ACKs (and proxyDHCP answers with an address). At most one per MAC that
  // an entry holds (the entry's current ip), so it is bounded like the entries.
  std::unordered_map<std::uint32_t, MacAddress> bindings_;
  std::uint64_t generation_ = 0;
  std::uint64_t nextId_ = 1;
  std::uint64_t lastEventSeq_ = 0;
  std::vector<metrics::Histogram> stageSeconds_;  // by Stage
  std::function<void()> onChange_;
};

}  // namespace pxedust::boot
