// pxedust-blockbench: drives a BlockDevice (a raw file through RawImage, or a store overlay) with the
// workloads of bench/blockstore/run.sh, in-process, and prints one key=value line per run.
//
//   pxedust-blockbench import STORE FILE NAME
//   pxedust-blockbench create STORE HOST IMAGE CHUNK
//   pxedust-blockbench WORKLOAD (--raw FILE | --store DIR --host HOST) [options]
//     randread   --qd N --count N --offset B --length B        4 KiB random reads, N in flight;
//                [--stride K]                                  offsets as for randwrite
//     randwrite  --count N --offset B --length B [--stride K]  4 KiB writes at QD1, flush at the end;
//                offsets: a fixed pseudo-random sequence, or block i*K mod blocks (qemu-img bench -S);
//                also prints unique= (distinct blocks written: the ideal space is unique * 4 KiB)
//     permfill   --offset B --length B [--flush-every N]      every 4 KiB block of the range once, in
//                                                             random order (fio's randommap), flush at
//                                                             the end (and after every N writes)
//     seqread    --offset B --length B [--bs B]               sequential reads, QD1
//   Paired workloads: two devices measured in ONE process, taking turns in small batches (A B B A A B
//   ...), so that load from other processes on a shared machine falls on both alike. For ratios.
//     randpair   --raw FILE --store DIR --host HOST --qd N --count N [--stride K] [--batch N]
//                A = the raw file, B = the overlay; the offsets continue from batch to batch, so no
//                block is read twice (cold stays cold); prints a_iops, b_iops, ratio (= b/a)
//     seqpair    --store DIR --host HOST --offset B --offset2 B --length B [--raw FILE] [--bs B]
//                [--slice B]   A = the overlay at --offset, B = the overlay (or the raw file) at
//                --offset2; sequential reads, slices of --slice bytes (16 MiB) in turn; prints
//                a_mbps, b_mbps, ratio (= b/a: how much faster B reads than A)
//     space      (--store DIR --host HOST)                    allocated bytes of the overlay
#include <fcntl.h>

#include <asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "blockstore/async_device.hpp"
#include "blockstore/file.hpp"
#include "blockstore/store.hpp"

using namespace pxedust;
using namespace pxedust::blockstore;

namespace {

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "blockbench: %s\n", msg.c_str());
  std::exit(1);
}

