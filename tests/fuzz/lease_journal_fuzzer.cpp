// libFuzzer harness for the DHCP lease journal's line format (dhcp/lease_journal.hpp). The journal
// is read back at every start, and its host names come from peers (option 12), so its parser must
// hold against any bytes a torn write, a disk error or a hand edit leaves. The input is split into
// lines as LeaseDb's replay splits a journal, and every line goes through journal::parseLine() twice:
// as it is, and resealed with the CRC of what precedes its crc field (zlib's crc32, the journal's
// CRC), so mutations reach the field parsers behind the CRC check. Checked invariants:
//   * a parsed lease is one the journal can hold: bound, released or declined; a hardware client
//     key of 6 bytes or a client id of 1..255; host name and UUID of at most 255 bytes;
//   * writing it back (appendLine) gives one line that parses to the same lease, and that line is
//     canonical: parsing and writing it again gives the same bytes;
//   * the CRC covers the line: changing any one byte of a canonical line makes it unparsable
//     or (when the change is in a hex digit's case) the same lease.
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "dhcp/lease_journal.hpp"

using namespace pxedust::dhcp;

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

void checkLease(const Lease& l) {
  check(l.state == LeaseState::Bound || l.state == LeaseState::Released || l.state == LeaseState::Declined);
  check(l.kind == LeaseKind::Dynamic || l.kind == LeaseKind::Static);
  const auto& key = l.client.bytes();
  if (l.client.kind() == ClientKey::Kind::HwAddr) check(key.size() == 6);
  else check(!key.empty() && key.size() <= ClientKey::kMaxBytes);
  check(l.hostname.size() <= journal::kMaxTextField);
  check(l.uuid.size() <= journal::kMaxTextField);
  check(l.start >= 0 && l.expiry >= 0);
}

void checkLine(std::string_view line, std::uint32_t flip) {
  auto lease = journal::parseLine(line);
  if (!lease) {
    check(!lease.error().message.empty());
    return;
  }
  checkLease(*lease);
  std::string out;
  journal::appendLine(out, *lease);
  check(!out.empty() && out.back() == '\n' && out.find('\n') == out.size() - 1);
  const std::string_view canonical(out.data(), out.size() - 1);
  auto again = journal::parseLine(canonical);
  check(again.ok() && *again == *lease);
  std::string out2;
  journal::appendLine(out2, *again);
  check(out2 == out);

  // One byte of the canonical line changed (which byte and how, from the input).
  std::string changed(canonical);
  const auto at = flip % changed.size();
  changed[at] = static_cast<char>(changed[at] ^ static_cast<char>(1 + (flip >> 24) % 255));
  auto tampered = journal::parseLine(changed);
  if (tampered) {
    // Only a hex digit's case may change and still parse (the CRC is over the text as written).
    const char a = canonical[at], b = changed[at];
    check((a ^ b) == 0x20 && ((a | 0x20) >= 'a' && (a | 0x20) <= 'f'));
    check(*tampered == *lease);
  }
}

// The line with its crc field (if any) replaced by the right one for the rest.
std::string reseal(std::string_view line) {
  auto tag = line.rfind(" crc=");
  auto body = line.substr(0, tag);
  auto crc = ::crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
  return fmt::format("{} crc={:08x}", body, crc);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  std::uint32_t flip = 2166136261U;
  for (unsigned char c : all) flip = (flip ^ c) * 16777619U;
  std::size_t pos = 0;
  while (pos <= all.size()) {
    auto nl = all.find('\n', pos);
    auto line = all.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    checkLine(line, flip);
    checkLine(reseal(line), flip);
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
    flip = flip * 16777619U + 1;
  }
  return 0;
}
