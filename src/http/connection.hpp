// One HTTP connection: reads request heads, answers each (a route, a file, or an error), and keeps
// the connection for the next request while the client wants it (service.hpp says what it serves).
//
// Two coroutines on the loop: run() reads and answers requests one after another (pipelined
// requests wait in the buffer); watch() enforces the deadline of the current phase (idle, head,
// body, send) by cancelling the socket's operations when it passes. Completion: the connection
// removes itself from Shared::connections when run() ends; abort() ends it from outside.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "event/loop.hpp"
#include "http/service.hpp"
#include "http/wire/request.hpp"
#include "http/wire/response.hpp"

namespace pxedust::http {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<Shared> shared, asio::ip::tcp::socket socket, event::ShutdownGate::Ticket ticket,
             std::uint64_t id, asio::ip::address client, bool api = false);
  ~Connection();

  void start();
  // Ends the connection after the response in flight, if any (shutdown, first step).
  void drain();
  // Ends it now.
  void abort(Drop why);

 private:
  using Clock = std::chrono::steady_clock;
  enum class Phase : std::uint8_t { Idle, Head, Body, Send };

  asio::awaitable<void> run();
  asio::awaitable<void> watch();
  void setDeadline(Phase phase, std::chrono::milliseconds after);

  // One request whose head is buffer_[0, headEnd).
  asio::awaitable<bool> serve(std::size_t headEnd);
  asio::awaitable<bool> serveFile(const wire::Request& request, bool keepAlive);
  asio::awaitable<bool> sendReply(const wire::Request& request, Reply reply, bool keepAlive);
  // POST /boot/failed: the host at this address says its boot stopped; the body says why.
  [[nodiscard]] Reply reportFailed(const wire::Request& request, std::string_view body) const;
  // POST /boot/up: the host at this address says it is up.
  [[nodiscard]] Reply reportUp(const wire::Request& request) const;
  // Answers with an AsyncRoute (a copy: the route table may change while it waits).
  asio::awaitable<bool> serveAsync(AsyncRoute route, const wire::Request& request, std::string body, bool keepAlive);
  // Waits for an AsyncRoute's reply.
  asio::awaitable<Reply> awaitRoute(const AsyncRoute& route, const wire::Request& request, std::string_view body);
  // Follows `stream` until the client leaves, the stream closes or the service stops; always false
  // (the connection ends with it).
  asio::awaitable<bool> serveStream(std::shared_ptr<EventStream> stream);
  asio::awaitable<bool> sendError(int status, bool keepAlive, std::string_view method = "GET");
  asio::awaitable<bool> write(std::string_view bytes);
  // Sends [first, first + length) of `fd`; false if the connection cannot go on.
  asio::awaitable<bool> sendFile(int fd, std::uint64_t first, std::uint64_t length, std::uint64_t& sent);
  // Whether [offset, offset + length) of `fd` is in the page cache, as far as its first and last
  // pages say; true when it cannot be told (http/service.hpp: the disk never stalls the loop).
  bool cached(int fd, off_t offset, std::size_t length);
  // Reads that range into the page cache on a reader thread and resumes on the loop.
  asio::awaitable<void> readAhead(int fd, off_t offset, std::size_t length);
  void fail(Drop why);
  [[nodiscard]] const inventory::Host* host(const Site& site) const;
  void reportFile(boot::FileResult result, std::string_view requested, std::string_view served,
                  std::uint64_t bytes, std::string_view reason) const;

  std::shared_ptr<Shared> shared_;
  std::shared_ptr<const Site> site_;  // the site of the request being answered
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  event::ShutdownGate::Ticket ticket_;
  std::uint64_t id_;
  asio::ip::address client_;
  bool api_;  // accepted on an [http] api_listen address
  std::string buffer_;
  Phase phase_ = Phase::Idle;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool expired_ = false;  // the deadline passed: the socket's operations were cancelled
  bool draining_ = false;
  bool closed_ = false;
  std::optional<Drop> drop_;  // why the connection ends early, once counted
  wire::Limits limits_;
  std::shared_ptr<asio::steady_timer> wake_;  // while following an event stream: wakes it
};

}  // namespace pxedust::http
