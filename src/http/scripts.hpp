// GET /ipxe/<mac>: the per-host iPXE script (http/ipxe.hpp says what it holds), from the host the
// MAC names, its settings and, when it has one, its template read from the root at each request.
#pragma once

#include <asio/ip/tcp.hpp>

#include <string>
#include <string_view>

#include "boot/event.hpp"
#include "http/service.hpp"

namespace pxedust::http {

inline constexpr std::string_view kScriptPrefix = "/ipxe/";

struct ScriptAnswer {
  Reply reply;
  boot::FileResult result = boot::FileResult::Completed;  // for the tracker: Failed when the script
  std::string reason;                                     // cannot boot anything, and why
};

// `macText` is what follows /ipxe/ ("52-54-00-12-34-56" or with ':'); `client` asked on `local`.
ScriptAnswer hostScript(const Site& site, std::string_view macText, const asio::ip::address& client,
                        const asio::ip::tcp::endpoint& local);

}  // namespace pxedust::http
