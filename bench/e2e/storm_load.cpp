// storm_load: a simulated boot storm for bench/e2e (a benchmark tool; no pxedust code is linked).
//
// N clients start together. Each lives on its own network interface (a macvlan with the client's MAC,
// made by bench/e2e/bench_e2e.py in a client namespace whose other end is the lab bridge) and does
// what a diskless machine does before its root file system is up:
//   1. DHCP (RFC 2131) DISCOVER -> OFFER -> REQUEST -> ACK on a packet socket bound to its interface:
//      its MAC is the Ethernet source and chaddr; no broadcast flag (iPXE sets none), so the server
//      answers by unicast to chaddr. A reply counts only with our xid AND our chaddr. Retransmission
//      after 1 s, doubling to 8 s (iPXE: 1 s .. 10 s). The leased address (checked against the
//      reservation when the client list gives one) is then put on the interface over rtnetlink, as
//      the client's network stack would do.
//   2. TFTP (RFC 1350/2347/2348/2349) RRQ of --tftp-file from the DHCP next-server (else the server
//      identifier) with blksize 1432 (iPXE's) and tsize, lock-step unless --windowsize; every DATA
//      block is compared with --tftp-verify.
//      With --http-url the initrd comes over HTTP instead, as iPXE fetches it when its script says
//      `initrd http://...`: one TCP connection from the leased address, one HTTP/1.1 GET (RFC 9112),
//      a 200 with a Content-Length equal to the file's size, exactly that many bytes read and compared
//      with --tftp-verify, then the connection is closed. No retry: a connection refused or reset, a
//      bad status or length, or --http-timeout-ms without progress fails the client, as a failed
//      `initrd` line fails iPXE's script.
//   3. iSCSI: libiscsi logs in (header digest none, as iPXE) to the target and LUN named by the
//      root-path DHCP gave (RFC 4173 "iscsi:server:proto:port:lun:target"), its TCP connection bound
//      to the client's interface (SO_BINDTODEVICE, so its source address is the leased one and the
//      target's per-host address ACL applies); READ CAPACITY(16), then READ(16) of the first
//      --read-bytes in --read-size requests with --qd in flight, every byte compared with
//      --disk-verify. The session is then logged out (not timed).
//   With --tftp-only a client is done when its initrd transfer is (no iSCSI; --disk-verify is not
//   needed): the TFTP (or HTTP) phase alone, for measuring a server's cost per DATA block.
//
// One thread, one epoll set (level-triggered): packet, UDP, TCP (HTTP) and iSCSI sockets of every client;
// a coarse 20 ms scan handles retransmission timers, the HTTP timeout and the global --deadline-s.
// libiscsi's socket may change while it connects, so after every call into a context its (fd, events)
// pair is re-synced with epoll.
//
// Output: one JSON line on stdout (see report()): makespan (first DISCOVER to the last client done),
// per-phase median/p90/max over the clients that finished (the initrd phase, TFTP or HTTP as
// "initrd_via" says, is "initrd_s"), the time at which the last client left each
// phase, failures by phase with their first distinct reasons, retransmission counters and client CPU.
// --per-client FILE writes one TSV line per client as well.
//
// Client list (--clients FILE): one line per client, "ifname mac [ip [name]]"; ip "-" = don't check.

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

extern "C" {
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
}

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

// ---- options ------------------------------------------------------------------------------------------

struct Options {
  std::string clientsFile;
  std::string tftpFile = "initrd.img";
  std::string tftpVerify;          // local copy of the initrd (TFTP or HTTP); required
  int blksize = 1432;              // iPXE's TFTP blksize
  int windowsize = 0;              // 0 = lock-step (not asked)
  std::string httpUrl;             // "http://IPv4[:port]/path": the initrd over HTTP instead of TFTP
  int httpTimeoutMs = 10000;       // an HTTP fetch making no progress this long fails
  uint32_t httpAddr = 0;           // from httpUrl: network byte order
  uint16_t httpPort = 80;
  std::string httpHost, httpPath;  // the Host header's value; the request target
  std::string diskVerify;          // local copy of the disk's first --read-bytes; required unless tftpOnly
  bool tftpOnly = false;           // stop after TFTP: no iSCSI
  uint64_t readBytes = 64ull << 20;
  uint32_t readSize = 256u << 10;
  int qd = 4;
  std::string initiatorPrefix = "iqn.2026-11.org.pxedust.storm";
  int dhcpTimeoutMs = 1000;
  int tftpTimeoutMs = 1000;
  int tftpRetries = 6;
  int deadlineS = 900;
  std::string perClient;
  std::string label;
};

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "storm_load: %s\n", msg.c_str());
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
      "usage: storm_load --clients FILE --tftp-verify LOCALFILE --disk-verify LOCALFILE\n"
      "                  [--tftp-file NAME] [--blksize N] [--windowsize N|0]\n"
      "                  [--http-url http://IPv4[:port]/path] [--http-timeout-ms MS]\n"
      "                  [--read-bytes N] [--read-size N] [--qd N] [--initiator-prefix IQN]\n"
      "                  [--dhcp-timeout-ms MS] [--tftp-timeout-ms MS] [--tftp-retries N]\n"
      "                  [--deadline-s S] [--per-client FILE] [--label TEXT] [--tftp-only]\n"
      "  FILE: one client per line, \"ifname mac [ip|- [name]]\"; run inside the clients' namespace, as root.\n"
      "  --http-url: fetch the initrd with an HTTP/1.1 GET of this URL instead of TFTP (compared with\n"
      "    --tftp-verify all the same).\n"
      "  --tftp-only: a client is done after its initrd transfer (no iSCSI, no --disk-verify).\n"
      "  Prints one JSON line: makespan, per-phase times, failures, counters.\n");
  std::exit(2);
}

// "http://" IPv4 [":" port] [path]: the server is an address, as in the script the bench serves (no DNS).
void parseHttpUrl(Options& o) {
  std::string_view u = o.httpUrl;
  if (u.substr(0, 7) != "http://") die("--http-url must start with http://");
  u.remove_prefix(7);
  size_t slash = u.find('/');
  std::string_view authority = u.substr(0, slash);
  o.httpPath = slash == std::string_view::npos ? "/" : std::string(u.substr(slash));
  o.httpHost = std::string(authority);
  std::string_view host = authority;
  if (size_t colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    int64_t port = parseInt(authority.substr(colon + 1), "--http-url port");
    if (port < 1 || port > 65535) die("--http-url: port out of range");
    o.httpPort = uint16_t(port);
  }
  if (inet_pton(AF_INET, std::string(host).c_str(), &o.httpAddr) != 1)
    die("--http-url: the host must be an IPv4 address");
  for (char ch : o.httpPath)
    if (uint8_t(ch) <= 0x20 || ch == 0x7f) die("--http-url: the path must not hold spaces or control characters");
}

Options parseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto next = [&]() -> std::string_view {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--clients") o.clientsFile = std::string(next());
    else if (a == "--tftp-file") o.tftpFile = std::string(next());
    else if (a == "--tftp-verify") o.tftpVerify = std::string(next());
    else if (a == "--blksize") o.blksize = int(parseInt(next(), "--blksize"));
    else if (a == "--windowsize") o.windowsize = int(parseInt(next(), "--windowsize"));
    else if (a == "--http-url") o.httpUrl = std::string(next());
    else if (a == "--http-timeout-ms") o.httpTimeoutMs = int(parseInt(next(), "--http-timeout-ms"));
    else if (a == "--disk-verify") o.diskVerify = std::string(next());
    else if (a == "--read-bytes") o.readBytes = uint64_t(parseInt(next(), "--read-bytes"));
    else if (a == "--read-size") o.readSize = uint32_t(parseInt(next(), "--read-size"));
    else if (a == "--qd") o.qd = int(parseInt(next(), "--qd"));
    else if (a == "--initiator-prefix") o.initiatorPrefix = std::string(next());
    else if (a == "--dhcp-timeout-ms") o.dhcpTimeoutMs = int(parseInt(next(), "--dhcp-timeout-ms"));
    else if (a == "--tftp-timeout-ms") o.tftpTimeoutMs = int(parseInt(next(), "--tftp-timeout-ms"));
    else if (a == "--tftp-retries") o.tftpRetries = int(parseInt(next(), "--tftp-retries"));
    else if (a == "--deadline-s") o.deadlineS = int(parseInt(next(), "--deadline-s"));
    else if (a == "--per-client") o.perClient = std::string(next());
    else if (a == "--label") o.label = std::string(next());
    else if (a == "--tftp-only") o.tftpOnly = true;
    else usage();
  }
  if (o.clientsFile.empty() || o.tftpVerify.empty() || (o.diskVerify.empty() && !o.tftpOnly)) usage();
  if (o.blksize < 8 || o.blksize > 65464) die("--blksize must be 8..65464 (RFC 2348)");
  if (o.windowsize < 0 || o.windowsize > 65535) die("--windowsize must be 0..65535 (RFC 7440)");
  if (o.readSize < 512 || o.readSize % 512 != 0 || o.readSize > (16u << 20)) die("--read-size: a multiple of 512, at most 16 MiB");
  if (o.readBytes % 512 != 0) die("--read-bytes must be a multiple of 512");
  if (o.qd < 1 || o.qd > 128) die("--qd must be 1..128");
  if (o.dhcpTimeoutMs < 1 || o.tftpTimeoutMs < 1 || o.tftpRetries < 0 || o.deadlineS < 1 || o.httpTimeoutMs < 1)
    die("bad timeout");
  if (!o.httpUrl.empty()) parseHttpUrl(o);
  return o;
}

