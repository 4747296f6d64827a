// One NBD connection (doc/proto.md): the fixed newstyle handshake through wire::HandshakeMachine, then
// the transmission phase on the host's disk. A session is one connection from GO/EXPORT_NAME to its
// close.
//
// Phases, one table-free line each (the states are few): Handshake (options; the handshake timer
// runs) -> Transmission (requests; the idle timer runs when configured) -> Closing (no more reading;
// requests in flight finish, their replies go out, then the socket closes). In every phase a write
// that makes no progress for send_timeout ends the connection (a client that stopped reading would
// otherwise hold its buffers and its session forever). Every way out has a Drop reason, a counter
// and one log line.
//
// Handshake. The reader frames options itself (the 4 client flag bytes, then a 16-byte header and
// its data) and feeds each whole option to the machine, which decides everything. Before an option
// that names an export (EXPORT_NAME, INFO, GO, LIST/SET_META_CONTEXT) it peeks at the name and, when
// this client may open that export and its disk is not open yet, opens it on a worker (the catalog's
// answers are synchronous and need the disk's size). An option over the machine's buffer cap is fed
// in pieces (the machine drains it or hangs up); nothing is read past the option.
//
// Transmission. The reader reads one 28-byte header, asks wire::validateRequest() what to do, and:
// refused -> drains a WRITE's payload (the verdict says how much) and queues the error reply; accepted
// -> waits for a slot (at most max_in_flight requests and kInFlightBudget bytes of buffers in flight,
// and the write queue under kWriteHighWater), reads a WRITE's payload into a buffer the verdict has
// bounded by the 32 MiB maximum payload, and starts the request on the disk (AsyncBlockDevice: the
// worker pool, or inline for page-cache hits), then reads the next header at once. Replies go out in
// completion order (the cookie pairs them): structured chunks when negotiated, else simple replies.
//
// TLS (doc/proto.md "TLS support"; nbd/tls.hpp). When the machine answers STARTTLS (StartTls), its
// ACK goes out in the clear; once the writer has sent it, a TlsSession starts on the same connection,
// the bytes already read past the option are its first input, and the reader runs the TLS server
// handshake (readTlsInput() reads ciphertext on the loop; the writer sends what the session made).
// From then on there is still one reader and one writer, and the same code above them: readSome()
// returns plaintext from TLS instead of from the socket, and the writer encrypts each batch of
// replies before it writes. The handshake timer runs through the TLS handshake. A TLS failure (no or
// bad ClientHello, unknown identity or wrong key, a record that does not decrypt) ends that
// connection with Drop::TlsFailed and its alert, and nothing else. A clean end sends close_notify.
//
// Completion contract: everything runs on the loop. The Connection is owned by its coroutines
// (shared_from_this) and by requests in flight; it lives until the last of them ends.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "boot/event.hpp"
#include "event/loop.hpp"
#include "blockstore/pipe_chain.hpp"
#include "nbd/exports.hpp"
#include "nbd/stats.hpp"
#include "nbd/tls.hpp"
#include "nbd/wire/handshake.hpp"
#include "nbd/wire/transmission.hpp"

namespace pxedust::nbd {

class Connection;

// What the service shares with its connections; kept alive by them (shared_ptr).
struct ServiceContext {
  explicit ServiceContext(asio::any_io_executor ex) : executor(std::move(ex)) {}
  asio::any_io_executor executor;
  std::shared_ptr<const ExportRegistry> registry;
  std::shared_ptr<blockstore::WorkerPool> pool;  // the daemon's, shared with every block front-end
  std::unique_ptr<DiskCache> disks;
  NbdStats stats;
  std::function<void(const boot::Event&)> events;  // the boot tracker (the service's event sink)
  std::map<std::uint64_t, std::weak_ptr<Connection>> connections;
  std::uint64_t nextConnectionId = 1;
  std::size_t sessions = 0;  // connections in the transmission phase
  bool shuttingDown = false;
};

class Connection : public std::enable_shared_from_this<Connection>, private wire::ExportCatalog {
 public:
  // Bytes of request buffers (READ data, WRITE payload) in flight at once; a request that does not
  // fit waits (one always fits when nothing else is in flight). Two maximum payloads.
  static constexpr std::size_t kInFlightBudget = 64u << 20;
  // Replies queued beyond this stop the reader until the writer catches up.
  static constexpr std::size_t kWriteHighWater = 16u << 20;
  static constexpr std::size_t kReadBuffer = 256u << 10;
  // READs of at least this many bytes on a plain TCP connection go by splice: page references from
  // the page cache into the socket, no copy through our memory (blockstore/pipe_chain.hpp).
  static constexpr std::size_t kSpliceMin = 64u << 10;

