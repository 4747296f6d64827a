#include "nfs/wire/xdr.hpp"

#include <array>

namespace pxedust::nfs::wire {

std::string_view xdrErrorName(XdrError e) {
  switch (e) {
    case XdrError::None: return "none";
    case XdrError::Truncated: return "truncated";
    case XdrError::TooLong: return "too long";
    case XdrError::BadBool: return "bad bool";
    case XdrError::BadValue: return "bad value";
  }
  return "unknown";
}

std::span<const std::uint8_t> XdrReader::take(std::size_t n) {
  if (!ok()) return {};
  if (n > r_.remaining()) {
    fail(XdrError::Truncated);
    return {};
  }
  return r_.bytes(n);
}

std::uint32_t XdrReader::u32() {
  auto b = take(4);
  if (b.empty()) return 0;
  return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | b[3];
}

std::uint64_t XdrReader::u64() {
  std::uint64_t hi = u32();
  std::uint64_t lo = u32();
  return ok() ? (hi << 32) | lo : 0;
}

bool XdrReader::boolean() {
  std::uint32_t v = u32();
  if (v > 1) fail(XdrError::BadBool);
  return ok() && v == 1;
}

std::span<const std::uint8_t> XdrReader::fixedOpaque(std::size_t n) {
  // n comes from the caller (a protocol constant), never from the peer.
  auto b = take(n);
  take(xdrPad(n));
  return ok() ? b : std::span<const std::uint8_t>{};
}

std::span<const std::uint8_t> XdrReader::opaque(std::uint32_t max) {
  std::uint32_t len = u32();
  if (!ok()) return {};
  if (len > max) {
    fail(XdrError::TooLong);
    return {};
  }
  return fixedOpaque(len);
}

std::string_view XdrReader::string(std::uint32_t max) {
  auto b = opaque(max);
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::span<const std::uint8_t> XdrReader::rest() { return take(r_.remaining()); }

void XdrWriter::fixedOpaque(std::span<const std::uint8_t> b) {
  static constexpr std::array<std::uint8_t, 3> kZeros{};
  if (bad_) return;
  w_.bytes(b);
  w_.bytes(std::span<const std::uint8_t>(kZeros).first(xdrPad(b.size())));
}

void XdrWriter::opaque(std::span<const std::uint8_t> b) {
  if (b.size() > UINT32_MAX) {
    bad_ = true;
    return;
  }
  u32(static_cast<std::uint32_t>(b.size()));
  fixedOpaque(b);
}

void XdrWriter::string(std::string_view s) {
  opaque({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
}

}  // namespace pxedust::nfs::wire
