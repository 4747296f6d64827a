"""A real machine boots diskless from pxedust: QEMU with iPXE in its NIC ROM (BIOS) or OVMF (UEFI),
inside a network namespace the test creates (e2elab.py). The serial console is read for the
initramfs's progress lines; each boot prints its time from QEMU start to the marker.

Skipped, with the reason, only when QEMU cannot run here (no qemu-system-x86 / ipxe-qemu / tap /
namespaces). PXEDUST_E2E_ACCEL=kvm|tcg overrides the accelerator probe."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

import e2elab
import browser  # tests/lib, on the path e2elab set
import pxedust_state

PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboard_probe.py")
ARTIFACTS = os.environ.get("PXEDUST_ARTIFACTS", "build/artifacts")

WHY_NOT = e2elab.qemu_missing()
BOOT_TIMEOUT = int(os.environ.get("PXEDUST_E2E_TIMEOUT", "600"))  # TCG on a busy 2-core machine is slow


def setUpModule():
    global VMLINUZ, KROOT, INITRD_NET, INITRD_ROOT, ACCEL
    if WHY_NOT:
        return
    VMLINUZ, KROOT = e2elab.kernel()
    INITRD_NET = e2elab.initramfs(KROOT, root=False)
    INITRD_ROOT = e2elab.initramfs(KROOT, root=True)
    ACCEL = e2elab.accel(VMLINUZ, INITRD_NET)
    print(f"\ne2e: kernel {os.path.basename(VMLINUZ)}, accelerator {ACCEL}", file=sys.stderr)


def tftp_root(path, vmlinuz, initrd, append, macs):
    os.makedirs(os.path.join(path, "pxelinux.cfg"), exist_ok=True)
    shutil.copy("/usr/lib/PXELINUX/pxelinux.0", path)
    shutil.copy("/usr/lib/syslinux/modules/bios/ldlinux.c32", path)
    shutil.copy(vmlinuz, os.path.join(path, "vmlinuz"))
    shutil.copy(initrd, os.path.join(path, "initrd.img"))
    for mac in macs:
        with open(os.path.join(path, "pxelinux.cfg", "01-" + mac.replace(":", "-")), "w") as f:
            f.write(f"DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL vmlinuz\n  INITRD initrd.img\n"
                    f"  APPEND {append}\n")


class LabCase(unittest.TestCase):
    """A lab of its own per test (e2elab.Lab); pxedust must be running at the end and exit cleanly,
    unless the class stops it itself (and checks its exit code): then stop() finds it gone."""
    STOPS_DAEMON = False

    def setUp(self):
        self.lab = e2elab.Lab()

    def tearDown(self):
        rc = self.lab.stop()
        log = self.lab.read_log()
        self.lab.close()
        self.assertIn(rc, (0, None) if self.STOPS_DAEMON else (0,), log[-3000:])
        self.assertNotIn("ERROR: AddressSanitizer", log)

    def watched(self, host, stage, shot_name, boot):
        """Runs boot() while headless Chromium inside the lab (where the server's address is) has the
        dashboard open and watches `host`'s row until it shows `stage` (dashboard_probe.py, which
        keeps a screenshot as `shot_name` in the artefacts). Returns boot()'s result and the stages
        the row showed (None without a browser), checked to end at `stage` with no page reload."""
        probe = self.watch_dashboard(host, stage, shot_name)
        try:
            result = boot()
        except BaseException:
            if probe is not None:
                probe.kill()
                probe.wait()
            raise
        return result, (self.dashboard_seen(probe, stage) if probe is not None else None)

    def watch_dashboard(self, host, stage, shot_name):
        """The probe, once the row is on the page; None without a browser."""
        if browser.missing():
            print(f"e2e dashboard: skipped ({browser.missing()})", file=sys.stderr)
            return None
        shot = os.path.join(ARTIFACTS, shot_name)
        if os.path.exists(shot + ".ready"):
            os.unlink(shot + ".ready")
        probe = self.lab.popen([sys.executable, PROBE, f"http://{e2elab.SERVER_IP}/", host, stage, shot,
                                str(BOOT_TIMEOUT)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        probe.shot = shot
        # The row is there before the boot starts: the page has loaded and follows the stream.
        pxedust_state.wait_for("the dashboard's first look",
                               lambda: probe.poll() is not None or os.path.exists(shot + ".ready"), 90)
        return probe

    def dashboard_seen(self, probe, stage):
        """The stages the probe's row showed, checked to end at `stage` with no page reload between."""
        try:
            out, err = probe.communicate(timeout=120)
        finally:
            if probe.poll() is None:
                probe.kill()
                probe.wait()
        self.assertEqual(probe.returncode, 0, out + err[-3000:])
        seen = json.loads(out)
        self.assertFalse(seen["reloaded"])
        self.assertEqual(seen["seen"][-1], stage)
        self.assertGreaterEqual(len(seen["seen"]), 2, seen)  # it moved while the page watched
        print(f"e2e dashboard: the row showed {' -> '.join(seen['seen'])}; screenshot {probe.shot}", file=sys.stderr)
        return seen["seen"]


