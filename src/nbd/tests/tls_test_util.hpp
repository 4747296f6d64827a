// TLS material and a TLS client for the NBD tests, made with GnuTLS's own API (no certtool or psktool
// needed): a self-signed server certificate and its key as PEM files, psktool-format key lines, and a
// client session over a blocking socket or over memory buffers (driven step by step against a
// TlsSession).
#pragma once

#include <gnutls/gnutls.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pxedust::nbd::testing {

// A directory under the system's temp dir, removed with everything in it at the end of its scope.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& s) const { return path_ / s; }

 private:
  std::filesystem::path path_;
};

// Reproducible pseudo-random bytes.
std::vector<std::uint8_t> randomBytes(std::size_t n, std::uint64_t seed);

struct X509Files {
  std::string certificate, key;  // paths
};

// A self-signed certificate (CN=localhost, SANs localhost and 127.0.0.1, ECDSA P-256, valid a day) and
// its key, written as <stem>-cert.pem and <stem>-key.pem under `dir`.
X509Files writeSelfSigned(const std::filesystem::path& dir, const std::string& stem = "server");
// A key of 32 bytes derived from `identity` (so a test can also make the wrong one).
std::vector<std::uint8_t> pskKeyFor(std::string_view identity, std::uint8_t salt = 0);
// "identity:hexkey\n", as psktool writes it.
std::string pskLine(std::string_view identity, const std::vector<std::uint8_t>& key);
void writeText(const std::filesystem::path& path, std::string_view text);

// A GnuTLS client session: X.509 (the server's certificate is not verified: these tests look at the
// server's side) or PSK with an identity and key.
class ClientTls {
 public:
  static std::unique_ptr<ClientTls> x509();
  static std::unique_ptr<ClientTls> psk(const std::string& identity, const std::vector<std::uint8_t>& key);
  ~ClientTls();
  ClientTls(const ClientTls&) = delete;
  ClientTls& operator=(const ClientTls&) = delete;

  // Over a blocking socket: handshake(), send() and recv() block.
  void useFd(int fd);
  // Over memory: what it sends piles up in output(); input() is what it may read (EAGAIN after).
  void useMemory();
  std::vector<std::uint8_t>& output() { return out_; }
  void input(std::span<const std::uint8_t> bytes) { in_.insert(in_.end(), bytes.begin(), bytes.end()); }

  int handshake() { return gnutls_handshake(session_); }
  bool sendAll(std::span<const std::uint8_t> bytes);
  bool recvAll(std::uint8_t* dst, std::size_t n);  // false: closed or failed (over memory: or no input left)
  [[nodiscard]] gnutls_session_t session() const { return session_; }

 private:
  ClientTls() = default;
  bool init();
  static ssize_t pull(gnutls_transport_ptr_t self, void* data, std::size_t size);
  static ssize_t push(gnutls_transport_ptr_t self, const void* data, std::size_t size);
  static int pullTimeout(gnutls_transport_ptr_t self, unsigned int ms);

  gnutls_session_t session_ = nullptr;
  gnutls_certificate_credentials_t x509_ = nullptr;
  gnutls_psk_client_credentials_t psk_ = nullptr;
  std::vector<std::uint8_t> in_, out_;
  bool memory_ = false;
};

}  // namespace pxedust::nbd::testing
