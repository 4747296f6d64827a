// The real HttpService on loopback with a scripted client: keep-alive, pipelining, ranges and
// preconditions, per-host files, the root, the limits (slow heads, clients that stop reading, too
// many connections), routes and boot events. curl and wrk drive it in tests/integration/http.
#include "http/service.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/post.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "config/config.hpp"

using namespace pxedust;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct Response {
  int status = 0;
  std::string head;
  std::string body;
  [[nodiscard]] bool has(std::string_view field) const { return head.find(field) != std::string::npos; }
};

class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void send(std::string_view bytes) { (void)::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL); }
  void receiveBuffer(int bytes) { ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes); }

  // One response; a HEAD's or a 304's body is empty whatever its Content-Length says.
  std::optional<Response> read(bool bodyless = false) {
    Response r;
    std::size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos)
      if (!fill()) return std::nullopt;
    r.head = buffer_.substr(0, end + 4);
    buffer_.erase(0, end + 4);
    r.status = std::stoi(r.head.substr(9, 3));
    std::size_t length = 0;
    if (auto at = r.head.find("Content-Length: "); at != std::string::npos) length = std::stoul(r.head.substr(at + 16));
    if (bodyless || r.status == 304) length = 0;
    while (buffer_.size() < length)
      if (!fill()) return std::nullopt;
    r.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return r;
  }
  Response get(std::string_view path, std::string_view extra = {}) {
    send(fmt::format("GET {} HTTP/1.1\r\nHost: t\r\n{}\r\n", path, extra));
    auto r = read();
    return r ? *r : Response{};
  }
  // Whether the server closed the connection (reads end) within the receive timeout.
  bool closedByServer() {
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }
  [[nodiscard]] bool connected() const { return connected_; }
  // Reads until `text` has arrived (true), or the connection ends or times out (false).
  bool readUntil(std::string_view text) {
    while (buffer_.find(text) == std::string::npos)
      if (!fill()) return false;
    return true;
  }
  [[nodiscard]] const std::string& received() const { return buffer_; }

 private:
  bool fill() {
    char chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  int fd_;
  bool connected_ = false;
  std::string buffer_;
};

class HttpServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);  // as the daemon does: sendfile to a closed peer must not kill us
    root_ = fs::temp_directory_path() / ("pxedust-http-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "hosts" / "alpha");
    fs::create_directories(root_ / "dir");
    for (int i = 0; i < 100000; ++i) big_ += static_cast<char>('a' + i % 26);
    write("big", big_);
    write("boot.ipxe", "#!ipxe\necho generic\n");
    write("hosts/alpha/boot.ipxe", "#!ipxe\necho alpha\n");
    fs::create_directory_symlink("/etc", root_ / "escape");
    cfg_.root = root_.string();
    cfg_.listen = {{asio::ip::make_address("127.0.0.1"), 0}};
  }
  void TearDown() override {
    stop();
    fs::remove_all(root_);
  }
  void write(const std::string& name, const std::string& content) { std::ofstream(root_ / name) << content; }

  void start(std::string hostsToml = "") {
    auto c = config::loadString(hostsToml, "hosts.toml", {http::schema()});
    service_ = std::make_unique<http::HttpService>(loop_);
    service_->setEventSink([this](const boot::Event& e) {
      if (const auto* f = std::get_if<boot::FileEvent>(&e.what)) events_.push_back(*f);
      if (const auto* h = std::get_if<boot::HostEvent>(&e.what)) ups_.push_back(*h);
    });
    service_->setRoute("/hello", [](const http::wire::Request& r, std::string_view body) {
      return http::Reply{200, "text/plain", fmt::format("{} {} {}", r.methodText, r.query, body), {}};
    });
    auto r = service_->apply(cfg_, inventory::Inventory::fromConfig(c));
    ASSERT_TRUE(r.ok()) << r.error().message;
    port_ = service_->listenEndpoints().at(0).port();
    thread_ = std::thread([this] { loop_.run(); });
  }
  void stop() {
    if (!thread_.joinable()) return;
    asio::post(loop_.io(), [this] {
      service_->stopAccepting();
      service_->abort();
    });
    std::this_thread::sleep_for(50ms);
    loop_.stop();
    thread_.join();
  }
  // Runs `fn` on the loop and waits for it (the service is the loop's alone).
  template <typename F>
  auto onLoop(F fn) {
    std::packaged_task<decltype(fn())()> task(fn);
    auto done = task.get_future();
    asio::post(loop_.io(), [&task] { task(); });
    return done.get();
  }
  std::uint64_t drops(http::Drop d) {
    return onLoop([&] { return service_->stats().drops[static_cast<std::size_t>(d)]; });
  }

  fs::path root_;
  std::string big_;
  http::Config cfg_;
  event::Loop loop_;
  std::unique_ptr<http::HttpService> service_;
  std::vector<boot::FileEvent> events_;  // touched on the loop; read after stop()
  std::vector<boot::HostEvent> ups_;      // the same
  std::thread thread_;
  std::uint16_t port_ = 0;
};

}  // namespace

