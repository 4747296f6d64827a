// The handshake state machine driven through the sequences real clients send (libnbd/nbdinfo,
// qemu, the Linux nbd-client, an old non-fixed client), through every option and every refusal the
// spec names, through TLS in its three modes, through the caps, and fed in every split down to one
// byte at a time.
#include "nbd/wire/handshake.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace pxedust::nbd::wire {
namespace {

using Bytes = std::vector<std::uint8_t>;

void putBe(Bytes& out, std::uint64_t v, int n) {
  for (int shift = (n - 1) * 8; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}
void putStr(Bytes& out, std::string_view s) { out.insert(out.end(), s.begin(), s.end()); }
std::uint64_t getBe(const Bytes& b, std::size_t at, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | b.at(at + static_cast<std::size_t>(i));
  return v;
}
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// ---- The client side ----

Bytes clientFlags(std::uint32_t flags = clientflag::kFixedNewstyle | clientflag::kNoZeroes) {
  Bytes b;
  putBe(b, flags, 4);
  return b;
}

Bytes option(std::uint32_t code, const Bytes& data = {}) {
  Bytes b;
  putBe(b, kOptionMagic, 8);
  putBe(b, code, 4);
  putBe(b, data.size(), 4);
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

// An option header announcing `length` data bytes, without the data.
Bytes optionHeader(std::uint32_t code, std::uint32_t length) {
  Bytes b;
  putBe(b, kOptionMagic, 8);
  putBe(b, code, 4);
  putBe(b, length, 4);
  return b;
}

Bytes str(std::string_view s) { return Bytes(s.begin(), s.end()); }

Bytes infoData(std::string_view name, const std::vector<std::uint16_t>& types) {
  Bytes b;
  putBe(b, name.size(), 4);
  putStr(b, name);
  putBe(b, types.size(), 2);
  for (auto t : types) putBe(b, t, 2);
  return b;
}

Bytes metaData(std::string_view name, const std::vector<std::string>& queries) {
  Bytes b;
  putBe(b, name.size(), 4);
  putStr(b, name);
  putBe(b, queries.size(), 4);
  for (const auto& q : queries) {
    putBe(b, q.size(), 4);
    putStr(b, q);
  }
  return b;
}

struct OptionReply {
  std::uint32_t option = 0;
  std::uint32_t type = 0;
  Bytes data;
};

// Splits fixed newstyle replies; fails the test on anything else.
std::vector<OptionReply> parseReplies(const Bytes& b, std::size_t from = 0) {
  std::vector<OptionReply> out;
  std::size_t at = from;
  while (at < b.size()) {
    if (b.size() - at < 20) {
      ADD_FAILURE() << "truncated option reply at " << at;
      break;
    }
    EXPECT_EQ(getBe(b, at, 8), kOptionReplyMagic);
    OptionReply r;
    r.option = static_cast<std::uint32_t>(getBe(b, at + 8, 4));
    r.type = static_cast<std::uint32_t>(getBe(b, at + 12, 4));
    auto len = static_cast<std::size_t>(getBe(b, at + 16, 4));
    at += 20;
    if (b.size() - at < len) {
      ADD_FAILURE() << "reply data past the output";
      break;
    }
    r.data.assign(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + len));
    at += len;
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::uint32_t> typesOf(const std::vector<OptionReply>& rs) {
  std::vector<std::uint32_t> t;
  for (const auto& r : rs) t.push_back(r.type);
  return t;
}

// ---- The server's catalog ----

struct FakeCatalog : ExportCatalog {
  TlsMode mode = TlsMode::None;
  std::map<std::string, ExportLookup, std::less<>> exports;
  std::vector<ExportListing> listing;
  std::vector<std::pair<std::string, bool>> lookups;  // name, tlsActive
  std::vector<bool> lists;

  [[nodiscard]] TlsMode tlsMode() const override { return mode; }
  std::vector<ExportListing> listExports(bool tlsActive) override {
    lists.push_back(tlsActive);
    return listing;
  }
  ExportLookup lookupExport(std::string_view name, bool tlsActive) override {
    lookups.emplace_back(std::string(name), tlsActive);
    auto it = exports.find(name);
    if (it == exports.end()) return {};
    return it->second;
  }
};

ExportInfo diskInfo() {
  ExportInfo e;
  e.size = 8ull << 30;
  DeviceCapabilities caps;
  caps.canFlush = caps.canFua = caps.canTrim = caps.canWriteZeroes = caps.canMultiConn = true;
  e.flags = transmissionFlags(caps);  // includes SEND_DF
  e.description = "node01 root disk";
  return e;
}

constexpr std::size_t kGreeting = 18;

struct Event {
  HandshakeEvent event;
  std::size_t at;  // absolute stream position just past the event's bytes
};

struct Run {
  std::vector<Event> events;
  Bytes output;
  std::size_t consumed = 0;
};

struct Session {
  FakeCatalog catalog;
  HandshakeLimits limits;
  std::unique_ptr<HandshakeMachine> machine;

  Session() { catalog.exports["disk"] = {LookupStatus::Found, diskInfo()}; }

  HandshakeMachine& m() {
    if (!machine) machine = std::make_unique<HandshakeMachine>(catalog, limits);
    return *machine;
  }

  // Feeds `input` in pieces of `split` bytes. On StartTls the TLS layer is simulated as transparent:
  // tlsStarted() is called and the rest of the stream goes on. Stops at a terminal event.
  Run run(const Bytes& input, std::size_t split = SIZE_MAX, bool autoTls = true) {
    Run r;
    auto take = [&] {
      auto o = m().takeOutput();
      r.output.insert(r.output.end(), o.begin(), o.end());
    };
    take();
    std::size_t pos = 0;
    std::span<const std::uint8_t> all(input);
    while (pos < all.size()) {
      auto piece = all.subspan(pos, std::min(split, all.size() - pos));
      std::size_t off = 0;
      while (off < piece.size()) {
        Step s = m().feed(piece.subspan(off));
        EXPECT_LE(s.consumed, piece.size() - off);
        off += s.consumed;
        take();
        if (s.event == HandshakeEvent::NeedMore) {
          EXPECT_EQ(off, piece.size());
          break;
        }
        r.events.push_back({s.event, pos + off});
        if (s.event == HandshakeEvent::StartTls && autoTls) {
          m().tlsStarted();
          continue;
        }
        r.consumed = pos + off;
        return r;
      }
      pos += piece.size();
    }
    r.consumed = pos;
    return r;
  }
};

// The libnbd / nbdinfo / qemu style of connecting: structured replies, base:allocation, GO with
// the information requests, and a first request pipelined behind the GO.
Bytes modernClient(std::string_view exportName = "disk") {
  return cat({clientFlags(), option(opt::kStructuredReply),
              option(opt::kSetMetaContext, metaData(exportName, {"base:allocation"})),
              option(opt::kGo, infoData(exportName, {info::kName, info::kDescription, info::kBlockSize}))});
}

TEST(NbdHandshake, GreetingIsFixedNewstyleWithNoZeroes) {
  FakeCatalog catalog;
  HandshakeMachine m(catalog);
  Bytes expect;
  putBe(expect, 0x4e42444d41474943ull, 8);  // "NBDMAGIC"
  putBe(expect, 0x49484156454f5054ull, 8);  // "IHAVEOPT"
  putBe(expect, 3, 2);                      // FIXED_NEWSTYLE | NO_ZEROES
  EXPECT_EQ(m.output(), expect);
  EXPECT_EQ(m.takeOutput(), expect);
  EXPECT_TRUE(m.output().empty());
}

TEST(NbdHandshake, ModernClientNegotiatesEverything) {
  Session s;
  Bytes request(28, 0xee);  // a transmission request right behind GO stays unconsumed
  Bytes input = cat({modernClient(), request});
  auto r = s.run(input);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].event, HandshakeEvent::Complete);
  EXPECT_EQ(r.events[0].at, input.size() - 28);

  auto replies = parseReplies(r.output, kGreeting);
  ASSERT_EQ(replies.size(), 8u);
  EXPECT_EQ(replies[0].option, opt::kStructuredReply);
  EXPECT_EQ(replies[0].type, rep::kAck);
  EXPECT_EQ(replies[1].option, opt::kSetMetaContext);
  EXPECT_EQ(replies[1].type, rep::kMetaContext);
  EXPECT_EQ(getBe(replies[1].data, 0, 4), kBaseAllocationContextId);
  EXPECT_EQ(Bytes(replies[1].data.begin() + 4, replies[1].data.end()), str("base:allocation"));
  EXPECT_EQ(replies[2].type, rep::kAck);
  // GO: EXPORT, NAME, DESCRIPTION, BLOCK_SIZE, ACK.
  for (std::size_t i = 3; i < 8; ++i) EXPECT_EQ(replies[i].option, opt::kGo);
  EXPECT_EQ(typesOf(replies), (std::vector<std::uint32_t>{rep::kAck, rep::kMetaContext, rep::kAck, rep::kInfo,
                                                          rep::kInfo, rep::kInfo, rep::kInfo, rep::kAck}));
  const auto& exp = replies[3].data;
  ASSERT_EQ(exp.size(), 12u);
  EXPECT_EQ(getBe(exp, 0, 2), info::kExport);
  EXPECT_EQ(getBe(exp, 2, 8), 8ull << 30);
  EXPECT_EQ(getBe(exp, 10, 2), diskInfo().flags);  // SEND_DF kept: structured replies negotiated
  EXPECT_EQ(replies[4].data, cat({Bytes{0, 1}, str("disk")}));
  EXPECT_EQ(replies[5].data, cat({Bytes{0, 2}, str("node01 root disk")}));
  const auto& bs = replies[6].data;
  ASSERT_EQ(bs.size(), 14u);
  EXPECT_EQ(getBe(bs, 0, 2), info::kBlockSize);
  EXPECT_EQ(getBe(bs, 2, 4), 1u);
  EXPECT_EQ(getBe(bs, 6, 4), 4096u);
  EXPECT_EQ(getBe(bs, 10, 4), 1u << 25);
  EXPECT_TRUE(replies[7].data.empty());

  const auto& res = s.m().result();
  EXPECT_EQ(res.exportName, "disk");
  EXPECT_EQ(res.flags, diskInfo().flags);
  EXPECT_TRUE(res.structuredReplies);
  EXPECT_EQ(res.metaContexts, (std::vector<MetaContext>{{kBaseAllocationContextId, "base:allocation"}}));
  EXPECT_TRUE(res.blockSizesAgreed);
  EXPECT_FALSE(res.tls);
  EXPECT_FALSE(res.viaExportName);
  auto p = res.properties();
  EXPECT_EQ(p.size, 8ull << 30);
  EXPECT_EQ(p.flags, diskInfo().flags);
  EXPECT_TRUE(p.structuredReplies);
  EXPECT_TRUE(p.metaContexts);
  EXPECT_EQ(p.blockSizes, BlockSizes{});

  // Terminal: nothing more is consumed.
  Step again = s.m().feed(request);
  EXPECT_EQ(again.consumed, 0u);
  EXPECT_EQ(again.event, HandshakeEvent::Complete);
}

// Every split, down to one byte at a time, gives the same bytes out and the same event at the
// same place, for a session that uses every option (STARTTLS included).
TEST(NbdHandshake, AnyFragmentationGivesTheSameResult) {
  Bytes input = cat({clientFlags(), option(opt::kStartTls), option(opt::kList), option(0x4242, str("junk")),
                     option(opt::kListMetaContext, metaData("disk", {})), option(opt::kStructuredReply),
                     option(opt::kInfo, infoData("disk", {info::kBlockSize})),
                     option(opt::kSetMetaContext, metaData("disk", {"base:allocation", "qemu:dirty-bitmap:x"})),
                     option(opt::kGo, infoData("disk", {})), Bytes(40, 0x99)});
  auto configure = [](Session& s) {
    s.catalog.mode = TlsMode::Optional;
    s.catalog.listing = {{"disk", "root"}, {"swap", ""}};
  };
  Session whole;
  configure(whole);
  auto ref = whole.run(input);
  ASSERT_EQ(ref.events.size(), 2u);
  EXPECT_EQ(ref.events[0].event, HandshakeEvent::StartTls);
  EXPECT_EQ(ref.events[1].event, HandshakeEvent::Complete);
  EXPECT_EQ(ref.events[1].at, input.size() - 40);
  EXPECT_TRUE(whole.m().result().tls);
  EXPECT_EQ(whole.m().result().metaContexts.size(), 1u);

  for (std::size_t split : {1u, 2u, 3u, 5u, 7u, 16u, 17u, 64u}) {
    Session s;
    configure(s);
    auto r = s.run(input, split);
    EXPECT_EQ(r.output, ref.output) << "split " << split;
    ASSERT_EQ(r.events.size(), ref.events.size()) << "split " << split;
    for (std::size_t i = 0; i < r.events.size(); ++i) {
      EXPECT_EQ(r.events[i].event, ref.events[i].event) << "split " << split;
      EXPECT_EQ(r.events[i].at, ref.events[i].at) << "split " << split;
    }
  }
}

// ---- Client flags ----

TEST(NbdHandshake, UnknownClientFlagDisconnects) {
  for (std::uint32_t flags : {4u, 0x80000000u, 0xffffffffu}) {
    Session s;
    auto r = s.run(cat({clientFlags(flags), option(opt::kList)}));
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].event, HandshakeEvent::Disconnect);
    EXPECT_EQ(r.events[0].at, 4u);
    EXPECT_EQ(s.m().disconnectReason(), DisconnectReason::BadClientFlags);
    EXPECT_EQ(r.output.size(), kGreeting);  // nothing after the greeting
  }
}

