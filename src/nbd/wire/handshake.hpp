// The NBD handshake, fixed newstyle only (doc/proto.md "Handshake", "TLS support", "Option types"),
// as a pure state machine: client bytes in, server bytes out, decisions through an ExportCatalog the
// caller implements. No sockets, no TLS library, no clock.
//
// Design note. The server speaks first: NBDMAGIC, IHAVEOPT and the handshake flags FIXED_NEWSTYLE |
// NO_ZEROES are in output() from construction. The client answers with 32 bits of flags (an unknown
// bit is a hard disconnect: the spec says "MUST drop the TCP connection"), then options, each a
// 16-byte header (IHAVEOPT, option, length) and `length` bytes of data. feed() takes any split of that
// stream — one byte at a time is fine — and resumes where it stopped, with bytes-so-far counters and
// no buffering beyond one option (habit 5). It consumes bytes until the input is used up or an event
// needs the caller: then Step::consumed says where the event happened, because the bytes after it are
// not the handshake's (a TLS ClientHello after STARTTLS, transmission requests after GO).
//
//   NeedMore     all input consumed; send output() and feed more
//   StartTls     STARTTLS was acknowledged: send output() in the clear, run the TLS server handshake
//                (the unconsumed bytes are its first input), call tlsStarted(), then feed() the
//                decrypted stream. All option state is forgotten, as the spec requires.
//   Complete     GO or EXPORT_NAME succeeded: send output(); result() is the negotiated export and the
//                transmission phase starts right after `consumed`
//   Abort        the client sent NBD_OPT_ABORT: send output() (the ACK) and close ("soft disconnect")
//   Disconnect   hard disconnect, reason in disconnectReason(); nothing more is sent
//
// Limits before memory (habit 6). An option's data is buffered only when its length is within the
// option's cap; a longer option is drained (read and dropped) and refused, or, past maxDrainLength,
// ends the connection. Caps (HandshakeLimits, defaults justified there): the data of one option, the
// bytes drained for one option, and the number of options per handshake. Every length inside an
// option (export name, info requests, queries) is checked against the bytes the option really holds
// before it is used.
//
// Replies, one table of options (handshake.cpp), and what each refusal is:
//   EXPORT_NAME        size, flags, 124 zeroes unless the client set NO_ZEROES. It cannot fail with a
//                      reply: unknown/refused export, TLS required and not started, a name over 4096
//                      bytes or with a NUL, shutting down -> hard disconnect (the spec's "MUST
//                      terminate the session"). The only option a non-fixed-newstyle client may send.
//   ABORT              ACK, then Abort (data, if any, is ignored as the spec asks)
//   LIST               one NBD_REP_SERVER per export the catalog lists for this client, then ACK;
//                      data present -> ERR_INVALID
//   STARTTLS           ACK (TLS offered, not yet started) -> StartTls; already under TLS or data
//                      present -> ERR_INVALID; TLS not offered -> ERR_POLICY
//   INFO, GO           NBD_INFO_EXPORT always; NAME and DESCRIPTION when asked for; BLOCK_SIZE when
//                      asked for or when the sizes are not the defaults; then ACK (GO: Complete).
//                      Malformed -> ERR_INVALID; unknown export -> ERR_UNKNOWN; refused ->
//                      ERR_POLICY; TLS-only export before TLS -> ERR_TLS_REQD; GO without a
//                      BLOCK_SIZE request on an export that insists -> ERR_BLOCK_SIZE_REQD
//   STRUCTURED_REPLY   ACK; data present -> ERR_INVALID
//   LIST_META_CONTEXT  base:allocation when asked for by "base:allocation" or the wildcard "base:", or
//                      when no query is sent; queries of other namespaces are ignored; then ACK.
//                      Malformed, or a query without "namespace:" -> ERR_INVALID; unknown export ->
//                      ERR_UNKNOWN; refused -> ERR_POLICY
//   SET_META_CONTEXT   the same, but only "base:allocation" selects (with id kBaseAllocationContextId)
//                      and no query selects nothing; replaces the previous selection even when it
//                      fails; needs structured replies first (-> ERR_INVALID)
//   anything else      ERR_UNSUP (PEEK_EXPORT, EXTENDED_HEADERS and unknown codes)
// Before any of those: ERR_SHUTDOWN once beginShutdown() was called, and ERR_TLS_REQD for everything
// but STARTTLS and ABORT while TLS is required and not started (FORCEDTLS); an option whose data is
// over its cap -> ERR_TOO_BIG (ERR_INVALID for the options that take no data).
//
// Negotiated meta contexts count only when the last SET_META_CONTEXT named the export that GO or
// EXPORT_NAME then chose, with no STARTTLS since (the spec's condition for NBD_CMD_BLOCK_STATUS).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nbd/wire/protocol.hpp"
#include "nbd/wire/transmission.hpp"

