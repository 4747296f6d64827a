#include "tftp/service.hpp"

#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <cstring>

#include "common/log.hpp"
#include "files/files.hpp"
#include "tftp/file_error.hpp"
#include "tftp/metrics.hpp"

namespace pxedust::tftp {
namespace {
constexpr int kRequestBudget = 256;  // requests handled per wake-up before yielding

std::string endpointText(const asio::ip::udp::endpoint& ep) {
  return ep.address().is_v6() ? fmt::format("[{}]:{}", ep.address().to_string(), ep.port())
                              : fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

RateLimiter::Key clientKey(const asio::ip::address& a) {
  RateLimiter::Key k{};
  if (a.is_v4()) {
    auto b = a.to_v4().to_bytes();
    k[10] = k[11] = 0xff;
    std::memcpy(&k[12], b.data(), 4);
  } else {
    auto b = a.to_v6().to_bytes();
    std::memcpy(k.data(), b.data(), 16);
  }
  return k;
}

// The interface MTU, for the blksize clamp; 0 when unknown.
unsigned interfaceMtu(int fd, unsigned ifindex) {
  ifreq ifr{};
  if (ifindex == 0 || if_indextoname(ifindex, ifr.ifr_name) == nullptr) return 0;
  if (::ioctl(fd, SIOCGIFMTU, &ifr) != 0) return 0;
  return static_cast<unsigned>(ifr.ifr_mtu);
}

// The client's MAC from the kernel's neighbour table, for hosts that are known by MAC only.
std::optional<MacAddress> neighbourMac(int fd, unsigned ifindex, const asio::ip::address_v4& ip) {
  arpreq req{};
  auto* sin = reinterpret_cast<sockaddr_in*>(&req.arp_pa);
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(ip.to_uint());
  if (ifindex == 0 || if_indextoname(ifindex, req.arp_dev) == nullptr) return std::nullopt;
  if (::ioctl(fd, SIOCGARP, &req) != 0 || (req.arp_flags & ATF_COM) == 0) return std::nullopt;
  std::array<std::uint8_t, 6> b{};
  std::memcpy(b.data(), req.arp_ha.sa_data, 6);
  return MacAddress(b);
}
}  // namespace

std::size_t TftpService::EndpointHash::operator()(const asio::ip::udp::endpoint& ep) const {
  auto k = clientKey(ep.address());
  std::uint64_t a, b;
  std::memcpy(&a, k.data(), 8);
  std::memcpy(&b, k.data() + 8, 8);
  return std::hash<std::uint64_t>{}((a * 0x9e3779b97f4a7c15ULL) ^ b ^ (std::uint64_t{ep.port()} << 48));
}

TftpService::TftpService(event::Loop& loop, unsigned diskThreads)
    : loop_(loop), pool_(diskThreads), shared_(std::make_shared<TransferShared>()) {
  shared_->io = &loop_.io();
  shared_->pool = &pool_;
  shared_->stats = &stats_;
  shared_->onDone = [this](const asio::ip::udp::endpoint& client, const Transfer* t, const TransferEnd& end) {
    if (auto e = t->fileEvent(end)) report(std::move(*e));
    // Only if it is still the registered one: a superseded transfer ends after its successor started.
    if (auto it = transfers_.find(client); it != transfers_.end() && it->second.get() == t) transfers_.erase(it);
  };
}

TftpService::~TftpService() {
  stopListening();
  abortTransfers();
  shared_->onDone = nullptr;
  pool_.join();
}

Result<std::shared_ptr<TftpService::Listener>> TftpService::openListener(const config::SocketAddress& address) {
  auto l = std::make_shared<Listener>(loop_.io());
  l->address = address;
  asio::ip::udp::endpoint ep(address.address, address.port);
  // A large receive buffer absorbs a boot storm's burst of requests.
  if (auto r = l->socket.open(ep, {.packetInfo = true, .reuseAddress = true, .receiveBuffer = 4 << 20}); !r)
    return Error{"tftp listen: " + r.error().message, r.error().code};
  if (auto r = l->replies.open(asio::ip::udp::endpoint(address.address, 0), {}); !r)
    return Error{"tftp reply socket: " + r.error().message, r.error().code};
  return l;
}

// What prepare() made: the new root and every listener of the new config (the ones kept and the ones
// just bound). Dropped uncommitted, it closes the new sockets and the root; the running ones stay.
struct TftpService::Staged final : service::Staged {
  Config config;
  std::shared_ptr<const inventory::Inventory> hosts;
  UniqueFd root;
  std::vector<std::shared_ptr<Listener>> listeners;
  std::vector<std::shared_ptr<Listener>> opened;  // the new ones among them
  bool committed = false;
  ~Staged() override {
    if (committed) return;
    for (auto& o : opened) {
      o->socket.close();
      o->replies.close();
    }
  }
};

Result<std::unique_ptr<service::Staged>> TftpService::prepare(const config::Config& config,
                                                              std::shared_ptr<const inventory::Inventory> hosts) {
  const auto* section = configIn(config);
  if (section == nullptr) return Error{"tftp: the configuration has no [tftp] section"};
  auto staged = prepareSection(*section, std::move(hosts));
  if (!staged) return staged.error();
  return std::unique_ptr<service::Staged>(std::move(*staged));
}

Result<std::unique_ptr<TftpService::Staged>> TftpService::prepareSection(const Config& config,
                                                                         std::shared_ptr<const inventory::Inventory> hosts) {
  auto staged = std::make_unique<Staged>();
  auto root = files::openRoot(config.root);
  if (!root) return errnoError("cannot open TFTP root " + config.root + ": " + std::strerror(root.error().code), root.error().code);
  staged->root = std::move(*root);
  for (const auto& addr : config.listen) {
    auto it = std::find_if(listeners_.begin(), listeners_.end(),
                           [&](const auto& l) { return l->address == addr; });
    if (it != listeners_.end()) {
      staged->listeners.push_back(*it);
      continue;
    }
    auto l = openListener(addr);
    if (!l) return l.error();  // the staged object closes what was opened so far
    staged->opened.push_back(*l);
    staged->listeners.push_back(*l);
  }
  staged->config = config;
  staged->hosts = std::move(hosts);
  return staged;
}

void TftpService::commit(std::unique_ptr<service::Staged> base) noexcept {
  auto& staged = static_cast<Staged&>(*base);
  staged.committed = true;
  const auto& config = staged.config;
  for (auto& old : listeners_) {
    if (std::find(staged.listeners.begin(), staged.listeners.end(), old) == staged.listeners.end()) {
      old->closed = true;
      old->socket.close();
      old->replies.close();
      PXD_INFO("tftp.unlisten", "address={}", old->address.toString());
    }
  }
  listeners_ = std::move(staged.listeners);
  root_ = std::move(staged.root);
  bool limiterChanged = !config_ || config_->clientRate != config.clientRate || config_->clientBurst != config.clientBurst;
  config_ = std::make_shared<Config>(config);
  hosts_ = std::move(staged.hosts);
  if (limiterChanged) limiter_ = std::make_unique<RateLimiter>(config.clientRate, config.clientBurst);
  if (config.transferPortLow != 0) nextPort_ = config.transferPortLow;
  for (auto& l : staged.opened) {
    PXD_INFO("tftp.listen", "address={} root={}", endpointText(l->socket.localEndpoint()), log::q(config.root));
    asio::co_spawn(loop_.io(), serve(l), asio::detached);
  }
}

Result<void> TftpService::apply(const Config& config, std::shared_ptr<const inventory::Inventory> hosts) {
  auto staged = prepareSection(config, std::move(hosts));
  if (!staged) return staged.error();
  commit(std::move(*staged));
  return {};
}

void TftpService::collect(metrics::Writer& out) const { collectMetrics(stats_, transfers_.size(), out); }

std::vector<std::string> TftpService::endpoints() const {
  std::vector<std::string> out;
  for (const auto& l : listeners_) out.push_back(endpointText(l->socket.localEndpoint()));
  return out;
}

std::vector<asio::ip::udp::endpoint> TftpService::listenEndpoints() const {
  std::vector<asio::ip::udp::endpoint> out;
  for (const auto& l : listeners_) out.push_back(l->socket.localEndpoint());
  return out;
}

void TftpService::stopListening() {
  if (!stopping_) {
    const auto& s = stats_;
    PXD_INFO("tftp.stats",
             "requests={} started={} completed={} failed={} closed_by_client={} blocks_sent={} retransmits={} "
             "duplicate_acks={} short_sends={} pool_reads={} reads_past_timeout={} wrong_tid={}",
             s.requests, s.transfersStarted, s.transfersCompleted, s.transfersFailed, s.transfersClosedByClient,
             s.blocksSent, s.retransmits, s.duplicateAcks, s.shortSends, s.poolReads, s.readsPastTimeout, s.wrongTid);
  }
  stopping_ = true;
  for (auto& l : listeners_) {
    l->closed = true;
    l->socket.close();
    l->replies.close();
  }
  listeners_.clear();
}

void TftpService::abort() { abortTransfers(); }

void TftpService::abortTransfers() {
  // abort() only flags and cancels; each transfer finishes (and leaves the map) on its next wake-up.
  for (auto& [client, t] : transfers_) t->abort("shutdown");
}

asio::awaitable<void> TftpService::serve(std::shared_ptr<Listener> listener) {
  while (!listener->closed) {
    auto ec = co_await listener->socket.waitReadable();
    if (listener->closed) co_return;
    if (ec && ec != asio::error::operation_aborted) {
      PXD_ERROR("tftp.listen_error", "address={} error={}", listener->address.toString(), log::q(ec.message()));
      co_return;
    }
    // Drain to EAGAIN (the reactor is edge-triggered), yielding to transfers every kRequestBudget.
    for (;;) {
      int n = 0;
      for (; n < kRequestBudget && !listener->closed; ++n) {
        auto rx = listener->socket.tryReceive(rx_);
        if (!rx) break;
        handleRequest(*listener, *rx, std::span<const std::uint8_t>(rx_.data(), std::min(rx->size, rx_.size())));
      }
      if (n < kRequestBudget || listener->closed) break;
      co_await asio::post(loop_.io(), asio::use_awaitable);
    }
  }
}

void TftpService::reject(Listener& listener, const event::Received& rx, Drop why, wire::ErrorCode code,
                         std::string_view text) {
  stats_.drop(why);
  PXD_DEBUG("tftp.reject", "client={} reason={} error={} text={}", endpointText(rx.from),
            kDropNames[static_cast<std::size_t>(why)], static_cast<int>(code), log::q(text));
  std::array<std::uint8_t, 256> buf{};
  auto n = wire::writeError(buf, code, text);
  iovec part{buf.data(), n};
  listener.replies.send({&part, 1}, rx.from, &rx.local);
}

void TftpService::handleRequest(Listener& listener, const event::Received& rx, std::span<const std::uint8_t> datagram) {
  ++stats_.requests;
  auto parsed = wire::parseRequest(datagram);
  if (parsed.error != wire::RequestError::None) {
    if (parsed.error == wire::RequestError::NotARequest) {
      // Never answer an ERROR (RFC 1350 §7); a stray DATA/ACK/OACK is an illegal operation here.
      if (wire::peekOpcode(datagram) == static_cast<std::uint16_t>(wire::Opcode::Error)) {
        stats_.drop(Drop::NotARequest);
        PXD_DEBUG("tftp.drop", "client={} reason=error_to_request_port", endpointText(rx.from));
        return;
      }
      reject(listener, rx, Drop::NotARequest, wire::ErrorCode::IllegalOperation, "Illegal TFTP operation");
      return;
    }
    reject(listener, rx, Drop::Malformed, wire::ErrorCode::IllegalOperation,
           parsed.error == wire::RequestError::UnknownMode ? "Unsupported mode" : "Illegal TFTP operation");
    return;
  }
  const auto& req = parsed.request;
  if (req.opcode == wire::Opcode::Wrq) {
    reject(listener, rx, Drop::WriteRefused, wire::ErrorCode::AccessViolation, "Write requests are not accepted");
    return;
  }
  if (!limiter_->allow(clientKey(rx.from.address()), std::chrono::steady_clock::now())) {
    reject(listener, rx, Drop::RateLimited, wire::ErrorCode::NotDefined, "Too many requests, try again later");
    return;
  }
  if (auto it = transfers_.find(rx.from); it != transfers_.end()) {
    if (it->second->isRepeatOf(req.filename)) {
      stats_.drop(Drop::Duplicate);
      PXD_DEBUG("tftp.drop", "client={} reason=duplicate_request", endpointText(rx.from));
      return;
    }
    // The client has moved on (a port does one transfer at a time; its final ACK may still be in
    // flight behind this request): end the old transfer and serve the new request.
    it->second->abort("superseded");
    transfers_.erase(it);
  }
  const auto& cfg = *config_;
  if (transfers_.size() >= cfg.maxTransfers || stopping_) {
    reject(listener, rx, Drop::Busy, wire::ErrorCode::NotDefined, "Server busy, try again later");
    return;
  }
  auto name = files::normalizeRequest(req.filename);
  if (name.error) {
    reject(listener, rx, Drop::FileError, errorCodeFor(name.error->kind), name.error->clientText);
    reportFile(rx.from, req.filename, {}, boot::FileResult::Failed, 0, name.error->clientText);
    return;
  }
  std::string path = cfg.perHost.empty() ? name.path : files::applyPerHost(cfg.perHost, name.path, hostFor(rx));
  auto file = files::openBeneath(root_.get(), path);
  if (file.error) {
    auto code = errorCodeFor(file.error->kind);
    reject(listener, rx, Drop::FileError, code, file.error->clientText);
    reportFile(rx.from, name.path, path,
               code == wire::ErrorCode::FileNotFound ? boot::FileResult::NotFound : boot::FileResult::Failed,
               0, file.error->clientText);
    return;
  }
  auto socket = openTransferSocket(rx.local.is_unspecified() ? listener.address.address : rx.local);
  if (!socket) {
    PXD_WARN("tftp.no_port", "client={} error={}", endpointText(rx.from), log::q(socket.error().message));
    reject(listener, rx, Drop::Busy, wire::ErrorCode::NotDefined, "Server busy, try again later");
    return;
  }
  auto ticket = loop_.gate().enter();
  if (!ticket) {
    reject(listener, rx, Drop::Busy, wire::ErrorCode::NotDefined, "Server shutting down");
    return;
  }

  TransferSetup setup;
  setup.client = rx.from;
  setup.requested = std::string(req.filename);
  setup.path = path;
  setup.mode = req.mode;
  setup.fileSize = file.size;
  setup.file = std::move(file.fd);
  setup.hasOptions = req.optionCount > 0;
  setup.limits = OptionLimits{req.optionCount > 0 ? blksizeLimit(listener, rx) : cfg.maxBlksize, cfg.maxWindowsize,
                              4u << 20};
  setup.timeout = cfg.timeout;
  setup.retries = cfg.retries;
  if (req.mode == wire::Mode::Octet) {
    setup.negotiation = negotiate(req, setup.limits, file.size);
  } else {
    for (const auto& o : req.optionList()) setup.options.emplace_back(o.name, o.value);
  }
  PXD_DEBUG("tftp.rrq", "client={} file={} served={} mode={} options={}", endpointText(rx.from), log::q(req.filename),
            log::q(path), req.mode == wire::Mode::Octet ? "octet" : "netascii", req.optionCount);
  ++stats_.transfersStarted;
  auto t = std::make_shared<Transfer>(shared_, std::move(*socket), std::move(setup), std::move(*ticket));
  transfers_.emplace(rx.from, t);
  t->start();
}

void TftpService::reportFile(const asio::ip::udp::endpoint& client, std::string_view requested, std::string_view served,
                             boot::FileResult result, std::uint64_t bytes, std::string_view reason) const {
  if (!client.address().is_v4()) return;  // hosts are tracked by IPv4 address
  boot::FileEvent e;
  e.protocol = boot::FileProtocol::Tftp;
  e.result = result;
  e.client = boot::Ipv4(client.address().to_v4().to_uint());
  e.requested = requested;
  if (served != requested) e.served = served;
  e.bytes = bytes;
  e.reason = reason;
  report(std::move(e));
}

const inventory::Host* TftpService::hostFor(const event::Received& rx) const {
  if (!hosts_ || !rx.from.address().is_v4()) return nullptr;
  auto ip = rx.from.address().to_v4();
  if (const auto* h = hosts_->byIp(ip)) return h;
  // A host known only by its MAC: ask the neighbour table which MAC this address has.
  if (listeners_.empty()) return nullptr;
  auto mac = neighbourMac(listeners_.front()->socket.fd(), rx.ifindex, ip);
  return mac ? hosts_->byMac(*mac) : nullptr;
}

std::uint32_t TftpService::blksizeLimit(const Listener& listener, const event::Received& rx) {
  std::uint32_t limit = config_->maxBlksize;
  // PXE ROMs often cannot reassemble fragments: keep DATA within one frame of the receiving
  // interface (IP + UDP + TFTP headers: 32 bytes over IPv4, 52 over IPv6).
  unsigned mtu = interfaceMtu(const_cast<Listener&>(listener).socket.fd(), rx.ifindex);
  unsigned overhead = rx.from.address().is_v4() ? 32 : 52;
  if (mtu > overhead + 8) limit = std::min<std::uint32_t>(limit, mtu - overhead);
  return limit;
}

Result<std::unique_ptr<event::UdpSocket>> TftpService::openTransferSocket(const asio::ip::address& local) {
  auto sock = std::make_unique<event::UdpSocket>(loop_.io());
  const auto& cfg = *config_;
  if (cfg.transferPortLow == 0) {
    if (auto r = sock->open({local, 0}, {}); !r) return r.error();
    return sock;
  }
  // Walk the configured range from where the last transfer stopped; a port in use is skipped.
  std::uint32_t span = std::uint32_t{cfg.transferPortHigh} - cfg.transferPortLow + 1;
  for (std::uint32_t i = 0; i < span; ++i) {
    if (nextPort_ < cfg.transferPortLow || nextPort_ > cfg.transferPortHigh) nextPort_ = cfg.transferPortLow;
    auto port = static_cast<std::uint16_t>(nextPort_++);
    auto r = sock->open({local, port}, {});
    if (r) return sock;
    if (r.error().code != EADDRINUSE) return r.error();
  }
  return Error{"no free port in transfer_ports", EADDRINUSE};
}

}  // namespace pxedust::tftp
