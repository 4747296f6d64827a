// One RPC call, whatever carried it: what the service's transports (TCP connections, connection.hpp;
// UDP sockets, datagrams.hpp) share. answerCall() works out the reply to a decoded call (pure but for
// the file system, so it runs on a worker); accountAnswer() counts it and reports a mount on the loop;
// encodeReply() lays out the reply's bytes.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/address.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <memory>
#include <string_view>
#include <vector>

#include "blockstore/async_device.hpp"
#include "boot/event.hpp"
#include "nfs/config.hpp"
#include "nfs/exports.hpp"
#include "nfs/mount_procedures.hpp"
#include "nfs/procedures.hpp"
#include "nfs/stats.hpp"
#include "nfs/wire/rpc.hpp"

namespace pxedust::nfs {

class Connection;

// What a config generation gives the transports (swapped whole on reload; calls in flight keep theirs).
struct Generation {
  Config config;
  std::shared_ptr<const ExportRules> rules;
};

struct ServiceContext {
  explicit ServiceContext(asio::any_io_executor ex) : executor(std::move(ex)) {}
  asio::any_io_executor executor;
  std::shared_ptr<blockstore::WorkerPool> pool;
  std::shared_ptr<ImageExports> exports;
  std::shared_ptr<const Procedures> procedures;     // over TCP: 1 MiB READs and listings
  std::shared_ptr<const Procedures> udpProcedures;  // over UDP: what fits a datagram
  std::shared_ptr<const Generation> generation;
  Ports ports;
  NfsStats stats;
  std::function<void(const boot::Event&)> events;
  std::map<std::uint64_t, std::weak_ptr<Connection>> connections;
  std::uint64_t nextConnectionId = 1;
  std::size_t datagramsInFlight = 0;  // UDP calls on the workers
  bool shuttingDown = false;
};

// What one call comes to: the reply header and body (after the RPC reply header), or no reply at
// all, and what a MOUNT call did.
struct CallAnswer {
  wire::ReplyHeader header;
  std::vector<std::uint8_t> body;
  bool noReply = false;
  MountOutcome mount;
};

// The answer to one decoded record: the RPC checks, then the program's procedure. `peer`/`port` are
// the caller's, `gen` the config it is judged by.
CallAnswer answerCall(const wire::CallOutcome& decoded, const asio::ip::address& peer, std::uint16_t port,
                      const Generation& gen, ImageExports& exports, const Procedures& procedures, const Ports& ports);

// Decodes `record` into `decoded` and works out the answer: a NULL call (or a record that is no call)
// at once, anything else on a worker thread, since the file system reads from disk. `record` and
// `decoded` belong to the caller's frame and must outlive the await (the decoded call points into the
// record); the config generation, exports and ports are those of the moment of the call.
asio::awaitable<CallAnswer> answerRecord(ServiceContext& ctx, std::span<const std::uint8_t> record,
                                         wire::CallOutcome& decoded, std::shared_ptr<const Procedures> procedures,
                                         asio::ip::address peer, std::uint16_t port);

// Counts an answered call (calls, refusals, READ bytes) and logs and reports what a MOUNT did (a
// boot event of the host it was for). `via` names the connection or socket in the log. On the loop.
void accountAnswer(ServiceContext& ctx, const wire::CallOutcome& decoded, const CallAnswer& a,
                   const asio::ip::address& peer, std::string_view via);

// The reply's RPC header with `prefix` bytes left free in front (TCP's record mark goes there); the
// answer's body follows it on the wire as a buffer of its own, uncopied. Empty when the header cannot
// be encoded.
std::vector<std::uint8_t> encodeReplyHead(const CallAnswer& a, std::size_t prefix);

}  // namespace pxedust::nfs