int64_t nowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// A read-only mmap of a local reference file.
struct MappedFile {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
};

MappedFile mapFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("cannot open " + path + ": " + std::strerror(errno));
  struct stat st{};
  if (fstat(fd, &st) != 0) die("fstat " + path);
  MappedFile m;
  m.size = uint64_t(st.st_size);
  if (m.size > 0) {
    void* p = mmap(nullptr, m.size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) die("mmap " + path);
    m.data = static_cast<const uint8_t*>(p);
  }
  close(fd);
  return m;
}

std::string ipText(uint32_t beAddr) {
  char b[INET_ADDRSTRLEN] = {};
  in_addr a{beAddr};
  inet_ntop(AF_INET, &a, b, sizeof b);
  return b;
}

// ---- DHCP wire (client side) --------------------------------------------------------------------------

constexpr uint8_t kDhcpDiscover = 1, kDhcpOffer = 2, kDhcpRequest = 3, kDhcpAck = 5, kDhcpNak = 6;
constexpr uint32_t kMagicCookie = 0x63825363;
constexpr size_t kBootpFixed = 236;  // op .. file, before the magic cookie (RFC 2131 s.2)

uint16_t checksum(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += uint32_t(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += uint32_t(p[n - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

// What a DHCP reply said, for the fields a booting client uses.
struct DhcpReply {
  uint8_t type = 0;
  uint32_t yiaddr = 0, siaddr = 0, serverId = 0;  // network byte order
  int prefix = -1;
  std::string rootPath, hostName;
};

// Builds IPv4 + UDP 68->67 + BOOTP around a DISCOVER or REQUEST (RFC 2131 table 5).
std::vector<uint8_t> buildDhcp(uint8_t type, uint32_t xid, const std::array<uint8_t, 6>& mac, uint32_t reqIp,
                               uint32_t serverId, uint16_t secs) {
  std::vector<uint8_t> bootp(kBootpFixed, 0);
  bootp[0] = 1;  // BOOTREQUEST
  bootp[1] = 1;  // Ethernet
  bootp[2] = 6;
  bootp[4] = uint8_t(xid >> 24); bootp[5] = uint8_t(xid >> 16); bootp[6] = uint8_t(xid >> 8); bootp[7] = uint8_t(xid);
  bootp[8] = uint8_t(secs >> 8); bootp[9] = uint8_t(secs);
  std::memcpy(&bootp[28], mac.data(), 6);
  auto put = [&](std::initializer_list<uint8_t> b) { bootp.insert(bootp.end(), b.begin(), b.end()); };
  auto put32 = [&](uint32_t be) {
    const auto* q = reinterpret_cast<const uint8_t*>(&be);
    bootp.insert(bootp.end(), q, q + 4);
  };
  put({0x63, 0x82, 0x53, 0x63});
  put({53, 1, type});
  put({61, 7, 1}); bootp.insert(bootp.end(), mac.begin(), mac.end());   // client identifier: type 1 + MAC
  put({57, 2, 0x05, 0xc0});                                              // max message size 1472
  if (type == kDhcpRequest) {
    put({50, 4}); put32(reqIp);
    put({54, 4}); put32(serverId);
  }
  put({55, 8, 1, 3, 6, 12, 15, 17, 66, 67});  // mask, router, dns, hostname, domain, root-path, tftp server, file
  put({255});
  if (bootp.size() < 300) bootp.resize(300, 0);  // BOOTP's minimum (RFC 1542 s.2.1)

  std::vector<uint8_t> pkt(28 + bootp.size(), 0);
  uint8_t* ip = pkt.data();
  uint8_t* udp = ip + 20;
  size_t total = pkt.size();
  ip[0] = 0x45;
  ip[2] = uint8_t(total >> 8); ip[3] = uint8_t(total);
  ip[8] = 64;
  ip[9] = IPPROTO_UDP;
  std::memset(ip + 16, 0xff, 4);  // 255.255.255.255; source 0.0.0.0
  uint16_t c = checksum(ip, 20);
  ip[10] = uint8_t(c >> 8); ip[11] = uint8_t(c);
  size_t ulen = 8 + bootp.size();
  udp[0] = 0; udp[1] = 68; udp[2] = 0; udp[3] = 67;
  udp[4] = uint8_t(ulen >> 8); udp[5] = uint8_t(ulen);
  std::memcpy(udp + 8, bootp.data(), bootp.size());
  // Pseudo header: src, dst, proto, UDP length.
  uint32_t sum = 0xffff + 0xffff + IPPROTO_UDP + uint32_t(ulen);
  c = checksum(udp, ulen, sum);
  if (c == 0) c = 0xffff;
  udp[6] = uint8_t(c >> 8); udp[7] = uint8_t(c);
  return pkt;
}

// Parses an IPv4/UDP datagram to port 68 carrying a BOOTREPLY for (xid, mac); false if not ours.
bool parseDhcp(const uint8_t* p, size_t n, uint32_t xid, const std::array<uint8_t, 6>& mac, DhcpReply& out) {
  if (n < 20 || (p[0] >> 4) != 4) return false;
  size_t ihl = size_t(p[0] & 0xf) * 4;
  size_t total = size_t(p[2] << 8 | p[3]);
  if (ihl < 20 || total > n || total < ihl + 8 || p[9] != IPPROTO_UDP) return false;
  const uint8_t* udp = p + ihl;
  if ((udp[2] << 8 | udp[3]) != 68) return false;
  size_t ulen = size_t(udp[4] << 8 | udp[5]);
  if (ulen < 8 || ulen > total - ihl) return false;
  const uint8_t* b = udp + 8;
  size_t bl = ulen - 8;
  if (bl < kBootpFixed + 4 || b[0] != 2 || b[1] != 1 || b[2] != 6) return false;
  uint32_t rxid = uint32_t(b[4]) << 24 | uint32_t(b[5]) << 16 | uint32_t(b[6]) << 8 | b[7];
  if (rxid != xid || std::memcmp(b + 28, mac.data(), 6) != 0) return false;
  uint32_t cookie = uint32_t(b[236]) << 24 | uint32_t(b[237]) << 16 | uint32_t(b[238]) << 8 | b[239];
  if (cookie != kMagicCookie) return false;
  std::memcpy(&out.yiaddr, b + 16, 4);
  std::memcpy(&out.siaddr, b + 20, 4);
  size_t i = kBootpFixed + 4;
  while (i < bl) {
    uint8_t code = b[i++];
    if (code == 0) continue;
    if (code == 255 || i >= bl) break;
    size_t len = b[i++];
    if (len > bl - i) return false;
    const uint8_t* v = b + i;
    switch (code) {
      case 53: if (len == 1) out.type = v[0]; break;
      case 54: if (len == 4) std::memcpy(&out.serverId, v, 4); break;
      case 1:
        if (len == 4) {
          uint32_t m = uint32_t(v[0]) << 24 | uint32_t(v[1]) << 16 | uint32_t(v[2]) << 8 | v[3];
          out.prefix = __builtin_popcount(m);
        }
        break;
      case 17: out.rootPath.assign(reinterpret_cast<const char*>(v), len); break;
      case 12: out.hostName.assign(reinterpret_cast<const char*>(v), len); break;
      default: break;
    }
    i += len;
  }
  while (!out.rootPath.empty() && out.rootPath.back() == '\0') out.rootPath.pop_back();
  while (!out.hostName.empty() && out.hostName.back() == '\0') out.hostName.pop_back();
  return out.type != 0;
}

// Keeps only IPv4 UDP to port 68, unfragmented (the packet socket is SOCK_DGRAM: offset 0 = IP header).
void attachDhcpFilter(int fd) {
  static sock_filter code[] = {
      {BPF_LD | BPF_B | BPF_ABS, 0, 0, 9},          // protocol
      {BPF_JMP | BPF_JEQ | BPF_K, 0, 6, IPPROTO_UDP},
      {BPF_LD | BPF_H | BPF_ABS, 0, 0, 6},          // flags + fragment offset
      {BPF_JMP | BPF_JSET | BPF_K, 4, 0, 0x1fff},
      {BPF_LDX | BPF_B | BPF_MSH, 0, 0, 0},         // X = IP header length
      {BPF_LD | BPF_H | BPF_IND, 0, 0, 2},          // UDP destination port
      {BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 68},
      {BPF_RET | BPF_K, 0, 0, 0xffff},
      {BPF_RET | BPF_K, 0, 0, 0},
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof code / sizeof code[0]), code};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0)
    die(std::string("SO_ATTACH_FILTER: ") + std::strerror(errno));
}

// ---- rtnetlink: the leased address on the client's interface --------------------------------------------

class Netlink {
 public:
  Netlink() {
    fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd_ < 0) die(std::string("netlink socket: ") + std::strerror(errno));
  }
  ~Netlink() { close(fd_); }
  Netlink(const Netlink&) = delete;
  Netlink& operator=(const Netlink&) = delete;

  // RTM_NEWADDR / RTM_DELADDR of addr/prefix on ifindex; "" or the kernel's error text.
  std::string address(bool add, int ifindex, uint32_t addr, int prefix) {
    struct {
      nlmsghdr nh;
      ifaddrmsg ifa;
      char attrs[64];
    } req{};
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(ifaddrmsg));
    req.nh.nlmsg_type = add ? RTM_NEWADDR : RTM_DELADDR;
    req.nh.nlmsg_flags = uint16_t(NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_REPLACE : 0));
    req.nh.nlmsg_seq = ++seq_;
    req.ifa.ifa_family = AF_INET;
    req.ifa.ifa_prefixlen = uint8_t(prefix);
    req.ifa.ifa_scope = RT_SCOPE_UNIVERSE;
    req.ifa.ifa_index = uint32_t(ifindex);
    for (unsigned short type : {IFA_LOCAL, IFA_ADDRESS}) {
      auto* rta = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&req) + NLMSG_ALIGN(req.nh.nlmsg_len));
      rta->rta_type = type;
      rta->rta_len = RTA_LENGTH(4);
      std::memcpy(RTA_DATA(rta), &addr, 4);
      req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
    }
    if (send(fd_, &req, req.nh.nlmsg_len, 0) < 0) return std::string("netlink send: ") + std::strerror(errno);
    char buf[4096];
    for (;;) {
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return std::string("netlink recv: ") + std::strerror(errno);
      }
      for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_seq != seq_ || h->nlmsg_type != NLMSG_ERROR) continue;
        int err = static_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
        return err == 0 ? std::string() : std::string(std::strerror(-err));
      }
    }
  }

 private:
  int fd_ = -1;
  uint32_t seq_ = 0;
};

