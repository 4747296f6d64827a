// The real NbdService on loopback, driven by a scripted client built on the wire codec (a fake client
// against the real server): what real clients do not show on demand — a GO for another host's export
// and the same connection carrying on, pipelined requests answered out of order, refused WRITEs whose
// payload must be drained, unknown commands, block status of written, trimmed and untouched ranges,
// and a session ended by releaseDisk(); and over STARTTLS with a GnuTLS client (tls = "require"):
// LIST and GO by PSK identity, a plain client refused, many requests in flight through TLS, a reload
// that drops an identity, and bad TLS input closing that connection only.
#include "nbd/service.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/post.hpp>
#include <future>
#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include "blockstore/tests/test_util.hpp"
#include "config/config.hpp"
#include "inventory/inventory.hpp"
#include "nbd/config.hpp"
#include "nbd/tests/tls_test_util.hpp"
#include "nbd/wire/protocol.hpp"
#include "nbd/wire/transmission.hpp"

namespace pxedust::nbd {
namespace {

using Bytes = std::vector<std::uint8_t>;

std::uint64_t be(const std::uint8_t* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = v << 8 | p[i];
  return v;
}
void put(Bytes& out, std::uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

struct OptReply {
  std::uint32_t option = 0;
  std::uint32_t type = 0;
  Bytes data;
};

struct Chunk {
  std::uint16_t flags = 0;
  std::uint16_t type = 0;
  std::uint64_t cookie = 0;
  Bytes payload;
  [[nodiscard]] std::uint32_t error() const { return payload.size() >= 4 ? static_cast<std::uint32_t>(be(payload.data(), 4)) : 0; }
};

// A blocking NBD client: fixed newstyle, structured replies.
class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Client() {
    tls_.reset();
    ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool greet() {
    Bytes hello(18);
    if (!readExactly(hello.data(), hello.size())) return false;
    if (be(hello.data(), 8) != wire::kNbdMagic || be(hello.data() + 8, 8) != wire::kOptionMagic) return false;
    Bytes flags;
    put(flags, wire::clientflag::kFixedNewstyle | wire::clientflag::kNoZeroes, 4);
    send(flags);
    return true;
  }
  void option(std::uint32_t opt, const Bytes& data = {}) {
    Bytes out;
    put(out, wire::kOptionMagic, 8);
    put(out, opt, 4);
    put(out, data.size(), 4);
    out.insert(out.end(), data.begin(), data.end());
    send(out);
  }
  std::optional<OptReply> optReply() {
    Bytes h(20);
    if (!readExactly(h.data(), h.size())) return std::nullopt;
    OptReply r{static_cast<std::uint32_t>(be(h.data() + 8, 4)), static_cast<std::uint32_t>(be(h.data() + 12, 4)), {}};
    r.data.resize(be(h.data() + 16, 4));
    if (!readExactly(r.data.data(), r.data.size())) return std::nullopt;
    return r;
  }
  // Replies to one option up to its ACK or error; the last one is returned, the others appended to `all`.
  std::optional<OptReply> finishOption(std::vector<OptReply>* all = nullptr) {
    for (;;) {
      auto r = optReply();
      if (!r || r->type == wire::rep::kAck || (r->type & wire::rep::kErrorBit) != 0) return r;
      if (all) all->push_back(*r);
    }
  }
  static Bytes nameData(std::string_view name, std::size_t trailer32 = 0, std::size_t trailer16 = 0) {
    Bytes d;
    put(d, name.size(), 4);
    d.insert(d.end(), name.begin(), name.end());
    if (trailer32) put(d, 0, 4);
    if (trailer16) put(d, 0, 2);
    return d;
  }
  // STRUCTURED_REPLY, SET_META_CONTEXT base:allocation, GO; true when in transmission.
  bool open(std::string_view name, std::uint32_t* goError = nullptr) {
    option(wire::opt::kStructuredReply);
    if (auto r = finishOption(); !r || r->type != wire::rep::kAck) return false;
    Bytes meta = nameData(name);
    put(meta, 1, 4);
    put(meta, wire::kBaseAllocation.size(), 4);
    meta.insert(meta.end(), wire::kBaseAllocation.begin(), wire::kBaseAllocation.end());
    option(wire::opt::kSetMetaContext, meta);
    std::vector<OptReply> contexts;
    auto r = finishOption(&contexts);
    if (!r) return false;
    if (r->type == wire::rep::kAck && !contexts.empty()) contextId_ = static_cast<std::uint32_t>(be(contexts[0].data.data(), 4));
    option(wire::opt::kGo, nameData(name, 0, 1));
    std::vector<OptReply> infos;
    auto go = finishOption(&infos);
    if (!go) return false;
    if (goError) *goError = go->type;
    if (go->type != wire::rep::kAck) return false;
    for (const auto& i : infos)
      if (i.data.size() >= 12 && be(i.data.data(), 2) == wire::info::kExport) size_ = be(i.data.data() + 2, 8);
    return true;
  }

  void request(std::uint16_t type, std::uint64_t cookie, std::uint64_t offset, std::uint32_t length,
               std::uint16_t flags = 0, const Bytes& payload = {}) {
    auto h = wire::serializeRequest({flags, type, cookie, offset, length});
    Bytes out(h.begin(), h.end());
    out.insert(out.end(), payload.begin(), payload.end());
    send(out);
  }
  std::optional<Chunk> chunk() {
    Bytes h(20);
    if (!readExactly(h.data(), h.size())) return std::nullopt;
    if (be(h.data(), 4) != wire::kStructuredReplyMagic) return std::nullopt;
    Chunk c{static_cast<std::uint16_t>(be(h.data() + 4, 2)), static_cast<std::uint16_t>(be(h.data() + 6, 2)),
            be(h.data() + 8, 8), {}};
    c.payload.resize(be(h.data() + 16, 4));
    if (!readExactly(c.payload.data(), c.payload.size())) return std::nullopt;
    return c;
  }
  Bytes read(std::uint64_t offset, std::uint32_t length) {
    request(wire::cmd::kRead, 0x77, offset, length);
    auto c = chunk();
    EXPECT_TRUE(c && c->type == wire::chunk::kOffsetData && c->cookie == 0x77);
    return c && c->payload.size() >= 8 ? Bytes(c->payload.begin() + 8, c->payload.end()) : Bytes{};
  }
  bool closedByServer() {
    std::uint8_t b;
    if (tls_) return !tls_->recvAll(&b, 1);
    return ::recv(fd_, &b, 1, 0) == 0;
  }
  // STARTTLS, then the TLS handshake on this socket; the option's reply type (ACK) in `reply`.
  bool startTls(std::unique_ptr<testing::ClientTls> tls, std::uint32_t* reply = nullptr) {
    option(wire::opt::kStartTls);
    auto r = finishOption();
    if (reply) *reply = r ? r->type : 0;
    if (!r || r->type != wire::rep::kAck) return false;
    tls->useFd(fd_);
    int rc;
    do rc = tls->handshake();
    while (rc < 0 && gnutls_error_is_fatal(rc) == 0);
    if (rc < 0) return false;
    tls_ = std::move(tls);
    return true;
  }
  // Raw bytes on the socket, under TLS or not (for garbage).
  void sendRaw(const Bytes& out) { ::send(fd_, out.data(), out.size(), MSG_NOSIGNAL); }
  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] bool connected() const { return connected_; }
  [[nodiscard]] std::uint64_t size() const { return size_; }
  [[nodiscard]] std::uint32_t contextId() const { return contextId_; }

 private:
  void send(const Bytes& out) {
    if (tls_) {
      tls_->sendAll(out);
      return;
    }
    std::size_t sent = 0;
    while (sent < out.size()) {
      ssize_t n = ::send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
  }
  bool readExactly(std::uint8_t* p, std::size_t n) {
    if (tls_) return tls_->recvAll(p, n);
    while (n > 0) {
      ssize_t k = ::recv(fd_, p, n, 0);
      if (k <= 0) return false;
      p += k;
      n -= static_cast<std::size_t>(k);
    }
    return true;
  }
  int fd_ = -1;
  std::unique_ptr<testing::ClientTls> tls_;
  bool connected_ = false;
  std::uint64_t size_ = 0;
  std::uint32_t contextId_ = 0;
};

class NbdServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = blockstore::Store::open(dir_ / "store");
    ASSERT_TRUE(store) << store.error().message;
    base_ = blockstore::testing::randomBytes(4 << 20, 33);
    blockstore::testing::writeWhole(dir_ / "base.img", base_);
    ASSERT_TRUE((*store)->importImage(dir_ / "base.img", "base"));
    auto cfg = config::loadString(configText(), "nbd.toml", {schema()});
    auto nbd = *configIn(cfg);
    nbd.listen = {{asio::ip::make_address("127.0.0.1"), 0}};  // any free port
    service_ = std::make_unique<NbdService>(loop_, std::make_shared<blockstore::HostDisks>(*store),
                                            std::make_shared<blockstore::WorkerPool>(2));
    service_->setEventSink([this](const boot::Event& e) {
      if (const auto* d = std::get_if<boot::DiskEvent>(&e.what)) {
        std::lock_guard lock(eventsMutex_);
        events_.push_back(*d);
      }
    });
    auto r = service_->apply(nbd, inventory::Inventory::fromConfig(cfg));
    ASSERT_TRUE(r.ok()) << r.error().message;
    port_ = service_->listenEndpoints().at(0).port();
    thread_ = std::thread([this] { loop_.run(); });
  }
  virtual std::string configText() {
    return R"(
[nbd]
max_in_flight = 8
[[host]]
name = "node1"
image = "base"
iscsi_allow = ["127.0.0.0/8"]
[[host]]
name = "far"
image = "base"
iscsi_allow = ["10.99.0.0/16"]
)";
  }
  template <typename F>
  auto onLoop(F f) {
    std::promise<decltype(f())> done;
    asio::post(loop_.io(), [&] {
      if constexpr (std::is_void_v<decltype(f())>) {
        f();
        done.set_value();
      } else {
        done.set_value(f());
      }
    });
    return done.get_future().get();
  }
  // Applies `text` as a reload would (prepare + commit on the loop).
  Result<void> reapply(const std::string& text) {
    auto cfg = config::loadString(text, "nbd.toml", {schema()});
    auto nbd = *configIn(cfg);
    nbd.listen = {{asio::ip::make_address("127.0.0.1"), 0}};  // as SetUp() asked: the same listener
    return onLoop([&]() -> Result<void> { return service_->apply(nbd, inventory::Inventory::fromConfig(cfg)); });
  }
  void TearDown() override { stop(); }
  void stop() {
    if (!thread_.joinable()) return;
    onLoop([this] {
      service_->stop();
      service_->abortConnections();
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    loop_.stop();
    thread_.join();
  }
  std::unique_ptr<Client> session(std::string_view name = "node1") {
    auto c = std::make_unique<Client>(port_);
    EXPECT_TRUE(c->connected());
    EXPECT_TRUE(c->greet());
    EXPECT_TRUE(c->open(name));
    return c;
  }
  std::vector<boot::DiskEvent> events() {
    std::lock_guard lock(eventsMutex_);
    return events_;
  }

  blockstore::testing::TempDir dir_;
  Bytes base_;
  event::Loop loop_;
  std::unique_ptr<NbdService> service_;
  std::thread thread_;
  std::uint16_t port_ = 0;
  std::mutex eventsMutex_;
  std::vector<boot::DiskEvent> events_;
};

TEST_F(NbdServiceTest, ListShowsOnlyWhatTheClientMayOpenAndGoToAnotherHostIsRefused) {
  Client c(port_);
  ASSERT_TRUE(c.greet());
  c.option(wire::opt::kList);
  std::vector<OptReply> servers;
  auto ack = c.finishOption(&servers);
  ASSERT_TRUE(ack && ack->type == wire::rep::kAck);
  ASSERT_EQ(servers.size(), 1U);
  EXPECT_EQ(std::string(servers[0].data.begin() + 4, servers[0].data.begin() + 4 + be(servers[0].data.data(), 4)), "node1");
  // "far" admits 10.99.0.0/16 only: policy refusal, and the handshake carries on.
  std::uint32_t goError = 0;
  EXPECT_FALSE(c.open("far", &goError));
  EXPECT_EQ(goError, wire::rep::kErrPolicy);
  std::uint32_t unknown = 0;
  EXPECT_FALSE(c.open("nobody", &unknown));
  EXPECT_EQ(unknown, wire::rep::kErrUnknown);
  ASSERT_TRUE(c.open("node1"));
  EXPECT_EQ(c.size(), base_.size());
  EXPECT_EQ(c.read(4096, 512), Bytes(base_.begin() + 4096, base_.begin() + 4096 + 512));
  auto ev = events();
  ASSERT_GE(ev.size(), 3U);
  EXPECT_EQ(ev[0].kind, boot::DiskKind::Failed);
  EXPECT_EQ(ev[0].hostName, "far");
  EXPECT_EQ(ev[0].protocol, boot::DiskProtocol::Nbd);
  EXPECT_EQ(ev[1].kind, boot::DiskKind::Failed);
  EXPECT_EQ(ev[2].kind, boot::DiskKind::Login);
  EXPECT_EQ(ev[2].hostName, "node1");
  EXPECT_EQ(onLoop([this] { return service_->stats().exportsRefused; }), 2U);
  auto sessions = onLoop([this] { return service_->diskSessions(); });
  ASSERT_EQ(sessions.size(), 1U);
  EXPECT_EQ(sessions[0].protocol, "nbd");
  EXPECT_EQ(sessions[0].host, "node1");
  EXPECT_EQ(sessions[0].target, "node1");
  EXPECT_EQ(sessions[0].client, "127.0.0.1");
}

TEST_F(NbdServiceTest, PipelinedWritesAndReadsAreAllAnswered) {
  auto c = session();
  // 32 writes of 64 KiB sent back to back (more than max_in_flight = 8), FUA on every other one.
  std::map<std::uint64_t, Bytes> written;
  for (std::uint64_t i = 0; i < 32; ++i) {
    Bytes data = blockstore::testing::randomBytes(64 << 10, 100 + i);
    c->request(wire::cmd::kWrite, 1000 + i, i * (64 << 10) + 512 * i, static_cast<std::uint32_t>(data.size()),
               i % 2 ? wire::cmdflag::kFua : 0, data);
    written[1000 + i] = std::move(data);
  }
  std::set<std::uint64_t> answered;
  for (int i = 0; i < 32; ++i) {
    auto ch = c->chunk();
    ASSERT_TRUE(ch);
    EXPECT_EQ(ch->type, wire::chunk::kNone);
    EXPECT_EQ(ch->flags, wire::replyflag::kDone);
    answered.insert(ch->cookie);
  }
  EXPECT_EQ(answered.size(), 32U);
  c->request(wire::cmd::kFlush, 5, 0, 0);
  auto f = c->chunk();
  ASSERT_TRUE(f && f->type == wire::chunk::kNone && f->cookie == 5);
  // Each write starts 512 bytes after the previous one ends (unaligned to the overlay's chunks).
  for (std::uint64_t i = 0; i < 32; ++i) {
    const std::uint64_t off = i * (64 << 10) + 512 * i;
    EXPECT_EQ(c->read(off, 64 << 10), written[1000 + i]) << i;
    EXPECT_EQ(c->read(off + (64 << 10), 512), Bytes(base_.begin() + static_cast<std::ptrdiff_t>(off + (64 << 10)),
                                                      base_.begin() + static_cast<std::ptrdiff_t>(off + (64 << 10) + 512)))
        << i;
  }
  EXPECT_GE(onLoop([this] { return service_->stats().bytesIn; }), 32U * (64 << 10));
}

TEST_F(NbdServiceTest, RefusedRequestsGetTheirErrorAndTheConnectionCarriesOn) {
  auto c = session();
  const std::uint64_t size = c->size();
  // READ past the end: EINVAL.
  c->request(wire::cmd::kRead, 1, size - 512, 1024);
  auto r1 = c->chunk();
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->type, wire::chunk::kError);
  EXPECT_EQ(r1->error(), static_cast<std::uint32_t>(wire::Errno::Inval));
  // WRITE past the end with its payload: ENOSPC, and the payload is drained (the next header is found).
  c->request(wire::cmd::kWrite, 2, size, 4096, 0, Bytes(4096, 0xab));
  auto r2 = c->chunk();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->cookie, 2U);
  EXPECT_EQ(r2->error(), static_cast<std::uint32_t>(wire::Errno::NoSpc));
  // An unknown command: EINVAL.
  c->request(42, 3, 0, 0);
  auto r3 = c->chunk();
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3->error(), static_cast<std::uint32_t>(wire::Errno::Inval));
  // READ over the maximum payload (and past this small export's end: that check comes first),
  // nothing allocated; EOVERFLOW on a larger export is tests/integration/test_nbd.py's.
  c->request(wire::cmd::kRead, 4, 0, (32u << 20) + 1);
  auto r4 = c->chunk();
  ASSERT_TRUE(r4);
  EXPECT_EQ(r4->error(), static_cast<std::uint32_t>(wire::Errno::Inval));
  // An offset near 2^64 (never added to the length).
  c->request(wire::cmd::kRead, 5, ~std::uint64_t{0} - 100, 512);
  auto r5 = c->chunk();
  ASSERT_TRUE(r5);
  EXPECT_EQ(r5->error(), static_cast<std::uint32_t>(wire::Errno::Inval));
  // Still serving.
  EXPECT_EQ(c->read(0, 512), Bytes(base_.begin(), base_.begin() + 512));
  auto errors = onLoop([this] { return service_->stats().errors; });
  EXPECT_EQ(errors[errorSlot(wire::Errno::Inval)], 4U);
  EXPECT_EQ(onLoop([this] { return service_->stats().drained; }), 4096U);
}

