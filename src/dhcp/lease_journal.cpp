// The lease journal: its line format (CRC-checked, %-escaped host names), the file I/O, and the
// LeaseDb members that append and fdatasync pending lines (group commit, on or off the loop),
// write snapshots (compaction, or a rewrite after a failure), and replay the journal at open
// (torn tails cut off, corrupt lines skipped and kept in <journal>.bad). See leases.hpp for the
// durability contract; allocation and the records are in leases.cpp.
#include "dhcp/lease_journal.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <iterator>

#include <fmt/format.h>

#include "common/checked.hpp"
#include "common/log.hpp"

namespace pxedust::dhcp {
namespace journal {
namespace {

constexpr std::string_view kCrcTag = " crc=";

// CRC-32 (IEEE 802.3, reflected, as zlib's crc32()).
constexpr std::array<std::uint32_t, 256> makeCrcTable() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320U ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kCrcTable = makeCrcTable();

std::uint32_t crc32(std::string_view s) {
  std::uint32_t c = 0xFFFFFFFFU;
  for (unsigned char b : s) c = kCrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFU;
}

constexpr char kHex[] = "0123456789abcdef";

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Host names come from peers: anything but [A-Za-z0-9._-] is written as %XX, so a name can never
// break the line format or hide a newline.
void appendEscaped(std::string& out, std::string_view s) {
  for (unsigned char c : s) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                 c == '_' || c == '-';
    if (plain) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
}

std::optional<std::string> unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (s.size() - i < 3) return std::nullopt;
    int hi = hexValue(s[i + 1]);
    int lo = hexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::string_view kindName(LeaseKind k) { return k == LeaseKind::Static ? "static" : "dynamic"; }

std::optional<UnixTime> parseTime(std::string_view s) {
  auto d = parseDecimal(s);
  if (!d || d->saturated || d->value > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
  return static_cast<UnixTime>(d->value);
}

}  // namespace

void appendHex(std::string& out, std::span<const std::uint8_t> bytes, bool colons) {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (colons && i) out.push_back(':');
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 15]);
  }
}

