#include "common/log.hpp"

#include <unistd.h>

#include <array>
#include <cstdlib>
#include <ctime>

namespace pxedust::log {
namespace detail {
std::atomic<int> g_level{static_cast<int>(Level::Info)};
}  // namespace detail

namespace {
std::atomic<bool> g_journal{std::getenv("JOURNAL_STREAM") != nullptr};

constexpr std::array<std::string_view, 6> kNames = {"trace", "debug", "info", "warn", "error", "off"};
// syslog priorities for the journal prefix: debug 7, info 6, warning 4, err 3.
constexpr std::array<char, 6> kPriority = {'7', '7', '6', '4', '3', '3'};

}  // namespace

bool isBareChar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == '/' || c == ':' || c == '@' || c == '+' || c == ',' || c == '[' ||
         c == ']';
}

std::optional<Level> parseLevel(std::string_view name) {
  for (std::size_t i = 0; i < kNames.size(); ++i)
    if (kNames[i] == name) return static_cast<Level>(i);
  if (name == "warning") return Level::Warn;
  return std::nullopt;
}

std::string_view levelName(Level level) { return kNames[static_cast<std::size_t>(level)]; }
void setLevel(Level l) { detail::g_level.store(static_cast<int>(l), std::memory_order_relaxed); }
Level level() { return static_cast<Level>(detail::g_level.load(std::memory_order_relaxed)); }
void setJournal(bool on) { g_journal.store(on, std::memory_order_relaxed); }

void detail::emit(Level l, std::string_view event, std::string_view fields) {
  fmt::memory_buffer line;
  auto out = fmt::appender(line);
  auto idx = static_cast<std::size_t>(l);
  if (g_journal.load(std::memory_order_relaxed)) {
    fmt::format_to(out, "<{}>", kPriority[idx]);
  } else {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    tm utc{};
    gmtime_r(&ts.tv_sec, &utc);
    fmt::format_to(out, "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z ", utc.tm_year + 1900, utc.tm_mon + 1,
                   utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, ts.tv_nsec / 1000000);
  }
  fmt::format_to(out, "level={} event={}", kNames[idx], event);
  if (!fields.empty()) fmt::format_to(out, " {}", fields);
  line.push_back('\n');
  // One write(2) per line: lines from different threads never interleave mid-line.
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace pxedust::log

fmt::appender fmt::formatter<pxedust::log::Quoted>::format(const pxedust::log::Quoted& v,
                                                           format_context& ctx) const {
  auto out = ctx.out();
  bool bare = !v.text.empty();
  for (unsigned char c : v.text) bare = bare && pxedust::log::isBareChar(c);
  if (bare) return fmt::format_to(out, "{}", v.text);
  *out++ = '"';
  for (unsigned char c : v.text) {
    if (c == '"' || c == '\\') {
      *out++ = '\\';
      *out++ = static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      out = fmt::format_to(out, "\\x{:02x}", c);
    } else {
      *out++ = static_cast<char>(c);
    }
  }
  *out++ = '"';
  return out;
}
