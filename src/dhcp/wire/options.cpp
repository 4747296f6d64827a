// DHCPv4 option vocabulary (see options.hpp). Three tables drive everything:
//   * the option rows of each space (code, name, type, strictness, sub-option space);
//   * kSpaces: each option space with its name prefix and its rows;
//   * kTypes: each value type with its config name, length rule, expected syntax, encoder and
//     formatter, so encodeOptionValue() and formatOptionValue() are one lookup each.
#include "dhcp/wire/options.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <iterator>

#include "common/checked.hpp"

namespace pxedust::dhcp::wire {
namespace {

using T = OptionType;
using S = OptionSpace;

// The DHCP option space. Names follow ISC Kea / dhcpd where they exist, so an operator's muscle
// memory carries over. `strict` rows are the protocol-control options (see OptionDefinition).
constexpr OptionDefinition kDhcpOptions[] = {
    {1, "subnet-mask", T::Ip},
    {2, "time-offset", T::I32},
    {3, "routers", T::IpList},
    {4, "time-servers", T::IpList},
    {5, "name-servers", T::IpList},
    {6, "domain-name-servers", T::IpList},
    {7, "log-servers", T::IpList},
    {8, "cookie-servers", T::IpList},
    {9, "lpr-servers", T::IpList},
    {10, "impress-servers", T::IpList},
    {11, "resource-location-servers", T::IpList},
    {12, "host-name", T::String},
    {13, "boot-size", T::U16},
    {14, "merit-dump", T::String},
    {15, "domain-name", T::String},
    {16, "swap-server", T::Ip},
    {17, "root-path", T::String},
    {18, "extensions-path", T::String},
    {19, "ip-forwarding", T::Bool},
    {20, "non-local-source-routing", T::Bool},
    {21, "policy-filter", T::IpPairs},
    {22, "max-dgram-reassembly", T::U16},
    {23, "default-ip-ttl", T::U8},
    {24, "path-mtu-aging-timeout", T::U32},
    {25, "path-mtu-plateau-table", T::U16List},
    {26, "interface-mtu", T::U16},
    {27, "all-subnets-local", T::Bool},
    {28, "broadcast-address", T::Ip},
    {29, "perform-mask-discovery", T::Bool},
    {30, "mask-supplier", T::Bool},
    {31, "router-discovery", T::Bool},
    {32, "router-solicitation-address", T::Ip},
    {33, "static-routes", T::IpPairs},
    {34, "trailer-encapsulation", T::Bool},
    {35, "arp-cache-timeout", T::U32},
    {36, "ieee802-3-encapsulation", T::Bool},
    {37, "default-tcp-ttl", T::U8},
    {38, "tcp-keepalive-interval", T::U32},
    {39, "tcp-keepalive-garbage", T::Bool},
    {40, "nis-domain", T::String},
    {41, "nis-servers", T::IpList},
    {42, "ntp-servers", T::IpList},
    {43, "vendor-encapsulated-options", T::Encapsulated, S::Dhcp, false, S::Pxe},
    {44, "netbios-name-servers", T::IpList},
    {45, "netbios-dd-server", T::IpList},
    {46, "netbios-node-type", T::U8},
    {47, "netbios-scope", T::String},
    {48, "font-servers", T::IpList},
    {49, "x-display-manager", T::IpList},
    {50, "dhcp-requested-address", T::Ip, S::Dhcp, true},
    {51, "dhcp-lease-time", T::U32, S::Dhcp, true},
    {52, "dhcp-option-overload", T::U8, S::Dhcp, true},
    {53, "dhcp-message-type", T::MessageType, S::Dhcp, true},
    {54, "dhcp-server-identifier", T::Ip, S::Dhcp, true},
    {55, "dhcp-parameter-request-list", T::U8List},
    {56, "dhcp-message", T::String},
    {57, "dhcp-max-message-size", T::U16, S::Dhcp, true},
    {58, "dhcp-renewal-time", T::U32},
    {59, "dhcp-rebinding-time", T::U32},
    {60, "vendor-class-identifier", T::String},
    {61, "dhcp-client-identifier", T::ClientId, S::Dhcp, true},
    {64, "nisplus-domain-name", T::String},
    {65, "nisplus-servers", T::IpList},
    {66, "tftp-server-name", T::String},
    {67, "boot-file-name", T::String},
    {68, "mobile-ip-home-agent", T::IpList},
    {69, "smtp-server", T::IpList},
    {70, "pop-server", T::IpList},
    {71, "nntp-server", T::IpList},
    {72, "www-server", T::IpList},
    {73, "finger-server", T::IpList},
    {74, "irc-server", T::IpList},
    {75, "streettalk-server", T::IpList},
    {76, "streettalk-directory-assistance-server", T::IpList},
    {77, "user-class", T::UserClass},
    {80, "rapid-commit", T::Empty},
    {81, "fqdn", T::Binary},
    {82, "relay-agent-information", T::RelayAgentInfo, S::Dhcp, false, S::RelayAgent},
    {91, "client-last-transaction-time", T::U32},
    {92, "associated-ip", T::IpList},
    {93, "client-system-architecture", T::U16List},
    {94, "client-ndi", T::ClientNdi},
    {97, "uuid-guid", T::Uuid},
    {100, "pcode", T::String},
    {101, "tcode", T::String},
    {108, "v6-only-preferred", T::U32},
    {114, "v4-captive-portal", T::String},
    {116, "auto-config", T::U8},
    {118, "subnet-selection", T::Ip},
    {119, "domain-search", T::DomainList},
    {121, "classless-static-route", T::ClasslessRoutes},
    {124, "vivco-suboptions", T::Binary},
    {125, "vivso-suboptions", T::Binary},
    {150, "tftp-server-address", T::IpList},
    {175, "ipxe-encapsulated-options", T::Encapsulated, S::Dhcp, false, S::Ipxe},
    {203, "iscsi-initiator-iqn", T::String},
    {208, "pxelinux-magic", T::Binary},
    {209, "pxelinux-configfile", T::String},
    {210, "pxelinux-pathprefix", T::String},
    {211, "pxelinux-reboottime", T::U32},
    {252, "wpad-url", T::String},
};

constexpr OptionDefinition kPxeOptions[] = {
    {pxe::kMtftpIp, "mtftp-ip", T::Ip, S::Pxe},
    {pxe::kMtftpClientPort, "mtftp-cport", T::U16, S::Pxe},
    {pxe::kMtftpServerPort, "mtftp-sport", T::U16, S::Pxe},
    {pxe::kMtftpTimeout, "mtftp-tmout", T::U8, S::Pxe},
    {pxe::kMtftpDelay, "mtftp-delay", T::U8, S::Pxe},
    {pxe::kDiscoveryControl, "discovery-control", T::U8, S::Pxe},
    {pxe::kDiscoveryMcastAddr, "discovery-mcast-addr", T::Ip, S::Pxe},
    {pxe::kBootServers, "boot-servers", T::Binary, S::Pxe},
    {pxe::kBootMenu, "boot-menu", T::Binary, S::Pxe},
    {pxe::kMenuPrompt, "menu-prompt", T::Binary, S::Pxe},
    {pxe::kMcastAddrsAlloc, "mcast-addrs-alloc", T::Binary, S::Pxe},
    {pxe::kCredentialTypes, "credential-types", T::Binary, S::Pxe},
    {pxe::kBootItem, "boot-item", T::Binary, S::Pxe},
};

constexpr OptionDefinition kIpxeOptions[] = {
    {ipxe::kPriority, "priority", T::U8, S::Ipxe},
    {ipxe::kKeepSan, "keep-san", T::U8, S::Ipxe},
    {ipxe::kSkipSanBoot, "skip-san-boot", T::U8, S::Ipxe},
    {ipxe::kFeaturePxeExt, "pxeext", T::U8, S::Ipxe},
    {ipxe::kFeatureIscsi, "iscsi", T::U8, S::Ipxe},
    {ipxe::kFeatureAoe, "aoe", T::U8, S::Ipxe},
    {ipxe::kFeatureHttp, "http", T::U8, S::Ipxe},
    {ipxe::kFeatureHttps, "https", T::U8, S::Ipxe},
    {ipxe::kFeatureTftp, "tftp", T::U8, S::Ipxe},
    {ipxe::kFeatureFtp, "ftp", T::U8, S::Ipxe},
    {ipxe::kFeatureDns, "dns", T::U8, S::Ipxe},
    {ipxe::kFeatureBzImage, "bzimage", T::U8, S::Ipxe},
    {ipxe::kFeatureMultiboot, "multiboot", T::U8, S::Ipxe},
    {ipxe::kFeatureSlam, "slam", T::U8, S::Ipxe},
    {ipxe::kFeatureSrp, "srp", T::U8, S::Ipxe},
    {ipxe::kFeatureNbi, "nbi", T::U8, S::Ipxe},
    {ipxe::kFeaturePxe, "pxe", T::U8, S::Ipxe},
    {ipxe::kFeatureElf, "elf", T::U8, S::Ipxe},
    {ipxe::kFeatureComboot, "comboot", T::U8, S::Ipxe},
    {ipxe::kFeatureEfi, "efi", T::U8, S::Ipxe},
    {ipxe::kFeatureFcoe, "fcoe", T::U8, S::Ipxe},
    {ipxe::kFeatureVlan, "vlan", T::U8, S::Ipxe},
    {ipxe::kFeatureMenu, "menu", T::U8, S::Ipxe},
    {ipxe::kFeatureSdi, "sdi", T::U8, S::Ipxe},
    {ipxe::kFeatureNfs, "nfs", T::U8, S::Ipxe},
    {ipxe::kSyslogs, "syslogs", T::String, S::Ipxe},
    {ipxe::kCert, "cert", T::Binary, S::Ipxe},
    {ipxe::kPrivateKey, "privkey", T::Binary, S::Ipxe},
    {ipxe::kCrossCert, "crosscert", T::String, S::Ipxe},
    {ipxe::kNoPxeDhcp, "no-pxedhcp", T::U8, S::Ipxe},
    {ipxe::kBusId, "bus-id", T::Binary, S::Ipxe},
    {ipxe::kSanRetry, "san-retry", T::U8, S::Ipxe},
    {ipxe::kSanFilename, "san-filename", T::String, S::Ipxe},
    {ipxe::kBiosDrive, "bios-drive", T::U8, S::Ipxe},
    {ipxe::kUsername, "username", T::String, S::Ipxe},
    {ipxe::kPassword, "password", T::String, S::Ipxe},
    {ipxe::kReverseUsername, "reverse-username", T::String, S::Ipxe},
    {ipxe::kReversePassword, "reverse-password", T::String, S::Ipxe},
    {ipxe::kVersion, "version", T::Binary, S::Ipxe},
};

constexpr OptionDefinition kAgentOptions[] = {
    {agent::kCircuitId, "circuit-id", T::Binary, S::RelayAgent},
    {agent::kRemoteId, "remote-id", T::Binary, S::RelayAgent},
    {agent::kLinkSelection, "link-selection", T::Ip, S::RelayAgent},
    {agent::kSubscriberId, "subscriber-id", T::String, S::RelayAgent},
    {agent::kVendorSpecific, "vendor-specific", T::Binary, S::RelayAgent},
    {agent::kServerIdOverride, "server-id-override", T::Ip, S::RelayAgent},
};

// The option spaces: the prefix of their names ("pxe.discovery-control") and their rows.
struct SpaceInfo {
  OptionSpace space;
  std::string_view name;
  std::span<const OptionDefinition> rows;
};
constexpr SpaceInfo kSpaces[] = {
    {S::Dhcp, "", kDhcpOptions},
    {S::Pxe, "pxe", kPxeOptions},
    {S::Ipxe, "ipxe", kIpxeOptions},
    {S::RelayAgent, "agent", kAgentOptions},
};

std::span<const OptionDefinition> table(OptionSpace space) {
  for (const auto& s : kSpaces)
    if (s.space == space) return s.rows;
  return {};
}

// "option-<n>" for codes the table does not know, as static storage for OptionDefinition::name.
struct CodeNames {
  std::array<std::array<char, 12>, 256> names{};
};
constexpr CodeNames kCodeNames = [] {
  CodeNames n;
  for (unsigned c = 0; c < 256; ++c) {
    auto& s = n.names[c];
    std::size_t i = 0;
    for (char ch : std::string_view("option-")) s[i++] = ch;
    if (c >= 100) s[i++] = static_cast<char>('0' + c / 100);
    if (c >= 10) s[i++] = static_cast<char>('0' + c / 10 % 10);
    s[i++] = static_cast<char>('0' + c % 10);
  }
  return n;
}();
// Option 93 values (RFC 4578 §2.1 and the IANA registry) and the names logs and status show.
constexpr std::pair<std::uint16_t, std::string_view> kArchNames[] = {
    {arch::kBios, "x86-bios"},
    {arch::kEfiIa32, "x86-uefi"},
    {arch::kEfiBc, "x64-uefi"},
    {arch::kEfiX64, "x64-uefi-9"},
    {arch::kEfiArm32, "arm32-uefi"},
    {arch::kEfiArm64, "arm64-uefi"},
    {arch::kEfiX86Http, "x86-uefi-http"},
    {arch::kEfiX64Http, "x64-uefi-http"},
    {arch::kEfiArm32Http, "arm32-uefi-http"},
    {arch::kEfiArm64Http, "arm64-uefi-http"},
    {arch::kBiosHttp, "x86-bios-http"},
    {arch::kEfiRiscv64, "riscv64-uefi"},
    {arch::kEfiRiscv64Http, "riscv64-uefi-http"},
};

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Tokens separated by commas and/or white space: "a, b c" -> a, b, c.
std::vector<std::string_view> tokens(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (isSpace(s[i]) || s[i] == ',')) ++i;
    std::size_t start = i;
    while (i < s.size() && !isSpace(s[i]) && s[i] != ',') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

// Comma-separated items, each trimmed; empty items are dropped.
std::vector<std::string_view> commaItems(std::string_view s) {
  std::vector<std::string_view> out;
  while (true) {
    auto comma = s.find(',');
    auto item = trim(s.substr(0, comma));
    if (!item.empty()) out.push_back(item);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decimal, or hex with a 0x prefix; nullopt when not a number or above `max`.
std::optional<std::uint64_t> parseUnsigned(std::string_view s, std::uint64_t max) {
  std::uint64_t v = 0;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    auto [p, ec] = std::from_chars(s.data() + 2, s.data() + s.size(), v, 16);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  } else {
    auto d = parseDecimal(s);
    if (!d || d->saturated) return std::nullopt;
    v = d->value;
  }
  if (v > max) return std::nullopt;
  return v;
}

void putBe(std::vector<std::uint8_t>& out, std::uint64_t v, int bytes) {
  for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

std::uint32_t getBe(std::span<const std::uint8_t> b) {
  std::uint32_t v = 0;
  for (auto x : b) v = (v << 8) | x;
  return v;
}

bool printable(std::span<const std::uint8_t> b) {
  return std::all_of(b.begin(), b.end(), [](std::uint8_t c) { return c >= 0x20 && c < 0x7f; });
}

// Some clients count a trailing NUL in string options; it is not part of the text.
std::span<const std::uint8_t> stripNuls(std::span<const std::uint8_t> b) {
  while (!b.empty() && b.back() == 0) b = b.first(b.size() - 1);
  return b;
}

std::string_view asText(std::span<const std::uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

Error valueError(const OptionDefinition& d, std::string_view text, std::string_view expected) {
  std::string name = d.space == S::Dhcp ? std::string(d.name) : fmt::format("{}.{}", spaceName(d.space), d.name);
  return Error{fmt::format("{} (option {}): \"{}\" is not valid, expected {}", name, d.code, text, expected)};
}
constexpr std::string_view kMessageTypeNames[] = {
    "",           "DHCPDISCOVER",       "DHCPOFFER",       "DHCPREQUEST",   "DHCPDECLINE",
    "DHCPACK",    "DHCPNAK",            "DHCPRELEASE",     "DHCPINFORM",    "DHCPFORCERENEW",
    "DHCPLEASEQUERY", "DHCPLEASEUNASSIGNED", "DHCPLEASEUNKNOWN", "DHCPLEASEACTIVE",
};

// RFC 1035 §3.1 names without compression: each label 1..63 bytes, the whole name at most 255.
bool appendDomain(std::vector<std::uint8_t>& out, std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  while (!name.empty()) {
    auto dot = name.find('.');
    auto label = name.substr(0, dot);
    if (label.empty() || label.size() > 63) return false;
    out.push_back(static_cast<std::uint8_t>(label.size()));
    out.insert(out.end(), label.begin(), label.end());
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
    if (name.empty()) return false;  // "a..b" or a trailing dot after stripping one
  }
  out.push_back(0);
  return true;
}

// RFC 3397 §2: names may use RFC 1035 compression pointers into the (concatenated) option value.
// Only pointers to earlier offsets are followed, so a loop is impossible; nullopt when malformed.
std::optional<std::vector<std::string>> decodeDomains(std::span<const std::uint8_t> v) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < v.size()) {
    std::string name;
    std::size_t p = pos;
    std::size_t limit = pos;  // pointers must go strictly below this
    bool jumped = false;
    while (true) {
      if (p >= v.size()) return std::nullopt;
      std::uint8_t len = v[p];
      if (len == 0) {
        if (!jumped) pos = p + 1;
        break;
      }
      if ((len & 0xc0) == 0xc0) {
        if (p + 1 >= v.size()) return std::nullopt;
        std::size_t target = (static_cast<std::size_t>(len & 0x3f) << 8) | v[p + 1];
        if (target >= limit) return std::nullopt;
        if (!jumped) pos = p + 2;
        jumped = true;
        limit = target;
        p = target;
        continue;
      }
      if ((len & 0xc0) != 0 || len > v.size() - p - 1) return std::nullopt;
      if (!name.empty()) name.push_back('.');
      name.append(asText(v.subspan(p + 1, len)));
      if (name.size() > 255) return std::nullopt;
      p += 1 + len;
    }
    if (!name.empty()) out.push_back(std::move(name));
  }
  return out;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string s;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) s.append(sep);
    s.append(parts[i]);
  }
  return s;
}

std::string formatUuid(std::span<const std::uint8_t> b) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(kHex[b[i] >> 4]);
    s.push_back(kHex[b[i] & 15]);
  }
  return s;
}