TEST(NbdHandshake, BadOptionMagicDisconnects) {
  Session s;
  Bytes bad = option(opt::kList);
  bad[0] ^= 1;
  auto r = s.run(cat({clientFlags(), bad}));
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].event, HandshakeEvent::Disconnect);
  EXPECT_EQ(s.m().disconnectReason(), DisconnectReason::BadOptionMagic);
  EXPECT_EQ(disconnectReasonName(DisconnectReason::BadOptionMagic), "bad_option_magic");
}

// ---- NBD_OPT_EXPORT_NAME ----

TEST(NbdExportName, RepliesSizeAndFlagsWithoutZeroes) {
  Session s;
  auto r = s.run(cat({clientFlags(), option(opt::kExportName, str("disk")), Bytes{1, 2, 3}}));
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].event, HandshakeEvent::Complete);
  EXPECT_EQ(r.events[0].at, 4u + 16 + 4);
  ASSERT_EQ(r.output.size(), kGreeting + 10);
  EXPECT_EQ(getBe(r.output, kGreeting, 8), 8ull << 30);
  // No structured replies: SEND_DF is cleared ("MUST leave this flag clear").
  EXPECT_EQ(getBe(r.output, kGreeting + 8, 2), diskInfo().flags & ~txflag::kSendDf);
  EXPECT_TRUE(s.m().result().viaExportName);
  EXPECT_FALSE(s.m().result().structuredReplies);
  EXPECT_TRUE(s.m().result().metaContexts.empty());
}