TEST_F(NbdServiceTest, BlockStatusTellsWrittenTrimmedAndUntouchedApart) {
  auto c = session();
  ASSERT_NE(c->contextId(), 0U);
  const std::uint32_t mib = 1 << 20;
  c->request(wire::cmd::kWrite, 1, 0, mib, 0, Bytes(mib, 0x5a));
  ASSERT_TRUE(c->chunk());
  c->request(wire::cmd::kTrim, 2, mib, mib);
  ASSERT_TRUE(c->chunk());
  c->request(wire::cmd::kBlockStatus, 3, 0, 3 * mib);
  auto st = c->chunk();
  ASSERT_TRUE(st);
  ASSERT_EQ(st->type, wire::chunk::kBlockStatus);
  EXPECT_EQ(be(st->payload.data(), 4), c->contextId());
  std::vector<std::pair<std::uint64_t, std::uint64_t>> extents;  // (length, flags)
  for (std::size_t at = 4; at + 8 <= st->payload.size(); at += 8)
    extents.emplace_back(be(st->payload.data() + at, 4), be(st->payload.data() + at + 4, 4));
  ASSERT_EQ(extents.size(), 3U);
  EXPECT_EQ(extents[0], std::make_pair(std::uint64_t{mib}, std::uint64_t{0}));                                   // data
  EXPECT_EQ(extents[1], std::make_pair(std::uint64_t{mib}, std::uint64_t{wire::state::kHole | wire::state::kZero}));  // trimmed
  EXPECT_EQ(extents[2], std::make_pair(std::uint64_t{mib}, std::uint64_t{wire::state::kHole}));  // the base's
  EXPECT_EQ(c->read(mib, 512), Bytes(512, 0));
  // WRITE_ZEROES with NO_HOLE writes zeros as data; with FAST_ZERO too it fails at once.
  c->request(wire::cmd::kWriteZeroes, 4, 2 * mib, 8192, wire::cmdflag::kNoHole);
  auto z = c->chunk();
  ASSERT_TRUE(z && z->type == wire::chunk::kNone);
  c->request(wire::cmd::kWriteZeroes, 5, 2 * mib, 8192, wire::cmdflag::kNoHole | wire::cmdflag::kFastZero);
  auto fz = c->chunk();
  ASSERT_TRUE(fz);
  EXPECT_EQ(fz->error(), static_cast<std::uint32_t>(wire::Errno::NotSup));
  EXPECT_EQ(c->read(2 * mib, 8192), Bytes(8192, 0));
  c->request(wire::cmd::kBlockStatus, 6, 2 * mib, 8192, wire::cmdflag::kReqOne);
  auto one = c->chunk();
  ASSERT_TRUE(one);
  ASSERT_EQ(one->payload.size(), 12U);
  EXPECT_EQ(be(one->payload.data() + 8, 4), 0U);  // data, not a hole
  c->request(wire::cmd::kCache, 7, 0, 4 * mib);
  auto cache = c->chunk();
  ASSERT_TRUE(cache && cache->type == wire::chunk::kNone);
}