std::string formatSubOptions(std::span<const std::uint8_t> v, OptionSpace space, bool padAndEnd) {
  auto subs = parseSubOptions(v, padAndEnd);
  if (!subs) return formatHex(v);
  std::vector<std::string> parts;
  for (const auto& so : *subs) parts.push_back(formatOption(so.code, so.data, space));
  return "[" + join(parts, ", ") + "]";
}
// ---- the types: how each one reads from config text and renders for logs -----------------------

// What an encoder reports: done, or failed with the syntax it expected (empty: its row's syntax).
struct Encoded {
  bool ok = true;
  std::string_view expected;
};
constexpr Encoded kBad{false, {}};

// Config text (trimmed) -> wire bytes appended to `out`. `type` tells apart the types that share one.
using Encoder = Encoded (*)(std::string_view text, OptionType type, std::vector<std::uint8_t>& out);
// Wire bytes that passed the type's length rule -> text for logs.
using Formatter = std::string (*)(const OptionDefinition& d, std::span<const std::uint8_t> v);

Encoded encodeIps(std::string_view text, OptionType type, std::vector<std::uint8_t>& out) {
  auto items = tokens(text);
  if (items.empty() || (type == T::Ip && items.size() != 1) || (type == T::IpPairs && items.size() % 2 != 0))
    return kBad;
  for (auto item : items) {
    auto ip = parseIpv4(item);
    if (!ip) return kBad;
    putBe(out, *ip, 4);
  }
  return {};
}

