#include "dhcp/wire/packet.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "common/bytes.hpp"

namespace pxedust::dhcp::wire {
namespace {

Error drop(DropReason reason, std::string message) { return Error{std::move(message), static_cast<int>(reason)}; }

bool contains(std::span<const std::uint8_t> list, std::uint8_t code) {
  return std::find(list.begin(), list.end(), code) != list.end();
}

// Gathers option instances, concatenating repeats (RFC 3396 §5) and keeping first-appearance order.
class OptionCollector {
 public:
  explicit OptionCollector(std::vector<Option>& out) : out_(out) { index_.fill(-1); }
  void add(std::uint8_t code, std::span<const std::uint8_t> data) {
    if (index_[code] < 0) {
      index_[code] = static_cast<int>(out_.size());
      out_.push_back(Option{code, {}});
    }
    auto& v = out_[static_cast<std::size_t>(index_[code])].data;
    v.insert(v.end(), data.begin(), data.end());
  }

 private:
  std::vector<Option>& out_;
  std::array<int, 256> index_{};
};

// One field of options: the options area, or `file` / `sname` when overloaded. `base` is the offset
// of the field in the datagram, for error messages.
Result<void> parseField(std::span<const std::uint8_t> field, std::size_t base, std::string_view name,
                        OptionCollector& collector, std::optional<std::vector<std::uint8_t>>* overload) {
  std::size_t i = 0;
  while (i < field.size()) {
    std::uint8_t code = field[i];
    if (code == opt::kPad) {
      ++i;
      continue;
    }
    if (code == opt::kEnd) return {};  // what follows is padding, whatever it holds
    if (field.size() - i < 2)
      return drop(DropReason::TruncatedOption,
                  fmt::format("option {} at offset {} has no length byte before the end of the {} field", code,
                              base + i, name));
    std::size_t len = field[i + 1];
    std::size_t left = field.size() - i - 2;
    if (len > left)
      return drop(DropReason::TruncatedOption,
                  fmt::format("option {} at offset {} has length {} but the {} field has {} bytes left", code,
                              base + i, len, name, left));
    auto data = field.subspan(i + 2, len);
    if (code == opt::kOverload) {
      // RFC 2131 §4.1: option 52 belongs in the options field; inside an overloaded field it could
      // only ask for the field being read, or the other one again.
      if (overload == nullptr)
        return drop(DropReason::BadOverload, fmt::format("option 52 at offset {} inside the {} field", base + i, name));
      if (!*overload) overload->emplace();
      (*overload)->insert((*overload)->end(), data.begin(), data.end());
    } else {
      collector.add(code, data);
    }
    i += 2 + len;
  }
  return {};  // no END: the field is complete when its last option ends exactly at its end
}

std::string expectedLength(OptionType type) {
  auto r = lengthRule(type);
  if (r.min == r.max) return fmt::format("{}", r.min);
  if (r.multiple > 1) return fmt::format("a multiple of {}", r.multiple);
  return fmt::format("at least {}", r.min);
}

std::optional<std::span<const std::uint8_t>> typed(const Message& m, std::uint8_t code, OptionType type) {
  auto v = m.option(code);
  if (!v || !validLength(type, v->size())) return std::nullopt;
  return v;
}

std::uint32_t be(std::span<const std::uint8_t> b) {
  std::uint32_t v = 0;
  for (auto x : b) v = (v << 8) | x;
  return v;
}

std::optional<std::string_view> text(const Message& m, std::uint8_t code) {
  auto v = m.option(code);
  if (!v) return std::nullopt;
  auto b = *v;
  while (!b.empty() && b.back() == 0) b = b.first(b.size() - 1);
  if (b.empty()) return std::nullopt;
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

template <std::size_t N>
std::string_view fieldText(const std::array<std::uint8_t, N>& field) {
  const auto* p = reinterpret_cast<const char*>(field.data());
  return {p, strnlen(p, N)};
}

template <std::size_t N>
bool setFieldText(std::array<std::uint8_t, N>& field, std::string_view s) {
  if (s.size() >= N) return false;
  field.fill(0);
  if (!s.empty()) std::memcpy(field.data(), s.data(), s.size());
  return true;
}

// --- encoding

struct Piece {
  std::uint8_t code;
  std::span<const std::uint8_t> data;  // at most 255 bytes
};

// Options laid out in the options area, `file` and `sname` (in that order, RFC 3396 §5).
struct Layout {
  std::array<std::vector<Piece>, 3> areas;
  std::array<std::size_t, 3> used{};
};

constexpr std::size_t kMain = 0, kFile = 1, kSname = 2;
constexpr std::size_t kSnameOffset = 44, kFileOffset = 108;  // in the datagram, for error messages

bool uses(Overload ov, Overload field) {
  return (static_cast<unsigned>(ov) & static_cast<unsigned>(field)) != 0;
}

// Places every option in order, each area ending with END. An option of up to 255 bytes is one
// instance and never split. A longer one must be split anyway (RFC 3396 §5), and its receiver must
// reassemble it, so its instances fill whatever room is left and continue in the next area.
// nullopt when something does not fit.
std::optional<Layout> pack(const std::vector<const Option*>& order, std::size_t maxSize, Overload ov) {
  std::array<std::size_t, 3> capacity{};
  capacity[kMain] = maxSize - kMinMessageSize - 1 - (ov == Overload::None ? 0 : 3);  // END, option 52
  capacity[kFile] = uses(ov, Overload::File) ? kFileSize - 1 : 0;
  capacity[kSname] = uses(ov, Overload::Sname) ? kSnameSize - 1 : 0;
  Layout layout;
  std::size_t area = kMain;
  auto room = [&] { return capacity[area] - layout.used[area]; };  // used never exceeds capacity
  for (const auto* o : order) {
    std::span<const std::uint8_t> rest(o->data);
    bool splittable = rest.size() > 255;
    do {
      std::size_t size = rest.size();
      if (splittable) {
        while (area < 3 && room() < 3) ++area;  // a header and at least one byte
        if (area == 3) return std::nullopt;
        size = std::min({size, std::size_t{255}, room() - 2});
      } else {
        while (area < 3 && room() < 2 + size) ++area;
        if (area == 3) return std::nullopt;
      }
      layout.areas[area].push_back(Piece{o->code, rest.first(size)});
      layout.used[area] += 2 + size;
      rest = rest.subspan(size);
    } while (!rest.empty());
  }
  return layout;
}

void writePiece(ByteWriter& w, const Piece& p) {
  w.u8(p.code);
  w.u8(static_cast<std::uint8_t>(p.data.size()));
  w.bytes(p.data);
}

// An overloaded header field: its options, END, zeros to the field size.
template <std::size_t N>
std::array<std::uint8_t, N> overloadedField(const std::vector<Piece>& pieces) {
  std::array<std::uint8_t, N> field{};
  ByteWriter w(field);
  for (const auto& p : pieces) writePiece(w, p);
  w.u8(opt::kEnd);
  return field;  // pack() kept the pieces within N - 1 bytes
}

std::vector<std::uint8_t> write(const Message& m, const Layout& layout, Overload ov, std::size_t minSize) {
  std::size_t size = std::max(kMinMessageSize + layout.used[kMain] + (ov == Overload::None ? 0 : 3) + 1, minSize);
  std::vector<std::uint8_t> out(size, 0);
  ByteWriter w(out);
  w.u8(static_cast<std::uint8_t>(m.op));
  w.u8(m.htype);
  w.u8(m.hlen);
  w.u8(m.hops);
  w.be32(m.xid);
  w.be16(m.secs);
  w.be16(m.flags);
  w.be32(m.ciaddr);
  w.be32(m.yiaddr);
  w.be32(m.siaddr);
  w.be32(m.giaddr);
  w.bytes(m.chaddr);
  w.bytes(uses(ov, Overload::Sname) ? overloadedField<kSnameSize>(layout.areas[kSname]) : m.sname);
  w.bytes(uses(ov, Overload::File) ? overloadedField<kFileSize>(layout.areas[kFile]) : m.file);
  w.be32(kMagicCookie);
  // 53 first, then 52 (RFC 2131 §4.1 wants 52 in the options field; first is where clients look).
  bool overloadPending = ov != Overload::None;
  auto writeOverload = [&] {
    if (!overloadPending) return;
    w.u8(opt::kOverload);
    w.u8(1);
    w.u8(static_cast<std::uint8_t>(ov));
    overloadPending = false;
  };
  const auto& main = layout.areas[kMain];
  for (std::size_t i = 0; i < main.size(); ++i) {
    if (i > 0 || main[i].code != opt::kMessageType) writeOverload();
    writePiece(w, main[i]);
  }
  writeOverload();
  w.u8(opt::kEnd);
  // The rest of `out` is already zero: the padding up to minSize.
  return out;
}

}  // namespace

std::string_view describe(MessageType type) {
  switch (type) {
    case MessageType::Discover: return "DHCPDISCOVER";
    case MessageType::Offer: return "DHCPOFFER";
    case MessageType::Request: return "DHCPREQUEST";
    case MessageType::Decline: return "DHCPDECLINE";
    case MessageType::Ack: return "DHCPACK";
    case MessageType::Nak: return "DHCPNAK";
    case MessageType::Release: return "DHCPRELEASE";
    case MessageType::Inform: return "DHCPINFORM";
    case MessageType::ForceRenew: return "DHCPFORCERENEW";
    case MessageType::LeaseQuery: return "DHCPLEASEQUERY";
    case MessageType::LeaseUnassigned: return "DHCPLEASEUNASSIGNED";
    case MessageType::LeaseUnknown: return "DHCPLEASEUNKNOWN";
    case MessageType::LeaseActive: return "DHCPLEASEACTIVE";
  }
  return "DHCP<unknown>";
}

std::string_view describe(DropReason reason) {
  switch (reason) {
    case DropReason::None: return "ok";
    case DropReason::TooShort: return "too-short";
    case DropReason::BadOp: return "bad-op";
    case DropReason::BadHardwareLength: return "bad-hlen";
    case DropReason::BadCookie: return "bad-cookie";
    case DropReason::TruncatedOption: return "truncated-option";
    case DropReason::BadOverload: return "bad-overload";
    case DropReason::BadOptionLength: return "bad-option-length";
  }
  return "?";
}

DropReason dropReason(const Error& error) {
  if (error.code <= 0 || error.code >= static_cast<int>(kDropReasonCount)) return DropReason::None;
  return static_cast<DropReason>(error.code);
}

Result<Message> parseMessage(std::span<const std::uint8_t> datagram) {
  if (datagram.size() < kMinMessageSize)
    return drop(DropReason::TooShort,
                fmt::format("{} bytes, a DHCP message has at least {} (header and magic cookie)", datagram.size(),
                            kMinMessageSize));
  ByteReader r(datagram);
  Message m;
  auto op = r.u8();
  if (op != static_cast<std::uint8_t>(Op::BootRequest) && op != static_cast<std::uint8_t>(Op::BootReply))
    return drop(DropReason::BadOp, fmt::format("op {} is neither BOOTREQUEST (1) nor BOOTREPLY (2)", op));
  m.op = static_cast<Op>(op);
  m.htype = r.u8();
  m.hlen = r.u8();
  if (m.hlen > kChaddrSize)
    return drop(DropReason::BadHardwareLength, fmt::format("hlen {} exceeds the 16-byte chaddr field", m.hlen));
  m.hops = r.u8();
  m.xid = r.be32();
  m.secs = r.be16();
  m.flags = r.be16();
  m.ciaddr = r.be32();
  m.yiaddr = r.be32();
  m.siaddr = r.be32();
  m.giaddr = r.be32();
  auto chaddr = r.bytes(kChaddrSize);
  auto sname = r.bytes(kSnameSize);
  auto file = r.bytes(kFileSize);
  auto cookie = r.be32();
  if (!r.ok()) return drop(DropReason::TooShort, "truncated header");  // unreachable after the size check
  std::copy(chaddr.begin(), chaddr.end(), m.chaddr.begin());
  std::copy(sname.begin(), sname.end(), m.sname.begin());
  std::copy(file.begin(), file.end(), m.file.begin());
  if (cookie != kMagicCookie)
    return drop(DropReason::BadCookie,
                fmt::format("magic cookie 0x{:08x} is not 99.130.83.99 (0x63825363)", cookie));

  m.options.reserve(16);  // a client's request carries 5-12 options: one allocation, not several
  OptionCollector collector(m.options);
  std::optional<std::vector<std::uint8_t>> overload;  // option 52, concatenated like any other
  if (auto res = parseField(r.rest(), kMinMessageSize, "options", collector, &overload); !res) return res.error();
  if (overload) {
    if (overload->size() != 1 || (*overload)[0] < 1 || (*overload)[0] > 3)
      return drop(DropReason::BadOverload, fmt::format("option 52 is {} bytes ({}), expected one byte of 1..3",
                                                       overload->size(), formatHex(*overload)));
    m.overload = static_cast<Overload>((*overload)[0]);
    // RFC 2131 §4.1: `file` is read before `sname`.
    if (uses(m.overload, Overload::File)) {
      if (auto res = parseField(m.file, kFileOffset, "file", collector, nullptr); !res) return res.error();
      m.file.fill(0);
    }
    if (uses(m.overload, Overload::Sname)) {
      if (auto res = parseField(m.sname, kSnameOffset, "sname", collector, nullptr); !res) return res.error();
      m.sname.fill(0);
    }
  }

  for (const auto& o : m.options) {
    auto def = findOption(o.code);
    if (def && def->strict && !validLength(def->type, o.data.size()))
      return drop(DropReason::BadOptionLength, fmt::format("option {} ({}) is {} bytes long, expected {}", o.code,
                                                           def->name, o.data.size(), expectedLength(def->type)));
  }
  return m;
}

// --- Message

void Message::setBroadcast(bool on) {
  flags = static_cast<std::uint16_t>(on ? (flags | kFlagBroadcast) : (flags & ~kFlagBroadcast));
}

std::span<const std::uint8_t> Message::hardwareAddress() const {
  return std::span<const std::uint8_t>(chaddr).first(std::min<std::size_t>(hlen, kChaddrSize));
}

std::optional<MacAddress> Message::mac() const {
  if (htype != 1 || hlen != 6) return std::nullopt;
  std::array<std::uint8_t, 6> b{};
  std::copy_n(chaddr.begin(), 6, b.begin());
  return MacAddress(b);
}

void Message::setMac(const MacAddress& address) {
  htype = 1;
  hlen = 6;
  chaddr.fill(0);
  std::copy(address.bytes().begin(), address.bytes().end(), chaddr.begin());
}

std::string_view Message::serverName() const { return fieldText(sname); }
std::string_view Message::bootFile() const { return fieldText(file); }
bool Message::setServerName(std::string_view name) { return setFieldText(sname, name); }
bool Message::setBootFile(std::string_view name) { return setFieldText(file, name); }

const Option* Message::find(std::uint8_t code) const {
  for (const auto& o : options)
    if (o.code == code) return &o;
  return nullptr;
}

std::optional<std::span<const std::uint8_t>> Message::option(std::uint8_t code) const {
  const auto* o = find(code);
  if (o == nullptr) return std::nullopt;
  return std::span<const std::uint8_t>(o->data);
}

void Message::set(std::uint8_t code, std::vector<std::uint8_t> data) {
  for (auto& o : options) {
    if (o.code == code) {
      o.data = std::move(data);
      return;
    }
  }
  options.push_back(Option{code, std::move(data)});
}

void Message::set(std::uint8_t code, std::span<const std::uint8_t> data) {
  set(code, std::vector<std::uint8_t>(data.begin(), data.end()));
}

void Message::setU8(std::uint8_t code, std::uint8_t v) { set(code, std::vector<std::uint8_t>{v}); }

void Message::setU16(std::uint8_t code, std::uint16_t v) {
  set(code, std::vector<std::uint8_t>{static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)});
}

void Message::setU32(std::uint8_t code, std::uint32_t v) {
  set(code, std::vector<std::uint8_t>{static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
                                      static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)});
}