TEST_F(NbdServiceTest, ReleaseDiskEndsTheSessionAndDiscEndsCleanly) {
  auto c = session();
  EXPECT_EQ(onLoop([this] { return service_->sessions(); }), 1U);
  onLoop([this] { service_->releaseDisk("node1"); });
  EXPECT_TRUE(c->closedByServer());
  auto d = session();
  d->request(wire::cmd::kDisc, 9, 0, 0);
  EXPECT_TRUE(d->closedByServer());
  for (int i = 0; i < 100 && onLoop([this] { return service_->connections(); }) > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto drops = onLoop([this] { return service_->stats().drops; });
  EXPECT_EQ(drops[static_cast<std::size_t>(Drop::DiskReleased)], 1U);
  EXPECT_EQ(drops[static_cast<std::size_t>(Drop::Disconnect)], 1U);
  std::vector<std::string> logouts;
  for (const auto& e : events())
    if (e.kind == boot::DiskKind::Logout) logouts.push_back(e.reason);
  std::sort(logouts.begin(), logouts.end());
  EXPECT_EQ(logouts, (std::vector<std::string>{"disconnect", "disk_released"}));
}

// A client that asks for data and stops reading: once its replies make no progress for
// send_timeout, its connection ends (send_timeout) and its session with it; others carry on.
class NbdSendTimeoutTest : public NbdServiceTest {
 protected:
  std::string configText() override {
    return R"(
[nbd]
max_in_flight = 8
send_timeout = 0.3
[[host]]
name = "node1"
image = "base"
iscsi_allow = ["127.0.0.0/8"]
)";
  }
};