Encoded encodeUnsigned(std::string_view text, OptionType type, std::vector<std::uint8_t>& out) {
  int bytes = type == T::U8 ? 1 : type == T::U16 ? 2 : 4;
  auto v = parseUnsigned(text, bytes == 4 ? UINT32_MAX : (1u << (bytes * 8)) - 1);
  if (!v) return kBad;
  putBe(out, *v, bytes);
  return {};
}

Encoded encodeI32(std::string_view text, OptionType /*type*/, std::vector<std::uint8_t>& out) {
  bool negative = !text.empty() && text[0] == '-';
  auto v = parseUnsigned(negative ? text.substr(1) : text, negative ? 0x80000000u : 0x7fffffffu);
  if (!v) return kBad;
  auto s = negative ? -static_cast<std::int64_t>(*v) : static_cast<std::int64_t>(*v);
  putBe(out, static_cast<std::uint32_t>(static_cast<std::int32_t>(s)), 4);
  return {};
}

Encoded encodeBool(std::string_view text, OptionType /*type*/, std::vector<std::uint8_t>& out) {
  if (equalsIgnoreCase(text, "true") || equalsIgnoreCase(text, "yes") || equalsIgnoreCase(text, "on") || text == "1")
    out.push_back(1);
  else if (equalsIgnoreCase(text, "false") || equalsIgnoreCase(text, "no") || equalsIgnoreCase(text, "off") ||
           text == "0")
    out.push_back(0);
  else
    return kBad;
  return {};
}