@unittest.skipIf(WHY_NOT, f"QEMU cannot run here: {WHY_NOT}")
@unittest.skipUnless(os.path.exists("/usr/lib/PXELINUX/pxelinux.0"), "pxelinux not installed")
class BiosPxelinux(LabCase):
    MAC = "52:54:00:e2:00:01"

    def test_ipxe_rom_dhcp_tftp_pxelinux_kernel_marker(self):
        root = os.path.join(self.lab.dir, "tftp")
        tftp_root(root, VMLINUZ, INITRD_NET,
                  "console=ttyS0 pxedust.stop=dhcp pxedust.onfail=poweroff panic=-1 edd=off quiet", [self.MAC])
        self.lab.start(f"""
[log]
level = "info"
[storage]
dir = "{self.lab.dir}/store"
[tftp]
listen = ["{e2elab.SERVER_IP}:69"]
root = "{root}"
[dhcp]
interfaces = ["{self.lab.bridge}"]
[[dhcp.subnet]]
subnet = "10.219.0.0/24"
pools = ["10.219.0.100-10.219.0.150"]
boot = {{ bios = "pxelinux.0" }}
[[host]]
name = "e2e-bios"
mac = "{self.MAC}"
ip = "10.219.0.11"
""")
        vm = self.lab.vm(self.MAC, "bios1").start(ACCEL)
        t_kernel, _ = vm.wait_for(r"pxedust-initramfs: start", BOOT_TIMEOUT)
        t_marker, m = vm.wait_for(r"pxedust-initramfs: marker host=(\S+) ip=(\S+)", 120)
        self.assertEqual(m.group(1), "e2e-bios")
        self.assertEqual(m.group(2), "10.219.0.11")
        vm.wait_exit(60)
        print(f"\ne2e bios/pxelinux ({ACCEL}): kernel+initramfs running at {t_kernel:.1f}s, "
              f"DHCP marker at {t_marker:.1f}s", file=sys.stderr)
        served = self.lab.wait_event("e2e-bios", "file.completed", requested="pxelinux.0")
        self.assertEqual(served["client"], "10.219.0.11")


@unittest.skipIf(WHY_NOT, f"QEMU cannot run here: {WHY_NOT}")
@unittest.skipUnless(os.path.exists("/usr/share/OVMF/OVMF_CODE_4M.fd"), "ovmf not installed")
@unittest.skipUnless(os.path.exists("/usr/lib/ipxe/snponly.efi"), "ipxe not installed")
class UefiIpxe(LabCase):
    """OVMF's PXE (architecture 7, TFTP with windowsize) loads iPXE, which pxedust recognises as
    iPXE and hands a script instead of iPXE again; the script boots the kernel over TFTP."""
    MAC = "52:54:00:e2:00:07"

    def test_ovmf_pxe_ipxe_script_kernel_marker(self):
        root = os.path.join(self.lab.dir, "tftp")
        os.makedirs(root)
        shutil.copy("/usr/lib/ipxe/snponly.efi", root)
        shutil.copy(VMLINUZ, os.path.join(root, "vmlinuz"))
        shutil.copy(INITRD_NET, os.path.join(root, "initrd.img"))
        with open(os.path.join(root, "boot.ipxe"), "w") as f:
            # initrd= names the image for the kernel's EFI stub, which reads it from iPXE's file system.
            f.write("#!ipxe\nkernel vmlinuz initrd=initrd.img console=ttyS0 pxedust.stop=dhcp "
                    "pxedust.onfail=poweroff panic=-1 quiet\ninitrd initrd.img\nboot\n")
        self.lab.start(f"""
[log]
level = "debug"
[storage]
dir = "{self.lab.dir}/store"
[tftp]
listen = ["{e2elab.SERVER_IP}:69"]
root = "{root}"
[dhcp]
interfaces = ["{self.lab.bridge}"]
[[dhcp.subnet]]
subnet = "10.219.0.0/24"
pools = ["10.219.0.100-10.219.0.150"]
boot = {{ uefi = "snponly.efi" }}
ipxe_script = "boot.ipxe"
[[host]]
name = "e2e-uefi"
mac = "{self.MAC}"
ip = "10.219.0.17"
""")
        vm = self.lab.vm(self.MAC, "uefi1", firmware="uefi").start(ACCEL)
        t_kernel, _ = vm.wait_for(r"pxedust-initramfs: start", BOOT_TIMEOUT)
        t_marker, m = vm.wait_for(r"pxedust-initramfs: marker host=(\S+) ip=(\S+)", 120)
        self.assertEqual(m.group(1), "e2e-uefi")
        vm.wait_exit(60)
        print(f"\ne2e uefi/ipxe ({ACCEL}): kernel+initramfs running at {t_kernel:.1f}s, "
              f"DHCP marker at {t_marker:.1f}s", file=sys.stderr)
        served = self.lab.wait_event("e2e-uefi", "file.completed", requested="snponly.efi")
        self.lab.wait_event("e2e-uefi", "file.completed", requested="boot.ipxe")
        # What EDK2 negotiated for the boot program: its event says (hosts.json), not the log.
        self.assertEqual(served["protocol"], "tftp")
        self.assertIn("blksize", served)
        self.assertIn("windowsize", served)
        print(f"e2e uefi: EDK2 fetched snponly.efi with blksize {served['blksize']}, "
              f"windowsize {served['windowsize']}", file=sys.stderr)


