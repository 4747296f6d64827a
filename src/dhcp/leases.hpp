// The DHCPv4 lease database: which client holds which address of the dynamic pools, until when,
// kept durable in an append-only text journal (the shape of Kea's memfile back-end).
//
// Design note
//  * Policy, not wire: no sockets and no clock. Every call that depends on time takes `now` (Unix
//    seconds), so tests drive time explicitly. Not thread-safe: the DHCP service owns one LeaseDb
//    and calls it from its event loop only.
//  * One record per address (the last thing that happened to it), indexed by address and by
//    (subnet id, client key) in hash maps. A client is its client identifier (option 61) when it sent
//    one, else its hardware address (RFC 2131 §4.2, RFC 6842).
//  * States: Offered (reserved for offerTimeout seconds, memory only), Bound (until the lease ends),
//    Released, Declined (quarantined for declineQuarantine seconds, RFC 2131 §3.1 step 5).
//    `Lease::expiry` is always "the moment this address becomes free again"; a Bound, Offered or
//    Declined record whose expiry has passed reads as Expired (Lease::stateAt).
//  * Allocation for a DHCPDISCOVER (offer()), in this order, with no scan of the pool:
//      1. the client's own record in that subnet, if it still holds it or it is free: a returning
//         client gets its old address back;
//      2. the address it asked for (option 50), if that is free;
//      3. a never-used address, from a cursor that walks the pool's ranges once (O(1) amortised; an
//         address that already has a record is skipped, it lives in step 4);
//      4. of the addresses that have a record, the one that has been free the longest: each pool keeps
//         an ordered set of (free-from time, address) for its records, so this is the set's first
//         element when that time has passed (O(log n)).
//    Otherwise the call fails with LeaseErrc::NoFreeAddress.
//  * Durability contract. bind(), bindStatic(), release() and decline() change memory at once and
//    append one journal line to a pending buffer; sync(now) writes the buffer with one pwrite() and
//    fdatasyncs the journal. The server MUST NOT send the DHCPACK for a bind until a sync() called
//    after that bind has returned ok. Batch it: handle every packet of an event-loop wake-up, call
//    sync() once, then send their ACKs. Offers are never written: losing one costs nothing.
//    The same in three steps, so the writes and syncs run off the event loop (a busy disk takes a
//    second or more for an fdatasync, and the loop serves TFTP and iSCSI too): beginSync() moves what
//    is pending into a SyncJob, runSync() does the I/O on any thread, finishSync() takes the outcome.
//    Changes go on meanwhile; each one is numbered (changeCount() just after it), and it is durable
//    once durableCount() has reached its number. One job at a time.
//    A failed write or fdatasync keeps the changes in memory and pending, and the next sync() rewrites
//    the whole file from memory (after a failed fsync Linux may have dropped the dirty pages, so the
//    old file is not trusted again).
//  * Journal format, one line per change, the last line for an address wins:
//      # pxedust lease journal v1
//      lease addr=10.0.0.5 state=bound kind=dynamic subnet=1 start=1700000000 expire=1700003600
//        client=hw:52:54:00:12:34:56 mac=52:54:00:12:34:56 host=pc-05 uuid= crc=897b3fbb
//    (one line in the file). Host names are %-escaped, client ids colon hex, the UUID (option 97
//    payload) plain hex, times Unix seconds; crc= is the CRC-32 (IEEE) of the text before " crc=".
//  * Load: a last line without its newline is a torn append from a crash: it is cut off (ftruncate)
//    and reported. A complete line that fails its CRC or does not parse is skipped and counted, with
//    a warning (as Kea does); the original file is then kept as <journal>.bad and a clean snapshot is
//    written. A non-empty file without the journal header is refused (it is not ours to overwrite).
//  * Compaction, in sync(): when the journal holds more than max(compactMinRecords,
//    compactFactor * records) lines, the records are written to <journal>.tmp, fdatasynced, renamed
//    over the journal, and the directory is fsynced; at every instant the name refers to a complete
//    journal. Offers are left out; expired leases of addresses outside every pool are dropped.
//    It runs inside sync() (or a SyncJob, off the loop): one sequential write of ~150 bytes a lease (60k
//    leases: ~10 MB, ~100 ms in a release build, see tests/leases_test.cpp); compact() runs it on demand.
//  * Memory: one record per pool address ever handed out (plus unexpired ones outside the pools), so
//    bounded by the pool sizes; records of addresses outside every pool go at compaction once expired.
//  * An exclusive flock on <journal>.lock keeps a second server process off the same journal.
//  * Reconfiguration: pools may change at any time. Records of addresses outside every pool stay until
//    they expire (they are never offered again, and renewing them is refused so the client moves to a
//    pool address); statically reserved addresses are never handed out dynamically.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/fd.hpp"
#include "common/mac.hpp"
#include "common/result.hpp"