Encoded encodeString(std::string_view text, OptionType /*type*/, std::vector<std::uint8_t>& out) {
  if (text.empty()) return kBad;
  out.assign(text.begin(), text.end());
  return {};
}

Encoded encodeHex(std::string_view text, OptionType /*type*/, std::vector<std::uint8_t>& out) {
  auto hex = parseHex(text);
  if (!hex) return kBad;
  out = std::move(*hex);
  return {};
}

Encoded encodeNumberList(std::string_view text, OptionType type, std::vector<std::uint8_t>& out) {
  auto items = tokens(text);
  if (items.empty()) return kBad;
  int bytes = type == T::U8List ? 1 : 2;
  for (auto item : items) {
    auto v = parseUnsigned(item, bytes == 1 ? 255 : 65535);
    if (!v) return kBad;
    putBe(out, *v, bytes);
  }
  return {};
}

Encoded encodeUserClass(std::string_view text, OptionType /*type*/, std::vector<std::uint8_t>& out) {
  auto items = commaItems(text);
  if (items.empty()) return kBad;
  for (auto item : items) {
    if (item.size() > 255) return kBad;
    out.push_back(static_cast<std::uint8_t>(item.size()));
    out.insert(out.end(), item.begin(), item.end());
  }
  return {};
}

Encoded encodeUuid(std::string_view text, OptionType /*type*/, std::vector<std::uint8_t>& out) {
  std::string digits;
  for (char c : text)
    if (c != '-') digits.push_back(c);
  auto hex = parseHex(digits);
  if (!hex || hex->size() != 16 || (text.size() != 32 && text.size() != 36)) return kBad;
  out.push_back(0);  // RFC 4578 §2.3: type 0, a 16-byte machine identifier
  out.insert(out.end(), hex->begin(), hex->end());
  return {};
}

