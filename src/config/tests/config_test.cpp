// The loader: the file, the reader's errors and positions, [log] [daemon] [storage], hosts and
// groups with their disks, and the schema hooks services plug in (a test schema stands in for them;
// each service tests its own section in src/<service>/tests/config_test.cpp).
#include "config/config.hpp"

#include <gtest/gtest.h>

#include "config/tests/errors.hpp"

#include <memory>
#include <set>

#include "config/reader.hpp"

using namespace pxedust::config;

namespace {

// A service of the test's own: [svc] with a required `root` and a `count`; on hosts and groups a
// `colour` the host inherits from its group; hosts with a colour get a root disk named after it,
// and two hosts may not share a colour.
struct Svc {
  std::string root;
  int count = 1;
};
ServiceSchema svcSchema() {
  ServiceSchema s;
  s.section = "svc";
  s.parse = [](Table& t, const Config&) {
    Svc v;
    v.root = t.requiredString("root");
    if (auto n = t.integer<int>("count", 1, 9)) v.count = *n;
    return std::any(v);
  };
  s.hostKeys = [](Table& t) { return std::any(t.string("colour")); };
  s.inherit = [](std::any& host, const std::any& group) {
    auto& mine = std::any_cast<std::optional<std::string>&>(host);
    if (!mine) mine = std::any_cast<const std::optional<std::string>&>(group);
  };
  s.hosts = [](const std::any&) -> ServiceSchema::HostChecker {
    auto seen = std::make_shared<std::set<std::string>>();
    return [seen](Table& h, const HostConfig& hc) -> std::optional<RootDisk> {
      const auto* colour = part<std::optional<std::string>>(hc.keys, "svc");
      if (colour == nullptr || !*colour) return std::nullopt;
      if (!seen->insert(**colour).second) h.fail(h.get("name"), "name", "colour taken");
      return RootDisk{"svc", {}, **colour};
    };
  };
  return s;
}

Config load(std::string_view text) { return loadString(text, "test.toml", {svcSchema()}); }

std::string errorOf(std::string_view text) { return pxedust::config::testing::errorOf(text, {svcSchema()}, "test.toml"); }
}  // namespace

TEST(Config, Example) {
  auto c = load(R"(
[log]
level = "debug"
[daemon]
shutdown_grace = 2.5
state_dir = "/run/x"
[storage]
dir = "/var/lib/x"
[svc]
root = "/srv"
[[group]]
name = "lab"
colour = "red"
image = "debian"
[[host]]
name = "alpha"
mac = "52:54:00:00:00:01"
ip = "10.9.0.11"
group = "lab"
[[host]]
name = "beta"
colour = "blue"
[[host]]
name = "gamma"
)");
  EXPECT_EQ(c.log.level, pxedust::log::Level::Debug);
  EXPECT_EQ(c.daemon.shutdownGrace.count(), 2500);
  EXPECT_EQ(c.daemon.stateDir, "/run/x");
  EXPECT_EQ(c.storage.dir, "/var/lib/x");
  ASSERT_TRUE(c.has("svc"));
  EXPECT_EQ(c.section<Svc>("svc")->root, "/srv");
  EXPECT_EQ(c.section<Svc>("svc")->count, 1);
  EXPECT_EQ(c.section<int>("svc"), nullptr);  // the wrong type gives nothing, not garbage
  ASSERT_EQ(c.hosts.size(), 3u);
  EXPECT_EQ(c.hosts[0].mac->toString(), "52:54:00:00:00:01");
  EXPECT_EQ(c.hosts[0].ip->to_string(), "10.9.0.11");
  EXPECT_EQ(c.hosts[0].group, "lab");
  EXPECT_EQ(c.hosts[0].disk.image, "debian");  // the group's disk
  EXPECT_FALSE(c.hosts[1].mac);
  // The service's host keys, the group's inherited, and the root disk its checker gave.
  EXPECT_EQ(*part<std::optional<std::string>>(c.hosts[0].keys, "svc"), "red");
  EXPECT_EQ(c.hosts[0].rootDisk, (RootDisk{"svc", {}, "red"}));
  EXPECT_EQ(c.hosts[1].rootDisk->name, "blue");
  EXPECT_FALSE(c.hosts[2].rootDisk);
}

TEST(Config, DefaultsWithoutSections) {
  auto c = load("");
  EXPECT_FALSE(c.has("svc"));
  EXPECT_EQ(c.section<Svc>("svc"), nullptr);
  EXPECT_EQ(c.log.level, pxedust::log::Level::Info);
  EXPECT_EQ(c.storage.dir, "/var/lib/pxedust");
}

