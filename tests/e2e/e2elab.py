"""Virtual machines booting over a private network, for the end-to-end tests and the demo.

    [netns pxde<pid>]   pxe0: a bridge, 10.219.0.1/24, where pxedust serves DHCP, TFTP and iSCSI
                          pxet<N>: one tap device per VM, enslaved to the bridge
                          QEMU runs inside the namespace, so its taps exist nowhere else

Nothing here touches the machine's own interfaces or any address outside 10.219.0.0/24; the namespace
is named after this process and removed on exit. Processes are started and stopped by PID.

pxedust is started, stopped and asked through tests/lib/pxedust_daemon.py (its state directory and
log in the lab's directory): the lab waits for daemon.json to say it serves, and tells what pxedust
saw of a host from hosts.json; its log is for people reading a failure.

Assets (cached in build/e2e/): a Debian cloud kernel, unpacked from its package with `apt-get
download` (a package, not installed on this machine), and the pxedust initramfs built for it.
QEMU uses KVM when it works and falls back to TCG: on some hosts /dev/kvm exists but guests abort or
hang on it, so KVM is probed once by booting the kernel to its first initramfs line.
"""

import ctypes
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
import pxedust_daemon  # noqa: E402
PXEDUST = os.environ.get("PXEDUST_BIN", os.path.join(TOP, "build", "release", "bin", "pxedust"))
CACHE = os.environ.get("PXEDUST_E2E_CACHE", os.path.join(TOP, "build", "e2e"))
SERVER_IP = "10.219.0.1"
PREFIX = 24
KERNEL_PACKAGE = "linux-image-cloud-amd64"  # has virtio-net, iscsi_tcp, nbd; no e1000
MARK = "pxedust-initramfs:"


def run(*cmd, check=True, **kw):
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True, **kw)


def have(*tools):
    return all(shutil.which(t) or os.path.exists(t) for t in tools)


def qemu_missing():
    """None when VMs can run here, else why not."""
    for t in ("qemu-system-x86_64",):
        if not shutil.which(t):
            return f"{t} not installed (qemu-system-x86)"
    if not os.path.exists("/usr/lib/ipxe/qemu/efi-virtio.rom"):
        return "iPXE ROMs not installed (ipxe-qemu)"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun missing: no tap devices"
    try:
        name = f"pxdeprobe{os.getpid()}"
        run("ip", "netns", "add", name)
        run("ip", "netns", "del", name)
    except (OSError, subprocess.CalledProcessError) as e:
        return f"cannot create network namespaces: {e}"
    return None


# --- assets ------------------------------------------------------------------------------------------

def kernel():
    """(vmlinuz path, kernel root dir) of the Debian cloud kernel, fetched and unpacked once."""
    root = os.path.join(CACHE, "kernel")
    found = glob.glob(os.path.join(root, "boot", "vmlinuz-*"))
    if found:
        return found[0], root
    os.makedirs(CACHE, exist_ok=True)
    dl = tempfile.mkdtemp(dir=CACHE)
    try:
        # The meta package names the versioned one: download that, unpack it, never install it.
        dep = run("apt-cache", "depends", KERNEL_PACKAGE).stdout
        m = re.search(r"Depends: (linux-image-\S+)", dep)
        if not m:
            raise RuntimeError(f"apt-cache depends {KERNEL_PACKAGE}: no linux-image dependency:\n{dep}")
        run("apt-get", "download", m.group(1), cwd=dl)
        deb = glob.glob(os.path.join(dl, "*.deb"))[0]
        tmp = root + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        run("dpkg-deb", "-x", deb, tmp)
        os.rename(tmp, root)
    finally:
        shutil.rmtree(dl, ignore_errors=True)
    return glob.glob(os.path.join(root, "boot", "vmlinuz-*"))[0], root


def initramfs(kernel_root, root=True, name=None):
    """The pxedust initramfs for the lab's kernel: with iSCSI and NBD (root=True), or the network alone."""
    out = os.path.join(CACHE, name or ("initramfs-root.img" if root else "initramfs-net.img"))
    args = [PXEDUST, "initramfs", "build", "--kernel-root", kernel_root, "-o", out]
    if not root:
        args += ["--no-iscsi", "--no-nbd"]
    run(*args)
    return out


# Bump when what `pxedust image build` puts in an image changes: the cached Debian image is rebuilt.
DEBIAN_IMAGE_REV = 2