Encoded encodeClientNdi(std::string_view text, OptionType /*type*/, std::vector<std::uint8_t>& out) {
  std::string spaced(text);
  std::replace(spaced.begin(), spaced.end(), '.', ' ');
  auto items = tokens(spaced);
  if (items.size() != 3) return kBad;
  for (auto item : items) {
    auto v = parseUnsigned(item, 255);
    if (!v) return kBad;
    out.push_back(static_cast<std::uint8_t>(*v));
  }
  return {};
}

Encoded encodeRoutes(std::string_view text, OptionType /*type*/, std::vector<std::uint8_t>& out) {
  // RFC 3442 §3: prefix length, the significant octets of the destination, the router.
  auto items = tokens(text);
  if (items.empty() || items.size() % 2 != 0) return kBad;
  for (std::size_t i = 0; i < items.size(); i += 2) {
    auto slash = items[i].find('/');
    if (slash == std::string_view::npos) return kBad;
    auto dest = parseIpv4(items[i].substr(0, slash));
    auto prefix = parseUnsigned(items[i].substr(slash + 1), 32);
    auto router = parseIpv4(items[i + 1]);
    if (!dest || !prefix || !router) return kBad;
    Ipv4 mask = *prefix == 0 ? 0 : ~Ipv4{0} << (32 - *prefix);
    if ((*dest & ~mask) != 0) return {false, "destinations without host bits, like \"10.0.0.0/8\""};
    out.push_back(static_cast<std::uint8_t>(*prefix));
    for (std::uint64_t k = 0; k < (*prefix + 7) / 8; ++k) out.push_back(static_cast<std::uint8_t>(*dest >> (24 - 8 * k)));
    putBe(out, *router, 4);
  }
  return {};
}

Encoded encodeDomains(std::string_view text, OptionType /*type*/, std::vector<std::uint8_t>& out) {
  auto items = tokens(text);
  if (items.empty()) return kBad;
  for (auto item : items)
    if (!appendDomain(out, item)) return kBad;
  return {};
}

Encoded encodeMessageType(std::string_view text, OptionType /*type*/, std::vector<std::uint8_t>& out) {
  if (auto v = parseUnsigned(text, 255); v && *v >= 1) {
    out.push_back(static_cast<std::uint8_t>(*v));
    return {};
  }
  for (std::size_t i = 1; i < std::size(kMessageTypeNames); ++i) {
    if (equalsIgnoreCase(text, kMessageTypeNames[i]) || equalsIgnoreCase(text, kMessageTypeNames[i].substr(4))) {
      out.push_back(static_cast<std::uint8_t>(i));
      break;
    }
  }
  if (out.empty()) return kBad;
  return {};
}

Encoded encodeEmpty(std::string_view text, OptionType /*type*/, std::vector<std::uint8_t>& /*out*/) {
  if (!text.empty()) return kBad;
  return {};
}

std::string formatIps(const OptionDefinition& /*d*/, std::span<const std::uint8_t> v) {
  std::vector<std::string> parts;
  for (std::size_t i = 0; i < v.size(); i += 4) parts.push_back(formatIpv4(getBe(v.subspan(i, 4))));
  return join(parts, ", ");
}

std::string formatIpPairs(const OptionDefinition& /*d*/, std::span<const std::uint8_t> v) {
  std::vector<std::string> parts;
  for (std::size_t i = 0; i < v.size(); i += 8)
    parts.push_back(formatIpv4(getBe(v.subspan(i, 4))) + " " + formatIpv4(getBe(v.subspan(i + 4, 4))));
  return join(parts, ", ");
}

std::string formatUnsigned(const OptionDefinition& /*d*/, std::span<const std::uint8_t> v) {
  return fmt::format("{}", getBe(v));
}

std::string formatI32(const OptionDefinition& /*d*/, std::span<const std::uint8_t> v) {
  return fmt::format("{}", static_cast<std::int32_t>(getBe(v)));
}

std::string formatBool(const OptionDefinition& /*d*/, std::span<const std::uint8_t> v) {
  if (v[0] > 1) return formatHex(v);
  return v[0] ? "true" : "false";
}

std::string formatString(const OptionDefinition& /*d*/, std::span<const std::uint8_t> v) {
  auto text = stripNuls(v);
  if (text.empty() || !printable(text)) return formatHex(v);
  return std::string(asText(text));
}

