// [daemon] user: the user database lookups, the kept capability set, the directories the daemon
// writes, and (as root, in a forked child so the test process keeps its own identity) the drop
// itself: what pxedust made is chowned, the child ends up as the user with exactly the kept set, and
// a directory the user cannot write fails the start with its path and the fix.
#include "daemon/privileges.hpp"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "daemon/daemon.hpp"

namespace pxedust::daemon {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "pxedust-priv-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path = tmpl;
    fs::permissions(path, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

config::Config loadText(const std::string& text) { return config::loadString(text, "t.toml", standardSchema()); }

TEST(Privileges, LooksUpUsersAndGroups) {
  auto root = lookupIdentity("root", std::nullopt);
  ASSERT_TRUE(root) << root.error().message;
  EXPECT_EQ(root->uid, 0U);
  EXPECT_EQ(root->gid, 0U);
  EXPECT_EQ(root->group, "root");
  EXPECT_NE(std::find(root->groups.begin(), root->groups.end(), 0U), root->groups.end());
  auto withGroup = lookupIdentity("root", std::string("root"));
  ASSERT_TRUE(withGroup);
  EXPECT_EQ(withGroup->gid, 0U);

  auto noUser = lookupIdentity("pxedust-no-such-user", std::nullopt);
  ASSERT_FALSE(noUser);
  EXPECT_EQ(noUser.error().message, "[daemon] user \"pxedust-no-such-user\": no such user");
  auto noGroup = lookupIdentity("root", std::string("pxedust-no-such-group"));
  ASSERT_FALSE(noGroup);
  EXPECT_EQ(noGroup.error().message, "[daemon] group \"pxedust-no-such-group\": no such group");
}

TEST(Privileges, KeptCapabilities) {
  EXPECT_EQ(keptCapabilities(),
            (1ULL << CAP_NET_BIND_SERVICE) | (1ULL << CAP_NET_RAW) | (1ULL << CAP_NET_ADMIN));
  EXPECT_EQ(capabilityNames(keptCapabilities()), "cap_net_bind_service,cap_net_raw,cap_net_admin");
  EXPECT_EQ(capabilityNames(0), "none");
  EXPECT_EQ(capabilityNames(1ULL << CAP_NET_RAW | 1ULL << CAP_SYS_ADMIN), "cap_net_raw,cap_21");
}

TEST(Privileges, WritableDirs) {
  auto plain = loadText("[daemon]\nstate_dir = \"/run/px\"\n[storage]\ndir = \"/var/lib/px\"\n");
  auto dirs = writableDirs(plain);
  ASSERT_EQ(dirs.size(), 2U);
  EXPECT_EQ(dirs[0].path, "/run/px");
  EXPECT_EQ(dirs[1].path, "/var/lib/px");
  // A DHCP server writes its lease journal (default: in the store); a proxy keeps no leases.
  auto server = loadText("[storage]\ndir = \"/var/lib/px\"\n[dhcp]\ninterfaces = [\"lo\"]\nlease_file = \"/var/db/px/leases\"\n"
                         "[[dhcp.subnet]]\nsubnet = \"10.9.0.0/24\"\n");
  dirs = writableDirs(server);
  ASSERT_EQ(dirs.size(), 3U);
  EXPECT_EQ(dirs[2].path, "/var/db/px");
  auto proxy = loadText("[dhcp]\ninterfaces = [\"lo\"]\nmode = \"proxy\"\n");
  EXPECT_EQ(writableDirs(proxy).size(), 2U);
}

TEST(Privileges, MissingPaths) {
  TempDir tmp;
  fs::create_directory(tmp.path / "there");
  const auto t = tmp.path.string();
  auto missing = missingPaths({t + "/a/b/c", t + "/a/x", t + "/there", t + "/there/new"});
  EXPECT_EQ(missing, (std::vector<std::string>{t + "/a", t + "/a/b", t + "/a/b/c", t + "/a/x", t + "/there/new"}));
}

TEST(Privileges, SwitchingNeedsRoot) {
  if (::geteuid() == 0) GTEST_SKIP() << "runs as root: the refusal is for everyone else";
  auto c = loadText("[daemon]\nuser = \"root\"\n");
  auto drop = PrivilegeDrop::prepare(c);
  ASSERT_FALSE(drop);
  EXPECT_NE(drop.error().message.find("only root can switch users: start it as root, or as root"), std::string::npos)
      << drop.error().message;
}

// Runs prepare() and commit() in a child; returns the error text ("" on success) and, on success,
// the child's /proc/self/status lines Uid, Gid, CapEff, CapPrm, CapInh, CapAmb after the drop.
std::string dropInChild(const config::Config& c) {
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    std::string out;
    auto drop = PrivilegeDrop::prepare(c);
    if (!drop) {
      out = "prepare: " + drop.error().message;
    } else if (auto r = drop->commit(); !r) {
      out = "commit: " + r.error().message;
    } else {
      std::ifstream status("/proc/self/status");
      for (std::string line; std::getline(status, line);)
        for (const char* key : {"Uid:", "Gid:", "CapEff:", "CapPrm:", "CapInh:", "CapAmb:"})
          if (line.rfind(key, 0) == 0) out += line + "\n";
    }
    [[maybe_unused]] auto n = ::write(fds[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char buf[1024];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return out;
}

passwd* nobody() { return ::getpwnam("nobody"); }

TEST(Privileges, DropsToTheUserWithTheKeptSet) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  if (nobody() == nullptr) GTEST_SKIP() << "no user nobody";
  const uid_t uid = nobody()->pw_uid;
  const gid_t gid = nobody()->pw_gid;
  TempDir tmp;
  const auto state = tmp.path / "state";
  const auto store = tmp.path / "store";
  fs::create_directory(store);  // made by the daemon in real life; here only its subdirectory is new
  fs::create_directory(store / "images");
  fs::create_directory(store / "overlays");
  ASSERT_EQ(::chown(store.c_str(), uid, gid), 0);
  auto c = loadText(fmt::format("[daemon]\nuser = \"nobody\"\nstate_dir = \"{}\"\n[storage]\ndir = \"{}\"\n",
                                state.string(), store.string()));
  // As at a real start: prepare() notes the state dir missing, it is made (StateFiles::open) as
  // root, and commit() gives it to the user.
  pid_t pid = ::fork();
  if (pid == 0) {
    auto drop = PrivilegeDrop::prepare(c);
    if (!drop) ::_exit(2);
    fs::create_directory(state);  // as StateFiles::open() would, between the two
    ::_exit(drop->commit() ? 0 : 3);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  struct stat st {};
  ASSERT_EQ(::stat(state.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, uid) << "the state dir pxedust made is the user's";
  ASSERT_EQ(::stat((store / "images").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0U) << "what existed before is left alone";

  // Now everything exists and is writable: the child reports who it is afterwards.
  const auto out = dropInChild(c);
  const auto u = std::to_string(uid);
  const auto g = std::to_string(gid);
  EXPECT_NE(out.find("Uid:\t" + u + "\t" + u + "\t" + u + "\t" + u + "\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Gid:\t" + g + "\t" + g + "\t" + g + "\t" + g + "\n"), std::string::npos) << out;
  const auto kept = fmt::format("{:016x}", keptCapabilities());
  EXPECT_NE(out.find("CapEff:\t" + kept + "\n"), std::string::npos) << out;
  EXPECT_NE(out.find("CapPrm:\t" + kept + "\n"), std::string::npos) << out;
  EXPECT_NE(out.find("CapInh:\t0000000000000000\n"), std::string::npos) << out;
  EXPECT_NE(out.find("CapAmb:\t0000000000000000\n"), std::string::npos) << out;
}

TEST(Privileges, ADirTheUserCannotWriteFailsTheStart) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  if (nobody() == nullptr) GTEST_SKIP() << "no user nobody";
  TempDir tmp;
  const auto state = tmp.path / "state";
  const auto store = tmp.path / "store";
  fs::create_directory(state);  // root's, 0755: there before pxedust, so not chowned
  auto c = loadText(fmt::format("[daemon]\nuser = \"nobody\"\nstate_dir = \"{}\"\n[storage]\ndir = \"{}\"\n",
                                state.string(), store.string()));
  fs::create_directory(store);
  ASSERT_EQ(::chown(store.c_str(), nobody()->pw_uid, nobody()->pw_gid), 0);
  const auto out = dropInChild(c);
  auto id = lookupIdentity("nobody", std::nullopt);
  ASSERT_TRUE(id);
  EXPECT_EQ(out, fmt::format("commit: state dir ([daemon] state_dir) {} is not writable by user nobody (Permission denied): "
                             "make it theirs (chown nobody:{} {}) and make every directory above it searchable by them",
                             state.string(), id->group, state.string()));
}

}  // namespace
}  // namespace pxedust::daemon
