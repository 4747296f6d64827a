// The real TftpService on loopback, driven by a scripted client (a fake client against the real
// server, as Kea's Dhcp4Client does): the protocol behaviours that integration tests with real
// clients cannot force, such as duplicate ACKs, wrong TIDs, timeouts and limits.
#include "tftp/service.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/post.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

using namespace pxedust;
namespace fs = std::filesystem;

namespace {

struct Packet {
  std::vector<std::uint8_t> data;
  sockaddr_in from{};
  [[nodiscard]] std::uint16_t op() const { return data.size() >= 2 ? static_cast<std::uint16_t>(data[0] << 8 | data[1]) : 0; }
  [[nodiscard]] std::uint16_t block() const { return data.size() >= 4 ? static_cast<std::uint16_t>(data[2] << 8 | data[3]) : 0; }
  [[nodiscard]] std::string text() const { return data.size() > 4 ? std::string(data.begin() + 4, data.end() - 1) : ""; }
  [[nodiscard]] std::string payload() const { return std::string(data.begin() + 4, data.end()); }
};

class Client {
 public:
  Client() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  ~Client() { ::close(fd_); }
  void sendTo(std::uint16_t port, std::string_view bytes) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  void ack(std::uint16_t port, std::uint16_t block) {
    char b[4] = {0, 4, static_cast<char>(block >> 8), static_cast<char>(block)};
    sendTo(port, {b, 4});
  }
  std::optional<Packet> receive(int timeoutMs = 2000) {
    timeval tv{timeoutMs / 1000, (timeoutMs % 1000) * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    Packet p;
    p.data.resize(70000);
    socklen_t len = sizeof p.from;
    ssize_t n = ::recvfrom(fd_, p.data.data(), p.data.size(), 0, reinterpret_cast<sockaddr*>(&p.from), &len);
    if (n < 0) return std::nullopt;
    p.data.resize(static_cast<std::size_t>(n));
    return p;
  }

 private:
  int fd_;
};

std::string rrq(std::string_view file, std::string_view mode = "octet",
                std::vector<std::pair<std::string, std::string>> opts = {}) {
  std::string s("\0\1", 2);
  s += file;
  s.push_back('\0');
  s += mode;
  s.push_back('\0');
  for (auto& [n, v] : opts) {
    s += n;
    s.push_back('\0');
    s += v;
    s.push_back('\0');
  }
  return s;
}

class TftpServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("pxedust-svc-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "hosts/alpha");
    write("small", std::string(1000, 'x'));
    std::string big;
    for (int i = 0; i < 5000; ++i) big += static_cast<char>('a' + i % 26);
    write("big", big);
    write("text", "one\ntwo\r");
    write("boot.cfg", "generic");
    write("hosts/alpha/boot.cfg", "alpha's config");
    cfg_.root = root_.string();
    cfg_.listen = {{asio::ip::make_address("127.0.0.1"), 0}};
    cfg_.timeout = std::chrono::milliseconds(300);
    cfg_.retries = 2;
  }
  void TearDown() override {
    stop();
    fs::remove_all(root_);
  }
  void write(const std::string& name, const std::string& content) { std::ofstream(root_ / name) << content; }

  void start(std::string hostsToml = "") {
    auto c = config::loadString(hostsToml, "hosts.toml", {});
    service_ = std::make_unique<tftp::TftpService>(loop_);
    auto r = service_->apply(cfg_, inventory::Inventory::fromConfig(c));
    ASSERT_TRUE(r.ok()) << r.error().message;
    port_ = service_->listenEndpoints().at(0).port();
    thread_ = std::thread([this] { loop_.run(); });
  }
  void stop() {
    if (!thread_.joinable()) return;
    asio::post(loop_.io(), [this] {
      service_->stopListening();
      service_->abortTransfers();
    });
    // Let aborted transfers wind down, then stop the loop.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    loop_.stop();
    thread_.join();
  }
  const tftp::TftpStats& statsAfterStop() {
    stop();
    return service_->stats();
  }

  fs::path root_;
  tftp::Config cfg_;
  event::Loop loop_;
  std::unique_ptr<tftp::TftpService> service_;
  std::thread thread_;
  std::uint16_t port_ = 0;
};

// Fetches a whole file lock-step; returns its content.
std::string fetch(Client& c, std::uint16_t port, std::string_view name, std::size_t blksize = 512) {
  std::string out;
  c.sendTo(port, rrq(name));
  for (;;) {
    auto p = c.receive();
    if (!p || p->op() != 3) return "<error>";
    out += p->payload();
    c.ack(ntohs(p->from.sin_port), p->block());
    if (p->data.size() - 4 < blksize) return out;
  }
}

}  // namespace

