// The client handshake of pxedust-nbd-attach (wire/client.hpp) against the server's own handshake
// machine: the greeting, GO, the export's size and flags, a refusal's text; and the parsers fed
// what a broken or hostile server could send.
#include "nbd/wire/client.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "nbd/wire/handshake.hpp"

namespace pxedust::nbd::wire {
namespace {

struct OneExport : ExportCatalog {
  ExportInfo info;
  [[nodiscard]] TlsMode tlsMode() const override { return TlsMode::None; }
  std::vector<ExportListing> listExports(bool) override { return {}; }
  ExportLookup lookupExport(std::string_view name, bool) override {
    if (name != "node01") return {};
    return {LookupStatus::Found, info};
  }
};

struct Outcome {
  std::optional<client::ExportInfo> info;
  bool acked = false;
  std::string error;
};

// Reads the server's replies to GO the way the attach tool does.
Outcome readReplies(std::span<const std::uint8_t> out) {
  Outcome o;
  while (out.size() >= client::kReplyHeaderSize) {
    auto h = client::parseReplyHeader(out.first<client::kReplyHeaderSize>());
    if (!h || out.size() < client::kReplyHeaderSize + h->length) {
      o.error = "malformed";
      return o;
    }
    auto data = out.subspan(client::kReplyHeaderSize, h->length);
    EXPECT_EQ(h->option, opt::kGo);
    if (h->type & rep::kErrorBit) o.error = client::replyError(h->type, data);
    if (h->type == rep::kInfo && !o.info) o.info = client::parseExportInfo(data);
    if (h->type == rep::kAck) o.acked = true;
    out = out.subspan(client::kReplyHeaderSize + h->length);
  }
  return o;
}

TEST(NbdClient, GoAgainstTheServerMachine) {
  OneExport catalog;
  catalog.info.size = 8ull << 30;
  DeviceCapabilities caps;
  caps.canFlush = caps.canFua = caps.canTrim = true;
  catalog.info.flags = transmissionFlags(caps);
  HandshakeMachine server(catalog);
  auto hello = server.takeOutput();
  ASSERT_EQ(hello.size(), client::kGreetingSize);
  auto g = client::parseGreeting(std::span<const std::uint8_t, client::kGreetingSize>(hello.data(), hello.size()));
  ASSERT_EQ(g.error, "");
  auto go = client::goRequest(g.flags, "node01");
  auto step = server.feed(go);
  EXPECT_EQ(step.event, HandshakeEvent::Complete);
  EXPECT_EQ(step.consumed, go.size());
  EXPECT_EQ(server.result().exportName, "node01");
  auto o = readReplies(server.takeOutput());
  EXPECT_EQ(o.error, "");
  EXPECT_TRUE(o.acked);
  ASSERT_TRUE(o.info);
  EXPECT_EQ(o.info->size, 8ull << 30);
  EXPECT_EQ(o.info->flags, server.result().flags);
  EXPECT_TRUE(o.info->flags & txflag::kSendFlush);
}

TEST(NbdClient, UnknownExportIsAnErrorWithTheServersText) {
  OneExport catalog;
  HandshakeMachine server(catalog);
  auto hello = server.takeOutput();
  auto g = client::parseGreeting(std::span<const std::uint8_t, client::kGreetingSize>(hello.data(), hello.size()));
  server.feed(client::goRequest(g.flags, "nosuch"));
  auto o = readReplies(server.takeOutput());
  EXPECT_FALSE(o.acked);
  EXPECT_TRUE(o.error.starts_with("no such export")) << o.error;
}

TEST(NbdClient, ParsersRefuseWhatIsNotTheProtocol) {
  std::array<std::uint8_t, client::kGreetingSize> g{};
  EXPECT_NE(client::parseGreeting(g).error, "");  // no NBDMAGIC
  std::vector<std::uint8_t> v;
  client::putBe(v, kNbdMagic, 8);
  client::putBe(v, 0x00420281861253ull, 8);  // oldstyle: a cliserv magic, not IHAVEOPT
  client::putBe(v, 0, 2);
  std::copy(v.begin(), v.end(), g.begin());
  EXPECT_NE(client::parseGreeting(g).error, "");
  v.clear();
  client::putBe(v, kNbdMagic, 8);
  client::putBe(v, kOptionMagic, 8);
  client::putBe(v, 0, 2);  // newstyle without FIXED_NEWSTYLE
  std::copy(v.begin(), v.end(), g.begin());
  EXPECT_NE(client::parseGreeting(g).error, "");

  std::array<std::uint8_t, client::kReplyHeaderSize> h{};
  EXPECT_FALSE(client::parseReplyHeader(h));  // bad magic
  v.clear();
  client::putBe(v, kOptionReplyMagic, 8);
  client::putBe(v, opt::kGo, 4);
  client::putBe(v, rep::kInfo, 4);
  client::putBe(v, 0xFFFFFFF0u, 4);  // a length no reply to GO has: never allocated
  std::copy(v.begin(), v.end(), h.begin());
  EXPECT_FALSE(client::parseReplyHeader(h));

  EXPECT_FALSE(client::parseExportInfo(std::vector<std::uint8_t>(11)));
  EXPECT_FALSE(client::parseExportInfo(std::vector<std::uint8_t>(13)));
  std::vector<std::uint8_t> name{0, 1, 'x'};  // NBD_INFO_NAME, not EXPORT
  EXPECT_FALSE(client::parseExportInfo(name));
  EXPECT_EQ(client::replyError(rep::kErrPolicy, std::vector<std::uint8_t>{'n', 0, 'o'}), "refused by policy: n?o");
}

}  // namespace
}  // namespace pxedust::nbd::wire
