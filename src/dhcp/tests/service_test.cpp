// The real DhcpService driven in process through a fake PacketIo (packet_io.hpp): datagrams built
// with the wire codec go in on a named interface index, the replies the service sends come out with
// their destination, and the lease journal is a real file in a temporary directory. What the
// integration tests in network namespaces cannot pin down: which interface index is answered, the
// order of a batch's replies, that an ACK leaves only once the journal holds its lease, and that a
// refused reload changes nothing.
#include "dhcp/service.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "config/config.hpp"
#include "dhcp/wire/packet.hpp"
#include "inventory/inventory.hpp"

namespace pxedust::dhcp {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::uint32_t ip(int a, int b, int c, int d) {
  return static_cast<std::uint32_t>(a) << 24 | static_cast<std::uint32_t>(b) << 16 |
         static_cast<std::uint32_t>(c) << 8 | static_cast<std::uint32_t>(d);
}

// A reply as the fake network saw it leave.
struct Sent {
  std::string endpoint;  // "eth1:67"
  asio::ip::udp::endpoint to;
  wire::Message message;
  bool batched = false;  // through sendBatch (not the one-by-one fallback)
};

// The network as the service sees it through PacketIo: interfaces by name, and per interface and
// port a queue of datagrams to deliver and a record of what was sent. The state outlives the
// endpoints the service opens and closes, so a test can look at a port after a reload closed it.
class FakeNetwork final : public PacketIo {
 public:
  struct Port {
    explicit Port(asio::io_context& io) : wake(io) {}
    std::deque<std::pair<std::vector<std::uint8_t>, event::Received>> inbound;
    asio::steady_timer wake;  // cancelled when a datagram arrives or the endpoint closes
    bool open = false;
    int opens = 0;
    std::vector<std::size_t> batches;  // the size of each sendBatch call
    std::optional<unsigned> batchTakes;  // sendBatch sends at most this many (a full socket buffer)
    std::vector<std::pair<std::uint32_t, MacAddress>> neighbours;
  };
  struct State {
    explicit State(asio::io_context& i) : io(i) {}
    asio::io_context& io;
    std::map<std::string, InterfaceInfo> interfaces;
    std::map<std::string, std::shared_ptr<Port>> ports;
    std::vector<Sent> sent;
    std::function<void(const Sent&)> onSend;  // runs as each reply leaves
  };

  explicit FakeNetwork(asio::io_context& io) : state_(std::make_shared<State>(io)) {}
  [[nodiscard]] std::shared_ptr<State> state() const { return state_; }

  Result<InterfaceInfo> lookupInterface(const std::string& name) override {
    auto it = state_->interfaces.find(name);
    if (it == state_->interfaces.end()) return Error{"interface " + name + ": no such interface", ENODEV};
    return it->second;
  }
  Result<std::unique_ptr<PacketEndpoint>> open(const InterfaceInfo& interface, std::uint16_t port) override {
    auto key = interface.name + ":" + std::to_string(port);
    auto& p = state_->ports[key];
    if (!p) p = std::make_shared<Port>(state_->io);
    if (p->open) return Error{key + ": address in use", EADDRINUSE};
    p->open = true;
    ++p->opens;
    return std::unique_ptr<PacketEndpoint>(std::make_unique<Endpoint>(state_, p, key));
  }

 private:
  class Endpoint final : public PacketEndpoint {
   public:
    Endpoint(std::shared_ptr<State> state, std::shared_ptr<Port> port, std::string key)
        : state_(std::move(state)), port_(std::move(port)), key_(std::move(key)) {}
    ~Endpoint() override { close(); }

