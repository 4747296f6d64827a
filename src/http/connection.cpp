// One HTTP connection (connection.hpp).
#include "http/connection.hpp"

#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <sys/stat.h>

#include <asio/compose.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <ctime>

#include <fmt/format.h>

#include "common/log.hpp"
#include "files/files.hpp"
#include "http/scripts.hpp"
#include "http/wire/range.hpp"

namespace pxedust::http {
namespace {

constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::string_view kUpPath = "/boot/up";
constexpr std::string_view kFailedPath = "/boot/failed";
// What a host may say of its failed boot: one line, cut here (the tracker bounds it again).
constexpr std::size_t kMaxFailureText = 240;
constexpr std::size_t kSendChunk = 1 << 20;        // bytes per sendfile call
constexpr std::uint64_t kYieldEvery = 4ull << 20;  // bytes sent before a fast response lets the loop run

std::string_view contentTypeFor(std::string_view path) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 10> kTypes{{
      {".ipxe", "text/plain; charset=utf-8"},
      {".cfg", "text/plain; charset=utf-8"},
      {".txt", "text/plain; charset=utf-8"},
      {".conf", "text/plain; charset=utf-8"},
      {".html", "text/html; charset=utf-8"},
      {".css", "text/css"},
      {".js", "text/javascript"},
      {".json", "application/json"},
      {".efi", "application/efi"},
      {".iso", "application/x-iso9660-image"},
  }};
  auto slash = path.rfind('/');
  std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
  for (const auto& [ext, type] : kTypes)
    if (base.size() > ext.size() && base.ends_with(ext)) return type;
  return "application/octet-stream";
}

int statusFor(files::ErrorKind kind) {
  switch (kind) {
    case files::ErrorKind::NotFound:
    case files::ErrorKind::NotAFile: return 404;
    case files::ErrorKind::OutsideRoot:
    case files::ErrorKind::PermissionDenied: return 403;
    case files::ErrorKind::NameTooLong: return 414;
    case files::ErrorKind::BadName: return 400;
    case files::ErrorKind::OpenFailed: return 500;
  }
  return 500;
}

std::string now() { return wire::httpDate(std::time(nullptr)); }

}  // namespace

Connection::Connection(std::shared_ptr<Shared> shared, asio::ip::tcp::socket socket,
                       event::ShutdownGate::Ticket ticket, std::uint64_t id, asio::ip::address client, bool api)
    : shared_(std::move(shared)),
      socket_(std::move(socket)),
      timer_(socket_.get_executor()),
      ticket_(std::move(ticket)),
      id_(id),
      client_(std::move(client)),
      api_(api) {}

Connection::~Connection() {
  auto it = shared_->perClient.find(client_);
  if (it != shared_->perClient.end() && --it->second == 0) shared_->perClient.erase(it);
  shared_->connections.erase(id_);
}

void Connection::start() {
  std::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  socket_.native_non_blocking(true, ec);  // sendfile() must not block the loop on the socket
  auto self = shared_from_this();
  asio::co_spawn(socket_.get_executor(), [self] { return self->run(); }, asio::detached);
  asio::co_spawn(socket_.get_executor(), [self] { return self->watch(); }, asio::detached);
}

void Connection::drain() {
  draining_ = true;
  if (phase_ == Phase::Idle) abort(Drop::Shutdown);  // between requests: nothing to finish
}

void Connection::abort(Drop why) {
  if (closed_) return;
  fail(why);
  closed_ = true;
  std::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  timer_.cancel();
  if (wake_) wake_->cancel();
}

void Connection::fail(Drop why) {
  if (drop_) return;
  drop_ = why;
  shared_->stats.drop(why);
}

void Connection::setDeadline(Phase phase, std::chrono::milliseconds after) {
  phase_ = phase;
  const auto next = Clock::now() + after;
  const bool earlier = next < deadline_;
  deadline_ = next;
  if (earlier) timer_.cancel();  // the watchdog sleeps until the old one: wake it to re-arm
}

