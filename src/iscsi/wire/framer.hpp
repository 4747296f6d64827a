// Resumable PDU framer for one iSCSI connection's byte stream (RFC 7143 §11.1).
//
// A PDU on the wire: BHS (48) | AHS (TotalAHSLength*4) | HeaderDigest (4, if negotiated) |
// data (DataSegmentLength) | padding to 4 | DataDigest (4, if negotiated and the data is not empty).
// The framer is a state machine with a bytes-so-far counter per part (SPDK iscsi_read_pdu, iPXE
// iscsi_socket_deliver): feed it whatever arrived, in any split, and it resumes where it stopped.
//
// Limits before memory (habit 6): the data buffer is sized only after the header (and its digest,
// when negotiated) has been checked and the DataSegmentLength found within the MaxRecvDataSegmentLength
// we declared. A header over a limit is reported as Oversized with the BHS available, and the framer
// then discards (drains) that PDU's data without storing it, so the caller can send a Reject and
// stay in sync — or drop the connection; its choice. AHS is at most 1020 bytes by construction
// (one byte of words) and is read into a fixed buffer before the limit check.
//
// Work per call: feed() stops after one complete PDU (or one event), so one wake-up with a huge
// buffer cannot monopolize the loop; the caller loops over the remaining bytes.
//
// Digests (§12.1): a header digest mismatch is fatal — the lengths in that header cannot be trusted
// (ERL 0: drop the connection). A data digest mismatch is not: the whole PDU was consumed, its BHS is
// available, and the caller answers with Reject reason "data digest error" (§7.8, §11.17.1).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "iscsi/wire/pdu.hpp"

namespace pxedust::iscsi::wire {

struct FramerLimits {
  // The MaxRecvDataSegmentLength we declared; 8192 until the login says otherwise (§13.12).
  std::uint32_t maxDataSegmentLength = 8192;
  // AHS bytes we accept; only SCSI Commands carry AHS (extended CDB up to 260 bytes, bidi length).
  std::uint32_t maxAhsBytes = 1020;
  bool headerDigest = false;
  bool dataDigest = false;
};

// One received PDU.
struct RxPdu {
  Bhs bhs{};
  std::vector<std::uint8_t> ahs;
  std::vector<std::uint8_t> data;  // DataSegmentLength bytes, padding removed
  [[nodiscard]] Opcode opcode() const { return opcodeOf(bhs); }
  [[nodiscard]] std::span<const std::uint8_t, kBhsSize> header() const { return bhs; }
};

enum class FrameStatus : std::uint8_t {
  NeedMore,           // all input consumed, no PDU complete yet
  Pdu,                // pdu() holds a complete PDU
  DataDigestError,    // pdu() holds the BHS of a PDU whose data digest failed; send Reject 0x02
  Oversized,          // pdu().bhs is a header over the limits; its data is being drained; send Reject
  HeaderDigestError,  // fatal: drop the connection
};

struct FeedResult {
  std::size_t consumed = 0;
  FrameStatus status = FrameStatus::NeedMore;
};

class PduFramer {
 public:
  explicit PduFramer(FramerLimits limits = {}) : limits_(limits) {}

  // Limits apply from the next PDU header on (digests start after the login's final response).
  void setLimits(const FramerLimits& limits) { limits_ = limits; }
  [[nodiscard]] const FramerLimits& limits() const { return limits_; }

  // Consumes bytes from `in` until one event or until `in` is exhausted.
  FeedResult feed(std::span<const std::uint8_t> in);

  // The PDU of the last Pdu/DataDigestError/Oversized event; valid until the next feed().
  [[nodiscard]] RxPdu& pdu() { return pdu_; }
  [[nodiscard]] bool broken() const { return state_ == State::Broken; }
  // True between PDUs (no partial PDU buffered).
  [[nodiscard]] bool idle() const { return state_ == State::Basic && got_ == 0; }

 private:
  enum class State : std::uint8_t { Basic, Ahs, HeaderDigest, Data, Pad, DataDigest, Broken };

  FeedResult finishHeader(std::size_t consumed);
  void startBody();
  void enter(State s, std::size_t need);

  FramerLimits limits_;
  FramerLimits pduLimits_;  // the limits this PDU started under
  State state_ = State::Basic;
  std::size_t need_ = kBhsSize;  // bytes of the current part
  std::size_t got_ = 0;          // bytes of it received so far
  RxPdu pdu_;
  std::array<std::uint8_t, 1020> ahsBuf_{};
  std::array<std::uint8_t, 4> digestBuf_{};
  std::uint32_t crc_ = 0;
  std::uint32_t dataLength_ = 0;
  bool draining_ = false;        // discarding an oversized PDU's body
  bool dataDigestBad_ = false;
};

}  // namespace pxedust::iscsi::wire
