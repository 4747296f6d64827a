#include "nbd/tests/tls_test_util.hpp"

#include <gnutls/x509.h>

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <stdexcept>

namespace pxedust::nbd::testing {

namespace {

void check(int rc, const char* what) {
  if (rc < 0) throw std::runtime_error(std::string(what) + ": " + gnutls_strerror(rc));
}

std::string exportPem(int (*fn)(void*, gnutls_x509_crt_fmt_t, gnutls_datum_t*), void* obj) {
  gnutls_datum_t out{};
  check(fn(obj, GNUTLS_X509_FMT_PEM, &out), "export");
  std::string s(reinterpret_cast<const char*>(out.data), out.size);
  gnutls_free(out.data);
  return s;
}

}  // namespace

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "pxd-nbd-tls-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<std::uint8_t> randomBytes(std::size_t n, std::uint64_t seed) {
  std::vector<std::uint8_t> v(n);
  std::uint64_t x = seed;
  for (auto& b : v) {
    x += 0x9e3779b97f4a7c15ull;
    std::uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    b = static_cast<std::uint8_t>(z ^ (z >> 31));
  }
  return v;
}

void writeText(const std::filesystem::path& path, std::string_view text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

X509Files writeSelfSigned(const std::filesystem::path& dir, const std::string& stem) {
  gnutls_x509_privkey_t key = nullptr;
  gnutls_x509_crt_t crt = nullptr;
  check(gnutls_x509_privkey_init(&key), "privkey_init");
  check(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
        "privkey_generate");
  check(gnutls_x509_crt_init(&crt), "crt_init");
  check(gnutls_x509_crt_set_version(crt, 3), "set_version");
  const unsigned char serial[] = {0x01, 0x23, 0x45};
  check(gnutls_x509_crt_set_serial(crt, serial, sizeof serial), "set_serial");
  const std::time_t now = std::time(nullptr);
  check(gnutls_x509_crt_set_activation_time(crt, now - 3600), "activation");
  check(gnutls_x509_crt_set_expiration_time(crt, now + 86400), "expiration");
  check(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "localhost", 9), "dn");
  check(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "localhost", 9, GNUTLS_FSAN_APPEND), "san");
  const unsigned char ip[] = {127, 0, 0, 1};
  check(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, sizeof ip, GNUTLS_FSAN_APPEND), "san ip");
  check(gnutls_x509_crt_set_key(crt, key), "set_key");
  check(gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0), "purpose");
  check(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), "sign");
  X509Files files{(dir / (stem + "-cert.pem")).string(), (dir / (stem + "-key.pem")).string()};
  writeText(files.certificate,
            exportPem([](void* o, gnutls_x509_crt_fmt_t f, gnutls_datum_t* d) {
              return gnutls_x509_crt_export2(static_cast<gnutls_x509_crt_t>(o), f, d);
            }, crt));
  writeText(files.key, exportPem([](void* o, gnutls_x509_crt_fmt_t f, gnutls_datum_t* d) {
              return gnutls_x509_privkey_export2(static_cast<gnutls_x509_privkey_t>(o), f, d);
            }, key));
  gnutls_x509_crt_deinit(crt);
  gnutls_x509_privkey_deinit(key);
  return files;
}

std::vector<std::uint8_t> pskKeyFor(std::string_view identity, std::uint8_t salt) {
  std::vector<std::uint8_t> key(32);
  std::uint32_t h = 2166136261u ^ salt;
  for (std::size_t i = 0; i < key.size(); ++i) {
    for (char c : identity) h = (h ^ static_cast<std::uint8_t>(c)) * 16777619u;
    h = (h ^ static_cast<std::uint32_t>(i)) * 16777619u;
    key[i] = static_cast<std::uint8_t>(h >> 24);
  }
  return key;
}

std::string pskLine(std::string_view identity, const std::vector<std::uint8_t>& key) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(identity);
  out += ':';
  for (auto b : key) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  out += '\n';
  return out;
}

// ---- client -----------------------------------------------------------------------------------

