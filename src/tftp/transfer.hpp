// One TFTP read transfer: its own socket (its TID), its own coroutine on the loop.
//
// States (iPXE's dhcp_session_state idea, as a small table): AwaitOackAck -> Sending -> done.
//   AwaitOackAck  rx ACK 0: start Sending    timeout: resend OACK
//   Sending       rx ACK k (advancing): send the next window from k+1; a duplicate ACK sends
//                 nothing (Sorcerer's Apprentice)    timeout: resend the window from the last ACK
// A window goes to the kernel in one sendmmsg; the socket's buffer is sized for a whole window up
// front. Blocks it does not take count as not sent (the timer resends them).
// Both: rx ERROR ends the transfer; any other opcode gets ERROR 4 and ends it; a packet from another
// address or port gets ERROR 5 and changes nothing (RFC 1350 §4). Retransmission happens only on
// timeout: first after the negotiated timeout (or the configured one), doubling up to 4x, at most
// `retries` times. Block numbers are 16 bits on the wire and roll over to 0 after 65535; inside
// they are 64-bit, so rollover never confuses which block an ACK means.
//
// The timer is lazy: progress only moves a deadline; the timer fires at most once per timeout
// period and re-arms itself if the deadline moved, so the per-block cost has no timer operations.
// Only a deadline that moves earlier (progress after a backed-off retransmission) re-arms it at once.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "boot/event.hpp"
#include "common/fd.hpp"
#include "event/loop.hpp"
#include "event/udp.hpp"
#include "tftp/file_window.hpp"
#include "tftp/options.hpp"
#include "tftp/stats.hpp"

namespace pxedust::tftp {

// What every transfer shares with its service. Owned by shared_ptr so a transfer finishing after
// its service was reconfigured (or is shutting down) still has it.
class Transfer;

// How a transfer ended, for the service (boot events).
struct TransferEnd {
  bool ok = false;              // every block acknowledged
  bool closedByClient = false;  // the client ended it (a size probe, an early close with every byte sent)
  std::string_view reason;
  std::uint64_t bytes = 0;  // acknowledged (ok or failed); sent (closed by the client)
};

struct TransferShared {
  asio::io_context* io = nullptr;      // the loop
  asio::thread_pool* pool = nullptr;  // disk reads that miss the page cache
  TftpStats* stats = nullptr;
  // Called once per transfer, on the loop, when it ends.
  std::function<void(const asio::ip::udp::endpoint&, const Transfer*, const TransferEnd&)> onDone;
};

struct TransferSetup {
  asio::ip::udp::endpoint client;
  std::string requested;  // what the client asked for (for logs)
  std::string path;       // the file served, relative to the root (for logs)
  wire::Mode mode = wire::Mode::Octet;
  UniqueFd file;
  std::uint64_t fileSize = 0;
  bool hasOptions = false;
  // The client's options, kept to negotiate once the transfer size is known (netascii converts
  // first). Octet transfers negotiate before they start and leave this empty.
  std::vector<std::pair<std::string, std::string>> options;
  OptionLimits limits;
  std::optional<Negotiation> negotiation;  // octet: already negotiated
  std::chrono::milliseconds timeout{1000};
  std::uint32_t retries = 6;
};

class Transfer : public std::enable_shared_from_this<Transfer> {
 public:
  static constexpr std::size_t kMaxNetasciiSource = 16 * 1024 * 1024;
  // The most SO_SNDBUF a transfer asks for (the kernel doubles it): 64 blocks of 65464 bytes.
  static constexpr std::uint64_t kMaxSendBuffer = 4 * 1024 * 1024;

  Transfer(std::shared_ptr<TransferShared> shared, std::unique_ptr<event::UdpSocket> socket, TransferSetup setup,
           event::ShutdownGate::Ticket ticket);
  void start();
  [[nodiscard]] const TransferSetup& setup() const { return setup_; }
  // The boot event for how it ended (file.completed, aborted or failed), with the block and window
  // size it used; none for an IPv6 client (hosts are tracked by IPv4 address).
  [[nodiscard]] std::optional<boot::FileEvent> fileEvent(const TransferEnd& end) const;
  // Ends the transfer at its next wake-up: at shutdown, or when its client has moved on to a new
  // request from the same port.
  void abort(std::string_view reason);
  // A repeated RRQ (the client did not hear our first answer) names the same file before any ACK.
  [[nodiscard]] bool isRepeatOf(std::string_view requested) const {
    return !acknowledged_ && requested == setup_.requested;
  }

 private:
  enum class State : std::uint8_t { AwaitOackAck, Sending, Done };

  asio::awaitable<void> run();
  asio::awaitable<bool> prepareNetascii();
  void setState(State s);
  void armTimer();
  void onTimer(const std::error_code& ec);
  void onDatagram(std::span<const std::uint8_t> datagram, bool& progressed);
  void onAck(std::uint16_t block, bool& progressed);
  bool transmitWindow();  // false when the window's data is not in memory yet
  void sendOack();
  void sendError(wire::ErrorCode code, std::string_view text, const asio::ip::udp::endpoint& to);
  void finish(bool ok, std::string_view reason);

  std::shared_ptr<TransferShared> shared_;
  std::unique_ptr<event::UdpSocket> socket_;
  TransferSetup setup_;
  event::ShutdownGate::Ticket ticket_;
  asio::steady_timer timer_;
  std::optional<FileWindow> window_;
  Negotiation negotiation_;

  State state_ = State::AwaitOackAck;
  std::uint64_t lastAcked_ = 0;  // absolute block number
  std::uint64_t lastSent_ = 0;   // the highest block handed to the kernel
  std::uint64_t blockCount_ = 0;
  std::chrono::milliseconds rto_{1000};
  std::chrono::milliseconds rtoInitial_{1000};
  std::uint32_t retriesLeft_ = 0;
  std::uint64_t retransmits_ = 0;
  std::chrono::steady_clock::time_point deadline_{};
  std::chrono::steady_clock::time_point started_{};
  bool timerPending_ = false;
  std::chrono::steady_clock::time_point timerAt_{};  // when the pending wait ends
  std::uint64_t timerGeneration_ = 0;                // tells a replaced wait's handler it is stale
  bool waiting_ = false;
  bool timedOut_ = false;
  bool aborted_ = false;
  bool acknowledged_ = false;  // any ACK from the client yet
  bool fileShrank_ = false;  // a send failed with EFAULT: the mapped file was truncated
  bool closedByClient_ = false;  // the client ended it on purpose with what it wanted (see onDatagram)
  std::string_view abortReason_;

  // Send scratch, sized once for the window: headers and gather lists for sendmmsg.
  std::vector<std::uint8_t> headers_;
  std::vector<iovec> iov_;
  std::vector<mmsghdr> msgs_;
  // Only ACK and ERROR are expected here; anything longer is cut to this size.
  std::array<std::uint8_t, 2048> rx_{};
  asio::ip::udp::endpoint from_;
};

}  // namespace pxedust::tftp