namespace pxedust::dhcp {

// Seconds since the Unix epoch (the journal outlives the process, so wall-clock time).
using UnixTime = std::int64_t;

// IPv4 addresses are std::uint32_t in host order (10.0.0.1 == 0x0A000001).
std::string formatLeaseAddress(std::uint32_t address);
std::optional<std::uint32_t> parseLeaseAddress(std::string_view text);  // dotted quad, strict

// Error codes of expected outcomes, in Error::code. I/O failures carry their errno instead.
enum class LeaseErrc : int {
  NoFreeAddress = 10001,  // the pool has no address to offer: answer nothing (RFC 2131 §4.3.1)
  UnknownSubnet,          // no pool with that subnet id
  AddressUnavailable,     // not in the pool, reserved, declined, or held by another client: DHCPNAK
  NoLease,                // release/decline of an address the client does not hold: ignore
};
inline bool isLeaseError(const Error& e, LeaseErrc c) { return e.code == static_cast<int>(c); }

// Who a lease belongs to: option 61 bytes, else the hardware address.
class ClientKey {
 public:
  enum class Kind : std::uint8_t { HwAddr, ClientId };
  static constexpr std::size_t kMaxBytes = 255;  // a DHCP option is at most 255 bytes

  ClientKey() = default;
  static ClientKey fromMac(const MacAddress& mac);
  // Longer ids are cut to kMaxBytes (they cannot come from the wire).
  static ClientKey fromClientId(std::span<const std::uint8_t> id);
  // The client identifier when present and non-empty, else the MAC (RFC 2131 §4.2).
  static ClientKey identify(std::span<const std::uint8_t> clientId, const MacAddress& mac);
  // "hw:52:54:00:12:34:56" or "id:01:52:54:00:12:34:56"; parse() reads the same form.
  [[nodiscard]] std::string toString() const;
  static std::optional<ClientKey> parse(std::string_view text);

  [[nodiscard]] Kind kind() const { return kind_; }
  [[nodiscard]] const std::vector<std::uint8_t>& bytes() const { return bytes_; }
  [[nodiscard]] bool empty() const { return bytes_.empty(); }
  [[nodiscard]] std::size_t hash() const;
  friend bool operator==(const ClientKey&, const ClientKey&) = default;

 private:
  Kind kind_ = Kind::HwAddr;
  std::vector<std::uint8_t> bytes_;
};

enum class LeaseState : std::uint8_t { Offered, Bound, Released, Declined, Expired };
std::string_view leaseStateName(LeaseState s);
// Dynamic: from a pool. Static: a host reservation acknowledged by the server, recorded for status.
enum class LeaseKind : std::uint8_t { Dynamic, Static };

struct Lease {
  std::uint32_t address = 0;
  LeaseState state = LeaseState::Offered;  // as stored: never Expired (see stateAt)
  LeaseKind kind = LeaseKind::Dynamic;
  std::uint32_t subnetId = 0;
  UnixTime start = 0;   // when the current state began (offer, bind or renewal, release, decline)
  UnixTime expiry = 0;  // when the address becomes free: lease end, offer timeout, release time, quarantine end
  ClientKey client;
  MacAddress mac;
  std::string hostname;             // option 12, at most 255 bytes
  std::vector<std::uint8_t> uuid;   // option 97 payload (RFC 4578: type 0 + 16 bytes), empty if absent