std::unique_ptr<ClientTls> ClientTls::x509() {
  std::unique_ptr<ClientTls> c(new ClientTls);
  check(gnutls_certificate_allocate_credentials(&c->x509_), "client x509 credentials");
  if (!c->init()) return nullptr;
  check(gnutls_credentials_set(c->session_, GNUTLS_CRD_CERTIFICATE, c->x509_), "credentials_set");
  check(gnutls_priority_set_direct(c->session_, "NORMAL", nullptr), "priority");
  return c;
}

std::unique_ptr<ClientTls> ClientTls::psk(const std::string& identity, const std::vector<std::uint8_t>& key) {
  std::unique_ptr<ClientTls> c(new ClientTls);
  check(gnutls_psk_allocate_client_credentials(&c->psk_), "client psk credentials");
  gnutls_datum_t k{const_cast<unsigned char*>(key.data()), static_cast<unsigned int>(key.size())};
  check(gnutls_psk_set_client_credentials(c->psk_, identity.c_str(), &k, GNUTLS_PSK_KEY_RAW), "psk key");
  if (!c->init()) return nullptr;
  check(gnutls_credentials_set(c->session_, GNUTLS_CRD_PSK, c->psk_), "credentials_set");
  check(gnutls_priority_set_direct(c->session_, "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK", nullptr), "priority");
  return c;
}

bool ClientTls::init() { return gnutls_init(&session_, GNUTLS_CLIENT) >= 0; }

ClientTls::~ClientTls() {
  if (session_ != nullptr) gnutls_deinit(session_);
  if (x509_ != nullptr) gnutls_certificate_free_credentials(x509_);
  if (psk_ != nullptr) gnutls_psk_free_client_credentials(psk_);
}

void ClientTls::useFd(int fd) {
  gnutls_transport_set_int(session_, fd);
  gnutls_handshake_set_timeout(session_, 10'000);
}

void ClientTls::useMemory() {
  memory_ = true;
  gnutls_transport_set_ptr(session_, this);
  gnutls_transport_set_pull_function(session_, &ClientTls::pull);
  gnutls_transport_set_push_function(session_, &ClientTls::push);
  gnutls_transport_set_pull_timeout_function(session_, &ClientTls::pullTimeout);
  gnutls_handshake_set_timeout(session_, GNUTLS_INDEFINITE_TIMEOUT);
}

ssize_t ClientTls::pull(gnutls_transport_ptr_t self, void* data, std::size_t size) {
  auto* c = static_cast<ClientTls*>(self);
  if (c->in_.empty()) {
    gnutls_transport_set_errno(c->session_, EAGAIN);
    return -1;
  }
  const std::size_t n = std::min(size, c->in_.size());
  std::memcpy(data, c->in_.data(), n);
  c->in_.erase(c->in_.begin(), c->in_.begin() + static_cast<std::ptrdiff_t>(n));
  return static_cast<ssize_t>(n);
}

ssize_t ClientTls::push(gnutls_transport_ptr_t self, const void* data, std::size_t size) {
  auto* c = static_cast<ClientTls*>(self);
  const auto* p = static_cast<const std::uint8_t*>(data);
  c->out_.insert(c->out_.end(), p, p + size);
  return static_cast<ssize_t>(size);
}

int ClientTls::pullTimeout(gnutls_transport_ptr_t self, unsigned int /*ms*/) {
  auto* c = static_cast<ClientTls*>(self);
  if (!c->in_.empty()) return 1;
  gnutls_transport_set_errno(c->session_, EAGAIN);
  return -1;
}

bool ClientTls::sendAll(std::span<const std::uint8_t> bytes) {
  while (!bytes.empty()) {
    const ssize_t n = gnutls_record_send(session_, bytes.data(), bytes.size());
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) continue;
    if (n < 0) return false;
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
  return true;
}

bool ClientTls::recvAll(std::uint8_t* dst, std::size_t n) {
  while (n > 0) {
    const ssize_t k = gnutls_record_recv(session_, dst, n);
    if ((k == GNUTLS_E_AGAIN && !memory_) || k == GNUTLS_E_INTERRUPTED) continue;
    if (k <= 0) return false;
    dst += k;
    n -= static_cast<std::size_t>(k);
  }
  return true;
}

}  // namespace pxedust::nbd::testing
