// What a distribution's root tree needs before it can run diskless from pxedust, applied to an
// unpacked tree (mmdebstrap's, or one the user built) before it becomes an ext4 base image. Every
// host boots the same base, so nothing in it may be one host's: the host name, the machine-id and
// the SSH host keys are left for each host to get at boot. The network is already up when the root
// starts (the initramfs brought it up by DHCP to reach its disk), so the image must not bring it
// down or up again: an ifupdown stanza for the boot NIC takes the root's disk away at shutdown.
//
// Each change is reported as one line for people (`pxedust image build` prints them), so a user
// sees what was done to their tree.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace pxedust::imagebuild {

struct PrepareOptions {
  // Lines for /root/.ssh/authorized_keys (empty: the file is left as it is).
  std::vector<std::string> authorizedKeys;
};

// Changes the tree at `root` in place; returns what it did, one line per change.
Result<std::vector<std::string>> prepareDisklessRoot(const std::filesystem::path& root, const PrepareOptions& options);

// The kernel the tree carries: its /boot/vmlinuz-VERSION whose modules are under lib/modules/VERSION.
struct TreeKernel {
  std::string version;
  std::filesystem::path vmlinuz;
};
Result<TreeKernel> findKernel(const std::filesystem::path& root);

// The files prepareDisklessRoot() writes, for tests and the README.
extern const char* const kReportUpScript;  // /usr/lib/pxedust/report-up
extern const char* const kReportUpUnit;    // /etc/systemd/system/pxedust-report-up.service
extern const char* const kSshKeysUnit;     // /etc/systemd/system/pxedust-ssh-host-keys.service

}  // namespace pxedust::imagebuild
