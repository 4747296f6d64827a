#!/usr/bin/env python3
"""bench/e2e: diskless boots through pxedust and through a reference stack (dnsmasq + tgt), side by side.

Run it through bench/e2e/run.sh (which builds pxedust and storm_load first); needs root. Rows:
  vm1    one QEMU VM (the one tests/e2e IscsiRoot boots: iPXE ROM, virtio-net, kernel + pxedust's client
         initramfs, root over iSCSI, the demo image's init prints a marker and powers off): seconds from
         QEMU start to the marker, --runs times per stack, stacks interleaved, median [min-max].
  vm4    four such VMs powered on together: seconds until the last of them printed the marker.
  storm  storm_load (bench/e2e/storm_load.cpp): --clients simulated clients at once, each DHCP DORA,
         TFTP of a 30 MB initrd and a read of the first --read-mib of its own iSCSI disk; seconds
         until all are done, failures, per-phase times. The clients' TFTP is iPXE's: blksize 1432,
         lock-step (BIOS machines booting through iPXE or pxelinux).
  storm-uefi  the same storm with the TFTP options UEFI firmware asks (EDK2: windowsize 4,
         --uefi-windowsize), the client of machines booting from their firmware's own PXE.
  storm-tftp  the storm's DHCP and lock-step TFTP only (storm_load --tftp-only; the reference is
         dnsmasq alone, no tgt, no copies): server CPU per DATA block in the storm's network
         setting. --perf-dir / --strace-dir record the servers during these runs.
  storm-http  the storm with the initrd over HTTP (storm_load --http-url: one HTTP/1.1 GET, as iPXE
         does for `initrd http://...`) instead of TFTP; DHCP and the iSCSI read as in `storm`. pxedust
         serves it from its [http] section (same root, HTTP_PORT on the lab address); the reference
         adds nginx (nginx-light) to dnsmasq + tgt. Next to `storm` in the same run, the report gives
         each stack's storm time TFTP / HTTP.

Stacks:
  pxedust      one daemon: DHCP, TFTP, iSCSI (and HTTP in storm-http); one base image, a
               copy-on-write overlay per host.
  ref-tuned    dnsmasq (DHCP + TFTP) and tgtd (iSCSI over a full copy of the image per host), with
               the two settings an iPXE site adds: no-pxedhcp (option 175.176) and router
               advertisements, so iPXE waits neither for ProxyDHCP nor for an IPv6 router; in
               storm-http nginx serves the TFTP root over HTTP.
  ref-plain    the same without those two settings (VM rows only).

Everything runs in network namespaces made here (tests/e2e/e2elab.py's lab: a bridge 10.219.0.1/24;
the storm's clients in a second namespace behind a veth, one macvlan per client). Processes are
started and stopped by PID; namespaces, addresses and files are removed on exit, Ctrl-C or SIGTERM.
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "e2e"))
import e2elab  # noqa: E402  (the lab the end-to-end tests use; used as it is)

SERVER = e2elab.SERVER_IP
IQN = "iqn.2026-11.org.pxedust:{}"  # pxedust's default [iscsi] target_name; tgt's targets get the same names
MARK = re.compile(r"pxedust-demo: up host=(\S+) root=(\S+) boot-count=(\d+)")
# Boot stages seen on a VM's console, for the breakdown.
STAGES = [("dhcp", re.compile(r"net0: 10\.219\.0\.\d+/")),
          ("kernel", re.compile(r"pxedust-initramfs: start")),
          ("root", re.compile(r"pxedust-initramfs: root mounted")),
          ("up", MARK)]
STORM_ROWS = ("storm", "storm-http", "storm-uefi", "storm-tftp")  # the report's order
TFTP_ONLY_ROWS = ("storm-tftp",)
HTTP_ROWS = ("storm-http",)  # the initrd over HTTP; compared with `storm` (the same but lock-step TFTP)
HTTP_PORT = 80               # on the lab address, pxedust's [http] and nginx alike
VM_HOSTS = [(f"vm-{i}", f"52:54:00:e3:00:{i:02x}", f"10.219.0.{20 + i}") for i in range(1, 5)]
BOOT_SCRIPT = ("#!ipxe\nkernel vmlinuz console=ttyS0 edd=off panic=-1 pxedust.onfail=poweroff quiet\n"
               "initrd initrd.img\nboot\n")
V6_PREFIX = "fd00:219::1/64"  # ref-tuned only: dnsmasq's router advertisements need an address to build them on


def say(text):
    print(f"[e2e-bench] {text}", file=sys.stderr, flush=True)


def storm_hosts(n):
    return [(f"storm-{i:03d}", f"52:54:00:e4:{i >> 8:02x}:{i & 0xff:02x}", f"10.219.0.{50 + i}") for i in range(n)]


def proc_cpu(pid):
    """utime + stime of a live process and its reaped children, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def ctx_switches(pid):
    """(voluntary, involuntary) context switches of a live process's threads."""
    vol = invol = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        invol += int(line.split()[1])
    except OSError:
        pass
    return vol, invol


def machine_cpu():
    """(busy, softirq) CPU seconds of the whole machine from /proc/stat, and the ksoftirqd threads'
    CPU: a packet's delivery runs in the sender's context or, when deferred, in ksoftirqd, which
    no server's own CPU time shows."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    tck = os.sysconf("SC_CLK_TCK")
    busy = sum(v) - v[3] - v[4] - (v[8] if len(v) > 8 else 0) - (v[9] if len(v) > 9 else 0)  # less idle, iowait, guest
    ksoft = 0.0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().startswith("ksoftirqd/"):
                        ksoft += proc_cpu(int(pid))
            except OSError:
                pass
    return busy / tck, v[6] / tck, ksoft


def evict(paths):
    """Drops these files (and files under these directories) from the page cache: fsync, then
    POSIX_FADV_DONTNEED. Other people's files are left alone."""
    n = 0
    for top in paths:
        files = [top] if os.path.isfile(top) else [os.path.join(d, f) for d, _, fs in os.walk(top) for f in fs]
        for path in files:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                n += 1
            finally:
                os.close(fd)
    return n


def stop_pid(proc, term_timeout=10):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=term_timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- the stacks -----------------------------------------------------------------------------------

