// DHCP policy: who a client is, which address and which boot program it gets.
//
// The policy sees one exchange at a time (the request as the codec decoded it, plus where it
// arrived) and returns the answer: a reply to send and where to send it, or a drop with its reason.
// It owns no socket and reads no clock; the service (service.hpp) does the I/O, and tests drive
// the policy directly with crafted requests.
//
// Answers, RFC 2131 §4.3:
//   DISCOVER        OFFER: the host's reserved address, else one from the subnet's pool (reserved
//                   at offer time in the lease database so two clients in flight never get the same)
//   REQUEST         selecting (server id present): ACK/NAK if it names us, else silence;
//                   init-reboot (requested address, no ciaddr): ACK if it is still right, else NAK;
//                   renew/rebind (ciaddr): ACK, or NAK if the address is not the client's
//   RELEASE         the lease ends; DECLINE: the address is quarantined; no reply to either
//   INFORM          ACK with the configuration, no address, no lease time
// Boot policy: a PXE client (option 60 "PXEClient...") gets the boot program for its architecture
// (option 93), a UEFI HTTP client ("HTTPClient...", arch 16/19) a URL and "HTTPClient" back; an
// iPXE client (user class "iPXE" or option 175 present) gets the iPXE script, or just the
// root-path to boot from, never the iPXE binary again, and option 175.176 (no-pxedhcp) so it does
// not wait for proxy offers. In proxy mode only PXE clients are answered, only with boot
// information (no address), on port 67 and on port 4011.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/mac.hpp"
#include "config/config.hpp"
#include "dhcp/config.hpp"
#include "dhcp/interfaces.hpp"
#include "dhcp/leases.hpp"
#include "inventory/inventory.hpp"

namespace pxedust::dhcp {

enum class MessageType : std::uint8_t {
  Discover = 1, Offer = 2, Request = 3, Decline = 4, Ack = 5, Nak = 6, Release = 7, Inform = 8
};
std::string_view messageTypeName(MessageType t);

// Why a request got no answer. Each has a counter and a debug log line.
enum class Drop : std::uint8_t {
  Malformed,          // the codec refused it
  NotRequest,         // op is not BOOTREQUEST, or a server-to-client message type
  NoMessageType,      // plain BOOTP: not served
  WrongInterface,     // arrived on an interface DHCP is not configured for
  NoSubnet,           // no [[dhcp.subnet]] for the interface or relay
  UnknownClient,      // no [[host]] and unknown_clients = "ignore"
  PoolExhausted,      // no free address to offer
  NotForUs,           // a REQUEST selecting another server's offer
  NotPxe,             // proxy mode: not a PXE client
  ProxyIgnored,       // proxy mode: a message the proxy does not answer (the address server does)
  NoBootInfo,         // proxy mode: nothing to boot for this client
  NoLease,            // RELEASE/DECLINE of an address the client does not hold
  LeaseStoreFailed,   // the lease journal could not be written: no ACK without a durable lease
  Count
};
std::string_view dropName(Drop d);

// One request, decoded.
struct Request {
  MessageType type = MessageType::Discover;
  std::uint8_t htype = 1;
  std::uint8_t hops = 0;
  std::uint32_t xid = 0;
  std::uint16_t secs = 0;
  bool broadcastFlag = false;
  std::uint32_t ciaddr = 0, giaddr = 0;  // host order
  MacAddress mac;                       // chaddr (htype 1, hlen 6)
  std::array<std::uint8_t, 16> chaddr{};
  std::vector<std::uint8_t> clientId;   // option 61
  std::optional<std::uint32_t> requestedIp;  // option 50
  std::optional<std::uint32_t> serverId;     // option 54
  std::string hostname;                      // option 12
  std::string vendorClass;                   // option 60
  bool userClassIpxe = false;                // option 77 says "iPXE"
  bool hasIpxeOptions = false;               // option 175 present
  std::optional<std::uint16_t> arch;         // option 93, first entry
  std::vector<std::uint8_t> clientNdi;       // option 94, echoed to PXE clients
  std::vector<std::uint8_t> uuid;            // option 97, recorded and echoed to PXE clients
  std::vector<std::uint8_t> parameterList;   // option 55
  std::uint16_t maxMessageSize = 576;        // option 57 (at least 576)
  std::vector<std::uint8_t> relayAgentInfo;  // option 82, echoed verbatim
};

// Where the request came from.
struct Arrival {
  const InterfaceInfo* interface = nullptr;
  std::uint16_t localPort = 67;  // 67, or 4011 (PXE boot server discovery)
  std::uint32_t sourceAddress = 0;
  std::uint16_t sourcePort = 68;
};

struct ReplyOption {
  std::uint8_t code = 0;
  std::vector<std::uint8_t> value;
};

enum class Destination : std::uint8_t {
  Broadcast,      // 255.255.255.255:68 out of the arrival interface
  UnicastNew,     // yiaddr:68, the client's MAC put in the neighbour table first (it has no ARP yet)
  Unicast,        // `to`:68 (renewing client's ciaddr)
  Relay,          // giaddr:67
  Source          // back to the request's source address and port (port 4011 exchanges)
};

struct Reply {
  MessageType type = MessageType::Offer;
  std::uint32_t yiaddr = 0, siaddr = 0;
  std::string file;   // the boot file name (also option 67 when asked for)
  std::string sname;
  std::vector<ReplyOption> options;  // option 53 and END are added by the encoder
  Destination destination = Destination::Broadcast;
  std::uint32_t to = 0;
  std::uint16_t toPort = 68;
  bool needsSync = false;  // an ACK whose lease must be durable before it is sent
};

struct Decision {
  std::optional<Reply> reply;
  std::optional<Drop> drop;
  std::string detail;  // for the log line: what was decided and why
};

// Exported by dhcp/metrics.cpp as pxedust_dhcp_{received,sent}_messages_total{type} and
// pxedust_dhcp_drops_total{reason}.
struct PolicyStats {
  std::array<std::uint64_t, 9> received{};  // by message type: the MessageType value, 1-8 (0 unused)
  std::array<std::uint64_t, 9> sent{};
  std::array<std::uint64_t, static_cast<std::size_t>(Drop::Count)> dropped{};
};

// The boot program for a client architecture (option 93), from the settings.
std::optional<std::string> bootFileFor(const BootFiles& files, std::optional<std::uint16_t> arch);

class Policy {
 public:
  Policy(std::shared_ptr<const Config> config, std::shared_ptr<const inventory::Inventory> hosts,
         LeaseDb* leases);

