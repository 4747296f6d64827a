// DHCPv4 option vocabulary (RFC 2132 and successors, the PXE 2.1 spec, iPXE), as one table.
//
// Every option pxedust knows is one OptionDefinition row {code, name, type}; the same row drives
// three things, so they cannot drift apart (Kea's std_option_defs.h):
//   * decoding: the length rule of the type says whether a received value is well-formed; the
//     typed accessors of wire::Message and formatOptionValue() rely on it;
//   * configuration: encodeOptionValue() turns the text of a config value ("10.0.0.1, 10.0.0.2",
//     "01:02:ab", "true", "example.com, lab.example.com") into the bytes sent on the wire, with an
//     error that names the option and the expected syntax;
//   * logs: formatOption() renders any received or configured option as name=value.
//
// Sub-option spaces have rows of their own: PXE vendor options inside 43 (PXE spec §2.4), iPXE's
// encapsulated options inside 175 (iPXE include/ipxe/dhcp.h, features.h) and relay agent
// sub-options inside 82 (RFC 3046 and successors). Their names are written "pxe.<name>",
// "ipxe.<name>" and "agent.<name>" when looked up by name.
//
// Pure: no sockets, clock, config or logging. Addresses are host-order uint32 (Ipv4 below), which
// converts directly to and from asio::ip::address_v4 (its uint constructor and to_uint()).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace pxedust::dhcp::wire {

// An IPv4 address in host byte order: 10.0.0.1 is 0x0a000001.
using Ipv4 = std::uint32_t;

// Strict dotted quad: four decimal parts 0..255, nothing else ("10.0.0.1").
std::optional<Ipv4> parseIpv4(std::string_view text);
std::string formatIpv4(Ipv4 address);

// Option codes the codec and the server use by name (RFC 2132 unless noted).
namespace opt {
inline constexpr std::uint8_t kPad = 0;
inline constexpr std::uint8_t kSubnetMask = 1;
inline constexpr std::uint8_t kRouters = 3;
inline constexpr std::uint8_t kDomainNameServers = 6;
inline constexpr std::uint8_t kHostName = 12;
inline constexpr std::uint8_t kDomainName = 15;
inline constexpr std::uint8_t kRootPath = 17;
inline constexpr std::uint8_t kInterfaceMtu = 26;
inline constexpr std::uint8_t kBroadcastAddress = 28;
inline constexpr std::uint8_t kNtpServers = 42;
inline constexpr std::uint8_t kVendorSpecific = 43;  // PXE sub-options when vendor class is PXEClient
inline constexpr std::uint8_t kRequestedIp = 50;
inline constexpr std::uint8_t kLeaseTime = 51;
inline constexpr std::uint8_t kOverload = 52;
inline constexpr std::uint8_t kMessageType = 53;
inline constexpr std::uint8_t kServerId = 54;
inline constexpr std::uint8_t kParameterRequestList = 55;
inline constexpr std::uint8_t kMessage = 56;
inline constexpr std::uint8_t kMaxMessageSize = 57;
inline constexpr std::uint8_t kRenewalTime = 58;
inline constexpr std::uint8_t kRebindingTime = 59;
inline constexpr std::uint8_t kVendorClass = 60;
inline constexpr std::uint8_t kClientId = 61;
inline constexpr std::uint8_t kTftpServerName = 66;
inline constexpr std::uint8_t kBootFileName = 67;
inline constexpr std::uint8_t kUserClass = 77;         // RFC 3004
inline constexpr std::uint8_t kRapidCommit = 80;       // RFC 4039
inline constexpr std::uint8_t kClientFqdn = 81;        // RFC 4702
inline constexpr std::uint8_t kRelayAgentInfo = 82;    // RFC 3046
inline constexpr std::uint8_t kClientArch = 93;        // RFC 4578
inline constexpr std::uint8_t kClientNdi = 94;         // RFC 4578
inline constexpr std::uint8_t kClientUuid = 97;        // RFC 4578
inline constexpr std::uint8_t kDomainSearch = 119;     // RFC 3397
inline constexpr std::uint8_t kClasslessRoutes = 121;  // RFC 3442
inline constexpr std::uint8_t kTftpServerAddress = 150;  // RFC 5859
inline constexpr std::uint8_t kIpxeEncap = 175;        // iPXE ("Etherboot") encapsulated options
inline constexpr std::uint8_t kIscsiInitiatorIqn = 203;  // iPXE
inline constexpr std::uint8_t kPxelinuxMagic = 208;    // RFC 5071
inline constexpr std::uint8_t kPxelinuxConfigFile = 209;
inline constexpr std::uint8_t kPxelinuxPathPrefix = 210;
inline constexpr std::uint8_t kPxelinuxRebootTime = 211;
inline constexpr std::uint8_t kEnd = 255;
}  // namespace opt

