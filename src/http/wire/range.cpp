// Byte ranges, validators and HTTP dates (range.hpp).
#include "http/wire/range.hpp"

#include <array>
#include <charconv>

#include <fmt/format.h>

#include "http/wire/request.hpp"

namespace pxedust::http::wire {

namespace {

constexpr std::array<std::string_view, 7> kDays{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> kLongDays{"Sunday", "Monday", "Tuesday", "Wednesday",
                                                    "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<std::uint64_t> digits(std::string_view s, std::size_t maxDigits = 20) {
  if (s.empty() || s.size() > maxDigits) return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<int> monthIndex(std::string_view name) {
  for (std::size_t i = 0; i < kMonths.size(); ++i)
    if (kMonths[i] == name) return static_cast<int>(i);
  return std::nullopt;
}

// Days from 1970-01-01 to year-month-day (proleptic Gregorian; month 0-11).
std::int64_t daysFromCivil(std::int64_t y, int m, int d) {
  m += 1;
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * static_cast<unsigned>(m + (m > 2 ? -3 : 9)) + 2) / 5 + static_cast<unsigned>(d) - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// "hh:mm:ss" -> seconds into the day.
std::optional<int> clock(std::string_view s) {
  if (s.size() != 8 || s[2] != ':' || s[5] != ':') return std::nullopt;
  auto h = digits(s.substr(0, 2), 2), m = digits(s.substr(3, 2), 2), sec = digits(s.substr(6, 2), 2);
  if (!h || !m || !sec || *h > 23 || *m > 59 || *sec > 60) return std::nullopt;
  return static_cast<int>(*h * 3600 + *m * 60 + std::min<std::uint64_t>(*sec, 59));
}

std::optional<std::time_t> assemble(std::uint64_t year, int month, std::uint64_t day, int seconds) {
  if (year < 1970 || year > 9999 || day < 1 || day > 31) return std::nullopt;
  return static_cast<std::time_t>(daysFromCivil(static_cast<std::int64_t>(year), month, static_cast<int>(day)) * 86400 +
                                  seconds);
}

bool isWeakTag(std::string_view tag) { return tag.starts_with("W/"); }
std::string_view opaque(std::string_view tag) { return isWeakTag(tag) ? tag.substr(2) : tag; }

// RFC 9110 13.1.2 If-None-Match: "*" or a list of entity-tags, compared weakly.
bool noneMatchHits(std::string_view list, std::string_view etag) {
  list = trim(list);
  if (list == "*") return true;
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string_view tag = trim(list.substr(0, comma));
    if (!tag.empty() && opaque(tag) == opaque(etag)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

struct Spec {
  bool satisfiable = false;
  std::uint64_t first = 0, length = 0;
};

// One "bytes=" range-spec against `size`; nullopt when the field is not one valid single range.
std::optional<Spec> parseRange(std::string_view value, std::uint64_t size) {
  value = trim(value);
  auto eq = value.find('=');
  if (eq == std::string_view::npos || !iequals(trim(value.substr(0, eq)), "bytes")) return std::nullopt;
  std::string_view set = trim(value.substr(eq + 1));
  if (set.find(',') != std::string_view::npos) return std::nullopt;  // several ranges: served whole
  auto dash = set.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::string_view a = trim(set.substr(0, dash)), b = trim(set.substr(dash + 1));
  if (a.empty()) {  // suffix: the last N bytes
    auto n = digits(b);
    if (!n) return std::nullopt;
    if (*n == 0 || size == 0) return Spec{};
    const std::uint64_t len = std::min(*n, size);
    return Spec{true, size - len, len};
  }
  auto first = digits(a);
  if (!first) return std::nullopt;
  std::uint64_t last = 0;
  if (b.empty()) {
    last = UINT64_MAX;
  } else {
    auto l = digits(b);
    if (!l || *l < *first) return std::nullopt;  // "bytes=5-1" is not a valid range
    last = *l;
  }
  if (*first >= size) return Spec{};
  last = std::min(last, size - 1);
  return Spec{true, *first, last - *first + 1};
}

}  // namespace

std::string entityTag(const FileFacts& file) {
  return fmt::format("\"{:x}-{:x}\"", file.size, static_cast<std::uint64_t>(file.mtimeNs));
}

std::string httpDate(std::time_t when) {
  std::tm tm{};
  gmtime_r(&when, &tm);
  return fmt::format("{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT", kDays[static_cast<std::size_t>(tm.tm_wday) % 7],
                     tm.tm_mday, kMonths[static_cast<std::size_t>(tm.tm_mon) % 12], tm.tm_year + 1900, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
}

std::optional<std::time_t> parseHttpDate(std::string_view text) {
  text = trim(text);
  auto comma = text.find(',');
  if (comma == 3) {  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    if (text.size() != 29 || text.substr(25) != " GMT" || text[4] != ' ' || text[7] != ' ' || text[11] != ' ' ||
        text[16] != ' ')
      return std::nullopt;
    auto day = digits(text.substr(5, 2), 2);
    auto month = monthIndex(text.substr(8, 3));
    auto year = digits(text.substr(12, 4), 4);
    auto secs = clock(text.substr(17, 8));
    if (!day || !month || !year || !secs) return std::nullopt;
    return assemble(*year, *month, *day, *secs);
  }
  if (comma != std::string_view::npos) {  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
    std::string_view rest = text.substr(comma + 1);
    if (rest.size() != 23 || rest[0] != ' ' || rest[3] != '-' || rest[7] != '-' || rest[10] != ' ' ||
        rest.substr(19) != " GMT")
      return std::nullopt;
    bool known = false;
    for (auto d : kLongDays) known = known || d == text.substr(0, comma);
    auto day = digits(rest.substr(1, 2), 2);
    auto month = monthIndex(rest.substr(4, 3));
    auto yy = digits(rest.substr(8, 2), 2);
    auto secs = clock(rest.substr(11, 8));
    if (!known || !day || !month || !yy || !secs) return std::nullopt;
    // RFC 9110 5.6.7: a two-digit year more than 50 years in the future is in the past century.
    return assemble(*yy < 70 ? 2000 + *yy : 1900 + *yy, *month, *day, *secs);
  }
  // asctime: "Sun Nov  6 08:49:37 1994"
  if (text.size() != 24 || text[3] != ' ' || text[7] != ' ' || text[10] != ' ' || text[19] != ' ') return std::nullopt;
  auto month = monthIndex(text.substr(4, 3));
  std::string_view dayText = text.substr(8, 2);
  if (dayText[0] == ' ') dayText.remove_prefix(1);
  auto day = digits(dayText, 2);
  auto secs = clock(text.substr(11, 8));
  auto year = digits(text.substr(20, 4), 4);
  if (!month || !day || !secs || !year) return std::nullopt;
  return assemble(*year, *month, *day, *secs);
}

int Plan::status() const {
  switch (kind) {
    case Kind::Whole: return 200;
    case Kind::Partial: return 206;
    case Kind::NotModified: return 304;
    case Kind::Unsatisfiable: return 416;
  }
  return 500;
}

std::string Plan::contentRange(std::uint64_t size) const {
  if (kind == Kind::Partial) return fmt::format("bytes {}-{}/{}", first, first + length - 1, size);
  if (kind == Kind::Unsatisfiable) return fmt::format("bytes */{}", size);
  return {};
}

Plan plan(const Conditions& c, const FileFacts& file) {
  const std::string etag = entityTag(file);
  const auto mtime = static_cast<std::time_t>(file.mtimeNs / 1'000'000'000);
  if (c.ifNoneMatch) {
    if (noneMatchHits(*c.ifNoneMatch, etag)) return {Plan::Kind::NotModified, 0, 0};
  } else if (c.ifModifiedSince) {
    if (auto since = parseHttpDate(*c.ifModifiedSince); since && mtime <= *since)
      return {Plan::Kind::NotModified, 0, 0};
  }
  const Plan whole{Plan::Kind::Whole, 0, file.size};
  if (!c.range) return whole;
  if (c.ifRange) {
    std::string_view ifRange = trim(*c.ifRange);
    if (ifRange.starts_with("\"") || ifRange.starts_with("W/")) {
      if (isWeakTag(ifRange) || ifRange != etag) return whole;  // strong comparison only
    } else {
      auto date = parseHttpDate(ifRange);
      if (!date || *date != mtime) return whole;
    }
  }
  auto spec = parseRange(*c.range, file.size);
  if (!spec) return whole;
  if (!spec->satisfiable) return {Plan::Kind::Unsatisfiable, 0, 0};
  return {Plan::Kind::Partial, spec->first, spec->length};
}

}  // namespace pxedust::http::wire
