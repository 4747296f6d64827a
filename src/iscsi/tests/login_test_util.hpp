// Helpers shared by the negotiation and login tests.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "iscsi/wire/text.hpp"

namespace pxedust::iscsi::testing {

using Pairs = std::vector<std::pair<std::string, std::string>>;

inline std::vector<std::uint8_t> textOf(const Pairs& pairs) {
  wire::TextWriter w;
  for (const auto& [k, v] : pairs) w.add(k, v);
  return w.take();
}

// The answer as an ordered list (duplicates would show up twice).
inline Pairs pairsOf(std::span<const std::uint8_t> data) {
  auto t = wire::parseText(data);
  Pairs out;
  for (const auto& kv : t.pairs) out.emplace_back(std::string(kv.key), std::string(kv.value));
  return out;
}

inline std::map<std::string, std::string> mapOf(std::span<const std::uint8_t> data) {
  std::map<std::string, std::string> m;
  for (auto& [k, v] : pairsOf(data)) m[k] = v;
  return m;
}

// The operational keys real initiators send (read from their sources: iPXE net/tcp/iscsi.c,
// open-iscsi usr/login.c with its defaults, libiscsi lib/login.c with its defaults).
inline Pairs ipxeOperational() {
  return {{"HeaderDigest", "None"},         {"DataDigest", "None"},          {"MaxConnections", "1"},
          {"InitialR2T", "Yes"},            {"ImmediateData", "No"},         {"MaxRecvDataSegmentLength", "8192"},
          {"MaxBurstLength", "262144"},     {"FirstBurstLength", "65536"},   {"DefaultTime2Wait", "0"},
          {"DefaultTime2Retain", "0"},      {"MaxOutstandingR2T", "1"},      {"DataPDUInOrder", "Yes"},
          {"DataSequenceInOrder", "Yes"},   {"ErrorRecoveryLevel", "0"}};
}

inline Pairs iscsistartOperational() {
  return {{"HeaderDigest", "None"},       {"DataDigest", "None"},           {"DefaultTime2Wait", "2"},
          {"DefaultTime2Retain", "0"},    {"IFMarker", "No"},               {"OFMarker", "No"},
          {"ErrorRecoveryLevel", "0"},    {"InitialR2T", "No"},             {"ImmediateData", "Yes"},
          {"MaxBurstLength", "16776192"}, {"FirstBurstLength", "262144"},   {"MaxOutstandingR2T", "1"},
          {"MaxConnections", "1"},        {"DataPDUInOrder", "Yes"},        {"DataSequenceInOrder", "Yes"},
          {"MaxRecvDataSegmentLength", "262144"}};
}

inline Pairs libiscsiOperational() {
  return {{"HeaderDigest", "None,CRC32C"},     {"DataDigest", "None"},        {"InitialR2T", "No"},
          {"ImmediateData", "Yes"},            {"MaxBurstLength", "262144"},  {"FirstBurstLength", "262144"},
          {"MaxRecvDataSegmentLength", "262144"}, {"DataPDUInOrder", "Yes"},  {"DefaultTime2Wait", "2"},
          {"DefaultTime2Retain", "0"},         {"IFMarker", "No"},            {"OFMarker", "No"},
          {"MaxConnections", "1"},             {"MaxOutstandingR2T", "1"},    {"ErrorRecoveryLevel", "0"},
          {"DataSequenceInOrder", "Yes"}};
}

}  // namespace pxedust::iscsi::testing