void Message::setIp(std::uint8_t code, Ipv4 v) { setU32(code, v); }

void Message::setIps(std::uint8_t code, std::span<const Ipv4> v) {
  std::vector<std::uint8_t> data;
  data.reserve(v.size() * 4);
  for (auto a : v)
    for (int shift = 24; shift >= 0; shift -= 8) data.push_back(static_cast<std::uint8_t>(a >> shift));
  set(code, std::move(data));
}

void Message::setString(std::uint8_t code, std::string_view v) {
  set(code, std::vector<std::uint8_t>(v.begin(), v.end()));
}

void Message::remove(std::uint8_t code) {
  std::erase_if(options, [&](const Option& o) { return o.code == code; });
}

std::optional<MessageType> Message::messageType() const {
  auto v = typed(*this, opt::kMessageType, OptionType::MessageType);
  if (!v) return std::nullopt;
  return static_cast<MessageType>((*v)[0]);
}

void Message::setMessageType(MessageType type) { setU8(opt::kMessageType, static_cast<std::uint8_t>(type)); }

std::optional<Ipv4> Message::requestedIp() const {
  auto v = typed(*this, opt::kRequestedIp, OptionType::Ip);
  return v ? std::optional<Ipv4>(be(*v)) : std::nullopt;
}

std::optional<Ipv4> Message::serverId() const {
  auto v = typed(*this, opt::kServerId, OptionType::Ip);
  return v ? std::optional<Ipv4>(be(*v)) : std::nullopt;
}

