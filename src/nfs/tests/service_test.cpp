// The NFS service on loopback over a real ext4 image (made with mke2fs -d, imported into a store),
// driven by RPC calls built with the wire codec: MOUNT, then LOOKUP/READ/READDIRPLUS of what the
// image holds, byte for byte; a refused mount; a handle that outlives the service (a restart);
// garbage arguments; a fragment over the size limit ends that connection only.
#include "nfs/service.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/post.hpp>

#include <cstdlib>
#include <fstream>
#include <future>
#include <set>
#include <thread>

#include "blockstore/tests/test_util.hpp"
#include "config/config.hpp"
#include "inventory/inventory.hpp"
#include "nfs/tests/test_util.hpp"
#include "nfs/wire/mount.hpp"
#include "nfs/wire/nfs3.hpp"

namespace pxedust::nfs {
namespace {

using Bytes = std::vector<std::uint8_t>;
namespace proc = wire::nfsproc;

struct Reply {
  wire::AcceptStat accept = wire::AcceptStat::SystemErr;
  bool denied = false;
  Bytes body;
};

class RpcClient {
 public:
  explicit RpcClient(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RpcClient() { ::close(fd_); }
  [[nodiscard]] bool connected() const { return connected_; }

  void sendRaw(const Bytes& b) { ::send(fd_, b.data(), b.size(), MSG_NOSIGNAL); }
  std::optional<Reply> call(std::uint32_t program, std::uint32_t procedure, const Bytes& args, bool authSys = true) {
    Bytes rec(512 + args.size());
    wire::XdrWriter w(std::span<std::uint8_t>(rec).subspan(4));
    wire::AuthSys sys;
    sys.machineName = "test";
    wire::encodeCallHeader(w, ++xid_, program, program == wire::kPortmapProgram ? 2 : 3, procedure, authSys ? &sys : nullptr);
    const std::size_t n = w.size();
    std::copy(args.begin(), args.end(), rec.begin() + 4 + static_cast<std::ptrdiff_t>(n));
    rec.resize(4 + n + args.size());
    const auto mark = wire::recordMark(static_cast<std::uint32_t>(n + args.size()));
    std::copy(mark.begin(), mark.end(), rec.begin());
    sendRaw(rec);
    return read();
  }
  std::optional<Reply> read() {
    std::uint8_t m[4];
    if (!readExactly(m, 4)) return std::nullopt;
    const std::uint32_t len = (std::uint32_t{m[0]} << 24 | m[1] << 16 | m[2] << 8 | m[3]) & 0x7fffffff;
    Bytes rec(len);
    if (!readExactly(rec.data(), len)) return std::nullopt;
    wire::XdrReader r(rec);
    Reply out;
    EXPECT_EQ(r.u32(), xid_);
    EXPECT_EQ(r.u32(), 1U);  // REPLY
    if (r.u32() != 0) {
      out.denied = true;
      return out;
    }
    r.u32();        // verifier flavour
    r.opaque(400);  // and body
    out.accept = static_cast<wire::AcceptStat>(r.u32());
    auto rest = r.rest();
    out.body.assign(rest.begin(), rest.end());
    return out;
  }
  bool closedByServer() {
    std::uint8_t b;
    return ::recv(fd_, &b, 1, 0) == 0;
  }

 private:
  bool readExactly(std::uint8_t* p, std::size_t n) {
    while (n > 0) {
      const ssize_t k = ::recv(fd_, p, n, 0);
      if (k <= 0) return false;
      p += k;
      n -= static_cast<std::size_t>(k);
    }
    return true;
  }
  int fd_ = -1;
  bool connected_ = false;
  std::uint32_t xid_ = 100;
};

Bytes fhArgs(std::span<const std::uint8_t> fh) {
  Bytes b;
  wire::testing::putOpaque(b, fh);
  return b;
}

class NfsServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto tree = dir_ / "tree";
    std::filesystem::create_directories(tree / "etc");
    std::ofstream(tree / "etc" / "hostname") << "diskless\n";
    big_ = blockstore::testing::randomBytes(3 << 20, 5);
    blockstore::testing::writeWhole(tree / "big.bin", big_);
    std::filesystem::create_symlink("etc/hostname", tree / "name");
    std::filesystem::create_directories(tree / "many");
    for (int i = 0; i < 300; ++i) std::ofstream(tree / "many" / ("entry-" + std::to_string(i))) << i;
    const auto img = dir_ / "root.img";
    const std::string cmd = "mke2fs -q -t ext4 -d '" + tree.string() + "' -F '" + img.string() + "' 32M >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    auto store = blockstore::Store::open(dir_ / "store");
    ASSERT_TRUE(store) << store.error().message;
    store_ = *store;
    ASSERT_TRUE(store_->importImage(img, "deb"));
    startService();
    thread_ = std::thread([this] { loop_.run(); });
  }
  void startService() {
    auto cfg = config::loadString(R"(
[[host]]
name = "node1"
image = "deb"
iscsi_allow = ["127.0.0.0/8"]
[[host]]
name = "far"
image = "other"
iscsi_allow = ["10.9.0.0/16"]
)",
                                  "nfs.toml", {schema()});
    Config c;
    c.listen = {{asio::ip::make_address("127.0.0.1"), 0}};
    service_ = std::make_unique<NfsService>(loop_, store_, pool_);
    auto r = service_->apply(c, inventory::Inventory::fromConfig(cfg));
    ASSERT_TRUE(r.ok()) << r.error().message;
    port_ = service_->listenEndpoints().at(0).port();
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
  void TearDown() override {
    if (!thread_.joinable()) return;
    onLoop([this] {
      service_->stop();
      service_->abortConnections();
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    loop_.stop();
    thread_.join();
  }
  Bytes mount(RpcClient& c, std::string_view path, std::uint32_t* status = nullptr) {
    Bytes a;
    wire::testing::putString(a, path);
    auto r = c.call(wire::kMountProgram, wire::mountproc::kMnt, a);
    EXPECT_TRUE(r && r->accept == wire::AcceptStat::Success);
    if (!r) return {};
    wire::XdrReader x(r->body);
    const auto st = x.u32();
    if (status) *status = st;
    if (st != 0) return {};
    auto fh = x.opaque(64);
    return Bytes(fh.begin(), fh.end());
  }
  Bytes lookup(RpcClient& c, const Bytes& dir, std::string_view name) {
    Bytes a = fhArgs(dir);
    wire::testing::putString(a, name);
    auto r = c.call(wire::kNfsProgram, proc::kLookup, a);
    EXPECT_TRUE(r);
    wire::XdrReader x(r->body);
    EXPECT_EQ(x.u32(), 0U) << name;
    auto fh = x.opaque(64);
    return Bytes(fh.begin(), fh.end());
  }
  Bytes readAll(RpcClient& c, const Bytes& fh) {
    Bytes out;
    for (bool eof = false; !eof;) {
      Bytes a = fhArgs(fh);
      wire::testing::put64(a, out.size());
      wire::testing::put32(a, 1u << 20);
      auto r = c.call(wire::kNfsProgram, proc::kRead, a);
      EXPECT_TRUE(r);
      if (!r) break;
      wire::XdrReader x(r->body);
      EXPECT_EQ(x.u32(), 0U);
      wire::readPostOpAttr(x);
      x.u32();
      eof = x.boolean();
      auto data = x.opaque(1u << 20);
      out.insert(out.end(), data.begin(), data.end());
      if (data.empty()) break;
    }
    return out;
  }

  blockstore::testing::TempDir dir_;
  Bytes big_;
  std::shared_ptr<blockstore::Store> store_;
  std::shared_ptr<blockstore::WorkerPool> pool_ = std::make_shared<blockstore::WorkerPool>(2);
  event::Loop loop_;
  std::unique_ptr<NfsService> service_;
  std::thread thread_;
  std::uint16_t port_ = 0;
};

TEST_F(NfsServiceTest, MountLookupReadAndListWhatTheImageHolds) {
  RpcClient c(port_);
  ASSERT_TRUE(c.connected());
  auto null = c.call(wire::kNfsProgram, proc::kNull, {}, false);  // NULL needs no credentials
  ASSERT_TRUE(null && null->accept == wire::AcceptStat::Success);
  const Bytes root = mount(c, "/images/deb");
  ASSERT_FALSE(root.empty());
  EXPECT_EQ(mount(c, "/images/deb/1"), root);  // the newest is version 1: the same export
  std::uint32_t st = 0;
  EXPECT_TRUE(mount(c, "/images/other", &st).empty());
  EXPECT_EQ(st, static_cast<std::uint32_t>(wire::MountStat::Acces));  // "far" admits 10.9/16 only
  EXPECT_TRUE(mount(c, "/etc", &st).empty());
  EXPECT_EQ(st, static_cast<std::uint32_t>(wire::MountStat::NoEnt));
  const Bytes etc = mount(c, "/images/deb/1/etc");  // a subdirectory mount (libnfs makes them)
  ASSERT_FALSE(etc.empty());
  EXPECT_EQ(etc, lookup(c, root, "etc"));
  EXPECT_EQ(mount(c, "/images/deb/etc"), etc);
  EXPECT_TRUE(mount(c, "/images/deb/big.bin", &st).empty());
  EXPECT_EQ(st, static_cast<std::uint32_t>(wire::MountStat::NotDir));
  EXPECT_TRUE(mount(c, "/images/deb/etc/../..", &st).empty());
  EXPECT_EQ(st, static_cast<std::uint32_t>(wire::MountStat::NoEnt));

  const Bytes hostname = lookup(c, lookup(c, root, "etc"), "hostname");
  const Bytes text = readAll(c, hostname);
  EXPECT_EQ(std::string(text.begin(), text.end()), "diskless\n");
  EXPECT_EQ(readAll(c, lookup(c, root, "big.bin")), big_);
  auto link = c.call(wire::kNfsProgram, proc::kReadlink, fhArgs(lookup(c, root, "name")));
  ASSERT_TRUE(link);
  wire::XdrReader lr(link->body);
  ASSERT_EQ(lr.u32(), 0U);
  wire::readPostOpAttr(lr);
  EXPECT_EQ(lr.string(4096), "etc/hostname");

  const Bytes many = lookup(c, root, "many");
  std::set<std::string> names;
  std::uint64_t cookie = 0;
  std::array<std::uint8_t, 8> verf{};
  for (bool eof = false; !eof;) {
    Bytes a = fhArgs(many);
    wire::testing::put64(a, cookie);
    a.insert(a.end(), verf.begin(), verf.end());
    wire::testing::put32(a, 1024);
    wire::testing::put32(a, 4096);
    auto r = c.call(wire::kNfsProgram, proc::kReaddirplus, a);
    ASSERT_TRUE(r);
    wire::XdrReader x(r->body);
    ASSERT_EQ(x.u32(), 0U);
    wire::readPostOpAttr(x);
    auto v = x.fixedOpaque(8);
    std::copy(v.begin(), v.end(), verf.begin());
    while (x.boolean()) {
      x.u64();
      EXPECT_TRUE(names.emplace(x.string(255)).second);
      cookie = x.u64();
      wire::readPostOpAttr(x);
      if (x.boolean()) x.opaque(64);
    }
    eof = x.boolean();
    ASSERT_TRUE(x.ok());
  }
  EXPECT_EQ(names.size(), 302U);  // 300 entries, "." and ".."

  Bytes w = fhArgs(hostname);
  wire::testing::put64(w, 0);
  wire::testing::put32(w, 1);
  wire::testing::put32(w, 0);
  wire::testing::putString(w, "x");
  auto write = c.call(wire::kNfsProgram, proc::kWrite, w);
  ASSERT_TRUE(write);
  EXPECT_EQ(wire::XdrReader(write->body).u32(), static_cast<std::uint32_t>(wire::Nfsstat3::Rofs));

  auto garbage = c.call(wire::kNfsProgram, proc::kGetattr, Bytes{0, 0, 0, 99});  // a 99-byte handle
  ASSERT_TRUE(garbage);
  EXPECT_EQ(garbage->accept, wire::AcceptStat::GarbageArgs);
  auto weak = c.call(wire::kNfsProgram, proc::kGetattr, fhArgs(root), false);  // AUTH_NONE, not allowed
  ASSERT_TRUE(weak);
  EXPECT_TRUE(weak->denied);
  auto v4 = c.call(wire::kNfsProgram, proc::kNull, {});
  ASSERT_TRUE(v4);
  EXPECT_EQ(onLoop([this] { return service_->stats().mounts; }), 4U);
  EXPECT_EQ(onLoop([this] { return service_->stats().mountsRefused; }), 4U);
}

TEST_F(NfsServiceTest, AHandleOutlivesARestartAndABadRecordEndsOnlyItsConnection) {
  Bytes hostname;
  {
    RpcClient c(port_);
    hostname = lookup(c, lookup(c, mount(c, "/images/deb"), "etc"), "hostname");
  }
  onLoop([this] {
    service_->stop();
    service_->abortConnections();
    service_.reset();
    startService();  // a new process would read the same key from the store
  });
  RpcClient c(port_);
  const Bytes text = readAll(c, hostname);
  EXPECT_EQ(std::string(text.begin(), text.end()), "diskless\n");

  RpcClient bad(port_);
  bad.sendRaw(Bytes{0x7f, 0xff, 0xff, 0xff});  // a 2 GiB fragment: refused before any allocation
  EXPECT_TRUE(bad.closedByServer());
  EXPECT_EQ(readAll(c, hostname).size(), 9U);  // the other connection carries on
}

// A NULL call over UDP to 127.0.0.1:port: does it come back (within a second)?
bool udpNullAnswered(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  Bytes call;
  for (std::uint32_t v : {0x5eedu, 0u, 2u, wire::kNfsProgram, 3u, 0u, 0u, 0u, 0u, 0u}) wire::testing::put32(call, v);
  ::sendto(fd, call.data(), call.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  std::uint8_t reply[512];
  const auto n = ::recv(fd, reply, sizeof reply, 0);
  ::close(fd);
  return n >= 24 && reply[3] == 0xed && reply[2] == 0x5e;
}

TEST_F(NfsServiceTest, UdpFollowsTheTcpPortAcrossReloadsAndCanBeTurnedOff) {
  EXPECT_TRUE(udpNullAnswered(port_));
  auto hosts = inventory::Inventory::fromConfig(config::loadString("", "nfs.toml", {schema()}));
  Config c;
  c.listen = {{asio::ip::make_address("127.0.0.1"), 0}};
  ASSERT_TRUE(onLoop([&] { return service_->apply(c, hosts).ok(); }));  // the same address: kept
  EXPECT_EQ(service_->listenEndpoints().at(0).port(), port_);
  EXPECT_TRUE(udpNullAnswered(port_));
  c.udp = false;
  ASSERT_TRUE(onLoop([&] { return service_->apply(c, hosts).ok(); }));
  EXPECT_FALSE(udpNullAnswered(port_));
  RpcClient t(port_);  // TCP goes on
  EXPECT_TRUE(t.call(wire::kNfsProgram, proc::kNull, {}, false));
  c.udp = true;
  ASSERT_TRUE(onLoop([&] { return service_->apply(c, hosts).ok(); }));
  EXPECT_TRUE(udpNullAnswered(port_));
}

}  // namespace
}  // namespace pxedust::nfs
