// Response heads: a status line and header fields, as bytes for the socket. Pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pxedust::http::wire {

// "OK", "Partial Content", "Not Found", ...; "Unknown" for a status this server never sends.
std::string_view reasonPhrase(int status);

struct ResponseHead {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> fields;  // in order; Content-Length is added by head()
  std::uint64_t contentLength = 0;
  bool keepAlive = true;  // "Connection: close" when false
  // The body runs to the end of the connection (an event stream): no Content-Length, and the
  // connection closes after it (keepAlive is ignored).
  bool closeDelimited = false;

  ResponseHead& add(std::string name, std::string value) {
    fields.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  // "HTTP/1.1 <status> <reason>\r\n" + fields + Content-Length + Connection + "\r\n". A field value
  // with CR or LF in it is never written (it would split the response): such a field is dropped.
  [[nodiscard]] std::string serialize() const;
};

}  // namespace pxedust::http::wire
