// GnuTLS credentials and the memory-buffer TLS session (tls.hpp).
#include "nbd/tls.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/fd.hpp"

namespace pxedust::nbd {

namespace {

constexpr std::size_t kMaxCredentialFile = 1u << 20;
constexpr std::size_t kMaxIdentity = 128;  // GnuTLS's MAX_USERNAME_SIZE
constexpr std::size_t kMinPskKey = 16;     // 128 bits
constexpr std::size_t kMaxPskKey = 512;
// Non-fatal errors (warning alerts) in a row before a call gives up: each consumes a record, so a
// peer sending nothing else cannot keep one call spinning.
constexpr int kMaxNonFatal = 64;
// One TLS record's plaintext at most (RFC 8446 section 5.1): what send() fills before it encrypts.
constexpr std::size_t kRecordPlaintext = 16384;

// TLS 1.2 and 1.3 from GnuTLS's NORMAL set; the PSK key exchanges when there are keys (NORMAL leaves
// them out). DHE-PSK uses GnuTLS's known groups (set_known_dh_params below).
constexpr std::string_view kPriority = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
constexpr std::string_view kPskPriority = ":+ECDHE-PSK:+DHE-PSK:+PSK";

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void wipe(std::vector<std::uint8_t>& v) {
  if (!v.empty()) gnutls_memset(v.data(), 0, v.size());
}

}  // namespace

// ---- credential files -------------------------------------------------------------------------

Result<PskKeys> parsePskFile(std::string_view text) {
  PskKeys keys;
  std::size_t lineNo = 0;
  while (!text.empty()) {
    ++lineNo;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos)
      return Error{fmt::format("line {}: expected identity:hexkey (as psktool writes it)", lineNo)};
    const std::string_view identity = line.substr(0, colon);
    const std::string_view hex = line.substr(colon + 1);
    if (identity.empty() || identity.size() > kMaxIdentity ||
        !std::all_of(identity.begin(), identity.end(), [](char c) { return c > 0x20 && c < 0x7f; }))
      return Error{fmt::format("line {}: the identity must be 1..{} printable characters without spaces", lineNo,
                               kMaxIdentity)};
    if (hex.size() % 2 != 0 || !std::all_of(hex.begin(), hex.end(), [](char c) { return hexValue(c) >= 0; }))
      return Error{fmt::format("line {}: identity '{}': the key must be an even number of hex digits", lineNo,
                               identity)};
    if (hex.size() / 2 < kMinPskKey || hex.size() / 2 > kMaxPskKey)
      return Error{fmt::format("line {}: identity '{}': the key must be {}..{} bytes (psktool makes 32)", lineNo,
                               identity, kMinPskKey, kMaxPskKey)};
    std::vector<std::uint8_t> key(hex.size() / 2);
    for (std::size_t i = 0; i < key.size(); ++i)
      key[i] = static_cast<std::uint8_t>(hexValue(hex[2 * i]) << 4 | hexValue(hex[2 * i + 1]));
    if (auto [it, fresh] = keys.emplace(std::string(identity), std::move(key)); !fresh) {
      wipe(key);
      return Error{fmt::format("line {}: identity '{}' is listed twice", lineNo, identity)};
    }
  }
  if (keys.empty()) return Error{"no identity in it (psktool -u NAME -p FILE adds one)"};
  return keys;
}

Result<std::string> readCredentialFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return errnoError(fmt::format("cannot open {}: {}", path, std::strerror(errno)), errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errnoError(fmt::format("cannot stat {}: {}", path, std::strerror(errno)), errno);
  if (!S_ISREG(st.st_mode)) return Error{fmt::format("{} is not a regular file", path)};
  if (static_cast<std::uint64_t>(st.st_size) > kMaxCredentialFile)
    return Error{fmt::format("{} is over {} bytes: not a credential file", path, kMaxCredentialFile)};
  std::string text;
  for (char chunk[8192];;) {
    const ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errnoError(fmt::format("cannot read {}: {}", path, std::strerror(errno)), errno);
    if (n == 0) break;
    text.append(chunk, static_cast<std::size_t>(n));
    if (text.size() > kMaxCredentialFile)
      return Error{fmt::format("{} is over {} bytes: not a credential file", path, kMaxCredentialFile)};
  }
  return text;
}

void wipeSecret(std::string& s) {
  if (!s.empty()) gnutls_memset(s.data(), 0, s.size());
}

// ---- credentials ------------------------------------------------------------------------------

TlsCredentials::TlsCredentials() = default;

