// iscsi_load: an iSCSI block load generator for bench/iscsi (libiscsi, no pxedust code).
//
// Design: one thread, one iSCSI session (one TCP connection) with libiscsi's login defaults, which
// are Linux's (open-iscsi's) in the keys that shape the data path: ImmediateData=Yes, InitialR2T=No,
// FirstBurstLength and MaxRecvDataSegmentLength 256 KiB, MaxOutstandingR2T=1, no digests. One
// difference: libiscsi offers MaxBurstLength 256 KiB where open-iscsi offers 16 MiB - 1 KiB, and
// libiscsi has no call to change it, so a 1 MiB write is solicited in 256 KiB R2T bursts (the
// target may lower it further; tgt does). --qd slots each keep one
// READ(10)/WRITE(10) in flight (READ(16)/WRITE(16) beyond 2^32 blocks, as Linux's sd does); a
// completion records its latency and re-arms its slot at once. The event loop is libiscsi's
// own: poll() on iscsi_get_fd() for iscsi_which_events(), then iscsi_service().
//
// Data: reads land directly in the slot's buffer (scsi_task_add_data_in_buffer, no copy in the
// client); writes send the slot's buffer, filled once with seeded pseudo-random bytes
// (incompressible, and the same for every target).
//
// Offsets, in units of --bs inside [--offset, --offset + --size):
//   read/write          in order from the start of the range, wrapping at its end;
//   randread/randwrite  a seeded permutation of the units (a bijective mix of a counter, cycle-walked
//                       into range): every unit once before any repeats, as fio's random map does,
//                       and the same sequence for the same --seed, so a rewrite pass hits exactly the
//                       blocks a first pass wrote.
// The run ends after --time seconds (then the IOs in flight are waited for and counted), or after
// --ios IOs / --bytes bytes. --sync issues one SYNCHRONIZE CACHE at the end, timed on its own.
// --verify FILE compares every read with FILE at the same byte offset (a correctness pass; it costs
// client CPU, so timed passes leave it off).
//
// Output: one line of key=value pairs on stdout (see report()); exit status 1 if any IO failed.
//
// Build: CMake target iscsi_load (bench/iscsi/CMakeLists.txt), or
//   g++ -O2 -std=c++20 -o iscsi_load iscsi_load.cpp -liscsi

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

extern "C" {
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
}

namespace {

enum class Pattern { Read, Write, RandRead, RandWrite };

struct Options {
  std::string portal = "127.0.0.1:3260";
  std::string target;
  int lun = 0;
  std::string initiator = "iqn.2026-11.org.pxedust:iscsi-load";
  Pattern pattern = Pattern::RandRead;
  std::uint64_t bs = 4096;
  int qd = 1;
  double seconds = 0;         // --time; 0 = bounded by --ios / --bytes
  std::uint64_t ios = 0;      // --ios or --bytes / --bs
  std::uint64_t offset = 0;   // start of the range, bytes
  std::uint64_t size = 0;     // length of the range, bytes; 0 = to the end of the LUN
  std::uint64_t seed = 1;
  bool sync = false;
  std::string verify;
  std::string label;
};

std::int64_t nowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "iscsi_load: %s\n", msg.c_str());
  std::exit(2);
}

// A byte count with an optional binary suffix: 4096, 4k, 1m, 2g.
std::uint64_t parseSize(std::string_view s, const char* what) {
  std::uint64_t mult = 1;
  if (!s.empty()) {
    switch (s.back() | 0x20) {
      case 'k': mult = 1ull << 10; break;
      case 'm': mult = 1ull << 20; break;
      case 'g': mult = 1ull << 30; break;
      default: break;
    }
    if (mult != 1) s.remove_suffix(1);
  }
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > UINT64_MAX / mult)
    die(std::string("bad number for ") + what + ": " + std::string(s));
  return v * mult;
}

double parseSeconds(std::string_view s) {
  std::string copy(s);
  char* end = nullptr;
  double v = std::strtod(copy.c_str(), &end);
  if (end == copy.c_str() || *end != '\0' || !(v > 0) || v > 86400) die("bad --time: " + copy);
  return v;
}

