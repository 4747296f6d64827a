#include "tftp/options.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

using namespace pxedust::tftp;

namespace {
Negotiation run(std::vector<std::pair<std::string, std::string>> opts, OptionLimits limits = {},
                std::uint64_t size = 1000) {
  static std::vector<std::pair<std::string, std::string>> keep;
  keep = std::move(opts);
  wire::Request r;
  for (auto& [n, v] : keep) r.options[r.optionCount++] = wire::Option{n, v};
  return negotiate(r, limits, size);
}
std::map<std::string, std::uint64_t> oack(const Negotiation& n) {
  std::map<std::string, std::uint64_t> m;
  for (auto e : n.oackEntries()) m[std::string(e.name)] = e.value;
  return m;
}
}  // namespace

TEST(TftpOptions, RealClients) {
  auto ipxe = run({{"blksize", "1432"}, {"tsize", "0"}}, {}, 46909);
  EXPECT_EQ(ipxe.blksize, 1432u);
  EXPECT_EQ(oack(ipxe), (std::map<std::string, std::uint64_t>{{"blksize", 1432}, {"tsize", 46909}}));
  auto pxelinux = run({{"tsize", "0"}, {"blksize", "1408"}});
  EXPECT_EQ(pxelinux.oackEntries()[0].name, "tsize");  // answered in the client's order
  EXPECT_EQ(pxelinux.blksize, 1408u);
  auto edk2 = run({{"blksize", "1468"}, {"windowsize", "4"}});
  EXPECT_EQ(edk2.windowsize, 4u);
}

TEST(TftpOptions, NoOptionsNoOack) {
  auto n = run({});
  EXPECT_EQ(n.oackCount, 0u);
  EXPECT_EQ(n.blksize, 512u);
  EXPECT_EQ(n.windowsize, 1u);
}

TEST(TftpOptions, BlksizeBounds) {
  for (auto bad : {"0", "7", "-1", "abc", "", " 512", "1e3"}) {
    auto n = run({{"blksize", bad}});
    EXPECT_EQ(n.oackCount, 0u) << bad;
    EXPECT_EQ(n.blksize, 512u) << bad;
  }
  EXPECT_EQ(run({{"blksize", "8"}}).blksize, 8u);
  EXPECT_EQ(run({{"blksize", "65464"}}).blksize, 65464u);
  EXPECT_EQ(run({{"blksize", "65465"}}).blksize, 65464u);  // clamped down, as RFC 2348 allows
  EXPECT_EQ(run({{"blksize", "999999999999999999999999"}}).blksize, 65464u);
  EXPECT_EQ(run({{"blksize", "9000"}}, OptionLimits{1468, 64, 4 << 20}).blksize, 1468u);  // the MTU clamp
}

TEST(TftpOptions, TimeoutIsEchoedOrOmitted) {
  EXPECT_EQ(run({{"timeout", "5"}}).timeoutSeconds, 5u);
  EXPECT_EQ(oack(run({{"timeout", "255"}}))["timeout"], 255u);
  EXPECT_EQ(run({{"timeout", "0"}}).oackCount, 0u);
  EXPECT_EQ(run({{"timeout", "256"}}).oackCount, 0u);  // must not be changed, so it is left out
}

TEST(TftpOptions, TsizeIsTheRealSize) {
  EXPECT_EQ(oack(run({{"tsize", "0"}}, {}, 123))["tsize"], 123u);
  EXPECT_EQ(oack(run({{"tsize", "999"}}, {}, 123))["tsize"], 123u);
  EXPECT_EQ(run({{"tsize", "abc"}}).oackCount, 0u);
}

TEST(TftpOptions, WindowsizeClamps) {
  EXPECT_EQ(run({{"windowsize", "0"}}).oackCount, 0u);
  EXPECT_EQ(run({{"windowsize", "1000"}}).windowsize, 64u);
  EXPECT_EQ(run({{"windowsize", "70000"}}).windowsize, 64u);
  // windowsize * blksize stays within the memory bound.
  auto n = run({{"blksize", "65464"}, {"windowsize", "64"}}, OptionLimits{65464, 64, 1 << 20});
  EXPECT_EQ(n.windowsize, 16u);
}

TEST(TftpOptions, EachOptionAnsweredOnce) {
  auto n = run({{"blksize", "1024"}, {"BLKSIZE", "2048"}, {"tsize", "0"}, {"tsize", "0"}});
  EXPECT_EQ(n.oackCount, 2u);
  EXPECT_EQ(n.blksize, 1024u);
}

TEST(TftpOptions, UnknownOptionsIgnored) {
  auto n = run({{"multicast", ""}, {"utimeout", "1000"}, {"blksize", "1024"}});
  EXPECT_EQ(n.oackCount, 1u);
}
