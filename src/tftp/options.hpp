// TFTP option negotiation (RFC 2347) for blksize (RFC 2348), timeout and tsize (RFC 2349) and
// windowsize (RFC 7440), driven by one table of option rules.
//
// The rules, per RFC: a value the server may lower (blksize, windowsize) is clamped down to what the
// server allows; a value below its RFC minimum, a value the server must echo unchanged (timeout)
// that is out of range, or any value that is not a plain decimal number leaves the option out of
// the OACK, and the transfer uses the RFC 1350 default. Each option is answered once (the first
// occurrence counts). tsize is answered with the real transfer size. When no option survives there
// is no OACK at all and the transfer starts with DATA 1.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "tftp/wire/packet.hpp"

namespace pxedust::tftp {

struct OptionLimits {
  std::uint32_t maxBlksize = 65464;    // already reduced to the interface MTU - 32 by the caller
  std::uint32_t maxWindowsize = 64;
  std::uint64_t maxWindowBytes = 4u << 20;  // windowsize * blksize bound: memory per transfer
};

struct Negotiation {
  std::uint32_t blksize = 512;
  std::uint32_t windowsize = 1;
  std::optional<std::uint32_t> timeoutSeconds;
  std::array<wire::OackEntry, 4> oack{};
  std::size_t oackCount = 0;
  [[nodiscard]] std::span<const wire::OackEntry> oackEntries() const { return {oack.data(), oackCount}; }
};

Negotiation negotiate(const wire::Request& request, const OptionLimits& limits, std::uint64_t transferSize);

}  // namespace pxedust::tftp