TEST_F(HttpServiceTest, WholeFilesOnOneKeptAliveConnection) {
  start();
  Client c(port_);
  auto a = c.get("/big");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, big_);
  EXPECT_TRUE(a.has("Accept-Ranges: bytes"));
  EXPECT_TRUE(a.has("ETag: \""));
  EXPECT_TRUE(a.has("Last-Modified: "));
  EXPECT_TRUE(a.has("Content-Type: application/octet-stream"));
  auto b = c.get("/boot.ipxe");
  EXPECT_EQ(b.status, 200);
  EXPECT_EQ(b.body, "#!ipxe\necho generic\n");
  EXPECT_TRUE(b.has("Content-Type: text/plain"));
  EXPECT_FALSE(b.has("Connection: close"));
}

TEST_F(HttpServiceTest, PipelinedRequestsAreAnsweredInOrder) {
  start();
  Client c(port_);
  c.send("GET /boot.ipxe HTTP/1.1\r\nHost: t\r\n\r\nHEAD /big HTTP/1.1\r\nHost: t\r\n\r\n"
         "GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  auto one = c.read();
  auto two = c.read(true);
  auto three = c.read();
  ASSERT_TRUE(one && two && three);
  EXPECT_EQ(one->body, "#!ipxe\necho generic\n");
  EXPECT_EQ(two->status, 200);
  EXPECT_TRUE(two->has("Content-Length: 100000"));
  EXPECT_EQ(three->body, big_);
  EXPECT_TRUE(three->has("Connection: close"));
  EXPECT_TRUE(c.closedByServer());
}

TEST_F(HttpServiceTest, RangesAndPreconditions) {
  start();
  Client c(port_);
  auto part = c.get("/big", "Range: bytes=100-199\r\n");
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, big_.substr(100, 100));
  EXPECT_TRUE(part.has("Content-Range: bytes 100-199/100000"));
  auto tail = c.get("/big", "Range: bytes=-10\r\n");
  EXPECT_EQ(tail.body, big_.substr(99990));
  auto bad = c.get("/big", "Range: bytes=100000-\r\n");
  EXPECT_EQ(bad.status, 416);
  EXPECT_TRUE(bad.has("Content-Range: bytes */100000"));
  auto ignored = c.get("/big", "Range: bytes=5-1\r\n");
  EXPECT_EQ(ignored.status, 200);
  EXPECT_EQ(ignored.body.size(), big_.size());

  auto whole = c.get("/big");
  auto at = whole.head.find("ETag: ");
  std::string etag = whole.head.substr(at + 6, whole.head.find("\r\n", at) - at - 6);
  auto same = c.get("/big", "If-None-Match: " + etag + "\r\n");
  EXPECT_EQ(same.status, 304);
  EXPECT_TRUE(same.body.empty());
  auto stale = c.get("/big", "If-Range: \"stale\"\r\nRange: bytes=0-9\r\n");
  EXPECT_EQ(stale.status, 200);
  auto fresh = c.get("/big", "If-Range: " + etag + "\r\nRange: bytes=0-9\r\n");
  EXPECT_EQ(fresh.status, 206);
  EXPECT_EQ(fresh.body, big_.substr(0, 10));
}

