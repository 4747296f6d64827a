// tftp_load: a TFTP read-load generator for bench/tftp (standalone, no project dependencies).
//
// Design: one thread, one epoll instance, one non-blocking UDP socket per transfer (each transfer
// is its own TID, as a real client would be). All transfers start together; one epoll_wait batch
// then drives every socket that has data, and each ready socket is drained with one recvmmsg into a
// shared, reused receive area, so the client costs about one syscall per received batch plus one
// per ACK. Timeouts are checked by a coarse scan (every 20 ms) rather than per-transfer timers.
// --spin polls instead of sleeping: a lone lock-step transfer is latency-bound, and a sleeping
// client mostly measures the cost of cross-CPU wake-ups.
//
// Protocol (client side of a read):
//   RRQ "file" octet [blksize N] [windowsize N] [tsize 0]   tsize is asked whenever options are.
//   OACK -> check every value (RFC 2347/2348/2349/7440) and ACK block 0;
//   DATA 1 without OACK -> the server ignored the options: blksize 512, lock-step (RFC 2347 s.3).
//   The server's TID (port) is learnt from its first reply; the socket is then connect()ed to it
//   and any packet from another address/port is ignored (RFC 1350 s.4 says answer ERROR 5; a
//   load generator just drops it).
//   Lock-step (windowsize 1): ACK every block. Windowed (RFC 7440 s.4): ACK the last in-order block
//   when windowsize blocks have arrived in order, at the last block, or (once per gap) when an
//   out-of-order block shows a loss; the server then resends from the block after that ACK.
//   Block numbers are 16-bit and roll over past 65535 to 0; the client keeps a 64-bit counter.
//   On a timeout (no progress for --timeout-ms) the last ACK (or the RRQ) is sent again; after
//   --retries consecutive timeouts the transfer fails.
//   Data is checked against --verify FILE (mmap + memcmp of every block) or just counted against
//   --size. The final short block ends the transfer: its ACK is sent and the socket closed.
//
// Output: one JSON line on stdout per run (see printReport()).
//
// Build: g++ -O2 -std=c++20 -o tftp_load tftp_load.cpp

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
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

namespace {

constexpr uint16_t kOpRrq = 1, kOpData = 3, kOpAck = 4, kOpError = 5, kOpOack = 6;
constexpr size_t kSlotSize = 65536;  // > largest UDP payload over IPv4 (65507)
constexpr int kBatch = 64;           // datagrams per recvmmsg (one full RFC 7440 window of 64)

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 69;
  std::string file;
  int64_t size = -1;       // expected size; -1 = unknown (take whatever arrives)
  std::string verify;      // local copy to compare every block with
  int concurrency = 1;
  int blksize = 0;         // 0 = don't ask (RFC 1350 512-byte blocks)
  int windowsize = 0;      // 0 = don't ask (lock-step)
  int timeoutMs = 1000;
  int retries = 5;
  std::string label;
  bool spin = false;       // poll without sleeping (epoll_wait timeout 0)
  int rcvbuf = 0;          // 0 = enough for a full window; smaller values provoke losses (testing)
};

int64_t nowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "tftp_load: %s\n", msg.c_str());
  std::exit(2);
}

int64_t parseInt(std::string_view s, const char* what) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) die(std::string("bad number for ") + what + ": " + std::string(s));
  return v;
}

void usage() {
  std::fprintf(stderr,
      "usage: tftp_load --file NAME [--server HOST:PORT] [--size BYTES | --verify LOCALFILE]\n"
      "                 [--concurrency N] [--blksize N|0] [--windowsize N|0]\n"
      "                 [--timeout-ms MS] [--retries N] [--label TEXT] [--spin] [--rcvbuf BYTES]\n"
      "  blksize/windowsize 0 = don't ask; tsize=0 is asked whenever any option is.\n"
      "  --spin: busy-poll (epoll_wait timeout 0) instead of sleeping, as a PXE ROM polls its NIC.\n"
      "  Prints one JSON line: transfers ok/failed, bytes, wall seconds, aggregate MB/s (1e6 B/s),\n"
      "  slowest/median transfer seconds, negotiated options, timeouts, client CPU seconds.\n");
  std::exit(2);
}