TEST_F(NbdSendTimeoutTest, AClientThatStopsReadingIsCutOff) {
  auto stuck = session();
  // 64 MiB of READ replies: more than both sockets' buffers hold, and this client reads none.
  for (std::uint64_t i = 0; i < 16; ++i) stuck->request(wire::cmd::kRead, 100 + i, 0, 4u << 20);
  for (int i = 0; i < 500 && onLoop([this] { return service_->connections(); }) > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(onLoop([this] { return service_->connections(); }), 0U);
  auto drops = onLoop([this] { return service_->stats().drops; });
  EXPECT_EQ(drops[static_cast<std::size_t>(Drop::SendTimeout)], 1U);
  std::vector<std::string> logouts;
  for (const auto& e : events())
    if (e.kind == boot::DiskKind::Logout) logouts.push_back(e.reason);
  EXPECT_EQ(logouts, (std::vector<std::string>{"send_timeout"}));
  auto fine = session();  // the next client is served
  EXPECT_EQ(fine->read(0, 4096), Bytes(base_.begin(), base_.begin() + 4096));
}

// ---- TLS ----------------------------------------------------------------------------------------

// tls = "require" with a certificate and PSK keys for node1 and node2 (node2's address rule admits
// loopback too, so only the identity tells node1 and node2 apart here).
class NbdTlsServiceTest : public NbdServiceTest {
 protected:
  std::string configText() override {
    x509_ = testing::writeSelfSigned(dir_.path());
    testing::writeText(dir_ / "keys.psk", testing::pskLine("node1", testing::pskKeyFor("node1")) +
                                              testing::pskLine("node2", testing::pskKeyFor("node2")) +
                                              testing::pskLine("nobody", testing::pskKeyFor("nobody")));
    return tlsConfig((dir_ / "keys.psk").string());
  }
  std::string tlsConfig(const std::string& pskFile) const {
    return fmt::format(R"(
[nbd]
max_in_flight = 8
handshake_timeout = 2
tls = "require"
tls_certificate = "{}"
tls_key = "{}"
tls_psk_file = "{}"
[[host]]
name = "node1"
image = "base"
iscsi_allow = ["127.0.0.0/8"]
[[host]]
name = "node2"
image = "base"
iscsi_allow = ["127.0.0.0/8"]
)",
                       x509_.certificate, x509_.key, pskFile);
  }
  static std::unique_ptr<testing::ClientTls> psk(const std::string& identity) {
    return testing::ClientTls::psk(identity, testing::pskKeyFor(identity));
  }
  std::vector<std::string> list(Client& c) {
    c.option(wire::opt::kList);
    std::vector<OptReply> servers;
    auto ack = c.finishOption(&servers);
    EXPECT_TRUE(ack && ack->type == wire::rep::kAck);
    std::vector<std::string> names;
    for (const auto& r : servers)
      names.emplace_back(r.data.begin() + 4, r.data.begin() + 4 + static_cast<std::ptrdiff_t>(be(r.data.data(), 4)));
    return names;
  }
  NbdStats stats() {
    return onLoop([this] { return service_->stats(); });
  }
  // The server closes the socket (EOF or a reset) before the client's 5 s receive timeout.
  static bool closedSoon(int fd) {
    std::uint8_t buf[256];
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) continue;  // an alert
      return n == 0 || errno == ECONNRESET;
    }
  }
  testing::X509Files x509_;
};

