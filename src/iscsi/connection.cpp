// One iSCSI connection: construction, lifetime (abort, drain, finish), the reader and the dispatch
// of full-feature PDUs, the small requests (NOP-Out, Text, Logout) and the NOP-In timer. The other
// parts of the class: connection_login.cpp (the login phase and session admission),
// connection_tasks.cpp (SCSI tasks, Data-Out/R2T, task management) and connection_output.cpp (the
// write queue and the writer). See connection.hpp for the design.
#include "iscsi/connection.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>

#include "common/log.hpp"
#include "iscsi/connection_internal.hpp"
#include "iscsi/wire/text.hpp"

namespace pxedust::iscsi {

Connection::Connection(std::shared_ptr<ServiceContext> ctx, asio::ip::tcp::socket socket,
                       event::ShutdownGate::Ticket ticket, std::uint64_t id)
    : ctx_(std::move(ctx)),
      socket_(std::move(socket)),
      ticket_(std::move(ticket)),
      id_(id),
      writeSignal_(socket_.get_executor()),
      drainSignal_(socket_.get_executor()),
      idleSignal_(socket_.get_executor()),
      timer_(socket_.get_executor()) {
  std::error_code ec;
  auto remote = socket_.remote_endpoint(ec);
  peerAddress_ = remote.address();
  peer_ = ec ? std::string("?") : remote.address().to_string() + ":" + std::to_string(remote.port());
  local_ = socket_.local_endpoint(ec);
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  socket_.set_option(asio::socket_base::send_buffer_size(kSendBuffer), ec);
  // The writer's own send()/splice() calls must never block the loop (splice takes the socket's
  // O_NONBLOCK, not a flag, on older kernels); asio's async operations work the same either way.
  socket_.non_blocking(true, ec);
  started_ = lastRx_ = Clock::now();
  rxBuf_.resize(kReadBuffer);
}

Connection::~Connection() = default;

void Connection::start() {
  auto self = shared_from_this();
  auto ex = socket_.get_executor();
  asio::co_spawn(ex, [self]() { return self->readLoop(); }, asio::detached);
  asio::co_spawn(ex, [self]() { return self->writeLoop(); }, asio::detached);
  asio::co_spawn(ex, [self]() { return self->timerLoop(); }, asio::detached);
}

std::string Connection::portal() const {
  auto a = local_.address();
  std::string host = a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
  std::uint16_t tpgt = ctx_->registry ? ctx_->registry->config().portalGroupTag : 1;
  return fmt::format("{}:{},{}", host, local_.port(), tpgt);
}

// ---- lifetime ---------------------------------------------------------------------------------

void Connection::closeSocket() {
  if (closed_) return;
  closed_ = true;
  std::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  writeSignal_.cancel();
  drainSignal_.cancel();
  timer_.cancel();
}

void Connection::abort(Drop why, std::string_view reason) {
  if (closed_) return;
  endReason_ = why;
  endDetail_ = std::string(reason);
  stopReading_ = true;
  abortTasks(std::nullopt);
  closeSocket();
}

void Connection::drain(Drop why) {
  if (closed_ || stopReading_) return;
  endReason_ = why;
  endDetail_ = "draining";
  stopReading_ = true;
  std::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_receive, ec);  // wakes the reader with EOF
}

void Connection::endSession() {
  if (!session_ || session_->owner != id_) return;
  session_->endNexus();
  ctx_->sessions.remove(*session_);
  session_->close = nullptr;
}