Options parseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto next = [&]() -> std::string_view {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--server") {
      std::string_view v = next();
      size_t colon = v.rfind(':');
      if (colon == std::string_view::npos) die("--server wants HOST:PORT");
      o.host = std::string(v.substr(0, colon));
      int64_t p = parseInt(v.substr(colon + 1), "port");
      if (p < 1 || p > 65535) die("port out of range");
      o.port = uint16_t(p);
    } else if (a == "--file") o.file = std::string(next());
    else if (a == "--size") o.size = parseInt(next(), "--size");
    else if (a == "--verify") o.verify = std::string(next());
    else if (a == "--concurrency") o.concurrency = int(parseInt(next(), "--concurrency"));
    else if (a == "--blksize") o.blksize = int(parseInt(next(), "--blksize"));
    else if (a == "--windowsize") o.windowsize = int(parseInt(next(), "--windowsize"));
    else if (a == "--timeout-ms") o.timeoutMs = int(parseInt(next(), "--timeout-ms"));
    else if (a == "--retries") o.retries = int(parseInt(next(), "--retries"));
    else if (a == "--label") o.label = std::string(next());
    else if (a == "--spin") o.spin = true;
    else if (a == "--rcvbuf") o.rcvbuf = int(parseInt(next(), "--rcvbuf"));
    else usage();
  }
  if (o.file.empty()) usage();
  if (o.concurrency < 1 || o.concurrency > 60000) die("--concurrency out of range");
  if (o.blksize != 0 && (o.blksize < 8 || o.blksize > 65464)) die("--blksize must be 0 or 8..65464 (RFC 2348)");
  if (o.windowsize < 0 || o.windowsize > 65535) die("--windowsize must be 0..65535 (RFC 7440)");
  if (o.timeoutMs < 1 || o.retries < 0) die("bad --timeout-ms/--retries");
  return o;
}

// The reference data: either an mmap()ed local copy (every block compared) or just a size.
struct Reference {
  const uint8_t* data = nullptr;
  int64_t size = -1;
};

Reference loadReference(const Options& o) {
  Reference r;
  r.size = o.size;
  if (o.verify.empty()) return r;
  int fd = open(o.verify.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("cannot open " + o.verify + ": " + std::strerror(errno));
  struct stat st{};
  if (fstat(fd, &st) != 0) die("fstat " + o.verify);
  if (o.size >= 0 && o.size != st.st_size) die("--size differs from the size of --verify file");
  r.size = st.st_size;
  if (st.st_size > 0) {
    void* p = mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) die("mmap " + o.verify);
    r.data = static_cast<const uint8_t*>(p);
  }
  close(fd);
  return r;
}

enum class State : uint8_t { WaitReply, Data, Done, Failed };

struct Transfer {
  int fd = -1;
  State state = State::WaitReply;
  bool connected = false;
  bool oack = false;
  bool blksizeAcked = false, windowsizeAcked = false, tsizeAcked = false;
  bool gapAcked = false;        // a re-ACK for the current gap/duplicate was already sent
  uint16_t serverPort = 0;      // the server's TID, once known
  uint32_t blksize = 512;
  uint32_t windowsize = 1;
  uint32_t inWindow = 0;        // in-order blocks since the last ACK
  uint64_t expected = 1;        // next block wanted (64-bit; the wire carries the low 16 bits)
  uint64_t bytes = 0;
  int64_t tsize = -1;
  int64_t startNs = 0, endNs = 0, deadlineNs = 0;
  int timeouts = 0;             // consecutive, reset on progress
  uint32_t totalTimeouts = 0;
  uint32_t wrongTid = 0;
  std::string error;
};

struct Totals {
  uint64_t wrongTid = 0, outOfOrder = 0, gapAcks = 0, timeouts = 0;
};

class Load {
 public:
  Load(const Options& o, const Reference& ref) : o_(o), ref_(ref) {}

  int run() {
    server_.sin_family = AF_INET;
    server_.sin_port = htons(o_.port);
    if (inet_pton(AF_INET, o_.host.c_str(), &server_.sin_addr) != 1) die("--server host must be an IPv4 address");
    buildRrq();
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) die("epoll_create1");
    slots_.resize(size_t(kBatch) * kSlotSize);
    xfers_.resize(size_t(o_.concurrency));
    for (size_t i = 0; i < xfers_.size(); ++i) openSocket(i);

