#include "iscsi/wire/framer.hpp"

#include <algorithm>
#include <cstring>

#include "iscsi/wire/crc32c.hpp"

namespace pxedust::iscsi::wire {

void PduFramer::enter(State s, std::size_t need) {
  state_ = s;
  need_ = need;
  got_ = 0;
}

FeedResult PduFramer::finishHeader(std::size_t consumed) {
  // Header (and digest) verified: now, and only now, the lengths may size anything.
  std::uint32_t ahsBytes = std::uint32_t{pdu_.bhs[4]} * 4;
  if (ahsBytes > pduLimits_.maxAhsBytes || dataLength_ > pduLimits_.maxDataSegmentLength) {
    draining_ = true;
    pdu_.ahs.clear();
    pdu_.data.clear();
    startBody();
    return {consumed, FrameStatus::Oversized};
  }
  pdu_.ahs.assign(ahsBuf_.begin(), ahsBuf_.begin() + ahsBytes);
  pdu_.data.clear();
  pdu_.data.reserve(dataLength_);
  startBody();
  if (state_ == State::Basic) return {consumed, FrameStatus::Pdu};  // no data segment
  return {consumed, FrameStatus::NeedMore};
}

void PduFramer::startBody() {
  crc_ = kCrc32cInit;
  if (dataLength_ > 0) {
    enter(State::Data, dataLength_);
  } else {
    enter(State::Basic, kBhsSize);
  }
}

FeedResult PduFramer::feed(std::span<const std::uint8_t> in) {
  std::size_t pos = 0;
  while (true) {
    if (state_ == State::Broken) return {pos, FrameStatus::HeaderDigestError};
    if (pos == in.size()) return {pos, FrameStatus::NeedMore};
    std::size_t take = std::min(need_ - got_, in.size() - pos);
    auto chunk = in.subspan(pos, take);
    pos += take;

    switch (state_) {
      case State::Basic:
        if (got_ == 0) {
          pduLimits_ = limits_;
          draining_ = false;
          dataDigestBad_ = false;
          crc_ = kCrc32cInit;
        }
        std::memcpy(pdu_.bhs.data() + got_, chunk.data(), take);
        if (pduLimits_.headerDigest) crc_ = crc32cUpdate(crc_, chunk);
        got_ += take;
        if (got_ < need_) continue;
        dataLength_ = (std::uint32_t{pdu_.bhs[5]} << 16) | (std::uint32_t{pdu_.bhs[6]} << 8) | pdu_.bhs[7];
        if (pdu_.bhs[4] != 0) {
          enter(State::Ahs, std::size_t{pdu_.bhs[4]} * 4);
          continue;
        }
        if (pduLimits_.headerDigest) {
          enter(State::HeaderDigest, kDigestSize);
          continue;
        }
        {
          auto r = finishHeader(pos);
          if (r.status != FrameStatus::NeedMore) return r;
        }
        continue;

      case State::Ahs:
        std::memcpy(ahsBuf_.data() + got_, chunk.data(), take);  // need_ <= 1020 by construction
        if (pduLimits_.headerDigest) crc_ = crc32cUpdate(crc_, chunk);
        got_ += take;
        if (got_ < need_) continue;
        if (pduLimits_.headerDigest) {
          enter(State::HeaderDigest, kDigestSize);
          continue;
        }
        {
          auto r = finishHeader(pos);
          if (r.status != FrameStatus::NeedMore) return r;
        }
        continue;

      case State::HeaderDigest:
        std::memcpy(digestBuf_.data() + got_, chunk.data(), take);
        got_ += take;
        if (got_ < need_) continue;
        if (readDigest(digestBuf_) != crc32cFinal(crc_)) {
          state_ = State::Broken;
          return {pos, FrameStatus::HeaderDigestError};
        }
        {
          auto r = finishHeader(pos);
          if (r.status != FrameStatus::NeedMore) return r;
        }
        continue;

      case State::Data:
        if (!draining_) pdu_.data.insert(pdu_.data.end(), chunk.begin(), chunk.end());
        if (pduLimits_.dataDigest) crc_ = crc32cUpdate(crc_, chunk);
        got_ += take;
        if (got_ < need_) continue;
        if (pad4(dataLength_) != 0) {
          enter(State::Pad, pad4(dataLength_));
          continue;
        }
        [[fallthrough]];
      case State::Pad:
        if (state_ == State::Pad) {
          if (pduLimits_.dataDigest) crc_ = crc32cUpdate(crc_, chunk);  // padding is digested (§12.1)
          got_ += take;
          if (got_ < need_) continue;
        }
        if (pduLimits_.dataDigest) {
          enter(State::DataDigest, kDigestSize);
          continue;
        }
        enter(State::Basic, kBhsSize);
        if (draining_) continue;  // already reported as Oversized
        return {pos, FrameStatus::Pdu};

      case State::DataDigest:
        std::memcpy(digestBuf_.data() + got_, chunk.data(), take);
        got_ += take;
        if (got_ < need_) continue;
        enter(State::Basic, kBhsSize);
        if (draining_) continue;
        if (readDigest(digestBuf_) != crc32cFinal(crc_)) {
          pdu_.data.clear();
          return {pos, FrameStatus::DataDigestError};
        }
        return {pos, FrameStatus::Pdu};

      case State::Broken:
        break;
    }
  }
}

}  // namespace pxedust::iscsi::wire