TEST_F(HttpServiceTest, PerHostFilesAndTheRoot) {
  cfg_.perHost = {{"boot.ipxe", "hosts/{name}/boot.ipxe"}};
  start("[[host]]\nname = \"alpha\"\nip = \"127.0.0.1\"\n");
  Client c(port_);
  EXPECT_EQ(c.get("/boot.ipxe").body, "#!ipxe\necho alpha\n");
  EXPECT_EQ(c.get("/missing").status, 404);
  EXPECT_EQ(c.get("/dir").status, 404);
  EXPECT_EQ(c.get("/../etc/passwd").status, 403);
  EXPECT_EQ(c.get("/%2e%2e/etc/passwd").status, 403);
  EXPECT_EQ(c.get("/escape/passwd").status, 403);  // a symlink out of the root
  EXPECT_EQ(c.get("/big").status, 200);            // the connection survived every refusal
}

// GET /ipxe/<mac>: each host's script made when it is asked for, from its keys, its template and
// [http]'s defaults, so an edited template counts at the next request.
TEST_F(HttpServiceTest, IpxeScriptsAreRenderedPerHostAtEachRequest) {
  cfg_.boot.kernel = "vmlinuz";
  cfg_.boot.initrd = std::vector<std::string>{"initrd.img"};
  cfg_.boot.kernelArgs = "quiet";
  write("tmpl.ipxe", "#!ipxe\necho {name} {ip} {kernel_args} ${net0/mac}\n");
  start(R"(
[[host]]
name = "alpha"
mac = "52:54:00:00:00:01"
ip = "127.0.0.1"
kernel_args = "console=ttyS0"
[[host]]
name = "beta"
mac = "52:54:00:00:00:02"
ipxe_template = "tmpl.ipxe"
[[host]]
name = "gamma"
mac = "52:54:00:00:00:03"
ipxe_template = "missing.ipxe"
)");
  Client c(port_);
  const std::string base = fmt::format("http://127.0.0.1:{}/", port_);
  auto alpha = c.get("/ipxe/52-54-00-00-00-01");
  EXPECT_EQ(alpha.status, 200);
  EXPECT_TRUE(alpha.has("Cache-Control: no-store"));
  EXPECT_EQ(alpha.body, "#!ipxe\n# pxedust: host alpha (52-54-00-00-00-01), 127.0.0.1\n"
                        "kernel " + base + "vmlinuz console=ttyS0\ninitrd " + base + "initrd.img\nboot\n");
  EXPECT_EQ(c.get("/ipxe/52:54:00:00:00:02").body, "#!ipxe\necho beta 127.0.0.1 quiet ${net0/mac}\n");
  write("tmpl.ipxe", "#!ipxe\necho changed {name}\n");
  EXPECT_EQ(c.get("/ipxe/52-54-00-00-00-02").body, "#!ipxe\necho changed beta\n");
  auto gamma = c.get("/ipxe/52-54-00-00-00-03");
  EXPECT_EQ(gamma.status, 500);
  EXPECT_NE(gamma.body.find("ipxe_template missing.ipxe"), std::string::npos) << gamma.body;
  EXPECT_NE(c.get("/ipxe/02-00-00-00-00-09").body.find("# pxedust: client 02-00-00-00-00-09, 127.0.0.1\nkernel "),
            std::string::npos);
  EXPECT_EQ(c.get("/ipxe/not-a-mac").status, 404);
  stop();
  ASSERT_GE(events_.size(), 6u);
  EXPECT_EQ(events_[0].result, boot::FileResult::Completed);
  EXPECT_EQ(events_[0].requested, "ipxe/52-54-00-00-00-01");  // as files are named: from the root
  EXPECT_EQ(events_[3].result, boot::FileResult::Failed);
  EXPECT_NE(events_[3].reason.find("missing.ipxe"), std::string::npos) << events_[3].reason;
}

