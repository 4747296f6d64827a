#include "iscsi/wire/text.hpp"

#include <algorithm>
#include <cstring>

namespace pxedust::iscsi::wire {

std::string_view textErrorName(TextError e) {
  switch (e) {
    case TextError::None: return "none";
    case TextError::MissingNul: return "missing NUL";
    case TextError::MissingEquals: return "missing '='";
    case TextError::BadKey: return "bad key name";
    case TextError::ValueTooLong: return "value too long";
    case TextError::DuplicateKey: return "duplicate key";
    case TextError::TooManyPairs: return "too many keys";
  }
  return "?";
}

bool validKeyName(std::string_view key) {
  if (key.empty() || key.size() > 63) return false;
  // §6.1 asks for a capital first letter, yet §13.24 itself defines iSCSIProtocolLevel: any letter.
  if (!((key[0] >= 'A' && key[0] <= 'Z') || (key[0] >= 'a' && key[0] <= 'z'))) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
           c == '+' || c == '@' || c == '_' || c == '#';
  });
}

namespace {
bool isLargeValueKey(std::string_view key) { return key == "CHAP_C" || key == "CHAP_R"; }
}  // namespace

ParsedText parseText(std::span<const std::uint8_t> data, const TextLimits& limits) {
  ParsedText out;
  std::string_view all(reinterpret_cast<const char*>(data.data()), data.size());
  std::size_t pos = 0;
  auto fail = [&out](TextError e, std::string_view key) {
    out.error = e;
    out.badKey = key;
    out.pairs.clear();
    return out;
  };
  while (pos < all.size()) {
    std::size_t nul = all.find('\0', pos);
    if (nul == std::string_view::npos) return fail(TextError::MissingNul, {});
    std::string_view item = all.substr(pos, nul - pos);
    pos = nul + 1;
    if (item.empty()) continue;  // stray NUL (some initiators pad with them)
    std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) return fail(TextError::MissingEquals, item.substr(0, std::min<std::size_t>(item.size(), 63)));
    KeyValue kv{item.substr(0, eq), item.substr(eq + 1)};
    if (!validKeyName(kv.key)) return fail(TextError::BadKey, kv.key.substr(0, std::min<std::size_t>(kv.key.size(), 63)));
    std::size_t maxValue = isLargeValueKey(kv.key) ? limits.maxLargeValueLength : limits.maxValueLength;
    if (kv.value.size() > maxValue) return fail(TextError::ValueTooLong, kv.key);
    if (out.pairs.size() >= limits.maxPairs) return fail(TextError::TooManyPairs, kv.key);
    // maxPairs bounds this scan (128 * 128 / 2 comparisons at most).
    for (const auto& prev : out.pairs) {
      if (prev.key == kv.key) return fail(TextError::DuplicateKey, kv.key);
    }
    out.pairs.push_back(kv);
  }
  return out;
}

void TextWriter::add(std::string_view key, std::string_view value) {
  bytes_.insert(bytes_.end(), key.begin(), key.end());
  bytes_.push_back('=');
  bytes_.insert(bytes_.end(), value.begin(), value.end());
  bytes_.push_back(0);
}

void TextWriter::set(std::string_view key, std::string_view value) {
  std::size_t pos = 0;
  while (pos < bytes_.size()) {
    std::size_t end = pos;
    while (end < bytes_.size() && bytes_[end] != 0) ++end;
    std::string_view pair(reinterpret_cast<const char*>(bytes_.data()) + pos, end - pos);
    if (pair.size() > key.size() && pair.substr(0, key.size()) == key && pair[key.size()] == '=') {
      const auto first = bytes_.begin() + static_cast<std::ptrdiff_t>(pos + key.size() + 1);
      const auto last = bytes_.begin() + static_cast<std::ptrdiff_t>(end);
      bytes_.insert(bytes_.erase(first, last), value.begin(), value.end());
      return;
    }
    pos = end + 1;
  }
  add(key, value);
}

bool TextAccumulator::append(std::span<const std::uint8_t> data) {
  if (data.size() > maxBytes_ - buf_.size()) return false;
  buf_.insert(buf_.end(), data.begin(), data.end());
  return true;
}

}  // namespace pxedust::iscsi::wire
