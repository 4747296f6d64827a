// The request-head parser (request.hpp). Works on the whole head as one string_view; every index is
// checked against its size, and nothing a peer sends is used as a length before it is bounded.
#include "http/wire/request.hpp"

#include <algorithm>
#include <charconv>

namespace pxedust::http::wire {

namespace {

constexpr char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// RFC 9110 5.6.2 tchar.
bool isTokenChar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-': case '.':
    case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool isToken(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), isTokenChar); }

bool isWhitespace(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && isWhitespace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isWhitespace(s.back())) s.remove_suffix(1);
  return s;
}

// A field value may hold visible characters, spaces, tabs and obs-text (bytes >= 0x80); no other
// control byte (NUL, CR, LF, DEL, ...).
bool isFieldValue(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) {
    auto b = static_cast<unsigned char>(c);
    return (b < 0x20 && c != '\t') || b == 0x7f;
  });
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes a path; nullopt for a bad escape, %00, or a control byte (raw or decoded).
std::optional<std::string> decodePath(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%') {
      if (raw.size() - i < 3) return std::nullopt;
      int hi = hexValue(raw[i + 1]);
      int lo = hexValue(raw[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) return std::nullopt;
    out.push_back(c);
  }
  return out;
}

Method methodOf(std::string_view text) {
  if (text == "GET") return Method::Get;
  if (text == "HEAD") return Method::Head;
  if (text == "POST") return Method::Post;
  if (text == "PUT") return Method::Put;
  if (text == "DELETE") return Method::Delete;
  return Method::Other;
}

// Splits off one line (without its CRLF or LF) from the front of `rest`; nullopt if no line end.
std::optional<std::string_view> takeLine(std::string_view& rest) {
  auto lf = rest.find('\n');
  if (lf == std::string_view::npos) return std::nullopt;
  std::string_view line = rest.substr(0, lf);
  rest.remove_prefix(lf + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

std::optional<std::uint64_t> parseDecimal(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;  // 19 digits always fit in 64 bits
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return value;
}

// The request target: origin-form or absolute-form (RFC 9112 3.2).
std::optional<Error> parseTarget(std::string_view target, Request& req) {
  std::string_view rest = target;
  if (rest.empty()) return Error{400, "bad_target"};
  if (rest.front() != '/') {
    std::size_t scheme = 0;
    if (rest.size() >= 7 && iequals(rest.substr(0, 7), "http://"))
      scheme = 7;
    else if (rest.size() >= 8 && iequals(rest.substr(0, 8), "https://"))
      scheme = 8;
    else
      return Error{400, "bad_target"};  // "*", authority-form, or garbage
    rest.remove_prefix(scheme);
    auto slash = rest.find_first_of("/?");
    if (slash == std::string_view::npos) {
      rest = "/";
    } else if (rest[slash] == '?') {
      req.query = std::string(rest.substr(slash + 1));
      rest = "/";
    } else {
      rest.remove_prefix(slash);
    }
  }
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    req.query = std::string(rest.substr(q + 1));
    rest = rest.substr(0, q);
  }
  if (auto hash = rest.find('#'); hash != std::string_view::npos) return Error{400, "bad_target"};
  auto decoded = decodePath(rest);
  if (!decoded) return Error{400, "bad_target"};
  req.path = std::move(*decoded);
  if (std::any_of(req.query.begin(), req.query.end(), [](char c) {
        auto b = static_cast<unsigned char>(c);
        return b <= 0x20 || b == 0x7f;
      }))
    return Error{400, "bad_target"};
  return std::nullopt;
}

std::optional<Error> parseRequestLine(std::string_view line, Request& req) {
  auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return Error{400, "bad_request_line"};
  auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return Error{400, "bad_request_line"};
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!isToken(method) || target.empty()) return Error{400, "bad_request_line"};
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
      version[5] > '9' || version[7] < '0' || version[7] > '9')
    return Error{400, "bad_request_line"};
  if (version[5] != '1') return Error{505, "bad_version"};
  req.methodText = std::string(method);
  req.method = methodOf(method);
  req.target = std::string(target);
  req.minorVersion = version[7] - '0';
  return parseTarget(target, req);
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