TEST(NbdExportName, SendsTheZeroesUnlessNoZeroes) {
  Session s;
  auto r = s.run(cat({clientFlags(clientflag::kFixedNewstyle), option(opt::kExportName, str("disk"))}));
  ASSERT_EQ(r.output.size(), kGreeting + 10 + 124);
  for (std::size_t i = kGreeting + 10; i < r.output.size(); ++i) EXPECT_EQ(r.output[i], 0);
}

TEST(NbdExportName, OldNonFixedClientGetsItsExport) {
  Session s;
  auto r = s.run(cat({clientFlags(0), option(opt::kExportName, str("disk"))}));
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].event, HandshakeEvent::Complete);
  EXPECT_EQ(r.output.size(), kGreeting + 134);
}

TEST(NbdExportName, NonFixedClientSendingAnotherOptionDisconnects) {
  Session s;
  auto r = s.run(cat({clientFlags(clientflag::kNoZeroes), option(opt::kList)}));
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].event, HandshakeEvent::Disconnect);
  EXPECT_EQ(s.m().disconnectReason(), DisconnectReason::NotFixedNewstyle);
}

TEST(NbdExportName, EveryRefusalIsADisconnect) {
  struct Case {
    const char* what;
    Bytes name;
    LookupStatus status;
    DisconnectReason reason;
  };
  std::vector<Case> cases = {
      {"unknown", str("nope"), LookupStatus::NotFound, DisconnectReason::ExportNameRefused},
      {"not permitted", str("disk"), LookupStatus::NotPermitted, DisconnectReason::ExportNameRefused},
      {"tls-only", str("disk"), LookupStatus::TlsRequired, DisconnectReason::ExportNameRefused},
      {"nul in name", cat({str("di"), Bytes{0}, str("sk")}), LookupStatus::Found, DisconnectReason::ExportNameRefused},
      {"name over 4096", Bytes(4097, 'a'), LookupStatus::Found, DisconnectReason::OptionTooLarge},
  };
  for (const auto& c : cases) {
    Session s;
    s.catalog.exports["disk"].status = c.status;
    auto r = s.run(cat({clientFlags(), option(opt::kExportName, c.name)}));
    ASSERT_EQ(r.events.size(), 1u) << c.what;
    EXPECT_EQ(r.events[0].event, HandshakeEvent::Disconnect) << c.what;
    EXPECT_EQ(s.m().disconnectReason(), c.reason) << c.what;
    EXPECT_EQ(r.output.size(), kGreeting) << c.what;
  }
}

TEST(NbdExportName, MisconfiguredBlockSizesDisconnect) {
  Session s;
  s.catalog.exports["disk"].info.blockSizes = {3, 4096, 1u << 25};
  auto r = s.run(cat({clientFlags(), option(opt::kExportName, str("disk"))}));
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(s.m().disconnectReason(), DisconnectReason::ExportNameRefused);
}

TEST(NbdExportName, A4096ByteNameIsLookedUp) {
  Session s;
  std::string name(4096, 'n');
  s.catalog.exports[name] = {LookupStatus::Found, diskInfo()};
  auto r = s.run(cat({clientFlags(), option(opt::kExportName, str(name))}), 1000);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].event, HandshakeEvent::Complete);
  EXPECT_EQ(s.m().result().exportName, name);
}