// Sub-options of 43 for PXE clients (PXE 2.1 spec, table 2-1).
namespace pxe {
inline constexpr std::uint8_t kMtftpIp = 1;
inline constexpr std::uint8_t kMtftpClientPort = 2;
inline constexpr std::uint8_t kMtftpServerPort = 3;
inline constexpr std::uint8_t kMtftpTimeout = 4;
inline constexpr std::uint8_t kMtftpDelay = 5;
inline constexpr std::uint8_t kDiscoveryControl = 6;  // bit 3 (value 8): boot the file in the offer directly
inline constexpr std::uint8_t kDiscoveryMcastAddr = 7;
inline constexpr std::uint8_t kBootServers = 8;
inline constexpr std::uint8_t kBootMenu = 9;
inline constexpr std::uint8_t kMenuPrompt = 10;
inline constexpr std::uint8_t kMcastAddrsAlloc = 11;
inline constexpr std::uint8_t kCredentialTypes = 12;
inline constexpr std::uint8_t kBootItem = 71;
}  // namespace pxe

// Sub-options of 175 (iPXE include/ipxe/dhcp.h and features.h). Clients send the feature codes
// 0x10..0x29 (value: a version byte) and bus-id; servers send settings such as no-pxedhcp.
namespace ipxe {
inline constexpr std::uint8_t kPriority = 1;
inline constexpr std::uint8_t kKeepSan = 8;
inline constexpr std::uint8_t kSkipSanBoot = 9;
inline constexpr std::uint8_t kFeaturePxeExt = 0x10;
inline constexpr std::uint8_t kFeatureIscsi = 0x11;
inline constexpr std::uint8_t kFeatureAoe = 0x12;
inline constexpr std::uint8_t kFeatureHttp = 0x13;
inline constexpr std::uint8_t kFeatureHttps = 0x14;
inline constexpr std::uint8_t kFeatureTftp = 0x15;
inline constexpr std::uint8_t kFeatureFtp = 0x16;
inline constexpr std::uint8_t kFeatureDns = 0x17;
inline constexpr std::uint8_t kFeatureBzImage = 0x18;
inline constexpr std::uint8_t kFeatureMultiboot = 0x19;
inline constexpr std::uint8_t kFeatureSlam = 0x1a;
inline constexpr std::uint8_t kFeatureSrp = 0x1b;
inline constexpr std::uint8_t kFeatureNbi = 0x20;
inline constexpr std::uint8_t kFeaturePxe = 0x21;
inline constexpr std::uint8_t kFeatureElf = 0x22;
inline constexpr std::uint8_t kFeatureComboot = 0x23;
inline constexpr std::uint8_t kFeatureEfi = 0x24;
inline constexpr std::uint8_t kFeatureFcoe = 0x25;
inline constexpr std::uint8_t kFeatureVlan = 0x26;
inline constexpr std::uint8_t kFeatureMenu = 0x27;
inline constexpr std::uint8_t kFeatureSdi = 0x28;
inline constexpr std::uint8_t kFeatureNfs = 0x29;
inline constexpr std::uint8_t kSyslogs = 85;
inline constexpr std::uint8_t kCert = 91;
inline constexpr std::uint8_t kPrivateKey = 92;
inline constexpr std::uint8_t kCrossCert = 93;
inline constexpr std::uint8_t kNoPxeDhcp = 176;  // skip waiting for a ProxyDHCP offer
inline constexpr std::uint8_t kBusId = 177;      // bus type, vendor, device (PCI: 1, u16, u16)
inline constexpr std::uint8_t kSanRetry = 187;
inline constexpr std::uint8_t kSanFilename = 188;
inline constexpr std::uint8_t kBiosDrive = 189;
inline constexpr std::uint8_t kUsername = 190;
inline constexpr std::uint8_t kPassword = 191;
inline constexpr std::uint8_t kReverseUsername = 192;
inline constexpr std::uint8_t kReversePassword = 193;
inline constexpr std::uint8_t kVersion = 235;  // major, minor, patch
}  // namespace ipxe

