// `pxedust initramfs build`: writes the client initramfs (src/initramfs) for a kernel.
#pragma once

#include <CLI/CLI.hpp>

namespace pxedust::cli {

void addInitramfsCommands(CLI::App& app);

}  // namespace pxedust::cli
