// Reservations: persistent reservations (SPC-5 5.14) and RESERVE(6)/RELEASE(6) (SPC-2 5.5) for
// one Lun (see reservations.hpp).
#include "scsi/reservations.hpp"

#include <utility>
#include <vector>

namespace pxedust::scsi {
namespace {

// SPC-5 6.17.3 table 241: persistent reservation types.
constexpr std::uint8_t kWriteExclusive = 1;
constexpr std::uint8_t kExclusiveAccess = 3;
constexpr std::uint8_t kWriteExclusiveRegistrantsOnly = 5;
constexpr std::uint8_t kExclusiveAccessRegistrantsOnly = 6;
constexpr std::uint8_t kWriteExclusiveAllRegistrants = 7;
constexpr std::uint8_t kExclusiveAccessAllRegistrants = 8;

bool validPrType(std::uint8_t t) {
  return t == kWriteExclusive || t == kExclusiveAccess || (t >= kWriteExclusiveRegistrantsOnly && t <= kExclusiveAccessAllRegistrants);
}
bool allRegistrants(std::uint8_t t) { return t == kWriteExclusiveAllRegistrants || t == kExclusiveAccessAllRegistrants; }
bool registrantsType(std::uint8_t t) { return t >= kWriteExclusiveRegistrantsOnly; }

// iSCSI-form TransportID (SPC-5 7.6.4.6, FORMAT CODE 01b: "name,i,0xISID"), for READ FULL STATUS.
std::vector<std::uint8_t> transportId(std::uint8_t protocol, const Nexus& n) {
  std::string s = n.isid.empty() ? n.initiatorName : n.key();
  std::vector<std::uint8_t> t(4, 0);
  t[0] = static_cast<std::uint8_t>((n.isid.empty() ? 0x00 : 0x40) | (protocol & 0x0F));
  t.insert(t.end(), s.begin(), s.end());
  t.push_back(0);
  while (t.size() % 4 || t.size() < 24) t.push_back(0);
  putBe16(t.data() + 2, static_cast<std::uint16_t>(t.size() - 4));
  return t;
}

// The parameter data cut to the allocation length (as lun.cpp's helper of the same name).
Response dataResponse(std::vector<std::uint8_t> data, std::uint32_t allocationLength) {
  Response r;
  if (data.size() > allocationLength) data.resize(allocationLength);
  r.dataIn = std::move(data);
  return r;
}

}  // namespace

bool Reservations::isReservationHolder(const std::string& nexusKey) const {
  if (!reservation_) return false;
  if (allRegistrants(reservation_->type)) return registrations_.count(nexusKey) != 0;
  return reservation_->holder == nexusKey;
}

bool Reservations::conflictWhenReserved(const Cdb& cdb, const std::string& nexusKey) const {
  const OpKind k = cdb.info->kind;
  // Commands allowed whatever the reservation (SPC-5 5.14.1 table 61, SPC-2 5.5.1).
  const bool always = k == OpKind::Inquiry || k == OpKind::ReportLuns || k == OpKind::ReportSupportedOpcodes ||
                      k == OpKind::RequestSense;
  if (always) return false;
  if (reserve6Holder_ && *reserve6Holder_ != nexusKey) {
    // SPC-2 5.5.1: RELEASE(6) from another nexus succeeds without effect; everything else conflicts.
    return k != OpKind::Release6;
  }
  if (!reservation_ || isReservationHolder(nexusKey)) return false;
  switch (k) {
    case OpKind::TestUnitReady:
    case OpKind::ReadCapacity10:
    case OpKind::ReadCapacity16:
    case OpKind::PersistentReserveIn:
    case OpKind::PersistentReserveOut:  // checked by the service action itself
      return false;
    default:
      break;
  }
  const bool registered = registrations_.count(nexusKey) != 0;
  const std::uint8_t t = reservation_->type;
  // Table 61: reads conflict only under the Exclusive Access types (for non-registrants of the
  // registrants-only/all-registrants forms); writes under every type except, for registrants,
  // the registrants-only/all-registrants forms.
  const bool readClass = k == OpKind::Read || k == OpKind::Verify || k == OpKind::GetLbaStatus ||
                         k == OpKind::ModeSense || k == OpKind::PreFetch || k == OpKind::ReadDefectData;
  if (k == OpKind::Reserve6 || k == OpKind::Release6) return true;  // SPC-5 5.14.3: PR present
  if (readClass) {
    if (t == kExclusiveAccess) return true;
    if (t == kExclusiveAccessRegistrantsOnly || t == kExclusiveAccessAllRegistrants) return !registered;
    return false;
  }
  if (t == kWriteExclusive || t == kExclusiveAccess) return true;
  return !registered;
}

Response Reservations::reserve6(const std::string& nexusKey) {
  // SPC-2 7.21: a second RESERVE from the holder succeeds; conflicts were handled before dispatch.
  reserve6Holder_ = nexusKey;
  return Response::good();
}

Response Reservations::release6(const std::string& nexusKey) {
  if (reserve6Holder_ && *reserve6Holder_ == nexusKey) reserve6Holder_.reset();
  return Response::good();
}

void Reservations::releaseReservation(const std::string& by, bool notify) {
  if (!reservation_) return;
  // SPC-5 5.14.11.2.2: releasing a registrants-only or all-registrants reservation tells the other
  // registrants (RESERVATIONS RELEASED).
  if (notify && registrantsType(reservation_->type)) {
    for (const auto& [key, reg] : registrations_) {
      if (key != by) notify_(key, asc::kReservationsReleased);
    }
  }
  reservation_.reset();
}

void Reservations::nexusLost(const std::string& nexusKey) {
  // SPC-2 5.5.1: an I_T nexus loss releases that nexus's RESERVE(6) reservation.
  if (reserve6Holder_ && *reserve6Holder_ == nexusKey) reserve6Holder_.reset();
}

Response Reservations::persistentReserveIn(const Cdb& cdb, std::uint8_t protocolIdentifier) const {
  std::vector<std::uint8_t> out(8, 0);
  putBe32(out.data(), prGeneration_);
  switch (cdb.serviceAction) {
    case 0x00: {  // READ KEYS (SPC-5 6.16.2)
      for (const auto& [key, reg] : registrations_) {
        std::uint8_t k[8];
        putBe64(k, reg.key);
        out.insert(out.end(), k, k + 8);
      }
      break;
    }
    case 0x01: {  // READ RESERVATION (6.16.3)
      if (reservation_) {
        out.resize(24, 0);
        std::uint64_t key = 0;
        if (!allRegistrants(reservation_->type)) {
          auto it = registrations_.find(reservation_->holder);
          if (it != registrations_.end()) key = it->second.key;
        }
        putBe64(out.data() + 8, key);
        out[21] = reservation_->type & 0x0F;  // SCOPE 0h: logical unit
      }
      break;
    }
    case 0x02: {  // REPORT CAPABILITIES (6.16.4)
      out.assign(8, 0);
      putBe16(out.data(), 8);
      // CRH=0, SIP_C=0, ATP_C=0, PTPL_C=0; TMV=1 with the types below; ALLOW COMMANDS 000b.
      out[3] = 0x80;
      out[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02;  // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
      out[5] = 0x01;                              // EX_AC_AR
      return dataResponse(std::move(out), cdb.allocationLength);
    }
    case 0x03: {  // READ FULL STATUS (6.16.5)
      for (const auto& [key, reg] : registrations_) {
        std::vector<std::uint8_t> d(24, 0);
        putBe64(d.data(), reg.key);
        if (isReservationHolder(key)) {
          d[12] = 0x01;  // R_HOLDER
          d[13] = reservation_->type & 0x0F;
        }
        putBe16(d.data() + 18, reg.nexus.relativeTargetPort);
        auto tid = transportId(protocolIdentifier, reg.nexus);
        putBe32(d.data() + 20, static_cast<std::uint32_t>(tid.size()));
        out.insert(out.end(), d.begin(), d.end());
        out.insert(out.end(), tid.begin(), tid.end());
      }
      break;
    }
    default:
      return Response::check(invalidFieldInCdb(1, 4));
  }
  putBe32(out.data() + 4, static_cast<std::uint32_t>(out.size() - 8));
  return dataResponse(std::move(out), cdb.allocationLength);
}

Response Reservations::persistentReserveOut(const Cdb& cdb, std::span<const std::uint8_t> data, const Nexus& nexus) {
  const std::uint8_t sa = cdb.serviceAction;
  const std::uint8_t scope = cdb.bytes[2] >> 4;
  const std::uint8_t type = cdb.bytes[2] & 0x0F;
  auto params = parsePrOutParameters(data);
  if (!params) return Response::check(params.sense);
  const std::string me = nexus.key();
  auto mine = registrations_.find(me);
  const bool registered = mine != registrations_.end();

  // RESERVE, RELEASE, PREEMPT, PREEMPT AND ABORT name a scope and type (SPC-5 6.17.2).
  const bool typed = sa == 0x01 || sa == 0x02 || sa == 0x04 || sa == 0x05;
  if (typed) {
    if (scope != 0) return Response::check(invalidFieldInCdb(2, 7));
    if (!validPrType(type)) return Response::check(invalidFieldInCdb(2, 3));
  }

  switch (sa) {
    case 0x00:    // REGISTER
    case 0x06: {  // REGISTER AND IGNORE EXISTING KEY (SPC-5 5.14.7)
      if (sa == 0x00) {
        if (!registered && params->key != 0) return Response::conflict();
        if (registered && params->key != mine->second.key) return Response::conflict();
      }
      if (params->serviceActionKey == 0) {
        if (registered) {
          // Unregistering the holder of a reservation releases it (5.14.11.2.3); under the
          // all-registrants types only when the last registrant goes.
          registrations_.erase(mine);
          if (reservation_) {
            if (allRegistrants(reservation_->type)) {
              if (registrations_.empty()) reservation_.reset();
            } else if (reservation_->holder == me) {
              releaseReservation(me, true);
            }
          }
          ++prGeneration_;
        }
        return Response::good();
      }
      if (registered) {
        mine->second.key = params->serviceActionKey;
      } else {
        registrations_[me] = Registration{params->serviceActionKey, nexus};
      }
      ++prGeneration_;
      return Response::good();
    }
    case 0x01: {  // RESERVE (5.14.10)
      if (!registered || params->key != mine->second.key) return Response::conflict();
      if (reservation_) {
        if (isReservationHolder(me) && reservation_->type == type) return Response::good();
        return Response::conflict();
      }
      reservation_ = Reservation{me, type};
      return Response::good();
    }
    case 0x02: {  // RELEASE (5.14.11.2)
      if (!registered || params->key != mine->second.key) return Response::conflict();
      if (!reservation_ || !isReservationHolder(me)) return Response::good();
      if (reservation_->type != type) {
        return Response::check(illegalRequest(Asc{0x26, 0x04}));  // INVALID RELEASE OF PERSISTENT RESERVATION
      }
      releaseReservation(me, true);
      return Response::good();
    }
    case 0x03: {  // CLEAR (5.14.11.2.6)
      if (!registered || params->key != mine->second.key) return Response::conflict();
      for (const auto& [key, reg] : registrations_) {
        if (key != me) notify_(key, asc::kReservationsPreempted);
      }
      registrations_.clear();
      reservation_.reset();
      ++prGeneration_;
      return Response::good();
    }
    case 0x04:
    case 0x05: {  // PREEMPT, PREEMPT AND ABORT (5.14.12)
      if (!registered || params->key != mine->second.key) return Response::conflict();
      const std::uint64_t victim = params->serviceActionKey;
      auto removeWithKey = [&](std::uint64_t k) {
        int removed = 0;
        for (auto it = registrations_.begin(); it != registrations_.end();) {
          if (it->first != me && it->second.key == k) {
            notify_(it->first, asc::kRegistrationsPreempted);
            it = registrations_.erase(it);
            ++removed;
          } else {
            ++it;
          }
        }
        return removed;
      };
      if (reservation_ && allRegistrants(reservation_->type)) {
        if (victim == 0) {
          // Every other registration goes and the preempter holds the new reservation.
          for (auto it = registrations_.begin(); it != registrations_.end();) {
            if (it->first != me) {
              notify_(it->first, asc::kRegistrationsPreempted);
              it = registrations_.erase(it);
            } else {
              ++it;
            }
          }
          reservation_ = Reservation{me, type};
        } else {
          if (removeWithKey(victim) == 0) return Response::conflict();
        }
      } else if (reservation_) {
        auto holder = registrations_.find(reservation_->holder);
        const bool preemptsHolder = holder != registrations_.end() && holder->second.key == victim;
        if (!preemptsHolder && victim == 0) return Response::check(invalidFieldInParameterList(8));
        const bool holderIsMe = reservation_->holder == me;
        if (removeWithKey(victim) == 0 && !(preemptsHolder && holderIsMe)) return Response::conflict();
        if (preemptsHolder) reservation_ = Reservation{me, type};
      } else {
        if (victim == 0) return Response::check(invalidFieldInParameterList(8));
        if (removeWithKey(victim) == 0) return Response::conflict();
      }
      ++prGeneration_;
      return Response::good();
    }
    default:
      return Response::check(invalidFieldInCdb(1, 4));
  }
}

}  // namespace pxedust::scsi
