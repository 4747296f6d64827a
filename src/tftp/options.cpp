#include "tftp/options.hpp"

#include <algorithm>

#include "common/checked.hpp"

namespace pxedust::tftp {
namespace {

enum class Kind : std::uint8_t { Blksize, Tsize, Timeout, Windowsize };
enum class AboveMax : std::uint8_t { ClampDown, Omit };

struct OptionRule {
  std::string_view name;
  Kind kind;
  std::uint64_t min;
  std::uint64_t max;
  AboveMax aboveMax;
};

// RFC ranges: blksize 8..65464 (RFC 2348), tsize any size (RFC 2349), timeout 1..255 seconds
// (RFC 2349, the server must echo it unchanged), windowsize 1..65535 (RFC 7440).
constexpr std::array<OptionRule, 4> kRules = {{
    {"blksize", Kind::Blksize, 8, 65464, AboveMax::ClampDown},
    {"tsize", Kind::Tsize, 0, UINT64_MAX, AboveMax::ClampDown},
    {"timeout", Kind::Timeout, 1, 255, AboveMax::Omit},
    {"windowsize", Kind::Windowsize, 1, 65535, AboveMax::ClampDown},
}};

}  // namespace

Negotiation negotiate(const wire::Request& request, const OptionLimits& limits, std::uint64_t transferSize) {
  // Pass 1: which options were asked for, in which order, with which acceptable value.
  struct Asked {
    const OptionRule* rule;
    std::uint64_t value;
  };
  std::array<Asked, kRules.size()> asked{};
  std::size_t askedCount = 0;
  unsigned seen = 0;
  for (const auto& opt : request.optionList()) {
    const auto* rule = std::find_if(kRules.begin(), kRules.end(),
                                    [&](const OptionRule& r) { return wire::equalsIgnoreCase(r.name, opt.name); });
    if (rule == kRules.end()) continue;  // unknown options are ignored (RFC 2347)
    unsigned bit = 1u << static_cast<unsigned>(rule->kind);
    if (seen & bit) continue;  // answered once: the first occurrence counts
    seen |= bit;
    auto parsed = parseDecimal(opt.value);
    if (!parsed) continue;
    std::uint64_t v = parsed->value;
    if (v < rule->min) continue;
    if (v > rule->max) {
      if (rule->aboveMax == AboveMax::Omit) continue;
      v = rule->max;
    }
    asked[askedCount++] = Asked{rule, v};
  }

  // Pass 2: apply the server's limits. windowsize depends on the final blksize.
  Negotiation n;
  for (std::size_t i = 0; i < askedCount; ++i) {
    if (asked[i].rule->kind == Kind::Blksize)
      n.blksize = static_cast<std::uint32_t>(std::min<std::uint64_t>(asked[i].value, limits.maxBlksize));
  }
  for (std::size_t i = 0; i < askedCount; ++i) {
    auto& a = asked[i];
    switch (a.rule->kind) {
      case Kind::Blksize: a.value = n.blksize; break;
      case Kind::Tsize: a.value = transferSize; break;
      case Kind::Timeout: n.timeoutSeconds = static_cast<std::uint32_t>(a.value); break;
      case Kind::Windowsize: {
        std::uint64_t byBytes = std::max<std::uint64_t>(1, limits.maxWindowBytes / n.blksize);
        n.windowsize = static_cast<std::uint32_t>(
            std::min<std::uint64_t>({a.value, std::max<std::uint32_t>(limits.maxWindowsize, 1), byBytes}));
        a.value = n.windowsize;
        break;
      }
    }
    n.oack[n.oackCount++] = wire::OackEntry{a.rule->name, a.value};
  }
  return n;
}

}  // namespace pxedust::tftp
