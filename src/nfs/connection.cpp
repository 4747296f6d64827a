// One ONC RPC connection over TCP; see connection.hpp.
#include "nfs/connection.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <algorithm>

#include <fmt/format.h>

#include "common/log.hpp"

namespace pxedust::nfs {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kReadChunk = 64u << 10;
constexpr std::size_t kMaxBatch = 64;  // buffers per gathered write (a reply is one or two)

asio::awaitable<void> waitOn(asio::steady_timer& t) {
  if (t.expiry() != Clock::time_point::max()) t.expires_at(Clock::time_point::max());
  std::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
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
      timer_(socket_.get_executor()) {
  std::error_code ec;
  auto remote = socket_.remote_endpoint(ec);
  peerAddress_ = remote.address();
  peerPort_ = remote.port();
  peer_ = ec ? std::string("?") : remote.address().to_string() + ":" + std::to_string(remote.port());
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  rx_.resize(kReadChunk);
}

Connection::~Connection() = default;

void Connection::start() {
  auto self = shared_from_this();
  auto ex = socket_.get_executor();
  asio::co_spawn(ex, [self]() { return self->readLoop(); }, asio::detached);
  asio::co_spawn(ex, [self]() { return self->writeLoop(); }, asio::detached);
  asio::co_spawn(ex, [self]() { return self->timerLoop(); }, asio::detached);
}

void Connection::closeSocket() {
  if (closed_) return;
  closed_ = true;
  std::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  writeSignal_.cancel();
  slotSignal_.cancel();
  timer_.cancel();
}

void Connection::abort(Drop why, std::string_view detail) {
  if (closed_) return;
  endReason_ = why;
  endDetail_ = std::string(detail);
  stopReading_ = true;
  closeSocket();
  finish();
}

void Connection::drain() {
  if (closed_ || stopReading_) return;
  endReason_ = Drop::Shutdown;
  endDetail_ = "draining";
  stopReading_ = true;
  std::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_receive, ec);  // wakes the reader with EOF
}

// The end, once: the reader is done and nothing is in flight or queued (or the socket is closed).
void Connection::finish() {
  if (finished_) return;
  if (!closed_ && (!readerDone_ || inFlight_ > 0 || !outq_.empty() || writing_)) return;
  finished_ = true;
  ctx_->stats.drop(endReason_);
  PXD_DEBUG("nfs.connection_closed", "conn={} peer={} reason={} detail={}", id_, peer_,
            kDropNames[static_cast<std::size_t>(endReason_)], log::q(endDetail_));
  closeSocket();
  ctx_->connections.erase(id_);
  ticket_.reset();
}

asio::awaitable<void> Connection::readLoop() {
  auto self = shared_from_this();
  while (!stopReading_ && !closed_) {
    std::error_code ec;
    const std::size_t got =
        co_await socket_.async_read_some(asio::buffer(rx_), asio::redirect_error(asio::use_awaitable, ec));
    if (ec || got == 0) break;
    std::span<const std::uint8_t> in(rx_.data(), got);
    while (!in.empty() && !closed_) {
      const auto fed = framer_.feed(in);
      in = in.subspan(fed.consumed);
      if (fed.status == wire::RecordStatus::NeedMore) break;
      if (fed.status != wire::RecordStatus::Record) {
        abort(Drop::BadRecord, wire::recordStatusName(fed.status));
        break;
      }
      while (!closed_ && inFlight_ >= ctx_->generation->config.maxInFlight) co_await waitOn(slotSignal_);
      if (closed_) break;
      ++inFlight_;
      std::vector<std::uint8_t> record(framer_.record().begin(), framer_.record().end());
      asio::co_spawn(socket_.get_executor(), [self, r = std::move(record)]() mutable { return self->run(std::move(r)); },
                     asio::detached);
    }
  }
  readerDone_ = true;
  finish();
}

asio::awaitable<void> Connection::run(std::vector<std::uint8_t> record) {
  auto self = shared_from_this();
  wire::CallOutcome decoded;
  auto answered = answerRecord(*ctx_, record, decoded, ctx_->procedures, peerAddress_, peerPort_);
  CallAnswer a = co_await std::move(answered);
  if (inFlight_ > 0) --inFlight_;
  slotSignal_.cancel();
  if (!a.noReply) {
    accountAnswer(*ctx_, decoded, a, peerAddress_, fmt::format("tcp/{}", id_));
    queueReply(std::move(a));
  }
  finish();
}

void Connection::queueReply(CallAnswer&& a) {
  if (closed_) return;
  auto head = encodeReplyHead(a, wire::kRecordMarkSize);
  if (head.empty()) return;
  const auto mark = wire::recordMark(static_cast<std::uint32_t>(head.size() - wire::kRecordMarkSize + a.body.size()));
  std::copy(mark.begin(), mark.end(), head.begin());
  // The header and the body go out as two buffers of one gathered write, in this order: nothing
  // else is queued between them.
  outq_.push_back(std::move(head));
  if (!a.body.empty()) outq_.push_back(std::move(a.body));
  writeSignal_.cancel();
}

asio::awaitable<void> Connection::writeLoop() {
  auto self = shared_from_this();
  std::vector<asio::const_buffer> bufs;
  while (true) {
    while (outq_.empty() && !closed_) {
      finish();
      if (finished_) co_return;
      co_await waitOn(writeSignal_);
    }
    if (closed_) break;
    bufs.clear();
    std::size_t count = 0;
    for (const auto& m : outq_) {
      if (count == kMaxBatch) break;
      bufs.emplace_back(m.data(), m.size());
      ++count;
    }
    std::error_code ec;
    writing_ = true;
    writeSince_ = Clock::now();
    co_await asio::async_write(socket_, bufs, asio::redirect_error(asio::use_awaitable, ec));
    writing_ = false;
    if (ec) {
      abort(Drop::PeerClosed, "write: " + ec.message());
      break;
    }
    for (std::size_t i = 0; i < count && !outq_.empty(); ++i) outq_.pop_front();
  }
  outq_.clear();
  finish();
}

asio::awaitable<void> Connection::timerLoop() {
  auto self = shared_from_this();
  while (!closed_) {
    timer_.expires_after(std::chrono::milliseconds(250));
    std::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (closed_) break;
    if (writing_ && Clock::now() - writeSince_ > ctx_->generation->config.sendTimeout)
      abort(Drop::SendTimeout, "the client stopped reading");
  }
}

}  // namespace pxedust::nfs
