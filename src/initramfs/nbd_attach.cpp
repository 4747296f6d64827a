// pxedust-nbd-attach: attaches an NBD export as /dev/nbdN through the kernel's netlink interface,
// and keeps it attached across server restarts. The initramfs runs it for an NBD root.
//
//   pxedust-nbd-attach SERVER PORT EXPORT [DEAD_TIMEOUT_SECONDS]
//   pxedust-nbd-attach --once SERVER PORT EXPORT    attach, print the device, exit (no reconnecting)
//   pxedust-nbd-attach --detach /dev/nbdN           disconnect it
//
// It connects, asks for the export (NBD_OPT_GO), hands the socket to the kernel (NBD_CMD_CONNECT)
// with a dead-connection timeout, prints the device and goes to the background. When the kernel
// reports the connection dead (NBD_CMD_LINK_DEAD), it connects again and hands over the new socket
// (NBD_CMD_RECONFIGURE); meanwhile the kernel holds the requests, for up to DEAD_TIMEOUT_SECONDS
// (default 600), instead of failing them. A root file system sees a server restart as a pause.
// (Debian 12's nbd-client reconnects only in its ioctl mode, where the kernel fails every request
// made while the connection is down: ext4 aborts its journal.)
//
// Its name starts with '@' once it runs in the background, the mark systemd's shutdown leaves
// running (a root storage daemon). Messages go to the kernel log (/dev/kmsg), the console.
// Static, no libraries: it outlives the initramfs it came from.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/genetlink.h>
#include <linux/nbd-netlink.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "nbd/wire/client.hpp"

namespace {
namespace nbdc = pxedust::nbd::wire::client;

std::string g_server, g_port, g_export;
bool g_background = false;

// In the background: `level` is the kernel log's (3 error, 5 notice); the console shows errors.
void say(const std::string& text, int level = 3) {
  std::string line = "pxedust-nbd-attach: " + text + "\n";
  if (g_background) {
    line = "<" + std::to_string(level) + ">" + line;
    int fd = ::open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      ssize_t n = ::write(fd, line.data(), line.size());
      (void)n;
      ::close(fd);
    }
  } else {
    std::fputs(line.c_str(), stderr);
  }
}

