// The sd_notify(3) protocol as pxedust speaks it: $NOTIFY_SOCKET's two address forms, the message
// texts, and datagrams received on real unix sockets (a path in a temp dir, an abstract name).
#include "daemon/notify.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/fd.hpp"

namespace pxedust::daemon {
namespace {

namespace fs = std::filesystem;

std::string sunPath(const NotifyAddress& a) {
  return std::string(a.addr.sun_path, a.length - offsetof(sockaddr_un, sun_path));
}

TEST(Notify, PathAddress) {
  auto a = notifyAddress("/run/systemd/notify");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->addr.sun_family, AF_UNIX);
  // The path with its terminating NUL.
  EXPECT_EQ(a->length, offsetof(sockaddr_un, sun_path) + 20);
  EXPECT_EQ(sunPath(*a), std::string("/run/systemd/notify\0", 20));
}

TEST(Notify, AbstractAddress) {
  auto a = notifyAddress("@/org/freedesktop/systemd1/notify");
  ASSERT_TRUE(a) << a.error().message;
  // A leading NUL instead of '@', and no terminating NUL: the length ends the name.
  EXPECT_EQ(a->length, offsetof(sockaddr_un, sun_path) + 33);
  EXPECT_EQ(sunPath(*a), std::string("\0/org/freedesktop/systemd1/notify", 33));
}

TEST(Notify, AddressLimits) {
  const std::size_t room = sizeof(sockaddr_un{}.sun_path);  // 108 on Linux
  EXPECT_TRUE(notifyAddress("/" + std::string(room - 2, 'a')));   // 107 bytes and the NUL
  EXPECT_FALSE(notifyAddress("/" + std::string(room - 1, 'a')));  // no room for the NUL
  EXPECT_TRUE(notifyAddress("@" + std::string(room - 1, 'a')));   // abstract: all 108 bytes are the name
  EXPECT_FALSE(notifyAddress("@" + std::string(room, 'a')));
  for (const char* bad : {"", "@", "/", "notify", "run/notify", "vsock:2:1234"}) {
    auto a = notifyAddress(bad);
    EXPECT_FALSE(a) << bad;
    if (!a) {
      EXPECT_NE(a.error().message.find("NOTIFY_SOCKET"), std::string::npos) << a.error().message;
    }
  }
}

TEST(Notify, MessageTexts) {
  EXPECT_EQ(readyMessage("serving tftp, http; 3 hosts", 4242), "READY=1\nSTATUS=serving tftp, http; 3 hosts\nMAINPID=4242\n");
  EXPECT_EQ(reloadingMessage("reloading /etc/pxedust/pxedust.toml", 123456789),
            "RELOADING=1\nSTATUS=reloading /etc/pxedust/pxedust.toml\nMONOTONIC_USEC=123456789\n");
  EXPECT_EQ(stoppingMessage("stopping; 2 in flight"), "STOPPING=1\nSTATUS=stopping; 2 in flight\n");
  // A multi-line error (the config loader reports every error, one a line) stays one STATUS= line:
  // another line would be read as another variable.
  EXPECT_EQ(statusLine("a.toml:1:1: x\r\na.toml:2:1: y\n"), "a.toml:1:1: x; a.toml:2:1: y");
  EXPECT_EQ(readyMessage("reload refused: a\nREADY=0", 1), "READY=1\nSTATUS=reload refused: a; READY=0\nMAINPID=1\n");
}

// A datagram socket bound to `address`, as the service manager's.
UniqueFd bindReceiver(const NotifyAddress& address) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(fd.valid());
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address.addr), address.length), 0) << std::strerror(errno);
  return fd;
}

std::string receive(const UniqueFd& fd) {
  char buf[4096];
  ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);  // blocking: the datagram was sent already
  return n < 0 ? std::string() : std::string(buf, static_cast<std::size_t>(n));
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "pxedust-notify-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

TEST(Notify, SendsToAPathSocket) {
  TempDir dir;
  const std::string where = (dir.path / "notify").string();
  auto address = notifyAddress(where);
  ASSERT_TRUE(address);
  auto receiver = bindReceiver(*address);
  SystemdNotifier notifier(where.c_str());
  ASSERT_TRUE(notifier.enabled());
  notifier.ready("serving tftp; 0 hosts");
  EXPECT_EQ(receive(receiver), readyMessage("serving tftp; 0 hosts", ::getpid()));
  notifier.reloading("reloading x");
  const auto reloading = receive(receiver);
  EXPECT_EQ(reloading.rfind("RELOADING=1\nSTATUS=reloading x\nMONOTONIC_USEC=", 0), 0U) << reloading;
  notifier.stopping("stopping; 0 in flight");
  EXPECT_EQ(receive(receiver), "STOPPING=1\nSTATUS=stopping; 0 in flight\n");
}

TEST(Notify, SendsToAnAbstractSocket) {
  const std::string where = "@pxedust-notify-test-" + std::to_string(::getpid());
  auto address = notifyAddress(where);
  ASSERT_TRUE(address);
  auto receiver = bindReceiver(*address);
  SystemdNotifier notifier(where.c_str());
  ASSERT_TRUE(notifier.enabled());
  EXPECT_TRUE(notifier.send("READY=1\n"));
  EXPECT_EQ(receive(receiver), "READY=1\n");
}

TEST(Notify, OffWithoutOrWithABadNotifySocket) {
  SystemdNotifier unset(nullptr);
  EXPECT_FALSE(unset.enabled());
  EXPECT_FALSE(unset.send("READY=1\n"));
  SystemdNotifier empty("");
  EXPECT_FALSE(empty.enabled());
  SystemdNotifier relative("notify");
  EXPECT_FALSE(relative.enabled());
  TempDir dir;
  SystemdNotifier missing((dir.path / "nobody-listens").string().c_str());
  EXPECT_FALSE(missing.enabled());
  missing.ready("serving nothing; 0 hosts");  // does nothing, throws nothing
}

TEST(Notify, AFailedSendIsLoggedOnce) {
  TempDir dir;
  const std::string where = (dir.path / "notify").string();
  auto address = notifyAddress(where);
  ASSERT_TRUE(address);
  SystemdNotifier notifier(nullptr);
  {
    auto receiver = bindReceiver(*address);
    notifier = SystemdNotifier(where.c_str());
    ASSERT_TRUE(notifier.enabled());
  }  // the receiver goes away: every send fails from here on (ECONNREFUSED)
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(notifier.send("READY=1\n"));
  EXPECT_FALSE(notifier.send("STOPPING=1\n"));
  notifier.stopping("again");
  const std::string log = ::testing::internal::GetCapturedStderr();
  std::size_t warnings = 0;
  for (auto at = log.find("daemon.notify_failed"); at != std::string::npos; at = log.find("daemon.notify_failed", at + 1))
    ++warnings;
  EXPECT_EQ(warnings, 1U) << log;
}

}  // namespace
}  // namespace pxedust::daemon
