#include "nbd/service.hpp"

#include "common/log.hpp"
#include "nbd/metrics.hpp"
#include "nbd/tls.hpp"

namespace pxedust::nbd {

NbdService::NbdService(event::Loop& loop, std::shared_ptr<blockstore::HostDisks> disks,
                       std::shared_ptr<blockstore::WorkerPool> pool)
    : loop_(loop),
      ctx_(std::make_shared<ServiceContext>(loop.executor())),
      listeners_(loop.io(), "nbd", [this](asio::ip::tcp::socket s) { accept(std::move(s)); }) {
  ctx_->pool = std::move(pool);
  ctx_->disks = std::make_unique<DiskCache>(std::move(disks), *ctx_->pool, loop.executor());
  ctx_->events = [this](const boot::Event& e) { report(e); };
}

NbdService::~NbdService() {
  listeners_.closeAll();
  abortConnections();
  ctx_->events = nullptr;  // connections outliving the service report nowhere
}

void NbdService::collect(metrics::Writer& out) const {
  collectMetrics(ctx_->stats, ctx_->sessions, ctx_->connections.size(), out);
}

// What prepare() made: the listeners the new config adds (bound, not yet accepting) and the new
// export registry. Dropped uncommitted, the new listeners close.
struct NbdService::Staged final : service::Staged {
  std::shared_ptr<const ExportRegistry> registry;
  event::TcpListeners::Staged listeners;
};

Result<std::unique_ptr<service::Staged>> NbdService::prepare(const config::Config& config,
                                                             std::shared_ptr<const inventory::Inventory> hosts) {
  const auto* section = configIn(config);
  if (section == nullptr) return Error{"nbd: the configuration has no [nbd] section"};
  auto staged = prepareSection(*section, std::move(hosts));
  if (!staged) return staged.error();
  return std::unique_ptr<service::Staged>(std::move(*staged));
}

Result<std::unique_ptr<NbdService::Staged>> NbdService::prepareSection(
    const Config& config, std::shared_ptr<const inventory::Inventory> hosts) {
  auto staged = std::make_unique<Staged>();
  std::vector<asio::ip::tcp::endpoint> listen;
  for (const auto& a : config.listen) listen.emplace_back(a.address, a.port);
  if (listen.empty()) listen.emplace_back(asio::ip::address_v4::any(), 10809);
  auto listeners = listeners_.stage(listen);
  if (!listeners) return listeners.error();  // what it bound closes with it
  staged->listeners = std::move(*listeners);
  staged->registry = std::make_shared<const ExportRegistry>(config, std::move(hosts));
  return staged;
}

Result<void> NbdService::apply(const Config& config, std::shared_ptr<const inventory::Inventory> hosts) {
  auto staged = prepareSection(config, std::move(hosts));
  if (!staged) return staged.error();
  commit(std::move(*staged));
  return {};
}

std::vector<std::shared_ptr<Connection>> NbdService::live() const {
  std::vector<std::shared_ptr<Connection>> out;
  for (const auto& [id, w] : ctx_->connections)
    if (auto c = w.lock()) out.push_back(std::move(c));
  return out;
}

void NbdService::commit(std::unique_ptr<service::Staged> base) noexcept {
  auto& staged = static_cast<Staged&>(*base);
  if (stopping_) return;  // shutting down: the staged listeners close with it
  listeners_.commit(std::move(staged.listeners));
  const auto& registry = staged.registry;
  ctx_->registry = registry;
  auto forgotten = ctx_->disks->retain(*registry);
  // Sessions whose export is gone, changed disk, or no longer admits the client (its address, its PSK
  // identity, or its lack of TLS once tls = "require").
  for (auto& c : live()) {
    if (!c->inSession()) continue;
    std::string_view why;
    if (c->imageSession()) {
      bool refused = false;
      if (!registry->findImage(c->exportName(), c->client(), refused)) why = "image export no longer open to this client";
    } else {
      const Export* e = registry->find(c->exportName());
      if (!e) why = "export removed on reload";
      else if (e->host.name != c->host() || e->host.disk.image != c->image()) why = "export changed disk on reload";
      else why = registry->refusal(*e, c->client());
    }
    if (!why.empty()) {
      PXD_INFO("nbd.session_removed", "conn={} export={} reason={}", c->id(), log::q(c->exportName()), log::q(why));
      c->abort(Drop::ExportRemoved, why);
    }
  }
  const auto& tls = registry->config();
  PXD_INFO("nbd.applied", "exports={} listeners={} sessions={} disks_dropped={} tls={} tls_credentials={}",
           registry->exports().size(), listeners_.size(), ctx_->sessions, forgotten.size(), tlsModeName(tls.tls),
           tls.tlsCredentials ? tls.tlsCredentials->kinds() : std::string_view("none"));
}

void NbdService::accept(asio::ip::tcp::socket socket) {
  ++ctx_->stats.connectionsAccepted;
  std::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  const auto registry = ctx_->registry;
  const Config defaults;
  const Config& cfg = registry ? registry->config() : defaults;
  std::size_t fromPeer = 0;
  for (const auto& c : live())
    if (c->peerAddress() == remote.address()) ++fromPeer;
  std::string_view refused;
  if (stopping_) refused = "shutdown";
  else if (ctx_->connections.size() >= cfg.maxConnections) refused = "max_connections";
  else if (fromPeer >= cfg.maxConnectionsPerClient) refused = "max_connections_per_client";
  auto ticket = refused.empty() ? loop_.gate().enter() : std::nullopt;
  if (!refused.empty() || !ticket) {
    ctx_->stats.drop(stopping_ || !ticket ? Drop::Shutdown : Drop::TooManyConnections);
    PXD_WARN("nbd.connection_refused", "peer={}:{} reason={}", remote.address().to_string(), remote.port(),
             refused.empty() ? "shutdown" : refused);
    socket.close(ec);
    return;
  }
  std::uint64_t id = ctx_->nextConnectionId++;
  PXD_DEBUG("nbd.connection", "conn={} peer={}:{}", id, remote.address().to_string(), remote.port());
  auto c = std::make_shared<Connection>(ctx_, std::move(socket), std::move(*ticket), id);
  ctx_->connections[id] = c;
  c->start();
}

void NbdService::stop() {
  if (stopping_) return;
  stopping_ = true;
  ctx_->shuttingDown = true;
  listeners_.closeAll();
  for (auto& c : live()) c->drain(Drop::Shutdown);
}

void NbdService::abortConnections() {
  for (auto& c : live()) c->abort(Drop::Shutdown, "shutdown");
}

std::vector<service::DiskSession> NbdService::diskSessions() const {
  std::vector<service::DiskSession> out;
  for (const auto& c : live())
    if (c->inSession()) out.push_back({"nbd", c->host(), c->peerAddress().to_string(), {}, c->exportName()});
  return out;
}

void NbdService::releaseDisk(std::string_view host) {
  for (auto& c : live()) {
    if (!c->holdsDisk(host)) continue;
    PXD_INFO("nbd.session_removed", "conn={} export={} reason=\"disk released for an overlay reset\"", c->id(),
             log::q(c->exportName()));
    c->abort(Drop::DiskReleased, "disk released for an overlay reset");
  }
  ctx_->disks->forget(host);
}

}  // namespace pxedust::nbd
