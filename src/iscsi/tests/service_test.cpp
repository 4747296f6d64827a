// The real IscsiService on loopback, driven by a scripted initiator built on the wire codec (a fake
// client against the real server): the transport behaviours real initiators never show on demand,
// such as a Data-Out out of DataSN order, an ABORT TASK that races its task's completion, a CmdSN
// the initiator skipped, or an Expected Data Transfer Length that disagrees with the CDB.
#include "iscsi/service.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/post.hpp>
#include <future>
#include <thread>

#include "blockstore/tests/test_util.hpp"
#include "config/config.hpp"
#include "iscsi/config.hpp"
#include "inventory/inventory.hpp"
#include "iscsi/tests/login_test_util.hpp"
#include "iscsi/wire/pdu.hpp"
#include "scsi/cdb.hpp"
#include "scsi/sense.hpp"

namespace pxedust::iscsi {
namespace {

using Bytes = std::vector<std::uint8_t>;
constexpr std::string_view kInitiator = "iqn.2026-01.test:node1";
constexpr std::string_view kTarget = "iqn.2026-11.org.pxedust:node1";

struct RxPdu {
  wire::Bhs bhs{};
  wire::TargetHeader header;
  Bytes data;
};

// A blocking initiator: one PDU out, one PDU in, with a receive timeout.
class Initiator {
 public:
  explicit Initiator(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Initiator() { ::close(fd_); }
  Initiator(const Initiator&) = delete;
  Initiator& operator=(const Initiator&) = delete;

  template <typename H>
  void send(H h, const Bytes& data = {}) {
    h.dataSegmentLength = static_cast<std::uint32_t>(data.size());
    wire::Bhs bhs = wire::serialize(h);
    Bytes out(bhs.begin(), bhs.end());
    out.insert(out.end(), data.begin(), data.end());
    out.resize(out.size() + wire::pad4(static_cast<std::uint32_t>(data.size())), 0);
    std::size_t sent = 0;
    while (sent < out.size()) {
      ssize_t n = ::send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
  }

  // The next PDU, or nullopt on timeout or close. NOP-In pings are answered and skipped.
  std::optional<RxPdu> receive() {
    for (;;) {
      RxPdu p;
      if (!readExactly(p.bhs.data(), p.bhs.size())) return std::nullopt;
      const std::uint32_t len = (std::uint32_t{p.bhs[5]} << 16) | (std::uint32_t{p.bhs[6]} << 8) | p.bhs[7];
      p.data.resize(len + wire::pad4(len));
      if (!readExactly(p.data.data(), p.data.size())) return std::nullopt;
      p.data.resize(len);
      auto h = wire::parseTargetHeader(p.bhs);
      if (!h) return std::nullopt;
      p.header = *h;
      if (const auto* nop = std::get_if<wire::NopIn>(&p.header); nop && nop->targetTransferTag != wire::kReservedTag) {
        wire::NopOut pong;
        pong.immediate = true;
        pong.initiatorTaskTag = wire::kReservedTag;
        pong.targetTransferTag = nop->targetTransferTag;
        pong.cmdSn = cmdSn_;
        send(pong);
        continue;
      }
      return p;
    }
  }
  template <typename H>
  std::optional<H> receiveAs() {
    auto p = receive();
    if (!p) return std::nullopt;
    if (const auto* h = std::get_if<H>(&p->header)) {
      last_ = std::move(*p);
      return *h;
    }
    ADD_FAILURE() << "unexpected PDU opcode " << static_cast<int>(p->bhs[0] & 0x3f);
    return std::nullopt;
  }
  // True when the target closed the connection (EOF) within the timeout.
  bool closedByTarget() {
    std::uint8_t b;
    return ::recv(fd_, &b, 1, 0) == 0;
  }

  // A Normal session with libiscsi's operational keys (InitialR2T=No, ImmediateData=Yes) unless
  // `overrides` says otherwise; true when the full feature phase is reached.
  bool login(const testing::Pairs& overrides = {}, std::uint8_t isidLow = 1) {
    testing::Pairs keys{{"InitiatorName", std::string(kInitiator)},
                        {"SessionType", "Normal"},
                        {"TargetName", std::string(kTarget)}};
    for (auto kv : testing::libiscsiOperational()) {
      for (const auto& [k, v] : overrides)
        if (k == kv.first) kv.second = v;
      keys.push_back(kv);
    }
    Bytes text = testing::textOf(keys);
    for (int round = 0; round < 4; ++round) {
      wire::LoginRequest req;
      req.immediate = true;
      req.transit = true;
      req.csg = 1;
      req.nsg = 3;
      req.isid = {0x80, 0, 0, 0, 0, isidLow};
      req.initiatorTaskTag = 1;
      req.cmdSn = cmdSn_;
      send(req, text);
      auto rsp = receiveAs<wire::LoginResponse>();
      if (!rsp || rsp->statusClass != 0) return false;
      if (rsp->transit && rsp->nsg == 3) return true;
      text.clear();
    }
    return false;
  }

  // Sends a SCSI Command; returns its CmdSN.
  std::uint32_t command(std::uint32_t itt, const Bytes& cdb, std::uint32_t edtl, bool write, const Bytes& immediate = {},
                        bool final = true) {
    wire::ScsiCommand c;
    c.initiatorTaskTag = itt;
    c.final = final;
    c.write = write;
    c.read = !write && edtl > 0;
    c.attr = 1;  // SIMPLE
    c.expectedDataTransferLength = edtl;
    c.cmdSn = cmdSn_++;
    std::copy(cdb.begin(), cdb.end(), c.cdb.begin());
    send(c, immediate);
    return c.cmdSn;
  }
  void dataOut(std::uint32_t itt, std::uint32_t ttt, std::uint32_t dataSn, std::uint32_t offset, const Bytes& data,
               bool final) {
    wire::DataOut d;
    d.initiatorTaskTag = itt;
    d.targetTransferTag = ttt;
    d.dataSn = dataSn;
    d.bufferOffset = offset;
    d.final = final;
    send(d, data);
  }

  // Reads PDUs of one task until its status: the Data-In bytes and the status PDU's fields.
  struct Status {
    std::uint8_t status = 0xff;
    bool overflow = false, underflow = false;
    std::uint32_t residual = 0;
    Bytes dataIn;
    Bytes sense;  // without the SenseLength prefix
  };
  std::optional<Status> status() {
    Status s;
    for (;;) {
      auto p = receive();
      if (!p) return std::nullopt;
      if (const auto* d = std::get_if<wire::DataIn>(&p->header)) {
        s.dataIn.insert(s.dataIn.end(), p->data.begin(), p->data.end());
        if (!d->statusPresent) continue;
        s.status = d->status;
        s.overflow = d->residualOverflow;
        s.underflow = d->residualUnderflow;
        s.residual = d->residualCount;
        return s;
      }
      if (const auto* r = std::get_if<wire::ScsiResponse>(&p->header)) {
        s.status = r->status;
        s.overflow = r->residualOverflow;
        s.underflow = r->residualUnderflow;
        s.residual = r->residualCount;
        if (p->data.size() > 2) s.sense.assign(p->data.begin() + 2, p->data.end());
        return s;
      }
      ADD_FAILURE() << "unexpected PDU opcode " << static_cast<int>(p->bhs[0] & 0x3f);
      return std::nullopt;
    }
  }

  [[nodiscard]] bool connected() const { return connected_; }
  [[nodiscard]] std::uint32_t nextCmdSn() const { return cmdSn_; }
  void skipCmdSn() { ++cmdSn_; }
  RxPdu last_;

 private:
  bool readExactly(std::uint8_t* p, std::size_t n) {
    std::size_t got = 0;
    while (got < n) {
      ssize_t r = ::recv(fd_, p + got, n - got, 0);
      if (r <= 0) return false;
      got += static_cast<std::size_t>(r);
    }
    return true;
  }
  int fd_ = -1;
  bool connected_ = false;
  std::uint32_t cmdSn_ = 1;
};

Bytes cdb10(std::uint8_t op, std::uint32_t lba, std::uint16_t blocks, std::uint8_t b1 = 0) {
  Bytes c(10, 0);
  c[0] = op;
  c[1] = b1;
  scsi::putBe32(c.data() + 2, lba);
  scsi::putBe16(c.data() + 7, blocks);
  return c;
}

scsi::SenseData senseOf(const Initiator::Status& s) {
  return scsi::parseFixedSense(s.sense).value_or(scsi::SenseData{});
}

class IscsiServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = blockstore::Store::open(dir_ / "store");
    ASSERT_TRUE(store) << store.error().message;
    base_ = blockstore::testing::randomBytes(1 << 20, 21);
    blockstore::testing::writeWhole(dir_ / "base.img", base_);
    ASSERT_TRUE((*store)->importImage(dir_ / "base.img", "base"));
    auto cfg = config::loadString(R"(
[iscsi]
nop_interval = 30
[[host]]
name = "node1"
image = "base"
iscsi_allow = ["127.0.0.0/8"]
iscsi_initiators = ["iqn.2026-01.test:node1"]
)",
                                  "iscsi.toml", {schema()});
    auto iscsi = *configIn(cfg);
    iscsi.listen = {{asio::ip::make_address("127.0.0.1"), 0}};  // any free port
    service_ = std::make_unique<IscsiService>(loop_, std::make_shared<blockstore::HostDisks>(*store),
                                              std::make_shared<blockstore::WorkerPool>(2));
    auto r = service_->apply(iscsi, inventory::Inventory::fromConfig(cfg));
    ASSERT_TRUE(r.ok()) << r.error().message;
    port_ = service_->listenEndpoints().at(0).port();
    thread_ = std::thread([this] { loop_.run(); });
  }
  void TearDown() override { stop(); }
  void stop() {
    if (!thread_.joinable()) return;
    std::promise<void> done;
    asio::post(loop_.io(), [this, &done] {
      service_->stop();
      service_->abortConnections();
      done.set_value();
    });
    done.get_future().wait();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    loop_.stop();
    thread_.join();
  }
  // Logs in and clears the new nexus's UNIT ATTENTION with a TEST UNIT READY.
  std::unique_ptr<Initiator> session(const testing::Pairs& overrides = {}, std::uint8_t isidLow = 1) {
    auto c = std::make_unique<Initiator>(port_);
    EXPECT_TRUE(c->connected());
    EXPECT_TRUE(c->login(overrides, isidLow));
    c->command(0x100, Bytes(6, 0), 0, false);
    auto s = c->status();
    EXPECT_TRUE(s);
    return c;
  }
  Bytes baseBlock(std::uint64_t lba, std::size_t blocks = 1) const {
    return Bytes(base_.begin() + static_cast<std::ptrdiff_t>(lba * 512),
                 base_.begin() + static_cast<std::ptrdiff_t>((lba + blocks) * 512));
  }
  Bytes read(Initiator& c, std::uint32_t lba, std::uint16_t blocks) {
    c.command(0x200 + lba, cdb10(0x28, lba, blocks), blocks * 512u, false);
    auto s = c.status();
    EXPECT_TRUE(s && s->status == 0);
    return s ? s->dataIn : Bytes{};
  }