    startNs_ = nowNs();
    for (auto& t : xfers_) {
      t.startNs = nowNs();
      t.deadlineNs = t.startNs + timeoutNs();
      sendRrq(t);
    }
    active_ = xfers_.size();
    std::vector<epoll_event> events(std::min<size_t>(xfers_.size(), 1024));
    int64_t nextScan = startNs_ + kScanNs;
    while (active_ > 0) {
      int n = epoll_wait(ep_, events.data(), int(events.size()), o_.spin ? 0 : 20);
      if (n < 0) {
        if (errno == EINTR) continue;
        die("epoll_wait");
      }
      for (int k = 0; k < n; ++k) drain(events[size_t(k)].data.u32);
      int64_t now = nowNs();
      if (now >= nextScan) {
        scanTimeouts(now);
        nextScan = now + kScanNs;
      }
    }
    endNs_ = nowNs();
    printReport();
    close(ep_);
    for (auto& t : xfers_) if (t.state == State::Failed) return 1;
    return 0;
  }

 private:
  static constexpr int64_t kScanNs = 20'000'000;

  int64_t timeoutNs() const { return int64_t(o_.timeoutMs) * 1'000'000; }
  bool askOptions() const { return o_.blksize > 0 || o_.windowsize > 0; }

  void buildRrq() {
    auto put = [&](std::string_view s) {
      rrq_.insert(rrq_.end(), s.begin(), s.end());
      rrq_.push_back(0);
    };
    rrq_ = {0, uint8_t(kOpRrq)};
    put(o_.file);
    put("octet");
    if (o_.blksize > 0) { put("blksize"); put(std::to_string(o_.blksize)); }
    if (o_.windowsize > 0) { put("windowsize"); put(std::to_string(o_.windowsize)); }
    if (askOptions()) { put("tsize"); put("0"); }
    if (rrq_.size() > 512) die("RRQ longer than 512 bytes");
  }

  void openSocket(size_t i) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die(std::string("socket: ") + std::strerror(errno) + " (raise ulimit -n?)");
    // Enough receive buffer for one full window of the largest block we may be sent.
    int ws = std::max(1, o_.windowsize);
    int bs = o_.blksize > 0 ? o_.blksize : 512;
    int want = o_.rcvbuf > 0 ? o_.rcvbuf : std::clamp(ws * (bs + 1024) * 2, 256 * 1024, 16 * 1024 * 1024);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr = server_.sin_addr.s_addr == htonl(INADDR_LOOPBACK) ? server_.sin_addr : in_addr{htonl(INADDR_ANY)};
    if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) die(std::string("bind: ") + std::strerror(errno));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = uint32_t(i);
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
    xfers_[i].fd = fd;
  }

  void sendRrq(Transfer& t) {
    sendto(t.fd, rrq_.data(), rrq_.size(), 0, reinterpret_cast<const sockaddr*>(&server_), sizeof server_);
  }

  void sendAck(Transfer& t, uint64_t block) {
    uint8_t pkt[4] = {0, uint8_t(kOpAck), uint8_t(block >> 8), uint8_t(block)};
    send(t.fd, pkt, sizeof pkt, 0);  // a lost ACK is recovered by the timeout
  }

  void finish(Transfer& t, State s, std::string err = {}) {
    t.state = s;
    t.endNs = nowNs();
    t.error = std::move(err);
    close(t.fd);  // also removes it from the epoll set
    t.fd = -1;
    --active_;
  }

  void fail(Transfer& t, std::string err) { finish(t, State::Failed, std::move(err)); }

  void progress(Transfer& t) {
    t.timeouts = 0;
    t.gapAcked = false;
    t.deadlineNs = nowNs() + timeoutNs();
  }

  void drain(uint32_t idx) {
    Transfer& t = xfers_[idx];
    if (t.fd < 0) return;
    mmsghdr msgs[kBatch];
    iovec iov[kBatch];
    sockaddr_in from[kBatch];
    for (int k = 0; k < kBatch; ++k) {
      iov[k] = {slots_.data() + size_t(k) * kSlotSize, kSlotSize};
      msgs[k].msg_hdr = {};
      msgs[k].msg_hdr.msg_name = &from[k];
      msgs[k].msg_hdr.msg_namelen = sizeof from[k];
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(t.fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      // ECONNREFUSED etc.: the server's transfer port went away (ICMP on the connected socket).
      fail(t, std::string("recv: ") + std::strerror(errno));
      return;
    }
    for (int k = 0; k < n && (t.state == State::WaitReply || t.state == State::Data); ++k) {
      const sockaddr_in& src = from[k];
      if (msgs[k].msg_hdr.msg_namelen < sizeof(sockaddr_in) || src.sin_addr.s_addr != server_.sin_addr.s_addr ||
          (t.connected && src.sin_port != t.serverPort)) {
        ++t.wrongTid;
        ++totals_.wrongTid;
        continue;
      }
      if (!t.connected) {
        // The first reply fixes the server's TID (RFC 1350 s.4); connect() so later sends are cheap
        // and the kernel drops strays from other ports.
        t.serverPort = src.sin_port;
        if (connect(t.fd, reinterpret_cast<const sockaddr*>(&src), sizeof src) != 0) {
          fail(t, std::string("connect: ") + std::strerror(errno));
          return;
        }
        t.connected = true;
      }
      if (msgs[k].msg_hdr.msg_flags & MSG_TRUNC) {
        fail(t, "datagram larger than 64 KiB");
        return;
      }
      onPacket(t, static_cast<const uint8_t*>(iov[k].iov_base), msgs[k].msg_len);
    }
  }

  void onPacket(Transfer& t, const uint8_t* p, size_t len) {
    if (len < 4) {
      fail(t, "runt packet");
      return;
    }
    uint16_t op = uint16_t(p[0] << 8 | p[1]);
    switch (op) {
      case kOpData: onData(t, uint16_t(p[2] << 8 | p[3]), p + 4, len - 4); break;
      case kOpOack: onOack(t, p + 2, len - 2); break;
      case kOpError: {
        uint16_t code = uint16_t(p[2] << 8 | p[3]);
        std::string msg(reinterpret_cast<const char*>(p + 4), strnlen(reinterpret_cast<const char*>(p + 4), len - 4));
        fail(t, "server ERROR " + std::to_string(code) + ": " + msg);
        break;
      }
      default: fail(t, "unexpected opcode " + std::to_string(op));
    }
  }

  static bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return (x | 0x20) == (y | 0x20); });
  }

  // RFC 2347: OACK = opc 6, then "name\0value\0" pairs, only for options the client asked for.
  void onOack(Transfer& t, const uint8_t* p, size_t len) {
    if (t.state == State::Data) {
      // Our ACK 0 was lost and the server repeated the OACK: ACK it again.
      if (t.oack && t.expected == 1) sendAck(t, 0);
      return;
    }
    if (!askOptions()) {
      fail(t, "OACK although no option was asked");
      return;
    }
    std::string_view rest(reinterpret_cast<const char*>(p), len);
    while (!rest.empty()) {
      size_t z1 = rest.find('\0');
      if (z1 == std::string_view::npos) break;  // tolerate a missing final NUL on an empty tail
      std::string_view name = rest.substr(0, z1);
      rest.remove_prefix(z1 + 1);
      size_t z2 = rest.find('\0');
      if (z2 == std::string_view::npos) {
        fail(t, "OACK value not NUL-terminated");
        return;
      }
      std::string_view value = rest.substr(0, z2);
      rest.remove_prefix(z2 + 1);
      int64_t v = -1;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      bool numeric = ec == std::errc() && ptr == value.data() + value.size();
      if (iequals(name, "blksize") && o_.blksize > 0) {
        if (!numeric || v < 8 || v > o_.blksize) return fail(t, "OACK blksize " + std::string(value) + " not in 8.." + std::to_string(o_.blksize));
        t.blksize = uint32_t(v);
        t.blksizeAcked = true;
      } else if (iequals(name, "windowsize") && o_.windowsize > 0) {
        if (!numeric || v < 1 || v > o_.windowsize) return fail(t, "OACK windowsize " + std::string(value) + " not in 1.." + std::to_string(o_.windowsize));
        t.windowsize = uint32_t(v);
        t.windowsizeAcked = true;
      } else if (iequals(name, "tsize")) {
        if (!numeric || v < 0) return fail(t, "OACK tsize " + std::string(value) + " invalid");
        if (ref_.size >= 0 && v != ref_.size) return fail(t, "OACK tsize " + std::string(value) + " != expected size " + std::to_string(ref_.size));
        t.tsize = v;
        t.tsizeAcked = true;
      } else {
        return fail(t, "OACK has an option not asked for: " + std::string(name));
      }
    }
    t.oack = true;
    t.state = State::Data;
    progress(t);
    sendAck(t, 0);
  }

  void onData(Transfer& t, uint16_t block, const uint8_t* data, size_t len) {
    if (t.state == State::WaitReply) {
      // No OACK: the server ignored our options (RFC 2347 s.3), or none were asked.
      if (block != 1) return fail(t, "first DATA is block " + std::to_string(block));
      t.state = State::Data;
    }
    if (block != uint16_t(t.expected)) {
      // A duplicate (our ACK was lost) or a gap (a block was lost): re-ACK the last in-order block
      // once; the server resends from there. Further strays wait for progress or the timeout.
      ++totals_.outOfOrder;
      if (!t.gapAcked) {
        sendAck(t, t.expected - 1);
        t.gapAcked = true;
        t.inWindow = 0;
        ++totals_.gapAcks;
      }
      return;
    }
    if (len > t.blksize) return fail(t, "DATA " + std::to_string(len) + " bytes > blksize " + std::to_string(t.blksize));
    uint64_t offset = t.bytes;
    if (ref_.size >= 0 && (offset > uint64_t(ref_.size) || len > uint64_t(ref_.size) - offset))
      return fail(t, "more data than the expected " + std::to_string(ref_.size) + " bytes");
    if (ref_.data != nullptr && std::memcmp(ref_.data + offset, data, len) != 0)
      return fail(t, "data mismatch in block " + std::to_string(t.expected));
    t.bytes += len;
    ++t.expected;
    progress(t);
    if (len < t.blksize) {
      // The last block: ACK it and close (RFC 1350 s.6; no dally, as most boot clients).
      sendAck(t, t.expected - 1);
      if (ref_.size >= 0 && t.bytes != uint64_t(ref_.size))
        return fail(t, "short file: " + std::to_string(t.bytes) + " of " + std::to_string(ref_.size) + " bytes");
      if (t.tsize >= 0 && t.bytes != uint64_t(t.tsize))
        return fail(t, "size " + std::to_string(t.bytes) + " != tsize " + std::to_string(t.tsize));
      finish(t, State::Done);
      return;
    }
    if (++t.inWindow >= t.windowsize) {
      sendAck(t, t.expected - 1);
      t.inWindow = 0;
    }
  }

  void scanTimeouts(int64_t now) {
    for (auto& t : xfers_) {
      if ((t.state != State::WaitReply && t.state != State::Data) || now < t.deadlineNs) continue;
      ++t.totalTimeouts;
      ++totals_.timeouts;
      if (++t.timeouts > o_.retries) {
        fail(t, t.state == State::WaitReply ? "no reply to RRQ" : "timeout at block " + std::to_string(t.expected));
        continue;
      }
      t.deadlineNs = now + timeoutNs();
      t.inWindow = 0;
      t.gapAcked = false;
      if (t.state == State::WaitReply) sendRrq(t);
      else sendAck(t, t.expected - 1);  // ACK 0 after an OACK, else the last in-order block
    }
  }

  static std::string jsonEscape(std::string_view s) {
    std::string out;
    for (char c : s) {
      if (c == '"' || c == '\\') { out += '\\'; out += c; }
      else if (uint8_t(c) < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); out += b; }
      else out += c;
    }
    return out;
  }

  void printReport() {
    std::vector<double> secs;
    uint64_t bytes = 0, blocks = 0;
    size_t ok = 0, failed = 0;
    std::vector<std::string> errors;
    // Negotiated values over the successful transfers: the common value, or -1 when they differ.
    int64_t bs = 0, ws = 0;
    int oack = -2, bsAcked = -2, wsAcked = -2, tsAcked = -2;  // -2 = none yet, -1 = they differ
    auto merge = [](auto& acc, auto v, auto init) { acc = acc == init ? v : (acc == v ? acc : -1); };
    for (const auto& t : xfers_) {
      if (t.state == State::Done) {
        ++ok;
        bytes += t.bytes;
        blocks += t.expected - 1;
        secs.push_back(double(t.endNs - t.startNs) / 1e9);
        merge(bs, int64_t(t.blksize), int64_t(0));
        merge(ws, int64_t(t.windowsize), int64_t(0));
        merge(oack, int(t.oack), -2);
        merge(bsAcked, int(t.blksizeAcked), -2);
        merge(wsAcked, int(t.windowsizeAcked), -2);
        merge(tsAcked, int(t.tsizeAcked), -2);
      } else {
        ++failed;
        if (errors.size() < 5 && std::find(errors.begin(), errors.end(), t.error) == errors.end()) errors.push_back(t.error);
      }
    }
    std::sort(secs.begin(), secs.end());
    double wall = double(endNs_ - startNs_) / 1e9;
    double slowest = secs.empty() ? 0 : secs.back();
    double median = secs.empty() ? 0 : (secs.size() % 2 ? secs[secs.size() / 2]
                                                          : (secs[secs.size() / 2 - 1] + secs[secs.size() / 2]) / 2);
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    double cpu = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    auto tri = [](int v) { return v < 0 ? "null" : (v ? "true" : "false"); };
    std::string errs;
    for (const auto& e : errors) errs += (errs.empty() ? "\"" : ",\"") + jsonEscape(e) + "\"";
    std::printf(
        "{\"label\":\"%s\",\"server\":\"%s:%u\",\"file\":\"%s\",\"transfers\":%zu,\"ok\":%zu,\"failed\":%zu,"
        "\"bytes\":%llu,\"blocks\":%llu,\"wall_s\":%.6f,\"mb_s\":%.3f,\"slowest_s\":%.6f,\"median_s\":%.6f,"
        "\"blksize_req\":%d,\"windowsize_req\":%d,\"oack\":%s,\"blksize\":%lld,\"blksize_acked\":%s,"
        "\"windowsize\":%lld,\"windowsize_acked\":%s,\"tsize_acked\":%s,"
        "\"timeouts\":%llu,\"out_of_order\":%llu,\"gap_acks\":%llu,\"wrong_tid\":%llu,"
        "\"client_cpu_s\":%.3f,\"errors\":[%s]}\n",
        jsonEscape(o_.label).c_str(), o_.host.c_str(), unsigned(o_.port), jsonEscape(o_.file).c_str(), xfers_.size(), ok,
        failed, (unsigned long long)bytes, (unsigned long long)blocks, wall, wall > 0 ? double(bytes) / wall / 1e6 : 0.0,
        slowest, median, o_.blksize, o_.windowsize, tri(oack), (long long)bs, tri(bsAcked), (long long)ws, tri(wsAcked),
        tri(tsAcked), (unsigned long long)totals_.timeouts, (unsigned long long)totals_.outOfOrder,
        (unsigned long long)totals_.gapAcks, (unsigned long long)totals_.wrongTid, cpu, errs.c_str());
    std::fflush(stdout);
  }

  const Options& o_;
  const Reference& ref_;
  sockaddr_in server_{};
  std::vector<uint8_t> rrq_;
  std::vector<uint8_t> slots_;  // kBatch receive slots, reused for every recvmmsg
  std::vector<Transfer> xfers_;
  size_t active_ = 0;
  int ep_ = -1;
  int64_t startNs_ = 0, endNs_ = 0;
  Totals totals_;
};

}  // namespace

int main(int argc, char** argv) {
  Options o = parseArgs(argc, argv);
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rlim_t(o.concurrency) + 64) {
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, rlim_t(o.concurrency) + 64);
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  Reference ref = loadReference(o);
  Load load(o, ref);
  return load.run();
}
