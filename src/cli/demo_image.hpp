// `pxedust image build-demo`: a small bootable root filesystem for the tests and the demo.
//
// An ext4 image (made with mke2fs -d, so no loop device or root mount is needed) holding a static
// busybox userland and an /sbin/init that says where it is on the console, counts its boots in
// /var/lib/pxedust-demo/boot-count on the root filesystem (synced: the count must survive the
// power-off), and powers off; `pxedust.demo=stay` on the kernel command line gives a shell instead.
#pragma once

#include <CLI/CLI.hpp>

namespace pxedust::cli {

// Adds `build-demo` under the existing `image` subcommand.
void addDemoImageCommand(CLI::App& image);

}  // namespace pxedust::cli