std::string formatBytes(const OptionDefinition& /*d*/, std::span<const std::uint8_t> v) { return formatHex(v); }

std::string formatEncapsulated(const OptionDefinition& d, std::span<const std::uint8_t> v) {
  return formatSubOptions(v, d.encapsulates, true);
}

std::string formatRelayAgentInfo(const OptionDefinition& d, std::span<const std::uint8_t> v) {
  return formatSubOptions(v, d.encapsulates, false);
}

std::string formatNumberList(const OptionDefinition& d, std::span<const std::uint8_t> v) {
  std::vector<std::string> parts;
  std::size_t step = d.type == T::U8List ? 1 : 2;
  for (std::size_t i = 0; i < v.size(); i += step) parts.push_back(fmt::format("{}", getBe(v.subspan(i, step))));
  return join(parts, ", ");
}

std::string formatUserClass(const OptionDefinition& /*d*/, std::span<const std::uint8_t> v) {
  auto uc = decodeUserClass(v);
  for (const auto& c : uc.classes)
    if (c.empty() || !printable({reinterpret_cast<const std::uint8_t*>(c.data()), c.size()})) return formatHex(v);
  return join(uc.classes, ", ");
}

std::string formatUuidValue(const OptionDefinition& /*d*/, std::span<const std::uint8_t> v) {
  if (v[0] != 0) return formatHex(v);
  return formatUuid(v.subspan(1));
}

std::string formatClientNdi(const OptionDefinition& /*d*/, std::span<const std::uint8_t> v) {
  return fmt::format("{}.{}.{}", v[0], v[1], v[2]);
}

std::string formatRoutes(const OptionDefinition& /*d*/, std::span<const std::uint8_t> v) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i < v.size()) {
    std::uint8_t prefix = v[i];
    std::size_t significant = (prefix + 7u) / 8u;
    if (prefix > 32 || significant + 4 > v.size() - i - 1) return formatHex(v);
    Ipv4 dest = 0;
    for (std::size_t k = 0; k < 4; ++k) dest = (dest << 8) | (k < significant ? v[i + 1 + k] : 0);
    Ipv4 router = getBe(v.subspan(i + 1 + significant, 4));
    parts.push_back(fmt::format("{}/{} {}", formatIpv4(dest), prefix, formatIpv4(router)));
    i += 1 + significant + 4;
  }
  return join(parts, ", ");
}

std::string formatDomains(const OptionDefinition& /*d*/, std::span<const std::uint8_t> v) {
  auto names = decodeDomains(v);
  if (!names) return formatHex(v);
  for (const auto& n : *names)
    if (!printable({reinterpret_cast<const std::uint8_t*>(n.data()), n.size()})) return formatHex(v);
  return join(*names, ", ");
}

std::string formatMessageType(const OptionDefinition& /*d*/, std::span<const std::uint8_t> v) {
  if (v[0] >= 1 && v[0] < std::size(kMessageTypeNames)) return std::string(kMessageTypeNames[v[0]]);
  return fmt::format("{}", v[0]);
}

std::string formatEmpty(const OptionDefinition& /*d*/, std::span<const std::uint8_t> /*v*/) { return ""; }

// One row per type: its config name, its length rule, the syntax error messages ask for, and the
// functions that encode config text and format wire bytes. Adding a type is one row (and its two
// functions); typeInfo() finds the row.
struct TypeInfo {
  OptionType type;
  std::string_view name;
  LengthRule rule;
  std::string_view syntax;
  Encoder encode;
  Formatter format;
};
constexpr TypeInfo kTypes[] = {
    {T::Ip, "ip", {4, 4, 1}, "an IPv4 address like \"10.0.0.1\"", encodeIps, formatIps},
    {T::IpList, "ip-list", {4, SIZE_MAX, 4}, "IPv4 addresses like \"10.0.0.1, 10.0.0.2\"", encodeIps, formatIps},
    {T::IpPairs, "ip-pairs", {8, SIZE_MAX, 8},
     "pairs of IPv4 addresses like \"10.0.0.0 255.0.0.0, 10.1.0.0 10.0.0.1\"", encodeIps, formatIpPairs},
    {T::U8, "u8", {1, 1, 1}, "a number 0..255", encodeUnsigned, formatUnsigned},
    {T::U16, "u16", {2, 2, 1}, "a number 0..65535", encodeUnsigned, formatUnsigned},
    {T::U32, "u32", {4, 4, 1}, "a number 0..4294967295", encodeUnsigned, formatUnsigned},
    {T::I32, "i32", {4, 4, 1}, "a number -2147483648..2147483647", encodeI32, formatI32},
    {T::Bool, "bool", {1, 1, 1}, "true or false", encodeBool, formatBool},
    {T::String, "string", {1, SIZE_MAX, 1}, "non-empty text", encodeString, formatString},
    {T::Binary, "binary", {0, SIZE_MAX, 1}, "hex bytes like \"01:02:ab\" (or give a type, e.g. \"string\")",
     encodeHex, formatBytes},
    {T::U8List, "u8-list", {1, SIZE_MAX, 1}, "numbers 0..255 like \"1, 3, 6\"", encodeNumberList, formatNumberList},
    {T::U16List, "u16-list", {2, SIZE_MAX, 2}, "numbers 0..65535 like \"0, 7\"", encodeNumberList,
     formatNumberList},
    // RFC 2132 §9.14: minimum length 2
    {T::ClientId, "client-id", {2, SIZE_MAX, 1},
     "hex bytes like \"01:52:54:00:12:34:56\" (a type byte and at least one more)", encodeHex, formatBytes},
    {T::Encapsulated, "encapsulated", {0, SIZE_MAX, 1},
     "hex bytes like \"01:02:ab\" (or give a type, e.g. \"string\")", encodeHex, formatEncapsulated},
    // At least one sub-option header.
    {T::RelayAgentInfo, "relay-agent-info", {2, SIZE_MAX, 1},
     "hex bytes like \"01:02:ab\" (or give a type, e.g. \"string\")", encodeHex, formatRelayAgentInfo},
    {T::UserClass, "user-class", {1, SIZE_MAX, 1}, "class names like \"iPXE\" or \"a, b\"", encodeUserClass,
     formatUserClass},
    // RFC 4578 §2.3: type 0 + 16 bytes.
    {T::Uuid, "uuid", {17, 17, 1}, "a UUID like \"01234567-89ab-cdef-0123-456789abcdef\"", encodeUuid,
     formatUuidValue},
    {T::ClientNdi, "client-ndi", {3, 3, 1}, "type.major.minor like \"1.3.16\"", encodeClientNdi, formatClientNdi},
    {T::ClasslessRoutes, "routes", {5, SIZE_MAX, 1}, "routes like \"10.0.0.0/8 10.0.0.1, 0.0.0.0/0 192.168.1.1\"",
     encodeRoutes, formatRoutes},
    {T::DomainList, "domain-list", {1, SIZE_MAX, 1}, "domain names like \"example.com, lab.example.com\"",
     encodeDomains, formatDomains},
    {T::MessageType, "message-type", {1, 1, 1}, "a DHCP message type like \"offer\" or a number 1..255",
     encodeMessageType, formatMessageType},
    {T::Empty, "empty", {0, 0, 1}, "an empty value", encodeEmpty, formatEmpty},
};