std::optional<std::vector<std::uint8_t>> parseHex(std::string_view s, bool colons) {
  std::vector<std::uint8_t> out;
  std::size_t i = 0;
  while (i < s.size()) {
    if (colons && !out.empty()) {
      if (s[i] != ':') return std::nullopt;
      ++i;
    }
    if (s.size() - i < 2) return std::nullopt;
    int hi = hexValue(s[i]);
    int lo = hexValue(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

void appendLine(std::string& out, const Lease& l) {
  // Straight into `out`, no temporary strings: a line is written for every ACK (bench/dhcp).
  const auto begin = out.size();
  const auto a = l.address;
  fmt::format_to(std::back_inserter(out), "lease addr={}.{}.{}.{} state={} kind={} subnet={} start={} expire={} client={}",
                 a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255, leaseStateName(l.state), kindName(l.kind),
                 l.subnetId, l.start, l.expiry, l.client.kind() == ClientKey::Kind::HwAddr ? "hw:" : "id:");
  appendHex(out, l.client.bytes(), true);
  out += " mac=";
  appendHex(out, l.mac.bytes(), true);
  out += " host=";
  appendEscaped(out, l.hostname);
  out += " uuid=";
  appendHex(out, l.uuid, false);
  auto crc = crc32(std::string_view(out).substr(begin));
  fmt::format_to(std::back_inserter(out), "{}{:08x}\n", kCrcTag, crc);
}

Result<Lease> parseLine(std::string_view line) {
  auto bad = [](std::string why) { return Error{std::move(why), EINVAL}; };
  auto tag = line.rfind(kCrcTag);
  if (tag == std::string_view::npos || line.size() - tag != kCrcTag.size() + 8) return bad("no crc field");
  auto crcText = parseHex(line.substr(tag + kCrcTag.size()), false);
  if (!crcText || crcText->size() != 4) return bad("bad crc field");
  std::uint32_t crcWant = 0;
  for (auto b : *crcText) crcWant = crcWant << 8 | b;
  const auto body = line.substr(0, tag);
  if (crc32(body) != crcWant) return bad("crc mismatch");

  static constexpr std::array<std::string_view, 11> kKeys = {"",       "addr=",   "state=",  "kind=",
                                                             "subnet=", "start=", "expire=", "client=",
                                                             "mac=",    "host=",  "uuid="};
  std::array<std::string_view, kKeys.size()> v{};
  std::size_t pos = 0;
  for (std::size_t i = 0; i < kKeys.size(); ++i) {
    auto end = body.find(' ', pos);
    if ((end == std::string_view::npos) != (i + 1 == kKeys.size())) return bad("wrong number of fields");
    auto tok = body.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    if (i == 0) {
      if (tok != "lease") return bad("not a lease line");
    } else {
      if (!tok.starts_with(kKeys[i])) return bad(fmt::format("expected field {}", kKeys[i]));
      v[i] = tok.substr(kKeys[i].size());
    }
    pos = end + 1;
  }
  Lease l;
  auto addr = parseLeaseAddress(v[1]);
  if (!addr) return bad("bad addr");
  l.address = *addr;
  if (v[2] == "bound") {
    l.state = LeaseState::Bound;
  } else if (v[2] == "released") {
    l.state = LeaseState::Released;
  } else if (v[2] == "declined") {
    l.state = LeaseState::Declined;
  } else {
    return bad("bad state");
  }
  if (v[3] == "dynamic") {
    l.kind = LeaseKind::Dynamic;
  } else if (v[3] == "static") {
    l.kind = LeaseKind::Static;
  } else {
    return bad("bad kind");
  }
  auto subnet = parseDecimal(v[4]);
  if (!subnet || subnet->value > UINT32_MAX) return bad("bad subnet");
  l.subnetId = static_cast<std::uint32_t>(subnet->value);
  auto start = parseTime(v[5]);
  auto expire = parseTime(v[6]);
  if (!start || !expire) return bad("bad time");
  l.start = *start;
  l.expiry = *expire;
  auto client = ClientKey::parse(v[7]);
  if (!client) return bad("bad client");
  l.client = std::move(*client);
  auto mac = MacAddress::parse(v[8]);
  if (!mac) return bad("bad mac");
  l.mac = *mac;
  auto host = unescape(v[9]);
  if (!host || host->size() > kMaxTextField) return bad("bad host");
  l.hostname = std::move(*host);
  auto uuid = parseHex(v[10], false);
  if (!uuid || uuid->size() > kMaxTextField) return bad("bad uuid");
  l.uuid = std::move(*uuid);
  return l;
}

}  // namespace journal

namespace {

constexpr std::uint64_t kMaxJournalBytes = 1ULL << 30;  // refuse to slurp anything larger
constexpr int kMaxCorruptLinesLogged = 10;

std::string errnoText(int err) { return std::strerror(err); }

Error ioError(std::string_view what, const std::filesystem::path& path, int err) {
  return errnoError(fmt::format("{} {}: {}", what, path.string(), errnoText(err)), err);
}

Result<UniqueFd> openPath(const std::filesystem::path& path, int flags, mode_t mode = 0640) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errnoError("open", errno);  // the caller names the file and the purpose
  return UniqueFd(fd);
}

Result<void> pwriteAll(int fd, std::string_view data, std::uint64_t offset, const std::filesystem::path& path) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ioError("cannot write lease journal", path, errno);
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

Result<std::string> readAll(int fd, const std::filesystem::path& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ioError("cannot stat lease journal", path, errno);
  auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > kMaxJournalBytes) {
    return Error{fmt::format("lease journal {} is {} bytes, more than the {} this build reads", path.string(), size,
                             kMaxJournalBytes),
                 EFBIG};
  }
  std::string out(size, '\0');
  std::size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ioError("cannot read lease journal", path, errno);
    }
    if (n == 0) break;  // shrank under us: read what is there
    done += static_cast<std::size_t>(n);
  }
  out.resize(done);
  return out;
}

Result<void> syncDirOf(const std::filesystem::path& path) {
  auto dir = path.parent_path();
  if (dir.empty()) dir = ".";
  auto fd = openPath(dir, O_RDONLY | O_DIRECTORY);
  if (!fd) return ioError("cannot open lease journal directory", dir, fd.error().code);
  if (::fsync(fd->get()) != 0) return ioError("fsync failed for lease journal directory", dir, errno);
  return {};
}

