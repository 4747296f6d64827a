// Reservations of one logical unit: persistent reservations (SPC-5 5.14, PERSISTENT RESERVE IN/OUT)
// and the older RESERVE(6)/RELEASE(6) (SPC-2 5.5).
//
// Design note. A state machine of its own inside the Lun: the registrations (one key per I_T nexus),
// at most one persistent reservation (holder and type), the PRgeneration counter, and the
// RESERVE(6) holder. The Lun asks conflict() before dispatching any command and hands the four
// commands to the handlers below. Pure: no asio, no block store, no clock.
//  * Kept in memory only (PTPL_C=0): the reservations live as long as the Lun.
//  * Unit attentions for other nexuses (RESERVATIONS RELEASED, REGISTRATIONS PREEMPTED, ...) go
//    through the `notify` hook given at construction; the Lun keeps the queues of unit attentions.
//    It is called only while a PERSISTENT RESERVE OUT runs, never per ordinary command.
//  * conflict() runs for every command: the case with no reservation at all (nearly every command)
//    is answered inline here, without a call.
//  * Not thread-safe: called on the Lun's executor only, like the rest of the Lun.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>

#include "scsi/cdb.hpp"
#include "scsi/nexus.hpp"
#include "scsi/sense.hpp"

namespace pxedust::scsi {

class Reservations {
 public:
  // Queues a unit attention for the nexus with this key (ignored when the Lun does not know it).
  using Notify = std::function<void(const std::string& nexusKey, Asc code)>;
  explicit Reservations(Notify notify) : notify_(std::move(notify)) {}

  // True when `cdb` from `nexusKey` must end with RESERVATION CONFLICT (SPC-5 5.14.1 table 61,
  // SPC-2 5.5.1).
  [[nodiscard]] bool conflict(const Cdb& cdb, const std::string& nexusKey) const {
    if (!reserve6Holder_ && !reservation_) return false;
    return conflictWhenReserved(cdb, nexusKey);
  }

  Response reserve6(const std::string& nexusKey);
  Response release6(const std::string& nexusKey);
  // `protocolIdentifier` goes into the TransportIDs of READ FULL STATUS.
  Response persistentReserveIn(const Cdb& cdb, std::uint8_t protocolIdentifier) const;
  Response persistentReserveOut(const Cdb& cdb, std::span<const std::uint8_t> data, const Nexus& nexus);

  // I_T nexus loss releases that nexus's RESERVE(6) (SPC-2 5.5.1); registrations stay.
  void nexusLost(const std::string& nexusKey);
  // LOGICAL UNIT RESET / target reset: RESERVE(6) is released; persistent reservations survive
  // (SPC-5 5.14.9).
  void reset() { reserve6Holder_.reset(); }

 private:
  struct Registration {
    std::uint64_t key = 0;
    Nexus nexus;
  };
  struct Reservation {
    std::string holder;  // nexus key; ignored for the all-registrants types
    std::uint8_t type = 0;
  };

  [[nodiscard]] bool conflictWhenReserved(const Cdb& cdb, const std::string& nexusKey) const;
  [[nodiscard]] bool isReservationHolder(const std::string& nexusKey) const;
  void releaseReservation(const std::string& by, bool notify);

  Notify notify_;
  std::optional<std::string> reserve6Holder_;
  std::map<std::string, Registration> registrations_;
  std::optional<Reservation> reservation_;
  std::uint32_t prGeneration_ = 0;
};

}  // namespace pxedust::scsi
