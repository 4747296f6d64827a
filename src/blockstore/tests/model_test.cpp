// Randomized model test: an overlay must behave exactly like a plain byte array.
//
// Reads, writes, trims, write-zeroes, flushes, extent queries, out-of-range requests and close/reopen
// cycles, aligned and not, overlapping, at both ends of the device and zero-length, are applied to an
// overlay and to an in-memory reference; every read must match. The device size is deliberately not a
// multiple of the chunk size. PXEDUST_MODEL_OPS sets the operations per chunk size (default 5000,
// a few seconds under ASan); e.g. PXEDUST_MODEL_OPS=1000000 for the long run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <random>

#include "blockstore/overlay.hpp"
#include "common/checked.hpp"
#include "blockstore/tests/test_util.hpp"

namespace pxedust::blockstore {
namespace {

using testing::TempDir;

std::uint64_t opsPerRun() {
  if (const char* e = std::getenv("PXEDUST_MODEL_OPS")) {
    auto v = std::strtoull(e, nullptr, 10);
    if (v > 0) return v;
  }
  return 5000;
}

struct ModelParams {
  std::uint32_t chunkSize;
  std::uint64_t compactAfter;
};

class ModelTest : public ::testing::TestWithParam<ModelParams> {};

TEST_P(ModelTest, MatchesInMemoryReference) {
  const auto [cs, compactAfter] = GetParam();
  TempDir dir;
  const std::uint64_t size = std::uint64_t{cs} * (cs >= (1U << 20) ? 6 : 13) + 512 * 7;
  const auto baseBytes = testing::randomBytes(size, cs);
  auto base = testing::makeBase(dir.path(), baseBytes);
  OverlayPaths paths{dir / "h.map", dir / "h.data"};
  ASSERT_TRUE(Overlay::create(paths, base->identity(), cs));
  OverlayOptions opts;
  opts.compactAfterBytes = compactAfter;
  auto ov = Overlay::open(paths, base, opts);
  ASSERT_TRUE(ov) << ov.error().message;
  std::shared_ptr<Overlay> dev = *ov;

  std::vector<std::uint8_t> model = baseBytes;
  std::mt19937_64 rng(0xC0FFEE ^ cs ^ compactAfter);
  auto pick = [&](std::uint64_t n) { return n == 0 ? 0 : rng() % n; };
  auto offset = [&]() -> std::uint64_t {
    switch (pick(5)) {
      case 0: return pick(size + 1);
      case 1: return pick(std::min<std::uint64_t>(size, 2ULL * cs) + 1);                 // near the start
      case 2: return size - pick(std::min<std::uint64_t>(size, 2ULL * cs) + 1);          // near the end
      case 3: {                                                                         // around a boundary
        auto b = pick(size / cs + 1) * cs;
        auto d = pick(1025);
        return std::min(size, pick(2) ? b + d : (b > d ? b - d : 0));
      }
      default: return pick(size / 512 + 1) * 512;                                        // sector aligned
    }
  };
  auto length = [&](std::uint64_t off) -> std::uint64_t {
    std::uint64_t n;
    switch (pick(6)) {
      case 0: n = 0; break;
      case 1: n = 1 + pick(600); break;
      case 2: n = 1 + pick(cs); break;
      case 3: n = 1 + pick(cs * 5 / 2); break;
      case 4: n = (1 + pick(8)) * 512; break;
      default: n = (1 + pick(3)) * std::uint64_t{cs}; break;
    }
    return std::min(n, size - off);
  };
  std::vector<std::uint8_t> buf;
  std::uint64_t counts[9] = {};
  std::uint64_t compactions = 0;
  // Megabyte chunks make every operation megabytes long: fewer of them for the same coverage time.
  const std::uint64_t ops = cs >= (1U << 20) ? std::max<std::uint64_t>(1, opsPerRun() / 4) : opsPerRun();
  for (std::uint64_t i = 0; i < ops; ++i) {
    const auto op = pick(100);
    const auto off = offset();
    const auto len = length(off);
    SCOPED_TRACE(::testing::Message() << "op#" << i << " kind=" << op << " off=" << off << " len=" << len);
    if (op < 30) {
      ++counts[0];
      buf.assign(len, 0xEE);
      ASSERT_TRUE(dev->read(off, buf));
      ASSERT_TRUE(std::equal(buf.begin(), buf.end(), model.begin() + static_cast<std::ptrdiff_t>(off)));
    } else if (op < 60) {
      ++counts[1];
      auto data = testing::randomBytes(len, rng());
      bool fua = pick(20) == 0;
      auto r = dev->write(off, data, WriteFlags{fua});
      ASSERT_TRUE(r) << r.error().message;
      std::copy(data.begin(), data.end(), model.begin() + static_cast<std::ptrdiff_t>(off));
    } else if (op < 70) {
      ++counts[2];
      ASSERT_TRUE(dev->trim(off, len));
      std::fill_n(model.begin() + static_cast<std::ptrdiff_t>(off), len, 0);
    } else if (op < 80) {
      ++counts[3];
      ASSERT_TRUE(dev->writeZeroes(off, len, WriteFlags{pick(10) == 0}));
      std::fill_n(model.begin() + static_cast<std::ptrdiff_t>(off), len, 0);
    } else if (op < 87) {
      ++counts[4];
      ASSERT_TRUE(dev->flush());
    } else if (op < 93) {
      ++counts[5];
      auto ex = dev->extents(off, len);
      ASSERT_TRUE(ex);
      std::uint64_t pos = off;
      for (std::size_t k = 0; k < ex->size(); ++k) {
        const auto& e = (*ex)[k];
        ASSERT_EQ(e.offset, pos);
        ASSERT_GT(e.length, 0U);
        if (k > 0) {
          ASSERT_NE((*ex)[k - 1].state, e.state);
        }
        auto mb = model.begin() + static_cast<std::ptrdiff_t>(e.offset);
        if (e.state == ExtentState::Zero) {
          ASSERT_TRUE(std::all_of(mb, mb + static_cast<std::ptrdiff_t>(e.length), [](auto b) { return b == 0; }));
        } else if (e.state == ExtentState::Base) {
          ASSERT_TRUE(std::equal(mb, mb + static_cast<std::ptrdiff_t>(e.length),
                                 baseBytes.begin() + static_cast<std::ptrdiff_t>(e.offset)));
        }
        pos += e.length;
      }
      ASSERT_EQ(pos, off + len);
    } else if (op < 99) {
      ++counts[6];
      // Out of range: past the end, overflowing, or absurd. Must fail with ERANGE and change nothing.
      std::uint64_t badOff, badLen;
      switch (pick(4)) {
        case 0: badOff = size + 1 + pick(1000); badLen = pick(10); break;
        case 1: badOff = size - pick(std::min<std::uint64_t>(size, 100)); badLen = size; break;
        case 2: badOff = UINT64_MAX - pick(100); badLen = 1 + pick(4096); break;
        default: badOff = pick(size); badLen = UINT64_MAX - pick(10); break;
      }
      if (within(badOff, badLen, size)) continue;
      std::vector<std::uint8_t> small(16);
      switch (pick(4)) {
        case 0: EXPECT_EQ(dev->trim(badOff, badLen).error().code, ERANGE); break;
        case 1: EXPECT_EQ(dev->writeZeroes(badOff, badLen).error().code, ERANGE); break;
        case 2: EXPECT_EQ(dev->extents(badOff, badLen).error().code, ERANGE); break;
        default:
          if (badOff > size - small.size()) {
            EXPECT_EQ(dev->write(badOff, small).error().code, ERANGE);
          }
          break;
      }
    } else {
      ++counts[7];
      ASSERT_TRUE(dev->close());
      compactions += dev->stats().compactions;  // per open (incl. close's): summed over the reopens
      dev.reset();
      auto again = Overlay::open(paths, base, opts);
      ASSERT_TRUE(again) << again.error().message;
      dev = *again;
      buf.assign(size, 0);
      ASSERT_TRUE(dev->read(0, buf));
      ASSERT_EQ(buf, model);
    }
  }
  buf.assign(size, 0);
  ASSERT_TRUE(dev->read(0, buf));
  ASSERT_EQ(buf, model);
  ASSERT_TRUE(dev->close());
  compactions += dev->stats().compactions;
  dev.reset();
  auto again = Overlay::open(paths, base, opts);
  ASSERT_TRUE(again);
  buf.assign(size, 0);
  ASSERT_TRUE((*again)->read(0, buf));
  ASSERT_EQ(buf, model);
  RecordProperty("ops", std::to_string(ops));
  std::printf("chunk=%u ops=%llu reads=%llu writes=%llu trims=%llu zeroes=%llu flushes=%llu extents=%llu bad=%llu "
              "reopens=%llu compactions=%llu\n",
              cs, static_cast<unsigned long long>(ops), static_cast<unsigned long long>(counts[0]),
              static_cast<unsigned long long>(counts[1]), static_cast<unsigned long long>(counts[2]),
              static_cast<unsigned long long>(counts[3]), static_cast<unsigned long long>(counts[4]),
              static_cast<unsigned long long>(counts[5]), static_cast<unsigned long long>(counts[6]),
              static_cast<unsigned long long>(counts[7]), static_cast<unsigned long long>(compactions));
}

INSTANTIATE_TEST_SUITE_P(ChunkSizes, ModelTest,
                         ::testing::Values(ModelParams{4096, 0}, ModelParams{4096, 512}, ModelParams{8192, 0},
                                           ModelParams{65536, 256}, ModelParams{1U << 20, 0}),
                         [](const auto& p) {
                           return "chunk" + std::to_string(p.param.chunkSize) + "_compact" +
                                  std::to_string(p.param.compactAfter);
                         });

}  // namespace
}  // namespace pxedust::blockstore