TlsCredentials::~TlsCredentials() {
  if (priority_ != nullptr) gnutls_priority_deinit(priority_);
  if (x509_ != nullptr) gnutls_certificate_free_credentials(x509_);
  if (psk_ != nullptr) gnutls_psk_free_server_credentials(psk_);
  for (auto& [identity, key] : keys_) wipe(key);
}

Result<void> TlsCredentials::setCertificate(std::string_view certificatePem, std::string_view keyPem) {
  if (x509_ == nullptr) {
    if (int rc = gnutls_certificate_allocate_credentials(&x509_); rc < 0) {
      x509_ = nullptr;
      return Error{gnutls_strerror(rc)};
    }
  }
  // GnuTLS reads the data only (the datum's pointer is not const for historical reasons).
  gnutls_datum_t cert{reinterpret_cast<unsigned char*>(const_cast<char*>(certificatePem.data())),
                      static_cast<unsigned int>(certificatePem.size())};
  gnutls_datum_t key{reinterpret_cast<unsigned char*>(const_cast<char*>(keyPem.data())),
                     static_cast<unsigned int>(keyPem.size())};
  if (int rc = gnutls_certificate_set_x509_key_mem2(x509_, &cert, &key, GNUTLS_X509_FMT_PEM, nullptr, 0); rc < 0) {
    gnutls_certificate_free_credentials(x509_);
    x509_ = nullptr;
    return Error{gnutls_strerror(rc)};
  }
  gnutls_certificate_set_known_dh_params(x509_, GNUTLS_SEC_PARAM_MEDIUM);
  return {};
}

void TlsCredentials::setPskKeys(PskKeys keys) {
  for (auto& [identity, key] : keys_) wipe(key);
  keys_ = std::move(keys);
}

Result<void> TlsCredentials::finish() {
  if (!keys_.empty() && psk_ == nullptr) {
    if (int rc = gnutls_psk_allocate_server_credentials(&psk_); rc < 0) {
      psk_ = nullptr;
      return Error{gnutls_strerror(rc)};
    }
    // The key for an identity comes from keys_, looked up by the session (TlsSession::pskKey).
    gnutls_psk_set_server_credentials_function(psk_, &TlsSession::pskKey);
    gnutls_psk_set_server_known_dh_params(psk_, GNUTLS_SEC_PARAM_MEDIUM);
  }
  if (x509_ == nullptr && psk_ == nullptr) return Error{"no certificate and no pre-shared key"};
  std::string priority(kPriority);
  if (psk_ != nullptr) priority += kPskPriority;
  const char* where = nullptr;
  if (int rc = gnutls_priority_init(&priority_, priority.c_str(), &where); rc < 0) {
    priority_ = nullptr;
    return Error{fmt::format("TLS priorities '{}': {}", priority, gnutls_strerror(rc))};
  }
  return {};
}

std::string_view TlsCredentials::kinds() const {
  if (x509_ != nullptr && psk_ != nullptr) return "x509+psk";
  return x509_ != nullptr ? "x509" : "psk";
}

// ---- session ----------------------------------------------------------------------------------

TlsSession::TlsSession(std::shared_ptr<const TlsCredentials> credentials) : credentials_(std::move(credentials)) {}

TlsSession::~TlsSession() {
  if (session_ != nullptr) gnutls_deinit(session_);
  wipe(in_);
}

Result<std::unique_ptr<TlsSession>> TlsSession::server(std::shared_ptr<const TlsCredentials> credentials) {
  if (!credentials || credentials->priority_ == nullptr) return Error{"no TLS credentials"};
  std::unique_ptr<TlsSession> s(new TlsSession(std::move(credentials)));
  // No session tickets: no resumption, so every session proves its identity afresh (a resumed one
  // would carry an identity from a configuration that may have been reloaded since).
  if (int rc = gnutls_init(&s->session_, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_TICKETS); rc < 0) {
    s->session_ = nullptr;
    return Error{fmt::format("gnutls_init: {}", gnutls_strerror(rc))};
  }
  const auto& c = *s->credentials_;
  int rc = gnutls_priority_set(s->session_, c.priority_);
  if (rc >= 0 && c.x509_ != nullptr) rc = gnutls_credentials_set(s->session_, GNUTLS_CRD_CERTIFICATE, c.x509_);
  if (rc >= 0 && c.psk_ != nullptr) rc = gnutls_credentials_set(s->session_, GNUTLS_CRD_PSK, c.psk_);
  if (rc < 0) return Error{fmt::format("TLS session setup: {}", gnutls_strerror(rc))};
  gnutls_session_set_ptr(s->session_, s.get());
  gnutls_transport_set_ptr(s->session_, s.get());
  gnutls_transport_set_pull_function(s->session_, &TlsSession::pull);
  gnutls_transport_set_push_function(s->session_, &TlsSession::push);
  gnutls_transport_set_pull_timeout_function(s->session_, &TlsSession::pullTimeout);
  // The connection's handshake_timeout bounds the handshake (the NBD one and this one), not GnuTLS.
  gnutls_handshake_set_timeout(s->session_, GNUTLS_INDEFINITE_TIMEOUT);
  return s;
}