namespace pxedust::nbd::wire {

// The connection's TLS mode ("TLS support": NOTLS, SELECTIVETLS, FORCEDTLS). The spec requires it to
// stay the same for the connection's life, so the machine asks once.
enum class TlsMode : std::uint8_t {
  None,      // STARTTLS is refused with ERR_POLICY
  Optional,  // STARTTLS accepted; individual exports may still need it (LookupStatus::TlsRequired)
  Required,  // every option but STARTTLS and ABORT is refused with ERR_TLS_REQD until TLS runs
};

struct ExportListing {
  std::string name;
  std::string description;  // may be empty
};

// What the catalog knows of one export.
struct ExportInfo {
  std::uint64_t size = 0;
  std::uint16_t flags = txflag::kHasFlags;  // transmissionFlags(capabilities)
  std::string name;                         // canonical name for NBD_INFO_NAME; empty: as requested
  std::string description;                  // for NBD_INFO_DESCRIPTION; empty: none
  BlockSizes blockSizes{};                  // must pass validBlockSizes()
  // Refuse GO without an NBD_INFO_BLOCK_SIZE request (ERR_BLOCK_SIZE_REQD). The spec says servers
  // SHOULD NOT, unless they cannot serve clients that ignore the sizes; off by default.
  bool requireBlockSizes = false;
};

enum class LookupStatus : std::uint8_t {
  Found,
  NotFound,      // ERR_UNKNOWN (EXPORT_NAME: disconnect)
  NotPermitted,  // this client may not use it: ERR_POLICY
  TlsRequired,   // a TLS-only export asked for in the clear: ERR_TLS_REQD (only when TLS can be started)
};

struct ExportLookup {
  LookupStatus status = LookupStatus::NotFound;
  ExportInfo info;  // when Found
};

// The caller's decisions. Called synchronously from feed(); the catalog knows which client this
// connection is (address, host record) — the machine only tells it whether TLS is running.
class ExportCatalog {
 public:
  virtual ~ExportCatalog() = default;
  // Asked once, at construction.
  [[nodiscard]] virtual TlsMode tlsMode() const = 0;
  // The exports NBD_OPT_LIST shows this client (the spec lets TLS-only ones be left out before TLS).
  virtual std::vector<ExportListing> listExports(bool tlsActive) = 0;
  // One export by the name the client sent ("" is the default export). The name is at most 4096
  // bytes and holds no NUL, but is otherwise the client's: compare it, do not trust it.
  virtual ExportLookup lookupExport(std::string_view name, bool tlsActive) = 0;
};

struct HandshakeLimits {
  // Data bytes of one option we buffer. The longest option a client has reason to send is INFO/GO
  // or a META_CONTEXT query with an export name at the spec's 4096-byte string limit: 4096 + 6
  // bytes, plus 2 per info request or 4 + length per query. 8 KiB holds that with room for ~2000
  // info requests or a second full-length query; only base:allocation can ever match, so a longer
  // option cannot be a request we would honour, and is answered ERR_TOO_BIG.
  std::uint32_t maxOptionLength = 8192;
  // An option over its cap (or unknown) is read and dropped to stay in sync, up to this many bytes;
  // longer ones end the connection. No option defined or proposed comes near 64 KiB, and draining
  // costs no memory, only the bytes on the wire.
  std::uint32_t maxDrainLength = 64 * 1024;
  // Options per handshake. nbdinfo --list spends a few options per export (LIST, then INFO and
  // LIST_META_CONTEXT for each); a real client needs a handful. 256 lets a client list dozens of
  // exports, while a client that haggles forever is cut off (the spec lets a server hard-disconnect
  // what it believes is a denial of service).
  std::size_t maxOptions = 256;
};

// The metadata context id of base:allocation once selected. LIST_META_CONTEXT replies carry the
// reserved id 0; a selected context gets a nonzero one so that captures and logs tell them apart.
inline constexpr std::uint32_t kBaseAllocationContextId = 1;

struct MetaContext {
  std::uint32_t id = 0;
  std::string name;
  friend bool operator==(const MetaContext&, const MetaContext&) = default;
};

// The outcome of a completed handshake.
struct HandshakeResult {
  std::string exportName;        // as the client sent it
  ExportInfo exportInfo;         // as the catalog answered
  std::uint16_t flags = 0;       // the transmission flags sent (SEND_DF only with structured replies)
  bool structuredReplies = false;
  std::vector<MetaContext> metaContexts;  // valid for this export (see the design note)
  bool blockSizesAgreed = false;  // GO asked for NBD_INFO_BLOCK_SIZE: the client obeys the sizes
  bool tls = false;
  bool viaExportName = false;     // ended by NBD_OPT_EXPORT_NAME (an old client)

