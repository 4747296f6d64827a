// The DHCP policy driven directly: requests in, decisions out (no sockets), over a real lease
// database in a temporary directory.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>

#include "config/config.hpp"
#include "dhcp/policy.hpp"
#include "inventory/inventory.hpp"

namespace pxedust::dhcp {
namespace {

constexpr std::string_view kConfig = R"(
[dhcp]
interfaces = ["eth1"]
next_server = "10.9.0.1"
boot = { bios = "pxelinux.0", uefi = "ipxe.efi", http = "http://10.9.0.1/ipxe.efi" }
ipxe_script = "http://10.9.0.1/boot.ipxe"
[[dhcp.subnet]]
subnet = "10.9.0.0/24"
pools = ["10.9.0.100-10.9.0.101"]
routers = "10.9.0.1"
[[group]]
name = "lab"
boot = { bios = "lab.0" }
[[host]]
name = "alpha"
mac = "52:54:00:00:00:01"
ip = "10.9.0.11"
group = "lab"
root_path = "iscsi:10.9.0.1::::iqn.2026-11.org.pxedust:alpha"
)";

class PolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("pxedust-policy-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    load(kConfig);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // `rootDisk`: where the first host's root disk is served (the iSCSI schema's work in the daemon).
  void load(std::string_view text, Mode mode = Mode::Server, std::optional<config::RootDisk> rootDisk = {}) {
    cfg_ = config::loadString(text, "t.toml", {schema()});
    dhcp_ = *configIn(cfg_);
    dhcp_.mode = mode;
    if (rootDisk) cfg_.hosts.at(0).rootDisk = rootDisk;
    LeaseDbOptions o;
    o.path = dir_ / "leases";
    db_.reset();
    auto db = LeaseDb::open(o, Policy::poolsFor(dhcp_), Policy::reservationsFor(cfg_), now_);
    ASSERT_TRUE(db.ok()) << db.error().message;
    db_.emplace(std::move(*db));
    policy_ = std::make_unique<Policy>(std::make_shared<const Config>(dhcp_),
                                       inventory::Inventory::fromConfig(cfg_), &*db_);
  }

  Request discover(const char* mac) {
    Request r;
    r.type = MessageType::Discover;
    r.mac = *MacAddress::parse(mac);
    r.xid = 7;
    return r;
  }

  Decision run(const Request& r, std::uint16_t port = 67) {
    Arrival a;
    a.interface = &iface_;
    a.localPort = port;
    a.sourceAddress = 0x0A090063;
    return policy_->handle(r, a, now_);
  }

  static std::optional<std::vector<std::uint8_t>> option(const Reply& r, std::uint8_t code) {
    for (const auto& o : r.options)
      if (o.code == code) return o.value;
    return std::nullopt;
  }
  static std::string text(const std::optional<std::vector<std::uint8_t>>& v) {
    return v ? std::string(v->begin(), v->end()) : std::string("<absent>");
  }

  std::filesystem::path dir_;
  config::Config cfg_;
  Config dhcp_;  // its [dhcp], for a test to change
  std::optional<LeaseDb> db_;
  std::unique_ptr<Policy> policy_;
  InterfaceInfo iface_{"eth1", 2, 0x0A090001, 0xFFFFFF00};
  UnixTime now_ = 1'800'000'000;
};

TEST_F(PolicyTest, ReservedHostGetsItsAddressNameAndGroupBootFile) {
  auto rq = discover("52:54:00:00:00:01");
  rq.vendorClass = "PXEClient:Arch:00000:UNDI:002001";
  rq.arch = 0;
  auto d = run(rq);
  ASSERT_TRUE(d.reply) << d.detail;
  EXPECT_EQ(d.reply->yiaddr, 0x0A09000BU);
  EXPECT_EQ(d.reply->file, "lab.0");
  EXPECT_EQ(d.reply->siaddr, 0x0A090001U);
  EXPECT_EQ(text(option(*d.reply, 12)), "alpha");
  EXPECT_EQ(text(option(*d.reply, 17)), "iscsi:10.9.0.1::::iqn.2026-11.org.pxedust:alpha");
  EXPECT_EQ(d.reply->destination, Destination::UnicastNew);  // no broadcast flag, no ciaddr
}

TEST_F(PolicyTest, ArchitecturesAndIpxe) {
  struct Case {
    std::optional<std::uint16_t> arch;
    const char* vendor;
    bool ipxe;
    const char* file;
    const char* vendorReply;
  };
  const Case cases[] = {
      {0, "PXEClient:Arch:00000:UNDI:002001", false, "pxelinux.0", "PXEClient"},
      {7, "PXEClient:Arch:00007:UNDI:003016", false, "ipxe.efi", "PXEClient"},
      {std::nullopt, "PXEClient:Arch:00007:UNDI:003016", false, "ipxe.efi", "PXEClient"},  // arch from opt 60
      {16, "HTTPClient:Arch:00016:UNDI:003001", false, "http://10.9.0.1/ipxe.efi", "HTTPClient"},
      {7, "PXEClient:Arch:00007:UNDI:003016", true, "http://10.9.0.1/boot.ipxe", "PXEClient"},
  };
  int i = 0;
  for (const auto& c : cases) {
    auto rq = discover(fmt::format("52:54:00:00:01:{:02x}", i++).c_str());
    rq.arch = c.arch;
    rq.vendorClass = c.vendor;
    rq.userClassIpxe = c.ipxe;
    rq.broadcastFlag = true;
    auto d = run(rq);
    ASSERT_TRUE(d.reply) << d.detail;
    EXPECT_EQ(d.reply->file, c.file);
    EXPECT_EQ(text(option(*d.reply, 60)), c.vendorReply);
    EXPECT_EQ(option(*d.reply, 175).has_value(), c.ipxe);
    EXPECT_EQ(d.reply->destination, Destination::Broadcast);
    now_ += 120;  // the pool has two addresses: let the offer expire before the next case
  }
}

TEST_F(PolicyTest, IpxeHostWithRootPathAndNoScriptGetsNoBootFile) {
  std::string noScript(kConfig);
  const std::string script = "ipxe_script = \"http://10.9.0.1/boot.ipxe\"\n";
  noScript.erase(noScript.find(script), script.size());
  load(noScript);
  auto rq = discover("52:54:00:00:00:01");
  rq.userClassIpxe = true;
  rq.vendorClass = "PXEClient:Arch:00000:UNDI:002001";
  auto d = run(rq);
  ASSERT_TRUE(d.reply) << d.detail;
  EXPECT_EQ(d.reply->file, "");  // iPXE boots the root-path (sanboot), never iPXE again
  EXPECT_EQ(text(option(*d.reply, 17)), "iscsi:10.9.0.1::::iqn.2026-11.org.pxedust:alpha");
}

// With [http] on (the daemon sets Config::httpBoot), iPXE gets its per-host script over HTTP and
// UEFI HTTP Boot gets the UEFI program over HTTP, with nothing more to configure.
TEST_F(PolicyTest, HttpBootHandsIpxeItsScriptAndUefiHttpItsProgram) {
  std::string cfg(kConfig);
  for (std::string key : {"ipxe_script = \"http://10.9.0.1/boot.ipxe\"\n", ", http = \"http://10.9.0.1/ipxe.efi\""})
    cfg.erase(cfg.find(key), key.size());
  load(cfg);
  dhcp_.httpBoot = Config::HttpBoot{asio::ip::address_v4::any(), 80};
  policy_ = std::make_unique<Policy>(std::make_shared<const Config>(dhcp_), inventory::Inventory::fromConfig(cfg_), &*db_);

  auto ipxe = discover("52:54:00:00:00:01");
  ipxe.userClassIpxe = true;
  ipxe.vendorClass = "PXEClient:Arch:00000:UNDI:002001";
  auto d = run(ipxe);
  ASSERT_TRUE(d.reply) << d.detail;
  EXPECT_EQ(d.reply->file, "http://10.9.0.1/ipxe/52-54-00-00-00-01");  // the address DHCP was reached on
  EXPECT_EQ(d.reply->siaddr, 0x0A090001U);  // next_server stays for TFTP

  auto uefiHttp = discover("52:54:00:00:01:10");
  uefiHttp.arch = 16;
  uefiHttp.vendorClass = "HTTPClient:Arch:00016:UNDI:003001";
  d = run(uefiHttp);
  ASSERT_TRUE(d.reply) << d.detail;
  EXPECT_EQ(d.reply->file, "http://10.9.0.1/ipxe.efi");
  EXPECT_EQ(text(option(*d.reply, 60)), "HTTPClient");

  // A listen address of its own and a port are named; PXE firmware still gets its TFTP file.
  dhcp_.httpBoot = Config::HttpBoot{asio::ip::make_address_v4("10.9.0.7"), 8080};
  policy_ = std::make_unique<Policy>(std::make_shared<const Config>(dhcp_), inventory::Inventory::fromConfig(cfg_), &*db_);
  d = run(ipxe);
  ASSERT_TRUE(d.reply) << d.detail;
  EXPECT_EQ(d.reply->file, "http://10.9.0.7:8080/ipxe/52-54-00-00-00-01");
  auto pxe = discover("52:54:00:00:00:01");
  pxe.arch = 0;
  pxe.vendorClass = "PXEClient:Arch:00000:UNDI:002001";
  d = run(pxe);
  ASSERT_TRUE(d.reply) << d.detail;
  EXPECT_EQ(d.reply->file, "lab.0");
}

TEST_F(PolicyTest, HostWithADiskGetsItsIscsiRootPath) {
  // No root_path configured: a host with an image gets its own target's, on the address it reached us on.
  std::string cfg(kConfig);
  const std::string rp = "root_path = \"iscsi:10.9.0.1::::iqn.2026-11.org.pxedust:alpha\"\n";
  cfg.erase(cfg.find(rp), rp.size());
  const std::string target = "iqn.2026-11.org.pxedust:alpha";
  load(cfg, Mode::Server, config::RootDisk{"iscsi", {asio::ip::address_v4::any(), 3260}, target});
  auto d = run(discover("52:54:00:00:00:01"));
  ASSERT_TRUE(d.reply) << d.detail;
  EXPECT_EQ(text(option(*d.reply, 17)), "iscsi:10.9.0.1::::iqn.2026-11.org.pxedust:alpha");
  // A specific listen address and port are named as such (RFC 4173).
  load(cfg, Mode::Server, config::RootDisk{"iscsi", {asio::ip::make_address("10.9.0.5"), 3261}, target});
  d = run(discover("52:54:00:00:00:01"));
  ASSERT_TRUE(d.reply) << d.detail;
  EXPECT_EQ(text(option(*d.reply, 17)), "iscsi:10.9.0.5::3261::iqn.2026-11.org.pxedust:alpha");
  // Hosts without a disk get none.
  d = run(discover("52:54:00:00:03:01"));
  ASSERT_TRUE(d.reply) << d.detail;
  EXPECT_EQ(text(option(*d.reply, 17)), "<absent>");
}

TEST_F(PolicyTest, RequestStates) {
  // Selecting another server: silence.
  auto rq = discover("52:54:00:00:02:01");
  rq.type = MessageType::Request;
  rq.serverId = 0x0A0900FE;
  rq.requestedIp = 0x0A090064;
  auto d = run(rq);
  EXPECT_EQ(d.drop, Drop::NotForUs);
  // Selecting us: ACK, durable first.
  rq.serverId = 0x0A090001;
  d = run(rq);
  ASSERT_TRUE(d.reply) << d.detail;
  EXPECT_EQ(d.reply->type, MessageType::Ack);
  EXPECT_TRUE(d.reply->needsSync);
  // Renewing (ciaddr): unicast to ciaddr.
  Request renew = discover("52:54:00:00:02:01");
  renew.type = MessageType::Request;
  renew.ciaddr = 0x0A090064;
  d = run(renew);
  ASSERT_TRUE(d.reply) << d.detail;
  EXPECT_EQ(d.reply->destination, Destination::Unicast);
  EXPECT_EQ(d.reply->to, 0x0A090064U);
  // Another client asking for that address: NAK, broadcast.
  Request thief = discover("52:54:00:00:02:02");
  thief.type = MessageType::Request;
  thief.requestedIp = 0x0A090064;
  d = run(thief);
  ASSERT_TRUE(d.reply);
  EXPECT_EQ(d.reply->type, MessageType::Nak);
  EXPECT_EQ(d.reply->destination, Destination::Broadcast);
  // A reserved host asking for another address: NAK.
  Request alpha = discover("52:54:00:00:00:01");
  alpha.type = MessageType::Request;
  alpha.requestedIp = 0x0A090064;
  d = run(alpha);
  ASSERT_TRUE(d.reply);
  EXPECT_EQ(d.reply->type, MessageType::Nak);
  // A request off the subnet: NAK.
  alpha.requestedIp = 0x0B000001;
  d = run(alpha);
  ASSERT_TRUE(d.reply);
  EXPECT_EQ(d.reply->type, MessageType::Nak);
}

TEST_F(PolicyTest, PoolExhaustionAndUnknownClients) {
  EXPECT_TRUE(run(discover("52:54:00:00:03:01")).reply);
  EXPECT_TRUE(run(discover("52:54:00:00:03:02")).reply);
  EXPECT_EQ(run(discover("52:54:00:00:03:03")).drop, Drop::PoolExhausted);
  dhcp_.serveUnknown = false;
  policy_->update(std::make_shared<const Config>(dhcp_), inventory::Inventory::fromConfig(cfg_));
  EXPECT_EQ(run(discover("52:54:00:00:03:04")).drop, Drop::UnknownClient);
  EXPECT_TRUE(run(discover("52:54:00:00:00:01")).reply);  // known hosts still served
}

TEST_F(PolicyTest, ProxyAnswersOnlyPxeClientsWithBootInformation) {
  load(kConfig, Mode::Proxy);
  auto plain = discover("52:54:00:00:04:01");
  EXPECT_EQ(run(plain).drop, Drop::NotPxe);
  auto pxe = discover("52:54:00:00:04:02");
  pxe.vendorClass = "PXEClient:Arch:00007:UNDI:003016";
  pxe.arch = 7;
  pxe.uuid = std::vector<std::uint8_t>(17, 3);
  auto d = run(pxe);
  ASSERT_TRUE(d.reply) << d.detail;
  EXPECT_EQ(d.reply->type, MessageType::Offer);
  EXPECT_EQ(d.reply->yiaddr, 0U);
  EXPECT_EQ(d.reply->file, "ipxe.efi");
  EXPECT_FALSE(option(*d.reply, 51));  // no lease
  EXPECT_EQ(option(*d.reply, 97), pxe.uuid);
  // Port 67 REQUEST belongs to the address server; port 4011 REQUEST gets an ACK back to the source.
  pxe.type = MessageType::Request;
  EXPECT_EQ(run(pxe).drop, Drop::ProxyIgnored);
  d = run(pxe, 4011);
  ASSERT_TRUE(d.reply);
  EXPECT_EQ(d.reply->type, MessageType::Ack);
  EXPECT_EQ(d.reply->destination, Destination::Source);
}

TEST_F(PolicyTest, BootFileTable) {
  BootFiles f;
  f.any = "any";
  f.bios = "bios";
  f.arm64 = "arm64";
  f.riscv64 = "rv";
  EXPECT_EQ(bootFileFor(f, 0), "bios");
  EXPECT_EQ(bootFileFor(f, 11), "arm64");
  EXPECT_EQ(bootFileFor(f, 27), "rv");
  EXPECT_EQ(bootFileFor(f, 7), "any");
  EXPECT_EQ(bootFileFor(f, std::nullopt), "any");
}

}  // namespace
}  // namespace pxedust::dhcp