ssize_t TlsSession::pull(gnutls_transport_ptr_t self, void* data, std::size_t size) {
  auto* s = static_cast<TlsSession*>(self);
  const std::size_t have = s->inEnd_ - s->inPos_;
  if (have == 0) {
    gnutls_transport_set_errno(s->session_, EAGAIN);
    return -1;
  }
  const std::size_t n = std::min(have, size);
  std::memcpy(data, s->in_.data() + s->inPos_, n);
  s->inPos_ += n;
  if (s->inPos_ == s->inEnd_) s->inPos_ = s->inEnd_ = 0;
  return static_cast<ssize_t>(n);
}

ssize_t TlsSession::push(gnutls_transport_ptr_t self, const void* data, std::size_t size) {
  auto* s = static_cast<TlsSession*>(self);
  const auto* p = static_cast<const std::uint8_t*>(data);
  s->out_.insert(s->out_.end(), p, p + size);
  return static_cast<ssize_t>(size);
}

int TlsSession::pullTimeout(gnutls_transport_ptr_t self, unsigned int /*ms*/) {
  // Never waits: input now, or EAGAIN (GnuTLS returns GNUTLS_E_AGAIN; 0 would be a timeout).
  auto* s = static_cast<TlsSession*>(self);
  if (s->inEnd_ > s->inPos_) return 1;
  gnutls_transport_set_errno(s->session_, EAGAIN);
  return -1;
}

int TlsSession::pskKey(gnutls_session_t session, const char* identity, gnutls_datum_t* key) {
  auto* s = static_cast<TlsSession*>(gnutls_session_get_ptr(session));
  if (s == nullptr || identity == nullptr) return -1;
  s->triedIdentity_ = identity;
  auto it = s->credentials_->keys_.find(std::string_view(identity));
  s->identityKnown_ = it != s->credentials_->keys_.end();
  if (!s->identityKnown_) return -1;
  key->data = static_cast<unsigned char*>(gnutls_malloc(it->second.size()));
  if (key->data == nullptr) return -1;
  std::memcpy(key->data, it->second.data(), it->second.size());
  key->size = static_cast<unsigned int>(it->second.size());
  return 0;
}

std::span<std::uint8_t> TlsSession::inputSpace(std::size_t n) {
  if (inPos_ > 0) {  // what GnuTLS took is gone: move the rest to the front
    std::memmove(in_.data(), in_.data() + inPos_, inEnd_ - inPos_);
    inEnd_ -= inPos_;
    inPos_ = 0;
  }
  if (in_.size() < inEnd_ + n) in_.resize(inEnd_ + n);
  return {in_.data() + inEnd_, n};
}

void TlsSession::inputReceived(std::size_t n) { inEnd_ = std::min(inEnd_ + n, in_.size()); }

void TlsSession::input(std::span<const std::uint8_t> bytes) {
  auto space = inputSpace(bytes.size());
  std::copy(bytes.begin(), bytes.end(), space.begin());
  inputReceived(bytes.size());
}

TlsSession::Status TlsSession::fail(int code, std::string_view during) {
  std::string what = gnutls_strerror(code);
  if (code == GNUTLS_E_FATAL_ALERT_RECEIVED || code == GNUTLS_E_WARNING_ALERT_RECEIVED)
    what += fmt::format(" ({})", gnutls_alert_get_name(gnutls_alert_get(session_)));
  if (!triedIdentity_.empty())
    what += identityKnown_ ? fmt::format("; PSK identity '{}' is known, so the client's key is likely wrong", triedIdentity_)
                           : fmt::format("; unknown PSK identity '{}'", triedIdentity_);
  error_ = fmt::format("{}: {}", during, what);
  // The alert that tells the client why, when there is one (it goes out before the socket closes).
  if (code != GNUTLS_E_FATAL_ALERT_RECEIVED) gnutls_alert_send_appropriate(session_, code);
  return Status::Failed;
}