    asio::awaitable<std::error_code> waitReadable() override {
      if (!port_->open) co_return asio::error::operation_aborted;
      if (port_->inbound.empty()) {
        port_->wake.expires_at(asio::steady_timer::time_point::max());
        std::error_code ec;
        co_await port_->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      co_return port_->open ? std::error_code{} : std::error_code(asio::error::operation_aborted);
    }
    std::optional<event::Received> tryReceive(std::span<std::uint8_t> buffer) override {
      if (!port_->open || port_->inbound.empty()) return std::nullopt;
      auto [bytes, rx] = std::move(port_->inbound.front());
      port_->inbound.pop_front();
      rx.size = std::min(bytes.size(), buffer.size());
      rx.truncated = bytes.size() > buffer.size();
      std::memcpy(buffer.data(), bytes.data(), rx.size);
      return rx;
    }
    unsigned sendBatch(std::span<mmsghdr> messages) override {
      port_->batches.push_back(messages.size());
      if (port_->batchTakes && *port_->batchTakes < messages.size()) {
        messages = messages.first(*port_->batchTakes);
        errno = EAGAIN;
      }
      for (auto& m : messages) {
        const auto* to = static_cast<const sockaddr_in*>(m.msg_hdr.msg_name);
        std::vector<std::uint8_t> bytes;
        for (std::size_t i = 0; i < m.msg_hdr.msg_iovlen; ++i) {
          const auto& part = m.msg_hdr.msg_iov[i];
          const auto* b = static_cast<const std::uint8_t*>(part.iov_base);
          bytes.insert(bytes.end(), b, b + part.iov_len);
        }
        record(bytes, asio::ip::udp::endpoint(asio::ip::address_v4(ntohl(to->sin_addr.s_addr)), ntohs(to->sin_port)),
               true);
        m.msg_len = static_cast<unsigned>(bytes.size());
      }
      return static_cast<unsigned>(messages.size());
    }
    bool send(std::span<const iovec> parts, const asio::ip::udp::endpoint& to) override {
      std::vector<std::uint8_t> bytes;
      for (const auto& part : parts) {
        const auto* b = static_cast<const std::uint8_t*>(part.iov_base);
        bytes.insert(bytes.end(), b, b + part.iov_len);
      }
      record(bytes, to, false);
      return true;
    }
    Result<void> setNeighbour(std::uint32_t address, const MacAddress& mac) override {
      port_->neighbours.emplace_back(address, mac);
      return {};
    }
    void close() override {
      if (closed_) return;
      closed_ = true;
      port_->open = false;
      port_->inbound.clear();
      port_->wake.cancel();
    }

   private:
    void record(const std::vector<std::uint8_t>& bytes, const asio::ip::udp::endpoint& to, bool batched) {
      auto m = wire::parseMessage(bytes);
      ASSERT_TRUE(m.ok()) << "the service sent a datagram its own codec cannot parse: " << m.error().message;
      state_->sent.push_back(Sent{key_, to, std::move(*m), batched});
      if (state_->onSend) state_->onSend(state_->sent.back());
    }

    std::shared_ptr<State> state_;
    std::shared_ptr<Port> port_;
    std::string key_;
    bool closed_ = false;
  };

  std::shared_ptr<State> state_;
};

constexpr std::string_view kConfig = R"(
[dhcp]
interfaces = ["eth1"]
lease_file = "{leases}"
answer_router_solicitations = false
next_server = "10.9.0.1"
boot = { bios = "pxelinux.0" }
[[dhcp.subnet]]
subnet = "10.9.0.0/24"
pools = ["10.9.0.100-10.9.0.101"]
routers = "10.9.0.1"
[[host]]
name = "alpha"
mac = "52:54:00:00:00:01"
ip = "10.9.0.11"
)";

constexpr const char* kAlpha = "52:54:00:00:00:01";  // reserved: 10.9.0.11
constexpr const char* kPoolClient = "52:54:00:00:00:77";
constexpr std::uint32_t kServer = ip(10, 9, 0, 1);

std::string replaceAll(std::string s, std::string_view what, std::string_view with) {
  for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + with.size())) s.replace(at, what.size(), with);
  return s;
}

