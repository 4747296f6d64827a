// The HTTP service: boot files (kernels, initrds, iPXE scripts, UEFI HTTP Boot programs) from a
// confined root, and the daemon's own pages (metrics, API) as routes.
//
// HTTP/1.1 with keep-alive and pipelined requests, GET and HEAD; one Range per request (206/416);
// Last-Modified/ETag with If-None-Match, If-Modified-Since and If-Range (http/wire/range.hpp). File
// bodies go out with sendfile(2) from the page cache, so a thousand clients fetching one initrd cost
// one copy in memory and no copy through user space. Files come from the same kind of root and
// per-host rules as TFTP (files/files.hpp): the kernel refuses any escape from the root.
//
// What one client may hold (each refusal counted in pxedust_http_drops_total):
//   connections      max_connections in all, max_connections_per_client per address: beyond
//                    either, a new connection is closed at once
//   a request head   http::wire::Limits (8 KiB request line, 16 KiB head, 64 fields): 414/431
//   time             header_timeout for a head once its first byte came (slow-loris: 408),
//                    idle_timeout between requests, send_timeout without progress while sending
//   the loop         a response to a fast client yields to the loop every 4 MiB
// The disk never stalls the loop: sendfile runs on the loop, but before each chunk (1 MiB) is sent
// its first and last pages are checked in the page cache (preadv2 RWF_NOWAIT, one byte each); a
// chunk that is not there is read from disk on one of two reader threads first, the response
// waiting meanwhile while the loop serves everyone else (as nginx's `aio threads` does). Hot files,
// which boot files are, cost two tiny reads per megabyte. Where the file system cannot tell
// (RWF_NOWAIT unsupported), chunks are sent as they are.
//
// POST /boot/up is a host saying its system is up (boot::HostEvent, from the address it came from):
// its init or a unit sends it once the system runs; it is answered on the boot network's addresses.
// POST /boot/failed is the same host saying its boot stopped, the body (text) saying why: the
// pxedust initramfs sends it before it gives up (a root too large for RAM, no disk, ...).
//
// Routes (setRoute, setPrefixRoute) answer paths with a generated body, streams (setStream) with
// Server-Sent Events; both take precedence over files. The daemon adds /metrics, the API and the
// dashboard there, so the service knows nothing of them. With [http] api_listen, routes and streams
// are answered only on those addresses, and those addresses answer nothing else: the boot network
// gets files and scripts, the management network the API.
//
// prepare() opens the new root and binds new listeners; commit() swaps them in (the reload contract
// of service/service.hpp). Connections in flight keep the root and settings they started with
// until their current response ends.
#pragma once

#include <asio/thread_pool.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/fd.hpp"
#include "common/result.hpp"
#include "event/loop.hpp"
#include "event/tcp_listeners.hpp"
#include "http/config.hpp"
#include "http/event_stream.hpp"
#include "http/stats.hpp"
#include "http/wire/request.hpp"
#include "inventory/inventory.hpp"
#include "service/service.hpp"

