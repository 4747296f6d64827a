// The client side of a diskless boot: an initramfs that lets a stock distribution kernel take its
// root disk from pxedust. `pxedust initramfs build` writes it.
//
// Contents: a static busybox (shell, udhcpc, insmod, switch_root), the kernel modules for the
// network, virtio, iSCSI, NBD, NFS, overlayfs and ext4 with their dependencies (from each module's .modinfo, loaded
// in dependency order), open-iscsi's iscsistart with the shared libraries it needs (DT_NEEDED,
// resolved like the dynamic loader does, plus the loader itself), pxedust-nbd-attach (nbd_attach.cpp,
// static), /dev/console, and an /init (init_script.cpp) that brings the network up by DHCP, logs in to the host's iSCSI
// target (from the iBFT iPXE publishes, or the root-path) or attaches its NBD export (root-path
// nbd:SERVER:PORT:EXPORT), mounts the root (or an NFS root, SERVER:/PATH, read-only under a RAM
// overlay) and switch_roots into it. The classic setup got there by
// patching initramfs-tools by hand.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace pxedust::initramfs {

// Modules an initramfs gets unless told otherwise; those built into the kernel are skipped.
// NFS roots: nfsv3 (with nfs, lockd, sunrpc, ... pulled in as its dependencies) and overlay.
inline const std::vector<std::string> kDefaultModules = {
    "virtio_pci", "virtio_net", "e1000", "af_packet",      "iscsi_tcp", "iscsi_ibft", "sd_mod",
    "nbd",        "ext4",       "nfsv3", "crc32c_generic", "overlay"};

struct BuildOptions {
  std::filesystem::path modulesDir;  // <root>/lib/modules/<version>, e.g. from an unpacked kernel package
  std::filesystem::path busybox = "/bin/busybox";  // must be static (Debian: busybox-static)
  std::filesystem::path iscsistart = "/sbin/iscsistart";  // empty: no iSCSI in the initramfs
  std::filesystem::path nbdAttach;  // pxedust-nbd-attach (static); empty: no NBD root in the initramfs
  std::filesystem::path libraryRoot = "/";  // where iscsistart's shared libraries are found
  std::vector<std::string> modules = kDefaultModules;
  bool gzip = true;  // every kernel since 2.6 unpacks a gzip initramfs; the cpio is mostly modules and busybox
};

struct BuildReport {
  std::string kernelVersion;
  std::vector<std::string> modules;  // loaded by /init, in this order (dependencies first)
  std::vector<std::string> builtin;  // asked for, built into the kernel
  std::vector<std::string> missing;  // asked for, neither a module nor built in
  std::vector<std::string> libraries;
  std::size_t bytes = 0;         // the image as written
  std::size_t cpioBytes = 0;     // the archive before compression
};

// The initramfs image: a newc cpio, gzip-compressed unless options.gzip is false.
Result<std::vector<std::uint8_t>> build(const BuildOptions& options, BuildReport& report);

// Finds lib/modules/<version> under `root` (an unpacked kernel package or "/"): the one version there,
// or `version` when given.
Result<std::filesystem::path> findModulesDir(const std::filesystem::path& root, const std::string& version);

extern const char* const kInitScript;
extern const char* const kUdhcpcScript;

}  // namespace pxedust::initramfs
