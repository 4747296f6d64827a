// The daemon's reload, in process: every service prepared, then all committed or none (Kea tests its
// configuration manager the same way, without sockets for the fakes). Fake services show the
// contract; the real TFTP and iSCSI services on loopback show the case that used to half-apply: a
// new host (an iSCSI target) together with a TFTP root that does not exist.
#include "daemon/daemon.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>

#include <asio/post.hpp>

#include "iscsi/service.hpp"
#include "iscsi/target.hpp"
#include "tftp/service.hpp"

namespace pxedust::daemon {
namespace {

namespace fs = std::filesystem;

// A service whose prepare() fails when told to; counts what happened to what it prepared.
struct Ledger {
  bool failPrepare = false;
  int prepared = 0;
  int committed = 0;
  int dropped = 0;  // staged objects destroyed without a commit
  int stopped = 0;
  std::string committedSource;  // the config each commit saw
};

class FakeService : public service::Service {
 public:
  explicit FakeService(Ledger& ledger) : ledger_(ledger) {}
  struct Staged final : service::Staged {
    Staged(Ledger& l, std::string s) : ledger(l), source(std::move(s)) {}
    ~Staged() override {
      if (!committed) ++ledger.dropped;
    }
    Ledger& ledger;
    std::string source;
    bool committed = false;
  };
  [[nodiscard]] std::string_view name() const override { return "fake"; }
  Result<std::unique_ptr<service::Staged>> prepare(const config::Config& config,
                                                   std::shared_ptr<const inventory::Inventory>) override {
    if (ledger_.failPrepare) return Error{"fake: refused"};
    ++ledger_.prepared;
    return std::unique_ptr<service::Staged>(std::make_unique<Staged>(ledger_, config.source));
  }
  void commit(std::unique_ptr<service::Staged> staged) noexcept override {
    auto& s = static_cast<Staged&>(*staged);
    s.committed = true;
    ++ledger_.committed;
    ledger_.committedSource = s.source;
  }
  void stopAccepting() override { ++ledger_.stopped; }
  void abort() override {}
  [[nodiscard]] bool busy() const override { return false; }
  [[nodiscard]] std::vector<std::string> endpoints() const override { return {}; }
  void collect(metrics::Writer&) const override {}

 private:
  Ledger& ledger_;
};

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("pxedust-daemon-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "tftp");
    fs::create_directories(dir_ / "store");
  }
  void TearDown() override { fs::remove_all(dir_); }

  config::Config load(const std::string& text, const std::string& source = "test.toml") {
    return config::loadString("[storage]\ndir = \"" + (dir_ / "store").string() + "\"\n" + text, source,
                              standardSchema());
  }
  ServiceSpec fake(const std::string& name, Ledger& ledger, bool* wanted = nullptr) {
    return ServiceSpec{name, [wanted](const config::Config&) { return wanted ? *wanted : true; }, false,
                       [&ledger](const Runtime&) { return std::make_unique<FakeService>(ledger); }};
  }

  fs::path dir_;
};

TEST_F(DaemonTest, AReloadOneServiceRefusesChangesNoService) {
  Ledger a, b;
  Daemon d("test.toml", load("", "v1"), {fake("a", a), fake("b", b)});
  ASSERT_TRUE(d.apply(load("", "v1")).ok());
  EXPECT_EQ(a.committedSource, "v1");
  EXPECT_EQ(b.committedSource, "v1");

  b.failPrepare = true;
  auto r = d.apply(load("", "v2"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "fake: refused");
  // a prepared v2 but never committed it: what it staged was dropped.
  EXPECT_EQ(a.prepared, 2);
  EXPECT_EQ(a.committed, 1);
  EXPECT_EQ(a.dropped, 1);
  EXPECT_EQ(a.committedSource, "v1");
  EXPECT_EQ(b.committedSource, "v1");

  b.failPrepare = false;
  ASSERT_TRUE(d.apply(load("", "v3")).ok());
  EXPECT_EQ(a.committedSource, "v3");
  EXPECT_EQ(b.committedSource, "v3");
  EXPECT_EQ(a.dropped, 1);
}

TEST_F(DaemonTest, ARefusedReloadDoesNotStartOrStopServices) {
  Ledger a, b;
  bool aWanted = false;
  Daemon d("test.toml", load(""), {fake("a", a, &aWanted), fake("b", b)});
  ASSERT_TRUE(d.apply(load("")).ok());
  EXPECT_EQ(d.find("a"), nullptr);

  // The config adds a, but b refuses: a is not started.
  aWanted = true;
  b.failPrepare = true;
  ASSERT_FALSE(d.apply(load("")).ok());
  EXPECT_EQ(d.find("a"), nullptr);
  EXPECT_EQ(a.committed, 0);
  EXPECT_EQ(a.dropped, 1);

  b.failPrepare = false;
  ASSERT_TRUE(d.apply(load("")).ok());
  ASSERT_NE(d.find("a"), nullptr);

  // The config removes a, but b refuses: a keeps running.
  aWanted = false;
  b.failPrepare = true;
  ASSERT_FALSE(d.apply(load("")).ok());
  EXPECT_NE(d.find("a"), nullptr);
  EXPECT_EQ(a.stopped, 0);

  b.failPrepare = false;
  ASSERT_TRUE(d.apply(load("")).ok());
  EXPECT_EQ(d.find("a"), nullptr);
  EXPECT_EQ(a.stopped, 1);
}

// The reproduction from the report: TFTP and iSCSI configured; a reload adds a host with a disk and
// names a TFTP root that does not exist. It used to be refused and yet add the host's target.
TEST_F(DaemonTest, ARefusedReloadAddsNoIscsiTarget) {
  auto base = [&](const std::string& tftpRoot, bool withNode2) {
    std::string text = "[tftp]\nlisten = [\"127.0.0.1:0\"]\nroot = \"" + tftpRoot +
                       "\"\n"
                       "[iscsi]\nlisten = [\"127.0.0.1:0\"]\n"
                       "[[host]]\nname = \"node1\"\nip = \"127.0.0.1\"\nimage = \"demo\"\n";
    if (withNode2) text += "[[host]]\nname = \"node2\"\nip = \"127.0.0.2\"\nimage = \"demo\"\n";
    return load(text);
  };
  auto first = base((dir_ / "tftp").string(), false);
  Daemon d("test.toml", first);
  ASSERT_TRUE(d.apply(first).ok());
  ASSERT_NE(d.iscsi(), nullptr);
  ASSERT_NE(d.tftp(), nullptr);
  auto targets = [&] {
    std::vector<std::string> names;
    for (const auto& [name, t] : d.iscsi()->registry()->targets()) names.push_back(t.host.name);
    return names;
  };
  EXPECT_EQ(targets(), std::vector<std::string>{"node1"});
  auto tftpEndpoints = d.tftp()->listenEndpoints();

  auto r = d.apply(base((dir_ / "no-such-root").string(), true));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no-such-root"), std::string::npos) << r.error().message;
  EXPECT_EQ(targets(), std::vector<std::string>{"node1"});
  EXPECT_EQ(d.tftp()->listenEndpoints(), tftpEndpoints);

  ASSERT_TRUE(d.apply(base((dir_ / "tftp").string(), true)).ok());
  EXPECT_EQ(targets(), (std::vector<std::string>{"node1", "node2"}));
  EXPECT_EQ(d.tftp()->listenEndpoints(), tftpEndpoints);  // the listener is kept across the reload
}

std::size_t openFds() {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator("/proc/self/fd"), fs::directory_iterator{}));
}