def debian_image():
    """A Debian 12 root (systemd, openssh-server, nginx-light) made by `pxedust image build`
    (mmdebstrap), built once and cached: (ext4 image, vmlinuz, kernel root for `initramfs build`,
    SSH private key root may log in with). The kernel's modules are read out of the image with
    debugfs, so each test run builds its initramfs with the pxedust under test."""
    d = os.path.join(CACHE, f"debian-{DEBIAN_IMAGE_REV}")
    img, key = os.path.join(d, "root.img"), os.path.join(d, "id_ed25519")
    boot, kroot = os.path.join(d, "boot"), os.path.join(d, "kroot")
    if not os.path.exists(os.path.join(kroot, "done")):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pxedust-e2e", "-f", key)
        print(f"\ne2e: building a Debian image with pxedust image build (mmdebstrap) into {d}", file=sys.stderr)
        subprocess.run([PXEDUST, "image", "build", "debian", "--include", "openssh-server,nginx-light",
                        "--authorized-keys", key + ".pub", "-o", img, "--boot-dir", boot], check=True,
                       stdout=sys.stderr)
        version = re.search(r"vmlinuz-(\S+)", run("debugfs", "-R", "ls -l /boot", img).stdout).group(1)
        os.makedirs(os.path.join(kroot, "lib", "modules"))
        run("debugfs", "-R", f"rdump /lib/modules/{version} {os.path.join(kroot, 'lib', 'modules')}", img)
        open(os.path.join(kroot, "done"), "w").close()
    return img, os.path.join(boot, "vmlinuz"), kroot, key


_accel = None