std::filesystem::path withSuffix(const std::filesystem::path& p, std::string_view suffix) {
  auto out = p;
  out += std::string(suffix);
  return out;
}

}  // namespace

// ---- writing, syncing and compacting ------------------------------------------------------------

int LeaseDb::fault(JournalOp op) const { return options_.faultHook ? options_.faultHook(op) : 0; }

bool LeaseDb::compactionDue() const {
  const auto lines = journalRecords_ + pendingRecords_;
  const auto live = static_cast<std::uint64_t>(byAddr_.size());
  const auto threshold = std::max(options_.compactMinRecords, options_.compactFactor * live);
  return lines > threshold && lines >= nextCompactAt_;
}

std::unique_ptr<LeaseDb::SyncJob> LeaseDb::takeJob(UnixTime now, bool forceSnapshot) {
  if (inFlight_) return nullptr;
  auto job = std::make_unique<SyncJob>();
  job->path = options_.path;
  job->faultHook = options_.faultHook;
  job->compaction = !forceSnapshot && !needRewrite_ && compactionDue();
  if (forceSnapshot || needRewrite_ || job->compaction) {
    job->snapshot = true;
    // Expired records of addresses outside every pool have nothing left to say.
    std::vector<std::uint32_t> stale;
    for (const auto& [addr, e] : byAddr_)
      if (e.pool < 0 && !e.lease.activeAt(now)) stale.push_back(addr);
    for (auto a : stale) eraseRecord(a);

    std::vector<const Entry*> entries;
    entries.reserve(byAddr_.size());
    for (const auto& [addr, e] : byAddr_)
      if (e.lease.state != LeaseState::Offered) entries.push_back(&e);
    std::sort(entries.begin(), entries.end(), [](const Entry* a, const Entry* b) { return a->seq < b->seq; });
    job->leases.reserve(entries.size());
    for (const auto* e : entries) job->leases.push_back(e->lease);
    job->snapshotTime = now;
    job->records = entries.size();
    job->absorbed = std::move(pending_);
    job->absorbedRecords = pendingRecords_;
  } else {
    if (pending_.empty()) return nullptr;
    job->bytes = std::move(pending_);
    job->records = pendingRecords_;
    job->offset = journalSize_;
    job->fd = journalFd_.get();
  }
  pending_.clear();
  pendingRecords_ = 0;
  job->upTo = changes_;
  inFlight_ = true;
  return job;
}

std::unique_ptr<LeaseDb::SyncJob> LeaseDb::beginSync(UnixTime now) { return takeJob(now, false); }

void LeaseDb::runSync(SyncJob& job) {
  auto fault = [&](JournalOp op) { return job.faultHook ? job.faultHook(op) : 0; };
  if (!job.snapshot) {
    if (int err = fault(JournalOp::Write)) {
      job.error = ioError("cannot write lease journal", job.path, err);
      return;
    }
    if (auto r = pwriteAll(job.fd, job.bytes, job.offset, job.path); !r) {
      job.error = r.error();
      return;
    }
    int err = fault(JournalOp::Sync);
    if (err == 0 && ::fdatasync(job.fd) != 0) err = errno;
    if (err != 0) job.error = ioError("fdatasync failed for lease journal", job.path, err);
    return;
  }
  job.bytes.reserve(job.leases.size() * 160 + 128);
  fmt::format_to(std::back_inserter(job.bytes), "{}\n# snapshot now={} records={}\n", journal::kHeader, job.snapshotTime,
                 job.leases.size());
  for (const auto& lease : job.leases) journal::appendLine(job.bytes, lease);
  job.leases = {};
  const auto tmp = withSuffix(job.path, ".tmp");
  if (int err = fault(JournalOp::Compact)) {
    job.error = ioError("cannot write lease journal snapshot", tmp, err);
    return;
  }
  auto fd = openPath(tmp, O_RDWR | O_CREAT | O_TRUNC);
  if (!fd) {
    job.error = ioError("cannot create lease journal", tmp, fd.error().code);
    return;
  }
  auto fail = [&](Error e) {
    ::unlink(tmp.c_str());
    job.error = std::move(e);
  };
  if (auto r = pwriteAll(fd->get(), job.bytes, 0, tmp); !r) return fail(r.error());
  if (::fdatasync(fd->get()) != 0) return fail(ioError("fdatasync failed for lease journal", tmp, errno));
  if (::rename(tmp.c_str(), job.path.c_str()) != 0) {
    int err = errno;
    return fail(errnoError(
        fmt::format("cannot rename {} over {}: {}", tmp.string(), job.path.string(), errnoText(err)), err));
  }
  // The name now refers to the snapshot, whatever happens next.
  job.renamed = true;
  job.newFd = std::move(*fd);
  if (auto r = syncDirOf(job.path); !r) job.error = r.error();
}

