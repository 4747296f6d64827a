// The [tftp] section through the loader.
#include "tftp/config.hpp"

#include <gtest/gtest.h>

#include "config/tests/errors.hpp"

namespace pxedust::tftp {
namespace {

config::Config load(std::string_view text) { return config::loadString(text, "test.toml", {schema()}); }

std::string errorOf(std::string_view text) { return config::testing::errorOf(text, {schema()}, "test.toml"); }

TEST(TftpConfig, Example) {
  auto c = load(R"(
[tftp]
listen = ["127.0.0.1:6969", "[::1]"]
root = "/srv/tftp"
transfer_ports = [30000, 30099]
max_blksize = 1468
timeout = 0.5
client_rate = 0
per_host = [ { request = "/boot.cfg", file = "hosts/{name}/boot.cfg" } ]
)");
  const auto* t = configIn(c);
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->listen.size(), 2u);
  EXPECT_EQ(t->listen[0].toString(), "127.0.0.1:6969");
  EXPECT_EQ(t->listen[1].toString(), "[::1]:69");
  EXPECT_EQ(t->transferPortLow, 30000);
  EXPECT_EQ(t->maxBlksize, 1468u);
  EXPECT_EQ(t->timeout.count(), 500);
  EXPECT_EQ(t->clientRate, 0.0);
  ASSERT_EQ(t->perHost.size(), 1u);
  EXPECT_EQ(t->perHost[0].request, "boot.cfg");
}

TEST(TftpConfig, AbsentSectionAndDefaultListen) {
  EXPECT_EQ(configIn(load("")), nullptr);
  auto c = load("[tftp]\nroot = \"/x\"\n");
  ASSERT_NE(configIn(c), nullptr);
  ASSERT_EQ(configIn(c)->listen.size(), 1u);
  EXPECT_EQ(configIn(c)->listen[0].toString(), "0.0.0.0:69");
}

TEST(TftpConfig, ErrorsNameFileLineAndKey) {
  EXPECT_EQ(errorOf("[tftp]\nroot = \"/x\"\nmax_blksize = 70000\n"),
            "test.toml:3:15: tftp.max_blksize: expected an integer in 512..65464, got 70000");
  EXPECT_EQ(errorOf("[tftp]\nroot = \"/x\"\nblksize = 1\n"), "test.toml:3:1: tftp.blksize: unknown key");
  EXPECT_EQ(errorOf("[tftp]\nlisten = [\"1.2.3.4\"]\n"),
            "test.toml:1:1: tftp.root: missing required key 'root' in [tftp]");
  EXPECT_EQ(errorOf("[tftp]\nroot = 5\n"), "test.toml:2:8: tftp.root: expected a string, got an integer");
}

TEST(TftpConfig, RejectsBadValues) {
  EXPECT_NE(errorOf("[tftp]\nroot=\"/x\"\nlisten=[\"1.2.3.4:99999\"]\n").find("tftp.listen"), std::string::npos);
  EXPECT_NE(errorOf("[tftp]\nroot=\"/x\"\nlisten=[\"1.2.3.4\", \"1.2.3.4:69\"]\n").find("listed twice"), std::string::npos);
  EXPECT_NE(errorOf("[tftp]\nroot=\"/x\"\ntransfer_ports=[5,4]\n").find("low <= high"), std::string::npos);
  EXPECT_NE(errorOf("[tftp]\nroot=\"/x\"\nper_host=[{request=\"a\", file=\"../{name}\"}]\n").find("'..'"), std::string::npos);
  EXPECT_NE(errorOf("[tftp]\nroot=\"/x\"\nper_host=[{request=\"a\", file=\"{hostname}\"}]\n").find("unknown variable {hostname}"), std::string::npos);
  EXPECT_NE(errorOf("[tftp]\nroot=\"/x\"\nper_host=[{request=\"a\", file=\"x\", extra=1}]\n").find("tftp.per_host.extra: unknown key"), std::string::npos);
  EXPECT_NE(errorOf("[tftp]\nroot=\"/x\"\nper_host=[{request=\"/a\", file=\"x\"}, {request=\"a\", file=\"y\"}]\n").find("'a' has two rules"), std::string::npos);
}

}  // namespace
}  // namespace pxedust::tftp
