#include "iscsi/service.hpp"

#include <sys/random.h>

#include <set>

#include "common/log.hpp"
#include "iscsi/metrics.hpp"

namespace pxedust::iscsi {

namespace {
void cryptoRandom(std::span<std::uint8_t> out) {
  std::size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::getrandom(out.data() + got, out.size() - got, 0);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      break;
    }
    got += static_cast<std::size_t>(n);
  }
}
}  // namespace

IscsiService::IscsiService(event::Loop& loop, std::shared_ptr<blockstore::HostDisks> disks,
                           std::shared_ptr<blockstore::WorkerPool> pool)
    : loop_(loop),
      ctx_(std::make_shared<ServiceContext>(loop.executor())),
      listeners_(loop.io(), "iscsi", [this](asio::ip::tcp::socket s) { accept(std::move(s)); }) {
  ctx_->pool = std::move(pool);
  ctx_->luns = std::make_unique<LunCache>(std::move(disks), *ctx_->pool, loop.executor(), 1);
  ctx_->random = cryptoRandom;
  ctx_->events = [this](const boot::Event& e) { report(e); };
}

IscsiService::~IscsiService() {
  listeners_.closeAll();
  abortConnections();
}

void IscsiService::collect(metrics::Writer& out) const {
  collectMetrics(ctx_->stats, ctx_->sessions.size(), ctx_->connections.size(), out);
}

std::vector<std::string> IscsiService::endpoints() const { return listeners_.endpointTexts(); }

std::vector<asio::ip::tcp::endpoint> IscsiService::listenEndpoints() const { return listeners_.endpoints(); }

// What prepare() made: the listeners the new config adds (bound, not yet accepting) and the new
// target registry. Dropped uncommitted, the new listeners close.
struct IscsiService::Staged final : service::Staged {
  Config config;
  std::shared_ptr<const TargetRegistry> registry;
  event::TcpListeners::Staged listeners;
};

Result<std::unique_ptr<service::Staged>> IscsiService::prepare(const config::Config& config,
                                                               std::shared_ptr<const inventory::Inventory> hosts) {
  const auto* section = configIn(config);
  if (section == nullptr) return Error{"iscsi: the configuration has no [iscsi] section"};
  auto staged = prepareSection(*section, std::move(hosts));
  if (!staged) return staged.error();
  return std::unique_ptr<service::Staged>(std::move(*staged));
}

Result<std::unique_ptr<IscsiService::Staged>> IscsiService::prepareSection(
    const Config& config, std::shared_ptr<const inventory::Inventory> hosts) {
  auto staged = std::make_unique<Staged>();
  std::vector<asio::ip::tcp::endpoint> listen;
  for (const auto& a : config.listen) listen.emplace_back(a.address, a.port);
  if (listen.empty()) listen.emplace_back(asio::ip::address_v4::any(), 3260);
  auto listeners = listeners_.stage(listen);
  if (!listeners) return listeners.error();  // what it bound closes with it
  staged->listeners = std::move(*listeners);
  staged->config = config;
  staged->registry = std::make_shared<const TargetRegistry>(config, std::move(hosts));
  return staged;
}

Result<void> IscsiService::apply(const Config& config, std::shared_ptr<const inventory::Inventory> hosts) {
  auto staged = prepareSection(config, std::move(hosts));
  if (!staged) return staged.error();
  commit(std::move(*staged));
  return {};
}

