#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "dhcp/wire/icmpv6.hpp"

using namespace pxedust::dhcp::wire;
using Bytes = std::vector<std::uint8_t>;

namespace {

// A Router Solicitation as iPXE sends one: type 133, code 0, checksum (any here: the kernel checks
// it), reserved, and the source link-layer address option.
const Bytes kIpxeSolicitation = {0x85, 0x00, 0x3b, 0x6d, 0x00, 0x00, 0x00, 0x00,
                                 0x01, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

TEST(Icmpv6, RouterSolicitationWithAndWithoutOptions) {
  EXPECT_TRUE(isRouterSolicitation(kIpxeSolicitation));
  EXPECT_TRUE(isRouterSolicitation(Bytes(kIpxeSolicitation.begin(), kIpxeSolicitation.begin() + 8)));
}

TEST(Icmpv6, ShorterThanTheHeaderIsNoSolicitation) {
  EXPECT_FALSE(isRouterSolicitation(Bytes(kIpxeSolicitation.begin(), kIpxeSolicitation.begin() + 7)));
  EXPECT_FALSE(isRouterSolicitation(Bytes{}));
}

TEST(Icmpv6, OtherTypesAndNonZeroCodeAreNoSolicitation) {
  auto advert = kIpxeSolicitation;
  advert[0] = 134;
  EXPECT_FALSE(isRouterSolicitation(advert));
  auto echo = kIpxeSolicitation;
  echo[0] = 128;
  EXPECT_FALSE(isRouterSolicitation(echo));
  auto coded = kIpxeSolicitation;
  coded[1] = 1;  // RFC 4861 section 6.1.1: ICMP Code is 0
  EXPECT_FALSE(isRouterSolicitation(coded));
}

}  // namespace
