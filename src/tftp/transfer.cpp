#include "tftp/transfer.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <cerrno>

#include "common/log.hpp"

namespace pxedust::tftp {
namespace {
using Clock = std::chrono::steady_clock;

std::string endpointText(const asio::ip::udp::endpoint& ep) {
  return ep.address().is_v6() ? fmt::format("[{}]:{}", ep.address().to_string(), ep.port())
                              : fmt::format("{}:{}", ep.address().to_string(), ep.port());
}
constexpr std::string_view stateName(int s) {
  constexpr std::string_view kNames[] = {"await_oack_ack", "sending", "done"};
  return kNames[s];
}
}  // namespace

Transfer::Transfer(std::shared_ptr<TransferShared> shared, std::unique_ptr<event::UdpSocket> socket,
                   TransferSetup setup, event::ShutdownGate::Ticket ticket)
    : shared_(std::move(shared)),
      socket_(std::move(socket)),
      setup_(std::move(setup)),
      ticket_(std::move(ticket)),
      timer_(*shared_->io) {}

void Transfer::start() {
  asio::co_spawn(*shared_->io, [self = shared_from_this()]() { return self->run(); }, asio::detached);
}

void Transfer::abort(std::string_view reason) {
  aborted_ = true;
  abortReason_ = reason;
  socket_->cancel();
}

std::optional<boot::FileEvent> Transfer::fileEvent(const TransferEnd& end) const {
  if (!setup_.client.address().is_v4()) return std::nullopt;
  boot::FileEvent e;
  e.protocol = boot::FileProtocol::Tftp;
  e.result = end.ok ? boot::FileResult::Completed
                    : (end.closedByClient ? boot::FileResult::Aborted : boot::FileResult::Failed);
  e.client = boot::Ipv4(setup_.client.address().to_v4().to_uint());
  e.requested = setup_.requested;
  if (setup_.path != setup_.requested) e.served = setup_.path;
  e.bytes = end.bytes;
  e.reason = end.reason;
  e.blksize = negotiation_.blksize;
  e.windowsize = negotiation_.windowsize;
  return e;
}

void Transfer::setState(State s) {
  PXD_TRACE("tftp.state", "client={} from={} to={}", endpointText(setup_.client), stateName(static_cast<int>(state_)),
            stateName(static_cast<int>(s)));
  state_ = s;
}

asio::awaitable<bool> Transfer::prepareNetascii() {
  if (setup_.fileSize > kMaxNetasciiSource) {
    sendError(wire::ErrorCode::NotDefined, "File too large for netascii mode", setup_.client);
    finish(false, "netascii_too_large");
    co_return false;
  }
  // Read the whole file through the pool, then convert: the size the client is told (tsize) and
  // the bytes it receives are those of the converted text.
  // Buffered: the conversion reads the bytes in user space, which a mapping must never be.
  FileWindow raw(setup_.file.get(), setup_.fileSize, 65464, 1 + static_cast<std::uint32_t>(setup_.fileSize / 65464),
                 FileWindow::Mode::Buffered);
  if (setup_.fileSize > 0) {
    auto r = co_await raw.fill(1, *shared_->pool);
    if (!r) {
      sendError(wire::ErrorCode::NotDefined, "Read error", setup_.client);
      finish(false, r.error().message);
      co_return false;
    }
  }
  std::vector<std::uint8_t> whole;
  whole.reserve(setup_.fileSize);
  for (std::uint64_t b = 1; b <= raw.blockCount(); ++b) {
    auto s = raw.block(b);
    whole.insert(whole.end(), s.begin(), s.end());
  }
  auto converted = toNetascii(whole);
  wire::Request req;
  for (const auto& [name, value] : setup_.options) {
    if (req.optionCount == wire::Request::kMaxOptions) break;
    req.options[req.optionCount++] = wire::Option{name, value};
  }
  negotiation_ = negotiate(req, setup_.limits, converted.size());
  window_.emplace(std::move(converted), negotiation_.blksize);
  co_return true;
}

asio::awaitable<void> Transfer::run() {
  started_ = Clock::now();
  if (setup_.mode == wire::Mode::Netascii) {
    if (!co_await prepareNetascii()) co_return;
  } else {
    negotiation_ = *setup_.negotiation;
    window_.emplace(setup_.file.get(), setup_.fileSize, negotiation_.blksize, negotiation_.windowsize);
  }
  blockCount_ = window_->blockCount();
  std::size_t w = negotiation_.windowsize;
  headers_.resize(w * wire::kDataHeaderSize);
  iov_.resize(w * 2);
  msgs_.resize(w);
  rtoInitial_ = negotiation_.timeoutSeconds ? std::chrono::milliseconds(*negotiation_.timeoutSeconds * 1000)
                                            : setup_.timeout;
  rto_ = rtoInitial_;
  retriesLeft_ = setup_.retries;
  if (w > 1) {
    // Room for a whole window in the socket's buffer (a 1432-byte datagram costs ~2.3 KiB of it; the
    // default ~208 KiB holds 3 windows of 65464-byte blocks). Bounded: blocks of a bigger window that
    // the buffer refuses are sent again by the retransmission timer (transmitWindow).
    std::uint64_t want = std::uint64_t{w} * (negotiation_.blksize + 1024);
    socket_->growSendBuffer(static_cast<int>(std::min<std::uint64_t>(want, kMaxSendBuffer)));
  }

  bool needSend = false;
  if (negotiation_.oackCount > 0) {
    sendOack();
    deadline_ = Clock::now() + rto_;
  } else {
    setState(State::Sending);
    needSend = true;
  }
  while (state_ != State::Done) {
    if (needSend) {
      needSend = false;
      if (!transmitWindow()) {
        if (!window_->fillNow(lastAcked_ + 1)) {
          // The window's data is not in the page cache: read it on the pool, then send.
          ++shared_->stats->poolReads;
          auto r = co_await window_->fill(lastAcked_ + 1, *shared_->pool);
          if (timedOut_) ++shared_->stats->readsPastTimeout;
          if (aborted_) {
            finish(false, abortReason_);
            break;
          }
          if (!r) {
            sendError(wire::ErrorCode::NotDefined, "Read error", setup_.client);
            finish(false, r.error().message);
            break;
          }
        }
        if (!transmitWindow()) {
          finish(false, "window not readable");  // cannot happen: the fill above made it ready
          break;
        }
      }
      if (fileShrank_) {
        sendError(wire::ErrorCode::NotDefined, "File changed during the transfer", setup_.client);
        finish(false, "file shrank during the transfer");
        break;
      }
      deadline_ = Clock::now() + rto_;
      timedOut_ = false;  // a timeout that fired during a disk read is answered by this send
      window_->readAhead(lastSent_ + 1);  // while the client answers (when each window is a read)
    }
    std::error_code ec = asio::error::operation_aborted;
    std::size_t size = 0;
    if (!timedOut_) {  // the timer may have fired while we were not waiting (a disk read)
      armTimer();
      waiting_ = true;
      ec = co_await socket_->receive(rx_, size, from_);
      waiting_ = false;
    }
    if (aborted_) {
      finish(false, abortReason_);
      break;
    }
    if (ec) {
      if (!timedOut_) continue;  // cancelled without cause, or a transient error: wait again
      timedOut_ = false;
      if (retriesLeft_ == 0) {
        finish(false, state_ == State::AwaitOackAck ? "no_ack_for_oack" : "timeout");
        break;
      }
      --retriesLeft_;
      ++retransmits_;
      ++shared_->stats->retransmits;
      rto_ = std::min(rto_ * 2, rtoInitial_ * 4);
      if (state_ == State::AwaitOackAck) {
        sendOack();
        deadline_ = Clock::now() + rto_;
      } else {
        needSend = true;
      }
      continue;
    }
    // A datagram came in. Should the deadline have passed at the same moment, the datagram wins:
    // if it is no progress, the expired deadline fires again at once.
    timedOut_ = false;
    bool progressed = false;
    onDatagram(std::span<const std::uint8_t>(rx_.data(), std::min(size, rx_.size())), progressed);
    if (state_ == State::Done) break;
    if (progressed) {
      retriesLeft_ = setup_.retries;
      rto_ = rtoInitial_;
      needSend = true;
    }
  }
  timer_.cancel();
  socket_->close();
}

void Transfer::armTimer() {
  // A pending wait that ends by the deadline will fire, see the deadline moved, and re-arm itself.
  // One that ends after it is replaced: the deadline moves earlier when progress brings a backed-off
  // timeout back to its initial value, and left alone the wait would notice the next loss up to 4x late.
  if (timerPending_ && timerAt_ <= deadline_) return;
  timerPending_ = true;
  timerAt_ = deadline_;
  timer_.expires_at(deadline_);  // cancels a pending wait; its handler sees it is stale
  timer_.async_wait([self = shared_from_this(), generation = ++timerGeneration_](const std::error_code& ec) {
    if (generation == self->timerGeneration_) self->onTimer(ec);
  });
}

void Transfer::onTimer(const std::error_code& ec) {
  timerPending_ = false;
  if (ec || state_ == State::Done) return;
  if (Clock::now() < deadline_) {
    armTimer();
    return;
  }
  timedOut_ = true;
  if (waiting_) socket_->cancel();
}

void Transfer::onDatagram(std::span<const std::uint8_t> pkt, bool& progressed) {
  if (from_ != setup_.client) {
    // RFC 1350 §4: a packet from a wrong TID gets ERROR 5 and the transfer goes on.
    ++shared_->stats->wrongTid;
    PXD_DEBUG("tftp.wrong_tid", "client={} from={}", endpointText(setup_.client), endpointText(from_));
    sendError(wire::ErrorCode::UnknownTransferId, "Unknown transfer ID", from_);
    return;
  }
  auto op = wire::peekOpcode(pkt);
  if (op == static_cast<std::uint16_t>(wire::Opcode::Ack)) {
    wire::Ack ack;
    if (wire::parseAck(pkt, ack)) onAck(ack.block, progressed);
    return;
  }
  if (op == static_cast<std::uint16_t>(wire::Opcode::Error)) {
    wire::ErrorPacket e;
    wire::parseError(pkt, e);
    // Two ERRORs are not failures. Firmware that only wanted the size answers the OACK with an ERROR
    // (EDK2: code 8, then a second RRQ for the file). A client that has every byte by tsize may close
    // instead of acknowledging the empty last block of a file whose size is a multiple of blksize
    // (pxelinux through iPXE's PXE API: code 0, "No error, file close").
    const std::uint64_t dataBlocks = ((window_ ? window_->size() : 0) + negotiation_.blksize - 1) / negotiation_.blksize;
    closedByClient_ = state_ == State::AwaitOackAck || (e.code == 0 && lastSent_ >= dataBlocks);
    finish(false, fmt::format("client_error code={} message={}", e.code, log::q(e.message)));
    return;
  }
  sendError(wire::ErrorCode::IllegalOperation, "Illegal TFTP operation", setup_.client);
  finish(false, fmt::format("illegal_opcode {}", op));
}

void Transfer::onAck(std::uint16_t block, bool& progressed) {
  acknowledged_ = true;
  if (state_ == State::AwaitOackAck) {
    if (block != 0) return;  // not the answer to our OACK
    setState(State::Sending);
    progressed = true;
    return;
  }
  // Which absolute block does this 16-bit number name? Only lastAcked_+1 .. lastSent_ are valid.
  auto diff = static_cast<std::uint16_t>(block - static_cast<std::uint16_t>(lastAcked_));
  if (diff == 0 || diff > lastSent_ - lastAcked_) {
    ++shared_->stats->duplicateAcks;  // a repeat or a stray: never answered with data
    return;
  }
  lastAcked_ += diff;
  progressed = true;
  if (lastAcked_ == blockCount_) finish(true, "complete");
}

bool Transfer::transmitWindow() {
  std::uint64_t first = lastAcked_ + 1;
  std::uint64_t last = std::min<std::uint64_t>(blockCount_, lastAcked_ + negotiation_.windowsize);
  if (!window_->ready(first, last)) return false;
  unsigned count = static_cast<unsigned>(last - first + 1);
  std::uint64_t bytes = 0;
  for (unsigned i = 0; i < count; ++i) {
    auto data = window_->block(first + i);
    std::uint8_t* h = &headers_[i * wire::kDataHeaderSize];
    wire::writeDataHeader(h, static_cast<std::uint16_t>(first + i));
    iov_[2 * i] = {h, wire::kDataHeaderSize};
    iov_[2 * i + 1] = {const_cast<std::uint8_t*>(data.data()), data.size()};
  }
  unsigned sent = 0;
  int err = 0;
  if (count == 1) {
    sent = socket_->send({iov_.data(), 2}, setup_.client) ? 1 : 0;
    if (sent == 0) err = errno;
  } else {
    for (unsigned i = 0; i < count; ++i) {
      msgs_[i] = mmsghdr{};
      msgs_[i].msg_hdr.msg_name = const_cast<sockaddr*>(setup_.client.data());
      msgs_[i].msg_hdr.msg_namelen = static_cast<socklen_t>(setup_.client.size());
      msgs_[i].msg_hdr.msg_iov = &iov_[2 * i];
      msgs_[i].msg_hdr.msg_iovlen = 2;
    }
    sent = socket_->sendBatch({msgs_.data(), count});
    if (sent == 0) err = errno;
  }
  // EFAULT: a mapped file was truncated under the window (FileWindow); nothing more can be sent.
  if (sent < count && err == EFAULT) fileShrank_ = true;
  for (unsigned i = 0; i < sent; ++i) bytes += iov_[2 * i + 1].iov_len;
  // Blocks the socket's buffer did not take (EAGAIN) count as not sent: an ACK cannot name them, and
  // the retransmission timer sends them again. The buffer is sized for a window (run()), so this is rare.
  if (sent < count && (sent > 0 || err == EAGAIN || err == EWOULDBLOCK)) ++shared_->stats->shortSends;
  if (sent > 0) lastSent_ = std::max(lastSent_, first + sent - 1);
  shared_->stats->blocksSent += sent;
  shared_->stats->bytesSent += bytes;
  return true;
}

void Transfer::sendOack() {
  std::array<std::uint8_t, 512> buf{};
  auto n = wire::writeOack(buf, negotiation_.oackEntries());
  iovec part{buf.data(), n};
  socket_->send({&part, 1}, setup_.client);
}

void Transfer::sendError(wire::ErrorCode code, std::string_view text, const asio::ip::udp::endpoint& to) {
  std::array<std::uint8_t, 256> buf{};
  auto n = wire::writeError(buf, code, text);
  iovec part{buf.data(), n};
  socket_->send({&part, 1}, to);
}

void Transfer::finish(bool ok, std::string_view reason) {
  if (state_ == State::Done) return;
  setState(State::Done);
  auto& stats = *shared_->stats;
  if (ok) ++stats.transfersCompleted;
  else if (closedByClient_) ++stats.transfersClosedByClient;
  else ++stats.transfersFailed;
  double secs = std::chrono::duration<double>(Clock::now() - started_).count();
  std::uint64_t bytes = std::min<std::uint64_t>(window_ ? window_->size() : 0,
                                                lastAcked_ * negotiation_.blksize);
  TransferEnd end{ok, closedByClient_ && !ok, reason, bytes};
  if (ok) {
    PXD_INFO("tftp.done", "client={} file={} bytes={} blksize={} windowsize={} seconds={:.3f} retransmits={}",
             endpointText(setup_.client), log::q(setup_.path), bytes, negotiation_.blksize, negotiation_.windowsize,
             secs, retransmits_);
  } else if (closedByClient_) {
    end.bytes = std::min<std::uint64_t>(window_ ? window_->size() : 0, lastSent_ * negotiation_.blksize);
    PXD_INFO("tftp.closed_by_client", "client={} file={} reason={} bytes_sent={} seconds={:.3f}",
             endpointText(setup_.client), log::q(setup_.path), reason, end.bytes, secs);
  } else {
    PXD_INFO("tftp.failed", "client={} file={} reason={} bytes_acked={} seconds={:.3f} retransmits={}",
             endpointText(setup_.client), log::q(setup_.path), reason, bytes, secs, retransmits_);
  }
  if (shared_->onDone) shared_->onDone(setup_.client, this, end);
}

}  // namespace pxedust::tftp
