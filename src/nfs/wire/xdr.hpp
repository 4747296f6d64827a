// XDR (RFC 4506) over the bounds-checked ByteReader/ByteWriter: the only way NFS wire code reads or
// writes a peer's bytes.
//
// Design note. Every XDR item is a multiple of four bytes, big-endian (§3, §4.1-4.5): unsigned int
// (§4.2), unsigned hyper (§4.5), bool as an enum of 0/1 (§4.4), fixed-length opaque (§4.9) and
// variable-length opaque and string (§4.10, §4.11), each padded with zero bytes to a multiple of
// four. The reader keeps ByteReader's sticky-failure shape: read a whole structure, then check ok()
// once; the first failure is kept as the reason (Truncated, TooLong, BadBool, BadValue) and every
// later read returns zero/empty. A variable length is compared with its maximum *before* anything
// is read or sized (habit 6); a length larger than what is left fails as Truncated without
// computing length + padding (habit 3). The padding a peer sends is skipped, not checked: RFC 4506
// says it "MUST" be zero for the sender, and Linux and FreeBSD servers do not reject nonzero pads.
// Nothing here throws or allocates except XdrReader::string()'s std::string_view (no copy).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/bytes.hpp"

namespace pxedust::nfs::wire {

enum class XdrError : std::uint8_t {
  None,
  Truncated,  // fewer bytes than the item needs
  TooLong,    // a variable-length item over its maximum
  BadBool,    // a bool other than 0 or 1 (§4.4: bool is enum { FALSE = 0, TRUE = 1 })
  BadValue,   // the caller refused a value (an enum out of range, an invalid filename, ...)
};
std::string_view xdrErrorName(XdrError e);

// Bytes of padding after `n` bytes of opaque data (0..3).
constexpr std::size_t xdrPad(std::size_t n) { return (4 - (n & 3)) & 3; }
// Wire size of a variable-length opaque or string of `n` bytes (length word + data + padding).
constexpr std::size_t xdrOpaqueSize(std::size_t n) { return 4 + n + xdrPad(n); }

class XdrReader {
 public:
  explicit XdrReader(std::span<const std::uint8_t> data) : r_(data) {}

  [[nodiscard]] bool ok() const { return error_ == XdrError::None; }
  [[nodiscard]] XdrError error() const { return error_; }
  [[nodiscard]] std::size_t position() const { return r_.position(); }
  [[nodiscard]] std::size_t remaining() const { return r_.remaining(); }
  // Marks the reader failed with `e` (the first failure wins).
  void fail(XdrError e) {
    if (error_ == XdrError::None) error_ = e;
  }

  std::uint32_t u32();
  std::uint64_t u64();
  bool boolean();
  // Fixed-length opaque of n bytes plus its padding (§4.9).
  std::span<const std::uint8_t> fixedOpaque(std::size_t n);
  // Variable-length opaque<max> (§4.10): a length at most `max`, the bytes, their padding.
  std::span<const std::uint8_t> opaque(std::uint32_t max);
  // string<max> (§4.11): as opaque; the bytes are not interpreted here.
  std::string_view string(std::uint32_t max);
  // The bytes not read yet (e.g. a procedure's arguments after the call header).
  std::span<const std::uint8_t> rest();

 private:
  std::span<const std::uint8_t> take(std::size_t n);

  ByteReader r_;
  XdrError error_ = XdrError::None;
};

class XdrWriter {
 public:
  explicit XdrWriter(std::span<std::uint8_t> out) : w_(out) {}

  // False once anything did not fit; nothing after that is written.
  [[nodiscard]] bool ok() const { return w_.ok() && !bad_; }
  [[nodiscard]] std::size_t size() const { return w_.size(); }
  [[nodiscard]] std::size_t remaining() const { return w_.remaining(); }
  [[nodiscard]] std::span<const std::uint8_t> written() const { return w_.written(); }

  void u32(std::uint32_t v) {
    if (!bad_) w_.be32(v);
  }
  void u64(std::uint64_t v) {
    u32(static_cast<std::uint32_t>(v >> 32));
    u32(static_cast<std::uint32_t>(v));
  }
  void boolean(bool v) { u32(v ? 1 : 0); }
  void fixedOpaque(std::span<const std::uint8_t> b);
  // opaque<> / string<>: the caller has held the item to its maximum; lengths over 2^32-1 fail.
  void opaque(std::span<const std::uint8_t> b);
  void string(std::string_view s);

 private:
  ByteWriter w_;
  bool bad_ = false;  // an item no XDR length can describe
};

}  // namespace pxedust::nfs::wire
