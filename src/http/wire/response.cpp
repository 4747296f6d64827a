// Response heads (response.hpp).
#include "http/wire/response.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace pxedust::http::wire {

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

std::string ResponseHead::serialize() const {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\n", status, reasonPhrase(status));
  auto safe = [](std::string_view s) { return s.find_first_of("\r\n") == std::string_view::npos; };
  for (const auto& [name, value] : fields) {
    if (!safe(name) || !safe(value) || name.empty()) continue;
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  // RFC 9110 8.6: no Content-Length in a 304 (it would describe the file) or a 1xx/204.
  if (status != 304 && status != 204 && !closeDelimited) out += fmt::format("Content-Length: {}\r\n", contentLength);
  if (!keepAlive || closeDelimited) out += "Connection: close\r\n";
  out += "\r\n";
  return out;
}

}  // namespace pxedust::http::wire
