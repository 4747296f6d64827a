// One iSCSI connection (RFC 7143): a reader coroutine that frames PDUs and dispatches them, a writer
// coroutine that drains the write queue, and a timer coroutine for NOP-In pings and the login time.
//
// Phases: login (only Login Requests, through the LoginMachine; anything else drops the
// connection) → full feature (SCSI, Data-Out, NOP, TMF, Text, Logout; a Login Request is
// rejected) → closing. Every way out has a Drop reason, a counter and one log line.
//
// Tasks (§4.2.2, §11.3, §11.7, §11.8): a SCSI Command is checked against the CmdSN window, planned
// by the Lun (direction, Data-Out bytes, or an immediate CHECK CONDITION), and collects its
// Data-Out: immediate data in the command PDU, unsolicited Data-Out until the F bit (when
// InitialR2T=No), then R2Ts for the rest — at most MaxOutstandingR2T at a time, each within
// MaxBurstLength. Then it runs on the Lun; Data-In goes out in PDUs of the initiator's
// MaxRecvDataSegmentLength, in sequences of MaxBurstLength, the status folded into the last one
// when there is no sense data, else a SCSI Response follows. A Data-Out out of DataSN order (an
// implied digest error, §7.9) ends its task with CHECK CONDITION 0B/47/05 once its outstanding
// sequences are in (§7.8: ERL 0 has no recovery R2T); the connection and its other tasks carry on.
// ABORT TASK for a task that already completed answers "Task does not exist" (§11.5.1). TARGET COLD
// RESET resets the LUN, answers, then closes every connection to the target (this host's only).
//
// Memory bounds: the framer caps each PDU; tasks hold at most kTaskBudget bytes of transfer
// buffers between them (more commands wait, in order, before they solicit or run); the reader
// stops reading while the write queue holds more than kWriteHighWater bytes.
//
// Completion contract: everything runs on the loop. The Connection is owned by its coroutines
// (shared_from_this) and by tasks running on the Lun; it lives until the last of them ends.
//
// One class in four files, along its seams: connection.cpp (lifetime, the reader, dispatch, NOP,
// Text, Logout, the timer), connection_login.cpp (the login phase, session admission and
// reinstatement), connection_tasks.cpp (SCSI tasks, Data-Out/R2T, task management) and
// connection_output.cpp (StatSN, Rejects, the write queue and the writer); connection_internal.hpp
// holds what they share (the Task record, queue()).
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "boot/event.hpp"
#include "event/loop.hpp"
#include "iscsi/login/login.hpp"
#include "iscsi/session.hpp"
#include "iscsi/stats.hpp"
#include "iscsi/target.hpp"
#include "iscsi/wire/framer.hpp"

