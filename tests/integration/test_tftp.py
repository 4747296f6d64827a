"""TFTP against the clients users run: curl, tftp-hpa and atftp, with pxedust started as a
process on loopback. Every download is checked byte for byte (sha256)."""

import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

from tftplab import (LOOPBACK, FaultyRelay, Server, atftp_get, curl_get, make_file, rrq, seeded_faults, sha256,
                     tftp_hpa_get)
import pxedust_state  # noqa: E402  (tests/lib, put on the path by tftplab)

SIZES = {"s0": 0, "s1": 1, "s511": 511, "s512": 512, "s513": 513, "s1m1": (1 << 20) + 1}
LOSSY = "s128k"  # enough blocks for drops, duplicates and reordering to happen, small enough to be quick
LOSSY_SIZE = 128 << 10
BIG = "s64m"  # 64 MiB: at blksize 512 the block number rolls over past 65535


def read_text(path):
    with open(path) as f:
        return f.read()


def setUpModule():
    global ROOT, HASHES
    ROOT = tempfile.mkdtemp(prefix="pxedust-it-root-")
    HASHES = {}
    for i, (name, size) in enumerate(SIZES.items()):
        make_file(os.path.join(ROOT, name), size, seed=i)
    make_file(os.path.join(ROOT, BIG), 64 << 20, seed=99)
    make_file(os.path.join(ROOT, LOSSY), LOSSY_SIZE, seed=98)
    os.makedirs(os.path.join(ROOT, "hosts", "alpha"))
    with open(os.path.join(ROOT, "hosts", "alpha", "boot.cfg"), "w") as f:
        f.write("alpha\n")
    with open(os.path.join(ROOT, "boot.cfg"), "w") as f:
        f.write("shared\n")
    with open(os.path.join(ROOT, "text.cfg"), "wb") as f:
        f.write(b"line one\nline two\n")
    for name in list(SIZES) + [BIG, LOSSY]:
        HASHES[name] = sha256(os.path.join(ROOT, name))


def tearDownModule():
    shutil.rmtree(ROOT, ignore_errors=True)


class ServerCase(unittest.TestCase):
    extra_tftp = ""
    timeout = 1.0

    def setUp(self):
        self.server = Server(ROOT, self.extra_tftp, timeout=self.timeout).start()
        self.out = tempfile.mkdtemp(prefix="pxedust-it-out-")

    def tearDown(self):
        rc = self.server.stop()
        log = self.server.logtext()
        self.server.cleanup()
        shutil.rmtree(self.out, ignore_errors=True)
        self.assertEqual(rc, 0, f"pxedust exit code {rc}; log:\n{log[-4000:]}")
        self.assertNotIn("ERROR: AddressSanitizer", log)
        self.assertNotIn("runtime error:", log)

    def path(self, name):
        return os.path.join(self.out, name)

    def check(self, result, name, got):
        self.assertEqual(result.returncode, 0, f"{result.args}: {result.stderr.decode(errors='replace')}")
        self.assertTrue(os.path.exists(got), f"{result.args}: no output file")
        self.assertEqual(sha256(got), HASHES[name], f"{result.args}: content differs")


class Downloads(ServerCase):
    def test_curl_every_size_and_blksize(self):
        # curl 7.88 cannot fetch an empty file over TFTP from any server (it fails the same way
        # against tftpd-hpa: "getpeername() failed"), so size 0 is covered by tftp-hpa and atftp.
        for name in (n for n in SIZES if SIZES[n] > 0):
            for blksize in (None, 512, 1468, 8192, 65464):
                with self.subTest(name=name, blksize=blksize):
                    out = self.path(f"curl-{name}-{blksize}")
                    self.check(curl_get(self.server.port, name, out, blksize), name, out)

    def test_tftp_hpa_every_size(self):
        for name in SIZES:
            with self.subTest(name=name):
                out = self.path(f"hpa-{name}")
                self.check(tftp_hpa_get(self.server.port, name, out), name, out)

    def test_atftp_blksize_and_windowsize(self):
        for blksize in (512, 1468, 8192, 65464):
            for windowsize in (1, 8, 64):
                for name in ("s0", "s513", "s1m1"):
                    with self.subTest(name=name, blksize=blksize, windowsize=windowsize):
                        out = self.path(f"atftp-{name}-{blksize}-{windowsize}")
                        self.check(atftp_get(self.server.port, name, out, blksize, windowsize), name, out)

    def test_rollover_64mib_at_blksize_512(self):
        out = self.path("curl-big")
        self.check(curl_get(self.server.port, BIG, out, 512), BIG, out)
        out = self.path("atftp-big")
        self.check(atftp_get(self.server.port, BIG, out, 512, 1), BIG, out)
        out = self.path("atftp-big-w8")
        self.check(atftp_get(self.server.port, BIG, out, 512, 8), BIG, out)

    def test_rollover_tftp_hpa(self):
        out = self.path("hpa-big")
        self.check(tftp_hpa_get(self.server.port, BIG, out), BIG, out)

    def test_netascii(self):
        out = self.path("text")
        r = subprocess.run(["tftp", "-m", "netascii", LOOPBACK, str(self.server.port), "-c", "get", "text.cfg", out],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"line one\nline two\n")  # the client converts CR LF back


