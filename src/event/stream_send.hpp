// Sending on a non-blocking TCP socket by hand, for writers that need more than asio::async_write:
// send(2) with MSG_MORE, and splice(2) of page references from a pipe (blockstore::PipeChain), which
// asio has no operation for. The iSCSI and NBD writers use both for large READ data.
//
// sendStream() calls `step(fd)` until it has moved `size` bytes: `step` moves what it can without
// blocking and returns the bytes moved (> 0) or -errno; -EAGAIN waits until the socket is writable,
// -EINTR retries, any other error ends the send. The socket must be non-blocking (socket.non_blocking
// (true)): the loop never blocks in a send. `closed` is the caller's flag, checked after each wait, so
// a connection closed meanwhile stops at once (operation_aborted).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <system_error>

namespace pxedust::event {

template <typename Step>
asio::awaitable<std::error_code> sendStream(asio::ip::tcp::socket& socket, std::size_t size, const bool& closed,
                                            Step&& step) {
  const int fd = socket.native_handle();
  while (size > 0) {
    const ssize_t n = step(fd, size);
    if (n > 0) {
      size -= static_cast<std::size_t>(n);
      continue;
    }
    if (n == -EINTR) continue;
    if (n != -EAGAIN) co_return std::error_code(n < 0 ? static_cast<int>(-n) : EIO, std::system_category());
    std::error_code ec;
    co_await socket.async_wait(asio::socket_base::wait_write, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return ec;
    if (closed) co_return std::error_code(asio::error::operation_aborted);
  }
  co_return std::error_code{};
}

// All of [data, data + size), with MSG_MORE when `more` (more data follows at once: no short segment).
inline asio::awaitable<std::error_code> sendAll(asio::ip::tcp::socket& socket, const std::uint8_t* data,
                                                std::size_t size, bool more, const bool& closed) {
  co_return co_await sendStream(socket, size, closed, [&data, more](int fd, std::size_t left) -> ssize_t {
    const ssize_t n = ::send(fd, data, left, MSG_DONTWAIT | MSG_NOSIGNAL | (more ? MSG_MORE : 0));
    if (n < 0) return -errno;
    data += n;
    return n;
  });
}

}  // namespace pxedust::event