void IscsiService::commit(std::unique_ptr<service::Staged> base) noexcept {
  auto& staged = static_cast<Staged&>(*base);
  if (stopping_) return;  // shutting down: the staged listeners close with it
  const auto& config = staged.config;
  listeners_.commit(std::move(staged.listeners));
  maxConnections_ = config.maxConnections;

  const auto& registry = staged.registry;
  ctx_->registry = registry;
  ctx_->luns->setPortalGroupTag(config.portalGroupTag);
  auto forgotten = ctx_->luns->retain(*registry);
  // Sessions whose target is gone, changed disk, or no longer admits them.
  std::vector<std::shared_ptr<Session>> closing;
  ctx_->sessions.forEach([&](const std::shared_ptr<Session>& s) {
    if (s->isDiscovery()) return;
    const Target* t = registry->find(s->key().target);
    bool keep = t && s->lun() && t->host.name == s->lun()->host && t->host.disk.image &&
                *t->host.disk.image == s->lun()->image && TargetRegistry::admitsInitiator(*t, s->key().initiator);
    if (!keep) closing.push_back(s);
  });
  for (auto& s : closing) {
    PXD_INFO("iscsi.session_removed", "initiator={} target={} reason=\"target removed or changed on reload\"",
             log::q(s->key().initiator), log::q(s->key().target));
    closeSession(*s, Drop::TargetRemoved, "target removed or changed on reload");
  }
  PXD_INFO("iscsi.applied", "targets={} listeners={} sessions={} luns_dropped={}", registry->targets().size(),
           listeners_.size(), ctx_->sessions.size(), forgotten.size());
}

void IscsiService::accept(asio::ip::tcp::socket socket) {
  ++ctx_->stats.connectionsAccepted;
  std::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  if (stopping_ || ctx_->connections.size() >= maxConnections_) {
    ctx_->stats.drop(stopping_ ? Drop::Shutdown : Drop::TooManyConnections);
    PXD_WARN("iscsi.connection_refused", "peer={}:{} reason={}", remote.address().to_string(), remote.port(),
             stopping_ ? "shutdown" : "too_many_connections");
    socket.close(ec);
    return;
  }
  auto ticket = loop_.gate().enter();
  if (!ticket) {
    ctx_->stats.drop(Drop::Shutdown);
    socket.close(ec);
    return;
  }
  std::uint64_t id = ctx_->nextConnectionId++;
  PXD_DEBUG("iscsi.connection", "conn={} peer={}:{}", id, remote.address().to_string(), remote.port());
  auto c = std::make_shared<Connection>(ctx_, std::move(socket), std::move(*ticket), id);
  ctx_->connections[id] = c;
  ++ctx_->stats.connectionsActive;
  c->start();
}

void IscsiService::stop() {
  if (stopping_) return;
  stopping_ = true;
  listeners_.closeAll();
  auto conns = ctx_->connections;
  for (auto& [id, w] : conns)
    if (auto c = w.lock()) c->drain(Drop::Shutdown);
}

void IscsiService::closeSession(Session& s, Drop why, std::string_view reason) {
  if (!s.close) return;
  if (auto it = ctx_->connections.find(s.owner); it != ctx_->connections.end()) {
    if (auto c = it->second.lock()) {
      c->abort(why, reason);
      return;
    }
  }
  s.close(reason);
}

std::vector<service::DiskSession> IscsiService::diskSessions() const {
  std::vector<service::DiskSession> out;
  ctx_->sessions.forEach([&](const std::shared_ptr<Session>& s) {
    if (s->isDiscovery() || !s->lun()) return;
    service::DiskSession d{"iscsi", s->lun()->host, {}, s->key().initiator, s->key().target};
    if (auto it = ctx_->connections.find(s->owner); it != ctx_->connections.end())
      if (auto c = it->second.lock()) d.client = c->peerAddress().to_string();
    out.push_back(std::move(d));
  });
  return out;
}

void IscsiService::releaseDisk(std::string_view host) {
  std::vector<std::shared_ptr<Session>> closing;
  ctx_->sessions.forEach([&](const std::shared_ptr<Session>& s) {
    if (!s->isDiscovery() && s->lun() && s->lun()->host == host) closing.push_back(s);
  });
  for (auto& s : closing) {
    PXD_INFO("iscsi.session_removed", "initiator={} target={} reason=\"disk released for an overlay reset\"",
             log::q(s->key().initiator), log::q(s->key().target));
    closeSession(*s, Drop::DiskReleased, "disk released for an overlay reset");
  }
  ctx_->luns->forget(host);
}

void IscsiService::abort() { abortConnections(); }

void IscsiService::abortConnections() {
  auto conns = ctx_->connections;
  for (auto& [id, w] : conns)
    if (auto c = w.lock()) c->abort(Drop::Shutdown, "shutdown");
}

}  // namespace pxedust::iscsi