std::optional<std::uint32_t> Message::leaseTime() const {
  auto v = typed(*this, opt::kLeaseTime, OptionType::U32);
  return v ? std::optional<std::uint32_t>(be(*v)) : std::nullopt;
}

std::span<const std::uint8_t> Message::parameterRequestList() const {
  auto v = option(opt::kParameterRequestList);
  return v ? *v : std::span<const std::uint8_t>{};
}

bool Message::requested(std::uint8_t code) const { return contains(parameterRequestList(), code); }

std::optional<std::uint16_t> Message::maxMessageSize() const {
  auto v = typed(*this, opt::kMaxMessageSize, OptionType::U16);
  return v ? std::optional<std::uint16_t>(static_cast<std::uint16_t>(be(*v))) : std::nullopt;
}

std::optional<std::string_view> Message::vendorClass() const { return text(*this, opt::kVendorClass); }
std::optional<std::string_view> Message::hostName() const { return text(*this, opt::kHostName); }

std::optional<std::span<const std::uint8_t>> Message::clientId() const {
  return typed(*this, opt::kClientId, OptionType::ClientId);
}

std::optional<UserClass> Message::userClass() const {
  auto v = typed(*this, opt::kUserClass, OptionType::UserClass);
  if (!v) return std::nullopt;
  return decodeUserClass(*v);
}

