// The one ICMPv6 message pxedust reads: a Router Solicitation (RFC 4861 section 4.1), which the DHCP
// service answers with a Router Advertisement saying there is no IPv6 router (router_adverts.hpp).
//
// Pure: bytes in, answer out; no sockets. The message is the ICMPv6 payload as a raw ICMPv6 socket
// delivers it (no IPv6 header); the kernel has verified the checksum.
#pragma once

#include <cstdint>
#include <span>

namespace pxedust::dhcp::wire {

inline constexpr std::uint8_t kIcmpv6RouterSolicitation = 133;  // RFC 4861 section 4.1

// RFC 4861 section 6.1.1, the checks visible in the ICMPv6 payload: type 133, code 0, at least the
// 8-byte header. The options that may follow are not looked at (the answer does not depend on them),
// and the hop limit of 255 is not visible without IPV6_RECVHOPLIMIT.
bool isRouterSolicitation(std::span<const std::uint8_t> message);

}  // namespace pxedust::dhcp::wire
