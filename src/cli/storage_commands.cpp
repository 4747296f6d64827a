#include "cli/storage_commands.hpp"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <memory>

#include <fmt/format.h>

#include "blockstore/store.hpp"

namespace pxedust::cli {
namespace bs = pxedust::blockstore;
namespace {

struct Shared {
  std::function<std::string()> storeDir;
  std::string storeOverride;
  DaemonReset daemonReset;
};

[[noreturn]] void fail(const std::string& message) {
  fmt::print(stderr, "pxedust: {}\n", message);
  throw CLI::RuntimeError(1);
}

std::shared_ptr<bs::Store> openStore(const Shared& s) {
  std::string dir = s.storeOverride;
  if (dir.empty()) {
    try {
      dir = s.storeDir();
    } catch (const std::exception& e) {  // e.g. the configuration it comes from does not parse
      fail(e.what());
    }
  }
  if (dir.empty()) fail("no block store directory: give --store DIR");
  auto store = bs::Store::open(dir);
  if (!store) fail(store.error().message);
  return *store;
}

std::string age(std::int64_t when) {
  auto t = static_cast<std::time_t>(when);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

// A one-line progress bar on a terminal, for images of 64 MiB and more.
class Progress {
 public:
  Progress(std::string name, bool enabled) : name_(std::move(name)), enabled_(enabled), start_(clock::now()) {}
  void operator()(std::uint64_t done, std::uint64_t total) {
    if (!enabled_ || total < (64ULL << 20)) return;
    const double secs = std::chrono::duration<double>(clock::now() - start_).count();
    const int width = 30;
    const int filled = static_cast<int>(static_cast<double>(done) / static_cast<double>(total) * width);
    fmt::print(stderr, "\rimporting {} [{}{}] {:3.0f}% {} / {}  {:.0f} MB/s ", name_, std::string(filled, '#'),
               std::string(width - filled, ' '), 100.0 * static_cast<double>(done) / static_cast<double>(total),
               humanBytes(done), humanBytes(total), secs > 0 ? static_cast<double>(done) / secs / 1e6 : 0.0);
    if (done == total) fmt::print(stderr, "\n");
  }

 private:
  using clock = std::chrono::steady_clock;
  std::string name_;
  bool enabled_;
  clock::time_point start_;
};

void storeOption(CLI::App* leaf, const std::shared_ptr<Shared>& shared) {
  leaf->add_option("--store", shared->storeOverride, "Block store directory (default: from the configuration)");
}

void addImageCommands(CLI::App& app, const std::shared_ptr<Shared>& shared) {
  auto* image = app.add_subcommand("image", "Manage base images in the block store");
  image->require_subcommand(1);

  auto* imp = image->add_subcommand("import", "Import a raw disk image as the next version of NAME");
  storeOption(imp, shared);
  auto file = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  auto quiet = std::make_shared<bool>(false);
  imp->add_option("file", *file, "Raw image file (size a multiple of 512 bytes)")->required();
  imp->add_option("-n,--name", *name, "Image name: 1-64 of A-Z a-z 0-9 . _ -")->required();
  imp->add_flag("-q,--quiet", *quiet, "No progress bar");
  imp->callback([=] {
    auto store = openStore(*shared);
    Progress progress(*name, !*quiet && ::isatty(STDERR_FILENO));
    auto info = store->importImage(*file, *name, std::ref(progress));
    if (!info) fail(info.error().message);
    fmt::print("imported {} v{}: {} ({} on disk), sha256 {}, uuid {}\n", info->identity.name, info->identity.version,
               humanBytes(info->identity.size), humanBytes(info->allocatedBytes), bs::toHex(info->identity.sha256),
               bs::uuidToString(info->identity.uuid));
  });

  auto* list = image->add_subcommand("list", "List images and their versions");
  storeOption(list, shared);
  list->callback([=] {
    auto store = openStore(*shared);
    auto images = store->listImages();
    if (!images) fail(images.error().message);
    if (images->empty()) {
      fmt::print("no images in {}\n", store->dir().string());
      return;
    }
    fmt::print("{:<24} {:>7} {:>10} {:>10}  {:<16}  {:<16}  {}\n", "NAME", "VERSION", "SIZE", "ON DISK", "IMPORTED (UTC)",
               "SHA256", "UUID");
    for (const auto& i : *images) {
      fmt::print("{:<24} {:>7} {:>10} {:>10}  {:<16}  {:<16}  {}\n", i.identity.name, i.identity.version,
                 humanBytes(i.identity.size), humanBytes(i.allocatedBytes), age(i.importedAt),
                 bs::toHex(i.identity.sha256).substr(0, 16), bs::uuidToString(i.identity.uuid));
    }
  });

  auto* verify = image->add_subcommand("verify", "Re-hash an image version and compare with its recorded SHA-256");
  storeOption(verify, shared);
  auto vname = std::make_shared<std::string>();
  auto vversion = std::make_shared<std::uint64_t>(0);
  verify->add_option("name", *vname, "Image name")->required();
  verify->add_option("--version", *vversion, "Version (default: the latest)");
  verify->callback([=] {
    auto store = openStore(*shared);
    auto info = store->imageInfo(*vname, *vversion);
    if (!info) fail(info.error().message);
    if (auto r = store->verifyImage(*vname, info->identity.version); !r) fail(r.error().message);
    fmt::print("{} v{}: ok\n", info->identity.name, info->identity.version);
  });
}

void addOverlayCommands(CLI::App& app, const std::shared_ptr<Shared>& shared) {
  auto* overlay = app.add_subcommand("overlay", "Manage per-host copy-on-write overlays");
  overlay->require_subcommand(1);

  auto* list = overlay->add_subcommand("list", "List host overlays, their base version and space used");
  storeOption(list, shared);
  list->callback([=] {
    auto store = openStore(*shared);
    auto overlays = store->listOverlays();
    if (!overlays) fail(overlays.error().message);
    if (overlays->empty()) {
      fmt::print("no overlays in {}\n", store->dir().string());
      return;
    }
    fmt::print("{:<24} {:<24} {:>7} {:>8} {:>10}  {}\n", "HOST", "IMAGE", "VERSION", "CHUNK", "ON DISK", "NOTE");
    for (const auto& o : *overlays) {
      std::string note;
      if (!o.latestVersion) {
        note = "base image missing";
      } else if (*o.latestVersion > o.base.version) {
        note = fmt::format("v{} available (overlay reset {} --latest)", *o.latestVersion, o.host);
      }
      fmt::print("{:<24} {:<24} {:>7} {:>8} {:>10}  {}\n", o.host, o.base.name, o.base.version, humanBytes(o.chunkSize),
                 humanBytes(o.allocatedBytes), note);
    }
  });

  auto* create = overlay->add_subcommand("create", "Create an empty overlay for a host over an image");
  storeOption(create, shared);
  auto chost = std::make_shared<std::string>();
  auto cimage = std::make_shared<std::string>();
  auto copts = std::make_shared<bs::CreateOverlayOptions>();
  create->add_option("host", *chost, "Host name")->required();
  create->add_option("-i,--image", *cimage, "Image name")->required();
  create->add_option("--version", copts->version, "Image version (default: the latest)");
  create->add_option("--chunk-size", copts->chunkSize, "Copy-on-write chunk size in bytes, 4096 .. 1048576")
      ->capture_default_str();
  create->callback([=] {
    auto store = openStore(*shared);
    auto info = store->createOverlay(*chost, *cimage, *copts);
    if (!info) fail(info.error().message);
    fmt::print("created overlay {} on {} v{}\n", info->host, info->base.name, info->base.version);
  });

  auto* reset = overlay->add_subcommand("reset", "Discard a host's changes: back to its base, or onto a newer version");
  storeOption(reset, shared);
  auto rhost = std::make_shared<std::string>();
  auto ropts = std::make_shared<bs::ResetOptions>();
  auto rversion = std::make_shared<std::uint64_t>(0);
  reset->add_option("host", *rhost, "Host name")->required();
  auto* latest = reset->add_flag("--latest", ropts->latest, "Move onto the newest version of the image");
  reset->add_option("--version", *rversion, "Move onto this version of the image")->excludes(latest);
  auto rforce = std::make_shared<bool>(false);
  reset->add_flag("--force", *rforce, "End the host's sessions on its disk first (through the running daemon)");
  reset->callback([=] {
    bs::ResetOptions o = *ropts;
    if (*rversion != 0) o.version = *rversion;
    // A running daemon may have the disk open: it resets it (and says why not) when it answers.
    if (shared->storeOverride.empty() && shared->daemonReset) {
      std::string body = fmt::format("{{\"latest\": {}, \"force\": {}", o.latest, *rforce);
      if (o.version) body += fmt::format(", \"version\": {}", *o.version);
      body += "}";
      if (auto said = shared->daemonReset(*rhost, body)) {
        fmt::print("{}\n", *said);
        return;
      }
    }
    if (*rforce) fail("--force needs a running daemon to end the sessions, and none answers");
    auto store = openStore(*shared);
    auto info = store->resetOverlay(*rhost, o);
    if (!info) fail(info.error().message);
    fmt::print("reset overlay {}: now an empty overlay on {} v{}\n", info->host, info->base.name, info->base.version);
  });

  auto* del = overlay->add_subcommand("delete", "Delete a host's overlay and everything written to it");
  storeOption(del, shared);
  auto dhost = std::make_shared<std::string>();
  del->add_option("host", *dhost, "Host name")->required();
  del->callback([=] {
    auto store = openStore(*shared);
    if (auto r = store->deleteOverlay(*dhost); !r) fail(r.error().message);
    fmt::print("deleted overlay {}\n", *dhost);
  });
}

}  // namespace

std::string humanBytes(std::uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return fmt::format("{} B", bytes);
  return fmt::format("{:.{}f} {}", v, v < 10 ? 1 : 0, kUnits[u]);
}

void addStorageCommands(CLI::App& app, std::function<std::string()> storeDir, DaemonReset daemonReset) {
  auto shared = std::make_shared<Shared>();
  shared->storeDir = std::move(storeDir);
  shared->daemonReset = std::move(daemonReset);
  addImageCommands(app, shared);
  addOverlayCommands(app, shared);
}

}  // namespace pxedust::cli
