#include "event/tcp_listeners.hpp"

#include <fmt/format.h>

#include "common/log.hpp"

namespace pxedust::event {
namespace {

std::string text(const asio::ip::tcp::endpoint& ep) {
  return ep.address().is_v6() ? fmt::format("[{}]:{}", ep.address().to_string(), ep.port())
                              : fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

}  // namespace

Result<TcpListeners::Staged> TcpListeners::stage(const std::vector<asio::ip::tcp::endpoint>& addresses) const {
  Staged staged;
  for (const auto& a : addresses) {
    std::string key = text(a);
    staged.wanted.insert(key);
    if (listeners_.contains(key) || staged.fresh.contains(key)) continue;
    auto l = std::make_unique<TcpListener>(io_, handler_);
    if (auto r = l->listen(a); !r)
      return Error{fmt::format("[{}] {}", service_, r.error().message), r.error().code};  // the others close
    staged.fresh.emplace(std::move(key), std::move(l));
  }
  return staged;
}

void TcpListeners::commit(Staged staged) {
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    if (!staged.wanted.contains(it->first)) {
      PXD_INFO(service_ + ".listener_closed", "address={}", it->first);
      it->second->close();
      it = listeners_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [k, l] : staged.fresh) {
    PXD_INFO(service_ + ".listening", "address={}", k);
    l->start();
    listeners_.emplace(k, std::move(l));
  }
}

void TcpListeners::closeAll() {
  for (auto& [k, l] : listeners_) l->close();
  listeners_.clear();
}

std::optional<asio::ip::tcp::endpoint> TcpListeners::bound(const Staged& staged,
                                                          const asio::ip::tcp::endpoint& configured) const {
  const std::string key = text(configured);
  if (auto it = staged.fresh.find(key); it != staged.fresh.end()) return it->second->localEndpoint();
  if (auto it = listeners_.find(key); it != listeners_.end() && staged.wanted.contains(key))
    return it->second->localEndpoint();
  return std::nullopt;
}

std::vector<asio::ip::tcp::endpoint> TcpListeners::endpoints() const {
  std::vector<asio::ip::tcp::endpoint> out;
  for (const auto& [k, l] : listeners_) out.push_back(l->localEndpoint());
  return out;
}

std::vector<std::string> TcpListeners::endpointTexts() const {
  std::vector<std::string> out;
  for (const auto& ep : endpoints()) out.push_back(text(ep));
  return out;
}

}  // namespace pxedust::event
