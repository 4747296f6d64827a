#include "event/udp.hpp"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <array>

#include "event/loop.hpp"

using namespace pxedust::event;

TEST(UdpSocket, ReceivesWithPacketInfoAndAnswers) {
  Loop loop;
  UdpSocket server(loop.io()), client(loop.io());
  asio::ip::udp::endpoint any(asio::ip::make_address("127.0.0.1"), 0);
  ASSERT_TRUE(server.open(any, {.packetInfo = true}).ok());
  ASSERT_TRUE(client.open(any, {}).ok());

  std::string hello = "hello";
  iovec part{hello.data(), hello.size()};
  ASSERT_TRUE(client.send({&part, 1}, server.localEndpoint()));

  std::optional<Received> got;
  std::array<std::uint8_t, 64> buf{};
  asio::co_spawn(
      loop.io(),
      [&]() -> asio::awaitable<void> {
        auto ec = co_await server.waitReadable();
        EXPECT_FALSE(ec);
        got = server.tryReceive(buf);
        loop.stop();
      },
      asio::detached);
  loop.run();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->size, 5u);
  EXPECT_FALSE(got->truncated);
  EXPECT_EQ(got->from, client.localEndpoint());
  EXPECT_EQ(got->local.to_string(), "127.0.0.1");
  EXPECT_NE(got->ifindex, 0u);
  EXPECT_FALSE(server.tryReceive(buf));  // drained
}

TEST(UdpSocket, ReportsTruncation) {
  Loop loop;
  UdpSocket server(loop.io()), client(loop.io());
  asio::ip::udp::endpoint any(asio::ip::make_address("127.0.0.1"), 0);
  ASSERT_TRUE(server.open(any, {}).ok());
  ASSERT_TRUE(client.open(any, {}).ok());
  std::string big(100, 'x');
  iovec part{big.data(), big.size()};
  ASSERT_TRUE(client.send({&part, 1}, server.localEndpoint()));
  std::array<std::uint8_t, 10> small{};
  std::optional<Received> got;
  for (int i = 0; i < 1000 && !got; ++i) got = server.tryReceive(small);
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->truncated);
}

TEST(TcpListener, AcceptsAConnection) {
  Loop loop;
  int accepted = 0;
  TcpListener listener(loop.io(), [&](asio::ip::tcp::socket) {
    ++accepted;
    loop.stop();
  });
  ASSERT_TRUE(listener.listen({asio::ip::make_address("127.0.0.1"), 0}).ok());
  listener.start();
  asio::ip::tcp::socket c(loop.io());
  c.connect(listener.localEndpoint());
  loop.run();
  EXPECT_EQ(accepted, 1);
  listener.close();
}
