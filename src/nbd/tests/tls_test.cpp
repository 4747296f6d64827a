// The TLS layer of NBD's STARTTLS on its own: psktool key files, credential files, and the server
// session as a byte engine driven against a real GnuTLS client over memory — handshakes with X.509 and
// PSK, the identity it proves, wrong keys, unknown identities and garbage, records both ways (the
// gathering of small pieces and the cutting of large ones), and close_notify.
#include "nbd/tls.hpp"

#include <gtest/gtest.h>

#include "nbd/tests/tls_test_util.hpp"

namespace pxedust::nbd {
namespace {

using Bytes = std::vector<std::uint8_t>;
using testing::ClientTls;

TEST(NbdPskFile, PsktoolLinesCommentsAndBlankLines) {
  const auto k1 = testing::pskKeyFor("node1");
  const auto k2 = testing::pskKeyFor("node2");
  std::string text = "# made by psktool\n" + testing::pskLine("node1", k1) + "\n";
  std::string line2 = testing::pskLine("node2", k2);
  line2.insert(line2.size() - 1, "\r");  // CRLF
  text += line2;
  text.pop_back();  // no newline at the end
  auto keys = parsePskFile(text);
  ASSERT_TRUE(keys) << keys.error().message;
  ASSERT_EQ(keys->size(), 2U);
  EXPECT_EQ(keys->at("node1"), k1);
  EXPECT_EQ(keys->at("node2"), k2);
  // Upper-case hex is hex too.
  auto upper = parsePskFile("a:" + std::string(32, 'F') + "\n");
  ASSERT_TRUE(upper);
  EXPECT_EQ(upper->at("a"), Bytes(16, 0xff));
}

TEST(NbdPskFile, ErrorsNameTheLine) {
  const std::string key(64, 'a');
  auto err = [](std::string_view text) {
    auto r = parsePskFile(text);
    return r ? std::string() : r.error().message;
  };
  EXPECT_EQ(err("node1:" + key + "\nno-colon\n"), "line 2: expected identity:hexkey (as psktool writes it)");
  EXPECT_NE(err(":" + key).find("line 1: the identity must be 1..128 printable"), std::string::npos);
  EXPECT_NE(err("a b:" + key).find("line 1: the identity must be"), std::string::npos);
  EXPECT_NE(err(std::string(129, 'x') + ":" + key).find("the identity must be"), std::string::npos);
  EXPECT_NE(err("node1:" + key + "a").find("line 1: identity 'node1': the key must be an even number of hex digits"),
            std::string::npos);
  EXPECT_NE(err("node1:" + std::string(64, 'g')).find("even number of hex digits"), std::string::npos);
  EXPECT_NE(err("node1:0011223344556677").find("the key must be 16..512 bytes"), std::string::npos);
  EXPECT_NE(err("node1:" + key + "\nnode1:" + key + "\n").find("line 2: identity 'node1' is listed twice"),
            std::string::npos);
  EXPECT_NE(err("# only a comment\n\n").find("no identity in it"), std::string::npos);
  EXPECT_NE(err("").find("no identity in it"), std::string::npos);
}

TEST(NbdTlsCredentials, FilesAndMismatchedKeys) {
  testing::TempDir dir;
  auto missing = readCredentialFile((dir / "nope.pem").string());
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("nope.pem: No such file or directory"), std::string::npos)
      << missing.error().message;
  auto notFile = readCredentialFile(dir.path().string());
  ASSERT_FALSE(notFile);
  EXPECT_NE(notFile.error().message.find("is not a regular file"), std::string::npos);