void usage() {
  std::fprintf(stderr,
      "usage: iscsi_load --portal HOST:PORT --target IQN [--lun N] [--initiator IQN]\n"
      "                  --pattern read|write|randread|randwrite [--bs BYTES] [--qd N]\n"
      "                  (--time SECONDS | --ios N | --bytes BYTES)\n"
      "                  [--offset BYTES] [--size BYTES] [--seed N] [--sync] [--verify FILE] [--label TEXT]\n"
      "  Sizes take k/m/g suffixes (binary). Random patterns visit every --bs unit of the range once\n"
      "  (seeded permutation) before repeating. --sync: SYNCHRONIZE CACHE at the end, timed apart.\n"
      "  Prints one line: label pattern bs qd ios bytes secs iops mb_s lat_us_{mean,p50,p90,p99,p999,max}\n"
      "  sync_s errors client_cpu_s [error=FIRST_ERROR].\n");
  std::exit(2);
}

Options parseArgs(int argc, char** argv) {
  Options o;
  std::uint64_t bytes = 0;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto next = [&]() -> std::string_view {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--portal") o.portal = std::string(next());
    else if (a == "--target") o.target = std::string(next());
    else if (a == "--lun") o.lun = int(parseSize(next(), "--lun"));
    else if (a == "--initiator") o.initiator = std::string(next());
    else if (a == "--pattern") {
      std::string_view p = next();
      if (p == "read") o.pattern = Pattern::Read;
      else if (p == "write") o.pattern = Pattern::Write;
      else if (p == "randread") o.pattern = Pattern::RandRead;
      else if (p == "randwrite") o.pattern = Pattern::RandWrite;
      else die("--pattern wants read, write, randread or randwrite");
    } else if (a == "--bs") o.bs = parseSize(next(), "--bs");
    else if (a == "--qd") o.qd = int(parseSize(next(), "--qd"));
    else if (a == "--time") o.seconds = parseSeconds(next());
    else if (a == "--ios") o.ios = parseSize(next(), "--ios");
    else if (a == "--bytes") bytes = parseSize(next(), "--bytes");
    else if (a == "--offset") o.offset = parseSize(next(), "--offset");
    else if (a == "--size") o.size = parseSize(next(), "--size");
    else if (a == "--seed") o.seed = parseSize(next(), "--seed");
    else if (a == "--sync") o.sync = true;
    else if (a == "--verify") o.verify = std::string(next());
    else if (a == "--label") o.label = std::string(next());
    else usage();
  }
  if (o.target.empty()) usage();
  if (o.bs == 0 || o.bs > (16u << 20)) die("--bs must be 1 byte .. 16 MiB");
  if (o.qd < 1 || o.qd > 256) die("--qd must be 1..256");
  if (bytes != 0) {
    if (o.ios != 0) die("give --ios or --bytes, not both");
    o.ios = (bytes + o.bs - 1) / o.bs;
  }
  if ((o.seconds > 0) == (o.ios > 0)) die("give exactly one of --time, --ios, --bytes");
  return o;
}

// splitmix64: seeds the permutation and fills the write buffers.
std::uint64_t splitmix(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// A seeded bijection of [0, n): a counter is mixed on k bits (xor-shift and multiply by an odd
// constant are each invertible mod 2^k, so their composition is a permutation of [0, 2^k)), and
// values >= n walk the cycle again until they land in range (cycle walking keeps it a bijection).
class Permutation {
 public:
  Permutation(std::uint64_t n, std::uint64_t seed) : n_(n) {
    while (bits_ < 64 && (std::uint64_t(1) << bits_) < n) ++bits_;
    bits_ = std::max(bits_, 2u);
    mask_ = bits_ == 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << bits_) - 1;
    std::uint64_t s = seed;
    for (auto& m : mul_) m = (splitmix(s) | 1) & mask_;
    add_ = splitmix(s) & mask_;
  }
  std::uint64_t at(std::uint64_t i) const {
    std::uint64_t x = (i + add_) & mask_;
    do x = mix(x); while (x >= n_);
    return x;
  }

 private:
  std::uint64_t mix(std::uint64_t x) const {
    const unsigned h = bits_ / 2;
    for (std::uint64_t m : mul_) {
      x ^= x >> h;
      x = (x * m) & mask_;
    }
    return x ^ (x >> h);
  }
  std::uint64_t n_;
  unsigned bits_ = 0;
  std::uint64_t mask_ = 0;
  std::uint64_t mul_[3]{};
  std::uint64_t add_ = 0;
};

