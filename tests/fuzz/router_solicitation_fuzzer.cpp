// libFuzzer harness for the ICMPv6 bytes the DHCP service reads: every message on its raw ICMPv6
// sockets goes through isRouterSolicitation(). It may not read past the message, and it accepts
// exactly the messages RFC 4861 section 6.1.1 lets through: type 133, code 0, 8 bytes or more.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "dhcp/wire/icmpv6.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bool rs = pxedust::dhcp::wire::isRouterSolicitation(std::span<const std::uint8_t>(data, size));
  bool expected = size >= 8 && data[0] == 133 && data[1] == 0;
  if (rs != expected) std::abort();
  return 0;
}
