// The identity of an I_T nexus, shared by the Lun (unit attentions, commands) and its reservations.
#pragma once

#include <cstdint>
#include <string>

namespace pxedust::scsi {

// The identity of an I_T nexus (SAM-5 4.6): which initiator port is talking to us.
struct Nexus {
  std::string initiatorName;  // e.g. the iSCSI InitiatorName
  std::string isid;           // the initiator port's session id, 12 hex digits for iSCSI ("00023d000001")
  std::uint16_t relativeTargetPort = 1;
  // The initiator port name (SPC-5 7.6.4.6 form "<name>,i,0x<isid>"): the key reservations and unit
  // attentions are kept by.
  [[nodiscard]] std::string key() const;
};

}  // namespace pxedust::scsi
