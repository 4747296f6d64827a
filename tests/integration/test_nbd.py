"""NBD server integration tests: real clients (libnbd's nbdinfo and nbdcopy, QEMU's nbd driver through
qemu-img/qemu-io, fio's nbd engine with verify) and a small raw-socket client against pxedust started
as a process on 127.0.0.1 (port 0, read back from daemon.json), with a block store made by
`pxedust image import`. The same hosts' disks are served over iSCSI too, and read back through it.
TLS (classes Tls and TlsRequired): credentials made in the test's directory with certtool (a CA and
a server certificate for 127.0.0.1) and psktool (a key per host), used by nbdinfo/nbdcopy (nbds://
URIs), QEMU (tls-creds-x509, tls-creds-psk) and the raw client.
A missing tool makes its test skip, not fail."""

import hashlib
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pxedust_daemon  # noqa: E402
import pxedust_state  # noqa: E402

PXEDUST = os.environ.get("PXEDUST_BIN", "build/asan/bin/pxedust")
LOOPBACK = "127.0.0.1"
IQN = "iqn.2026-11.org.pxedust:"
MIB = 1 << 20


def have(*tools):
    return all(shutil.which(t) for t in tools)


def run(args, timeout=300, cwd=None):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Server:
    """pxedust serve with [nbd] and [iscsi] on 127.0.0.1, a 40 MiB base image (over the 32 MiB maximum
    payload, so that a READ of more is refused for its length, not for the export's end) and four hosts:
    node1 (ip 127.0.0.1: every loopback client of ours), node2 (ip 127.0.0.2: a client bound there),
    far (iscsi_allow 10.99.0.0/16: no client here), fio (ip 127.0.0.1, for the verify workload)."""

    def __init__(self, base_size=40 << 20, nbd_extra=None, hosts_extra=""):
        self.hosts_extra = hosts_extra
        self.dir = tempfile.mkdtemp(prefix="pxedust-nbd-")
        # More [nbd] keys, made in the server's directory before the config is first written (TLS
        # credentials must exist then: every load of the config reads them).
        self.nbd_extra = (nbd_extra(self.dir) if callable(nbd_extra) else nbd_extra) if nbd_extra else ""
        self.nbd_port = 0
        self.iscsi_port = 0
        self.config = os.path.join(self.dir, "pxedust.toml")
        self.store = os.path.join(self.dir, "store")
        self.daemon = pxedust_daemon.Daemon(PXEDUST, self.config, self.dir)
        self.base = os.path.join(self.dir, "base.img")
        with open(self.base, "wb") as f:
            f.write(random.Random(7).randbytes(base_size))
        with open(self.base, "rb") as f:
            self.base_bytes = f.read()
        self.write_config()
        env = dict(os.environ, PXEDUST_CONFIG=self.config)
        subprocess.run([PXEDUST, "image", "import", self.base, "--name", "base"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def write_config(self):
        with open(self.config, "w") as f:
            f.write(f"""
[log]
level = "info"
[daemon]
shutdown_grace = 5
[storage]
dir = "{self.store}"
[iscsi]
listen = ["{LOOPBACK}:{self.iscsi_port}"]
[nbd]
listen = ["{LOOPBACK}:{self.nbd_port}"]
{self.nbd_extra}
[[host]]
name = "node1"
ip = "127.0.0.1"
image = "base"
[[host]]
name = "node2"
ip = "127.0.0.2"
image = "base"
[[host]]
name = "far"
image = "base"
iscsi_allow = ["10.99.0.0/16"]
[[host]]
name = "fio"
image = "base"
iscsi_allow = ["127.0.0.0/8"]
{self.hosts_extra}
""")

    def start(self):
        if self.nbd_port == 0 and self.daemon.state is not None:
            # A restart asks for the ports the first start was given.
            self.nbd_port = self.daemon.endpoint("nbd")[1]
            self.iscsi_port = self.daemon.endpoint("iscsi")[1]
            self.write_config()
        self.daemon.start(services=("nbd", "iscsi"))
        self.port = self.daemon.endpoint("nbd")[1]
        self.iport = self.daemon.endpoint("iscsi")[1]

    @property
    def proc(self):
        return self.daemon.proc

    def uri(self, export="node1"):
        return f"nbd://{LOOPBACK}:{self.port}/{export}"

    def iscsi_uri(self, host="node1"):
        return f"iscsi://{LOOPBACK}:{self.iport}/{IQN}{host}/0"

    def metrics(self):
        return self.daemon.metrics()

    def cleanup(self):
        self.daemon.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


class ServerCase(unittest.TestCase):
    SERVER = {}  # Server() arguments

    def make_server(self):
        return Server(**self.SERVER)

    def setUp(self):
        if not os.path.exists(PXEDUST):
            self.skipTest("no pxedust binary")
        self.s = self.make_server()
        self.s.start()

    def tearDown(self):
        alive = self.s.proc is not None and self.s.proc.poll() is None
        log = self.s.daemon.log_text()
        self.s.cleanup()
        self.assertNotIn("AddressSanitizer", log)
        self.assertNotIn("runtime error", log)
        if not alive:
            self.fail("pxedust died")

    def read_all(self, uri_or_opts, iscsi=False):
        """The whole disk through qemu-img convert (QEMU's nbd or iscsi driver)."""
        out = os.path.join(self.s.dir, "read.raw")
        r = run(["qemu-img", "convert", "-f", "raw", "-O", "raw", uri_or_opts, out])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out, "rb") as f:
            data = f.read()
        os.unlink(out)
        return data


# ---- a raw client: what real clients will not send ------------------------------------------------

class RawClient:
    """Fixed newstyle, structured replies, base:allocation; optionally from another source address."""

    def __init__(self, port, source=None):
        self.sock = socket.create_connection((LOOPBACK, port), timeout=10,
                                             source_address=(source, 0) if source else None)
        hello = self.recv(18)
        assert hello[:16] == b"NBDMAGICIHAVEOPT", hello
        self.sock.sendall(struct.pack(">I", 3))  # FIXED_NEWSTYLE | NO_ZEROES

    def close(self):
        self.sock.close()

    def recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("closed by the server")
            buf += chunk
        return buf

    def option(self, opt, data=b""):
        self.sock.sendall(b"IHAVEOPT" + struct.pack(">II", opt, len(data)) + data)
        return self.replies()

    def replies(self):
        replies = []
        while True:
            _, _, rtype, length = struct.unpack(">QIII", self.recv(20))
            payload = self.recv(length)
            replies.append((rtype, payload))
            if rtype == 1 or rtype & 0x80000000:
                return replies

    def list(self):
        return [p[4:4 + struct.unpack(">I", p[:4])[0]].decode() for t, p in self.option(3) if t == 2]

    def go(self, name):
        n = name.encode()
        assert self.option(8)[-1][0] == 1  # STRUCTURED_REPLY
        ctx = b"base:allocation"
        self.option(10, struct.pack(">I", len(n)) + n + struct.pack(">II", 1, len(ctx)) + ctx)
        return self.option(7, struct.pack(">I", len(n)) + n + struct.pack(">H", 0))[-1][0]

    def request(self, cmd, offset, length, flags=0, cookie=1, payload=b""):
        self.sock.sendall(struct.pack(">IHHQQI", 0x25609513, flags, cmd, cookie, offset, length) + payload)
        magic, rflags, rtype, rcookie, rlen = struct.unpack(">IHHQI", self.recv(20))
        assert magic == 0x668e33ef, hex(magic)
        body = self.recv(rlen)
        error = struct.unpack(">I", body[:4])[0] if rtype & 0x8000 else 0
        return rtype, rcookie, error, body


class Tools(ServerCase):
    def test_list_shows_only_the_clients_own_exports(self):
        if not have("nbdinfo"):
            self.skipTest("libnbd-bin missing")
        r = run(["nbdinfo", "--list", "--json", self.s.uri("")])
        self.assertEqual(r.returncode, 0, r.stderr)
        names = sorted(e["export-name"] for e in json.loads(r.stdout)["exports"])
        self.assertEqual(names, ["fio", "node1"])  # not node2 (127.0.0.2) nor far (10.99/16)
        r = run(["nbdinfo", "--json", self.s.uri("node1")])
        self.assertEqual(r.returncode, 0, r.stderr)
        info = json.loads(r.stdout)["exports"][0]
        self.assertEqual(info["export-size"], len(self.s.base_bytes))
        self.assertTrue(info["can_flush"] and info["can_fua"] and info["can_trim"] and info["can_zero"])
        self.assertTrue(info["can_multi_conn"] and info["can_cache"] and info["can_fast_zero"])
        self.assertFalse(info["is_read_only"])
        self.assertIn("base:allocation", info["contexts"])

    def test_not_its_own_export_is_refused(self):
        if not have("nbdinfo"):
            self.skipTest("libnbd-bin missing")
        for export in ("node2", "far", "nobody"):
            r = run(["nbdinfo", self.s.uri(export)])
            self.assertNotEqual(r.returncode, 0, export)
        # From node2's own address: its export, and not node1's.
        c = RawClient(self.s.port, source="127.0.0.2")
        self.assertEqual(c.list(), ["fio", "node2"])  # fio admits 127.0.0.0/8
        self.assertEqual(c.go("node1"), 0x80000002)  # NBD_REP_ERR_POLICY
        self.assertEqual(c.go("node2"), 1)
        rtype, _, error, body = c.request(0, 0, 4096)
        self.assertEqual((rtype, error), (1, 0))
        self.assertEqual(body[8:], self.s.base_bytes[:4096])
        c.close()
        m = self.s.metrics()
        self.assertGreaterEqual(m.get("pxedust_nbd_exports_refused_total", 0), 4)
        ev = self.s.daemon.wait_event("node2", "disk.failed")
        self.assertEqual(ev["kind"], "disk.failed")
        self.s.daemon.wait_event("node2", "disk.login")

    def test_map_agrees_with_written_trimmed_and_untouched(self):
        if not have("nbdinfo", "qemu-io"):
            self.skipTest("libnbd-bin or qemu-utils missing")
        # write -z -u may leave a hole (WRITE_ZEROES); plain write -z sends NO_HOLE: zeros written as data.
        r = run(["qemu-io", "-f", "raw", "-c", "write -P 0xab 0 1M", "-c", "discard 1M 1M", "-c", "write -z -u 3M 1M",
                 "-c", "write -z 4M 1M", "-c", "flush", self.s.uri("node1")])
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        r = run(["nbdinfo", "--map", "--json", self.s.uri("node1")])
        self.assertEqual(r.returncode, 0, r.stderr)
        extents = [(e["offset"], e["length"], e["type"]) for e in json.loads(r.stdout)]
        size = len(self.s.base_bytes)
        self.assertEqual(extents, [(0, MIB, 0),                    # written: data
                                   (MIB, MIB, 3),                  # trimmed: hole, zero
                                   (2 * MIB, MIB, 1),              # never written: the base's
                                   (3 * MIB, MIB, 3),              # write-zeroed: hole, zero
                                   (4 * MIB, MIB, 0),              # zeroed with NO_HOLE: data
                                   (5 * MIB, size - 5 * MIB, 1)])
        # ... and the bytes say the same.
        data = self.read_all(self.s.uri("node1"))
        self.assertEqual(data[:MIB], b"\xab" * MIB)
        self.assertEqual(data[MIB:2 * MIB], bytes(MIB))
        self.assertEqual(data[2 * MIB:3 * MIB], self.s.base_bytes[2 * MIB:3 * MIB])
        self.assertEqual(data[3 * MIB:5 * MIB], bytes(2 * MIB))
        self.assertEqual(data[5 * MIB:], self.s.base_bytes[5 * MIB:])

    def test_nbdcopy_whole_export_is_base_plus_overlay(self):
        if not have("nbdcopy", "qemu-io"):
            self.skipTest("libnbd-bin or qemu-utils missing")
        r = run(["qemu-io", "-f", "raw", "-c", "write -P 0x11 512 4k", "-c", "write -P 0x22 7M 3M", "-c",
                 "discard 20M 2M", "-c", "flush", self.s.uri("node1")])
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        want = bytearray(self.s.base_bytes)
        want[512:512 + 4096] = b"\x11" * 4096
        want[7 * MIB:10 * MIB] = b"\x22" * (3 * MIB)
        want[20 * MIB:22 * MIB] = bytes(2 * MIB)
        out = os.path.join(self.s.dir, "copy.raw")
        r = run(["nbdcopy", "--flush", self.s.uri("node1"), out])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out, "rb") as f:
            got = f.read()
        self.assertEqual(len(got), len(want))
        self.assertEqual(sha256(got), sha256(bytes(want)))
        print(f"\nnbdcopy: {len(got)} bytes, sha256 {sha256(got)} = base+overlay", file=sys.stderr)
        # And the other way: a file copied onto the export reads back identical.
        src = os.path.join(self.s.dir, "src.raw")
        with open(src, "wb") as f:
            f.write(random.Random(9).randbytes(len(want)))
        r = run(["nbdcopy", src, self.s.uri("node1")])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(["nbdcopy", self.s.uri("node1"), out])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(src, "rb") as a, open(out, "rb") as b:
            self.assertEqual(sha256(a.read()), sha256(b.read()))