// Server-Sent Events: the head has no length, each published message reaches the follower, a
// stale one is skipped for the newest, and stopping the service ends the stream.
TEST_F(HttpServiceTest, EventStreamsPushTheLatestMessage) {
  auto stream = std::make_shared<http::EventStream>();
  stream->publish("hosts", std::make_shared<const std::string>("{\"n\":0}"));
  start();
  onLoop([&] {
    service_->setStream("/events", stream);
    return 0;
  });
  Client c(port_);
  c.send("GET /events HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(c.readUntil("data: {\"n\":0}\n\n")) << c.received();
  EXPECT_NE(c.received().find("Content-Type: text/event-stream"), std::string::npos);
  EXPECT_EQ(c.received().find("Content-Length"), std::string::npos);
  onLoop([&] {
    stream->publish("hosts", std::make_shared<const std::string>("{\"n\":1}"));
    stream->publish("hosts", std::make_shared<const std::string>("{\n\"n\":2}"));
    return 0;
  });
  ASSERT_TRUE(c.readUntil("event: hosts\ndata: {\ndata: \"n\":2}\n\n")) << c.received();
  EXPECT_EQ(c.received().find("\"n\":1"), std::string::npos);  // never sent: a newer one came first
  Client post(port_);
  post.send("POST /events HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(post.read()->status, 405);
  stop();
  EXPECT_TRUE(c.closedByServer());
}

TEST_F(HttpServiceTest, BadRequestsGetTheirStatusAndAClose) {
  start();
  struct Case {
    std::string request;
    int status;
  };
  const std::vector<Case> cases = {
      {"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505},
      {"BLAH\r\n\r\n", 400},
      {"GET /" + std::string(10000, 'a') + " HTTP/1.1\r\n", 414},
      {"GET / HTTP/1.1\r\nX: " + std::string(20000, 'a'), 431},
      {"GET /a%00 HTTP/1.1\r\nHost: t\r\n\r\n", 400},
      {"POST /big HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
  };
  for (const auto& k : cases) {
    Client c(port_);
    c.send(k.request);
    auto r = c.read();
    ASSERT_TRUE(r) << k.request.substr(0, 40);
    EXPECT_EQ(r->status, k.status) << k.request.substr(0, 40);
    EXPECT_TRUE(r->has("Connection: close"));
    EXPECT_TRUE(c.closedByServer());
  }
  Client after(port_);
  EXPECT_EQ(after.get("/big").body, big_);
  Client post(port_);
  EXPECT_EQ(post.get("/big", "").status, 200);
  post.send("DELETE /big HTTP/1.1\r\nHost: t\r\n\r\n");
  auto r = post.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_TRUE(r->has("Allow: GET, HEAD"));
}

TEST_F(HttpServiceTest, ASlowHeadIsCutOffAndOthersAreServed) {
  cfg_.headerTimeout = 300ms;
  start();
  Client slow(port_);
  slow.send("GET /big HTTP/1.1\r\nHo");
  Client other(port_);
  EXPECT_EQ(other.get("/big").body, big_);
  auto r = slow.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_TRUE(slow.closedByServer());
  EXPECT_EQ(drops(http::Drop::HeaderTimeout), 1u);
}

TEST_F(HttpServiceTest, AnIdleConnectionIsClosedQuietly) {
  cfg_.idleTimeout = 500ms;
  start();
  Client c(port_);
  EXPECT_EQ(c.get("/boot.ipxe").status, 200);
  EXPECT_TRUE(c.closedByServer());
  EXPECT_EQ(drops(http::Drop::HeaderTimeout), 0u);
}

TEST_F(HttpServiceTest, AClientThatStopsReadingIsCutOff) {
  cfg_.sendTimeout = 300ms;
  std::string huge(64 << 20, 'z');
  write("huge", huge);
  start();
  Client stuck(port_);
  stuck.receiveBuffer(4096);
  stuck.send("GET /huge HTTP/1.1\r\nHost: t\r\n\r\n");
  Client other(port_);
  EXPECT_EQ(other.get("/big").body, big_);
  // Waits for the cut (300 ms without progress), up to a minute on a loaded machine.
  for (int i = 0; i < 1200 && drops(http::Drop::SendTimeout) == 0; ++i) std::this_thread::sleep_for(50ms);
  EXPECT_EQ(drops(http::Drop::SendTimeout), 1u);
  stop();
  ASSERT_FALSE(events_.empty());
  const auto& last = events_.back();
  EXPECT_EQ(last.requested, "huge");
  EXPECT_EQ(last.result, boot::FileResult::Aborted);
  EXPECT_EQ(last.reason, "the client stopped reading");
}

TEST_F(HttpServiceTest, ConnectionsPerClientAreCapped) {
  cfg_.maxConnectionsPerClient = 2;
  start();
  Client a(port_), b(port_);
  EXPECT_EQ(a.get("/boot.ipxe").status, 200);
  EXPECT_EQ(b.get("/boot.ipxe").status, 200);
  Client c(port_);
  EXPECT_TRUE(c.closedByServer());
  EXPECT_EQ(drops(http::Drop::TooManyFromClient), 1u);
  EXPECT_EQ(a.get("/boot.ipxe").status, 200);
}

TEST_F(HttpServiceTest, RoutesAnswerBeforeFiles) {
  start();
  Client c(port_);
  auto r = c.get("/hello?x=1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "GET x=1 ");
  EXPECT_TRUE(r.has("Cache-Control: no-store"));
  c.send("POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nworld");
  auto p = c.read();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->body, "POST  world");
}

TEST_F(HttpServiceTest, AsyncAndPrefixRoutesAnswerLaterInOrder) {
  // An async route answers from a timer (as the daemon answers from work off the loop); the
  // pipelined request behind it waits its turn.
  start();
  onLoop([&] {
    auto timer = std::make_shared<asio::steady_timer>(loop_.io());
    service_->setAsyncRoute("/later", [timer](const http::wire::Request&, std::string_view body, http::Respond respond) {
      timer->expires_after(20ms);
      timer->async_wait([respond, b = std::string(body)](const std::error_code&) {
        respond(http::Reply{202, "text/plain", "later " + b, {}});
        respond(http::Reply{500, "text/plain", "a second answer is ignored", {}});
      });
    });
    service_->setPrefixRoute("/items/", [](const http::wire::Request& r, std::string_view, http::Respond respond) {
      respond(http::Reply{200, "text/plain", "item " + r.path.substr(7), {}});  // answered at once: fine too
    });
    service_->setPrefixRoute("/items/special/", [](const http::wire::Request&, std::string_view, http::Respond respond) {
      respond(http::Reply{200, "text/plain", "special", {}});
    });
    return 0;
  });
  Client c(port_);
  c.send("POST /later HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nokGET /items/a/b HTTP/1.1\r\nHost: t\r\n\r\n");
  auto first = c.read();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 202);
  EXPECT_EQ(first->body, "later ok");
  auto second = c.read();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body, "item a/b");
  EXPECT_EQ(c.get("/items/special/x").body, "special");  // the longest prefix wins
  EXPECT_EQ(c.get("/items").status, 404);                // a prefix route answers only below it
}

TEST_F(HttpServiceTest, AHostSaysItIsUpWithAPostFromItsAddress) {
  cfg_.apiListen = {{asio::ip::make_address("127.0.0.1"), 0}};
  start();
  Client c(port_);
  EXPECT_EQ(c.get("/boot/up").status, 405);  // a GET (a crawler, a browser) changes nothing
  c.send("POST /boot/up HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const auto api = onLoop([&] { return service_->apiEndpoints(); });
  Client management(api.at(0).port());  // the management network is not where hosts report
  management.send("POST /boot/up HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
  auto m = management.read();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 404);
  stop();
  ASSERT_EQ(ups_.size(), 1u);
  EXPECT_EQ(ups_[0].client, *boot::Ipv4::parse("127.0.0.1"));
}

TEST_F(HttpServiceTest, AHostSaysItsBootFailedWithAPostAndAReason) {
  start();
  Client c(port_);
  EXPECT_EQ(c.get("/boot/failed").status, 405);
  // Control characters (a newline, a tab) become one space; the text is cut at 240 bytes.
  const std::string reason = "ram: the image needs 390 MiB\n\tand 128 MiB to run in";
  c.send(fmt::format("POST /boot/failed HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{}", reason.size(), reason));
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const std::string longer(1000, 'x');
  c.send(fmt::format("POST /boot/failed HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{}", longer.size(), longer));
  r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  stop();
  ASSERT_EQ(ups_.size(), 2u);
  EXPECT_EQ(ups_[0].kind, boot::HostKind::Failed);
  EXPECT_EQ(ups_[0].client, *boot::Ipv4::parse("127.0.0.1"));
  EXPECT_EQ(ups_[0].reason, "ram: the image needs 390 MiB and 128 MiB to run in");
  EXPECT_EQ(ups_[1].reason, std::string(240, 'x'));
}

TEST_F(HttpServiceTest, AnApiListenAddressSeparatesTheApiFromBootFiles) {
  cfg_.apiListen = {{asio::ip::make_address("127.0.0.1"), 0}};
  start();
  const auto api = onLoop([&] { return service_->apiEndpoints(); });
  ASSERT_EQ(api.size(), 1U);
  ASSERT_NE(api[0].port(), port_);
  Client boot(port_);
  EXPECT_EQ(boot.get("/big").status, 200);
  EXPECT_EQ(boot.get("/hello").status, 404);  // routes are not on the boot network
  Client management(api[0].port());
  auto hello = management.get("/hello");
  EXPECT_EQ(hello.status, 200);
  EXPECT_EQ(hello.body, "GET  ");
  EXPECT_EQ(management.get("/big").status, 404);  // nor are files on the management one
  EXPECT_EQ(management.get("/ipxe/52-54-00-00-00-01").status, 404);
}

TEST_F(HttpServiceTest, WholeFilesAreBootEventsAndRangesAreNot) {
  start();
  Client c(port_);
  c.get("/big");
  c.get("/big", "Range: bytes=0-9\r\n");
  c.send("HEAD /big HTTP/1.1\r\nHost: t\r\n\r\n");
  c.read(true);
  c.get("/nothing-here");
  stop();
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[0].protocol, boot::FileProtocol::Http);
  EXPECT_EQ(events_[0].result, boot::FileResult::Completed);
  EXPECT_EQ(events_[0].requested, "big");
  EXPECT_EQ(events_[0].bytes, 100000u);
  EXPECT_EQ(events_[0].client.toString(), "127.0.0.1");
  EXPECT_EQ(events_[1].result, boot::FileResult::NotFound);
  EXPECT_EQ(events_[1].requested, "nothing-here");
}

TEST_F(HttpServiceTest, AReloadKeepsAResponseInFlightOnItsRoot) {
  cfg_.sendTimeout = 5s;
  std::string huge(32 << 20, 'q');
  write("huge", huge);
  start();
  Client c(port_);
  c.receiveBuffer(65536);
  c.send("GET /huge HTTP/1.1\r\nHost: t\r\n\r\n");
  for (int i = 0; i < 6000 && onLoop([&] { return service_->responsesInFlight(); }) == 0; ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_EQ(onLoop([&] { return service_->responsesInFlight(); }), 1u);  // the response is under way
  fs::path other = root_.string() + "-2";
  fs::create_directories(other);
  std::ofstream(other / "boot.ipxe") << "new root";
  http::Config next = cfg_;
  next.root = other.string();
  auto applied = onLoop([&] { return service_->apply(next, nullptr).ok(); });
  EXPECT_TRUE(applied);
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body.size(), huge.size());
  EXPECT_EQ(r->body == huge, true);
  Client after(port_);
  EXPECT_EQ(after.get("/boot.ipxe").body, "new root");
  fs::remove_all(other);
}

TEST_F(HttpServiceTest, ARefusedPrepareChangesNothing) {
  start();
  http::Config next = cfg_;
  next.root = (root_ / "no-such-dir").string();
  auto refused = onLoop([&] { return service_->prepare(config::Config{}, nullptr).ok(); });
  EXPECT_FALSE(refused);  // no [http] section
  auto bad = onLoop([&] { return service_->apply(next, nullptr).ok(); });
  EXPECT_FALSE(bad);
  Client c(port_);
  EXPECT_EQ(c.get("/boot.ipxe").status, 200);
}
