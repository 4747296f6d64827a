// libFuzzer harness for the SCSI parsers of peer bytes: every CDB goes through planCommand() and
// parseCdb(); the parsed command's Data-Out through the parameter-list parser it would use (UNMAP,
// MODE SELECT, PERSISTENT RESERVE OUT), and REPORT SUPPORTED OPERATION CODES / MODE SENSE builders
// through their answers. Nothing may crash or read out of bounds, and the invariants the Lun relies
// on must hold: an accepted medium command lies inside the device and under the transfer cap, and a
// plan never asks for more Data-Out than the expected length.
//
// Input layout: byte 0 = CDB length (mod 17), then the CDB, then 4 bytes of expected length, then
// the Data-Out.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "scsi/cdb.hpp"
#include "scsi/mode_pages.hpp"

using namespace pxedust::scsi;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::span<const std::uint8_t> in(data, size);
  const std::size_t cdbLength = std::min<std::size_t>(in[0] % 17, in.size() - 1);
  auto cdbBytes = in.subspan(1, cdbLength);
  auto rest = in.subspan(1 + cdbLength);
  std::uint32_t expected = 0;
  if (rest.size() >= 4) {
    expected = getBe32(rest.data());
    rest = rest.subspan(4);
  }

  Geometry g;
  g.blocks = 1u << 21;  // 1 GiB at 512 bytes: small enough for READ(6) edge cases to matter
  Plan plan = planCommand(cdbBytes, g, expected);
  if (!plan.immediate && plan.dataOutBytes > expected) std::abort();
  if (plan.immediate && plan.immediate->sense.size() != 18) std::abort();

  auto parsed = parseCdb(cdbBytes, g);
  if (!parsed) {
    if (parsed.sense.fixed().size() != 18) std::abort();
    return 0;
  }
  const Cdb& c = *parsed;
  switch (c.info->kind) {
    case OpKind::Read:
    case OpKind::Write:
    case OpKind::WriteAndVerify:
    case OpKind::OrWrite:
    case OpKind::Verify:
      if (c.lba > g.blocks || c.blocks > g.blocks - c.lba) std::abort();
      if (c.blocks > g.maxTransferBlocks) std::abort();
      break;
    case OpKind::WriteSame:
      if (c.blocks == 0 || c.lba > g.blocks || c.blocks > g.blocks - c.lba) std::abort();
      break;
    case OpKind::CompareAndWrite:
      if (c.transferBytes != c.blocks * 2 * g.blockSize) std::abort();
      break;
    case OpKind::Unmap:
      if (auto l = parseUnmapParameters(rest.first(std::min<std::size_t>(rest.size(), c.parameterListLength)), g)) {
        for (const auto& d : *l) {
          if (d.lba > g.blocks || d.blocks > g.blocks - d.lba) std::abort();
        }
      }
      break;
    case OpKind::ModeSelect: {
      ModeLimits limits{false, true, g.blockSize, g.blocks};
      (void)applyModeSelect(c, rest.first(std::min<std::size_t>(rest.size(), c.parameterListLength)), ModeState{},
                            limits);
      break;
    }
    case OpKind::ModeSense: {
      ModeLimits limits{(expected & 1) != 0, true, g.blockSize, g.blocks};
      if (auto d = buildModeSense(c, ModeState{}, ModeState{}, limits); d && d->size() < 4) std::abort();
      break;
    }
    case OpKind::PersistentReserveOut:
      (void)parsePrOutParameters(rest.first(std::min<std::size_t>(rest.size(), c.parameterListLength)));
      break;
    case OpKind::ReportSupportedOpcodes:
      if (auto d = reportSupportedOpcodes(c); d && d->size() < 4) std::abort();
      break;
    default:
      break;
  }
  if (c.transferBytes > kMaxParameterListLength && c.direction == Direction::Out &&
      c.info->kind != OpKind::Write && c.info->kind != OpKind::WriteAndVerify && c.info->kind != OpKind::Verify &&
      c.info->kind != OpKind::OrWrite &&
      c.info->kind != OpKind::CompareAndWrite && c.info->kind != OpKind::WriteSame) {
    std::abort();
  }
  return 0;
}
