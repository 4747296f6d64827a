// `pxedust image build` and `pxedust image import-dir`: base images from a distribution.
//
//   pxedust image build NAME [--suite bookworm] [--mirror URL] [--include PKG,...] [--size SIZE]
//                            [--boot-dir DIR] [--authorized-keys FILE]
//       mmdebstrap builds a root tree (Debian's "important" packages, systemd, a kernel and the
//       packages asked for); it is made ready to run diskless (imagebuild/diskless_root.hpp), written
//       as ext4 with mke2fs -d (no loop device, no mount) and imported as the next version of NAME.
//       The tree's kernel and a pxedust initramfs built from its modules go to --boot-dir.
//   pxedust image import-dir DIR --name NAME [...]
//       The same from a root tree the user built (debootstrap, a container export): copied first,
//       so the tree itself is left as it was.
//
// Both need root: the tree's files belong to many users, and mke2fs -d keeps what it reads.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace pxedust::cli {

// Adds `build` and `import-dir` under the existing `image` subcommand; storeDir() as for `image import`.
void addImageBuildCommands(CLI::App& image, std::function<std::string()> storeDir);

}  // namespace pxedust::cli
