// ONC RPC version 2 (RFC 5531) as a pure codec: the TCP record-marking framer (§11), the call header
// (§9, §8.2, Appendix A for AUTH_SYS) and the reply headers (§9). No sockets, no clock, no config.
//
// Design note. Over TCP a record is a sequence of fragments, each behind a 4-byte mark whose high
// bit says "last fragment" and whose low 31 bits give its length (§11). RecordFramer is a resumable
// state machine in the shape of iscsi/wire/framer.hpp: feed it bytes in any split; it stops after one
// complete record (one call) so a large read cannot monopolize the loop. Limits before memory
// (habit 6): a fragment is accepted only if it fits in what is left of the record cap
// (`length > cap - sizeSoFar`, never `sizeSoFar + length > cap`, habit 3), so a 0x7fffffff
// fragment is refused from its 4-byte mark, before anything is allocated; zero-length fragments that
// are not the last are counted and capped, so a peer cannot keep the framer busy with empty marks.
// Both refusals are fatal for the connection, as Linux's svc_tcp_recv_record() treats an oversized
// record: once a mark is refused the stream has no next record to find. Over UDP one datagram is
// one record, with no mark (§11 applies to stream transports only).
//
// decodeCall() turns one record into an outcome that tells the caller what to send:
//   Dispatch  a well-formed CALL with AUTH_NONE or AUTH_SYS: check the program/version/procedure
//             (protocol.hpp checkDispatch) and decode the arguments from call.args;
//   Reply     answer with `reply` and nothing else: rpcvers != 2 -> MSG_DENIED RPC_MISMATCH(2, 2)
//             (§9, "rpc_mismatch"); a credential or verifier that is malformed, over 400 bytes, or of
//             a flavour pxedust does not speak -> MSG_DENIED AUTH_ERROR (AUTH_BADCRED / AUTH_BADVERF,
//             as Linux's svc_authenticate and svcauth_unix_accept answer); a header that is cut short
//             after the xid -> MSG_ACCEPTED GARBAGE_ARGS;
//   Drop      nothing can be answered: the xid itself is unreadable, or the message is a REPLY.
// Replies always carry an AUTH_NONE verifier: pxedust never authenticates itself (AUTH_SYS servers
// answer AUTH_NONE, Appendix A).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "nfs/wire/protocol.hpp"
#include "nfs/wire/xdr.hpp"

namespace pxedust::nfs::wire {

// ---- Record marking (§11) ----
inline constexpr std::uint32_t kLastFragment = 0x80000000u;
inline constexpr std::size_t kRecordMarkSize = 4;
// The largest NFS payload pxedust serves or takes in one call (rtmax) is 1 MiB; a call carries that
// at most plus its RPC and NFS headers (a refused WRITE still has to be read to stay in sync).
inline constexpr std::uint32_t kDefaultMaxRecord = (1u << 20) + 4096;
// Empty fragments a record may contain before the last; real clients send none.
inline constexpr std::uint32_t kDefaultMaxEmptyFragments = 4;

struct RecordLimits {
  std::uint32_t maxRecord = kDefaultMaxRecord;
  std::uint32_t maxEmptyFragments = kDefaultMaxEmptyFragments;
};

enum class RecordStatus : std::uint8_t {
  NeedMore,             // all input consumed, no record complete yet
  Record,               // record() holds one complete record
  TooLarge,             // fatal: a fragment would take the record over maxRecord
  TooManyEmptyFragments,  // fatal
};
std::string_view recordStatusName(RecordStatus s);

struct RecordFeed {
  std::size_t consumed = 0;
  RecordStatus status = RecordStatus::NeedMore;
};

class RecordFramer {
 public:
  explicit RecordFramer(RecordLimits limits = {}) : limits_(limits) {}

  // Consumes bytes from `in` until one record completes, the stream is refused, or `in` is used up.
  RecordFeed feed(std::span<const std::uint8_t> in);

  // The record of the last Record event; valid until the next feed().
  [[nodiscard]] std::span<const std::uint8_t> record() const { return record_; }
  [[nodiscard]] bool broken() const { return broken_ != RecordStatus::NeedMore; }
  // True between records (nothing partial buffered).
  [[nodiscard]] bool idle() const { return !broken() && inMark_ && got_ == 0 && (delivered_ || record_.empty()); }

