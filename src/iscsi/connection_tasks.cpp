// Connection, the task engine (RFC 7143 §4.2.2, §11.3, §11.7, §11.8, §11.5): SCSI Commands
// against the CmdSN window and the byte budget, Data-Out and R2Ts, running on the Lun, Data-In and
// SCSI Responses, and task management. Part of the Connection class (connection.hpp).
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include <algorithm>
#include <cstring>

#include "blockstore/buffer_pool.hpp"
#include "blockstore/pipe_chain.hpp"
#include "common/log.hpp"
#include "iscsi/connection_internal.hpp"

namespace pxedust::iscsi {
namespace {

scsi::TaskAttribute taskAttribute(std::uint8_t attr) {
  switch (attr & 7u) {
    case 2: return scsi::TaskAttribute::Ordered;
    case 3: return scsi::TaskAttribute::HeadOfQueue;
    case 4: return scsi::TaskAttribute::Aca;
    default: return scsi::TaskAttribute::Simple;
  }
}

}  // namespace

bool Connection::rxScsiCommand(const wire::ScsiCommand& h, wire::RxPdu& pdu) {
  auto check = session_->rxCmdSn(h.cmdSn, h.immediate);
  if (check == Session::CmdSnCheck::OutOfWindow) {
    ctx_->stats.drop(Drop::OutOfWindow);
    PXD_DEBUG("iscsi.pdu_ignored", "conn={} reason=out_of_window cmd_sn={} exp_cmd_sn={} max_cmd_sn={}", id_, h.cmdSn,
              session_->expCmdSn(), session_->maxCmdSn());
    return true;
  }
  bool counted = check == Session::CmdSnCheck::Accept;
  auto giveBack = [&] {
    if (counted) session_->commandDone();
  };
  if (tasks_.contains(h.initiatorTaskTag)) {
    giveBack();
    reject(wire::RejectReason::TaskInProgress, pdu.bhs, Drop::ProtocolError, "Initiator Task Tag in use");
    return true;
  }
  std::array<std::uint8_t, 16 + 1020> cdbBuf{};
  auto cdbLen = wire::fullCdb(h, pdu.ahs, cdbBuf);
  if (!cdbLen) {
    giveBack();
    reject(wire::RejectReason::InvalidPduField, pdu.bhs, Drop::ProtocolError, "bad AHS: " + cdbLen.error().message);
    return true;
  }
  std::uint32_t imm = static_cast<std::uint32_t>(pdu.data.size());
  std::string_view bad;
  if (imm > 0 && !h.write) bad = "immediate data without the W bit";
  else if (imm > 0 && !params_.immediateData) bad = "immediate data but ImmediateData=No";
  else if (imm > params_.firstBurstLength) bad = "immediate data over FirstBurstLength";
  else if (imm > h.expectedDataTransferLength) bad = "immediate data over the expected transfer length";
  else if (!h.final && (!h.write || params_.initialR2T)) bad = "unsolicited Data-Out announced but not allowed";
  if (!bad.empty()) {
    giveBack();
    reject(wire::RejectReason::ProtocolError, pdu.bhs, Drop::ProtocolError, bad);
    return true;
  }
  ++ctx_->stats.commands;
  ctx_->stats.bytesIn += imm;

  auto t = std::make_shared<Task>();
  t->itt = h.initiatorTaskTag;
  t->lunField = h.lun;
  t->cdb.assign(cdbBuf.begin(), cdbBuf.begin() + static_cast<std::ptrdiff_t>(*cdbLen));
  t->edtl = h.expectedDataTransferLength;
  t->attribute = taskAttribute(h.attr);
  t->counted = counted;
  t->lun = session_->lun();
  const scsi::Lun& lun = *t->lun->lun;
  std::uint32_t lunNumber = wire::decodeLun(h.lun);
  std::uint8_t opcode = t->cdb.empty() ? 0 : t->cdb[0];
  if (h.read && h.write) {
    // Bidirectional commands: none of the ones we emulate is one.
    scsi::Response r = scsi::Response::check(scsi::invalidFieldInCdb(0));
    scsi::applyResidual(r, 0, t->edtl);
    t->plan.immediate = std::move(r);
  } else if (lunNumber != 0 && opcode != 0x12 && opcode != 0xA0) {
    // Only INQUIRY (PQ=3) and REPORT LUNS answer for a LUN we do not have (SPC-5 6.7.2, 4.6.20).
    scsi::Response r = scsi::Response::check(scsi::illegalRequest(scsi::asc::kLogicalUnitNotSupported));
    scsi::applyResidual(r, 0, t->edtl);
    t->plan.immediate = std::move(r);
  } else {
    t->plan = lun.plan(t->cdb, t->edtl);
    t->inquiryOtherLun = lunNumber != 0 && opcode == 0x12;
  }
  t->need = t->plan.immediate ? 0 : std::min(t->plan.dataOutBytes, t->edtl);
  t->unsolicitedPending = !h.final;
  std::uint32_t initial = std::min<std::uint32_t>(t->need, t->unsolicitedPending ? std::max(imm, params_.firstBurstLength) : imm);
  if (imm > 0 && imm == initial) {
    // The immediate data is all the task starts with (every small write): take the framer's buffer
    // instead of copying it (the framer allocates the next PDU's).
    t->data = std::move(pdu.data);
    pdu.data.clear();
  } else {
    t->data.resize(initial);
    if (imm > 0 && !t->data.empty()) std::memcpy(t->data.data(), pdu.data.data(), std::min<std::size_t>(imm, t->data.size()));
  }
  t->highest = imm;
  t->nextOffset = imm;
  t->budget = std::max<std::size_t>(t->need, t->plan.transferBytes);
  tasks_[t->itt] = t;
  waiting_.push_back(t);
  admitTasks();
  return true;
}

void Connection::admitTasks() {
  while (!waiting_.empty()) {
    auto t = waiting_.front();
    if (t->aborted || t->state == Task::State::Done) {
      waiting_.pop_front();
      continue;
    }
    if (budgetUsed_ > 0 && budgetUsed_ + t->budget > kTaskBudget) break;
    waiting_.pop_front();
    budgetUsed_ += t->budget;
    t->admitted = true;
    if (t->data.size() < t->need) t->data.resize(t->need);
    solicit(t);
    maybeRun(t);
  }
}

void Connection::solicit(const std::shared_ptr<Task>& t) {
  if (!t->admitted || t->unsolicitedPending || t->aborted || t->dataSnError || closed_) return;
  std::uint32_t maxR2t = std::max<std::uint32_t>(1, params_.maxOutstandingR2T);
  std::uint32_t burst = std::max<std::uint32_t>(512, params_.maxBurstLength);
  while (t->outstandingR2t < maxR2t && t->nextOffset < t->need) {
    if (t->ttt == wire::kReservedTag) {
      do {
        t->ttt = nextTtt_++;
      } while (t->ttt == wire::kReservedTag || byTtt_.contains(t->ttt));
      byTtt_[t->ttt] = t;
    }
    wire::R2t r;
    r.lun = t->lunField;
    r.initiatorTaskTag = t->itt;
    r.targetTransferTag = t->ttt;
    fillSn(r.statSn, r.expCmdSn, r.maxCmdSn, false);
    r.r2tSn = t->r2tSn++;
    r.bufferOffset = t->nextOffset;
    r.desiredDataTransferLength = std::min(burst, t->need - t->nextOffset);
    t->nextOffset += r.desiredDataTransferLength;
    ++t->outstandingR2t;
    ++ctx_->stats.r2ts;
    queue(r);
  }
}

void Connection::maybeRun(const std::shared_ptr<Task>& t) {
  if (!t->admitted || t->state != Task::State::Collecting || t->aborted) return;
  // A task with a DataSN error asks for nothing more: it ends once its outstanding sequences do.
  if (t->unsolicitedPending || t->outstandingR2t > 0 || (t->nextOffset < t->need && !t->dataSnError)) return;
  t->state = Task::State::Executing;
  ++executing_;
  auto self = shared_from_this();
  asio::co_spawn(socket_.get_executor(), [self, t]() { return self->runTask(t); }, asio::detached);
}

asio::awaitable<void> Connection::runTask(std::shared_ptr<Task> t) {
  auto self = shared_from_this();
  scsi::Response r;
  if (t->plan.immediate) {
    r = *t->plan.immediate;
  } else if (t->dataSnError) {
    // §7.8: the task is terminated as for a data digest error, without running (nothing written).
    r = scsi::Response::check(scsi::abortedCommand(scsi::asc::kProtocolServiceCrcError));
  } else {
    try {
      scsi::Command c;
      c.cdb = t->cdb;
      c.dataOut = std::span<const std::uint8_t>(t->data.data(), std::min<std::size_t>(t->data.size(), t->need));
      c.expectedLength = t->edtl;
      c.attribute = t->attribute;
      c.nexus = &session_->nexus();
      c.spliceOk = !params_.dataDigest;
      r = co_await t->lun->lun->execute(c);
    } catch (const std::exception& e) {
      PXD_ERROR("iscsi.task_failed", "conn={} itt={:#x} error={}", id_, t->itt, log::q(e.what()));
      r = scsi::Response::check(scsi::SenseData{scsi::SenseKey::HardwareError, scsi::Asc{0x44, 0x00}, {}, {}});
    }
    if (t->inquiryOtherLun && !r.dataIn.empty()) r.dataIn[0] = 0x7f;  // PQ=3, PDT=1Fh: no LUN here
  }
  if (executing_ > 0) --executing_;
  bool send = !t->aborted && !closed_;
  endTask(*t);
  if (send) sendResponse(*t, r);
  if (executing_ == 0) idleSignal_.cancel();
}

void Connection::endTask(Task& t) {
  if (t.state == Task::State::Done) return;
  t.state = Task::State::Done;
  if (auto it = tasks_.find(t.itt); it != tasks_.end() && it->second.get() == &t) tasks_.erase(it);
  if (t.ttt != wire::kReservedTag) byTtt_.erase(t.ttt);
  if (t.admitted) budgetUsed_ -= std::min(budgetUsed_, t.budget);
  if (t.counted && session_) session_->commandDone();
  t.data = {};
  if (t.done) t.done->cancel();
  admitTasks();
}

void Connection::sendResponse(Task& t, scsi::Response& r) {
  if (r.status != scsi::Status::Good) ++ctx_->stats.commandsFailed;
  // The buffer goes back to the pool it came from (Lun::read) once the writer has sent it. One
  // allocation holds both the buffer and its count (make_shared, then the aliasing constructor).
  struct Pooled {
    explicit Pooled(std::vector<std::uint8_t>&& b) : buf(std::move(b)) {}
    Pooled(const Pooled&) = delete;
    Pooled& operator=(const Pooled&) = delete;
    ~Pooled() { blockstore::BufferPool::give(std::move(buf)); }
    std::vector<std::uint8_t> buf;
  };
  auto pooled = std::make_shared<Pooled>(std::move(r.dataIn));
  std::shared_ptr<const std::vector<std::uint8_t>> data(pooled, &pooled->buf);
  std::shared_ptr<blockstore::PipeChain> pipe = std::move(r.dataPipe);
  const std::size_t total = pipe ? r.dataPipeLength : data->size();
  const std::uint32_t mrdsl = std::max<std::uint32_t>(512, params_.initiatorMaxRecvDataSegmentLength);
  const std::uint32_t burst = std::max<std::uint32_t>(512, params_.maxBurstLength);
  const bool collapse = r.sense.empty();
  std::uint32_t dataSn = 0;
  std::size_t off = 0;
  while (off < total) {
    std::size_t inBurst = off % burst;
    std::size_t len = std::min<std::size_t>({mrdsl, total - off, burst - inBurst});
    bool last = off + len == total;
    wire::DataIn d;
    d.lun = t.lunField;
    d.initiatorTaskTag = t.itt;
    d.targetTransferTag = wire::kReservedTag;
    d.dataSn = dataSn++;
    d.bufferOffset = static_cast<std::uint32_t>(off);
    d.final = last || (off + len) % burst == 0;
    if (last && collapse) {
      d.statusPresent = true;
      d.status = static_cast<std::uint8_t>(r.status);
      d.residualUnderflow = r.residual == scsi::Residual::Underflow;
      d.residualOverflow = r.residual == scsi::Residual::Overflow;
      d.residualCount = r.residual == scsi::Residual::None ? 0 : r.residualCount;
      fillSn(d.statSn, d.expCmdSn, d.maxCmdSn, true);
    } else {
      std::uint32_t unused = 0;
      fillSn(unused, d.expCmdSn, d.maxCmdSn, false);
    }
    if (pipe) queue(d, nullptr, 0, len, pipe);
    else queue(d, data, off, len);
    off += len;
  }
  ctx_->stats.bytesOut += total;
  if (total > 0 && collapse) return;
  wire::ScsiResponse rsp;
  rsp.initiatorTaskTag = t.itt;
  rsp.response = 0;
  rsp.status = static_cast<std::uint8_t>(r.status);
  rsp.residualUnderflow = r.residual == scsi::Residual::Underflow;
  rsp.residualOverflow = r.residual == scsi::Residual::Overflow;
  rsp.residualCount = r.residual == scsi::Residual::None ? 0 : r.residualCount;
  rsp.expDataSn = dataSn;
  fillSn(rsp.statSn, rsp.expCmdSn, rsp.maxCmdSn, true);
  std::shared_ptr<std::vector<std::uint8_t>> sense;
  std::size_t senseLen = 0;
  if (!r.sense.empty()) {
    // §11.4.7.2: SenseLength (2 bytes) then the sense data.
    sense = std::make_shared<std::vector<std::uint8_t>>();
    sense->reserve(2 + r.sense.size());
    sense->push_back(static_cast<std::uint8_t>(r.sense.size() >> 8));
    sense->push_back(static_cast<std::uint8_t>(r.sense.size()));
    sense->insert(sense->end(), r.sense.begin(), r.sense.end());
    senseLen = sense->size();
  }
  queue(rsp, sense, 0, senseLen);
}

bool Connection::rxDataOut(const wire::DataOut& h, wire::RxPdu& pdu) {
  std::shared_ptr<Task> t;
  if (h.targetTransferTag != wire::kReservedTag) {
    if (auto it = byTtt_.find(h.targetTransferTag); it != byTtt_.end() && it->second->itt == h.initiatorTaskTag)
      t = it->second;
  } else if (auto it = tasks_.find(h.initiatorTaskTag); it != tasks_.end() && it->second->unsolicitedPending) {
    t = it->second;
  }
  if (!t || t->state != Task::State::Collecting) {
    if (std::find(abortedItts_.begin(), abortedItts_.end(), h.initiatorTaskTag) != abortedItts_.end()) {
      PXD_DEBUG("iscsi.pdu_ignored", "conn={} reason=aborted_task itt={:#x}", id_, h.initiatorTaskTag);
      return true;
    }
    reject(wire::RejectReason::InvalidPduField, pdu.bhs, Drop::UnknownTask,
           fmt::format("Data-Out for no task in progress (itt {:#x}, ttt {:#x})", h.initiatorTaskTag,
                       h.targetTransferTag));
    return true;
  }
  if (h.dataSn != t->expDataSn && !t->dataSnError) {
    // §7.9: a DataSN out of order means an earlier Data-Out of the sequence was lost (to a digest
    // error), to be handled as in §7.8. ERL 0 has no recovery R2T, so the task is terminated with
    // CHECK CONDITION, ABORTED COMMAND / PROTOCOL SERVICE CRC ERROR (§11.4.7.2) once every PDU of its
    // outstanding sequences has arrived; nothing is written and the connection carries on.
    t->dataSnError = true;
    ctx_->stats.drop(Drop::DataSequence);
    PXD_DEBUG("iscsi.pdu_ignored", "conn={} reason=data_sequence itt={:#x} data_sn={} expected={}", id_,
              h.initiatorTaskTag, h.dataSn, t->expDataSn);
  }
  ++t->expDataSn;
  const std::uint32_t len = static_cast<std::uint32_t>(pdu.data.size());
  if (h.bufferOffset > t->edtl || len > t->edtl - h.bufferOffset) {
    reject(wire::RejectReason::ProtocolError, pdu.bhs, Drop::ProtocolError, "Data-Out past the expected transfer length");
    return true;
  }
  if (len > 0 && h.bufferOffset < t->data.size() && !t->dataSnError) {
    std::size_t n = std::min<std::size_t>(len, t->data.size() - h.bufferOffset);
    std::memcpy(t->data.data() + h.bufferOffset, pdu.data.data(), n);
  }
  ctx_->stats.bytesIn += len;
  t->highest = std::max(t->highest, h.bufferOffset + len);
  if (h.final) {
    t->expDataSn = 0;
    if (h.targetTransferTag == wire::kReservedTag) {
      t->unsolicitedPending = false;
      t->nextOffset = std::max(t->nextOffset, std::min(t->highest, t->need));
    } else if (t->outstandingR2t > 0) {
      --t->outstandingR2t;
    }
    solicit(t);
    maybeRun(t);
  }
  return true;
}

std::vector<std::shared_ptr<Connection::Task>> Connection::abortTasks(std::optional<std::uint32_t> itt) {
  std::vector<std::shared_ptr<Task>> running;
  std::vector<std::shared_ptr<Task>> all;
  for (auto& [tag, t] : tasks_)
    if (!itt || tag == *itt) all.push_back(t);
  for (auto& t : all) {
    t->aborted = true;
    abortedItts_.push_back(t->itt);
    if (abortedItts_.size() > 256) abortedItts_.pop_front();
    if (t->state == Task::State::Executing) running.push_back(t);
    else endTask(*t);
  }
  return running;
}

bool Connection::rxTaskMgmt(const wire::TaskMgmtRequest& h, wire::RxPdu& /*pdu*/) {
  const std::uint32_t expBefore = session_->expCmdSn();  // before this request advances it
  auto check = session_->rxCmdSn(h.cmdSn, h.immediate);
  if (check == Session::CmdSnCheck::OutOfWindow) {
    ctx_->stats.drop(Drop::OutOfWindow);
    PXD_DEBUG("iscsi.pdu_ignored", "conn={} reason=out_of_window opcode=task_mgmt cmd_sn={}", id_, h.cmdSn);
    return true;
  }
  if (check == Session::CmdSnCheck::Accept) session_->commandDone();
  ++ctx_->stats.taskManagement;
  wire::TaskMgmtResponse rsp;
  rsp.initiatorTaskTag = h.initiatorTaskTag;
  std::vector<std::shared_ptr<Task>> waitFor;
  bool coldReset = false;
  auto fn = static_cast<wire::TmfFunction>(h.function & 0x7f);
  std::uint32_t lunNumber = wire::decodeLun(h.lun);
  std::string_view name = "unsupported";
  switch (fn) {
    case wire::TmfFunction::AbortTask: {
      name = "abort_task";
      auto it = tasks_.find(h.referencedTaskTag);
      if (it != tasks_.end()) {
        waitFor = abortTasks(h.referencedTaskTag);
        rsp.response = static_cast<std::uint8_t>(wire::TmfResponseCode::FunctionComplete);
      } else if (snLessEq(expBefore, h.refCmdSn) && snLess(h.refCmdSn, h.cmdSn)) {
        // §11.5.1 b): a command not received yet, within the valid CmdSN window and before this
        // request: it is considered received and aborted (with one connection per session, commands
        // arrive in order, so the initiator never sent it).
        session_->skipCmdSn(h.refCmdSn);
        rsp.response = static_cast<std::uint8_t>(wire::TmfResponseCode::FunctionComplete);
      } else {
        // §11.5.1 c): RefCmdSN outside the window, i.e. a task that already completed (its CmdSN
        // is below ExpCmdSN and its status went out) or one never issued: "Task does not exist".
        rsp.response = static_cast<std::uint8_t>(wire::TmfResponseCode::TaskDoesNotExist);
      }
      break;
    }
    case wire::TmfFunction::AbortTaskSet:
    case wire::TmfFunction::ClearTaskSet:
      name = fn == wire::TmfFunction::AbortTaskSet ? "abort_task_set" : "clear_task_set";
      if (lunNumber != 0) {
        rsp.response = static_cast<std::uint8_t>(wire::TmfResponseCode::LunDoesNotExist);
        break;
      }
      waitFor = abortTasks(std::nullopt);
      rsp.response = static_cast<std::uint8_t>(wire::TmfResponseCode::FunctionComplete);
      break;
    case wire::TmfFunction::LogicalUnitReset:
    case wire::TmfFunction::TargetWarmReset:
      name = fn == wire::TmfFunction::LogicalUnitReset ? "lun_reset" : "target_warm_reset";
      if (fn == wire::TmfFunction::LogicalUnitReset && lunNumber != 0) {
        rsp.response = static_cast<std::uint8_t>(wire::TmfResponseCode::LunDoesNotExist);
        break;
      }
      waitFor = abortTasks(std::nullopt);
      if (session_->lun() && session_->lun()->lun) session_->lun()->lun->reset();
      rsp.response = static_cast<std::uint8_t>(wire::TmfResponseCode::FunctionComplete);
      break;
    case wire::TmfFunction::TargetColdReset:
      // §11.5.1: a warm reset, then every connection to this target closes (each host has its own
      // target, so only this host's sessions go). The response is sent first (finishTmf).
      name = "target_cold_reset";
      waitFor = abortTasks(std::nullopt);
      if (session_->lun() && session_->lun()->lun) session_->lun()->lun->reset();
      rsp.response = static_cast<std::uint8_t>(wire::TmfResponseCode::FunctionComplete);
      coldReset = true;
      break;
    case wire::TmfFunction::TaskReassign:
      name = "task_reassign";
      rsp.response = static_cast<std::uint8_t>(wire::TmfResponseCode::ReassignmentNotSupported);
      break;
    default:
      rsp.response = static_cast<std::uint8_t>(wire::TmfResponseCode::NotSupported);
      break;
  }
  PXD_INFO("iscsi.task_management", "conn={} function={} ref_itt={:#x} response={} waiting={}", id_, name,
           h.referencedTaskTag, rsp.response, waitFor.size());
  auto self = shared_from_this();
  if (coldReset) coldReset_ = true;  // nothing after the reset is processed
  asio::co_spawn(socket_.get_executor(),
                 [self, waitFor, rsp, coldReset]() { return self->finishTmf(waitFor, rsp, coldReset); },
                 asio::detached);
  return true;
}

asio::awaitable<void> Connection::finishTmf(std::vector<std::shared_ptr<Task>> waitFor, wire::TaskMgmtResponse rsp,
                                            bool closeTarget) {
  auto self = shared_from_this();
  // §11.5: the response goes out after every affected task has ended.
  for (auto& t : waitFor) {
    // The timer exists only for tasks a TMF waits on (most commands never need one).
    if (t->state != Task::State::Done && !t->done) t->done = std::make_unique<asio::steady_timer>(socket_.get_executor());
    while (t->state != Task::State::Done && !closed_) co_await waitOn(*t->done);
  }
  if (closed_) co_return;
  fillSn(rsp.statSn, rsp.expCmdSn, rsp.maxCmdSn, true);
  queue(rsp);
  if (!closeTarget) co_return;
  // TARGET COLD RESET: the other connections to this target are cut off; this one ends the way a
  // drain does (the reader stops, the queued response is written, then the socket closes).
  std::vector<std::shared_ptr<Connection>> others;
  const std::string target = session_ ? session_->key().target : std::string();
  ctx_->sessions.forEach([&](const std::shared_ptr<Session>& s) {
    if (s->key().target != target || s->owner == id_) return;
    if (auto it = ctx_->connections.find(s->owner); it != ctx_->connections.end()) {
      if (auto c = it->second.lock()) others.push_back(std::move(c));
    }
  });
  for (auto& c : others) c->abort(Drop::TargetReset, "target cold reset by another session");
  drain(Drop::TargetReset);
}

}  // namespace pxedust::iscsi