namespace pxedust::http {

// A generated response (a route's answer).
struct Reply {
  int status = 200;
  std::string contentType = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> fields;  // extra header fields
};
// Called on the loop thread with the request and its body (empty for GET/HEAD).
using Route = std::function<Reply(const wire::Request& request, std::string_view body)>;
// A route whose answer takes work off the loop (a file system change, a wait for sessions to end):
// it calls `respond` once, later, on the loop thread; the connection waits for it. The request
// and body stay valid until then.
using Respond = std::function<void(Reply)>;
using AsyncRoute = std::function<void(const wire::Request& request, std::string_view body, Respond respond)>;

// A route as the service keeps it: one of the two kinds; a prefix route answers every path that
// starts with its key (the longest such key wins; an exact route wins over any prefix).
struct RouteEntry {
  Route sync;
  AsyncRoute async;
  bool prefix = false;
};

class Connection;

// What requests are served from. commit() replaces it; a connection holds the one its response
// started with.
struct Site {
  Config config;
  UniqueFd root;
  std::shared_ptr<const inventory::Inventory> hosts;
};

// The service's state that connections share (they outlive a commit, not the service).
struct Shared {
  explicit Shared(event::Loop& l) : loop(l) {}
  event::Loop& loop;
  std::shared_ptr<const Site> site;
  std::map<std::string, RouteEntry, std::less<>> routes;
  // The route for `path`, or null.
  [[nodiscard]] const RouteEntry* findRoute(std::string_view path) const;
  std::map<std::string, std::shared_ptr<EventStream>, std::less<>> streams;
  HttpStats stats;
  std::unordered_map<std::uint64_t, std::weak_ptr<Connection>> connections;
  std::map<asio::ip::address, std::uint32_t> perClient;
  std::size_t sending = 0;  // responses with a body in flight
  std::uint64_t nextId = 1;
  bool stopping = false;
  std::function<void(const boot::FileEvent&)> report;  // the service's event sink
  std::function<void(const boot::HostEvent&)> reportHost;
  // Where a chunk of a file that is not in the page cache is read first (the service's reader
  // threads); null once the service is gone: chunks are then sent as they are.
  asio::thread_pool* readers = nullptr;
  bool nowaitUnsupported = false;  // the file system refused RWF_NOWAIT once: checks are skipped
};

class HttpService final : public service::Service {
 public:
  explicit HttpService(event::Loop& loop);
  ~HttpService() override;
  HttpService(const HttpService&) = delete;
  HttpService& operator=(const HttpService&) = delete;

  [[nodiscard]] std::string_view name() const override { return "http"; }
  Result<std::unique_ptr<service::Staged>> prepare(const config::Config& config,
                                                   std::shared_ptr<const inventory::Inventory> hosts) override;
  void commit(std::unique_ptr<service::Staged> staged) noexcept override;
  void stopAccepting() override;
  void abort() override;
  [[nodiscard]] bool busy() const override { return !shared_->connections.empty(); }
  [[nodiscard]] std::vector<std::string> endpoints() const override;
  void collect(metrics::Writer& out) const override;

  // prepare() + commit() of the [http] section alone (tests).
  Result<void> apply(const Config& config, std::shared_ptr<const inventory::Inventory> hosts);

  // Answers GET and HEAD of exactly `path` (other methods too when the route says so) with `route`.
  void setRoute(std::string path, Route route);
  // The same, answered through `route`'s respond callback.
  void setAsyncRoute(std::string path, AsyncRoute route);
  // Answers every path under `prefix` (e.g. "/api/v1/overlays/") with `route`, whatever the method:
  // the route checks it.
  void setPrefixRoute(std::string prefix, AsyncRoute route);
  // Answers GET of exactly `path` with `stream`, as Server-Sent Events, for as long as the client
  // stays (the connection is its own: no more requests on it).
  void setStream(std::string path, std::shared_ptr<EventStream> stream);

  [[nodiscard]] const HttpStats& stats() const { return shared_->stats; }
  [[nodiscard]] std::size_t openConnections() const { return shared_->connections.size(); }
  [[nodiscard]] std::size_t responsesInFlight() const { return shared_->sending; }
  [[nodiscard]] std::vector<asio::ip::tcp::endpoint> listenEndpoints() const;
  // Where the daemon's pages are served on their own ([http] api_listen); empty when they share
  // `listen` with the boot files.
  [[nodiscard]] std::vector<asio::ip::tcp::endpoint> apiEndpoints() const;
  [[nodiscard]] std::vector<std::string> apiEndpointTexts() const;

 private:
  struct Staged;
  Result<std::unique_ptr<Staged>> prepareSection(const Config& config,
                                                 std::shared_ptr<const inventory::Inventory> hosts);
  void accept(asio::ip::tcp::socket socket, bool api);

  event::Loop& loop_;
  asio::thread_pool readers_{2};
  std::shared_ptr<Shared> shared_;
  event::TcpListeners listeners_;
  event::TcpListeners apiListeners_;
};

}  // namespace pxedust::http
