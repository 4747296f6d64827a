// Counters declared once, after Envoy's envoy/stats/stats_macros.h.
//
// A service lists its counters in one X-macro, a row per counter: X(member, "metric_name", "help").
//
//   #define PXEDUST_TFTP_COUNTERS(X)
//     X(requests, "pxedust_tftp_requests_total", "Datagrams to the request ports.")
//     X(retransmits, "pxedust_tftp_retransmits_total", "Windows sent again after a timeout.")
//
// (each line but the last ending in a backslash)
//
// Its stats struct takes the members from the list:
//   struct TftpStats { PXEDUST_TFTP_COUNTERS(PXEDUST_COUNTER_MEMBER) ... };
// (each a std::uint64_t from 0, incremented in place on the loop thread), and its metrics.cpp takes
// the families, a member pointer and a counter Family per row, and writes them all:
//   #define ROW(member, name, help) PXEDUST_COUNTER_ROW(TftpStats, member, name, help)
//   constexpr metrics::CounterRow<TftpStats> kCounters[] = {PXEDUST_TFTP_COUNTERS(ROW)};
//   metrics::writeCounters(stats, kCounters, out);
// Adding a counter is one row. The metric name is spelled out whole so that grepping a name seen on a
// dashboard finds its row and help.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "metrics/registry.hpp"

#define PXEDUST_COUNTER_MEMBER(member, name, help) std::uint64_t member = 0;
#define PXEDUST_COUNTER_ROW(Stats, member, name, help) \
  ::pxedust::metrics::CounterRow<Stats>{&Stats::member, {name, help, ::pxedust::metrics::Type::Counter}},

namespace pxedust::metrics {

template <typename Stats>
struct CounterRow {
  std::uint64_t Stats::*member;
  Family family;
};

template <typename Stats, std::size_t N>
void writeCounters(const Stats& stats, const CounterRow<Stats> (&rows)[N], Writer& out) {
  for (const auto& row : rows) out.sample(row.family, stats.*row.member);
}

// A counter array indexed by an enum, one sample per entry, labelled with the entry's name from the
// enum's name table (the drop reasons' kDropNames).
template <std::size_t N>
void writeIndexed(const Family& family, const std::array<std::string_view, N>& names,
                  const std::array<std::uint64_t, N>& values, Writer& out) {
  for (std::size_t i = 0; i < N; ++i) out.sample(family, {names[i]}, values[i]);
}

}  // namespace pxedust::metrics
