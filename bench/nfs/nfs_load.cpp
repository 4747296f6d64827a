// nfs_load: an NFSv3 load generator for bench/nfs (standalone, no project dependencies).
//
// Design: a tiny ONC RPC client over TCP (RFC 5531: record marking, AUTH_SYS uid 0, no verifier)
// that speaks just the calls the rows need: MOUNT v3 MNT (RFC 1813 s.5.2.1) to get the export's
// root handle, and NFSv3 GETATTR, LOOKUP, READ, READDIRPLUS and FSINFO (RFC 1813 s.3.3). One
// connection carries up to --inflight calls at once (pipelined, replies paired by xid, in whatever
// order they come); the storm gives each simulated client its own thread and connection, each
// making one call at a time, as one booting client's kernel would for one process.
//
// Modes (one JSON line on stdout each):
//   probe    MNT + FSINFO; exits 0 when the server answers (run.sh waits for a new server with it)
//   list     READDIRPLUS the tree under --path, depth first, one call at a time, whole passes over
//            and over until --seconds have passed: entries/s
//   getattr  GETATTR of --path's handle for --seconds with --inflight calls in flight: ops/s
//   lookup   LOOKUP of the names in directory --path (its first 512 entries, cycled): ops/s
//   read     READ every file of --files (one path a line) from start to end in --chunk bytes
//            (default 1 MiB, less if FSINFO's rtmax is smaller), --inflight at once, over and over
//            until --seconds have passed: MB/s (10^6 bytes)
//   storm    --clients threads; each opens its own connections (from its own address, 127.0.X.Y), MNTs, then for every path of
//            --files LOOKUPs each component (remembering directories it resolved, like a kernel's
//            dentry cache), GETATTRs the file and READs it whole, one call at a time: seconds
//            until the last client is done. Every client's data digest (FNV-1a) must agree.
//
// Build: g++ -O2 -std=c++20 -o nfs_load nfs_load.cpp -pthread

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

constexpr uint32_t kProgNfs = 100003, kProgMount = 100005;
constexpr uint32_t kNfsGetattr = 1, kNfsLookup = 3, kNfsRead = 6, kNfsReaddirplus = 17, kNfsFsinfo = 19;
constexpr uint32_t kMountMnt = 1;
constexpr uint32_t kNf3Dir = 2, kNf3Reg = 1;

struct Options {
  std::string mode;
  std::string host = "127.0.0.1";
  uint16_t nfsPort = 2049, mountPort = 0;  // 0 = the NFS port
  std::string exportPath;
  std::string path = "/";
  std::string files;
  int inflight = 1;
  int clients = 32;
  double seconds = 5;
  uint32_t chunk = 1u << 20;
};

double nowS() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

double cpuS() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "nfs_load: %s\n", msg.c_str());
  std::exit(2);
}

// ---- XDR (RFC 4506): big-endian 4-byte units, opaques padded to 4 --------------------------------
struct XdrOut {
  std::vector<uint8_t> b;
  void u32(uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
  }
  void u64(uint64_t v) { u32(uint32_t(v >> 32)); u32(uint32_t(v)); }
  void opaque(const void* p, size_t n) {
    u32(uint32_t(n));
    fixed(p, n);
  }
  void fixed(const void* p, size_t n) {
    auto* c = static_cast<const uint8_t*>(p);
    b.insert(b.end(), c, c + n);
    while (b.size() % 4) b.push_back(0);
  }
  void str(const std::string& s) { opaque(s.data(), s.size()); }
};

struct XdrError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct XdrIn {  // bounds-checked reader over one reply
  const uint8_t* p;
  size_t n, off = 0;
  void need(size_t k) {
    if (k > n - off) throw XdrError("short reply");
  }
  uint32_t u32() {
    need(4);
    uint32_t v = uint32_t(p[off]) << 24 | uint32_t(p[off + 1]) << 16 | uint32_t(p[off + 2]) << 8 | p[off + 3];
    off += 4;
    return v;
  }
  uint64_t u64() { uint64_t h = u32(); return h << 32 | u32(); }
  void skip(size_t k) {
    k = (k + 3) & ~size_t(3);
    need(k);
    off += k;
  }
  std::string opaque(size_t max) {
    uint32_t len = u32();
    if (len > max) throw XdrError("opaque too long");
    need(len);
    std::string s(reinterpret_cast<const char*>(p + off), len);
    skip(len);
    return s;
  }
};