asio::awaitable<void> Connection::finish() {
  auto self = shared_from_this();
  stopReading_ = true;
  while (executing_ > 0) co_await waitOn(idleSignal_);
  if (pendingLogout_ && !closed_) {
    fillSn(pendingLogout_->statSn, pendingLogout_->expCmdSn, pendingLogout_->maxCmdSn, true);
    queue(*pendingLogout_);
  }
  while (!closed_ && !outq_.empty()) co_await waitOn(drainSignal_);
  if (fullFeature_ && session_ && !session_->isDiscovery())
    reportDisk(boot::DiskKind::Logout, session_->key().initiator, session_->key().target,
               pendingLogout_ ? std::string_view("logout") : dropName(endReason_));
  if (pendingLogout_) {
    PXD_INFO("iscsi.logout", "conn={} peer={} initiator={} target={}", id_, peer_,
             log::q(session_ ? session_->key().initiator : std::string()),
             log::q(session_ ? session_->key().target : std::string()));
  } else {
    ctx_->stats.drop(endReason_);
    PXD_INFO("iscsi.connection_closed", "conn={} peer={} reason={} detail={} initiator={} target={}", id_, peer_,
             dropName(endReason_), log::q(endDetail_), log::q(session_ ? session_->key().initiator : std::string()),
             log::q(session_ ? session_->key().target : std::string()));
  }
  abortTasks(std::nullopt);
  closeSocket();
  endSession();
  ctx_->connections.erase(id_);
  if (ctx_->stats.connectionsActive > 0) --ctx_->stats.connectionsActive;
  ticket_.reset();
}

// ---- reader -----------------------------------------------------------------------------------

asio::awaitable<void> Connection::readLoop() {
  auto self = shared_from_this();
  while (!closed_ && !stopReading_) {
    while (outBytes_ > kWriteHighWater && !closed_) co_await waitOn(drainSignal_);
    if (closed_ || stopReading_) break;
    std::error_code ec;
    std::size_t n = co_await socket_.async_read_some(asio::buffer(rxBuf_), asio::redirect_error(asio::use_awaitable, ec));
    if (ec || n == 0) {
      if (!closed_ && !stopReading_) {
        endReason_ = Drop::PeerClosed;
        endDetail_ = ec ? ec.message() : "end of stream";
        if (!framer_.idle()) endDetail_ += " (in the middle of a PDU)";
      }
      break;
    }
    lastRx_ = Clock::now();
    pingSent_.reset();
    std::span<const std::uint8_t> in(rxBuf_.data(), n);
    // One read is the unit of work per wake-up (kReadBuffer bytes at most); the framer yields one
    // PDU per call.
    while (!in.empty() && !closed_ && !stopReading_) {
      auto r = framer_.feed(in);
      in = in.subspan(r.consumed);
      bool keep = true;
      switch (r.status) {
        case wire::FrameStatus::NeedMore:
          break;
        case wire::FrameStatus::Pdu:
          keep = co_await rxPdu(framer_.pdu());
          break;
        case wire::FrameStatus::DataDigestError:
          if (!fullFeature_) {
            abort(Drop::DataDigest, "data digest error during login");
            keep = false;
          } else {
            reject(wire::RejectReason::DataDigestError, framer_.pdu().bhs, Drop::DataDigest, "data digest mismatch");
          }
          break;
        case wire::FrameStatus::Oversized:
          if (!fullFeature_) {
            abort(Drop::Oversized, "PDU over the login limits");
            keep = false;
          } else {
            reject(wire::RejectReason::ProtocolError, framer_.pdu().bhs, Drop::Oversized,
                   "data segment or AHS over the negotiated limits");
          }
          break;
        case wire::FrameStatus::HeaderDigestError:
          abort(Drop::HeaderDigest, "header digest mismatch");
          keep = false;
          break;
      }
      if (!keep) {
        stopReading_ = true;  // e.g. a refused login: the response goes out, then the connection closes
        break;
      }
      if (rejectsSent_ > 1000) {
        abort(Drop::ProtocolError, "too many rejected PDUs");
        break;
      }
    }
  }
  co_await finish();
}

