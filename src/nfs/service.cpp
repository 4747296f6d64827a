#include "nfs/service.hpp"

#include <algorithm>
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

constexpr std::uint16_t kPortmapPort = 111;  // IANA "sunrpc"

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
      listeners_(loop.io(), "nfs", [this](asio::ip::tcp::socket s) { accept(std::move(s)); }),
      portmapListeners_(loop.io(), "nfs.portmap", [this](asio::ip::tcp::socket s) { accept(std::move(s)); }) {
  ctx_->pool = std::move(pool);
  const auto key = keyOrThrow(*store);
  ctx_->exports = std::make_shared<ImageExports>(std::move(store), std::move(opener));
  std::weak_ptr<ImageExports> exports = ctx_->exports;
  Resolver resolver = [exports](const wire::ImageId& id, std::uint32_t version) -> std::shared_ptr<const Export> {
    auto e = exports.lock();
    return e ? e->byHandle(id, version) : nullptr;
  };
  ctx_->procedures = std::make_shared<const Procedures>(key, resolver);
  ctx_->udpProcedures = std::make_shared<const Procedures>(key, resolver, kUdpLimits);
  ctx_->events = [this](const boot::Event& e) { report(e); };
}

NfsService::~NfsService() {
  listeners_.closeAll();
  portmapListeners_.closeAll();
  closeDatagramSockets();
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
  event::TcpListeners::Staged portmapListeners;
  std::uint16_t port = 0;  // where NFS and MOUNT are: the first listen address's (real) port
  std::map<std::string, std::shared_ptr<DatagramSocket>> datagrams;  // every UDP socket of the new config
  std::vector<std::shared_ptr<DatagramSocket>> opened;              // the new ones among them
  bool committed = false;
  ~Staged() override {
    if (committed) return;
    for (auto& d : opened) d->close();
  }
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
  std::vector<asio::ip::tcp::endpoint> listen, portmap;
  for (const auto& a : config.listen) listen.emplace_back(a.address, a.port);
  if (listen.empty()) listen.emplace_back(asio::ip::address_v4::any(), 2049);
  if (config.portmap)
    for (const auto& a : listen)
      if (std::find(portmap.begin(), portmap.end(), asio::ip::tcp::endpoint(a.address(), kPortmapPort)) == portmap.end())
        portmap.emplace_back(a.address(), kPortmapPort);
  auto listeners = listeners_.stage(listen);
  if (!listeners) return listeners.error();
  staged->listeners = std::move(*listeners);
  auto pmListeners = portmapListeners_.stage(portmap);
  if (!pmListeners) return pmListeners.error();
  staged->portmapListeners = std::move(*pmListeners);
  if (auto first = listeners_.bound(staged->listeners, listen.front())) staged->port = first->port();
  if (config.udp) {
    // Keyed by the TCP address as configured; bound to the port its TCP listener has.
    auto open = [&](const event::TcpListeners& tcpSide, const event::TcpListeners::Staged& tcpStaged,
                    const asio::ip::tcp::endpoint& a, std::string_view kind) -> Result<void> {
      const std::string key = std::string(kind) + "|" + a.address().to_string() + "|" + std::to_string(a.port());
      if (auto it = datagrams_.find(key); it != datagrams_.end()) {
        staged->datagrams.emplace(key, it->second);
        return {};
      }
      const auto tcp = tcpSide.bound(tcpStaged, a);
      auto d = std::make_shared<DatagramSocket>(ctx_, loop_.io());
      if (auto r = d->open(asio::ip::udp::endpoint(a.address(), tcp ? tcp->port() : a.port())); !r)
        return Error{"[nfs] udp " + r.error().message, r.error().code};  // the staged object closes the others
      staged->opened.push_back(d);
      staged->datagrams.emplace(key, std::move(d));
      return {};
    };
    for (const auto& a : listen)
      if (auto r = open(listeners_, staged->listeners, a, "nfs"); !r) return r.error();
    for (const auto& a : portmap)
      if (auto r = open(portmapListeners_, staged->portmapListeners, a, "portmap"); !r) return r.error();
  }
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
  staged.committed = true;
  listeners_.commit(std::move(staged.listeners));
  portmapListeners_.commit(std::move(staged.portmapListeners));
  for (auto& [key, d] : datagrams_)
    if (!staged.datagrams.contains(key)) {
      PXD_INFO("nfs.udp_closed", "address={}", d->label());
      d->close();
    }
  datagrams_ = std::move(staged.datagrams);
  ctx_->generation = staged.generation;
  for (auto& d : staged.opened) {
    PXD_INFO("nfs.udp_listening", "address={}", d->label());
    d->start();
  }
  // What PORTMAP tells: NFS, NFS_ACL and MOUNT share the first listen address's port, over TCP and
  // (when on) UDP; PORTMAP itself is on 111 when asked for, else there too.
  const std::uint16_t port = staged.port;
  const std::uint16_t udpPort = staged.generation->config.udp ? port : 0;
  const bool portmap = staged.generation->config.portmap;
  ctx_->ports = Ports{};
  ctx_->ports.nfsTcp = ctx_->ports.mountTcp = port;
  ctx_->ports.nfsUdp = ctx_->ports.mountUdp = udpPort;
  ctx_->ports.portmapTcp = portmap ? kPortmapPort : port;
  ctx_->ports.portmapUdp = portmap && udpPort != 0 ? kPortmapPort : udpPort;
  PXD_INFO("nfs.applied", "listeners={} portmap_listeners={} udp={} port={}", listeners_.size(),
           portmapListeners_.size(), datagrams_.size(), port);
}

std::vector<std::string> NfsService::endpoints() const {
  auto out = listeners_.endpointTexts();
  for (auto& e : portmapListeners_.endpointTexts()) out.push_back(std::move(e));
  return out;
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
  portmapListeners_.closeAll();
  closeDatagramSockets();
  for (auto& c : live()) c->drain();
}

void NfsService::closeDatagramSockets() {
  for (auto& [key, d] : datagrams_) d->close();
  datagrams_.clear();
}

void NfsService::abortConnections() {
  for (auto& c : live()) c->abort(Drop::Shutdown, "shutdown");
}

}  // namespace pxedust::nfs