struct Attr {
  uint32_t type = 0;
  uint64_t size = 0;
};

Attr fattr3(XdrIn& x) {  // RFC 1813 s.2.6: 84 bytes
  Attr a;
  a.type = x.u32();
  x.skip(16);  // mode nlink uid gid
  a.size = x.u64();
  x.skip(8 + 8 + 8 + 8 + 24);  // used rdev fsid fileid atime mtime ctime
  return a;
}

bool postOpAttr(XdrIn& x, Attr* a = nullptr) {
  if (!x.u32()) return false;
  Attr t = fattr3(x);
  if (a) *a = t;
  return true;
}

// ---- one TCP connection with record marking -------------------------------------------------------
// The storm's clients each connect from their own loopback address (127.0.X.Y), as booting machines
// each have their own IP: servers may limit connections per client address.
thread_local std::string tSource;

class Conn {
 public:
  Conn(const std::string& host, uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket");
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) throw std::runtime_error("bad address " + host);
    if (!tSource.empty()) {
      sockaddr_in src{};
      src.sin_family = AF_INET;
      if (inet_pton(AF_INET, tSource.c_str(), &src.sin_addr) != 1 ||
          bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0)
        throw std::runtime_error("bind " + tSource + ": " + std::strerror(errno));
    }
    if (connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      throw std::runtime_error("connect " + host + ":" + std::to_string(port) + ": " + std::strerror(errno));
    static std::atomic<uint32_t> seed{uint32_t(getpid()) << 16};
    xid_ = seed.fetch_add(1u << 12);
  }
  ~Conn() { if (fd_ >= 0) close(fd_); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Sends one call (RFC 5531 s.9, AUTH_SYS s.A of RFC 5531 / RFC 1057); returns its xid.
  uint32_t send(uint32_t prog, uint32_t vers, uint32_t proc, const XdrOut& args) {
    XdrOut m;
    m.u32(0);  // record mark, filled below
    uint32_t xid = ++xid_;
    m.u32(xid); m.u32(0); m.u32(2); m.u32(prog); m.u32(vers); m.u32(proc);
    XdrOut cred;
    cred.u32(0); cred.str("bench"); cred.u32(0); cred.u32(0); cred.u32(0);  // stamp name uid gid gids<>
    m.u32(1); m.opaque(cred.b.data(), cred.b.size());
    m.u32(0); m.u32(0);  // AUTH_NONE verifier
    m.b.insert(m.b.end(), args.b.begin(), args.b.end());
    uint32_t len = uint32_t(m.b.size() - 4) | 0x80000000u;
    for (int i = 0; i < 4; ++i) m.b[size_t(i)] = uint8_t(len >> (24 - 8 * i));
    writeAll(m.b.data(), m.b.size());
    return xid;
  }

  // Reads one whole reply record; checks it was accepted with SUCCESS; returns its xid, and leaves
  // the results in body() at offset bodyOff().
  uint32_t recv() {
    buf_.clear();
    for (bool last = false; !last;) {
      uint8_t h[4];
      readAll(h, 4);
      uint32_t mark = uint32_t(h[0]) << 24 | uint32_t(h[1]) << 16 | uint32_t(h[2]) << 8 | h[3];
      last = mark & 0x80000000u;
      size_t len = mark & 0x7fffffffu;
      if (len > (64u << 20)) throw std::runtime_error("record too large");
      size_t at = buf_.size();
      buf_.resize(at + len);
      readAll(buf_.data() + at, len);
    }
    XdrIn x{buf_.data(), buf_.size()};
    uint32_t xid = x.u32();
    if (x.u32() != 1) throw std::runtime_error("not a reply");
    if (x.u32() != 0) throw std::runtime_error("call denied (MSG_DENIED)");
    x.u32();
    x.skip(x.u32());  // verifier
    uint32_t st = x.u32();
    if (st != 0) throw std::runtime_error("call not accepted, accept_stat " + std::to_string(st));
    off_ = x.off;
    return xid;
  }
  XdrIn body() const { return XdrIn{buf_.data(), buf_.size(), off_}; }

  // One call, one reply (no other call outstanding).
  XdrIn call(uint32_t prog, uint32_t vers, uint32_t proc, const XdrOut& args) {
    uint32_t xid = send(prog, vers, proc, args);
    if (recv() != xid) throw std::runtime_error("reply for an unknown xid");
    return body();
  }

 private:
  void writeAll(const uint8_t* p, size_t n) {
    while (n) {
      ssize_t k = ::send(fd_, p, n, MSG_NOSIGNAL);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) throw std::runtime_error(std::string("send: ") + std::strerror(errno));
      p += k; n -= size_t(k);
    }
  }
  void readAll(uint8_t* p, size_t n) {
    while (n) {
      ssize_t k = ::recv(fd_, p, n, 0);
      if (k < 0 && errno == EINTR) continue;
      if (k == 0) throw std::runtime_error("connection closed by the server");
      if (k < 0) throw std::runtime_error(std::string("recv: ") + std::strerror(errno));
      p += k; n -= size_t(k);
    }
  }
  int fd_ = -1;
  uint32_t xid_ = 0;
  std::vector<uint8_t> buf_;
  size_t off_ = 0;
};