class ImageExports(ServerCase):
    """[nbd] image_exports: the base images as read-only exports "images/NAME" (the newest version
    when opened) and "images/NAME/vN", for clients a host booting that image admits."""
    SERVER = {"nbd_extra": "image_exports = true",
              "hosts_extra": '[[host]]\nname = "lab"\nip = "10.98.0.5"\nimage = "other"\n'}

    def env(self):
        return dict(os.environ, PXEDUST_CONFIG=self.s.config)

    def test_read_only_bases_by_version_for_the_hosts_that_boot_them(self):
        if not have("nbdinfo", "nbdcopy", "qemu-io"):
            self.skipTest("libnbd-bin or qemu-utils missing")
        other = os.path.join(self.s.dir, "other.img")
        with open(other, "wb") as f:
            f.write(random.Random(9).randbytes(4 << 20))
        subprocess.run([PXEDUST, "image", "import", other, "--name", "other"], env=self.env(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = run(["nbdinfo", "--list", "--json", self.s.uri("")])
        self.assertEqual(r.returncode, 0, r.stderr)
        names = sorted(e["export-name"] for e in json.loads(r.stdout)["exports"])
        self.assertEqual(names, ["fio", "images/base", "node1"])  # not images/other: only lab boots it
        r = run(["nbdinfo", "--json", self.s.uri("images/base")])
        self.assertEqual(r.returncode, 0, r.stderr)
        info = json.loads(r.stdout)["exports"][0]
        self.assertTrue(info["is_read_only"])
        self.assertEqual(info["export-size"], len(self.s.base_bytes))

        def copy(export):
            out = os.path.join(self.s.dir, "copy.raw")
            r = run(["nbdcopy", self.s.uri(export), out])
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out, "rb") as f:
                data = f.read()
            os.unlink(out)
            return data

        self.assertEqual(sha256(copy("images/base")), sha256(self.s.base_bytes))
        # Read-only: a write is refused, and the base is unchanged.
        r = run(["qemu-io", "-f", "raw", "-c", "write -P 0x55 0 4096", self.s.uri("images/base")])
        self.assertTrue(r.returncode != 0 or "error" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr)
        for refused in ("images/other", "images/nosuch", "images/base/v0", "images/base/v9", "images/../base"):
            r = run(["nbdinfo", self.s.uri(refused)])
            self.assertNotEqual(r.returncode, 0, refused)
        # A new version: the newest name follows it, the versioned one stays.
        v2 = bytes(b ^ 0xFF for b in self.s.base_bytes)
        path = os.path.join(self.s.dir, "v2.img")
        with open(path, "wb") as f:
            f.write(v2)
        subprocess.run([PXEDUST, "image", "import", path, "--name", "base"], env=self.env(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.assertEqual(sha256(copy("images/base")), sha256(v2))
        self.assertEqual(sha256(copy("images/base/v1")), sha256(self.s.base_bytes))
        self.assertEqual(sha256(copy("images/base/v2")), sha256(v2))
        self.assertEqual(sha256(self.read_all(self.s.uri("node1"))), sha256(self.s.base_bytes))  # its overlay's base


class Qemu(ServerCase):
    def test_writes_persist_across_restart_and_read_the_same_over_iscsi(self):
        if not have("qemu-img", "qemu-io"):
            self.skipTest("qemu-utils missing")
        self.assertEqual(self.read_all(self.s.uri("node1")), self.s.base_bytes)
        r = run(["qemu-io", "-f", "raw", "-c", "write -P 0xab 0 1M", "-c", "write -P 0xcd 5M 300k",
                 "-c", "write -P 0xef 12345k 4k", "-c", "flush", self.s.uri("node1")])
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        want = bytearray(self.s.base_bytes)
        want[0:MIB] = b"\xab" * MIB
        want[5 * MIB:5 * MIB + 300 * 1024] = b"\xcd" * (300 * 1024)
        want[12345 * 1024:12349 * 1024] = b"\xef" * 4096
        want = bytes(want)
        self.assertEqual(sha256(self.read_all(self.s.uri("node1"))), sha256(want))
        self.s.daemon.stop()
        self.s.start()
        self.assertEqual(sha256(self.read_all(self.s.uri("node1"))), sha256(want), "lost across restart")
        via_iscsi = self.read_all(self.s.iscsi_uri("node1"))
        self.assertEqual(sha256(via_iscsi), sha256(want), "iSCSI reads other bytes than NBD wrote")
        # qemu's nbd driver writes with FUA and zeroes; the same overlay through iSCSI sees them too.
        r = run(["qemu-io", "-f", "raw", "-c", "write -P 0x5a -f 8M 64k", "-c", "write -z 9M 64k",
                 self.s.uri("node1")])
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        via_iscsi = self.read_all(self.s.iscsi_uri("node1"))
        self.assertEqual(via_iscsi[8 * MIB:8 * MIB + 65536], b"\x5a" * 65536)
        self.assertEqual(via_iscsi[9 * MIB:9 * MIB + 65536], bytes(65536))
        m = self.s.metrics()
        self.assertGreater(m.get('pxedust_nbd_requests_total{command="write"}', 0), 0)
        self.assertGreaterEqual(m.get("pxedust_nbd_received_bytes_total", 0), 65536)  # since the restart
        print(f"\nqemu: nbd == iscsi after restart, sha256 {sha256(want)}", file=sys.stderr)


class Fio(ServerCase):
    """fio's nbd engine, random writes 512 B..1 MiB (512-aligned), verified with crc32c."""

    def fio(self, iodepth):
        name = f"verify-qd{iodepth}"
        r = run(["fio", "--name", name, "--ioengine=nbd", f"--uri={self.s.uri('fio')}", "--rw=randwrite",
                 "--bsrange=512-1m", "--blockalign=512", "--size=32m", "--loops=4", f"--iodepth={iodepth}",
                 "--verify=crc32c", "--verify_fatal=1", "--verify_state_save=0", "--do_verify=1", "--randrepeat=0",
                 "--output-format=json"], timeout=900, cwd=self.s.dir)  # any file fio leaves goes with the server's dir
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
        job = json.loads(r.stdout[r.stdout.index("{"):])["jobs"][0]
        self.assertEqual(job["error"], 0)
        return job

    def test_verify_at_iodepth_1_16_64(self):
        if not have("fio"):
            self.skipTest("fio missing")
        if "nbd" not in run(["fio", "--enghelp"]).stdout:
            self.skipTest("fio without its nbd engine")
        for qd in (1, 16, 64):
            job = self.fio(qd)
            print(f"\nfio qd{qd}: wrote {job['write']['io_bytes']} B in {job['write']['total_ios']} writes, "
                  f"verified {job['read']['io_bytes']} B, errors {job['error']}", file=sys.stderr)
            self.assertGreater(job["read"]["io_bytes"], 0)
        m = self.s.metrics()
        self.assertEqual(m.get('pxedust_nbd_request_errors_total{error="eio"}', 0), 0)


class BadInput(ServerCase):
    """Bad offsets, over-max lengths and unknown commands get the spec's errors; the connection survives."""

    def test_errors_and_the_connection_carries_on(self):
        size = len(self.s.base_bytes)
        c = RawClient(self.s.port)
        self.assertEqual(c.go("node1"), 1)
        EINVAL, ENOSPC, EOVERFLOW = 22, 28, 75
        self.assertEqual(c.request(0, size - 512, 1024)[2], EINVAL)              # READ past the end
        self.assertEqual(c.request(0, 2 ** 64 - 512, 1024)[2], EINVAL)           # offset + length wraps
        self.assertEqual(c.request(0, 0, (32 << 20) + 1)[2], EOVERFLOW)          # over the max payload
        self.assertEqual(c.request(1, size, 4096, payload=b"\x01" * 4096)[2], ENOSPC)  # WRITE past the end, drained
        self.assertEqual(c.request(99, 0, 0)[2], EINVAL)                         # unknown command
        self.assertEqual(c.request(0, 0, 512, flags=0x40)[2], EINVAL)            # unknown flag
        self.assertEqual(c.request(3, 512, 0)[2], EINVAL)                        # FLUSH with an offset
        self.assertEqual(c.request(7, size, 1)[2], EINVAL)                       # BLOCK_STATUS past the end
        rtype, cookie, error, body = c.request(0, 4096, 512, cookie=77)
        self.assertEqual((rtype, cookie, error), (1, 77, 0))
        self.assertEqual(body[8:], self.s.base_bytes[4096:4608])
        m = self.s.metrics()
        self.assertGreaterEqual(m.get('pxedust_nbd_request_errors_total{error="einval"}', 0), 6)
        self.assertEqual(m.get("pxedust_nbd_drained_bytes_total", 0), 4096)
        # A header with a bad magic ends the connection (there is no next header to find).
        c.sock.sendall(b"\x00" * 28)
        with self.assertRaises((EOFError, ConnectionResetError)):
            c.recv(1)
        c.close()
        self.assertTrue(pxedust_state.wait_for("bad_request drop",
                                               lambda: self.s.metrics().get('pxedust_nbd_drops_total{reason="bad_request"}', 0) >= 1,
                                               10, proc=self.s.proc))


# ---- TLS ---------------------------------------------------------------------------------------------

NBD_REP_ACK, NBD_REP_ERR_POLICY, NBD_REP_ERR_TLS_REQD = 1, 0x80000002, 0x80000005
NBD_OPT_STARTTLS, NBD_OPT_LIST = 5, 3


class Credentials:
    """A CA, a server certificate it signed for 127.0.0.1 and localhost, and psktool keys for node1 and
    fio, under `dir`; client-side directories laid out as libnbd and QEMU read them."""

    def __init__(self, dir):
        self.dir = os.path.join(dir, "tls")
        os.makedirs(self.dir)
        self.run(["certtool", "--generate-privkey", "--key-type=ecdsa", "--outfile", self.path("ca-key.pem")])
        self.write("ca.info", "cn = pxedust test CA\nca\ncert_signing_key\nexpiration_days = 2\n")
        self.run(["certtool", "--generate-self-signed", "--load-privkey", self.path("ca-key.pem"),
                  "--template", self.path("ca.info"), "--outfile", self.path("ca-cert.pem")])
        self.run(["certtool", "--generate-privkey", "--key-type=ecdsa", "--outfile", self.path("server-key.pem")])
        self.write("server.info", "cn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\n"
                                  "tls_www_server\nencryption_key\nsigning_key\nexpiration_days = 2\n")
        self.run(["certtool", "--generate-certificate", "--load-privkey", self.path("server-key.pem"),
                  "--load-ca-certificate", self.path("ca-cert.pem"), "--load-ca-privkey", self.path("ca-key.pem"),
                  "--template", self.path("server.info"), "--outfile", self.path("server-cert.pem")])
        # The clients' side: the CA certificate alone (libnbd tls-certificates=DIR, QEMU tls-creds-x509).
        self.x509_dir = self.path("client-x509")
        os.makedirs(self.x509_dir)
        shutil.copy(self.path("ca-cert.pem"), self.x509_dir)
        # The server's key file: one line per identity; each client gets its own line (QEMU reads
        # DIR/keys.psk), and one client a wrong key for node1.
        for name in ("node1", "fio"):
            self.run(["psktool", "-u", name, "-p", self.path("server.psk")])
        with open(self.path("server.psk")) as f:
            lines = {line.split(":")[0]: line for line in f if ":" in line}
        self.psk_dirs = {}
        for name, line in lines.items():
            d = self.path(f"client-psk-{name}")
            os.makedirs(d)
            with open(os.path.join(d, "keys.psk"), "w") as f:
                f.write(line)
            self.psk_dirs[name] = d
        d = self.path("client-psk-wrong")
        os.makedirs(d)
        self.run(["psktool", "-u", "node1", "-p", os.path.join(d, "keys.psk")])  # a fresh, different key
        self.psk_dirs["wrong"] = d

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)

    def run(self, args):
        r = run(args, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"{' '.join(args)}: {r.stderr}")

    def nbd_keys(self, mode):
        return (f'tls = "{mode}"\ntls_certificate = "{self.path("server-cert.pem")}"\n'
                f'tls_key = "{self.path("server-key.pem")}"\ntls_psk_file = "{self.path("server.psk")}"\n'
                f'handshake_timeout = 3\n')


class TlsCase(ServerCase):
    mode = "optional"

    def make_server(self):
        if not have("certtool", "psktool"):
            self.skipTest("gnutls-bin (certtool, psktool) missing")
        self.creds = None

        def keys(dir):
            self.creds = Credentials(dir)
            return self.creds.nbd_keys(self.mode)
        return Server(nbd_extra=keys)

    # libnbd takes the TLS user name from the URI's user part (1.14 has no tls-username parameter,
    # and without a user it asks getlogin_r(), which fails without a terminal).
    def x509_uri(self, export="node1"):
        return f"nbds://client@{LOOPBACK}:{self.s.port}/{export}?tls-certificates={self.creds.x509_dir}"

    def psk_uri(self, export="node1", user="node1"):
        name = "node1" if user == "wrong" else user
        return (f"nbds://{name}@{LOOPBACK}:{self.s.port}/{export}?tls-psk-file="
                f"{os.path.join(self.creds.psk_dirs[user], 'keys.psk')}")

    def qemu_x509(self):
        return f"tls-creds-x509,id=tls0,dir={self.creds.x509_dir},endpoint=client"

    def qemu_psk(self, user="node1"):
        name = "node1" if user == "wrong" else user
        return f"tls-creds-psk,id=tls0,dir={self.creds.psk_dirs[user]},username={name},endpoint=client"

    def qemu_opts(self, export="node1"):
        return f"driver=nbd,host={LOOPBACK},port={self.s.port},export={export},tls-creds=tls0"

    def nbdinfo_list(self, uri):
        r = run(["nbdinfo", "--list", "--json", uri])
        self.assertEqual(r.returncode, 0, r.stderr)
        return sorted(e["export-name"] for e in json.loads(r.stdout)["exports"])

    def starttls(self):
        """A raw client that has sent NBD_OPT_STARTTLS and got its ACK: the next bytes are TLS's."""
        c = RawClient(self.s.port)
        (rtype, _), = c.option(NBD_OPT_STARTTLS)
        self.assertEqual(rtype, NBD_REP_ACK)
        return c

    def wait_metric(self, name, at_least):
        return pxedust_state.wait_for(f"{name} >= {at_least}", lambda: self.s.metrics().get(name, 0) >= at_least,
                                      10, proc=self.s.proc)

    def assert_closed(self, c):
        c.sock.settimeout(10)
        try:
            while c.sock.recv(4096):
                pass  # an alert, then the end
        except ConnectionResetError:
            pass
        c.close()


class Tls(TlsCase):
    """tls = "optional": real clients over X.509 and PSK, the same bytes as in the clear, bad TLS input."""

    def test_nbdinfo_over_x509_and_psk(self):
        if not have("nbdinfo"):
            self.skipTest("libnbd-bin missing")
        for uri in (self.x509_uri(), self.psk_uri()):
            r = run(["nbdinfo", "--json", uri])
            self.assertEqual(r.returncode, 0, r.stderr)
            info = json.loads(r.stdout)
            self.assertTrue(info["TLS"], uri)
            self.assertEqual(info["exports"][0]["export-size"], len(self.s.base_bytes))
            self.assertIn("base:allocation", info["exports"][0]["contexts"])
        # LIST: the certificate leaves the address rule alone; a PSK identity sees its own host only.
        self.assertEqual(self.nbdinfo_list(self.x509_uri("")), ["fio", "node1"])
        self.assertEqual(self.nbdinfo_list(self.psk_uri("", "node1")), ["node1"])
        self.assertEqual(self.nbdinfo_list(self.psk_uri("", "fio")), ["fio"])
        # fio admits 127.0.0.0/8, but not identity node1; node1's address is fine, its identity is not fio's.
        self.assertNotEqual(run(["nbdinfo", self.psk_uri("fio", "node1")]).returncode, 0)
        self.assertNotEqual(run(["nbdinfo", self.psk_uri("node1", "fio")]).returncode, 0)
        m = self.s.metrics()
        self.assertGreaterEqual(m.get("pxedust_nbd_tls_handshakes_total", 0), 7)
        self.assertEqual(m.get("pxedust_nbd_tls_handshake_failures_total", 0), 0)

    def test_qemu_writes_and_reads_back_over_x509_and_psk(self):
        if not have("qemu-io"):
            self.skipTest("qemu-utils missing")
        r = run(["qemu-io", "--object", self.qemu_x509(), "--image-opts", self.qemu_opts(),
                 "-c", "write -P 0x5c 1M 3M", "-c", "write -P 0x3a -f 7M 64k", "-c", "flush"])
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        r = run(["qemu-io", "--object", self.qemu_psk(), "--image-opts", self.qemu_opts(),
                 "-c", "read -P 0x5c 1M 3M", "-c", "read -P 0x3a 7M 64k", "-c", "write -P 0xc5 20M 1M"])
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        self.assertNotIn("Pattern verification failed", r.stdout)
        r = run(["qemu-io", "--object", self.qemu_x509(), "--image-opts", self.qemu_opts(),
                 "-c", "read -P 0xc5 20M 1M"])
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        self.assertNotIn("Pattern verification failed", r.stdout)
        # And the same bytes in the clear ("optional").
        data = self.read_all(self.s.uri("node1"))
        self.assertEqual(data[MIB:4 * MIB], b"\x5c" * (3 * MIB))
        self.assertEqual(data[20 * MIB:21 * MIB], b"\xc5" * MIB)
        self.assertEqual(data[:MIB], self.s.base_bytes[:MIB])

    def test_nbdcopy_over_tls_is_what_plain_nbd_reads(self):
        if not have("nbdcopy", "qemu-io"):
            self.skipTest("libnbd-bin or qemu-utils missing")
        r = run(["qemu-io", "-f", "raw", "-c", "write -P 0x77 3M 5M", "-c", "discard 30M 2M", self.s.uri("node1")])
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        copies = {}
        for name, uri in (("plain", self.s.uri("node1")), ("x509", self.x509_uri()), ("psk", self.psk_uri())):
            out = os.path.join(self.s.dir, f"{name}.raw")
            r = run(["nbdcopy", "--flush", uri, out])
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out, "rb") as f:
                copies[name] = sha256(f.read())
            os.unlink(out)
        self.assertEqual(copies["x509"], copies["plain"])
        self.assertEqual(copies["psk"], copies["plain"])
        # ... the other way too: a file copied onto the export over TLS reads back the same in the clear.
        src = os.path.join(self.s.dir, "src.raw")
        with open(src, "wb") as f:
            f.write(random.Random(11).randbytes(len(self.s.base_bytes)))
        r = run(["nbdcopy", src, self.psk_uri()])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(src, "rb") as f:
            self.assertEqual(sha256(self.read_all(self.s.uri("node1"))), sha256(f.read()))
        print(f"\nnbdcopy over TLS: sha256 {copies['psk']} = plain", file=sys.stderr)

    def test_garbage_after_starttls_closes_that_connection_only(self):
        if not have("nbdinfo"):
            self.skipTest("libnbd-bin missing")
        # A session in transmission (in the clear: "optional"), kept open through the bad ones.
        keep = RawClient(self.s.port)
        self.assertEqual(keep.go("node1"), NBD_REP_ACK)
        junk = self.starttls()
        junk.sock.sendall(b"IHAVEOPT" + b"\x00" * 300)  # not a ClientHello
        self.assert_closed(junk)
        half = self.starttls()
        half.sock.sendall(bytes.fromhex("16030102000100"))  # a ClientHello's first bytes, then gone
        half.close()
        silent = self.starttls()  # STARTTLS and nothing: handshake_timeout (3 s) applies
        self.assert_closed(silent)
        self.wait_metric("pxedust_nbd_tls_handshake_failures_total", 3)
        m = self.s.metrics()
        self.assertGreaterEqual(m.get('pxedust_nbd_drops_total{reason="tls_failed"}', 0), 2)
        self.assertGreaterEqual(m.get('pxedust_nbd_drops_total{reason="handshake_timeout"}', 0), 1)
        # Everyone else is served: the session that was open, and new TLS clients.
        rtype, _, error, body = keep.request(0, 0, 4096)
        self.assertEqual((rtype, error, body[8:]), (1, 0, self.s.base_bytes[:4096]))
        keep.close()
        r = run(["nbdinfo", "--json", self.psk_uri()])
        self.assertEqual(r.returncode, 0, r.stderr)


class TlsRequired(TlsCase):
    """tls = "require": clients in the clear are refused with the TLS-required error, a wrong key fails
    its handshake, a reload with a missing key file changes nothing; the server keeps serving."""

    mode = "require"

    def test_plain_client_is_refused_with_tls_required(self):
        if not have("nbdinfo", "qemu-img"):
            self.skipTest("libnbd-bin or qemu-utils missing")
        # QEMU names NBD_REP_ERR_TLS_REQD; libnbd 1.14 reports it as ENOTSUP (newer ones name it).
        r = run(["qemu-img", "info", "-f", "raw", self.s.uri("node1")])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("TLS negotiation required", r.stderr)
        r = run(["nbdinfo", self.s.uri("node1")])
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue("Operation not supported" in r.stderr or "requires TLS" in r.stderr, r.stderr)
        c = RawClient(self.s.port)
        self.assertEqual(c.option(NBD_OPT_LIST)[-1][0], NBD_REP_ERR_TLS_REQD)
        go = struct.pack(">I", 5) + b"node1" + struct.pack(">H", 0)
        self.assertEqual(c.option(7, go)[-1][0], NBD_REP_ERR_TLS_REQD)
        c.close()
        # The server carries on, over TLS.
        r = run(["nbdinfo", "--json", self.x509_uri()])
        self.assertEqual(r.returncode, 0, r.stderr)
        # LIST over TLS shows each client what it may open, no more.
        self.assertEqual(self.nbdinfo_list(self.psk_uri("", "fio")), ["fio"])
        self.assertEqual(self.nbdinfo_list(self.x509_uri("")), ["fio", "node1"])
        self.assertEqual(self.s.metrics().get("pxedust_nbd_exports_refused_total", 0), 0)  # refused before lookup

    def test_wrong_psk_fails_the_handshake_and_others_are_served(self):
        if not have("nbdinfo", "qemu-io"):
            self.skipTest("libnbd-bin or qemu-utils missing")
        r = run(["nbdinfo", self.psk_uri("node1", "wrong")])
        self.assertNotEqual(r.returncode, 0)
        r = run(["qemu-io", "--object", self.qemu_psk("wrong"), "--image-opts", self.qemu_opts(), "-c", "read 0 4k"])
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.wait_metric("pxedust_nbd_tls_handshake_failures_total", 2)
        r = run(["qemu-io", "--object", self.qemu_psk(), "--image-opts", self.qemu_opts(),
                 "-c", "write -P 0x42 0 64k", "-c", "read -P 0x42 0 64k"])
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        self.assertNotIn("Pattern verification failed", r.stdout)
        self.assertGreaterEqual(self.s.metrics().get('pxedust_nbd_drops_total{reason="tls_failed"}', 0), 2)

    def test_reload_with_a_missing_key_changes_nothing(self):
        if not have("nbdinfo"):
            self.skipTest("libnbd-bin missing")
        key = self.creds.path("server-key.pem")
        os.rename(key, key + ".gone")
        try:
            state = self.s.daemon.reload(expect="refused")
            self.assertIn("tls_key", state["reloads"]["last_refusal"])
            r = run([PXEDUST, "check-config", self.s.config])
            self.assertEqual(r.returncode, 1)
            self.assertIn("nbd.tls_key: cannot open", r.stderr)
            # Still serving with what it had.
            r = run(["nbdinfo", "--json", self.x509_uri()])
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            os.rename(key + ".gone", key)
        self.s.daemon.reload(expect="applied")
        r = run(["nbdinfo", "--json", self.psk_uri()])
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
