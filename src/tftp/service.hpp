// The TFTP service: listeners on the configured addresses, admission of read requests, and the
// registry of transfers in flight.
//
// A request is answered in this order, cheapest check first, before anything is allocated: parse
// (ERROR 4), write refused (ERROR 2), the client's rate (ERROR 0), a repeated RRQ from a client port
// that already has a transfer (silence: its transfer's retransmission answers), the transfer limit
// (ERROR 0), the name (ERROR 1/2), the per-host rule, open beneath the root (ERROR 1/2). Only then
// does a transfer get a socket. So a "file not found" — pxelinux probes a dozen config names per
// boot — costs one openat2 and one reply, sent from a per-listener reply socket so that, as
// RFC 1350 asks, it never comes from port 69.
//
// prepare() opens the new root and binds any new listener; commit() swaps them in (the reload
// contract of service/service.hpp). Transfers in flight keep their file, socket and settings.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/thread_pool.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "common/rate_limiter.hpp"
#include "common/result.hpp"
#include "config/config.hpp"
#include "event/loop.hpp"
#include "event/udp.hpp"
#include "inventory/inventory.hpp"
#include "service/service.hpp"
#include "tftp/config.hpp"
#include "tftp/stats.hpp"
#include "tftp/transfer.hpp"

namespace pxedust::tftp {

class TftpService final : public service::Service {
 public:
  explicit TftpService(event::Loop& loop, unsigned diskThreads = 2);
  ~TftpService();
  TftpService(const TftpService&) = delete;
  TftpService& operator=(const TftpService&) = delete;

  [[nodiscard]] std::string_view name() const override { return "tftp"; }
  Result<std::unique_ptr<service::Staged>> prepare(const config::Config& config,
                                                   std::shared_ptr<const inventory::Inventory> hosts) override;
  void commit(std::unique_ptr<service::Staged> staged) noexcept override;
  void stopAccepting() override { stopListening(); }
  void abort() override;
  [[nodiscard]] bool busy() const override { return !transfers_.empty(); }
  [[nodiscard]] std::vector<std::string> endpoints() const override;
  void collect(metrics::Writer& out) const override;

  // prepare() + commit() of the [tftp] section alone (tests).
  Result<void> apply(const Config& config, std::shared_ptr<const inventory::Inventory> hosts);
  // Shutdown, first step: close the listeners; transfers in flight go on.
  void stopListening();
  // Shutdown, last step: end every transfer still running.
  void abortTransfers();

  [[nodiscard]] const TftpStats& stats() const { return stats_; }
  [[nodiscard]] std::size_t activeTransfers() const { return transfers_.size(); }
  // The bound addresses (with the real port when the config asked for port 0, as tests do).
  [[nodiscard]] std::vector<asio::ip::udp::endpoint> listenEndpoints() const;

 private:
  struct Listener {
    explicit Listener(asio::io_context& io) : socket(io), replies(io) {}
    config::SocketAddress address;
    event::UdpSocket socket;   // receives requests
    event::UdpSocket replies;  // sends request errors from a port other than 69
    bool closed = false;
  };
  struct EndpointHash {
    std::size_t operator()(const asio::ip::udp::endpoint& ep) const;
  };

  struct Staged;

  Result<std::unique_ptr<Staged>> prepareSection(const Config& config,
                                                 std::shared_ptr<const inventory::Inventory> hosts);
  Result<std::shared_ptr<Listener>> openListener(const config::SocketAddress& address);
  asio::awaitable<void> serve(std::shared_ptr<Listener> listener);
  void handleRequest(Listener& listener, const event::Received& rx, std::span<const std::uint8_t> datagram);
  void reject(Listener& listener, const event::Received& rx, Drop why, wire::ErrorCode code, std::string_view text);
  Result<std::unique_ptr<event::UdpSocket>> openTransferSocket(const asio::ip::address& local);
  std::uint32_t blksizeLimit(const Listener& listener, const event::Received& rx);
  const inventory::Host* hostFor(const event::Received& rx) const;
  void reportFile(const asio::ip::udp::endpoint& client, std::string_view requested, std::string_view served,
                  boot::FileResult result, std::uint64_t bytes, std::string_view reason) const;

  event::Loop& loop_;
  asio::thread_pool pool_;
  std::shared_ptr<TransferShared> shared_;
  std::shared_ptr<const Config> config_;
  std::shared_ptr<const inventory::Inventory> hosts_;
  UniqueFd root_;
  std::vector<std::shared_ptr<Listener>> listeners_;
  std::unique_ptr<RateLimiter> limiter_;
  std::unordered_map<asio::ip::udp::endpoint, std::shared_ptr<Transfer>, EndpointHash> transfers_;
  std::uint32_t nextPort_ = 0;
  bool stopping_ = false;
  TftpStats stats_;
  std::array<std::uint8_t, 65536> rx_{};
};

}  // namespace pxedust::tftp
