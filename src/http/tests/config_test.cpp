#include "http/config.hpp"

#include <gtest/gtest.h>

#include "config/tests/errors.hpp"

namespace pxedust::http {
namespace {

config::Config load(const std::string& text) { return config::loadString(text, "t.toml", {schema()}); }

TEST(HttpConfig, DefaultsAndKeys) {
  auto c = load(R"(
[http]
root = "/srv/boot"
listen = ["127.0.0.1:8080"]
max_connections_per_client = 4
header_timeout = 2.5
per_host = [{ request = "/boot.ipxe", file = "hosts/{name}.ipxe" }]
)");
  const auto* h = configIn(c);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->root, "/srv/boot");
  ASSERT_EQ(h->listen.size(), 1u);
  EXPECT_EQ(h->listen[0].port, 8080);
  EXPECT_EQ(h->maxConnectionsPerClient, 4u);
  EXPECT_EQ(h->maxConnections, 4096u);
  EXPECT_EQ(h->headerTimeout, std::chrono::milliseconds(2500));
  ASSERT_EQ(h->perHost.size(), 1u);
  EXPECT_EQ(h->perHost[0].request, "boot.ipxe");
  EXPECT_TRUE(h->apiListen.empty());  // the API shares `listen` unless told otherwise
  EXPECT_EQ(configIn(load("")), nullptr);
  auto separate = load("[http]\nroot = \"/srv/boot\"\nlisten = [\"10.0.0.1\"]\napi_listen = [\"127.0.0.1\", \"10.0.0.1:9000\"]\n");
  ASSERT_EQ(configIn(separate)->apiListen.size(), 2u);
  EXPECT_EQ(configIn(separate)->apiListen[0].port, 8080);
  EXPECT_EQ(configIn(separate)->apiListen[1].port, 9000);
}

std::string errorOf(std::string_view text) { return config::testing::errorOf(text, {schema()}, "t.toml"); }

TEST(HttpConfig, ErrorsNameTheKey) {
  EXPECT_NE(errorOf("[http]\nlisten = [\"127.0.0.1:80\"]\n").find("http.root"), std::string::npos);
  EXPECT_NE(errorOf("[http]\nroot = \"/x\"\nmax_connections = 0\n").find("max_connections"), std::string::npos);
  EXPECT_NE(errorOf("[http]\nroot = \"/x\"\nper_host = [{ request = \"a\", file = \"{nope}\" }]\n").find("template"),
            std::string::npos);
  EXPECT_NE(errorOf("[http]\nroot = \"/x\"\nbogus = 1\n").find("bogus"), std::string::npos);
  EXPECT_NE(errorOf("[http]\nroot = \"/x\"\napi_token = \"short\"\n").find("api_token"), std::string::npos);
  EXPECT_NE(errorOf("[http]\nroot = \"/x\"\nlisten = [\"0.0.0.0:80\"]\napi_listen = [\"127.0.0.1:80\"]\n").find("also in listen"),
            std::string::npos);
  EXPECT_NE(errorOf("[http]\nroot = \"/x\"\napi_listen = []\n").find("api_listen"), std::string::npos);
  EXPECT_NE(errorOf("[http]\nroot = \"/x\"\napi_token = \"has a space in it, 16+\"\n").find("api_token"), std::string::npos);
  EXPECT_NE(errorOf("[http]\nroot = \"/x\"\ninitrd = [1]\n").find("initrd"), std::string::npos);
  EXPECT_NE(errorOf("[http]\nroot = \"/x\"\n[[host]]\nname = \"a\"\nkernel_args = \"a\\nb\"\n").find("kernel_args"),
            std::string::npos);
}

// kernel, initrd, kernel_args and ipxe_template on [[group]] and [[host]]: a host's own, else its group's.
TEST(HttpConfig, BootKeysOnHostsAndGroups) {
  auto c = load(R"(
[http]
root = "/srv/boot"
api_token = "0123456789abcdef"
kernel = "vmlinuz"
[[group]]
name = "web"
initrd = "web.img"
kernel_args = "quiet"
[[host]]
name = "a"
group = "web"
kernel_args = "console=ttyS0"
[[host]]
name = "b"
)");
  EXPECT_EQ(configIn(c)->apiToken, "0123456789abcdef");
  EXPECT_EQ(configIn(c)->boot.kernel, "vmlinuz");
  const auto* a = bootSettingsOf(c.hosts.at(0).keys);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->kernelArgs, "console=ttyS0");
  EXPECT_EQ(a->initrd, std::vector<std::string>{"web.img"});
  EXPECT_FALSE(a->kernel);  // [http]'s is applied when the script is made
  EXPECT_EQ(bootSettingsOf(c.hosts.at(1).keys), nullptr);
}

}  // namespace
}  // namespace pxedust::http
