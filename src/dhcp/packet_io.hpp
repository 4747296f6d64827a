// The DHCP service's packet I/O: the one seam between DhcpService and the network, so a test can
// drive the real service in process with a fake (as Kea's tests replace its packet filter).
//
// A PacketIo finds the configured interfaces and opens one endpoint per interface and port. The
// service waits for an endpoint to be readable, drains it without blocking (one datagram at a time,
// each with its receiving interface index and source), and sends a batch's replies at once. The
// batching, the order of answers and the parking of ACKs stay in the service; this is only the I/O.
// The real one (makeUdpPacketIo) is a UDP socket bound to 0.0.0.0:port with SO_BINDTODEVICE.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>

#include "common/mac.hpp"
#include "common/result.hpp"
#include "dhcp/interfaces.hpp"
#include "event/udp.hpp"

namespace pxedust::dhcp {

// One interface's port (67, or 4011 in proxy mode). Used on the loop thread only.
class PacketEndpoint {
 public:
  virtual ~PacketEndpoint() = default;
  // Completes when datagrams may be queued, or with operation_aborted after close().
  virtual asio::awaitable<std::error_code> waitReadable() = 0;
  // Non-blocking: the next queued datagram into `buffer` (its size, source and receiving interface
  // index), or nullopt when nothing is queued.
  virtual std::optional<event::Received> tryReceive(std::span<std::uint8_t> buffer) = 0;
  // Several prepared replies at once (sendmmsg): how many went; errno says why the next did not.
  virtual unsigned sendBatch(std::span<mmsghdr> messages) = 0;
  // One reply; false with errno set when it did not go.
  virtual bool send(std::span<const iovec> parts, const asio::ip::udp::endpoint& to) = 0;
  // Puts `mac` at `address` in the interface's neighbour table, so a reply can be unicast to a
  // client that does not answer ARP yet (RFC 2131 §4.1).
  virtual Result<void> setNeighbour(std::uint32_t address, const MacAddress& mac) = 0;
  virtual void close() = 0;
};

class PacketIo {
 public:
  virtual ~PacketIo() = default;
  // The interface's index and first IPv4 address; an error names what is missing.
  virtual Result<InterfaceInfo> lookupInterface(const std::string& name) = 0;
  // Opens the endpoint; from here on the datagrams to it queue until drained.
  virtual Result<std::unique_ptr<PacketEndpoint>> open(const InterfaceInfo& interface, std::uint16_t port) = 0;
};

// The real sockets on `io`.
std::unique_ptr<PacketIo> makeUdpPacketIo(asio::io_context& io);

}  // namespace pxedust::dhcp