void status(XdrIn& x, const char* what) {
  uint32_t st = x.u32();
  if (st != 0) throw std::runtime_error(std::string(what) + " failed, nfsstat3 " + std::to_string(st));
}

// ---- the calls ------------------------------------------------------------------------------------
std::string mnt(const Options& o) {
  Conn c(o.host, o.mountPort ? o.mountPort : o.nfsPort);
  XdrOut a;
  a.str(o.exportPath);
  XdrIn x = c.call(kProgMount, 3, kMountMnt, a);
  uint32_t st = x.u32();
  if (st != 0) throw std::runtime_error("MNT " + o.exportPath + " failed, mountstat3 " + std::to_string(st));
  return x.opaque(64);
}

XdrOut fhArgs(const std::string& fh) { XdrOut a; a.str(fh); return a; }
XdrOut lookupArgs(const std::string& dir, const std::string& name) { XdrOut a; a.str(dir); a.str(name); return a; }

std::string lookupReply(XdrIn x, Attr* attr = nullptr) {
  status(x, "LOOKUP");
  std::string fh = x.opaque(64);
  postOpAttr(x, attr);
  return fh;
}

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::string resolve(Conn& c, const std::string& root, const std::string& path) {
  std::string fh = root;
  for (auto& n : split(path)) fh = lookupReply(c.call(kProgNfs, 3, kNfsLookup, lookupArgs(fh, n)));
  return fh;
}

uint32_t rtmax(Conn& c, const std::string& root) {
  XdrIn x = c.call(kProgNfs, 3, kNfsFsinfo, fhArgs(root));
  status(x, "FSINFO");
  postOpAttr(x);
  return x.u32();
}

struct DirEntry {
  std::string name, fh;
  uint32_t type = 0;
};

// READDIRPLUS (RFC 1813 s.3.3.17) of one directory, every page; counts the entries seen.
std::vector<DirEntry> readdirplus(Conn& c, const std::string& dir) {
  std::vector<DirEntry> out;
  uint64_t cookie = 0;
  std::string verf(8, '\0');
  for (bool eof = false; !eof;) {
    XdrOut a;
    a.str(dir); a.u64(cookie); a.fixed(verf.data(), 8); a.u32(16384); a.u32(65536);
    XdrIn x = c.call(kProgNfs, 3, kNfsReaddirplus, a);
    status(x, "READDIRPLUS");
    postOpAttr(x);
    x.need(8);
    verf.assign(reinterpret_cast<const char*>(x.p + x.off), 8);
    x.skip(8);
    bool any = false;
    while (x.u32()) {
      any = true;
      DirEntry e;
      x.u64();  // fileid
      e.name = x.opaque(255);
      cookie = x.u64();
      Attr at;
      if (postOpAttr(x, &at)) e.type = at.type;
      if (x.u32()) e.fh = x.opaque(64);
      out.push_back(std::move(e));
    }
    eof = x.u32();
    if (!any && !eof) throw std::runtime_error("READDIRPLUS: empty page without eof");
  }
  return out;
}