const TypeInfo& typeInfo(OptionType type) {
  for (const auto& t : kTypes)
    if (t.type == type) return t;
  return kTypes[9];  // binary; unreachable while kTypes lists every type
}

}  // namespace

std::optional<Ipv4> parseIpv4(std::string_view text) {
  Ipv4 v = 0;
  for (int part = 0; part < 4; ++part) {
    auto dot = text.find('.');
    if ((part < 3) == (dot == std::string_view::npos)) return std::nullopt;
    auto digits = text.substr(0, dot);
    if (digits.empty() || digits.size() > 3) return std::nullopt;
    auto d = parseDecimal(digits);
    if (!d || d->value > 255) return std::nullopt;
    v = (v << 8) | static_cast<Ipv4>(d->value);
    text = part < 3 ? text.substr(dot + 1) : std::string_view{};
  }
  return v;
}

std::string formatIpv4(Ipv4 a) { return fmt::format("{}.{}.{}.{}", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255); }

std::string describeArch(std::uint16_t a) {
  for (const auto& [code, name] : kArchNames)
    if (code == a) return std::string(name);
  return fmt::format("arch-{}", a);
}

std::string_view typeName(OptionType type) { return typeInfo(type).name; }

std::optional<OptionType> parseOptionType(std::string_view name) {
  if (equalsIgnoreCase(name, "hex")) return T::Binary;
  for (const auto& t : kTypes)
    if (equalsIgnoreCase(t.name, name)) return t.type;
  return std::nullopt;
}

LengthRule lengthRule(OptionType type) { return typeInfo(type).rule; }

bool validLength(OptionType type, std::size_t length) {
  auto r = lengthRule(type);
  return length >= r.min && length <= r.max && length % r.multiple == 0;
}

std::string_view spaceName(OptionSpace space) {
  for (const auto& s : kSpaces)
    if (s.space == space) return s.name;
  return "?";
}

std::optional<OptionDefinition> findOption(std::uint8_t code, OptionSpace space) {
  for (const auto& d : table(space))
    if (d.code == code) return d;
  return std::nullopt;
}

std::optional<OptionDefinition> findOption(std::string_view name) {
  OptionSpace space = S::Dhcp;
  auto dot = name.find('.');
  if (dot != std::string_view::npos) {
    auto prefix = name.substr(0, dot);
    bool found = false;
    for (const auto& s : kSpaces) {
      if (s.space != S::Dhcp && equalsIgnoreCase(prefix, s.name)) {
        space = s.space;
        found = true;
      }
    }
    if (!found) return std::nullopt;
    name.remove_prefix(dot + 1);
  }
  for (const auto& d : table(space))
    if (equalsIgnoreCase(d.name, name)) return d;
  return std::nullopt;
}

std::span<const OptionDefinition> optionDefinitions(OptionSpace space) { return table(space); }