TEST_F(TftpServiceTest, LockStepWithoutOptions) {
  start();
  Client c;
  c.sendTo(port_, rrq("small"));
  auto d1 = c.receive();
  ASSERT_TRUE(d1);
  EXPECT_EQ(d1->op(), 3);
  EXPECT_EQ(d1->block(), 1);
  EXPECT_EQ(d1->data.size(), 516u);
  auto tid = ntohs(d1->from.sin_port);
  EXPECT_NE(tid, port_);  // the transfer has its own TID
  c.ack(tid, 1);
  auto d2 = c.receive();
  ASSERT_TRUE(d2);
  EXPECT_EQ(d2->block(), 2);
  EXPECT_EQ(d2->data.size(), 4u + 488u);
  c.ack(tid, 2);
  auto extra = c.receive(300);
  EXPECT_FALSE(extra) << "op " << extra->op() << " block " << extra->block() << " size " << extra->data.size();  // done: nothing more
  EXPECT_EQ(statsAfterStop().transfersCompleted, 1u);
}

// Several lock-step transfers at once on the one loop, as in a boot storm: interleaved clients each
// get their whole file, and one that stops answering is retransmitted to and given up on without
// disturbing the others.
TEST_F(TftpServiceTest, InterleavedLockStepTransfers) {
  start();
  std::string big;
  for (int i = 0; i < 5000; ++i) big += static_cast<char>('a' + i % 26);
  constexpr int kClients = 3;
  Client c[kClients];
  Client silent;
  std::string got[kClients];
  std::uint16_t tid[kClients] = {};
  silent.sendTo(port_, rrq("big"));
  for (int i = 0; i < kClients; ++i) c[i].sendTo(port_, rrq("big"));
  bool done[kClients] = {};
  for (int left = kClients; left > 0;) {
    for (int i = 0; i < kClients; ++i) {
      if (done[i]) continue;
      auto p = c[i].receive();
      ASSERT_TRUE(p) << "client " << i << " after " << got[i].size() << " bytes";
      ASSERT_EQ(p->op(), 3);
      ASSERT_EQ(p->block(), got[i].size() / 512 + 1);
      tid[i] = ntohs(p->from.sin_port);
      got[i] += p->payload();
      c[i].ack(tid[i], p->block());
      if (p->data.size() - 4 < 512) {
        done[i] = true;
        --left;
      }
    }
  }
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(got[i], big) << "client " << i;
  auto first = silent.receive();  // block 1, then its retransmissions (timeout 300 ms, 2 retries)
  ASSERT_TRUE(first);
  EXPECT_EQ(first->block(), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));  // it gives up after 0.3 + 0.6 + 1.2 s
  const auto& stats = statsAfterStop();
  EXPECT_EQ(stats.transfersCompleted, 3u);
  EXPECT_EQ(stats.transfersFailed, 1u);
  EXPECT_EQ(stats.retransmits, 2u);
}

TEST_F(TftpServiceTest, OackThenData) {
  start();
  Client c;
  c.sendTo(port_, rrq("big", "octet", {{"blksize", "1432"}, {"tsize", "0"}, {"blksize", "9"}}));
  auto o = c.receive();
  ASSERT_TRUE(o);
  ASSERT_EQ(o->op(), 6);
  EXPECT_EQ(std::string(o->data.begin() + 2, o->data.end()), std::string("blksize\0" "1432\0tsize\0" "5000\0", 24));
  auto tid = ntohs(o->from.sin_port);
  c.ack(tid, 0);
  auto d = c.receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->block(), 1);
  EXPECT_EQ(d->data.size(), 4u + 1432u);
}

TEST_F(TftpServiceTest, ErrorsForBadRequests) {
  start();
  Client c;
  struct Case {
    std::string bytes;
    std::uint16_t code;
  };
  std::vector<Case> cases = {
      {rrq("missing"), 1},
      {rrq("../etc/passwd"), 2},
      {rrq("hosts"), 2},
      {rrq(std::string(600, 'a')), 1},
      {std::string("\0\2small\0octet\0", 14), 2},  // WRQ
      {"", 4},
      {std::string("\0", 1), 4},
      {std::string("\0\x63zz\0octet\0", 11), 4},
      {std::string("\0\1small", 7), 4},
      {std::string("\0\1small\0", 8), 4},
      {std::string("\0\1small\0mail\0", 13), 4},
      {std::string("\0\4\0\1", 4), 4},  // ACK to port 69
      {std::string("\0\3\0\1data", 8), 4},
  };
  for (const auto& tc : cases) {
    c.sendTo(port_, tc.bytes);
    auto p = c.receive();
    ASSERT_TRUE(p) << "no answer to case with " << tc.bytes.size() << " bytes";
    EXPECT_EQ(p->op(), 5);
    EXPECT_EQ(p->block(), tc.code) << p->text();
    EXPECT_NE(ntohs(p->from.sin_port), port_);  // errors come from another port than the request port
    EXPECT_EQ(p->text().find('/'), std::string::npos) << "error text reveals a path: " << p->text();
  }
  // An ERROR to the request port is never answered.
  c.sendTo(port_, std::string("\0\5\0\0x\0", 6));
  EXPECT_FALSE(c.receive(300));
}