TEST_F(NbdTlsServiceTest, PskIdentityOpensItsOwnHostOnly) {
  Client c(port_);
  ASSERT_TRUE(c.greet());
  ASSERT_TRUE(c.startTls(psk("node2")));
  EXPECT_EQ(list(c), std::vector<std::string>{"node2"});  // node1 admits the address, not the identity
  std::uint32_t goError = 0;
  EXPECT_FALSE(c.open("node1", &goError));
  EXPECT_EQ(goError, wire::rep::kErrPolicy);
  ASSERT_TRUE(c.open("node2"));
  EXPECT_EQ(c.read(0, 4096), Bytes(base_.begin(), base_.begin() + 4096));

  // An identity that names no host: TLS works, and it may open nothing.
  Client n(port_);
  ASSERT_TRUE(n.greet());
  ASSERT_TRUE(n.startTls(psk("nobody")));
  EXPECT_TRUE(list(n).empty());
  EXPECT_FALSE(n.open("node1"));

  // X.509 (no client identity): the address rule alone, as in the clear.
  Client x(port_);
  ASSERT_TRUE(x.greet());
  ASSERT_TRUE(x.startTls(testing::ClientTls::x509()));
  EXPECT_EQ(list(x), (std::vector<std::string>{"node1", "node2"}));
  ASSERT_TRUE(x.open("node1"));
  EXPECT_EQ(x.read(8192, 512), Bytes(base_.begin() + 8192, base_.begin() + 8192 + 512));
  EXPECT_EQ(stats().tlsHandshakes, 3U);
}