TEST(NbdExportName, MetaContextsCarryOverForTheSameExportOnly) {
  for (std::string_view chosen : {"disk", "other"}) {
    Session s;
    s.catalog.exports["other"] = {LookupStatus::Found, diskInfo()};
    auto r = s.run(cat({clientFlags(), option(opt::kStructuredReply),
                        option(opt::kSetMetaContext, metaData("disk", {"base:allocation"})),
                        option(opt::kExportName, str(chosen))}));
    ASSERT_EQ(r.events.back().event, HandshakeEvent::Complete);
    EXPECT_TRUE(s.m().result().structuredReplies);
    EXPECT_EQ(s.m().result().metaContexts.size(), chosen == "disk" ? 1u : 0u) << chosen;
    EXPECT_EQ(s.m().result().properties().metaContexts, chosen == "disk");
  }
}

// ---- NBD_OPT_ABORT ----

TEST(NbdAbort, AcknowledgedThenSoftDisconnect) {
  Session s;
  auto r = s.run(cat({clientFlags(), option(opt::kAbort)}));
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].event, HandshakeEvent::Abort);
  auto replies = parseReplies(r.output, kGreeting);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].option, opt::kAbort);
  EXPECT_EQ(replies[0].type, rep::kAck);
  EXPECT_EQ(s.m().feed(Bytes{1}).event, HandshakeEvent::Abort);
}

TEST(NbdAbort, DataIsIgnoredNotRead) {
  Session s;
  auto r = s.run(cat({clientFlags(), option(opt::kAbort, Bytes(100000, 7))}));
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].event, HandshakeEvent::Abort);
  EXPECT_EQ(r.events[0].at, 4u + 16);
}

// ---- NBD_OPT_LIST ----

TEST(NbdList, OneServerReplyPerExportThenAck) {
  Session s;
  s.catalog.listing = {{"disk", "root disk"}, {"", ""}, {std::string(4097, 'x'), "too long to ask for"},
                       {std::string("a\0b", 3), "has a NUL"}, {"swap", std::string(5000, 'd')}};
  auto r = s.run(cat({clientFlags(), option(opt::kList)}));
  EXPECT_TRUE(r.events.empty());
  auto replies = parseReplies(r.output, kGreeting);
  ASSERT_EQ(replies.size(), 4u);
  EXPECT_EQ(replies[0].type, rep::kServer);
  EXPECT_EQ(replies[0].data, cat({Bytes{0, 0, 0, 4}, str("disk"), str("root disk")}));
  EXPECT_EQ(replies[1].data, (Bytes{0, 0, 0, 0}));  // the default export, no description
  EXPECT_EQ(replies[2].data.size(), 4u + 4 + 4096);  // description cut to the string limit
  EXPECT_EQ(replies[3].type, rep::kAck);
  EXPECT_EQ(s.catalog.lists, std::vector<bool>{false});
}

TEST(NbdList, DataIsInvalidAndTheNextOptionStillParses) {
  Session s;
  auto r = s.run(cat({clientFlags(), option(opt::kList, str("x")), option(opt::kList)}));
  auto replies = parseReplies(r.output, kGreeting);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].type, rep::kErrInvalid);
  EXPECT_FALSE(replies[0].data.empty());  // a message for the user
  EXPECT_EQ(replies[1].type, rep::kAck);
}

// ---- NBD_OPT_STARTTLS and the three TLS modes ----

TEST(NbdStartTls, RefusedWithPolicyWhenTlsIsNotOffered) {
  Session s;
  auto r = s.run(cat({clientFlags(), option(opt::kStartTls)}));
  EXPECT_TRUE(r.events.empty());
  auto replies = parseReplies(r.output, kGreeting);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].type, rep::kErrPolicy);
}

TEST(NbdStartTls, AckThenStopsWhereTheTlsBytesBegin) {
  Session s;
  s.catalog.mode = TlsMode::Optional;
  Bytes clientHello = {0x16, 0x03, 0x01, 0x00, 0x05};
  auto r = s.run(cat({clientFlags(), option(opt::kStructuredReply), option(opt::kStartTls), clientHello}),
                 SIZE_MAX, /*autoTls=*/false);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].event, HandshakeEvent::StartTls);
  EXPECT_EQ(r.events[0].at, 4u + 16 + 16);
  auto replies = parseReplies(r.output, kGreeting);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[1].option, opt::kStartTls);
  EXPECT_EQ(replies[1].type, rep::kAck);
  EXPECT_FALSE(s.m().tlsActive());

  // Feeding before the TLS layer said it is up is a caller bug: fail closed.
  Session early;
  early.catalog.mode = TlsMode::Optional;
  early.run(cat({clientFlags(), option(opt::kStartTls)}), SIZE_MAX, false);
  EXPECT_EQ(early.m().feed(option(opt::kList)).event, HandshakeEvent::Disconnect);
  EXPECT_EQ(early.m().disconnectReason(), DisconnectReason::TlsNotStarted);
}

TEST(NbdStartTls, ForgetsEarlierNegotiation) {
  Session s;
  s.catalog.mode = TlsMode::Optional;
  auto r = s.run(cat({clientFlags(), option(opt::kStructuredReply),
                      option(opt::kSetMetaContext, metaData("disk", {"base:allocation"})), option(opt::kStartTls),
                      option(opt::kSetMetaContext, metaData("disk", {"base:allocation"})),
                      option(opt::kGo, infoData("disk", {}))}));
  ASSERT_EQ(r.events.back().event, HandshakeEvent::Complete);
  auto replies = parseReplies(r.output, kGreeting);
  // ACK, META_CONTEXT, ACK, ACK (STARTTLS), ERR_INVALID (no structured replies under TLS yet), GO...
  ASSERT_GE(replies.size(), 5u);
  EXPECT_EQ(replies[4].option, opt::kSetMetaContext);
  EXPECT_EQ(replies[4].type, rep::kErrInvalid);
  EXPECT_FALSE(s.m().result().structuredReplies);
  EXPECT_TRUE(s.m().result().metaContexts.empty());
  EXPECT_TRUE(s.m().result().tls);
  // SEND_DF is cleared again without structured replies.
  EXPECT_EQ(s.m().result().flags & txflag::kSendDf, 0);
}