void printJson(const std::string& fields) { std::printf("{%s}\n", fields.c_str()); }

std::string num(const char* k, double v) {
  char b[96];
  std::snprintf(b, sizeof b, "\"%s\":%.6g", k, v);
  return b;
}

// ---- modes ----------------------------------------------------------------------------------------
void modeList(const Options& o) {
  std::string root = mnt(o);
  Conn c(o.host, o.nfsPort);
  std::string start = resolve(c, root, o.path);
  double t0 = nowS(), c0 = cpuS();
  uint64_t entries = 0, dirs = 0;
  int passes = 0;
  for (; passes == 0 || nowS() < t0 + o.seconds; ++passes) {
  std::vector<std::string> stack{start};
  while (!stack.empty()) {
    std::string d = std::move(stack.back());
    stack.pop_back();
    ++dirs;
    for (auto& e : readdirplus(c, d)) {
      if (e.name == "." || e.name == "..") continue;
      ++entries;
      if (e.type == kNf3Dir) {
        if (e.fh.empty()) e.fh = lookupReply(c.call(kProgNfs, 3, kNfsLookup, lookupArgs(d, e.name)));
        stack.push_back(e.fh);
      }
    }
  }
  }
  double t = nowS() - t0;
  printJson(num("entries", double(entries)) + "," + num("dirs", double(dirs)) + "," + num("passes", passes) + "," +
            num("seconds", t) + "," +
            num("rate", double(entries) / t) + "," + num("client_cpu_s", cpuS() - c0));
}

// Keeps `inflight` calls going on one connection for `seconds`; make(i) builds the i-th call.
template <class Make, class Check>
void pipelined(const Options& o, uint32_t proc, Make make, Check check) {
  Conn c(o.host, o.nfsPort);
  double t0 = nowS(), c0 = cpuS(), end = t0 + o.seconds;
  uint64_t sent = 0, done = 0;
  int out = 0;
  for (; out < o.inflight; ++out) c.send(kProgNfs, 3, proc, make(sent++));
  while (out) {
    c.recv();
    check(c.body());
    ++done;
    --out;
    if (nowS() < end) {
      c.send(kProgNfs, 3, proc, make(sent++));
      ++out;
    }
  }
  double t = nowS() - t0;
  printJson(num("ops", double(done)) + "," + num("inflight", o.inflight) + "," + num("seconds", t) + "," +
            num("rate", double(done) / t) + "," + num("client_cpu_s", cpuS() - c0));
}

void modeGetattr(const Options& o) {
  std::string root = mnt(o);
  std::string fh;
  { Conn c(o.host, o.nfsPort); fh = resolve(c, root, o.path); }
  XdrOut args = fhArgs(fh);
  pipelined(o, kNfsGetattr, [&](uint64_t) -> const XdrOut& { return args; },
            [](XdrIn x) { status(x, "GETATTR"); fattr3(x); });
}

void modeLookup(const Options& o) {
  std::string root = mnt(o);
  std::vector<XdrOut> calls;
  {
    Conn c(o.host, o.nfsPort);
    std::string dir = resolve(c, root, o.path);
    for (auto& e : readdirplus(c, dir)) {
      if (e.name == "." || e.name == "..") continue;
      calls.push_back(lookupArgs(dir, e.name));
      if (calls.size() == 512) break;
    }
  }
  if (calls.empty()) die("lookup: " + o.path + " is empty");
  pipelined(o, kNfsLookup, [&](uint64_t i) -> const XdrOut& { return calls[i % calls.size()]; },
            [](XdrIn x) { lookupReply(x); });
}

std::vector<std::string> readList(const std::string& file) {
  std::ifstream in(file);
  if (!in) die("cannot read " + file);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  if (out.empty()) die(file + " lists no files");
  return out;
}