def http_root(path, vmlinuz, initrd, extra=()):
    os.makedirs(path, exist_ok=True)
    shutil.copy(vmlinuz, os.path.join(path, "vmlinuz"))
    shutil.copy(initrd, os.path.join(path, "initrd.img"))
    for f in extra:
        shutil.copy(f, path)


def http_config(lab, root, kernel_args, mac, name, ip, extra_dhcp=""):
    """DHCP and HTTP, no TFTP: iPXE gets its per-host script over HTTP, and the script the kernel."""
    return f"""
[log]
level = "info"
[storage]
dir = "{lab.dir}/store"
[http]
listen = ["{e2elab.SERVER_IP}:80"]
root = "{root}"
kernel = "vmlinuz"
initrd = "initrd.img"
kernel_args = "{kernel_args}"
[dhcp]
interfaces = ["{lab.bridge}"]
[[dhcp.subnet]]
subnet = "10.219.0.0/24"
pools = ["10.219.0.100-10.219.0.150"]
{extra_dhcp}
[[host]]
name = "{name}"
mac = "{mac}"
ip = "{ip}"
"""


class HttpBootCase(LabCase):
    def boot_to_marker(self, vm, name, label):
        t_kernel, _ = vm.wait_for(r"pxedust-initramfs: start", BOOT_TIMEOUT)
        t_marker, m = vm.wait_for(r"pxedust-initramfs: marker host=(\S+) ip=(\S+)", 120)
        self.assertEqual(m.group(1), name)
        vm.wait_exit(60)
        print(f"\ne2e {label} ({ACCEL}): kernel+initramfs running at {t_kernel:.1f}s, "
              f"DHCP marker at {t_marker:.1f}s", file=sys.stderr)
        mac = vm.mac.replace(":", "-")
        script = self.lab.wait_event(name, "file.completed", requested=f"ipxe/{mac}")
        kernel = self.lab.wait_event(name, "file.completed", requested="vmlinuz")
        initrd = self.lab.wait_event(name, "file.completed", requested="initrd.img")
        for e in (script, kernel, initrd):
            self.assertEqual(e["protocol"], "http")
        self.assertEqual(initrd["bytes"], os.path.getsize(os.path.join(self.lab.dir, "http", "initrd.img")))


@unittest.skipIf(WHY_NOT, f"QEMU cannot run here: {WHY_NOT}")
class BiosIpxeHttp(HttpBootCase):
    """QEMU's iPXE ROM asks DHCP; with [http] on, pxedust hands it http://server/ipxe/<mac>, whose
    script (made from [http]'s kernel, initrd and kernel_args) loads the kernel and initrd over
    HTTP. No TFTP server runs at all."""
    MAC = "52:54:00:e2:00:21"

    def test_ipxe_rom_http_script_kernel_initrd_marker(self):
        root = os.path.join(self.lab.dir, "http")
        http_root(root, VMLINUZ, INITRD_NET)
        self.lab.start(http_config(self.lab, root, "console=ttyS0 pxedust.stop=dhcp pxedust.onfail=poweroff "
                                   "panic=-1 edd=off quiet", self.MAC, "e2e-http", "10.219.0.21"),
                       services=("dhcp", "http"))
        # The dashboard watches the VM's row from before it powers on until it shows the kernel and
        # initrd served (this boot's initramfs stops at its DHCP marker: no root, no "up").
        self.watched("e2e-http", "boot_files", "dashboard-e2e.png",
                     lambda: self.boot_to_marker(self.lab.vm(self.MAC, "http1").start(ACCEL), "e2e-http",
                                                 "bios/ipxe over http"))


@unittest.skipIf(WHY_NOT, f"QEMU cannot run here: {WHY_NOT}")
@unittest.skipUnless(os.path.exists("/usr/share/OVMF/OVMF_CODE_4M.fd"), "ovmf not installed")
@unittest.skipUnless(os.path.exists("/usr/lib/ipxe/snponly.efi"), "ipxe not installed")
class UefiHttpBoot(HttpBootCase):
    """OVMF told to skip PXE (fw_cfg IPv4PXESupport=n) boots over UEFI HTTP Boot: its DHCP says
    HTTPClient, architecture 16; pxedust answers HTTPClient and the URL of the UEFI boot program
    (snponly.efi, iPXE) on its HTTP; iPXE then takes its per-host script and the kernel over HTTP."""
    MAC = "52:54:00:e2:00:22"

    def test_ovmf_http_boot_ipxe_kernel_marker(self):
        root = os.path.join(self.lab.dir, "http")
        http_root(root, VMLINUZ, INITRD_NET, ["/usr/lib/ipxe/snponly.efi"])
        # initrd= names the image for the kernel's EFI stub, which reads it from iPXE's file system.
        self.lab.start(http_config(self.lab, root, "initrd=initrd.img console=ttyS0 pxedust.stop=dhcp "
                                   "pxedust.onfail=poweroff panic=-1 quiet", self.MAC, "e2e-uefihttp",
                                   "10.219.0.22", extra_dhcp='boot = { uefi = "snponly.efi" }'),
                       services=("dhcp", "http"))
        vm = self.lab.vm(self.MAC, "uefihttp1", firmware="uefi",
                         extra=["-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n"]).start(ACCEL)
        self.boot_to_marker(vm, "e2e-uefihttp", "uefi http boot")
        program = self.lab.wait_event("e2e-uefihttp", "file.completed", requested="snponly.efi")
        self.assertEqual(program["protocol"], "http")
        discover = self.lab.events("e2e-uefihttp", "dhcp.discover")[0]
        self.assertTrue(discover["vendor_class"].startswith("HTTPClient"), discover)


