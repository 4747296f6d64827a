#include "dhcp/convert.hpp"

#include <fmt/format.h>

#include <type_traits>
#include <utility>

namespace pxedust::dhcp {

Decoded decodeRequest(std::span<const std::uint8_t> datagram) {
  Decoded d;
  auto parsed = wire::parseMessage(datagram);
  if (!parsed) {
    d.error = fmt::format("{}: {}", wire::describe(wire::dropReason(parsed.error())), parsed.error().message);
    return d;
  }
  d.message = std::move(*parsed);
  const auto& m = d.message;
  if (m.op != wire::Op::BootRequest) {
    d.drop = Drop::NotRequest;
    d.error = "a BOOTREPLY";
    return d;
  }
  auto type = m.messageType();
  if (!type) {
    d.drop = Drop::NoMessageType;
    d.error = "no message type (plain BOOTP)";
    return d;
  }
  auto t = static_cast<std::uint8_t>(*type);
  if (t != 1 && t != 3 && t != 4 && t != 7 && t != 8) {
    d.drop = Drop::NotRequest;
    d.error = fmt::format("{} is not a client message", wire::describe(*type));
    return d;
  }
  auto mac = m.mac();
  if (!mac) {
    d.drop = Drop::Malformed;
    d.error = fmt::format("hardware type {} length {}: only Ethernet clients are served", m.htype, m.hlen);
    return d;
  }
  Request r;
  r.type = static_cast<MessageType>(t);
  r.htype = m.htype;
  r.hops = m.hops;
  r.xid = m.xid;
  r.secs = m.secs;
  r.broadcastFlag = m.broadcast();
  r.ciaddr = m.ciaddr;
  r.giaddr = m.giaddr;
  r.mac = *mac;
  r.chaddr = m.chaddr;
  if (auto id = m.clientId()) r.clientId.assign(id->begin(), id->end());
  r.requestedIp = m.requestedIp();
  r.serverId = m.serverId();
  if (auto h = m.hostName()) r.hostname = std::string(h->substr(0, 255));
  if (auto v = m.vendorClass()) r.vendorClass = std::string(*v);
  r.userClassIpxe = m.ipxeUserClass();
  r.hasIpxeOptions = m.hasIpxeEncapsulated();
  r.arch = m.clientArch();
  if (auto o = m.option(wire::opt::kClientNdi)) r.clientNdi.assign(o->begin(), o->end());
  if (auto o = m.option(wire::opt::kClientUuid)) r.uuid.assign(o->begin(), o->end());
  auto prl = m.parameterRequestList();
  r.parameterList.assign(prl.begin(), prl.end());
  if (auto s = m.maxMessageSize()) r.maxMessageSize = std::max<std::uint16_t>(*s, 576);
  if (auto a = m.relayAgentInfo()) r.relayAgentInfo.assign(a->begin(), a->end());
  d.request = std::move(r);
  return d;
}

namespace {
template <typename R>
Result<std::vector<std::uint8_t>> encode(const wire::Message& request, R&& reply) {
  auto m = wire::makeReply(request, static_cast<wire::MessageType>(reply.type));
  m.yiaddr = reply.yiaddr;
  m.siaddr = reply.siaddr;
  // A name too long for the 128-byte field (a long URL) travels in option 67 only.
  if (!reply.file.empty()) (void)m.setBootFile(reply.file);
  if (!reply.sname.empty()) (void)m.setServerName(reply.sname);
  for (auto& o : reply.options) {
    if constexpr (std::is_const_v<std::remove_reference_t<R>>) m.set(o.code, o.value);
    else m.set(o.code, std::move(o.value));
  }
  // Option 67 duplicates the file field: send it when asked for, or when the name did not fit.
  if (!reply.file.empty() && !request.requested(wire::opt::kBootFileName) && m.bootFile() == reply.file)
    m.remove(wire::opt::kBootFileName);
  auto encoded = wire::encodeMessage(m, wire::replyLimits(request));
  if (!encoded) return encoded.error();
  return std::move(encoded->bytes);
}
}  // namespace

Result<std::vector<std::uint8_t>> encodeReply(const wire::Message& request, const Reply& reply) {
  return encode(request, reply);
}

Result<std::vector<std::uint8_t>> encodeReply(const wire::Message& request, Reply&& reply) {
  return encode(request, std::move(reply));
}

}  // namespace pxedust::dhcp