Result<OptionDefinition> resolveOption(std::string_view nameOrCode, std::string_view type) {
  nameOrCode = trim(nameOrCode);
  type = trim(type);
  std::optional<OptionType> wanted;
  if (!type.empty()) {
    wanted = parseOptionType(type);
    if (!wanted) return Error{fmt::format("unknown option type \"{}\"", type)};
  }
  std::optional<OptionDefinition> def;
  bool known = true;
  if (auto code = parseDecimal(nameOrCode)) {
    if (code->value == opt::kPad || code->value >= opt::kEnd)
      return Error{fmt::format("option code {} is out of range, expected 1..254", nameOrCode)};
    auto c = static_cast<std::uint8_t>(code->value);
    def = findOption(c);
    if (!def) {
      known = false;
      def = OptionDefinition{c, std::string_view(kCodeNames.names[c].data()), wanted.value_or(T::Binary)};
    }
  } else {
    def = findOption(nameOrCode);
    if (!def)
      return Error{fmt::format("unknown DHCP option \"{}\" (give a code 1..254 and a type instead)", nameOrCode)};
  }
  if (def->space == S::Dhcp && def->code == opt::kOverload)
    return Error{"option 52 (dhcp-option-overload) cannot be configured: the codec decides when to overload"};
  if (def->space == S::Dhcp && def->code == opt::kMessageType)
    return Error{"option 53 (dhcp-message-type) cannot be configured: the server decides what it answers"};
  if (wanted && *wanted != def->type) {
    // A known option keeps its own type; raw hex is always allowed.
    if (known && *wanted != T::Binary)
      return Error{fmt::format("option {} ({}) has type {}, not {}", def->code, def->name, typeName(def->type),
                               typeName(*wanted))};
    def->type = *wanted;
  }
  return *def;
}

Result<std::vector<std::uint8_t>> encodeOptionValue(const OptionDefinition& d, std::string_view text) {
  text = trim(text);
  const TypeInfo& type = typeInfo(d.type);
  std::vector<std::uint8_t> out;
  if (auto r = type.encode(text, d.type, out); !r.ok)
    return valueError(d, text, r.expected.empty() ? type.syntax : r.expected);
  if (out.size() > kMaxConfiguredValue)
    return valueError(d, text.substr(0, 32), fmt::format("at most {} bytes of option data", kMaxConfiguredValue));
  if (!validLength(d.type, out.size())) return valueError(d, text, type.syntax);
  return out;
}

std::string formatHex(std::span<const std::uint8_t> bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 3);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i) s.push_back(':');
    s.push_back(kHex[bytes[i] >> 4]);
    s.push_back(kHex[bytes[i] & 15]);
  }
  return s;
}

std::optional<std::vector<std::uint8_t>> parseHex(std::string_view text) {
  text = trim(text);
  std::vector<std::uint8_t> out;
  std::size_t i = 0;
  // Separated form: two digits, then one separator (':', '-' or ' ') between bytes.
  bool separated = text.size() > 2 && (text[2] == ':' || text[2] == '-' || text[2] == ' ');
  char sep = separated ? text[2] : 0;
  while (i < text.size()) {
    if (i + 1 >= text.size()) return std::nullopt;
    int hi = hexDigit(text[i]);
    int lo = hexDigit(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
    i += 2;
    if (separated && i < text.size()) {
      if (text[i] != sep || i + 1 >= text.size()) return std::nullopt;
      ++i;
    }
  }
  return out;
}

std::string formatOptionValue(const OptionDefinition& d, std::span<const std::uint8_t> v) {
  if (!validLength(d.type, v.size())) return formatHex(v);
  return typeInfo(d.type).format(d, v);
}

std::string formatOption(std::uint8_t code, std::span<const std::uint8_t> value, OptionSpace space) {
  auto d = findOption(code, space);
  if (!d) return fmt::format("option-{}={}", code, formatHex(value));
  return fmt::format("{}={}", d->name, formatOptionValue(*d, value));
}

Result<std::vector<SubOption>> parseSubOptions(std::span<const std::uint8_t> data, bool padAndEnd) {
  std::vector<SubOption> out;
  std::size_t i = 0;
  while (i < data.size()) {
    std::uint8_t code = data[i];
    if (padAndEnd && code == 0) {
      ++i;
      continue;
    }
    if (padAndEnd && code == 255) break;
    if (i + 1 >= data.size())
      return Error{fmt::format("sub-option {} at offset {} has no length byte", code, i)};
    std::size_t len = data[i + 1];
    if (len > data.size() - i - 2)
      return Error{fmt::format("sub-option {} at offset {} needs {} bytes, {} left", code, i, len, data.size() - i - 2)};
    out.push_back(SubOption{code, data.subspan(i + 2, len)});
    i += 2 + len;
  }
  return out;
}

std::optional<std::span<const std::uint8_t>> findSubOption(std::span<const std::uint8_t> data, std::uint8_t code,
                                                           bool padAndEnd) {
  auto subs = parseSubOptions(data, padAndEnd);
  if (!subs) return std::nullopt;
  for (const auto& s : *subs)
    if (s.code == code) return s.data;
  return std::nullopt;
}

Result<void> appendSubOption(std::vector<std::uint8_t>& out, std::uint8_t code, std::span<const std::uint8_t> data) {
  if (data.size() > 255) return Error{fmt::format("sub-option {} is {} bytes, at most 255 fit", code, data.size())};
  out.push_back(code);
  out.push_back(static_cast<std::uint8_t>(data.size()));
  out.insert(out.end(), data.begin(), data.end());
  return {};
}

UserClass decodeUserClass(std::span<const std::uint8_t> value) {
  // RFC 3004 §4: UC_Len_i (>= 1) followed by that many bytes, repeated to the end exactly.
  UserClass uc;
  std::size_t i = 0;
  bool ok = !value.empty();
  while (ok && i < value.size()) {
    std::size_t len = value[i];
    if (len == 0 || len > value.size() - i - 1) {
      ok = false;
      break;
    }
    uc.classes.emplace_back(asText(value.subspan(i + 1, len)));
    i += 1 + len;
  }
  if (ok) {
    uc.rfc3004 = true;
    return uc;
  }
  uc.classes.clear();
  auto text = stripNuls(value);
  if (!text.empty()) uc.classes.emplace_back(asText(text));
  return uc;
}

}  // namespace pxedust::dhcp::wire
