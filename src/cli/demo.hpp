// `pxedust demo`: a self-contained demonstration that needs no hand-written config. It writes a
// small TFTP root and a config to a temporary directory, serves them on loopback, prints commands
// to try, and removes everything when stopped.
#pragma once

#include <cstdint>
#include <string>

namespace pxedust::cli {

struct DemoOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 6969;
};

int runDemo(const DemoOptions& options);

}  // namespace pxedust::cli
