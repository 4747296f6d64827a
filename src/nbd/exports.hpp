// The export registry: one NBD export per inventory host that has a disk and an address rule NBD can
// apply (nbd/config.hpp), and the host's opened disk once a client has asked for it.
//
// Access: a client may see (NBD_OPT_LIST) and open (INFO, GO, EXPORT_NAME, META_CONTEXT) an export
// only when the host model admits its address (inventory::Host::admitsAddress: in `iscsi_allow`, else
// the host's own `ip`), the same rule iSCSI applies, so host A never reaches host B's disk. LIST shows
// a client exactly what it may open, in every TLS mode.
//
// Image exports ([nbd] image_exports: "images/NAME", "images/NAME/vN", read-only) open for a client
// that may open the export of some host booting that image.
//
// TLS adds to that rule, never replaces it (ExportRegistry::permits):
//   - a client that proved a pre-shared key identity (TLS-PSK) may open host X's export only when the
//     identity is X (inventory::Host::admitsTlsIdentity) AND its address is admitted: the key says
//     who the client is, the address rule still says where it may come from, so neither a leaked key
//     used elsewhere nor a borrowed address without the key opens a disk. An identity that names no
//     host opens nothing.
//   - an X.509 session (the server's certificate only; no client certificates are asked for)
//     encrypts and authenticates the server, and the address rule alone decides, as in the clear.
//   - tls = "require": nothing is opened outside TLS (the handshake machine refuses every option
//     before STARTTLS; permits() checks it again, for sessions a reload finds).
//   - tls = "optional": a client that stays in the clear is judged by its address, as without TLS.
//
// Disks are opened lazily, through HostDisks on a worker thread (the first open creates the overlay
// on the host's image), and then shared by every connection to that host (and by iSCSI sessions of
// the same host, through HostDisks). Each opened disk carries its ExportInfo: size, transmission flags
// derived from the device's capability answers (wire::transmissionFlags), block sizes.
// A reload builds a new registry; a host whose image changed or that is gone loses its disk (the
// service closes its connections), others keep theirs.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/address.hpp>

#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

#include "blockstore/async_device.hpp"
#include "blockstore/host_disks.hpp"
#include "inventory/inventory.hpp"
#include "nbd/config.hpp"
#include "nbd/wire/handshake.hpp"

namespace pxedust::nbd {

struct Export {
  std::string name;      // as export_name made it
  inventory::Host host;  // whose disk it is; a copy, so an Export needs no inventory to outlive
  // An image export ([nbd] image_exports): the base `image`, read-only, at `version` (0: the newest
  // when opened); `host` is then the host whose address rule let this client in.
  std::optional<std::string> image;
  std::uint64_t version = 0;
};

// "images/NAME" or "images/NAME/vN" as (NAME, N; 0 for the newest); nullopt for any other name.
std::optional<std::pair<std::string, std::uint64_t>> parseImageExport(std::string_view name);
// Who is asking: the connection's peer address and what TLS proved about it.
struct Client {
  asio::ip::address address;
  bool tls = false;                        // TLS runs on the connection
  std::optional<std::string> pskIdentity;  // the TLS-PSK identity it proved; nullopt: none (X.509 or clear)
};

class ExportRegistry {
 public:
  ExportRegistry(const Config& config, std::shared_ptr<const inventory::Inventory> hosts);

  [[nodiscard]] const Export* find(std::string_view name) const;
  // An image export by name for `client`: found when image exports are on and the client may open
  // the export of a host that boots that image (permits(), TLS rules included); `refused` says
  // whether the name is an image export this client may not open (as opposed to no such export).
  [[nodiscard]] std::optional<Export> findImage(std::string_view name, const Client& client, bool& refused) const;
  // The images `client` may open (their "images/NAME" names).
  [[nodiscard]] std::vector<std::string> imagesFor(const Client& client) const;
  [[nodiscard]] const std::map<std::string, Export, std::less<>>& exports() const { return exports_; }
  // The rule above, under this registry's [nbd] tls settings: the address, the PSK identity when
  // there is one (and it must still be in the configured PSK file), and TLS when it is required.
  [[nodiscard]] bool permits(const Export& e, const Client& client) const;
  // Why not, for the log ("" when permitted).
  [[nodiscard]] std::string_view refusal(const Export& e, const Client& client) const;
  [[nodiscard]] const Config& config() const { return config_; }

 private:
  Config config_;
  std::map<std::string, Export, std::less<>> exports_;
  std::shared_ptr<const inventory::Inventory> hosts_;
};

// The most a READ or WRITE moves in one request: the spec's default maximum payload (32 MiB), which
// every client assumes without NBD_INFO_BLOCK_SIZE; requests are refused above it, never allocated.
inline constexpr std::uint32_t kMaxPayload = wire::kDefaultMaxPayload;

// What NBD says about a device: the capability answers mapped onto the wire's (habit 9), and the
// export's size, flags and block sizes. WRITE_ZEROES is always offered (NO_HOLE, or a device without
// efficient zeroing, writes zeros); FAST_ZERO only when the device zeroes without writing;
// CAN_MULTI_CONN because every connection to a host shares its one open device, whose flush covers
// every completed write; the minimum block size is 1 (the device is byte-addressed) and the preferred
// one the device's write granularity (no read-modify-write below it).
wire::DeviceCapabilities deviceCapabilities(const blockstore::Capabilities& caps);
wire::ExportInfo exportInfo(const blockstore::BlockDevice& device, std::string name, std::string description);

// One opened disk per host, shared by its connections; or one opened base image version (`host`
// empty), shared by every connection to it while any holds it.
struct OpenDisk {
  std::string host;
  std::string image;
  std::uint64_t version = 0;  // an image export's
  std::shared_ptr<blockstore::AsyncBlockDevice> device;
  blockstore::Capabilities caps;
  wire::ExportInfo info;  // name and description are the export's, set per lookup
};

class DiskCache {
 public:
  DiskCache(std::shared_ptr<blockstore::HostDisks> disks, blockstore::WorkerPool& pool, asio::any_io_executor ex)
      : disks_(std::move(disks)), pool_(pool), executor_(std::move(ex)) {}

  // The disk of `e`'s host when it is open now (on the image the config names), else null.
  [[nodiscard]] std::shared_ptr<OpenDisk> find(const Export& e) const;
  // Opens (or returns) it. On the loop; the file work runs on the pool.
  asio::awaitable<Result<std::shared_ptr<OpenDisk>>> open(const Export& e);
  // Forgets disks whose host is gone or whose image changed; returns the hosts it forgot.
  std::vector<std::string> retain(const ExportRegistry& registry);
  // Opens (or returns) the image export's base version, read-only; on the loop, the files on the pool.
  asio::awaitable<Result<std::shared_ptr<OpenDisk>>> openImage(const Export& e);
  // Forgets `host`'s disk (its overlay is about to be reset); connections still holding it keep it.
  void forget(std::string_view host);
  [[nodiscard]] std::size_t size() const { return disks_by_host_.size(); }

 private:
  std::shared_ptr<blockstore::HostDisks> disks_;
  blockstore::WorkerPool& pool_;
  asio::any_io_executor executor_;
  std::map<std::string, std::shared_ptr<OpenDisk>, std::less<>> disks_by_host_;
  std::map<std::pair<std::string, std::uint64_t>, std::weak_ptr<OpenDisk>> images_;
};

}  // namespace pxedust::nbd
