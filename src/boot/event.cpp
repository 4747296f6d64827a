// Names and small helpers for the event types (event.hpp).
#include "boot/event.hpp"

#include <charconv>

#include <fmt/format.h>

namespace pxedust::boot {

std::optional<Ipv4> Ipv4::parse(std::string_view dotted) {
  std::uint32_t value = 0;
  const char* p = dotted.data();
  const char* end = dotted.data() + dotted.size();
  for (int i = 0; i < 4; ++i) {
    if (i > 0) {
      if (p == end || *p != '.') return std::nullopt;
      ++p;
    }
    unsigned octet = 0;
    auto [next, ec] = std::from_chars(p, end, octet);
    if (ec != std::errc{} || next == p || next - p > 3 || octet > 255) return std::nullopt;
    value = (value << 8) | octet;
    p = next;
  }
  if (p != end) return std::nullopt;
  return Ipv4(value);
}

std::string Ipv4::toString() const {
  return fmt::format("{}.{}.{}.{}", value_ >> 24, (value_ >> 16) & 0xff, (value_ >> 8) & 0xff, value_ & 0xff);
}

namespace {

std::string_view dhcpKindName(DhcpKind k) {
  switch (k) {
    case DhcpKind::Discover: return "dhcp.discover";
    case DhcpKind::Offer: return "dhcp.offer";
    case DhcpKind::Ack: return "dhcp.ack";
    case DhcpKind::Nak: return "dhcp.nak";
    case DhcpKind::Decline: return "dhcp.decline";
    case DhcpKind::Release: return "dhcp.release";
  }
  return "dhcp.unknown";
}

std::string_view fileResultName(FileResult r) {
  switch (r) {
    case FileResult::Completed: return "file.completed";
    case FileResult::NotFound: return "file.not_found";
    case FileResult::Aborted: return "file.aborted";
    case FileResult::Failed: return "file.failed";
  }
  return "file.unknown";
}

std::string_view diskKindName(DiskKind k) {
  switch (k) {
    case DiskKind::Login: return "disk.login";
    case DiskKind::Logout: return "disk.logout";
    case DiskKind::Failed: return "disk.failed";
  }
  return "disk.unknown";
}

struct KindName {
  std::string_view operator()(const DhcpEvent& e) const { return dhcpKindName(e.kind); }
  std::string_view operator()(const ProxyDhcpEvent&) const { return "dhcp.proxy_answer"; }
  std::string_view operator()(const FileEvent& e) const { return fileResultName(e.result); }
  std::string_view operator()(const DiskEvent& e) const { return diskKindName(e.kind); }
  std::string_view operator()(const HostEvent& e) const { return e.kind == HostKind::Up ? "host.up" : "host.failed"; }
};

}  // namespace

std::string_view kindName(const Event& event) { return std::visit(KindName{}, event.what); }

std::string_view protocolName(FileProtocol p) { return p == FileProtocol::Tftp ? "tftp" : "http"; }

std::string_view protocolName(DiskProtocol p) {
  switch (p) {
    case DiskProtocol::Iscsi: return "iscsi";
    case DiskProtocol::Nbd: return "nbd";
    case DiskProtocol::Nfs: return "nfs";
  }
  return "unknown";
}

bool fromNetworkBootClient(const DhcpEvent& discover) {
  return discover.arch.has_value() || discover.vendorClass.starts_with("PXEClient") ||
         discover.vendorClass.starts_with("HTTPClient");
}

}  // namespace pxedust::boot
