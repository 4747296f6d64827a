#!/usr/bin/env python3
"""pxedust's demo: two diskless machines boot their root disk from ONE base image, live.

Creates a private network (a network namespace with a bridge; nothing outside it is touched),
builds the demo base image and the client initramfs, starts pxedust inside the lab (DHCP, TFTP,
iSCSI, HTTP), and boots two QEMU machines that have no disk. Each host's progress is shown as it
happens, as pxedust's API tells it: DHCP -> boot script -> iSCSI disk (iPXE logs in and hooks it) ->
kernel -> root mounted (the initramfs logs in) -> up (the host's own console says so). The live
dashboard is reachable from this machine through a loopback port relayed into the lab. Then a
summary from the API: boot times, the shared base image and what each host's copy-on-write overlay
costs on top of it. Everything it made is removed on exit or Ctrl-C.

Run it through scripts/demo.sh (which installs packages and builds first); needs root.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "e2e"))
import e2elab  # noqa: E402  (the lab the end-to-end tests use)

HOSTS = [("demo-1", "52:54:00:d0:00:01", "10.219.0.31"), ("demo-2", "52:54:00:d0:00:02", "10.219.0.32")]
# In the order a host reaches them: iPXE logs in to its iSCSI disk (and hooks it, writing the iBFT)
# right after DHCP and its script, before it loads the kernel.
STAGES = ["power on", "DHCP", "boot script", "iSCSI disk", "kernel", "root mounted", "up"]
SHORT = {"DHCP": "DHCP", "boot script": "script", "iSCSI disk": "iSCSI", "kernel": "kernel",
         "root mounted": "root", "up": "up"}
TTY = sys.stdout.isatty()
BOLD, DIM, GREEN, RED, RESET = ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m") if TTY else ("",) * 5


def say(text):
    print(f"{BOLD}pxedust demo{RESET} {text}", flush=True)


def step(text, fn):
    print(f"  {text} ...", end="", flush=True)
    t = time.time()
    out = fn()
    shown = f": {out}" if isinstance(out, str) and len(out) < 10 else ""
    print(f" {GREEN}ok{RESET}{shown} {DIM}({time.time() - t:.1f}s){RESET}", flush=True)
    return out


class Api:
    """pxedust's JSON API, at the loopback port relayed into the lab."""

    def __init__(self, base):
        self.base = base

    def get(self, path):
        with urllib.request.urlopen(self.base + path, timeout=10) as r:
            return json.load(r)


