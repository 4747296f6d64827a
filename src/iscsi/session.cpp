#include "iscsi/session.hpp"

#include <fmt/format.h>

#include "iscsi/target.hpp"

namespace pxedust::iscsi {

std::string isidHex(const wire::Isid& isid) {
  return fmt::format("{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}", isid[0], isid[1], isid[2], isid[3], isid[4], isid[5]);
}

Session::Session(SessionKey key, std::uint16_t tsih, SessionParams params, std::uint32_t firstCmdSn, std::uint16_t cid)
    : key_(std::move(key)), tsih_(tsih), cid_(cid), params_(std::move(params)), expCmdSn_(firstCmdSn) {
  nexus_.initiatorName = key_.initiator;
  nexus_.isid = isidHex(key_.isid);
  nexus_.relativeTargetPort = 1;
}

std::uint32_t Session::maxCmdSn() const {
  std::uint32_t room = inFlight_ >= kCommandWindow ? 0 : kCommandWindow - inFlight_;
  return expCmdSn_ + room - 1;
}

Session::CmdSnCheck Session::rxCmdSn(std::uint32_t cmdSn, bool immediate) {
  if (immediate) return CmdSnCheck::Immediate;
  // §4.2.2.1: a non-immediate command outside [ExpCmdSN, MaxCmdSN] is silently ignored. With one
  // connection commands arrive in order, so anything but ExpCmdSN is out of the window.
  if (cmdSn != expCmdSn_ || snLess(maxCmdSn(), cmdSn)) return CmdSnCheck::OutOfWindow;
  ++expCmdSn_;
  ++inFlight_;
  advancePastSkipped();
  return CmdSnCheck::Accept;
}

void Session::advancePastSkipped() {
  for (auto it = skipped_.find(expCmdSn_); it != skipped_.end(); it = skipped_.find(expCmdSn_)) {
    skipped_.erase(it);
    ++expCmdSn_;
  }
}

void Session::skipCmdSn(std::uint32_t cmdSn) {
  if (snLess(cmdSn, expCmdSn_) || snLess(maxCmdSn(), cmdSn)) return;
  skipped_.insert(cmdSn);
  advancePastSkipped();
}

void Session::endNexus() {
  if (ended_) return;
  ended_ = true;
  if (lun_ && lun_->lun) lun_->lun->nexusLost(nexus_);
}

std::uint16_t SessionTable::nextTsih() {
  for (int i = 0; i < 65536; ++i) {
    ++lastTsih_;
    if (lastTsih_ == 0) lastTsih_ = 1;  // §11.12.6: TSIH 0 is reserved for "new session"
    auto it = byTsih_.find(lastTsih_);
    if (it == byTsih_.end() || it->second.expired()) return lastTsih_;
  }
  return 0;
}

SessionTable::Added SessionTable::add(SessionKey key, SessionParams params, std::uint32_t firstCmdSn, std::uint16_t cid) {
  Added out;
  if (auto it = byKey_.find(key); it != byKey_.end()) {
    auto old = it->second;
    byKey_.erase(it);
    byTsih_.erase(old->tsih());
    old->endNexus();
    if (old->close) old->close("session reinstated by a new login");
    out.reinstated = true;
  }
  std::uint16_t tsih = nextTsih();
  if (tsih == 0) return out;
  out.session = std::make_shared<Session>(key, tsih, std::move(params), firstCmdSn, cid);
  byKey_[key] = out.session;
  byTsih_[tsih] = out.session;
  return out;
}

std::shared_ptr<Session> SessionTable::byTsih(std::uint16_t tsih) const {
  auto it = byTsih_.find(tsih);
  return it == byTsih_.end() ? nullptr : it->second.lock();
}

void SessionTable::remove(const Session& s) {
  auto it = byKey_.find(s.key());
  if (it != byKey_.end() && it->second.get() == &s) byKey_.erase(it);
  auto t = byTsih_.find(s.tsih());
  if (t != byTsih_.end()) {
    auto sp = t->second.lock();
    if (!sp || sp.get() == &s) byTsih_.erase(t);
  }
}

}  // namespace pxedust::iscsi
