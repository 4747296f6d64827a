// root_protocol through the daemon's whole schema: each host's root-path (DHCP option 17) is the one
// its root_protocol names, whatever order the services are listed in, and iSCSI's when it is unset.
#include <gtest/gtest.h>

#include <asio/ip/address_v4.hpp>

#include "config/config.hpp"
#include "daemon/daemon.hpp"
#include "inventory/inventory.hpp"

namespace pxedust::daemon {
namespace {

TEST(RootProtocol, EachHostGetsTheRootPathItsProtocolNames) {
  auto c = config::loadString(R"(
[iscsi]
listen = ["10.0.0.1"]
[nbd]
listen = ["10.0.0.1"]
image_exports = true
[nfs]
listen = ["10.0.0.1:2050"]

[[group]]
name = "farm"
image = "web"
root_protocol = "nfs"

[[host]]
name = "plain"
ip = "10.0.0.10"
image = "web"
[[host]]
name = "block"
ip = "10.0.0.11"
image = "web"
root_protocol = "nbd"
[[host]]
name = "ram"
ip = "10.0.0.12"
image = "web"
root_protocol = "ram"
[[host]]
name = "web1"
ip = "10.0.0.13"
group = "farm"
[[host]]
name = "web2"
ip = "10.0.0.14"
group = "farm"
root_protocol = "iscsi"
)",
                              "t.toml", standardSchema());
  auto inv = inventory::Inventory::fromConfig(c);
  const auto server = asio::ip::make_address_v4("10.0.0.1");
  auto path = [&](const char* name) { return inv->byName(name)->rootPath(server).value_or("none"); };
  EXPECT_EQ(path("plain"), "iscsi:10.0.0.1::::iqn.2026-11.org.pxedust:plain");
  EXPECT_EQ(path("block"), "nbd:10.0.0.1:10809:block");
  EXPECT_EQ(path("ram"), "ram:nbd:10.0.0.1:10809:images/web");
  // The classic NFS root form; MOUNT is on the NFS port, so no portmapper is asked.
  EXPECT_EQ(path("web1"), "10.0.0.1:/images/web,port=2050,mountport=2050");
  EXPECT_EQ(path("web2"), "iscsi:10.0.0.1::::iqn.2026-11.org.pxedust:web2");  // the host's own key wins

  // An NFS root served on every address is named by the address the client reached.
  auto any = config::loadString("[nfs]\n[[host]]\nname = \"a\"\nimage = \"web\"\nroot_protocol = \"nfs\"\n", "t.toml",
                                standardSchema());
  EXPECT_EQ(inventory::Inventory::fromConfig(any)->byName("a")->rootPath(asio::ip::make_address_v4("192.0.2.1")),
            "192.0.2.1:/images/web,port=2049,mountport=2049");
}

}  // namespace
}  // namespace pxedust::daemon
