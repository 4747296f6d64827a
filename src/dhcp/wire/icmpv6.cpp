#include "dhcp/wire/icmpv6.hpp"

namespace pxedust::dhcp::wire {

bool isRouterSolicitation(std::span<const std::uint8_t> message) {
  // Type, code, checksum, 4 reserved bytes.
  return message.size() >= 8 && message[0] == kIcmpv6RouterSolicitation && message[1] == 0;
}

}  // namespace pxedust::dhcp::wire
