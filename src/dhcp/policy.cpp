#include "dhcp/policy.hpp"

#include <fmt/format.h>

#include "common/log.hpp"

#include <algorithm>
#include <charconv>

namespace pxedust::dhcp {
namespace {

constexpr std::uint8_t kOptSubnetMask = 1, kOptRouters = 3, kOptDns = 6, kOptHostName = 12, kOptDomain = 15,
                       kOptRootPath = 17, kOptLeaseTime = 51, kOptServerId = 54, kOptMessage = 56,
                       kOptRenewal = 58, kOptRebinding = 59, kOptVendorClass = 60, kOptBootFile = 67,
                       kOptRelayInfo = 82, kOptVendorSpecific = 43, kOptClientNdi = 94, kOptUuid = 97,
                       kOptIpxe = 175, kOptIscsiInitiator = 203;
constexpr std::uint8_t kIpxeNoPxeDhcp = 176;

std::vector<std::uint8_t> be32(std::uint32_t v) {
  return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 8),
          static_cast<std::uint8_t>(v)};
}

std::vector<std::uint8_t> text(std::string_view s) { return {s.begin(), s.end()}; }

std::vector<std::uint8_t> addresses(const std::vector<asio::ip::address_v4>& list) {
  std::vector<std::uint8_t> out;
  for (const auto& a : list) {
    auto b = be32(a.to_uint());
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

// "PXEClient:Arch:00007:UNDI:003016" -> 7 (when option 93 is missing, as with some old ROMs).
std::optional<std::uint16_t> archFromVendorClass(std::string_view vc) {
  constexpr std::string_view kTag = "Client:Arch:";
  auto at = vc.find(kTag);
  if (at == std::string_view::npos) return std::nullopt;
  auto digits = vc.substr(at + kTag.size(), 5);
  unsigned v = 0;
  auto [p, err] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (err != std::errc() || p != digits.data() + digits.size() || v > 0xFFFF) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

bool isUrl(std::string_view s) { return s.find("://") != std::string_view::npos; }

}  // namespace

std::string_view messageTypeName(MessageType t) {
  switch (t) {
    case MessageType::Discover: return "DISCOVER";
    case MessageType::Offer: return "OFFER";
    case MessageType::Request: return "REQUEST";
    case MessageType::Decline: return "DECLINE";
    case MessageType::Ack: return "ACK";
    case MessageType::Nak: return "NAK";
    case MessageType::Release: return "RELEASE";
    case MessageType::Inform: return "INFORM";
  }
  return "?";
}

std::string_view dropName(Drop d) {
  switch (d) {
    case Drop::Malformed: return "malformed";
    case Drop::NotRequest: return "not_a_request";
    case Drop::NoMessageType: return "bootp_not_served";
    case Drop::WrongInterface: return "wrong_interface";
    case Drop::NoSubnet: return "no_subnet";
    case Drop::UnknownClient: return "unknown_client";
    case Drop::PoolExhausted: return "pool_exhausted";
    case Drop::NotForUs: return "other_server_selected";
    case Drop::NotPxe: return "proxy_not_pxe";
    case Drop::ProxyIgnored: return "proxy_ignored";
    case Drop::NoBootInfo: return "proxy_no_boot_info";
    case Drop::NoLease: return "no_lease";
    case Drop::LeaseStoreFailed: return "lease_store_failed";
    case Drop::Count: break;
  }
  return "?";
}

std::optional<std::string> bootFileFor(const BootFiles& f, std::optional<std::uint16_t> arch) {
  const std::optional<std::string>* pick = nullptr;
  if (arch) {
    switch (*arch) {
      case 0: pick = &f.bios; break;           // x86 BIOS
      case 6: pick = &f.uefi32; break;         // x86 UEFI
      case 7: case 9: pick = &f.uefi; break;   // x64 UEFI (9 is EBC, used by some x64 firmware)
      case 10: pick = &f.arm32; break;         // ARM 32-bit UEFI
      case 11: pick = &f.arm64; break;         // ARM 64-bit UEFI
      case 16: pick = &f.http; break;          // x64 UEFI HTTP boot
      case 19: pick = &f.httpArm64; break;     // ARM 64-bit UEFI HTTP boot
      case 27: case 28: pick = &f.riscv64; break;  // RISC-V 64-bit UEFI (and its HTTP boot)
      default: break;
    }
  }
  if (pick != nullptr && *pick) return **pick;
  return f.any;
}

struct Policy::Exchange {
  const Request& rq;
  const Arrival& at;
  const inventory::Host* host = nullptr;
  const Subnet* subnet = nullptr;
  // The answers for this client: the [[dhcp.subnet]] < [dhcp] merge for a client without a [[host]],
  // else the host's settings merged down; both made once per configuration, not per packet.
  const Settings* settings = nullptr;
  std::optional<std::uint16_t> arch{};
  bool pxe = false, http = false, ipxe = false;
  std::uint32_t serverId = 0;
  ClientInfo client{};
  // Decision::detail and `who` exist for the debug log line only: formatting them for every packet
  // at info level cost more than choosing the address did (bench/dhcp), so they are made only when
  // debug logging is on.
  bool explain = false;
  std::string who{};  // "52:54:00:..:..:.. (alpha)" for log lines, when explain
};

Policy::Policy(std::shared_ptr<const Config> config, std::shared_ptr<const inventory::Inventory> hosts,
               LeaseDb* leases)
    : config_(std::move(config)), hosts_(std::move(hosts)), leases_(leases) {
  resolveSettings();
}

void Policy::update(std::shared_ptr<const Config> config, std::shared_ptr<const inventory::Inventory> hosts) {
  config_ = std::move(config);
  hosts_ = std::move(hosts);
  resolveSettings();
}

void Policy::resolveSettings() {
  hostSettings_.clear();
  globalSettings_ = Settings{};
  globalSettings_.inherit(config_->settings);
  subnetSettings_.clear();
  subnetSettings_.reserve(config_->subnets.size());
  for (const auto& s : config_->subnets) {
    Settings merged;
    merged.inherit(s.settings);
    merged.inherit(config_->settings);
    subnetSettings_.push_back(std::move(merged));
  }
}

const Settings& Policy::hostSettings(const inventory::Host& host, std::size_t subnetIndex) {
  const bool inSubnet = subnetIndex < subnetSettings_.size();
  const auto* own = config::part<Settings>(host.keys, "dhcp");
  if (own == nullptr) return inSubnet ? subnetSettings_[subnetIndex] : globalSettings_;
  const auto hostIndex = static_cast<std::uint64_t>(&host - hosts_->hosts().data());
  auto [it, added] = hostSettings_.try_emplace(hostIndex * (config_->subnets.size() + 1) + subnetIndex);
  if (added) {
    it->second = *own;
    it->second.inherit(inSubnet ? subnetSettings_[subnetIndex] : globalSettings_);
  }
  return it->second;
}

std::vector<PoolConfig> Policy::poolsFor(const Config& config) {
  std::vector<PoolConfig> out;
  for (const auto& s : config.subnets) {
    PoolConfig p;
    p.subnetId = s.network.to_uint();
    p.network = s.network.to_uint();
    p.prefixLength = s.prefix;
    for (const auto& r : s.pools) p.ranges.push_back({r.first.to_uint(), r.last.to_uint()});
    p.leaseTime = static_cast<std::uint32_t>((s.settings.leaseTime ? *s.settings.leaseTime : config.defaultLeaseTime).count());
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<std::uint32_t> Policy::reservationsFor(const config::Config& config) {
  std::vector<std::uint32_t> out;
  for (const auto& h : config.hosts)
    if (h.ip) out.push_back(h.ip->to_uint());
  return out;
}

Decision Policy::dropped(Drop why, std::string detail) {
  Decision d;
  d.drop = why;
  d.detail = std::move(detail);
  return d;
}

Decision Policy::handle(const Request& rq, const Arrival& at, UnixTime now) {
  Exchange x{rq, at};
  x.host = hosts_->byMac(rq.mac);
  x.explain = log::enabled(log::Level::Debug);
  if (x.explain) x.who = x.host != nullptr ? fmt::format("{} ({})", rq.mac.toString(), x.host->name) : rq.mac.toString();
  x.serverId = at.interface->address;
  x.arch = rq.arch ? rq.arch : archFromVendorClass(rq.vendorClass);
  x.pxe = rq.vendorClass.starts_with("PXEClient");
  x.http = rq.vendorClass.starts_with("HTTPClient") || (x.arch && (*x.arch == 16 || *x.arch == 19));
  x.ipxe = rq.userClassIpxe || rq.hasIpxeOptions;
  x.client.key = ClientKey::identify(rq.clientId, rq.mac);
  x.client.mac = rq.mac;
  x.client.hostname = rq.hostname;
  x.client.uuid = rq.uuid;

  // The subnet: the relay's (giaddr), else the receiving interface's.
  std::uint32_t anchor = rq.giaddr != 0 ? rq.giaddr : at.interface->address;
  std::size_t subnetIndex = config_->subnets.size();
  for (std::size_t i = 0; i < config_->subnets.size(); ++i) {
    if (config_->subnets[i].contains(asio::ip::address_v4(anchor))) {
      x.subnet = &config_->subnets[i];
      subnetIndex = i;
    }
  }

  if (x.host != nullptr) {
    x.settings = &hostSettings(*x.host, subnetIndex);
  } else {
    x.settings = x.subnet != nullptr ? &subnetSettings_[subnetIndex] : &globalSettings_;
  }

  if (config_->mode == Mode::Proxy) return proxy(x);
  return serve(x, now);
}

Decision Policy::serve(Exchange& x, UnixTime now) {
  if (x.at.localPort != 67) return dropped(Drop::ProxyIgnored, "port 4011 is served in proxy mode only");
  if (x.subnet == nullptr)
    return dropped(Drop::NoSubnet, fmt::format("no [[dhcp.subnet]] contains {}",
                                               formatLeaseAddress(x.rq.giaddr != 0 ? x.rq.giaddr : x.at.interface->address)));
  switch (x.rq.type) {
    case MessageType::Discover: return discover(x, now);
    case MessageType::Request: return request(x, now);
    case MessageType::Release: return release(x, now, false);
    case MessageType::Decline: return release(x, now, true);
    case MessageType::Inform: return inform(x);
    default: return dropped(Drop::NotRequest, fmt::format("{} is not a client message", messageTypeName(x.rq.type)));
  }
}

namespace {
void route(const Request& rq, Reply& r) {
  if (rq.giaddr != 0) {
    r.destination = Destination::Relay;
    r.to = rq.giaddr;
    r.toPort = 67;
  } else if (r.type == MessageType::Nak) {
    r.destination = Destination::Broadcast;
  } else if (rq.ciaddr != 0) {
    r.destination = Destination::Unicast;
    r.to = rq.ciaddr;
  } else if (rq.broadcastFlag || r.yiaddr == 0) {
    r.destination = Destination::Broadcast;
  } else {
    r.destination = Destination::UnicastNew;
    r.to = r.yiaddr;
  }
}
}  // namespace

Decision Policy::discover(Exchange& x, UnixTime now) {
  Reply r;
  r.type = MessageType::Offer;
  std::string_view how;
  if (x.host != nullptr && x.host->ip && x.subnet->contains(*x.host->ip)) {
    r.yiaddr = x.host->ip->to_uint();
    how = "reserved";
  } else {
    if (x.host == nullptr && !config_->serveUnknown) return dropped(Drop::UnknownClient, "unknown_clients = \"ignore\"");
    auto lease = leases_->offer(x.subnet->network.to_uint(), x.client, x.rq.requestedIp, now);
    if (!lease) {
      if (isLeaseError(lease.error(), LeaseErrc::UnknownSubnet) || isLeaseError(lease.error(), LeaseErrc::NoFreeAddress))
        return dropped(Drop::PoolExhausted, fmt::format("subnet {}: {}", x.subnet->toString(), lease.error().message));
      return dropped(Drop::LeaseStoreFailed, lease.error().message);
    }
    r.yiaddr = lease->address;
    how = "pool";
  }
  auto leaseTime = static_cast<std::uint32_t>(
      (x.settings->leaseTime ? *x.settings->leaseTime : config_->defaultLeaseTime).count());
  addConfiguration(x, r, true, leaseTime);
  addBoot(x, r);
  route(x.rq, r);
  Decision d;
  if (x.explain) d.detail = fmt::format("client={} offer={} from={}", x.who, formatLeaseAddress(r.yiaddr), how);
  d.reply = std::move(r);
  return d;
}

Decision Policy::nak(Exchange& x, std::string why) {
  Reply r;
  r.type = MessageType::Nak;
  r.options.push_back({kOptServerId, be32(x.serverId)});
  r.options.push_back({kOptMessage, text(why)});
  if (!x.rq.relayAgentInfo.empty()) r.options.push_back({kOptRelayInfo, x.rq.relayAgentInfo});
  route(x.rq, r);
  Decision d;
  if (x.explain) d.detail = fmt::format("client={} nak={}", x.who, why);
  d.reply = std::move(r);
  return d;
}

Decision Policy::request(Exchange& x, UnixTime now) {
  const auto& rq = x.rq;
  if (rq.serverId && *rq.serverId != x.serverId)
    return dropped(Drop::NotForUs, fmt::format("client={} chose server {}", x.who, formatLeaseAddress(*rq.serverId)));
  // Selecting and init-reboot name the address in option 50; renewing and rebinding in ciaddr.
  std::uint32_t addr = rq.requestedIp ? *rq.requestedIp : rq.ciaddr;
  if (addr == 0) return dropped(Drop::Malformed, "REQUEST names no address (no option 50, no ciaddr)");
  if (!x.subnet->contains(asio::ip::address_v4(addr)))
    return nak(x, fmt::format("{} is not on subnet {}", formatLeaseAddress(addr), x.subnet->toString()));

  auto leaseTime = static_cast<std::uint32_t>(
      (x.settings->leaseTime ? *x.settings->leaseTime : config_->defaultLeaseTime).count());
  std::string_view how;
  if (x.host != nullptr && x.host->ip && x.subnet->contains(*x.host->ip)) {
    if (addr != x.host->ip->to_uint())
      return nak(x, fmt::format("{} is reserved {}", x.host->name, x.host->ip->to_string()));
    auto lease = leases_->bindStatic(x.subnet->network.to_uint(), x.client, addr, leaseTime, now);
    if (!lease) return dropped(Drop::LeaseStoreFailed, lease.error().message);
    how = "reserved";
  } else {
    if (x.host == nullptr && !config_->serveUnknown) return dropped(Drop::UnknownClient, "unknown_clients = \"ignore\"");
    auto lease = leases_->bind(x.subnet->network.to_uint(), x.client, addr, now, leaseTime);
    if (!lease) {
      if (lease.error().code >= static_cast<int>(LeaseErrc::NoFreeAddress))
        return nak(x, fmt::format("{} is not available: {}", formatLeaseAddress(addr), lease.error().message));
      return dropped(Drop::LeaseStoreFailed, lease.error().message);
    }
    leaseTime = static_cast<std::uint32_t>(std::max<UnixTime>(lease->expiry - now, 0));
    how = "pool";
  }
  Reply r;
  r.type = MessageType::Ack;
  r.yiaddr = addr;
  r.needsSync = true;
  addConfiguration(x, r, true, leaseTime);
  addBoot(x, r);
  route(rq, r);
  Decision d;
  if (x.explain) d.detail = fmt::format("client={} ack={} from={} lease={}s", x.who, formatLeaseAddress(addr), how, leaseTime);
  d.reply = std::move(r);
  return d;
}

Decision Policy::release(Exchange& x, UnixTime now, bool decline) {
  std::uint32_t addr = decline ? x.rq.requestedIp.value_or(0) : x.rq.ciaddr;
  auto r = decline ? leases_->decline(x.client.key, addr, now) : leases_->release(x.client.key, addr, now);
  if (!r) {
    if (isLeaseError(r.error(), LeaseErrc::NoLease))
      return dropped(Drop::NoLease, fmt::format("client={} address={}: {}", x.who, formatLeaseAddress(addr), r.error().message));
    return dropped(Drop::LeaseStoreFailed, r.error().message);
  }
  Decision d;
  if (x.explain) d.detail = fmt::format("client={} {}={}", x.who, decline ? "declined" : "released", formatLeaseAddress(addr));
  return d;
}

Decision Policy::inform(Exchange& x) {
  Reply r;
  r.type = MessageType::Ack;
  addConfiguration(x, r, false, 0);
  addBoot(x, r);
  // RFC 2131 §4.3.5: to ciaddr, never with yiaddr or a lease time.
  route(x.rq, r);
  if (r.destination == Destination::Broadcast && x.at.sourceAddress != 0) {
    r.destination = Destination::Unicast;
    r.to = x.at.sourceAddress;
  }
  Decision d;
  if (x.explain) d.detail = fmt::format("client={} inform", x.who);
  d.reply = std::move(r);
  return d;
}

Decision Policy::proxy(Exchange& x) {
  if (!x.pxe) return dropped(Drop::NotPxe, fmt::format("client={} vendor class '{}'", x.who, x.rq.vendorClass));
  bool discovery = x.at.localPort == 4011;
  if (!discovery && x.rq.type != MessageType::Discover)
    return dropped(Drop::ProxyIgnored, fmt::format("{} on port 67 is for the address server", messageTypeName(x.rq.type)));
  if (discovery && x.rq.type != MessageType::Request && x.rq.type != MessageType::Inform)
    return dropped(Drop::ProxyIgnored, fmt::format("{} on port 4011", messageTypeName(x.rq.type)));
  Reply r;
  r.type = discovery ? MessageType::Ack : MessageType::Offer;
  r.options.push_back({kOptServerId, be32(x.serverId)});
  addBoot(x, r);
  auto rootPath = rootPathFor(x);
  if (r.file.empty() && !rootPath)
    return dropped(Drop::NoBootInfo, fmt::format("client={} arch={}: no boot file configured", x.who, x.arch.value_or(0)));
  if (rootPath) r.options.push_back({kOptRootPath, text(*rootPath)});
  if (!x.rq.relayAgentInfo.empty()) r.options.push_back({kOptRelayInfo, x.rq.relayAgentInfo});
  if (discovery) {
    r.destination = Destination::Source;
    r.to = x.at.sourceAddress;
    r.toPort = x.at.sourcePort;
  } else {
    route(x.rq, r);
  }
  Decision d;
  if (x.explain) d.detail = fmt::format("client={} proxy_{} file={}", x.who, discovery ? "ack" : "offer", r.file);
  d.reply = std::move(r);
  return d;
}

// The configured root-path, else the host's own root disk; an iSCSI disk in RFC 4173 form,
// "iscsi:<server>:<protocol>:<port>:<LUN>:<target>" (empty fields are the defaults: TCP, 3260, LUN 0).
std::optional<std::string> Policy::rootPathFor(const Exchange& x) const {
  if (x.settings->rootPath) return x.settings->rootPath;
  if (x.host == nullptr) return std::nullopt;
  return x.host->rootPath(asio::ip::address_v4(x.serverId));
}

void Policy::addConfiguration(Exchange& x, Reply& r, bool withLease, std::uint32_t leaseTime) const {
  const auto& s = *x.settings;
  r.options.reserve(16);
  r.options.push_back({kOptServerId, be32(x.serverId)});
  if (withLease) {
    r.options.push_back({kOptLeaseTime, be32(leaseTime)});
    r.options.push_back({kOptRenewal, be32(leaseTime / 2)});
    r.options.push_back({kOptRebinding, be32(static_cast<std::uint32_t>(std::uint64_t{leaseTime} * 7 / 8))});
  }
  r.options.push_back({kOptSubnetMask, be32(x.subnet->mask().to_uint())});
  if (s.routers) r.options.push_back({kOptRouters, addresses(*s.routers)});
  if (s.dns) r.options.push_back({kOptDns, addresses(*s.dns)});
  if (s.domain) r.options.push_back({kOptDomain, text(*s.domain)});
  if (x.host != nullptr) r.options.push_back({kOptHostName, text(x.host->name)});
  if (auto rootPath = rootPathFor(x)) r.options.push_back({kOptRootPath, text(*rootPath)});
  if (s.initiatorIqn) r.options.push_back({kOptIscsiInitiator, text(*s.initiatorIqn)});
  for (const auto& o : s.options) {
    std::erase_if(r.options, [&](const ReplyOption& mine) { return mine.code == o.code; });
    r.options.push_back({o.code, o.value});
  }
  if (!x.rq.relayAgentInfo.empty()) r.options.push_back({kOptRelayInfo, x.rq.relayAgentInfo});
}

std::string Policy::httpUrl(const Exchange& x, std::string_view path) const {
  const auto& http = *config_->httpBoot;
  const std::uint32_t address = http.address.is_unspecified() ? x.serverId : http.address.to_uint();
  while (path.starts_with('/')) path.remove_prefix(1);
  return http.port == 80 ? fmt::format("http://{}/{}", formatLeaseAddress(address), path)
                         : fmt::format("http://{}:{}/{}", formatLeaseAddress(address), http.port, path);
}

void Policy::addBoot(Exchange& x, Reply& r) const {
  const auto& s = *x.settings;
  std::optional<std::string> file;
  if (x.ipxe) {
    // Never hand iPXE the iPXE binary again: its script, else nothing (it boots the root-path).
    if (s.ipxeScript) file = s.ipxeScript;
    else if (config_->httpBoot) file = httpUrl(x, "ipxe/" + config::macTemplateText(x.rq.mac));
    else if (!rootPathFor(x)) file = bootFileFor(s.boot, x.arch);
    r.options.push_back({kOptIpxe, {kIpxeNoPxeDhcp, 1, 1}});
  } else if (x.pxe || x.http) {
    file = bootFileFor(s.boot, x.arch);
    if (x.http && config_->httpBoot && !(file && isUrl(*file))) {
      // UEFI HTTP Boot takes a URL: the UEFI boot program (ipxe.efi, snponly.efi) over our HTTP.
      const auto& program = x.arch && *x.arch == 19 ? s.boot.arm64 : s.boot.uefi;
      if (program && !isUrl(*program)) file = httpUrl(x, *program);
      else if (file) file = httpUrl(x, *file);
    }
  } else {
    file = s.boot.any;
  }
  if (file) r.file = *file;
  if (x.http && !x.ipxe) {
    r.options.push_back({kOptVendorClass, text("HTTPClient")});
  } else if (x.pxe) {
    r.options.push_back({kOptVendorClass, text("PXEClient")});
    if (!x.ipxe) {
      // PXE discovery control (PXE 2.1 §2.4.5.1): bit 3, boot the file named here without
      // prompting or discovering boot servers.
      r.options.push_back({kOptVendorSpecific, {6, 1, 8, 255}});
    }
    if (!x.rq.uuid.empty()) r.options.push_back({kOptUuid, x.rq.uuid});  // RFC 4578 §2.3: echoed
    if (!x.rq.clientNdi.empty()) r.options.push_back({kOptClientNdi, x.rq.clientNdi});
  }
  if (!r.file.empty()) {
    if (s.nextServer) r.siaddr = s.nextServer->to_uint();
    else if (!isUrl(r.file)) r.siaddr = x.serverId;
    r.options.push_back({kOptBootFile, text(r.file)});
  } else if (s.nextServer) {
    r.siaddr = s.nextServer->to_uint();
  }
}

}  // namespace pxedust::dhcp