  blockstore::testing::TempDir dir_;
  Bytes base_;
  event::Loop loop_;
  std::unique_ptr<IscsiService> service_;
  std::thread thread_;
  std::uint16_t port_ = 0;
};

TEST_F(IscsiServiceTest, DataSnOutOfOrderEndsTheTaskNotTheConnection) {
  auto c = session();
  // Unsolicited Data-Out (InitialR2T=No) sent in reverse order: DataSN 1 first.
  c->command(1, cdb10(0x2A, 100, 2), 1024, true, {}, false);
  c->dataOut(1, wire::kReservedTag, 1, 512, Bytes(512, 0xA6), false);
  c->dataOut(1, wire::kReservedTag, 0, 0, Bytes(512, 0xA6), true);
  auto s = c->status();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->status, 0x02);
  EXPECT_EQ(senseOf(*s), scsi::abortedCommand(scsi::asc::kProtocolServiceCrcError));
  // Solicited Data-Out (R2T) with a wrong DataSN: the same, once the sequence's last PDU is in.
  c->command(2, cdb10(0x2A, 100, 2), 1024, true);
  auto r2t = c->receiveAs<wire::R2t>();
  ASSERT_TRUE(r2t);
  EXPECT_EQ(r2t->desiredDataTransferLength, 1024u);
  c->dataOut(2, r2t->targetTransferTag, 27, 0, Bytes(512, 0xA6), false);
  c->dataOut(2, r2t->targetTransferTag, 28, 512, Bytes(512, 0xA6), true);
  s = c->status();
  ASSERT_TRUE(s);
  EXPECT_EQ(senseOf(*s), scsi::abortedCommand(scsi::asc::kProtocolServiceCrcError));
  // Nothing was written, and the connection still works.
  EXPECT_EQ(read(*c, 100, 2), baseBlock(100, 2));
  c->command(3, cdb10(0x2A, 100, 1), 512, true, Bytes(512, 0x5A));
  s = c->status();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->status, 0);
  EXPECT_EQ(read(*c, 100, 1), Bytes(512, 0x5A));
  stop();
  EXPECT_EQ(service_->stats().drops[static_cast<std::size_t>(Drop::DataSequence)], 2u);
  EXPECT_EQ(service_->stats().drops[static_cast<std::size_t>(Drop::ProtocolError)], 0u);
}

