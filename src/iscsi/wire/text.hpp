// iSCSI text key=value data (RFC 7143 §6.1, §6.2): the data segment of Login and Text PDUs.
//
// Format: every pair is key=value followed by one NUL, the last one too. Key names are at most 63
// characters of letters, digits and . - + @ _ (X# vendor keys add '#'), starting with a letter
// (§6.1 says a capital one, but §13.24 defines iSCSIProtocolLevel); values are at most 255 bytes
// unless a key says otherwise (§6.1: CHAP_C and CHAP_R carry
// binary values up to 1024 bytes, i.e. 2050 characters in hex). A key appearing twice in one
// request is a protocol error (§6.2 forbids re-declaration; the caller turns it into a Login reject).
//
// Views returned by parseText point into the caller's buffer. A request may be split over several
// PDUs with the C (continue) bit set, and a pair may straddle the split (§6.2); TextAccumulator
// joins the pieces up to a byte cap before parsing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace pxedust::iscsi::wire {

struct KeyValue {
  std::string_view key;
  std::string_view value;
};

enum class TextError : std::uint8_t {
  None,
  MissingNul,     // the last pair is not NUL-terminated
  MissingEquals,
  BadKey,         // empty, too long, bad character, not starting with a letter
  ValueTooLong,
  DuplicateKey,
  TooManyPairs,
};
std::string_view textErrorName(TextError e);

struct TextLimits {
  std::size_t maxPairs = 128;          // a login sends ~20; floods are refused, not processed
  std::size_t maxValueLength = 255;    // §6.1
  std::size_t maxLargeValueLength = 2 + 2 * 1024;  // CHAP_C / CHAP_R: 1024 bytes as 0x hex
};

struct ParsedText {
  std::vector<KeyValue> pairs;
  TextError error = TextError::None;
  std::string_view badKey;  // the offending key, when there is one
  [[nodiscard]] bool ok() const { return error == TextError::None; }
};

// Parses a complete text data segment. Empty strings between pairs (stray NULs) are skipped.
ParsedText parseText(std::span<const std::uint8_t> data, const TextLimits& limits = {});

// True for a well-formed key name (§6.1).
bool validKeyName(std::string_view key);

// Builds a text data segment.
class TextWriter {
 public:
  void add(std::string_view key, std::string_view value);
  // Adds key=value, or replaces the value when the key is already in the text (a key appears once).
  void set(std::string_view key, std::string_view value);
  [[nodiscard]] const std::vector<std::uint8_t>& bytes() const { return bytes_; }
  std::vector<std::uint8_t> take() { return std::move(bytes_); }
  [[nodiscard]] bool empty() const { return bytes_.empty(); }
  [[nodiscard]] std::size_t size() const { return bytes_.size(); }

 private:
  std::vector<std::uint8_t> bytes_;
};

// Joins the data segments of a Login or Text request sent with C=1 until the PDU with C=0.
class TextAccumulator {
 public:
  explicit TextAccumulator(std::size_t maxBytes = 64 * 1024) : maxBytes_(maxBytes) {}
  // Appends one PDU's data. Returns false (and keeps nothing) when the total would exceed the cap.
  bool append(std::span<const std::uint8_t> data);
  [[nodiscard]] std::span<const std::uint8_t> bytes() const { return buf_; }
  [[nodiscard]] std::size_t size() const { return buf_.size(); }
  void clear() { buf_.clear(); }

 private:
  std::size_t maxBytes_;
  std::vector<std::uint8_t> buf_;
};

}  // namespace pxedust::iscsi::wire
