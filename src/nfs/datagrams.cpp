// NFS, MOUNT and PORTMAP over UDP; see datagrams.hpp.
#include "nfs/datagrams.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

#include "common/log.hpp"

namespace pxedust::nfs {

DatagramSocket::DatagramSocket(std::shared_ptr<ServiceContext> ctx, asio::io_context& io)
    : ctx_(std::move(ctx)), socket_(io), slotSignal_(io) {}

Result<void> DatagramSocket::open(const asio::ip::udp::endpoint& at) {
  event::UdpOptions options;
  options.packetInfo = true;  // replies leave from the address the call came to
  if (auto r = socket_.open(at, options); !r) return r;
  const auto ep = socket_.localEndpoint();
  label_ = "udp/" + (ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string()) + ":" +
           std::to_string(ep.port());
  return {};
}

void DatagramSocket::start() {
  auto self = shared_from_this();
  asio::co_spawn(ctx_->executor, [self]() { return self->serve(); }, asio::detached);
}

void DatagramSocket::close() {
  if (closed_) return;
  closed_ = true;
  socket_.close();
  slotSignal_.cancel();
}

asio::awaitable<void> DatagramSocket::serve() {
  auto self = shared_from_this();
  // One byte more than a datagram can carry, so that a longer one shows as truncated.
  std::vector<std::uint8_t> buffer(kMaxDatagram + 1);
  while (!closed_) {
    while (!closed_ && inFlight_ >= ctx_->generation->config.maxInFlight) {
      slotSignal_.expires_at(asio::steady_timer::time_point::max());
      std::error_code ec;
      co_await slotSignal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (closed_) break;
    auto got = socket_.tryReceive(buffer);
    if (!got) {
      const auto ec = co_await socket_.waitReadable();
      if (ec == asio::error::operation_aborted) break;
      continue;
    }
    ++ctx_->stats.udpDatagrams;
    if (got->truncated) {  // no call we answer is this long (a WRITE's would be, refused anyway)
      ++ctx_->stats.dropped;
      continue;
    }
    ++inFlight_;
    ++ctx_->datagramsInFlight;
    std::vector<std::uint8_t> datagram(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(got->size));
    asio::co_spawn(
        ctx_->executor,
        [self, d = std::move(datagram), from = got->from, local = got->local]() mutable {
          return self->run(std::move(d), from, local);
        },
        asio::detached);
  }
}

asio::awaitable<void> DatagramSocket::run(std::vector<std::uint8_t> datagram, asio::ip::udp::endpoint from,
                                          asio::ip::address local) {
  auto self = shared_from_this();
  const auto peer = from.address();
  const auto port = from.port();
  wire::CallOutcome decoded;
  auto answered = answerRecord(*ctx_, datagram, decoded, ctx_->udpProcedures, peer, port);
  CallAnswer a = co_await std::move(answered);
  --inFlight_;
  --ctx_->datagramsInFlight;
  slotSignal_.cancel();
  if (a.noReply || closed_) co_return;
  auto head = encodeReplyHead(a, 0);
  if (head.size() + a.body.size() > kMaxDatagram && decoded.action == wire::CallOutcome::Action::Dispatch) {
    PXD_WARN("nfs.udp_reply_too_large", "via={} peer={}:{} program={} procedure={} bytes={}", label_,
             peer.to_string(), port, decoded.call.program, decoded.call.procedure, head.size() + a.body.size());
    a = CallAnswer{wire::ReplyHeader::accepted(decoded.call.xid, wire::AcceptStat::SystemErr), {}, false, {}};
    head = encodeReplyHead(a, 0);
  }
  accountAnswer(*ctx_, decoded, a, peer, label_);
  if (head.empty() || head.size() + a.body.size() > kMaxDatagram) co_return;
  const iovec parts[2] = {{head.data(), head.size()}, {a.body.data(), a.body.size()}};
  socket_.send(std::span<const iovec>(parts, a.body.empty() ? 1 : 2), from, local.is_unspecified() ? nullptr : &local);
}

}  // namespace pxedust::nfs