class DiskRootCase(LabCase):
    """Two diskless hosts boot their root from one base image, each with its own overlay, over the
    protocol the subclass names (ROOT_PROTOCOL): the DHCP root-path says where the host's disk is; the
    initramfs attaches it and switch_roots; the root's init counts boots on its disk and tells
    pxedust it is up (POST /boot/up)."""
    STOPS_DAEMON = True
    ROOT_PROTOCOL = None
    MACS = {}
    IPS = {}

    def cli(self, *args):
        # In the lab's namespace: the CLI reaches the daemon's API at the config's address there.
        env = dict(os.environ, PXEDUST_CONFIG=self.config_path)
        r = e2elab.subprocess.run(["ip", "netns", "exec", self.lab.ns, e2elab.PXEDUST, *args], capture_output=True,
                                  text=True, env=env)
        self.assertEqual(r.returncode, 0, f"pxedust {' '.join(args)}: {r.stderr}")
        return r.stdout

    def boot(self, host, label):
        # Events are kept per host up to a cap, so this boot's are told by time, not by count.
        before = max((e["time"] for e in self.lab.events(host, "disk.login")), default="")
        vm = self.lab.vm(self.MACS[host], label).start(ACCEL)
        t, m = vm.wait_for(r"pxedust-demo: up host=(\S+) root=(\S+) boot-count=(\d+)", BOOT_TIMEOUT)
        vm.wait_exit(120)
        self.assertEqual(m.group(1), host)
        # pxedust filed this boot's disk logins under this host, with the protocol it was reached by.
        logins = pxedust_state.wait_for(f"{label}'s disk login in hosts.json",
                                        lambda: [e for e in self.lab.events(host, "disk.login") if e["time"] > before])
        self.assertEqual({e["protocol"] for e in logins}, {self.ROOT_PROTOCOL}, logins)
        # ... and its report that it is up, from its own address.
        up = pxedust_state.wait_for(f"{label}'s host.up in hosts.json",
                                    lambda: [e for e in self.lab.events(host, "host.up") if e["time"] > before])
        self.assertEqual(up[-1]["client"], self.IPS[host])
        print(f"\ne2e {self.ROOT_PROTOCOL} root {label} ({ACCEL}): {host} up at {t:.1f}s, root {m.group(2)}, "
              f"boot-count {m.group(3)}", file=sys.stderr)
        return int(m.group(3)), vm, m.group(2)

    def start_lab(self, extra_config="", host_keys="", kernel_args="", prepare_image=None, image=None,
                  vmlinuz=None, initrd=None, quiet=True):
        d = self.lab.dir
        root = os.path.join(d, "tftp")
        os.makedirs(root)
        shutil.copy(vmlinuz or VMLINUZ, os.path.join(root, "vmlinuz"))
        shutil.copy(initrd or INITRD_ROOT, os.path.join(root, "initrd.img"))
        with open(os.path.join(root, "boot.ipxe"), "w") as f:
            # edd=off: the kernel's EDD probe would make iPXE's SAN hook log in a second time.
            f.write("#!ipxe\nkernel vmlinuz console=ttyS0 edd=off panic=-1 pxedust.onfail=poweroff"
                    f"{' quiet' if quiet else ''}{kernel_args}\ninitrd initrd.img\nboot\n")
        hosts = "".join(f"""
[[host]]
name = "{h}"
mac = "{self.MACS[h]}"
ip = "{self.IPS[h]}"
image = "demo"
{host_keys}""" for h in self.MACS)
        config = f"""
[log]
level = "info"
[storage]
dir = "{d}/store"
[tftp]
listen = ["{e2elab.SERVER_IP}:69"]
root = "{root}"
[dhcp]
interfaces = ["{self.lab.bridge}"]
[[dhcp.subnet]]
subnet = "10.219.0.0/24"
ipxe_script = "boot.ipxe"
[iscsi]
listen = ["{e2elab.SERVER_IP}:3260"]
[http]
listen = ["{e2elab.SERVER_IP}:80"]
root = "{root}"
api_token = "e2e-token-of-the-lab-7c41"
{extra_config}
{hosts}"""
        self.config_path = os.path.join(d, "pxedust.toml")
        with open(self.config_path, "w") as f:
            f.write(config)
        if image:
            self.cli("image", "import", image, "--name", "demo", "--quiet")
        else:
            demo = os.path.join(d, "demo.img")
            self.cli("image", "build-demo", "-o", demo)
            if prepare_image:
                prepare_image(demo)
            self.cli("image", "import", demo, "--name", "demo", "--quiet")
        self.config_text = config
        services = (("dhcp", "tftp", "iscsi", "http") + (("nbd",) if "[nbd]" in extra_config else ())
                    + (("nfs",) if "[nfs]" in extra_config else ()))
        self.services = services
        self.lab.start(config, services=services)