bool hasToken(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    auto comma = value.find(',');
    std::string_view item = trim(value.substr(0, comma));
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

std::optional<std::string_view> Request::field(std::string_view name) const {
  for (const auto& f : fields)
    if (iequals(f.name, name)) return std::string_view(f.value);
  return std::nullopt;
}

std::variant<std::monostate, std::size_t, Error> findHeadEnd(std::string_view buffer, std::size_t& scanned,
                                                             const Limits& limits) {
  // Back up to three bytes so a "\r\n\r\n" split across reads is found.
  std::size_t from = scanned > 3 ? scanned - 3 : 0;
  for (std::size_t i = from; i < buffer.size(); ++i) {
    if (buffer[i] != '\n') continue;
    // "\n\n" or "\n\r\n": the blank line.
    if (i + 1 < buffer.size() && buffer[i + 1] == '\n') return i + 2;
    if (i + 2 < buffer.size() && buffer[i + 1] == '\r' && buffer[i + 2] == '\n') return i + 3;
  }
  scanned = buffer.size();
  const auto firstLf = buffer.find('\n');
  if (firstLf == std::string_view::npos && buffer.size() >= limits.requestLine)
    return Error{414, "request_line_too_long"};
  if (firstLf != std::string_view::npos && firstLf + 1 > limits.requestLine)
    return Error{414, "request_line_too_long"};
  if (buffer.size() >= limits.headBytes) return Error{431, "head_too_large"};
  return std::monostate{};
}

std::variant<Request, Error> parseRequest(std::string_view head, const Limits& limits) {
  if (head.size() > limits.headBytes) return Error{431, "head_too_large"};
  Request req;
  std::string_view rest = head;
  // RFC 9112 2.2: a server should ignore at least one empty line before the request line.
  if (rest.starts_with("\r\n"))
    rest.remove_prefix(2);
  else if (rest.starts_with("\n"))
    rest.remove_prefix(1);
  auto line = takeLine(rest);
  if (!line) return Error{400, "bad_request_line"};
  if (line->size() + 2 > limits.requestLine) return Error{414, "request_line_too_long"};
  if (auto err = parseRequestLine(*line, req)) return *err;

  std::optional<std::uint64_t> contentLength;
  bool sawHost = false;
  bool sawBlank = false;
  while (auto fieldLine = takeLine(rest)) {
    if (fieldLine->empty()) {
      sawBlank = true;
      break;
    }
    if (isWhitespace(fieldLine->front())) return Error{400, "obsolete_line_folding"};
    auto colon = fieldLine->find(':');
    if (colon == std::string_view::npos) return Error{400, "bad_field"};
    std::string_view name = fieldLine->substr(0, colon);
    std::string_view value = trim(fieldLine->substr(colon + 1));
    if (!isToken(name)) return Error{400, "bad_field"};  // also whitespace before the colon
    if (!isFieldValue(value)) return Error{400, "bad_field"};
    if (req.fields.size() >= limits.headers) return Error{431, "too_many_fields"};
    if (iequals(name, "transfer-encoding")) return Error{501, "transfer_encoding"};
    if (iequals(name, "content-length")) {
      // "5, 5" repeated in one field, or in two: all must be one number.
      std::string_view list = value;
      while (true) {
        auto comma = list.find(',');
        auto n = parseDecimal(trim(list.substr(0, comma)));
        if (!n || (contentLength && *contentLength != *n)) return Error{400, "bad_content_length"};
        contentLength = n;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
    }
    if (iequals(name, "host")) {
      if (sawHost) return Error{400, "bad_host"};  // RFC 9112 3.2: more than one Host is a 400
      sawHost = true;
    }
    req.fields.push_back({std::string(name), std::string(value)});
  }
  if (!sawBlank || !rest.empty()) return Error{400, "bad_head"};
  if (req.minorVersion >= 1 && !sawHost) return Error{400, "bad_host"};
  if (contentLength) {
    if (*contentLength > limits.body) return Error{413, "body_too_large"};
    req.contentLength = *contentLength;
  }
  auto connection = req.field("connection");
  if (req.minorVersion == 0)
    req.keepAlive = connection && hasToken(*connection, "keep-alive");
  else
    req.keepAlive = !(connection && hasToken(*connection, "close"));
  return req;
}

}  // namespace pxedust::http::wire
