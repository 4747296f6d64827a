#include "imagebuild/diskless_root.hpp"

#include <fmt/format.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <system_error>

namespace pxedust::imagebuild {
namespace fs = std::filesystem;

const char* const kReportUpScript = R"SH(#!/bin/bash
# Installed by pxedust: tells pxedust this host is up (POST /boot/up from the host's own address,
# at pxedust.up=URL from the kernel command line, else port 80 of the DHCP server the pxedust
# initramfs recorded in /run/pxedust/net.env), and says so on the console.
serverid=
[ -r /run/pxedust/net.env ] && . /run/pxedust/net.env
url=
[ -n "$serverid" ] && url="http://$serverid/boot/up"
for arg in $(cat /proc/cmdline); do
  case $arg in pxedust.up=*) url=${arg#pxedust.up=} ;; esac
done
echo "pxedust-root: up host=$(hostname) failed_units=$(systemctl --failed --no-legend --plain | wc -l)"
[ -n "$url" ] || exit 0
rest=${url#http://}
hostport=${rest%%/*}
path=/${rest#*/}
[ "$rest" = "$hostport" ] && path=/
host=${hostport%%:*}
port=80
[ "$hostport" != "$host" ] && port=${hostport#*:}
timeout 10 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "POST %s HTTP/1.0\r\nHost: %s\r\nContent-Length: 0\r\n\r\n" "$2" "$3" >&3 && head -c 12 <&3 >/dev/null' \
  "$host" "$port" "$path" "$hostport" || echo "pxedust-root: could not report up to $url"
exit 0
)SH";

const char* const kReportUpUnit = R"(# Installed by pxedust image build.
[Unit]
Description=Tell pxedust this host is up
After=multi-user.target
ConditionPathExists=/run/pxedust/net.env

[Service]
Type=oneshot
ExecStart=/usr/lib/pxedust/report-up
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
)";

const char* const kSshKeysUnit = R"(# Installed by pxedust image build: the base image every host shares carries no SSH host keys.
[Unit]
Description=Generate this host's SSH host keys
Before=ssh.service
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
)";

namespace {

Result<void> writeFile(const fs::path& p, std::string_view text, fs::perms mode) {
  std::error_code ec;
  fs::create_directories(p.parent_path(), ec);
  fs::remove(p, ec);  // never write through a symlink the tree holds
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f.flush()) return Error{fmt::format("{}: cannot write", p.string())};
  f.close();
  fs::permissions(p, mode, ec);
  if (ec) return Error{fmt::format("{}: {}", p.string(), ec.message())};
  return {};
}

constexpr fs::perms kFile = fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read;
constexpr fs::perms kExec = kFile | fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec;

bool isFile(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(fs::symlink_status(p, ec));
}

// Comments out ifupdown stanzas for any interface but lo; returns the interfaces it disabled.
std::vector<std::string> disableStanzas(std::string& text) {
  static const std::regex start(R"(^\s*(auto|allow-hotplug|allow-auto|iface|mapping)\s+(.*)$)");
  std::istringstream in(text);
  std::string out, line;
  std::vector<std::string> names;
  bool inStanza = false;  // an iface/mapping block being commented out
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, start)) {
      std::string kind = m[1], rest = m[2];
      std::istringstream words(rest);
      std::string first;
      words >> first;
      bool lo = first == "lo";
      if (kind == "auto" || kind.starts_with("allow-")) {
        std::string w, kept;
        std::istringstream all(rest);
        while (all >> w) {
          if (w == "lo") kept += (kept.empty() ? "" : " ") + w;
          else names.push_back(w);
        }
        inStanza = false;
        out += kept.empty() ? "# " + line + "  # pxedust: the initramfs configured it\n" : kind + " " + kept + "\n";
        continue;
      }
      inStanza = !lo;
      if (inStanza) names.push_back(first);
      out += (inStanza ? "# " : "") + line + "\n";
      continue;
    }
    bool indented = !line.empty() && (line[0] == ' ' || line[0] == '\t');
    if (!indented && !line.empty() && line[0] != '#') inStanza = false;
    out += (inStanza && indented ? "# " : "") + line + "\n";
  }
  text = out;
  return names;
}

}  // namespace

