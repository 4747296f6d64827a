#include "cli/image_build.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "blockstore/store.hpp"
#include "cli/run_program.hpp"
#include "cli/storage_commands.hpp"
#include "imagebuild/diskless_root.hpp"
#include "initramfs/builder.hpp"

namespace pxedust::cli {
namespace {
namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& message) {
  fmt::print(stderr, "pxedust: {}\n", message);
  throw CLI::RuntimeError(1);
}

// "2G", "1536M", "800MiB", plain bytes; 0 on a bad size.
std::uint64_t parseSize(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  if (i == 0 || i > 12) return 0;  // beyond a petabyte in any unit: a typo, and stoull must not throw
  std::uint64_t n = std::stoull(s.substr(0, i));
  std::string unit = s.substr(i);
  if (unit.ends_with("iB")) unit.erase(unit.size() - 2);
  if (unit.ends_with("B") && unit.size() > 1) unit.pop_back();
  if (unit.empty()) return n;
  if (unit == "K" || unit == "k") return n << 10;
  if (unit == "M") return n << 20;
  if (unit == "G") return n << 30;
  if (unit == "T") return n << 40;
  return 0;
}

// Bytes the tree's files take (apparent sizes, each rounded up to 4 KiB blocks).
std::uint64_t treeBytes(const fs::path& root, std::uint64_t& files) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    ++files;
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) total += (it->file_size(ec) + 4095) / 4096 * 4096;
  }
  return total;
}

struct Common {
  std::string name;
  std::string size;        // empty: the tree's size with room to spare
  std::string bootDir;     // empty: no kernel or initramfs written
  std::string authorizedKeys;
  std::string store;
  std::string output;      // write the ext4 file here instead of importing it
  bool keepTree = false;
};

// --size in bytes (0 when not given); a size that does not parse ends the command, before any work.
std::uint64_t requestedSize(const Common& c) {
  if (c.size.empty()) return 0;
  std::uint64_t size = parseSize(c.size);
  if (size == 0) fail(fmt::format("--size {}: expected a size such as 2G or 1536M", c.size));
  return size;
}