class Tracker:
    """Where each host is, as pxedust's API says (each host's boot events: the address, the boot
    script and kernel served, the iSCSI logins of iPXE and of the initramfs); "up" is what the host
    itself prints on its serial console once its root runs, and a failure is the initramfs's own
    line there."""

    def __init__(self, api, vms):
        self.api, self.vms = api, vms
        self.reached = {name: {"power on": 0.0} for name, _, _ in HOSTS}
        self.failed = {}

    def poll(self):
        try:
            hosts = {h["name"]: h for h in self.api.get("/api/v1/hosts")["hosts"] if h.get("name")}
        except (OSError, ValueError):
            hosts = {}
        for (name, mac, ip), vm in zip(HOSTS, self.vms):
            r = self.reached[name]
            now = time.time() - vm.started
            console = vm.text()
            events = hosts.get(name, {}).get("events", [])
            def seen(kind, **details):
                return [e for e in events if e["kind"] == kind and all(e.get(k) == v for k, v in details.items())]
            logins = seen("disk.login")
            marks = {
                "DHCP": seen("dhcp.ack"),
                "boot script": seen("file.completed", requested="boot.ipxe"),
                "iSCSI disk": logins,
                "kernel": seen("file.completed", requested="initrd.img"),  # iPXE loads it after the kernel
                "root mounted": len(logins) >= 2,  # the initramfs's own login, after iPXE's
                "up": "pxedust-demo: up" in console,
            }
            for stage in STAGES[1:]:
                if stage not in r and marks[stage]:
                    r[stage] = now
            m = re.search(r"pxedust-initramfs: failed (.*)", console)
            if m and name not in self.failed:
                self.failed[name] = m.group(1).strip()
            if vm.proc.poll() is not None and "up" not in r and name not in self.failed:
                self.failed[name] = f"the VM stopped (exit {vm.proc.returncode})"

    def done(self):
        return all("up" in self.reached[n] or n in self.failed for n, _, _ in HOSTS)

    def render(self, width=10**6):
        """A header and one line per host: the second each stage was reached, `...` at the stage it
        is in. Lines are cut to `width` characters: a live line that wrapped would break the
        cursor-up redraw."""
        def line(pieces):
            out, left = [], width
            for text, style in pieces:
                text = text[:max(left, 0)]
                left -= len(text)
                out.append(f"{style}{text}{RESET}" if style and text else text)
            return "".join(out)
        cell = 8
        lines = [line([(f"  {'host':<9}{'address':<13}", DIM)] + [(f"{SHORT[st]:<{cell}}", DIM) for st in STAGES[1:]]).rstrip()]
        for name, _, ip in HOSTS:
            r = self.reached[name]
            pieces = [(f"  {name:<9}", BOLD), (f"{ip:<13}", "")]
            last = max(i for i, st in enumerate(STAGES) if st in r)
            for i, stage in enumerate(STAGES[1:], start=1):
                if i > last and name in self.failed:
                    break
                if stage in r:
                    pieces.append((f"{r[stage]:.0f}s".ljust(cell), GREEN))
                elif i < last:
                    pieces.append(("-".ljust(cell), DIM))  # passed without a sign of it
                elif i == last + 1:
                    pieces.append(("...".ljust(cell), DIM))
                else:
                    pieces.append((" " * cell, ""))
            if name in self.failed:
                pieces.append((f"FAILED: {self.failed[name]}", RED))
            lines.append(line(pieces).rstrip())
        return lines


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def main():
    if os.geteuid() != 0:
        sys.exit("pxedust demo: needs root (network namespaces, tap devices)")
    why = e2elab.qemu_missing()
    if why:
        sys.exit(f"pxedust demo: QEMU cannot run here: {why}")
    say("boots two diskless machines from one shared base image, in a private network (10.219.0.0/24)")
    vmlinuz, kroot = step("fetching a Debian cloud kernel (apt-get download, cached in build/e2e)", e2elab.kernel)
    initrd = step("building the client initramfs (pxedust initramfs build)", lambda: e2elab.initramfs(kroot, True))
    accel = step("checking whether KVM works here", lambda: e2elab.accel(vmlinuz, initrd))
    lab = e2elab.Lab()
    def on_term(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    try:
        d = lab.dir
        tftp = os.path.join(d, "tftp")
        os.makedirs(tftp)
        for src, dst in ((vmlinuz, "vmlinuz"), (initrd, "initrd.img")):
            subprocess.run(["cp", src, os.path.join(tftp, dst)], check=True)
        with open(os.path.join(tftp, "boot.ipxe"), "w") as f:
            f.write("#!ipxe\nkernel vmlinuz console=ttyS0 edd=off panic=-1 pxedust.onfail=poweroff quiet\n"
                    "initrd initrd.img\nboot\n")
        hosts = "".join(f'\n[[host]]\nname = "{n}"\nmac = "{m}"\nip = "{ip}"\nimage = "demo"\n' for n, m, ip in HOSTS)
        config = f"""# written by the pxedust demo
[log]
level = "info"
[storage]
dir = "{d}/store"
[tftp]
listen = ["{e2elab.SERVER_IP}:69"]
root = "{tftp}"
[dhcp]
interfaces = ["{lab.bridge}"]
[[dhcp.subnet]]
subnet = "10.219.0.0/24"
ipxe_script = "boot.ipxe"     # iPXE gets this script and, from the host's disk, an iSCSI root-path
[iscsi]
listen = ["{e2elab.SERVER_IP}:3260"]
[http]
listen = ["{e2elab.SERVER_IP}:80"]   # the API and the live dashboard (and the same files as TFTP)
root = "{tftp}"
{hosts}"""
        cfg = os.path.join(d, "pxedust.toml")
        with open(cfg, "w") as f:
            f.write(config)
        env = dict(os.environ, PXEDUST_CONFIG=cfg)
        demo_img = os.path.join(d, "demo.img")
        run = lambda *a: subprocess.run([e2elab.PXEDUST, *a], check=True, capture_output=True, text=True, env=env)
        step("building the base image (pxedust image build-demo: ext4, busybox)", lambda: run("image", "build-demo", "-o", demo_img))
        step("importing it into the block store as 'demo'", lambda: run("image", "import", demo_img, "--name", "demo", "--quiet"))
        os.unlink(demo_img)
        step("starting pxedust in the lab (DHCP, TFTP, iSCSI, HTTP on 10.219.0.1)",
             lambda: lab.start(config, services=("dhcp", "tftp", "iscsi", "http")))
        port = lab.forward(80)
        api = Api(f"http://127.0.0.1:{port}")
        api.get("/api/v1/status")
        say(f"live dashboard: {BOLD}http://127.0.0.1:{port}/{RESET} (relayed into the lab while the demo runs)")
        say(f"powering on {len(HOSTS)} machines with no disk ({accel.upper()}; under TCG a boot takes a minute or two)")
        vms = [lab.vm(m, n).start(accel) for n, m, _ in HOSTS]
        tracker = Tracker(api, vms)
        shown = 0
        deadline = time.time() + 900
        while not tracker.done() and time.time() < deadline:
            tracker.poll()
            lines = tracker.render(shutil.get_terminal_size().columns - 1)
            if TTY:
                if shown:
                    print(f"\033[{shown}A", end="")
                print("\n".join(f"\033[2K{ln}" for ln in lines), flush=True)
                shown = len(lines)
            time.sleep(0.5)
        tracker.poll()
        if not TTY:
            print("\n".join(tracker.render()))
        for vm in vms:
            try:
                vm.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                vm.kill()
        say("summary (from pxedust's API)")
        overlays = api.get("/api/v1/overlays")["overlays"]
        images = api.get("/api/v1/images")["images"]
        hosts = {h["name"]: h for h in api.get("/api/v1/hosts")["hosts"] if h.get("name")}
        for name, _, _ in HOSTS:
            r = tracker.reached[name]
            t = f"up in {r['up']:.1f}s" if "up" in r else f"{RED}did not come up: {tracker.failed.get(name, 'timeout')}{RESET}"
            h = hosts.get(name, {})
            print(f"  {name:<7} {t}; pxedust saw {h.get('boots', 0)} boot(s), stage {h.get('stage', '?')}")
        print("\n  the shared base image:")
        for i in images:
            print(f"    {i['name']} v{i['version']}: {human(i['size_bytes'])}, {human(i['allocated_bytes'])} on disk, "
                  f"sha256 {i['sha256'][:16]}...")
        print("\n  each host's copy-on-write overlay (what it wrote while booting):")
        for o in overlays:
            print(f"    {o['host']:<8} on {o['image']} v{o['version']}: {human(o['allocated_bytes'])}")
        print(f"\n  {DIM}consoles, the pxedust log and its state files are in {d} until the demo exits{RESET}")
        ok = all("up" in tracker.reached[n] for n, _, _ in HOSTS)
        if TTY and ok and sys.stdin.isatty():
            try:
                input(f"\n{BOLD}pxedust demo{RESET} done: press Enter to remove everything it made ")
            except EOFError:
                print()
        return 0 if ok else 1
    except KeyboardInterrupt:
        print()
        say("stopped")
        return 130
    finally:
        lab.close()
        say("removed the lab, its processes and files")


if __name__ == "__main__":
    sys.exit(main())