TEST_F(NbdTlsServiceTest, PlainClientIsRefusedWithTlsRequired) {
  Client c(port_);
  ASSERT_TRUE(c.greet());
  c.option(wire::opt::kList);
  auto r = c.finishOption();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, wire::rep::kErrTlsReqd);
  c.option(wire::opt::kGo, Client::nameData("node1", 0, 1));
  r = c.finishOption();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, wire::rep::kErrTlsReqd);
  // ... and may still start TLS on the same connection.
  ASSERT_TRUE(c.startTls(psk("node1")));
  ASSERT_TRUE(c.open("node1"));
}

TEST_F(NbdTlsServiceTest, ManyRequestsInFlightThroughTls) {
  Client c(port_);
  ASSERT_TRUE(c.greet());
  ASSERT_TRUE(c.startTls(psk("node1")));
  ASSERT_TRUE(c.open("node1"));
  // 24 writes of 96 KiB back to back (over max_in_flight = 8), then reads of each: every byte through TLS.
  std::map<std::uint64_t, Bytes> written;
  for (std::uint64_t i = 0; i < 24; ++i) {
    Bytes data = blockstore::testing::randomBytes(96 << 10, 500 + i);
    c.request(wire::cmd::kWrite, 2000 + i, i * (128 << 10), static_cast<std::uint32_t>(data.size()), 0, data);
    written[2000 + i] = std::move(data);
  }
  for (int i = 0; i < 24; ++i) {
    auto ch = c.chunk();
    ASSERT_TRUE(ch);
    EXPECT_EQ(ch->type, wire::chunk::kNone);
  }
  for (std::uint64_t i = 0; i < 24; ++i) c.request(wire::cmd::kRead, 3000 + i, i * (128 << 10), 96 << 10);
  for (int i = 0; i < 24; ++i) {
    auto ch = c.chunk();
    ASSERT_TRUE(ch && ch->type == wire::chunk::kOffsetData);
    const auto& want = written.at(ch->cookie - 1000);
    EXPECT_EQ(Bytes(ch->payload.begin() + 8, ch->payload.end()), want) << ch->cookie;
  }
  c.request(wire::cmd::kDisc, 1, 0, 0);
  EXPECT_TRUE(c.closedByServer());
}