class Load;

struct Slot {
  Load* load = nullptr;
  std::vector<unsigned char> buf;
  std::uint64_t unit = 0;  // which --bs unit of the range is in flight
  std::int64_t startNs = 0;
};

class Load {
 public:
  explicit Load(const Options& o) : o_(o) {}

  int run() {
    connect();
    setUpRange();
    openVerify();
    slots_.resize(std::size_t(o_.qd));
    std::uint64_t s = o_.seed ^ 0x5bd1e995u;
    for (auto& slot : slots_) {
      slot.load = this;
      slot.buf.resize(o_.bs);
      if (isWrite()) {
        for (std::size_t i = 0; i + 8 <= slot.buf.size(); i += 8) {
          std::uint64_t v = splitmix(s);
          std::memcpy(slot.buf.data() + i, &v, 8);
        }
      }
    }
    if (o_.seconds > 0) lat_.reserve(1u << 20);
    else lat_.reserve(std::size_t(std::min<std::uint64_t>(o_.ios, 1u << 26)));

    rusage r0{};
    getrusage(RUSAGE_SELF, &r0);
    startNs_ = nowNs();
    deadlineNs_ = o_.seconds > 0 ? startNs_ + std::int64_t(o_.seconds * 1e9) : INT64_MAX;
    for (auto& slot : slots_) {
      if (!issue(slot)) break;
    }
    while (inFlight_ > 0) {
      pollfd pfd{iscsi_get_fd(iscsi_), short(iscsi_which_events(iscsi_)), 0};
      int n = poll(&pfd, 1, 1000);
      if (n < 0) {
        if (errno == EINTR) continue;
        die(std::string("poll: ") + std::strerror(errno));
      }
      if (iscsi_service(iscsi_, n > 0 ? pfd.revents : 0) < 0) {
        noteError(std::string("connection: ") + iscsi_get_error(iscsi_));
        break;  // the session is gone; whatever is in flight is lost
      }
    }
    endNs_ = nowNs();
    if (o_.sync && errors_ == 0) syncCache();
    rusage r1{};
    getrusage(RUSAGE_SELF, &r1);
    cpuS_ = cpuSeconds(r1) - cpuSeconds(r0);
    report();
    iscsi_logout_sync(iscsi_);
    iscsi_destroy_context(iscsi_);
    return errors_ == 0 && inFlight_ == 0 ? 0 : 1;
  }

  // libiscsi's completion callback (called from iscsi_service, on this thread, once per task).
  static void onDone(iscsi_context*, int status, void* commandData, void* privateData) {
    auto* slot = static_cast<Slot*>(privateData);
    slot->load->complete(*slot, status, static_cast<scsi_task*>(commandData));
  }

 private:
  bool isWrite() const { return o_.pattern == Pattern::Write || o_.pattern == Pattern::RandWrite; }
  bool isRandom() const { return o_.pattern == Pattern::RandRead || o_.pattern == Pattern::RandWrite; }

  void connect() {
    iscsi_ = iscsi_create_context(o_.initiator.c_str());
    if (iscsi_ == nullptr) die("iscsi_create_context failed");
    iscsi_set_session_type(iscsi_, ISCSI_SESSION_NORMAL);
    iscsi_set_header_digest(iscsi_, ISCSI_HEADER_DIGEST_NONE);
    iscsi_set_immediate_data(iscsi_, ISCSI_IMMEDIATE_DATA_YES);
    iscsi_set_initial_r2t(iscsi_, ISCSI_INITIAL_R2T_NO);
    iscsi_set_noautoreconnect(iscsi_, 1);  // a dropped connection is an error here, not a retry
    if (iscsi_set_targetname(iscsi_, o_.target.c_str()) != 0) die("bad --target");
    if (iscsi_full_connect_sync(iscsi_, o_.portal.c_str(), o_.lun) != 0)
      die("login to " + o_.target + " at " + o_.portal + " failed: " + iscsi_get_error(iscsi_));
    scsi_task* t = iscsi_readcapacity16_sync(iscsi_, o_.lun);
    if (t == nullptr || t->status != SCSI_STATUS_GOOD) die(std::string("READ CAPACITY(16) failed: ") + iscsi_get_error(iscsi_));
    auto* rc = static_cast<scsi_readcapacity16*>(scsi_datain_unmarshall(t));
    if (rc == nullptr) die("READ CAPACITY(16): cannot parse the answer");
    blockSize_ = rc->block_length;
    blocks_ = rc->returned_lba + 1;
    scsi_free_scsi_task(t);
    if (blockSize_ == 0) die("READ CAPACITY(16): block length 0");
  }

