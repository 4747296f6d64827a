// A Server-Sent Events stream (text/event-stream) that any number of HTTP clients follow: the
// dashboard's live view. Whoever owns it publishes a message when something changed; each
// connection on the stream sends the latest one it has not sent yet. A slow client skips to the
// newest message instead of queueing old ones, so memory stays one message per stream, not one
// per client, and the sender's send_timeout still cuts off a client that stopped reading.
//
// Loop thread only.
#pragma once

#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pxedust::http {

class EventStream {
 public:
  // `event` is the SSE event name ("hosts"); `data` any text: each line becomes a data: line.
  // Cheap when nobody follows: the message is framed when a follower first asks for it.
  void publish(std::string event, std::shared_ptr<const std::string> data);
  // Ends every follower (shutdown).
  void close();

  [[nodiscard]] std::uint64_t version() const { return version_; }
  // The latest message as it goes on the wire, or null before the first.
  const std::shared_ptr<const std::string>& latest();
  [[nodiscard]] bool closed() const { return closed_; }
  // A follower waits on its own timer; publish() and close() cancel it to wake the follower.
  void follow(const std::shared_ptr<asio::steady_timer>& wake);

  // Between messages a comment line keeps proxies and the browser from thinking the stream dead.
  static constexpr std::chrono::seconds kKeepAlive{15};

  // "event: <event>\ndata: <line>\n...\n\n": one message as it goes on the wire.
  static std::string frame(std::string_view event, std::string_view data);

 private:
  void wakeAll();

  std::uint64_t version_ = 0;
  std::string event_;
  std::shared_ptr<const std::string> data_;
  std::shared_ptr<const std::string> latest_;  // framed data_, once asked for
  std::uint64_t latestVersion_ = 0;
  std::vector<std::weak_ptr<asio::steady_timer>> followers_;
  bool closed_ = false;
};

}  // namespace pxedust::http