TEST_F(IscsiServiceTest, AbortTaskAfterItsCompletionAndForASkippedCmdSn) {
  auto c = session();
  const std::uint32_t sn = c->command(7, cdb10(0x2A, 8, 1), 512, true, Bytes(512, 1));
  auto s = c->status();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->status, 0);
  // §11.5.1 c): the task completed, its CmdSN is below ExpCmdSN: "Task does not exist".
  wire::TaskMgmtRequest tmf;
  tmf.immediate = true;
  tmf.function = static_cast<std::uint8_t>(wire::TmfFunction::AbortTask);
  tmf.initiatorTaskTag = 8;
  tmf.referencedTaskTag = 7;
  tmf.refCmdSn = sn;
  tmf.cmdSn = c->nextCmdSn();
  c->send(tmf);
  auto rsp = c->receiveAs<wire::TaskMgmtResponse>();
  ASSERT_TRUE(rsp);
  EXPECT_EQ(rsp->response, static_cast<std::uint8_t>(wire::TmfResponseCode::TaskDoesNotExist));
  // §11.5.1 b): a CmdSN the initiator used for a command it never sent: aborted, counted as
  // received, so the next command is inside the window.
  const std::uint32_t skipped = c->nextCmdSn();
  c->skipCmdSn();
  tmf.initiatorTaskTag = 9;
  tmf.referencedTaskTag = 0x77;
  tmf.refCmdSn = skipped;
  tmf.cmdSn = c->nextCmdSn();
  c->send(tmf);
  rsp = c->receiveAs<wire::TaskMgmtResponse>();
  ASSERT_TRUE(rsp);
  EXPECT_EQ(rsp->response, static_cast<std::uint8_t>(wire::TmfResponseCode::FunctionComplete));
  EXPECT_EQ(scsi::getBe32(c->last_.bhs.data() + 28), c->nextCmdSn());  // ExpCmdSN moved past the skipped one
  EXPECT_EQ(read(*c, 8, 1), Bytes(512, 1));
  // A referenced CmdSN from the future (past this request) does not exist either.
  tmf.initiatorTaskTag = 10;
  tmf.refCmdSn = c->nextCmdSn() + 5;
  tmf.cmdSn = c->nextCmdSn();
  c->send(tmf);
  rsp = c->receiveAs<wire::TaskMgmtResponse>();
  ASSERT_TRUE(rsp);
  EXPECT_EQ(rsp->response, static_cast<std::uint8_t>(wire::TmfResponseCode::TaskDoesNotExist));
}

