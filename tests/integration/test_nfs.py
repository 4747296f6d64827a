"""NFS server integration tests: libnfs's tools (nfs-ls, nfs-cat, nfs-cp from libnfs-utils) against
pxedust started as a process on 127.0.0.1 (port 0, read back from daemon.json), exporting an ext4
image made with mke2fs -d from a tree the test writes and imported with `pxedust image import`.
Every file of the tree lists once with its type, mode, owner and size and reads byte-identical; a
directory of 20,000 entries lists completely; writes are refused (read-only); a client no host
admits cannot mount; a file handle taken before a restart still reads after it (a raw RPC client).
A missing tool makes its test skip, not fail."""

import os
import random
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pxedust_daemon  # noqa: E402

PXEDUST = os.environ.get("PXEDUST_BIN", "build/asan/bin/pxedust")
LOOPBACK = "127.0.0.1"
MANY = 20000


def have(*tools):
    return all(shutil.which(t) for t in tools)


def run(args, timeout=300):
    return subprocess.run(args, capture_output=True, timeout=timeout)


def make_tree(t):
    rnd = random.Random(19)
    os.makedirs(os.path.join(t, "etc", "ssh"))
    with open(os.path.join(t, "etc", "hostname"), "w") as f:
        f.write("diskless\n")
    with open(os.path.join(t, "etc", "ssh", "sshd_config"), "w") as f:
        f.write("PermitRootLogin prohibit-password\n" * 50)
    with open(os.path.join(t, "big.bin"), "wb") as f:
        f.write(rnd.randbytes(5 * (1 << 20) + 123))
    with open(os.path.join(t, "sparse.bin"), "wb") as f:  # a hole, then data
        f.seek(3 << 20)
        f.write(b"end of a sparse file\n")
    open(os.path.join(t, "empty"), "w").close()
    os.symlink("etc/hostname", os.path.join(t, "short-link"))
    os.symlink("x" * 200, os.path.join(t, "long-link"))  # a slow symlink (in a data block)
    os.link(os.path.join(t, "etc", "hostname"), os.path.join(t, "hard-link"))
    with open(os.path.join(t, "owned"), "w") as f:
        f.write("owned\n")
    os.chown(os.path.join(t, "owned"), 1234, 5678)
    os.chmod(os.path.join(t, "owned"), 0o640)
    os.mkfifo(os.path.join(t, "fifo"))
    many = os.path.join(t, "many")
    os.makedirs(many)
    for i in range(MANY):
        open(os.path.join(many, f"entry-{i:05d}"), "w").close()


# The tree and its ext4 image, made once for the module (mke2fs -d of 20,000 entries takes a while).
IMAGE = {}


def setUpModule():
    if not have("mke2fs"):
        return
    work = tempfile.mkdtemp(prefix="pxedust-nfs-image-")
    IMAGE.update(work=work, tree=os.path.join(work, "tree"), img=os.path.join(work, "root.img"))
    make_tree(IMAGE["tree"])
    r = run(["mke2fs", "-q", "-t", "ext4", "-N", "32768", "-d", IMAGE["tree"], "-F", IMAGE["img"], "64M"])
    assert r.returncode == 0, r.stderr


def tearDownModule():
    if IMAGE:
        shutil.rmtree(IMAGE["work"], ignore_errors=True)