bool readExact(int fd, std::uint8_t* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

bool writeAll(int fd, const std::uint8_t* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::write(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// A connected TCP socket with the export negotiated, or -1 (with `why` set).
int connectExport(nbdc::ExportInfo& info, std::string& why) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int port = std::atoi(g_port.c_str());
  if (port <= 0 || port > 65535) {
    why = "bad port " + g_port;
    return -1;
  }
  if (auto* a4 = reinterpret_cast<sockaddr_in*>(&ss); ::inet_pton(AF_INET, g_server.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<std::uint16_t>(port));
    len = sizeof(sockaddr_in);
  } else if (auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss); ::inet_pton(AF_INET6, g_server.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<std::uint16_t>(port));
    len = sizeof(sockaddr_in6);
  } else {
    why = "server must be an IP address: " + g_server;
    return -1;
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    why = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // A server that vanished without closing (power loss) is noticed in about 30 s.
  int idle = 10, interval = 5, count = 4;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  // The handshake must not hang on a server that accepts and says nothing.
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    why = "connect to " + g_server + ":" + g_port + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  auto fail = [&](std::string w) {
    why = std::move(w);
    ::close(fd);
    return -1;
  };
  std::array<std::uint8_t, nbdc::kGreetingSize> greeting{};
  if (!readExact(fd, greeting.data(), greeting.size())) return fail("no greeting from the server");
  auto g = nbdc::parseGreeting(greeting);
  if (!g.error.empty()) return fail(g.error);
  auto go = nbdc::goRequest(g.flags, g_export);
  if (!writeAll(fd, go.data(), go.size())) return fail("the server closed the connection");
  bool haveInfo = false;
  for (int replies = 0; replies < 64; ++replies) {
    std::array<std::uint8_t, nbdc::kReplyHeaderSize> head{};
    if (!readExact(fd, head.data(), head.size())) return fail("the server closed the connection during NBD_OPT_GO");
    auto h = nbdc::parseReplyHeader(head);
    if (!h) return fail("a malformed option reply");
    std::vector<std::uint8_t> data(h->length);
    if (!readExact(fd, data.data(), data.size())) return fail("the server closed the connection during NBD_OPT_GO");
    if (h->type & pxedust::nbd::wire::rep::kErrorBit) return fail("export " + g_export + ": " + nbdc::replyError(h->type, data));
    if (h->type == pxedust::nbd::wire::rep::kInfo) {
      if (auto i = nbdc::parseExportInfo(data)) {
        info = *i;
        haveInfo = true;
      }
    } else if (h->type == pxedust::nbd::wire::rep::kAck) {
      if (!haveInfo) return fail("NBD_OPT_GO acknowledged without the export's size");
      timeval none{0, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
      return fd;
    }
  }
  return fail("too many option replies");
}

// ---- generic netlink, the few messages this needs ----

class Message {
 public:
  Message(std::uint16_t type, std::uint8_t cmd) {
    buf_.resize(NLMSG_HDRLEN + GENL_HDRLEN);
    auto* h = reinterpret_cast<nlmsghdr*>(buf_.data());
    h->nlmsg_type = type;
    h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    auto* g = reinterpret_cast<genlmsghdr*>(buf_.data() + NLMSG_HDRLEN);
    g->cmd = cmd;
    g->version = type == GENL_ID_CTRL ? 1 : NBD_GENL_VERSION;
  }
  void put(std::uint16_t type, const void* data, std::size_t len) {
    std::size_t at = buf_.size();
    buf_.resize(at + NLA_ALIGN(NLA_HDRLEN + len));
    auto* a = reinterpret_cast<nlattr*>(buf_.data() + at);
    a->nla_len = static_cast<std::uint16_t>(NLA_HDRLEN + len);
    a->nla_type = type;
    std::memcpy(buf_.data() + at + NLA_HDRLEN, data, len);
  }
  void u32(std::uint16_t type, std::uint32_t v) { put(type, &v, sizeof v); }
  void u64(std::uint16_t type, std::uint64_t v) { put(type, &v, sizeof v); }
  std::size_t nest(std::uint16_t type) {
    std::size_t at = buf_.size();
    put(static_cast<std::uint16_t>(type | NLA_F_NESTED), nullptr, 0);
    return at;
  }
  void end(std::size_t at) { reinterpret_cast<nlattr*>(buf_.data() + at)->nla_len = static_cast<std::uint16_t>(buf_.size() - at); }
  std::vector<std::uint8_t>& finish(std::uint32_t seq) {
    auto* h = reinterpret_cast<nlmsghdr*>(buf_.data());
    h->nlmsg_len = static_cast<std::uint32_t>(buf_.size());
    h->nlmsg_seq = seq;
    return buf_;
  }

 private:
  std::vector<std::uint8_t> buf_;
};

// Calls fn(type, payload) for each attribute in `b`, stopping at the first malformed one.
template <typename Fn>
void forEachAttr(std::span<const std::uint8_t> b, Fn&& fn) {
  while (b.size() >= NLA_HDRLEN) {
    nlattr a;
    std::memcpy(&a, b.data(), sizeof a);
    if (a.nla_len < NLA_HDRLEN || a.nla_len > b.size()) return;
    fn(static_cast<std::uint16_t>(a.nla_type & NLA_TYPE_MASK), b.subspan(NLA_HDRLEN, a.nla_len - NLA_HDRLEN));
    b = b.subspan(std::min<std::size_t>(b.size(), NLA_ALIGN(a.nla_len)));
  }
}

std::uint32_t g_seq = 1;

// Sends a request and reads until its acknowledgement; onReply sees each reply's genetlink
// attributes. 0, or the negative errno the kernel answered.
template <typename Fn>
int request(int nl, Message& m, Fn&& onReply) {
  std::uint32_t seq = g_seq++;
  auto& out = m.finish(seq);
  if (::send(nl, out.data(), out.size(), 0) < 0) return -errno;
  std::vector<std::uint8_t> in(64 * 1024);
  for (;;) {
    ssize_t n = ::recv(nl, in.data(), in.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    std::span<const std::uint8_t> b(in.data(), static_cast<std::size_t>(n));
    while (b.size() >= NLMSG_HDRLEN) {
      nlmsghdr h;
      std::memcpy(&h, b.data(), sizeof h);
      if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > b.size()) break;
      auto body = b.subspan(NLMSG_HDRLEN, h.nlmsg_len - NLMSG_HDRLEN);
      if (h.nlmsg_seq == seq) {
        if (h.nlmsg_type == NLMSG_ERROR && body.size() >= sizeof(int)) {
          int err;
          std::memcpy(&err, body.data(), sizeof err);
          return err;
        }
        if (h.nlmsg_type != NLMSG_DONE && body.size() >= GENL_HDRLEN) onReply(body.subspan(GENL_HDRLEN));
      }
      b = b.subspan(std::min<std::size_t>(b.size(), NLMSG_ALIGN(h.nlmsg_len)));
    }
  }
}

int openNetlink() {
  int nl = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
  if (nl < 0) return -1;
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (::bind(nl, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(nl);
    return -1;
  }
  return nl;
}

void putSocket(Message& m, int fd) {
  auto socks = m.nest(NBD_ATTR_SOCKETS);
  auto item = m.nest(NBD_SOCK_ITEM);
  m.u32(NBD_SOCK_FD, static_cast<std::uint32_t>(fd));
  m.end(item);
  m.end(socks);
}

[[noreturn]] void die(const std::string& why) {
  say(why);
  std::exit(1);
}

}  // namespace

// The generic netlink family of NBD (and its event group's id, when asked for), or die.
std::uint16_t nbdFamily(int nl, std::uint32_t* group) {
  std::uint16_t family = 0;
  Message m(GENL_ID_CTRL, CTRL_CMD_GETFAMILY);
  m.put(CTRL_ATTR_FAMILY_NAME, NBD_GENL_FAMILY_NAME, sizeof NBD_GENL_FAMILY_NAME);
  int rc = request(nl, m, [&](std::span<const std::uint8_t> attrs) {
    forEachAttr(attrs, [&](std::uint16_t type, std::span<const std::uint8_t> v) {
      if (type == CTRL_ATTR_FAMILY_ID && v.size() >= 2) std::memcpy(&family, v.data(), 2);
      if (type != CTRL_ATTR_MCAST_GROUPS || group == nullptr) return;
      forEachAttr(v, [&](std::uint16_t, std::span<const std::uint8_t> grp) {
        std::string name;
        std::uint32_t id = 0;
        forEachAttr(grp, [&](std::uint16_t t, std::span<const std::uint8_t> x) {
          if (t == CTRL_ATTR_MCAST_GRP_NAME) name.assign(reinterpret_cast<const char*>(x.data()), strnlen(reinterpret_cast<const char*>(x.data()), x.size()));
          if (t == CTRL_ATTR_MCAST_GRP_ID && x.size() >= 4) std::memcpy(&id, x.data(), 4);
        });
        if (name == NBD_GENL_MCAST_GROUP_NAME) *group = id;
      });
    });
  });
  if (rc != 0 || family == 0) die("the kernel has no NBD netlink interface (is the nbd module loaded?)");
  return family;
}

int detach(const char* device) {
  unsigned index = 0;
  if (std::sscanf(device, "/dev/nbd%u", &index) != 1) die(std::string("not an NBD device: ") + device);
  int nl = openNetlink();
  if (nl < 0) die(std::string("netlink: ") + std::strerror(errno));
  Message m(nbdFamily(nl, nullptr), NBD_CMD_DISCONNECT);
  m.u32(NBD_ATTR_INDEX, index);
  int rc = request(nl, m, [](std::span<const std::uint8_t>) {});
  if (rc != 0) die(std::string("NBD_CMD_DISCONNECT: ") + std::strerror(-rc));
  return 0;
}

int main(int argc, char** argv) {
  bool once = false;
  if (argc == 3 && std::strcmp(argv[1], "--detach") == 0) return detach(argv[2]);
  if (argc >= 2 && std::strcmp(argv[1], "--once") == 0) {
    once = true;
    ++argv;
    --argc;
  }
  if (argc < 4 || argc > 5) {
    std::fprintf(stderr,
                 "usage: pxedust-nbd-attach [--once] SERVER PORT EXPORT [DEAD_TIMEOUT_SECONDS]\n"
                 "       pxedust-nbd-attach --detach /dev/nbdN\n");
    return 2;
  }
  g_server = argv[1];
  g_port = argv[2];
  g_export = argv[3];
  std::uint64_t deadTimeout = argc == 5 ? std::strtoull(argv[4], nullptr, 10) : 600;

  nbdc::ExportInfo info;
  std::string why;
  int sock = -1;
  for (int attempt = 0; attempt < 10 && sock < 0; ++attempt) {
    if (attempt > 0) ::sleep(1);
    sock = connectExport(info, why);
  }
  if (sock < 0) die(why);

  int nl = openNetlink();
  if (nl < 0) die(std::string("netlink: ") + std::strerror(errno));
  std::uint32_t group = 0;
  const std::uint16_t family = nbdFamily(nl, &group);
  // Listen for dead links before there is one to miss.
  int events = -1;
  if (!once) {
    events = openNetlink();
    if (events < 0 || group == 0 ||
        ::setsockopt(events, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) != 0)
      die("cannot listen to the NBD netlink events");
  }

  std::uint32_t index = UINT32_MAX;
  {
    Message m(family, NBD_CMD_CONNECT);
    m.u64(NBD_ATTR_SIZE_BYTES, info.size);
    m.u64(NBD_ATTR_BLOCK_SIZE_BYTES, 512);
    m.u64(NBD_ATTR_SERVER_FLAGS, info.flags);
    if (!once) m.u64(NBD_ATTR_DEAD_CONN_TIMEOUT, deadTimeout);
    putSocket(m, sock);
    int rc = request(nl, m, [&](std::span<const std::uint8_t> attrs) {
      forEachAttr(attrs, [&](std::uint16_t type, std::span<const std::uint8_t> v) {
        if (type == NBD_ATTR_INDEX && v.size() >= 4) std::memcpy(&index, v.data(), 4);
      });
    });
    if (rc != 0) die(std::string("NBD_CMD_CONNECT: ") + std::strerror(-rc));
    if (index == UINT32_MAX) die("NBD_CMD_CONNECT: the kernel named no device");
  }
  ::close(sock);  // the kernel holds its own reference
  std::printf("/dev/nbd%u\n", index);
  std::fflush(stdout);
  if (once) return 0;

  // In the background from here: the caller goes on to mount the device.
  pid_t pid = ::fork();
  if (pid < 0) die(std::string("fork: ") + std::strerror(errno));
  if (pid > 0) return 0;
  ::setsid();
  int null = ::open("/dev/null", O_RDWR);
  if (null >= 0) {
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    if (null > 2) ::close(null);
  }
  g_background = true;
  argv[0][0] = '@';

  std::vector<std::uint8_t> in(16 * 1024);
  for (;;) {
    ssize_t n = ::recv(events, in.data(), in.size(), 0);
    if (n < 0) {
      if (errno == EINTR || errno == ENOBUFS) continue;
      die(std::string("netlink events: ") + std::strerror(errno));
    }
    bool dead = false;
    std::span<const std::uint8_t> b(in.data(), static_cast<std::size_t>(n));
    while (b.size() >= NLMSG_HDRLEN + GENL_HDRLEN) {
      nlmsghdr h;
      std::memcpy(&h, b.data(), sizeof h);
      if (h.nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN || h.nlmsg_len > b.size()) break;
      genlmsghdr g;
      std::memcpy(&g, b.data() + NLMSG_HDRLEN, sizeof g);
      if (h.nlmsg_type == family && g.cmd == NBD_CMD_LINK_DEAD) {
        forEachAttr(b.subspan(NLMSG_HDRLEN + GENL_HDRLEN, h.nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN),
                    [&](std::uint16_t type, std::span<const std::uint8_t> v) {
                      std::uint32_t i = UINT32_MAX;
                      if (type == NBD_ATTR_INDEX && v.size() >= 4) std::memcpy(&i, v.data(), 4);
                      if (i == index) dead = true;
                    });
      }
      b = b.subspan(std::min<std::size_t>(b.size(), NLMSG_ALIGN(h.nlmsg_len)));
    }
    if (!dead) continue;
    say("nbd" + std::to_string(index) + ": the connection to " + g_server + ":" + g_port + " died; reconnecting");
    unsigned delay = 1;
    for (int attempt = 1;; ++attempt) {
      nbdc::ExportInfo again;
      int s = connectExport(again, why);
      if (s >= 0 && again.size != info.size) {
        ::close(s);
        s = -1;
        why = "the export's size changed; not reattaching";
      }
      if (s >= 0) {
        Message m(family, NBD_CMD_RECONFIGURE);
        m.u32(NBD_ATTR_INDEX, index);
        putSocket(m, s);
        int rc = request(nl, m, [](std::span<const std::uint8_t>) {});
        ::close(s);
        if (rc == 0) {
          say("nbd" + std::to_string(index) + ": reconnected to " + g_server + ":" + g_port + " after " +
              std::to_string(attempt) + " attempt(s)", 5);
          break;
        }
        why = std::string("NBD_CMD_RECONFIGURE: ") + std::strerror(-rc);
      }
      if (attempt == 1 || attempt % 30 == 0) say("nbd" + std::to_string(index) + ": " + why + "; retrying");
      ::sleep(delay);
      delay = std::min(delay * 2, 5u);
    }
  }
}
