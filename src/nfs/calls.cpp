// One RPC call, whatever carried it; see calls.hpp.
#include "nfs/calls.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "common/log.hpp"
#include "inventory/inventory.hpp"

namespace pxedust::nfs {
namespace {

// MOUNT's view of the exports for one caller.
class CallerCatalog final : public MountCatalog {
 public:
  CallerCatalog(ImageExports& exports, const ExportRules& rules, const asio::ip::address& peer)
      : exports_(exports), rules_(rules), peer_(peer) {}
  Found find(std::string_view path) override {
    auto parsed = parseExportPath(path);
    if (!parsed) return {wire::MountStat::NoEnt, nullptr, "no such export (exports are /images/NAME[/VERSION])", {}};
    if (!rules_.admitting(parsed->image, peer_))
      return {wire::MountStat::Acces, nullptr,
              fmt::format("no host booting image {} admits {}", parsed->image, peer_.to_string()), {}};
    auto exp = exports_.byPath(parsed->image, parsed->version);
    if (!exp) {
      const bool missing = exp.error().code == ENOENT;
      return {missing ? wire::MountStat::NoEnt : wire::MountStat::Io, nullptr, exp.error().message, {}};
    }
    return {wire::MountStat::Ok, *exp, {}, parsed->subdir};
  }
  std::vector<std::string> list() override {
    std::vector<std::string> out;
    auto paths = exports_.paths();
    if (!paths) return out;
    for (auto& [path, image] : *paths)
      if (rules_.admitting(image, peer_)) out.push_back(std::move(path));
    return out;
  }