// A service's host checker runs only when its section is there, once per load, across all hosts.
TEST(Config, HostCheckers) {
  EXPECT_EQ(errorOf("[[host]]\nname = \"a\"\ncolour = \"red\"\n[[host]]\nname = \"b\"\ncolour = \"red\"\n"), "");
  EXPECT_EQ(errorOf("[svc]\nroot = \"/\"\n[[host]]\nname = \"a\"\ncolour = \"red\"\n[[host]]\nname = \"b\"\ncolour = \"red\"\n"),
            "test.toml:7:8: host.name: colour taken");
  EXPECT_FALSE(load("[[host]]\nname = \"a\"\ncolour = \"red\"\n").hosts[0].rootDisk);
}

TEST(Config, ErrorsNameFileLineAndKey) {
  EXPECT_EQ(errorOf("[svc]\nroot = \"/x\"\ncount = 70000\n"), "test.toml:3:9: svc.count: expected an integer in 1..9, got 70000");
  EXPECT_EQ(errorOf("[svc]\nroot = \"/x\"\nblksize = 1\n"), "test.toml:3:1: svc.blksize: unknown key");
  EXPECT_EQ(errorOf("[svc]\ncount = 2\n"), "test.toml:1:1: svc.root: missing required key 'root' in [svc]");
  EXPECT_EQ(errorOf("[svc]\nroot = 5\n"), "test.toml:2:8: svc.root: expected a string, got an integer");
  EXPECT_EQ(errorOf("[[host]]\nname = \"a\"\nshape = 1\n"), "test.toml:3:1: host.shape: unknown key");
  // Without the schema, its keys are unknown like any other.
  try {
    loadString("[svc]\nroot = \"/x\"\n", "test.toml", {});
    ADD_FAILURE() << "loaded";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "test.toml:1:2: svc: unknown key (sections are [log], [daemon], [storage], [[group]], [[host]])");
  }
}

TEST(Config, DaemonUserAndGroup) {
  auto none = load("");
  EXPECT_FALSE(none.daemon.user);
  EXPECT_FALSE(none.daemon.group);
  auto userOnly = load("[daemon]\nuser = \"pxedust\"\n");
  EXPECT_EQ(userOnly.daemon.user, "pxedust");
  EXPECT_FALSE(userOnly.daemon.group);  // the user's primary group
  auto both = load("[daemon]\nuser = \"nobody\"\ngroup = \"nogroup\"\n");
  EXPECT_EQ(both.daemon.user, "nobody");
  EXPECT_EQ(both.daemon.group, "nogroup");
  EXPECT_NE(errorOf("[daemon]\nuser = \"\"\n").find("daemon.user: expected a user name"), std::string::npos)
      << errorOf("[daemon]\nuser = \"\"\n");
  EXPECT_NE(errorOf("[daemon]\ngroup = \"nogroup\"\n").find("daemon.group: needs `user` as well"), std::string::npos)
      << errorOf("[daemon]\ngroup = \"nogroup\"\n");
  EXPECT_NE(errorOf("[daemon]\nuser = 65534\n").find("daemon.user"), std::string::npos);
}

TEST(Config, RejectsBadValues) {
  EXPECT_NE(errorOf("[svcd]\n").find("test.toml:1:2: svcd: unknown key (sections are [log], [daemon], [storage], [svc], [[group]], [[host]])"), std::string::npos) << errorOf("[svcd]\n");
  EXPECT_NE(errorOf("[log]\nlevel = \"loud\"\n").find("log.level: expected one of"), std::string::npos);
  EXPECT_NE(errorOf("[daemon]\nstate_dir = \"run\"\n").find("expected an absolute directory path"), std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname=\"a/b\"\n").find("not a host name"), std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname=\"a\"\nmac=\"zz\"\n").find("expected a MAC"), std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname=\"a\"\nip=\"10.0.0.300\"\n").find("expected an IPv4"), std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname=\"a\"\ngroup=\"nope\"\n").find("no [[group]] is named 'nope'"), std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname=\"a\"\n[[host]]\nname=\"a\"\n").find("already defined at line 1"), std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname=\"a\"\nmac=\"52:54:00:00:00:01\"\n[[host]]\nname=\"b\"\nmac=\"52-54-00-00-00-01\"\n")
                .find("already belongs to host 'a'"),
            std::string::npos);
  EXPECT_NE(errorOf("[svc\n").find("test.toml:1:"), std::string::npos);
}

