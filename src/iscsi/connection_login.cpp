// Connection, the login phase (RFC 7143 §6): the LoginMachine's hooks (authorization, session
// admission and reinstatement, §6.3.4), opening the disk before the final response, and the move to
// the full feature phase. Part of the Connection class (connection.hpp).
#include <memory>

#include "common/log.hpp"
#include "iscsi/connection_internal.hpp"

namespace pxedust::iscsi {

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
  const auto v4 = inventory::peerIpv4(peerAddress_);
  if (!v4) return;  // hosts are tracked by IPv4 address
  boot::DiskEvent e;
  e.protocol = boot::DiskProtocol::Iscsi;
  e.kind = kind;
  e.client = boot::Ipv4(v4->to_uint());
  if (session_ && session_->lun()) e.hostName = session_->lun()->host;
  else if (const Target* t = ctx_->registry ? ctx_->registry->find(target) : nullptr) e.hostName = t->host.name;
  e.initiator = initiator;
  e.reason = reason;
  ctx_->events(boot::Event{{}, std::move(e)});
}

}  // namespace pxedust::iscsi