TEST(NbdStartTls, SecondStartTlsAndDataAreInvalid) {
  Session s;
  s.catalog.mode = TlsMode::Optional;
  auto r = s.run(cat({clientFlags(), option(opt::kStartTls, str("x")), option(opt::kStartTls),
                      option(opt::kStartTls)}));
  auto replies = parseReplies(r.output, kGreeting);
  EXPECT_EQ(typesOf(replies), (std::vector<std::uint32_t>{rep::kErrInvalid, rep::kAck, rep::kErrInvalid}));
}

TEST(NbdForcedTls, EveryOptionButStartTlsAndAbortNeedsTls) {
  Session s;
  s.catalog.mode = TlsMode::Required;
  auto r = s.run(cat({clientFlags(), option(opt::kList), option(opt::kInfo, infoData("disk", {})),
                      option(opt::kGo, infoData("disk", {})), option(opt::kStructuredReply),
                      option(opt::kListMetaContext, metaData("disk", {})), option(0x99, str("junk")),
                      option(opt::kStartTls), option(opt::kList), option(opt::kGo, infoData("disk", {}))}));
  auto replies = parseReplies(r.output, kGreeting);
  EXPECT_EQ(typesOf(replies),
            (std::vector<std::uint32_t>{rep::kErrTlsReqd, rep::kErrTlsReqd, rep::kErrTlsReqd, rep::kErrTlsReqd,
                                        rep::kErrTlsReqd, rep::kErrTlsReqd, rep::kAck, rep::kAck, rep::kInfo,
                                        rep::kAck}));
  ASSERT_EQ(r.events.back().event, HandshakeEvent::Complete);
  EXPECT_TRUE(s.m().result().tls);
  // Nothing was revealed before TLS: the catalog saw only the lookups made under TLS.
  for (const auto& [name, tls] : s.catalog.lookups) EXPECT_TRUE(tls) << name;
  EXPECT_EQ(s.catalog.lists, std::vector<bool>{true});
}

TEST(NbdForcedTls, AbortWorksAndExportNameDisconnects) {
  Session a;
  a.catalog.mode = TlsMode::Required;
  EXPECT_EQ(a.run(cat({clientFlags(), option(opt::kAbort)})).events.back().event, HandshakeEvent::Abort);
  Session e;
  e.catalog.mode = TlsMode::Required;
  EXPECT_EQ(e.run(cat({clientFlags(), option(opt::kExportName, str("disk"))})).events.back().event,
            HandshakeEvent::Disconnect);
  EXPECT_EQ(e.m().disconnectReason(), DisconnectReason::TlsRequired);
  // Under TLS, EXPORT_NAME is fine.
  Session t;
  t.catalog.mode = TlsMode::Required;
  auto r = t.run(cat({clientFlags(), option(opt::kStartTls), option(opt::kExportName, str("disk"))}));
  EXPECT_EQ(r.events.back().event, HandshakeEvent::Complete);
}

TEST(NbdSelectiveTls, TlsOnlyExportGetsTlsReqdOnlyWhileTlsCanStart) {
  auto replyTo = [](TlsMode mode, bool startTls) {
    Session s;
    s.catalog.mode = mode;
    s.catalog.exports["disk"].status = LookupStatus::TlsRequired;
    Bytes in = clientFlags();
    if (startTls) in = cat({in, option(opt::kStartTls)});
    auto r = s.run(cat({in, option(opt::kInfo, infoData("disk", {}))}));
    return parseReplies(r.output, kGreeting).back().type;
  };
  EXPECT_EQ(replyTo(TlsMode::Optional, false), rep::kErrTlsReqd);
  EXPECT_EQ(replyTo(TlsMode::Optional, true), rep::kErrPolicy);  // "MUST NOT send ... if TLS has already been"
  EXPECT_EQ(replyTo(TlsMode::None, false), rep::kErrPolicy);     // NOTLS: never TLS_REQD
}

TEST(NbdSelectiveTls, CatalogIsToldWhetherTlsRuns) {
  Session s;
  s.catalog.mode = TlsMode::Optional;
  s.run(cat({clientFlags(), option(opt::kInfo, infoData("disk", {})), option(opt::kStartTls), option(opt::kList),
             option(opt::kInfo, infoData("disk", {}))}));
  ASSERT_EQ(s.catalog.lookups.size(), 2u);
  EXPECT_FALSE(s.catalog.lookups[0].second);
  EXPECT_TRUE(s.catalog.lookups[1].second);
  EXPECT_EQ(s.catalog.lists, std::vector<bool>{true});
}

// ---- NBD_OPT_INFO and NBD_OPT_GO ----

TEST(NbdInfo, AnswersWithoutEnteringTransmission) {
  Session s;
  auto r = s.run(cat({clientFlags(), option(opt::kInfo, infoData("disk", {}))}));
  EXPECT_TRUE(r.events.empty());
  auto replies = parseReplies(r.output, kGreeting);
  // Defaults: only NBD_INFO_EXPORT is sent when nothing else is asked for.
  EXPECT_EQ(typesOf(replies), (std::vector<std::uint32_t>{rep::kInfo, rep::kAck}));
  EXPECT_EQ(getBe(replies[0].data, 0, 2), info::kExport);
}

TEST(NbdInfo, UnknownAndRepeatedInfoRequestsAreHarmless) {
  Session s;
  auto r = s.run(cat({clientFlags(), option(opt::kInfo, infoData("disk", {0x7777, info::kName, info::kName,
                                                                          info::kExport}))}));
  auto replies = parseReplies(r.output, kGreeting);
  EXPECT_EQ(typesOf(replies), (std::vector<std::uint32_t>{rep::kInfo, rep::kInfo, rep::kAck}));
}