class PerHost(ServerCase):
    extra_tftp = 'per_host = [ { request = "boot.cfg", file = "hosts/{name}/boot.cfg" } ]\n' \
                 '[[host]]\nname = "alpha"\nip = "127.0.0.2"\n'

    def test_file_chosen_by_client_ip(self):
        out = self.path("a")
        r = subprocess.run(["curl", "-s", "-S", "--interface", "127.0.0.2", "-o", out,
                            f"tftp://{LOOPBACK}:{self.server.port}/boot.cfg"], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(read_text(out), "alpha\n")
        out = self.path("b")
        r = subprocess.run(["curl", "-s", "-S", "--interface", "127.0.0.3", "-o", out,
                            f"tftp://{LOOPBACK}:{self.server.port}/boot.cfg"], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(read_text(out), "shared\n")


def blocks(size, blksize):
    """The number of DATA blocks of a file: the last one is shorter than blksize, possibly empty."""
    return size // blksize + 1


class Loss(ServerCase):
    """Each client downloads through a relay that drops, duplicates and delays datagrams on a fixed
    schedule (tftplab.FaultyRelay): every kind of packet goes missing at least once — the request,
    the OACK, DATA mid-file and the last block, ACKs mid-file, the ACK of the OACK and the last ACK —
    and the file still arrives byte for byte. Each schedule is explicit faults plus a few picked by a
    fixed seed; which datagram a fault hits depends only on its kind, block number and how often it
    has passed, so a run does the same thing every time. Every fault must find its datagram.

    atftp 0.8.0 aborts ("tftp: unexpected OACK", then ERROR 0 to the server) on any second OACK
    (tftp_file.c, tftp_receive_file: `if (oacks > 1)` outside multicast) instead of answering the
    duplicate with ACK 0 again. A server resends its last packet, here the OACK, when no answer comes
    in time (RFC 1350 §2; RFC 2347 puts the OACK/ACK 0 exchange before the data), so atftp cannot
    survive a lost ACK 0, a duplicated OACK, or an ACK 0 slower than the server's timeout. This is
    what made the old randomly lossy version of this test flaky. atftp's schedules lose the OACK
    itself (pxedust resends it; atftp sees one) but never ACK 0, and atftp asks for a 1 s `timeout`
    (and waits 2 s itself) so that a busy machine does not make the server resend the OACK. curl,
    which ACKs a repeated OACK again, takes the lost ACK 0 and the duplicated OACK."""
    timeout = 0.3  # the server's retransmission timeout when the client negotiates none

    def through(self, name, faults, last_block, fetch):
        """Runs fetch(relay_port, out) through a relay with these faults; checks the file and that
        every fault happened. Failures show the schedule and every datagram's fate."""
        relay = FaultyRelay(self.server.port, faults, last_block)
        out = self.path(name)
        try:
            result = fetch(relay.port, out)
        finally:
            relay.close()
        detail = f"\nfaults: {faults}\ndatagrams:\n{relay.trace_text()}"
        self.assertEqual(result.returncode, 0,
                         f"{result.args}: {result.stderr.decode(errors='replace')}{detail}")
        self.assertTrue(os.path.exists(out), f"{result.args}: no output file{detail}")
        self.assertEqual(sha256(out), HASHES[LOSSY], f"{result.args}: content differs{detail}")
        self.assertEqual(relay.unused(), [], f"faults that found no datagram{detail}")

    @unittest.skipUnless(shutil.which("atftp"), "atftp not installed")
    def test_atftp_through_loss(self):
        for seed, (blksize, windowsize) in enumerate(((512, 1), (1468, 8), (8192, 4))):
            with self.subTest(blksize=blksize, windowsize=windowsize):
                n = blocks(LOSSY_SIZE, blksize)
                acks = n // windowsize  # at least this many ACKs follow ACK 0, whatever is lost
                faults = seeded_faults(seed, ["drop RRQ" if seed == 0 else "dup RRQ", "drop OACK", "drop DATA 1",
                                              f"drop ACK {windowsize}", f"dup ACK {2 * windowsize}",
                                              "drop DATA last", "delay DATA last#2"], n - 1, acks, 2)
                self.through(f"atftp-{blksize}-{windowsize}", faults, n,
                             lambda port, out: atftp_get(port, LOSSY, out, blksize, windowsize,
                                                         client_timeout=2, timeout=300,
                                                         options=[("timeout", "1")]))

    @unittest.skipUnless(shutil.which("tftp"), "tftp-hpa not installed")
    def test_tftp_hpa_through_loss(self):
        n = blocks(LOSSY_SIZE, 512)
        faults = seeded_faults(10, ["dup RRQ", "drop DATA 1", "dup DATA 2", "drop ACK 3", "delay ACK 4",
                                    "drop DATA last", "drop ACK last"], n - 1, n - 1, 2)
        self.through("hpa", faults, n, lambda port, out: tftp_hpa_get(port, LOSSY, out, timeout=300))

    @unittest.skipUnless(shutil.which("curl"), "curl not installed")
    def test_curl_through_loss(self):
        # Without options: with them curl asks the server for a multi-second `timeout`, which the
        # server honours, so each loss would cost seconds (test_curl_lost_ack_of_the_oack has one).
        n = blocks(LOSSY_SIZE, 512)
        faults = seeded_faults(11, ["delay RRQ", "drop DATA 1#1", "drop DATA 1#2", "dup ACK 1", "drop ACK 5",
                                    "delay DATA 9", "dup DATA last", "drop ACK last"], n - 1, n - 1, 2)
        self.through("curl", faults, n,
                     lambda port, out: curl_get(port, LOSSY, out, timeout=300, no_options=True))

    @unittest.skipUnless(shutil.which("curl"), "curl not installed")
    def test_curl_lost_ack_of_the_oack(self):
        # The OACK comes twice, as a resent one would after a lost ACK 0 (atftp's cases show pxedust
        # resending it); curl answers each with ACK 0, the first is lost, the second starts the data.
        # Not both: curl then resends ACK 0 after the very timeout (the 6 s it asks for) that makes
        # the server resend the OACK, and which comes first is a race.
        n = blocks(LOSSY_SIZE, 1468)
        self.through("curl-oack", ["dup OACK", "drop ACK 0"], n,
                     lambda port, out: curl_get(port, LOSSY, out, 1468, timeout=300))


class BadInput(ServerCase):
    """Hostile datagrams at the request port and at a running transfer: each gets the right ERROR
    (or silence), and a transfer running in parallel completes intact."""

    CASES = [
        # (description, datagram, expected error code or None for silence)
        ("empty datagram", b"", 4),
        ("truncated opcode", b"\x00", 4),
        ("unknown opcode", b"\x00\x63x\x00octet\x00", 4),
        ("missing NUL after name", b"\x00\x01s1", 4),
        ("missing mode", b"\x00\x01s1\x00", 4),
        ("bad mode", b"\x00\x01s1\x00mail\x00", 4),
        ("600-byte name", rrq("a" * 600), 1),
        ("blksize 0", rrq("s1", options=[("blksize", "0")]), "data"),
        ("blksize 7", rrq("s1", options=[("blksize", "7")]), "data"),
        ("blksize 65465", rrq("s1", options=[("blksize", "65465")]), "oack:blksize=65464"),
        ("blksize -1", rrq("s1", options=[("blksize", "-1")]), "data"),
        ("blksize abc", rrq("s1", options=[("blksize", "abc")]), "data"),
        ("tsize abc", rrq("s1", options=[("tsize", "abc")]), "data"),
        ("WRQ", b"\x00\x02s1\x00octet\x00", 2),
        ("DATA to port 69", b"\x00\x03\x00\x01hello", 4),
        ("ACK to port 69", b"\x00\x04\x00\x01", 4),
        ("ERROR to port 69", b"\x00\x05\x00\x00x\x00", None),
        ("dot-dot", rrq("../../etc/passwd"), 2),
        ("backslash dot-dot", rrq("..\\..\\etc\\passwd"), 2),
        ("absolute path", rrq("/etc/passwd"), 1),
        ("directory", rrq("hosts"), 2),
        ("NUL inside name", b"\x00\x01s1\x00/../x\x00octet\x00", 4),
    ]

    def test_each_case_while_a_transfer_runs(self):
        out = self.path("big")
        result = {}
        t = threading.Thread(target=lambda: result.update(r=atftp_get(self.server.port, BIG, out, 1468, 1)))
        t.start()
        time.sleep(0.3)
        for desc, data, expect in self.CASES:
            # A fresh client port per case, as real clients do.
            with self.subTest(case=desc), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((LOOPBACK, 0))
                s.settimeout(1.0)
                s.sendto(data, (LOOPBACK, self.server.port))
                try:
                    reply, addr = s.recvfrom(70000)
                except socket.timeout:
                    reply, addr = None, None
                if expect is None:
                    self.assertIsNone(reply, f"{desc}: expected silence")
                    continue
                self.assertIsNotNone(reply, f"{desc}: no reply")
                self.assertNotEqual(addr[1], self.server.port, f"{desc}: reply came from the request port")
                op = struct.unpack("!H", reply[:2])[0]
                if expect == "data":
                    self.assertEqual(op, 3, f"{desc}: expected DATA 1 (option left out), got {reply[:40]!r}")
                    s.sendto(struct.pack("!HH", 5, 0) + b"done\x00", addr)  # end that transfer
                elif isinstance(expect, str) and expect.startswith("oack:"):
                    self.assertEqual(op, 6, f"{desc}: expected OACK, got {reply[:40]!r}")
                    self.assertIn(expect[5:].replace("=", "\x00").encode() + b"\x00", reply)
                    s.sendto(struct.pack("!HH", 5, 0) + b"done\x00", addr)
                else:
                    self.assertEqual(op, 5, f"{desc}: expected ERROR {expect}, got {reply[:40]!r}")
                    code = struct.unpack("!H", reply[2:4])[0]
                    self.assertEqual(code, expect, f"{desc}: {reply!r}")
                    self.assertNotIn(ROOT.encode(), reply, f"{desc}: error text reveals the root")
        t.join(300)
        self.assertFalse(t.is_alive())
        self.check(result["r"], BIG, out)


    def test_wrong_tid_and_garbage_at_a_running_transfer(self):
        """A scripted lock-step transfer; an intruder's packets to its TID get ERROR 5, the
        client's own garbage-free transfer completes with the right bytes."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as intruder:
            c.bind((LOOPBACK, 0))
            c.settimeout(5)
            intruder.bind((LOOPBACK, 0))
            intruder.settimeout(5)
            c.sendto(rrq("s1m1"), (LOOPBACK, self.server.port))
            got = bytearray()
            block = 0
            while True:
                data, tid = c.recvfrom(70000)
                op, num = struct.unpack("!HH", data[:4])
                self.assertEqual(op, 3)
                if num == (block + 1) & 0xFFFF:
                    got += data[4:]
                    block += 1
                if block == 3:  # mid-transfer: hostile packets at the transfer's TID
                    for junk in (struct.pack("!HH", 4, block), b"", b"\x00", struct.pack("!HH", 3, 9) + b"x"):
                        intruder.sendto(junk, tid)
                        reply, src = intruder.recvfrom(1000)
                        self.assertEqual(struct.unpack("!HH", reply[:4]), (5, 5))
                        self.assertEqual(src, tid)
                c.sendto(struct.pack("!HH", 4, num), tid)
                if len(data) - 4 < 512:
                    break
        self.assertEqual(len(got), SIZES["s1m1"])
        with open(os.path.join(ROOT, "s1m1"), "rb") as f:
            self.assertEqual(bytes(got), f.read())

    def test_file_truncated_under_a_transfer(self):
        """The file is cut to nothing mid-transfer: the transfer ends with an ERROR (no crash), and
        the server goes on serving."""
        path = os.path.join(ROOT, "shrinks")
        make_file(path, 1 << 20, seed=7)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                c.bind((LOOPBACK, 0))
                c.settimeout(5)
                c.sendto(rrq("shrinks"), (LOOPBACK, self.server.port))
                block, reply = 0, None
                for _ in range(200):
                    data, tid = c.recvfrom(70000)
                    op = struct.unpack("!H", data[:2])[0]
                    if op == 5:
                        reply = data
                        break
                    self.assertEqual(op, 3, data[:40])
                    block = struct.unpack("!H", data[2:4])[0]
                    if block == 3:
                        os.truncate(path, 0)
                    c.sendto(struct.pack("!HH", 4, block), tid)
                self.assertIsNotNone(reply, "no ERROR within 200 blocks of the truncation")
                self.assertEqual(struct.unpack("!H", reply[2:4])[0], 0, reply)
                self.assertGreaterEqual(block, 3)
        finally:
            os.unlink(path)
        self.server.wait_metric("pxedust_tftp_transfers_failed_total")
        out = self.path("after")
        self.check(curl_get(self.server.port, "s1", out), "s1", out)


class Signals(unittest.TestCase):
    def setUp(self):
        self.out = tempfile.mkdtemp(prefix="pxedust-it-out-")

    def tearDown(self):
        shutil.rmtree(self.out, ignore_errors=True)

    def start_big_transfer(self, server, name="big"):
        out = os.path.join(self.out, name)
        result = {}
        t = threading.Thread(target=lambda: result.update(r=atftp_get(server.port, BIG, out, 512, 1)))
        t.start()
        server.wait_metric("pxedust_tftp_transfers_active")
        return t, result, out

    def test_sighup_reload_keeps_transfers_and_refuses_bad_config(self):
        server = Server(ROOT).start()
        try:
            t, result, out = self.start_big_transfer(server)
            # A good reload: a per-host rule appears without a restart.
            server.write_config('per_host = [ { request = "boot.cfg", file = "hosts/{name}/boot.cfg" } ]\n'
                                '[[host]]\nname = "alpha"\nip = "127.0.0.1"\n')
            server.daemon.reload("applied")
            got = os.path.join(self.out, "cfg")
            self.assertEqual(curl_get(server.port, "boot.cfg", got).returncode, 0)
            self.assertEqual(read_text(got), "alpha\n")
            # A bad reload is refused with the error and the running config stays.
            with open(server.config, "a") as f:
                f.write("\nbogus_key = 1\n")
            state = server.daemon.reload("refused")
            self.assertIn("bogus_key: unknown key", state["reloads"]["last_refusal"])
            self.assertEqual(curl_get(server.port, "boot.cfg", got).returncode, 0)
            self.assertEqual(read_text(got), "alpha\n")
            t.join(300)
            self.assertEqual(sha256(out), HASHES[BIG])
            self.assertEqual(server.stop(), 0)
        finally:
            server.cleanup()

    def test_sigterm_lets_transfers_finish(self):
        server = Server(ROOT).start()
        try:
            t, result, out = self.start_big_transfer(server)
            server.signal(signal.SIGTERM)
            time.sleep(0.3)
            # No new transfers once shutting down.
            r = curl_get(server.port, "s1", os.path.join(self.out, "late"), timeout=3)
            self.assertNotEqual(r.returncode, 0)
            t.join(300)
            self.assertEqual(result["r"].returncode, 0)
            self.assertEqual(sha256(out), HASHES[BIG])
            self.assertEqual(server.proc.wait(30), 0)
            self.assertEqual(pxedust_state.read_json(server.daemon.state_dir, "daemon.json")["state"], "stopped")
        finally:
            server.cleanup()


class Cli(unittest.TestCase):
    def run_cli(self, *args):
        from tftplab import PXEDUST
        return subprocess.run([PXEDUST, *args], capture_output=True, timeout=30)

    def test_check_config(self):
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write('[tftp]\nroot = "/srv"\nmax_blksize = 99999\n')
        try:
            r = self.run_cli("check-config", f.name)
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"{f.name}:3:15: tftp.max_blksize: expected an integer in 512..65464, got 99999",
                          r.stderr.decode())
            with open(f.name, "w") as g:
                g.write('[tftp]\nroot = "/srv"\n')
            r = self.run_cli("check-config", f.name)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("tftp: listening on 0.0.0.0:69", r.stdout.decode())
        finally:
            os.unlink(f.name)

    def test_help_everywhere_and_version(self):
        for sub in ([], ["serve"], ["check-config"], ["status"], ["hosts"], ["demo"], ["version"]):
            r = self.run_cli(*sub, "--help")
            self.assertEqual(r.returncode, 0, sub)
            self.assertIn(b"Usage", r.stdout)
        # The summary names the services pxedust has, and no other.
        top = self.run_cli("--help").stdout.decode()
        self.assertIn("(DHCP, TFTP, HTTP, iSCSI)", top)
        for absent in ("NBD", "NFS"):
            self.assertNotIn(absent, top.splitlines()[0])
        self.assertRegex(self.run_cli("version").stdout.decode(), r"^pxedust \d+\.\d+\.\d+")

    def test_serve_missing_config(self):
        r = self.run_cli("serve", "--config", "/nonexistent/pxedust.toml")
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/pxedust.toml", r.stderr.decode())


if __name__ == "__main__":
    unittest.main()
