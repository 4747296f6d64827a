#include "http/service.hpp"

#include <fmt/format.h>

#include <set>

#include "common/log.hpp"
#include "http/connection.hpp"
#include "http/metrics.hpp"

namespace pxedust::http {

// What prepare() made: the new site (its root open) and the listeners the new config adds (bound,
// not yet accepting). Dropped uncommitted, the new listeners and the root close.
struct HttpService::Staged final : service::Staged {
  std::shared_ptr<const Site> site;
  event::TcpListeners::Staged listeners;
  event::TcpListeners::Staged apiListeners;
};

HttpService::HttpService(event::Loop& loop)
    : loop_(loop),
      shared_(std::make_shared<Shared>(loop)),
      listeners_(loop.io(), "http", [this](asio::ip::tcp::socket s) { accept(std::move(s), false); }),
      apiListeners_(loop.io(), "http.api", [this](asio::ip::tcp::socket s) { accept(std::move(s), true); }) {
  shared_->report = [this](const boot::FileEvent& event) { report(event); };
  shared_->reportHost = [this](const boot::HostEvent& event) { report(event); };
  shared_->readers = &readers_;
}

HttpService::~HttpService() {
  listeners_.closeAll();
  apiListeners_.closeAll();
  shared_->report = nullptr;  // connections may outlive the service by a callback or two
  shared_->reportHost = nullptr;
  shared_->readers = nullptr;
  abort();
  readers_.join();  // reads in flight end here, while the loop they answer to still exists
}

Result<std::unique_ptr<service::Staged>> HttpService::prepare(const config::Config& config,
                                                              std::shared_ptr<const inventory::Inventory> hosts) {
  const auto* section = configIn(config);
  if (section == nullptr) return Error{"http: the configuration has no [http] section"};
  auto staged = prepareSection(*section, std::move(hosts));
  if (!staged) return staged.error();
  return std::unique_ptr<service::Staged>(std::move(*staged));
}

Result<std::unique_ptr<HttpService::Staged>> HttpService::prepareSection(
    const Config& config, std::shared_ptr<const inventory::Inventory> hosts) {
  auto staged = std::make_unique<Staged>();
  auto root = files::openRoot(config.root);
  if (!root) return Error{fmt::format("[http] root {}: {}", config.root, root.error().message), root.error().code};
  std::vector<asio::ip::tcp::endpoint> listen;
  for (const auto& a : config.listen) listen.emplace_back(a.address, a.port);
  if (listen.empty()) listen.emplace_back(asio::ip::address_v4::any(), 80);
  auto listeners = listeners_.stage(listen);
  if (!listeners) return listeners.error();  // what it bound closes with it
  staged->listeners = std::move(*listeners);
  std::vector<asio::ip::tcp::endpoint> apiListen;
  for (const auto& a : config.apiListen) apiListen.emplace_back(a.address, a.port);
  auto apiListeners = apiListeners_.stage(apiListen);
  if (!apiListeners) return apiListeners.error();
  staged->apiListeners = std::move(*apiListeners);
  staged->site = std::make_shared<const Site>(Site{config, std::move(*root), std::move(hosts)});
  return staged;
}

Result<void> HttpService::apply(const Config& config, std::shared_ptr<const inventory::Inventory> hosts) {
  auto staged = prepareSection(config, std::move(hosts));
  if (!staged) return staged.error();
  commit(std::move(*staged));
  return {};
}

void HttpService::commit(std::unique_ptr<service::Staged> base) noexcept {
  auto& staged = static_cast<Staged&>(*base);
  if (shared_->stopping) return;  // shutting down: the staged listeners close with it
  listeners_.commit(std::move(staged.listeners));
  apiListeners_.commit(std::move(staged.apiListeners));
  shared_->site = staged.site;
  PXD_INFO("http.applied", "root={} listeners={} api_listeners={} per_host_rules={}", log::q(staged.site->config.root),
           listeners_.size(), apiListeners_.size(), staged.site->config.perHost.size());
}

const RouteEntry* Shared::findRoute(std::string_view path) const {
  if (auto it = routes.find(path); it != routes.end() && !it->second.prefix) return &it->second;
  const RouteEntry* best = nullptr;
  std::size_t bestLength = 0;
  for (const auto& [key, entry] : routes)
    if (entry.prefix && path.starts_with(key) && key.size() > bestLength) {
      best = &entry;
      bestLength = key.size();
    }
  return best;
}

void HttpService::setRoute(std::string path, Route route) {
  shared_->routes[std::move(path)] = RouteEntry{std::move(route), {}, false};
}

void HttpService::setAsyncRoute(std::string path, AsyncRoute route) {
  shared_->routes[std::move(path)] = RouteEntry{{}, std::move(route), false};
}

void HttpService::setPrefixRoute(std::string prefix, AsyncRoute route) {
  shared_->routes[std::move(prefix)] = RouteEntry{{}, std::move(route), true};
}

void HttpService::setStream(std::string path, std::shared_ptr<EventStream> stream) {
  shared_->streams[std::move(path)] = std::move(stream);
}

void HttpService::accept(asio::ip::tcp::socket socket, bool api) {
  auto& shared = *shared_;
  ++shared.stats.connectionsAccepted;
  std::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  if (ec) return;  // already gone
  const auto& config = shared.site->config;
  auto refuse = [&](Drop why, std::string_view reason) {
    shared.stats.drop(why);
    PXD_DEBUG("http.connection_refused", "peer={} reason={}", remote.address().to_string(), reason);
    socket.close(ec);
  };
  if (shared.stopping) return refuse(Drop::Shutdown, "shutdown");
  if (shared.connections.size() >= config.maxConnections) return refuse(Drop::TooManyConnections, "too_many_connections");
  auto& fromClient = shared.perClient[remote.address()];
  if (fromClient >= config.maxConnectionsPerClient) {
    if (fromClient == 0) shared.perClient.erase(remote.address());
    return refuse(Drop::TooManyFromClient, "too_many_from_client");
  }
  auto ticket = loop_.gate().enter();
  if (!ticket) {
    if (fromClient == 0) shared.perClient.erase(remote.address());
    return refuse(Drop::Shutdown, "shutdown");
  }
  ++fromClient;
  const std::uint64_t id = shared.nextId++;
  auto c = std::make_shared<Connection>(shared_, std::move(socket), std::move(*ticket), id, remote.address(), api);
  shared.connections[id] = c;
  c->start();
}

void HttpService::stopAccepting() {
  if (shared_->stopping) return;
  shared_->stopping = true;
  listeners_.closeAll();
  apiListeners_.closeAll();
  auto conns = shared_->connections;
  for (auto& [id, w] : conns)
    if (auto c = w.lock()) c->drain();
}

void HttpService::abort() {
  auto conns = shared_->connections;
  for (auto& [id, w] : conns)
    if (auto c = w.lock()) c->abort(Drop::Shutdown);
}

std::vector<asio::ip::tcp::endpoint> HttpService::listenEndpoints() const { return listeners_.endpoints(); }

std::vector<std::string> HttpService::endpoints() const { return listeners_.endpointTexts(); }

std::vector<asio::ip::tcp::endpoint> HttpService::apiEndpoints() const { return apiListeners_.endpoints(); }

std::vector<std::string> HttpService::apiEndpointTexts() const { return apiListeners_.endpointTexts(); }

void HttpService::collect(metrics::Writer& out) const {
  collectMetrics(shared_->stats, shared_->connections.size(), shared_->sending, out);
}

}  // namespace pxedust::http