  void setUpRange() {
    const std::uint64_t capacity = blocks_ * blockSize_;
    if (o_.bs % blockSize_ != 0) die("--bs is not a multiple of the LUN's block size " + std::to_string(blockSize_));
    if (o_.offset % blockSize_ != 0) die("--offset is not a multiple of the LUN's block size");
    if (o_.offset >= capacity) die("--offset beyond the end of the LUN (" + std::to_string(capacity) + " bytes)");
    size_ = o_.size != 0 ? o_.size : capacity - o_.offset;
    if (size_ > capacity - o_.offset) die("--offset + --size beyond the end of the LUN (" + std::to_string(capacity) + " bytes)");
    units_ = size_ / o_.bs;
    if (units_ == 0) die("the range holds no --bs unit");
    if (isRandom()) perm_.emplace_back(units_, o_.seed);
    use16_ = blocks_ > 0xffffffffull;
  }

  void openVerify() {
    if (o_.verify.empty()) return;
    if (isWrite()) die("--verify is for read patterns");
    int fd = open(o_.verify.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("cannot open " + o_.verify + ": " + std::strerror(errno));
    struct stat st{};
    if (fstat(fd, &st) != 0) die("fstat " + o_.verify);
    if (std::uint64_t(st.st_size) < o_.offset + size_) die(o_.verify + " is shorter than the range");
    void* p = mmap(nullptr, std::size_t(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) die("mmap " + o_.verify);
    close(fd);
    ref_ = static_cast<const unsigned char*>(p);
  }

  std::uint64_t nextUnit() {
    std::uint64_t i = issued_++;
    if (isRandom()) return perm_.front().at(i % units_);
    return i % units_;
  }

  // Starts the slot's next IO; false when the run is over (nothing was started).
  bool issue(Slot& slot) {
    if (o_.ios > 0 ? issued_ >= o_.ios : nowNs() >= deadlineNs_) return false;
    if (errors_ > 0) return false;  // stop at the first failure, keep what was measured
    slot.unit = nextUnit();
    const std::uint64_t byteOff = o_.offset + slot.unit * o_.bs;
    const std::uint64_t lba = byteOff / blockSize_;
    const auto len = std::uint32_t(o_.bs);
    const int bsz = int(blockSize_);
    scsi_task* t = nullptr;
    slot.startNs = nowNs();
    if (isWrite()) {
      t = use16_ ? iscsi_write16_task(iscsi_, o_.lun, lba, slot.buf.data(), len, bsz, 0, 0, 0, 0, 0, onDone, &slot)
                 : iscsi_write10_task(iscsi_, o_.lun, std::uint32_t(lba), slot.buf.data(), len, bsz, 0, 0, 0, 0, 0,
                                      onDone, &slot);
    } else {
      t = use16_ ? iscsi_read16_task(iscsi_, o_.lun, lba, len, bsz, 0, 0, 0, 0, 0, onDone, &slot)
                 : iscsi_read10_task(iscsi_, o_.lun, std::uint32_t(lba), len, bsz, 0, 0, 0, 0, 0, onDone, &slot);
      if (t != nullptr && scsi_task_add_data_in_buffer(t, int(len), slot.buf.data()) != 0)
        die("scsi_task_add_data_in_buffer failed");
    }
    if (t == nullptr) {
      noteError(std::string("cannot queue a command: ") + iscsi_get_error(iscsi_));
      return false;
    }
    ++inFlight_;
    return true;
  }

  void complete(Slot& slot, int status, scsi_task* t) {
    --inFlight_;
    const std::int64_t now = nowNs();
    if (status != SCSI_STATUS_GOOD) {
      std::string what = "status " + std::to_string(status);
      if (status == SCSI_STATUS_CHECK_CONDITION && t != nullptr) {
        char asc[16];
        std::snprintf(asc, sizeof asc, "%04x", unsigned(t->sense.ascq));
        what += std::string(" sense ") + scsi_sense_key_str(t->sense.key) + " asc/ascq " + asc;
      }
      noteError(what + " at unit " + std::to_string(slot.unit) + ": " + iscsi_get_error(iscsi_));
    } else {
      ++done_;
      lat_.push_back(std::uint32_t(std::min<std::int64_t>((now - slot.startNs + 500) / 1000, UINT32_MAX)));
      if (ref_ != nullptr && std::memcmp(ref_ + o_.offset + slot.unit * o_.bs, slot.buf.data(), o_.bs) != 0)
        noteError("data mismatch at byte " + std::to_string(o_.offset + slot.unit * o_.bs));
    }
    if (t != nullptr) scsi_free_scsi_task(t);
    issue(slot);
  }

  void syncCache() {
    const std::int64_t t0 = nowNs();
    scsi_task* t = iscsi_synchronizecache10_sync(iscsi_, o_.lun, 0, 0, 0, 0);
    syncS_ = double(nowNs() - t0) / 1e9;
    if (t == nullptr || t->status != SCSI_STATUS_GOOD) noteError(std::string("SYNCHRONIZE CACHE failed: ") + iscsi_get_error(iscsi_));
    if (t != nullptr) scsi_free_scsi_task(t);
  }

  void noteError(std::string what) {
    if (errors_++ == 0) firstError_ = std::move(what);
  }

  static double cpuSeconds(const rusage& r) {
    return double(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + double(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
  }

  void report() {
    std::vector<std::uint32_t> v = lat_;
    std::sort(v.begin(), v.end());
    auto pct = [&](double p) -> std::uint32_t {
      if (v.empty()) return 0;
      std::size_t i = std::size_t(p / 100.0 * double(v.size()));
      return v[std::min(i, v.size() - 1)];
    };
    double mean = 0;
    for (auto x : v) mean += x;
    if (!v.empty()) mean /= double(v.size());
    const double secs = double(endNs_ - startNs_) / 1e9;
    const double bytes = double(done_) * double(o_.bs);
    static const char* names[] = {"read", "write", "randread", "randwrite"};
    std::string err;
    for (char c : firstError_) err += (c == ' ' || c == '\t' || c == '\n') ? '_' : c;
    std::printf(
        "label=%s pattern=%s bs=%llu qd=%d ios=%llu bytes=%.0f secs=%.6f iops=%.1f mb_s=%.2f lat_us_mean=%.1f "
        "lat_us_p50=%u lat_us_p90=%u lat_us_p99=%u lat_us_p999=%u lat_us_max=%u sync_s=%.6f errors=%llu "
        "client_cpu_s=%.3f lun_blocks=%llu lun_block_size=%llu%s%s\n",
        o_.label.empty() ? "-" : o_.label.c_str(), names[int(o_.pattern)], (unsigned long long)o_.bs, o_.qd,
        (unsigned long long)done_, bytes, secs, secs > 0 ? double(done_) / secs : 0.0, secs > 0 ? bytes / secs / 1e6 : 0.0,
        mean, pct(50), pct(90), pct(99), pct(99.9), v.empty() ? 0u : v.back(), syncS_, (unsigned long long)errors_,
        cpuS_, (unsigned long long)blocks_, (unsigned long long)blockSize_, err.empty() ? "" : " error=", err.c_str());
    std::fflush(stdout);
  }

  const Options& o_;
  iscsi_context* iscsi_ = nullptr;
  std::uint64_t blockSize_ = 0, blocks_ = 0;
  std::uint64_t size_ = 0, units_ = 0;
  bool use16_ = false;
  std::vector<Permutation> perm_;  // one when the pattern is random
  const unsigned char* ref_ = nullptr;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> lat_;  // microseconds, one per completed IO
  std::uint64_t issued_ = 0, done_ = 0, errors_ = 0;
  int inFlight_ = 0;
  std::int64_t startNs_ = 0, endNs_ = 0, deadlineNs_ = 0;
  double syncS_ = 0, cpuS_ = 0;
  std::string firstError_;
};

}  // namespace

int main(int argc, char** argv) {
  Options o = parseArgs(argc, argv);
  Load load(o);
  return load.run();
}