@unittest.skipIf(WHY_NOT, f"QEMU cannot run here: {WHY_NOT}")
@unittest.skipUnless(os.path.exists("/sbin/iscsistart"), "open-iscsi not installed")
class IscsiRoot(DiskRootCase):
    """Over iSCSI: iPXE gets a root-path (derived from the host's disk) and a script from DHCP, hooks
    the SAN disk and writes the iBFT; the initramfs logs in from the iBFT. The dashboard watches the
    first boot's row reach "up"; a host's overlay is reset through the running daemon's API
    (`pxedust overlay reset`)."""
    ROOT_PROTOCOL = "iscsi"
    MACS = {"node-a": "52:54:00:e2:00:0a", "node-b": "52:54:00:e2:00:0b"}
    IPS = {"node-a": "10.219.0.21", "node-b": "10.219.0.22"}

    def test_two_hosts_one_base_persistent_overlays_and_reset(self):
        self.start_lab()
        (count, _, _), seen = self.watched("node-a", "up", "dashboard-e2e-up.png", lambda: self.boot("node-a", "a1"))
        self.assertEqual(count, 1)
        if seen is not None:
            self.assertIn("root_disk", seen[:-1])
        self.assertEqual(self.boot("node-a", "a2")[0], 2)  # the overlay persisted across the reboot
        self.assertEqual(self.boot("node-b", "b1")[0], 1)  # same base, its own overlay
        # The VM powered off without logging out: the target may still hold its session until its
        # NOP-In pings go unanswered, so the reset ends it (--force), through the running daemon.
        out = self.cli("overlay", "reset", "node-a", "--force")
        self.assertIn("through the daemon", out)
        self.assertEqual(self.boot("node-a", "a3")[0], 1)  # back to the base
        self.assertEqual(self.lab.stop(), 0, self.lab.read_log()[-3000:])
        self.cli("image", "verify", "demo")  # the base is byte-for-byte what was imported


@unittest.skipIf(WHY_NOT, f"QEMU cannot run here: {WHY_NOT}")
class NbdRoot(DiskRootCase):
    """Over NBD: root_protocol = "nbd" gives the hosts the root-path nbd:SERVER:10809:<name>; iPXE
    ignores it (no NBD in iPXE) and boots the script; the initramfs attaches the export with
    pxedust-nbd-attach and mounts /dev/nbd0."""
    ROOT_PROTOCOL = "nbd"
    MACS = {"nbd-a": "52:54:00:e2:01:0a", "nbd-b": "52:54:00:e2:01:0b"}
    IPS = {"nbd-a": "10.219.0.31", "nbd-b": "10.219.0.32"}
    NBD = f"""
[nbd]
listen = ["{e2elab.SERVER_IP}:10809"]
"""

    def test_two_hosts_one_base_persistent_overlays(self):
        self.start_lab(self.NBD, 'root_protocol = "nbd"\n')
        count, _, root = self.boot("nbd-a", "na1")
        self.assertEqual((count, root), (1, "/dev/nbd0"))
        self.assertEqual(self.boot("nbd-a", "na2")[0], 2)  # the overlay persisted across the reboot
        self.assertEqual(self.boot("nbd-b", "nb1")[0], 1)  # same base, its own overlay
        self.assertEqual(self.lab.stop(), 0, self.lab.read_log()[-3000:])
        self.cli("image", "verify", "demo")  # the base is byte-for-byte what was imported

    # The root's init in this test: rounds of "write a new file, fsync it, log its checksum, fsync
    # the log" on the NBD root while the test kills pxedust; then every logged file is read back
    # with the page cache dropped (so from the restarted server) and compared.
    WRITER = r"""#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -o remount,rw /
mkdir -p /data
say() { echo "pxedust-writer: $*"; }
i=0 failed=0
while [ $i -lt $ROUNDS ]; do
  i=$((i + 1))
  if dd if=/dev/urandom of=/data/f.$i bs=64k count=4 conv=fsync 2>/dev/null; then
    sum=$(md5sum < /data/f.$i)
    echo "$i ${sum%% *}" >> /data/log && sync /data/log && say "flushed round=$i" || failed=$((failed + 1))
  else
    failed=$((failed + 1))
    say "write failed round=$i"
  fi
  sleep 0.5
done
sync
echo 3 > /proc/sys/vm/drop_caches
ok=0 bad=0
while read -r n want; do
  got=$(md5sum < /data/f.$n)
  if [ "${got%% *}" = "$want" ]; then ok=$((ok + 1)); else bad=$((bad + 1)); say "mismatch round=$n"; fi
done < /data/log
say "verified ok=$ok bad=$bad failed=$failed"
mount -o remount,ro / 2>/dev/null
sync
poweroff -f
"""

    def test_kill_9_under_writes_client_reconnects_flushed_data_intact(self):
        """pxedust is killed (SIGKILL) while the host writes and fsyncs on its NBD root, and started
        again: pxedust-nbd-attach reconnects, the host goes on writing, and everything it flushed reads back
        intact from the restarted server."""
        rounds = 40

        def add_writer(image):
            script = os.path.join(self.lab.dir, "writer.sh")
            with open(script, "w") as f:
                f.write(self.WRITER.replace("$ROUNDS", str(rounds)))
            os.chmod(script, 0o755)
            subprocess.run(["debugfs", "-w", "-R", f"write {script} writer.sh", image], check=True,
                           capture_output=True)

        self.start_lab(self.NBD, 'root_protocol = "nbd"\n', kernel_args=" init=/writer.sh", prepare_image=add_writer)
        vm = self.lab.vm(self.MACS["nbd-a"], "writer").start(ACCEL)
        vm.wait_for(r"pxedust-writer: flushed round=3\b", BOOT_TIMEOUT)
        before = max((e["time"] for e in self.lab.events("nbd-a", "disk.login")), default="")
        self.assertEqual(self.lab.stop(signal.SIGKILL), -signal.SIGKILL)
        at_kill = len(vm.text())
        self.lab.start(self.config_text, services=self.services)
        t, m = vm.wait_for(r"pxedust-writer: verified ok=(\d+) bad=(\d+) failed=(\d+)", BOOT_TIMEOUT)
        vm.wait_exit(120)
        ok, bad, failed = (int(x) for x in m.groups())
        console = vm.text()
        after = console[at_kill:].count("pxedust-writer: flushed")
        print(f"\ne2e nbd kill -9 ({ACCEL}): {ok} flushed files read back intact, {bad} not; {after} flushed "
              f"after the kill; {failed} rounds failed", file=sys.stderr)
        # The host logged in again, to the restarted server.
        pxedust_state.wait_for("the reconnection's disk login",
                               lambda: [e for e in self.lab.events("nbd-a", "disk.login") if e["time"] > before])
        self.assertEqual(bad, 0, console[-3000:])
        self.assertEqual(ok + failed, rounds, console[-3000:])
        self.assertGreater(after, 3, console[-3000:])  # it went on writing after the restart


