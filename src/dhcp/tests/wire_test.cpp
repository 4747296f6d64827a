#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "dhcp/wire/options.hpp"
#include "dhcp/wire/packet.hpp"

using namespace pxedust::dhcp::wire;
using Bytes = std::vector<std::uint8_t>;

namespace {

int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Builds a datagram from commented pieces, the way a capture reads in Wireshark's hex pane.
class Packet {
 public:
  Packet& hex(std::string_view h) {
    int hi = -1;
    for (char c : h) {
      int v = nibble(c);
      if (v < 0) continue;  // spaces and separators
      if (hi < 0) {
        hi = v;
      } else {
        bytes_.push_back(static_cast<std::uint8_t>(hi * 16 + v));
        hi = -1;
      }
    }
    EXPECT_EQ(hi, -1) << "odd number of hex digits in " << h;
    return *this;
  }
  Packet& text(std::string_view s) {
    bytes_.insert(bytes_.end(), s.begin(), s.end());
    return *this;
  }
  Packet& append(const Bytes& b) {
    bytes_.insert(bytes_.end(), b.begin(), b.end());
    return *this;
  }
  Packet& zeros(std::size_t n) {
    bytes_.insert(bytes_.end(), n, 0);
    return *this;
  }
  Packet& padTo(std::size_t n) {
    if (bytes_.size() < n) bytes_.resize(n, 0);
    return *this;
  }
  // A BOOTREQUEST header (236 bytes) with the cookie; fields not given are zero.
  Packet& request(std::string_view xid, std::string_view mac, std::string_view secsFlags = "0000 0000",
                  std::string_view giaddr = "00000000", std::string_view hops = "00") {
    hex("01 01 06").hex(hops);  // op BOOTREQUEST, htype Ethernet, hlen 6, hops
    hex(xid);
    hex(secsFlags);
    zeros(12);  // ciaddr, yiaddr, siaddr
    hex(giaddr);
    hex(mac).zeros(10);  // chaddr: the MAC, then 10 bytes of padding
    zeros(64 + 128);     // sname, file
    return hex("63 82 53 63");  // magic cookie
  }
  [[nodiscard]] const Bytes& bytes() const { return bytes_; }
  [[nodiscard]] std::size_t size() const { return bytes_.size(); }