TEST_F(TftpServiceTest, DuplicateAckSendsNothing) {
  cfg_.timeout = std::chrono::milliseconds(5000);
  start();
  Client c;
  c.sendTo(port_, rrq("big"));
  auto d1 = c.receive();
  ASSERT_TRUE(d1);
  auto tid = ntohs(d1->from.sin_port);
  c.ack(tid, 1);
  c.ack(tid, 1);
  c.ack(tid, 1);
  auto d2 = c.receive();
  ASSERT_TRUE(d2);
  EXPECT_EQ(d2->block(), 2);
  EXPECT_FALSE(c.receive(300));  // the duplicates did not trigger more sends
  EXPECT_EQ(statsAfterStop().duplicateAcks, 2u);
}

TEST_F(TftpServiceTest, WrongTidGetsError5AndTransferGoesOn) {
  start();
  Client c, intruder;
  c.sendTo(port_, rrq("small"));
  auto d1 = c.receive();
  ASSERT_TRUE(d1);
  auto tid = ntohs(d1->from.sin_port);
  intruder.ack(tid, 1);
  auto e = intruder.receive();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->op(), 5);
  EXPECT_EQ(e->block(), 5);
  c.ack(tid, 1);
  auto d2 = c.receive();
  ASSERT_TRUE(d2);
  EXPECT_EQ(d2->block(), 2);
}

TEST_F(TftpServiceTest, SizeProbeAndEarlyCloseWithEveryByteAreNotFailures) {
  write("aligned", std::string(1024, 'y'));  // two full 512-byte blocks, then an empty third
  start();
  auto error = [](std::uint16_t code) {
    std::string e("\0\5", 2);
    e.push_back(static_cast<char>(code >> 8));
    e.push_back(static_cast<char>(code));
    return e + "bye" + std::string(1, '\0');
  };
  // EDK2: RRQ with tsize, OACK, then ERROR 8; it only wanted the size.
  Client probe;
  probe.sendTo(port_, rrq("small", "octet", {{"tsize", "0"}}));
  auto oack = probe.receive();
  ASSERT_TRUE(oack);
  EXPECT_EQ(oack->op(), 6);
  probe.sendTo(ntohs(oack->from.sin_port), error(8));
  // pxelinux through iPXE: both data blocks, then ERROR 0 instead of ACKing the empty last block.
  Client closer;
  closer.sendTo(port_, rrq("aligned"));
  auto d1 = closer.receive();
  ASSERT_TRUE(d1);
  auto tid = ntohs(d1->from.sin_port);
  closer.ack(tid, 1);
  auto d2 = closer.receive();
  ASSERT_TRUE(d2);
  EXPECT_EQ(d2->block(), 2);
  closer.sendTo(tid, error(0));
  // A client that gives up part-way is still a failure.
  Client quitter;
  quitter.sendTo(port_, rrq("big"));
  auto q1 = quitter.receive();
  ASSERT_TRUE(q1);
  quitter.sendTo(ntohs(q1->from.sin_port), error(0));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto& s = statsAfterStop();
  EXPECT_EQ(s.transfersClosedByClient, 2u);
  EXPECT_EQ(s.transfersFailed, 1u);
}

TEST_F(TftpServiceTest, RetransmitsOnTimeoutThenGivesUp) {
  start();
  Client c;
  c.sendTo(port_, rrq("small"));
  auto first = c.receive();
  ASSERT_TRUE(first);
  auto again = c.receive(2000);  // no ACK: the same block comes again after the timeout
  ASSERT_TRUE(again);
  EXPECT_EQ(again->block(), 1);
  EXPECT_EQ(again->data, first->data);
  EXPECT_TRUE(c.receive(2000));    // second retry (backed off)
  EXPECT_FALSE(c.receive(2500));   // retries = 2: then it gives up
  auto& s = statsAfterStop();
  EXPECT_EQ(s.transfersFailed, 1u);
  EXPECT_EQ(s.retransmits, 2u);
}

