"""Helpers for the TFTP integration tests: a pxedust process on loopback, test files, and a UDP
relay that drops, duplicates and delays datagrams on a fixed schedule. Everything binds 127.0.0.1
only; processes are started and stopped by PID."""

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
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pxedust_daemon  # noqa: E402
import pxedust_state  # noqa: E402

PXEDUST = os.environ.get("PXEDUST_BIN", "build/asan/bin/pxedust")
LOOPBACK = "127.0.0.1"


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
    """pxedust serve with a generated config, listening on a loopback port the kernel picks (port 0;
    daemon.json says which), its state read through tests/lib/pxedust_daemon.py."""

    def __init__(self, root, extra_tftp="", extra="", timeout=1.0):
        self.dir = tempfile.mkdtemp(prefix="pxedust-it-")
        self.root = root
        self.port = None
        self.config = os.path.join(self.dir, "pxedust.toml")
        self.daemon = pxedust_daemon.Daemon(PXEDUST, self.config, self.dir)
        self.log = self.daemon.log
        self.write_config(extra_tftp, extra, timeout)

    def write_config(self, extra_tftp="", extra="", timeout=1.0):
        with open(self.config, "w") as f:
            f.write(f"""[log]
level = "info"
[daemon]
shutdown_grace = 20
[tftp]
listen = ["{LOOPBACK}:0"]
root = "{self.root}"
timeout = {timeout}
client_rate = 0
{extra_tftp}
{extra}
""")

    def start(self):
        self.daemon.start()
        self.port = self.daemon.endpoint("tftp")[1]
        return self

    @property
    def proc(self):
        return self.daemon.proc

    def signal(self, sig):
        self.daemon.proc.send_signal(sig)

    def stop(self):
        return self.daemon.stop(timeout=30)

    def metric(self, sample):
        return self.daemon.metrics().get(sample, 0)

    def wait_metric(self, sample, at_least=1, timeout=20):
        pxedust_state.wait_for(f"{sample} >= {at_least}", lambda: self.metric(sample) >= at_least, timeout,
                               interval=0.05, proc=self.daemon.proc)

    def logtext(self):
        return self.daemon.log_text()

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


def atftp_get(port, name, out, blksize=None, windowsize=None, host=LOOPBACK, timeout=300, client_timeout=None,
              options=()):
    cmd = ["atftp"]
    if blksize:
        cmd += ["--option", f"blksize {blksize}"]
    if windowsize:
        cmd += ["--option", f"windowsize {windowsize}"]
    for k, v in options:
        cmd += ["--option", f"{k} {v}"]
    if client_timeout:
        cmd += ["--tftp-timeout", str(client_timeout)]
    cmd += ["-g", "-r", name, "-l", out, host, str(port)]
    return subprocess.run(cmd, capture_output=True, timeout=timeout)


OPCODES = {1: "RRQ", 2: "WRQ", 3: "DATA", 4: "ACK", 5: "ERROR", 6: "OACK"}


def describe(data):
    """A datagram as the trace shows it: "DATA 3 (512 B)", "ACK 0", "OACK blksize=8192 ..."."""
    if len(data) < 2:
        return f"short datagram ({len(data)} B)"
    kind = OPCODES.get(struct.unpack("!H", data[:2])[0], "op?")
    if kind == "DATA" and len(data) >= 4:
        return f"DATA {struct.unpack('!H', data[2:4])[0]} ({len(data) - 4} B)"
    if kind == "ACK" and len(data) >= 4:
        return f"ACK {struct.unpack('!H', data[2:4])[0]}"
    if kind == "OACK":
        words = data[2:].split(b"\0")[:-1]
        return "OACK " + " ".join(f"{k.decode()}={v.decode()}" for k, v in zip(words[::2], words[1::2]))
    if kind == "ERROR" and len(data) >= 4:
        return f"ERROR {struct.unpack('!H', data[2:4])[0]} {data[4:].rstrip(bytes(1)).decode(errors='replace')!r}"
    return kind


class Fault:
    """One scheduled fault, written as "ACTION KIND [WHICH]":
      ACTION  drop | dup (sent twice) | delay (sent after the next datagram the same way, or 50 ms later)
      KIND    RRQ | OACK | DATA | ACK | ERROR
      WHICH   N      the datagram with block number N (DATA, ACK), the first time it passes
              N#k    ... the k-th time it passes (a retransmission)
              @k     the k-th datagram of that kind, whatever its number
              last   the file's last block (DATA) or its ACK; last#k as N#k
              (none) the first datagram of that kind
    e.g. "drop OACK", "drop DATA 3", "dup DATA 3#2", "drop ACK @2", "delay DATA last"."""

    def __init__(self, text):
        self.text = text
        words = text.split()
        self.action, self.kind = words[0], words[1]
        assert self.action in ("drop", "dup", "delay"), text
        assert self.kind in OPCODES.values(), text
        which = words[2] if len(words) > 2 else "@1"
        self.ordinal = self.block = None
        self.nth = 1
        if which.startswith("@"):
            self.ordinal = int(which[1:])
        else:
            block, _, nth = which.partition("#")
            self.block, self.nth = block if block == "last" else int(block), int(nth or 1)
        self.hits = 0

    def matches(self, kind, block, ordinal, nth, last_block):
        if kind != self.kind:
            return False
        if self.ordinal is not None:
            return ordinal == self.ordinal
        want = last_block if self.block == "last" else self.block
        return block == want and nth == self.nth

    def __repr__(self):
        return repr(self.text)