@unittest.skipIf(WHY_NOT, f"QEMU cannot run here: {WHY_NOT}")
class RamRoot(DiskRootCase):
    """root_protocol = "ram": the initramfs copies the host's base image into a tmpfs from the
    read-only image export, disconnects and runs from memory: every boot starts from the base, and
    the host has no overlay on the server."""
    ROOT_PROTOCOL = "nbd"
    MACS = {"ram-a": "52:54:00:e2:03:0a"}
    IPS = {"ram-a": "10.219.0.51"}
    NBD = f"""
[nbd]
listen = ["{e2elab.SERVER_IP}:10809"]
image_exports = true
"""

    def test_fresh_root_from_the_base_on_every_boot(self):
        self.start_lab(self.NBD, 'root_protocol = "ram"\n')
        count, vm, root = self.boot("ram-a", "ra1")
        self.assertEqual((count, root), (1, "tmpfs"))
        self.assertIn("pxedust-initramfs: ram copied", vm.text())
        self.assertEqual(self.boot("ram-a", "ra2")[0], 1)  # nothing kept: the base again
        self.assertNotIn("ram-a", self.cli("overlay", "list"))
        self.assertEqual(self.lab.stop(), 0, self.lab.read_log()[-3000:])
        self.cli("image", "verify", "demo")


@unittest.skipIf(WHY_NOT, f"QEMU cannot run here: {WHY_NOT}")
class NfsRoot(DiskRootCase):
    """root_protocol = "nfs": DHCP gives the classic root-path SERVER:/images/demo,port=..,mountport=..;
    the initramfs mounts the image read-only over NFS v3 from the guest kernel's own client, puts a
    tmpfs over it (overlayfs) and switch_roots: the host writes to RAM, every boot starts from the
    base, and nothing of the host's is kept on the server."""
    ROOT_PROTOCOL = "nfs"
    MACS = {"nfs-a": "52:54:00:e2:05:0a", "nfs-b": "52:54:00:e2:05:0b"}
    IPS = {"nfs-a": "10.219.0.71", "nfs-b": "10.219.0.72"}
    NFS = f"""
[nfs]
listen = ["{e2elab.SERVER_IP}:2049"]
"""

    def test_two_hosts_one_read_only_image_ram_overlays(self):
        self.start_lab(self.NFS, 'root_protocol = "nfs"\n')
        count, vm, root = self.boot("nfs-a", "fa1")
        self.assertEqual((count, root), (1, "overlay"))
        self.assertIn(f"pxedust-initramfs: nfs server={e2elab.SERVER_IP} path=/images/demo", vm.text())
        self.assertEqual(self.boot("nfs-a", "fa2")[0], 1)  # the writes went to RAM: the base again
        self.assertEqual(self.boot("nfs-b", "fb1")[0], 1)
        self.assertNotIn("nfs-", self.cli("overlay", "list"))
        self.assertEqual(self.lab.stop(), 0, self.lab.read_log()[-3000:])
        self.cli("image", "verify", "demo")


