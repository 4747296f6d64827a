// DHCPv4 / BOOTP messages (RFC 951, RFC 2131, RFC 2132, RFC 3396): parse and encode. Pure: bytes
// in, struct or error out; no sockets, clock, config or logging.
//
// Parsing (parseMessage) never trusts a length. What it accepts, and why:
//   * At least 240 bytes (the 236-byte fixed header and the magic cookie); any length above that,
//     so padding after END of any size is fine (RFC 1542 §2.1 clients pad to 300; PXE ROMs to 548+).
//   * op is BOOTREQUEST or BOOTREPLY; hlen <= 16 (the size of chaddr). Any htype is accepted, but
//     mac() answers only for Ethernet (htype 1) with hlen 6: anything else (IPoIB sends hlen 0,
//     RFC 4390) must be identified by its client identifier.
//   * The RFC 1048 magic cookie 99.130.83.99 is required: a cookie-less RFC 951 BOOTP request is
//     dropped (pxedust serves DHCP and PXE clients; every one of them sends the cookie).
//   * Options are read in RFC 2131 §4.1 order: the options field, then `file`, then `sname` when
//     option 52 says they are overloaded. An option whose length byte or data would run past the end
//     of its field is an error: a truncated option cannot be told from garbage. END is *not*
//     required: when the last option ends exactly at the end of its field the field is complete.
//     ISC dhcpd, dnsmasq and Kea all accept this, and some relays and embedded stacks do send it.
//     Bytes after END are padding and are ignored whatever they contain.
//   * RFC 3396: several instances of one code are concatenated in the order read, across fields, so
//     every option appears once in Message::options, in order of first appearance.
//   * Protocol-control options with an impossible length (53, 52, 50, 51, 54, 57, 61; see
//     OptionDefinition::strict) make the packet invalid. Other options are kept as raw bytes; their
//     typed accessors answer nullopt when the length is wrong for the type.
// Each refusal is an Error whose message says what and where, and whose code is a DropReason (see
// dropReason()) that the server counts.
//
// Encoding (encodeMessage) builds a reply from header fields and an ordered option list, within the
// client's size limit; see EncodeLimits for the rules.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/mac.hpp"
#include "common/result.hpp"
#include "dhcp/wire/options.hpp"

