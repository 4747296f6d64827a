// The PDU framer fed whole, byte by byte and in odd splits; digests; limits; resync after errors.
#include "iscsi/wire/framer.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "iscsi/wire/crc32c.hpp"

using namespace pxedust::iscsi::wire;

namespace {

struct Wire {
  bool headerDigest = false;
  bool dataDigest = false;
};

// Builds the wire bytes of one PDU (with correct digests unless told to corrupt them).
std::vector<std::uint8_t> build(Bhs bhs, std::span<const std::uint8_t> ahs, std::span<const std::uint8_t> data,
                                Wire w, bool badHeaderDigest = false, bool badDataDigest = false) {
  bhs[4] = static_cast<std::uint8_t>(ahs.size() / 4);
  auto dsl = static_cast<std::uint32_t>(data.size());
  bhs[5] = static_cast<std::uint8_t>(dsl >> 16);
  bhs[6] = static_cast<std::uint8_t>(dsl >> 8);
  bhs[7] = static_cast<std::uint8_t>(dsl);
  std::vector<std::uint8_t> out;
  out.reserve(kBhsSize + ahs.size() + data.size() + 12);
  for (auto b : bhs) out.push_back(b);
  for (auto b : ahs) out.push_back(b);
  std::array<std::uint8_t, 4> d{};
  if (w.headerDigest) {
    writeDigest(crc32c(out) ^ (badHeaderDigest ? 1u : 0u), d);
    out.insert(out.end(), d.begin(), d.end());
  }
  if (!data.empty()) {
    std::vector<std::uint8_t> padded(data.begin(), data.end());
    padded.resize(padded.size() + pad4(dsl), 0);
    out.insert(out.end(), padded.begin(), padded.end());
    if (w.dataDigest) {
      writeDigest(crc32c(padded) ^ (badDataDigest ? 0x100u : 0u), d);
      out.insert(out.end(), d.begin(), d.end());
    }
  }
  return out;
}

Bhs nopOut(std::uint32_t itt) {
  NopOut n;
  n.immediate = true;
  n.initiatorTaskTag = itt;
  return serialize(n);
}

struct Event {
  FrameStatus status;
  Bhs bhs;
  std::vector<std::uint8_t> ahs, data;
};

// Feeds `bytes` in pieces of the given sizes (cycled), collecting every event.
std::vector<Event> run(PduFramer& f, std::span<const std::uint8_t> bytes, std::vector<std::size_t> splits) {
  std::vector<Event> events;
  std::size_t pos = 0, k = 0;
  while (pos < bytes.size()) {
    std::size_t n = std::min(splits[k++ % splits.size()], bytes.size() - pos);
    auto piece = bytes.subspan(pos, n);
    pos += n;
    std::size_t off = 0;
    while (off < piece.size()) {
      auto r = f.feed(piece.subspan(off));
      EXPECT_LE(r.consumed, piece.size() - off);
      off += r.consumed;
      if (r.status == FrameStatus::NeedMore) {
        EXPECT_EQ(off, piece.size());
        break;
      }
      events.push_back({r.status, f.pdu().bhs, f.pdu().ahs, f.pdu().data});
      if (r.status == FrameStatus::HeaderDigestError) return events;
    }
  }
  return events;
}

std::vector<std::uint8_t> payload(std::size_t n, std::uint8_t seed) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(seed + i * 7);
  return v;
}

}  // namespace

TEST(IscsiFramer, StreamOfPdusInEverySplit) {
  for (Wire w : {Wire{false, false}, Wire{true, false}, Wire{false, true}, Wire{true, true}}) {
    std::vector<std::uint8_t> stream;
    std::vector<std::vector<std::uint8_t>> datas = {{}, payload(1, 1), payload(3, 2), payload(4, 3),
                                                    payload(8191, 4), payload(8192, 5)};
    std::vector<std::uint8_t> ahs = {0x00, 0x05, 0x02, 0x00, 0x00, 0x00, 0x10, 0x00};
    for (std::size_t i = 0; i < datas.size(); ++i) {
      auto p = build(nopOut(static_cast<std::uint32_t>(i)), i == 2 ? std::span<const std::uint8_t>(ahs)
                                                                   : std::span<const std::uint8_t>(),
                     datas[i], w);
      stream.insert(stream.end(), p.begin(), p.end());
    }
    for (auto splits : std::vector<std::vector<std::size_t>>{{stream.size()}, {1}, {2, 3, 5, 7}, {47, 49}, {4093}}) {
      FramerLimits lim;
      lim.headerDigest = w.headerDigest;
      lim.dataDigest = w.dataDigest;
      PduFramer f(lim);
      auto ev = run(f, stream, splits);
      ASSERT_EQ(ev.size(), datas.size()) << "split " << splits[0] << " hd " << w.headerDigest;
      for (std::size_t i = 0; i < ev.size(); ++i) {
        EXPECT_EQ(ev[i].status, FrameStatus::Pdu);
        EXPECT_EQ(ev[i].bhs[19], i);
        EXPECT_EQ(ev[i].data, datas[i]);
        EXPECT_EQ(ev[i].ahs.size(), i == 2 ? 8u : 0u);
      }
      EXPECT_TRUE(f.idle());
    }
  }
}

TEST(IscsiFramer, OneEventPerFeedCall) {
  std::vector<std::uint8_t> stream;
  for (std::uint32_t i = 0; i < 3; ++i) {
    auto p = build(nopOut(i), {}, payload(10, 0), {});
    stream.insert(stream.end(), p.begin(), p.end());
  }
  PduFramer f;
  auto r = f.feed(stream);
  EXPECT_EQ(r.status, FrameStatus::Pdu);
  EXPECT_EQ(r.consumed, stream.size() / 3);
  EXPECT_TRUE(f.idle());
}

