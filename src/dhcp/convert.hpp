// Between the wire codec (dhcp/wire) and the policy: a decoded message becomes a Request, and a
// Reply becomes bytes laid out for that client (its parameter request list and maximum size).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dhcp/policy.hpp"
#include "dhcp/wire/packet.hpp"

namespace pxedust::dhcp {

struct Decoded {
  std::optional<Request> request;
  wire::Message message;        // what the reply is built from
  Drop drop = Drop::Malformed;  // when there is no request
  std::string error;            // what was wrong, for the log line
};
Decoded decodeRequest(std::span<const std::uint8_t> datagram);

// The reply's datagram; empty when it cannot be encoded (logged by the caller).
Result<std::vector<std::uint8_t>> encodeReply(const wire::Message& request, const Reply& reply);
// The same, moving the option values out of `reply` instead of copying them (the service's path:
// one allocation less per option per reply). `reply` keeps its type, addresses and destination.
Result<std::vector<std::uint8_t>> encodeReply(const wire::Message& request, Reply&& reply);

}  // namespace pxedust::dhcp