  // Decides the answer to one request. `now` is Unix seconds.
  Decision handle(const Request& request, const Arrival& arrival, UnixTime now);

  void update(std::shared_ptr<const Config> config, std::shared_ptr<const inventory::Inventory> hosts);
  [[nodiscard]] const Config& config() const { return *config_; }

  // The lease database's pools and reservations for a configuration.
  static std::vector<PoolConfig> poolsFor(const Config& config);
  static std::vector<std::uint32_t> reservationsFor(const config::Config& config);

 private:
  struct Exchange;  // one request being answered: request, arrival, host, subnet, settings, reply

  Decision serve(Exchange& x, UnixTime now);
  Decision proxy(Exchange& x);
  Decision discover(Exchange& x, UnixTime now);
  Decision request(Exchange& x, UnixTime now);
  Decision release(Exchange& x, UnixTime now, bool decline);
  Decision inform(Exchange& x);
  Decision nak(Exchange& x, std::string why);
  void addConfiguration(Exchange& x, Reply& reply, bool withLease, std::uint32_t leaseTime) const;
  void addBoot(Exchange& x, Reply& reply) const;
  // http://<server>[:port]/<path> on pxedust's HTTP (Config::httpBoot).
  [[nodiscard]] std::string httpUrl(const Exchange& x, std::string_view path) const;
  [[nodiscard]] std::optional<std::string> rootPathFor(const Exchange& x) const;
  static Decision dropped(Drop why, std::string detail);
  void resolveSettings();

  std::shared_ptr<const Config> config_;
  std::shared_ptr<const inventory::Inventory> hosts_;
  LeaseDb* leases_;  // null in proxy mode
  // [[dhcp.subnet]] settings with [dhcp]'s inherited, one per config_->subnets entry, and [dhcp]'s
  // alone: what a client without a [[host]] gets, merged once per configuration, not per packet.
  std::vector<Settings> subnetSettings_;
  Settings globalSettings_;
  // A [[host]]'s settings merged down (host < subnet < [dhcp]), made at its first packet and kept
  // until the next configuration: keyed by the host's index in hosts_ and the subnet's index (or
  // subnets.size() for none).
  std::unordered_map<std::uint64_t, Settings> hostSettings_;
  [[nodiscard]] const Settings& hostSettings(const inventory::Host& host, std::size_t subnetIndex);
};

}  // namespace pxedust::dhcp