bool Message::ipxeUserClass() const {
  auto uc = userClass();
  return uc && std::find(uc->classes.begin(), uc->classes.end(), "iPXE") != uc->classes.end();
}

std::vector<std::uint16_t> Message::clientArchitectures() const {
  std::vector<std::uint16_t> out;
  auto v = typed(*this, opt::kClientArch, OptionType::U16List);
  if (!v) return out;
  for (std::size_t i = 0; i + 1 < v->size(); i += 2)
    out.push_back(static_cast<std::uint16_t>(((*v)[i] << 8) | (*v)[i + 1]));
  return out;
}

std::optional<std::uint16_t> Message::clientArch() const {
  auto v = typed(*this, opt::kClientArch, OptionType::U16List);
  if (!v) return std::nullopt;
  return static_cast<std::uint16_t>(((*v)[0] << 8) | (*v)[1]);
}

std::optional<ClientNdi> Message::clientNdi() const {
  auto v = typed(*this, opt::kClientNdi, OptionType::ClientNdi);
  if (!v) return std::nullopt;
  return ClientNdi{(*v)[0], (*v)[1], (*v)[2]};
}

std::optional<std::array<std::uint8_t, 16>> Message::clientUuid() const {
  auto v = typed(*this, opt::kClientUuid, OptionType::Uuid);
  if (!v || (*v)[0] != 0) return std::nullopt;  // RFC 4578 §2.3: only type 0 is defined
  std::array<std::uint8_t, 16> out{};
  std::copy(v->begin() + 1, v->end(), out.begin());
  return out;
}