  [[nodiscard]] ExportProperties properties() const;
};

enum class HandshakeEvent : std::uint8_t { NeedMore, StartTls, Complete, Abort, Disconnect };

enum class DisconnectReason : std::uint8_t {
  None,
  BadClientFlags,     // an unknown client flag
  BadOptionMagic,     // an option header without IHAVEOPT: the stream is lost
  OptionTooLarge,     // over maxDrainLength (or an EXPORT_NAME over 4096 bytes)
  TooManyOptions,     // over maxOptions
  NotFixedNewstyle,   // an option other than EXPORT_NAME from a client without FIXED_NEWSTYLE
  ExportNameRefused,  // EXPORT_NAME for an export that is unknown, refused, TLS-only, or misconfigured
  TlsRequired,        // EXPORT_NAME before TLS while TLS is required
  ShuttingDown,       // EXPORT_NAME after beginShutdown()
  TlsNotStarted,      // feed() after StartTls without tlsStarted(): a caller bug, fail closed
  Count
};
std::string_view disconnectReasonName(DisconnectReason r);

struct Step {
  std::size_t consumed = 0;
  HandshakeEvent event = HandshakeEvent::NeedMore;
};

class HandshakeMachine {
 public:
  explicit HandshakeMachine(ExportCatalog& catalog, HandshakeLimits limits = {});

  // Consumes client bytes until they run out (NeedMore) or an event needs the caller. After
  // Complete, Abort or Disconnect every call returns that event again with consumed = 0.
  Step feed(std::span<const std::uint8_t> in);

  // The TLS handshake that StartTls asked for succeeded; option haggling continues over TLS.
  void tlsStarted();
  // From now on options are refused with ERR_SHUTDOWN (ABORT still gets its ACK).
  void beginShutdown() { shuttingDown_ = true; }

  // Bytes to send, in order. takeOutput() hands them over and clears the buffer.
  [[nodiscard]] const std::vector<std::uint8_t>& output() const { return out_; }
  std::vector<std::uint8_t> takeOutput() {
    std::vector<std::uint8_t> o;
    o.swap(out_);
    return o;
  }

  // Valid after Complete.
  [[nodiscard]] const HandshakeResult& result() const { return result_; }
  [[nodiscard]] DisconnectReason disconnectReason() const { return reason_; }
  [[nodiscard]] bool tlsActive() const { return tls_; }
  [[nodiscard]] std::size_t optionCount() const { return options_; }

 private:
  enum class State : std::uint8_t { ClientFlags, OptionHeader, OptionData, Drain, AwaitTls, Done, Aborted, Closed };

  HandshakeEvent onClientFlags();
  HandshakeEvent onOptionHeader();
  HandshakeEvent onOptionData();
  HandshakeEvent disconnect(DisconnectReason r);
  HandshakeEvent refuseAfterDrain(std::uint32_t type, std::string_view message);

  HandshakeEvent handleExportName(std::span<const std::uint8_t> data);
  HandshakeEvent handleList(std::span<const std::uint8_t> data);
  HandshakeEvent handleStartTls(std::span<const std::uint8_t> data);
  HandshakeEvent handleInfo(std::span<const std::uint8_t> data);  // INFO and GO
  HandshakeEvent handleStructuredReply(std::span<const std::uint8_t> data);
  HandshakeEvent handleMetaContext(std::span<const std::uint8_t> data);  // LIST and SET

  void reply(std::uint32_t type, std::span<const std::uint8_t> data = {});
  void replyError(std::uint32_t type, std::string_view message);
  void replyInfo(std::uint16_t infoType, std::span<const std::uint8_t> payload);
  [[nodiscard]] std::uint16_t sentFlags(const ExportInfo& info) const;

  struct OptionRule;
  static const OptionRule* findOption(std::uint32_t option);

  ExportCatalog& catalog_;
  HandshakeLimits limits_;
  TlsMode tlsMode_;
  State state_ = State::ClientFlags;
  HandshakeEvent terminal_ = HandshakeEvent::NeedMore;
  DisconnectReason reason_ = DisconnectReason::None;

  // The part being received: a fixed header buffer, or the option data (sized after the cap check).
  std::array<std::uint8_t, 16> head_{};
  std::size_t need_ = 4;
  std::size_t got_ = 0;
  std::vector<std::uint8_t> data_;
  std::uint32_t option_ = 0;        // the option being handled
  std::uint32_t pendingError_ = 0;  // Drain: the error to answer once the data is skipped
  std::string_view pendingMessage_;

  bool fixedNewstyle_ = false;
  bool noZeroes_ = false;
  bool tls_ = false;
  bool shuttingDown_ = false;
  bool structuredReplies_ = false;
  bool metaSelected_ = false;       // a SET_META_CONTEXT succeeded since the last reset
  std::string metaExport_;          // the export it named
  std::vector<MetaContext> metaContexts_;
  std::size_t options_ = 0;

  std::vector<std::uint8_t> out_;
  HandshakeResult result_;
};

}  // namespace pxedust::nbd::wire