 private:
  RecordLimits limits_;
  std::vector<std::uint8_t> record_;
  std::array<std::uint8_t, 4> mark_{};
  bool inMark_ = true;         // reading a mark (else a fragment's bytes)
  bool last_ = false;          // the fragment being read is the last
  bool delivered_ = false;     // record_ was handed out and is cleared at the next byte
  std::size_t got_ = 0;        // bytes of the current mark, or of the current fragment
  std::uint32_t fragment_ = 0;  // the current fragment's length
  std::uint32_t empties_ = 0;
  RecordStatus broken_ = RecordStatus::NeedMore;
};

// The 4-byte mark for a reply of `length` bytes sent as one last fragment (length < 2^31).
std::array<std::uint8_t, 4> recordMark(std::uint32_t length);

// ---- Call header (§9, §8.2, Appendix A) ----
struct AuthSys {
  std::uint32_t stamp = 0;
  std::string_view machineName;  // points into the record
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint32_t gidCount = 0;
  std::array<std::uint32_t, kMaxAuthSysGids> gids{};
};

struct Call {
  std::uint32_t xid = 0;
  std::uint32_t program = 0;
  std::uint32_t version = 0;
  std::uint32_t procedure = 0;
  std::uint32_t credFlavor = authflavor::kNone;
  std::optional<AuthSys> sys;            // when credFlavor == AUTH_SYS
  std::span<const std::uint8_t> args;    // the procedure's arguments; points into the record
};

// The reply header to send: MSG_ACCEPTED with an accept_stat, or MSG_DENIED.
struct ReplyHeader {
  enum class Kind : std::uint8_t { Accepted, RpcMismatch, AuthError };
  std::uint32_t xid = 0;
  Kind kind = Kind::Accepted;
  AcceptStat accept = AcceptStat::Success;
  std::uint32_t low = 0, high = 0;      // PROG_MISMATCH and RPC_MISMATCH
  AuthStat auth = AuthStat::Ok;         // AUTH_ERROR

  static ReplyHeader accepted(std::uint32_t xid, AcceptStat s) { return {xid, Kind::Accepted, s}; }
  static ReplyHeader progMismatch(std::uint32_t xid, std::uint32_t low, std::uint32_t high) {
    return {xid, Kind::Accepted, AcceptStat::ProgMismatch, low, high};
  }
  static ReplyHeader rpcMismatch(std::uint32_t xid) {
    return {xid, Kind::RpcMismatch, AcceptStat::Success, kRpcVersion, kRpcVersion};
  }
  static ReplyHeader authError(std::uint32_t xid, AuthStat a) {
    return {xid, Kind::AuthError, AcceptStat::Success, 0, 0, a};
  }
};

enum class DropReason : std::uint8_t { None, NoXid, NotACall };

struct CallOutcome {
  enum class Action : std::uint8_t { Dispatch, Reply, Drop };
  Action action = Action::Drop;
  Call call;              // Dispatch (and the fields read so far otherwise)
  ReplyHeader reply;      // Reply
  DropReason drop = DropReason::None;
  std::string_view why;   // for the one debug line of a Reply or Drop
};

// Decodes one record (a TCP record or a UDP datagram). Never throws; `record` must outlive the
// spans in the result.
CallOutcome decodeCall(std::span<const std::uint8_t> record);

// Decodes an AUTH_SYS credential body (Appendix A); it must be consumed exactly.
std::optional<AuthSys> decodeAuthSys(std::span<const std::uint8_t> body);

// Writes a reply header: xid, REPLY, then the accepted reply (AUTH_NONE verifier, accept_stat, and
// for PROG_MISMATCH the versions) or the rejected reply. After an Accepted/Success header the
// caller writes the procedure's results.
void encodeReplyHeader(XdrWriter& w, const ReplyHeader& h);

// Writes a call header with an AUTH_NONE verifier (and an AUTH_SYS credential when `sys` is given):
// what clients send; used by tests, fuzz seeds and a future client.
void encodeCallHeader(XdrWriter& w, std::uint32_t xid, std::uint32_t program, std::uint32_t version,
                      std::uint32_t procedure, const AuthSys* sys);

}  // namespace pxedust::nfs::wire