// Sub-options of 82 (RFC 3046 §2.0, RFC 3527, RFC 3993, RFC 4243, RFC 5107).
namespace agent {
inline constexpr std::uint8_t kCircuitId = 1;
inline constexpr std::uint8_t kRemoteId = 2;
inline constexpr std::uint8_t kLinkSelection = 5;
inline constexpr std::uint8_t kSubscriberId = 6;
inline constexpr std::uint8_t kVendorSpecific = 9;
inline constexpr std::uint8_t kServerIdOverride = 11;
}  // namespace agent

// Client system architectures, option 93 (RFC 4578 §2.1 and the IANA registry).
namespace arch {
inline constexpr std::uint16_t kBios = 0;
inline constexpr std::uint16_t kEfiIa32 = 6;
inline constexpr std::uint16_t kEfiBc = 7;  // what x86-64 UEFI firmware actually sends
inline constexpr std::uint16_t kEfiX64 = 9;
inline constexpr std::uint16_t kEfiArm32 = 10;
inline constexpr std::uint16_t kEfiArm64 = 11;
inline constexpr std::uint16_t kEfiX86Http = 15;
inline constexpr std::uint16_t kEfiX64Http = 16;
inline constexpr std::uint16_t kEfiArm32Http = 18;
inline constexpr std::uint16_t kEfiArm64Http = 19;
inline constexpr std::uint16_t kBiosHttp = 20;
inline constexpr std::uint16_t kEfiRiscv64 = 27;
inline constexpr std::uint16_t kEfiRiscv64Http = 28;
}  // namespace arch
// "x86-bios", "x64-uefi", ...; "arch-<n>" for a value not in the registry above.
std::string describeArch(std::uint16_t architecture);

// How an option's value is laid out. Each type has a length rule (lengthRule) and a text form.
enum class OptionType : std::uint8_t {
  Ip,               // 4 bytes                      "10.0.0.1"
  IpList,           // n * 4 bytes, n >= 1          "10.0.0.1, 10.0.0.2"
  IpPairs,          // n * 8 bytes (21, 33)         "10.0.0.0 255.0.0.0, 10.1.0.0 10.0.0.1"
  U8,               //                              "64" or "0x40"
  U16,
  U32,
  I32,              // signed (2, time offset)      "-3600"
  Bool,             // 1 byte 0/1                   "true", "false", "yes", "no", "on", "off", "1", "0"
  String,           // >= 1 byte of text, sent as written (no NUL)
  Binary,           // any bytes                    "01:02:ab", "01 02 ab" or "0102ab"
  U8List,           // >= 1 byte (55)               "1, 3, 6"
  U16List,          // n * 2 bytes, n >= 1 (93, 25) "0, 7"
  ClientId,         // type byte + >= 1 byte (61)   hex, e.g. "01:52:54:00:12:34:56"
  Encapsulated,     // sub-options (43, 175)        hex; formatted as [name=value, ...]
  RelayAgentInfo,   // sub-options (82)             hex; echoed verbatim by the server
  UserClass,        // RFC 3004 list, or iPXE's plain string   "iPXE" or "a, b" (sent as RFC 3004)
  Uuid,             // type 0 + 16 bytes (97)       "8-4-4-4-12" hex UUID, bytes in the order written
  ClientNdi,        // type, major, minor (94)      "1.3.16"
  ClasslessRoutes,  // RFC 3442 (121)               "10.0.0.0/8 10.0.0.1, 0.0.0.0/0 192.168.1.1"
  DomainList,       // RFC 1035 names (119)         "example.com, lab.example.com"
  MessageType,      // 1 byte (53)                  "offer", "DHCPACK" or a number
  Empty,            // no data at all (80)          ""
};

// "ip", "ip-list", "u8", "string", "binary", ...: the names config files use to give a type to
// an option the table does not know (parseOptionType accepts "hex" for binary too).
std::string_view typeName(OptionType type);
std::optional<OptionType> parseOptionType(std::string_view name);

struct LengthRule {
  std::size_t min = 0;
  std::size_t max = SIZE_MAX;
  std::size_t multiple = 1;
};
LengthRule lengthRule(OptionType type);
bool validLength(OptionType type, std::size_t length);

// Which table a code lives in: DHCP options, or the sub-options of 43, 175 and 82.
enum class OptionSpace : std::uint8_t { Dhcp, Pxe, Ipxe, RelayAgent };
std::string_view spaceName(OptionSpace space);  // "", "pxe", "ipxe", "agent"