class Server:
    """pxedust serve with [nfs] on 127.0.0.1 and an image "deb" built from `tree`; host "node1" admits
    127.0.0.0/8, host "far" boots image "other" and admits 10.99.0.0/16 only."""

    def __init__(self, extra=""):
        self.extra = extra  # more [nfs] keys
        self.dir = tempfile.mkdtemp(prefix="pxedust-nfs-")
        self.tree = IMAGE["tree"]
        self.port = 0
        self.config = os.path.join(self.dir, "pxedust.toml")
        self.daemon = pxedust_daemon.Daemon(PXEDUST, self.config, self.dir)
        self.write_config()
        env = dict(os.environ, PXEDUST_CONFIG=self.config)
        subprocess.run([PXEDUST, "image", "import", IMAGE["img"], "--name", "deb"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def write_config(self):
        with open(self.config, "w") as f:
            f.write(f"""
[log]
level = "info"
[daemon]
shutdown_grace = 2
[storage]
dir = "{os.path.join(self.dir, 'store')}"
[nfs]
listen = ["{LOOPBACK}:{self.port}"]
{self.extra}
[[host]]
name = "node1"
image = "deb"
iscsi_allow = ["127.0.0.0/8"]
[[host]]
name = "far"
image = "other"
iscsi_allow = ["10.99.0.0/16"]
""")

    def start(self):
        if self.port == 0 and self.daemon.state is not None:
            self.port = self.daemon.endpoint("nfs")[1]  # a restart asks for the port the first start got
            self.write_config()
        self.daemon.start(services=("nfs",))
        self.port = self.daemon.endpoint("nfs")[1]

    def url(self, path):
        return f"nfs://{LOOPBACK}{path}?nfsport={self.port}&mountport={self.port}"

    def cleanup(self):
        self.daemon.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


class RpcClient:
    """Just enough ONC RPC over TCP for MNT, LOOKUP and READ with AUTH_SYS (RFC 5531, RFC 1813)."""

    def __init__(self, port, udp=False):
        self.udp = udp
        if udp:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.settimeout(10)
            self.sock.connect((LOOPBACK, port))
        else:
            self.sock = socket.create_connection((LOOPBACK, port), timeout=10)
        self.xid = 1

    def call(self, prog, vers, proc, args):
        self.xid += 1
        name = b"test"
        cred = struct.pack(">II", 0, len(name)) + name + struct.pack(">III", 0, 0, 0)
        head = struct.pack(">IIIIII", self.xid, 0, 2, prog, vers, proc) + struct.pack(">II", 1, len(cred)) + cred
        head += struct.pack(">II", 0, 0)
        accept, rec = self.call_raw(head + args)
        assert accept == 0, accept
        return rec

    def call_raw(self, body):
        """Sends one call's bytes; (accept_stat, the reply's body) of the answer."""
        if self.udp:
            self.sock.send(body)
            rec = self.sock.recv(70000)
        else:
            self.sock.sendall(struct.pack(">I", 0x80000000 | len(body)) + body)
            mark = self.recv(4)
            rec = self.recv(struct.unpack(">I", mark)[0] & 0x7FFFFFFF)
        xid, mtype, rstat, vflavor, vlen = struct.unpack(">IIIII", rec[:20])
        assert (xid, mtype, rstat) == (struct.unpack(">I", body[:4])[0], 1, 0), (xid, mtype, rstat)
        return struct.unpack(">I", rec[20 + vlen:24 + vlen])[0], rec[24 + vlen:]

    def recv(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return out

    @staticmethod
    def opaque(data):
        return struct.pack(">I", len(data)) + data + b"\0" * (-len(data) % 4)

    def mount(self, path):
        r = self.call(100005, 3, 1, self.opaque(path.encode()))
        status, n = struct.unpack(">II", r[:8])
        assert status == 0, status
        return r[8:8 + n]

    def lookup(self, fh, name):
        r = self.call(100003, 3, 3, self.opaque(fh) + self.opaque(name.encode()))
        status, n = struct.unpack(">II", r[:8])
        assert status == 0, status
        return r[8:8 + n]

    def read(self, fh, offset, count):
        status, data = self.read_status(fh, offset, count)
        assert status == 0, status
        return data

    def read_status(self, fh, offset, count):
        """(nfsstat3, data): data is None unless the status is NFS3_OK."""
        r = self.call(100003, 3, 6, self.opaque(fh) + struct.pack(">QI", offset, count))
        status, follows = struct.unpack(">II", r[:8])
        if status != 0:
            return status, None
        pos = 8 + (84 if follows else 0)
        count, eof, n = struct.unpack(">III", r[pos:pos + 12])
        return 0, r[pos + 12:pos + 12 + n]

    def close(self):
        self.sock.close()


class ServerCase(unittest.TestCase):
    EXTRA = ""  # more [nfs] keys

    def setUp(self):
        if not os.path.exists(PXEDUST):
            self.skipTest("no pxedust binary")
        if not have("mke2fs"):
            self.skipTest("no mke2fs (e2fsprogs)")
        self.s = Server(self.EXTRA)
        self.s.start()

    def tearDown(self):
        alive = self.s.daemon.proc is not None and self.s.daemon.proc.poll() is None
        log = self.s.daemon.log_text()
        self.s.cleanup()
        self.assertNotIn("AddressSanitizer", log)
        self.assertNotIn("runtime error", log)
        if not alive:
            self.fail("pxedust died")


class Tree(ServerCase):
    def test_every_file_lists_once_and_reads_identical(self):
        if not have("nfs-ls", "nfs-cat"):
            self.skipTest("no nfs-ls/nfs-cat (libnfs-utils)")
        r = run(["nfs-ls", "-R", self.s.url("/images/deb")])
        self.assertEqual(r.returncode, 0, r.stderr)
        listed = {}
        for line in r.stdout.decode().splitlines():
            fields = line.split(None, 5)
            self.assertEqual(len(fields), 6, line)
            mode, _, uid, gid, size, path = fields
            self.assertNotIn(path, listed, f"{path} listed twice")
            listed[path] = (mode, int(uid), int(gid), int(size))
        expected = {}
        for root, dirs, files in os.walk(self.s.tree):
            for name in dirs + files:
                full = os.path.join(root, name)
                expected[os.path.relpath(full, self.s.tree)] = os.lstat(full)
        expected.pop("lost+found", None)
        listed.pop("lost+found", None)
        self.assertEqual(set(listed), set(expected))
        kinds = {stat.S_IFDIR: "d", stat.S_IFREG: "-", stat.S_IFLNK: "l", stat.S_IFIFO: "p"}
        for path, st in expected.items():
            mode, uid, gid, size = listed[path]
            if stat.S_ISFIFO(st.st_mode):
                mode = "p" + mode  # nfs-ls prints no type letter for a FIFO (its switch has none)
            self.assertEqual(mode[0], kinds[stat.S_IFMT(st.st_mode)], path)
            self.assertEqual(mode[1:], stat.filemode(st.st_mode)[1:], path)
            self.assertEqual((uid, gid), (st.st_uid, st.st_gid), path)
            if not stat.S_ISDIR(st.st_mode):
                self.assertEqual(size, st.st_size, path)
        self.assertEqual(sum(1 for p in listed if p.startswith("many/")), MANY)
        # Every regular file's bytes, but of the 20,000 empty ones in many/ a sample (one nfs-cat each).
        sample = {f"many/entry-{i:05d}" for i in (0, 1, 9999, MANY - 1)}
        for path, st in expected.items():
            if not stat.S_ISREG(st.st_mode) or (path.startswith("many/") and path not in sample):
                continue
            r = run(["nfs-cat", self.s.url(f"/images/deb/{path}")])
            self.assertEqual(r.returncode, 0, (path, r.stderr))
            with open(os.path.join(self.s.tree, path), "rb") as f:
                self.assertEqual(r.stdout, f.read(), path)
        print(f"\nnfs: {len(listed)} entries listed once, every regular file identical", file=sys.stderr)

    def test_writes_are_refused_and_the_image_is_unchanged(self):
        if not have("nfs-cp"):
            self.skipTest("no nfs-cp (libnfs-utils)")
        src = os.path.join(self.s.dir, "local")
        with open(src, "w") as f:
            f.write("x\n")
        r = run(["nfs-cp", src, self.s.url("/images/deb/newfile")])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"ROFS", r.stdout + r.stderr)
        copy = os.path.join(self.s.dir, "copy")
        r = run(["nfs-cp", self.s.url("/images/deb/big.bin"), copy])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(copy, "rb") as a, open(os.path.join(self.s.tree, "big.bin"), "rb") as b:
            self.assertEqual(a.read(), b.read())


class Access(ServerCase):
    def test_a_client_no_host_admits_cannot_mount(self):
        if not have("nfs-ls"):
            self.skipTest("no nfs-ls (libnfs-utils)")
        r = run(["nfs-ls", self.s.url("/images/other")])
        self.assertNotEqual(r.returncode, 0)
        r = run(["nfs-ls", self.s.url("/images/nothing")])
        self.assertNotEqual(r.returncode, 0)
        m = self.s.daemon.metrics()
        self.assertEqual(m["pxedust_nfs_mounts_refused_total"], 2)
        self.assertEqual(m["pxedust_nfs_mounts_total"], 0)
        ev = self.s.daemon.events("node1", "disk.failed")
        self.assertEqual(ev, [])  # the refusals were not node1's

    def test_a_handle_outlives_a_restart(self):
        c = RpcClient(self.s.port)
        fh = c.lookup(c.lookup(c.mount("/images/deb"), "etc"), "hostname")
        self.assertEqual(c.read(fh, 0, 100), b"diskless\n")
        c.close()
        self.s.daemon.stop()
        self.s.start()
        c = RpcClient(self.s.port)
        self.assertEqual(c.read(fh, 0, 100), b"diskless\n")  # no MNT: the old handle alone
        c.close()


    def test_a_mounted_version_stays_until_deleted_then_its_handles_are_stale(self):
        """A second version of the image is imported: a new mount of /images/deb gets it, a handle of
        the first still reads the first (a running host keeps the version it mounted). Once the first
        version's files are gone from the store, its handles answer NFS3ERR_STALE, never another
        file's bytes, and the second version's keep reading."""
        c = RpcClient(self.s.port)
        old = c.lookup(c.lookup(c.mount("/images/deb"), "etc"), "hostname")
        self.assertEqual(c.read(old, 0, 100), b"diskless\n")
        tree = os.path.join(self.s.dir, "tree2")
        os.makedirs(os.path.join(tree, "etc"))
        with open(os.path.join(tree, "etc", "hostname"), "w") as f:
            f.write("second\n")
        img = os.path.join(self.s.dir, "v2.img")
        r = run(["mke2fs", "-q", "-t", "ext4", "-d", tree, "-F", img, "8M"])
        self.assertEqual(r.returncode, 0, r.stderr)
        env = dict(os.environ, PXEDUST_CONFIG=self.s.config)
        subprocess.run([PXEDUST, "image", "import", img, "--name", "deb"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        new = c.lookup(c.lookup(c.mount("/images/deb"), "etc"), "hostname")
        self.assertNotEqual(new, old)
        self.assertEqual(c.read(new, 0, 100), b"second\n")
        self.assertEqual(c.read(old, 0, 100), b"diskless\n")
        self.assertEqual(c.read(c.lookup(c.lookup(c.mount("/images/deb/1"), "etc"), "hostname"), 0, 100),
                         b"diskless\n")
        shutil.rmtree(os.path.join(self.s.dir, "store", "images", "deb", "v1"))
        deadline = time.monotonic() + 30  # the server looks for the file again once a second
        while True:
            status, data = c.read_status(old, 0, 100)
            if status != 0 or time.monotonic() > deadline:
                break
            self.assertEqual(data, b"diskless\n")
            time.sleep(0.2)
        self.assertEqual(status, 70)  # NFS3ERR_STALE
        self.assertEqual(c.read(new, 0, 100), b"second\n")
        c.close()
        # ... and so after a restart, when the handle's image is looked for in the store.
        self.s.daemon.stop()
        self.s.start()
        c = RpcClient(self.s.port)
        self.assertEqual(c.read_status(old, 0, 100)[0], 70)
        self.assertEqual(c.read(new, 0, 100), b"second\n")
        c.close()


class Udp(ServerCase):
    """The same server over UDP, on the TCP listener's port: one call per datagram, READs and listings
    held to 32 KiB (FSINFO says so), the PORTMAP answer names the UDP port, and datagrams that are
    not calls change nothing for anyone."""

    def test_mount_lookup_read_over_udp(self):
        c = RpcClient(self.s.port, udp=True)
        self.assertEqual(c.call(100003, 3, 0, b""), b"")  # NULL
        root = c.mount("/images/deb")
        fh = c.lookup(c.lookup(root, "etc"), "hostname")
        self.assertEqual(c.read(fh, 0, 100), b"diskless\n")
        big = c.lookup(root, "big.bin")
        data = c.read(big, 0, 1 << 20)  # asks 1 MiB: gets what a datagram holds
        self.assertEqual(len(data), 32 << 10)
        with open(os.path.join(self.s.tree, "big.bin"), "rb") as f:
            self.assertEqual(data, f.read(32 << 10))
        # FSINFO: rtmax over UDP is 32 KiB (over TCP 1 MiB).
        r = c.call(100003, 3, 19, RpcClient.opaque(root))
        status, follows = struct.unpack(">II", r[:8])
        self.assertEqual(status, 0)
        rtmax = struct.unpack(">I", r[8 + (84 if follows else 0):12 + (84 if follows else 0)])[0]
        self.assertEqual(rtmax, 32 << 10)
        t = RpcClient(self.s.port)
        r = t.call(100003, 3, 19, RpcClient.opaque(root))
        self.assertEqual(struct.unpack(">I", r[8 + 84:12 + 84])[0], 1 << 20)
        t.close()
        # PORTMAP GETPORT (NFS 3, UDP) names this port.
        r = c.call(100000, 2, 3, struct.pack(">IIII", 100003, 3, 17, 0))
        self.assertEqual(struct.unpack(">I", r)[0], self.s.port)
        c.close()
        m = self.s.daemon.metrics()
        self.assertGreaterEqual(m["pxedust_nfs_udp_datagrams_total"], 7)
        self.assertEqual(m["pxedust_nfs_mounts_total"], 1)

    def test_datagrams_that_are_not_calls(self):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rng = random.Random(19)
        for size in (0, 1, 3, 4, 11, 24, 40, 200, 9000, 65507):
            u.sendto(bytes(rng.getrandbits(8) for _ in range(size)), (LOOPBACK, self.s.port))
        # A call cut short after its header: GARBAGE_ARGS, not a crash.
        c = RpcClient(self.s.port, udp=True)
        c.xid += 1
        cred = struct.pack(">II", 0, 4) + b"test" + struct.pack(">III", 0, 0, 0)
        head = struct.pack(">IIIIII", c.xid, 0, 2, 100003, 3, 6) + struct.pack(">II", 1, len(cred)) + cred
        head += struct.pack(">II", 0, 0)
        accept, _ = c.call_raw(head + struct.pack(">I", 44) + b"\0" * 8)
        self.assertEqual(accept, 4)  # GARBAGE_ARGS
        # The server answers as before, over UDP and TCP.
        self.assertEqual(c.read(c.lookup(c.lookup(c.mount("/images/deb"), "etc"), "hostname"), 0, 100),
                         b"diskless\n")
        c.close()
        t = RpcClient(self.s.port)
        self.assertEqual(t.call(100003, 3, 0, b""), b"")
        t.close()
        u.close()


class BadInput(ServerCase):
    """What a hostile or broken client sends gets the RPC or NFS error RFC 5531 and RFC 1813 name, or
    its connection closed when the framing itself is broken; nothing reads outside the image, and the
    server answers everyone else throughout."""

    def header(self, c, prog, vers, proc):
        c.xid += 1
        cred = struct.pack(">II", 0, 4) + b"test" + struct.pack(">III", 0, 0, 0)
        return struct.pack(">IIIIII", c.xid, 0, 2, prog, vers, proc) + struct.pack(">II", 1, len(cred)) + cred + \
            struct.pack(">II", 0, 0)

    def test_rpc_errors_for_unknown_programs_versions_procedures_and_bad_arguments(self):
        c = RpcClient(self.s.port)
        self.assertEqual(c.call_raw(self.header(c, 100004, 2, 0))[0], 1)  # PROG_UNAVAIL (NIS)
        accept, body = c.call_raw(self.header(c, 100003, 4, 0))
        self.assertEqual((accept, struct.unpack(">II", body)), (2, (3, 3)))  # PROG_MISMATCH, low = high = 3
        self.assertEqual(c.call_raw(self.header(c, 100003, 3, 22))[0], 3)  # PROC_UNAVAIL
        self.assertEqual(c.call_raw(self.header(c, 100005, 3, 6))[0], 3)
        root = c.mount("/images/deb")
        # An opaque whose length runs past the record; a handle of 4 GiB; a name of 64 KiB.
        self.assertEqual(c.call_raw(self.header(c, 100003, 3, 1) + struct.pack(">I", 200) + b"x" * 8)[0], 4)
        self.assertEqual(c.call_raw(self.header(c, 100003, 3, 1) + struct.pack(">I", 0xFFFFFFFF))[0], 4)
        self.assertEqual(c.call_raw(self.header(c, 100003, 3, 3) + RpcClient.opaque(root) +
                                    RpcClient.opaque(b"a" * 65536))[0], 4)
        # A forged handle: one bit of the image version changed (the seal no longer matches).
        forged = bytearray(root)
        forged[20] ^= 1
        r = c.call(100003, 3, 1, RpcClient.opaque(bytes(forged)))
        self.assertEqual(struct.unpack(">I", r[:4])[0], 10001)  # NFS3ERR_BADHANDLE
        # ".." at the export's root is the root itself; nothing above it.
        self.assertEqual(c.lookup(root, ".."), root)
        self.assertEqual(c.lookup(c.lookup(root, "etc"), ".."), root)
        # A path out of the export at MOUNT: no such export.
        for path in ("/images/deb/../../etc", "/images/../deb", "/etc", "/images/deb/etc/../../.."):
            r = c.call(100005, 3, 1, RpcClient.opaque(path.encode()))
            self.assertNotEqual(struct.unpack(">I", r[:4])[0], 0, path)
        self.assertEqual(c.read(c.lookup(c.lookup(root, "etc"), "hostname"), 0, 100), b"diskless\n")
        c.close()

    def test_broken_framing_closes_that_connection_only(self):
        good = RpcClient(self.s.port)
        fh = good.lookup(good.lookup(good.mount("/images/deb"), "etc"), "hostname")
        for bad in (struct.pack(">I", 0xFFFFFFFF),             # a last fragment of 2 GiB
                    struct.pack(">I", 0x7FFFFFFF) + b"x" * 64,  # a 2 GiB fragment that is not the last
                    struct.pack(">I", 0) * 10000):            # empty fragments that are not the last, on and on
            s = socket.create_connection((LOOPBACK, self.s.port), timeout=10)
            s.sendall(bad)
            try:
                self.assertEqual(s.recv(16), b"")  # closed by the server
            except ConnectionResetError:
                pass
            s.close()
        s = socket.create_connection((LOOPBACK, self.s.port), timeout=10)
        s.sendall(struct.pack(">I", 0x80000010) + b"abc")  # a record cut short: the client then leaves
        s.close()
        self.assertEqual(good.read(fh, 0, 100), b"diskless\n")
        good.close()
        self.assertEqual(self.s.daemon.metrics()['pxedust_nfs_drops_total{reason="bad_record"}'], 3)


def port_free(port):
    """Can this process bind 127.0.0.1:`port` over TCP and UDP (root, and no rpcbind on it)?"""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((LOOPBACK, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


class Portmap(ServerCase):
    """portmap = true: PORTMAP on 127.0.0.1:111 too, so that libnfs finds MOUNT and NFS by asking it,
    as a plain mount does, with no ports in the URL."""
    EXTRA = "portmap = true"

    def setUp(self):
        if not port_free(111):
            self.skipTest("port 111 cannot be bound here (not root, or an rpcbind holds it)")
        super().setUp()

    def test_clients_find_nfs_through_port_111(self):
        if not have("nfs-cat"):
            self.skipTest("no nfs-cat (libnfs-utils)")
        r = run(["nfs-cat", f"nfs://{LOOPBACK}/images/deb/etc/hostname"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"diskless\n")
        for udp in (False, True):
            c = RpcClient(111, udp=udp)
            for prog in (100003, 100005, 100227):
                proto = 17 if udp else 6
                r = c.call(100000, 2, 3, struct.pack(">IIII", prog, 3, proto, 0))
                self.assertEqual(struct.unpack(">I", r)[0], self.s.port, (prog, udp))
            c.close()
        self.assertEqual(self.s.daemon.metrics()["pxedust_nfs_mounts_total"], 1)


if __name__ == "__main__":
    unittest.main()