Result<void> LeaseDb::finishSync(SyncJob& job) {
  inFlight_ = false;
  if (!job.snapshot) {
    if (job.error) {
      // A partial line may sit past journalSize_, and after a failed fdatasync the kernel may have
      // dropped the dirty pages: the file is not trusted again, the next job rewrites it from memory.
      needRewrite_ = true;
      return *job.error;
    }
    journalSize_ += job.bytes.size();
    journalRecords_ += job.records;
    durable_ = job.upTo;
    return {};
  }
  if (job.renamed) {
    journalFd_ = std::move(job.newFd);
    journalSize_ = job.bytes.size();
    journalRecords_ = job.records;
    nextCompactAt_ = 0;
    if (job.error) {
      needRewrite_ = true;  // the rename may not be durable: do it all again next time
      return *job.error;
    }
    needRewrite_ = false;
    durable_ = job.upTo;
    return {};
  }
  // The old journal is intact: the lines the snapshot took are pending again, before what came since.
  job.absorbed += pending_;
  pending_ = std::move(job.absorbed);
  pendingRecords_ += job.absorbedRecords;
  if (job.compaction) {
    // Keep appending to the old journal, and retry the compaction after as many records again.
    const auto lines = journalRecords_ + pendingRecords_;
    nextCompactAt_ = lines + std::max<std::uint64_t>(options_.compactMinRecords, 1);
  }
  PXD_WARN("dhcp.leases.compact_failed", "journal={} error={}", log::q(options_.path.string()),
           log::q(job.error->message));
  return *job.error;
}

Result<void> LeaseDb::writeSnapshot(UnixTime now) {
  auto job = takeJob(now, true);
  if (!job) return Error{"lease journal: a sync is already in flight", EBUSY};
  runSync(*job);
  return finishSync(*job);
}

Result<void> LeaseDb::compact(UnixTime now) { return writeSnapshot(now); }

Result<void> LeaseDb::sync(UnixTime now) {
  // Twice at most: a compaction that fails with the old journal intact is followed by an append to it.
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto job = beginSync(now);
    if (!job) return {};
    runSync(*job);
    auto r = finishSync(*job);
    if (r || !job->compaction || job->renamed) return r;
  }
  return {};
}

