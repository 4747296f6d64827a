// `pxedust image ...` and `pxedust overlay ...`: managing base images and per-host overlays in the
// block store from the command line.
//
//   pxedust image import FILE --name NAME      import a raw image as the next version of NAME
//   pxedust image list                         every image version with size, identity, age
//   pxedust image verify NAME [--version N]    re-hash a version against its recorded SHA-256
//   pxedust overlay list                       every host overlay, its pinned base, space used
//   pxedust overlay create HOST --image NAME [--version N] [--chunk-size BYTES]
//   pxedust overlay reset HOST [--latest | --version N] [--force]
//                                              through the running daemon's API when one answers
//                                              (refused while the host has sessions, unless --force)
//   pxedust overlay delete HOST
//
// The subcommands do their work in CLI11 callbacks, during parsing: a failure prints
// "pxedust: <reason>" on stderr and ends parsing with exit status 1 (CLI::RuntimeError), so main()
// needs nothing but CLI11_PARSE. Each takes --store DIR, overriding storeDir().
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <optional>
#include <string>

namespace pxedust::cli {

// How `overlay reset` goes through a running daemon (whose disks are open): called with the host
// and the request's JSON body; nullopt when no daemon answers (the reset then runs on the store
// itself), else the line to print. It ends the command (exit status 1) when the daemon refuses.
using DaemonReset = std::function<std::optional<std::string>(const std::string& host, const std::string& body)>;

void addStorageCommands(CLI::App& app, std::function<std::string()> storeDir, DaemonReset daemonReset = {});

// "1.5 GiB", "640 KiB", "512 B".
std::string humanBytes(std::uint64_t bytes);

}  // namespace pxedust::cli