 private:
  ImageExports& exports_;
  const ExportRules& rules_;
  const asio::ip::address& peer_;
};

// The data count of a READ3res we made (0 for a failure): status, post_op_attr, then count.
std::uint32_t readCount(std::span<const std::uint8_t> body) {
  wire::XdrReader r(body);
  if (r.u32() != 0) return 0;
  if (r.boolean()) r.fixedOpaque(wire::kFattr3Size);
  const std::uint32_t count = r.u32();
  return r.ok() ? count : 0;
}

void reportMount(ServiceContext& ctx, const MountOutcome& m, const asio::ip::address& peerAddress, std::string_view via) {
  if (m.kind == MountOutcome::Kind::None) return;
  if (m.kind == MountOutcome::Kind::Unmounted) {
    PXD_DEBUG("nfs.unmount", "via={} peer={} path={}", via, peerAddress.to_string(), log::q(m.path));
    return;
  }
  const bool ok = m.kind == MountOutcome::Kind::Mounted;
  if (ok) ++ctx.stats.mounts;
  else ++ctx.stats.mountsRefused;
  const auto gen = ctx.generation;
  std::string host;
  if (auto parsed = parseExportPath(m.path))
    if (const auto* h = gen->rules->admitting(parsed->image, peerAddress)) host = h->name;
  if (ok) PXD_INFO("nfs.mount", "via={} peer={} path={} host={}", via, peerAddress.to_string(), log::q(m.path), log::q(host));
  else PXD_WARN("nfs.mount_refused", "via={} peer={} path={} reason={}", via, peerAddress.to_string(), log::q(m.path), log::q(m.reason));
  if (!ctx.events) return;
  const auto v4 = inventory::peerIpv4(peerAddress);
  if (!v4) return;
  boot::DiskEvent e;
  e.protocol = boot::DiskProtocol::Nfs;
  e.kind = ok ? boot::DiskKind::Login : boot::DiskKind::Failed;
  e.client = boot::Ipv4(v4->to_uint());
  e.hostName = host;
  e.reason = ok ? std::string() : m.reason;
  ctx.events(boot::Event{{}, std::move(e)});
}

}  // namespace

CallAnswer answerCall(const wire::CallOutcome& decoded, const asio::ip::address& peer, std::uint16_t port,
                      const Generation& gen, ImageExports& exports, const Procedures& procedures, const Ports& ports) {
  CallAnswer a;
  if (decoded.action == wire::CallOutcome::Action::Reply) {
    a.header = decoded.reply;
    return a;
  }
  const wire::Call& call = decoded.call;
  const auto check = wire::checkDispatch(call.program, call.version, call.procedure);
  if (check.stat != wire::AcceptStat::Success) {
    a.header = check.stat == wire::AcceptStat::ProgMismatch ? wire::ReplyHeader::progMismatch(call.xid, check.low, check.high)
                                                            : wire::ReplyHeader::accepted(call.xid, check.stat);
    return a;
  }
  // NULL is answered to anyone (clients probe with it); the rest needs AUTH_SYS unless auth_none,
  // and a privileged source port when privileged_port.
  if (call.procedure != 0) {
    if (call.credFlavor == wire::authflavor::kNone && !gen.config.authNone) {
      a.header = wire::ReplyHeader::authError(call.xid, wire::AuthStat::TooWeak);
      return a;
    }
    if (gen.config.privilegedPort && port >= 1024) {
      a.header = wire::ReplyHeader::authError(call.xid, wire::AuthStat::TooWeak);
      return a;
    }
  }
  a.header = wire::ReplyHeader::accepted(call.xid, wire::AcceptStat::Success);
  bool ok = true;
  switch (call.program) {
    case wire::kPortmapProgram:
      ok = dispatchPortmap(call, ports, a.body, a.noReply);
      break;
    case wire::kMountProgram: {
      CallerCatalog catalog(exports, *gen.rules, peer);
      ok = dispatchMount(call, procedures, catalog, a.body, a.mount);
      break;
    }
    case wire::kNfsAclProgram:
      ok = procedures.dispatchAcl(call, a.body);
      break;
    default:
      ok = procedures.dispatch(call, a.body);
      break;
  }
  if (!ok) {
    a.header = wire::ReplyHeader::accepted(call.xid, wire::AcceptStat::GarbageArgs);
    a.body.clear();
  }
  return a;
}

asio::awaitable<CallAnswer> answerRecord(ServiceContext& ctx, std::span<const std::uint8_t> record,
                                         wire::CallOutcome& decoded, std::shared_ptr<const Procedures> procedures,
                                         asio::ip::address peer, std::uint16_t port) {
  const auto gen = ctx.generation;
  const auto exports = ctx.exports;
  const auto ports = ctx.ports;
  decoded = wire::decodeCall(record);
  if (decoded.action == wire::CallOutcome::Action::Drop) {
    ++ctx.stats.dropped;
    CallAnswer a;
    a.noReply = true;
    co_return a;
  }
  if (decoded.action != wire::CallOutcome::Action::Dispatch || decoded.call.procedure == 0)
    co_return answerCall(decoded, peer, port, *gen, *exports, *procedures, ports);  // nothing to read
  // Everything the worker reads lives in this frame (or the caller's) until the answer is back. The
  // awaitable is made in a statement of its own and the lambda captures references only: GCC 12 may
  // destroy a co_await expression's temporaries twice.
  auto answered = blockstore::onWorker<CallAnswer>(*ctx.pool, ctx.executor, [&]() {
    return answerCall(decoded, peer, port, *gen, *exports, *procedures, ports);
  });
  co_return co_await std::move(answered);
}

void accountAnswer(ServiceContext& ctx, const wire::CallOutcome& decoded, const CallAnswer& a,
                   const asio::ip::address& peer, std::string_view via) {
  ++ctx.stats.calls;
  if (a.header.kind != wire::ReplyHeader::Kind::Accepted || a.header.accept != wire::AcceptStat::Success) {
    if (a.header.accept == wire::AcceptStat::GarbageArgs) ++ctx.stats.garbage;
    else ++ctx.stats.rejected;
  }
  reportMount(ctx, a.mount, peer, via);
  if (decoded.action == wire::CallOutcome::Action::Dispatch && decoded.call.program == wire::kNfsProgram &&
      decoded.call.procedure == wire::nfsproc::kRead)
    ctx.stats.bytesOut += readCount(a.body);
}

std::vector<std::uint8_t> encodeReplyHead(const CallAnswer& a, std::size_t prefix) {
  std::vector<std::uint8_t> out(prefix + 64);
  wire::XdrWriter w(std::span<std::uint8_t>(out).subspan(prefix));
  wire::encodeReplyHeader(w, a.header);
  if (!w.ok()) return {};
  out.resize(prefix + w.size());
  return out;
}

}  // namespace pxedust::nfs