std::optional<std::span<const std::uint8_t>> Message::vendorOptions() const { return option(opt::kVendorSpecific); }
std::optional<std::span<const std::uint8_t>> Message::relayAgentInfo() const { return option(opt::kRelayAgentInfo); }

std::optional<std::span<const std::uint8_t>> Message::relayAgentSubOption(std::uint8_t code) const {
  auto v = relayAgentInfo();
  if (!v) return std::nullopt;
  return findSubOption(*v, code, false);
}

std::optional<std::span<const std::uint8_t>> Message::ipxeOptions() const { return option(opt::kIpxeEncap); }

std::optional<std::span<const std::uint8_t>> Message::ipxeSubOption(std::uint8_t code) const {
  auto v = ipxeOptions();
  if (!v) return std::nullopt;
  return findSubOption(*v, code, true);
}

bool Message::isPxeClient() const {
  auto v = vendorClass();
  return v && v->starts_with("PXEClient");
}

bool Message::isHttpClient() const {
  auto v = vendorClass();
  return v && v->starts_with("HTTPClient");
}

// --- encoding

EncodeLimits replyLimits(const Message& request, std::size_t interfaceMtu) {
  std::size_t datagram = kMinDatagramSize;
  if (auto v = request.maxMessageSize(); v && *v > datagram) datagram = *v;
  if (interfaceMtu >= kMinDatagramSize) datagram = std::min(datagram, interfaceMtu);
  EncodeLimits limits;
  limits.maxSize = datagram - kIpUdpOverhead;
  limits.parameterRequestList = request.parameterRequestList();
  return limits;
}

