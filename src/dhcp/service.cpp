#include "dhcp/service.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <chrono>

#include "common/log.hpp"
#include "dhcp/convert.hpp"
#include "dhcp/metrics.hpp"

namespace pxedust::dhcp {
namespace {

// Requests answered per wake-up, and per lease journal sync. The sync bounds the rate: a batch's
// ACKs wait for one fdatasync, so at most kBatch exchanges finish per sync latency. With 64, a disk
// busy with other work (10 ms fdatasyncs) held pxedust to ~3,000 ACKs/s in bench/dhcp while its
// CPU idled; 256 keeps ~25,000 packets/s through the same disk, and its replies (~600 KiB of
// socket memory) still fit the 1 MiB send buffer for the batch's one sendmmsg.
constexpr int kBatch = 256;

UnixTime systemNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::size_t typeIndex(MessageType t) { return std::min<std::size_t>(static_cast<std::size_t>(t), 8); }

}  // namespace

struct DhcpService::Pending {
  wire::Message message;
  Request request;
  Arrival arrival;
  Decision decision;
  // The encoded reply and where it goes, filled by packReply() for the batch's one sendmmsg.
  std::vector<std::uint8_t> bytes{};
  sockaddr_in to{};
};

struct DhcpService::Parked {
  std::shared_ptr<Listener> listener;
  Pending pending;
  std::uint64_t ticket = 0;  // the LeaseDb change count its reply waits for
};

DhcpService::DhcpService(event::Loop& loop, Clock clock, std::unique_ptr<PacketIo> io)
    : loop_(loop),
      clock_(clock ? std::move(clock) : Clock(systemNow)),
      io_(io ? std::move(io) : makeUdpPacketIo(loop.io())),
      adverts_(loop.io()) {}

DhcpService::~DhcpService() {
  stop();
  alive_.reset();
}

Result<std::shared_ptr<DhcpService::Listener>> DhcpService::openListener(const InterfaceInfo& interface, std::uint16_t port) {
  auto l = std::make_shared<Listener>();
  l->interface = interface;
  l->port = port;
  auto socket = io_->open(interface, port);
  if (!socket) return Error{"dhcp: " + interface.name + ": " + socket.error().message, socket.error().code};
  l->socket = std::move(*socket);
  return l;
}

// What prepare() made: the sockets of the new config (kept and new), and a new lease database or the
// new pools for the running one. Dropped uncommitted, it closes the new sockets and the new database.
struct DhcpService::Staged final : service::Staged {
  std::shared_ptr<const Config> config;
  std::shared_ptr<const inventory::Inventory> hosts;
  std::vector<InterfaceInfo> interfaces;
  std::vector<std::shared_ptr<Listener>> keep;
  std::vector<std::shared_ptr<Listener>> fresh;
  std::optional<LeaseDb> opened;                // server mode, first time: the database opened
  std::optional<LeaseDb::PoolPlan> pools;       // server mode, running database: its new pools
  bool committed = false;
  ~Staged() override {
    if (committed) return;
    for (auto& l : fresh) {
      l->closed = true;
      l->socket->close();
    }
  }
};

Result<std::unique_ptr<service::Staged>> DhcpService::prepare(const config::Config& config,
                                                              std::shared_ptr<const inventory::Inventory> hosts) {
  const auto* section = configIn(config);
  if (section == nullptr) return Error{"dhcp: the configuration has no [dhcp] section"};
  const auto& dc = *section;
  auto staged = std::make_unique<Staged>();
  for (const auto& name : dc.interfaces) {
    auto info = io_->lookupInterface(name);
    if (!info) return Error{"dhcp: " + info.error().message, info.error().code};
    staged->interfaces.push_back(*info);
  }
  if (config_ && leases_ && dc.mode == Mode::Server && config_->leaseFile != dc.leaseFile)
    return Error{"dhcp: lease_file cannot change while running (restart pxedust to move it)"};

  std::vector<std::uint16_t> ports = {67};
  if (dc.mode == Mode::Proxy) ports.push_back(4011);
  for (const auto& info : staged->interfaces) {
    for (auto port : ports) {
      auto same = std::find_if(listeners_.begin(), listeners_.end(), [&](const auto& l) {
        return l->interface.name == info.name && l->interface.index == info.index && l->port == port;
      });
      if (same != listeners_.end()) {
        staged->keep.push_back(*same);
        continue;
      }
      auto l = openListener(info, port);
      if (!l) return l.error();  // the staged object closes the ones opened so far
      staged->fresh.push_back(*l);
    }
  }

  if (dc.mode == Mode::Server) {
    auto pools = Policy::poolsFor(dc);
    auto reserved = Policy::reservationsFor(config);
    if (leases_) {
      auto plan = LeaseDb::planPools(std::move(pools), std::move(reserved));
      if (!plan) return Error{"dhcp: " + plan.error().message, plan.error().code};
      staged->pools.emplace(std::move(*plan));
    } else {
      LeaseDbOptions lo;
      lo.path = dc.leaseFile;
      lo.offerTimeout = static_cast<std::uint32_t>(dc.offerHold.count());
      lo.declineQuarantine = static_cast<std::uint32_t>(dc.declineHold.count());
      auto db = LeaseDb::open(std::move(lo), pools, reserved, clock_());
      if (!db) return Error{"dhcp: lease file " + dc.leaseFile + ": " + db.error().message, db.error().code};
      staged->opened.emplace(std::move(*db));
    }
  }
  staged->config = std::make_shared<const Config>(dc);
  staged->hosts = std::move(hosts);
  return std::unique_ptr<service::Staged>(std::move(staged));
}

void DhcpService::commit(std::unique_ptr<service::Staged> base) noexcept {
  auto& staged = static_cast<Staged&>(*base);
  staged.committed = true;
  const auto& dc = *staged.config;
  if (staged.opened) {
    flushLeases();  // the old journal's parked ACKs are settled against it
    leases_.emplace(std::move(*staged.opened));
    const auto& rep = leases_->loadReport();
    PXD_INFO("dhcp.leases_loaded", "file={} leases={} corrupt_lines={} torn_bytes={} created={}", log::q(dc.leaseFile),
             rep.leases, rep.corruptLines, rep.tornBytes, rep.created);
  }
  if (staged.pools) leases_->applyPlan(std::move(*staged.pools));
  config_ = staged.config;
  LeaseDb* db = dc.mode == Mode::Server && leases_ ? &*leases_ : nullptr;
  policy_ = std::make_unique<Policy>(config_, staged.hosts, db);
  // A kept socket's interface may have a new address.
  for (auto& l : staged.keep) {
    for (const auto& info : staged.interfaces)
      if (info.name == l->interface.name && info.index == l->interface.index) l->interface = info;
  }
  for (auto& l : listeners_) {
    if (std::find(staged.keep.begin(), staged.keep.end(), l) == staged.keep.end()) {
      l->closed = true;
      l->socket->close();
    }
  }
  listeners_ = std::move(staged.keep);
  for (auto& l : staged.fresh) {
    listeners_.push_back(l);
    asio::co_spawn(loop_.io(), serve(l), asio::detached);
  }
  for (const auto& l : listeners_)
    PXD_INFO("dhcp.listening", "interface={} address={} port={} mode={}", l->interface.name,
             formatLeaseAddress(l->interface.address), l->port,
             dc.mode == Mode::Proxy ? "proxy" : "server");
  std::vector<RouterAdverts::Interface> raOn;
  if (dc.answerRouterSolicitations)
    for (const auto& i : staged.interfaces) raOn.push_back({i.name, i.index});
  adverts_.apply(raOn);
}

// What the boot tracker learns from an exchange that was answered (a dropped request is not ours).
void DhcpService::reportExchange(const Request& request, const Decision& d) const {
  using boot::DhcpKind;
  auto dhcp = [&](DhcpKind kind) {
    boot::DhcpEvent e;
    e.kind = kind;
    e.mac = request.mac;
    return e;
  };
  switch (request.type) {
    case MessageType::Discover: {
      auto e = dhcp(DhcpKind::Discover);
      e.arch = request.arch;
      e.vendorClass = request.vendorClass;
      if (request.giaddr != 0) e.relay = boot::Ipv4(request.giaddr);
      report(std::move(e));
      break;
    }
    case MessageType::Decline:
    case MessageType::Release: {
      auto e = dhcp(request.type == MessageType::Decline ? DhcpKind::Decline : DhcpKind::Release);
      auto given = request.type == MessageType::Decline ? request.requestedIp.value_or(0) : request.ciaddr;
      if (given != 0) e.ip = boot::Ipv4(given);
      report(std::move(e));
      break;
    }
    default:
      break;
  }
  if (!d.reply) return;
  const auto& reply = *d.reply;
  if (config_ && config_->mode == Mode::Proxy) {
    boot::ProxyDhcpEvent e;
    e.mac = request.mac;
    e.bootFile = reply.file;
    if (request.ciaddr != 0) e.ip = boot::Ipv4(request.ciaddr);
    report(std::move(e));
    return;
  }
  if (reply.type != MessageType::Offer && reply.type != MessageType::Ack && reply.type != MessageType::Nak) return;
  auto e = dhcp(reply.type == MessageType::Offer ? DhcpKind::Offer
                                                 : (reply.type == MessageType::Ack ? DhcpKind::Ack : DhcpKind::Nak));
  if (reply.yiaddr != 0) e.ip = boot::Ipv4(reply.yiaddr);
  for (const auto& o : reply.options)
    if (o.code == 12) e.hostName.assign(o.value.begin(), o.value.end());
  report(std::move(e));
}

void DhcpService::collect(metrics::Writer& out) const {
  collectMetrics(stats_, stats_.batches, stats_.syncs, stats_.sendErrors, adverts_.stats(), out);
  if (leases_) collectPoolMetrics(leases_->stats(clock_()), out);
}

std::vector<std::string> DhcpService::endpoints() const {
  std::vector<std::string> out;
  for (const auto& l : listeners_) out.push_back(fmt::format("{}:{}", l->interface.name, l->port));
  return out;
}

void DhcpService::stop() {
  adverts_.stop();
  for (auto& l : listeners_) {
    l->closed = true;
    l->socket->close();
  }
  listeners_.clear();
  flushLeases();
}

asio::awaitable<void> DhcpService::serve(std::shared_ptr<Listener> listener) {
  std::array<std::uint8_t, 4096> buf{};
  std::vector<Pending> batch;
  while (!listener->closed) {
    auto ec = co_await listener->socket->waitReadable();
    if (listener->closed) co_return;
    if (ec && ec != asio::error::operation_aborted) {
      PXD_ERROR("dhcp.listen_error", "interface={} error={}", listener->interface.name, log::q(ec.message()));
      co_return;
    }
    for (;;) {
      batch.clear();
      while (static_cast<int>(batch.size()) < kBatch && !listener->closed) {
        auto rx = listener->socket->tryReceive(buf);
        if (!rx) break;
        Arrival at;
        at.interface = &listener->interface;
        at.localPort = listener->port;
        at.sourceAddress = rx->from.address().is_v4() ? rx->from.address().to_v4().to_uint() : 0;
        at.sourcePort = rx->from.port();
        if (rx->ifindex != 0 && rx->ifindex != listener->interface.index) {
          ++stats_.dropped[static_cast<std::size_t>(Drop::WrongInterface)];
          PXD_DEBUG("dhcp.drop", "interface={} reason=wrong_interface ifindex={}", listener->interface.name, rx->ifindex);
          continue;
        }
        auto decoded = decodeRequest(std::span<const std::uint8_t>(buf.data(), std::min(rx->size, buf.size())));
        if (!decoded.request) {
          ++stats_.dropped[static_cast<std::size_t>(decoded.drop)];
          PXD_DEBUG("dhcp.drop", "interface={} from={}:{} reason={} error={}", listener->interface.name,
                    rx->from.address().to_string(), rx->from.port(), dropName(decoded.drop), log::q(decoded.error));
          continue;
        }
        ++stats_.received[typeIndex(decoded.request->type)];
        batch.push_back(Pending{std::move(decoded.message), std::move(*decoded.request), at, {}});
      }
      if (!batch.empty()) answer(listener, batch);
      if (static_cast<int>(batch.size()) < kBatch || listener->closed) break;
      co_await asio::post(loop_.io(), asio::use_awaitable);  // let other listeners and transfers run
    }
  }
}

void DhcpService::answer(const std::shared_ptr<Listener>& listener, std::vector<Pending>& batch) {
  ++stats_.batches;
  // Clients that are nearly done first: under overload a REQUEST finishes a boot, a DISCOVER starts one.
  // (An order of pointers: moving the requests themselves costs more than deciding them.)
  std::vector<Pending*> order;
  order.reserve(batch.size());
  for (auto& p : batch)
    if (p.request.type != MessageType::Discover) order.push_back(&p);
  for (auto& p : batch)
    if (p.request.type == MessageType::Discover) order.push_back(&p);
  auto now = clock_();
  for (auto* p : order) p->decision = policy_->handle(p->request, p->arrival, now);
  // A reply that needs its lease on disk waits for the journal job that covers this batch's changes.
  const std::uint64_t ticket = leases_ ? leases_->changeCount() : 0;
  const bool waits = leases_ && leases_->durableCount() < ticket;
  std::vector<Pending*> ready;
  ready.reserve(batch.size());
  for (auto* p : order) {
    if (waits && !p->decision.drop && p->decision.reply && p->decision.reply->needsSync)
      parked_.push_back(Parked{listener, std::move(*p), ticket});
    else
      ready.push_back(p);
  }
  sendReplies(*listener, ready);
  kickSync();
}

void DhcpService::kickSync() {
  if (!leases_ || syncJob_ || !leases_->syncPending()) return;
  auto job = std::shared_ptr<LeaseDb::SyncJob>(leases_->beginSync(clock_()));
  if (!job) return;
  ++stats_.syncs;
  syncJob_ = job;
  auto done = std::make_shared<std::promise<void>>();
  syncDone_ = done->get_future().share();
  asio::post(syncThread_, [job, done, &io = loop_.io(), alive = std::weak_ptr<int>(alive_), this] {
    LeaseDb::runSync(*job);
    asio::post(io, [job, alive, this] {
      if (alive.lock()) synced(job);
    });
    done->set_value();  // after the post: whoever waits for it may destroy the service next
  });
}

void DhcpService::synced(const std::shared_ptr<LeaseDb::SyncJob>& job) {
  if (job != syncJob_) return;  // flushLeases() took it already
  syncJob_.reset();
  finishJob(*job);
  // After a failure, the next batch tries again (no retry loop against a broken disk), except when a
  // compaction failed with the old journal intact: its lines are pending again, append them now.
  if (!job->error || (job->compaction && !job->renamed)) kickSync();
}

void DhcpService::finishJob(LeaseDb::SyncJob& job) {
  auto r = leases_->finishSync(job);
  const bool retryAppend = !r && job.compaction && !job.renamed;
  if (!r && !retryAppend) {
    PXD_ERROR("dhcp.lease_sync_failed", "file={} error={} note=\"ACKs withheld; clients will retry\"",
              log::q(config_ ? config_->leaseFile : std::string()), log::q(r.error().message));
  }
  // Parked replies are in ticket order: release (or, after a failure, drop) the prefix this job covered.
  const std::uint64_t durable = leases_->durableCount();
  std::size_t n = 0;
  while (n < parked_.size() && (parked_[n].ticket <= durable || (!r && !retryAppend && parked_[n].ticket <= job.upTo))) ++n;
  if (n == 0) return;
  std::vector<Parked> done(std::make_move_iterator(parked_.begin()), std::make_move_iterator(parked_.begin() + static_cast<std::ptrdiff_t>(n)));
  parked_.erase(parked_.begin(), parked_.begin() + static_cast<std::ptrdiff_t>(n));
  std::vector<Pending*> replies;
  for (std::size_t i = 0; i < done.size(); ++i) {
    auto& d = done[i];
    if (d.ticket > durable) {
      d.pending.decision.reply.reset();
      d.pending.decision.drop = Drop::LeaseStoreFailed;
    }
    replies.push_back(&d.pending);
    // One sendmmsg per run of replies on the same listener (there is usually one).
    if (i + 1 == done.size() || done[i + 1].listener != d.listener) {
      if (!d.listener->closed) sendReplies(*d.listener, replies);
      replies.clear();
    }
  }
}

void DhcpService::flushLeases() {
  if (syncJob_) {
    syncDone_.wait();
    auto job = std::move(syncJob_);
    syncJob_.reset();
    finishJob(*job);
  }
  if (!leases_) return;
  if (leases_->syncPending()) {
    ++stats_.syncs;
    if (auto r = leases_->sync(clock_()); !r)
      PXD_ERROR("dhcp.lease_sync_failed", "file={} error={}", log::q(config_ ? config_->leaseFile : std::string()),
                log::q(r.error().message));
  }
  // Whatever still waits is settled now: sent if its lease is on disk, dropped if not.
  const std::uint64_t durable = leases_->durableCount();
  for (auto& d : parked_) {
    if (d.ticket > durable) {
      d.pending.decision.reply.reset();
      d.pending.decision.drop = Drop::LeaseStoreFailed;
    }
    if (!d.listener->closed) sendReplies(*d.listener, {&d.pending});
    else if (d.ticket > durable) ++stats_.dropped[static_cast<std::size_t>(Drop::LeaseStoreFailed)];
  }
  parked_.clear();
}

void DhcpService::sendReplies(Listener& listener, const std::vector<Pending*>& replies) {
  std::array<mmsghdr, kBatch> messages{};
  std::array<iovec, kBatch> parts{};
  std::array<Pending*, kBatch> sending{};
  std::size_t count = 0;
  auto flush = [&] {
    // One sendmmsg for the replies; whatever it did not take (a full socket buffer, an error) goes
    // one by one, so each failure is counted and logged with its own errno.
    std::size_t done = count == 0 ? 0 : listener.socket->sendBatch({messages.data(), count});
    for (std::size_t i = 0; i < count; ++i) {
      if (i >= done) send(listener, *sending[i]);
      else ++stats_.sent[typeIndex(sending[i]->decision.reply->type)];
    }
    count = 0;
  };
  for (Pending* pp : replies) {
    auto& p = *pp;
    const auto& d = p.decision;
    if (d.drop) {
      ++stats_.dropped[static_cast<std::size_t>(*d.drop)];
      PXD_DEBUG("dhcp.drop", "interface={} xid={:#010x} type={} reason={} {}", listener.interface.name, p.request.xid,
                messageTypeName(p.request.type), dropName(*d.drop), d.detail);
      continue;
    }
    PXD_DEBUG("dhcp.answer", "interface={} xid={:#010x} type={} {}", listener.interface.name, p.request.xid,
              messageTypeName(p.request.type), d.detail);
    reportExchange(p.request, d);
    if (!d.reply || !packReply(listener, p)) continue;
    if (count == sending.size()) flush();
    parts[count] = iovec{p.bytes.data(), p.bytes.size()};
    auto& h = messages[count].msg_hdr;
    h = msghdr{};
    h.msg_name = &p.to;
    h.msg_namelen = sizeof p.to;
    h.msg_iov = &parts[count];
    h.msg_iovlen = 1;
    sending[count++] = &p;
  }
  flush();
}

bool DhcpService::packReply(Listener& listener, Pending& p) {
  auto& reply = *p.decision.reply;
  auto bytes = encodeReply(p.message, std::move(reply));  // its options are not needed afterwards
  if (!bytes) {
    ++stats_.sendErrors;
    PXD_WARN("dhcp.encode_failed", "xid={:#010x} error={}", p.request.xid, log::q(bytes.error().message));
    return false;
  }
  std::uint32_t to = INADDR_BROADCAST;
  std::uint16_t port = reply.toPort;
  switch (reply.destination) {
    case Destination::Broadcast: break;
    case Destination::UnicastNew:
      // The client cannot answer ARP before it has the address: tell the kernel where it is.
      if (auto r = listener.socket->setNeighbour(reply.to, p.request.mac); r) {
        to = reply.to;
      } else {
        PXD_DEBUG("dhcp.neighbour_failed", "error={} note=\"broadcasting instead\"", log::q(r.error().message));
      }
      break;
    case Destination::Unicast:
    case Destination::Relay:
    case Destination::Source: to = reply.to; break;
  }
  p.bytes = std::move(*bytes);
  p.to = sockaddr_in{};
  p.to.sin_family = AF_INET;
  p.to.sin_port = htons(port);
  p.to.sin_addr.s_addr = htonl(to);
  return true;
}

void DhcpService::send(Listener& listener, const Pending& p) {
  const std::uint32_t to = ntohl(p.to.sin_addr.s_addr);
  const std::uint16_t port = ntohs(p.to.sin_port);
  iovec part{const_cast<std::uint8_t*>(p.bytes.data()), p.bytes.size()};
  asio::ip::udp::endpoint ep(asio::ip::address_v4(to), port);
  if (!listener.socket->send({&part, 1}, ep)) {
    ++stats_.sendErrors;
    PXD_WARN("dhcp.send_failed", "interface={} to={}:{} error={}", listener.interface.name, formatLeaseAddress(to), port,
             log::q(std::strerror(errno)));
    return;
  }
  ++stats_.sent[typeIndex(p.decision.reply->type)];
}

}  // namespace pxedust::dhcp
