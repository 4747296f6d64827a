// The [nbd] section, root_protocol, and what NBD needs of each host, through the loader (with
// iSCSI's schema beside it, in the daemon's order, where root_protocol chooses between them).
#include "nbd/config.hpp"

#include <gtest/gtest.h>

#include "config/tests/errors.hpp"
#include "inventory/inventory.hpp"
#include "iscsi/config.hpp"
#include "nbd/exports.hpp"
#include "nbd/tests/tls_test_util.hpp"
#include "nbd/tls.hpp"

namespace pxedust::nbd {
namespace {

config::Schema both() { return {schema(), iscsi::schema()}; }
config::Config load(std::string_view text) { return config::loadString(text, "t.toml", both()); }
std::string errorOf(std::string_view text) { return config::testing::errorOf(text, both(), "t.toml"); }

TEST(NbdConfig, DefaultsAreDocumented) {
  auto c = load("[nbd]\n");
  const auto* n = configIn(c);
  ASSERT_NE(n, nullptr);
  ASSERT_EQ(n->listen.size(), 1U);
  EXPECT_EQ(n->listen[0].toString(), "0.0.0.0:10809");
  EXPECT_EQ(n->exportName, "{name}");
  EXPECT_EQ(n->maxConnections, 1024U);
  EXPECT_EQ(n->maxConnectionsPerClient, 16U);
  EXPECT_EQ(n->maxInFlight, 128U);
  EXPECT_EQ(n->handshakeTimeout, std::chrono::milliseconds(30'000));
  EXPECT_EQ(n->idleTimeout, std::chrono::milliseconds(0));
  EXPECT_EQ(n->tls, wire::TlsMode::None);
  EXPECT_EQ(n->tlsCredentials, nullptr);
}

TEST(NbdConfig, ExampleWithRootProtocol) {
  auto c = load(R"(
[nbd]
listen = ["127.0.0.1:10810", "[::1]"]
export_name = "{group}/{name}"
max_connections_per_client = 4
max_in_flight = 32
handshake_timeout = 5
idle_timeout = 600

[iscsi]
listen = ["10.0.0.1"]

[[group]]
name = "lab"
image = "debian12"
iscsi_allow = ["10.0.0.0/24"]
root_protocol = "nbd"

[[host]]
name = "node1"
group = "lab"

[[host]]
name = "node2"
group = "lab"
root_protocol = "iscsi"

[[host]]
name = "node3"
ip = "10.0.0.13"
image = "alpine"
)");
  const auto* n = configIn(c);
  ASSERT_NE(n, nullptr);
  ASSERT_EQ(n->listen.size(), 2U);
  EXPECT_EQ(n->listen[1].port, 10809);
  EXPECT_EQ(n->maxConnectionsPerClient, 4U);
  EXPECT_EQ(n->maxInFlight, 32U);
  EXPECT_EQ(n->handshakeTimeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(n->idleTimeout, std::chrono::milliseconds(600'000));
  EXPECT_EQ(exportName(*n, "node1", std::nullopt, "lab"), "lab/node1");

  // node1 inherits root_protocol = "nbd": NBD's export at the first IPv4 listen address.
  ASSERT_TRUE(c.hosts[0].rootDisk);
  EXPECT_EQ(c.hosts[0].rootDisk->protocol, "nbd");
  EXPECT_EQ(c.hosts[0].rootDisk->portal.toString(), "127.0.0.1:10810");
  EXPECT_EQ(c.hosts[0].rootDisk->name, "lab/node1");
  // node2 says iscsi itself; node3 says nothing: iSCSI, the default.
  ASSERT_TRUE(c.hosts[1].rootDisk);
  EXPECT_EQ(c.hosts[1].rootDisk->protocol, "iscsi");
  ASSERT_TRUE(c.hosts[2].rootDisk);
  EXPECT_EQ(c.hosts[2].rootDisk->protocol, "iscsi");

  auto inv = inventory::Inventory::fromConfig(c);
  auto server = asio::ip::make_address_v4("10.0.0.1");
  EXPECT_EQ(inv->byName("node1")->rootPath(server), "nbd:127.0.0.1:10810:lab/node1");
  EXPECT_EQ(inv->byName("node3")->rootPath(server), "iscsi:10.0.0.1::::iqn.2026-11.org.pxedust:node3");
}

TEST(NbdConfig, RootPathOnEveryAddressNamesTheServer) {
  auto c = load(R"(
[nbd]
[[host]]
name = "node1"
ip = "10.0.0.11"
image = "base"
root_protocol = "nbd"
)");
  auto inv = inventory::Inventory::fromConfig(c);
  EXPECT_EQ(inv->byName("node1")->rootPath(asio::ip::make_address_v4("10.0.0.1")), "nbd:10.0.0.1:10809:node1");
}

TEST(NbdConfig, RootInRamIsTheImageExport) {
  auto c = load(R"(
[nbd]
image_exports = true
[[host]]
name = "node1"
ip = "10.0.0.11"
image = "web"
root_protocol = "ram"
)");
  EXPECT_TRUE(configIn(c)->imageExports);
  auto inv = inventory::Inventory::fromConfig(c);
  EXPECT_EQ(inv->byName("node1")->rootPath(asio::ip::make_address_v4("10.0.0.1")), "ram:nbd:10.0.0.1:10809:images/web");
  EXPECT_EQ(parseImageExport("images/web"), (std::pair<std::string, std::uint64_t>{"web", 0}));
  EXPECT_EQ(parseImageExport("images/web/v12"), (std::pair<std::string, std::uint64_t>{"web", 12}));
  for (const char* bad : {"web", "images/", "images/web/", "images/web/v0", "images/web/12", "images/../x",
                          "images/web/v1/x", "images/.hidden", "images/web/v99999999999999999999"})
    EXPECT_FALSE(parseImageExport(bad)) << bad;
}

TEST(NbdConfig, HostsNbdCannotProtectAreNotExported) {
  config::DiskSettings chap;
  chap.image = "base";
  chap.allow = std::vector<config::Ipv4Network>{};
  chap.chap = config::ChapCredentials{"u", "secret-secret"};
  EXPECT_TRUE(notExportedBecause(chap, std::nullopt));
  config::DiskSettings names;  // initiator names only: NBD has none to check
  names.image = "base";
  names.initiators = std::vector<std::string>{"iqn.2026-01.test:a"};
  EXPECT_TRUE(notExportedBecause(names, std::nullopt));
  EXPECT_FALSE(notExportedBecause(names, asio::ip::make_address_v4("10.0.0.5")));
  // ... and asking for NBD as their root protocol is an error.
  auto e = errorOf(R"(
[nbd]
[[host]]
name = "node1"
image = "base"
iscsi_initiators = ["iqn.2026-01.test:node1"]
root_protocol = "nbd"
)");
  EXPECT_NE(e.find("root_protocol = \"nbd\" but it has neither ip nor iscsi_allow"), std::string::npos) << e;
}

TEST(NbdConfig, Errors) {
  EXPECT_NE(errorOf("[nbd]\nexport_name = \"{host}\"\n").find("template variables are {name}, {mac} and {group}"),
            std::string::npos);
  EXPECT_NE(errorOf("[nbd]\nexport_name = \"{group}\"\n").find("must contain {name} or {mac}"), std::string::npos);
  EXPECT_NE(errorOf("[nbd]\nmax_in_flight = 0\n"), "");
  EXPECT_NE(errorOf("[nbd]\nlisten = []\n"), "");
  EXPECT_NE(errorOf("[nbd]\nbase_exports = true\n"), "");  // not a key (yet)
  EXPECT_NE(errorOf("[[host]]\nname = \"a\"\nroot_protocol = \"zfs\"\n")
                .find("expected \"iscsi\", \"nbd\", \"ram\" or \"nfs\""),
            std::string::npos);
  EXPECT_NE(errorOf("[nbd]\nimage_exports = \"yes\"\n"), "");
  // Root in RAM copies the image over the image export.
  EXPECT_NE(errorOf("[nbd]\n[[host]]\nname = \"a\"\nip = \"10.0.0.5\"\nimage = \"base\"\nroot_protocol = \"ram\"\n")
                .find("needs [nbd] image_exports = true"),
            std::string::npos);
  // Two hosts, one export name.
  auto e = errorOf(R"(
[nbd]
export_name = "disk-{mac}"
[[host]]
name = "a"
ip = "10.0.0.1"
image = "base"
[[host]]
name = "b"
ip = "10.0.0.2"
image = "base"
)");
  EXPECT_NE(e.find("export name 'disk-' is also host 'a''s"), std::string::npos) << e;
}

// ---- tls, tls_certificate, tls_key, tls_psk_file ----

class NbdTlsConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    x509_ = testing::writeSelfSigned(dir_.path());
    other_ = testing::writeSelfSigned(dir_.path(), "other");
    psk_ = (dir_ / "keys.psk").string();
    testing::writeText(psk_, testing::pskLine("node1", testing::pskKeyFor("node1")) +
                                 testing::pskLine("node2", testing::pskKeyFor("node2")));
  }
  std::string section(std::string_view tls, std::string_view rest) const {
    return fmt::format("[nbd]\ntls = \"{}\"\n{}", tls, rest);
  }
  std::string certKeys(const testing::X509Files& f) const {
    return fmt::format("tls_certificate = \"{}\"\ntls_key = \"{}\"\n", f.certificate, f.key);
  }
  std::string pskKey() const { return fmt::format("tls_psk_file = \"{}\"\n", psk_); }

  testing::TempDir dir_;
  testing::X509Files x509_, other_;
  std::string psk_;
};

TEST_F(NbdTlsConfig, ModesAndCredentialsLoad) {
  auto c = load(section("require", certKeys(x509_) + pskKey()));
  const auto* n = configIn(c);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->tls, wire::TlsMode::Required);
  EXPECT_EQ(n->tlsCertificate, x509_.certificate);
  EXPECT_EQ(n->tlsPskFile, psk_);
  ASSERT_NE(n->tlsCredentials, nullptr);
  EXPECT_EQ(n->tlsCredentials->kinds(), "x509+psk");
  EXPECT_TRUE(n->tlsCredentials->knowsIdentity("node2"));
  EXPECT_FALSE(n->tlsCredentials->knowsIdentity("node3"));
  EXPECT_EQ(tlsModeName(n->tls), "require");

  auto x = load(section("optional", certKeys(x509_)));
  EXPECT_EQ(configIn(x)->tls, wire::TlsMode::Optional);
  EXPECT_EQ(configIn(x)->tlsCredentials->kinds(), "x509");
  auto p = load(section("optional", pskKey()));
  EXPECT_EQ(configIn(p)->tlsCredentials->kinds(), "psk");

  // "off" reads no file: paths that do not exist are not an error while nothing uses them.
  auto off = load(section("off", "tls_psk_file = \"/nonexistent/keys.psk\"\n"));
  EXPECT_EQ(configIn(off)->tls, wire::TlsMode::None);
  EXPECT_EQ(configIn(off)->tlsCredentials, nullptr);
}

TEST_F(NbdTlsConfig, ErrorsNameTheKeyAndLine) {
  EXPECT_NE(errorOf("[nbd]\ntls = \"on\"\n").find("t.toml:2:7: nbd.tls: expected \"off\", \"optional\" or \"require\""),
            std::string::npos)
      << errorOf("[nbd]\ntls = \"on\"\n");
  EXPECT_NE(errorOf("[nbd]\ntls = true\n"), "");
  auto e = errorOf(section("require", ""));
  EXPECT_NE(e.find("t.toml:2:7: nbd.tls: \"require\" needs tls_certificate and tls_key, or tls_psk_file"),
            std::string::npos)
      << e;
  e = errorOf(section("optional", fmt::format("tls_certificate = \"{}\"\n", x509_.certificate)));
  EXPECT_NE(e.find("nbd.tls_certificate: needs tls_key"), std::string::npos) << e;
  e = errorOf(section("optional", fmt::format("tls_key = \"{}\"\n", x509_.key)));
  EXPECT_NE(e.find("nbd.tls_key: needs tls_certificate"), std::string::npos) << e;
  e = errorOf(section("optional", "tls_psk_file = \"\"\n"));
  EXPECT_NE(e.find("nbd.tls_psk_file: expected a file path"), std::string::npos) << e;

  // Files that are missing, unreadable or wrong: at the key that names them, with the path.
  const std::string missing = (dir_ / "missing.pem").string();
  e = errorOf(section("require", fmt::format("tls_certificate = \"{}\"\ntls_key = \"{}\"\n", missing, x509_.key)));
  EXPECT_NE(e.find(fmt::format("t.toml:3:19: nbd.tls_certificate: cannot open {}: No such file or directory", missing)),
            std::string::npos)
      << e;
  e = errorOf(section("require", fmt::format("tls_certificate = \"{}\"\ntls_key = \"{}\"\n", x509_.certificate, missing)));
  EXPECT_NE(e.find(fmt::format("t.toml:4:11: nbd.tls_key: cannot open {}", missing)), std::string::npos) << e;
  e = errorOf(section("require", fmt::format("tls_psk_file = \"{}\"\n", missing)));
  EXPECT_NE(e.find(fmt::format("t.toml:3:16: nbd.tls_psk_file: cannot open {}", missing)), std::string::npos) << e;
  e = errorOf(section("require", fmt::format("tls_psk_file = \"{}\"\n", dir_.path().string())));
  EXPECT_NE(e.find("is not a regular file"), std::string::npos) << e;

  // A key that is not the certificate's.
  e = errorOf(section("require", fmt::format("tls_certificate = \"{}\"\ntls_key = \"{}\"\n", x509_.certificate, other_.key)));
  EXPECT_NE(e.find(fmt::format("nbd.tls_certificate: {} with the key {}: ", x509_.certificate, other_.key)),
            std::string::npos)
      << e;
  // A PSK file that is not psktool's format: the file's own line too.
  const std::string bad = (dir_ / "bad.psk").string();
  testing::writeText(bad, testing::pskLine("node1", testing::pskKeyFor("node1")) + "node2=abcdef\n");
  e = errorOf(section("optional", fmt::format("tls_psk_file = \"{}\"\n", bad)));
  EXPECT_NE(e.find(fmt::format("nbd.tls_psk_file: {}: line 2: expected identity:hexkey", bad)), std::string::npos) << e;

  // Unknown keys stay errors.
  EXPECT_NE(errorOf(section("optional", pskKey() + "tls_ca = \"x\"\n")).find("tls_ca"), std::string::npos);
}

}  // namespace
}  // namespace pxedust::nbd