std::vector<std::uint8_t> datagram(wire::MessageType type, const char* mac, std::uint32_t xid,
                                   const std::function<void(wire::Message&)>& more = {}) {
  wire::Message m;
  m.op = wire::Op::BootRequest;
  m.xid = xid;
  m.setMac(*MacAddress::parse(mac));
  m.setMessageType(type);
  if (more) more(m);
  auto e = wire::encodeMessage(m);
  EXPECT_TRUE(e.ok()) << e.error().message;
  return e ? e->bytes : std::vector<std::uint8_t>{};
}

// What a BIOS PXE ROM says it is (options 60 and 93), so the answer names a boot program.
void biosPxe(wire::Message& m) {
  m.setString(wire::opt::kVendorClass, "PXEClient:Arch:00000:UNDI:002001");
  m.setU16(wire::opt::kClientArch, 0);
}

// A REQUEST selecting this server's offer of `address` (RFC 2131 §4.3.2).
std::vector<std::uint8_t> selecting(const char* mac, std::uint32_t xid, std::uint32_t address) {
  return datagram(wire::MessageType::Request, mac, xid, [&](wire::Message& m) {
    biosPxe(m);
    m.setIp(wire::opt::kServerId, kServer);
    m.setIp(wire::opt::kRequestedIp, address);
  });
}

class DhcpServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("pxedust-dhcp-service-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto net = std::make_unique<FakeNetwork>(loop_.io());
    net_ = net->state();
    net_->interfaces["eth1"] = InterfaceInfo{"eth1", 2, kServer, 0xFFFFFF00};
    net_->interfaces["eth2"] = InterfaceInfo{"eth2", 3, ip(10, 8, 0, 1), 0xFFFFFF00};
    service_ = std::make_unique<DhcpService>(loop_, [this] { return now_; }, std::move(net));
  }
  void TearDown() override {
    service_->stop();
    settle();
    service_.reset();
    settle();
    fs::remove_all(dir_);
  }

  [[nodiscard]] std::string leasesPath() const { return (dir_ / "dhcp.leases").string(); }
  config::Config configFor(std::string_view extra = "", std::string_view text = kConfig) {
    std::string t = replaceAll(std::string(text), "{leases}", leasesPath());
    t += extra;
    return config::loadString(t, "dhcp.toml", {schema()});
  }
  Result<void> apply(const config::Config& c) { return service_->apply(c, inventory::Inventory::fromConfig(c)); }
  void start() {
    auto r = apply(configFor());
    ASSERT_TRUE(r.ok()) << r.error().message;
  }

  // A datagram arriving on `endpoint` ("eth1:67") from an unconfigured client, as the kernel reports
  // it: with the index of the interface it came in on.
  void deliver(const std::string& endpoint, std::vector<std::uint8_t> bytes, unsigned ifindex = 2) {
    auto it = net_->ports.find(endpoint);
    ASSERT_TRUE(it != net_->ports.end() && it->second->open) << endpoint << " is not open";
    event::Received rx;
    rx.from = asio::ip::udp::endpoint(asio::ip::address_v4::any(), 68);
    rx.ifindex = ifindex;
    it->second->inbound.emplace_back(std::move(bytes), rx);
    it->second->wake.cancel();
  }

  // Runs the loop until `done`, at most `limit` (the journal's sync thread posts back to it).
  bool runUntil(const std::function<bool()>& done, std::chrono::milliseconds limit = 5000ms) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      if (loop_.io().stopped()) loop_.io().restart();
      loop_.io().run_one_for(10ms);
    }
    return true;
  }
  bool sentCount(std::size_t n) {
    return runUntil([&] { return net_->sent.size() >= n; });
  }
  // Runs what is ready now, nothing that waits.
  void settle() {
    loop_.io().restart();
    loop_.io().poll();
  }

  [[nodiscard]] std::string journal() const {
    std::ifstream in(leasesPath());
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  [[nodiscard]] std::uint64_t dropped(Drop d) const { return service_->stats().dropped[static_cast<std::size_t>(d)]; }

  // DISCOVER -> OFFER -> REQUEST -> ACK for `mac`; returns the ACK.
  wire::Message exchange(const char* mac, std::uint32_t xid, std::uint32_t expect) {
    const auto before = net_->sent.size();
    deliver("eth1:67", datagram(wire::MessageType::Discover, mac, xid, biosPxe));
    EXPECT_TRUE(sentCount(before + 1));
    const auto offer = net_->sent.at(before).message;
    EXPECT_EQ(offer.messageType(), wire::MessageType::Offer);
    EXPECT_EQ(offer.xid, xid);
    EXPECT_EQ(offer.yiaddr, expect);
    EXPECT_EQ(offer.serverId(), kServer);
    EXPECT_EQ(offer.bootFile(), "pxelinux.0");
    deliver("eth1:67", selecting(mac, xid + 1, offer.yiaddr));
    EXPECT_TRUE(sentCount(before + 2));
    return net_->sent.at(before + 1).message;
  }

  event::Loop loop_;
  fs::path dir_;
  std::shared_ptr<FakeNetwork::State> net_;
  std::unique_ptr<DhcpService> service_;
  UnixTime now_ = 1'800'000'000;
};

