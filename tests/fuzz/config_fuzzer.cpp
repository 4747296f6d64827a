// libFuzzer harness for the config loader: any text goes through config::loadString(), as a file
// given to the daemon or sent by `kill -HUP` would. Bad input must end in a ConfigError that names the
// file; any other exception, a crash or undefined behaviour is a bug. The schema is the daemon's:
// every service's section and host keys (DHCP, iSCSI, TFTP). Checked on a loaded config:
//   * every host with a disk has a valid, distinct iSCSI target name (the loader promises both),
//     which is its root disk's name;
//   * each host name is set and unique.
// toml++ is the system's shared library, as in the daemon: it is not instrumented, so its own
// undefined behaviour goes unseen here. (Compiled in header-only, UBSan stops within seconds in
// toml++ 3.3.0's is_non_ascii_horizontal_whitespace(), which reaches __builtin_unreachable() for
// U+00A1-U+0499, U+2C5E-U+3057 (but U+3000) and U+FB26-U+FEFE where the parser asks for whitespace,
// e.g. the 3 bytes "\xef\xbb\x9f" (U+FEDF) at the start of a document: upstream issues #190 and
// #295, fixed after 3.3.0 by PR #305.)
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "dhcp/config.hpp"
#include "iscsi/config.hpp"
#include "tftp/config.hpp"

using namespace pxedust::config;
namespace iscsi = pxedust::iscsi;

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

const std::string kSource = "fuzz.toml";
const Schema kSchema = {pxedust::dhcp::schema(), iscsi::schema(), pxedust::tftp::schema()};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  Config c;
  try {
    c = loadString(text, kSource, kSchema);
  } catch (const ConfigError& e) {
    check(std::string_view(e.what()).starts_with(kSource));
    return 0;
  }
  std::set<std::string> names, targets;
  for (const auto& h : c.hosts) {
    check(!h.name.empty() && names.insert(h.name).second);
    const auto* target = iscsi::configIn(c);
    if (target == nullptr || !h.disk.image) continue;
    auto name = iscsi::targetName(*target, h.name, h.mac, h.group);
    check(!checkIscsiName(name) && targets.insert(name).second);
    check(!h.rootDisk || h.rootDisk->name == name);
  }
  return 0;
}
