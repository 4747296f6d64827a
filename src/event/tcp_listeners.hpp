// A service's TCP listeners, by address, under the reload contract of service/service.hpp: stage()
// binds the addresses a new configuration adds and changes nothing that runs (dropping what it
// staged closes them); commit() closes the listeners the new configuration no longer has and starts
// accepting on the new ones. Connections already accepted are the service's and stay.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "event/udp.hpp"

namespace pxedust::event {

class TcpListeners {
 public:
  struct Staged {
    std::map<std::string, std::unique_ptr<TcpListener>> fresh;  // bound, not yet accepting
    std::set<std::string> wanted;                                // every address of the new config
  };

  // `service` names the log events ("<service>.listening", "<service>.listener_closed") and errors.
  TcpListeners(asio::io_context& io, std::string service, TcpListener::Handler handler)
      : io_(io), service_(std::move(service)), handler_(std::move(handler)) {}

  Result<Staged> stage(const std::vector<asio::ip::tcp::endpoint>& addresses) const;
  void commit(Staged staged);
  void closeAll();

  // Where the listener for `configured` (an address stage() was given) listens once `staged` is
  // committed: its real port when it asked for port 0. nullopt for an address stage() was not given.
  [[nodiscard]] std::optional<asio::ip::tcp::endpoint> bound(const Staged& staged,
                                                             const asio::ip::tcp::endpoint& configured) const;

  // Where they listen (the real port when an address asked for port 0); as people write them.
  [[nodiscard]] std::vector<asio::ip::tcp::endpoint> endpoints() const;
  [[nodiscard]] std::vector<std::string> endpointTexts() const;
  [[nodiscard]] std::size_t size() const { return listeners_.size(); }

 private:
  asio::io_context& io_;
  std::string service_;
  TcpListener::Handler handler_;
  std::map<std::string, std::unique_ptr<TcpListener>> listeners_;  // by "addr:port" as configured
};

}  // namespace pxedust::event