void modeRead(const Options& o) {
  std::string root = mnt(o);
  Conn c(o.host, o.nfsPort);
  uint32_t chunk = std::min(o.chunk, rtmax(c, root));
  struct F { std::string fh; uint64_t size; };
  std::vector<F> files;
  for (auto& p : readList(o.files)) {
    Attr a;
    std::string fh = root;
    auto parts = split(p);
    for (size_t i = 0; i < parts.size(); ++i)
      fh = lookupReply(c.call(kProgNfs, 3, kNfsLookup, lookupArgs(fh, parts[i])), &a);
    if (a.type != kNf3Reg) die(p + " is not a regular file");
    files.push_back({fh, a.size});
  }
  double t0 = nowS(), c0 = cpuS(), end = t0 + o.seconds;
  uint64_t bytes = 0, calls = 0;
  int passes = 0;
  while (passes == 0 || nowS() < end) {
    for (auto& f : files) {
      uint64_t next = 0, got = 0;
      int out = 0;
      auto issue = [&] {
        XdrOut a;
        a.str(f.fh); a.u64(next); a.u32(chunk);
        c.send(kProgNfs, 3, kNfsRead, a);
        next += chunk;
        ++out;
      };
      while (out < o.inflight && next < f.size) issue();
      while (out) {
        c.recv();
        XdrIn x = c.body();
        status(x, "READ");
        postOpAttr(x);
        uint32_t n = x.u32();
        x.u32();  // eof
        uint32_t len = x.u32();
        if (len != n) throw std::runtime_error("READ: count and data length differ");
        got += len;
        ++calls;
        --out;
        if (next < f.size) issue();
      }
      if (got != f.size) throw std::runtime_error("READ: got " + std::to_string(got) + " of " + std::to_string(f.size));
      bytes += got;
    }
    ++passes;
  }
  double t = nowS() - t0;
  printJson(num("bytes", double(bytes)) + "," + num("passes", passes) + "," + num("calls", double(calls)) + "," +
            num("chunk", chunk) + "," + num("seconds", t) + "," + num("rate", double(bytes) / t / 1e6) + "," +
            num("client_cpu_s", cpuS() - c0));
}

