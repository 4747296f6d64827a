// Bounds-checked views over peer bytes.
//
// Every byte that comes from the network is read through ByteReader: reads past the end never touch
// memory, they set a sticky failure flag and return zero/empty, so a parser can read a whole header and
// check ok() once (the pattern of Kea's InputBuffer, without exceptions). ByteWriter is the mirror image
// for building replies into a fixed buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

namespace pxedust {

class ByteReader {
 public:
  explicit ByteReader(std::span<const std::uint8_t> data) : data_(data) {}

  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] std::size_t position() const { return pos_; }
  [[nodiscard]] std::size_t remaining() const { return data_.size() - pos_; }
  [[nodiscard]] bool empty() const { return remaining() == 0; }

  std::uint8_t u8() {
    if (!need(1)) return 0;
    return data_[pos_++];
  }
  std::uint16_t be16() {
    if (!need(2)) return 0;
    auto v = static_cast<std::uint16_t>((data_[pos_] << 8) | data_[pos_ + 1]);
    pos_ += 2;
    return v;
  }
  std::uint32_t be32() {
    if (!need(4)) return 0;
    std::uint32_t v = (std::uint32_t{data_[pos_]} << 24) | (std::uint32_t{data_[pos_ + 1]} << 16) |
                      (std::uint32_t{data_[pos_ + 2]} << 8) | std::uint32_t{data_[pos_ + 3]};
    pos_ += 4;
    return v;
  }
  std::span<const std::uint8_t> bytes(std::size_t n) {
    if (!need(n)) return {};
    auto s = data_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  std::span<const std::uint8_t> rest() { return bytes(remaining()); }

  // A NUL-terminated string. nullopt (and no position change) when no NUL is left in the buffer;
  // this does not set the failure flag, so callers can tell "absent" from "truncated header".
  std::optional<std::string_view> cstring() {
    if (remaining() == 0) return std::nullopt;
    const auto* start = data_.data() + pos_;
    const void* nul = std::memchr(start, 0, remaining());
    if (nul == nullptr) return std::nullopt;
    auto len = static_cast<std::size_t>(static_cast<const std::uint8_t*>(nul) - start);
    pos_ += len + 1;
    return std::string_view(reinterpret_cast<const char*>(start), len);
  }

 private:
  bool need(std::size_t n) {
    if (!ok_ || n > remaining()) {
      ok_ = false;
      return false;
    }
    return true;
  }

  std::span<const std::uint8_t> data_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

class ByteWriter {
 public:
  explicit ByteWriter(std::span<std::uint8_t> out) : out_(out) {}

  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] std::size_t size() const { return pos_; }
  [[nodiscard]] std::size_t remaining() const { return out_.size() - pos_; }
  [[nodiscard]] std::span<const std::uint8_t> written() const { return out_.first(pos_); }

  void u8(std::uint8_t v) {
    if (need(1)) out_[pos_++] = v;
  }
  void be16(std::uint16_t v) {
    if (!need(2)) return;
    out_[pos_++] = static_cast<std::uint8_t>(v >> 8);
    out_[pos_++] = static_cast<std::uint8_t>(v);
  }
  void be32(std::uint32_t v) {
    if (!need(4)) return;
    for (int shift = 24; shift >= 0; shift -= 8) out_[pos_++] = static_cast<std::uint8_t>(v >> shift);
  }
  void bytes(std::span<const std::uint8_t> b) {
    if (!need(b.size())) return;
    if (!b.empty()) std::memcpy(out_.data() + pos_, b.data(), b.size());
    pos_ += b.size();
  }
  void str(std::string_view s) {
    bytes({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
  }
  void cstring(std::string_view s) {
    str(s);
    u8(0);
  }

 private:
  bool need(std::size_t n) {
    if (!ok_ || n > remaining()) {
      ok_ = false;
      return false;
    }
    return true;
  }

  std::span<std::uint8_t> out_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace pxedust
