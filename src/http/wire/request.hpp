// HTTP/1.1 requests as pxedust's HTTP service reads them (RFC 9110 semantics, RFC 9112 syntax): a
// pure codec, bytes in and a request or an error status out; no sockets, clock or config.
//
// The service reads a request's head (request line + header fields, up to the blank line) into a
// buffer and hands it here whole. findHeadEnd() scans for the end from where the last scan stopped,
// so a client trickling one byte at a time costs O(n) in total, not O(n^2); it says 431/414 as soon
// as the buffer is over the caps, before any more is read.
//
// What is accepted, and what each refusal is:
//   request line  METHOD SP request-target SP HTTP/1.x; a line ending in CRLF or a bare LF (RFC 9112
//                 2.2 lets a server accept LF); anything else -> 400. HTTP/2.0 and other majors ->
//                 505. A request line longer than Limits::requestLine -> 414.
//   target        origin-form "/path?query" or absolute-form "http://host/path" (the path is kept);
//                 percent-escapes decoded once; "%00", a bad escape, or a control byte -> 400.
//                 "*" (OPTIONS) and authority-form (CONNECT) -> 400.
//   fields        name ":" OWS value OWS; a name must be a token; whitespace before the colon or an
//                 obsolete line folding -> 400 (RFC 9112 5.1, 5.2). More than Limits::headers fields
//                 or a head over Limits::headBytes -> 431.
//   framing       Transfer-Encoding of any kind -> 501 (no request pxedust serves has a chunked
//                 body); Content-Length must be one decimal number (repeats that agree are one),
//                 at most Limits::body, else 400 (413 when only too large). HTTP/1.1 without Host -> 400.
// Methods are not judged here: the service answers 405/501 for what it does not serve.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pxedust::http::wire {

struct Limits {
  std::size_t requestLine = 8192;  // bytes, the line ending included
  std::size_t headBytes = 16384;   // the whole head: request line, fields, blank line
  std::size_t headers = 64;        // header fields
  std::uint64_t body = 1 << 20;    // Content-Length accepted (API actions; file requests have none)
};

enum class Method : std::uint8_t { Get, Head, Post, Put, Delete, Other };

struct Field {
  std::string name;   // as sent; compare with iequals()
  std::string value;  // leading and trailing whitespace removed
};

struct Request {
  Method method = Method::Other;
  std::string methodText;  // as sent, e.g. "GET"
  std::string target;      // as sent
  std::string path;        // decoded, from the first '/' up to '?' (absolute-form: the path part)
  std::string query;       // after '?', not decoded; empty if none
  int minorVersion = 1;    // HTTP/1.<minor>
  std::vector<Field> fields;
  std::uint64_t contentLength = 0;
  // HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive".
  bool keepAlive = true;

  // The first field with this name (case-insensitive), or nullopt. Repeated fields are not joined.
  [[nodiscard]] std::optional<std::string_view> field(std::string_view name) const;
};

// An error status the service answers with (and then closes the connection): 400, 413, 414, 431,
// 501 or 505, and a short reason for the log and the drop counter ("bad_request_line", ...).
struct Error {
  int status = 400;
  std::string_view reason;
};

// Where the head ends in `buffer` (the index just past the blank line), given that bytes before
// `scanned` were already scanned without finding it. nullopt while incomplete; an Error (414 or
// 431) once the buffer is over what the limits allow without an end. `scanned` is updated.
std::variant<std::monostate, std::size_t, Error> findHeadEnd(std::string_view buffer, std::size_t& scanned,
                                                             const Limits& limits);

// Parses one whole head (as delimited by findHeadEnd(), blank line included).
std::variant<Request, Error> parseRequest(std::string_view head, const Limits& limits);

// ASCII case-insensitive equality (field names, tokens).
bool iequals(std::string_view a, std::string_view b);

// Whether a comma-separated field value (Connection, ...) lists `token`, case-insensitively.
bool hasToken(std::string_view value, std::string_view token);

}  // namespace pxedust::http::wire