 private:
  Bytes bytes_;
};

Bytes hexBytes(std::string_view h) { return Packet().hex(h).bytes(); }
Bytes textBytes(std::string_view s) { return {s.begin(), s.end()}; }

// --- Captures. Each is laid out as its client sends it; the option values are from the clients'
// sources and real traces, the MACs and xids are ours.

// ISC dhclient 4.4.3 (Debian 12) DISCOVER after a reboot: asks for its previous address, sends its
// host name and the PRL of the stock dhclient.conf; padded to 300 bytes; no option 57 or 61.
Bytes dhclientDiscover() {
  Packet p;
  p.request("3903f326", "52 54 00 12 34 56");
  p.hex("35 01 01");              // 53 message type: DISCOVER
  p.hex("32 04 c0 a8 01 64");     // 50 requested address 192.168.1.100
  p.hex("0c 07").text("debian1");  // 12 host name
  // 55 PRL: subnet-mask, broadcast, time-offset, routers, domain-name, dns, domain-search,
  // host-name, netbios-ns, netbios-scope, interface-mtu, classless routes, ntp
  p.hex("37 0d 01 1c 02 03 0f 06 77 0c 2c 2f 1a 79 2a");
  p.hex("ff");  // END
  return p.padTo(300).bytes();
}

// iPXE 1.21 (snponly.efi on x86-64 UEFI) DISCOVER: the options of dhcp_request_options_data in
// iPXE's src/net/udp/dhcp.c, then the feature list in 175, the client id and the SMBIOS UUID.
// iPXE sends the packet unpadded.
Bytes ipxeDiscover() {
  Packet p;
  p.request("b2 c4 12 56", "52 54 00 12 34 56", "0004 0000");  // secs 4
  p.hex("35 01 01");        // 53 DISCOVER
  p.hex("39 02 05 c0");     // 57 max message size 1472 (ETH_MAX_MTU - IP - UDP)
  p.hex("5d 02 00 07");     // 93 client arch 7 (EFI BC, i.e. x86-64 UEFI)
  p.hex("5e 03 01 03 10");  // 94 NDI: UNDI 3.16
  p.hex("3c 20").text("PXEClient:Arch:00007:UNDI:003016");  // 60 vendor class
  p.hex("4d 04").text("iPXE");  // 77 user class: a plain string, not RFC 3004
  // 55 PRL: 1 3 6 7 12 15 17 26 43 60 66 67 119 128..135 175 203
  p.hex("37 17 01 03 06 07 0c 0f 11 1a 2b 3c 42 43 77 80 81 82 83 84 85 86 87 af cb");
  p.hex("af 21");               // 175 iPXE encapsulated, 33 bytes:
  p.hex("eb 03 01 15 01");      //   235 version 1.21.1
  p.hex("13 01 01");            //   http
  p.hex("14 01 01");            //   https
  p.hex("11 01 01");            //   iscsi
  p.hex("15 01 01");            //   tftp
  p.hex("17 01 01");            //   dns
  p.hex("24 01 01");            //   efi
  p.hex("27 01 01");            //   menu
  p.hex("b1 05 01 80 86 10 0e");  // 177 bus id: PCI 8086:100e
  p.hex("3d 07 01 52 54 00 12 34 56");  // 61 client id: htype 1 + MAC
  p.hex("61 11 00 8d 5c 2a 3e 5f 2b 4b 2e 9b 1a 52 54 00 12 ab 01");  // 97 UUID, type 0
  p.hex("ff");
  return p.bytes();
}

// Intel Boot Agent (BIOS PXE 2.1 ROM) DISCOVER: broadcast flag, the 36-entry PRL, arch 0 and
// UNDI 2.1, padded to 548 bytes (590-byte frames).
Bytes biosPxeDiscover() {
  Packet p;
  p.request("6a 71 1f 0c", "00 1b 21 aa bb cc", "0004 8000");  // secs 4, flags broadcast
  p.hex("35 01 01");     // 53 DISCOVER
  p.hex("39 02 04 ec");  // 57 max message size 1260
  // 55 PRL: 1-6 11-13 15-18 22 23 28 40-43 50 51 54 58-60 66 67 128-135
  p.hex("37 24 01 02 03 04 05 06 0b 0c 0d 0f 10 11 12 16 17 1c 28 29 2a 2b 32 33 36 3a 3b 3c 42 43"
        "   80 81 82 83 84 85 86 87");
  p.hex("61 11 00 44 45 4c 4c 4a 00 10 30 80 4c b7 c0 4f 4e 36 31");  // 97 UUID (Dell-style SMBIOS)
  p.hex("5d 02 00 00");     // 93 arch 0: x86 BIOS
  p.hex("5e 03 01 02 01");  // 94 NDI: UNDI 2.1
  p.hex("3c 20").text("PXEClient:Arch:00000:UNDI:002001");  // 60
  p.hex("ff");
  return p.padTo(548).bytes();
}

// The dhclient DISCOVER relayed by a switch (Cisco style option 82): hops 1, giaddr set, option 82
// appended where END was, then END.
Bytes relayedDiscover() {
  Packet p;
  p.request("3903f326", "52 54 00 12 34 56", "0000 0000", "0a 14 00 01", "01");  // giaddr 10.20.0.1
  p.hex("35 01 01");
  p.hex("0c 07").text("debian1");
  p.hex("37 0d 01 1c 02 03 0f 06 77 0c 2c 2f 1a 79 2a");
  p.hex("52 12");                         // 82 relay agent information, 18 bytes:
  p.hex("01 06 00 04 00 14 01 0c");       //   circuit id: type 0, vlan 20, module 1, port 12
  p.hex("02 08 00 06 00 1b 2b 3c 4d 5e");  //   remote id: type 0, the switch's MAC
  p.hex("ff");
  return p.padTo(300).bytes();
}

Message parsed(const Bytes& b) {
  auto r = parseMessage(b);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : Message{};
}

DropReason reasonOf(const Bytes& b) {
  auto r = parseMessage(b);
  if (r.ok()) return DropReason::None;
  EXPECT_FALSE(r.error().message.empty());
  return dropReason(r.error());
}

Bytes asBytes(std::span<const std::uint8_t> s) { return {s.begin(), s.end()}; }

std::vector<Option> sortedOptions(std::vector<Option> v) {
  std::sort(v.begin(), v.end(), [](const Option& a, const Option& b) { return a.code < b.code; });
  return v;
}

void expectSameHeader(const Message& a, const Message& b) {
  EXPECT_EQ(a.op, b.op);
  EXPECT_EQ(a.htype, b.htype);
  EXPECT_EQ(a.hlen, b.hlen);
  EXPECT_EQ(a.hops, b.hops);
  EXPECT_EQ(a.xid, b.xid);
  EXPECT_EQ(a.secs, b.secs);
  EXPECT_EQ(a.flags, b.flags);
  EXPECT_EQ(a.ciaddr, b.ciaddr);
  EXPECT_EQ(a.yiaddr, b.yiaddr);
  EXPECT_EQ(a.siaddr, b.siaddr);
  EXPECT_EQ(a.giaddr, b.giaddr);
  EXPECT_EQ(a.chaddr, b.chaddr);
}

constexpr Ipv4 ip(unsigned a, unsigned b, unsigned c, unsigned d) { return (a << 24) | (b << 16) | (c << 8) | d; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Known answers

TEST(DhcpCapture, DhclientDiscover) {
  auto b = dhclientDiscover();
  ASSERT_EQ(b.size(), 300u);
  auto m = parsed(b);
  EXPECT_EQ(m.op, Op::BootRequest);
  EXPECT_EQ(m.xid, 0x3903f326u);
  EXPECT_EQ(m.messageType(), MessageType::Discover);
  ASSERT_TRUE(m.mac());
  EXPECT_EQ(m.mac()->toString(), "52:54:00:12:34:56");
  EXPECT_EQ(m.requestedIp(), ip(192, 168, 1, 100));
  EXPECT_EQ(m.hostName(), "debian1");
  EXPECT_EQ(asBytes(m.parameterRequestList()), hexBytes("01 1c 02 03 0f 06 77 0c 2c 2f 1a 79 2a"));
  EXPECT_TRUE(m.requested(opt::kClasslessRoutes));
  EXPECT_FALSE(m.requested(opt::kVendorSpecific));
  EXPECT_FALSE(m.maxMessageSize());
  EXPECT_FALSE(m.clientId());
  EXPECT_FALSE(m.clientArch());
  EXPECT_FALSE(m.isPxeClient());
  EXPECT_FALSE(m.isIpxe());
  EXPECT_FALSE(m.broadcast());
  EXPECT_EQ(m.overload, Overload::None);
  EXPECT_EQ(m.serverName(), "");
  EXPECT_EQ(m.bootFile(), "");
  ASSERT_EQ(m.options.size(), 4u);  // 53, 50, 12, 55 in wire order
  EXPECT_EQ(m.options[0].code, 53);
  EXPECT_EQ(m.options[3].code, 55);
  EXPECT_EQ(summarize(m),
            "DHCPDISCOVER xid=0x3903f326 chaddr=52:54:00:12:34:56 options=53,50,12,55");
  EXPECT_EQ(describeOptions(m),
            "dhcp-message-type=DHCPDISCOVER; dhcp-requested-address=192.168.1.100; host-name=debian1; "
            "dhcp-parameter-request-list=1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42");
}

TEST(DhcpCapture, IpxeDiscover) {
  auto m = parsed(ipxeDiscover());
  EXPECT_EQ(m.messageType(), MessageType::Discover);
  EXPECT_EQ(m.secs, 4);
  EXPECT_EQ(m.maxMessageSize(), 1472);
  EXPECT_EQ(m.clientArch(), arch::kEfiBc);
  EXPECT_EQ(m.clientArchitectures(), std::vector<std::uint16_t>{7});
  ASSERT_TRUE(m.clientNdi());
  EXPECT_EQ(m.clientNdi()->type, 1);
  EXPECT_EQ(m.clientNdi()->major, 3);
  EXPECT_EQ(m.clientNdi()->minor, 16);
  EXPECT_EQ(m.vendorClass(), "PXEClient:Arch:00007:UNDI:003016");
  EXPECT_TRUE(m.isPxeClient());
  EXPECT_FALSE(m.isHttpClient());

  // iPXE's user class is the plain string "iPXE" (not an RFC 3004 list).
  auto uc = m.userClass();
  ASSERT_TRUE(uc);
  EXPECT_FALSE(uc->rfc3004);
  EXPECT_EQ(uc->classes, std::vector<std::string>{"iPXE"});
  EXPECT_TRUE(m.ipxeUserClass());
  EXPECT_TRUE(m.hasIpxeEncapsulated());
  EXPECT_TRUE(m.isIpxe());

  // Features and bus id inside 175.
  EXPECT_EQ(asBytes(*m.ipxeSubOption(ipxe::kFeatureHttp)), hexBytes("01"));
  EXPECT_EQ(asBytes(*m.ipxeSubOption(ipxe::kFeatureIscsi)), hexBytes("01"));
  EXPECT_EQ(asBytes(*m.ipxeSubOption(ipxe::kVersion)), hexBytes("01 15 01"));
  EXPECT_EQ(asBytes(*m.ipxeSubOption(ipxe::kBusId)), hexBytes("01 80 86 10 0e"));
  EXPECT_FALSE(m.ipxeSubOption(ipxe::kFeatureNfs));
  EXPECT_FALSE(m.ipxeSubOption(ipxe::kNoPxeDhcp));

  EXPECT_EQ(asBytes(*m.clientId()), hexBytes("01 52 54 00 12 34 56"));
  auto uuid = m.clientUuid();
  ASSERT_TRUE(uuid);
  EXPECT_EQ(Bytes(uuid->begin(), uuid->end()), hexBytes("8d 5c 2a 3e 5f 2b 4b 2e 9b 1a 52 54 00 12 ab 01"));
  EXPECT_EQ(m.parameterRequestList().size(), 23u);
  EXPECT_TRUE(m.requested(opt::kIpxeEncap));
  EXPECT_TRUE(m.requested(opt::kIscsiInitiatorIqn));

  EXPECT_EQ(formatOption(opt::kIpxeEncap, *m.ipxeOptions()),
            "ipxe-encapsulated-options=[version=01:15:01, http=1, https=1, iscsi=1, tftp=1, dns=1, efi=1, menu=1, "
            "bus-id=01:80:86:10:0e]");
  EXPECT_EQ(formatOption(opt::kClientUuid, m.option(opt::kClientUuid).value()),
            "uuid-guid=8d5c2a3e-5f2b-4b2e-9b1a-52540012ab01");
  EXPECT_EQ(formatOption(opt::kClientNdi, m.option(opt::kClientNdi).value()), "client-ndi=1.3.16");
  EXPECT_EQ(formatOption(opt::kClientArch, m.option(opt::kClientArch).value()), "client-system-architecture=7");

  // iPXE's 57 says 1472; read per RFC 2132 as a datagram size, the reply gets 1472 - 28 bytes.
  auto limits = replyLimits(m);
  EXPECT_EQ(limits.maxSize, 1444u);
  EXPECT_EQ(limits.parameterRequestList.size(), 23u);
  EXPECT_EQ(replyLimits(m, 1400).maxSize, 1372u);  // a smaller interface MTU wins
}

TEST(DhcpCapture, BiosPxeRomDiscover) {
  auto b = biosPxeDiscover();
  ASSERT_EQ(b.size(), 548u);
  auto m = parsed(b);
  EXPECT_EQ(m.messageType(), MessageType::Discover);
  EXPECT_TRUE(m.broadcast());
  EXPECT_EQ(m.mac()->toString(), "00:1b:21:aa:bb:cc");
  EXPECT_EQ(m.clientArch(), arch::kBios);
  EXPECT_EQ(describeArch(*m.clientArch()), "x86-bios");
  EXPECT_EQ(m.clientNdi()->major, 2);
  EXPECT_EQ(m.clientNdi()->minor, 1);
  EXPECT_EQ(m.vendorClass(), "PXEClient:Arch:00000:UNDI:002001");
  EXPECT_TRUE(m.isPxeClient());
  EXPECT_FALSE(m.isIpxe());
  EXPECT_FALSE(m.userClass());
  EXPECT_EQ(m.maxMessageSize(), 1260);
  EXPECT_EQ(m.parameterRequestList().size(), 36u);
  EXPECT_TRUE(m.clientUuid());
  EXPECT_EQ(replyLimits(m).maxSize, 1232u);
  EXPECT_NE(summarize(m).find("flags=broadcast secs=4"), std::string::npos);
}

TEST(DhcpCapture, RelayedDiscoverWithAgentInfo) {
  auto m = parsed(relayedDiscover());
  EXPECT_EQ(m.hops, 1);
  EXPECT_EQ(m.giaddr, ip(10, 20, 0, 1));
  auto info = m.relayAgentInfo();
  ASSERT_TRUE(info);
  EXPECT_EQ(asBytes(*info), hexBytes("01 06 00 04 00 14 01 0c 02 08 00 06 00 1b 2b 3c 4d 5e"));
  EXPECT_EQ(asBytes(*m.relayAgentSubOption(agent::kCircuitId)), hexBytes("00 04 00 14 01 0c"));
  EXPECT_EQ(asBytes(*m.relayAgentSubOption(agent::kRemoteId)), hexBytes("00 06 00 1b 2b 3c 4d 5e"));
  EXPECT_FALSE(m.relayAgentSubOption(agent::kLinkSelection));
  EXPECT_EQ(formatOption(opt::kRelayAgentInfo, *info),
            "relay-agent-information=[circuit-id=00:04:00:14:01:0c, remote-id=00:06:00:1b:2b:3c:4d:5e]");
  EXPECT_NE(summarize(m).find("hops=1 giaddr=10.20.0.1"), std::string::npos);

  // The reply echoes 82 verbatim, as the last option (RFC 3046 §2.2), and goes back to giaddr.
  auto reply = makeReply(m, MessageType::Offer);
  EXPECT_EQ(reply.giaddr, m.giaddr);
  reply.yiaddr = ip(10, 20, 0, 50);
  reply.setIp(opt::kServerId, ip(10, 0, 0, 1));
  reply.setU32(opt::kLeaseTime, 3600);
  reply.setIp(opt::kSubnetMask, ip(255, 255, 255, 0));
  auto enc = encodeMessage(reply, replyLimits(m));
  ASSERT_TRUE(enc.ok()) << enc.error().message;
  auto back = parsed(enc->bytes);
  ASSERT_FALSE(back.options.empty());
  EXPECT_EQ(back.options.back().code, opt::kRelayAgentInfo);
  EXPECT_EQ(asBytes(*back.relayAgentInfo()), asBytes(*info));
  EXPECT_EQ(back.giaddr, ip(10, 20, 0, 1));
}

TEST(DhcpCapture, CapturesSurviveParseEncodeParse) {
  for (const auto& b : {dhclientDiscover(), ipxeDiscover(), biosPxeDiscover(), relayedDiscover()}) {
    auto m = parsed(b);
    EncodeLimits limits;
    limits.maxSize = 1500;
    auto enc = encodeMessage(m, limits);
    ASSERT_TRUE(enc.ok()) << enc.error().message;
    EXPECT_TRUE(enc->dropped.empty());
    auto back = parsed(enc->bytes);
    expectSameHeader(m, back);
    EXPECT_EQ(sortedOptions(back.options), sortedOptions(m.options));
  }
}

// ---------------------------------------------------------------------------------------------
// Overload and RFC 3396


namespace {

// A BOOTREPLY with the given sname (64 bytes) and file (128 bytes) fields, then the cookie.
Packet replyWith(const Bytes& sname, const Bytes& file) {
  EXPECT_EQ(sname.size(), 64u);
  EXPECT_EQ(file.size(), 128u);
  Packet p;
  p.hex("02 01 06 00  00 00 00 2a  0000 0000");   // BOOTREPLY, xid 42
  p.hex("00000000 0a000032 00000000 00000000");   // yiaddr 10.0.0.50
  p.hex("52 54 00 12 34 56").zeros(10);           // chaddr
  p.append(sname).append(file);
  return p.hex("63 82 53 63");
}

}  // namespace

// A reply with options in all three fields; root-path (17) is split across them and must be
// reassembled options -> file -> sname (RFC 2131 §4.1, RFC 3396 §5).
TEST(DhcpOverload, ReadsOptionsThenFileThenSname) {
  auto sname = Packet().hex("11 17").text(":::iqn.2024-01.lab:disk").hex("ff 41 42 43").padTo(64).bytes();
  auto file = Packet().hex("11 09").text("10.0.0.1:").hex("0c 04").text("node").hex("ff").padTo(128).bytes();
  auto p = replyWith(sname, file);
  p.hex("35 01 02");                 // 53 OFFER
  p.hex("34 01 03");                 // 52 overload: file and sname
  p.hex("36 04 0a 00 00 01");        // 54 server id
  p.hex("11 06").text("iscsi:");     // 17 root path, first piece
  p.hex("ff");
  auto m = parsed(p.bytes());
  EXPECT_EQ(m.overload, Overload::Both);
  EXPECT_EQ(m.messageType(), MessageType::Offer);
  EXPECT_EQ(m.serverId(), ip(10, 0, 0, 1));
  EXPECT_EQ(asBytes(*m.option(opt::kRootPath)), textBytes("iscsi:10.0.0.1::::iqn.2024-01.lab:disk"));
  EXPECT_EQ(m.hostName(), "node");
  EXPECT_FALSE(m.has(opt::kOverload));  // framing, not content
  // The overloaded fields held options, not names.
  EXPECT_EQ(m.serverName(), "");
  EXPECT_EQ(m.bootFile(), "");
  EXPECT_TRUE(std::all_of(m.sname.begin(), m.sname.end(), [](auto c) { return c == 0; }));
  EXPECT_TRUE(std::all_of(m.file.begin(), m.file.end(), [](auto c) { return c == 0; }));
  // Order of first appearance: 53, 54, 17 (options field), then 12 (file).
  ASSERT_EQ(m.options.size(), 4u);
  EXPECT_EQ(m.options[2].code, opt::kRootPath);
  EXPECT_EQ(m.options[3].code, opt::kHostName);
}

TEST(DhcpOverload, SnameOnlyKeepsTheBootFile) {
  auto sname = Packet().hex("0f 0b").text("example.com").padTo(64).bytes();  // no END: runs to the pad
  auto file = Packet().text("pxelinux.0").padTo(128).bytes();
  auto p = replyWith(sname, file);
  p.hex("35 01 05 34 01 02 ff");  // ACK, overload sname
  auto m = parsed(p.bytes());
  EXPECT_EQ(m.overload, Overload::Sname);
  EXPECT_EQ(m.bootFile(), "pxelinux.0");
  EXPECT_EQ(m.serverName(), "");
  EXPECT_EQ(asBytes(*m.option(opt::kDomainName)), textBytes("example.com"));
}

TEST(DhcpOverload, MalformedOverloadIsRefused) {
  auto emptySname = Bytes(64, 0);
  auto emptyFile = Bytes(128, 0);
  auto with = [&](const Bytes& sname, const Bytes& file, std::string_view options) {
    return replyWith(sname, file).hex(options).bytes();
  };
  EXPECT_EQ(reasonOf(with(emptySname, emptyFile, "35 01 02 34 01 00 ff")), DropReason::BadOverload);  // value 0
  EXPECT_EQ(reasonOf(with(emptySname, emptyFile, "35 01 02 34 01 04 ff")), DropReason::BadOverload);  // value 4
  EXPECT_EQ(reasonOf(with(emptySname, emptyFile, "35 01 02 34 02 01 01 ff")), DropReason::BadOverload);
  EXPECT_EQ(reasonOf(with(emptySname, emptyFile, "35 01 02 34 00 ff")), DropReason::BadOverload);  // empty
  EXPECT_EQ(reasonOf(with(emptySname, emptyFile, "35 01 02 34 01 01 34 01 02 ff")), DropReason::BadOverload);
  // 52 inside the overloaded file field.
  auto file52 = Packet().hex("34 01 03 ff").padTo(128).bytes();
  EXPECT_EQ(reasonOf(with(emptySname, file52, "35 01 02 34 01 01 ff")), DropReason::BadOverload);
  // An option in `file` whose length runs past the end of `file` (it must not continue into the
  // cookie or the options field).
  auto longFile = Packet().zeros(120).hex("0c 10 41 41 41 41 41 41").bytes();
  auto r = parseMessage(with(emptySname, longFile, "35 01 02 34 01 01 ff"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(dropReason(r.error()), DropReason::TruncatedOption);
  EXPECT_NE(r.error().message.find("file field"), std::string::npos) << r.error().message;
  // Without option 52 the same bytes are just a (strange) file name.
  EXPECT_EQ(reasonOf(with(emptySname, longFile, "35 01 02 ff")), DropReason::None);
}

TEST(DhcpRfc3396, RepeatedOptionsAreConcatenated) {
  Packet p;
  p.request("00000001", "52 54 00 12 34 56");
  p.hex("35 01 03");
  p.hex("77 06 07 65 78 61 6d 70");     // 119 domain search, first instance: 7 "examp"
  p.hex("0c 02 70 63");                 // 12 "pc"
  p.hex("77 07 6c 65 03 63 6f 6d 00");  // 119 again: "le" 3 "com" 0
  p.hex("0c 01 31");                    // 12 "1"
  p.hex("ff");
  auto m = parsed(p.padTo(300).bytes());
  ASSERT_EQ(m.options.size(), 3u);
  EXPECT_EQ(m.hostName(), "pc1");
  EXPECT_EQ(formatOption(opt::kDomainSearch, *m.option(opt::kDomainSearch)), "domain-search=example.com");
}

TEST(DhcpRfc3396, LongOptionsAreSplitInto255ByteInstances) {
  Message m;
  m.op = Op::BootReply;
  m.setMessageType(MessageType::Ack);
  Bytes big(600);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i);
  m.set(125, big);
  EncodeLimits limits;
  limits.maxSize = 1500;
  auto enc = encodeMessage(m, limits);
  ASSERT_TRUE(enc.ok()) << enc.error().message;
  const auto& b = enc->bytes;
  // 53 at 240, then 125 as 255 + 255 + 90, then END.
  ASSERT_EQ(b.size(), 240u + 3 + (2 + 255) * 2 + 2 + 90 + 1);
  EXPECT_EQ(b[243], 125);
  EXPECT_EQ(b[244], 255);
  EXPECT_EQ(b[243 + 257], 125);
  EXPECT_EQ(b[244 + 257], 255);
  EXPECT_EQ(b[243 + 514], 125);
  EXPECT_EQ(b[244 + 514], 90);
  EXPECT_EQ(b.back(), opt::kEnd);
  auto back = parsed(b);
  EXPECT_EQ(asBytes(*back.option(125)), big);

  // A zero-length option is one instance of length 0.
  Message e;
  e.setMessageType(MessageType::Ack);
  e.set(opt::kRapidCommit, Bytes{});
  auto enc2 = encodeMessage(e);
  ASSERT_TRUE(enc2.ok());
  EXPECT_EQ(Bytes(enc2->bytes.begin() + 240, enc2->bytes.begin() + 246), hexBytes("35 01 05 50 00 ff"));
}

// ---------------------------------------------------------------------------------------------
// Encoding

TEST(DhcpEncode, OrderFollowsTheRequestList) {
  Message m;
  m.op = Op::BootReply;
  m.setIp(opt::kSubnetMask, ip(255, 255, 255, 0));
  m.setIp(opt::kRouters, ip(10, 0, 0, 1));
  m.setIp(opt::kDomainNameServers, ip(10, 0, 0, 2));
  m.setIp(opt::kServerId, ip(10, 0, 0, 1));
  m.setU32(opt::kLeaseTime, 3600);
  m.setString(opt::kVendorClass, "PXEClient");
  m.set(opt::kVendorSpecific, hexBytes("06 01 08 ff"));
  m.set(opt::kRelayAgentInfo, hexBytes("01 02 00 01"));
  m.setString(opt::kHostName, "pc1");
  m.setMessageType(MessageType::Offer);  // set last, sent first
  const Bytes prl = hexBytes("03 01 06 2b 3c");
  EncodeLimits limits;
  limits.parameterRequestList = prl;
  auto enc = encodeMessage(m, limits);
  ASSERT_TRUE(enc.ok());
  std::vector<std::uint8_t> codes;
  for (std::size_t i = 240; enc->bytes[i] != opt::kEnd; i += 2 + enc->bytes[i + 1]) codes.push_back(enc->bytes[i]);
  EXPECT_EQ(codes, (std::vector<std::uint8_t>{53, 54, 3, 1, 6, 43, 60, 51, 12, 82}));
  EXPECT_EQ(enc->bytes.size(), 302u);  // 240 + 61 bytes of options + END: past 300, so no padding
  EXPECT_EQ(enc->overload, Overload::None);
}

TEST(DhcpEncode, PadsToBootpMinimumWithZeros) {
  Message m;
  m.op = Op::BootReply;
  m.setMessageType(MessageType::Nak);
  auto enc = encodeMessage(m);
  ASSERT_TRUE(enc.ok());
  ASSERT_EQ(enc->bytes.size(), 300u);
  EXPECT_EQ(Bytes(enc->bytes.begin() + 236, enc->bytes.begin() + 244), hexBytes("63 82 53 63 35 01 06 ff"));
  EXPECT_TRUE(std::all_of(enc->bytes.begin() + 244, enc->bytes.end(), [](auto c) { return c == 0; }));
  EncodeLimits unpadded;
  unpadded.minSize = 0;
  EXPECT_EQ(encodeMessage(m, unpadded)->bytes.size(), 244u);
}

namespace {

// A reply too big for 548 bytes: 307 bytes of option space (548 - 240 - END).
Message bigReply() {
  Message m;
  m.op = Op::BootReply;
  m.setMessageType(MessageType::Offer);
  m.setIp(opt::kServerId, ip(10, 0, 0, 1));
  m.setU32(opt::kLeaseTime, 3600);
  m.setIp(opt::kSubnetMask, ip(255, 255, 255, 0));
  m.setIp(opt::kRouters, ip(10, 0, 0, 1));
  m.setString(opt::kDomainName, std::string(100, 'd'));  // requested
  m.setString(opt::kRootPath, std::string(120, 'r'));    // requested
  m.setString(opt::kMessage, std::string(40, 'm'));      // not requested
  m.setString(opt::kHostName, std::string(50, 'h'));     // not requested
  return m;
}
const Bytes kBigPrl = {1, 3, 15, 17};

}  // namespace

TEST(DhcpEncode, OverloadsFileWhenOptionsDoNotFit) {
  auto m = bigReply();
  EncodeLimits limits;
  limits.parameterRequestList = kBigPrl;
  auto enc = encodeMessage(m, limits);
  ASSERT_TRUE(enc.ok()) << enc.error().message;
  EXPECT_LE(enc->bytes.size(), 548u);
  EXPECT_EQ(enc->overload, Overload::File);
  EXPECT_TRUE(enc->dropped.empty());
  EXPECT_EQ(Bytes(enc->bytes.begin() + 240, enc->bytes.begin() + 246), hexBytes("35 01 02 34 01 01"));
  auto back = parsed(enc->bytes);
  EXPECT_EQ(back.overload, Overload::File);
  EXPECT_EQ(sortedOptions(back.options), sortedOptions(m.options));
}

TEST(DhcpEncode, OverloadsSnameWhenFileCarriesTheBootFile) {
  auto m = bigReply();
  m.remove(opt::kHostName);
  m.setString(opt::kHostName, std::string(20, 'h'));
  ASSERT_TRUE(m.setBootFile("ipxe.efi"));
  EncodeLimits limits;
  limits.parameterRequestList = kBigPrl;
  auto enc = encodeMessage(m, limits);
  ASSERT_TRUE(enc.ok()) << enc.error().message;
  EXPECT_EQ(enc->overload, Overload::Sname);
  EXPECT_TRUE(enc->dropped.empty());
  auto back = parsed(enc->bytes);
  EXPECT_EQ(back.bootFile(), "ipxe.efi");
  EXPECT_EQ(sortedOptions(back.options), sortedOptions(m.options));
}

TEST(DhcpEncode, DropsUnrequestedOptionsFirst) {
  auto m = bigReply();
  EncodeLimits limits;
  limits.parameterRequestList = kBigPrl;
  limits.allowOverload = false;
  auto enc = encodeMessage(m, limits);
  ASSERT_TRUE(enc.ok()) << enc.error().message;
  // 12 (unrequested, placed last) goes first, and that is enough:
  // 3 + 4 * 6 + 102 + 122 + 42 + 52 = 345 > 307; without 12, 293 fits.
  EXPECT_EQ(enc->dropped, (std::vector<std::uint8_t>{opt::kHostName}));
  EXPECT_LE(enc->bytes.size(), 548u);
  auto back = parsed(enc->bytes);
  EXPECT_FALSE(back.has(opt::kHostName));
  EXPECT_TRUE(back.has(opt::kMessage));

  // Bigger still: both unrequested ones go, then the requested one last in the PRL (17).
  m.setString(opt::kDomainName, std::string(200, 'd'));
  enc = encodeMessage(m, limits);
  ASSERT_TRUE(enc.ok()) << enc.error().message;
  EXPECT_EQ(enc->dropped, (std::vector<std::uint8_t>{opt::kHostName, opt::kMessage, opt::kRootPath}));
  back = parsed(enc->bytes);
  EXPECT_TRUE(back.has(opt::kDomainName));
  EXPECT_TRUE(back.has(opt::kServerId));
}

TEST(DhcpEncode, ClientMaxMessageSizeIsHonoured) {
  // A client that allows 1000-byte datagrams gets up to 972 bytes; 548 is the floor.
  Packet p;
  p.request("00000007", "52 54 00 12 34 56");
  p.hex("35 01 01 39 02 03 e8 37 02 0f 11 ff");  // 57 = 1000, 55 = 15 17
  auto request = parsed(p.padTo(300).bytes());
  auto limits = replyLimits(request);
  EXPECT_EQ(limits.maxSize, 972u);
  auto m = bigReply();
  limits.allowOverload = false;
  auto enc = encodeMessage(m, limits);
  ASSERT_TRUE(enc.ok());
  EXPECT_TRUE(enc->dropped.empty());
  EXPECT_GT(enc->bytes.size(), 548u);
  EXPECT_LE(enc->bytes.size(), 972u);

  // 57 below 576 is raised to 576 (RFC 2132 §9.10); a maxSize below 548 is raised to 548.
  Packet small;
  small.request("00000008", "52 54 00 12 34 56").hex("35 01 01 39 02 01 00 ff");  // 57 = 256
  EXPECT_EQ(replyLimits(parsed(small.padTo(300).bytes())).maxSize, 548u);
  EncodeLimits tiny;
  tiny.maxSize = 100;
  tiny.allowOverload = false;
  auto enc2 = encodeMessage(m, tiny);
  ASSERT_TRUE(enc2.ok());
  EXPECT_LE(enc2->bytes.size(), 548u);
}

TEST(DhcpEncode, EssentialOptionsThatDoNotFitAreAnError) {
  Message m;
  m.op = Op::BootReply;
  m.setMessageType(MessageType::Offer);
  m.set(opt::kVendorSpecific, Bytes(400, 1));  // essential for PXE
  EncodeLimits limits;
  limits.allowOverload = false;
  auto enc = encodeMessage(m, limits);
  ASSERT_FALSE(enc.ok());
  EXPECT_NE(enc.error().message.find("essential"), std::string::npos) << enc.error().message;
  // With overload it fits: a value over 255 bytes is split anyway (RFC 3396), so its pieces fill
  // the options field and continue in `file`.
  limits.allowOverload = true;
  auto enc2 = encodeMessage(m, limits);
  ASSERT_TRUE(enc2.ok()) << enc2.error().message;
  EXPECT_EQ(enc2->overload, Overload::File);
  EXPECT_EQ(enc2->bytes.size(), 548u);
  EXPECT_EQ(asBytes(*parsed(enc2->bytes).option(opt::kVendorSpecific)), Bytes(400, 1));
}

TEST(DhcpEncode, RefusesFramingCodesDuplicatesAndBadHlen) {
  Message m;
  m.options.push_back(Option{opt::kPad, {}});
  EXPECT_FALSE(encodeMessage(m).ok());
  m.options = {Option{opt::kOverload, {1}}};
  EXPECT_FALSE(encodeMessage(m).ok());
  m.options = {Option{opt::kEnd, {}}};
  EXPECT_FALSE(encodeMessage(m).ok());
  m.options = {Option{12, {'a'}}, Option{12, {'b'}}};
  EXPECT_FALSE(encodeMessage(m).ok());
  m.options.clear();
  m.hlen = 17;
  EXPECT_FALSE(encodeMessage(m).ok());
}

TEST(DhcpEncode, RoundTripKeepsEveryField) {
  Message m;
  m.op = Op::BootReply;
  m.htype = 1;
  m.hlen = 6;
  m.hops = 2;
  m.xid = 0xdeadbeef;
  m.secs = 17;
  m.setBroadcast(true);
  m.ciaddr = ip(10, 0, 0, 9);
  m.yiaddr = ip(10, 0, 0, 50);
  m.siaddr = ip(10, 0, 0, 2);
  m.giaddr = ip(10, 1, 0, 1);
  m.setMac(*pxedust::MacAddress::parse("52:54:00:ab:cd:ef"));
  ASSERT_TRUE(m.setServerName("boot.lab"));
  ASSERT_TRUE(m.setBootFile("undionly.kpxe"));
  EXPECT_FALSE(m.setBootFile(std::string(128, 'x')));  // no room for the NUL
  EXPECT_EQ(m.bootFile(), "undionly.kpxe");
  m.setMessageType(MessageType::Ack);
  m.setIp(opt::kServerId, ip(10, 0, 0, 1));
  m.setU32(opt::kLeaseTime, 86400);
  std::vector<Ipv4> dns = {ip(10, 0, 0, 2), ip(10, 0, 0, 3)};
  m.setIps(opt::kDomainNameServers, dns);
  m.setU16(opt::kInterfaceMtu, 9000);
  m.setString(opt::kRootPath, "iscsi:10.0.0.1::::iqn.2024-01.lab:disk");
  m.set(opt::kIpxeEncap, hexBytes("b0 01 01"));  // no-pxedhcp
  auto enc = encodeMessage(m);
  ASSERT_TRUE(enc.ok());
  auto back = parsed(enc->bytes);
  expectSameHeader(m, back);
  EXPECT_EQ(back.serverName(), "boot.lab");
  EXPECT_EQ(back.bootFile(), "undionly.kpxe");
  EXPECT_EQ(back.options, m.options);  // no PRL: 53, 54, then the caller's order
  EXPECT_TRUE(back.broadcast());
  EXPECT_EQ(back.leaseTime(), 86400u);
  EXPECT_EQ(asBytes(*back.ipxeSubOption(ipxe::kNoPxeDhcp)), hexBytes("01"));
}

TEST(DhcpEncode, MakeReplyCopiesWhatTheClientNeeds) {
  auto request = parsed(ipxeDiscover());
  auto r = makeReply(request, MessageType::Offer);
  EXPECT_EQ(r.op, Op::BootReply);
  EXPECT_EQ(r.xid, request.xid);
  EXPECT_EQ(r.chaddr, request.chaddr);
  EXPECT_EQ(r.flags, request.flags);
  EXPECT_EQ(r.hops, 0);
  EXPECT_EQ(r.secs, 0);
  EXPECT_EQ(r.messageType(), MessageType::Offer);
  EXPECT_EQ(asBytes(*r.clientId()), asBytes(*request.clientId()));  // RFC 6842
  EXPECT_FALSE(r.has(opt::kRelayAgentInfo));
  EXPECT_FALSE(r.has(opt::kUserClass));
}

// ---------------------------------------------------------------------------------------------
// Malformed input: every refusal has a reason and a message

TEST(DhcpMalformed, TruncatedHeader) {
  EXPECT_EQ(reasonOf({}), DropReason::TooShort);
  auto b = dhclientDiscover();
  EXPECT_EQ(reasonOf(Bytes(b.begin(), b.begin() + 239)), DropReason::TooShort);
  EXPECT_EQ(reasonOf(Bytes(b.begin(), b.begin() + 236)), DropReason::TooShort);  // RFC 951 size, no cookie
  EXPECT_EQ(reasonOf(Bytes(b.begin(), b.begin() + 240)), DropReason::None);      // no options at all
}

TEST(DhcpMalformed, HeaderFields) {
  auto b = dhclientDiscover();
  b[0] = 0;
  EXPECT_EQ(reasonOf(b), DropReason::BadOp);
  b[0] = 3;
  EXPECT_EQ(reasonOf(b), DropReason::BadOp);
  b = dhclientDiscover();
  b[2] = 17;
  EXPECT_EQ(reasonOf(b), DropReason::BadHardwareLength);
  b[2] = 16;  // legal, but not a MAC
  auto m = parsed(b);
  EXPECT_FALSE(m.mac());
  EXPECT_EQ(m.hardwareAddress().size(), 16u);
  b = dhclientDiscover();
  b[1] = 6;  // IEEE 802 htype: no MAC either
  EXPECT_FALSE(parsed(b).mac());
  b = dhclientDiscover();
  b[2] = 0;  // IPoIB style (RFC 4390): hlen 0, identified by 61
  EXPECT_TRUE(parsed(b).hardwareAddress().empty());
}

TEST(DhcpMalformed, BadCookie) {
  auto b = dhclientDiscover();
  b[236] = 0;  // an RFC 951 BOOTP vend field
  auto r = parseMessage(b);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(dropReason(r.error()), DropReason::BadCookie);
  EXPECT_NE(r.error().message.find("0x00825363"), std::string::npos) << r.error().message;
}

TEST(DhcpMalformed, TruncatedOptions) {
  auto withOptions = [](std::string_view options) {
    return Packet().request("00000001", "52 54 00 12 34 56").hex(options).bytes();
  };
  // A code with no length byte at the very end.
  EXPECT_EQ(reasonOf(withOptions("35 01 01 0c")), DropReason::TruncatedOption);
  // A length past the end of the datagram.
  auto r = parseMessage(withOptions("35 01 01 0c 08 61 62"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(dropReason(r.error()), DropReason::TruncatedOption);
  EXPECT_NE(r.error().message.find("option 12 at offset 243 has length 8"), std::string::npos) << r.error().message;
  // The dhclient DISCOVER with host name's length byte corrupted to 255: runs past 300 bytes.
  auto b = dhclientDiscover();
  ASSERT_EQ(b[249], 0x0c);
  b[250] = 0xff;
  EXPECT_EQ(reasonOf(b), DropReason::TruncatedOption);
}

TEST(DhcpMalformed, ProtocolOptionsWithImpossibleLengths) {
  auto withOptions = [](std::string_view options) {
    return Packet().request("00000001", "52 54 00 12 34 56").hex(options).hex("ff").padTo(300).bytes();
  };
  EXPECT_EQ(reasonOf(withOptions("35 00")), DropReason::BadOptionLength);           // 53 empty
  EXPECT_EQ(reasonOf(withOptions("35 02 01 01")), DropReason::BadOptionLength);     // 53 two bytes
  EXPECT_EQ(reasonOf(withOptions("35 01 01 35 01 03")), DropReason::BadOptionLength);  // 53 twice
  EXPECT_EQ(reasonOf(withOptions("35 01 03 32 03 0a 00 00")), DropReason::BadOptionLength);  // 50
  EXPECT_EQ(reasonOf(withOptions("35 01 03 36 00")), DropReason::BadOptionLength);           // 54
  EXPECT_EQ(reasonOf(withOptions("35 01 01 39 01 05")), DropReason::BadOptionLength);        // 57
  EXPECT_EQ(reasonOf(withOptions("35 01 01 33 00")), DropReason::BadOptionLength);           // 51
  EXPECT_EQ(reasonOf(withOptions("35 01 01 3d 01 01")), DropReason::BadOptionLength);        // 61 < 2
  auto r = parseMessage(withOptions("35 00"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "option 53 (dhcp-message-type) is 0 bytes long, expected 1");
}

TEST(DhcpMalformed, OtherBadLengthsAreToleratedAndReadAsAbsent) {
  auto m = parsed(Packet()
                      .request("00000001", "52 54 00 12 34 56")
                      .hex("35 01 01")
                      .hex("0c 00")                // empty host name (seen in the wild)
                      .hex("5d 03 00 07 00")       // 93 with an odd length
                      .hex("5e 02 01 03")          // 94 short
                      .hex("61 11 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00")  // 97 type 1
                      .hex("3c 00")                // empty vendor class
                      .hex("ff")
                      .padTo(300)
                      .bytes());
  EXPECT_TRUE(m.has(opt::kHostName));
  EXPECT_FALSE(m.hostName());
  EXPECT_FALSE(m.clientArch());
  EXPECT_TRUE(m.clientArchitectures().empty());
  EXPECT_FALSE(m.clientNdi());
  EXPECT_FALSE(m.clientUuid());
  EXPECT_FALSE(m.vendorClass());
  EXPECT_FALSE(m.isPxeClient());
  EXPECT_EQ(formatOption(opt::kClientArch, *m.option(opt::kClientArch)), "client-system-architecture=00:07:00");
}

TEST(DhcpMalformed, EndIsOptionalAndPaddingIsIgnored) {
  // Options that end exactly at the end of the datagram, without END.
  auto m = parsed(Packet().request("00000001", "52 54 00 12 34 56").hex("35 01 01 0c 02 70 63").bytes());
  EXPECT_EQ(m.hostName(), "pc");
  // Anything after END is padding, even non-zero bytes that would parse as a truncated option.
  auto m2 = parsed(Packet().request("00000001", "52 54 00 12 34 56").hex("35 01 01 ff 0c 40 41").bytes());
  EXPECT_EQ(m2.options.size(), 1u);
  // Pads between options; trailing NULs in strings.
  auto m3 = parsed(
      Packet().request("00000001", "52 54 00 12 34 56").hex("00 00 35 01 01 00 0c 03 70 63 00 00 ff").bytes());
  EXPECT_EQ(m3.hostName(), "pc");
  // Padded to 64 KiB.
  auto big = dhclientDiscover();
  big.resize(65000, 0);
  EXPECT_EQ(parsed(big).hostName(), "debian1");
}

TEST(DhcpMalformed, DropReasonsHaveStableNames) {
  std::vector<std::string_view> names;
  for (std::size_t i = 0; i < kDropReasonCount; ++i) names.push_back(describe(static_cast<DropReason>(i)));
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::unique(names.begin(), names.end()), names.end());
  EXPECT_EQ(describe(DropReason::BadCookie), "bad-cookie");
  EXPECT_EQ(dropReason(pxedust::Error{"not from the parser"}), DropReason::None);
  EXPECT_EQ(dropReason(pxedust::Error{"errno", 99}), DropReason::None);
}

// ---------------------------------------------------------------------------------------------
// Option vocabulary

TEST(DhcpOptions, LookupByCodeAndName) {
  auto routers = findOption(3);
  ASSERT_TRUE(routers);
  EXPECT_EQ(routers->name, "routers");
  EXPECT_EQ(routers->type, OptionType::IpList);
  EXPECT_EQ(findOption("Routers")->code, 3);
  EXPECT_EQ(findOption("ntp-servers")->code, 42);
  EXPECT_TRUE(findOption(53)->strict);
  EXPECT_FALSE(findOption(12)->strict);
  auto noPxeDhcp = findOption("ipxe.no-pxedhcp");
  ASSERT_TRUE(noPxeDhcp);
  EXPECT_EQ(noPxeDhcp->code, 176);
  EXPECT_EQ(noPxeDhcp->space, OptionSpace::Ipxe);
  EXPECT_EQ(findOption("pxe.discovery-control")->code, 6);
  EXPECT_EQ(findOption("agent.circuit-id")->code, 1);
  EXPECT_EQ(findOption(176, OptionSpace::Ipxe)->name, "no-pxedhcp");
  EXPECT_EQ(findOption(opt::kIpxeEncap)->encapsulates, OptionSpace::Ipxe);
  EXPECT_FALSE(findOption(240));
  EXPECT_FALSE(findOption("no-such-option"));
  EXPECT_FALSE(findOption("bogus.routers"));
  EXPECT_FALSE(findOption("no-pxedhcp"));  // sub-options need their space
  // Every name is unique within its space, every code too.
  for (auto space : {OptionSpace::Dhcp, OptionSpace::Pxe, OptionSpace::Ipxe, OptionSpace::RelayAgent}) {
    auto defs = optionDefinitions(space);
    for (std::size_t i = 0; i < defs.size(); ++i)
      for (std::size_t j = i + 1; j < defs.size(); ++j) {
        EXPECT_NE(defs[i].code, defs[j].code) << defs[i].name;
        EXPECT_NE(defs[i].name, defs[j].name);
      }
  }
}

TEST(DhcpOptions, ResolveConfigKeys) {
  EXPECT_EQ(resolveOption("routers")->code, 3);
  auto byCode = resolveOption("150");
  ASSERT_TRUE(byCode.ok());
  EXPECT_EQ(byCode->name, "tftp-server-address");
  auto unknown = resolveOption("240");
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->name, "option-240");
  EXPECT_EQ(unknown->type, OptionType::Binary);
  auto typed = resolveOption("240", "ip-list");
  ASSERT_TRUE(typed.ok());
  EXPECT_EQ(typed->type, OptionType::IpList);
  EXPECT_EQ(resolveOption("3", "hex")->type, OptionType::Binary);  // raw bytes are always allowed
  EXPECT_FALSE(resolveOption("3", "string").ok());                 // contradicts the table
  EXPECT_FALSE(resolveOption("240", "no-such-type").ok());
  EXPECT_FALSE(resolveOption("0").ok());
  EXPECT_FALSE(resolveOption("255").ok());
  EXPECT_FALSE(resolveOption("256").ok());
  EXPECT_FALSE(resolveOption("52").ok());
  EXPECT_FALSE(resolveOption("dhcp-option-overload").ok());
  EXPECT_FALSE(resolveOption("53").ok());
  auto bogus = resolveOption("bogus");
  ASSERT_FALSE(bogus.ok());
  EXPECT_NE(bogus.error().message.find("bogus"), std::string::npos);
}

namespace {

Bytes encodeAs(std::string_view key, std::string_view text) {
  auto def = resolveOption(key);
  EXPECT_TRUE(def.ok()) << key;
  if (!def.ok()) return {};
  auto v = encodeOptionValue(*def, text);
  EXPECT_TRUE(v.ok()) << key << " = " << text << ": " << (v.ok() ? "" : v.error().message);
  if (!v.ok()) return {};
  // Formatting gives text that encodes to the same bytes (sub-option lists are shown decoded).
  if (def->type == OptionType::Encapsulated || def->type == OptionType::RelayAgentInfo) return *v;
  auto again = encodeOptionValue(*def, formatOptionValue(*def, *v));
  EXPECT_TRUE(again.ok() && *again == *v) << key << " formatted as " << formatOptionValue(*def, *v);
  return *v;
}

std::string refusal(std::string_view key, std::string_view text) {
  auto def = resolveOption(key);
  EXPECT_TRUE(def.ok()) << key;
  if (!def.ok()) return {};
  auto v = encodeOptionValue(*def, text);
  EXPECT_FALSE(v.ok()) << key << " = " << text;
  return v.ok() ? std::string() : v.error().message;
}

}  // namespace

TEST(DhcpOptions, EncodeConfigValues) {
  EXPECT_EQ(encodeAs("subnet-mask", "255.255.255.0"), hexBytes("ff ff ff 00"));
  EXPECT_EQ(encodeAs("routers", "10.0.0.1, 10.0.0.2"), hexBytes("0a000001 0a000002"));
  EXPECT_EQ(encodeAs("routers", " 10.0.0.1 10.0.0.2 "), hexBytes("0a000001 0a000002"));
  EXPECT_EQ(encodeAs("static-routes", "10.0.0.0 10.0.0.1"), hexBytes("0a000000 0a000001"));
  EXPECT_EQ(encodeAs("default-ip-ttl", "64"), hexBytes("40"));
  EXPECT_EQ(encodeAs("interface-mtu", "0x5dc"), hexBytes("05 dc"));
  EXPECT_EQ(encodeAs("dhcp-lease-time", "4294967295"), hexBytes("ff ff ff ff"));
  EXPECT_EQ(encodeAs("time-offset", "-3600"), hexBytes("ff ff f1 f0"));
  EXPECT_EQ(encodeAs("time-offset", "-2147483648"), hexBytes("80 00 00 00"));
  EXPECT_EQ(encodeAs("ip-forwarding", "yes"), hexBytes("01"));
  EXPECT_EQ(encodeAs("ip-forwarding", "off"), hexBytes("00"));
  EXPECT_EQ(encodeAs("root-path", "iscsi:10.0.0.1::::iqn.2024-01.lab:disk"),
            textBytes("iscsi:10.0.0.1::::iqn.2024-01.lab:disk"));  // colons: still text, not hex
  EXPECT_EQ(encodeAs("vendor-encapsulated-options", "06:01:08:ff"), hexBytes("06 01 08 ff"));
  EXPECT_EQ(encodeAs("240", "01:02:ab"), hexBytes("01 02 ab"));
  EXPECT_EQ(encodeAs("240", "01 02 ab"), hexBytes("01 02 ab"));
  EXPECT_EQ(encodeAs("240", "0102ab"), hexBytes("01 02 ab"));
  EXPECT_EQ(encodeAs("240", ""), Bytes{});
  EXPECT_EQ(encodeAs("dhcp-client-identifier", "01:52:54:00:12:34:56"), hexBytes("01 52 54 00 12 34 56"));
  EXPECT_EQ(encodeAs("dhcp-parameter-request-list", "1, 3, 6"), hexBytes("01 03 06"));
  EXPECT_EQ(encodeAs("client-system-architecture", "0, 7"), hexBytes("00 00 00 07"));
  EXPECT_EQ(encodeAs("user-class", "iPXE"), Packet().hex("04").text("iPXE").bytes());  // sent as RFC 3004
  EXPECT_EQ(encodeAs("user-class", "a, bc"), hexBytes("01 61 02 62 63"));
  EXPECT_EQ(encodeAs("uuid-guid", "8d5c2a3e-5f2b-4b2e-9b1a-52540012ab01"),
            hexBytes("00 8d5c2a3e 5f2b 4b2e 9b1a 52540012ab01"));
  EXPECT_EQ(encodeAs("client-ndi", "1.3.16"), hexBytes("01 03 10"));
  // RFC 3442 §3 examples: 10.0.0.0/8 takes one destination byte, 0.0.0.0/0 none.
  EXPECT_EQ(encodeAs("classless-static-route", "10.0.0.0/8 10.0.0.1, 0.0.0.0/0 192.168.1.1, 10.17.0.0/16 10.0.0.9"),
            hexBytes("08 0a 0a000001  00 c0a80101  10 0a 11 0a000009"));
  EXPECT_EQ(encodeAs("classless-static-route", "10.1.2.128/25 10.0.0.1"), hexBytes("19 0a 01 02 80 0a000001"));
  EXPECT_EQ(encodeAs("domain-search", "example.com, lab.example.com."),
            Packet().hex("07").text("example").hex("03").text("com").hex("00")
                .hex("03").text("lab").hex("07").text("example").hex("03").text("com").hex("00").bytes());
  auto messageType = *findOption(opt::kMessageType);  // not configurable, but its text form is
  EXPECT_EQ(*encodeOptionValue(messageType, "offer"), hexBytes("02"));
  EXPECT_EQ(*encodeOptionValue(messageType, "DHCPACK"), hexBytes("05"));
  EXPECT_EQ(*encodeOptionValue(messageType, "8"), hexBytes("08"));
  EXPECT_EQ(encodeAs("rapid-commit", ""), Bytes{});
  EXPECT_EQ(encodeAs("ipxe.no-pxedhcp", "1"), hexBytes("01"));
  EXPECT_EQ(encodeAs("pxe.discovery-control", "8"), hexBytes("08"));
}

TEST(DhcpOptions, RefuseBadConfigValuesClearly) {
  auto msg = refusal("routers", "10.0.0.300");
  EXPECT_EQ(msg, "routers (option 3): \"10.0.0.300\" is not valid, expected IPv4 addresses like \"10.0.0.1, 10.0.0.2\"");
  refusal("routers", "");
  refusal("subnet-mask", "255.255.255.0 255.0.0.0");
  refusal("static-routes", "10.0.0.0");
  refusal("default-ip-ttl", "256");
  refusal("default-ip-ttl", "-1");
  refusal("default-ip-ttl", "ten");
  refusal("interface-mtu", "65536");
  refusal("time-offset", "2147483648");
  refusal("time-offset", "-2147483649");
  refusal("ip-forwarding", "maybe");
  refusal("host-name", "");
  refusal("240", "01:02:a");
  refusal("240", "01:02::ab");
  refusal("240", "zz");
  refusal("dhcp-client-identifier", "01");  // shorter than RFC 2132's minimum of 2
  refusal("uuid-guid", "8d5c2a3e-5f2b-4b2e-9b1a");
  refusal("client-ndi", "1.3");
  refusal("classless-static-route", "10.0.0.1/8 10.0.0.1");  // host bits
  refusal("classless-static-route", "10.0.0.0/33 10.0.0.1");
  refusal("classless-static-route", "10.0.0.0/8");
  refusal("domain-search", "a..b");
  refusal("domain-search", std::string(64, 'a') + ".com");
  auto messageType = *findOption(opt::kMessageType);
  EXPECT_FALSE(encodeOptionValue(messageType, "hello").ok());
  EXPECT_FALSE(encodeOptionValue(messageType, "0").ok());
  refusal("rapid-commit", "1");
  auto longValue = refusal("root-path", std::string(1025, 'x'));
  EXPECT_NE(longValue.find("at most 1024 bytes"), std::string::npos) << longValue;
  auto sub = refusal("ipxe.no-pxedhcp", "yes");
  EXPECT_NE(sub.find("ipxe.no-pxedhcp (option 176)"), std::string::npos) << sub;
}

TEST(DhcpOptions, FormatForLogs) {
  EXPECT_EQ(formatOption(3, hexBytes("0a000001 0a000002")), "routers=10.0.0.1, 10.0.0.2");
  EXPECT_EQ(formatOption(3, hexBytes("0a0000")), "routers=0a:00:00");  // bad length: hex
  EXPECT_EQ(formatOption(240, hexBytes("01 02")), "option-240=01:02");
  EXPECT_EQ(formatOption(12, textBytes(std::string("pc1\0", 4))), "host-name=pc1");  // trailing NUL
  EXPECT_EQ(formatOption(12, hexBytes("70 01 63")), "host-name=70:01:63");        // not printable
  EXPECT_EQ(formatOption(19, hexBytes("02")), "ip-forwarding=02");
  EXPECT_EQ(formatOption(53, hexBytes("63")), "dhcp-message-type=99");
  EXPECT_EQ(formatOption(opt::kVendorSpecific, hexBytes("06 01 08 ff")),
            "vendor-encapsulated-options=[discovery-control=8]");
  EXPECT_EQ(formatOption(opt::kVendorSpecific, hexBytes("06 05 08")), "vendor-encapsulated-options=06:05:08");
  EXPECT_EQ(formatOption(opt::kUserClass, hexBytes("01 61 02 62 63")), "user-class=a, bc");
  EXPECT_EQ(formatOption(opt::kClasslessRoutes, hexBytes("21 0a")), "classless-static-route=21:0a");
  // RFC 3397 §2 compression: the second name points back into the first.
  auto compressed = Packet().hex("07").text("example").hex("03").text("com").hex("00")
                        .hex("03").text("lab").hex("c0 00").bytes();
  EXPECT_EQ(formatOption(opt::kDomainSearch, compressed), "domain-search=example.com, lab.example.com");
  // A pointer to itself, or forward, is malformed (no loops).
  EXPECT_EQ(formatOption(opt::kDomainSearch, hexBytes("03 61 62 63 c0 00 c0 07")),
            "domain-search=03:61:62:63:c0:00:c0:07");
  EXPECT_EQ(formatOption(opt::kDomainSearch, hexBytes("c0 00")), "domain-search=c0:00");
}

TEST(DhcpOptions, SubOptions) {
  auto subs = parseSubOptions(hexBytes("00 06 01 08 00 47 04 80 00 00 00 ff 99 99"));
  ASSERT_TRUE(subs.ok());
  ASSERT_EQ(subs->size(), 2u);
  EXPECT_EQ((*subs)[0].code, 6);
  EXPECT_EQ((*subs)[1].code, 71);
  EXPECT_EQ((*subs)[1].data.size(), 4u);
  EXPECT_FALSE(parseSubOptions(hexBytes("06 02 08")).ok());
  EXPECT_FALSE(parseSubOptions(hexBytes("06")).ok());
  // Without pad/end (option 82), 0 and 255 are ordinary codes.
  auto agentSubs = parseSubOptions(hexBytes("00 01 aa ff 00"), false);
  ASSERT_TRUE(agentSubs.ok());
  EXPECT_EQ(agentSubs->size(), 2u);
  EXPECT_FALSE(findSubOption(hexBytes("06 09"), 6));
  Bytes out;
  EXPECT_TRUE(appendSubOption(out, ipxe::kNoPxeDhcp, hexBytes("01")).ok());
  EXPECT_EQ(out, hexBytes("b0 01 01"));
  EXPECT_FALSE(appendSubOption(out, 1, Bytes(256)).ok());
}

TEST(DhcpOptions, UserClassFormats) {
  auto plain = decodeUserClass(textBytes("iPXE"));
  EXPECT_FALSE(plain.rfc3004);
  EXPECT_EQ(plain.classes, std::vector<std::string>{"iPXE"});
  auto list = decodeUserClass(Packet().hex("04").text("iPXE").hex("03").text("lab").bytes());
  EXPECT_TRUE(list.rfc3004);
  EXPECT_EQ(list.classes, (std::vector<std::string>{"iPXE", "lab"}));
  EXPECT_FALSE(decodeUserClass(hexBytes("00 41")).rfc3004);  // zero-length instance: not RFC 3004
  EXPECT_TRUE(decodeUserClass({}).classes.empty());
}

TEST(DhcpOptions, Ipv4Text) {
  EXPECT_EQ(parseIpv4("10.0.0.1"), ip(10, 0, 0, 1));
  EXPECT_EQ(parseIpv4("255.255.255.255"), 0xffffffffu);
  EXPECT_EQ(parseIpv4("0.0.0.0"), 0u);
  for (auto bad : {"", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1..2.3", " 1.2.3.4", "1.2.3.4 ", "a.b.c.d", "1.2.3.",
                   "1234.1.1.1", "-1.2.3.4"})
    EXPECT_FALSE(parseIpv4(bad)) << bad;
  EXPECT_EQ(formatIpv4(ip(192, 168, 1, 100)), "192.168.1.100");
}

TEST(DhcpOptions, TypesHaveNamesAndLengthRules) {
  EXPECT_EQ(parseOptionType("ip-list"), OptionType::IpList);
  EXPECT_EQ(parseOptionType("HEX"), OptionType::Binary);
  EXPECT_FALSE(parseOptionType("float"));
  EXPECT_EQ(typeName(OptionType::U16List), "u16-list");
  EXPECT_TRUE(validLength(OptionType::IpList, 8));
  EXPECT_FALSE(validLength(OptionType::IpList, 6));
  EXPECT_FALSE(validLength(OptionType::IpList, 0));
  EXPECT_TRUE(validLength(OptionType::Binary, 0));
  EXPECT_TRUE(validLength(OptionType::Empty, 0));
  EXPECT_FALSE(validLength(OptionType::Empty, 1));
  EXPECT_EQ(describeArch(arch::kEfiArm64), "arm64-uefi");
  EXPECT_EQ(describeArch(4242), "arch-4242");
}