TEST(Config, SocketAddressParsing) {
  EXPECT_EQ(parseSocketAddress("10.0.0.1", 69)->toString(), "10.0.0.1:69");
  EXPECT_EQ(parseSocketAddress("[fe80::1]:4011", 69)->toString(), "[fe80::1]:4011");
  EXPECT_EQ(parseSocketAddress("::", 69)->toString(), "[::]:69");
  EXPECT_EQ(parseSocketAddress("10.0.0.1:0", 69)->toString(), "10.0.0.1:0");  // the kernel picks the port
  EXPECT_FALSE(parseSocketAddress("10.0.0.1:65536", 69));
  EXPECT_FALSE(parseSocketAddress("10.0.0.1:x", 69));
  EXPECT_FALSE(parseSocketAddress("host.example:69", 69));
  EXPECT_FALSE(parseSocketAddress("[::1", 69));
}

// {mac} is spelled one way in every template: lower-case, '-' between the bytes.
TEST(Config, MacTemplateText) {
  EXPECT_EQ(macTemplateText(*pxedust::MacAddress::parse("52:54:00:AB:cd:01")), "52-54-00-ab-cd-01");
}

TEST(Config, DiskErrors) {
  EXPECT_NE(errorOf("[[host]]\nname = \"a\"\nchap_secret = \"short\"\n").find("12..255"), std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname = \"a\"\nchap_user = \"u\"\n").find("chap_secret is not"), std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname = \"a\"\nmutual_chap_secret = \"0123456789abc\"\n").find("needs chap_secret"),
            std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname = \"a\"\nchap_secret = \"0123456789abc\"\nmutual_chap_secret = \"0123456789abc\"\n")
                .find("must differ"),
            std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname = \"a\"\niscsi_allow = [\"10.0.0.1/24\"]\n").find("iscsi_allow"), std::string::npos);
  EXPECT_NE(errorOf("[[host]]\nname = \"a\"\niscsi_initiators = [\"node\"]\n").find("not an iSCSI name"),
            std::string::npos);
}

TEST(Config, IscsiNames) {
  EXPECT_FALSE(checkIscsiName("iqn.2026-11.org.pxedust:node1"));
  EXPECT_FALSE(checkIscsiName("iqn.1993-08.org.debian:01:abcdef"));
  EXPECT_FALSE(checkIscsiName("eui.02004567A425678D"));
  EXPECT_FALSE(checkIscsiName("naa.52004567BA64678D"));
  EXPECT_TRUE(checkIscsiName("iqn.2026-11.org.pxedust:Node1"));  // upper case
  EXPECT_TRUE(checkIscsiName("iqn.26-11.org"));
  EXPECT_TRUE(checkIscsiName("eui.123"));
  EXPECT_TRUE(checkIscsiName(std::string(224, 'a')));
}

// check-config shows every mistake at once: each table (a section, a [[host]], a [[group]], a
// [[dhcp.subnet]]) is checked up to its first error, and every table is checked.
TEST(Config, EveryTableWithAnErrorIsReported) {
  auto e = errorOf(
      "[svc]\nroot = 5\n"                           // line 2
      "[[group]]\nname = \"lab\"\nbogus = 1\n"     // line 5
      "[[host]]\nname = \"a b\"\n"                 // line 7
      "[[host]]\nname = \"ok\"\nmac = \"zz\"\n"    // line 10
      "[[host]]\nname = \"fine\"\ngroup = \"lab\"\n"
      "[bogus]\n");                                // line 14
  std::vector<std::string> lines;
  for (std::size_t at = 0; at <= e.size();) {
    auto nl = e.find('\n', at);
    lines.push_back(e.substr(at, nl == std::string::npos ? std::string::npos : nl - at));
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
  ASSERT_EQ(lines.size(), 5u) << e;
  EXPECT_EQ(lines[0], "test.toml:2:8: svc.root: expected a string, got an integer");
  EXPECT_EQ(lines[1], "test.toml:5:1: group.bogus: unknown key");
  EXPECT_NE(lines[2].find("test.toml:7:8: host.name: 'a b' is not a host name"), std::string::npos) << lines[2];
  EXPECT_NE(lines[3].find("test.toml:10:7: host.mac: expected a MAC"), std::string::npos) << lines[3];
  EXPECT_NE(lines[4].find("test.toml:14:2: bogus: unknown key (sections are"), std::string::npos) << lines[4];
}

// Sections are loaded before hosts, but the errors are listed as the file has them.
TEST(Config, ErrorsComeInTheOrderOfTheFile) {
  EXPECT_EQ(errorOf("[[host]]\nname = \"a b\"\n[svc]\nroot = 5\n"),
            "test.toml:2:8: host.name: 'a b' is not a host name: expected letters, digits and '-' (at most 63)\n"
            "test.toml:4:8: svc.root: expected a string, got an integer");
}
