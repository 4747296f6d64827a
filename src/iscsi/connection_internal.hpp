// Private to the connection*.cpp files: what the parts of one Connection share (the task record,
// the wait helper, fillSn() and the queue() template). Not for other users of connection.hpp.
//
// fillSn() and queue() run for every PDU sent. They are defined here, not in
// connection_output.cpp, so that each part can inline them as when the class lived in one file:
// queueing a Data-In or an R2T costs no extra call.
#pragma once

#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <string_view>
#include <vector>

#include "iscsi/connection.hpp"
#include "iscsi/wire/crc32c.hpp"

namespace pxedust::iscsi {

using Clock = std::chrono::steady_clock;

// One SCSI command from arrival to its response (connection_tasks.cpp).
struct Connection::Task {
  enum class State : std::uint8_t { Collecting, Executing, Done };
  std::uint32_t itt = 0;
  std::uint32_t ttt = wire::kReservedTag;
  std::uint64_t lunField = 0;
  std::vector<std::uint8_t> cdb;
  std::uint32_t edtl = 0;
  scsi::TaskAttribute attribute = scsi::TaskAttribute::Simple;
  scsi::Plan plan;
  std::shared_ptr<HostLun> lun;
  bool inquiryOtherLun = false;  // INQUIRY to a LUN we do not have: answered with PQ=3

  std::vector<std::uint8_t> data;  // Data-Out, at buffer offsets
  std::uint32_t need = 0;          // Data-Out bytes the command needs
  std::uint32_t nextOffset = 0;    // where the next R2T starts
  std::uint32_t highest = 0;       // highest offset + length received
  std::uint32_t outstandingR2t = 0;
  std::uint32_t r2tSn = 0;
  std::uint32_t expDataSn = 0;  // within the current Data-Out sequence (§11.7.5), from 0 each
  bool unsolicitedPending = false;
  bool dataSnError = false;  // a Data-Out arrived out of DataSN order: ends with 0B/47/05
  std::size_t budget = 0;
  bool admitted = false;
  bool counted = false;  // took a slot of the CmdSN window
  bool aborted = false;
  State state = State::Collecting;
  std::unique_ptr<asio::steady_timer> done;  // made when a TMF waits on the task; cancelled when it ends
};

// Waits until `t` is cancelled (the signal timers never expire on their own).
inline asio::awaitable<void> waitOn(asio::steady_timer& t) {
  if (t.expiry() != Clock::time_point::max()) t.expires_at(Clock::time_point::max());
  std::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

inline std::string_view dropName(Drop d) { return kDropNames[static_cast<std::size_t>(d)]; }

// StatSN (advanced when the PDU carries status), ExpCmdSN and MaxCmdSN for a PDU to the initiator.
inline void Connection::fillSn(std::uint32_t& statSn, std::uint32_t& expCmdSn, std::uint32_t& maxCmdSn,
                               bool advance) {
  statSn = advance ? statSn_++ : statSn_;
  if (session_) {
    expCmdSn = session_->expCmdSn();
    maxCmdSn = session_->maxCmdSn();
  } else {
    expCmdSn = loginCmdSn_;
    maxCmdSn = loginCmdSn_ + kCommandWindow - 1;
  }
}

template <typename H>
void Connection::queue(H header, std::shared_ptr<const std::vector<std::uint8_t>> data, std::size_t offset,
                       std::size_t length, std::shared_ptr<blockstore::PipeChain> pipe) {
  if (closed_) return;
  header.dataSegmentLength = static_cast<std::uint32_t>(length);
  wire::Bhs bhs = wire::serialize(header);
  OutPdu pdu;
  pdu.head.assign(bhs.begin(), bhs.end());
  const bool digests = fullFeature_;
  if (digests && params_.headerDigest) {
    std::array<std::uint8_t, 4> d{};
    wire::writeDigest(wire::crc32c(bhs), d);
    pdu.head.insert(pdu.head.end(), d.begin(), d.end());
  }
  if (length > 0 && pipe) {
    // Runs without a data digest only (Command::spliceOk): the bytes are pages we never read.
    pdu.pipe = std::move(pipe);
    pdu.length = length;
    pdu.tailLength = wire::pad4(static_cast<std::uint32_t>(length));
  } else if (length > 0 && data) {
    pdu.data = std::move(data);
    pdu.offset = offset;
    pdu.length = length;
    std::uint32_t pad = wire::pad4(static_cast<std::uint32_t>(length));
    pdu.tailLength = pad;
    if (digests && params_.dataDigest) {
      std::uint32_t crc = wire::crc32cUpdate(wire::kCrc32cInit, std::span(pdu.data->data() + offset, length));
      static constexpr std::array<std::uint8_t, 4> zeros{};
      crc = wire::crc32cUpdate(crc, std::span(zeros.data(), pad));
      wire::writeDigest(wire::crc32cFinal(crc), std::span<std::uint8_t, 4>(pdu.tail.data() + pad, 4));
      pdu.tailLength += 4;
    }
  }
  outBytes_ += pdu.head.size() + pdu.length + pdu.tailLength;
  outq_.push_back(std::move(pdu));
  writeSignal_.cancel();
}

}  // namespace pxedust::iscsi