Result<void> LeaseDb::load(UnixTime now) {
  const auto& path = options_.path;
  ::unlink(withSuffix(path, ".tmp").c_str());  // a compaction cut short by a crash (we hold the lock)
  auto fd = openPath(path, O_RDWR);
  if (!fd && fd.error().code == ENOENT) {
    report_.created = true;
    if (auto r = writeSnapshot(now); !r) return r;
    PXD_INFO("dhcp.leases.created", "journal={}", log::q(path.string()));
    return {};
  }
  if (!fd) return ioError("cannot open lease journal", path, fd.error().code);
  auto text = readAll(fd->get(), path);
  if (!text) return text.error();
  journalFd_ = std::move(*fd);
  const std::string_view all = *text;

  std::size_t pos = 0;
  if (!all.empty()) {
    auto nl = all.find('\n');
    if (nl == std::string_view::npos || all.substr(0, nl) != journal::kHeader) {
      return Error{fmt::format("{} is not a pxedust lease journal (first line is not \"{}\"); not touching it",
                               path.string(), journal::kHeader),
                   EINVAL};
    }
    pos = nl + 1;
  }
  std::uint64_t lineNo = 1;
  while (pos < all.size()) {
    auto nl = all.find('\n', pos);
    if (nl == std::string_view::npos) {
      report_.tornBytes = all.size() - pos;
      break;
    }
    auto line = all.substr(pos, nl - pos);
    pos = nl + 1;
    ++lineNo;
    if (line.empty() || line.front() == '#') continue;
    ++report_.lines;
    auto lease = journal::parseLine(line);
    if (!lease) {
      if (++report_.corruptLines <= kMaxCorruptLinesLogged) {
        PXD_WARN("dhcp.leases.corrupt_line", "journal={} line={} reason={}", log::q(path.string()), lineNo,
                 log::q(lease.error().message));
      }
      continue;
    }
    put(std::move(*lease), false);
  }
  journalSize_ = pos;  // just past the last complete line
  journalRecords_ = report_.lines;
  report_.leases = byAddr_.size();

  if (report_.tornBytes > 0) {
    PXD_WARN("dhcp.leases.torn_tail", "journal={} ignored_bytes={}", log::q(path.string()), report_.tornBytes);
    if (::ftruncate(journalFd_.get(), static_cast<off_t>(journalSize_)) != 0 || ::fdatasync(journalFd_.get()) != 0) {
      return ioError("cannot cut the torn tail off lease journal", path, errno);
    }
  }
  if (all.empty()) {
    // An empty file (created by hand): give it its header.
    if (auto r = writeSnapshot(now); !r) return r;
  } else if (report_.corruptLines > 0) {
    report_.savedCopy = withSuffix(path, ".bad");
    ::unlink(report_.savedCopy.c_str());
    if (::link(path.c_str(), report_.savedCopy.c_str()) != 0) {
      PXD_WARN("dhcp.leases.keep_copy_failed", "journal={} copy={} error={}", log::q(path.string()),
               log::q(report_.savedCopy.string()), log::q(errnoText(errno)));
      report_.savedCopy.clear();
    }
    PXD_WARN("dhcp.leases.corrupt_lines", "journal={} skipped={} copy={}", log::q(path.string()),
             report_.corruptLines, log::q(report_.savedCopy.string()));
    (void)compact(now);  // on failure the old file stays valid (bad lines are skipped on every load)
  } else if (compactionDue()) {
    (void)compact(now);
  }
  PXD_INFO("dhcp.leases.loaded", "journal={} leases={} lines={} corrupt={} torn_bytes={}", log::q(path.string()),
           report_.leases, report_.lines, report_.corruptLines, report_.tornBytes);
  return {};
}
// ---- opening: the lock, then the replay --------------------------------------------------------

Result<LeaseDb> LeaseDb::open(LeaseDbOptions options, std::vector<PoolConfig> pools,
                              std::vector<std::uint32_t> reserved, UnixTime now) {
  if (options.path.empty() || options.path.filename().empty()) {
    return Error{"lease journal path is empty or names a directory", EINVAL};
  }
  if (options.offerTimeout == 0) return Error{"lease offer timeout must be at least 1 s", EINVAL};
  std::vector<RangeRef> ranges;
  auto built = buildPools(std::move(pools), ranges);
  if (!built) return built.error();

  LeaseDb db;
  db.options_ = std::move(options);
  db.applyPools(std::move(*built), std::move(ranges), std::move(reserved));

  const auto lockPath = withSuffix(db.options_.path, ".lock");
  auto lock = openPath(lockPath, O_RDWR | O_CREAT);
  if (!lock) {
    return errnoError(fmt::format("lease journal directory {} is not usable: cannot create {}: {}",
                                  db.options_.path.parent_path().string(), lockPath.string(),
                                  errnoText(lock.error().code)),
                      lock.error().code);
  }
  if (::flock(lock->get(), LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    if (err == EWOULDBLOCK) {
      return errnoError(fmt::format("lease journal {} is in use by another process (lock {} is held)",
                                    db.options_.path.string(), lockPath.string()),
                        EBUSY);
    }
    return ioError("cannot lock", lockPath, err);
  }
  db.lockFd_ = std::move(*lock);
  if (auto r = db.load(now); !r) return r.error();
  return db;
}

}  // namespace pxedust::dhcp