struct OptionDefinition {
  std::uint8_t code = 0;
  std::string_view name;
  OptionType type = OptionType::Binary;
  OptionSpace space = OptionSpace::Dhcp;
  // A protocol-control option (50, 51, 52, 53, 54, 57, 61) whose value has an impossible length
  // makes the whole packet invalid: the server could only guess. Any other option with a bad
  // length is kept as raw bytes and its typed accessor answers nullopt (real clients do send, e.g.,
  // an empty host name, and that must not cost them their lease).
  bool strict = false;
  OptionSpace encapsulates = OptionSpace::Dhcp;  // for Encapsulated/RelayAgentInfo: the sub-option space
};

std::optional<OptionDefinition> findOption(std::uint8_t code, OptionSpace space = OptionSpace::Dhcp);
// By name, case-insensitive: "routers", "ntp-servers", "pxe.discovery-control", "ipxe.no-pxedhcp".
std::optional<OptionDefinition> findOption(std::string_view name);
std::span<const OptionDefinition> optionDefinitions(OptionSpace space = OptionSpace::Dhcp);

// The largest value a config may give one option. Longer values would not fit the 1500-byte
// replies of most clients anyway (RFC 3396 splits them into 255-byte instances on the wire).
inline constexpr std::size_t kMaxConfiguredValue = 1024;

// A config key -> definition: a name ("routers"), a code ("150"), or a code with a type name
// ("150" + "ip-list"). A code the table does not know becomes {code, "option-<code>", Binary} (or
// the given type); a type that contradicts a known code's own type is refused (except "binary"/"hex",
// always allowed), as are codes 0 and 255 (framing), 52 (the codec manages overload) and 53 (the
// server picks the message type).
Result<OptionDefinition> resolveOption(std::string_view nameOrCode, std::string_view type = {});

// Config text -> wire bytes for one option, e.g. ("routers", "10.0.0.1, 10.0.0.2") -> 8 bytes.
// The error message names the option and the expected syntax. Values longer than
// kMaxConfiguredValue or failing the type's length rule are refused.
Result<std::vector<std::uint8_t>> encodeOptionValue(const OptionDefinition& definition, std::string_view text);

// Wire bytes -> text for logs, in the syntax encodeOptionValue() accepts (so a formatted value can be
// pasted into a config), except sub-option lists (43, 175, 82), shown decoded as [name=value, ...].
// A value that fails its type's length rule, or text that is not printable, is shown as hex.
std::string formatOptionValue(const OptionDefinition& definition, std::span<const std::uint8_t> value);
// "routers=10.0.0.1, 10.0.0.2"; unknown codes as "option-150=0a:00:00:01".
std::string formatOption(std::uint8_t code, std::span<const std::uint8_t> value,
                         OptionSpace space = OptionSpace::Dhcp);

// Hex helpers: "01:02:ab" (lower-case, ':'-separated); parseHex also takes "01 02 ab", "01-02-ab",
// "0102ab" and an empty string.
std::string formatHex(std::span<const std::uint8_t> bytes);
std::optional<std::vector<std::uint8_t>> parseHex(std::string_view text);

// Sub-options (type-length-value inside 43, 175 and 82). Views point into the caller's buffer.
struct SubOption {
  std::uint8_t code = 0;
  std::span<const std::uint8_t> data;
};
// With padAndEnd (43 and 175: RFC 2132 §8.4, PXE spec), code 0 is a one-byte pad and 255 ends the
// list; 82 has neither (RFC 3046 §2.0), so pass false for it. A sub-option that runs past the end
// is an error.
Result<std::vector<SubOption>> parseSubOptions(std::span<const std::uint8_t> data, bool padAndEnd = true);
// The first sub-option with `code`, or nullopt (also when the buffer is malformed).
std::optional<std::span<const std::uint8_t>> findSubOption(std::span<const std::uint8_t> data, std::uint8_t code,
                                                           bool padAndEnd = true);
// Appends code, length, data. Refuses data longer than 255 bytes (the caller splits or reconsiders).
Result<void> appendSubOption(std::vector<std::uint8_t>& out, std::uint8_t code, std::span<const std::uint8_t> data);

// RFC 3004 user class: a list of (length, data) instances; iPXE sends a plain string instead
// ("iPXE"). Decoding tries RFC 3004 first and falls back to one plain string.
struct UserClass {
  std::vector<std::string> classes;
  bool rfc3004 = false;  // true: the value was a well-formed RFC 3004 list
};
UserClass decodeUserClass(std::span<const std::uint8_t> value);

}  // namespace pxedust::dhcp::wire