TEST_F(IscsiServiceTest, ExpectedLengthThatDisagreesWithTheCdb) {
  auto c = session();
  // WRITE(10) of 2 blocks, 1 block expected and sent as immediate data: no R2T, one block
  // written, overflow 512.
  c->command(1, cdb10(0x2A, 40, 2), 512, true, Bytes(512, 0x62));
  auto s = c->status();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->status, 0);
  EXPECT_TRUE(s->overflow);
  EXPECT_EQ(s->residual, 512u);
  Bytes want(512, 0x62);
  auto second = baseBlock(41);
  want.insert(want.end(), second.begin(), second.end());
  EXPECT_EQ(read(*c, 40, 2), want);
  // WRITE(10) of 1 block with 4 blocks expected, all sent: the first block is written, underflow.
  Bytes four(2048, 0x63);
  c->command(2, cdb10(0x2A, 50, 1), 2048, true, four);
  s = c->status();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->status, 0);
  EXPECT_TRUE(s->underflow);
  EXPECT_EQ(s->residual, 1536u);
  EXPECT_EQ(read(*c, 50, 2), [&] {
    Bytes w(512, 0x63);
    auto b = baseBlock(51);
    w.insert(w.end(), b.begin(), b.end());
    return w;
  }());
  // WRITE(10) with expected length 0: nothing written, overflow of the whole block.
  c->command(3, cdb10(0x2A, 60, 1), 0, true);
  s = c->status();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->status, 0);
  EXPECT_TRUE(s->overflow);
  EXPECT_EQ(s->residual, 512u);
  EXPECT_EQ(read(*c, 60, 1), baseBlock(60));
  // COMPARE AND WRITE with 0 blocks (what 256 becomes in its one-byte field) but data announced and
  // sent: INVALID FIELD IN CDB, the data drained, the connection fine.
  Bytes caw(16, 0);
  caw[0] = 0x89;
  c->command(4, caw, 2048, true, Bytes(1024, 0), false);
  c->dataOut(4, wire::kReservedTag, 0, 1024, Bytes(1024, 0), true);
  s = c->status();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->status, 0x02);
  EXPECT_EQ(senseOf(*s), scsi::invalidFieldInCdb(13));
  EXPECT_EQ(read(*c, 0, 1), baseBlock(0));
}

