// libFuzzer harness for the DHCP server's own path around the policy: every datagram to port 67 goes
// through decodeRequest() (wire parse, then the checks that make it a Request), and the answer the
// policy would build goes back through encodeReply(). Checked invariants:
//   * a datagram without a Request carries a reason and a log text; one with a Request is a client
//     message type (1, 3, 4, 7, 8) from an Ethernet client whose MAC is the start of chaddr, with
//     option 57 at least 576 and a host name of at most 255 bytes;
//   * the copying and the moving encodeReply() give the same answer;
//   * an encoded reply fits the client's limits (option 57, MTU 1500), parses back as a BOOTREPLY of
//     the reply's type for the same xid and chaddr, with the addresses, the boot file (in the field,
//     and in option 67 only when asked for; in option 67 alone when it does not fit the field), the
//     echoed client id and relay agent information;
//   * encoding fails only when the options that are never dropped cannot fit.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dhcp/convert.hpp"

using namespace pxedust::dhcp;

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

void checkRequest(const Decoded& d) {
  const auto& r = *d.request;
  const auto& m = d.message;
  check(m.op == wire::Op::BootRequest);
  auto t = static_cast<std::uint8_t>(r.type);
  check(t == 1 || t == 3 || t == 4 || t == 7 || t == 8);
  check(m.messageType() && static_cast<std::uint8_t>(*m.messageType()) == t);
  check(r.htype == 1 && m.hlen == 6);
  check(std::equal(r.mac.bytes().begin(), r.mac.bytes().end(), r.chaddr.begin()));
  check(r.xid == m.xid && r.ciaddr == m.ciaddr && r.giaddr == m.giaddr);
  check(r.maxMessageSize >= 576);
  check(r.hostname.size() <= 255);
  check(r.parameterList.size() == m.parameterRequestList().size());
  if (auto a = m.relayAgentInfo()) check(r.relayAgentInfo.size() == a->size());
}

// Wire size of one option value, split into instances of at most 255 bytes (RFC 3396).
std::size_t wireSize(std::size_t len) { return len + 2 * std::max<std::size_t>(1, (len + 254) / 255); }

// What the policy answers with, in shape: the type for the request, addresses, a boot file (short
// or a long URL that needs option 67), the PXE options and the client's own identifiers echoed.
Reply makeAnswer(const Request& r) {
  Reply reply;
  reply.type = r.type == MessageType::Discover ? MessageType::Offer : MessageType::Ack;
  reply.yiaddr = 0x0a000032;
  reply.siaddr = 0x0a000001;
  auto add = [&](std::uint8_t code, std::vector<std::uint8_t> value) {
    reply.options.push_back(ReplyOption{code, std::move(value)});
  };
  add(wire::opt::kServerId, {10, 0, 0, 1});
  if (r.type != MessageType::Inform) add(wire::opt::kLeaseTime, {0, 0, 0x0e, 0x10});
  add(wire::opt::kSubnetMask, {255, 255, 255, 0});
  add(wire::opt::kRouters, {10, 0, 0, 1});
  if (!r.hostname.empty()) add(wire::opt::kHostName, {r.hostname.begin(), r.hostname.end()});
  if (r.vendorClass.starts_with("PXEClient")) {
    add(wire::opt::kVendorClass, {'P', 'X', 'E', 'C', 'l', 'i', 'e', 'n', 't'});
    add(wire::opt::kVendorSpecific, {6, 1, 8, 255});
    if (!r.clientNdi.empty()) add(wire::opt::kClientNdi, r.clientNdi);
    if (!r.uuid.empty()) add(wire::opt::kClientUuid, r.uuid);
  }
  // xid picks the boot file: none, a short name, or a URL of up to 400 bytes.
  switch (r.xid % 3) {
    case 0: break;
    case 1: reply.file = r.arch && *r.arch == 7 ? "ipxe.efi" : "undionly.kpxe"; break;
    default: reply.file = "http://10.0.0.1/boot/" + std::string((r.xid >> 8) % 380, 'x') + ".ipxe"; break;
  }
  // The policy names the file in option 67 too; encodeReply() keeps it only when it is needed.
  if (!reply.file.empty()) add(wire::opt::kBootFileName, {reply.file.begin(), reply.file.end()});
  if (r.xid & 0x10000) reply.sname = "boot.lab.example.com";
  return reply;
}

void checkReply(const Decoded& d, const Reply& reply) {
  const auto& request = d.message;
  Reply moved = reply;
  auto copied = encodeReply(request, reply);
  auto fromMove = encodeReply(request, std::move(moved));
  check(copied.ok() == fromMove.ok());
  auto limits = wire::replyLimits(request);
  if (!copied) {
    // Only the options never dropped can make it fail: 53, the echoed 61 and 82, and the reply's
    // essential ones.
    std::size_t essential = wireSize(1);
    auto isEssential = [&](std::uint8_t code) {
      return std::find(limits.essential.begin(), limits.essential.end(), code) != limits.essential.end();
    };
    if (auto id = request.clientId()) essential += wireSize(id->size());
    if (auto a = request.relayAgentInfo()) essential += wireSize(a->size());
    // 67 is one of them unless the field holds the name and the client did not ask for 67.
    bool fileInField = reply.file.size() <= 127 && !request.requested(wire::opt::kBootFileName);
    for (const auto& o : reply.options)
      if (isEssential(o.code) && !(o.code == wire::opt::kBootFileName && fileInField))
        essential += wireSize(o.value.size());
    check(essential > limits.maxSize - wire::kMinMessageSize - 1);
    return;
  }
  check(*copied == *fromMove);
  const auto& bytes = *copied;
  check(bytes.size() <= limits.maxSize && bytes.size() >= wire::kBootpMinSize);
  auto back = wire::parseMessage(bytes);
  check(back.ok());
  check(back->op == wire::Op::BootReply && back->xid == request.xid && back->chaddr == request.chaddr);
  check(back->flags == request.flags && back->giaddr == request.giaddr);
  check(back->yiaddr == reply.yiaddr && back->siaddr == reply.siaddr);
  check(back->messageType() && static_cast<std::uint8_t>(*back->messageType()) ==
                                   static_cast<std::uint8_t>(reply.type));
  if (reply.file.size() <= 127) {
    check(back->bootFile() == reply.file);
    if (!reply.file.empty()) check(back->has(wire::opt::kBootFileName) == request.requested(wire::opt::kBootFileName));
  } else {
    auto o = back->option(wire::opt::kBootFileName);
    check(o && std::equal(o->begin(), o->end(), reply.file.begin(), reply.file.end()));
  }
  if (auto id = request.clientId()) {
    auto echoed = back->clientId();
    check(echoed && std::equal(echoed->begin(), echoed->end(), id->begin(), id->end()));
  }
  if (auto a = request.relayAgentInfo()) {
    auto echoed = back->relayAgentInfo();
    check(echoed && std::equal(echoed->begin(), echoed->end(), a->begin(), a->end()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto d = decodeRequest(std::span<const std::uint8_t>(data, size));
  if (!d.request) {
    check(!d.error.empty() && d.drop != Drop::Count);
    return 0;
  }
  checkRequest(d);
  checkReply(d, makeAnswer(*d.request));
  return 0;
}