  auto a = testing::writeSelfSigned(dir.path(), "a");
  auto b = testing::writeSelfSigned(dir.path(), "b");
  TlsCredentials good;
  ASSERT_TRUE(good.setCertificate(*readCredentialFile(a.certificate), *readCredentialFile(a.key)));
  EXPECT_TRUE(good.finish());
  EXPECT_EQ(good.kinds(), "x509");
  TlsCredentials mismatched;
  auto r = mismatched.setCertificate(*readCredentialFile(a.certificate), *readCredentialFile(b.key));
  EXPECT_FALSE(r);
  TlsCredentials garbage;
  EXPECT_FALSE(garbage.setCertificate("not a certificate", "not a key"));
  TlsCredentials none;
  EXPECT_FALSE(none.finish());
}

// A server session and a GnuTLS client, bytes pumped between them in memory.
struct Pair {
  std::shared_ptr<TlsCredentials> creds = std::make_shared<TlsCredentials>();
  std::unique_ptr<TlsSession> server;
  std::unique_ptr<ClientTls> client;

  void start() {
    ASSERT_TRUE(creds->finish());
    auto s = TlsSession::server(creds);
    ASSERT_TRUE(s) << s.error().message;
    server = std::move(*s);
    client->useMemory();
  }
  // Client -> server bytes.
  void toServer() {
    if (client->output().empty()) return;
    server->input(client->output());
    client->output().clear();
  }
  void toClient() {
    Bytes out;
    server->takeOutput(out);
    client->input(out);
  }
  // Both handshakes to the end; the server's last status.
  TlsSession::Status handshake() {
    TlsSession::Status st = TlsSession::Status::NeedInput;
    int crc = GNUTLS_E_AGAIN;
    for (int round = 0; round < 20; ++round) {
      if (crc == GNUTLS_E_AGAIN) crc = client->handshake();
      toServer();
      if (st == TlsSession::Status::NeedInput) st = server->handshake();
      toClient();
      if (st == TlsSession::Status::Failed) return st;
      if (st == TlsSession::Status::Ok && crc == GNUTLS_E_SUCCESS) return st;
      if (crc < 0 && crc != GNUTLS_E_AGAIN) return TlsSession::Status::Failed;
    }
    return TlsSession::Status::NeedInput;
  }
  // What the server decrypts from the client's `bytes`.
  Bytes serverReceives(const Bytes& bytes) {
    EXPECT_TRUE(client->sendAll(bytes));
    toServer();
    Bytes got(bytes.size());
    std::size_t at = 0;
    while (at < got.size()) {
      std::size_t n = 0;
      auto st = server->recv(got.data() + at, got.size() - at, n);
      if (st != TlsSession::Status::Ok) break;
      at += n;
    }
    got.resize(at);
    return got;
  }
};

TEST(NbdTlsSession, X509HandshakeAndRecordsBothWays) {
  testing::TempDir dir;
  auto files = testing::writeSelfSigned(dir.path());
  Pair p;
  ASSERT_TRUE(p.creds->setCertificate(*readCredentialFile(files.certificate), *readCredentialFile(files.key)));
  p.client = ClientTls::x509();
  p.start();
  ASSERT_EQ(p.handshake(), TlsSession::Status::Ok) << p.server->error();
  EXPECT_FALSE(p.server->pskIdentity());
  EXPECT_NE(p.server->description().find("TLS1."), std::string::npos) << p.server->description();

  Bytes request = testing::randomBytes(100'000, 5);
  EXPECT_EQ(p.serverReceives(request), request);

  // Replies: small headers gathered with large data, in order, byte for byte.
  Bytes h1(16, 0x11), data = testing::randomBytes(70'000, 6), h2(20, 0x22), tail(5, 0x33);
  std::vector<std::span<const std::uint8_t>> pieces{h1, data, h2, tail};
  ASSERT_TRUE(p.server->send(pieces));
  p.toClient();
  Bytes want;
  for (auto piece : pieces) want.insert(want.end(), piece.begin(), piece.end());
  Bytes got(want.size());
  ASSERT_TRUE(p.client->recvAll(got.data(), got.size()));
  EXPECT_EQ(got, want);

  // close_notify from the client: the server sees a clean end.
  gnutls_bye(p.client->session(), GNUTLS_SHUT_WR);
  p.toServer();
  std::uint8_t b = 0;
  std::size_t n = 0;
  EXPECT_EQ(p.server->recv(&b, 1, n), TlsSession::Status::Closed);
}

TEST(NbdTlsSession, PskIdentityIsProved) {
  Pair p;
  PskKeys keys;
  keys["node1"] = testing::pskKeyFor("node1");
  keys["node2"] = testing::pskKeyFor("node2");
  p.creds->setPskKeys(std::move(keys));
  p.client = ClientTls::psk("node2", testing::pskKeyFor("node2"));
  p.start();
  ASSERT_EQ(p.handshake(), TlsSession::Status::Ok) << p.server->error();
  EXPECT_EQ(p.server->pskIdentity(), "node2");
  // With an (EC)DHE share too (forward secrecy), though the client lists plain PSK first as libnbd
  // and QEMU do.
  EXPECT_NE(p.server->description().find("kx=ECDHE-PSK"), std::string::npos) << p.server->description();
  EXPECT_EQ(p.serverReceives(Bytes{1, 2, 3}), (Bytes{1, 2, 3}));
}

TEST(NbdTlsSession, WrongKeyUnknownIdentityAndGarbageFail) {
  PskKeys keys;
  keys["node1"] = testing::pskKeyFor("node1");
  {
    Pair p;
    p.creds->setPskKeys(keys);
    p.client = ClientTls::psk("node1", testing::pskKeyFor("node1", 9));
    p.start();
    EXPECT_EQ(p.handshake(), TlsSession::Status::Failed);
    EXPECT_NE(p.server->error().find("PSK identity 'node1'"), std::string::npos) << p.server->error();
  }
  {
    Pair p;
    p.creds->setPskKeys(keys);
    p.client = ClientTls::psk("mallory", testing::pskKeyFor("mallory"));
    p.start();
    EXPECT_EQ(p.handshake(), TlsSession::Status::Failed);
    EXPECT_NE(p.server->error().find("unknown PSK identity 'mallory'"), std::string::npos) << p.server->error();
  }
  {
    Pair p;
    p.creds->setPskKeys(keys);
    p.client = ClientTls::psk("node1", testing::pskKeyFor("node1"));
    p.start();
    // Not a ClientHello: NBD option bytes, as a client that forgot it asked for TLS would send.
    const std::string junk = "IHAVEOPT\0\0\0\x07\0\0\0\0garbage garbage garbage";
    p.server->input(std::span(reinterpret_cast<const std::uint8_t*>(junk.data()), junk.size()));
    EXPECT_EQ(p.server->handshake(), TlsSession::Status::Failed);
    EXPECT_NE(p.server->error().find("TLS handshake"), std::string::npos) << p.server->error();
    EXPECT_TRUE(p.server->hasOutput());  // the alert that says why
  }
}

TEST(NbdTlsSession, InputArrivesInAnySplit) {
  Pair p;
  PskKeys keys;
  keys["node1"] = testing::pskKeyFor("node1");
  p.creds->setPskKeys(std::move(keys));
  p.client = ClientTls::psk("node1", testing::pskKeyFor("node1"));
  p.start();
  // The ClientHello one byte at a time, through inputSpace()/inputReceived() as the connection does.
  ASSERT_EQ(p.client->handshake(), GNUTLS_E_AGAIN);
  Bytes hello = p.client->output();
  p.client->output().clear();
  TlsSession::Status st = TlsSession::Status::NeedInput;
  for (std::size_t i = 0; i < hello.size(); ++i) {
    ASSERT_EQ(st, TlsSession::Status::NeedInput) << i;
    auto space = p.server->inputSpace(4096);
    space[0] = hello[i];
    p.server->inputReceived(1);
    st = p.server->handshake();
  }
  ASSERT_NE(st, TlsSession::Status::Failed) << p.server->error();
  p.toClient();
  EXPECT_EQ(p.handshake(), TlsSession::Status::Ok) << p.server->error();
  EXPECT_EQ(p.server->pskIdentity(), "node1");
}

}  // namespace
}  // namespace pxedust::nbd
