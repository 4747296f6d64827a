// `pxedust image ...` and `pxedust overlay ...`: managing base images and per-host overlays in the
// block store from the command line.
//
//   pxedust image import FILE --name NAME      import a raw image as the next version of NAME
//   pxedust image list                         every image version with size, identity, age
//   pxedust image verify NAME [--version N]    re-hash a version against its recorded SHA-256
//   pxedust overlay list                       every host overlay, its pinned base, space used
//   pxedust overlay create HOST --image NAME [--version N] [--chunk-size BYTES]
//   pxedust overlay reset HOST [--latest | --version N]
//   pxedust overlay delete HOST
//
// The subcommands do their work in CLI11 callbacks, during parsing: a failure prints
// "pxedust: <reason>" on stderr and ends parsing with exit status 1 (CLI::RuntimeError), so main()
// needs nothing but CLI11_PARSE. Each takes --store DIR, overriding storeDir().
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace pxedust::cli {

void addStorageCommands(CLI::App& app, std::function<std::string()> storeDir);

// "1.5 GiB", "640 KiB", "512 B".
std::string humanBytes(std::uint64_t bytes);

}  // namespace pxedust::cli