  // The state as seen at `now`: Bound/Offered/Declined records past their expiry read Expired.
  [[nodiscard]] LeaseState stateAt(UnixTime now) const;
  // Holds the address at `now` (not free): an unexpired offer, bound lease or quarantine.
  [[nodiscard]] bool activeAt(UnixTime now) const { return state != LeaseState::Released && expiry > now; }
  friend bool operator==(const Lease&, const Lease&) = default;
};

// What the server knows about the client from its packet.
struct ClientInfo {
  ClientKey key;
  MacAddress mac;
  std::string hostname;
  std::vector<std::uint8_t> uuid;
};

struct AddressRange {
  std::uint32_t first = 0;
  std::uint32_t last = 0;  // inclusive
};

// A subnet's dynamic pool. The network and broadcast addresses are never handed out even when a
// range covers them (prefixes up to /30).
struct PoolConfig {
  std::uint32_t subnetId = 0;  // non-zero, unique, stable across reloads: it is written into leases
  std::uint32_t network = 0;
  std::uint8_t prefixLength = 24;
  std::vector<AddressRange> ranges;  // inside the subnet, not overlapping any other range
  std::uint32_t leaseTime = 3600;    // seconds, when bind() is not given one
};

enum class JournalOp { Write, Sync, Compact };

struct LeaseDbOptions {
  std::filesystem::path path;             // the journal; its directory must exist and be writable
  std::uint32_t offerTimeout = 60;        // s an offer holds its address (clients retry DISCOVER in ~4-64 s)
  std::uint32_t declineQuarantine = 86400;  // s a declined address is withheld (Kea's decline-probation-period)
  std::uint64_t compactMinRecords = 10000;  // never compact a journal shorter than this...
  std::uint32_t compactFactor = 2;          // ...nor one shorter than this many times the live records
  // Test seam: consulted before each journal write, fdatasync and compaction; a non-zero return is
  // used as that operation's errno and the operation is not performed.
  std::function<int(JournalOp)> faultHook;
};

// What open() found in the journal.
struct LoadReport {
  bool created = false;          // there was no journal: a new one was written
  std::uint64_t lines = 0;       // lease lines read (good and bad)
  std::uint64_t leases = 0;      // records after replay
  std::uint64_t corruptLines = 0;
  std::uint64_t tornBytes = 0;   // bytes of an unfinished last line, cut off
  std::filesystem::path savedCopy;  // <journal>.bad when corrupt lines were found
};

struct PoolStats {
  std::uint32_t subnetId = 0;
  std::uint32_t network = 0;  // the pool's subnet, as PoolConfig has it
  std::uint8_t prefixLength = 24;
  std::uint64_t total = 0;     // addresses the ranges can hand out (network/broadcast excluded)
  std::uint64_t reserved = 0;  // of those, static reservations (never offered dynamically)
  std::uint64_t bound = 0;     // active bound leases on pool addresses (static ones included)
  std::uint64_t offered = 0;   // outstanding offers
  std::uint64_t declined = 0;  // addresses in quarantine
  std::uint64_t free = 0;      // total - reserved - active records on non-reserved addresses
};

class LeaseDb {
 public:
  // Opens (or creates) the journal, replays it and applies the pools. `reserved` lists the addresses
  // of static reservations, which offer() never picks.
  static Result<LeaseDb> open(LeaseDbOptions options, std::vector<PoolConfig> pools,
                              std::vector<std::uint32_t> reserved, UnixTime now);

  LeaseDb(LeaseDb&&) noexcept = default;
  LeaseDb& operator=(LeaseDb&&) noexcept = default;
  LeaseDb(const LeaseDb&) = delete;
  LeaseDb& operator=(const LeaseDb&) = delete;
  ~LeaseDb() = default;

