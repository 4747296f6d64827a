// Logging: one line per event, `key=value` fields, to stderr.
//
//   2026-11-22T14:50:51.123Z level=info event=tftp.done client=10.0.0.5:2070 file=pxelinux.0 bytes=46909
//
// Under systemd (JOURNAL_STREAM set) the timestamp is left to journald and each line starts with the
// syslog priority prefix `<N>`, so `journalctl -p warning` works. Values that come from peers or files
// go through Quoted, which escapes them so a file name can never forge a log line. A disabled level
// costs one relaxed atomic load: the PXD_* macros test the level before formatting anything.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <optional>
#include <string_view>

namespace pxedust::log {

enum class Level : int { Trace = 0, Debug, Info, Warn, Error, Off };

std::optional<Level> parseLevel(std::string_view name);
std::string_view levelName(Level level);
void setLevel(Level level);
Level level();
// Journal mode: priority prefix, no timestamp. Defaults to on when JOURNAL_STREAM is set.
void setJournal(bool on);

namespace detail {
extern std::atomic<int> g_level;
void emit(Level level, std::string_view event, std::string_view fields);
}  // namespace detail

inline bool enabled(Level l) { return static_cast<int>(l) >= detail::g_level.load(std::memory_order_relaxed); }

template <typename... Args>
void write(Level l, std::string_view event, fmt::format_string<Args...> f, Args&&... args) {
  fmt::memory_buffer buf;
  fmt::format_to(fmt::appender(buf), f, std::forward<Args>(args)...);
  detail::emit(l, event, {buf.data(), buf.size()});
}

// A value of unknown content (peer input, a path, an error text): printed bare when it is a plain
// token, otherwise double-quoted with \" \\ and \xNN escapes.
struct Quoted {
  std::string_view text;
};
inline Quoted q(std::string_view s) { return Quoted{s}; }
bool isBareChar(unsigned char c);

}  // namespace pxedust::log

template <>
struct fmt::formatter<pxedust::log::Quoted> : fmt::formatter<std::string_view> {
  fmt::appender format(const pxedust::log::Quoted& v, format_context& ctx) const;
};

#define PXD_LOG(lvl, event, ...)                                            \
  do {                                                                      \
    if (::pxedust::log::enabled(lvl)) ::pxedust::log::write(lvl, event, __VA_ARGS__); \
  } while (0)
#define PXD_TRACE(event, ...) PXD_LOG(::pxedust::log::Level::Trace, event, __VA_ARGS__)
#define PXD_DEBUG(event, ...) PXD_LOG(::pxedust::log::Level::Debug, event, __VA_ARGS__)
#define PXD_INFO(event, ...) PXD_LOG(::pxedust::log::Level::Info, event, __VA_ARGS__)
#define PXD_WARN(event, ...) PXD_LOG(::pxedust::log::Level::Warn, event, __VA_ARGS__)
#define PXD_ERROR(event, ...) PXD_LOG(::pxedust::log::Level::Error, event, __VA_ARGS__)
