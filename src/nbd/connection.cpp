// One NBD connection: lifetime, the handshake (framing options and opening disks for the machine),
// the reader of the transmission phase, requests on the disk, the writer and the timers. See
// connection.hpp for the design.
#include "nbd/connection.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "blockstore/buffer_pool.hpp"
#include "common/bytes.hpp"
#include "common/log.hpp"
#include "event/stream_send.hpp"

namespace pxedust::nbd {

namespace {

using Clock = std::chrono::steady_clock;

// Waits until `t` is cancelled (the signal timers never expire on their own).
asio::awaitable<void> waitOn(asio::steady_timer& t) {
  if (t.expiry() != Clock::time_point::max()) t.expires_at(Clock::time_point::max());
  std::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

std::uint32_t be32At(std::span<const std::uint8_t> b, std::size_t at) {
  return std::uint32_t{b[at]} << 24 | std::uint32_t{b[at + 1]} << 16 | std::uint32_t{b[at + 2]} << 8 | b[at + 3];
}

// The export an option names, when it names one and is well formed enough to tell (the machine
// judges the option; this is only a hint for opening the disk first).
std::optional<std::string_view> exportNamedBy(std::uint32_t option, std::span<const std::uint8_t> data) {
  const auto text = [&](std::size_t at, std::size_t n) {
    return std::string_view(reinterpret_cast<const char*>(data.data()) + at, n);
  };
  switch (option) {
    case wire::opt::kExportName:
      return text(0, data.size());
    case wire::opt::kInfo:
    case wire::opt::kGo:
    case wire::opt::kListMetaContext:
    case wire::opt::kSetMetaContext: {
      if (data.size() < 4) return std::nullopt;
      const std::uint32_t n = be32At(data, 0);
      if (n > data.size() - 4) return std::nullopt;
      return text(4, n);
    }
    default:
      return std::nullopt;
  }
}

// A zeroed buffer for WRITE_ZEROES with NO_HOLE (zeros written as data) and for CACHE's reads' size.
constexpr std::size_t kZeroPiece = 1u << 20;
const std::vector<std::uint8_t>& zeroPiece() {
  static const std::vector<std::uint8_t> zeros(kZeroPiece, 0);
  return zeros;
}

std::uint32_t allocationState(blockstore::ExtentState s) {
  switch (s) {
    case blockstore::ExtentState::Base: return wire::state::kHole;  // not in the overlay: read from the base
    case blockstore::ExtentState::Data: return 0;
    case blockstore::ExtentState::Zero: return wire::state::kHole | wire::state::kZero;
  }
  return 0;
}

}  // namespace

Connection::Connection(std::shared_ptr<ServiceContext> ctx, asio::ip::tcp::socket socket,
                       event::ShutdownGate::Ticket ticket, std::uint64_t id)
    : ctx_(std::move(ctx)),
      socket_(std::move(socket)),
      ticket_(std::move(ticket)),
      id_(id),
      writeSignal_(socket_.get_executor()),
      slotSignal_(socket_.get_executor()),
      idleSignal_(socket_.get_executor()),
      timer_(socket_.get_executor()) {
  std::error_code ec;
  auto remote = socket_.remote_endpoint(ec);
  peerAddress_ = remote.address();
  peer_ = ec ? std::string("?") : remote.address().to_string() + ":" + std::to_string(remote.port());
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  // The writer's own send()/splice() calls must never block the loop (event/stream_send.hpp); asio's
  // async operations work the same either way.
  socket_.non_blocking(true, ec);
  started_ = lastRx_ = Clock::now();
  rxBuf_.resize(kReadBuffer);
  if (ctx_->registry) {
    tlsMode_ = ctx_->registry->config().tls;
    tlsCredentials_ = ctx_->registry->config().tlsCredentials;
    if (!tlsCredentials_) tlsMode_ = wire::TlsMode::None;  // cannot happen: the config refuses it
  }
}

Connection::~Connection() = default;

const std::string& Connection::image() const {
  static const std::string none;
  return disk_ ? disk_->image : none;
}

void Connection::start() {
  auto self = shared_from_this();
  machine_ = std::make_unique<wire::HandshakeMachine>(static_cast<wire::ExportCatalog&>(*this));
  if (ctx_->shuttingDown) machine_->beginShutdown();
  queue(machine_->takeOutput());  // the server speaks first: NBDMAGIC, IHAVEOPT, handshake flags
  auto ex = socket_.get_executor();
  asio::co_spawn(ex, [self]() { return self->readLoop(); }, asio::detached);
  asio::co_spawn(ex, [self]() { return self->writeLoop(); }, asio::detached);
  asio::co_spawn(ex, [self]() { return self->timerLoop(); }, asio::detached);
}

// ---- lifetime ---------------------------------------------------------------------------------

void Connection::closeSocket() {
  if (closed_) return;
  closed_ = true;
  std::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  writeSignal_.cancel();
  slotSignal_.cancel();
  idleSignal_.cancel();
  timer_.cancel();
}

void Connection::abort(Drop why, std::string_view reason) {
  if (closed_) return;
  endReason_ = why;
  endDetail_ = std::string(reason);
  stopReading_ = true;
  closeSocket();
}

void Connection::drain(Drop why) {
  if (closed_ || stopReading_) return;
  endReason_ = why;
  endDetail_ = "draining";
  stopReading_ = true;
  if (machine_) machine_->beginShutdown();
  std::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_receive, ec);  // wakes the reader with EOF
}

asio::awaitable<void> Connection::finish() {
  auto self = shared_from_this();
  phase_ = Phase::Closing;
  stopReading_ = true;
  while (inFlight_ > 0) co_await waitOn(idleSignal_);
  if (tlsState_ == TlsState::Up && !closed_ && endReason_ != Drop::TlsFailed) {
    tls_->bye();  // close_notify after the last reply
    writeSignal_.cancel();
  }
  while (!closed_ && !outputIdle()) co_await waitOn(idleSignal_);
  if (tlsState_ == TlsState::Handshaking) {
    ++ctx_->stats.tlsHandshakesFailed;
    PXD_WARN("nbd.tls_failed", "conn={} peer={} reason={} detail={}", id_, peer_, dropName(endReason_),
             log::q(endDetail_));
  }
  ctx_->stats.drop(endReason_);
  if (disk_) {
    reportDisk(boot::DiskKind::Logout, host_, dropName(endReason_));
    if (ctx_->sessions > 0) --ctx_->sessions;
  }
  PXD_INFO("nbd.connection_closed", "conn={} peer={} reason={} detail={} export={} host={}", id_, peer_,
           dropName(endReason_), log::q(endDetail_), log::q(exportName_), log::q(host_));
  closeSocket();
  ctx_->connections.erase(id_);
  machine_.reset();
  ticket_.reset();
}

// ---- reading ----------------------------------------------------------------------------------

void Connection::noteReadEnd(const std::error_code& ec) {
  if (closed_ || stopReading_) return;  // abort() or drain() said why
  endReason_ = Drop::PeerClosed;
  endDetail_ = ec ? ec.message() : "end of stream";
}

asio::awaitable<bool> Connection::readExact(std::uint8_t* dst, std::size_t n) {
  const std::size_t buffered = std::min(rxEnd_ - rxPos_, n);
  if (buffered > 0) {
    std::memcpy(dst, rxBuf_.data() + rxPos_, buffered);
    rxPos_ += buffered;
    dst += buffered;
    n -= buffered;
  }
  if (rxPos_ == rxEnd_) rxPos_ = rxEnd_ = 0;
  while (n > 0) {
    if (closed_) co_return false;
    if (n >= kReadBuffer / 2) {
      // A large payload goes straight into its buffer.
      const std::size_t got = co_await readSome(dst, n);
      if (got == 0) co_return false;
      dst += got;
      n -= got;
      continue;
    }
    const std::size_t got = co_await readSome(rxBuf_.data(), rxBuf_.size());
    if (got == 0) co_return false;
    const std::size_t take = std::min(got, n);
    std::memcpy(dst, rxBuf_.data(), take);
    dst += take;
    n -= take;
    rxPos_ = take;
    rxEnd_ = got;
    if (rxPos_ == rxEnd_) rxPos_ = rxEnd_ = 0;
  }
  lastRx_ = Clock::now();
  co_return true;
}

asio::awaitable<std::size_t> Connection::readSome(std::uint8_t* dst, std::size_t n) {
  if (!tls_) {
    std::error_code ec;
    const std::size_t got =
        co_await socket_.async_read_some(asio::buffer(dst, n), asio::redirect_error(asio::use_awaitable, ec));
    if (ec || got == 0) {
      noteReadEnd(ec);
      co_return 0;
    }
    co_return got;
  }
  while (!closed_) {
    std::size_t got = 0;
    const auto status = tls_->recv(dst, n, got);
    if (tls_->hasOutput()) writeSignal_.cancel();  // an alert, or an answer to a key update
    switch (status) {
      case TlsSession::Status::Ok:
        co_return got;
      case TlsSession::Status::Closed:
        noteReadEnd({});  // close_notify: the client's clean end
        co_return 0;
      case TlsSession::Status::Failed:
        noteTlsFailure(tls_->error());
        co_return 0;
      case TlsSession::Status::NeedInput:
        if (!co_await readTlsInput()) co_return 0;
        break;
    }
  }
  co_return 0;
}

asio::awaitable<bool> Connection::readTlsInput() {
  if (closed_) co_return false;
  auto space = tls_->inputSpace(kReadBuffer);
  std::error_code ec;
  const std::size_t got =
      co_await socket_.async_read_some(asio::buffer(space.data(), space.size()), asio::redirect_error(asio::use_awaitable, ec));
  if (ec || got == 0) {
    noteReadEnd(ec);
    co_return false;
  }
  tls_->inputReceived(got);
  co_return true;
}

void Connection::noteTlsFailure(std::string_view what) {
  if (closed_ || stopReading_) return;  // abort() or drain() said why
  endReason_ = Drop::TlsFailed;
  endDetail_ = std::string(what);
}

asio::awaitable<bool> Connection::discard(std::size_t n) {
  std::array<std::uint8_t, 4096> sink{};
  while (n > 0) {
    const std::size_t k = std::min(n, sink.size());
    if (!co_await readExact(sink.data(), k)) co_return false;
    n -= k;
  }
  co_return true;
}

asio::awaitable<void> Connection::readLoop() {
  auto self = shared_from_this();
  if (co_await handshake()) co_await transmit();
  co_await finish();
}

// ---- handshake --------------------------------------------------------------------------------

bool Connection::feedMachine(std::span<const std::uint8_t> bytes, bool& done) {
  auto step = machine_->feed(bytes);
  queue(machine_->takeOutput());
  switch (step.event) {
    case wire::HandshakeEvent::NeedMore:
      return true;
    case wire::HandshakeEvent::Complete:
      done = true;
      return true;
    case wire::HandshakeEvent::Abort:
      endReason_ = Drop::Aborted;
      endDetail_ = "NBD_OPT_ABORT";
      return false;
    case wire::HandshakeEvent::StartTls:
      tlsRequested_ = true;
      return true;
    case wire::HandshakeEvent::Disconnect:
      endReason_ = Drop::HandshakeFailed;
      endDetail_ = std::string(wire::disconnectReasonName(machine_->disconnectReason()));
      return false;
  }
  return false;
}

asio::awaitable<bool> Connection::feed(std::span<const std::uint8_t> bytes, bool& done) {
  if (!feedMachine(bytes, done)) co_return false;
  if (!tlsRequested_) co_return true;
  tlsRequested_ = false;
  co_return co_await startTls();
}

asio::awaitable<bool> Connection::startTls() {
  auto self = shared_from_this();
  // The ACK goes out in the clear: wait until the writer has sent it, then encrypt everything after.
  while (!closed_ && !outputIdle()) co_await waitOn(idleSignal_);
  if (closed_) co_return false;
  auto session = TlsSession::server(tlsCredentials_);
  if (!session) {
    endReason_ = Drop::TlsFailed;
    endDetail_ = session.error().message;
    co_return false;
  }
  tls_ = std::move(*session);
  tlsState_ = TlsState::Handshaking;
  // What the client sent after the option (it should have waited for the ACK) is TLS's first input.
  if (rxEnd_ > rxPos_) tls_->input(std::span(rxBuf_.data() + rxPos_, rxEnd_ - rxPos_));
  rxPos_ = rxEnd_ = 0;
  for (;;) {
    const auto status = tls_->handshake();
    if (tls_->hasOutput()) writeSignal_.cancel();
    if (status == TlsSession::Status::Ok) break;
    if (status != TlsSession::Status::NeedInput) {
      noteTlsFailure(tls_->error());
      co_return false;
    }
    if (!co_await readTlsInput()) {
      if (endReason_ == Drop::PeerClosed)
        noteTlsFailure("the client closed the connection in the TLS handshake (" + endDetail_ + ")");
      co_return false;
    }
  }
  tlsState_ = TlsState::Up;
  pskIdentity_ = tls_->pskIdentity();
  ++ctx_->stats.tlsHandshakes;
  machine_->tlsStarted();
  PXD_INFO("nbd.tls_started", "conn={} peer={} session={} psk_identity={}", id_, peer_, log::q(tls_->description()),
           log::q(pskIdentity_.value_or("")));
  co_return true;
}

asio::awaitable<bool> Connection::handshake() {
  const std::uint32_t cap = wire::HandshakeLimits{}.maxOptionLength;
  bool done = false;
  std::array<std::uint8_t, 16> head{};
  if (!co_await readExact(head.data(), 4)) co_return false;
  if (!co_await feed(std::span(head.data(), 4), done)) co_return false;
  std::vector<std::uint8_t> option;
  while (!done) {
    if (stopReading_ || closed_) co_return false;
    if (!co_await readExact(head.data(), head.size())) co_return false;
    currentOption_ = be32At(head, 8);
    const std::uint32_t length = be32At(head, 12);
    if (length <= cap) {
      option.assign(head.begin(), head.end());
      option.resize(head.size() + length);
      if (!co_await readExact(option.data() + head.size(), length)) co_return false;
      if (be32At(head, 0) == static_cast<std::uint32_t>(wire::kOptionMagic >> 32) &&
          be32At(head, 4) == static_cast<std::uint32_t>(wire::kOptionMagic))
        co_await prepareExport(currentOption_, std::span(option).subspan(head.size()));
      if (closed_) co_return false;
      if (!co_await feed(option, done)) co_return false;
      continue;
    }
    // Longer than the machine buffers: it drains it (or hangs up at the header); fed in pieces.
    if (!co_await feed(head, done)) co_return false;
    std::uint32_t left = length;
    option.resize(cap);
    while (left > 0 && !done) {
      const std::uint32_t k = std::min(left, cap);
      if (!co_await readExact(option.data(), k)) co_return false;
      if (!co_await feed(std::span(option.data(), k), done)) co_return false;
      left -= k;
    }
  }
  // GO or EXPORT_NAME succeeded: the last lookup found the export it chose.
  const auto& result = machine_->result();
  if (!chosen_ || chosenName_ != result.exportName) {
    endReason_ = Drop::HandshakeFailed;
    endDetail_ = "the export chosen is not the one looked up";
    co_return false;
  }
  disk_ = std::move(chosen_);
  exportName_ = result.exportName;
  host_ = chosenHost_;
  props_ = result.properties();
  for (const auto& m : result.metaContexts)
    if (m.name == wire::kBaseAllocation) contextId_ = m.id;
  const bool viaExportName = result.viaExportName;
  machine_.reset();  // `result` goes with it
  openErrors_.clear();
  phase_ = Phase::Transmission;
  ++ctx_->sessions;
  ++ctx_->stats.sessionsStarted;
  PXD_INFO("nbd.session", "conn={} peer={} export={} host={} image={} size={} flags={:#06x} structured={} "
           "base_allocation={} via={} tls={}",
           id_, peer_, log::q(exportName_), log::q(host_), log::q(disk_->image), props_.size, props_.flags,
           props_.structuredReplies, contextId_ != 0, viaExportName ? "export_name" : "go",
           tlsState_ != TlsState::Up ? "none" : pskIdentity_ ? "psk" : "x509");
  reportDisk(boot::DiskKind::Login, host_, {});
  co_return true;
}

// An image export: opened for this connection (the newest version is the one at this moment).
asio::awaitable<void> Connection::prepareImage(std::string name) {
  auto self = shared_from_this();
  bool refused = false;
  auto image = ctx_->registry->findImage(name, client(), refused);
  if (!image || preparedImages_.contains(name)) co_return;
  auto disk = co_await ctx_->disks->openImage(*image);
  if (!disk) {
    PXD_ERROR("nbd.image_open_failed", "conn={} export={} error={}", id_, log::q(name), log::q(disk.error().message));
    openErrors_[name] = disk.error().message;
  } else {
    preparedImages_[name] = *disk;
  }
}

asio::awaitable<void> Connection::prepareExport(std::uint32_t option, std::span<const std::uint8_t> data) {
  auto self = shared_from_this();
  auto name = exportNamedBy(option, data);
  if (!name || !ctx_->registry || !ctx_->disks) co_return;
  const Export* e = ctx_->registry->find(*name);
  if (!e) {
    co_await prepareImage(std::string(*name));
    co_return;
  }
  if (!ctx_->registry->permits(*e, client()) || ctx_->disks->find(*e)) co_return;
  Export copy = *e;  // a reload may replace the registry while the disk opens
  auto disk = co_await ctx_->disks->open(copy);
  if (!disk) {
    PXD_ERROR("nbd.disk_open_failed", "conn={} export={} host={} error={}", id_, log::q(copy.name),
              log::q(copy.host.name), log::q(disk.error().message));
    openErrors_[copy.name] = disk.error().message;
  }
}

std::vector<wire::ExportListing> Connection::listExports(bool /*tlsActive*/) {
  std::vector<wire::ExportListing> out;
  if (!ctx_->registry) return out;
  for (const auto& [name, e] : ctx_->registry->exports())
    if (ctx_->registry->permits(e, client())) out.push_back({name, "host " + e.host.name + "'s disk"});
  for (const auto& name : ctx_->registry->imagesFor(client()))
    out.push_back({name, "base image " + name.substr(7) + ", newest version, read-only"});
  return out;
}

wire::ExportLookup Connection::refuse(wire::LookupStatus status, const Export* e, std::string_view reason) {
  if (currentOption_ == wire::opt::kGo || currentOption_ == wire::opt::kExportName) {
    ++ctx_->stats.exportsRefused;
    PXD_INFO("nbd.export_refused", "conn={} peer={} option={} host={} reason={}", id_, peer_,
             wire::optionName(currentOption_), log::q(e ? e->host.name : std::string()), log::q(reason));
    reportDisk(boot::DiskKind::Failed, e ? std::string_view(e->host.name) : std::string_view(), reason);
  }
  return wire::ExportLookup{status, {}};
}

wire::ExportLookup Connection::lookupImage(std::string_view name) {
  bool refused = false;
  auto e = ctx_->registry ? ctx_->registry->findImage(name, client(), refused) : std::nullopt;
  if (!e) {
    if (refused) return refuse(wire::LookupStatus::NotPermitted, nullptr, "address not allowed for this image");
    return refuse(wire::LookupStatus::NotFound, nullptr, "no such export");
  }
  auto it = preparedImages_.find(name);
  if (it == preparedImages_.end()) {
    auto err = openErrors_.find(name);
    std::string why = "cannot open the image: " + (err != openErrors_.end() ? err->second : std::string("not open"));
    return refuse(wire::LookupStatus::NotPermitted, &*e, why);
  }
  chosen_ = it->second;
  chosenName_ = std::string(name);
  chosenHost_ = e->host.name;
  wire::ExportLookup found{wire::LookupStatus::Found, chosen_->info};
  found.info.name = e->name;
  found.info.description = fmt::format("base image {} v{}, read-only", chosen_->image, chosen_->version);
  return found;
}

wire::ExportLookup Connection::lookupExport(std::string_view name, bool /*tlsActive*/) {
  const Export* e = ctx_->registry ? ctx_->registry->find(name) : nullptr;
  if (!e) return lookupImage(name);
  if (auto why = ctx_->registry->refusal(*e, client()); !why.empty())
    return refuse(wire::LookupStatus::NotPermitted, e, why);
  auto disk = ctx_->disks ? ctx_->disks->find(*e) : nullptr;
  if (!disk) {
    auto it = openErrors_.find(name);
    std::string why = "cannot open the disk: " + (it != openErrors_.end() ? it->second : std::string("not open"));
    return refuse(wire::LookupStatus::NotPermitted, e, why);
  }
  chosen_ = disk;
  chosenName_ = std::string(name);
  chosenHost_ = e->host.name;
  wire::ExportLookup found{wire::LookupStatus::Found, disk->info};
  found.info.name = e->name;
  found.info.description = "host " + e->host.name + "'s disk (image " + disk->image + ")";
  return found;
}

// ---- transmission -----------------------------------------------------------------------------

asio::awaitable<void> Connection::transmit() {
  std::array<std::uint8_t, wire::kRequestHeaderSize> head{};
  const std::size_t maxInFlight = ctx_->registry ? ctx_->registry->config().maxInFlight : 128;
  while (!stopReading_ && !closed_) {
    if (!co_await readExact(head.data(), head.size())) break;
    auto req = wire::parseRequest(head);
    if (!req) {
      abort(Drop::BadRequest, req.error().message);
      break;
    }
    ++ctx_->stats.requests[commandSlot(req->type)];
    auto verdict = wire::validateRequest(props_, *req, ctx_->shuttingDown);
    if (verdict.kind == wire::Verdict::Kind::Disconnect) {
      abort(Drop::BadRequest, verdict.reason);
      break;
    }
    if (verdict.kind == wire::Verdict::Kind::ErrorReply) {
      PXD_DEBUG("nbd.request_refused", "conn={} command={} offset={} length={} error={} reason={}", id_,
                wire::commandName(req->type), req->offset, req->length, wire::errnoName(verdict.error),
                log::q(verdict.reason));
      if (verdict.drain > 0) {
        if (!co_await discard(verdict.drain)) break;
        ctx_->stats.drained += verdict.drain;
      }
      queueError(req->cookie, verdict.error, verdict.reason);
      continue;
    }
    if (req->type == wire::cmd::kDisc) {
      endReason_ = Drop::Disconnect;
      endDetail_ = "NBD_CMD_DISC";
      stopReading_ = true;
      break;
    }
    // The buffer this request holds while in flight: READ data, WRITE payload, CACHE's piece.
    std::size_t cost = 0;
    if (req->type == wire::cmd::kRead || req->type == wire::cmd::kWrite) cost = req->length;
    else if (req->type == wire::cmd::kCache) cost = std::min<std::size_t>(req->length, kZeroPiece);
    while (!closed_ && (inFlight_ >= maxInFlight || (inFlight_ > 0 && inFlightBytes_ + cost > kInFlightBudget) ||
                        outBytes_ > kWriteHighWater))
      co_await waitOn(slotSignal_);
    if (closed_) break;
    std::vector<std::uint8_t> buffer;
    if (req->type == wire::cmd::kWrite) {
      // Bounded by validateRequest(): at most the maximum payload (32 MiB). From the pool: no
      // zero-fill of bytes the payload overwrites, no fresh pages per request.
      buffer = blockstore::BufferPool::take(req->length);
      if (!co_await readExact(buffer.data(), buffer.size())) {
        blockstore::BufferPool::give(std::move(buffer));
        break;
      }
    }
    ++inFlight_;
    inFlightBytes_ += cost;
    auto self = shared_from_this();
    asio::co_spawn(
        socket_.get_executor(),
        [self, r = *req, b = std::move(buffer), cost]() mutable { return self->execute(r, std::move(b), cost); },
        asio::detached);
  }
}

void Connection::requestDone(std::size_t cost) {
  if (inFlight_ > 0) --inFlight_;
  inFlightBytes_ -= std::min(inFlightBytes_, cost);
  slotSignal_.cancel();
  if (inFlight_ == 0) idleSignal_.cancel();
}

asio::awaitable<Result<void>> Connection::writeZeroData(std::uint64_t offset, std::uint64_t length, bool fua) {
  auto& dev = *disk_->device;
  const auto& zeros = zeroPiece();
  while (length > 0) {
    const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(length, zeros.size()));
    auto r = co_await dev.asyncWrite(offset, std::span(zeros.data(), k), blockstore::WriteFlags{fua},
                                     asio::use_awaitable);
    if (!r) co_return r;
    offset += k;
    length -= k;
  }
  co_return Result<void>{};
}

