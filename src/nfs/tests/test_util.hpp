// Small helpers for the NFS wire tests: big-endian byte assembly and a reply buffer.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

namespace pxedust::nfs::wire::testing {

using Bytes = std::vector<std::uint8_t>;

inline void put32(Bytes& b, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
}
inline void put64(Bytes& b, std::uint64_t v) {
  put32(b, static_cast<std::uint32_t>(v >> 32));
  put32(b, static_cast<std::uint32_t>(v));
}
inline void putOpaque(Bytes& b, std::span<const std::uint8_t> d) {
  put32(b, static_cast<std::uint32_t>(d.size()));
  b.insert(b.end(), d.begin(), d.end());
  while (b.size() % 4 != 0) b.push_back(0);
}
inline void putString(Bytes& b, std::string_view s) {
  putOpaque(b, {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
}
inline Bytes words(std::initializer_list<std::uint32_t> ws) {
  Bytes b;
  for (auto w : ws) put32(b, w);
  return b;
}
inline Bytes toBytes(std::span<const std::uint8_t> s) { return Bytes(s.begin(), s.end()); }

}  // namespace pxedust::nfs::wire::testing
