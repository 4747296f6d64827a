#include "nfs/service.hpp"

#include <stdexcept>

#include "common/log.hpp"
#include "metrics/counters.hpp"

namespace pxedust::nfs {
namespace {

#define ROW(member, name, help) PXEDUST_COUNTER_ROW(NfsStats, member, name, help)
constexpr metrics::CounterRow<NfsStats> kCounters[] = {PXEDUST_NFS_COUNTERS(ROW)};
#undef ROW

constexpr std::string_view kReason[] = {"reason"};
constexpr metrics::Family kDrops{"pxedust_nfs_drops_total", "Connections ended, by reason.", metrics::Type::Counter,
                                 kReason};
constexpr metrics::Family kConnections{"pxedust_nfs_connections_active", "TCP connections open now.",
                                       metrics::Type::Gauge};
constexpr metrics::Family kExportsOpen{"pxedust_nfs_exports_open",
                                       "Image versions whose file system is open (mounted since the start).",
                                       metrics::Type::Gauge};

wire::HandleKey keyOrThrow(const blockstore::Store& store) {
  auto key = loadHandleKey(store.dir());
  if (!key) throw std::runtime_error("nfs: the file handle key: " + key.error().message);
  return *key;
}

}  // namespace

NfsService::NfsService(event::Loop& loop, std::shared_ptr<blockstore::Store> store,
                       std::shared_ptr<blockstore::WorkerPool> pool, FsOpener opener)
    : loop_(loop),
      ctx_(std::make_shared<ServiceContext>(loop.executor())),
      listeners_(loop.io(), "nfs", [this](asio::ip::tcp::socket s) { accept(std::move(s)); }) {
  ctx_->pool = std::move(pool);
  const auto key = keyOrThrow(*store);
  ctx_->exports = std::make_shared<ImageExports>(std::move(store), std::move(opener));
  std::weak_ptr<ImageExports> exports = ctx_->exports;
  ctx_->procedures = std::make_shared<const Procedures>(
      key, [exports](const wire::ImageId& id, std::uint32_t version) -> std::shared_ptr<const Export> {
        auto e = exports.lock();
        return e ? e->byHandle(id, version) : nullptr;
      });
  ctx_->events = [this](const boot::Event& e) { report(e); };
}

NfsService::~NfsService() {
  listeners_.closeAll();
  abortConnections();
  ctx_->events = nullptr;
}

void NfsService::collect(metrics::Writer& out) const {
  metrics::writeCounters(ctx_->stats, kCounters, out);
  metrics::writeIndexed(kDrops, kDropNames, ctx_->stats.drops, out);
  out.sample(kConnections, ctx_->connections.size());
  out.sample(kExportsOpen, ctx_->exports->open());
}

struct NfsService::Staged final : service::Staged {
  std::shared_ptr<const Generation> generation;
  event::TcpListeners::Staged listeners;
  std::vector<asio::ip::tcp::endpoint> listen;
};

Result<std::unique_ptr<service::Staged>> NfsService::prepare(const config::Config& config,
                                                             std::shared_ptr<const inventory::Inventory> hosts) {
  const auto* section = configIn(config);
  if (section == nullptr) return Error{"nfs: the configuration has no [nfs] section"};
  auto staged = prepareSection(*section, std::move(hosts));
  if (!staged) return staged.error();
  return std::unique_ptr<service::Staged>(std::move(*staged));
}

Result<std::unique_ptr<NfsService::Staged>> NfsService::prepareSection(const Config& config,
                                                                     std::shared_ptr<const inventory::Inventory> hosts) {
  auto staged = std::make_unique<Staged>();
  std::vector<asio::ip::tcp::endpoint> listen;
  for (const auto& a : config.listen) listen.emplace_back(a.address, a.port);
  if (listen.empty()) listen.emplace_back(asio::ip::address_v4::any(), 2049);
  auto listeners = listeners_.stage(listen);
  if (!listeners) return listeners.error();
  staged->listeners = std::move(*listeners);
  auto gen = std::make_shared<Generation>();
  gen->config = config;
  gen->rules = std::make_shared<const ExportRules>(std::move(hosts));
  staged->generation = std::move(gen);
  return staged;
}

Result<void> NfsService::apply(const Config& config, std::shared_ptr<const inventory::Inventory> hosts) {
  auto staged = prepareSection(config, std::move(hosts));
  if (!staged) return staged.error();
  commit(std::move(*staged));
  return {};
}

void NfsService::commit(std::unique_ptr<service::Staged> base) noexcept {
  auto& staged = static_cast<Staged&>(*base);
  if (stopping_) return;
  listeners_.commit(std::move(staged.listeners));
  ctx_->generation = staged.generation;
  // What PORTMAP tells: NFS and MOUNT share the first TCP listener's port.
  const auto eps = listeners_.endpoints();
  const std::uint16_t port = eps.empty() ? 0 : eps.front().port();
  ctx_->ports = Ports{};
  ctx_->ports.portmapTcp = ctx_->ports.nfsTcp = ctx_->ports.mountTcp = port;
  PXD_INFO("nfs.applied", "listeners={} port={}", listeners_.size(), port);
}

std::vector<std::shared_ptr<Connection>> NfsService::live() const {
  std::vector<std::shared_ptr<Connection>> out;
  for (const auto& [id, w] : ctx_->connections)
    if (auto c = w.lock()) out.push_back(std::move(c));
  return out;
}

void NfsService::accept(asio::ip::tcp::socket socket) {
  ++ctx_->stats.connectionsAccepted;
  std::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  const auto& cfg = ctx_->generation->config;
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
    PXD_WARN("nfs.connection_refused", "peer={}:{} reason={}", remote.address().to_string(), remote.port(),
             refused.empty() ? "shutdown" : refused);
    socket.close(ec);
    return;
  }
  const std::uint64_t id = ctx_->nextConnectionId++;
  auto c = std::make_shared<Connection>(ctx_, std::move(socket), std::move(*ticket), id);
  ctx_->connections[id] = c;
  c->start();
}

void NfsService::stop() {
  if (stopping_) return;
  stopping_ = true;
  ctx_->shuttingDown = true;
  listeners_.closeAll();
  for (auto& c : live()) c->drain();
}

void NfsService::abortConnections() {
  for (auto& c : live()) c->abort(Drop::Shutdown, "shutdown");
}

}  // namespace pxedust::nfs
