// iSCSI sessions (RFC 7143 §4.4, §6.3.5): the table keyed by the session identity, TSIH allocation,
// the CmdSN window, and reinstatement.
//
// One connection per session (we negotiate MaxConnections=1), so a Session is mostly the identity
// and sequence state that outlives nothing but its connection; it exists so that a second login
// with the same initiator name and ISID (a diskless host rebooting: Linux iscsistart always uses
// ISID 00023d000001) can find the old one and replace it (§6.3.5 "session reinstatement"): the old
// connection is closed — even when it is half-open and would only time out minutes later — its
// tasks are aborted, and the Lun forgets the old I_T nexus, so the new session's first command
// gets UNIT ATTENTION 29/00.
//
// CmdSN window (§4.2.2.1): ExpCmdSN is the next CmdSN we expect; MaxCmdSN = ExpCmdSN + (window -
// commands in flight) - 1, so MaxCmdSN never moves backwards (receiving a command advances both
// ExpCmdSN and the in-flight count) and at most `window` non-immediate commands run at once.
// Comparisons use serial number arithmetic (RFC 1982, 32 bits).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>

#include "iscsi/login/negotiation.hpp"
#include "iscsi/wire/pdu.hpp"
#include "scsi/lun.hpp"

namespace pxedust::iscsi {

struct HostLun;

// RFC 1982 serial arithmetic on 32 bits.
constexpr bool snLess(std::uint32_t a, std::uint32_t b) {
  return a != b && static_cast<std::int32_t>(a - b) < 0;
}
constexpr bool snLessEq(std::uint32_t a, std::uint32_t b) { return a == b || snLess(a, b); }

std::string isidHex(const wire::Isid& isid);

inline constexpr std::uint32_t kCommandWindow = 128;

struct SessionKey {
  SessionType type = SessionType::Normal;
  std::string initiator;  // lower-case
  wire::Isid isid{};
  std::string target;     // lower-case; empty for discovery
  friend bool operator<(const SessionKey& a, const SessionKey& b) {
    return std::tie(a.type, a.initiator, a.isid, a.target) < std::tie(b.type, b.initiator, b.isid, b.target);
  }
};

class Session {
 public:
  Session(SessionKey key, std::uint16_t tsih, SessionParams params, std::uint32_t firstCmdSn, std::uint16_t cid);

  [[nodiscard]] const SessionKey& key() const { return key_; }
  [[nodiscard]] std::uint16_t tsih() const { return tsih_; }
  [[nodiscard]] std::uint16_t cid() const { return cid_; }
  [[nodiscard]] const SessionParams& params() const { return params_; }
  [[nodiscard]] const scsi::Nexus& nexus() const { return nexus_; }
  [[nodiscard]] const std::shared_ptr<HostLun>& lun() const { return lun_; }
  void setLun(std::shared_ptr<HostLun> lun) { lun_ = std::move(lun); }
  [[nodiscard]] bool isDiscovery() const { return key_.type == SessionType::Discovery; }

  // CmdSN window.
  enum class CmdSnCheck : std::uint8_t { Accept, Immediate, OutOfWindow };
  CmdSnCheck rxCmdSn(std::uint32_t cmdSn, bool immediate);
  // A non-immediate command that was accepted has finished (its response is queued).
  void commandDone() {
    if (inFlight_ > 0) --inFlight_;
  }
  // §11.5.1 b): an ABORT TASK names a command that never arrived, within the window: its CmdSN
  // counts as received (and done), so the window does not wait for it.
  void skipCmdSn(std::uint32_t cmdSn);
  [[nodiscard]] std::uint32_t expCmdSn() const { return expCmdSn_; }
  [[nodiscard]] std::uint32_t maxCmdSn() const;
  [[nodiscard]] std::uint32_t inFlight() const { return inFlight_; }

  // Ends the I_T nexus once (nexusLost on the Lun); later calls do nothing.
  void endNexus();
  [[nodiscard]] bool ended() const { return ended_; }

  // A new connection took the session over (connection reinstatement, §6.3.4): the window restarts
  // at the login's CmdSN and nothing is in flight.
  void resetWindow(std::uint32_t cmdSn) {
    expCmdSn_ = cmdSn;
    inFlight_ = 0;
    skipped_.clear();
  }

  // The connection's hook to close itself (reinstatement, target removed, shutdown), and its id:
  // only the owning connection ends the session when it goes.
  std::function<void(std::string_view reason)> close;
  std::uint64_t owner = 0;

 private:
  void advancePastSkipped();

  SessionKey key_;
  std::uint16_t tsih_;
  std::uint16_t cid_;
  SessionParams params_;
  scsi::Nexus nexus_;
  std::shared_ptr<HostLun> lun_;
  std::uint32_t expCmdSn_;
  std::uint32_t inFlight_ = 0;
  std::set<std::uint32_t> skipped_;  // CmdSNs past ExpCmdSN counted as received (at most the window)
  bool ended_ = false;
};

class SessionTable {
 public:
  // Registers a new session; an existing one with the same key is reinstated (closed, its nexus
  // ended) first. Returns the new session and whether one was replaced.
  struct Added {
    std::shared_ptr<Session> session;
    bool reinstated = false;
  };
  Added add(SessionKey key, SessionParams params, std::uint32_t firstCmdSn, std::uint16_t cid);
  [[nodiscard]] std::shared_ptr<Session> byTsih(std::uint16_t tsih) const;
  void remove(const Session& s);
  [[nodiscard]] std::size_t size() const { return byKey_.size(); }
  // Every session, for reloads and shutdown.
  template <typename F>
  void forEach(F&& f) const {
    for (const auto& [k, s] : byKey_) f(s);
  }

 private:
  std::uint16_t nextTsih();
  std::map<SessionKey, std::shared_ptr<Session>> byKey_;
  std::map<std::uint16_t, std::weak_ptr<Session>> byTsih_;
  std::uint16_t lastTsih_ = 0;
};

}  // namespace pxedust::iscsi