TEST_F(DhcpServiceTest, OpensOnlyTheConfiguredInterface) {
  start();
  EXPECT_EQ(service_->endpoints(), std::vector<std::string>{"eth1:67"});
  EXPECT_TRUE(net_->ports.contains("eth1:67"));
  EXPECT_FALSE(net_->ports.contains("eth2:67"));
}

TEST_F(DhcpServiceTest, ReservedHostGetsItsAddressAndName) {
  start();
  const std::string acked = "lease addr=10.9.0.11 state=bound kind=static";
  bool durableAtSend = false;
  net_->onSend = [&](const Sent& s) {
    if (s.message.messageType() == wire::MessageType::Ack) durableAtSend = journal().find(acked) != std::string::npos;
  };
  auto ack = exchange(kAlpha, 0x100, ip(10, 9, 0, 11));
  EXPECT_EQ(ack.messageType(), wire::MessageType::Ack);
  EXPECT_EQ(ack.xid, 0x101U);
  EXPECT_EQ(ack.yiaddr, ip(10, 9, 0, 11));
  EXPECT_EQ(ack.hostName(), "alpha");
  EXPECT_EQ(ack.bootFile(), "pxelinux.0");
  EXPECT_TRUE(durableAtSend) << "the ACK left before the journal held its lease:\n" << journal();
  // No broadcast flag and no address yet: unicast to the new address, the neighbour entry set first.
  const auto& sent = net_->sent.back();
  EXPECT_EQ(sent.to, asio::ip::udp::endpoint(asio::ip::address_v4(ip(10, 9, 0, 11)), 68));
  ASSERT_FALSE(net_->ports.at("eth1:67")->neighbours.empty());
  EXPECT_EQ(net_->ports.at("eth1:67")->neighbours.back().first, ip(10, 9, 0, 11));
  EXPECT_EQ(net_->ports.at("eth1:67")->neighbours.back().second, *MacAddress::parse(kAlpha));
}

TEST_F(DhcpServiceTest, PoolClientsAckLeavesOnlyOnceTheJournalHoldsItsLease) {
  start();
  const std::string bound = "lease addr=10.9.0.100 state=bound kind=dynamic";
  std::optional<bool> durableAtSend;
  std::uint64_t changes = 0, durable = 0;
  net_->onSend = [&](const Sent& s) {
    if (s.message.messageType() != wire::MessageType::Ack) return;
    durableAtSend = journal().find(bound) != std::string::npos;
    changes = service_->leases()->changeCount();
    durable = service_->leases()->durableCount();
  };
  const auto syncsBefore = service_->stats().syncs;
  auto ack = exchange(kPoolClient, 0x200, ip(10, 9, 0, 100));
  EXPECT_EQ(ack.messageType(), wire::MessageType::Ack);
  EXPECT_EQ(ack.yiaddr, ip(10, 9, 0, 100));
  EXPECT_EQ(ack.leaseTime(), 3600U);
  ASSERT_TRUE(durableAtSend.has_value());
  EXPECT_TRUE(*durableAtSend) << "the ACK left before the journal held its lease:\n" << journal();
  EXPECT_GE(durable, changes);
  EXPECT_GT(service_->stats().syncs, syncsBefore);
  // The OFFER did not wait for the journal (an offer is not durable), the ACK did.
  EXPECT_EQ(journal().find("state=offered"), std::string::npos);
  const auto& stats = service_->stats();
  EXPECT_EQ(stats.sent[static_cast<std::size_t>(MessageType::Offer)], 1U);
  EXPECT_EQ(stats.sent[static_cast<std::size_t>(MessageType::Ack)], 1U);
}

