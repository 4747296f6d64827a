"""Helpers for the TFTP integration tests: a pxedust process on loopback, test files, and a lossy
UDP relay. Everything binds 127.0.0.1 only; processes are started and stopped by PID."""

import hashlib
import os
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

PXEDUST = os.environ.get("PXEDUST_BIN", "build/asan/bin/pxedust")
LOOPBACK = "127.0.0.1"


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_file(path, size, seed=0):
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(rng.randbytes(n))
            left -= n


def rrq(name, mode="octet", options=()):
    b = struct.pack("!H", 1) + name.encode() + b"\0" + mode.encode() + b"\0"
    for k, v in options:
        b += k.encode() + b"\0" + v.encode() + b"\0"
    return b


class Server:
    """pxedust serve with a generated config, on a free loopback port."""

    def __init__(self, root, extra_tftp="", extra="", timeout=1.0):
        self.dir = tempfile.mkdtemp(prefix="pxedust-it-")
        self.root = root
        self.port = free_udp_port()
        self.config = os.path.join(self.dir, "pxedust.toml")
        self.log = os.path.join(self.dir, "pxedust.log")
        self.write_config(extra_tftp, extra, timeout)
        self.proc = None

    def write_config(self, extra_tftp="", extra="", timeout=1.0):
        with open(self.config, "w") as f:
            f.write(f"""[log]
level = "info"
[daemon]
shutdown_grace = 20
[tftp]
listen = ["{LOOPBACK}:{self.port}"]
root = "{self.root}"
timeout = {timeout}
client_rate = 0
{extra_tftp}
{extra}
""")

    def start(self):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([PXEDUST, "serve", "--config", self.config],
                                     stdout=self.logf, stderr=self.logf)
        deadline = time.time() + 20
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"pxedust exited: {self.logtext()}")
                s.sendto(rrq("__probe__"), (LOOPBACK, self.port))
                try:
                    s.recvfrom(1024)
                    return self
                except socket.timeout:
                    pass
        raise RuntimeError("pxedust did not answer")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()
        return self.proc.returncode if self.proc else None

    def logtext(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def curl_get(port, name, out, blksize=None, host=LOOPBACK, timeout=300, no_options=False):
    cmd = ["curl", "-s", "-S", "--max-time", str(timeout), "-o", out]
    if no_options:  # plain RFC 1350: curl otherwise asks for a `timeout` of several seconds
        cmd.append("--tftp-no-options")
    if blksize:
        cmd += ["--tftp-blksize", str(blksize)]
    cmd.append(f"tftp://{host}:{port}/{name}")
    return subprocess.run(cmd, capture_output=True, timeout=timeout + 10)


def tftp_hpa_get(port, name, out, host=LOOPBACK, timeout=300, mode="binary"):
    # tftp-hpa prints errors but exits 0 for some of them; callers check the file's content.
    return subprocess.run(["tftp", "-m", mode, host, str(port), "-c", "get", name, out],
                          capture_output=True, timeout=timeout)


def atftp_get(port, name, out, blksize=None, windowsize=None, host=LOOPBACK, timeout=300, client_timeout=None):
    cmd = ["atftp"]
    if blksize:
        cmd += ["--option", f"blksize {blksize}"]
    if windowsize:
        cmd += ["--option", f"windowsize {windowsize}"]
    if client_timeout:
        cmd += ["--tftp-timeout", str(client_timeout)]
    cmd += ["-g", "-r", name, "-l", out, host, str(port)]
    return subprocess.run(cmd, capture_output=True, timeout=timeout)


class LossyRelay:
    """Stands between TFTP clients and a server: clients talk to relay.port as if it were the
    server's request port. Each server TID gets its own relay port, so clients still see a distinct
    TID per transfer. Datagrams in both directions are dropped, duplicated or reordered at the given
    rates, from a seeded generator."""

    def __init__(self, server_port, drop=0.05, dup=0.05, reorder=0.05, seed=1):
        self.server = (LOOPBACK, server_port)
        self.rng = random.Random(seed)
        self.drop, self.dup, self.reorder = drop, dup, reorder
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind((LOOPBACK, 0))
        self.port = self.front.getsockname()[1]
        # client addr -> upstream socket (speaks to the server for that client)
        self.upstream = {}
        # upstream socket -> (client addr, {server tid -> downstream socket})
        self.routes = {}
        # downstream socket -> (upstream socket, server tid addr, client addr)
        self.downstream = {}
        self.held = []  # (socket, data, addr) held back for reordering
        self.counts = {"dropped": 0, "duplicated": 0, "reordered": 0, "forwarded": 0}
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def send(self, sock, data, addr):
        r = self.rng.random()
        if r < self.drop:
            self.counts["dropped"] += 1
            return
        if r < self.drop + self.reorder and not self.held:
            self.counts["reordered"] += 1
            self.held.append((sock, data, addr))
            return
        sock.sendto(data, addr)
        self.counts["forwarded"] += 1
        if r > 1 - self.dup:
            self.counts["duplicated"] += 1
            sock.sendto(data, addr)
        while self.held:  # release a held packet after the one that overtook it
            hs, hd, ha = self.held.pop()
            hs.sendto(hd, ha)

    def run(self):
        while not self.stopping:
            socks = [self.front] + list(self.routes) + list(self.downstream)
            ready, _, _ = select.select(socks, [], [], 0.1)
            if not ready and self.held:
                hs, hd, ha = self.held.pop()
                hs.sendto(hd, ha)
            for s in ready:
                try:
                    data, addr = s.recvfrom(70000)
                except OSError:
                    continue
                if s is self.front:  # a request from a client to the server's request port
                    up = self.upstream.get(addr)
                    if up is None:
                        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        up.bind((LOOPBACK, 0))
                        self.upstream[addr] = up
                        self.routes[up] = (addr, {})
                    self.send(up, data, self.server)
                elif s in self.routes:  # from the server (some TID) to a client
                    client, tids = self.routes[s]
                    down = tids.get(addr)
                    if down is None:
                        down = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        down.bind((LOOPBACK, 0))
                        tids[addr] = down
                        self.downstream[down] = (s, addr, client)
                    self.send(down, data, client)
                else:  # from a client to a transfer's TID
                    up, tid, client = self.downstream[s]
                    self.send(up, data, tid)

    def close(self):
        self.stopping = True
        self.thread.join()
        for s in [self.front] + list(self.routes) + list(self.downstream):
            s.close()