class Pxedust:
    name = "pxedust"

    def __init__(self, lab, work):
        self.lab, self.work = lab, work
        self.imported = set()

    def cli(self, config, *args):
        env = dict(os.environ, PXEDUST_CONFIG=config)
        r = subprocess.run([e2elab.PXEDUST, *args], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"pxedust {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def start(self, setup, iscsi=True, http=False):
        """setup: a Setup (hosts, image, TFTP root, a name for its store). pxedust serves iSCSI
        either way (idle when the row is TFTP only); http: an [http] section too, serving the TFTP
        root on the lab address."""
        store = os.path.join(self.work, f"store-{setup.name}")
        hosts = "".join(f'\n[[host]]\nname = "{n}"\nmac = "{m}"\nip = "{ip}"\nimage = "{setup.name}"\n'
                        for n, m, ip in setup.hosts)
        script = 'ipxe_script = "boot.ipxe"' if setup.ipxe_script else ""
        http_section = f'[http]\nlisten = ["{SERVER}:{HTTP_PORT}"]\nroot = "{setup.tftp_root}"\n' if http else ""
        config = f"""# bench/e2e: {setup.name}
[log]
level = "info"
[storage]
dir = "{store}"
[tftp]
listen = ["{SERVER}:69"]
root = "{setup.tftp_root}"
[dhcp]
interfaces = ["{self.lab.bridge}"]
[[dhcp.subnet]]
subnet = "10.219.0.0/24"
{script}
[iscsi]
listen = ["{SERVER}:3260"]
{http_section}{hosts}"""
        path = os.path.join(self.work, f"pxedust-{setup.name}.toml")
        with open(path, "w") as f:
            f.write(config)
        if setup.name not in self.imported:
            self.cli(path, "image", "import", setup.image, "--name", setup.name, "--quiet")
            self.imported.add(setup.name)
        self.store = store
        self.lab.start(config, services=("dhcp", "tftp", "iscsi") + (("http",) if http else ()))

    def pids(self):
        return [self.lab.server.pid] if self.lab.server else []

    def cache_files(self, setup):
        return [os.path.join(self.work, f"store-{setup.name}"), setup.tftp_root]

    def stop(self):
        rc = self.lab.stop()
        if rc not in (0, None):
            raise RuntimeError(f"pxedust exited {rc}:\n{self.lab.read_log()[-3000:]}")

    def log_tail(self):
        return self.lab.read_log()[-3000:]


class Reference:
    """dnsmasq (DHCP + TFTP) and tgtd (iSCSI), each host's disk a full copy of the image."""

    def __init__(self, lab, work, tuned):
        self.lab, self.work, self.tuned = lab, work, tuned
        self.name = "ref-tuned" if tuned else "ref-plain"
        self.dnsmasq = self.tgtd = self.nginx = None
        self.nginx_log = None
        self.v6 = False

    def copies(self, setup):
        d = os.path.join(self.work, f"ref-{setup.name}")
        return d, [os.path.join(d, f"{n}.img") for n, _, _ in setup.hosts]

    def make_copies(self, setup):
        d, paths = self.copies(setup)
        os.makedirs(d, exist_ok=True)
        for p in paths:
            if not os.path.exists(p):
                subprocess.run(["cp", setup.image, p + ".tmp"], check=True)
                os.rename(p + ".tmp", p)

    def tgtadm(self, *args):
        r = subprocess.run(["tgtadm", "-L", "iscsi", *args], capture_output=True, text=True, env=self.tgt_env)
        if r.returncode != 0:
            raise RuntimeError(f"tgtadm {' '.join(args)}: {r.stdout}{r.stderr}")

    def start(self, setup, iscsi=True, http=False):
        """iscsi=False: dnsmasq alone (TFTP-only rows), no tgtd and no copies; http: nginx too."""
        self.dns_log = os.path.join(self.work, f"dnsmasq-{setup.name}.log")
        self.tgt_log = os.path.join(self.work, f"tgtd-{setup.name}.log")
        if iscsi:
            self.start_tgt(setup)
        if http:
            self.start_nginx(setup)
        self.start_dnsmasq(setup)

    def start_nginx(self, setup):
        """nginx in the lab namespace, in the foreground, serving the TFTP root on the lab address as
        a site would set it up for iPXE's initrd: sendfile, a worker per CPU, no access log."""
        tmp = os.path.join(self.work, "nginx-tmp")
        os.makedirs(tmp, exist_ok=True)
        log = os.path.join(self.work, f"nginx-{setup.name}.log")
        conf = os.path.join(self.work, f"nginx-{setup.name}.conf")
        temps = "".join(f"  {k}_temp_path {tmp}/{k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        with open(conf, "w") as f:
            f.write(f"""worker_processes auto;
pid {self.work}/nginx.pid;
error_log {log} warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  default_type application/octet-stream;
{temps}  server {{ listen {SERVER}:{HTTP_PORT}; root {setup.tftp_root}; }}
}}
""")
        # -e: its start-up log goes there too, not to the system's /var/log/nginx.
        self.nginx = self.lab.popen(["nginx", "-e", log, "-c", conf, "-g", "daemon off;"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.nginx_log = log
        end = time.time() + 20
        while True:
            if self.nginx.poll() is not None:
                raise RuntimeError(f"nginx exited {self.nginx.returncode}: {self.nginx.stderr.read()}"
                                   f"{e2elab._read(log)[-2000:]}")
            if self.lab.exec("ss", "-Hltn", "src", f"{SERVER}:{HTTP_PORT}", check=False).stdout.strip():
                break
            if time.time() > end:
                raise RuntimeError("nginx did not listen: " + e2elab._read(log)[-2000:])
            time.sleep(0.05)

    def start_tgt(self, setup):
        self.make_copies(setup)
        _, paths = self.copies(setup)
        # tgtd: in the lab namespace, foreground, its own control socket (never the system's).
        self.tgt_sock = os.path.join(self.work, "tgtd.sock")
        self.tgt_env = dict(os.environ, TGT_IPC_SOCKET=self.tgt_sock)
        with open(self.tgt_log, "ab") as log:
            self.tgtd = self.lab.popen(["tgtd", "-f", "--iscsi", f"portal={SERVER}:3260"],
                                       env=self.tgt_env, stdout=log, stderr=log)
        end = time.time() + 20
        while True:
            if self.tgtd.poll() is not None:
                raise RuntimeError(f"tgtd exited {self.tgtd.returncode}: {e2elab._read(self.tgt_log)[-2000:]}")
            if subprocess.run(["tgtadm", "-L", "iscsi", "-o", "show", "-m", "target"], env=self.tgt_env,
                              capture_output=True).returncode == 0:
                break
            if time.time() > end:
                raise RuntimeError("tgtd did not answer on its control socket")
            time.sleep(0.1)
        # LUN 0 of a tgt target is its controller (device type 0x0c); the disk is LUN 1.
        for tid, ((n, _, ip), path) in enumerate(zip(setup.hosts, paths), start=1):
            self.tgtadm("-o", "new", "-m", "target", "-t", str(tid), "-T", IQN.format(n))
            self.tgtadm("-o", "new", "-m", "logicalunit", "-t", str(tid), "-l", "1", "-b", path)
            self.tgtadm("-o", "bind", "-m", "target", "-t", str(tid), "-I", ip)

    def start_dnsmasq(self, setup):
        # dnsmasq: DHCP with the same reservations and a root-path per host, TFTP of the same root.
        leases = os.path.join(self.work, f"dnsmasq-{setup.name}.leases")
        if os.path.exists(leases):
            os.unlink(leases)
        lines = ["port=0", f"interface={self.lab.bridge}", "bind-interfaces",
                 "dhcp-range=10.219.0.0,static,255.255.255.0", f"dhcp-leasefile={leases}",
                 "enable-tftp", f"tftp-root={setup.tftp_root}", f"log-facility={self.dns_log}",
                 # one TFTP transfer per client at once; the default cap is 50
                 f"tftp-max={max(50, len(setup.hosts) + 50)}",
                 "dhcp-match=set:ipxe,175"]
        if setup.ipxe_script:
            lines.append("dhcp-boot=tag:ipxe,boot.ipxe")
        if self.tuned:
            lines += ["dhcp-option=tag:ipxe,encap:175,176,1b",            # ipxe.no-pxedhcp
                      "enable-ra", f"dhcp-range=::,constructor:{self.lab.bridge},ra-only",
                      f"ra-param={self.lab.bridge},0,0"]                   # router lifetime 0
            self.lab.exec("ip", "-6", "addr", "add", V6_PREFIX, "dev", self.lab.bridge, "nodad")
            self.v6 = True
        for i, (n, m, ip) in enumerate(setup.hosts):
            lines.append(f"dhcp-host={m},set:h{i},{ip},{n}")
            lines.append(f"dhcp-option-force=tag:h{i},17,iscsi:{SERVER}:::1:{IQN.format(n)}")
        conf = os.path.join(self.work, f"dnsmasq-{setup.name}.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        start = os.path.getsize(self.dns_log) if os.path.exists(self.dns_log) else 0
        self.dnsmasq = self.lab.popen(["dnsmasq", "-k", f"--conf-file={conf}", "--pid-file="],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        end = time.time() + 20
        while True:
            if self.dnsmasq.poll() is not None:
                raise RuntimeError(f"dnsmasq exited {self.dnsmasq.returncode}: {self.dnsmasq.stderr.read()}"
                                   f"{e2elab._read(self.dns_log)[-2000:]}")
            with open(self.dns_log, "rb") if os.path.exists(self.dns_log) else open(os.devnull, "rb") as f:
                f.seek(start)
                if b"TFTP root is" in f.read():
                    break
            if time.time() > end:
                raise RuntimeError("dnsmasq did not start: " + e2elab._read(self.dns_log)[-2000:])
            time.sleep(0.05)

    def pids(self):
        """dnsmasq, tgtd, and nginx's master and workers (live children: their CPU is not the master's)."""
        pids = [p.pid for p in (self.dnsmasq, self.tgtd, self.nginx) if p is not None]
        if self.nginx is not None:
            try:
                with open(f"/proc/{self.nginx.pid}/task/{self.nginx.pid}/children") as f:
                    pids += [int(x) for x in f.read().split()]
            except OSError:
                pass
        return pids

    def cache_files(self, setup):
        return [self.copies(setup)[0], setup.tftp_root]

    def stop(self):
        stop_pid(self.dnsmasq)
        self.dnsmasq = None
        stop_pid(self.nginx)  # SIGTERM: the master stops its workers and exits
        self.nginx = None
        if self.tgtd is not None and self.tgtd.poll() is None:
            # tgtd leaves on SIGTERM only once it has no targets; with them it needs the system delete.
            subprocess.run(["tgtadm", "-o", "delete", "-m", "system"], env=self.tgt_env, capture_output=True)
            try:
                self.tgtd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.tgtd.kill()
                self.tgtd.wait()
        self.tgtd = None
        for leftover in (self.tgt_sock + ".0", self.tgt_sock + ".0.lock") if hasattr(self, "tgt_sock") else ():
            if os.path.exists(leftover):
                os.unlink(leftover)
        if self.v6:
            self.lab.exec("ip", "-6", "addr", "del", V6_PREFIX, "dev", self.lab.bridge, check=False)
            self.v6 = False

    def log_tail(self):
        return (e2elab._read(self.dns_log)[-2000:] + "\n" + e2elab._read(self.tgt_log)[-1000:]
                + ("\n" + e2elab._read(self.nginx_log)[-1000:] if self.nginx_log else ""))


class Setup:
    """What a stack serves: hosts, the base image, a TFTP root."""

    def __init__(self, name, hosts, image, tftp_root, ipxe_script):
        self.name, self.hosts, self.image, self.tftp_root, self.ipxe_script = name, hosts, image, tftp_root, ipxe_script


# --- the VM rows ----------------------------------------------------------------------------------

def boot_vms(lab, stack, setup, accel, timeout):
    """Powers on one VM per host of `setup` at once; returns per-host stage times (s from QEMU start)."""
    vms = [lab.vm(m, f"{stack.name}-{n}-{len(lab.vms)}") for n, m, _ in setup.hosts]
    for vm in vms:
        vm.start(accel)
    seen = [{} for _ in vms]
    end = time.time() + timeout
    while time.time() < end:
        for vm, s in zip(vms, seen):
            if "up" in s:
                continue
            text = vm.text()
            now = time.time() - vm.started
            for stage, rx in STAGES:
                if stage not in s and rx.search(text):
                    s[stage] = now
            if "up" not in s and vm.proc.poll() is not None:
                s["error"] = f"QEMU exited {vm.proc.returncode} before the marker: {text[-600:]!r}"
                s["up"] = None
        if all("up" in s for s in seen):
            break
        time.sleep(0.1)
    for (n, _, _), vm, s in zip(setup.hosts, vms, seen):
        if "up" not in s:
            s["up"] = None
            s["error"] = f"no marker within {timeout}s; console tail: {vm.text()[-600:]!r}"
        elif s["up"] is not None:
            m = MARK.search(vm.text())
            if m.group(1) != n:
                s["error"] = f"marker names host {m.group(1)}, expected {n}"
                s["up"] = None
    for vm in vms:
        try:
            vm.proc.wait(timeout=60)  # the demo init powers off
        except subprocess.TimeoutExpired:
            vm.kill()
        lab.vms.remove(vm)
        lab.exec("ip", "link", "del", vm.tap, check=False)
    return seen


# --- the storm -----------------------------------------------------------------------------------

class ClientNet:
    """The storm's clients: namespace pxdc<pid>, a veth to the lab bridge, one macvlan per client
    (its own MAC; private mode: the clients do not see each other's frames, only the server's; storm_load puts the leased address on it). ARP answers only for an interface's own
    addresses, IPv6 off (the clients simulate no IPv6)."""

    def __init__(self, lab, hosts):
        self.lab = lab
        self.ns = f"pxdc{os.getpid() % 100000}"
        e2elab.run("ip", "netns", "add", self.ns)
        self.ifaces = [f"sc{i}" for i in range(len(hosts))]
        try:
            lab.exec("ip", "link", "add", "pxsb", "type", "veth", "peer", "name", "pxsc", "netns", self.ns)
            lab.exec("ip", "link", "set", "pxsb", "master", lab.bridge)
            lab.exec("ip", "link", "set", "pxsb", "up")
            for key, val in (("net.ipv4.conf.all.arp_ignore", 1), ("net.ipv4.conf.default.arp_ignore", 1),
                             ("net.ipv4.conf.all.arp_announce", 2), ("net.ipv4.conf.default.arp_announce", 2),
                             ("net.ipv4.conf.all.rp_filter", 0), ("net.ipv4.conf.default.rp_filter", 0),
                             ("net.ipv6.conf.all.disable_ipv6", 1), ("net.ipv6.conf.default.disable_ipv6", 1)):
                self.exec("sysctl", "-q", "-w", f"{key}={val}")
            batch = ["link set lo up", "link set pxsc up"]
            for ifname, (_, mac, _) in zip(self.ifaces, hosts):
                batch.append(f"link add link pxsc name {ifname} address {mac} type macvlan mode private")
                batch.append(f"link set {ifname} up")
            self.exec("ip", "-batch", "-", input="\n".join(batch) + "\n")
        except Exception:
            self.close()
            raise

    def exec(self, *cmd, **kw):
        return e2elab.run("ip", "netns", "exec", self.ns, *cmd, **kw)

    def flush(self):
        self.exec("ip", "-batch", "-", input="".join(f"addr flush dev {i}\n" for i in self.ifaces), check=False)

    def close(self):
        e2elab.run("ip", "netns", "del", self.ns, check=False)
        self.lab.exec("ip", "link", "del", "pxsb", check=False)


def random_file(path, size):
    with open("/dev/urandom", "rb") as src, open(path, "wb") as dst:
        left = size
        while left:
            chunk = src.read(min(left, 4 << 20))
            dst.write(chunk)
            left -= len(chunk)


def attach_recorders(args, stack, label, tftp_only):
    """--perf-dir / --strace-dir: perf record -g / strace -c -f on the servers of a TFTP-only run
    (pxedust; dnsmasq), started before storm_load and stopped (SIGINT) after it."""
    procs = []
    if not tftp_only:
        return procs
    pids = ",".join(str(p) for p in stack.pids())
    if args.perf_dir:
        os.makedirs(args.perf_dir, exist_ok=True)
        out = os.path.join(args.perf_dir, f"{label}.perf.data")
        procs.append(subprocess.Popen(["perf", "record", "-g", "-q", "-o", out, "-p", pids],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    if args.strace_dir:
        os.makedirs(args.strace_dir, exist_ok=True)
        out = os.path.join(args.strace_dir, f"{label}.strace.txt")
        procs.append(subprocess.Popen(["strace", "-c", "-f", "-o", out]
                                      + [a for p in stack.pids() for a in ("-p", str(p))],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    if procs:
        time.sleep(1.0)  # attached before the first DISCOVER
    return procs


def detach_recorders(procs):
    for p in procs:
        p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_storm(args, net, stack, setup, clients_file, work, label, windowsize, tftp_only=False, http=False):
    net.flush()
    n = evict(stack.cache_files(setup))
    per_client = os.path.join(work, f"clients-{label}.tsv")
    cmd = ["ip", "netns", "exec", net.ns, args.storm_load, "--clients", clients_file,
           "--tftp-file", "initrd.img", "--tftp-verify", os.path.join(setup.tftp_root, "initrd.img"),
           "--blksize", str(args.blksize), "--windowsize", str(windowsize), "--deadline-s", str(args.storm_deadline),
           "--per-client", per_client, "--label", label]
    if http:
        cmd += ["--http-url", f"http://{SERVER}:{HTTP_PORT}/initrd.img"]
    if tftp_only:
        cmd.append("--tftp-only")
    else:
        cmd += ["--disk-verify", setup.image, "--read-bytes", str(args.read_mib << 20),
                "--read-size", str(args.read_kib << 10), "--qd", str(args.qd)]
    recorders = attach_recorders(args, stack, label, tftp_only)
    load0 = os.getloadavg()[0]
    cpu0 = sum(proc_cpu(p) for p in stack.pids())
    m0 = machine_cpu()
    cs0 = [ctx_switches(p) for p in stack.pids()]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
        cpu1 = sum(proc_cpu(p) for p in stack.pids())
        m1 = machine_cpu()
        cs1 = [ctx_switches(p) for p in stack.pids()]
    finally:
        detach_recorders(recorders)
    load1 = os.getloadavg()[0]
    try:
        j = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"storm_load exited {r.returncode} without a report: {r.stderr[-2000:]}")
    j.update(server_cpu_s=cpu1 - cpu0, evicted_files=n, load_before=load0, load_after=load1,
             machine_busy_s=m1[0] - m0[0], machine_softirq_s=m1[1] - m0[1], ksoftirqd_cpu_s=m1[2] - m0[2],
             server_ctxsw=[sum(b[0] - a[0] for a, b in zip(cs0, cs1)), sum(b[1] - a[1] for a, b in zip(cs0, cs1))])
    if args.keep:
        shutil.copy(per_client, os.path.join(args.keep, os.path.basename(per_client)))
    return j


# --- report ---------------------------------------------------------------------------------------

def fmt_runs(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return "failed", None
    med = statistics.median(vals)
    cell = f"{med:.1f} [{min(vals):.1f}-{max(vals):.1f}]" if len(vals) > 1 else f"{med:.1f}"
    if len(vals) < len(values):
        cell += f" ({len(values) - len(vals)} failed)"
    return cell, med


def ratio_cells(name, vals, px_vals):
    """The ratio column: reference median / pxedust median, and the median of the per-run ratios
    (run i of a reference against run i of pxedust, taken minutes apart), which cancels slow drifts
    of the machine's load."""
    if name == "pxedust":
        return "1.00x", 1.0, 1.0
    pairs = [r / x for r, x in zip(vals, px_vals) if r and x]
    meds = [v for v in vals if v is not None], [v for v in px_vals if v is not None]
    if not pairs or not all(meds):
        return "-", None, None
    of_medians = statistics.median(meds[0]) / statistics.median(meds[1])
    paired = statistics.median(pairs)
    return f"{of_medians:.2f}x ({paired:.2f}x)", of_medians, paired


def phase(run, key):
    """A storm_load result's initrd phase ("initrd_s", "last_initrd_s"), also from results saved
    before the initrd could come over HTTP, when the keys said tftp."""
    if key in run:
        return run[key]
    return run.get(key.replace("initrd", "tftp"))


def tftp_vs_http(p, tftp_row, http_row):
    """Each stack's storm with the initrd by lock-step TFTP (`storm`) against the same storm with it
    over HTTP (`storm-http`): run i of one against run i of the other (the same invocation's run,
    minutes apart), the median [min-max] of those ratios; runs with a failed client are left out."""
    p("  TFTP / HTTP: `storm` (lock-step TFTP) against `storm-http` of the same run, per stack; ratio = TFTP s /"
      " HTTP s, median [min-max] of the per-run ratios")
    p(f"  {'stack':<10} {'all done s TFTP / HTTP':<26} {'ratio':<30} last initrd done TFTP / HTTP (s)   "
      f"per client initrd median TFTP / HTTP   srv CPU-s TFTP / HTTP")
    for name in http_row:
        if name not in tftp_row:
            continue
        pairs = [(t, h) for t, h in zip(tftp_row[name], http_row[name]) if t["failed"] == 0 and h["failed"] == 0]
        if not pairs:
            p(f"  {name:<10} -  (no run pair without failures)")
            continue
        ratios = sorted(t["makespan_s"] / h["makespan_s"] for t, h in pairs)
        ratio = f"{statistics.median(ratios):.2f}x"
        if len(ratios) > 1:
            ratio += f" [{ratios[0]:.2f}x-{ratios[-1]:.2f}x]"
        runs = min(len(tftp_row[name]), len(http_row[name]))
        if len(pairs) < runs:
            ratio += f" ({len(pairs)} of {runs} runs)"

        def med(f):
            return statistics.median(f(t) for t, _ in pairs), statistics.median(f(h) for _, h in pairs)
        done = "{:.1f} / {:.1f}".format(*med(lambda r: r["makespan_s"]))
        last = "{:.1f} / {:.1f}".format(*med(lambda r: phase(r, "last_initrd_s")))
        per = "{:.2f} / {:.2f}".format(*med(lambda r: phase(r, "initrd_s")["median"]))
        cpu = "{:.1f} / {:.1f}".format(*med(lambda r: r["server_cpu_s"]))
        p(f"  {name:<10} {done:<26} {ratio:<30} {last:<34} {per:<38} {cpu}")


def report(results, args, meta):
    out = []
    p = out.append
    p("")
    p(f"pxedust e2e benchmark: {meta['accel']} guests, {os.cpu_count()} CPUs; load average at start "
      f"{meta['load_start']}, at end {meta['load_end']}")
    p(f"pxedust: {meta['binary']} (tree {meta['commit']})")
    p("times in seconds, median [min-max] over the runs; ratio = reference / pxedust (>1: pxedust faster):")
    p("of the medians, and in brackets the median of the per-run ratios (the stacks take turns in every run)")
    rows = []
    if "vm1" in results:
        p("")
        p(f"vm1: one VM, QEMU start -> marker ({args.runs} run(s) per stack, stacks interleaved)")
        p(f"  {'stack':<10} {'marker s':<24} {'ratio':>15}   stages (median s): iPXE configured / kernel / root mounted / marker")
        px_vals = [r["up"] for r in results["vm1"].get("pxedust", [])]
        for name, runs in results["vm1"].items():
            cell, med = fmt_runs([r["up"] for r in runs])
            ratio, _, paired = ratio_cells(name, [r["up"] for r in runs], px_vals)
            st = " / ".join(f"{statistics.median([r[s] for r in runs if r.get(s) is not None]):.1f}"
                            if any(r.get(s) is not None for r in runs) else "-" for s in ("dhcp", "kernel", "root", "up"))
            p(f"  {name:<10} {cell:<24} {ratio:>15}   {st}")
            rows.append(("vm1", name, med, paired))
        for name, runs in results["vm1"].items():
            for r in runs:
                if r.get("error"):
                    p(f"  {name}: {r['error'][:300]}")
    if "vm4" in results:
        p("")
        p(f"vm4: four VMs powered on together, QEMU start -> the last marker ({args.runs} run(s) per stack)")
        p(f"  {'stack':<10} {'last marker s':<24} {'ratio':>15}   each VM (median over runs, sorted)")
        def last(run):
            return None if any(v["up"] is None for v in run) else max(v["up"] for v in run)
        px_vals = [last(run) for run in results["vm4"].get("pxedust", [])]
        for name, runs in results["vm4"].items():
            lasts = [last(run) for run in runs]
            cell, med = fmt_runs(lasts)
            ratio, _, paired = ratio_cells(name, lasts, px_vals)
            each = sorted(statistics.median([run[i]["up"] for run in runs if run[i]["up"] is not None] or [float("nan")])
                          for i in range(len(runs[0])))
            p(f"  {name:<10} {cell:<24} {ratio:>15}   " + " ".join(f"{v:.1f}" for v in each))
            rows.append(("vm4", name, med, paired))
            for run in runs:
                for v in run:
                    if v.get("error"):
                        p(f"  {name}: {v['error'][:300]}")
    for srow in STORM_ROWS:
        if srow not in results:
            continue
        p("")
        s0 = next(iter(results[srow].values()))[0]
        reads = (f"iSCSI read of the first {s0['read_bytes'] >> 20} MiB ({s0['read_size'] >> 10} KiB x QD{s0['qd']})"
                 if srow not in TFTP_ONLY_ROWS else "no iSCSI (the reference is dnsmasq alone)")
        via = s0.get("initrd_via", "tftp").upper()
        if via == "HTTP":
            fetch = (f"HTTP GET of a {s0['tftp_file_bytes'] / 1e6:.0f} MB initrd (HTTP/1.1, one connection per client; "
                     f"pxedust's [http], the reference's nginx)")
        else:
            fetch = (f"TFTP {s0['tftp_file_bytes'] / 1e6:.0f} MB (blksize {s0['blksize']}"
                     f"{', windowsize %d' % s0['windowsize'] if s0['windowsize'] else ', lock-step'})")
        p(f"{srow}: {s0['clients']} simulated clients at once: DHCP DORA, {fetch}, "
          f"{reads}; page cache of the served files evicted before each run; {args.storm_runs} run(s) per stack")
        p(f"  {'stack':<10} {'all done s':<24} {'ratio':>15} {'failed':>7}  last DHCP / {via} / login / read done (s)   "
          f"per client median: DHCP / {via} / login / read   srv CPU-s  DHCP rexmit  {via} tmo")
        px_vals = [r["makespan_s"] if r["failed"] == 0 else None for r in results[srow].get("pxedust", [])]
        for name, runs in results[srow].items():
            ok_runs = [r["makespan_s"] if r["failed"] == 0 else None for r in runs]
            cell, med = fmt_runs(ok_runs)
            ratio, _, paired = ratio_cells(name, ok_runs, px_vals)
            mid = sorted(runs, key=lambda r: r["makespan_s"])[len(runs) // 2]
            lasts = " / ".join(f"{phase(mid, k):.1f}" for k in ("last_dhcp_s", "last_initrd_s", "last_login_s", "last_read_s"))
            per = " / ".join(f"{phase(mid, k)['median']:.2f}" if phase(mid, k) else "-"
                             for k in ("dhcp_s", "initrd_s", "login_s", "read_s"))
            failed = "/".join(str(r["failed"]) for r in runs)
            tmo = "http_timeouts" if via == "HTTP" else "tftp_timeouts"
            p(f"  {name:<10} {cell:<24} {ratio:>15} {failed:>7}  {lasts:<36} {per:<38} "
              f"{statistics.median(r['server_cpu_s'] for r in runs):9.1f}  "
              f"{statistics.median(r['dhcp_retransmits'] for r in runs):11g}  {statistics.median(r[tmo] for r in runs):8g}")
            rows.append((srow, name, med, paired))
            for r in runs:
                for e in r.get("errors", []):
                    p(f"  {name}: {e['clients']} client(s): {e['reason'][:200]}")
        for name, runs in results[srow].items():
            # TFTP-only rows: the servers' CPU is DHCP + TFTP, almost all of it the DATA blocks.
            # The machine's busy time less the client's is the servers' share plus the delivery that
            # ran in ksoftirqd (and anything else running meanwhile: an upper bound).
            per_block = (lambda r: f", srv {r['server_cpu_s'] / r['tftp_blocks'] * 1e6:.2f} us/DATA block (machine less "
                         f"client {(r['machine_busy_s'] - r['client_cpu_s']) / r['tftp_blocks'] * 1e6:.2f}, ksoftirqd "
                         f"{r['ksoftirqd_cpu_s']:.1f} s; srv context switches per block: "
                         + "{:.2f} voluntary, {:.2f} involuntary)".format(*(x / r['tftp_blocks'] for x in r['server_ctxsw']))
                         if srow in TFTP_ONLY_ROWS and r.get("tftp_blocks") else "")
            p(f"  {name}: per run: " + "; ".join(
                f"{r['makespan_s']:.1f} s, load {r['load_before']:.2f}->{r['load_after']:.2f}, client CPU "
                f"{r['client_cpu_s']:.1f} s, longest loop pass {r['loop_max_pass_ms']:.0f} ms{per_block(r)}"
                for r in runs))
        if srow in HTTP_ROWS and "storm" in results:
            tftp_vs_http(p, results["storm"], results[srow])
    # The targets.
    p("")
    p("targets:")
    by = {}
    for row, name, med, paired in rows:
        by.setdefault(row, {})[name] = (med, paired)
    for row, want, label in (("vm1", 1.0, "VM boot no slower than the reference"),
                             ("vm4", 1.0, "4 VMs no slower than the reference"),
                             ("storm", 2.0, "simulated storm (iPXE's TFTP) at least 2x faster than the reference"),
                             ("storm-uefi", 2.0, "simulated storm (UEFI's TFTP) at least 2x faster than the reference")):
        if row not in by or "pxedust" not in by[row]:
            continue
        refs = {k: v for k, v in by[row].items() if k != "pxedust" and v[0] and v[1]}
        if not refs or not by[row]["pxedust"][0]:
            p(f"  {row:<10} {label}: not measured (a stack failed)")
            continue
        best = min(refs, key=lambda k: refs[k][0])
        of_medians = refs[best][0] / by[row]["pxedust"][0]
        paired = refs[best][1]
        verdict = "PASS" if paired >= want and of_medians >= want else ("FAIL" if paired < want and of_medians < want
                                                                       else "UNDECIDED (the two ratios disagree)")
        p(f"  {row:<10} {label}: {verdict} (against the fastest reference, {best}: {of_medians:.2f}x of the "
          f"medians, {paired:.2f}x per run)")
    return "\n".join(out)


# --- main -----------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pxedust", default="", help="the pxedust binary")
    ap.add_argument("--storm-load", default="", help="the storm_load binary")
    ap.add_argument("--rows", default="vm1,vm4,storm,storm-uefi")
    ap.add_argument("--runs", type=int, default=3, help="runs per stack of vm1 and vm4")
    ap.add_argument("--storm-runs", type=int, default=3)
    ap.add_argument("--refs", default="ref-tuned,ref-plain", help="reference variants for the VM rows")
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--initrd-mb", type=int, default=30, help="size of the storm's initrd (MB, random data)")
    ap.add_argument("--read-mib", type=int, default=191,
                    help="MiB each storm client reads from its disk (191 MiB: the first 200 MB)")
    ap.add_argument("--read-kib", type=int, default=256)
    ap.add_argument("--qd", type=int, default=4)
    ap.add_argument("--blksize", type=int, default=1432)
    ap.add_argument("--windowsize", type=int, default=0, help="TFTP windowsize of the storm row's clients (0: not asked)")
    ap.add_argument("--uefi-windowsize", type=int, default=4, help="TFTP windowsize of the storm-uefi row's clients")
    ap.add_argument("--disk-budget-gib", type=float, default=0.0,
                    help="most disk the storm may use (default: the work dir's free space less 8 GiB)")
    ap.add_argument("--storm-deadline", type=int, default=900)
    ap.add_argument("--boot-timeout", type=int, default=300)
    ap.add_argument("--workdir", default="/var/tmp", help="where the images and copies go (a new dir inside)")
    ap.add_argument("--keep", default="", help="copy logs, configs and per-client TSVs here")
    ap.add_argument("--json", default="", help="write the raw results here")
    ap.add_argument("--report-only", default="", help="print the report of a results file --json wrote")
    ap.add_argument("--perf-dir", default="", help="storm-tftp: perf record -g the servers into DIR/LABEL.perf.data")
    ap.add_argument("--strace-dir", default="", help="storm-tftp: strace -c -f the servers into DIR/LABEL.strace.txt")
    args = ap.parse_args()
    if args.report_only:
        with open(args.report_only) as f:
            saved = json.load(f)
        print(report(saved["results"], argparse.Namespace(**saved["args"]), saved["meta"]))
        return 0
    if not args.pxedust or not args.storm_load:
        sys.exit("bench_e2e: --pxedust and --storm-load are required (run it through bench/e2e/run.sh)")
    if os.geteuid() != 0:
        sys.exit("bench_e2e: needs root (network namespaces, tap devices, tgtd, dnsmasq)")
    e2elab.PXEDUST = os.path.abspath(args.pxedust)
    args.storm_load = os.path.abspath(args.storm_load)
    rows = [r for r in args.rows.split(",") if r]
    for r in rows:
        if r not in ("vm1", "vm4") + STORM_ROWS:
            sys.exit(f"bench_e2e: unknown row {r}")
    refs = [r for r in args.refs.split(",") if r]
    for r in refs:
        if r not in ("ref-tuned", "ref-plain"):
            sys.exit(f"bench_e2e: unknown reference {r}")
    for tool in ("dnsmasq", "tgtd", "tgtadm"):
        if not shutil.which(tool):
            sys.exit(f"bench_e2e: {tool} missing (scripts/install-deps.sh --bench)")
    http_ref = bool(shutil.which("nginx"))
    if any(r in HTTP_ROWS for r in rows) and not http_ref:
        say("nginx missing (nginx-light, scripts/install-deps.sh --bench): storm-http runs pxedust alone")
    vm_rows = [r for r in rows if r not in STORM_ROWS]
    storm_rows = [r for r in rows if r in STORM_ROWS]
    iscsi_storm = any(r not in TFTP_ONLY_ROWS for r in storm_rows)
    if vm_rows:
        why = e2elab.qemu_missing()
        if why:
            sys.exit(f"bench_e2e: QEMU cannot run here: {why}")
    storm_image_bytes = args.read_mib << 20
    need = storm_image_bytes * ((args.clients if iscsi_storm else 0) + 2) + (args.initrd_mb * 10**6) * 2
    budget = args.disk_budget_gib * 2**30 or shutil.disk_usage(args.workdir).free - 8 * 2**30
    if storm_rows and need > budget:
        sys.exit(f"bench_e2e: the storm needs {need / 2**30:.1f} GiB ({args.clients} full copies of a "
                 f"{args.read_mib} MiB image for tgt) in {args.workdir}; it may use {budget / 2**30:.1f} GiB "
                 f"(--disk-budget-gib, else free space less 8 GiB): try --read-mib or --clients")
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)

    def on_term(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    commit = subprocess.run(["git", "-C", TOP, "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip() or "?"
    meta = {"load_start": " ".join(f"{x:.2f}" for x in os.getloadavg()), "commit": commit, "accel": "-",
            "binary": e2elab.PXEDUST}
    work = tempfile.mkdtemp(prefix="pxedust-e2e-bench.", dir=args.workdir)
    os.chmod(work, 0o755)  # dnsmasq reads the TFTP root as nobody
    lab = net = None
    stacks = []
    results = {}
    try:
        lab = e2elab.Lab()
        px = Pxedust(lab, work)
        refstacks = {name: Reference(lab, work, tuned=(name == "ref-tuned")) for name in refs}
        stacks = [px, *refstacks.values()]
        if vm_rows:
            vmlinuz, _ = e2elab.kernel()
            initrd = os.path.join(work, "initramfs-iscsi.img")
            say("building the client initramfs (pxedust initramfs build)")
            kroot = os.path.dirname(os.path.dirname(vmlinuz))
            subprocess.run([e2elab.PXEDUST, "initramfs", "build", "--kernel-root", kroot, "-o", initrd],
                           check=True, capture_output=True)
            meta["accel"] = e2elab.accel(vmlinuz, initrd)
            say(f"guests run under {meta['accel']}")
            tftp = os.path.join(work, "tftp-vm")
            os.makedirs(tftp, mode=0o755)
            shutil.copy(vmlinuz, os.path.join(tftp, "vmlinuz"))
            shutil.copy(initrd, os.path.join(tftp, "initrd.img"))
            with open(os.path.join(tftp, "boot.ipxe"), "w") as f:
                f.write(BOOT_SCRIPT)
            for fn in os.listdir(tftp):
                os.chmod(os.path.join(tftp, fn), 0o644)
            demo = os.path.join(work, "demo.img")
            subprocess.run([e2elab.PXEDUST, "image", "build-demo", "-o", demo], check=True, capture_output=True)
            vm_stacks = [px] + [refstacks[r] for r in refs]

            def vm_row(row, hosts):
                setup = Setup("demo", hosts, demo, tftp, True)
                res = {s.name: [] for s in vm_stacks}
                for run in range(args.runs):
                    order = vm_stacks if run % 2 == 0 else list(reversed(vm_stacks))
                    for s in order:
                        s.start(setup)
                        try:
                            seen = boot_vms(lab, s, setup, meta["accel"], args.boot_timeout)
                        finally:
                            s.stop()
                        ups = ", ".join("-" if v["up"] is None else f"{v['up']:.1f}" for v in seen)
                        say(f"{row} run {run + 1}/{args.runs} {s.name}: marker at {ups} s"
                            + "".join(f"; {v['error'][:200]}" for v in seen if v.get("error")))
                        res[s.name].append(seen[0] if row == "vm1" else seen)
                return res

            if "vm1" in rows:
                results["vm1"] = vm_row("vm1", VM_HOSTS[:1])
            if "vm4" in rows:
                results["vm4"] = vm_row("vm4", VM_HOSTS)
        if storm_rows:
            hosts = storm_hosts(args.clients)
            tftp = os.path.join(work, "tftp-storm")
            os.makedirs(tftp, mode=0o755)
            say(f"storm: a {args.initrd_mb} MB random initrd and a {args.read_mib} MiB random base image")
            random_file(os.path.join(tftp, "initrd.img"), args.initrd_mb * 10**6)
            os.chmod(os.path.join(tftp, "initrd.img"), 0o644)
            image = os.path.join(work, "storm.img")
            random_file(image, storm_image_bytes)
            setup = Setup("storm", hosts, image, tftp, False)
            ref = refstacks.get("ref-tuned") or Reference(lab, work, tuned=True)
            if ref not in stacks:
                stacks.append(ref)
            if iscsi_storm:
                t = time.time()
                ref.make_copies(setup)
                say(f"storm: {args.clients} full copies for tgt ({args.clients * args.read_mib / 1024:.1f} GiB) "
                    f"in {time.time() - t:.0f} s")
            net = ClientNet(lab, hosts)
            clients_file = os.path.join(work, "clients.txt")
            with open(clients_file, "w") as f:
                for ifname, (n, m, ip) in zip(net.ifaces, hosts):
                    f.write(f"{ifname} {m} {ip} {n}\n")

            def storm_stacks(srow):
                return [px] if srow in HTTP_ROWS and not http_ref else [px, ref]

            for srow in storm_rows:
                results[srow] = {s.name: [] for s in storm_stacks(srow)}
            windowsizes = {"storm": args.windowsize, "storm-uefi": args.uefi_windowsize, "storm-tftp": args.windowsize,
                           "storm-http": args.windowsize}  # storm-http: no TFTP
            for run in range(args.storm_runs):
                for srow in storm_rows:
                    for s in (storm_stacks(srow) if run % 2 == 0 else storm_stacks(srow)[::-1]):
                        t = time.time()
                        tftp_only = srow in TFTP_ONLY_ROWS
                        http = srow in HTTP_ROWS
                        s.start(setup, iscsi=not tftp_only, http=http)
                        say(f"{srow} run {run + 1}/{args.storm_runs} {s.name}: started in {time.time() - t:.1f} s")
                        try:
                            j = run_storm(args, net, s, setup, clients_file, work, f"{srow}-{s.name}-{run + 1}",
                                          windowsizes[srow], tftp_only, http)
                        finally:
                            s.stop()
                        say(f"{srow} run {run + 1}/{args.storm_runs} {s.name}: all done in {j['makespan_s']:.1f} s, "
                            f"{j['failed']} failed, server CPU {j['server_cpu_s']:.1f} s, load {j['load_before']:.2f}"
                            f" -> {j['load_after']:.2f}"
                            + "".join(f"; {e['clients']}x {e['reason'][:160]}" for e in j.get("errors", [])))
                        results[srow][s.name].append(j)
        meta["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        text = report(results, args, meta)
        print(text, flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"meta": meta, "args": vars(args), "results": results}, f, indent=1)
        return 0
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        if args.keep:
            for fn in os.listdir(work):
                if fn.endswith((".log", ".toml", ".conf", ".tsv")):
                    shutil.copy(os.path.join(work, fn), args.keep)
            if lab is not None and os.path.exists(lab.log):
                shutil.copy(lab.log, os.path.join(args.keep, "pxedust.log"))
        for s in stacks:
            if isinstance(s, Reference):
                try:
                    s.stop()
                except Exception as e:  # keep cleaning up
                    say(f"stopping {s.name}: {e}")
        if net is not None:
            net.close()
        if lab is not None:
            lab.close()
        shutil.rmtree(work, ignore_errors=True)
        say("removed the namespaces, processes and files it made")


if __name__ == "__main__":
    sys.exit(main())