TEST(IscsiFramer, OversizedDataIsDrainedAndStreamStaysInSync) {
  FramerLimits lim;
  lim.maxDataSegmentLength = 8192;
  lim.dataDigest = true;
  PduFramer f(lim);
  auto big = build(nopOut(1), {}, payload(8193, 9), {false, true});
  auto next = build(nopOut(2), {}, payload(5, 1), {false, true});
  std::vector<std::uint8_t> stream = big;
  stream.insert(stream.end(), next.begin(), next.end());
  for (auto splits : std::vector<std::vector<std::size_t>>{{stream.size()}, {1}, {13}}) {
    PduFramer g(lim);
    auto ev = run(g, stream, splits);
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[0].status, FrameStatus::Oversized);
    EXPECT_EQ(ev[0].bhs[19], 1);
    EXPECT_TRUE(ev[0].data.empty());  // never stored
    EXPECT_EQ(ev[1].status, FrameStatus::Pdu);
    EXPECT_EQ(ev[1].bhs[19], 2);
    EXPECT_EQ(ev[1].data, payload(5, 1));
  }
  // A 16 MiB - 1 claim is drained the same way without allocating it.
  Bhs b = nopOut(3);
  b[5] = b[6] = b[7] = 0xff;
  auto r = f.feed(b);
  EXPECT_EQ(r.status, FrameStatus::Oversized);
  EXPECT_LT(f.pdu().data.capacity(), 1u << 20);
}

TEST(IscsiFramer, OversizedAhsIsRefused) {
  FramerLimits lim;
  lim.maxAhsBytes = 4;
  PduFramer f(lim);
  std::vector<std::uint8_t> ahs(8, 0);
  auto p = build(nopOut(1), ahs, payload(3, 0), {});
  auto next = build(nopOut(2), {}, {}, {});
  p.insert(p.end(), next.begin(), next.end());
  auto ev = run(f, p, {1});
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].status, FrameStatus::Oversized);
  EXPECT_EQ(ev[1].status, FrameStatus::Pdu);
}

TEST(IscsiFramer, DataDigestErrorKeepsSync) {
  Wire w{true, true};
  FramerLimits lim{8192, 1020, true, true};
  auto bad = build(nopOut(1), {}, payload(7, 3), w, false, true);
  auto good = build(nopOut(2), {}, payload(7, 3), w);
  std::vector<std::uint8_t> stream = bad;
  stream.insert(stream.end(), good.begin(), good.end());
  for (auto splits : std::vector<std::vector<std::size_t>>{{stream.size()}, {1}, {3, 50}}) {
    PduFramer f(lim);
    auto ev = run(f, stream, splits);
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[0].status, FrameStatus::DataDigestError);
    EXPECT_EQ(ev[0].bhs[19], 1);  // the header to quote in the Reject
    EXPECT_EQ(ev[1].status, FrameStatus::Pdu);
    EXPECT_EQ(ev[1].data, payload(7, 3));
  }
}

TEST(IscsiFramer, HeaderDigestErrorIsFatal) {
  Wire w{true, false};
  FramerLimits lim{8192, 1020, true, false};
  auto bad = build(nopOut(1), {}, payload(4, 0), w, true);
  PduFramer f(lim);
  auto ev = run(f, bad, {5});
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].status, FrameStatus::HeaderDigestError);
  EXPECT_TRUE(f.broken());
  auto r = f.feed(bad);
  EXPECT_EQ(r.status, FrameStatus::HeaderDigestError);
  EXPECT_EQ(r.consumed, 0u);
}

TEST(IscsiFramer, NoDataDigestWithoutData) {
  // §12.1: the data digest is present only when there is a data segment.
  Wire w{false, true};
  FramerLimits lim{8192, 1020, false, true};
  auto p = build(nopOut(1), {}, {}, w);
  EXPECT_EQ(p.size(), kBhsSize);
  PduFramer f(lim);
  auto r = f.feed(p);
  EXPECT_EQ(r.status, FrameStatus::Pdu);
  EXPECT_EQ(r.consumed, kBhsSize);
}

TEST(IscsiFramer, NewLimitsApplyFromTheNextHeader) {
  PduFramer f;
  auto a = build(nopOut(1), {}, payload(100, 0), {});
  // Half of PDU a, then switch digests on: PDU a must still be read without digests.
  auto r = f.feed(std::span(a).first(60));
  EXPECT_EQ(r.status, FrameStatus::NeedMore);
  f.setLimits({65536, 1020, true, true});
  r = f.feed(std::span(a).subspan(60));
  EXPECT_EQ(r.status, FrameStatus::Pdu);
  auto b = build(nopOut(2), {}, payload(10000, 0), {true, true});
  auto ev = run(f, b, {777});
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].status, FrameStatus::Pdu);
}

TEST(IscsiFramer, RandomGarbageNeverOverreads) {
  std::mt19937 rng(1);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::uint8_t> junk(rng() % 4096);
    for (auto& b : junk) b = static_cast<std::uint8_t>(rng());
    FramerLimits lim{static_cast<std::uint32_t>(512 + rng() % 9000), 1020, (rng() & 1) != 0, (rng() & 1) != 0};
    PduFramer f(lim);
    std::size_t off = 0;
    int guard = 0;
    while (off < junk.size() && !f.broken() && ++guard < 100000) {
      auto r = f.feed(std::span(junk).subspan(off, std::min<std::size_t>(junk.size() - off, 1 + rng() % 200)));
      off += r.consumed;
      if (r.status == FrameStatus::Pdu) {
        EXPECT_LE(f.pdu().data.size(), lim.maxDataSegmentLength);
      }
    }
  }
}
