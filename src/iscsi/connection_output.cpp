// Connection, the output side: Rejects, and the writer that drains the write queue (up to 64 PDUs
// per gathered write, spliced Data-In on its own) and wakes the reader once the queue is below
// kWriteHighWater. queue() and fillSn(), called for every PDU sent, are in connection_internal.hpp.
// Part of the Connection class (connection.hpp).
#include <asio/write.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "blockstore/pipe_chain.hpp"
#include "common/log.hpp"
#include "event/stream_send.hpp"
#include "iscsi/connection_internal.hpp"

namespace pxedust::iscsi {

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

asio::awaitable<std::error_code> Connection::sendSpliced(OutPdu& p, bool moreFollows) {
  // The head is always followed by its data: MSG_MORE keeps it out of a segment of its own.
  if (auto ec = co_await event::sendAll(socket_, p.head.data(), p.head.size(), true, closed_)) co_return ec;
  const bool more = p.tailLength > 0 || moreFollows;
  auto& pipe = *p.pipe;
  if (auto ec = co_await event::sendStream(socket_, p.length, closed_,
                                           [&pipe, more](int fd, std::size_t left) { return pipe.spliceTo(fd, left, more); }))
    co_return ec;
  if (p.tailLength > 0) co_return co_await event::sendAll(socket_, p.tail.data(), p.tailLength, moreFollows, closed_);
  co_return std::error_code{};
}

}  // namespace pxedust::iscsi