asio::awaitable<bool> Connection::rxPdu(wire::RxPdu& pdu) {
  auto parsed = wire::parseInitiatorHeader(pdu.header());
  if (!parsed) {
    if (!fullFeature_) {
      abort(Drop::BadHeader, "unparseable PDU during login: " + parsed.error().message);
      co_return false;
    }
    reject(static_cast<wire::RejectReason>(parsed.error().code), pdu.bhs, Drop::BadHeader, parsed.error().message);
    co_return true;
  }
  if (!fullFeature_) {
    const auto* login = std::get_if<wire::LoginRequest>(&*parsed);
    if (!login) {
      abort(Drop::WrongPhase,
            fmt::format("{} before the login completed", wire::opcodeName(pdu.opcode())));
      co_return false;
    }
    co_return co_await rxLogin(*login, pdu.data);
  }
  if (coldReset_) {
    // After a TARGET COLD RESET only its response goes out, then the connection closes.
    PXD_DEBUG("iscsi.pdu_ignored", "conn={} reason=target_reset opcode={}", id_, wire::opcodeName(pdu.opcode()));
    co_return true;
  }
  co_return rxFullFeature(*parsed, pdu);
}

// ---- full feature phase -----------------------------------------------------------------------

bool Connection::rxFullFeature(const wire::InitiatorHeader& h, wire::RxPdu& pdu) {
  bool discovery = session_->isDiscovery();
  return std::visit(
      [&](const auto& hdr) -> bool {
        using H = std::decay_t<decltype(hdr)>;
        if constexpr (std::is_same_v<H, wire::NopOut>) {
          return rxNopOut(hdr, pdu);
        } else if constexpr (std::is_same_v<H, wire::ScsiCommand>) {
          if (discovery) {
            reject(wire::RejectReason::ProtocolError, pdu.bhs, Drop::WrongPhase, "SCSI Command in a discovery session");
            return true;
          }
          return rxScsiCommand(hdr, pdu);
        } else if constexpr (std::is_same_v<H, wire::TaskMgmtRequest>) {
          if (discovery) {
            reject(wire::RejectReason::ProtocolError, pdu.bhs, Drop::WrongPhase, "Task Management in a discovery session");
            return true;
          }
          return rxTaskMgmt(hdr, pdu);
        } else if constexpr (std::is_same_v<H, wire::LoginRequest>) {
          reject(wire::RejectReason::ProtocolError, pdu.bhs, Drop::WrongPhase, "Login Request in the full feature phase");
          return true;
        } else if constexpr (std::is_same_v<H, wire::TextRequest>) {
          return rxText(hdr, pdu);
        } else if constexpr (std::is_same_v<H, wire::DataOut>) {
          return rxDataOut(hdr, pdu);
        } else if constexpr (std::is_same_v<H, wire::LogoutRequest>) {
          return rxLogout(hdr, pdu);
        } else {
          // SNACK: error recovery level 0 has no SNACK (§7.1.5).
          reject(wire::RejectReason::ProtocolError, pdu.bhs, Drop::ProtocolError, "SNACK at ErrorRecoveryLevel 0");
          return true;
        }
      },
      h);
}

bool Connection::rxNopOut(const wire::NopOut& h, wire::RxPdu& pdu) {
  if (h.initiatorTaskTag == wire::kReservedTag) {
    // An answer to our ping (TTT is ours), or a one-way ping: nothing to send (§11.18).
    if (h.targetTransferTag != wire::kReservedTag && h.targetTransferTag == pingTtt_) pingSent_.reset();
    return true;
  }
  auto check = session_->rxCmdSn(h.cmdSn, h.immediate);
  if (check == Session::CmdSnCheck::OutOfWindow) {
    ctx_->stats.drop(Drop::OutOfWindow);
    PXD_DEBUG("iscsi.pdu_ignored", "conn={} reason=out_of_window opcode=nop_out cmd_sn={} exp_cmd_sn={}", id_, h.cmdSn,
              session_->expCmdSn());
    return true;
  }
  if (check == Session::CmdSnCheck::Accept) session_->commandDone();
  wire::NopIn rsp;
  rsp.lun = h.lun;
  rsp.initiatorTaskTag = h.initiatorTaskTag;
  rsp.targetTransferTag = wire::kReservedTag;
  fillSn(rsp.statSn, rsp.expCmdSn, rsp.maxCmdSn, true);
  std::size_t echo = std::min<std::size_t>(pdu.data.size(), params_.initiatorMaxRecvDataSegmentLength);
  std::shared_ptr<std::vector<std::uint8_t>> data;
  if (echo > 0) data = std::make_shared<std::vector<std::uint8_t>>(pdu.data.begin(), pdu.data.begin() + static_cast<std::ptrdiff_t>(echo));
  queue(rsp, data, 0, echo);
  return true;
}

