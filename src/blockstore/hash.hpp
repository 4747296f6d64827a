// Checksums for the block store.
//
// CRC32C (Castagnoli) guards every overlay map record and the map header: it detects torn and
// bit-flipped records (what a journal needs), and runs on the SSE4.2 crc32 instruction when present.
// SHA-256 is the base image's content identity. It is chosen over a faster non-cryptographic hash
// (xxh3) because the identity is what stops an overlay from being attached to a modified base, and a
// cryptographic hash also holds when the modification is deliberate; with the SHA extensions
// (sha_ni) OpenSSL hashes at ~1.5-2 GB/s, faster than the disk the import reads from, and it is
// computed once at import (a full re-hash only on demand, `Store::verifyImage`).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace pxedust::blockstore {

std::uint32_t crc32c(std::span<const std::uint8_t> data, std::uint32_t crc = 0);

using Sha256Digest = std::array<std::uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::span<const std::uint8_t> data);
  Sha256Digest finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string toHex(std::span<const std::uint8_t> bytes);
// Parses exactly 2*out.size() hex digits; false on anything else.
bool fromHex(std::string_view text, std::span<std::uint8_t> out);

}  // namespace pxedust::blockstore