def seeded_faults(seed, faults, data_blocks, acks, count):
    """`faults`, then up to `count` faults on DATA blocks (2..data_blocks) and `count` on ACKs (the
    2nd..acks-th), picked by a generator seeded with `seed` among those `faults` does not name yet:
    the same seed always names the same datagrams, whatever the timing."""
    named = [Fault(f) for f in faults]
    rng = random.Random(seed)
    free_blocks = [b for b in range(2, data_blocks + 1) if all(f.kind != "DATA" or f.block != b for f in named)]
    free_acks = [k for k in range(2, acks + 1) if all(f.kind != "ACK" or f.ordinal != k for f in named)]
    blocks = rng.sample(free_blocks, min(count, len(free_blocks)))
    ordinals = rng.sample(free_acks, min(count, len(free_acks)))
    actions = ("drop", "dup", "delay")
    return (list(faults) + [f"{actions[i % 3]} DATA {b}" for i, b in enumerate(blocks)] +
            [f"{actions[i % 3]} ACK @{k}" for i, k in enumerate(ordinals)])


class FaultyRelay:
    """Stands between one TFTP client and a server and applies a fixed schedule of faults (Fault):
    which datagrams are dropped, duplicated or delayed depends only on the schedule and on each
    datagram's kind, block number and how often it has passed, never on timing or a shared random
    stream. The client talks to relay.port as if it were the server's request port; each server TID
    gets its own relay port, so the client still sees a distinct TID per transfer.

    relay.trace lists every datagram with what happened to it; relay.unused() names the faults that
    never found their datagram (a test asserts there are none, so each fault really happened)."""

    HOLD_SECONDS = 0.05

    def __init__(self, server_port, faults=(), last_block=None):
        self.server = (LOOPBACK, server_port)
        self.faults = [Fault(f) for f in faults]
        self.last_block = last_block
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind((LOOPBACK, 0))
        self.port = self.front.getsockname()[1]
        self.upstream = {}    # client addr -> upstream socket (speaks to the server for that client)
        self.routes = {}      # upstream socket -> (client addr, {server tid -> downstream socket})
        self.downstream = {}  # downstream socket -> (upstream socket, server tid addr, client addr)
        self.seen = {}        # (kind, block) -> times passed; kind -> datagrams of that kind
        self.held = {}        # direction -> (socket, data, addr, release time): one delayed datagram
        self.trace = []
        self.t0 = time.monotonic()
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def faults_for(self, data):
        kind = OPCODES.get(struct.unpack("!H", data[:2])[0]) if len(data) >= 2 else None
        block = struct.unpack("!H", data[2:4])[0] if kind in ("DATA", "ACK") and len(data) >= 4 else None
        ordinal = self.seen[kind] = self.seen.get(kind, 0) + 1
        nth = self.seen[(kind, block)] = self.seen.get((kind, block), 0) + 1
        hit = [f for f in self.faults if f.matches(kind, block, ordinal, nth, self.last_block)]
        for f in hit:
            f.hits += 1
        return hit

    def send(self, direction, sock, data, addr):
        # Faults that name the same datagram all count as found; the strongest one is applied.
        hit = self.faults_for(data)
        actions = {f.action for f in hit}
        action = next((a for a in ("drop", "delay", "dup") if a in actions), "pass")
        line = f"{time.monotonic() - self.t0:7.3f} {direction} {describe(data)}"
        self.trace.append(f"{line}  [{', '.join(f.text for f in hit)}]" if hit else line)
        held = self.held.pop(direction, None)
        if action == "delay":
            self.held[direction] = (sock, data, addr, time.monotonic() + self.HOLD_SECONDS)
        elif action != "drop":
            sock.sendto(data, addr)
            if action == "dup":
                sock.sendto(data, addr)
        if held:  # a delayed datagram goes right after the one that overtook it
            self.release(direction, held)

    def release(self, direction, held):
        sock, data, addr, _ = held
        self.trace.append(f"{time.monotonic() - self.t0:7.3f} {direction} {describe(data)}  [released]")
        sock.sendto(data, addr)

    def run(self):
        while True:
            # Once closing, drain what is queued without waiting: a client's last ACK, sent just
            # before it exited, is still forwarded (and its fault found).
            stopping = self.stopping
            socks = [self.front] + list(self.routes) + list(self.downstream)
            ready, _, _ = select.select(socks, [], [], 0 if stopping else 0.01 if self.held else 0.1)
            if stopping and not ready:
                break
            for direction, held in list(self.held.items()):
                if time.monotonic() >= held[3]:
                    del self.held[direction]
                    self.release(direction, held)
            for s in ready:
                try:
                    data, addr = s.recvfrom(70000)
                except OSError:  # e.g. ICMP port unreachable from a client that has exited
                    continue
                if s is self.front:  # a request from a client to the server's request port
                    up = self.upstream.get(addr)
                    if up is None:
                        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        up.bind((LOOPBACK, 0))
                        self.upstream[addr] = up
                        self.routes[up] = (addr, {})
                    self.send("C->S", up, data, self.server)
                elif s in self.routes:  # from the server (some TID) to a client
                    client, tids = self.routes[s]
                    down = tids.get(addr)
                    if down is None:
                        down = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        down.bind((LOOPBACK, 0))
                        tids[addr] = down
                        self.downstream[down] = (s, addr, client)
                    self.send("S->C", down, data, client)
                else:  # from a client to a transfer's TID
                    up, tid, client = self.downstream[s]
                    self.send("C->S", up, data, tid)

    def unused(self):
        return [f.text for f in self.faults if f.hits == 0]

    def trace_text(self):
        return "\n".join(self.trace)

    def close(self):
        self.stopping = True
        self.thread.join()
        for s in [self.front] + list(self.routes) + list(self.downstream):
            s.close()