asio::awaitable<Result<void>> Connection::cacheRange(std::uint64_t offset, std::uint64_t length) {
  // Reads the range into the page cache, a piece at a time, up to one maximum payload: CACHE is
  // advisory ("the server MAY ... ignore"), and this keeps its cost that of one READ.
  auto& dev = *disk_->device;
  length = std::min<std::uint64_t>(length, kMaxPayload);
  std::vector<std::uint8_t> piece(static_cast<std::size_t>(std::min<std::uint64_t>(length, kZeroPiece)));
  while (length > 0 && !closed_) {
    const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(length, piece.size()));
    auto r = co_await dev.asyncRead(offset, std::span(piece.data(), k), asio::use_awaitable);
    if (!r) co_return r;
    offset += k;
    length -= k;
  }
  co_return Result<void>{};
}

// GCC 12 warns of a mismatched operator delete for this coroutine's frame (many suspension points):
// a false positive of its coroutine lowering (asio's awaitable_frame_base allocates and frees the
// frame, both sized; GCC bug 109224 family), silenced for this function alone, as scsi/lun.cpp does.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
asio::awaitable<void> Connection::execute(wire::Request req, std::vector<std::uint8_t> buffer, std::size_t cost) {
  auto self = shared_from_this();
  auto disk = disk_;  // kept open until the request ends, whatever happens to the session
  auto& dev = *disk->device;
  const bool fua = (req.flags & wire::cmdflag::kFua) != 0;
  Result<void> r;
  std::vector<std::uint8_t> status;  // BLOCK_STATUS: the reply chunk
  std::shared_ptr<blockstore::PipeChain> pipe;  // a spliced READ's data
  switch (req.type) {
    case wire::cmd::kRead:
      if (!tls_ && req.length >= kSpliceMin && dev.device().canSpliceRead()) {
        // Large reads as page references: no copy into our memory, none from it into the socket.
        if (auto chain = blockstore::PipeChain::take(req.length)) {
          r = co_await dev.asyncSpliceRead(req.offset, req.length, *chain, asio::use_awaitable);
          if (r) {
            pipe = std::move(chain);
            break;
          }
          // A file system that cannot splice, or out of pipes: the copying read decides (and
          // reports a real read error the same way).
          PXD_DEBUG("nbd.splice_read_failed", "conn={} error={}", id_, log::q(r.error().message));
        }
      }
      buffer = blockstore::BufferPool::take(req.length);
      r = co_await dev.asyncRead(req.offset, std::span(buffer), asio::use_awaitable);
      break;
    case wire::cmd::kWrite:
      r = co_await dev.asyncWrite(req.offset, std::span<const std::uint8_t>(buffer), blockstore::WriteFlags{fua},
                                  asio::use_awaitable);
      if (r) ctx_->stats.bytesIn += req.length;
      blockstore::BufferPool::give(std::move(buffer));
      break;
    case wire::cmd::kFlush:
      r = co_await dev.asyncFlush(asio::use_awaitable);
      break;
    case wire::cmd::kTrim:
      r = co_await dev.asyncTrim(req.offset, req.length, asio::use_awaitable);
      if (r && fua) r = co_await dev.asyncFlush(asio::use_awaitable);
      break;
    case wire::cmd::kWriteZeroes: {
      const bool noHole = (req.flags & wire::cmdflag::kNoHole) != 0;
      const bool fast = (req.flags & wire::cmdflag::kFastZero) != 0;
      if (noHole || !disk->caps.canZero) {
        // The device's zeroing deallocates (reads back as a hole): with NO_HOLE zeros are written as
        // data, which is no faster than a WRITE, so FAST_ZERO fails at once as the spec asks.
        if (fast) r = Error{"zeroing without a hole is not fast", EOPNOTSUPP};
        else r = co_await writeZeroData(req.offset, req.length, fua);
      } else {
        r = co_await dev.asyncWriteZeroes(req.offset, req.length, blockstore::WriteFlags{fua}, asio::use_awaitable);
      }
      break;
    }
    case wire::cmd::kCache:
      r = co_await cacheRange(req.offset, req.length);
      break;
    case wire::cmd::kBlockStatus: {
      if (req.length == 0) {
        r = Error{"zero-length block status", EINVAL};
        break;
      }
      auto extents = co_await dev.asyncExtents(req.offset, req.length, asio::use_awaitable);
      if (!extents) {
        r = extents.error();
        break;
      }
      std::vector<wire::BlockDescriptor> descriptors;
      for (const auto& x : *extents) {
        if (x.length == 0) continue;
        const std::uint32_t st = allocationState(x.state);
        // Each extent lies inside the request, so its length fits the request's 32 bits.
        const auto len = static_cast<std::uint32_t>(std::min<std::uint64_t>(x.length, req.length));
        if (!descriptors.empty() && descriptors.back().status == st &&
            descriptors.back().length <= UINT32_MAX - len) {
          descriptors.back().length += len;
        } else {
          descriptors.push_back({len, st});
        }
        if (descriptors.size() >= wire::kMaxExtentsPerChunk) break;
      }
      if ((req.flags & wire::cmdflag::kReqOne) != 0 && descriptors.size() > 1) descriptors.resize(1);
      auto chunk = wire::blockStatusChunk(req.cookie, contextId_, descriptors, true);
      if (!chunk) r = Error{chunk.error().message, EIO};
      else status = std::move(*chunk);
      break;
    }
    default:
      r = Error{"unknown command", EINVAL};
      break;
  }
  requestDone(cost);
  if (closed_) co_return;
  if (!r) {
    PXD_DEBUG("nbd.request_failed", "conn={} command={} offset={} length={} error={}", id_,
              wire::commandName(req.type), req.offset, req.length, log::q(r.error().message));
    queueError(req.cookie, wire::toNbdError(r.error().code), r.error().message);
    co_return;
  }
  if (req.type == wire::cmd::kBlockStatus) {
    queue(std::move(status));
    co_return;
  }
  if (req.type == wire::cmd::kRead) {
    ctx_->stats.bytesOut += req.length;
    std::vector<std::uint8_t> head;
    if (!props_.structuredReplies) {
      auto h = wire::simpleReply(req.cookie, wire::Errno::None);
      head.assign(h.begin(), h.end());
    } else if (req.length > 0) {
      if (auto h = wire::offsetDataHeader(req.cookie, req.offset, req.length, true)) head.assign(h->begin(), h->end());
    }
    if (!head.empty()) {
      if (pipe) queue(std::move(head), std::move(pipe), req.length);
      else queue(std::move(head), std::move(buffer));
      co_return;
    }
  }
  if (props_.structuredReplies) {
    auto h = wire::noneChunk(req.cookie);
    queue({h.begin(), h.end()});
  } else {
    auto h = wire::simpleReply(req.cookie, wire::Errno::None);
    queue({h.begin(), h.end()});
  }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// ---- output -----------------------------------------------------------------------------------

void Connection::queue(std::vector<std::uint8_t> head, std::vector<std::uint8_t> data) {
  if (closed_ || (head.empty() && data.empty())) {
    blockstore::BufferPool::give(std::move(data));
    return;
  }
  outBytes_ += head.size() + data.size();
  outq_.push_back(OutMessage{std::move(head), std::move(data), nullptr, 0});
  writeSignal_.cancel();
}

void Connection::queue(std::vector<std::uint8_t> head, std::shared_ptr<blockstore::PipeChain> pipe, std::size_t length) {
  if (closed_) return;
  outBytes_ += head.size() + length;
  outq_.push_back(OutMessage{std::move(head), {}, std::move(pipe), length});
  writeSignal_.cancel();
}

void Connection::popOutput(std::size_t count) {
  for (std::size_t i = 0; i < count && !outq_.empty(); ++i) {
    blockstore::BufferPool::give(std::move(outq_.front().data));
    outq_.pop_front();
  }
}

asio::awaitable<std::error_code> Connection::sendSpliced(OutMessage& m, bool moreFollows) {
  // The header is always followed by its data: MSG_MORE keeps it out of a segment of its own.
  if (auto ec = co_await event::sendAll(socket_, m.head.data(), m.head.size(), true, closed_)) co_return ec;
  auto& pipe = *m.pipe;
  co_return co_await event::sendStream(socket_, m.pipeLength, closed_, [&pipe, moreFollows](int fd, std::size_t left) {
    return pipe.spliceTo(fd, left, moreFollows);
  });
}

void Connection::queueError(std::uint64_t cookie, wire::Errno error, std::string_view message) {
  ++ctx_->stats.errors[errorSlot(error)];
  auto reply = wire::errorReply(cookie, error, props_.structuredReplies, message);
  if (reply) queue(std::move(*reply));
}

asio::awaitable<void> Connection::writeLoop() {
  auto self = shared_from_this();
  std::vector<asio::const_buffer> bufs;
  std::vector<std::span<const std::uint8_t>> pieces;  // the same, for TLS to encrypt
  while (true) {
    while (outq_.empty() && !(tls_ && tls_->hasOutput()) && !closed_) co_await waitOn(writeSignal_);
    if (closed_) break;
    if (!outq_.empty() && outq_.front().pipe) {
      // Never with TLS (execute() splices only on plain connections).
      OutMessage& m = outq_.front();
      const std::size_t bytes = m.head.size() + m.pipeLength;
      writing_ = true;
      writeSince_ = Clock::now();
      std::error_code ec = co_await sendSpliced(m, outq_.size() > 1);
      writing_ = false;
      if (ec) {
        if (!closed_) abort(Drop::PeerClosed, "write: " + ec.message());
        break;
      }
      popOutput(1);
      outBytes_ -= std::min(outBytes_, bytes);
      if (outBytes_ <= kWriteHighWater) slotSignal_.cancel();
      if (outputIdle()) idleSignal_.cancel();
      continue;
    }
    bufs.clear();
    pieces.clear();
    std::size_t count = 0, bytes = 0;
    for (const auto& m : outq_) {
      if (count == 64 || bytes > (4u << 20) || m.pipe) break;
      pieces.emplace_back(m.head);
      if (!m.data.empty()) pieces.emplace_back(m.data);
      bytes += m.head.size() + m.data.size();
      ++count;
    }
    if (tls_) {
      // Encrypted after the session's own records (handshake, alerts), in the order GnuTLS made them.
      if (count > 0) {
        if (auto r = tls_->send(pieces); !r) {
          if (!closed_) abort(Drop::TlsFailed, r.error().message);
          break;
        }
      }
      tls_->takeOutput(wire_);
      bufs.emplace_back(wire_.data(), wire_.size());
    } else {
      for (const auto& p : pieces) bufs.emplace_back(p.data(), p.size());
    }
    std::error_code ec;
    writing_ = true;
    writeSince_ = Clock::now();
    co_await asio::async_write(socket_, bufs, asio::redirect_error(asio::use_awaitable, ec));
    writing_ = false;
    if (ec) {
      if (!closed_) abort(Drop::PeerClosed, "write: " + ec.message());
      break;
    }
    popOutput(count);
    // A large batch's ciphertext (a 32 MiB READ) is not kept for the connection's life.
    if (wire_.capacity() > kReadBuffer * 4) std::vector<std::uint8_t>().swap(wire_);
    outBytes_ -= std::min(outBytes_, bytes);
    if (outBytes_ <= kWriteHighWater) slotSignal_.cancel();
    if (outputIdle()) idleSignal_.cancel();
  }
  writing_ = false;
  outq_.clear();
  outBytes_ = 0;
  idleSignal_.cancel();
}

asio::awaitable<void> Connection::timerLoop() {
  auto self = shared_from_this();
  while (!closed_) {
    const auto registry = ctx_->registry;  // a reload may swap it while we wait
    const Config defaults;
    const Config& cfg = registry ? registry->config() : defaults;
    timer_.expires_after(std::chrono::milliseconds(250));
    std::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (closed_) break;
    const auto now = Clock::now();
    if (phase_ == Phase::Handshake && now - started_ > cfg.handshakeTimeout) {
      abort(Drop::HandshakeTimeout, tlsState_ == TlsState::Handshaking ? "TLS handshake not done in time"
                                                                        : "no NBD_OPT_GO in time");
    } else if (phase_ == Phase::Transmission && cfg.idleTimeout.count() > 0 && inFlight_ == 0 && outq_.empty() &&
               now - lastRx_ > cfg.idleTimeout) {
      abort(Drop::IdleTimeout, "idle");
    } else if (writing_ && now - writeSince_ > cfg.sendTimeout) {
      // In any phase: a handshake reply or the last replies of a closing connection wait the same way.
      abort(Drop::SendTimeout, "the client stopped reading");
    }
  }
}

void Connection::reportDisk(boot::DiskKind kind, std::string_view host, std::string_view reason) {
  if (!ctx_->events) return;
  const auto v4 = inventory::peerIpv4(peerAddress_);
  if (!v4) return;  // hosts are tracked by IPv4 address
  boot::DiskEvent e;
  e.protocol = boot::DiskProtocol::Nbd;
  e.kind = kind;
  e.client = boot::Ipv4(v4->to_uint());
  e.hostName = host;
  e.reason = reason;
  ctx_->events(boot::Event{{}, std::move(e)});
}

}  // namespace pxedust::nbd