class DebianCase(DiskRootCase):
    """A Debian 12 image from `pxedust image build` (e2elab.debian_image), reached by ssh as root."""
    SHUTDOWN_BOUND = 60  # seconds from the request to QEMU's exit; measured 3-6 s

    def start_debian(self, extra_config="", host_keys=""):
        img, vmlinuz, kroot, self.key = e2elab.debian_image()
        initrd = e2elab.initramfs(kroot, root=True, name="initramfs-debian.img")
        self.start_lab(extra_config, host_keys, image=img, vmlinuz=vmlinuz, initrd=initrd, quiet=False)

    def check_serving(self, host):
        """It answers HTTP and SSH; returns its SSH host key."""
        page = self.lab.exec("curl", "-fsS", "--max-time", "20", f"http://{self.IPS[host]}/").stdout
        self.assertIn("nginx", page)
        scan = self.lab.exec("ssh-keyscan", "-t", "ed25519", self.IPS[host], check=False).stdout.split()
        self.assertGreaterEqual(len(scan), 3, scan)
        return scan[2]

    def ssh(self, host, command):
        return self.lab.exec("ssh", "-i", self.key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                             "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", f"root@{self.IPS[host]}", command,
                             check=False)

    def boot_debian(self, host, label, stop, while_up=None, memory=512):
        before = max((e["time"] for e in self.lab.events(host, "host.up")), default="")
        vm = self.lab.vm(self.MACS[host], label, memory=memory).start(ACCEL)
        t_up, m = vm.wait_for(r"pxedust-root: up host=(\S+) failed_units=(\d+)", BOOT_TIMEOUT)
        up = pxedust_state.wait_for(f"{label}'s host.up in hosts.json",
                                    lambda: [e for e in self.lab.events(host, "host.up") if e["time"] > before])
        self.assertEqual(up[-1]["client"], self.IPS[host])
        r = self.ssh(host, "hostname; cat /etc/machine-id; systemctl is-system-running --wait; systemctl --failed --no-legend --plain")
        self.assertEqual(r.returncode, 0, r.stderr + vm.text()[-3000:])
        lines = r.stdout.splitlines()
        name, machine_id, state, failed = lines[0], lines[1], lines[2], lines[3:]
        self.assertEqual(name, host)
        if state != "running" or failed:  # what the failed units said, for the failure message
            units = " ".join(f"-u {line.split()[0]}" for line in failed if line.split())
            r = self.ssh(host, f"journalctl --no-pager -n 60 {units}")
            self.fail(f"{host} is {state}, failed units: {failed}\n{r.stdout[-4000:]}")
        key = self.check_serving(host)
        if while_up:
            while_up(vm)
        t0 = time.time()
        if stop == "reboot":
            self.ssh(host, "systemctl reboot")
        elif stop == "poweroff":
            self.ssh(host, "systemctl poweroff")
        else:
            vm.powerdown()
        vm.wait_exit(self.SHUTDOWN_BOUND)
        t_down = time.time() - t0
        print(f"\ne2e debian {label} ({ACCEL}): {host} up at {t_up:.1f}s (multi-user, {m.group(2)} failed units), "
              f"{stop} took {t_down:.1f}s", file=sys.stderr)
        return {"machine_id": machine_id, "key": key}


@unittest.skipIf(WHY_NOT, f"QEMU cannot run here: {WHY_NOT}")
@unittest.skipUnless(os.path.exists("/usr/bin/mmdebstrap"), "mmdebstrap not installed")
@unittest.skipUnless(os.path.exists("/sbin/iscsistart"), "open-iscsi not installed")
class DebianRoot(DebianCase):
    """An unmodified Debian 12 (systemd, openssh-server, nginx-light), made into a base image by
    `pxedust image build`, boots diskless over iSCSI on two hosts: each reaches multi-user with no
    failed unit under its own host name, machine-id and SSH host key (kept across its reboots), serves
    a web page, and reboots and powers off cleanly (a reboot from inside, the power button from
    outside); the base image is unchanged."""
    ROOT_PROTOCOL = "iscsi"
    MACS = {"deb-a": "52:54:00:e2:02:0a", "deb-b": "52:54:00:e2:02:0b"}
    IPS = {"deb-a": "10.219.0.41", "deb-b": "10.219.0.42"}

    def test_two_hosts_systemd_own_identity_clean_shutdown(self):
        self.start_debian()
        a1 = self.boot_debian("deb-a", "da1", "reboot")
        a2 = self.boot_debian("deb-a", "da2", "button")
        b1 = self.boot_debian("deb-b", "db1", "poweroff")
        self.assertEqual(a1, a2)  # machine-id and SSH host key kept on the host's overlay
        self.assertNotEqual(a1["machine_id"], b1["machine_id"])
        self.assertNotEqual(a1["key"], b1["key"])
        self.assertEqual(self.lab.stop(), 0, self.lab.read_log()[-3000:])
        self.cli("image", "verify", "demo")  # the base is byte-for-byte what was imported