TEST_F(NbdTlsServiceTest, BadTlsInputClosesThatConnectionOnly) {
  Client good(port_);
  ASSERT_TRUE(good.greet());
  ASSERT_TRUE(good.startTls(psk("node1")));
  ASSERT_TRUE(good.open("node1"));

  // Garbage where the ClientHello should be.
  Client junk(port_);
  ASSERT_TRUE(junk.greet());
  junk.option(wire::opt::kStartTls);
  auto ack = junk.finishOption();
  ASSERT_TRUE(ack && ack->type == wire::rep::kAck);
  junk.sendRaw(Bytes(300, 0x41));
  EXPECT_TRUE(closedSoon(junk.fd()));  // after an alert

  // A wrong key for a known identity.
  Client wrong(port_);
  ASSERT_TRUE(wrong.greet());
  EXPECT_FALSE(wrong.startTls(testing::ClientTls::psk("node2", testing::pskKeyFor("node2", 7))));

  // STARTTLS, then silence: the handshake timeout (2 s) covers the TLS handshake.
  Client silent(port_);
  ASSERT_TRUE(silent.greet());
  silent.option(wire::opt::kStartTls);
  ASSERT_TRUE(silent.finishOption());
  EXPECT_TRUE(closedSoon(silent.fd()));

  // The first session never noticed.
  EXPECT_EQ(good.read(0, 512), Bytes(base_.begin(), base_.begin() + 512));
  auto st = stats();
  EXPECT_EQ(st.tlsHandshakes, 1U);
  EXPECT_EQ(st.tlsHandshakesFailed, 3U);
  EXPECT_EQ(st.drops[static_cast<std::size_t>(Drop::TlsFailed)], 2U);
  EXPECT_EQ(st.drops[static_cast<std::size_t>(Drop::HandshakeTimeout)], 1U);
}

TEST_F(NbdTlsServiceTest, ReloadWithoutTheIdentityEndsItsSession) {
  Client c1(port_), c2(port_);
  ASSERT_TRUE(c1.greet() && c2.greet());
  ASSERT_TRUE(c1.startTls(psk("node1")));
  ASSERT_TRUE(c2.startTls(psk("node2")));
  ASSERT_TRUE(c1.open("node1"));
  ASSERT_TRUE(c2.open("node2"));
  // node2 leaves the PSK file: its session ends; node1's carries on.
  testing::writeText(dir_ / "keys1.psk", testing::pskLine("node1", testing::pskKeyFor("node1")));
  auto r = reapply(tlsConfig((dir_ / "keys1.psk").string()));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(c2.closedByServer());
  EXPECT_EQ(c1.read(512, 512), Bytes(base_.begin() + 512, base_.begin() + 1024));
  Client again(port_);
  ASSERT_TRUE(again.greet());
  EXPECT_FALSE(again.startTls(psk("node2")));  // unknown identity now
}

}  // namespace
}  // namespace pxedust::nbd