TEST_F(DhcpServiceTest, RequestOnAnInterfaceIndexNotConfiguredIsNotAnswered) {
  start();
  // eth2 (index 3) is not in the config: a datagram the kernel says came in there is dropped even
  // though it reached eth1's endpoint.
  deliver("eth1:67", datagram(wire::MessageType::Discover, kPoolClient, 0x300), 3);
  deliver("eth1:67", datagram(wire::MessageType::Discover, kPoolClient, 0x301), 2);
  ASSERT_TRUE(sentCount(1));
  settle();
  ASSERT_EQ(net_->sent.size(), 1U);
  EXPECT_EQ(net_->sent[0].message.xid, 0x301U);
  EXPECT_EQ(dropped(Drop::WrongInterface), 1U);
}

TEST_F(DhcpServiceTest, MalformedDatagramIsDroppedAndTheNextAnswered) {
  start();
  deliver("eth1:67", std::vector<std::uint8_t>(40, 0xAB));  // shorter than a BOOTP header
  auto noCookie = datagram(wire::MessageType::Discover, kPoolClient, 0x400);
  noCookie[236] ^= 0xFF;  // the magic cookie
  deliver("eth1:67", std::move(noCookie));
  deliver("eth1:67", datagram(wire::MessageType::Discover, kPoolClient, 0x401));
  ASSERT_TRUE(sentCount(1));
  settle();
  ASSERT_EQ(net_->sent.size(), 1U);
  EXPECT_EQ(net_->sent[0].message.xid, 0x401U);
  EXPECT_EQ(net_->sent[0].message.messageType(), wire::MessageType::Offer);
  EXPECT_EQ(dropped(Drop::Malformed), 2U);
}

TEST_F(DhcpServiceTest, BatchAnswersRequestsBeforeDiscoversInOneSend) {
  start();
  // Both queued before the service wakes: one batch. The REQUEST (init-reboot for an address not
  // on the subnet: a NAK, which needs no journal) is answered first, then the DISCOVER's OFFER.
  deliver("eth1:67", datagram(wire::MessageType::Discover, kPoolClient, 0x500));
  deliver("eth1:67", datagram(wire::MessageType::Request, kAlpha, 0x501,
                              [](wire::Message& m) { m.setIp(wire::opt::kRequestedIp, ip(10, 8, 0, 5)); }));
  ASSERT_TRUE(sentCount(2));
  EXPECT_EQ(net_->sent[0].message.messageType(), wire::MessageType::Nak);
  EXPECT_EQ(net_->sent[0].message.xid, 0x501U);
  EXPECT_EQ(net_->sent[1].message.messageType(), wire::MessageType::Offer);
  EXPECT_EQ(net_->sent[1].message.xid, 0x500U);
  EXPECT_TRUE(net_->sent[0].batched && net_->sent[1].batched);
  EXPECT_EQ(net_->ports.at("eth1:67")->batches, std::vector<std::size_t>{2});
  EXPECT_EQ(service_->stats().batches, 1U);
}