  // DHCPDISCOVER: picks an address in pool `subnetId` (order in the design note) and holds it for the
  // client for offerTimeout seconds. A client that still holds a bound lease gets it back unchanged.
  Result<Lease> offer(std::uint32_t subnetId, const ClientInfo& client, std::optional<std::uint32_t> requested,
                      UnixTime now);
  // DHCPREQUEST (selecting, init-reboot, renewing, rebinding): binds `address` to the client for
  // `leaseTime` seconds (the pool's when nullopt). Fails with AddressUnavailable (send a NAK) when
  // the address is outside the pool, reserved, in quarantine or held by another client. A different
  // lease of the same client in the same subnet is released. Durable after the next sync().
  Result<Lease> bind(std::uint32_t subnetId, const ClientInfo& client, std::uint32_t address, UnixTime now,
                     std::optional<std::uint32_t> leaseTime = std::nullopt);
  // A DHCPACK for a static reservation (decided elsewhere), recorded so status shows it. The address
  // need not be in a pool. Fails with AddressUnavailable while another client holds it.
  Result<Lease> bindStatic(std::uint32_t subnetId, const ClientInfo& client, std::uint32_t address,
                           std::uint32_t leaseTime, UnixTime now);
  // DHCPRELEASE: frees the client's offer or lease on `address` (NoLease if it does not hold it).
  Result<void> release(const ClientKey& client, std::uint32_t address, UnixTime now);
  // DHCPDECLINE: the client found `address` in use; quarantine it for declineQuarantine seconds.
  Result<void> decline(const ClientKey& client, std::uint32_t address, UnixTime now);

  // Writes the pending journal lines and fdatasyncs them (compacting when due). See the contract above.
  Result<void> sync(UnixTime now);

  // A journal write taken from the pending state by beginSync(): an append of the pending lines, or a
  // whole snapshot (compaction, or a rewrite after a failure). runSync() reads and fills only the job.
  struct SyncJob {
    bool snapshot = false;
    bool compaction = false;         // a snapshot because the journal grew long, not after a failure
    std::string bytes;               // the lines to append, or the whole snapshot (made by runSync)
    // Snapshot: the leases to write, oldest change first, and the time to stamp. Copied on the loop,
    // written as text by runSync on the sync thread: formatting 10,000 of them on the loop stalled it
    // for 50-100 ms (a loop-lag probe in bench/dhcp's static row).
    std::vector<Lease> leases;
    UnixTime snapshotTime = 0;
    std::uint64_t records = 0;       // lease lines in `bytes`
    std::string absorbed;            // snapshot: the pending lines it took, given back if it fails
    std::uint64_t absorbedRecords = 0;
    std::uint64_t offset = 0;        // append: where the lines go
    int fd = -1;                     // append: the journal, owned by the LeaseDb
    std::filesystem::path path;      // the journal's name
    std::uint64_t upTo = 0;          // changes numbered up to this are durable when it succeeds
    std::function<int(JournalOp)> faultHook;
    // Filled by runSync():
    std::optional<Error> error;
    bool renamed = false;            // snapshot: the journal's name refers to the new file
    UniqueFd newFd;
  };
  // Null when nothing is pending or a job is already out.
  std::unique_ptr<SyncJob> beginSync(UnixTime now);
  static void runSync(SyncJob& job);
  Result<void> finishSync(SyncJob& job);
  [[nodiscard]] std::uint64_t changeCount() const { return changes_; }
  [[nodiscard]] std::uint64_t durableCount() const { return durable_; }
  [[nodiscard]] bool syncInFlight() const { return inFlight_; }
  // Writes a snapshot now (pending lines included), whatever the journal length.
  Result<void> compact(UnixTime now);
  [[nodiscard]] bool syncPending() const { return !pending_.empty() || needRewrite_; }

  // Replaces the pools and reservations. On a validation error nothing changes.
  Result<void> reconfigure(std::vector<PoolConfig> pools, std::vector<std::uint32_t> reserved);
  // The same in two steps, for an all-or-nothing reload: planPools() checks and can fail, changing
  // nothing; applyPlan() cannot fail.
  struct PoolPlan;
  static Result<PoolPlan> planPools(std::vector<PoolConfig> pools, std::vector<std::uint32_t> reserved);
  void applyPlan(PoolPlan plan);

  // Lookups, O(1). The pointer is valid until the next non-const call.
  [[nodiscard]] const Lease* findByAddress(std::uint32_t address) const;
  [[nodiscard]] const Lease* findByClient(std::uint32_t subnetId, const ClientKey& client) const;
  void forEach(const std::function<void(const Lease&)>& fn) const;
  [[nodiscard]] std::size_t size() const { return byAddr_.size(); }