Result<std::vector<std::string>> prepareDisklessRoot(const fs::path& root, const PrepareOptions& options) {
  std::vector<std::string> done;
  std::error_code ec;
  if (!fs::is_directory(root / "etc", ec)) return Error{fmt::format("{}: no etc/ here: not a root tree", root.string())};

  // The host name comes from DHCP: the initramfs sets it, and systemd keeps a kernel host name
  // when the root has no /etc/hostname.
  if (fs::exists(fs::symlink_status(root / "etc/hostname", ec))) {
    fs::remove(root / "etc/hostname", ec);
    done.push_back("removed /etc/hostname: each host keeps the name DHCP gave it");
  }
  // One machine-id per host: systemd makes one at the first boot on an empty /etc/machine-id.
  if (auto r = writeFile(root / "etc/machine-id", "", fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read); !r)
    return r.error();
  done.push_back("emptied /etc/machine-id: systemd makes each host its own at its first boot");
  if (isFile(root / "var/lib/dbus/machine-id")) {
    fs::remove(root / "var/lib/dbus/machine-id", ec);
    fs::create_symlink("/etc/machine-id", root / "var/lib/dbus/machine-id", ec);
    done.push_back("/var/lib/dbus/machine-id now links to /etc/machine-id");
  }
  // Nothing to mount: the initramfs mounted the root.
  if (auto r = writeFile(root / "etc/fstab", "# The root file system is mounted by the pxedust initramfs.\n", kFile); !r)
    return r.error();
  done.push_back("wrote /etc/fstab with no entries: the initramfs mounts the root");
  // DNS: what DHCP said, as the initramfs recorded it.
  auto resolv = root / "etc/resolv.conf";
  auto target = fs::is_symlink(resolv, ec) ? fs::read_symlink(resolv, ec) : fs::path();
  if (target.string().find("systemd/resolve") == std::string::npos) {
    fs::remove(resolv, ec);
    fs::create_symlink("../run/pxedust/resolv.conf", resolv, ec);
    if (ec) return Error{fmt::format("{}: {}", resolv.string(), ec.message())};
    done.push_back("/etc/resolv.conf links to /run/pxedust/resolv.conf (the name servers DHCP gave the initramfs)");
  }

  // SSH host keys: none in the shared image; each host makes its own at its first boot.
  bool sshKeys = false;
  for (const auto& e : fs::directory_iterator(root / "etc/ssh", ec)) {
    auto name = e.path().filename().string();
    if (name.starts_with("ssh_host_") && (name.ends_with("_key") || name.ends_with("_key.pub"))) {
      fs::remove(e.path(), ec);
      sshKeys = true;
    }
  }
  if (sshKeys) done.push_back("removed the SSH host keys from /etc/ssh: they would be the same on every host");
  if (fs::exists(root / "usr/sbin/sshd", ec)) {
    if (auto r = writeFile(root / "etc/systemd/system/pxedust-ssh-host-keys.service", kSshKeysUnit, kFile); !r) return r.error();
    fs::create_directories(root / "etc/systemd/system/multi-user.target.wants", ec);
    fs::remove(root / "etc/systemd/system/multi-user.target.wants/pxedust-ssh-host-keys.service", ec);
    fs::create_symlink("../pxedust-ssh-host-keys.service",
                       root / "etc/systemd/system/multi-user.target.wants/pxedust-ssh-host-keys.service", ec);
    done.push_back("added pxedust-ssh-host-keys.service: a host without SSH host keys makes them before sshd starts");
  }

  // The boot NIC is configured by the initramfs; ifupdown must leave it alone (ifdown at shutdown
  // takes the root's disk away while it is mounted).
  if (fs::exists(root / "sbin/ifup", ec) || fs::exists(root / "etc/network/interfaces", ec)) {
    std::vector<fs::path> files;
    if (isFile(root / "etc/network/interfaces")) files.push_back(root / "etc/network/interfaces");
    for (const auto& e : fs::directory_iterator(root / "etc/network/interfaces.d", ec))
      if (e.is_regular_file()) files.push_back(e.path());
    for (const auto& f : files) {
      std::ifstream in(f);
      std::stringstream ss;
      ss << in.rdbuf();
      std::string text = ss.str();
      auto names = disableStanzas(text);
      if (names.empty()) continue;
      if (auto r = writeFile(f, text, kFile); !r) return r.error();
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      done.push_back(fmt::format("commented out ifupdown's stanzas for {} in /{}: the initramfs configured the network, "
                                 "and ifdown at shutdown would take the root's disk away",
                                 list, fs::relative(f, root).string()));
    }
    if (!isFile(root / "etc/network/interfaces")) {
      if (auto r = writeFile(root / "etc/network/interfaces",
                             "# The boot interface is configured by the pxedust initramfs; only lo here.\n"
                             "auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n",
                             kFile);
          !r)
        return r.error();
      done.push_back("wrote /etc/network/interfaces with lo only");
    }
  }

  // Up: the host tells pxedust once multi-user is reached.
  if (auto r = writeFile(root / "usr/lib/pxedust/report-up", kReportUpScript, kExec); !r) return r.error();
  if (auto r = writeFile(root / "etc/systemd/system/pxedust-report-up.service", kReportUpUnit, kFile); !r) return r.error();
  fs::create_directories(root / "etc/systemd/system/multi-user.target.wants", ec);
  fs::remove(root / "etc/systemd/system/multi-user.target.wants/pxedust-report-up.service", ec);
  fs::create_symlink("../pxedust-report-up.service", root / "etc/systemd/system/multi-user.target.wants/pxedust-report-up.service", ec);
  if (ec) return Error{fmt::format("cannot enable pxedust-report-up.service: {}", ec.message())};
  done.push_back("added pxedust-report-up.service: the host tells pxedust (POST /boot/up) when multi-user is reached");

  if (fs::exists(root / "lib/systemd/systemd-logind", ec) && !fs::exists(root / "usr/bin/dbus-daemon", ec) &&
      !fs::exists(root / "usr/bin/dbus-broker", ec))
    done.push_back("warning: no D-Bus in the tree (Debian: dbus): systemd-logind will not run, and the power button "
                   "(ACPI, IPMI soft-off) will do nothing");

  if (!options.authorizedKeys.empty()) {
    std::string keys;
    for (const auto& k : options.authorizedKeys) keys += k + "\n";
    fs::create_directories(root / "root/.ssh", ec);
    fs::permissions(root / "root/.ssh", fs::perms::owner_all, ec);
    if (auto r = writeFile(root / "root/.ssh/authorized_keys", keys, fs::perms::owner_read | fs::perms::owner_write); !r)
      return r.error();
    done.push_back(fmt::format("wrote /root/.ssh/authorized_keys ({} key(s))", options.authorizedKeys.size()));
  }
  return done;
}

Result<TreeKernel> findKernel(const fs::path& root) {
  std::error_code ec;
  std::vector<TreeKernel> found;
  for (const auto& e : fs::directory_iterator(root / "boot", ec)) {
    auto name = e.path().filename().string();
    if (!name.starts_with("vmlinuz-")) continue;
    std::string version = name.substr(8);
    if (fs::is_directory(root / "lib/modules" / version, ec)) found.push_back({version, e.path()});
  }
  if (found.empty())
    return Error{fmt::format("{}: no kernel (boot/vmlinuz-VERSION with lib/modules/VERSION): include a linux-image package",
                             root.string())};
  if (found.size() > 1) return Error{fmt::format("{}: {} kernels in boot/: keep one", root.string(), found.size())};
  return found.front();
}

}  // namespace pxedust::imagebuild
