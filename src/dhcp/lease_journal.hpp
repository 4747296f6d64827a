// The lease journal's line format (see the design note in leases.hpp): one line per change,
//   lease addr=... state=... kind=... subnet=... start=... expire=... client=... mac=... host=... uuid=... crc=...
// Internal to src/dhcp: leases.cpp (the records, which journal every durable change) and
// lease_journal.cpp (the format, the file and the LeaseDb members that write, sync, compact and load it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "dhcp/leases.hpp"

namespace pxedust::dhcp::journal {

// The first line of every journal; a non-empty file without it is not ours.
inline constexpr std::string_view kHeader = "# pxedust lease journal v1";
inline constexpr std::size_t kMaxTextField = 255;  // host name and UUID bytes, like their options

// Lower-case hex, ':'-separated when `colons` ("52:54:00:12:34:56"), else plain ("0102ab").
void appendHex(std::string& out, std::span<const std::uint8_t> bytes, bool colons);
std::optional<std::vector<std::uint8_t>> parseHex(std::string_view s, bool colons);

// Appends one lease line, with its CRC and newline.
void appendLine(std::string& out, const Lease& l);
// One journal line (without its newline) into a lease, or the reason it is unusable.
Result<Lease> parseLine(std::string_view line);

}  // namespace pxedust::dhcp::journal