// ---- clients --------------------------------------------------------------------------------------------

enum class Phase : uint8_t { Dhcp, Tftp, Http, Login, Read, Done, Failed };  // Tftp or Http: the initrd
const char* phaseName(Phase p) {
  switch (p) {
    case Phase::Dhcp: return "dhcp";
    case Phase::Tftp: return "tftp";
    case Phase::Http: return "http";
    case Phase::Login: return "login";
    case Phase::Read: return "read";
    case Phase::Done: return "done";
    case Phase::Failed: return "failed";
  }
  return "?";
}

enum Kind : uint64_t { kPacket = 0, kUdp = 1, kIscsi = 2, kHttp = 3 };

struct Client;
class Storm;

struct ReadSlot {
  Client* client = nullptr;
  std::vector<uint8_t> buf;
  scsi_iovec iov{};
  uint64_t offset = 0;
  bool busy = false;
};

struct Client {
  Storm* storm = nullptr;  // for libiscsi's callbacks, which get only this client
  size_t idx = 0;
  std::string ifname, name;
  int ifindex = 0;
  std::array<uint8_t, 6> mac{};
  uint32_t expectIp = 0;  // 0 = not checked
  Phase phase = Phase::Dhcp;
  Phase failedIn = Phase::Dhcp;
  std::string error;

  // DHCP
  int pfd = -1;
  uint32_t xid = 0;
  bool requesting = false;
  uint32_t offered = 0, serverId = 0, leased = 0, tftpServer = 0;
  int prefix = 24;
  int dhcpTries = 0;
  int64_t dhcpWaitNs = 0, dhcpDeadline = 0;
  bool addrAdded = false;
  std::string rootPath, hostName;

  // TFTP
  int ufd = -1;
  bool tftpConnected = false, oack = false;
  uint32_t blksize = 512, windowsize = 1, inWindow = 0;
  uint64_t expected = 1, tftpBytes = 0;
  int64_t tsize = -1;
  int tftpTimeouts = 0;
  bool gapAcked = false;
  int64_t tftpDeadline = 0;

  // HTTP
  int hfd = -1;
  bool httpConnected = false, httpReading = false, httpInBody = false;
  std::string httpRequest, httpHead;  // what to send; the response head so far
  size_t httpSent = 0;
  uint64_t httpLength = 0, httpBytes = 0;  // Content-Length; body bytes taken
  int64_t httpDeadline = 0;

  // iSCSI
  iscsi_context* ctx = nullptr;
  int regFd = -1;
  uint32_t regEv = 0;
  std::string portal, target, initiator, bindIf;
  int lun = 0;
  uint32_t blockSize = 512;
  uint64_t nextOffset = 0, readDone = 0;
  int inflight = 0;
  std::vector<std::unique_ptr<ReadSlot>> slots;
  bool loggingOut = false, destroy = false;

  // times (ns since the storm started)
  int64_t tDhcp = -1, tInitrd = -1, tLogin = -1, tRead = -1, tEnd = -1;  // tInitrd: its TFTP or HTTP fetch done
};

struct Counters {
  uint64_t dhcpRetransmits = 0, dhcpNaks = 0, dhcpStrays = 0, tftpTimeouts = 0, tftpOutOfOrder = 0;
  // Where each TFTP timeout struck: no answer to the RRQ; no block 1 after ACK 0; none of the window
  // after an ACK; part of a window come and the rest not; after we had re-ACKed a gap or duplicate.
  uint64_t tftpTmoRrq = 0, tftpTmoFirst = 0, tftpTmoWindowStart = 0, tftpTmoMidWindow = 0, tftpTmoAfterGap = 0;
  uint64_t tftpBytes = 0, tftpBlocks = 0, iscsiBytes = 0;  // tftpBlocks: DATA blocks taken in order
  uint64_t httpBytes = 0, httpTimeouts = 0;                // body bytes taken and compared; fetches timed out
  // The load generator's own health: its longest pass through the event loop (events handled + the
  // timer scan) and the time it spent waiting for the kernel to add addresses.
  int64_t maxPassNs = 0, netlinkNs = 0, netlinkMaxNs = 0;
};

class Storm {
 public:
  Storm(const Options& o, std::vector<Client> clients) : o_(o), clients_(std::move(clients)) {
    for (auto& c : clients_) c.storm = this;
  }

  int run() {
    tftpRef_ = mapFile(o_.tftpVerify);
    if (!o_.tftpOnly) {
      diskRef_ = mapFile(o_.diskVerify);
      if (diskRef_.size < o_.readBytes) die("--disk-verify is smaller than --read-bytes");
    }
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) die("epoll_create1");
    std::mt19937 rng(uint32_t(nowNs()) ^ uint32_t(getpid()));
    for (auto& c : clients_) {
      c.xid = rng();
      openPacketSocket(c);
    }
    t0_ = nowNs();
    active_ = clients_.size();
    for (auto& c : clients_) sendDiscover(c);

