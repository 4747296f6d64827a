// Per-host iPXE scripts, rendered when iPXE asks for one (GET /ipxe/<mac>), so that a change to the
// config or to a template takes effect at the host's next boot with nothing to regenerate.
//
// What a host boots is said by four keys, each on [[host]], [[group]] or [http] (the host's own
// first, then its group's, then [http]'s):
//   kernel         the kernel: a file under [http] root ("vmlinuz") or a URL
//   initrd         one initrd or a list of them, the same way
//   kernel_args    the kernel's command line ("console=ttyS0 quiet")
//   ipxe_template  a file under [http] root: the whole script, written by the user
// Without a template the script is kernel + initrds + boot. Without a kernel either, it is a script
// that says on the client's console what is missing and exits (the firmware tries its next boot
// device), and the tracker marks the boot failed with that reason: never a silent boot of nothing.
//
// Templates name values as {key}: {name} {mac} {ip} {group} {image} {root_path} {kernel} {initrd}
// {kernel_args} {base_url}. {mac} is "52-54-00-12-34-56", as in per-host file names; {kernel} and
// {initrd} are URLs (a list of initrds: space-separated); {base_url} is "http://10.0.0.1/", the
// address the client reached. iPXE's own ${...} settings pass through untouched, and {{ and }} are
// literal braces. An unknown {key} fails the render with its name and offset.
//
// Pure: no files, no sockets. The service reads the template and gathers the facts.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace pxedust::http {

struct BootSettings {
  std::optional<std::string> kernel;
  std::optional<std::vector<std::string>> initrd;
  std::optional<std::string> kernelArgs;
  std::optional<std::string> ipxeTemplate;

  // Fills every unset field from `parent`.
  void inherit(const BootSettings& parent);
  [[nodiscard]] bool empty() const { return !kernel && !initrd && !kernelArgs && !ipxeTemplate; }
};

// What a script is rendered from.
struct ScriptFacts {
  std::string baseUrl;  // "http://10.0.0.1/" or "http://10.0.0.1:8080/": ends with '/'
  std::string name;     // the [[host]]'s name; empty for a client with no [[host]]
  std::string mac;      // "52-54-00-12-34-56"
  std::string ip;       // the host's configured address, else the address it asked from
  std::string group;
  std::string image;
  std::string rootPath;  // Host::rootPath(), or empty
  BootSettings boot;     // merged: host < group < [http]
};

// {key} -> value, for a template.
using Variables = std::vector<std::pair<std::string_view, std::string>>;
Variables variablesOf(const ScriptFacts& facts);

// `text` with every {key} replaced by its value in `vars`.
Result<std::string> expandTemplate(std::string_view text, const Variables& vars);

// A file name under the root becomes a URL on `baseUrl`; a URL stays as it is.
std::string urlFor(std::string_view baseUrl, std::string_view fileOrUrl);

struct Script {
  std::string text;
  std::string problem;  // non-empty: the script only explains this (no kernel, ...) and exits
};
// The built-in script (no ipxe_template).
Script defaultScript(const ScriptFacts& facts);

}  // namespace pxedust::http
