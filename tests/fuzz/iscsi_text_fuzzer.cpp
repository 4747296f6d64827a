// libFuzzer harness for the login path: text key=value parsing, the negotiation table and the
// login state machine (CHAP included), driven by a sequence of Login Requests taken from the input.
// Input: byte 0 = target policy (CHAP, mutual CHAP, refusal, digests); then records of
// [flags, length, data]: flags carry T, C, CSG, NSG and whether to change the ISID; length is one
// byte (longer text goes through the C bit, as on the wire). Invariants: answers parse as text,
// fit in 8192 bytes, never transit to the reserved or a past stage, failures carry a status and no
// text, and a completed login has a TSIH and framer limits within the RFC range.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "iscsi/login/login.hpp"
#include "iscsi/login/negotiation.hpp"
#include "iscsi/wire/text.hpp"

using namespace pxedust::iscsi;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);

  // 1. The whole input as one text segment, through the negotiation table.
  auto parsed = wire::parseText(in);
  if (parsed.ok()) {
    Negotiator n({}, (size & 1) ? SessionType::Discovery : SessionType::Normal);
    wire::TextWriter out;
    for (const auto& kv : parsed.pairs) n.offer(kv, out);
    n.declare(out);
    n.finish();
    if (!wire::parseText(out.bytes()).ok()) std::abort();
    const auto& p = n.params();
    if (p.firstBurstLength > p.maxBurstLength || p.initiatorMaxRecvDataSegmentLength < 512) std::abort();
  }
  if (size < 1) return 0;

  // 2. A login conversation.
  std::uint8_t policy = in[0];
  in = in.subspan(1);
  LoginHooks hooks;
  hooks.authorize = [policy](const LoginIdentity&) {
    AccessDecision d;
    if (policy & 1) d.chap = ChapCredentials{"node01", "node01-secret"};
    if (policy & 2) d.mutualChap = ChapCredentials{"target", "target-secret"};
    if ((policy & 0x0c) == 0x0c) d.status = login_status::NotFound;
    return d;
  };
  hooks.admit = [](const LoginIdentity&, const SessionParams&) { return Admission{login_status::Success, 1}; };
  hooks.random = [](std::span<std::uint8_t> out) {
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint8_t>(i * 37 + 1);
  };
  LoginConfig cfg;
  cfg.limits.headerDigestCrc32c = (policy & 0x10) != 0;
  LoginMachine m(cfg, hooks);
  wire::Isid isid{0x80, 1, 2, 3, 0, 1};
  while (in.size() >= 2) {
    std::uint8_t flags = in[0];
    std::size_t len = std::min<std::size_t>(in[1], in.size() - 2);
    auto body = in.subspan(2, len);
    in = in.subspan(2 + len);
    wire::LoginRequest h;
    h.transit = (flags & 0x80) != 0;
    h.cont = (flags & 0x40) != 0;
    h.csg = (flags >> 2) & 3;
    h.nsg = flags & 3;
    if (flags & 0x20) isid[5] ^= 1;
    h.isid = isid;
    h.dataSegmentLength = static_cast<std::uint32_t>(body.size());
    auto r = m.rxLoginRequest(h, body);
    if (r.data.size() > 8192 || r.header.dataSegmentLength != r.data.size()) std::abort();
    if (!wire::parseText(r.data).ok()) std::abort();
    if (r.header.transit && (r.header.nsg == 2 || r.header.nsg <= r.header.csg)) std::abort();
    if (r.outcome == LoginReply::Outcome::Failed && (r.header.statusClass == 0 || !r.data.empty())) std::abort();
    if (r.outcome == LoginReply::Outcome::Complete) {
      auto fl = m.framerLimits();
      if (fl.maxDataSegmentLength < 512 || fl.maxDataSegmentLength > (1u << 24) - 1) std::abort();
      if (m.tsih() == 0) std::abort();
    }
    (void)wire::serialize(r.header);
  }
  return 0;
}
