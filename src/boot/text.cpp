// Bounded, valid UTF-8 text (text.hpp).
#include "boot/text.hpp"

#include <algorithm>
#include <initializer_list>
#include <variant>

namespace pxedust::boot {

namespace {

// Length of the well-formed UTF-8 sequence starting at text[i] (RFC 3629 §4), or 0.
std::size_t sequenceLength(std::string_view text, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // the range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // overlong
    if (lead == 0xED) high = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;   // overlong
    if (lead == 0xF4) high = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (text.size() - i < length) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (std::size_t k = 2; k < length; ++k)
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  return length;
}

}  // namespace

std::string boundedText(std::string_view text, std::size_t maxBytes) {
  std::string out;
  out.reserve(std::min(text.size(), maxBytes));
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t length = sequenceLength(text, i);
    const std::size_t adds = length == 0 ? 1 : length;
    if (out.size() + adds > maxBytes) break;
    if (length == 0)
      out.push_back('?');
    else
      out.append(text.substr(i, length));
    i += adds;
  }
  return out;
}

namespace {

void bound(std::size_t maxBytes, std::initializer_list<std::string*> fields) {
  for (std::string* field : fields) *field = boundedText(*field, maxBytes);
}

struct BoundTexts {
  std::size_t maxBytes;
  void operator()(DhcpEvent& e) const { bound(maxBytes, {&e.vendorClass, &e.hostName}); }
  void operator()(ProxyDhcpEvent& e) const { bound(maxBytes, {&e.bootFile}); }
  void operator()(FileEvent& e) const { bound(maxBytes, {&e.requested, &e.served, &e.reason}); }
  void operator()(DiskEvent& e) const { bound(maxBytes, {&e.hostName, &e.initiator, &e.reason}); }
  void operator()(HostEvent& e) const { bound(maxBytes, {&e.reason}); }
};

}  // namespace

void boundTexts(Event& event, std::size_t maxBytes) { std::visit(BoundTexts{maxBytes}, event.what); }

}  // namespace pxedust::boot
