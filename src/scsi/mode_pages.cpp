// Mode pages (see mode_pages.hpp for the design).
#include "scsi/mode_pages.hpp"

#include <algorithm>
#include <array>

namespace pxedust::scsi {
namespace {

constexpr std::uint8_t kCachingPage = 0x08;
constexpr std::uint8_t kControlPage = 0x0A;
constexpr std::uint8_t kAllPages = 0x3F;

enum class PageControl : std::uint8_t { Current = 0, Changeable = 1, Default = 2, Saved = 3 };

// SBC-4 6.5.5: Caching mode page, 20 bytes.
std::array<std::uint8_t, 20> cachingPage(const ModeState& s, PageControl pc, const ModeLimits& l) {
  std::array<std::uint8_t, 20> p{};
  p[0] = kCachingPage;
  p[1] = 0x12;
  if (pc == PageControl::Changeable) {
    p[2] = l.wceChangeable ? 0x04 : 0x00;
  } else {
    p[2] = s.wce ? 0x04 : 0x00;  // WCE; RCD=0 (the read cache is the host's page cache)
  }
  return p;
}

// SPC-5 7.5.8: Control mode page, 12 bytes.
std::array<std::uint8_t, 12> controlPage(const ModeState& s, PageControl pc) {
  std::array<std::uint8_t, 12> p{};
  p[0] = kControlPage;
  p[1] = 0x0A;
  if (pc == PageControl::Changeable) {
    p[4] = 0x08;  // SWP
    return p;
  }
  // TST=000b (one task set), D_SENSE=0 (fixed format sense), GLTSD=1 (no log parameters to save).
  p[2] = 0x02;
  // QUEUE ALGORITHM MODIFIER=1 (unrestricted reordering: the block core completes in any order),
  // QERR=00b.
  p[3] = 0x10;
  p[4] = s.swp ? 0x08 : 0x00;
  // BUSY TIMEOUT PERIOD FFFFh: unlimited.
  p[8] = 0xFF;
  p[9] = 0xFF;
  return p;
}

template <std::size_t N>
void append(std::vector<std::uint8_t>& out, const std::array<std::uint8_t, N>& a) {
  out.insert(out.end(), a.begin(), a.end());
}

}  // namespace

Checked<std::vector<std::uint8_t>> buildModeSense(const Cdb& cdb, const ModeState& current, const ModeState& defaults,
                                                  const ModeLimits& limits) {
  const std::uint8_t* c = cdb.bytes.data();
  const bool ten = cdb.length == 10;
  const bool dbd = (c[1] & 0x08) != 0;
  const bool llbaa = ten && (c[1] & 0x10) != 0;
  const auto pc = static_cast<PageControl>(c[2] >> 6);
  const std::uint8_t page = c[2] & 0x3F;
  const std::uint8_t subpage = c[3];
  if (pc == PageControl::Saved) return illegalRequest(asc::kSavingParametersNotSupported);
  const ModeState& s = pc == PageControl::Default ? defaults : current;

  std::vector<std::uint8_t> pages;
  if (page == kAllPages) {
    // 3Fh with subpage 00h: all pages; with FFh: all pages and subpages (we have none).
    if (subpage != 0x00 && subpage != 0xFF) return invalidFieldInCdb(3);
    append(pages, cachingPage(s, pc, limits));
    append(pages, controlPage(s, pc));
  } else if (page == kCachingPage) {
    if (subpage != 0x00 && subpage != 0xFF) return invalidFieldInCdb(3);
    append(pages, cachingPage(s, pc, limits));
  } else if (page == kControlPage) {
    if (subpage != 0x00 && subpage != 0xFF) return invalidFieldInCdb(3);
    append(pages, controlPage(s, pc));
  } else {
    return invalidFieldInCdb(2, 5);
  }

  // SBC-4 6.5.1: WP and DPOFUA in the device-specific parameter.
  std::uint8_t dsp = 0x10;
  if (limits.readOnly || current.swp) dsp |= 0x80;

  std::vector<std::uint8_t> bd;
  if (!dbd) {
    if (llbaa) {
      bd.resize(16, 0);
      putBe64(bd.data(), limits.blocks);
      putBe32(bd.data() + 12, limits.blockSize);
    } else {
      bd.resize(8, 0);
      putBe32(bd.data(), limits.blocks > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<std::uint32_t>(limits.blocks));
      bd[5] = static_cast<std::uint8_t>(limits.blockSize >> 16);
      bd[6] = static_cast<std::uint8_t>(limits.blockSize >> 8);
      bd[7] = static_cast<std::uint8_t>(limits.blockSize);
    }
  }

  std::vector<std::uint8_t> out;
  if (ten) {
    out.resize(8, 0);
    out[3] = dsp;
    if (llbaa) out[4] = 0x01;  // LONGLBA
    putBe16(out.data() + 6, static_cast<std::uint16_t>(bd.size()));
  } else {
    out.resize(4, 0);
    out[2] = dsp;
    out[3] = static_cast<std::uint8_t>(bd.size());
  }
  out.insert(out.end(), bd.begin(), bd.end());
  out.insert(out.end(), pages.begin(), pages.end());
  if (ten) {
    putBe16(out.data(), static_cast<std::uint16_t>(out.size() - 2));
  } else {
    out[0] = static_cast<std::uint8_t>(out.size() - 1);
  }
  return out;
}

Checked<ModeState> applyModeSelect(const Cdb& cdb, std::span<const std::uint8_t> data, const ModeState& current,
                                   const ModeLimits& limits) {
  const std::uint8_t* c = cdb.bytes.data();
  const bool ten = cdb.length == 10;
  if (c[1] & 0x01) return invalidFieldInCdb(1, 0);  // SP=1: saved pages not supported
  ModeState next = current;
  if (data.empty()) return next;  // PARAMETER LIST LENGTH 0: nothing to change (SPC-5 6.11)
  const std::size_t headerLength = ten ? 8 : 4;
  if (data.size() < headerLength) return parameterListLengthError();
  const std::size_t bdLength = ten ? getBe16(data.data() + 6) : data[3];
  const bool longLba = ten && (data[4] & 0x01);
  if (data[ten ? 2 : 1] != 0) return invalidFieldInParameterList(ten ? 2 : 1);  // MEDIUM TYPE
  if (bdLength > data.size() - headerLength) return parameterListLengthError();
  const std::size_t bdSize = longLba ? 16 : 8;
  if (bdLength != 0 && bdLength != bdSize) return invalidFieldInParameterList(ten ? 6 : 3);
  if (bdLength) {
    // One block descriptor: its block length must be ours, its block count zero or ours (we do not
    // format or resize).
    const std::uint8_t* d = data.data() + headerLength;
    const std::uint64_t count = longLba ? getBe64(d) : getBe32(d);
    const std::uint32_t length = longLba ? getBe32(d + 12) : (std::uint32_t{d[5]} << 16) | (d[6] << 8) | d[7];
    const std::uint64_t ours = longLba ? limits.blocks : std::min<std::uint64_t>(limits.blocks, 0xFFFFFFFFu);
    if (count != 0 && count != ours) return invalidFieldInParameterList(static_cast<std::uint16_t>(headerLength));
    if (length != limits.blockSize) {
      return invalidFieldInParameterList(static_cast<std::uint16_t>(headerLength + (longLba ? 12 : 5)));
    }
  }
  std::size_t pos = headerLength + bdLength;
  while (pos < data.size()) {
    if (data.size() - pos < 2) return parameterListLengthError();
    const std::uint8_t code = data[pos] & 0x3F;
    if (data[pos] & 0x40) return invalidFieldInParameterList(static_cast<std::uint16_t>(pos), 6);  // SPF: no subpages
    const std::uint8_t length = data[pos + 1];
    if (length > data.size() - pos - 2) return parameterListLengthError();
    std::vector<std::uint8_t> have, changeable;
    if (code == kCachingPage) {
      auto a = cachingPage(next, PageControl::Current, limits);
      auto m = cachingPage(next, PageControl::Changeable, limits);
      have.assign(a.begin(), a.end());
      changeable.assign(m.begin(), m.end());
    } else if (code == kControlPage) {
      auto a = controlPage(next, PageControl::Current);
      auto m = controlPage(next, PageControl::Changeable);
      have.assign(a.begin(), a.end());
      changeable.assign(m.begin(), m.end());
    } else {
      return invalidFieldInParameterList(static_cast<std::uint16_t>(pos), 5);
    }
    if (length != have.size() - 2) return invalidFieldInParameterList(static_cast<std::uint16_t>(pos + 1));
    const std::uint8_t* p = data.data() + pos;
    for (std::size_t i = 2; i < have.size(); ++i) {
      const std::uint8_t diff = static_cast<std::uint8_t>((p[i] ^ have[i]) & ~changeable[i]);
      if (diff) {
        std::uint8_t bit = 7;
        while (!(diff & (1u << bit))) --bit;
        return invalidFieldInParameterList(static_cast<std::uint16_t>(pos + i), bit);
      }
    }
    if (code == kCachingPage) next.wce = (p[2] & 0x04) != 0;
    if (code == kControlPage) next.swp = (p[4] & 0x08) != 0;
    pos += 2 + length;
  }
  return next;
}

}  // namespace pxedust::scsi