// Progress after backed-off retransmissions brings the timeout back to its initial value, and the
// next loss is noticed after that value, not after the backed-off wait still pending on the timer
// (a lost OACK or block followed by another loss took up to 4x the timeout to be resent).
TEST_F(TftpServiceTest, NextLossAfterABackOffIsResentAtTheInitialTimeout) {
  start();  // timeout 300 ms, retries 2
  Client c;
  c.sendTo(port_, rrq("small"));  // 1000 bytes: DATA 1 (512) and DATA 2 (488)
  ASSERT_TRUE(c.receive());
  ASSERT_TRUE(c.receive(2000));  // DATA 1 again after 300 ms; the timeout doubles to 600 ms
  auto d1 = c.receive(2000);     // and again after 600 ms; now 1200 ms
  ASSERT_TRUE(d1);
  EXPECT_EQ(d1->block(), 1);
  auto tid = ntohs(d1->from.sin_port);
  c.ack(tid, 1);
  auto d2 = c.receive();
  ASSERT_TRUE(d2);
  EXPECT_EQ(d2->block(), 2);
  auto sent = std::chrono::steady_clock::now();
  auto again = c.receive(3000);  // DATA 2 not acknowledged: resent after 300 ms, not 1200 ms
  auto waited = std::chrono::steady_clock::now() - sent;
  ASSERT_TRUE(again);
  EXPECT_EQ(again->block(), 2);
  EXPECT_GE(waited, std::chrono::milliseconds(250));
  EXPECT_LT(waited, std::chrono::milliseconds(800));
  c.ack(tid, 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto& s = statsAfterStop();
  EXPECT_EQ(s.transfersCompleted, 1u);
  EXPECT_EQ(s.retransmits, 3u);
}

TEST_F(TftpServiceTest, RepeatedRrqFromSamePortDoesNotStartASecondTransfer) {
  cfg_.timeout = std::chrono::milliseconds(5000);
  start();
  Client c;
  c.sendTo(port_, rrq("small"));
  c.sendTo(port_, rrq("small"));
  ASSERT_TRUE(c.receive());
  EXPECT_FALSE(c.receive(300));
  auto& s = statsAfterStop();
  EXPECT_EQ(s.transfersStarted, 1u);
  EXPECT_EQ(s.drops[static_cast<std::size_t>(tftp::Drop::Duplicate)], 1u);
}

TEST_F(TftpServiceTest, WindowedSend) {
  start();
  Client c;
  c.sendTo(port_, rrq("big", "octet", {{"windowsize", "4"}}));
  auto o = c.receive();
  ASSERT_TRUE(o);
  ASSERT_EQ(o->op(), 6);
  auto tid = ntohs(o->from.sin_port);
  c.ack(tid, 0);
  for (std::uint16_t b = 1; b <= 4; ++b) {
    auto d = c.receive();
    ASSERT_TRUE(d);
    EXPECT_EQ(d->block(), b);
  }
  EXPECT_FALSE(c.receive(100));  // the window is full
  c.ack(tid, 2);                 // RFC 7440: a gap after 2, so resume from 3
  auto d3 = c.receive();
  ASSERT_TRUE(d3);
  EXPECT_EQ(d3->block(), 3);
}

TEST_F(TftpServiceTest, Netascii) {
  start();
  Client c;
  c.sendTo(port_, rrq("text", "netascii", {{"tsize", "0"}}));
  auto o = c.receive();
  ASSERT_TRUE(o);
  EXPECT_EQ(std::string(o->data.begin() + 2, o->data.end()), std::string("tsize\0" "10\0", 9));
  c.ack(ntohs(o->from.sin_port), 0);
  auto d = c.receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->payload(), std::string("one\r\ntwo\r\0", 10));
}

TEST_F(TftpServiceTest, PerHostFileByClientIp) {
  cfg_.perHost = {{"boot.cfg", "hosts/{name}/boot.cfg"}};
  start("[[host]]\nname = \"alpha\"\nip = \"127.0.0.1\"\n");
  Client c;
  EXPECT_EQ(fetch(c, port_, "boot.cfg"), "alpha's config");
  EXPECT_EQ(fetch(c, port_, "/small"), std::string(1000, 'x'));
}

TEST_F(TftpServiceTest, UnknownHostGetsTheSharedFile) {
  cfg_.perHost = {{"boot.cfg", "hosts/{name}/boot.cfg"}};
  start("[[host]]\nname = \"alpha\"\nip = \"10.1.2.3\"\n");
  Client c;
  EXPECT_EQ(fetch(c, port_, "boot.cfg"), "generic");
}