bool Connection::rxText(const wire::TextRequest& h, wire::RxPdu& pdu) {
  auto check = session_->rxCmdSn(h.cmdSn, h.immediate);
  if (check == Session::CmdSnCheck::OutOfWindow) {
    ctx_->stats.drop(Drop::OutOfWindow);
    PXD_DEBUG("iscsi.pdu_ignored", "conn={} reason=out_of_window opcode=text cmd_sn={}", id_, h.cmdSn);
    return true;
  }
  if (check == Session::CmdSnCheck::Accept) session_->commandDone();
  if (h.targetTransferTag != wire::kReservedTag) {
    // The initiator asks for the rest of a long answer (§11.10.4).
    if (h.targetTransferTag != textTtt_ || textOffset_ >= textPending_.size()) {
      reject(wire::RejectReason::InvalidPduField, pdu.bhs, Drop::ProtocolError, "Text Request with an unknown TTT");
      return true;
    }
    sendTextAnswer(h.initiatorTaskTag, {});
    return true;
  }
  if (!textIn_.append(pdu.data)) {
    textIn_.clear();
    reject(wire::RejectReason::ProtocolError, pdu.bhs, Drop::Oversized, "Text Request over the size cap");
    return true;
  }
  if (h.cont) {
    wire::TextResponse rsp;
    rsp.final = false;
    rsp.initiatorTaskTag = h.initiatorTaskTag;
    rsp.targetTransferTag = wire::kReservedTag;
    fillSn(rsp.statSn, rsp.expCmdSn, rsp.maxCmdSn, true);
    queue(rsp);
    return true;
  }
  auto parsed = wire::parseText(textIn_.bytes());
  wire::TextWriter out;
  std::vector<std::uint8_t> targets;
  if (!parsed.ok()) {
    textIn_.clear();
    reject(wire::RejectReason::ProtocolError, pdu.bhs, Drop::ProtocolError,
           std::string("Text Request: ") + std::string(wire::textErrorName(parsed.error)));
    return true;
  }
  for (const auto& kv : parsed.pairs) {
    if (kv.key == "SendTargets") {
      std::string only;
      if (session_->isDiscovery()) {
        if (kv.value != "All") only = std::string(kv.value);
      } else {
        // §12.3: a Normal session asks about its own target only.
        only = session_->key().target;
        if (!kv.value.empty() && kv.value != "All" && lowerCase(kv.value) != only) continue;
      }
      if (ctx_->registry) {
        auto part = ctx_->registry->sendTargets(session_->key().initiator, peerAddress_, portal(), only);
        targets.insert(targets.end(), part.begin(), part.end());
      }
    } else {
      out.add(kv.key, findKey(kv.key) ? "Reject" : "NotUnderstood");
    }
  }
  textIn_.clear();
  auto extra = out.take();
  targets.insert(targets.end(), extra.begin(), extra.end());
  textPending_ = std::move(targets);
  textOffset_ = 0;
  sendTextAnswer(h.initiatorTaskTag, {});
  return true;
}