Result<Encoded> encodeMessage(const Message& m, const EncodeLimits& limits) {
  if (m.hlen > kChaddrSize) return Error{fmt::format("hlen {} exceeds the 16-byte chaddr field", m.hlen)};
  std::array<const Option*, 256> byCode{};
  for (const auto& o : m.options) {
    if (o.code == opt::kPad || o.code == opt::kEnd || o.code == opt::kOverload)
      return Error{fmt::format("option {} is framing and cannot carry data", o.code)};
    if (byCode[o.code] != nullptr) return Error{fmt::format("option {} is listed twice", o.code)};
    byCode[o.code] = &o;
  }
  std::size_t maxSize = std::clamp(limits.maxSize, kDefaultMaxMessageSize, kMaxMessageSize);
  std::size_t minSize = std::min(limits.minSize, maxSize);

  // Emission order: 53, 54, the client's 55 order, the caller's order, 82 last.
  std::vector<const Option*> order;
  std::array<bool, 256> placed{};
  auto place = [&](std::uint8_t code) {
    if (byCode[code] != nullptr && !placed[code]) {
      order.push_back(byCode[code]);
      placed[code] = true;
    }
  };
  place(opt::kMessageType);
  place(opt::kServerId);
  for (auto code : limits.parameterRequestList)
    if (code != opt::kRelayAgentInfo) place(code);
  for (const auto& o : m.options)
    if (o.code != opt::kRelayAgentInfo) place(o.code);
  place(opt::kRelayAgentInfo);

  // Drop order: unrequested non-essential options, last placed first; then requested ones, last in
  // the client's list first.
  std::vector<std::uint8_t> droppable;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    auto code = (*it)->code;
    if (!contains(limits.essential, code) && !contains(limits.parameterRequestList, code)) droppable.push_back(code);
  }
  for (auto it = limits.parameterRequestList.rbegin(); it != limits.parameterRequestList.rend(); ++it) {
    auto code = *it;
    if (byCode[code] != nullptr && !contains(limits.essential, code) &&
        std::find(droppable.begin(), droppable.end(), code) == droppable.end())
      droppable.push_back(code);
  }

  std::vector<Overload> tries{Overload::None};
  bool fileFree = limits.allowOverload && m.file[0] == 0;
  bool snameFree = limits.allowOverload && m.sname[0] == 0;
  if (fileFree) tries.push_back(Overload::File);
  if (snameFree) tries.push_back(Overload::Sname);
  if (fileFree && snameFree) tries.push_back(Overload::Both);

  Encoded result;
  std::size_t nextDrop = 0;
  while (true) {
    for (auto ov : tries) {
      auto layout = pack(order, maxSize, ov);
      if (!layout) continue;
      result.bytes = write(m, *layout, ov, minSize);
      result.overload = ov;
      return result;
    }
    if (nextDrop == droppable.size()) {
      std::size_t need = 0;
      for (const auto* o : order) need += o->data.size() + 2 * std::max<std::size_t>(1, (o->data.size() + 254) / 255);
      return Error{fmt::format("the essential options need {} bytes, a {}-byte message has room for {}", need, maxSize,
                               maxSize - kMinMessageSize - 1)};
    }
    auto code = droppable[nextDrop++];
    result.dropped.push_back(code);
    std::erase(order, byCode[code]);
  }
}