TEST_F(TftpServiceTest, RateLimitAndTransferLimit) {
  cfg_.clientRate = 1;
  cfg_.clientBurst = 2;
  cfg_.maxTransfers = 1;
  cfg_.timeout = std::chrono::milliseconds(5000);
  start();
  Client a, b, d;
  a.sendTo(port_, rrq("small"));
  ASSERT_EQ(a.receive()->op(), 3);
  b.sendTo(port_, rrq("small"));  // second token, but the one transfer slot is taken
  auto busy = b.receive();
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->op(), 5);
  EXPECT_EQ(busy->text(), "Server busy, try again later");
  d.sendTo(port_, rrq("small"));  // no token left
  auto limited = d.receive();
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->text(), "Too many requests, try again later");
}

TEST_F(TftpServiceTest, ReloadKeepsTransfersAndRefusesABadRoot) {
  cfg_.timeout = std::chrono::milliseconds(5000);
  start();
  Client c;
  c.sendTo(port_, rrq("small"));
  auto d1 = c.receive();
  ASSERT_TRUE(d1);
  auto bad = cfg_;
  bad.root = (root_ / "no-such-dir").string();
  std::promise<bool> applied;
  asio::post(loop_.io(), [&] { applied.set_value(service_->apply(bad, nullptr).ok()); });
  EXPECT_FALSE(applied.get_future().get());
  c.ack(ntohs(d1->from.sin_port), 1);
  auto d2 = c.receive();
  ASSERT_TRUE(d2);  // the transfer in flight goes on
  EXPECT_EQ(d2->block(), 2);
}

TEST_F(TftpServiceTest, FileEventsSayTheNegotiatedBlockAndWindowSize) {
  start();
  std::mutex m;
  std::vector<boot::FileEvent> events;
  std::promise<void> sinkSet;
  asio::post(loop_.io(), [&] {
    service_->setEventSink([&](const boot::Event& e) {
      std::lock_guard lock(m);
      if (auto* f = std::get_if<boot::FileEvent>(&e.what)) events.push_back(*f);
    });
    sinkSet.set_value();
  });
  sinkSet.get_future().wait();
  auto waitForEvents = [&](std::size_t n) {
    for (int i = 0; i < 200; ++i) {
      {
        std::lock_guard lock(m);
        if (events.size() >= n) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };

  Client c;
  EXPECT_EQ(fetch(c, port_, "small"), std::string(1000, 'x'));  // no options: 512, lock-step
  ASSERT_TRUE(waitForEvents(1));
  Client w;  // "big" is 5000 bytes: blocks 1-4 of 1024 in one window, then block 5
  w.sendTo(port_, rrq("big", "octet", {{"blksize", "1024"}, {"windowsize", "4"}}));
  auto o = w.receive();
  ASSERT_TRUE(o);
  ASSERT_EQ(o->op(), 6);
  auto tid = ntohs(o->from.sin_port);
  w.ack(tid, 0);
  for (std::uint16_t b = 1; b <= 5; ++b) {
    auto d = w.receive();
    ASSERT_TRUE(d);
    ASSERT_EQ(d->block(), b);
    if (b == 4 || b == 5) w.ack(tid, b);
  }
  ASSERT_TRUE(waitForEvents(2));
  Client missing;
  missing.sendTo(port_, rrq("no-such-file"));
  ASSERT_TRUE(missing.receive());
  ASSERT_TRUE(waitForEvents(3));

  stop();
  service_->setEventSink(nullptr);  // the loop is stopped: nothing reports into this test's locals now
  EXPECT_EQ(events[0].result, boot::FileResult::Completed);
  EXPECT_EQ(events[0].requested, "small");
  EXPECT_EQ(events[0].bytes, 1000u);
  EXPECT_EQ(events[0].blksize, 512u);
  EXPECT_EQ(events[0].windowsize, 1u);
  EXPECT_EQ(events[1].result, boot::FileResult::Completed);
  EXPECT_EQ(events[1].requested, "big");
  EXPECT_EQ(events[1].bytes, 5000u);
  EXPECT_EQ(events[1].blksize, 1024u);
  EXPECT_EQ(events[1].windowsize, 4u);
  EXPECT_EQ(events[2].result, boot::FileResult::NotFound);  // refused before any transfer: no sizes
  EXPECT_FALSE(events[2].blksize);
  EXPECT_FALSE(events[2].windowsize);
}