TEST(NbdInfo, CanonicalNameAndNoEmptyDescription) {
  Session s;
  s.catalog.exports[""] = s.catalog.exports["disk"];
  s.catalog.exports[""].info.name = "node01";
  s.catalog.exports[""].info.description.clear();
  auto r = s.run(cat({clientFlags(), option(opt::kInfo, infoData("", {info::kName, info::kDescription}))}));
  auto replies = parseReplies(r.output, kGreeting);
  ASSERT_EQ(typesOf(replies), (std::vector<std::uint32_t>{rep::kInfo, rep::kInfo, rep::kAck}));
  EXPECT_EQ(replies[1].data, cat({Bytes{0, 1}, str("node01")}));
  EXPECT_EQ(s.catalog.lookups.at(0).first, "");
}

TEST(NbdInfo, NonDefaultBlockSizesAreSentUnasked) {
  Session s;
  s.catalog.exports["disk"].info.blockSizes = {512, 4096, 1u << 20};
  auto r = s.run(cat({clientFlags(), option(opt::kGo, infoData("disk", {}))}));
  auto replies = parseReplies(r.output, kGreeting);
  ASSERT_EQ(typesOf(replies), (std::vector<std::uint32_t>{rep::kInfo, rep::kInfo, rep::kAck}));
  EXPECT_EQ(getBe(replies[1].data, 0, 2), info::kBlockSize);
  EXPECT_EQ(getBe(replies[1].data, 2, 4), 512u);
  EXPECT_EQ(r.events.back().event, HandshakeEvent::Complete);
  EXPECT_FALSE(s.m().result().blockSizesAgreed);
  EXPECT_EQ(s.m().result().properties().blockSizes.minimum, 512u);
}

TEST(NbdInfo, BlockSizeRequiredRefusesGoButNotInfo) {
  Session s;
  s.catalog.exports["disk"].info.blockSizes = {4096, 4096, 1u << 20};
  s.catalog.exports["disk"].info.requireBlockSizes = true;
  auto r = s.run(cat({clientFlags(), option(opt::kInfo, infoData("disk", {})), option(opt::kGo, infoData("disk", {})),
                      option(opt::kGo, infoData("disk", {info::kBlockSize}))}));
  auto replies = parseReplies(r.output, kGreeting);
  EXPECT_EQ(typesOf(replies),
            (std::vector<std::uint32_t>{rep::kInfo, rep::kInfo, rep::kAck,                    // INFO
                                        rep::kInfo, rep::kInfo, rep::kErrBlockSizeReqd,       // GO, refused
                                        rep::kInfo, rep::kInfo, rep::kAck}));                 // GO, agreed
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].event, HandshakeEvent::Complete);
  EXPECT_TRUE(s.m().result().blockSizesAgreed);
}

TEST(NbdInfo, RefusalsNameTheReason) {
  struct Case {
    LookupStatus status;
    std::uint32_t reply;
  };
  for (auto c : {Case{LookupStatus::NotFound, rep::kErrUnknown}, Case{LookupStatus::NotPermitted, rep::kErrPolicy}}) {
    Session s;
    s.catalog.exports["disk"].status = c.status;
    auto r = s.run(cat({clientFlags(), option(opt::kGo, infoData("disk", {}))}));
    EXPECT_TRUE(r.events.empty());  // a refused GO does not end the haggling
    auto replies = parseReplies(r.output, kGreeting);
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0].type, c.reply);
  }
  Session bad;
  bad.catalog.exports["disk"].info.blockSizes = {512, 256, 1u << 20};
  auto r = bad.run(cat({clientFlags(), option(opt::kGo, infoData("disk", {}))}));
  EXPECT_EQ(typesOf(parseReplies(r.output, kGreeting)), std::vector<std::uint32_t>{rep::kErrPolicy});
}

TEST(NbdInfo, MalformedRequestsAreInvalid) {
  std::vector<Bytes> bad = {
      {},                                                   // nothing at all
      {0, 0, 0, 0, 0},                                      // no count
      cat({Bytes{0, 0, 0, 5}, str("disk"), Bytes{0, 0}}),   // name length past the data
      cat({Bytes{0xff, 0xff, 0xff, 0xff}, str("disk"), Bytes{0, 0}}),
      cat({Bytes{0, 0, 0, 4}, str("disk"), Bytes{0, 2, 0, 1}}),           // count says 2, one present
      cat({Bytes{0, 0, 0, 4}, str("disk"), Bytes{0, 0, 0}}),              // a stray byte
      cat({Bytes{0, 0, 0, 4}, str("d\0sk"), Bytes{0, 0}}),                // NUL in the name
  };
  for (std::uint32_t code : {opt::kInfo, opt::kGo}) {
    for (const auto& data : bad) {
      Session s;
      auto r = s.run(cat({clientFlags(), option(code, data), option(opt::kList)}));
      auto replies = parseReplies(r.output, kGreeting);
      ASSERT_EQ(replies.size(), 2u);
      EXPECT_EQ(replies[0].type, rep::kErrInvalid);
      EXPECT_EQ(replies[1].type, rep::kAck);
      EXPECT_TRUE(s.catalog.lookups.empty());
    }
  }
  // A 4097-byte name fits the option cap but not the string rule.
  Session s;
  auto r = s.run(cat({clientFlags(), option(opt::kGo, infoData(std::string(4097, 'a'), {}))}));
  EXPECT_EQ(typesOf(parseReplies(r.output, kGreeting)), std::vector<std::uint32_t>{rep::kErrInvalid});
}

TEST(NbdInfo, ExtensionFlagsAreNeverSent) {
  Session s;
  s.catalog.exports["disk"].info.flags |= txflag::kSendResize | txflag::kBlockStatusPayload;
  s.catalog.exports["disk"].info.flags &= static_cast<std::uint16_t>(~txflag::kHasFlags);
  s.run(cat({clientFlags(), option(opt::kGo, infoData("disk", {}))}));
  auto f = s.m().result().flags;
  EXPECT_EQ(f & (txflag::kSendResize | txflag::kBlockStatusPayload), 0);
  EXPECT_NE(f & txflag::kHasFlags, 0);
}

// ---- NBD_OPT_STRUCTURED_REPLY ----