Message makeReply(const Message& request, MessageType type) {
  Message r;
  r.op = Op::BootReply;
  r.htype = request.htype;
  r.hlen = request.hlen;
  r.xid = request.xid;
  r.flags = request.flags;
  r.giaddr = request.giaddr;
  r.chaddr = request.chaddr;
  r.setMessageType(type);
  if (const auto* id = request.find(opt::kClientId)) r.set(opt::kClientId, id->data);
  if (const auto* agentInfo = request.find(opt::kRelayAgentInfo)) r.set(opt::kRelayAgentInfo, agentInfo->data);
  return r;
}

std::string summarize(const Message& m) {
  std::string s;
  if (auto t = m.messageType()) {
    auto v = static_cast<unsigned>(*t);
    s = (v >= 1 && v <= 13) ? std::string(describe(*t)) : fmt::format("DHCP<{}>", v);
  } else {
    s = m.op == Op::BootRequest ? "BOOTREQUEST" : "BOOTREPLY";
  }
  s += fmt::format(" xid=0x{:08x} chaddr={}", m.xid, formatHex(m.hardwareAddress()));
  if (m.htype != 1 || m.hlen != 6) s += fmt::format(" htype={} hlen={}", m.htype, m.hlen);
  if (m.broadcast()) s += " flags=broadcast";
  if (m.hops) s += fmt::format(" hops={}", m.hops);
  if (m.secs) s += fmt::format(" secs={}", m.secs);
  if (m.ciaddr) s += " ciaddr=" + formatIpv4(m.ciaddr);
  if (m.yiaddr) s += " yiaddr=" + formatIpv4(m.yiaddr);
  if (m.siaddr) s += " siaddr=" + formatIpv4(m.siaddr);
  if (m.giaddr) s += " giaddr=" + formatIpv4(m.giaddr);
  if (m.overload != Overload::None) s += fmt::format(" overload={}", static_cast<unsigned>(m.overload));
  s += " options=";
  for (std::size_t i = 0; i < m.options.size(); ++i) s += fmt::format("{}{}", i ? "," : "", m.options[i].code);
  return s;
}

std::string describeOptions(const Message& m) {
  std::string s;
  for (std::size_t i = 0; i < m.options.size(); ++i) {
    if (i) s += "; ";
    s += formatOption(m.options[i].code, m.options[i].data);
  }
  return s;
}

}  // namespace pxedust::dhcp::wire
