// libFuzzer harness for the DHCPv4 codec: every datagram to port 67 goes through parseMessage(), and
// the server answers a parsed one with encodeMessage(). Checked invariants:
//   * a refusal carries a DropReason and a message;
//   * a parsed message never lists pad, end or overload, nor one code twice, and hlen <= 16;
//   * re-encoding a parsed message with room to spare and parsing it again gives the same header and
//     options (RFC 3396 concatenation and splitting are inverse);
//   * a reply under the client's own limits stays within them, keeps its essential options, is
//     parsed back with exactly the options not reported dropped, 53 first and 82 last; it may fail
//     only when the essential options alone exceed the options field;
//   * config text -> option bytes never yields a value its type forbids.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>
#include <vector>

#include "dhcp/wire/options.hpp"
#include "dhcp/wire/packet.hpp"

using namespace pxedust::dhcp::wire;

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

bool sameOptions(const std::vector<Option>& a, const std::vector<Option>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& o : a) {
    auto it = std::find_if(b.begin(), b.end(), [&](const Option& x) { return x.code == o.code; });
    if (it == b.end() || it->data != o.data) return false;
  }
  return true;
}

std::size_t wireSize(const Option& o) {
  return o.data.size() + 2 * std::max<std::size_t>(1, (o.data.size() + 254) / 255);
}

void exerciseAccessors(const Message& m) {
  (void)summarize(m);
  (void)describeOptions(m);
  (void)m.messageType();
  (void)m.requestedIp();
  (void)m.serverId();
  (void)m.leaseTime();
  (void)m.maxMessageSize();
  (void)m.vendorClass();
  (void)m.hostName();
  (void)m.clientId();
  (void)m.userClass();
  (void)m.clientArchitectures();
  (void)m.clientNdi();
  (void)m.clientUuid();
  (void)m.relayAgentSubOption(agent::kCircuitId);
  (void)m.ipxeSubOption(ipxe::kFeatureHttp);
  (void)m.isIpxe();
  (void)m.isPxeClient();
  (void)m.mac();
  (void)m.serverName();
  (void)m.bootFile();
  for (const auto& o : m.options) {
    auto def = findOption(o.code);
    if (!def) continue;
    // The formatted text goes back through the config parser; no crash, no invalid value.
    auto again = encodeOptionValue(*def, formatOptionValue(*def, o.data));
    if (again) check(validLength(def->type, again->size()));
  }
}

void roundTrip(const Message& m, std::size_t inputSize) {
  EncodeLimits roomy;
  roomy.maxSize = kMaxMessageSize;
  roomy.minSize = 0;
  auto enc = encodeMessage(m, roomy);
  // Re-encoded options never need more room than they had (concatenation only removes headers).
  if (inputSize < 60000) check(enc.ok());
  if (!enc) return;
  check(enc->dropped.empty());
  auto back = parseMessage(enc->bytes);
  check(back.ok());
  check(back->op == m.op && back->htype == m.htype && back->hlen == m.hlen && back->hops == m.hops);
  check(back->xid == m.xid && back->secs == m.secs && back->flags == m.flags);
  check(back->ciaddr == m.ciaddr && back->yiaddr == m.yiaddr && back->siaddr == m.siaddr && back->giaddr == m.giaddr);
  check(back->chaddr == m.chaddr && back->sname == m.sname && back->file == m.file);
  check(sameOptions(back->options, m.options));
}

void reply(const Message& request) {
  auto r = makeReply(request, MessageType::Offer);
  r.yiaddr = 0x0a000032;
  r.siaddr = 0x0a000001;
  r.setIp(opt::kServerId, 0x0a000001);
  r.setU32(opt::kLeaseTime, 3600);
  r.setIp(opt::kSubnetMask, 0xffffff00);
  r.setIp(opt::kRouters, 0x0a000001);
  r.setString(opt::kDomainName, "lab.example.com");
  r.setString(opt::kVendorClass, "PXEClient");
  r.set(opt::kVendorSpecific, std::vector<std::uint8_t>{pxe::kDiscoveryControl, 1, 8, opt::kEnd});
  if (request.xid & 1) check(r.setBootFile("pxelinux.0"));
  // Echo the client's own options back as extra, droppable content of every size.
  for (const auto& o : request.options)
    if (!r.has(o.code)) r.set(o.code, o.data);

  auto limits = replyLimits(request, 1500 - (request.xid >> 24));
  limits.allowOverload = (request.xid & 2) == 0;
  auto enc = encodeMessage(r, limits);
  if (!enc) {
    std::size_t essential = 0;
    for (const auto& o : r.options)
      if (std::find(limits.essential.begin(), limits.essential.end(), o.code) != limits.essential.end())
        essential += wireSize(o);
    check(essential > limits.maxSize - kMinMessageSize - 1);
    return;
  }
  check(enc->bytes.size() <= limits.maxSize);
  check(enc->bytes.size() >= kBootpMinSize);
  for (auto code : enc->dropped)
    check(std::find(limits.essential.begin(), limits.essential.end(), code) == limits.essential.end());
  auto back = parseMessage(enc->bytes);
  check(back.ok());
  check(back->xid == request.xid && back->op == Op::BootReply);
  check(back->overload == enc->overload);
  check(back->options.size() + enc->dropped.size() == r.options.size());
  for (const auto& o : back->options) {
    const auto* mine = r.find(o.code);
    check(mine != nullptr && mine->data == o.data);
  }
  check(back->options.front().code == opt::kMessageType);
  if (back->has(opt::kRelayAgentInfo)) check(back->options.back().code == opt::kRelayAgentInfo);
  if (request.xid & 1) check(back->bootFile() == "pxelinux.0");
}

void configText(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return;
  auto defs = optionDefinitions();
  const auto& def = defs[data[0] % defs.size()];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  auto v = encodeOptionValue(def, text);
  if (v) check(validLength(def.type, v->size()) && v->size() <= kMaxConfiguredValue);
  (void)resolveOption(text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto parsed = parseMessage(std::span<const std::uint8_t>(data, size));
  if (!parsed) {
    check(dropReason(parsed.error()) != DropReason::None && !parsed.error().message.empty());
    configText(data, size);
    return 0;
  }
  const auto& m = *parsed;
  check(m.hlen <= kChaddrSize);
  std::array<bool, 256> seen{};
  for (const auto& o : m.options) {
    check(o.code != opt::kPad && o.code != opt::kEnd && o.code != opt::kOverload);
    check(!seen[o.code]);
    seen[o.code] = true;
  }
  exerciseAccessors(m);
  roundTrip(m, size);
  reply(m);
  return 0;
}