std::uint64_t splitmix(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

struct Args {
  std::map<std::string, std::string> kv;
  std::uint64_t num(const std::string& k, std::uint64_t def) const {
    auto it = kv.find(k);
    return it == kv.end() ? def : std::strtoull(it->second.c_str(), nullptr, 0);
  }
  std::string str(const std::string& k) const {
    auto it = kv.find(k);
    return it == kv.end() ? std::string() : it->second;
  }
};

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::shared_ptr<BlockDevice> openRaw(const std::string& path) {
  auto fd = openFile(path, O_RDONLY);
  if (!fd) die(fd.error().message);
  BaseIdentity id;
  id.name = "raw";
  id.size = *fileSize(fd->get(), "raw");
  auto img = RawImage::open(path, id);
  if (!img) die(img.error().message);
  return *img;
}

// Batch b of a paired run goes to device B when this is true: A B, B A, A B, ...
bool pairTurnB(std::uint64_t b) { return ((b & 1) ^ ((b >> 1) & 1)) != 0; }

int pairs(const std::string& cmd, const Args& a) {
  auto s = Store::open(a.str("store"));
  if (!s) die(s.error().message);
  auto ov = (*s)->openOverlay(a.str("host"));
  if (!ov) die(ov.error().message);
  std::shared_ptr<BlockDevice> overlay = *ov;
  double t[2] = {0, 0};
  std::uint64_t ios[2] = {0, 0};
  std::uint64_t bs = a.num("bs", 4096);
  if (cmd == "randpair") {
    std::shared_ptr<BlockDevice> dev[2] = {openRaw(a.str("raw")), overlay};
    const auto qd = static_cast<unsigned>(a.num("qd", 1));
    const std::uint64_t count = a.num("count", 10000);  // per device
    const std::uint64_t batch = std::max<std::uint64_t>(qd, a.num("batch", 500));
    const std::uint64_t stride = a.num("stride", 0);
    const std::uint64_t blocks = overlay->size() / bs;
    std::uint64_t seed = a.num("seed", 1), next = 0, failed = 0;
    asio::io_context io;
    WorkerPool pool(qd);
    AsyncBlockDevice adev[2] = {{dev[0], pool, io.get_executor()}, {dev[1], pool, io.get_executor()}};
    std::vector<std::vector<std::uint8_t>> bufs(qd, std::vector<std::uint8_t>(bs));
    for (std::uint64_t b = 0; ios[0] < count || ios[1] < count; ++b) {
      const int d = pairTurnB(b) ? 1 : 0;
      const std::uint64_t n = std::min(batch, count - ios[d]);
      if (n == 0) continue;
      std::uint64_t issued = 0;
      std::function<void(unsigned)> issue = [&](unsigned slot) {
        if (issued == n) return;
        ++issued;
        const std::uint64_t i = next++;
        std::uint64_t off = (stride ? (i * stride) % blocks : splitmix(seed) % blocks) * bs;
        adev[d].asyncRead(off, bufs[slot], [&, slot](Result<void> r) {
          if (!r) ++failed;
          issue(slot);
        });
      };
      const double t0 = now();
      for (unsigned q = 0; q < qd; ++q) issue(q);
      io.restart();
      io.run();
      t[d] += now() - t0;
      ios[d] += n;
    }
    if (failed) die("read errors");
    std::printf("op=randpair ios=%llu a_iops=%.0f b_iops=%.0f ratio=%.4f\n", static_cast<unsigned long long>(count),
                ios[0] / t[0], ios[1] / t[1], (ios[1] / t[1]) / (ios[0] / t[0]));
    return 0;
  }
  bs = a.num("bs", 1U << 20);
  std::shared_ptr<BlockDevice> dev[2] = {overlay, a.str("raw").empty() ? overlay : openRaw(a.str("raw"))};
  const std::uint64_t off[2] = {a.num("offset", 0), a.num("offset2", 0)};
  const std::uint64_t length = a.num("length", 0);
  const std::uint64_t slice = std::max<std::uint64_t>(bs, a.num("slice", 16U << 20)) / bs;  // reads per turn
  const std::uint64_t count = length / bs;                                                 // reads per device
  std::vector<std::uint8_t> buf(bs);
  for (std::uint64_t b = 0; ios[0] < count || ios[1] < count; ++b) {
    const int d = pairTurnB(b) ? 1 : 0;
    const std::uint64_t n = std::min(slice, count - ios[d]);
    const double t0 = now();
    for (std::uint64_t k = 0; k < n; ++k) {
      if (auto r = dev[d]->read(off[d] + (ios[d] + k) * bs, buf); !r) die(r.error().message);
    }
    t[d] += now() - t0;
    ios[d] += n;
  }
  const double mb = static_cast<double>(count * bs) / 1e6;
  std::printf("op=seqpair ios=%llu a_mbps=%.1f b_mbps=%.1f ratio=%.4f\n", static_cast<unsigned long long>(count),
              mb / t[0], mb / t[1], t[0] / t[1]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) die("usage: see the comment at the top of blockbench.cpp");
  std::string cmd = argv[1];
  if (cmd == "import" && argc == 5) {
    auto store = Store::open(argv[2]);
    if (!store) die(store.error().message);
    auto r = (*store)->importImage(argv[3], argv[4]);
    if (!r) die(r.error().message);
    std::printf("imported=%s version=%llu\n", argv[4], static_cast<unsigned long long>(r->identity.version));
    return 0;
  }
  if (cmd == "create" && argc == 6) {
    auto store = Store::open(argv[2]);
    if (!store) die(store.error().message);
    (void)(*store)->deleteOverlay(argv[3]);
    CreateOverlayOptions o;
    o.chunkSize = static_cast<std::uint32_t>(std::strtoul(argv[5], nullptr, 0));
    auto r = (*store)->createOverlay(argv[3], argv[4], o);
    if (!r) die(r.error().message);
    return 0;
  }
  Args a;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0) die("bad argument " + k);
    a.kv[k.substr(2)] = argv[i + 1];
  }
  if (cmd == "randpair" || cmd == "seqpair") return pairs(cmd, a);
  std::shared_ptr<BlockDevice> dev;
  std::shared_ptr<Store> store;
  if (!a.str("raw").empty()) {
    dev = openRaw(a.str("raw"));
  } else {
    auto s = Store::open(a.str("store"));
    if (!s) die(s.error().message);
    store = *s;
    if (cmd == "space") {
      auto info = store->overlayInfo(a.str("host"));
      if (!info) die(info.error().message);
      std::printf("op=space allocated_bytes=%llu\n", static_cast<unsigned long long>(info->allocatedBytes));
      return 0;
    }
    auto ov = store->openOverlay(a.str("host"));
    if (!ov) die(ov.error().message);
    dev = *ov;
  }
  const std::uint64_t bs = a.num("bs", 4096);
  const std::uint64_t offset = a.num("offset", 0);
  const std::uint64_t length = a.num("length", dev->size() - offset);
  const std::uint64_t blocks = length / bs;
  std::uint64_t seed = a.num("seed", 1);
  std::vector<std::uint8_t> buf(bs, 0x5A);
  double t0 = now();
  std::uint64_t ios = 0;
  std::string extra;  // workload-specific key=value pairs appended to the result line

  if (cmd == "randread") {
    const auto qd = static_cast<unsigned>(a.num("qd", 1));
    const std::uint64_t count = a.num("count", 10000);
    const std::uint64_t stride = a.num("stride", 0);
    asio::io_context io;
    WorkerPool pool(qd);
    AsyncBlockDevice adev(dev, pool, io.get_executor());
    std::vector<std::vector<std::uint8_t>> bufs(qd, std::vector<std::uint8_t>(bs));
    std::uint64_t issued = 0, failed = 0;
    std::function<void(unsigned)> issue = [&](unsigned slot) {
      if (issued == count) return;
      const std::uint64_t i = issued++;
      std::uint64_t off = offset + (stride ? (i * stride) % blocks : splitmix(seed) % blocks) * bs;
      adev.asyncRead(off, bufs[slot], [&, slot](Result<void> r) {
        if (!r) ++failed;
        ++ios;
        issue(slot);
      });
    };
    t0 = now();
    for (unsigned s = 0; s < qd; ++s) issue(s);
    io.run();
    if (failed) die("read errors");
  } else if (cmd == "randwrite") {
    const std::uint64_t count = a.num("count", 10000);
    const std::uint64_t stride = a.num("stride", 0);
    std::vector<bool> seen(blocks);
    std::uint64_t unique = 0;
    for (std::uint64_t i = 0; i < count; ++i) {
      std::uint64_t blk = stride ? (i * stride) % blocks : splitmix(seed) % blocks;
      if (!seen[blk]) {
        seen[blk] = true;
        ++unique;
      }
      buf[0] = static_cast<std::uint8_t>(i);
      if (auto r = dev->write(offset + blk * bs, buf); !r) die(r.error().message);
      ++ios;
    }
    if (auto r = dev->flush(); !r) die(r.error().message);
    extra = " unique=" + std::to_string(unique);
  } else if (cmd == "permfill") {
    std::vector<std::uint32_t> perm(blocks);
    std::iota(perm.begin(), perm.end(), 0U);
    for (std::uint64_t i = blocks; i > 1; --i) std::swap(perm[i - 1], perm[splitmix(seed) % i]);
    const std::uint64_t flushEvery = a.num("flush-every", 0);
    t0 = now();
    for (auto blk : perm) {
      buf[0] = static_cast<std::uint8_t>(blk);
      if (auto r = dev->write(offset + std::uint64_t{blk} * bs, buf); !r) die(r.error().message);
      ++ios;
      if (flushEvery != 0 && ios % flushEvery == 0) {
        if (auto r = dev->flush(); !r) die(r.error().message);
      }
    }
    if (auto r = dev->flush(); !r) die(r.error().message);
  } else if (cmd == "seqread") {
    for (std::uint64_t off = offset; off + bs <= offset + length; off += bs) {
      if (auto r = dev->read(off, buf); !r) die(r.error().message);
      ++ios;
    }
  } else {
    die("unknown workload " + cmd);
  }
  double secs = now() - t0;
  std::printf("op=%s ios=%llu bs=%llu secs=%.3f iops=%.0f mbps=%.1f%s\n", cmd.c_str(),
              static_cast<unsigned long long>(ios), static_cast<unsigned long long>(bs), secs, ios / secs,
              static_cast<double>(ios * bs) / secs / 1e6, extra.c_str());
  return 0;
}
