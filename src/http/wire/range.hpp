// Byte ranges (RFC 9110 14) and conditional requests (RFC 9110 13) for a file of known size and
// validators: what to send for a GET or HEAD. Pure: the service passes the fields and the file's facts.
//
// Range: only a single range is served. As RFC 9110 14.2 allows, a Range field the server does not
// serve is ignored (the whole file, 200): another unit, a syntax error ("bytes=5-1", a number that
// overflows 64 bits, no '='), or several ranges. A syntactically valid single range that no byte
// satisfies (first-pos at or past the end, a suffix of 0, an empty file) is 416 with
// "Content-Range: bytes */size". Suffix ranges ("bytes=-500") and open ones ("bytes=9500-") are
// clipped to the file.
//
// Preconditions, in RFC 9110 13.2.2's order for GET/HEAD:
//   If-None-Match (weak comparison; "*" matches any file)  match -> 304
//   else If-Modified-Since (ignored when If-None-Match is present, or the date does not parse)
//                                                          not modified since -> 304
//   If-Range (only with a Range): an entity-tag must match strongly, a date must equal
//   Last-Modified exactly; otherwise the Range is ignored (200, whole file).
// ETags are strong: "<size hex>-<mtime ns hex>", which changes whenever the file is replaced or
// written (images and boot files are replaced, not edited in place).
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace pxedust::http::wire {

struct FileFacts {
  std::uint64_t size = 0;
  std::int64_t mtimeNs = 0;  // nanoseconds since the epoch
};

// The file's entity-tag, quotes included: "\"1e8480-17a2b3c4d5e6f700\"".
std::string entityTag(const FileFacts& file);

// IMF-fixdate (RFC 9110 5.6.7), always GMT: "Sun, 06 Nov 1994 08:49:37 GMT".
std::string httpDate(std::time_t when);
// IMF-fixdate, and the two obsolete forms RFC 9110 5.6.7 says a recipient must accept (RFC 850's
// "Sunday, 06-Nov-94 08:49:37 GMT" and asctime's "Sun Nov  6 08:49:37 1994"); nullopt otherwise.
std::optional<std::time_t> parseHttpDate(std::string_view text);

struct Conditions {
  std::optional<std::string_view> ifNoneMatch;
  std::optional<std::string_view> ifModifiedSince;
  std::optional<std::string_view> range;
  std::optional<std::string_view> ifRange;
};

struct Plan {
  enum class Kind : std::uint8_t { Whole, Partial, NotModified, Unsatisfiable };
  Kind kind = Kind::Whole;
  std::uint64_t first = 0;   // Partial: the first byte sent
  std::uint64_t length = 0;  // Whole: the size; Partial: bytes sent; others: 0
  [[nodiscard]] int status() const;                                      // 200, 206, 304, 416
  [[nodiscard]] std::string contentRange(std::uint64_t size) const;      // for 206 and 416; empty otherwise
};

Plan plan(const Conditions& conditions, const FileFacts& file);

}  // namespace pxedust::http::wire