    std::vector<epoll_event> events(1024);
    int64_t nextScan = t0_ + kScanNs;
    const int64_t deadline = t0_ + int64_t(o_.deadlineS) * 1'000'000'000;
    while (active_ > 0) {
      int n = epoll_wait(ep_, events.data(), int(events.size()), 20);
      if (n < 0) {
        if (errno == EINTR) continue;
        die("epoll_wait");
      }
      int64_t woke = nowNs();
      for (int k = 0; k < n; ++k) dispatch(events[size_t(k)]);
      int64_t now = nowNs();
      if (now >= nextScan) {
        scan(now, now >= deadline);
        nextScan = now + kScanNs;
      }
      counters_.maxPassNs = std::max(counters_.maxPassNs, nowNs() - woke);
    }
    endNs_ = nowNs();
    finishLogouts();
    report();
    cleanupAddresses();
    for (int fd : parked_) close(fd);
    for (auto& c : clients_)
      if (c.phase != Phase::Done) return 1;
    return 0;
  }

 private:
  static constexpr int64_t kScanNs = 20'000'000;

  int64_t sinceStart() const { return nowNs() - t0_; }

  void watch(int fd, uint32_t events, size_t idx, Kind kind, int op = EPOLL_CTL_ADD) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = uint64_t(idx) << 8 | kind;
    if (epoll_ctl(ep_, op, fd, &ev) == 0) return;
    // MOD of a number libiscsi closed and reused for its next socket: that one is not in the set yet.
    if (op == EPOLL_CTL_MOD && errno == ENOENT && epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) == 0) return;
    die(std::string("epoll_ctl: ") + std::strerror(errno));
  }

  void closeFd(int& fd) {
    if (fd >= 0) close(fd);  // closing also leaves the epoll set
    fd = -1;
  }

  void fail(Client& c, std::string why) {
    if (c.phase == Phase::Done || c.phase == Phase::Failed) return;
    c.failedIn = c.phase;
    c.phase = Phase::Failed;
    c.error = std::move(why);
    c.tEnd = sinceStart();
    parkPacketSocket(c);
    closeFd(c.ufd);
    closeFd(c.hfd);
    if (c.ctx != nullptr) c.destroy = true;
    --active_;
  }

  void dispatch(const epoll_event& ev) {
    Client& c = clients_[size_t(ev.data.u64 >> 8)];
    switch (Kind(ev.data.u64 & 0xff)) {
      case kPacket: onPacketReadable(c); break;
      case kUdp: onUdpReadable(c); break;
      case kHttp: onHttpEvent(c, ev.events); break;
      case kIscsi: onIscsiEvent(c, ev.events); break;
    }
    if (c.destroy) destroyIscsi(c);
  }

  // -- DHCP --

  void openPacketSocket(Client& c) {
    // Protocol 0 until the filter is attached: nothing is queued unfiltered.
    c.pfd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.pfd < 0) die(std::string("packet socket: ") + std::strerror(errno) + " (needs root)");
    attachDhcpFilter(c.pfd);
    int rcv = 1 << 20;
    if (setsockopt(c.pfd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) != 0)
      setsockopt(c.pfd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    sockaddr_ll ll{};
    ll.sll_family = AF_PACKET;
    ll.sll_protocol = htons(ETH_P_IP);
    ll.sll_ifindex = c.ifindex;
    if (bind(c.pfd, reinterpret_cast<sockaddr*>(&ll), sizeof ll) != 0)
      die("bind packet socket to " + c.ifname + ": " + std::strerror(errno));
    watch(c.pfd, EPOLLIN, c.idx, kPacket);
  }

  // Closing a packet socket waits for an RCU grace period (tens of ms on a busy machine), which would
  // stall every client: during the storm the socket is only taken out of the epoll set and given a
  // drop-everything filter; the sockets are closed after the report.
  void parkPacketSocket(Client& c) {
    if (c.pfd < 0) return;
    static sock_filter dropAll[] = {{BPF_RET | BPF_K, 0, 0, 0}};
    sock_fprog prog{1, dropAll};
    setsockopt(c.pfd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
    epoll_ctl(ep_, EPOLL_CTL_DEL, c.pfd, nullptr);
    parked_.push_back(c.pfd);
    c.pfd = -1;
  }

  void sendDhcp(Client& c, uint8_t type) {
    int64_t elapsed = sinceStart() / 1'000'000'000;
    auto pkt = buildDhcp(type, c.xid, c.mac, c.offered, c.serverId, uint16_t(std::min<int64_t>(elapsed, 65535)));
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_protocol = htons(ETH_P_IP);
    to.sll_ifindex = c.ifindex;
    to.sll_halen = 6;
    std::memset(to.sll_addr, 0xff, 6);
    sendto(c.pfd, pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);  // loss: timer
    c.dhcpDeadline = nowNs() + c.dhcpWaitNs;
  }

  void sendDiscover(Client& c) {
    c.requesting = false;
    c.dhcpTries = 0;
    c.dhcpWaitNs = int64_t(o_.dhcpTimeoutMs) * 1'000'000;
    sendDhcp(c, kDhcpDiscover);
  }

  void onPacketReadable(Client& c) {
    uint8_t buf[2048];
    while (c.phase == Phase::Dhcp && c.pfd >= 0) {
      ssize_t n = recv(c.pfd, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        return fail(c, std::string("dhcp recv: ") + std::strerror(errno));
      }
      DhcpReply r;
      if (!parseDhcp(buf, size_t(n), c.xid, c.mac, r)) {
        ++counters_.dhcpStrays;
        continue;
      }
      if (!c.requesting && r.type == kDhcpOffer) {
        if (r.yiaddr == 0 || r.serverId == 0) return fail(c, "dhcp: OFFER without yiaddr or server identifier");
        c.offered = r.yiaddr;
        c.serverId = r.serverId;
        c.requesting = true;
        c.dhcpTries = 0;
        c.dhcpWaitNs = int64_t(o_.dhcpTimeoutMs) * 1'000'000;
        sendDhcp(c, kDhcpRequest);
      } else if (c.requesting && r.type == kDhcpNak) {
        ++counters_.dhcpNaks;
        sendDiscover(c);
      } else if (c.requesting && r.type == kDhcpAck) {
        return onAck(c, r);
      }
    }
  }

  void onAck(Client& c, const DhcpReply& r) {
    c.tDhcp = sinceStart();
    parkPacketSocket(c);
    if (c.expectIp != 0 && r.yiaddr != c.expectIp)
      return fail(c, "dhcp: leased " + ipText(r.yiaddr) + ", reserved " + ipText(c.expectIp));
    if (r.rootPath.empty()) return fail(c, "dhcp: no root-path (option 17)");
    c.leased = r.yiaddr;
    c.prefix = r.prefix >= 0 ? r.prefix : 24;
    c.tftpServer = r.siaddr != 0 ? r.siaddr : r.serverId;
    c.rootPath = r.rootPath;
    c.hostName = r.hostName;
    if (auto err = parseRootPath(c); !err.empty()) return fail(c, "dhcp: root-path '" + c.rootPath + "': " + err);
    int64_t t = nowNs();
    std::string err = netlink_.address(true, c.ifindex, c.leased, c.prefix);
    t = nowNs() - t;
    counters_.netlinkNs += t;
    counters_.netlinkMaxNs = std::max(counters_.netlinkMaxNs, t);
    if (!err.empty()) return fail(c, "adding " + ipText(c.leased) + " to " + c.ifname + ": " + err);
    c.addrAdded = true;
    if (!o_.httpUrl.empty()) {
      c.phase = Phase::Http;
      startHttp(c);
    } else {
      c.phase = Phase::Tftp;
      startTftp(c);
    }
  }

  // RFC 4173: iscsi:<server>:<protocol>:<port>:<LUN>:<targetname>; empty fields are the defaults.
  static std::string parseRootPath(Client& c) {
    std::string_view s = c.rootPath;
    if (s.substr(0, 6) != "iscsi:") return "not iscsi:";
    s.remove_prefix(6);
    std::string_view f[4];
    for (auto& x : f) {
      size_t colon = s.find(':');
      if (colon == std::string_view::npos) return "too few fields";
      x = s.substr(0, colon);
      s.remove_prefix(colon + 1);
    }
    if (s.empty()) return "no target name";
    std::string port = f[2].empty() ? "3260" : std::string(f[2]);
    std::string server = f[0].empty() ? ipText(c.serverId) : std::string(f[0]);
    c.portal = server + ":" + port;
    c.lun = f[3].empty() ? 0 : int(std::strtol(std::string(f[3]).c_str(), nullptr, 16));
    c.target = std::string(s);
    return {};
  }

  // -- TFTP --

  void startTftp(Client& c) {
    c.ufd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.ufd < 0) return fail(c, std::string("udp socket: ") + std::strerror(errno));
    if (setsockopt(c.ufd, SOL_SOCKET, SO_BINDTODEVICE, c.ifname.c_str(), socklen_t(c.ifname.size())) != 0)
      return fail(c, std::string("SO_BINDTODEVICE: ") + std::strerror(errno));
    int rcv = std::clamp(std::max(1, o_.windowsize) * (o_.blksize + 1024) * 2, 256 * 1024, 16 * 1024 * 1024);
    if (setsockopt(c.ufd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) != 0)
      setsockopt(c.ufd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = c.leased;
    if (bind(c.ufd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0)
      return fail(c, "bind " + ipText(c.leased) + ": " + std::strerror(errno));
    watch(c.ufd, EPOLLIN, c.idx, kUdp);
    sendRrq(c);
  }

  void sendRrq(Client& c) {
    std::vector<uint8_t> rrq = {0, 1};
    auto put = [&](std::string_view s) {
      rrq.insert(rrq.end(), s.begin(), s.end());
      rrq.push_back(0);
    };
    put(o_.tftpFile);
    put("octet");
    put("blksize");
    put(std::to_string(o_.blksize));
    put("tsize");
    put("0");
    if (o_.windowsize > 0) {
      put("windowsize");
      put(std::to_string(o_.windowsize));
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(69);
    to.sin_addr.s_addr = c.tftpServer;
    sendto(c.ufd, rrq.data(), rrq.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    c.tftpDeadline = nowNs() + int64_t(o_.tftpTimeoutMs) * 1'000'000;
  }

  void sendAck(Client& c, uint64_t block) {
    uint8_t pkt[4] = {0, 4, uint8_t(block >> 8), uint8_t(block)};
    send(c.ufd, pkt, sizeof pkt, 0);  // a lost ACK is recovered by the timeout
  }

  void tftpProgress(Client& c) {
    c.tftpTimeouts = 0;
    c.gapAcked = false;
    c.tftpDeadline = nowNs() + int64_t(o_.tftpTimeoutMs) * 1'000'000;
  }

  void onUdpReadable(Client& c) {
    uint8_t buf[65536];
    while (c.phase == Phase::Tftp && c.ufd >= 0) {
      sockaddr_in from{};
      socklen_t fl = sizeof from;
      ssize_t n = recvfrom(c.ufd, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        return fail(c, std::string("tftp recv: ") + std::strerror(errno));
      }
      if (from.sin_addr.s_addr != c.tftpServer) continue;
      if (!c.tftpConnected) {
        // The server's first reply fixes its TID (RFC 1350 s.4).
        if (connect(c.ufd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0)
          return fail(c, std::string("tftp connect: ") + std::strerror(errno));
        c.tftpConnected = true;
      }
      onTftp(c, buf, size_t(n));
    }
  }

  void onTftp(Client& c, const uint8_t* p, size_t n) {
    if (n < 4) return fail(c, "tftp: runt packet");
    uint16_t op = uint16_t(p[0] << 8 | p[1]);
    if (op == 5) {
      std::string msg(reinterpret_cast<const char*>(p + 4), strnlen(reinterpret_cast<const char*>(p + 4), n - 4));
      return fail(c, "tftp: ERROR " + std::to_string(p[2] << 8 | p[3]) + ": " + msg);
    }
    if (op == 6) {
      if (c.oack) {
        if (c.expected == 1) sendAck(c, 0);  // our ACK 0 was lost
        return;
      }
      std::string_view rest(reinterpret_cast<const char*>(p + 2), n - 2);
      while (!rest.empty()) {
        size_t z1 = rest.find('\0');
        if (z1 == std::string_view::npos) break;
        std::string name(rest.substr(0, z1));
        rest.remove_prefix(z1 + 1);
        size_t z2 = rest.find('\0');
        if (z2 == std::string_view::npos) return fail(c, "tftp: OACK value not NUL-terminated");
        int64_t v = std::strtoll(std::string(rest.substr(0, z2)).c_str(), nullptr, 10);
        rest.remove_prefix(z2 + 1);
        for (auto& ch : name) ch = char(ch | 0x20);
        if (name == "blksize") {
          if (v < 8 || v > o_.blksize) return fail(c, "tftp: OACK blksize " + std::to_string(v));
          c.blksize = uint32_t(v);
        } else if (name == "windowsize") {
          if (v < 1 || v > o_.windowsize) return fail(c, "tftp: OACK windowsize " + std::to_string(v));
          c.windowsize = uint32_t(v);
        } else if (name == "tsize") {
          if (uint64_t(v) != tftpRef_.size) return fail(c, "tftp: tsize " + std::to_string(v) + " != the file's size");
          c.tsize = v;
        }
      }
      c.oack = true;
      tftpProgress(c);
      sendAck(c, 0);
      return;
    }
    if (op != 3) return fail(c, "tftp: unexpected opcode " + std::to_string(op));
    uint16_t block = uint16_t(p[2] << 8 | p[3]);
    if (block != uint16_t(c.expected)) {
      ++counters_.tftpOutOfOrder;
      if (!c.gapAcked) {  // a duplicate or a gap: re-ACK the last in-order block once
        sendAck(c, c.expected - 1);
        c.gapAcked = true;
        c.inWindow = 0;
      }
      return;
    }
    size_t len = n - 4;
    if (len > c.blksize) return fail(c, "tftp: DATA larger than blksize");
    if (c.tftpBytes > tftpRef_.size || len > tftpRef_.size - c.tftpBytes) return fail(c, "tftp: more data than the file");
    if (std::memcmp(tftpRef_.data + c.tftpBytes, p + 4, len) != 0)
      return fail(c, "tftp: data mismatch in block " + std::to_string(c.expected));
    c.tftpBytes += len;
    counters_.tftpBytes += len;
    ++counters_.tftpBlocks;
    ++c.expected;
    tftpProgress(c);
    if (len < c.blksize) {
      sendAck(c, c.expected - 1);  // the last block (RFC 1350 s.6)
      closeFd(c.ufd);
      if (c.tftpBytes != tftpRef_.size) return fail(c, "tftp: short file");
      return initrdDone(c);
    }
    if (++c.inWindow >= c.windowsize) {
      sendAck(c, c.expected - 1);
      c.inWindow = 0;
    }
  }

  // The whole initrd is in (TFTP or HTTP): log in to the disk, unless --tftp-only.
  void initrdDone(Client& c) {
    c.tInitrd = sinceStart();
    if (o_.tftpOnly) {  // done: no login, no reads (their phases take no time)
      c.tLogin = c.tRead = c.tEnd = c.tInitrd;
      c.phase = Phase::Done;
      --active_;
      return;
    }
    c.phase = Phase::Login;
    startIscsi(c);
  }

  // -- HTTP --
  // connect -> send the GET -> read the head (status 200, Content-Length = the file's size) -> read
  // exactly Content-Length bytes, each compared with the reference -> close. The request is iPXE's
  // (src/net/tcp/httpcore.c: Host, User-Agent, keep-alive); this client closes after its one file.

  static constexpr size_t kHttpMaxHead = 16 << 10;
  static constexpr int kHttpReadsPerWake = 8;  // of httpBuf_ (256 KiB) each; then the other clients' turn

  void startHttp(Client& c) {
    c.hfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.hfd < 0) return fail(c, std::string("tcp socket: ") + std::strerror(errno));
    if (setsockopt(c.hfd, SOL_SOCKET, SO_BINDTODEVICE, c.ifname.c_str(), socklen_t(c.ifname.size())) != 0)
      return fail(c, std::string("SO_BINDTODEVICE: ") + std::strerror(errno));
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = c.leased;
    if (bind(c.hfd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0)
      return fail(c, "bind " + ipText(c.leased) + ": " + std::strerror(errno));
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(o_.httpPort);
    to.sin_addr.s_addr = o_.httpAddr;
    if (connect(c.hfd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 && errno != EINPROGRESS)
      return fail(c, std::string("http: connect: ") + std::strerror(errno));
    c.httpRequest = "GET " + o_.httpPath + " HTTP/1.1\r\nConnection: keep-alive\r\nHost: " + o_.httpHost +
                    "\r\nUser-Agent: iPXE/1.21.1\r\n\r\n";
    watch(c.hfd, EPOLLOUT, c.idx, kHttp);  // writable: connected (or failed: SO_ERROR says)
    httpProgress(c);
  }

  void httpProgress(Client& c) { c.httpDeadline = nowNs() + int64_t(o_.httpTimeoutMs) * 1'000'000; }

  void onHttpEvent(Client& c, uint32_t events) {
    if (c.phase != Phase::Http || c.hfd < 0) return;
    if (!c.httpConnected) {
      if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
      int err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(c.hfd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err != 0) return fail(c, std::string("http: connect: ") + std::strerror(err));
      c.httpConnected = true;
      httpProgress(c);
    }
    while (c.httpSent < c.httpRequest.size()) {
      ssize_t n = send(c.hfd, c.httpRequest.data() + c.httpSent, c.httpRequest.size() - c.httpSent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;  // still watched for EPOLLOUT
        return fail(c, std::string("http: send: ") + std::strerror(errno));
      }
      c.httpSent += size_t(n);
      httpProgress(c);
    }
    if (!c.httpReading) {
      c.httpReading = true;
      watch(c.hfd, EPOLLIN, c.idx, kHttp, EPOLL_CTL_MOD);
    }
    for (int i = 0; i < kHttpReadsPerWake && c.phase == Phase::Http && c.hfd >= 0; ++i) {
      ssize_t n = recv(c.hfd, httpBuf_.data(), httpBuf_.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        return fail(c, std::string("http: recv: ") + std::strerror(errno) + httpWhere(c));
      }
      if (n == 0) return fail(c, "http: the server closed the connection" + httpWhere(c));
      httpProgress(c);
      if (c.httpInBody) {
        onHttpBody(c, httpBuf_.data(), size_t(n));
        continue;
      }
      c.httpHead.append(reinterpret_cast<const char*>(httpBuf_.data()), size_t(n));
      size_t end = c.httpHead.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (c.httpHead.size() > kHttpMaxHead) return fail(c, "http: response head longer than 16 KiB");
        continue;
      }
      std::string rest = c.httpHead.substr(end + 4);
      c.httpHead.resize(end);
      if (auto err = parseHttpHead(c); !err.empty()) return fail(c, "http: " + err);
      c.httpInBody = true;
      std::string().swap(c.httpHead);
      if (!rest.empty()) onHttpBody(c, reinterpret_cast<const uint8_t*>(rest.data()), rest.size());
    }
  }

  std::string httpWhere(const Client& c) const {
    return c.httpInBody ? " at byte " + std::to_string(c.httpBytes) + " of " + std::to_string(c.httpLength)
                        : " before the whole response head";
  }

  // The status line and the headers that frame the body (RFC 9112 s.4, s.6.3); "" or what is wrong.
  std::string parseHttpHead(Client& c) const {
    std::string_view head = c.httpHead;
    size_t eol = head.find("\r\n");
    std::string_view status = head.substr(0, eol);
    if (status.substr(0, 7) != "HTTP/1." || status.size() < 12 || status[8] != ' ')
      return "not an HTTP/1.x status line: " + std::string(status.substr(0, 80));
    if (status.substr(9, 3) != "200") return "status " + std::string(status.substr(9, 80));
    bool haveLength = false;
    while (eol != std::string_view::npos) {
      head.remove_prefix(eol + 2);
      eol = head.find("\r\n");
      std::string_view line = head.substr(0, eol);
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string name(line.substr(0, colon));
      for (auto& ch : name) ch = char(std::tolower(uint8_t(ch)));
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
      if (name == "transfer-encoding")
        return "Transfer-Encoding " + std::string(value) + " (a Content-Length is expected)";
      if (name == "content-length") {
        uint64_t v = 0;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
        if (ec != std::errc() || p != value.data() + value.size() || (haveLength && v != c.httpLength))
          return "bad Content-Length " + std::string(value);
        c.httpLength = v;
        haveLength = true;
      }
    }
    if (!haveLength) return "no Content-Length";
    if (c.httpLength != tftpRef_.size)
      return "Content-Length " + std::to_string(c.httpLength) + " != the file's size " + std::to_string(tftpRef_.size);
    return {};
  }

  void onHttpBody(Client& c, const uint8_t* p, size_t n) {
    if (n > c.httpLength - c.httpBytes) return fail(c, "http: more data than Content-Length" + httpWhere(c));
    if (std::memcmp(tftpRef_.data + c.httpBytes, p, n) != 0)
      return fail(c, "http: data mismatch at byte " + std::to_string(c.httpBytes) + " (+" + std::to_string(n) + ")");
    c.httpBytes += n;
    counters_.httpBytes += n;
    if (c.httpBytes < c.httpLength) return;
    closeFd(c.hfd);
    initrdDone(c);
  }

  // -- iSCSI --

  void syncIscsi(Client& c) {
    if (c.ctx == nullptr || c.destroy) return;
    int fd = iscsi_get_fd(c.ctx);
    uint32_t ev = uint32_t(iscsi_which_events(c.ctx)) & (EPOLLIN | EPOLLOUT);
    if (fd != c.regFd) {
      if (c.regFd >= 0) epoll_ctl(ep_, EPOLL_CTL_DEL, c.regFd, nullptr);  // may be closed already
      c.regFd = fd;
      c.regEv = ev;
      if (fd >= 0) watch(fd, ev, c.idx, kIscsi);
    } else if (fd >= 0 && ev != c.regEv) {
      c.regEv = ev;
      watch(fd, ev, c.idx, kIscsi, EPOLL_CTL_MOD);
    }
  }

  void destroyIscsi(Client& c) {
    if (c.ctx == nullptr) return;
    if (c.regFd >= 0) epoll_ctl(ep_, EPOLL_CTL_DEL, c.regFd, nullptr);
    c.regFd = -1;
    iscsi_destroy_context(c.ctx);
    c.ctx = nullptr;
    c.destroy = false;
  }

  void startIscsi(Client& c) {
    c.initiator = o_.initiatorPrefix + ":" + (c.hostName.empty() ? c.name : c.hostName);
    c.ctx = iscsi_create_context(c.initiator.c_str());
    if (c.ctx == nullptr) return fail(c, "iscsi_create_context failed");
    iscsi_set_targetname(c.ctx, c.target.c_str());
    iscsi_set_session_type(c.ctx, ISCSI_SESSION_NORMAL);
    iscsi_set_header_digest(c.ctx, ISCSI_HEADER_DIGEST_NONE);
    iscsi_set_noautoreconnect(c.ctx, 1);
    c.bindIf = c.ifname;  // SO_BINDTODEVICE: the source address is the one just leased
    iscsi_set_bind_interfaces(c.ctx, c.bindIf.data());
    if (iscsi_full_connect_async(c.ctx, c.portal.c_str(), c.lun, &Storm::onConnected, &c) != 0)
      return fail(c, std::string("iscsi connect: ") + iscsi_get_error(c.ctx));
    syncIscsi(c);
  }

  void onIscsiEvent(Client& c, uint32_t events) {
    if (c.ctx == nullptr || c.destroy) return;
    if (iscsi_service(c.ctx, int(events & (EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP))) < 0) {
      if (c.loggingOut) {
        c.destroy = true;
        return;
      }
      std::string why = std::string("iscsi: ") + iscsi_get_error(c.ctx);
      if (c.regFd >= 0) epoll_ctl(ep_, EPOLL_CTL_DEL, c.regFd, nullptr);  // before any new socket reuses it
      c.regFd = -1;
      return fail(c, why);
    }
    syncIscsi(c);
  }

  static void onConnected(iscsi_context* /*ctx*/, int status, void* /*data*/, void* priv) {
    Client& c = *static_cast<Client*>(priv);
    Storm* self = c.storm;
    if (c.phase != Phase::Login) {
      if (c.phase == Phase::Read && status != SCSI_STATUS_GOOD)  // the connection broke later
        self->fail(c, std::string("iscsi: connection lost: ") + iscsi_get_error(c.ctx));
      return;
    }
    if (status != SCSI_STATUS_GOOD) return self->fail(c, std::string("iscsi login: ") + iscsi_get_error(c.ctx));
    c.tLogin = self->sinceStart();
    if (iscsi_readcapacity16_task(c.ctx, c.lun, &Storm::onCapacity, &c) == nullptr)
      self->fail(c, std::string("iscsi: READ CAPACITY: ") + iscsi_get_error(c.ctx));
  }

  static void onCapacity(iscsi_context* /*ctx*/, int status, void* data, void* priv) {
    Client& c = *static_cast<Client*>(priv);
    Storm* self = c.storm;
    auto* task = static_cast<scsi_task*>(data);
    if (c.phase != Phase::Login) {
      scsi_free_scsi_task(task);
      return;
    }
    if (status != SCSI_STATUS_GOOD) {
      scsi_free_scsi_task(task);
      return self->fail(c, std::string("iscsi: READ CAPACITY failed: ") + iscsi_get_error(c.ctx));
    }
    auto* rc = static_cast<scsi_readcapacity16*>(scsi_datain_unmarshall(task));
    if (rc == nullptr) {
      scsi_free_scsi_task(task);
      return self->fail(c, "iscsi: READ CAPACITY data unreadable");
    }
    c.blockSize = rc->block_length;
    uint64_t bytes = (rc->returned_lba + 1) * uint64_t(rc->block_length);
    scsi_free_scsi_task(task);
    if (c.blockSize == 0 || self->o_.readSize % c.blockSize != 0 || self->o_.readBytes % c.blockSize != 0)
      return self->fail(c, "iscsi: block size " + std::to_string(c.blockSize) + " does not divide the read size");
    if (bytes < self->o_.readBytes)
      return self->fail(c, "iscsi: disk has " + std::to_string(bytes) + " bytes, fewer than --read-bytes");
    c.phase = Phase::Read;
    for (int i = 0; i < self->o_.qd; ++i) {
      auto s = std::make_unique<ReadSlot>();
      s->client = &c;
      s->buf.resize(self->o_.readSize);
      c.slots.push_back(std::move(s));
    }
    for (auto& s : c.slots) self->issueRead(c, *s);
    if (c.inflight == 0 && c.phase == Phase::Read) self->readsDone(c);
  }

  void issueRead(Client& c, ReadSlot& s) {
    if (c.phase != Phase::Read || c.nextOffset >= o_.readBytes) return;
    uint32_t len = uint32_t(std::min<uint64_t>(o_.readSize, o_.readBytes - c.nextOffset));
    s.offset = c.nextOffset;
    s.iov = {s.buf.data(), len};
    if (iscsi_read16_iov_task(c.ctx, c.lun, s.offset / c.blockSize, len, int(c.blockSize), 0, 0, 0, 0, 0,
                              &Storm::onRead, &s, &s.iov, 1) == nullptr)
      return fail(c, std::string("iscsi: READ(16): ") + iscsi_get_error(c.ctx));
    c.nextOffset += len;
    s.busy = true;
    ++c.inflight;
  }

  static void onRead(iscsi_context* /*ctx*/, int status, void* data, void* priv) {
    auto& s = *static_cast<ReadSlot*>(priv);
    Client& c = *s.client;
    Storm* self = c.storm;
    auto* task = static_cast<scsi_task*>(data);
    s.busy = false;
    --c.inflight;
    int residual = task->residual_status != SCSI_RESIDUAL_NO_RESIDUAL ? int(task->residual) : 0;
    scsi_free_scsi_task(task);
    if (c.phase != Phase::Read) return;
    if (status != SCSI_STATUS_GOOD)
      return self->fail(c, "iscsi: READ(16) at " + std::to_string(s.offset) + ": " + iscsi_get_error(c.ctx));
    if (residual != 0) return self->fail(c, "iscsi: READ(16) residual " + std::to_string(residual));
    if (std::memcmp(self->diskRef_.data + s.offset, s.buf.data(), s.iov.iov_len) != 0)
      return self->fail(c, "iscsi: data mismatch at offset " + std::to_string(s.offset));
    c.readDone += s.iov.iov_len;
    self->counters_.iscsiBytes += s.iov.iov_len;
    self->issueRead(c, s);
    if (c.inflight == 0 && c.phase == Phase::Read) self->readsDone(c);
  }

  void readsDone(Client& c) {
    if (c.readDone != o_.readBytes) return fail(c, "iscsi: read " + std::to_string(c.readDone) + " bytes");
    c.tRead = c.tEnd = sinceStart();
    c.phase = Phase::Done;
    --active_;
    // Log out (not timed): the storm is over for this client when its last read has arrived.
    c.loggingOut = true;
    if (iscsi_logout_async(c.ctx, &Storm::onLogout, &c) != 0) c.destroy = true;
  }

  static void onLogout(iscsi_context* /*ctx*/, int /*status*/, void* /*data*/, void* priv) {
    static_cast<Client*>(priv)->destroy = true;
  }

  // After the storm: give the logouts up to 5 s, then close whatever is left.
  void finishLogouts() {
    int64_t end = nowNs() + 5'000'000'000;
    std::vector<epoll_event> events(1024);
    auto pending = [&] {
      return std::any_of(clients_.begin(), clients_.end(), [](const Client& c) { return c.ctx != nullptr && !c.destroy; });
    };
    while (pending() && nowNs() < end) {
      int n = epoll_wait(ep_, events.data(), int(events.size()), 20);
      for (int k = 0; k < n; ++k) dispatch(events[size_t(k)]);
    }
    for (auto& c : clients_) destroyIscsi(c);
  }

  // Retransmission timers and the deadline.
  void scan(int64_t now, bool pastDeadline) {
    for (auto& c : clients_) {
      if (c.phase == Phase::Done || c.phase == Phase::Failed) {
        if (c.destroy) destroyIscsi(c);
        continue;
      }
      if (pastDeadline) {
        fail(c, std::string("deadline: still in ") + phaseName(c.phase));
        if (c.destroy) destroyIscsi(c);
        continue;
      }
      if (c.phase == Phase::Dhcp && now >= c.dhcpDeadline) {
        ++counters_.dhcpRetransmits;
        c.dhcpWaitNs = std::min<int64_t>(c.dhcpWaitNs * 2, 8'000'000'000);
        if (c.requesting && ++c.dhcpTries >= 4) {
          sendDiscover(c);  // no ACK after 4 REQUESTs: start over (RFC 2131 s.3.1 step 3)
        } else {
          sendDhcp(c, c.requesting ? kDhcpRequest : kDhcpDiscover);
        }
      } else if (c.phase == Phase::Http && now >= c.httpDeadline) {
        // As for TFTP: what already waits on the socket is progress, not a timeout.
        if (c.hfd >= 0 && c.httpReading) onHttpEvent(c, EPOLLIN);
        if (c.phase != Phase::Http || now < c.httpDeadline) continue;
        ++counters_.httpTimeouts;
        fail(c, "http: no progress for " + std::to_string(o_.httpTimeoutMs) + " ms" +
                    (c.httpConnected ? httpWhere(c) : std::string(" connecting")));
      } else if (c.phase == Phase::Tftp && now >= c.tftpDeadline) {
        // Data already queued on the socket (this loop was busy elsewhere) is not a timeout.
        if (c.ufd >= 0) onUdpReadable(c);
        if (c.phase != Phase::Tftp || now < c.tftpDeadline) continue;
        ++counters_.tftpTimeouts;
        if (!c.tftpConnected) ++counters_.tftpTmoRrq;
        else if (c.gapAcked) ++counters_.tftpTmoAfterGap;
        else if (c.expected == 1) ++counters_.tftpTmoFirst;
        else if (c.inWindow == 0) ++counters_.tftpTmoWindowStart;
        else ++counters_.tftpTmoMidWindow;
        if (++c.tftpTimeouts > o_.tftpRetries) {
          fail(c, c.oack || c.expected > 1 ? "tftp: timeout at block " + std::to_string(c.expected) : "tftp: no reply to RRQ");
          continue;
        }
        c.gapAcked = false;
        c.inWindow = 0;
        if (!c.tftpConnected) sendRrq(c);
        else {
          sendAck(c, c.expected - 1);
          c.tftpDeadline = now + int64_t(o_.tftpTimeoutMs) * 1'000'000;
        }
      }
    }
  }

  void cleanupAddresses() {
    for (auto& c : clients_)
      if (c.addrAdded) netlink_.address(false, c.ifindex, c.leased, c.prefix);
  }

  // -- report --

  static std::string jsonEscape(std::string_view s) {
    std::string out;
    for (char ch : s) {
      if (ch == '"' || ch == '\\') {
        out += '\\';
        out += ch;
      } else if (uint8_t(ch) < 0x20) {
        char b[8];
        std::snprintf(b, sizeof b, "\\u%04x", ch);
        out += b;
      } else {
        out += ch;
      }
    }
    return out;
  }

  static std::string stats(std::vector<double> v) {
    if (v.empty()) return "null";
    std::sort(v.begin(), v.end());
    auto q = [&](double f) { return v[std::min(v.size() - 1, size_t(f * double(v.size() - 1) + 0.5))]; };
    char b[160];
    std::snprintf(b, sizeof b, "{\"median\":%.3f,\"p90\":%.3f,\"max\":%.3f,\"min\":%.3f}", q(0.5), q(0.9), v.back(), v.front());
    return b;
  }

  void report() {
    constexpr double kS = 1e9;
    std::vector<double> dhcp, initrd, login, read, total;
    double lastDhcp = 0, lastInitrd = 0, lastLogin = 0, lastRead = 0;
    size_t ok = 0;
    std::map<std::string, size_t> failedBy;
    std::map<std::string, size_t> reasons;
    for (const auto& c : clients_) {
      if (c.tDhcp >= 0) lastDhcp = std::max(lastDhcp, double(c.tDhcp) / kS);
      if (c.tInitrd >= 0) lastInitrd = std::max(lastInitrd, double(c.tInitrd) / kS);
      if (c.tLogin >= 0) lastLogin = std::max(lastLogin, double(c.tLogin) / kS);
      if (c.tRead >= 0) lastRead = std::max(lastRead, double(c.tRead) / kS);
      if (c.phase == Phase::Done) {
        ++ok;
        dhcp.push_back(double(c.tDhcp) / kS);
        initrd.push_back(double(c.tInitrd - c.tDhcp) / kS);
        login.push_back(double(c.tLogin - c.tInitrd) / kS);
        read.push_back(double(c.tRead - c.tLogin) / kS);
        total.push_back(double(c.tRead) / kS);
      } else {
        ++failedBy[phaseName(c.failedIn)];
        // Group reasons without the per-client numbers that follow "at"/"offset".
        ++reasons[c.error.substr(0, c.error.find(" at "))];
      }
    }
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    double cpu = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    std::string fb, rs;
    for (const auto& [k, v] : failedBy) fb += (fb.empty() ? "" : ",") + ("\"" + std::string(k) + "\":" + std::to_string(v));
    size_t shown = 0;
    for (const auto& [k, v] : reasons) {
      if (shown++ == 8) break;
      rs += (rs.empty() ? "" : ",") + ("{\"reason\":\"" + jsonEscape(k) + "\",\"clients\":" + std::to_string(v) + "}");
    }
    std::printf(
        "{\"label\":\"%s\",\"clients\":%zu,\"ok\":%zu,\"failed\":%zu,\"makespan_s\":%.3f,\"initrd_via\":\"%s\","
        "\"last_dhcp_s\":%.3f,\"last_initrd_s\":%.3f,\"last_login_s\":%.3f,\"last_read_s\":%.3f,"
        "\"dhcp_s\":%s,\"initrd_s\":%s,\"login_s\":%s,\"read_s\":%s,\"total_s\":%s,"
        "\"http_bytes\":%llu,\"http_timeouts\":%llu,"
        "\"tftp_bytes\":%llu,\"tftp_blocks\":%llu,\"iscsi_bytes\":%llu,\"tftp_file_bytes\":%llu,\"read_bytes\":%llu,\"blksize\":%d,\"windowsize\":%d,"
        "\"read_size\":%u,\"qd\":%d,\"dhcp_retransmits\":%llu,\"dhcp_naks\":%llu,\"dhcp_strays\":%llu,"
        "\"tftp_timeouts\":%llu,\"tftp_out_of_order\":%llu,"
        "\"tftp_timeouts_by\":{\"rrq\":%llu,\"first_block\":%llu,\"window_start\":%llu,\"mid_window\":%llu,"
        "\"after_gap_ack\":%llu},\"client_cpu_s\":%.3f,"
        "\"loop_max_pass_ms\":%.1f,\"netlink_total_ms\":%.1f,\"netlink_max_ms\":%.1f,\"failed_in\":{%s},\"errors\":[%s]}\n",
        jsonEscape(o_.label).c_str(), clients_.size(), ok, clients_.size() - ok, double(endNs_ - t0_) / kS,
        o_.httpUrl.empty() ? "tftp" : "http", lastDhcp, lastInitrd, lastLogin, lastRead, stats(dhcp).c_str(),
        stats(initrd).c_str(), stats(login).c_str(), stats(read).c_str(), stats(total).c_str(),
        (unsigned long long)counters_.httpBytes, (unsigned long long)counters_.httpTimeouts,
        (unsigned long long)counters_.tftpBytes, (unsigned long long)counters_.tftpBlocks,
        (unsigned long long)counters_.iscsiBytes, (unsigned long long)tftpRef_.size,
        (unsigned long long)(o_.tftpOnly ? 0 : o_.readBytes),
        o_.blksize, o_.windowsize, o_.readSize, o_.qd, (unsigned long long)counters_.dhcpRetransmits,
        (unsigned long long)counters_.dhcpNaks, (unsigned long long)counters_.dhcpStrays,
        (unsigned long long)counters_.tftpTimeouts, (unsigned long long)counters_.tftpOutOfOrder,
        (unsigned long long)counters_.tftpTmoRrq, (unsigned long long)counters_.tftpTmoFirst,
        (unsigned long long)counters_.tftpTmoWindowStart, (unsigned long long)counters_.tftpTmoMidWindow,
        (unsigned long long)counters_.tftpTmoAfterGap, cpu,
        double(counters_.maxPassNs) / 1e6, double(counters_.netlinkNs) / 1e6, double(counters_.netlinkMaxNs) / 1e6, fb.c_str(),
        rs.c_str());
    std::fflush(stdout);
    if (!o_.perClient.empty()) {
      std::ofstream f(o_.perClient);
      f << "name\tifname\tip\tphase\tdhcp_s\tinitrd_end_s\tlogin_end_s\tread_end_s\terror\n";
      auto t = [](int64_t ns) { return ns < 0 ? std::string("-") : std::to_string(double(ns) / 1e9); };
      for (const auto& c : clients_)
        f << c.name << '\t' << c.ifname << '\t' << (c.leased ? ipText(c.leased) : "-") << '\t'
          << (c.phase == Phase::Failed ? std::string("failed in ") + phaseName(c.failedIn) : phaseName(c.phase)) << '\t'
          << t(c.tDhcp) << '\t' << t(c.tInitrd) << '\t' << t(c.tLogin) << '\t' << t(c.tRead) << '\t' << c.error << '\n';
    }
  }

  const Options& o_;
  std::vector<Client> clients_;
  MappedFile tftpRef_, diskRef_;
  Netlink netlink_;
  Counters counters_;
  int ep_ = -1;
  std::vector<int> parked_;  // packet sockets of clients past DHCP, closed at the end
  size_t active_ = 0;
  int64_t t0_ = 0, endNs_ = 0;
  std::vector<uint8_t> httpBuf_ = std::vector<uint8_t>(256 << 10);  // one receive at a time (one thread)
};

std::vector<Client> readClients(const std::string& path) {
  std::ifstream f(path);
  if (!f) die("cannot read " + path);
  std::vector<Client> out;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream in(line);
    std::string ifname, mac, ip, name;
    in >> ifname >> mac >> ip >> name;
    Client c;
    c.idx = out.size();
    c.ifname = ifname;
    c.name = name.empty() ? ifname : name;
    c.ifindex = int(if_nametoindex(ifname.c_str()));
    if (c.ifindex == 0) die("no interface " + ifname + " (run storm_load inside the clients' namespace)");
    unsigned m[6];
    if (std::sscanf(mac.c_str(), "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) die("bad MAC " + mac);
    for (int i = 0; i < 6; ++i) c.mac[size_t(i)] = uint8_t(m[i]);
    if (!ip.empty() && ip != "-" && inet_pton(AF_INET, ip.c_str(), &c.expectIp) != 1) die("bad address " + ip);
    out.push_back(std::move(c));
  }
  if (out.empty()) die(path + ": no clients");
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parseArgs(argc, argv);
  auto clients = readClients(o.clientsFile);
  rlimit rl{};
  rlim_t want = rlim_t(clients.size()) * 4 + 64;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, want);
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  Storm storm(o, std::move(clients));
  return storm.run();
}