  Connection(std::shared_ptr<ServiceContext> ctx, asio::ip::tcp::socket socket, event::ShutdownGate::Ticket ticket,
             std::uint64_t id);
  ~Connection() override;

  void start();
  // Ends the connection now (export removed, disk released, shutdown cut-off): the socket closes;
  // requests in flight finish on the disk, their replies are dropped.
  void abort(Drop why, std::string_view reason);
  // Shutdown: stop reading, let requests in flight finish and their replies go out, then close.
  void drain(Drop why);

  [[nodiscard]] std::uint64_t id() const { return id_; }
  [[nodiscard]] const asio::ip::address& peerAddress() const { return peerAddress_; }
  // The peer as the access rule sees it: address, TLS, PSK identity.
  [[nodiscard]] Client client() const { return Client{peerAddress_, tlsState_ == TlsState::Up, pskIdentity_}; }
  [[nodiscard]] bool inSession() const { return phase_ == Phase::Transmission && disk_ != nullptr; }
  // A session on a base image export (read-only), not on a host's disk.
  [[nodiscard]] bool imageSession() const { return disk_ && disk_->host.empty(); }
  // The session's host and export (empty before GO/EXPORT_NAME).
  [[nodiscard]] const std::string& host() const { return host_; }
  [[nodiscard]] const std::string& exportName() const { return exportName_; }
  [[nodiscard]] const std::string& image() const;
  // Whether it holds `host`'s open disk: its session's, or the one a handshake's INFO/GO looked up.
  [[nodiscard]] bool holdsDisk(std::string_view host) const {
    return (disk_ && !disk_->host.empty() && disk_->host == host) || (chosen_ && !chosen_->host.empty() && chosen_->host == host);
  }

 private:
  enum class Phase : std::uint8_t { Handshake, Transmission, Closing };
  enum class TlsState : std::uint8_t { None, Handshaking, Up };
  struct OutMessage {
    std::vector<std::uint8_t> head;
    std::vector<std::uint8_t> data;  // a READ's data after its reply header (back to the BufferPool once sent)
    std::shared_ptr<blockstore::PipeChain> pipe;  // or a large READ's data as page references (no TLS)
    std::size_t pipeLength = 0;
  };

  // wire::ExportCatalog
  [[nodiscard]] wire::TlsMode tlsMode() const override { return tlsMode_; }
  std::vector<wire::ExportListing> listExports(bool tlsActive) override;
  wire::ExportLookup lookupExport(std::string_view name, bool tlsActive) override;
  wire::ExportLookup refuse(wire::LookupStatus status, const Export* e, std::string_view reason);
  wire::ExportLookup lookupImage(std::string_view name);

  asio::awaitable<void> readLoop();
  asio::awaitable<bool> handshake();
  asio::awaitable<void> prepareExport(std::uint32_t option, std::span<const std::uint8_t> data);
  asio::awaitable<void> prepareImage(std::string name);
  bool feedMachine(std::span<const std::uint8_t> bytes, bool& done);
  // feedMachine(), then the TLS handshake when the machine asked for it (false: the connection ends).
  asio::awaitable<bool> feed(std::span<const std::uint8_t> bytes, bool& done);
  asio::awaitable<bool> startTls();
  asio::awaitable<void> transmit();
  asio::awaitable<void> execute(wire::Request req, std::vector<std::uint8_t> buffer, std::size_t cost);
  asio::awaitable<Result<void>> writeZeroData(std::uint64_t offset, std::uint64_t length, bool fua);
  asio::awaitable<Result<void>> cacheRange(std::uint64_t offset, std::uint64_t length);
  asio::awaitable<void> writeLoop();
  asio::awaitable<void> timerLoop();
  asio::awaitable<void> finish();