TEST_F(DhcpServiceTest, WhatSendmmsgDidNotTakeGoesOneByOne) {
  start();
  net_->ports.at("eth1:67")->batchTakes = 1;
  deliver("eth1:67", datagram(wire::MessageType::Discover, kPoolClient, 0x550));
  deliver("eth1:67", datagram(wire::MessageType::Discover, kAlpha, 0x551));
  ASSERT_TRUE(sentCount(2));
  EXPECT_TRUE(net_->sent[0].batched);
  EXPECT_FALSE(net_->sent[1].batched);
  EXPECT_EQ(net_->sent[1].message.xid, 0x551U);
  EXPECT_EQ(service_->stats().sent[static_cast<std::size_t>(MessageType::Offer)], 2U);
  EXPECT_EQ(service_->stats().sendErrors, 0U);
}

TEST_F(DhcpServiceTest, RefusedPrepareChangesNothing) {
  start();
  auto ack = exchange(kPoolClient, 0x600, ip(10, 9, 0, 100));
  ASSERT_EQ(ack.messageType(), wire::MessageType::Ack);
  const auto journalBefore = journal();
  const auto leasesBefore = service_->leases()->changeCount();

  struct Case {
    const char* what;
    config::Config config;
  };
  // Each also adds eth2, so prepare() has opened its endpoint before it refuses.
  const std::string withEth2 = replaceAll(std::string(kConfig), "interfaces = [\"eth1\"]", "interfaces = [\"eth1\", \"eth2\"]");
  Case cases[] = {
      // Subnet 0.0.0.0/8 passes the config checks, but its id (the network address) is the lease
      // database's "no subnet": the new pools are refused against the running database.
      {"pools", configFor("[[dhcp.subnet]]\nsubnet = \"0.0.0.0/8\"\npools = [\"0.0.0.10-0.0.0.20\"]\n", withEth2)},
      {"lease file", configFor("", replaceAll(withEth2, "{leases}", leasesPath() + ".other"))},
      {"interface", configFor("", replaceAll(withEth2, "\"eth2\"", "\"eth9\""))},
  };
  int expectedEth2Opens = 0;
  for (auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto staged = service_->prepare(c.config, inventory::Inventory::fromConfig(c.config));
    ASSERT_FALSE(staged.ok());
    if (std::string_view(c.what) == "pools") {
      EXPECT_NE(staged.error().message.find("subnet id 0"), std::string::npos) << staged.error().message;
      ++expectedEth2Opens;
    }
    // Whatever prepare() opened is closed again; the running service is as it was.
    if (net_->ports.contains("eth2:67")) {
      EXPECT_FALSE(net_->ports.at("eth2:67")->open);
      EXPECT_EQ(net_->ports.at("eth2:67")->opens, expectedEth2Opens);
    }
    EXPECT_EQ(service_->endpoints(), std::vector<std::string>{"eth1:67"});
    EXPECT_TRUE(net_->ports.at("eth1:67")->open);
    EXPECT_EQ(service_->leases()->changeCount(), leasesBefore);
  }
  EXPECT_EQ(expectedEth2Opens, 1);
  EXPECT_EQ(journal(), journalBefore);
  EXPECT_FALSE(fs::exists(leasesPath() + ".other"));

  // Still answering on eth1 from the old config: the client renews its address (ciaddr, unicast).
  const auto before = net_->sent.size();
  deliver("eth1:67", datagram(wire::MessageType::Request, kPoolClient, 0x610,
                              [](wire::Message& m) { m.ciaddr = ip(10, 9, 0, 100); }));
  ASSERT_TRUE(sentCount(before + 1));
  EXPECT_EQ(net_->sent.back().message.messageType(), wire::MessageType::Ack);
  EXPECT_EQ(net_->sent.back().message.yiaddr, ip(10, 9, 0, 100));
  EXPECT_EQ(net_->sent.back().to, asio::ip::udp::endpoint(asio::ip::address_v4(ip(10, 9, 0, 100)), 68));
}

TEST_F(DhcpServiceTest, StopSettlesAndClosesEveryEndpoint) {
  start();
  service_->stop();
  EXPECT_TRUE(service_->endpoints().empty());
  EXPECT_FALSE(net_->ports.at("eth1:67")->open);
  settle();  // the serving coroutine sees its endpoint closed and ends
}

}  // namespace
}  // namespace pxedust::dhcp