TlsSession::Status TlsSession::handshake() {
  int rc = GNUTLS_E_AGAIN;
  for (int i = 0; i < kMaxNonFatal; ++i) {
    rc = gnutls_handshake(session_);
    if (rc == GNUTLS_E_SUCCESS) return Status::Ok;
    if (rc == GNUTLS_E_AGAIN) return Status::NeedInput;
    if (gnutls_error_is_fatal(rc) != 0) break;
    // A warning alert: the handshake goes on.
  }
  return fail(rc, "TLS handshake");
}

TlsSession::Status TlsSession::recv(std::uint8_t* dst, std::size_t n, std::size_t& got) {
  got = 0;
  ssize_t rc = GNUTLS_E_AGAIN;
  for (int i = 0; i < kMaxNonFatal; ++i) {
    rc = gnutls_record_recv(session_, dst, n);
    if (rc > 0) {
      got = static_cast<std::size_t>(rc);
      return Status::Ok;
    }
    if (rc == 0) return Status::Closed;
    if (rc == GNUTLS_E_AGAIN) return Status::NeedInput;
    // A TLS 1.2 client asking to renegotiate: not supported (no NBD client does), and refusing it
    // beats a second handshake in the middle of the transmission phase.
    if (rc == GNUTLS_E_REHANDSHAKE) {
      error_ = "TLS: the client asked to renegotiate, which this server does not do";
      gnutls_alert_send(session_, GNUTLS_AL_FATAL, GNUTLS_A_NO_RENEGOTIATION);
      return Status::Failed;
    }
    if (gnutls_error_is_fatal(static_cast<int>(rc)) != 0) break;
  }
  return fail(static_cast<int>(rc), "TLS");
}

Result<void> TlsSession::send(std::span<const std::span<const std::uint8_t>> pieces) {
  // Small pieces (reply headers, error chunks) are gathered into whole records; a large one (READ
  // data) tops the gathered record up and then goes straight to GnuTLS, which cuts full records.
  std::vector<std::uint8_t> gather;
  auto write = [&](const std::uint8_t* p, std::size_t n) -> Result<void> {
    while (n > 0) {
      const ssize_t rc = gnutls_record_send(session_, p, n);
      if (rc < 0) {  // the push never blocks, so no error here is one to retry
        error_ = fmt::format("TLS send: {}", gnutls_strerror(static_cast<int>(rc)));
        return Error{error_};
      }
      p += rc;
      n -= static_cast<std::size_t>(rc);
    }
    return {};
  };
  for (auto piece : pieces) {
    if (gather.size() + piece.size() < kRecordPlaintext) {
      gather.insert(gather.end(), piece.begin(), piece.end());
      continue;
    }
    if (!gather.empty()) {
      const std::size_t top = kRecordPlaintext - gather.size();
      gather.insert(gather.end(), piece.begin(), piece.begin() + static_cast<std::ptrdiff_t>(top));
      piece = piece.subspan(top);
      if (auto r = write(gather.data(), gather.size()); !r) return r;
      gather.clear();
    }
    const std::size_t whole = piece.size() - piece.size() % kRecordPlaintext;
    if (auto r = write(piece.data(), whole); !r) return r;
    gather.assign(piece.begin() + static_cast<std::ptrdiff_t>(whole), piece.end());
  }
  if (!gather.empty()) return write(gather.data(), gather.size());
  return {};
}

void TlsSession::bye() { gnutls_bye(session_, GNUTLS_SHUT_WR); }

void TlsSession::takeOutput(std::vector<std::uint8_t>& into) {
  into.swap(out_);
  out_.clear();
}

std::optional<std::string> TlsSession::pskIdentity() const {
  if (gnutls_auth_get_type(session_) != GNUTLS_CRD_PSK) return std::nullopt;
  const char* name = gnutls_psk_server_get_username(session_);
  if (name == nullptr) return std::nullopt;
  return std::string(name);
}

std::string TlsSession::description() const {
  auto name = [](const char* n) { return n != nullptr && *n != '\0' ? std::string_view(n) : std::string_view("-"); };
  return fmt::format("{} kx={} group={} cipher={}", name(gnutls_protocol_get_name(gnutls_protocol_get_version(session_))),
                     name(gnutls_kx_get_name(gnutls_kx_get(session_))), name(gnutls_group_get_name(gnutls_group_get(session_))),
                     name(gnutls_cipher_get_name(gnutls_cipher_get(session_))));
}

}  // namespace pxedust::nbd
