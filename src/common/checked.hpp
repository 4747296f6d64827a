// Overflow-safe arithmetic for peer-controlled numbers.
//
// Never write `offset + length <= size` with peer values: the sum can wrap. Write
// `within(offset, length, size)` instead (SPDK scsi_bdev.c, nbdkit checked-overflow.h).
#pragma once

#include <charconv>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string_view>

namespace pxedust {

// True when [offset, offset + length) lies inside [0, size), without computing offset + length.
template <std::unsigned_integral T>
constexpr bool within(T offset, T length, T size) {
  return offset <= size && length <= size - offset;
}

template <std::integral T>
constexpr std::optional<T> checkedAdd(T a, T b) {
  T r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

template <std::integral T>
constexpr std::optional<T> checkedMul(T a, T b) {
  T r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// Parses a whole string of ASCII decimal digits (no sign, no spaces). Values too large for T
// saturate to T's maximum and report `saturated`, so a caller can clamp instead of rejecting.
struct DecimalParse {
  std::uint64_t value = 0;
  bool saturated = false;
};
inline std::optional<DecimalParse> parseDecimal(std::string_view s) {
  if (s.empty()) return std::nullopt;
  DecimalParse out;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    if (out.saturated) continue;
    auto next = checkedMul<std::uint64_t>(out.value, 10);
    if (next) next = checkedAdd<std::uint64_t>(*next, static_cast<std::uint64_t>(c - '0'));
    if (!next) {
      out.saturated = true;
      out.value = UINT64_MAX;
    } else {
      out.value = *next;
    }
  }
  return out;
}

}  // namespace pxedust
