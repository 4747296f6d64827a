// MAC addresses: parsed from the config (aa:bb:cc:dd:ee:ff or aa-bb-cc-dd-ee-ff), compared as a
// 48-bit integer for hash lookups.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pxedust {

class MacAddress {
 public:
  MacAddress() = default;
  explicit MacAddress(std::array<std::uint8_t, 6> bytes) : bytes_(bytes) {}

  static std::optional<MacAddress> parse(std::string_view text);
  [[nodiscard]] const std::array<std::uint8_t, 6>& bytes() const { return bytes_; }
  [[nodiscard]] std::uint64_t value() const {
    std::uint64_t v = 0;
    for (auto b : bytes_) v = (v << 8) | b;
    return v;
  }
  // Lower-case hex joined by `sep`: "52:54:00:12:34:56", or with '-' as pxelinux names its files.
  [[nodiscard]] std::string toString(char sep = ':') const;
  friend bool operator==(const MacAddress&, const MacAddress&) = default;

 private:
  std::array<std::uint8_t, 6> bytes_{};
};

}  // namespace pxedust
