// One ONC RPC connection over TCP (RFC 5531 §11 record marking) carrying NFS v3, MOUNT v3 and
// PORTMAP v2 calls.
//
// The reader feeds the socket's bytes to a wire::RecordFramer; each record is decoded
// (wire::decodeCall) and answered (calls.hpp: the program table, the credentials, the procedure) on a
// worker thread (the file system inside the image reads from disk), at most
// max_in_flight at once per connection. Replies go out in completion order, as RPC allows (the xid
// pairs them), each as one record. A record that breaks the framing (a fragment over the size limit,
// too many empty fragments) ends the connection: nothing after it could be trusted to be in step.
// A reply that makes no progress for send_timeout ends it too.
//
// Completion contract: everything but the procedures runs on the loop; the connection is owned by its
// coroutines and by calls in flight (shared_from_this).
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "event/loop.hpp"
#include "nfs/calls.hpp"
#include "nfs/wire/rpc.hpp"

namespace pxedust::nfs {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<ServiceContext> ctx, asio::ip::tcp::socket socket, event::ShutdownGate::Ticket ticket,
             std::uint64_t id);
  ~Connection();

  void start();
  void abort(Drop why, std::string_view detail);
  // Shutdown: stop reading, let calls in flight answer, then close.
  void drain();
  [[nodiscard]] const asio::ip::address& peerAddress() const { return peerAddress_; }

 private:
  asio::awaitable<void> readLoop();
  asio::awaitable<void> writeLoop();
  asio::awaitable<void> timerLoop();
  asio::awaitable<void> run(std::vector<std::uint8_t> record);
  void queueReply(CallAnswer&& a);
  void closeSocket();
  void finish();

  std::shared_ptr<ServiceContext> ctx_;
  asio::ip::tcp::socket socket_;
  std::optional<event::ShutdownGate::Ticket> ticket_;
  std::uint64_t id_;
  std::string peer_;
  asio::ip::address peerAddress_;
  std::uint16_t peerPort_ = 0;

  wire::RecordFramer framer_;
  std::vector<std::uint8_t> rx_;
  std::deque<std::vector<std::uint8_t>> outq_;
  std::size_t inFlight_ = 0;
  bool writing_ = false;
  std::chrono::steady_clock::time_point writeSince_;
  bool closed_ = false;
  bool stopReading_ = false;
  bool readerDone_ = false;
  bool finished_ = false;
  Drop endReason_ = Drop::PeerClosed;
  std::string endDetail_;
  asio::steady_timer writeSignal_, slotSignal_, timer_;
};

}  // namespace pxedust::nfs