asio::awaitable<void> Connection::watch() {
  auto self = shared_from_this();
  while (!closed_) {
    timer_.expires_at(deadline_);
    std::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (closed_) break;
    if (Clock::now() >= deadline_ && !expired_) {
      expired_ = true;
      deadline_ = Clock::time_point::max();
      std::error_code ignored;
      socket_.cancel(ignored);  // run() sees its operation aborted and expired_ set
    }
  }
}

asio::awaitable<void> Connection::run() {
  auto self = shared_from_this();
  std::size_t scanned = 0;
  bool headStarted = false;
  setDeadline(Phase::Idle, shared_->site->config.idleTimeout);
  std::array<char, kReadChunk> chunk{};
  while (!closed_) {
    // A whole head in the buffer (a pipelined request may be there already)?
    auto found = wire::findHeadEnd(buffer_, scanned, limits_);
    if (auto* error = std::get_if<wire::Error>(&found)) {
      ++shared_->stats.requests;
      fail(Drop::BadRequest);
      PXD_DEBUG("http.bad_request", "conn={} peer={} status={} reason={}", id_, client_.to_string(), error->status,
                error->reason);
      co_await sendError(error->status, false);
      break;
    }
    if (auto* end = std::get_if<std::size_t>(&found)) {
      const std::size_t headEnd = *end;
      if (!co_await serve(headEnd)) break;
      scanned = 0;
      headStarted = false;
      if (draining_ || shared_->stopping) break;
      setDeadline(Phase::Idle, site_ ? site_->config.idleTimeout : shared_->site->config.idleTimeout);
      site_.reset();
      continue;
    }
    std::error_code ec;
    std::size_t n = co_await socket_.async_read_some(asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
    if (ec || n == 0) {
      if (expired_ && headStarted) {
        fail(Drop::HeaderTimeout);
        expired_ = false;
        setDeadline(Phase::Send, shared_->site->config.sendTimeout);
        co_await sendError(408, false);
      } else if (headStarted && !closed_) {
        fail(Drop::ClientClosed);  // a head cut off; a close between requests is the normal end
      }
      break;
    }
    if (!headStarted) {
      headStarted = true;
      setDeadline(Phase::Head, shared_->site->config.headerTimeout);
    }
    buffer_.append(chunk.data(), n);
  }
  if (!closed_) {
    closed_ = true;
    std::error_code ec;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    socket_.close(ec);
  }
  timer_.cancel();
}

// GCC 12 warns of a mismatched operator delete for this coroutine's frame once it has this many
// suspension points: a false positive of its coroutine lowering (the frame is allocated and freed
// by asio's awaitable_frame_base, both sized), so it is silenced for this function alone.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
asio::awaitable<bool> Connection::serve(std::size_t headEnd) {
  ++shared_->stats.requests;
  site_ = shared_->site;  // this request's root and settings, whatever a reload does meanwhile
  auto parsed = wire::parseRequest(std::string_view(buffer_).substr(0, headEnd), limits_);
  buffer_.erase(0, headEnd);
  if (auto* error = std::get_if<wire::Error>(&parsed)) {
    fail(Drop::BadRequest);
    PXD_DEBUG("http.bad_request", "conn={} peer={} status={} reason={}", id_, client_.to_string(), error->status,
              error->reason);
    co_await sendError(error->status, false);
    co_return false;
  }
  const auto& request = std::get<wire::Request>(parsed);
  const bool keepAlive = request.keepAlive && !draining_ && !shared_->stopping;

  // A body (API actions): read it whole; Limits::body bounded its length already.
  std::string body;
  if (request.contentLength > 0) {
    setDeadline(Phase::Body, site_->config.headerTimeout);
    const auto length = static_cast<std::size_t>(request.contentLength);
    while (buffer_.size() < length) {
      std::array<char, kReadChunk> chunk{};
      std::error_code ec;
      std::size_t n =
          co_await socket_.async_read_some(asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
      if (ec || n == 0) {
        fail(expired_ ? Drop::HeaderTimeout : Drop::ClientClosed);
        co_return false;
      }
      buffer_.append(chunk.data(), n);
    }
    body = buffer_.substr(0, length);
    buffer_.erase(0, length);
  }
  setDeadline(Phase::Send, site_->config.sendTimeout);

  // With [http] api_listen, the daemon's pages are there only, and nothing else is.
  const bool separate = !site_->config.apiListen.empty();
  if (!separate || api_) {
    if (auto stream = shared_->streams.find(request.path); stream != shared_->streams.end()) {
      if (request.method != wire::Method::Get) co_return co_await sendError(405, keepAlive, request.methodText);
      co_return co_await serveStream(stream->second);
    }
    if (const RouteEntry* route = shared_->findRoute(request.path)) {
      if (!route->async) co_return co_await sendReply(request, route->sync(request, body), keepAlive);
      co_return co_await serveAsync(route->async, request, body, keepAlive);
    }
  }
  if (separate && api_) co_return co_await sendError(404, keepAlive, request.methodText);
  if (request.path == kUpPath) co_return co_await sendReply(request, reportUp(request), keepAlive);
  if (request.path == kFailedPath) co_return co_await sendReply(request, reportFailed(request, body), keepAlive);
  if (request.method != wire::Method::Get && request.method != wire::Method::Head)
    co_return co_await sendError(405, keepAlive, request.methodText);
  if (request.path.starts_with(kScriptPrefix)) {
    std::error_code ec;
    const auto local = socket_.local_endpoint(ec);
    auto answer = hostScript(*site_, std::string_view(request.path).substr(kScriptPrefix.size()), client_, local);
    if (request.method == wire::Method::Get)
      reportFile(answer.result, std::string_view(request.path).substr(1), {}, answer.reply.body.size(), answer.reason);
    co_return co_await sendReply(request, std::move(answer.reply), keepAlive);
  }
  co_return co_await serveFile(request, keepAlive);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

asio::awaitable<bool> Connection::serveFile(const wire::Request& request, bool keepAlive) {
  const Site& site = *site_;
  auto name = files::normalizeRequest(request.path);
  if (name.error) {
    reportFile(boot::FileResult::Failed, request.path, {}, 0, name.error->clientText);
    co_return co_await sendError(statusFor(name.error->kind), keepAlive, request.methodText);
  }
  const std::string path =
      site.config.perHost.empty() ? name.path : files::applyPerHost(site.config.perHost, name.path, host(site));
  auto file = files::openBeneath(site.root.get(), path);
  if (file.error) {
    const int status = statusFor(file.error->kind);
    reportFile(status == 404 ? boot::FileResult::NotFound : boot::FileResult::Failed, name.path, path, 0,
               file.error->clientText);
    co_return co_await sendError(status, keepAlive, request.methodText);
  }
  struct stat st{};
  if (::fstat(file.fd.get(), &st) != 0) co_return co_await sendError(500, false, request.methodText);
  const wire::FileFacts facts{static_cast<std::uint64_t>(st.st_size),
                              static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
  const auto plan = wire::plan({request.field("if-none-match"), request.field("if-modified-since"),
                                request.field("range"), request.field("if-range")},
                               facts);
  wire::ResponseHead head;
  head.status = plan.status();
  head.keepAlive = keepAlive;
  head.add("Date", now()).add("Server", "pxedust");
  head.add("ETag", wire::entityTag(facts)).add("Last-Modified", wire::httpDate(st.st_mtim.tv_sec));
  head.add("Accept-Ranges", "bytes");
  if (plan.kind != wire::Plan::Kind::NotModified) head.add("Content-Type", std::string(contentTypeFor(path)));
  if (auto range = plan.contentRange(facts.size); !range.empty()) head.add("Content-Range", range);
  head.contentLength = plan.length;
  shared_->stats.responded(head.status);
  if (!co_await write(head.serialize())) co_return false;
  if (request.method == wire::Method::Head || plan.length == 0) co_return keepAlive;

  if (plan.kind == wire::Plan::Kind::Whole)
    ::posix_fadvise(file.fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  // A body that does not start in the page cache is read ahead whole, on a reader thread (the
  // advice itself can wait for room in the disk's queue). A cached one, as boot files are, costs
  // nothing more here.
  const auto first = static_cast<off_t>(plan.first), length = static_cast<off_t>(plan.length);
  if (!cached(file.fd.get(), first, static_cast<std::size_t>(std::min<off_t>(length, kSendChunk))))
    if (int copy = ::fcntl(file.fd.get(), F_DUPFD_CLOEXEC, 0); copy >= 0)
      asio::post(*shared_->readers, [copy, first, length] {
        ::posix_fadvise(copy, first, length, POSIX_FADV_WILLNEED);
        ::close(copy);
      });
  ++shared_->sending;
  std::uint64_t sent = 0;
  const bool ok = co_await sendFile(file.fd.get(), plan.first, plan.length, sent);
  --shared_->sending;
  // A whole file is a step of a boot; ranges (iPXE's HTTP SAN disk reads, resumed downloads) are not.
  if (plan.kind == wire::Plan::Kind::Whole) {
    if (ok) {
      ++shared_->stats.filesCompleted;
      reportFile(boot::FileResult::Completed, name.path, path, sent, {});
    } else {
      const bool shrank = drop_ == Drop::FileShrank;
      reportFile(shrank ? boot::FileResult::Failed : boot::FileResult::Aborted, name.path, path, sent,
                 shrank                        ? "the file shrank while it was sent"
                 : drop_ == Drop::SendTimeout  ? "the client stopped reading"
                 : drop_ == Drop::Shutdown     ? "shutdown"
                                               : "the client closed the connection");
    }
  }
  co_return ok && keepAlive;
}

Reply Connection::reportUp(const wire::Request& request) const {
  if (request.method != wire::Method::Post)
    return Reply{405, "text/plain; charset=utf-8", "POST, from the host that is up\n", {{"Allow", "POST"}}};
  const auto ip = inventory::peerIpv4(client_);
  if (ip && shared_->reportHost) shared_->reportHost(boot::HostEvent{boot::HostKind::Up, boot::Ipv4(ip->to_uint()), {}});
  return Reply{200, "text/plain; charset=utf-8", "up\n", {}};
}

Reply Connection::reportFailed(const wire::Request& request, std::string_view body) const {
  if (request.method != wire::Method::Post)
    return Reply{405, "text/plain; charset=utf-8", "POST, from the host whose boot failed\n", {{"Allow", "POST"}}};
  // Text from the network: control characters become spaces, runs of them one, and it is cut short.
  std::string reason;
  for (const char c : body) {
    if (reason.size() >= kMaxFailureText) break;
    const bool control = static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
    if (control) {
      if (!reason.empty() && reason.back() != ' ') reason.push_back(' ');
      continue;
    }
    reason.push_back(c);
  }
  while (!reason.empty() && reason.back() == ' ') reason.pop_back();
  const auto ip = inventory::peerIpv4(client_);
  if (ip && shared_->reportHost)
    shared_->reportHost(boot::HostEvent{boot::HostKind::Failed, boot::Ipv4(ip->to_uint()), std::move(reason)});
  return Reply{200, "text/plain; charset=utf-8", "noted\n", {}};
}

asio::awaitable<bool> Connection::serveAsync(AsyncRoute route, const wire::Request& request, std::string body,
                                             bool keepAlive) {
  Reply reply = co_await awaitRoute(route, request, body);
  co_return co_await sendReply(request, std::move(reply), keepAlive && !closed_);
}

asio::awaitable<Reply> Connection::awaitRoute(const AsyncRoute& route, const wire::Request& request,
                                              std::string_view body) {
  auto executor = socket_.get_executor();
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Reply)>(
      [&](auto handler) {
        // Resumed through a post, never from inside the route's call, and at most once.
        auto waiting = std::make_shared<std::optional<decltype(handler)>>(std::move(handler));
        route(request, body, [waiting, executor](Reply reply) {
          if (!waiting->has_value()) return;
          auto h = std::move(**waiting);
          waiting->reset();
          asio::post(executor, [h = std::move(h), reply = std::move(reply)]() mutable { std::move(h)(std::move(reply)); });
        });
      },
      asio::use_awaitable);
}

asio::awaitable<bool> Connection::sendReply(const wire::Request& request, Reply reply, bool keepAlive) {
  wire::ResponseHead head;
  head.status = reply.status;
  head.keepAlive = keepAlive;
  head.add("Date", now()).add("Server", "pxedust").add("Content-Type", reply.contentType);
  head.add("Cache-Control", "no-store");
  for (auto& [k, v] : reply.fields) head.add(std::move(k), std::move(v));
  head.contentLength = reply.body.size();
  shared_->stats.responded(head.status);
  std::string out = head.serialize();
  if (request.method != wire::Method::Head) out += reply.body;
  if (!co_await write(out)) co_return false;
  if (request.method != wire::Method::Head) shared_->stats.bytesSent += reply.body.size();
  co_return keepAlive;
}

asio::awaitable<bool> Connection::serveStream(std::shared_ptr<EventStream> stream) {
  wire::ResponseHead head;
  head.status = 200;
  head.closeDelimited = true;
  head.add("Date", now()).add("Server", "pxedust").add("Content-Type", "text/event-stream; charset=utf-8");
  head.add("Cache-Control", "no-store");
  shared_->stats.responded(200);
  if (!co_await write(head.serialize())) co_return false;
  wake_ = std::make_shared<asio::steady_timer>(socket_.get_executor());
  stream->follow(wake_);
  std::uint64_t sent = 0;  // the stream's version last sent
  while (!closed_ && !draining_ && !shared_->stopping && !stream->closed()) {
    std::shared_ptr<const std::string> message;
    if (stream->version() != sent && stream->latest()) {
      sent = stream->version();
      message = stream->latest();
    } else {
      // Between messages the connection is idle: a shutdown ends it at once (drain()).
      phase_ = Phase::Idle;
      deadline_ = Clock::time_point::max();
      wake_->expires_after(EventStream::kKeepAlive);
      std::error_code ec;
      co_await wake_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (closed_ || draining_ || shared_->stopping || stream->closed()) break;
      if (ec != asio::error::operation_aborted) message = std::make_shared<const std::string>(": keep-alive\n\n");
      else continue;  // woken: a new message, probably
    }
    setDeadline(Phase::Send, site_->config.sendTimeout);
    if (!co_await write(*message)) break;
    shared_->stats.bytesSent += message->size();
  }
  wake_.reset();
  co_return false;
}

asio::awaitable<bool> Connection::sendError(int status, bool keepAlive, std::string_view method) {
  wire::ResponseHead head;
  head.status = status;
  head.keepAlive = keepAlive;
  head.add("Date", now()).add("Server", "pxedust").add("Content-Type", "text/plain; charset=utf-8");
  if (status == 405) head.add("Allow", "GET, HEAD");
  const std::string body = fmt::format("{} {}\n", status, wire::reasonPhrase(status));
  head.contentLength = body.size();
  shared_->stats.responded(status);
  std::string out = head.serialize();
  if (method != "HEAD") out += body;
  co_return co_await write(out) && keepAlive;
}

asio::awaitable<bool> Connection::write(std::string_view bytes) {
  std::error_code ec;
  co_await asio::async_write(socket_, asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    fail(expired_ ? Drop::SendTimeout : closed_ ? Drop::Shutdown : Drop::ClientClosed);
    co_return false;
  }
  co_return true;
}

bool Connection::cached(int fd, off_t offset, std::size_t length) {
  if (shared_->readers == nullptr || shared_->nowaitUnsupported || length == 0) return true;
  // Its first, middle and last byte: three reads of one byte, against sendfile's megabyte.
  const off_t last = offset + static_cast<off_t>(length) - 1;
  for (const off_t at : {offset, offset + static_cast<off_t>(length / 2), last}) {
    char byte = 0;
    iovec v{&byte, 1};
    const ssize_t n = ::preadv2(fd, &v, 1, at, RWF_NOWAIT);
    if (n >= 0) continue;  // in the cache (or past the end: sendfile says so)
    if (errno == EAGAIN) return false;
    if (errno == EOPNOTSUPP || errno == EINVAL) shared_->nowaitUnsupported = true;
    return true;  // it cannot tell: send as before
  }
  return true;
}

asio::awaitable<void> Connection::readAhead(int fd, off_t offset, std::size_t length) {
  // Read into the page cache on a reader thread; the loop serves others meanwhile. The file stays
  // open: this coroutine's caller holds it until it resumes.
  auto* readers = shared_->readers;
  co_await asio::async_compose<decltype(asio::use_awaitable), void()>(
      [readers, fd, offset, length](auto& self) {
        asio::post(*readers, [self = std::move(self), fd, offset, length]() mutable {
          static thread_local std::array<char, 256 * 1024> buffer;
          for (std::size_t done = 0; done < length;) {
            const auto n = ::pread(fd, buffer.data(), std::min(buffer.size(), length - done),
                                   offset + static_cast<off_t>(done));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;  // an error or the end: sendfile meets it and says so
            done += static_cast<std::size_t>(n);
          }
          self.complete();
        });
      },
      asio::use_awaitable, socket_);
}

asio::awaitable<bool> Connection::sendFile(int fd, std::uint64_t first, std::uint64_t length, std::uint64_t& sent) {
  off_t offset = static_cast<off_t>(first);
  std::uint64_t sinceYield = 0;
  const auto sendTimeout = site_->config.sendTimeout;
  while (sent < length) {
    if (closed_) {
      fail(Drop::Shutdown);
      co_return false;
    }
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(length - sent, kSendChunk));
    if (!cached(fd, offset, want)) {
      ++shared_->stats.coldReads;
      co_await readAhead(fd, offset, want);
      if (closed_) continue;
    }
    const ssize_t n = ::sendfile(socket_.native_handle(), fd, &offset, want);
    if (n > 0) {
      sent += static_cast<std::uint64_t>(n);
      shared_->stats.bytesSent += static_cast<std::uint64_t>(n);
      sinceYield += static_cast<std::uint64_t>(n);
      setDeadline(Phase::Send, sendTimeout);
      if (sinceYield >= kYieldEvery) {
        sinceYield = 0;
        ++shared_->stats.yields;
        co_await asio::post(socket_.get_executor(), asio::use_awaitable);
      }
      continue;
    }
    if (n == 0) {  // end of file before `length`: the file shrank under us
      fail(Drop::FileShrank);
      PXD_WARN("http.file_shrank", "conn={} peer={} sent={} promised={}", id_, client_.to_string(), sent, length);
      co_return false;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      fail(Drop::ClientClosed);
      co_return false;
    }
    std::error_code ec;
    co_await socket_.async_wait(asio::ip::tcp::socket::wait_write, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      fail(expired_ ? Drop::SendTimeout : closed_ ? Drop::Shutdown : Drop::ClientClosed);
      co_return false;
    }
  }
  co_return true;
}

const inventory::Host* Connection::host(const Site& site) const {
  if (!site.hosts) return nullptr;
  auto ip = inventory::peerIpv4(client_);
  return ip ? site.hosts->byIp(*ip) : nullptr;
}

void Connection::reportFile(boot::FileResult result, std::string_view requested, std::string_view served,
                            std::uint64_t bytes, std::string_view reason) const {
  auto ip = inventory::peerIpv4(client_);
  if (!ip || !shared_->report) return;
  boot::FileEvent event;
  event.protocol = boot::FileProtocol::Http;
  event.result = result;
  event.client = boot::Ipv4(ip->to_uint());
  event.requested = std::string(requested);
  if (served != requested) event.served = std::string(served);
  event.bytes = bytes;
  event.reason = std::string(reason);
  shared_->report(event);
}

}  // namespace pxedust::http