void Connection::sendTextAnswer(std::uint32_t itt, std::vector<std::uint8_t> /*unused*/) {
  std::size_t mrdsl = std::max<std::uint32_t>(512, params_.initiatorMaxRecvDataSegmentLength);
  std::size_t remaining = textPending_.size() - textOffset_;
  std::size_t len = std::min(mrdsl, remaining);
  bool last = len == remaining;
  wire::TextResponse rsp;
  rsp.initiatorTaskTag = itt;
  rsp.final = last;
  rsp.cont = !last;
  if (last) {
    rsp.targetTransferTag = wire::kReservedTag;
    textTtt_ = wire::kReservedTag;
  } else {
    if (textTtt_ == wire::kReservedTag) {
      do {
        textTtt_ = nextTtt_++;
      } while (textTtt_ == wire::kReservedTag || byTtt_.contains(textTtt_));
    }
    rsp.targetTransferTag = textTtt_;
  }
  fillSn(rsp.statSn, rsp.expCmdSn, rsp.maxCmdSn, true);
  auto data = std::make_shared<std::vector<std::uint8_t>>(textPending_.begin() + static_cast<std::ptrdiff_t>(textOffset_),
                                                          textPending_.begin() + static_cast<std::ptrdiff_t>(textOffset_ + len));
  textOffset_ += len;
  if (last) {
    textPending_.clear();
    textOffset_ = 0;
  }
  queue(rsp, data, 0, len);
}

bool Connection::rxLogout(const wire::LogoutRequest& h, wire::RxPdu& /*pdu*/) {
  auto check = session_->rxCmdSn(h.cmdSn, h.immediate);
  if (check == Session::CmdSnCheck::OutOfWindow) {
    ctx_->stats.drop(Drop::OutOfWindow);
    PXD_DEBUG("iscsi.pdu_ignored", "conn={} reason=out_of_window opcode=logout cmd_sn={}", id_, h.cmdSn);
    return true;
  }
  if (check == Session::CmdSnCheck::Accept) session_->commandDone();
  wire::LogoutResponse rsp;
  rsp.initiatorTaskTag = h.initiatorTaskTag;
  auto reason = static_cast<wire::LogoutReason>(h.reason & 0x7f);
  if (reason == wire::LogoutReason::RemoveForRecovery) {
    rsp.response = 2;  // connection recovery is not supported (ERL 0)
  } else if (reason == wire::LogoutReason::CloseConnection && h.cid != session_->cid()) {
    rsp.response = 1;  // CID not found
  } else if (reason != wire::LogoutReason::CloseSession && reason != wire::LogoutReason::CloseConnection) {
    rsp.response = 3;
  } else {
    // The response follows the end of every task in flight (finish() sends it), then we close.
    pendingLogout_ = rsp;
    stopReading_ = true;
    for (auto& [itt, t] : tasks_)
      if (t->state == Task::State::Collecting) t->aborted = true;
    abortTasks(std::nullopt);
    return false;
  }
  fillSn(rsp.statSn, rsp.expCmdSn, rsp.maxCmdSn, true);
  queue(rsp);
  return true;
}

asio::awaitable<void> Connection::timerLoop() {
  auto self = shared_from_this();
  while (!closed_) {
    const auto& cfg = ctx_->registry ? ctx_->registry->config() : Config{};
    auto interval = cfg.nopInterval;
    auto timeout = cfg.nopTimeout;
    auto tick = std::clamp<std::chrono::milliseconds>(std::min(interval, timeout) / 4, std::chrono::milliseconds(50),
                                                      std::chrono::milliseconds(1000));
    timer_.expires_after(tick);
    std::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (closed_) break;
    auto now = Clock::now();
    if (!fullFeature_) {
      if (now - started_ > ctx_->loginTimeout) abort(Drop::LoginTimeout, "no full feature phase in time");
      continue;
    }
    if (stopReading_) continue;
    if (pingSent_) {
      if (now - *pingSent_ > timeout) abort(Drop::NopTimeout, "no answer to NOP-In");
      continue;
    }
    if (now - lastRx_ >= interval) {
      // §11.19: a ping the initiator must answer (TTT != 0xffffffff); StatSN does not advance.
      wire::NopIn ping;
      ping.initiatorTaskTag = wire::kReservedTag;
      do {
        ++pingTtt_;
      } while (pingTtt_ == wire::kReservedTag || pingTtt_ == 0);
      ping.targetTransferTag = pingTtt_;
      fillSn(ping.statSn, ping.expCmdSn, ping.maxCmdSn, false);
      queue(ping);
      pingSent_ = now;
      ++ctx_->stats.nopPings;
    }
  }
}

}  // namespace pxedust::iscsi