namespace pxedust::iscsi {

class Connection;

// What the service shares with its connections; kept alive by them (shared_ptr).
struct ServiceContext {
  explicit ServiceContext(asio::any_io_executor ex) : executor(std::move(ex)) {}
  asio::any_io_executor executor;
  std::shared_ptr<const TargetRegistry> registry;
  std::shared_ptr<blockstore::WorkerPool> pool;  // the daemon's, shared with every block front-end
  std::unique_ptr<LunCache> luns;
  SessionTable sessions;
  TargetLimits limits;
  IscsiStats stats;
  RandomSource random;
  std::function<void(const boot::Event&)> events;  // the boot tracker (the service's event sink)
  std::map<std::uint64_t, std::weak_ptr<Connection>> connections;
  std::uint64_t nextConnectionId = 1;
  std::chrono::milliseconds loginTimeout{30'000};
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  static constexpr std::size_t kTaskBudget = 64u << 20;
  static constexpr std::size_t kWriteHighWater = 16u << 20;
  static constexpr std::size_t kReadBuffer = 256u << 10;
  // SO_SNDBUF (the kernel doubles it, capped by net.core.wmem_max), so a 1 MiB Data-In sequence
  // never waits on the sender's own buffer. Measured on loopback against libiscsi it did not cut the
  // ~16 sendmsg calls per MiB: the receiver's window is what they wait on (bench/iscsi/README.md).
  static constexpr int kSendBuffer = 2 << 20;

  Connection(std::shared_ptr<ServiceContext> ctx, asio::ip::tcp::socket socket, event::ShutdownGate::Ticket ticket,
             std::uint64_t id);
  ~Connection();

  void start();
  // Ends the connection now (reinstatement, target removed, shutdown cut-off): the socket closes,
  // tasks are aborted (their responses dropped).
  void abort(Drop why, std::string_view reason);
  // Shutdown: stop reading, let tasks in flight finish and their responses go out, then close.
  void drain(Drop why);

  [[nodiscard]] std::uint64_t id() const { return id_; }
  [[nodiscard]] const asio::ip::address& peerAddress() const { return peerAddress_; }
  [[nodiscard]] const std::shared_ptr<Session>& session() const { return session_; }

 private:
  struct Task;
  struct OutPdu {
    std::vector<std::uint8_t> head;  // BHS + header digest
    std::shared_ptr<const std::vector<std::uint8_t>> data;
    std::size_t offset = 0, length = 0;
    // Or the data is the next `length` bytes of a chain of spliced pages (a large READ): sent with
    // splice(2), no copy. Never with a data digest (the bytes are not ours to read).
    std::shared_ptr<blockstore::PipeChain> pipe;
    std::array<std::uint8_t, 8> tail{};  // padding + data digest
    std::size_t tailLength = 0;
  };

  asio::awaitable<void> readLoop();
  asio::awaitable<void> writeLoop();
  asio::awaitable<void> timerLoop();
  asio::awaitable<void> finish();

  // Returns false when the connection must end.
  asio::awaitable<bool> rxPdu(wire::RxPdu& pdu);
  asio::awaitable<bool> rxLogin(const wire::LoginRequest& h, std::span<const std::uint8_t> data);
  bool rxFullFeature(const wire::InitiatorHeader& h, wire::RxPdu& pdu);
  bool rxScsiCommand(const wire::ScsiCommand& h, wire::RxPdu& pdu);
  bool rxDataOut(const wire::DataOut& h, wire::RxPdu& pdu);
  bool rxNopOut(const wire::NopOut& h, wire::RxPdu& pdu);
  bool rxTaskMgmt(const wire::TaskMgmtRequest& h, wire::RxPdu& pdu);
  bool rxText(const wire::TextRequest& h, wire::RxPdu& pdu);
  bool rxLogout(const wire::LogoutRequest& h, wire::RxPdu& pdu);

  // Tasks.
  void admitTasks();
  void solicit(const std::shared_ptr<Task>& t);
  void maybeRun(const std::shared_ptr<Task>& t);
  asio::awaitable<void> runTask(std::shared_ptr<Task> t);
  void sendResponse(Task& t, scsi::Response& r);
  void endTask(Task& t);
  asio::awaitable<void> finishTmf(std::vector<std::shared_ptr<Task>> waitFor, wire::TaskMgmtResponse rsp,
                                  bool closeTarget);
  asio::awaitable<void> finishLogout(wire::LogoutResponse rsp);
  std::vector<std::shared_ptr<Task>> abortTasks(std::optional<std::uint32_t> itt);

  // Output.
  void reject(wire::RejectReason reason, const wire::Bhs& bhs, Drop why, std::string_view detail);
  template <typename H>
  void queue(H header, std::shared_ptr<const std::vector<std::uint8_t>> data = nullptr, std::size_t offset = 0,
             std::size_t length = 0, std::shared_ptr<blockstore::PipeChain> pipe = nullptr);
  // Sends one PDU whose data is spliced: the head, the pages, the tail; waits when the socket is full.
  asio::awaitable<std::error_code> sendSpliced(OutPdu& p, bool moreFollows);
  void fillSn(std::uint32_t& statSn, std::uint32_t& expCmdSn, std::uint32_t& maxCmdSn, bool advance);
  void sendTextAnswer(std::uint32_t itt, std::vector<std::uint8_t> answer);

  void closeSocket();
  void endSession();
  [[nodiscard]] std::string portal() const;

  std::shared_ptr<ServiceContext> ctx_;
  asio::ip::tcp::socket socket_;
  std::optional<event::ShutdownGate::Ticket> ticket_;
  std::uint64_t id_;
  // Reports a login, logout or refused login of a normal session to the boot tracker.
  void reportDisk(boot::DiskKind kind, std::string_view initiator, std::string_view target, std::string_view reason);

  std::string peer_;
  asio::ip::address peerAddress_;
  asio::ip::tcp::endpoint local_;

  wire::PduFramer framer_;
  std::unique_ptr<LoginMachine> login_;
  std::shared_ptr<Session> session_;
  SessionParams params_;
  bool fullFeature_ = false;
  bool closed_ = false;      // socket closed; nothing more is sent
  bool stopReading_ = false; // logout or drain: the reader ends after this PDU
  bool coldReset_ = false;   // TARGET COLD RESET received: later PDUs are ignored until the close
  Drop endReason_ = Drop::PeerClosed;
  std::string endDetail_;

  std::uint32_t statSn_ = 0;
  std::uint32_t loginCmdSn_ = 0;
  bool loginStarted_ = false;
  std::optional<wire::LogoutResponse> pendingLogout_;  // sent once tasks in flight are done
  std::deque<std::uint32_t> abortedItts_;  // late Data-Out for these is dropped quietly
  std::uint32_t rejectsSent_ = 0;

  std::map<std::uint32_t, std::shared_ptr<Task>> tasks_;  // by ITT
  std::map<std::uint32_t, std::shared_ptr<Task>> byTtt_;
  std::deque<std::shared_ptr<Task>> waiting_;  // over the byte budget, in arrival order
  std::size_t budgetUsed_ = 0;
  std::uint32_t nextTtt_ = 1;
  std::size_t executing_ = 0;

  // Text continuation (SendTargets answers longer than one PDU, §6.2 / §11.11).
  std::vector<std::uint8_t> textPending_;
  std::size_t textOffset_ = 0;
  std::uint32_t textTtt_ = wire::kReservedTag;
  wire::TextAccumulator textIn_{32 * 1024};

  std::deque<OutPdu> outq_;
  std::size_t outBytes_ = 0;
  asio::steady_timer writeSignal_;
  asio::steady_timer drainSignal_;  // woken when the write queue empties
  asio::steady_timer idleSignal_;   // woken when no task is executing
  asio::steady_timer timer_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point lastRx_;
  std::optional<std::chrono::steady_clock::time_point> pingSent_;
  std::uint32_t pingTtt_ = 0;
  bool writerDone_ = false;
  std::vector<std::uint8_t> rxBuf_;
};

}  // namespace pxedust::iscsi
