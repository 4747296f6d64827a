// Typed boot events: what each service tells the tracker (tracker.hpp) about a client's boot.
//
// Plain data, no behaviour: a service fills one in at the moment something happens (a DHCP ACK
// sent, a TFTP transfer ended, an iSCSI login accepted) and hands it to Tracker::record(). Programs
// read the tracker's state, never pxedust's log lines; the logs stay for people.
//
// The types are free of asio and sockets so that any service, test or tool can build them: MAC
// addresses are common/mac.hpp's MacAddress, IPv4 addresses the small Ipv4 value below. Strings
// that come from peers (file names, vendor classes, initiator names) are stored as given; the
// tracker bounds how much of them it keeps (TrackerOptions::maxText).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/mac.hpp"

namespace pxedust::boot {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

// An IPv4 address in host byte order (10.0.0.1 is 0x0a000001), as the DHCP policy keeps them.
class Ipv4 {
 public:
  constexpr Ipv4() = default;
  constexpr explicit Ipv4(std::uint32_t value) : value_(value) {}
  static std::optional<Ipv4> parse(std::string_view dotted);

  [[nodiscard]] constexpr std::uint32_t value() const { return value_; }
  [[nodiscard]] std::string toString() const;
  friend constexpr bool operator==(Ipv4, Ipv4) = default;

 private:
  std::uint32_t value_ = 0;
};

// ---- DHCP (RFC 2131): one event per message the server received or sent -----------------------

enum class DhcpKind : std::uint8_t {
  Discover,  // received: a client looking for an address (and, for PXE clients, a boot program)
  Offer,     // sent: the address offered
  Ack,       // sent: the address is the client's (after REQUEST); hostName = what it was told
  Nak,       // sent: the address the client asked for is not its own; it starts over
  Decline,   // received: the client found the address in use (ARP) and will not use it
  Release,   // received: the client gave its address back (an OS shutting down cleanly)
};

struct DhcpEvent {
  DhcpKind kind = DhcpKind::Discover;
  MacAddress mac;                     // chaddr
  std::optional<Ipv4> ip;             // Offer/Ack: yiaddr; Decline/Release: the address given up
  std::optional<std::uint16_t> arch;  // Discover: client architecture, option 93 (RFC 4578 §2.1)
  std::string vendorClass;            // Discover: option 60, e.g. "PXEClient:Arch:00007:UNDI:003016"
  std::optional<Ipv4> relay;          // Discover: giaddr when a relay forwarded it
  std::string hostName;               // Ack: the host name given (option 12), if any
};

// proxyDHCP (PXE spec §2.2.3): boot information only, the address comes from another server. The
// client's address is known when it asked on port 4011 (it has one by then), so the tracker can
// bind it to the MAC as it does for an ACK.
struct ProxyDhcpEvent {
  MacAddress mac;
  std::string bootFile;
  std::optional<Ipv4> ip;  // the client's address (ciaddr), when it had one
};

// ---- Files (TFTP, HTTP): one event when a transfer ends ------------------------------------------

enum class FileProtocol : std::uint8_t { Tftp, Http };

enum class FileResult : std::uint8_t {
  Completed,  // the whole file was sent (and, for TFTP, acknowledged)
  NotFound,   // no such file: boot loaders probe names (pxelinux.cfg/01-<mac>, ...), not a failure
  Aborted,    // the client ended it: UEFI PXE asks for a file's size (tsize) and stops, then fetches it
  Failed,     // the server gave up: timeout, read error, refused by a rule; reason says which
};

struct FileEvent {
  FileProtocol protocol = FileProtocol::Tftp;
  FileResult result = FileResult::Completed;
  Ipv4 client;
  std::string requested;  // the name the client asked for
  std::string served;     // the file actually served, after per-host rules (empty: same as requested)
  std::uint64_t bytes = 0;
  std::string reason;  // NotFound/Aborted/Failed: short, e.g. "timeout", "client error: tsize query"
  // TFTP, once a transfer started: the block size (RFC 2348) and window size (RFC 7440) it used,
  // 512 and 1 when the client asked for neither. Empty for HTTP and for requests refused at once.
  std::optional<std::uint32_t> blksize;
  std::optional<std::uint32_t> windowsize;
};

// ---- Root disk (iSCSI, NBD, NFS): logins of normal sessions, not discovery ----------------------

enum class DiskProtocol : std::uint8_t { Iscsi, Nbd, Nfs };

enum class DiskKind : std::uint8_t {
  Login,   // a session to the host's disk is up (iSCSI login, NBD handshake done, NFS mount)
  Logout,  // it ended (a logout, or the connection closed)
  Failed,  // a login was refused or broke off (ACL, CHAP, no such target); reason says which
};

struct DiskEvent {
  DiskProtocol protocol = DiskProtocol::Iscsi;
  DiskKind kind = DiskKind::Login;
  Ipv4 client;
  std::string hostName;   // the host whose disk it is (the target's host); empty if none matched
  std::string initiator;  // iSCSI initiator name; empty for NBD and NFS
  std::string reason;     // Failed (and Logout, when known)
};

// ---- The host itself: a booted system saying so ---------------------------------------------------

enum class HostKind : std::uint8_t {
  Up,      // the system is up: it asked POST /boot/up from its own address (its init, a systemd unit)
  Failed,  // its boot stopped: POST /boot/failed from its own address (the pxedust initramfs), reason
};

struct HostEvent {
  HostKind kind = HostKind::Up;
  Ipv4 client;         // the address the report came from: the host's own
  std::string reason;  // Failed: what the host said (text from the network: bounded, printable)
};

// One event. `time` is stamped by Tracker::record() from its clock; what a caller puts there is
// replaced, so every event on a host's timeline comes from one clock. So is `seq`.
struct Event {
  TimePoint time;
  std::variant<DhcpEvent, ProxyDhcpEvent, FileEvent, DiskEvent, HostEvent> what;
  std::uint64_t seq = 0;  // stamped by Tracker::record() too: which event this is, unique in the tracker
};

// Names as the JSON snapshot shows them: "dhcp.discover", "file.completed", "disk.login", "host.up", ...
std::string_view kindName(const Event& event);
std::string_view protocolName(FileProtocol p);
std::string_view protocolName(DiskProtocol p);

// A network-boot client's DISCOVER: firmware PXE, iPXE or UEFI HTTP boot. They send option 93
// (RFC 4578) and a vendor class "PXEClient..." or "HTTPClient..."; an operating system's DHCP
// client (busybox udhcpc, dhclient, systemd-networkd) sends neither.
bool fromNetworkBootClient(const DhcpEvent& discover);

}  // namespace pxedust::boot