TEST_F(IscsiServiceTest, TargetColdResetAnswersThenClosesEveryConnectionOfTheTarget) {
  auto a = session({}, 1);
  auto b = session({}, 2);
  // RESERVE(6) from a: b conflicts until the reset.
  a->command(1, Bytes{0x16, 0, 0, 0, 0, 0}, 0, false);
  auto s = a->status();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->status, 0);
  wire::TaskMgmtRequest tmf;
  tmf.immediate = true;
  tmf.function = static_cast<std::uint8_t>(wire::TmfFunction::TargetColdReset);
  tmf.initiatorTaskTag = 2;
  tmf.cmdSn = a->nextCmdSn();
  a->send(tmf);
  auto rsp = a->receiveAs<wire::TaskMgmtResponse>();
  ASSERT_TRUE(rsp);
  EXPECT_EQ(rsp->response, static_cast<std::uint8_t>(wire::TmfResponseCode::FunctionComplete));
  EXPECT_TRUE(a->closedByTarget());
  EXPECT_TRUE(b->closedByTarget());
  // A new session gets in and may reserve: the reservation went with the reset.
  auto c = session({}, 3);
  c->command(1, Bytes{0x16, 0, 0, 0, 0, 0}, 0, false);
  s = c->status();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->status, 0);
  stop();
  EXPECT_EQ(service_->stats().drops[static_cast<std::size_t>(Drop::TargetReset)], 2u);
}

}  // namespace
}  // namespace pxedust::iscsi