def accel(vmlinuz, initrd):
    """"kvm" when a guest really runs under KVM here, else "tcg"; probed once per process."""
    global _accel
    if _accel:
        return _accel
    _accel = os.environ.get("PXEDUST_E2E_ACCEL", "")
    if _accel:
        return _accel
    _accel = "tcg"
    if os.access("/dev/kvm", os.R_OK | os.W_OK):
        with tempfile.TemporaryDirectory() as d:
            log = os.path.join(d, "serial.log")
            p = subprocess.Popen(["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-M", "pc", "-m", "256",
                                  "-display", "none", "-serial", f"file:{log}", "-no-reboot", "-nic", "none",
                                  "-kernel", vmlinuz, "-initrd", initrd,
                                  "-append", "console=ttyS0 panic=-1 pxedust.iface=none pxedust.onfail=poweroff"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            end = time.time() + 30
            while time.time() < end and p.poll() is None:
                if MARK in _read(log):
                    _accel = "kvm"
                    break
                time.sleep(0.2)
            if p.poll() is None:
                p.kill()
            p.wait()
    return _accel


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


# --- the lab -----------------------------------------------------------------------------------------

class Lab:
    def __init__(self):
        self.ns = f"pxde{os.getpid() % 100000}"
        self.dir = tempfile.mkdtemp(prefix="pxedust-e2e-")
        self.bridge = "pxe0"
        # pxedust runs inside the namespace; its state dir and log are in the lab's directory.
        self.daemon = pxedust_daemon.Daemon(PXEDUST, os.path.join(self.dir, "pxedust.toml"), self.dir,
                                            prefix=["ip", "netns", "exec", self.ns])
        self.log = self.daemon.log
        self.state_dir = self.daemon.state_dir
        self.vms = []
        self.relays = []  # forward()'s processes
        self.taps = 0
        run("ip", "netns", "add", self.ns)
        try:
            self.exec("ip", "link", "set", "lo", "up")
            self.exec("ip", "link", "add", self.bridge, "type", "bridge", "forward_delay", "0")
            self.exec("ip", "addr", "add", f"{SERVER_IP}/{PREFIX}", "dev", self.bridge)
            self.exec("ip", "link", "set", self.bridge, "up")
        except Exception:
            self.close()
            raise

    def exec(self, *cmd, check=True, **kw):
        return run("ip", "netns", "exec", self.ns, *cmd, check=check, **kw)

    def popen(self, cmd, **kw):
        return subprocess.Popen(["ip", "netns", "exec", self.ns] + cmd, **kw)

    def tap(self):
        name = f"pxet{self.taps}"
        self.taps += 1
        self.exec("ip", "tuntap", "add", "dev", name, "mode", "tap")
        self.exec("ip", "link", "set", name, "master", self.bridge)
        self.exec("ip", "link", "set", name, "up")
        return name

    # pxedust
    @property
    def server(self):
        """pxedust's Popen while it runs, else None."""
        return self.daemon.proc

    def start(self, config_text, services=("dhcp", "tftp")):
        """Starts pxedust with this config; returns its daemon.json once it serves, each of
        `services` listening somewhere."""
        with open(self.daemon.config, "w") as f:
            f.write(config_text)
        return self.daemon.start(timeout=30, services=services)

    def stop(self, sig=signal.SIGTERM):
        """Stops pxedust (SIGKILL after 30 s); its exit code, or None when it was not running."""
        return self.daemon.stop(sig, timeout=30)

    def read_log(self):
        """pxedust's log, for people: failure messages show its tail."""
        return self.daemon.log_text()

    def events(self, name, kind, **details):
        """hosts.json's events of `kind` for host `name` with these details (pxedust_daemon.Daemon)."""
        return self.daemon.events(name, kind, **details)

    def wait_event(self, name, kind, timeout=10, **details):
        return self.daemon.wait_event(name, kind, timeout, **details)

    def forward(self, port):
        """Makes the lab's SERVER_IP:`port` reachable at 127.0.0.1:<returned port> on this machine
        (its own namespace), so a browser here can open the dashboard inside the lab. A child
        process binds the loopback port first, then enters the lab's namespace: each connection it
        accepts (on this machine's loopback) is relayed to a connection it opens (in the lab).
        Stopped by close()."""
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the relay
            try:
                os.close(ready_r)
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                listener.bind(("127.0.0.1", 0))
                listener.listen(64)
                with open(f"/run/netns/{self.ns}") as netns:
                    if ctypes.CDLL(None, use_errno=True).setns(netns.fileno(), 0x40000000) != 0:  # CLONE_NEWNET
                        os._exit(1)
                os.write(ready_w, str(listener.getsockname()[1]).encode())
                os.close(ready_w)

                def pump(src, dst):
                    try:
                        while True:
                            data = src.recv(65536)
                            if not data:
                                break
                            dst.sendall(data)
                    except OSError:
                        pass
                    for s in (src, dst):
                        try:
                            s.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass

                while True:
                    client, _ = listener.accept()
                    try:
                        inside = socket.create_connection((SERVER_IP, port), timeout=10)
                        inside.settimeout(None)
                    except OSError:
                        client.close()
                        continue
                    for a, b in ((client, inside), (inside, client)):
                        threading.Thread(target=pump, args=(a, b), daemon=True).start()
            finally:
                os._exit(0)
        os.close(ready_w)
        with os.fdopen(ready_r) as f:
            text = f.read()
        self.relays.append(pid)
        if not text:
            raise RuntimeError("the relay into the lab could not start")
        return int(text)

    # VMs
    def vm(self, mac, name, firmware="bios", extra=(), memory=512):
        return VM(self, mac, name, firmware, extra, memory)

    def close(self):
        for pid in self.relays:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        self.relays = []
        for vm in self.vms:
            vm.kill()
        self.stop()
        run("ip", "netns", "del", self.ns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


class VM:
    """One diskless QEMU machine on the lab bridge: a virtio NIC with iPXE in its option ROM."""

    def __init__(self, lab, mac, name, firmware, extra, memory=512):
        self.lab, self.mac, self.name, self.firmware, self.memory = lab, mac, name, firmware, memory
        self.serial = os.path.join(lab.dir, f"{name}.serial")
        self.qmp = os.path.join(lab.dir, f"{name}.qmp")
        self.tap = lab.tap()
        self.extra = list(extra)
        self.proc = None
        self.started = None
        lab.vms.append(self)

    def start(self, accel_kind="tcg"):
        cmd = ["qemu-system-x86_64", "-M", "pc,graphics=off" if self.firmware == "bios" else "q35", "-m", str(self.memory),
               "-display", "none", "-serial", f"file:{self.serial}", "-monitor", "none", "-no-reboot",
               "-qmp", f"unix:{self.qmp},server=on,wait=off",
               "-netdev", f"tap,id=n0,ifname={self.tap},script=no,downscript=no",
               # UEFI: no iPXE option ROM, so OVMF's own network stack (EDK2 PXE) boots, as on real
               # UEFI machines; BIOS: QEMU's iPXE ROM is the PXE firmware.
               "-device", f"virtio-net-pci,netdev=n0,mac={self.mac},bootindex=1"
               + (",romfile=" if self.firmware == "uefi" else ""),
               "-boot", "order=n"]
        if accel_kind == "kvm":
            cmd += ["-accel", "kvm", "-cpu", "host"]
        else:
            cmd += ["-accel", "tcg"]
        if self.firmware == "uefi":
            vars_copy = os.path.join(self.lab.dir, f"{self.name}.vars.fd")
            shutil.copy("/usr/share/OVMF/OVMF_VARS_4M.fd", vars_copy)
            cmd += ["-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
                    "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}"]
        cmd += self.extra
        open(self.serial, "w").close()
        self.started = time.time()
        with open(self.serial + ".stderr", "w") as err:
            self.proc = self.lab.popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        return self

    def text(self):
        return _read(self.serial)

    def wait_for(self, pattern, timeout):
        """Seconds from QEMU start until `pattern` (a regex) appears on the serial console."""
        rx = re.compile(pattern)
        end = time.time() + timeout
        while time.time() < end:
            m = rx.search(self.text())
            if m:
                return time.time() - self.started, m
            if self.proc.poll() is not None:
                m = rx.search(self.text())
                if m:
                    return time.time() - self.started, m
                raise AssertionError(f"{self.name}: QEMU exited {self.proc.returncode} before /{pattern}/:\n"
                                     f"{self.text()[-3000:]}\n{_read(self.serial + '.stderr')[-1000:]}")
            time.sleep(0.2)
        raise AssertionError(f"{self.name}: no /{pattern}/ within {timeout}s; console:\n{self.text()[-3000:]}\n"
                             f"pxedust log:\n{self.lab.read_log()[-4000:]}")

    def wait_exit(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name}: still running after {timeout}s:\n{self.text()[-3000:]}")
        return self.proc.returncode

    def powerdown(self):
        """Presses the machine's power button (ACPI), as an operator would."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(self.qmp)
            f = s.makefile("rw")
            f.readline()  # the greeting
            for command in ("qmp_capabilities", "system_powerdown"):
                f.write(f'{{"execute": "{command}"}}\n')
                f.flush()
                line = f.readline()
                while '"event"' in line:
                    line = f.readline()
                if '"return"' not in line:
                    raise AssertionError(f"{self.name}: QMP {command}: {line}")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