// An address that cannot be bound refuses the reload; what the other services bound for it (a new
// TFTP listener and its reply socket) is closed again.
TEST_F(DaemonTest, AnAddressInUseRefusesTheReloadAndClosesWhatOthersBound) {
  asio::io_context io;
  asio::ip::tcp::acceptor taken(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto busyPort = taken.local_endpoint().port();
  auto cfg = [&](const std::string& tftpListen, const std::string& iscsiListen) {
    return load("[tftp]\nlisten = [" + tftpListen + "]\nroot = \"" + (dir_ / "tftp").string() +
                "\"\n[iscsi]\nlisten = [" + iscsiListen + "]\n");
  };
  auto first = cfg("\"127.0.0.1:0\"", "\"127.0.0.1:0\"");
  Daemon d("test.toml", first);
  ASSERT_TRUE(d.apply(first).ok());
  auto tftpBefore = d.tftp()->listenEndpoints();
  auto iscsiBefore = d.iscsi()->listenEndpoints();
  const auto fdsBefore = openFds();

  auto r = d.apply(cfg("\"127.0.0.1:0\", \"127.0.0.2:0\"", "\"127.0.0.1:0\", \"127.0.0.1:" + std::to_string(busyPort) + "\""));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(std::to_string(busyPort)), std::string::npos) << r.error().message;
  EXPECT_EQ(d.tftp()->listenEndpoints(), tftpBefore);
  EXPECT_EQ(d.iscsi()->listenEndpoints(), iscsiBefore);
  EXPECT_EQ(openFds(), fdsBefore);
}

// A program that sees daemon.json say "running" reads hosts.json next: that must be this run's, not
// one an earlier run left in the state directory. The fake service looks at hosts.json at the moment
// daemon.json is written (its endpoints are part of it), then asks the daemon to stop.
TEST_F(DaemonTest, HostsJsonOfThisRunIsWrittenBeforeDaemonJsonSaysRunning) {
  const auto state = dir_ / "state";
  fs::create_directories(state);
  std::ofstream(state / "hosts.json") << "{\"pid\": 1, \"hosts\": []}\n";

  struct Peek final : FakeService {
    Peek(Ledger& l, event::Loop& loop, Daemon*& daemon, fs::path file, std::string& seen)
        : FakeService(l), loop_(loop), daemon_(daemon), file_(std::move(file)), seen_(seen) {}
    [[nodiscard]] std::vector<std::string> endpoints() const override {
      if (seen_.empty()) {  // the first daemon.json: "running"
        std::ifstream in(file_);
        seen_.assign(std::istreambuf_iterator<char>(in), {});
        asio::post(loop_.io(), [d = daemon_] { d->shutdown(); });
      }
      return {};
    }
    event::Loop& loop_;
    Daemon*& daemon_;
    fs::path file_;
    std::string& seen_;
  };
  Ledger ledger;
  Daemon* daemon = nullptr;
  std::string seen;
  std::vector<ServiceSpec> specs{{"fake", [](const config::Config&) { return true; }, false,
                                  [&](const Runtime& rt) {
                                    return std::make_unique<Peek>(ledger, rt.loop, daemon, state / "hosts.json", seen);
                                  }}};
  Daemon d("test.toml", load("[daemon]\nstate_dir = \"" + state.string() + "\"\n"), specs);
  daemon = &d;
  ASSERT_EQ(d.run(), 0);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(nlohmann::json::parse(seen).value("pid", 0), ::getpid()) << seen;
}

}  // namespace
}  // namespace pxedust::daemon