@unittest.skipIf(WHY_NOT, f"QEMU cannot run here: {WHY_NOT}")
@unittest.skipUnless(os.path.exists("/usr/bin/mmdebstrap"), "mmdebstrap not installed")
class DebianRamRoot(DebianCase):
    """The same Debian image with its root in RAM: up, pxedust is killed, and the host goes on
    answering HTTP and SSH for a minute, then powers off cleanly."""
    ROOT_PROTOCOL = "nbd"
    MACS = {"deb-r": "52:54:00:e2:04:0a"}
    IPS = {"deb-r": "10.219.0.61"}
    SERVING_WITHOUT_SERVER = 60  # seconds

    def test_runs_on_when_the_server_is_killed(self):
        self.start_debian(RamRoot.NBD, 'root_protocol = "ram"\n')

        def kill_server(vm):
            self.assertIn("pxedust-initramfs: ram copied", vm.text())
            self.assertEqual(self.lab.stop(signal.SIGKILL), -signal.SIGKILL)
            end = time.time() + self.SERVING_WITHOUT_SERVER
            checks = 0
            while time.time() < end:
                self.check_serving("deb-r")
                r = self.ssh("deb-r", "systemctl is-system-running")
                self.assertEqual(r.stdout.strip(), "running", r.stdout + r.stderr)
                checks += 1
                time.sleep(5)
            print(f"\ne2e debian ram: served HTTP and SSH for {self.SERVING_WITHOUT_SERVER}s with pxedust killed "
                  f"({checks} checks)", file=sys.stderr)

        # 512 MiB: the image (390 MiB) and room to run do not fit; refused on the console and to
        # pxedust (the boot's host.failed event), powered off.
        small = self.lab.vm(self.MACS["deb-r"], "dr0").start(ACCEL)
        _, m = small.wait_for(r"pxedust-initramfs: failed ram: the image needs (\d+) MiB.*", BOOT_TIMEOUT)
        small.wait_exit(120)
        failed = self.lab.wait_event("deb-r", "host.failed")
        self.assertTrue(failed.get("reason", "").startswith("ram: the image needs "), failed)
        print(f"\ne2e debian ram: refused at 512 MiB: {m.group(0)}; event reason: {failed['reason']}", file=sys.stderr)
        self.boot_debian("deb-r", "dr1", "poweroff", while_up=kill_server, memory=1536)



@unittest.skipIf(WHY_NOT, f"QEMU cannot run here: {WHY_NOT}")
@unittest.skipUnless(os.path.exists("/usr/bin/mmdebstrap"), "mmdebstrap not installed")
class DebianNfsRoot(DebianCase):
    """The same Debian image as a read-only NFS root under a RAM overlay, the classic diskless web
    farm: multi-user with no failed unit, serving; pxedust killed and started again under the running
    host, which reads on; a reboot from inside and a power-off from outside, each clean."""
    ROOT_PROTOCOL = "nfs"
    MACS = {"deb-n": "52:54:00:e2:06:0a"}
    IPS = {"deb-n": "10.219.0.81"}

    def test_systemd_on_a_read_only_nfs_root_clean_shutdown(self):
        self.start_debian(NfsRoot.NFS, 'root_protocol = "nfs"\n')

        def check_root(vm):
            r = self.ssh("deb-n", "findmnt -n -o FSTYPE /; findmnt -n -o FSTYPE,OPTIONS /run/pxedust/lower; "
                                  "echo kept > /written-here && echo written")
            self.assertEqual(r.returncode, 0, r.stderr)
            fstype, lower, written = r.stdout.splitlines()
            self.assertEqual(fstype, "overlay")
            kind, options = lower.split()
            self.assertEqual(kind, "nfs")
            self.assertIn("ro", options.split(","))
            self.assertIn("vers=3", options.split(","))
            self.assertEqual(written, "written")
            # pxedust dies and comes back: the host's handles are still good (they name the image
            # version and inode, never process memory), so it reads on from disk, caches dropped.
            self.assertEqual(self.lab.stop(signal.SIGKILL), -signal.SIGKILL)
            self.lab.start(self.config_text, services=self.services)
            r = self.ssh("deb-n", "echo 3 > /proc/sys/vm/drop_caches; cat /usr/bin/* | md5sum >/dev/null && "
                                  "ls /usr/lib/x86_64-linux-gnu | wc -l && cat /written-here")
            self.assertEqual(r.returncode, 0, r.stderr)
            files, kept = r.stdout.split()
            self.assertGreater(int(files), 100)
            self.assertEqual(kept, "kept")  # what the host wrote is still in its RAM layer

        n1 = self.boot_debian("deb-n", "dn1", "reboot", while_up=check_root)
        n2 = self.boot_debian("deb-n", "dn2", "button")
        self.assertNotEqual(n1["key"], "")
        self.assertEqual(self.lab.stop(), 0, self.lab.read_log()[-3000:])
        self.cli("image", "verify", "demo")

if __name__ == "__main__":
    unittest.main()
