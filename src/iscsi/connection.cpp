#include "iscsi/connection.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "blockstore/pipe_chain.hpp"
#include "common/log.hpp"
#include "scsi/buffer_pool.hpp"
#include "iscsi/wire/crc32c.hpp"
#include "iscsi/wire/text.hpp"

namespace pxedust::iscsi {

using Clock = std::chrono::steady_clock;

struct Connection::Task {
  enum class State : std::uint8_t { Collecting, Executing, Done };
  std::uint32_t itt = 0;
  std::uint32_t ttt = wire::kReservedTag;
  std::uint64_t lunField = 0;
  std::vector<std::uint8_t> cdb;
  std::uint32_t edtl = 0;
  scsi::TaskAttribute attribute = scsi::TaskAttribute::Simple;
  scsi::Plan plan;
  std::shared_ptr<HostLun> lun;
  bool inquiryOtherLun = false;  // INQUIRY to a LUN we do not have: answered with PQ=3

  std::vector<std::uint8_t> data;  // Data-Out, at buffer offsets
  std::uint32_t need = 0;          // Data-Out bytes the command needs
  std::uint32_t nextOffset = 0;    // where the next R2T starts
  std::uint32_t highest = 0;       // highest offset + length received
  std::uint32_t outstandingR2t = 0;
  std::uint32_t r2tSn = 0;
  std::uint32_t expDataSn = 0;  // within the current Data-Out sequence (§11.7.5), from 0 each
  bool unsolicitedPending = false;
  bool dataSnError = false;  // a Data-Out arrived out of DataSN order: ends with 0B/47/05
  std::size_t budget = 0;
  bool admitted = false;
  bool counted = false;  // took a slot of the CmdSN window
  bool aborted = false;
  State state = State::Collecting;
  std::unique_ptr<asio::steady_timer> done;  // made when a TMF waits on the task; cancelled when it ends
};

namespace {

asio::awaitable<void> waitOn(asio::steady_timer& t) {
  if (t.expiry() != Clock::time_point::max()) t.expires_at(Clock::time_point::max());
  std::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

scsi::TaskAttribute taskAttribute(std::uint8_t attr) {
  switch (attr & 7u) {
    case 2: return scsi::TaskAttribute::Ordered;
    case 3: return scsi::TaskAttribute::HeadOfQueue;
    case 4: return scsi::TaskAttribute::Aca;
    default: return scsi::TaskAttribute::Simple;
  }
}

std::string_view dropName(Drop d) { return kDropNames[static_cast<std::size_t>(d)]; }

}  // namespace

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

// ---- login ------------------------------------------------------------------------------------

asio::awaitable<bool> Connection::rxLogin(const wire::LoginRequest& h, std::span<const std::uint8_t> data) {
  auto self = shared_from_this();
  if (!login_) {
    LoginConfig cfg;
    cfg.limits = ctx_->limits;
    cfg.portalGroupTag = ctx_->registry ? ctx_->registry->config().portalGroupTag : 1;
    LoginHooks hooks;
    std::weak_ptr<ServiceContext> wctx = ctx_;
    hooks.authorize = [this](const LoginIdentity& id) {
      if (!ctx_->registry) return AccessDecision{login_status::ServiceUnavailable, {}, {}, {}};
      return ctx_->registry->authorize(id, peerAddress_);
    };
    hooks.admit = [this](const LoginIdentity& id, const SessionParams& p) -> Admission {
      SessionKey key{p.sessionType, lowerCase(id.initiatorName), id.isid,
                     p.sessionType == SessionType::Normal ? lowerCase(id.targetName) : std::string()};
      std::weak_ptr<Connection> weak = weak_from_this();
      auto closer = [weak](std::string_view reason) {
        if (auto c = weak.lock()) c->abort(Drop::Reinstated, reason);
      };
      if (id.tsih != 0) {
        auto s = ctx_->sessions.byTsih(id.tsih);
        if (!s || s->key().initiator != key.initiator || s->key().isid != key.isid || s->key().type != key.type) {
          return {login_status::SessionDoesNotExist, 0};
        }
        if (s->cid() != id.cid) return {login_status::TooManyConnections, 0};
        // Connection reinstatement (§6.3.4): the old connection goes, the session stays.
        auto oldClose = std::move(s->close);
        s->owner = id_;
        s->close = closer;
        s->resetWindow(loginCmdSn_);
        if (oldClose) oldClose("connection reinstated by a new login");
        session_ = s;
        ++ctx_->stats.sessionsReinstated;
        return {login_status::Success, 0};
      }
      auto added = ctx_->sessions.add(key, p, loginCmdSn_, id.cid);
      if (!added.session) return {login_status::OutOfResources, 0};
      if (added.reinstated) {
        ++ctx_->stats.sessionsReinstated;
        PXD_INFO("iscsi.session_reinstated", "conn={} peer={} initiator={} isid={} target={}", id_, peer_,
                 log::q(key.initiator), isidHex(key.isid), log::q(key.target));
      }
      session_ = added.session;
      session_->owner = id_;
      session_->close = closer;
      return {login_status::Success, session_->tsih()};
    };
    hooks.random = ctx_->random;
    login_ = std::make_unique<LoginMachine>(cfg, std::move(hooks));
  }
  if (!loginStarted_) {
    loginStarted_ = true;
    statSn_ = h.expStatSn;
  }
  loginCmdSn_ = h.cmdSn;
  LoginReply reply = login_->rxLoginRequest(h, data);

  if (reply.outcome == LoginReply::Outcome::Complete && session_ && !session_->isDiscovery() && !session_->lun()) {
    // The disk is opened (and its overlay created on first use) on a worker before the final
    // response, so a session never exists without its LUN.
    const Target* t = ctx_->registry ? ctx_->registry->find(session_->key().target) : nullptr;
    std::string why;
    if (t && ctx_->luns) {
      Target copy = *t;
      auto lun = co_await ctx_->luns->open(copy);
      if (lun) session_->setLun(*lun);
      else why = lun.error().message;
    } else {
      why = "target removed during login";
    }
    if (closed_) co_return false;  // reinstated while the disk opened
    if (!session_->lun()) {
      endSession();
      session_.reset();
      reply.header.statusClass = login_status::TargetError.cls;
      reply.header.statusDetail = login_status::TargetError.detail;
      reply.header.transit = false;
      reply.header.csg = reply.header.nsg = 0;
      reply.header.tsih = 0;
      reply.data.clear();
      reply.header.dataSegmentLength = 0;
      reply.outcome = LoginReply::Outcome::Failed;
      reply.reason = "cannot open the disk: " + why;
      PXD_ERROR("iscsi.disk_open_failed", "conn={} target={} error={}", id_, log::q(login_->identity().targetName),
                log::q(why));
    }
  }
  if (closed_) co_return false;

  reply.header.statSn = statSn_++;
  reply.header.expCmdSn = h.cmdSn;
  reply.header.maxCmdSn = h.cmdSn + kCommandWindow - 1;
  auto data_ = std::make_shared<std::vector<std::uint8_t>>(std::move(reply.data));
  std::size_t len = data_->size();
  queue(reply.header, data_, 0, len);

  if (reply.outcome == LoginReply::Outcome::Failed) {
    const auto& id = login_->identity();
    PXD_INFO("iscsi.login_failed", "conn={} peer={} initiator={} target={} status={:04x} reason={}", id_, peer_,
             log::q(id.initiatorName), log::q(id.targetName), reply.header.statusClass << 8 | reply.header.statusDetail,
             log::q(reply.reason));
    endReason_ = Drop::LoginFailed;
    endDetail_ = reply.reason;
    if (id.sessionType == SessionType::Normal)
      reportDisk(boot::DiskKind::Failed, id.initiatorName, id.targetName, reply.reason);
    if (session_) {
      endSession();
      session_.reset();
    }
    co_return false;  // finish() flushes the response, then closes
  }
  if (reply.outcome == LoginReply::Outcome::Complete) {
    if (!session_) {
      abort(Drop::LoginFailed, "login completed without a session");
      co_return false;
    }
    params_ = login_->params();
    framer_.setLimits(login_->framerLimits());
    fullFeature_ = true;
    if (session_->isDiscovery()) ++ctx_->stats.loginsDiscovery;
    else ++ctx_->stats.loginsNormal;
    PXD_INFO("iscsi.login", "conn={} peer={} type={} initiator={} isid={} target={} tsih={} mrdsl={} burst={} "
             "first_burst={} initial_r2t={} immediate_data={} header_digest={} data_digest={}",
             id_, peer_, session_->isDiscovery() ? "discovery" : "normal", log::q(session_->key().initiator),
             isidHex(session_->key().isid), log::q(session_->key().target), session_->tsih(),
             params_.initiatorMaxRecvDataSegmentLength, params_.maxBurstLength, params_.firstBurstLength,
             params_.initialR2T, params_.immediateData, params_.headerDigest, params_.dataDigest);
    login_.reset();
    if (!session_->isDiscovery())
      reportDisk(boot::DiskKind::Login, session_->key().initiator, session_->key().target, {});
  }
  co_return true;
}

void Connection::reportDisk(boot::DiskKind kind, std::string_view initiator, std::string_view target,
                            std::string_view reason) {
  if (!ctx_->events) return;
  asio::ip::address_v4 v4;
  if (peerAddress_.is_v4()) v4 = peerAddress_.to_v4();
  else if (peerAddress_.is_v6() && peerAddress_.to_v6().is_v4_mapped())
    v4 = asio::ip::make_address_v4(asio::ip::v4_mapped, peerAddress_.to_v6());
  else return;  // hosts are tracked by IPv4 address
  boot::DiskEvent e;
  e.protocol = boot::DiskProtocol::Iscsi;
  e.kind = kind;
  e.client = boot::Ipv4(v4.to_uint());
  if (session_ && session_->lun()) e.hostName = session_->lun()->host;
  else if (const Target* t = ctx_->registry ? ctx_->registry->find(target) : nullptr) e.hostName = t->host.name;
  e.initiator = initiator;
  e.reason = reason;
  ctx_->events(boot::Event{{}, std::move(e)});
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

bool Connection::rxScsiCommand(const wire::ScsiCommand& h, wire::RxPdu& pdu) {
  auto check = session_->rxCmdSn(h.cmdSn, h.immediate);
  if (check == Session::CmdSnCheck::OutOfWindow) {
    ctx_->stats.drop(Drop::OutOfWindow);
    PXD_DEBUG("iscsi.pdu_ignored", "conn={} reason=out_of_window cmd_sn={} exp_cmd_sn={} max_cmd_sn={}", id_, h.cmdSn,
              session_->expCmdSn(), session_->maxCmdSn());
    return true;
  }
  bool counted = check == Session::CmdSnCheck::Accept;
  auto giveBack = [&] {
    if (counted) session_->commandDone();
  };
  if (tasks_.contains(h.initiatorTaskTag)) {
    giveBack();
    reject(wire::RejectReason::TaskInProgress, pdu.bhs, Drop::ProtocolError, "Initiator Task Tag in use");
    return true;
  }
  std::array<std::uint8_t, 16 + 1020> cdbBuf{};
  auto cdbLen = wire::fullCdb(h, pdu.ahs, cdbBuf);
  if (!cdbLen) {
    giveBack();
    reject(wire::RejectReason::InvalidPduField, pdu.bhs, Drop::ProtocolError, "bad AHS: " + cdbLen.error().message);
    return true;
  }
  std::uint32_t imm = static_cast<std::uint32_t>(pdu.data.size());
  std::string_view bad;
  if (imm > 0 && !h.write) bad = "immediate data without the W bit";
  else if (imm > 0 && !params_.immediateData) bad = "immediate data but ImmediateData=No";
  else if (imm > params_.firstBurstLength) bad = "immediate data over FirstBurstLength";
  else if (imm > h.expectedDataTransferLength) bad = "immediate data over the expected transfer length";
  else if (!h.final && (!h.write || params_.initialR2T)) bad = "unsolicited Data-Out announced but not allowed";
  if (!bad.empty()) {
    giveBack();
    reject(wire::RejectReason::ProtocolError, pdu.bhs, Drop::ProtocolError, bad);
    return true;
  }
  ++ctx_->stats.commands;
  ctx_->stats.bytesIn += imm;

  auto t = std::make_shared<Task>();
  t->itt = h.initiatorTaskTag;
  t->lunField = h.lun;
  t->cdb.assign(cdbBuf.begin(), cdbBuf.begin() + static_cast<std::ptrdiff_t>(*cdbLen));
  t->edtl = h.expectedDataTransferLength;
  t->attribute = taskAttribute(h.attr);
  t->counted = counted;
  t->lun = session_->lun();
  const scsi::Lun& lun = *t->lun->lun;
  std::uint32_t lunNumber = wire::decodeLun(h.lun);
  std::uint8_t opcode = t->cdb.empty() ? 0 : t->cdb[0];
  if (h.read && h.write) {
    // Bidirectional commands: none of the ones we emulate is one.
    scsi::Response r = scsi::Response::check(scsi::invalidFieldInCdb(0));
    scsi::applyResidual(r, 0, t->edtl);
    t->plan.immediate = std::move(r);
  } else if (lunNumber != 0 && opcode != 0x12 && opcode != 0xA0) {
    // Only INQUIRY (PQ=3) and REPORT LUNS answer for a LUN we do not have (SPC-5 6.7.2, 4.6.20).
    scsi::Response r = scsi::Response::check(scsi::illegalRequest(scsi::asc::kLogicalUnitNotSupported));
    scsi::applyResidual(r, 0, t->edtl);
    t->plan.immediate = std::move(r);
  } else {
    t->plan = lun.plan(t->cdb, t->edtl);
    t->inquiryOtherLun = lunNumber != 0 && opcode == 0x12;
  }
  t->need = t->plan.immediate ? 0 : std::min(t->plan.dataOutBytes, t->edtl);
  t->unsolicitedPending = !h.final;
  std::uint32_t initial = std::min<std::uint32_t>(t->need, t->unsolicitedPending ? std::max(imm, params_.firstBurstLength) : imm);
  if (imm > 0 && imm == initial) {
    // The immediate data is all the task starts with (every small write): take the framer's buffer
    // instead of copying it (the framer allocates the next PDU's).
    t->data = std::move(pdu.data);
    pdu.data.clear();
  } else {
    t->data.resize(initial);
    if (imm > 0 && !t->data.empty()) std::memcpy(t->data.data(), pdu.data.data(), std::min<std::size_t>(imm, t->data.size()));
  }
  t->highest = imm;
  t->nextOffset = imm;
  t->budget = std::max<std::size_t>(t->need, t->plan.transferBytes);
  tasks_[t->itt] = t;
  waiting_.push_back(t);
  admitTasks();
  return true;
}

void Connection::admitTasks() {
  while (!waiting_.empty()) {
    auto t = waiting_.front();
    if (t->aborted || t->state == Task::State::Done) {
      waiting_.pop_front();
      continue;
    }
    if (budgetUsed_ > 0 && budgetUsed_ + t->budget > kTaskBudget) break;
    waiting_.pop_front();
    budgetUsed_ += t->budget;
    t->admitted = true;
    if (t->data.size() < t->need) t->data.resize(t->need);
    solicit(t);
    maybeRun(t);
  }
}

void Connection::solicit(const std::shared_ptr<Task>& t) {
  if (!t->admitted || t->unsolicitedPending || t->aborted || t->dataSnError || closed_) return;
  std::uint32_t maxR2t = std::max<std::uint32_t>(1, params_.maxOutstandingR2T);
  std::uint32_t burst = std::max<std::uint32_t>(512, params_.maxBurstLength);
  while (t->outstandingR2t < maxR2t && t->nextOffset < t->need) {
    if (t->ttt == wire::kReservedTag) {
      do {
        t->ttt = nextTtt_++;
      } while (t->ttt == wire::kReservedTag || byTtt_.contains(t->ttt));
      byTtt_[t->ttt] = t;
    }
    wire::R2t r;
    r.lun = t->lunField;
    r.initiatorTaskTag = t->itt;
    r.targetTransferTag = t->ttt;
    fillSn(r.statSn, r.expCmdSn, r.maxCmdSn, false);
    r.r2tSn = t->r2tSn++;
    r.bufferOffset = t->nextOffset;
    r.desiredDataTransferLength = std::min(burst, t->need - t->nextOffset);
    t->nextOffset += r.desiredDataTransferLength;
    ++t->outstandingR2t;
    ++ctx_->stats.r2ts;
    queue(r);
  }
}

void Connection::maybeRun(const std::shared_ptr<Task>& t) {
  if (!t->admitted || t->state != Task::State::Collecting || t->aborted) return;
  // A task with a DataSN error asks for nothing more: it ends once its outstanding sequences do.
  if (t->unsolicitedPending || t->outstandingR2t > 0 || (t->nextOffset < t->need && !t->dataSnError)) return;
  t->state = Task::State::Executing;
  ++executing_;
  auto self = shared_from_this();
  asio::co_spawn(socket_.get_executor(), [self, t]() { return self->runTask(t); }, asio::detached);
}

asio::awaitable<void> Connection::runTask(std::shared_ptr<Task> t) {
  auto self = shared_from_this();
  scsi::Response r;
  if (t->plan.immediate) {
    r = *t->plan.immediate;
  } else if (t->dataSnError) {
    // §7.8: the task is terminated as for a data digest error, without running (nothing written).
    r = scsi::Response::check(scsi::abortedCommand(scsi::asc::kProtocolServiceCrcError));
  } else {
    try {
      scsi::Command c;
      c.cdb = t->cdb;
      c.dataOut = std::span<const std::uint8_t>(t->data.data(), std::min<std::size_t>(t->data.size(), t->need));
      c.expectedLength = t->edtl;
      c.attribute = t->attribute;
      c.nexus = &session_->nexus();
      c.spliceOk = !params_.dataDigest;
      r = co_await t->lun->lun->execute(c);
    } catch (const std::exception& e) {
      PXD_ERROR("iscsi.task_failed", "conn={} itt={:#x} error={}", id_, t->itt, log::q(e.what()));
      r = scsi::Response::check(scsi::SenseData{scsi::SenseKey::HardwareError, scsi::Asc{0x44, 0x00}, {}, {}});
    }
    if (t->inquiryOtherLun && !r.dataIn.empty()) r.dataIn[0] = 0x7f;  // PQ=3, PDT=1Fh: no LUN here
  }
  if (executing_ > 0) --executing_;
  bool send = !t->aborted && !closed_;
  endTask(*t);
  if (send) sendResponse(*t, r);
  if (executing_ == 0) idleSignal_.cancel();
}

void Connection::endTask(Task& t) {
  if (t.state == Task::State::Done) return;
  t.state = Task::State::Done;
  if (auto it = tasks_.find(t.itt); it != tasks_.end() && it->second.get() == &t) tasks_.erase(it);
  if (t.ttt != wire::kReservedTag) byTtt_.erase(t.ttt);
  if (t.admitted) budgetUsed_ -= std::min(budgetUsed_, t.budget);
  if (t.counted && session_) session_->commandDone();
  t.data = {};
  if (t.done) t.done->cancel();
  admitTasks();
}

void Connection::sendResponse(Task& t, scsi::Response& r) {
  if (r.status != scsi::Status::Good) ++ctx_->stats.commandsFailed;
  // The buffer goes back to the pool it came from (Lun::read) once the writer has sent it. One
  // allocation holds both the buffer and its count (make_shared, then the aliasing constructor).
  struct Pooled {
    explicit Pooled(std::vector<std::uint8_t>&& b) : buf(std::move(b)) {}
    Pooled(const Pooled&) = delete;
    Pooled& operator=(const Pooled&) = delete;
    ~Pooled() { scsi::BufferPool::give(std::move(buf)); }
    std::vector<std::uint8_t> buf;
  };
  auto pooled = std::make_shared<Pooled>(std::move(r.dataIn));
  std::shared_ptr<const std::vector<std::uint8_t>> data(pooled, &pooled->buf);
  std::shared_ptr<blockstore::PipeChain> pipe = std::move(r.dataPipe);
  const std::size_t total = pipe ? r.dataPipeLength : data->size();
  const std::uint32_t mrdsl = std::max<std::uint32_t>(512, params_.initiatorMaxRecvDataSegmentLength);
  const std::uint32_t burst = std::max<std::uint32_t>(512, params_.maxBurstLength);
  const bool collapse = r.sense.empty();
  std::uint32_t dataSn = 0;
  std::size_t off = 0;
  while (off < total) {
    std::size_t inBurst = off % burst;
    std::size_t len = std::min<std::size_t>({mrdsl, total - off, burst - inBurst});
    bool last = off + len == total;
    wire::DataIn d;
    d.lun = t.lunField;
    d.initiatorTaskTag = t.itt;
    d.targetTransferTag = wire::kReservedTag;
    d.dataSn = dataSn++;
    d.bufferOffset = static_cast<std::uint32_t>(off);
    d.final = last || (off + len) % burst == 0;
    if (last && collapse) {
      d.statusPresent = true;
      d.status = static_cast<std::uint8_t>(r.status);
      d.residualUnderflow = r.residual == scsi::Residual::Underflow;
      d.residualOverflow = r.residual == scsi::Residual::Overflow;
      d.residualCount = r.residual == scsi::Residual::None ? 0 : r.residualCount;
      fillSn(d.statSn, d.expCmdSn, d.maxCmdSn, true);
    } else {
      std::uint32_t unused = 0;
      fillSn(unused, d.expCmdSn, d.maxCmdSn, false);
    }
    if (pipe) queue(d, nullptr, 0, len, pipe);
    else queue(d, data, off, len);
    off += len;
  }
  ctx_->stats.bytesOut += total;
  if (total > 0 && collapse) return;
  wire::ScsiResponse rsp;
  rsp.initiatorTaskTag = t.itt;
  rsp.response = 0;
  rsp.status = static_cast<std::uint8_t>(r.status);
  rsp.residualUnderflow = r.residual == scsi::Residual::Underflow;
  rsp.residualOverflow = r.residual == scsi::Residual::Overflow;
  rsp.residualCount = r.residual == scsi::Residual::None ? 0 : r.residualCount;
  rsp.expDataSn = dataSn;
  fillSn(rsp.statSn, rsp.expCmdSn, rsp.maxCmdSn, true);
  std::shared_ptr<std::vector<std::uint8_t>> sense;
  std::size_t senseLen = 0;
  if (!r.sense.empty()) {
    // §11.4.7.2: SenseLength (2 bytes) then the sense data.
    sense = std::make_shared<std::vector<std::uint8_t>>();
    sense->reserve(2 + r.sense.size());
    sense->push_back(static_cast<std::uint8_t>(r.sense.size() >> 8));
    sense->push_back(static_cast<std::uint8_t>(r.sense.size()));
    sense->insert(sense->end(), r.sense.begin(), r.sense.end());
    senseLen = sense->size();
  }
  queue(rsp, sense, 0, senseLen);
}

bool Connection::rxDataOut(const wire::DataOut& h, wire::RxPdu& pdu) {
  std::shared_ptr<Task> t;
  if (h.targetTransferTag != wire::kReservedTag) {
    if (auto it = byTtt_.find(h.targetTransferTag); it != byTtt_.end() && it->second->itt == h.initiatorTaskTag)
      t = it->second;
  } else if (auto it = tasks_.find(h.initiatorTaskTag); it != tasks_.end() && it->second->unsolicitedPending) {
    t = it->second;
  }
  if (!t || t->state != Task::State::Collecting) {
    if (std::find(abortedItts_.begin(), abortedItts_.end(), h.initiatorTaskTag) != abortedItts_.end()) {
      PXD_DEBUG("iscsi.pdu_ignored", "conn={} reason=aborted_task itt={:#x}", id_, h.initiatorTaskTag);
      return true;
    }
    reject(wire::RejectReason::InvalidPduField, pdu.bhs, Drop::UnknownTask,
           fmt::format("Data-Out for no task in progress (itt {:#x}, ttt {:#x})", h.initiatorTaskTag,
                       h.targetTransferTag));
    return true;
  }
  if (h.dataSn != t->expDataSn && !t->dataSnError) {
    // §7.9: a DataSN out of order means an earlier Data-Out of the sequence was lost (to a digest
    // error), to be handled as in §7.8. ERL 0 has no recovery R2T, so the task is terminated with
    // CHECK CONDITION, ABORTED COMMAND / PROTOCOL SERVICE CRC ERROR (§11.4.7.2) once every PDU of its
    // outstanding sequences has arrived; nothing is written and the connection carries on.
    t->dataSnError = true;
    ctx_->stats.drop(Drop::DataSequence);
    PXD_DEBUG("iscsi.pdu_ignored", "conn={} reason=data_sequence itt={:#x} data_sn={} expected={}", id_,
              h.initiatorTaskTag, h.dataSn, t->expDataSn);
  }
  ++t->expDataSn;
  const std::uint32_t len = static_cast<std::uint32_t>(pdu.data.size());
  if (h.bufferOffset > t->edtl || len > t->edtl - h.bufferOffset) {
    reject(wire::RejectReason::ProtocolError, pdu.bhs, Drop::ProtocolError, "Data-Out past the expected transfer length");
    return true;
  }
  if (len > 0 && h.bufferOffset < t->data.size() && !t->dataSnError) {
    std::size_t n = std::min<std::size_t>(len, t->data.size() - h.bufferOffset);
    std::memcpy(t->data.data() + h.bufferOffset, pdu.data.data(), n);
  }
  ctx_->stats.bytesIn += len;
  t->highest = std::max(t->highest, h.bufferOffset + len);
  if (h.final) {
    t->expDataSn = 0;
    if (h.targetTransferTag == wire::kReservedTag) {
      t->unsolicitedPending = false;
      t->nextOffset = std::max(t->nextOffset, std::min(t->highest, t->need));
    } else if (t->outstandingR2t > 0) {
      --t->outstandingR2t;
    }
    solicit(t);
    maybeRun(t);
  }
  return true;
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

std::vector<std::shared_ptr<Connection::Task>> Connection::abortTasks(std::optional<std::uint32_t> itt) {
  std::vector<std::shared_ptr<Task>> running;
  std::vector<std::shared_ptr<Task>> all;
  for (auto& [tag, t] : tasks_)
    if (!itt || tag == *itt) all.push_back(t);
  for (auto& t : all) {
    t->aborted = true;
    abortedItts_.push_back(t->itt);
    if (abortedItts_.size() > 256) abortedItts_.pop_front();
    if (t->state == Task::State::Executing) running.push_back(t);
    else endTask(*t);
  }
  return running;
}

bool Connection::rxTaskMgmt(const wire::TaskMgmtRequest& h, wire::RxPdu& /*pdu*/) {
  const std::uint32_t expBefore = session_->expCmdSn();  // before this request advances it
  auto check = session_->rxCmdSn(h.cmdSn, h.immediate);
  if (check == Session::CmdSnCheck::OutOfWindow) {
    ctx_->stats.drop(Drop::OutOfWindow);
    PXD_DEBUG("iscsi.pdu_ignored", "conn={} reason=out_of_window opcode=task_mgmt cmd_sn={}", id_, h.cmdSn);
    return true;
  }
  if (check == Session::CmdSnCheck::Accept) session_->commandDone();
  ++ctx_->stats.taskManagement;
  wire::TaskMgmtResponse rsp;
  rsp.initiatorTaskTag = h.initiatorTaskTag;
  std::vector<std::shared_ptr<Task>> waitFor;
  bool coldReset = false;
  auto fn = static_cast<wire::TmfFunction>(h.function & 0x7f);
  std::uint32_t lunNumber = wire::decodeLun(h.lun);
  std::string_view name = "unsupported";
  switch (fn) {
    case wire::TmfFunction::AbortTask: {
      name = "abort_task";
      auto it = tasks_.find(h.referencedTaskTag);
      if (it != tasks_.end()) {
        waitFor = abortTasks(h.referencedTaskTag);
        rsp.response = static_cast<std::uint8_t>(wire::TmfResponseCode::FunctionComplete);
      } else if (snLessEq(expBefore, h.refCmdSn) && snLess(h.refCmdSn, h.cmdSn)) {
        // §11.5.1 b): a command not received yet, within the valid CmdSN window and before this
        // request: it is considered received and aborted (with one connection per session, commands
        // arrive in order, so the initiator never sent it).
        session_->skipCmdSn(h.refCmdSn);
        rsp.response = static_cast<std::uint8_t>(wire::TmfResponseCode::FunctionComplete);
      } else {
        // §11.5.1 c): RefCmdSN outside the window, i.e. a task that already completed (its CmdSN
        // is below ExpCmdSN and its status went out) or one never issued: "Task does not exist".
        rsp.response = static_cast<std::uint8_t>(wire::TmfResponseCode::TaskDoesNotExist);
      }
      break;
    }
    case wire::TmfFunction::AbortTaskSet:
    case wire::TmfFunction::ClearTaskSet:
      name = fn == wire::TmfFunction::AbortTaskSet ? "abort_task_set" : "clear_task_set";
      if (lunNumber != 0) {
        rsp.response = static_cast<std::uint8_t>(wire::TmfResponseCode::LunDoesNotExist);
        break;
      }
      waitFor = abortTasks(std::nullopt);
      rsp.response = static_cast<std::uint8_t>(wire::TmfResponseCode::FunctionComplete);
      break;
    case wire::TmfFunction::LogicalUnitReset:
    case wire::TmfFunction::TargetWarmReset:
      name = fn == wire::TmfFunction::LogicalUnitReset ? "lun_reset" : "target_warm_reset";
      if (fn == wire::TmfFunction::LogicalUnitReset && lunNumber != 0) {
        rsp.response = static_cast<std::uint8_t>(wire::TmfResponseCode::LunDoesNotExist);
        break;
      }
      waitFor = abortTasks(std::nullopt);
      if (session_->lun() && session_->lun()->lun) session_->lun()->lun->reset();
      rsp.response = static_cast<std::uint8_t>(wire::TmfResponseCode::FunctionComplete);
      break;
    case wire::TmfFunction::TargetColdReset:
      // §11.5.1: a warm reset, then every connection to this target closes (each host has its own
      // target, so only this host's sessions go). The response is sent first (finishTmf).
      name = "target_cold_reset";
      waitFor = abortTasks(std::nullopt);
      if (session_->lun() && session_->lun()->lun) session_->lun()->lun->reset();
      rsp.response = static_cast<std::uint8_t>(wire::TmfResponseCode::FunctionComplete);
      coldReset = true;
      break;
    case wire::TmfFunction::TaskReassign:
      name = "task_reassign";
      rsp.response = static_cast<std::uint8_t>(wire::TmfResponseCode::ReassignmentNotSupported);
      break;
    default:
      rsp.response = static_cast<std::uint8_t>(wire::TmfResponseCode::NotSupported);
      break;
  }
  PXD_INFO("iscsi.task_management", "conn={} function={} ref_itt={:#x} response={} waiting={}", id_, name,
           h.referencedTaskTag, rsp.response, waitFor.size());
  auto self = shared_from_this();
  if (coldReset) coldReset_ = true;  // nothing after the reset is processed
  asio::co_spawn(socket_.get_executor(),
                 [self, waitFor, rsp, coldReset]() { return self->finishTmf(waitFor, rsp, coldReset); },
                 asio::detached);
  return true;
}

asio::awaitable<void> Connection::finishTmf(std::vector<std::shared_ptr<Task>> waitFor, wire::TaskMgmtResponse rsp,
                                            bool closeTarget) {
  auto self = shared_from_this();
  // §11.5: the response goes out after every affected task has ended.
  for (auto& t : waitFor) {
    // The timer exists only for tasks a TMF waits on (most commands never need one).
    if (t->state != Task::State::Done && !t->done) t->done = std::make_unique<asio::steady_timer>(socket_.get_executor());
    while (t->state != Task::State::Done && !closed_) co_await waitOn(*t->done);
  }
  if (closed_) co_return;
  fillSn(rsp.statSn, rsp.expCmdSn, rsp.maxCmdSn, true);
  queue(rsp);
  if (!closeTarget) co_return;
  // TARGET COLD RESET: the other connections to this target are cut off; this one ends the way a
  // drain does (the reader stops, the queued response is written, then the socket closes).
  std::vector<std::shared_ptr<Connection>> others;
  const std::string target = session_ ? session_->key().target : std::string();
  ctx_->sessions.forEach([&](const std::shared_ptr<Session>& s) {
    if (s->key().target != target || s->owner == id_) return;
    if (auto it = ctx_->connections.find(s->owner); it != ctx_->connections.end()) {
      if (auto c = it->second.lock()) others.push_back(std::move(c));
    }
  });
  for (auto& c : others) c->abort(Drop::TargetReset, "target cold reset by another session");
  drain(Drop::TargetReset);
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

// ---- output -----------------------------------------------------------------------------------

void Connection::fillSn(std::uint32_t& statSn, std::uint32_t& expCmdSn, std::uint32_t& maxCmdSn, bool advance) {
  statSn = advance ? statSn_++ : statSn_;
  if (session_) {
    expCmdSn = session_->expCmdSn();
    maxCmdSn = session_->maxCmdSn();
  } else {
    expCmdSn = loginCmdSn_;
    maxCmdSn = loginCmdSn_ + kCommandWindow - 1;
  }
}

void Connection::reject(wire::RejectReason reason, const wire::Bhs& bhs, Drop why, std::string_view detail) {
  ++ctx_->stats.rejects;
  ++rejectsSent_;
  ctx_->stats.drop(why);
  PXD_DEBUG("iscsi.reject", "conn={} peer={} reason={} opcode={} itt={:#x} detail={}", id_, peer_, dropName(why),
            wire::opcodeName(wire::opcodeOf(bhs)), static_cast<std::uint32_t>(bhs[16]) << 24 | bhs[17] << 16 | bhs[18] << 8 | bhs[19],
            log::q(detail));
  wire::Reject r = wire::makeReject(reason);
  fillSn(r.statSn, r.expCmdSn, r.maxCmdSn, true);
  auto data = std::make_shared<std::vector<std::uint8_t>>(bhs.begin(), bhs.end());
  queue(r, data, 0, data->size());
}

template <typename H>
void Connection::queue(H header, std::shared_ptr<const std::vector<std::uint8_t>> data, std::size_t offset,
                       std::size_t length, std::shared_ptr<blockstore::PipeChain> pipe) {
  if (closed_) return;
  header.dataSegmentLength = static_cast<std::uint32_t>(length);
  wire::Bhs bhs = wire::serialize(header);
  OutPdu pdu;
  pdu.head.assign(bhs.begin(), bhs.end());
  const bool digests = fullFeature_;
  if (digests && params_.headerDigest) {
    std::array<std::uint8_t, 4> d{};
    wire::writeDigest(wire::crc32c(bhs), d);
    pdu.head.insert(pdu.head.end(), d.begin(), d.end());
  }
  if (length > 0 && pipe) {
    // Runs without a data digest only (Command::spliceOk): the bytes are pages we never read.
    pdu.pipe = std::move(pipe);
    pdu.length = length;
    pdu.tailLength = wire::pad4(static_cast<std::uint32_t>(length));
  } else if (length > 0 && data) {
    pdu.data = std::move(data);
    pdu.offset = offset;
    pdu.length = length;
    std::uint32_t pad = wire::pad4(static_cast<std::uint32_t>(length));
    pdu.tailLength = pad;
    if (digests && params_.dataDigest) {
      std::uint32_t crc = wire::crc32cUpdate(wire::kCrc32cInit, std::span(pdu.data->data() + offset, length));
      static constexpr std::array<std::uint8_t, 4> zeros{};
      crc = wire::crc32cUpdate(crc, std::span(zeros.data(), pad));
      wire::writeDigest(wire::crc32cFinal(crc), std::span<std::uint8_t, 4>(pdu.tail.data() + pad, 4));
      pdu.tailLength += 4;
    }
  }
  outBytes_ += pdu.head.size() + pdu.length + pdu.tailLength;
  outq_.push_back(std::move(pdu));
  writeSignal_.cancel();
}

asio::awaitable<void> Connection::writeLoop() {
  auto self = shared_from_this();
  std::vector<asio::const_buffer> bufs;
  while (true) {
    while (outq_.empty() && !closed_) co_await waitOn(writeSignal_);
    if (closed_) break;
    if (outq_.front().pipe) {
      OutPdu& p = outq_.front();
      const std::size_t bytes = p.head.size() + p.length + p.tailLength;
      std::error_code ec = co_await sendSpliced(p, outq_.size() > 1);
      if (ec) {
        if (!closed_) abort(Drop::PeerClosed, "write: " + ec.message());
        break;
      }
      if (!outq_.empty()) outq_.pop_front();
      outBytes_ -= std::min(outBytes_, bytes);
      if (outq_.empty() || outBytes_ <= kWriteHighWater) drainSignal_.cancel();
      continue;
    }
    bufs.clear();
    std::size_t count = 0, bytes = 0;
    for (const auto& p : outq_) {
      if (count == 64 || bytes > (4u << 20) || p.pipe) break;
      bufs.emplace_back(p.head.data(), p.head.size());
      if (p.length > 0) bufs.emplace_back(p.data->data() + p.offset, p.length);
      if (p.tailLength > 0) bufs.emplace_back(p.tail.data(), p.tailLength);
      bytes += p.head.size() + p.length + p.tailLength;
      ++count;
    }
    std::error_code ec;
    co_await asio::async_write(socket_, bufs, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (!closed_) abort(Drop::PeerClosed, "write: " + ec.message());
      break;
    }
    for (std::size_t i = 0; i < count && !outq_.empty(); ++i) outq_.pop_front();
    outBytes_ -= std::min(outBytes_, bytes);
    if (outq_.empty() || outBytes_ <= kWriteHighWater) drainSignal_.cancel();
  }
  outq_.clear();
  outBytes_ = 0;
  writerDone_ = true;
  drainSignal_.cancel();
}

asio::awaitable<std::error_code> Connection::sendAll(const std::uint8_t* data, std::size_t size, bool more) {
  const int fd = socket_.native_handle();
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_DONTWAIT | MSG_NOSIGNAL | (more ? MSG_MORE : 0));
    if (n > 0) {
      data += n;
      size -= static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) co_return std::error_code(errno, std::system_category());
    std::error_code ec;
    co_await socket_.async_wait(asio::socket_base::wait_write, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return ec;
    if (closed_) co_return asio::error::operation_aborted;
  }
  co_return std::error_code{};
}

asio::awaitable<std::error_code> Connection::sendSpliced(OutPdu& p, bool moreFollows) {
  // The head is always followed by its data: MSG_MORE keeps it out of a segment of its own.
  if (auto ec = co_await sendAll(p.head.data(), p.head.size(), true)) co_return ec;
  const int fd = socket_.native_handle();
  std::size_t left = p.length;
  while (left > 0) {
    ssize_t n = p.pipe->spliceTo(fd, left, p.tailLength > 0 || moreFollows);
    if (n > 0) {
      left -= static_cast<std::size_t>(n);
      continue;
    }
    if (n == -EINTR) continue;
    if (n != -EAGAIN) co_return std::error_code(static_cast<int>(-n), std::system_category());
    std::error_code ec;
    co_await socket_.async_wait(asio::socket_base::wait_write, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return ec;
    if (closed_) co_return asio::error::operation_aborted;
  }
  if (p.tailLength > 0) co_return co_await sendAll(p.tail.data(), p.tailLength, moreFollows);
  co_return std::error_code{};
}

asio::awaitable<void> Connection::timerLoop() {
  auto self = shared_from_this();
  while (!closed_) {
    const auto& cfg = ctx_->registry ? ctx_->registry->config() : config::IscsiConfig{};
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
