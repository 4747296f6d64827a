// Mode parameters: MODE SENSE(6/10) data and MODE SELECT(6/10) parsing. Pure code (fuzzed).
//
// Design note. Two pages exist (SPC-5 7.5, SBC-4 6.5): Caching (08h), whose WCE bit is changeable
// when the device can flush (WCE=0 makes every write FUA), and Control (0Ah), whose SWP bit is
// changeable (software write protect: writes fail with DATA PROTECT 27/02). Everything else in them
// is fixed. Saved values are not implemented: MODE SENSE with PC=11b answers SAVING PARAMETERS NOT
// SUPPORTED (39/00) and MODE SELECT with SP=1 is INVALID FIELD IN CDB, as SPC-5 6.13/6.11 require.
// MODE SELECT checks every byte of a page against the current value and the changeable mask, so a
// change we cannot honour is refused with a field pointer, never silently dropped.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "scsi/cdb.hpp"

namespace pxedust::scsi {

struct ModeState {
  bool wce = true;   // Caching page: write cache enabled (writes are durable only after a flush)
  bool swp = false;  // Control page: software write protect
  friend bool operator==(const ModeState&, const ModeState&) = default;
};

struct ModeLimits {
  bool readOnly = false;    // WP in the header
  bool wceChangeable = true;  // the device can flush, so a volatile cache is honest
  std::uint32_t blockSize = 512;
  std::uint64_t blocks = 0;
};

// MODE SENSE parameter data for `cdb` (a parsed MODE SENSE(6) or (10)), before allocation-length
// truncation. `defaults` answers PC=10b.
Checked<std::vector<std::uint8_t>> buildModeSense(const Cdb& cdb, const ModeState& current, const ModeState& defaults,
                                                  const ModeLimits& limits);

// Validates a MODE SELECT parameter list against `current` and answers the new state.
Checked<ModeState> applyModeSelect(const Cdb& cdb, std::span<const std::uint8_t> data, const ModeState& current,
                                   const ModeLimits& limits);

}  // namespace pxedust::scsi