  // Per pool counts at `now`, in configuration order. O(records): call it from a metrics timer.
  [[nodiscard]] std::vector<PoolStats> stats(UnixTime now) const;
  [[nodiscard]] const LoadReport& loadReport() const { return report_; }
  [[nodiscard]] std::uint64_t journalRecords() const { return journalRecords_; }
  [[nodiscard]] const std::filesystem::path& path() const { return options_.path; }

 private:
  struct Pool {
    PoolConfig config;
    std::uint32_t broadcast = 0;
    std::uint64_t total = 0;
    std::size_t cursorRange = 0;     // never-used cursor: index into config.ranges...
    std::uint64_t cursorNext = 0;    // ...and the next address to look at in it
    std::set<std::pair<UnixTime, std::uint32_t>> byFreeTime;  // (expiry, address) of its records
  };
  struct RangeRef {
    std::uint32_t first, last;
    std::size_t pool;
  };

 public:
  struct PoolPlan {
    std::vector<Pool> pools;
    std::vector<RangeRef> ranges;
    std::vector<std::uint32_t> reserved;
  };

 private:
  struct Entry {
    Lease lease;
    std::uint64_t seq = 0;  // order of the last change; snapshots keep it so "latest" survives reloads
    int pool = -1;          // index into pools_, -1 when outside every pool
  };
  struct Slot {
    std::uint32_t subnetId;
    ClientKey client;
    friend bool operator==(const Slot&, const Slot&) = default;
  };
  struct SlotHash {
    std::size_t operator()(const Slot& s) const { return s.client.hash() * 31 + s.subnetId; }
  };

  LeaseDb() = default;
  static Result<std::vector<Pool>> buildPools(std::vector<PoolConfig> configs, std::vector<RangeRef>& ranges);
  Result<void> load(UnixTime now);
  void applyPools(std::vector<Pool> pools, std::vector<RangeRef> ranges, std::vector<std::uint32_t> reserved);
  [[nodiscard]] int poolOf(std::uint32_t address) const;
  [[nodiscard]] bool assignable(const Pool& p, std::uint32_t address) const;
  [[nodiscard]] bool inFreeSet(const Entry& e) const;
  Pool* findPool(std::uint32_t subnetId);
  // Replaces the record of lease.address, keeping every index in step; journals it when `durable`.
  const Lease& put(Lease lease, bool durable);
  void eraseRecord(std::uint32_t address);
  std::optional<std::uint32_t> takeNeverUsed(Pool& p);
  static Lease newLease(std::uint32_t subnetId, const ClientInfo& client, std::uint32_t address, LeaseState state,
                        UnixTime now, UnixTime expiry);
  void releaseOther(std::uint32_t subnetId, const ClientKey& client, std::uint32_t address, UnixTime now);
  std::unique_ptr<SyncJob> takeJob(UnixTime now, bool forceSnapshot);
  Result<void> writeSnapshot(UnixTime now);
  [[nodiscard]] bool compactionDue() const;
  int fault(JournalOp op) const;

  LeaseDbOptions options_;
  LoadReport report_;
  UniqueFd lockFd_;
  UniqueFd journalFd_;
  std::uint64_t journalSize_ = 0;     // bytes known good and durable
  std::uint64_t journalRecords_ = 0;  // lease lines in the file
  std::uint64_t nextCompactAt_ = 0;   // after a failed compaction, do not retry before this many records
  std::string pending_;               // lines not yet written
  std::uint64_t pendingRecords_ = 0;
  bool needRewrite_ = false;          // the file is not trusted: the next sync() writes a snapshot
  bool inFlight_ = false;             // a SyncJob is out
  std::uint64_t changes_ = 0;         // journaled changes so far (each one's number)
  std::uint64_t durable_ = 0;         // changes numbered up to this are on disk
  std::uint64_t seq_ = 0;

  std::vector<Pool> pools_;
  std::vector<RangeRef> ranges_;  // sorted by first
  std::unordered_set<std::uint32_t> reserved_;
  std::unordered_map<std::uint32_t, Entry> byAddr_;
  std::unordered_map<Slot, std::uint32_t, SlotHash> byClient_;  // the client's latest record in a subnet
};

}  // namespace pxedust::dhcp
