// libFuzzer harness for the HTTP request path: the bytes a client sends, split into reads at a point
// the input chooses, go through findHeadEnd() as the connection buffers them, the head through
// parseRequest(), and the parsed Range and precondition fields through plan() against a file. None
// may crash or read out of bounds; a head end is inside the buffer; a planned range is inside the file.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "http/wire/range.hpp"
#include "http/wire/request.hpp"

using namespace pxedust::http::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t split = data[0];
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  Limits limits;
  limits.requestLine = 512;
  limits.headBytes = 1024;
  limits.headers = 16;

  std::size_t scanned = 0;
  auto first = findHeadEnd(bytes.substr(0, std::min(split, bytes.size())), scanned, limits);
  if (std::holds_alternative<std::monostate>(first)) {
    auto whole = findHeadEnd(bytes, scanned, limits);
    first = whole;
  }
  if (auto* end = std::get_if<std::size_t>(&first)) {
    if (*end > bytes.size()) std::abort();
    auto parsed = parseRequest(bytes.substr(0, *end), limits);
    if (auto* request = std::get_if<Request>(&parsed)) {
      if (request->fields.size() > limits.headers) std::abort();
      if (request->contentLength > limits.body) std::abort();
      for (const FileFacts file : {FileFacts{0, 0}, FileFacts{1, 1}, FileFacts{10000, 784111777'000000000}}) {
        const auto p = plan({request->field("if-none-match"), request->field("if-modified-since"), request->field("range"),
                             request->field("if-range")},
                            file);
        if (p.kind == Plan::Kind::Partial && (p.length == 0 || p.first >= file.size || p.length > file.size - p.first))
          std::abort();
        (void)p.contentRange(file.size);
      }
    }
  }
  (void)parseHttpDate(bytes);
  return 0;
}