namespace pxedust::dhcp::wire {

inline constexpr std::size_t kHeaderSize = 236;     // op .. file (RFC 2131 §2, figure 1)
inline constexpr std::size_t kMinMessageSize = 240;  // header + magic cookie
inline constexpr std::size_t kChaddrSize = 16;
inline constexpr std::size_t kSnameSize = 64;
inline constexpr std::size_t kFileSize = 128;
inline constexpr std::uint32_t kMagicCookie = 0x63825363;  // RFC 2131 §3
inline constexpr std::uint16_t kFlagBroadcast = 0x8000;    // RFC 2131 §2, figure 2
// Replies are padded to the size of an RFC 951 BOOTP message (the 64-byte vend field); some clients,
// the Linux kernel's ipconfig among them, ignore anything shorter (RFC 1542 §2.1).
inline constexpr std::size_t kBootpMinSize = 300;
// RFC 2131 §2: every client accepts a 576-byte IP datagram, i.e. a 548-byte DHCP message after the
// 20-byte IP and 8-byte UDP headers. Option 57 counts the whole datagram (RFC 2132 §9.10).
inline constexpr std::size_t kMinDatagramSize = 576;
inline constexpr std::size_t kIpUdpOverhead = 28;
inline constexpr std::size_t kDefaultMaxMessageSize = kMinDatagramSize - kIpUdpOverhead;  // 548
inline constexpr std::size_t kMaxMessageSize = 65535 - kIpUdpOverhead;

enum class Op : std::uint8_t { BootRequest = 1, BootReply = 2 };

// Option 53 values (RFC 2132 §9.6, RFC 3203, RFC 4388). A received value outside this list is kept
// as is (the enum can hold any byte); the server ignores what it does not handle.
enum class MessageType : std::uint8_t {
  Discover = 1,
  Offer = 2,
  Request = 3,
  Decline = 4,
  Ack = 5,
  Nak = 6,
  Release = 7,
  Inform = 8,
  ForceRenew = 9,
  LeaseQuery = 10,
  LeaseUnassigned = 11,
  LeaseUnknown = 12,
  LeaseActive = 13,
};
std::string_view describe(MessageType type);  // "DHCPDISCOVER"; "DHCP<unknown>" for other values

// Option 52: which header fields carry options (RFC 2132 §9.3).
enum class Overload : std::uint8_t { None = 0, File = 1, Sname = 2, Both = 3 };

// Why a datagram was refused; the server keeps one counter per reason.
enum class DropReason : std::uint8_t {
  None = 0,
  TooShort,           // fewer than 240 bytes
  BadOp,              // op is neither BOOTREQUEST nor BOOTREPLY
  BadHardwareLength,  // hlen > 16
  BadCookie,          // no RFC 1048 magic cookie
  TruncatedOption,    // an option's length byte or data runs past the end of its field
  BadOverload,        // option 52 malformed, or found inside an overloaded field
  BadOptionLength,    // a protocol-control option with an impossible length (e.g. 53 with length 0)
};
inline constexpr std::size_t kDropReasonCount = 8;
std::string_view describe(DropReason reason);  // stable token for counters: "too-short", "bad-cookie", ...
// The reason carried by an Error from parseMessage() (Error::code); None for any other Error.
DropReason dropReason(const Error& error);

struct Option {
  std::uint8_t code = 0;
  std::vector<std::uint8_t> data;
  friend bool operator==(const Option&, const Option&) = default;
};

struct ClientNdi {
  std::uint8_t type = 0;  // 1 = UNDI
  std::uint8_t major = 0;
  std::uint8_t minor = 0;
};

struct Message {
  Op op = Op::BootRequest;
  std::uint8_t htype = 1;  // 1 = Ethernet
  std::uint8_t hlen = 6;
  std::uint8_t hops = 0;
  std::uint32_t xid = 0;
  std::uint16_t secs = 0;
  std::uint16_t flags = 0;
  Ipv4 ciaddr = 0;
  Ipv4 yiaddr = 0;
  Ipv4 siaddr = 0;  // "next server": the TFTP server of a PXE reply
  Ipv4 giaddr = 0;
  std::array<std::uint8_t, kChaddrSize> chaddr{};
  // Raw header fields. After parsing, a field that carried overloaded options is all zeros (its
  // contents are in `options`); `overload` says which ones did.
  std::array<std::uint8_t, kSnameSize> sname{};
  std::array<std::uint8_t, kFileSize> file{};
  Overload overload = Overload::None;  // set by parseMessage(); encodeMessage() decides its own
  // Every option once, RFC 3396 instances concatenated, in order of first appearance. Never holds
  // pad (0), end (255) or overload (52): those are framing, not content.
  std::vector<Option> options;

  // --- header helpers
  [[nodiscard]] bool broadcast() const { return (flags & kFlagBroadcast) != 0; }
  void setBroadcast(bool on);
  // chaddr's first hlen bytes (hlen <= 16 after parsing).
  [[nodiscard]] std::span<const std::uint8_t> hardwareAddress() const;
  // The client's MAC: only for htype 1 (Ethernet) with hlen 6.
  [[nodiscard]] std::optional<MacAddress> mac() const;
  void setMac(const MacAddress& mac);  // htype 1, hlen 6, chaddr
  // sname and file as text: up to the first NUL; empty when the field was overloaded.
  [[nodiscard]] std::string_view serverName() const;
  [[nodiscard]] std::string_view bootFile() const;
  // False (and the field unchanged) when the text does not fit with its NUL (63 / 127 bytes).
  bool setServerName(std::string_view name);
  bool setBootFile(std::string_view name);

