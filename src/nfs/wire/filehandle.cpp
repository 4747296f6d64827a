#include "nfs/wire/filehandle.hpp"

namespace pxedust::nfs::wire {

namespace {

constexpr std::size_t kMacOffset = 36;

constexpr std::uint64_t rotl(std::uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

std::uint64_t le64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct SipState {
  std::uint64_t v0, v1, v2, v3;
  void round() {
    v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
    v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
    v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
    v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
  }
  void compress(std::uint64_t m) {
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
};

void putBe(std::uint8_t* p, std::uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}

std::uint64_t getBe(const std::uint8_t* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

std::uint64_t siphash24(const HandleKey& key, std::span<const std::uint8_t> data) {
  const std::uint64_t k0 = le64(key.data());
  const std::uint64_t k1 = le64(key.data() + 8);
  SipState s{k0 ^ 0x736f6d6570736575ull, k1 ^ 0x646f72616e646f6dull, k0 ^ 0x6c7967656e657261ull,
             k1 ^ 0x7465646279746573ull};
  const std::size_t whole = data.size() - data.size() % 8;
  for (std::size_t i = 0; i < whole; i += 8) s.compress(le64(data.data() + i));
  std::uint64_t last = std::uint64_t{data.size() & 0xff} << 56;
  for (std::size_t i = whole; i < data.size(); ++i) last |= std::uint64_t{data[i]} << (8 * (i - whole));
  s.compress(last);
  s.v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) s.round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

HandleBytes encodeHandle(const FileHandle& fh, const HandleKey& key) {
  HandleBytes b{};
  b[0] = kHandleMagic;
  b[1] = kHandleVersion;
  for (std::size_t i = 0; i < fh.image.size(); ++i) b[4 + i] = fh.image[i];
  putBe(&b[20], fh.imageVersion, 4);
  putBe(&b[24], fh.inode, 8);
  putBe(&b[32], fh.generation, 4);
  putBe(&b[kMacOffset], siphash24(key, std::span(b).first(kMacOffset)), 8);
  return b;
}

Nfsstat3 decodeHandle(std::span<const std::uint8_t> bytes, const HandleKey& key, FileHandle& out) {
  if (bytes.size() != kHandleSize) return Nfsstat3::BadHandle;
  if (bytes[0] != kHandleMagic || bytes[1] != kHandleVersion || bytes[2] != 0 || bytes[3] != 0) {
    return Nfsstat3::BadHandle;
  }
  // Compare the whole tag without an early exit, so the time taken says nothing about which
  // bytes of a guessed MAC were right.
  const std::uint64_t mac = siphash24(key, bytes.first(kMacOffset));
  const std::uint64_t sent = getBe(&bytes[kMacOffset], 8);
  if ((mac ^ sent) != 0) return Nfsstat3::BadHandle;
  FileHandle fh;
  for (std::size_t i = 0; i < fh.image.size(); ++i) fh.image[i] = bytes[4 + i];
  fh.imageVersion = static_cast<std::uint32_t>(getBe(&bytes[20], 4));
  fh.inode = getBe(&bytes[24], 8);
  fh.generation = static_cast<std::uint32_t>(getBe(&bytes[32], 4));
  out = fh;
  return Nfsstat3::Ok;
}

}  // namespace pxedust::nfs::wire