struct Staging {
  fs::path dir;
  bool keep = false;
  ~Staging() {
    if (dir.empty() || keep) return;
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// The store to import into; null with --output, when nothing is imported.
std::shared_ptr<blockstore::Store> openStore(const Common& c, const std::function<std::string()>& storeDir) {
  if (!c.output.empty()) return nullptr;
  std::string dir = c.store;
  if (dir.empty()) {
    try {
      dir = storeDir();
    } catch (const std::exception& e) {
      fail(e.what());
    }
  }
  auto store = blockstore::Store::open(dir);
  if (!store) fail(store.error().message);
  return *store;
}

// The tree at `tree` made diskless-ready, written as ext4 and imported; its kernel and initramfs
// to --boot-dir.
void finish(const Common& c, const fs::path& tree, const fs::path& work, const std::shared_ptr<blockstore::Store>& store) {
  imagebuild::PrepareOptions po;
  if (!c.authorizedKeys.empty()) {
    std::ifstream f(c.authorizedKeys);
    if (!f) fail(fmt::format("{}: cannot read", c.authorizedKeys));
    for (std::string line; std::getline(f, line);)
      if (!line.empty() && line[0] != '#') po.authorizedKeys.push_back(line);
  }
  fmt::print("making the root ready to run diskless:\n");
  auto done = imagebuild::prepareDisklessRoot(tree, po);
  if (!done) fail(done.error().message);
  for (const auto& line : *done) fmt::print("  - {}\n", line);

  std::optional<imagebuild::TreeKernel> kernel;
  if (!c.bootDir.empty()) {
    auto k = imagebuild::findKernel(tree);
    if (!k) fail(k.error().message);
    kernel = *k;
  }

  std::uint64_t files = 0;
  const std::uint64_t used = treeBytes(tree, files);
  std::uint64_t size = 0;
  if (!c.size.empty()) {
    size = requestedSize(c);
  } else {
    size = std::max<std::uint64_t>(1ull << 30, used + used / 2 + files * 256 + (256ull << 20));
  }
  size = (size + (64ull << 20) - 1) / (64ull << 20) * (64ull << 20);
  if (size < used + files * 256) fail(fmt::format("--size {}: the tree needs more than {} MiB", c.size, (used + files * 256) >> 20));
  fs::path img = work / "root.img";
  fmt::print("writing ext4 ({} MiB for {} MiB in {} files) with mke2fs -d\n", size >> 20, used >> 20, files);
  if (runProgram({"mke2fs", "-q", "-F", "-t", "ext4", "-L", c.name.substr(0, 16), "-d", tree.string(), img.string(),
           fmt::format("{}K", size >> 10)}) != 0)
    fail("mke2fs failed; it comes with e2fsprogs");
  if (!c.output.empty()) {
    std::error_code ec;
    fs::rename(img, c.output, ec);
    if (ec) {  // another file system
      fs::copy_file(img, c.output, fs::copy_options::overwrite_existing, ec);
      if (ec) fail(fmt::format("{}: {}", c.output, ec.message()));
    }
    fmt::print("wrote {} ({}): import it with pxedust image import {} --name {}\n", c.output, humanBytes(size), c.output,
               c.name);
  } else {
    auto info = store->importImage(img, c.name);
    if (!info) fail(info.error().message);
    fmt::print("imported {} v{}: {}, sha256 {}\n", info->identity.name, info->identity.version,
               humanBytes(info->identity.size), blockstore::toHex(info->identity.sha256));
  }

  if (kernel) {
    fs::path out = c.bootDir;
    std::error_code ec;
    fs::create_directories(out, ec);
    fs::copy_file(kernel->vmlinuz, out / "vmlinuz", fs::copy_options::overwrite_existing, ec);
    if (ec) fail(fmt::format("{}: {}", (out / "vmlinuz").string(), ec.message()));
    initramfs::BuildOptions o;
    o.modulesDir = tree / "lib/modules" / kernel->version;
    std::error_code ignore;
    auto beside = fs::read_symlink("/proc/self/exe", ignore).parent_path() / "pxedust-nbd-attach";
    if (fs::exists(beside, ignore)) o.nbdAttach = beside;
    if (!fs::exists(o.iscsistart, ignore)) o.iscsistart.clear();
    initramfs::BuildReport r;
    auto bytes = initramfs::build(o, r);
    if (!bytes) fail(bytes.error().message);
    std::ofstream f(out / "initrd.img", std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes->data()), static_cast<std::streamsize>(bytes->size()));
    if (!f.flush()) fail(fmt::format("{}: cannot write", (out / "initrd.img").string()));
    fmt::print("wrote {}/vmlinuz (kernel {}) and {}/initrd.img (pxedust initramfs, {:.1f} MiB; iSCSI {}, NBD {})\n",
               out.string(), kernel->version, out.string(), static_cast<double>(r.bytes) / (1 << 20),
               o.iscsistart.empty() ? "no" : "yes", o.nbdAttach.empty() ? "no" : "yes");
  }
}

// In the store (the same file system as the images), or beside --output.
fs::path makeWork(const Common& c, const std::shared_ptr<blockstore::Store>& store, Staging& staging) {
  fs::path base = store ? store->dir() / "tmp" : fs::absolute(c.output).parent_path();
  std::error_code ec;
  fs::create_directories(base, ec);
  std::string tmpl = (base / ".pxedust-build-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) fail(fmt::format("cannot create a work directory in {}", base.string()));
  staging.dir = tmpl;
  // mmdebstrap's downloads run as _apt, which must reach the tree's apt directories.
  fs::permissions(staging.dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                   fs::perms::others_read | fs::perms::others_exec, ec);
  return staging.dir;
}

void common(CLI::App* cmd, Common& c) {
  cmd->add_option("--size", c.size, "Image size, e.g. 2G (default: the tree's size and half again, at least 1G)");
  cmd->add_option("--boot-dir", c.bootDir, "Write the tree's kernel (vmlinuz) and a pxedust initramfs (initrd.img) here");
  cmd->add_option("--authorized-keys", c.authorizedKeys, "SSH public keys for root (an authorized_keys file)");
  cmd->add_option("--store", c.store, "Block store directory (default: from the configuration)");
  cmd->add_option("-o,--output", c.output, "Write the ext4 image to this file instead of importing it");
  cmd->add_flag("--keep-tree", c.keepTree, "Keep the work directory (the tree and the ext4 file) to look at");
}

bool isDebianRelease(const std::string& suite) {
  for (const char* s : {"bullseye", "bookworm", "trixie", "forky", "stable", "oldstable", "testing"})
    if (suite == s) return true;
  return false;
}

void checkName(const std::string& name) {
  if (!blockstore::validStoreName(name))
    fail(fmt::format("invalid image name '{}': use 1-64 characters of A-Z a-z 0-9 . _ -, not starting with . or -", name));
}

void requireRoot() {
  if (::geteuid() != 0)
    fail("this needs root: the tree's files belong to many users, and mke2fs -d keeps the owners it reads");
}

}  // namespace

void addImageBuildCommands(CLI::App& image, std::function<std::string()> storeDir) {
  struct BuildArgs : Common {
    std::string suite = "bookworm";
    std::string mirror;
    std::string variant = "important";
    std::string kernelPackage = "linux-image-cloud-amd64";
    std::vector<std::string> include;
  };
  auto b = std::make_shared<BuildArgs>();
  auto* build = image.add_subcommand("build", "Build a base image from a Debian release with mmdebstrap, ready to run diskless");
  build->add_option("name", b->name, "Image name (imported as its next version)")->required();
  build->add_option("--suite", b->suite, "Debian (or Ubuntu) release")->capture_default_str();
  build->add_option("--mirror", b->mirror,
                    "Archive URL or sources line (default for Debian: deb.debian.org with -updates and -security)");
  build->add_option("--variant", b->variant, "mmdebstrap variant")->capture_default_str();
  build->add_option("--kernel-package", b->kernelPackage, "The kernel the hosts boot (its modules go in the image)")
      ->capture_default_str();
  build->add_option("--include", b->include, "More packages, e.g. openssh-server,nginx-light")->delimiter(',');
  common(build, *b);
  build->callback([b, storeDir] {
    checkName(b->name);
    requestedSize(*b);
    requireRoot();
    if (::access("/usr/bin/mmdebstrap", X_OK) != 0) fail("mmdebstrap is not installed (Debian: mmdebstrap)");
    auto store = openStore(*b, storeDir);
    Staging staging;
    staging.keep = b->keepTree;
    fs::path work = makeWork(*b, store, staging);
    fs::path tree = work / "root";
    // dbus: systemd-logind needs it, and without logind the power button (ACPI, IPMI soft-off) does nothing.
    std::string include = "systemd-sysv,dbus," + b->kernelPackage;
    for (const auto& p : b->include) include += "," + p;
    std::vector<std::string> args = {"mmdebstrap", "--mode=root", "--variant=" + b->variant, "--include=" + include,
                                     "--aptopt=Acquire::Retries \"3\"", b->suite, tree.string()};
    if (!b->mirror.empty()) {
      args.push_back(b->mirror);
    } else if (isDebianRelease(b->suite)) {
      // The release with its updates and security fixes, as Debian's installer sets it up.
      args.push_back(fmt::format("deb http://deb.debian.org/debian {} main", b->suite));
      args.push_back(fmt::format("deb http://deb.debian.org/debian {}-updates main", b->suite));
      args.push_back(fmt::format("deb http://deb.debian.org/debian-security {}-security main", b->suite));
    }
    fmt::print("building a {} root with mmdebstrap in {} (packages: {} + the {} variant)\n", b->suite, tree.string(), include,
               b->variant);
    std::fflush(stdout);
    if (int rc = runProgram(args); rc != 0) fail(fmt::format("mmdebstrap failed (exit {})", rc));
    finish(*b, tree, work, store);
    if (b->keepTree) fmt::print("kept {}\n", work.string());
  });

  auto d = std::make_shared<Common>();
  auto dir = std::make_shared<std::string>();
  auto* imp = image.add_subcommand("import-dir", "Import a root tree you built (copied first) as a base image, ready to run diskless");
  imp->add_option("dir", *dir, "The root tree")->required();
  imp->add_option("-n,--name", d->name, "Image name (imported as its next version)")->required();
  common(imp, *d);
  imp->callback([d, dir, storeDir] {
    checkName(d->name);
    requestedSize(*d);
    requireRoot();
    if (!fs::is_directory(fs::path(*dir) / "etc")) fail(fmt::format("{}: no etc/ here: not a root tree", *dir));
    auto store = openStore(*d, storeDir);
    Staging staging;
    staging.keep = d->keepTree;
    fs::path work = makeWork(*d, store, staging);
    fs::path tree = work / "root";
    fmt::print("copying {} to {}\n", *dir, tree.string());
    std::fflush(stdout);
    if (runProgram({"cp", "-a", "--reflink=auto", fs::path(*dir).string() + "/.", tree.string()}) != 0)
      fail(fmt::format("cannot copy {}", *dir));
    finish(*d, tree, work, store);
    if (d->keepTree) fmt::print("kept {}\n", work.string());
  });
}

}  // namespace pxedust::cli
