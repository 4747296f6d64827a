// Event types: IPv4 values, kind names, which DISCOVERs come from network-boot clients, the
// bounding of peer text.
#include <gtest/gtest.h>

#include "boot/event.hpp"
#include "boot/text.hpp"

namespace pxedust::boot {
namespace {

TEST(Ipv4, ParsesAndPrintsDottedQuads) {
  EXPECT_EQ(Ipv4::parse("10.0.0.1")->value(), 0x0a000001u);
  EXPECT_EQ(Ipv4::parse("255.255.255.255")->value(), 0xffffffffu);
  EXPECT_EQ(Ipv4(0xc0a80132).toString(), "192.168.1.50");
  EXPECT_EQ(Ipv4().toString(), "0.0.0.0");
  for (const char* bad : {"", "10.0.0", "10.0.0.1.", "10.0.0.256", "10..0.1", "a.b.c.d", "10.0.0.1 ", "1.2.3.0001"})
    EXPECT_FALSE(Ipv4::parse(bad)) << bad;
}

TEST(Events, KindNames) {
  EXPECT_EQ(kindName(Event{{}, DhcpEvent{DhcpKind::Ack, {}, {}, {}, {}, {}, {}}}), "dhcp.ack");
  EXPECT_EQ(kindName(Event{{}, DhcpEvent{DhcpKind::Release, {}, {}, {}, {}, {}, {}}}), "dhcp.release");
  EXPECT_EQ(kindName(Event{{}, ProxyDhcpEvent{}}), "dhcp.proxy_answer");
  FileEvent file;
  file.result = FileResult::NotFound;
  EXPECT_EQ(kindName(Event{{}, file}), "file.not_found");
  DiskEvent disk;
  disk.kind = DiskKind::Logout;
  EXPECT_EQ(kindName(Event{{}, disk}), "disk.logout");
  EXPECT_EQ(protocolName(FileProtocol::Http), "http");
  EXPECT_EQ(protocolName(DiskProtocol::Nbd), "nbd");
}

TEST(Events, NetworkBootClientsAreThoseWithOption93OrAPxeVendorClass) {
  DhcpEvent d;
  EXPECT_FALSE(fromNetworkBootClient(d));
  d.vendorClass = "udhcp 1.35.0";
  EXPECT_FALSE(fromNetworkBootClient(d));
  d.vendorClass = "PXEClient:Arch:00000:UNDI:002001";
  EXPECT_TRUE(fromNetworkBootClient(d));
  d.vendorClass = "HTTPClient:Arch:00016";
  EXPECT_TRUE(fromNetworkBootClient(d));
  d.vendorClass.clear();
  d.arch = 7;
  EXPECT_TRUE(fromNetworkBootClient(d));
}

TEST(Text, TextIsCutBetweenCharactersAndMadeValidUtf8) {
  EXPECT_EQ(boundedText("pxelinux.0", 128), "pxelinux.0");
  EXPECT_EQ(boundedText("abcdef", 4), "abcd");
  EXPECT_EQ(boundedText("caf\xc3\xa9", 4), "caf");          // é would not fit whole
  EXPECT_EQ(boundedText("caf\xc3\xa9", 5), "caf\xc3\xa9");
  EXPECT_EQ(boundedText("a\xff" "b", 8), "a?b");
  EXPECT_EQ(boundedText("\xc0\xaf", 8), "??");             // overlong '/'
  EXPECT_EQ(boundedText("\xed\xa0\x80", 8), "???");         // a surrogate
  EXPECT_EQ(boundedText("\xf4\x90\x80\x80", 8), "????");    // above U+10FFFF
  EXPECT_EQ(boundedText("\xf0\x9f\x98\x80", 8), "\xf0\x9f\x98\x80");
  EXPECT_EQ(boundedText("\xe2\x82", 8), "??");              // cut short
}

}  // namespace
}  // namespace pxedust::boot
