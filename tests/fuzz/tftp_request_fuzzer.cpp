// libFuzzer harness for the TFTP request path: every byte of a datagram to port 69 goes through
// parseRequest(), and a parsed request's options through negotiate(). Neither may crash, read out
// of bounds, or produce an OACK value outside its RFC range.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "tftp/options.hpp"
#include "tftp/wire/packet.hpp"

using namespace pxedust::tftp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto parsed = wire::parseRequest(std::span<const std::uint8_t>(data, size));
  if (parsed.error != wire::RequestError::None) return 0;
  // Limits as a 1500-byte MTU interface would give them.
  OptionLimits limits{1468, 64, 4u << 20};
  auto n = negotiate(parsed.request, limits, size);
  if (n.blksize < 8 || n.blksize > limits.maxBlksize) std::abort();
  if (n.windowsize < 1 || n.windowsize > limits.maxWindowsize) std::abort();
  if (n.timeoutSeconds && (*n.timeoutSeconds < 1 || *n.timeoutSeconds > 255)) std::abort();
  std::uint8_t out[512];
  if (wire::writeOack(out, n.oackEntries()) == 0 && n.oackCount > 0) std::abort();
  return 0;
}
