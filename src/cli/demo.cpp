#include "cli/demo.hpp"

#include <unistd.h>

#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <random>

#include "config/config.hpp"
#include "daemon/daemon.hpp"

namespace pxedust::cli {
namespace fs = std::filesystem;

namespace {
void writeFile(const fs::path& p, std::string_view content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}
}  // namespace

int runDemo(const DemoOptions& options) {
  std::string tmpl = (fs::temp_directory_path() / "pxedust-demo-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    fmt::print(stderr, "pxedust demo: cannot create a temporary directory: {}\n", std::strerror(errno));
    return 1;
  }
  fs::path dir(tmpl);
  fs::path root = dir / "tftp";
  writeFile(root / "hello.txt", "Hello from pxedust: this file came over TFTP.\n");
  writeFile(root / "boot.cfg", "# the shared boot config, for hosts pxedust does not know\nDEFAULT local\n");
  writeFile(root / "hosts/alpha/boot.cfg", "# alpha's own boot config (per-host rule, chosen by its IP 127.0.0.2)\n"
                                           "DEFAULT linux\nAPPEND root=iscsi:alpha\n");
  writeFile(root / "hosts/beta/boot.cfg", "# beta's own boot config (per-host rule, chosen by its IP 127.0.0.3)\n"
                                          "DEFAULT linux\nAPPEND root=iscsi:beta\n");
  {
    std::string blob(8 << 20, '\0');
    std::mt19937_64 rng(42);
    for (std::size_t i = 0; i + 8 <= blob.size(); i += 8) {
      auto v = rng();
      std::memcpy(&blob[i], &v, 8);
    }
    writeFile(root / "kernel.img", blob);
  }
  std::string listen = options.address.find(':') != std::string::npos
                           ? fmt::format("[{}]:{}", options.address, options.port)
                           : fmt::format("{}:{}", options.address, options.port);
  std::string toml = fmt::format(R"(# pxedust demo configuration (written by `pxedust demo`)
[log]
level = "info"

[daemon]
shutdown_grace = 2
state_dir = "{}"

[tftp]
listen = ["{}"]
root = "{}"
per_host = [ {{ request = "boot.cfg", file = "hosts/{{name}}/boot.cfg" }} ]

[[group]]
name = "demo"

[[host]]
name = "alpha"
mac = "52:54:00:00:00:0a"
ip = "127.0.0.2"
group = "demo"

[[host]]
name = "beta"
mac = "52:54:00:00:00:0b"
ip = "127.0.0.3"
group = "demo"
)",
                                 (dir / "state").string(), listen, root.string());
  writeFile(dir / "pxedust.toml", toml);

  int rc = 0;
  try {
    auto cfg = daemon::loadConfig((dir / "pxedust.toml").string());
    std::string url = fmt::format("tftp://{}", listen);
    fmt::print(stderr,
               "\n"
               "  pxedust demo: a TFTP server on {listen}, serving {root}\n"
               "  config: {dir}/pxedust.toml    stop with Ctrl-C (everything it wrote is removed)\n"
               "\n"
               "  Try, from another terminal:\n"
               "    curl -s {url}/hello.txt\n"
               "    curl -s --interface 127.0.0.2 {url}/boot.cfg     # host alpha gets its own file\n"
               "    curl -s --interface 127.0.0.3 {url}/boot.cfg     # host beta gets its own\n"
               "    curl -s {url}/boot.cfg                           # anyone else: the shared one\n"
               "    curl -s --tftp-blksize 1468 {url}/kernel.img | sha256sum\n"
               "    sha256sum {root}/kernel.img\n"
               "    curl -s {url}/../../etc/passwd                   # refused: nothing escapes the root\n"
               "\n",
               fmt::arg("listen", listen), fmt::arg("root", root.string()), fmt::arg("dir", dir.string()),
               fmt::arg("url", url));
    daemon::Daemon d((dir / "pxedust.toml").string(), std::move(cfg));
    rc = d.run();
  } catch (const config::ConfigError& e) {
    fmt::print(stderr, "pxedust demo: {}\n", e.what());
    rc = 1;
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return rc;
}

}  // namespace pxedust::cli