  // Reads exactly `n` bytes (false: the connection ended; endReason_ says why).
  asio::awaitable<bool> readExact(std::uint8_t* dst, std::size_t n);
  // Some bytes of the stream, 1..n: from the socket, or decrypted once TLS runs (0: it ended).
  asio::awaitable<std::size_t> readSome(std::uint8_t* dst, std::size_t n);
  // Ciphertext from the socket into the TLS session (false: the connection ended).
  asio::awaitable<bool> readTlsInput();
  void noteTlsFailure(std::string_view what);
  // Nothing queued, no ciphertext waiting, no write in progress.
  [[nodiscard]] bool outputIdle() const { return outq_.empty() && !(tls_ && tls_->hasOutput()) && !writing_; }
  asio::awaitable<bool> discard(std::size_t n);
  void noteReadEnd(const std::error_code& ec);

  void queue(std::vector<std::uint8_t> head, std::vector<std::uint8_t> data = {});
  void queue(std::vector<std::uint8_t> head, std::shared_ptr<blockstore::PipeChain> pipe, std::size_t length);
  // The front message, a spliced READ: its header, then the pipe's pages into the socket.
  asio::awaitable<std::error_code> sendSpliced(OutMessage& m, bool moreFollows);
  // Drops the first `count` messages, sent; their READ buffers go back to the pool.
  void popOutput(std::size_t count);
  void queueError(std::uint64_t cookie, wire::Errno error, std::string_view message);
  void requestDone(std::size_t cost);
  void closeSocket();
  // Reports a session's start or end, or a refused GO/EXPORT_NAME, to the boot tracker.
  void reportDisk(boot::DiskKind kind, std::string_view host, std::string_view reason);

  std::shared_ptr<ServiceContext> ctx_;
  asio::ip::tcp::socket socket_;
  std::optional<event::ShutdownGate::Ticket> ticket_;
  std::uint64_t id_;
  std::string peer_;
  asio::ip::address peerAddress_;

  Phase phase_ = Phase::Handshake;
  std::unique_ptr<wire::HandshakeMachine> machine_;
  std::uint32_t currentOption_ = 0;                  // the option being fed to the machine
  std::map<std::string, std::string, std::less<>> openErrors_;  // export -> why its disk did not open
  std::shared_ptr<OpenDisk> chosen_;                 // the disk of the last export a lookup found
  std::string chosenName_, chosenHost_;
  std::map<std::string, std::shared_ptr<OpenDisk>, std::less<>> preparedImages_;  // image exports opened

  // TLS, as [nbd] said when the connection was accepted (the spec: the mode never changes mid-connection).
  wire::TlsMode tlsMode_ = wire::TlsMode::None;
  std::shared_ptr<const TlsCredentials> tlsCredentials_;
  std::unique_ptr<TlsSession> tls_;
  TlsState tlsState_ = TlsState::None;
  bool tlsRequested_ = false;              // the machine said StartTls
  std::optional<std::string> pskIdentity_;  // proved in the TLS handshake
  std::vector<std::uint8_t> wire_;          // ciphertext being written
  bool writing_ = false;
  std::chrono::steady_clock::time_point writeSince_;  // when the write in progress began (send_timeout)

  std::shared_ptr<OpenDisk> disk_;  // the session's
  std::string host_, exportName_;
  wire::ExportProperties props_;
  std::uint32_t contextId_ = 0;  // base:allocation's id when negotiated

  bool closed_ = false;       // socket closed; nothing more is sent
  bool stopReading_ = false;  // DISC or drain: the reader ends
  Drop endReason_ = Drop::PeerClosed;
  std::string endDetail_;

  std::size_t inFlight_ = 0;
  std::size_t inFlightBytes_ = 0;
  std::deque<OutMessage> outq_;
  std::size_t outBytes_ = 0;
  asio::steady_timer writeSignal_;  // woken when a message is queued
  asio::steady_timer slotSignal_;   // woken when a request ends or the queue shrinks
  asio::steady_timer idleSignal_;   // woken when nothing is in flight and the queue is empty
  asio::steady_timer timer_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point lastRx_;
  std::vector<std::uint8_t> rxBuf_;
  std::size_t rxPos_ = 0, rxEnd_ = 0;
};

}  // namespace pxedust::nbd