TEST(NbdStructuredReply, DataIsInvalidRepeatIsAcknowledged) {
  Session s;
  auto r = s.run(cat({clientFlags(), option(opt::kStructuredReply, str("x")), option(opt::kStructuredReply),
                      option(opt::kStructuredReply)}));
  EXPECT_EQ(typesOf(parseReplies(r.output, kGreeting)),
            (std::vector<std::uint32_t>{rep::kErrInvalid, rep::kAck, rep::kAck}));
}

// ---- NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT ----

std::vector<OptionReply> metaReplies(std::uint32_t code, const Bytes& data, bool structured = true) {
  Session s;
  Bytes in = clientFlags();
  if (structured) in = cat({in, option(opt::kStructuredReply)});
  auto r = s.run(cat({in, option(code, data)}));
  auto replies = parseReplies(r.output, kGreeting);
  if (structured) replies.erase(replies.begin());
  return replies;
}

TEST(NbdMetaContext, ListQueries) {
  auto none = metaReplies(opt::kListMetaContext, metaData("disk", {}));  // no query: all contexts
  ASSERT_EQ(typesOf(none), (std::vector<std::uint32_t>{rep::kMetaContext, rep::kAck}));
  EXPECT_EQ(none[0].data, cat({Bytes{0, 0, 0, 0}, str("base:allocation")}));  // LIST ids are 0
  EXPECT_EQ(typesOf(metaReplies(opt::kListMetaContext, metaData("disk", {"base:"}))),
            (std::vector<std::uint32_t>{rep::kMetaContext, rep::kAck}));
  EXPECT_EQ(typesOf(metaReplies(opt::kListMetaContext, metaData("disk", {"base:allocation", "base:"}))),
            (std::vector<std::uint32_t>{rep::kMetaContext, rep::kAck}));
  EXPECT_EQ(typesOf(metaReplies(opt::kListMetaContext, metaData("disk", {"qemu:dirty-bitmap:", "base:other"}))),
            std::vector<std::uint32_t>{rep::kAck});
  // LIST without structured replies is answered (the spec: "MAY send NBD_REP_ERR_INVALID").
  EXPECT_EQ(typesOf(metaReplies(opt::kListMetaContext, metaData("disk", {}), false)),
            (std::vector<std::uint32_t>{rep::kMetaContext, rep::kAck}));
}

TEST(NbdMetaContext, SetSelectsOnlyBaseAllocation) {
  auto sel = metaReplies(opt::kSetMetaContext, metaData("disk", {"base:allocation", "base:allocation"}));
  ASSERT_EQ(typesOf(sel), (std::vector<std::uint32_t>{rep::kMetaContext, rep::kAck}));
  EXPECT_EQ(sel[0].data, cat({Bytes{0, 0, 0, 1}, str("base:allocation")}));
  EXPECT_EQ(typesOf(metaReplies(opt::kSetMetaContext, metaData("disk", {"base:"}))),
            std::vector<std::uint32_t>{rep::kAck});
  EXPECT_EQ(typesOf(metaReplies(opt::kSetMetaContext, metaData("disk", {}))), std::vector<std::uint32_t>{rep::kAck});
  EXPECT_EQ(typesOf(metaReplies(opt::kSetMetaContext, metaData("disk", {"base:allocation"}), false)),
            std::vector<std::uint32_t>{rep::kErrInvalid});
}

TEST(NbdMetaContext, MalformedAndUnknown) {
  for (std::uint32_t code : {opt::kListMetaContext, opt::kSetMetaContext}) {
    auto first = [&](const Bytes& data) { return metaReplies(code, data).at(0).type; };
    EXPECT_EQ(first(metaData("disk", {"allocation"})), rep::kErrInvalid);  // no namespace
    EXPECT_EQ(first(metaData("disk", {":allocation"})), rep::kErrInvalid);  // empty namespace
    EXPECT_EQ(first(metaData("disk", {std::string("base:\0x", 7)})), rep::kErrInvalid);
    EXPECT_EQ(first(metaData("nope", {"base:allocation"})), rep::kErrUnknown);
    EXPECT_EQ(first({0, 0, 0}), rep::kErrInvalid);                          // truncated name length
    EXPECT_EQ(first({0, 0, 0, 9, 'd'}), rep::kErrInvalid);                  // name past the data
    EXPECT_EQ(first(cat({Bytes{0, 0, 0, 4}, str("disk")})), rep::kErrInvalid);  // no count
    EXPECT_EQ(first(cat({Bytes{0, 0, 0, 4}, str("disk"), Bytes{0, 0, 0, 2, 0, 0, 0, 0}})), rep::kErrInvalid);
    EXPECT_EQ(first(cat({Bytes{0, 0, 0, 4}, str("disk"), Bytes{0xff, 0xff, 0xff, 0xff}})), rep::kErrInvalid);
    EXPECT_EQ(first(cat({Bytes{0, 0, 0, 4}, str("disk"), Bytes{0, 0, 0, 1, 0, 0, 0, 50}, str("base:")})),
              rep::kErrInvalid);  // query past the data
    EXPECT_EQ(first(cat({metaData("disk", {"base:allocation"}), Bytes{1}})), rep::kErrInvalid);  // trailing
    EXPECT_EQ(first(metaData("disk", {std::string("base:") + std::string(4092, 'a')})), rep::kErrInvalid);
  }
  Session s;
  s.catalog.exports["disk"].status = LookupStatus::TlsRequired;
  s.catalog.mode = TlsMode::Optional;
  auto r = s.run(cat({clientFlags(), option(opt::kListMetaContext, metaData("disk", {}))}));
  // TLS_REQD is only for INFO, GO and EXPORT_NAME.
  EXPECT_EQ(typesOf(parseReplies(r.output, kGreeting)), std::vector<std::uint32_t>{rep::kErrPolicy});
}

TEST(NbdMetaContext, SetReplacesEvenWhenItFails) {
  Session s;
  auto r = s.run(cat({clientFlags(), option(opt::kStructuredReply),
                      option(opt::kSetMetaContext, metaData("disk", {"base:allocation"})),
                      option(opt::kSetMetaContext, metaData("disk", {"broken"})),
                      option(opt::kGo, infoData("disk", {}))}));
  ASSERT_EQ(r.events.back().event, HandshakeEvent::Complete);
  EXPECT_TRUE(s.m().result().metaContexts.empty());
  EXPECT_FALSE(s.m().result().properties().metaContexts);

  Session empty;
  empty.run(cat({clientFlags(), option(opt::kStructuredReply),
                 option(opt::kSetMetaContext, metaData("disk", {"base:allocation"})),
                 option(opt::kSetMetaContext, metaData("disk", {})), option(opt::kGo, infoData("disk", {}))}));
  EXPECT_TRUE(empty.m().result().metaContexts.empty());
}

