// libFuzzer harness for the client handshake pxedust-nbd-attach makes (src/nbd/wire/client.hpp):
// a server's bytes read the way the tool reads them: the 18-byte greeting, then option reply
// headers each followed by its data, until an error, an ACK or the input runs out.
// Invariants: a reply header parses only with the reply magic and a length within kMaxReplyData
// (what the tool allocates); an export info parses only from exactly 12 bytes of NBD_INFO_EXPORT;
// an error reply's text is bounded and printable; goRequest answers any greeting with a
// well-formed option.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "nbd/wire/client.hpp"

using namespace pxedust::nbd::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  if (in.size() < client::kGreetingSize) return 0;
  auto g = client::parseGreeting(in.first<client::kGreetingSize>());
  in = in.subspan(client::kGreetingSize);
  auto go = client::goRequest(g.flags, "node01");
  if (go.size() != 4 + 16 + 4 + 6 + 2) std::abort();
  if (!g.error.empty()) return 0;
  while (in.size() >= client::kReplyHeaderSize) {
    auto h = client::parseReplyHeader(in.first<client::kReplyHeaderSize>());
    if (!h) return 0;
    if (h->length > client::kMaxReplyData) std::abort();
    in = in.subspan(client::kReplyHeaderSize);
    if (in.size() < h->length) return 0;
    auto body = in.first(h->length);
    in = in.subspan(h->length);
    if (h->type & rep::kErrorBit) {
      auto text = client::replyError(h->type, body);
      if (text.size() > 600) std::abort();
      for (char c : text)
        if (c < 0x20 || c > 0x7e) std::abort();
      return 0;
    }
    if (auto info = client::parseExportInfo(body)) {
      if (body.size() != 12 || body[0] != 0 || body[1] != 0) std::abort();
    }
    if (h->type == rep::kAck) return 0;
  }
  return 0;
}
