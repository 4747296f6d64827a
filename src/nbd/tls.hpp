// TLS for NBD's STARTTLS (doc/proto.md "TLS support"), over GnuTLS: the server's credentials, and one
// connection's TLS session as a byte engine — ciphertext in, plaintext out and the reverse — with no
// socket of its own, so that the connection's one reader and one writer move every byte, plain or not.
//
// Design note. GnuTLS is given custom transport functions over two memory buffers (the way OpenSSL's
// memory BIOs are used): pull takes from the ciphertext the connection read from the socket (none left:
// EAGAIN, and the caller reads more), push appends to the ciphertext the connection's writer drains
// (it never blocks). So GnuTLS never touches the socket and never waits: a call returns NeedInput
// instead, and the caller's coroutine reads the socket on the event loop. Records go out in the order
// GnuTLS made them whichever call made them (the reader's recv may answer a TLS 1.3 key update), since
// they all land in one output buffer that the writer takes whole.
//
// Credentials. X.509 (a PEM certificate chain and its private key) and/or pre-shared keys in the
// psktool format ("identity:hexkey" lines). Both are read and checked when the configuration is loaded
// (a reload with an unreadable or mismatched key is refused and changes nothing), then held immutable
// and shared by every session begun under that configuration. Priorities: GnuTLS's NORMAL, TLS 1.2 and
// 1.3 only, with the PSK key exchanges added when there are keys (as nbdkit and QEMU do). No client
// certificates are asked for: a client proves who it is with a PSK, or not at all (then the address
// rule alone decides, nbd/exports.hpp).
//
// Completion contract: a TlsSession is used on one thread (the loop); nothing in it blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <gnutls/gnutls.h>

#include "common/result.hpp"

namespace pxedust::nbd {

// One pre-shared key file in psktool's format: "identity:hexkey" per line (psktool -u NAME -p FILE
// writes 256-bit keys). Empty lines and lines starting with '#' are skipped. An identity is 1..128
// bytes of printable ASCII without ':' (GnuTLS's limit); a key is 16..512 bytes (at least 128 bits),
// as an even number of hex digits. A repeated identity is an error (which key would win is a guess).
// Errors say "line N: what".
using PskKeys = std::map<std::string, std::vector<std::uint8_t>, std::less<>>;
Result<PskKeys> parsePskFile(std::string_view text);

// A credential file read whole (at most 1 MiB: no PEM bundle or key list comes near it).
Result<std::string> readCredentialFile(const std::string& path);
// Overwrites a string that held key material (before it is freed).
void wipeSecret(std::string& s);

class TlsCredentials {
 public:
  TlsCredentials();
  ~TlsCredentials();
  TlsCredentials(const TlsCredentials&) = delete;
  TlsCredentials& operator=(const TlsCredentials&) = delete;

  // The server's X.509 certificate chain and private key, PEM (the key unencrypted). Fails when either
  // does not parse or the key is not the certificate's.
  Result<void> setCertificate(std::string_view certificatePem, std::string_view keyPem);
  void setPskKeys(PskKeys keys);
  // Once every credential is set: the priorities. Fails with none set.
  Result<void> finish();

  [[nodiscard]] bool hasCertificate() const { return x509_ != nullptr; }
  [[nodiscard]] bool hasPsk() const { return psk_ != nullptr; }
  [[nodiscard]] const PskKeys& pskKeys() const { return keys_; }
  [[nodiscard]] bool knowsIdentity(std::string_view identity) const { return keys_.find(identity) != keys_.end(); }
  // "x509", "psk" or "x509+psk", for logs and check-config.
  [[nodiscard]] std::string_view kinds() const;

 private:
  friend class TlsSession;
  gnutls_certificate_credentials_t x509_ = nullptr;
  gnutls_psk_server_credentials_t psk_ = nullptr;
  gnutls_priority_t priority_ = nullptr;
  PskKeys keys_;
};

class TlsSession {
 public:
  enum class Status : std::uint8_t {
    Ok,         // done (handshake) or bytes delivered (recv)
    NeedInput,  // give it more ciphertext (input()), then call again; take its output first
    Closed,     // the peer sent close_notify (recv)
    Failed,     // fatal: error() says why; the output may hold an alert worth sending
  };

  // A server session on `credentials` (kept alive by the session).
  static Result<std::unique_ptr<TlsSession>> server(std::shared_ptr<const TlsCredentials> credentials);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Ciphertext from the peer: room for up to `n` bytes at the end of the input buffer, then how many
  // were written there. Or a copy of bytes already read (what followed STARTTLS in the read buffer).
  std::span<std::uint8_t> inputSpace(std::size_t n);
  void inputReceived(std::size_t n);
  void input(std::span<const std::uint8_t> bytes);

  // One step of the server handshake.
  Status handshake();
  // Up to `n` bytes of plaintext into `dst`; `got` is how many when Ok (always > 0 then).
  Status recv(std::uint8_t* dst, std::size_t n, std::size_t& got);
  // Encrypts all of `pieces` into the output, as few records as their sizes allow (corked).
  Result<void> send(std::span<const std::span<const std::uint8_t>> pieces);
  // A close_notify alert into the output (the write half closes; we read nothing after).
  void bye();

  [[nodiscard]] bool hasOutput() const { return !out_.empty(); }
  // The ciphertext to send, in order, into `into` (whose old contents go; the two buffers trade
  // places, so neither is allocated afresh for each batch).
  void takeOutput(std::vector<std::uint8_t>& into);

  [[nodiscard]] const std::string& error() const { return error_; }
  // The identity the client proved with a pre-shared key; nullopt after an X.509 handshake.
  [[nodiscard]] std::optional<std::string> pskIdentity() const;
  // "TLS1.3 kx=ECDHE-PSK group=SECP256R1 cipher=AES-256-GCM" and the like, for the log.
  [[nodiscard]] std::string description() const;

 private:
  friend class TlsCredentials;  // installs pskKey() as its PSK lookup
  explicit TlsSession(std::shared_ptr<const TlsCredentials> credentials);
  Status fail(int code, std::string_view during);

  static ssize_t pull(gnutls_transport_ptr_t self, void* data, std::size_t size);
  static ssize_t push(gnutls_transport_ptr_t self, const void* data, std::size_t size);
  static int pullTimeout(gnutls_transport_ptr_t self, unsigned int ms);
  static int pskKey(gnutls_session_t session, const char* identity, gnutls_datum_t* key);

  std::shared_ptr<const TlsCredentials> credentials_;
  gnutls_session_t session_ = nullptr;
  std::vector<std::uint8_t> in_;  // ciphertext received: [inPos_, inEnd_) not yet taken by GnuTLS
  std::size_t inPos_ = 0, inEnd_ = 0;
  std::vector<std::uint8_t> out_;
  std::string error_;
  std::string triedIdentity_;  // the identity the client offered, for the failure message
  bool identityKnown_ = false;
};

}  // namespace pxedust::nbd
