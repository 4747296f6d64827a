#include "http/ipxe.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace pxedust::http {

void BootSettings::inherit(const BootSettings& parent) {
  if (!kernel) kernel = parent.kernel;
  if (!initrd) initrd = parent.initrd;
  if (!kernelArgs) kernelArgs = parent.kernelArgs;
  if (!ipxeTemplate) ipxeTemplate = parent.ipxeTemplate;
}

std::string urlFor(std::string_view baseUrl, std::string_view fileOrUrl) {
  if (fileOrUrl.find("://") != std::string_view::npos) return std::string(fileOrUrl);
  while (fileOrUrl.starts_with('/')) fileOrUrl.remove_prefix(1);
  return fmt::format("{}{}", baseUrl, fileOrUrl);
}

namespace {

std::vector<std::string> initrdUrls(const ScriptFacts& f) {
  std::vector<std::string> urls;
  if (f.boot.initrd)
    for (const auto& i : *f.boot.initrd) urls.push_back(urlFor(f.baseUrl, i));
  return urls;
}

std::string who(const ScriptFacts& f) {
  return f.name.empty() ? fmt::format("client {}", f.mac) : fmt::format("host {} ({})", f.name, f.mac);
}

}  // namespace

Variables variablesOf(const ScriptFacts& f) {
  return {
      {"name", f.name},
      {"mac", f.mac},
      {"ip", f.ip},
      {"group", f.group},
      {"image", f.image},
      {"root_path", f.rootPath},
      {"kernel", f.boot.kernel ? urlFor(f.baseUrl, *f.boot.kernel) : std::string()},
      {"initrd", fmt::format("{}", fmt::join(initrdUrls(f), " "))},
      {"kernel_args", f.boot.kernelArgs.value_or("")},
      {"base_url", f.baseUrl},
  };
}

Result<std::string> expandTemplate(std::string_view text, const Variables& vars) {
  std::string out;
  out.reserve(text.size() + 256);
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {  // {{ and }}
      out += c;
      ++i;
      continue;
    }
    if (c != '{' || (i > 0 && text[i - 1] == '$')) {  // ${...} is iPXE's
      out += c;
      continue;
    }
    const auto close = text.find('}', i + 1);
    if (close == std::string_view::npos)
      return Error{fmt::format("a '{{' at offset {} has no '}}' (write {{{{ for a brace)", i)};
    const auto key = text.substr(i + 1, close - i - 1);
    const auto var = std::find_if(vars.begin(), vars.end(), [&](const auto& v) { return v.first == key; });
    if (var == vars.end()) {
      std::string known;
      for (const auto& v : vars) known += fmt::format("{}{{{}}}", known.empty() ? "" : " ", v.first);
      return Error{fmt::format("unknown {{{}}} at offset {}; known: {}", key.substr(0, 64), i, known)};
    }
    out += var->second;
    i = close;
  }
  return out;
}

Script defaultScript(const ScriptFacts& f) {
  Script s;
  s.text = fmt::format("#!ipxe\n# pxedust: {}{}{}\n", who(f), f.ip.empty() ? "" : ", " + f.ip,
                       f.image.empty() ? "" : ", image " + f.image);
  if (!f.boot.kernel) {
    s.problem = "no kernel: set kernel (and initrd) or ipxe_template on the [[host]], its [[group]] or [http]";
    s.text += fmt::format("echo pxedust: {}: {}\nsleep 10\nexit 1\n", who(f), s.problem);
    return s;
  }
  s.text += fmt::format("kernel {}", urlFor(f.baseUrl, *f.boot.kernel));
  if (f.boot.kernelArgs && !f.boot.kernelArgs->empty()) s.text += " " + *f.boot.kernelArgs;
  s.text += '\n';
  for (const auto& url : initrdUrls(f)) s.text += fmt::format("initrd {}\n", url);
  s.text += "boot\n";
  return s;
}

}  // namespace pxedust::http