  // --- raw options
  [[nodiscard]] const Option* find(std::uint8_t code) const;
  [[nodiscard]] bool has(std::uint8_t code) const { return find(code) != nullptr; }
  [[nodiscard]] std::optional<std::span<const std::uint8_t>> option(std::uint8_t code) const;
  // Replaces the value of `code` in place, or appends it; the order of options is the order the
  // encoder uses after its own rules (see EncodeLimits).
  void set(std::uint8_t code, std::vector<std::uint8_t> data);
  void set(std::uint8_t code, std::span<const std::uint8_t> data);
  void setU8(std::uint8_t code, std::uint8_t v);
  void setU16(std::uint8_t code, std::uint16_t v);
  void setU32(std::uint8_t code, std::uint32_t v);
  void setIp(std::uint8_t code, Ipv4 v);
  void setIps(std::uint8_t code, std::span<const Ipv4> v);
  void setString(std::uint8_t code, std::string_view v);
  void remove(std::uint8_t code);

  // --- typed accessors: nullopt when absent or when the length does not fit the type
  [[nodiscard]] std::optional<MessageType> messageType() const;  // 53
  void setMessageType(MessageType type);
  [[nodiscard]] std::optional<Ipv4> requestedIp() const;          // 50
  [[nodiscard]] std::optional<Ipv4> serverId() const;             // 54
  [[nodiscard]] std::optional<std::uint32_t> leaseTime() const;  // 51, seconds
  // 55 as a list of codes; empty when absent.
  [[nodiscard]] std::span<const std::uint8_t> parameterRequestList() const;
  [[nodiscard]] bool requested(std::uint8_t code) const;        // code is in 55
  [[nodiscard]] std::optional<std::uint16_t> maxMessageSize() const;  // 57, raw (may be < 576)
  // String options: trailing NULs (which some clients count) are not part of the text.
  [[nodiscard]] std::optional<std::string_view> vendorClass() const;  // 60
  [[nodiscard]] std::optional<std::string_view> hostName() const;     // 12
  [[nodiscard]] std::optional<std::span<const std::uint8_t>> clientId() const;  // 61, type byte included
  [[nodiscard]] std::optional<UserClass> userClass() const;  // 77, RFC 3004 or iPXE's plain string
  [[nodiscard]] bool ipxeUserClass() const;                  // 77 carries "iPXE"
  // 93: the architectures the client lists (the first is the one it runs); empty when absent.
  [[nodiscard]] std::vector<std::uint16_t> clientArchitectures() const;
  [[nodiscard]] std::optional<std::uint16_t> clientArch() const;  // the first of 93
  [[nodiscard]] std::optional<ClientNdi> clientNdi() const;       // 94
  // 97 with type 0: the 16-byte machine identifier as sent (SMBIOS byte order, not rearranged).
  [[nodiscard]] std::optional<std::array<std::uint8_t, 16>> clientUuid() const;
  [[nodiscard]] std::optional<std::span<const std::uint8_t>> vendorOptions() const;   // 43, raw
  [[nodiscard]] std::optional<std::span<const std::uint8_t>> relayAgentInfo() const;  // 82, raw
  [[nodiscard]] std::optional<std::span<const std::uint8_t>> relayAgentSubOption(std::uint8_t code) const;
  [[nodiscard]] std::optional<std::span<const std::uint8_t>> ipxeOptions() const;  // 175, raw
  [[nodiscard]] bool hasIpxeEncapsulated() const { return has(opt::kIpxeEncap); }
  [[nodiscard]] std::optional<std::span<const std::uint8_t>> ipxeSubOption(std::uint8_t code) const;
  // iPXE, by either sign: user class "iPXE" (changeable by the user) or option 175 (always sent).
  [[nodiscard]] bool isIpxe() const { return ipxeUserClass() || hasIpxeEncapsulated(); }
  // Vendor class starts with "PXEClient" (PXE ROMs and iPXE) or "HTTPClient" (UEFI HTTP boot).
  [[nodiscard]] bool isPxeClient() const;
  [[nodiscard]] bool isHttpClient() const;
};

// Parses one datagram. On error, Error::message says what and where and Error::code is the
// DropReason (use dropReason()).
Result<Message> parseMessage(std::span<const std::uint8_t> datagram);

// Options the encoder never drops to make a reply fit (see EncodeLimits::essential): the lease
// itself, the echoed identifiers, and 60, 43, 66 and 67 because a PXE ROM ignores an offer
// without them.
inline constexpr std::array<std::uint8_t, 13> kEssentialOptions = {
    opt::kMessageType,    opt::kServerId,       opt::kLeaseTime,     opt::kRenewalTime, opt::kRebindingTime,
    opt::kSubnetMask,     opt::kRouters,        opt::kClientId,      opt::kRelayAgentInfo, opt::kVendorClass,
    opt::kVendorSpecific, opt::kTftpServerName, opt::kBootFileName,
};

// How encodeMessage() lays a message out:
//   * Order: 53 first (then 52 when overloading, then 54), then the options the client listed in 55
//     in the client's order (some PXE ROMs read only the first instance they expect, in order), then
//     the rest in Message::options order, and 82 last (RFC 3046 §2.2), then END.
//   * Values longer than 255 bytes become consecutive instances of at most 255 (RFC 3396 §5); their
//     instances may be cut shorter to fill a field and continue in the next one. Values of up to
//     255 bytes are never split (a client without RFC 3396 support reads them correctly).
//   * Size: at most maxSize bytes. When the options do not fit, `file` and then `sname` carry
//     options too (option 52), if allowOverload and the field is unused (first byte NUL). If they
//     still do not fit, options are dropped: first those neither requested nor essential (last
//     first), then requested ones (last in 55 first). Essential options are never dropped; if they
//     alone do not fit, encoding fails.
//   * The result is padded with zeros to minSize (300, see kBootpMinSize).
struct EncodeLimits {
  // DHCP message bytes (the UDP payload). Values are clamped to [548, 65507]. replyLimits() derives
  // it from the request's option 57 and the interface MTU.
  std::size_t maxSize = kDefaultMaxMessageSize;
  std::span<const std::uint8_t> parameterRequestList;  // the client's 55; empty for none
  std::span<const std::uint8_t> essential = kEssentialOptions;
  bool allowOverload = true;
  std::size_t minSize = kBootpMinSize;
};

// The limits for a reply to `request`: maxSize from option 57 (at least 576, at most the MTU) less
// the IP and UDP headers, and the request's 55. The span points into `request`, which must outlive
// the limits.
EncodeLimits replyLimits(const Message& request, std::size_t interfaceMtu = 1500);

struct Encoded {
  std::vector<std::uint8_t> bytes;
  std::vector<std::uint8_t> dropped;  // codes left out to fit, in the order they were dropped
  Overload overload = Overload::None;
};

// Fails when hlen > 16, an option list holds code 0, 52 or 255 or one code twice, or the essential
// options do not fit.
Result<Encoded> encodeMessage(const Message& message, const EncodeLimits& limits = {});

// A reply skeleton for `request` (RFC 2131 §4.3.1 table 3): op BOOTREPLY; htype, hlen, xid, flags,
// giaddr and chaddr copied; option 53 = type; the client identifier echoed (RFC 6842) and the relay
// agent information echoed verbatim (RFC 3046 §2.2). The caller fills in the addresses and the rest.
Message makeReply(const Message& request, MessageType type);

// One line for a debug log: "DHCPDISCOVER xid=0x1234abcd chaddr=52:54:00:12:34:56 ..." followed by
// the option codes in order.
std::string summarize(const Message& message);
// Every option as name=value, separated by "; " (for trace logs).
std::string describeOptions(const Message& message);

}  // namespace pxedust::dhcp::wire