uint64_t fnv(uint64_t h, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

void modeStorm(const Options& o) {
  std::vector<std::string> paths = readList(o.files);
  std::mutex mu;
  std::vector<std::string> errors;
  std::vector<uint64_t> digests(size_t(o.clients)), bytesBy(size_t(o.clients));
  std::vector<double> doneAt(size_t(o.clients));
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  double t0 = 0, c0 = cpuS();
  auto client = [&](int id) {
    tSource = "127.0." + std::to_string(1 + id / 250) + "." + std::to_string(1 + id % 250);
    ready++;
    while (!go.load()) std::this_thread::yield();
    try {
      std::string root = mnt(o);
      Conn c(o.host, o.nfsPort);
      uint32_t chunk = std::min(o.chunk, rtmax(c, root));
      std::unordered_map<std::string, std::string> dirs{{"", root}};
      uint64_t h = 1469598103934665603ull, total = 0;
      for (auto& p : paths) {
        auto parts = split(p);
        std::string prefix, fh = root;
        for (size_t i = 0; i < parts.size(); ++i) {
          prefix += "/" + parts[i];
          bool last = i + 1 == parts.size();
          if (!last) {
            auto it = dirs.find(prefix);
            if (it != dirs.end()) { fh = it->second; continue; }
          }
          fh = lookupReply(c.call(kProgNfs, 3, kNfsLookup, lookupArgs(fh, parts[i])));
          if (!last) dirs[prefix] = fh;
        }
        XdrIn g = c.call(kProgNfs, 3, kNfsGetattr, fhArgs(fh));
        status(g, "GETATTR");
        Attr a = fattr3(g);
        if (a.type != kNf3Reg) throw std::runtime_error(p + " is not a regular file");
        uint64_t off = 0;
        for (;;) {
          XdrOut ra;
          ra.str(fh); ra.u64(off); ra.u32(chunk);
          XdrIn x = c.call(kProgNfs, 3, kNfsRead, ra);
          status(x, "READ");
          postOpAttr(x);
          uint32_t n = x.u32();
          bool eof = x.u32();
          uint32_t len = x.u32();
          x.need(len);
          if (len != n) throw std::runtime_error("READ: count and data length differ");
          h = fnv(h, x.p + x.off, len);
          off += len;
          if (eof || len == 0) break;
        }
        if (off != a.size) throw std::runtime_error(p + ": read " + std::to_string(off) + " of " + std::to_string(a.size));
        total += off;
      }
      digests[size_t(id)] = h;
      bytesBy[size_t(id)] = total;
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> l(mu);
      errors.push_back("client " + std::to_string(id) + ": " + e.what());
    }
    doneAt[size_t(id)] = nowS();
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < o.clients; ++i) threads.emplace_back(client, i);
  while (ready.load() < o.clients) std::this_thread::yield();
  t0 = nowS();
  go = true;
  for (auto& t : threads) t.join();
  double last = 0, sum = 0;
  for (double d : doneAt) { last = std::max(last, d - t0); sum += d - t0; }
  bool agree = errors.empty();
  for (auto d : digests) agree = agree && d == digests[0];
  uint64_t bytes = 0;
  for (auto b : bytesBy) bytes += b;
  std::string err;
  for (size_t i = 0; i < errors.size() && i < 3; ++i) {
    std::string e = errors[i];
    for (auto& ch : e) if (ch == '"' || ch == '\\') ch = '\'';
    err += (i ? ",\"" : "\"") + e + "\"";
  }
  char dg[32];
  std::snprintf(dg, sizeof dg, "%016llx", static_cast<unsigned long long>(digests[0]));
  printJson(num("clients", o.clients) + "," + num("files", double(paths.size())) + "," + num("bytes", double(bytes)) + "," +
            num("seconds", last) + "," + num("mean_client_s", sum / o.clients) + "," +
            num("rate", double(o.clients) / last) + "," + num("client_cpu_s", cpuS() - c0) + "," +
            "\"digest\":\"" + dg + "\",\"agree\":" + (agree ? "true" : "false") + ",\"errors\":[" + err + "]");
  if (!errors.empty()) std::exit(1);
}

void usage() {
  std::fprintf(stderr,
      "usage: nfs_load MODE --export PATH [--server HOST:PORT] [--mount-port N] [--path P]\n"
      "                [--files LIST] [--inflight N] [--clients N] [--seconds S] [--chunk BYTES]\n"
      "  MODE: probe | list | getattr | lookup | read | storm (see the header of nfs_load.cpp)\n");
  std::exit(2);
}

Options parseArgs(int argc, char** argv) {
  if (argc < 2) usage();
  Options o;
  o.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) usage();
    std::string v = argv[++i];
    if (a == "--server") {
      size_t colon = v.rfind(':');
      if (colon == std::string::npos) die("--server wants HOST:PORT");
      o.host = v.substr(0, colon);
      o.nfsPort = uint16_t(std::stoi(v.substr(colon + 1)));
    } else if (a == "--mount-port") o.mountPort = uint16_t(std::stoi(v));
    else if (a == "--export") o.exportPath = v;
    else if (a == "--path") o.path = v;
    else if (a == "--files") o.files = v;
    else if (a == "--inflight") o.inflight = std::stoi(v);
    else if (a == "--clients") o.clients = std::stoi(v);
    else if (a == "--seconds") o.seconds = std::stod(v);
    else if (a == "--chunk") o.chunk = uint32_t(std::stoul(v));
    else usage();
  }
  if (o.exportPath.empty() || o.inflight < 1 || o.clients < 1 || o.chunk < 4096) usage();
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parseArgs(argc, argv);
  try {
    if (o.mode == "probe") {
      std::string root = mnt(o);
      Conn c(o.host, o.nfsPort);
      printJson(num("rtmax", rtmax(c, root)));
    } else if (o.mode == "list") modeList(o);
    else if (o.mode == "getattr") modeGetattr(o);
    else if (o.mode == "lookup") modeLookup(o);
    else if (o.mode == "read") modeRead(o);
    else if (o.mode == "storm") modeStorm(o);
    else usage();
  } catch (const std::exception& e) {
    die(o.mode + ": " + e.what());
  }
  return 0;
}