TEST(NbdMetaContext, GoOnAnotherExportDropsTheSelection) {
  Session s;
  s.catalog.exports["other"] = {LookupStatus::Found, diskInfo()};
  s.run(cat({clientFlags(), option(opt::kStructuredReply),
             option(opt::kSetMetaContext, metaData("disk", {"base:allocation"})),
             option(opt::kGo, infoData("other", {}))}));
  EXPECT_EQ(s.m().result().exportName, "other");
  EXPECT_TRUE(s.m().result().metaContexts.empty());
}

// ---- Unknown options ----

TEST(NbdUnknownOption, UnsupportedAndDrained) {
  Session s;
  auto r = s.run(cat({clientFlags(), option(opt::kPeekExport), option(opt::kExtendedHeaders),
                      option(0xdeadbeef, Bytes(3000, 0xaa)), option(0, str("x")), option(opt::kList)}),
                 7);
  auto replies = parseReplies(r.output, kGreeting);
  ASSERT_EQ(typesOf(replies), (std::vector<std::uint32_t>{rep::kErrUnsup, rep::kErrUnsup, rep::kErrUnsup,
                                                          rep::kErrUnsup, rep::kAck}));
  EXPECT_EQ(replies[2].option, 0xdeadbeefu);
  EXPECT_EQ(replies[3].option, 0u);
}

// ---- Caps ----

TEST(NbdCaps, OptionOverItsCapIsTooBigAndDrained) {
  Session s;
  Bytes big = infoData("disk", std::vector<std::uint16_t>(5000, 0x7777));  // 4+4+2+10000 bytes
  ASSERT_GT(big.size(), s.limits.maxOptionLength);
  auto r = s.run(cat({clientFlags(), option(opt::kGo, big), option(opt::kGo, infoData("disk", {}))}), 1);
  auto replies = parseReplies(r.output, kGreeting);
  ASSERT_GE(replies.size(), 1u);
  EXPECT_EQ(replies[0].type, rep::kErrTooBig);
  EXPECT_EQ(r.events.back().event, HandshakeEvent::Complete);
  EXPECT_TRUE(s.catalog.lookups.size() == 1u);  // only the second GO reached the catalog
}

TEST(NbdCaps, AnOptionOfExactlyTheCapIsBuffered) {
  Session s;
  // 4 + 4 + 2 + 2n = 8192 -> n = 4091 info requests.
  Bytes data = infoData("disk", std::vector<std::uint16_t>(4091, info::kName));
  ASSERT_EQ(data.size(), 8192u);
  auto r = s.run(cat({clientFlags(), option(opt::kInfo, data)}));
  EXPECT_EQ(typesOf(parseReplies(r.output, kGreeting)), (std::vector<std::uint32_t>{rep::kInfo, rep::kInfo, rep::kAck}));
}

TEST(NbdCaps, OptionPastTheDrainLimitDisconnectsAtItsHeader) {
  Session s;
  // Only the header is sent: the machine must decide without waiting for (or storing) the data.
  auto r = s.run(cat({clientFlags(), optionHeader(0x1234, 64 * 1024 + 1)}));
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].event, HandshakeEvent::Disconnect);
  EXPECT_EQ(s.m().disconnectReason(), DisconnectReason::OptionTooLarge);
  Session g;
  g.run(cat({clientFlags(), optionHeader(opt::kGo, UINT32_MAX)}));
  EXPECT_EQ(g.m().disconnectReason(), DisconnectReason::OptionTooLarge);
  // Exactly the drain limit is drained and refused.
  Session d;
  auto ok = d.run(cat({clientFlags(), option(0x1234, Bytes(64 * 1024, 1)), option(opt::kList)}), 4096);
  EXPECT_TRUE(ok.events.empty());
  EXPECT_EQ(typesOf(parseReplies(ok.output, kGreeting)), (std::vector<std::uint32_t>{rep::kErrUnsup, rep::kAck}));
}

TEST(NbdCaps, TooManyOptionsDisconnects) {
  Session s;
  s.limits.maxOptions = 10;
  Bytes in = clientFlags();
  for (int i = 0; i < 11; ++i) in = cat({in, option(opt::kStructuredReply)});
  auto r = s.run(in);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].event, HandshakeEvent::Disconnect);
  EXPECT_EQ(s.m().disconnectReason(), DisconnectReason::TooManyOptions);
  EXPECT_EQ(parseReplies(r.output, kGreeting).size(), 10u);
  EXPECT_EQ(s.m().optionCount(), 11u);
}

TEST(NbdCaps, DefaultLimits) {
  HandshakeLimits l;
  EXPECT_EQ(l.maxOptionLength, 8192u);
  EXPECT_EQ(l.maxDrainLength, 64u * 1024);
  EXPECT_EQ(l.maxOptions, 256u);
}

// ---- Shutdown ----

TEST(NbdShutdown, OptionsAreRefusedButAbortIsAcknowledged) {
  Session s;
  s.m().beginShutdown();
  auto r = s.run(cat({clientFlags(), option(opt::kList), option(opt::kGo, infoData("disk", {})), option(77),
                      option(opt::kAbort)}));
  EXPECT_EQ(typesOf(parseReplies(r.output, kGreeting)),
            (std::vector<std::uint32_t>{rep::kErrShutdown, rep::kErrShutdown, rep::kErrShutdown, rep::kAck}));
  EXPECT_EQ(r.events.back().event, HandshakeEvent::Abort);
  Session e;
  e.m().beginShutdown();
  e.run(cat({clientFlags(), option(opt::kExportName, str("disk"))}));
  EXPECT_EQ(e.m().disconnectReason(), DisconnectReason::ShuttingDown);
}

}  // namespace
}  // namespace pxedust::nbd::wire
