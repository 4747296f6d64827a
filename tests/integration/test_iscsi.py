"""iSCSI target integration tests: real initiators (libiscsi's iscsi-ls/iscsi-inq/iscsi-test-cu, QEMU's
iSCSI driver) and a small raw-socket client against pxedust started as a process on 127.0.0.1, with a
block store made by `pxedust image import`. A missing tool makes its test skip, not fail."""

import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pxedust_daemon  # noqa: E402
import pxedust_state  # noqa: E402

PXEDUST = os.environ.get("PXEDUST_BIN", "build/asan/bin/pxedust")
LOOPBACK = "127.0.0.1"
PREFIX = "iqn.2026-11.org.pxedust:"
CU1 = "iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test"
CU2 = "iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test-2"
SECRET = "node3-secret-123"
# The conformance suite's pass count measured on this target (CUnit counts skipped tests as passed):
# every test that runs passes; the skips are listed in Conformance below.
CU_PASS_FLOOR = int(os.environ.get("PXEDUST_CU_FLOOR", "615"))


def have(*tools):
    return all(shutil.which(t) for t in tools)


class Target:
    """pxedust serve with an [iscsi] section, three hosts and a 16 MiB base image."""

    def __init__(self, base_size=16 << 20):
        self.dir = tempfile.mkdtemp(prefix="pxedust-iscsi-")
        # Port 0 at first (the kernel picks; daemon.json says which); a restart asks for the same one.
        self.config_port = 0
        self.port = None
        self.tftp_root = os.path.join(self.dir, "tftp")
        os.mkdir(self.tftp_root)
        self.config = os.path.join(self.dir, "pxedust.toml")
        self.store = os.path.join(self.dir, "store")
        self.daemon = pxedust_daemon.Daemon(PXEDUST, self.config, self.dir)
        self.state_dir = self.daemon.state_dir
        self.base = os.path.join(self.dir, "base.img")
        rng = random.Random(5)
        with open(self.base, "wb") as f:
            f.write(rng.randbytes(base_size))
        self.write_config()
        env = dict(os.environ, PXEDUST_CONFIG=self.config)
        subprocess.run([PXEDUST, "image", "import", self.base, "--name", "base"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(self.base, "rb") as f:
            self.base_bytes = f.read()

    def write_config(self, extra_hosts="", without=(), iscsi_extra="", tftp_root=None):
        """The config with its hosts, but for those named in `without`, and `extra_hosts` appended;
        `iscsi_extra` goes at the end of the [iscsi] section; a TFTP service serves `tftp_root`
        (default: an empty directory)."""
        text = self._config_text(extra_hosts, iscsi_extra, tftp_root or self.tftp_root)
        for name in without:
            text, n = re.subn(r'\[\[host\]\]\nname = "%s"\n.*?(?=\[\[host\]\]|\Z)' % re.escape(name), "", text,
                              flags=re.S)
            assert n == 1, f"no host {name} in the config"
        with open(self.config, "w") as f:
            f.write(text)

    def reload(self, expect="applied", **config):
        """Rewrites the config (write_config's arguments), has the running daemon reload it, and
        checks the reload was `expect`ed ("applied" or "refused"); returns daemon.json after it."""
        self.write_config(**config)
        after = self.daemon.reload(expect)
        if expect == "applied":
            self.last_config = config  # what a restart writes again
        return after

    def _config_text(self, extra_hosts, iscsi_extra, tftp_root):
        return (f"""
[log]
level = "debug"
[daemon]
shutdown_grace = 5
[storage]
dir = "{self.store}"
[tftp]
listen = ["{LOOPBACK}:0"]
root = "{tftp_root}"
[iscsi]
listen = ["{LOOPBACK}:{self.config_port}"]
nop_interval = 2
nop_timeout = 6
{iscsi_extra}
[[host]]
name = "node1"
image = "base"
iscsi_allow = ["127.0.0.0/8"]
iscsi_initiators = ["iqn.2026-01.test:node1"]
[[host]]
name = "node2"
image = "base"
iscsi_allow = ["127.0.0.0/8"]
iscsi_initiators = ["iqn.2026-01.test:node2"]
[[host]]
name = "node3"
image = "base"
iscsi_allow = ["127.0.0.0/8"]
chap_user = "node3"
chap_secret = "{SECRET}"
[[host]]
name = "cu"
image = "base"
iscsi_allow = ["127.0.0.0/8"]
iscsi_initiators = ["{CU1}", "{CU2}"]
[[host]]
name = "far"
image = "base"
iscsi_allow = ["10.99.0.0/16"]
{extra_hosts}
""")

    def start(self):
        if self.port is not None and self.config_port != self.port:  # a restart: the same port again
            self.config_port = self.port
            self.write_config(**getattr(self, "last_config", {}))
        self.daemon.start()
        self.port = self.daemon.endpoint("iscsi")[1]

    @property
    def proc(self):
        return self.daemon.proc

    def stop(self, sig=signal.SIGTERM):
        self.daemon.stop(sig)

    def logtext(self):
        return self.daemon.log_text()

    def metrics(self):
        """Every metric, from a metrics.prom the daemon writes on SIGUSR1: {"name{labels}": value}."""
        return self.daemon.metrics()

    def wait_metric(self, sample, at_least=1, timeout=10):
        """Waits until a sample (e.g. 'pxedust_iscsi_drops_total{reason="wrong_phase"}') reaches
        `at_least`; True if it did."""
        try:
            pxedust_state.wait_for(f"{sample} >= {at_least}",
                                   lambda: self.metrics().get(sample, 0) >= at_least, timeout, interval=0.1,
                                   proc=self.proc)
            return True
        except AssertionError:
            return False

    def wait_drop(self, reason, at_least=1):
        return self.wait_metric(f'pxedust_iscsi_drops_total{{reason="{reason}"}}', at_least)

    def url(self, host="node1"):
        return f"iscsi://{LOOPBACK}:{self.port}/{PREFIX}{host}/0"

    def opts(self, host="node1", initiator=None):
        initiator = initiator or f"iqn.2026-01.test:{host}"
        return (f"driver=iscsi,transport=tcp,portal={LOOPBACK}:{self.port},target={PREFIX}{host},lun=0,"
                f"initiator-name={initiator}")

    def cleanup(self):
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


def run(args, timeout=120, check=False):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=check)


class TargetCase(unittest.TestCase):
    base_size = 16 << 20

    def setUp(self):
        if not os.path.exists(PXEDUST):
            self.skipTest("no pxedust binary")
        self.t = Target(self.base_size)
        self.t.start()

    def tearDown(self):
        alive = self.t.proc is not None and self.t.proc.poll() is None
        log = self.t.logtext()
        self.t.cleanup()
        self.assertNotIn("AddressSanitizer", log)
        self.assertNotIn("runtime error", log)
        if alive is False and self.t.proc is not None:
            self.fail("pxedust died")


class Discovery(TargetCase):
    def test_ls_sees_own_target_only(self):
        if not have("iscsi-ls"):
            self.skipTest("iscsi-ls missing")
        r = run(["iscsi-ls", "-i", "iqn.2026-01.test:node1", f"iscsi://{LOOPBACK}:{self.t.port}"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"{PREFIX}node1", r.stdout)
        self.assertIn(f"Portal:{LOOPBACK}:{self.t.port},1", r.stdout)
        self.assertNotIn(f"{PREFIX}node2", r.stdout)
        self.assertNotIn(f"{PREFIX}far", r.stdout)

    def test_ls_with_discovery_chap(self):
        if not have("iscsi-ls"):
            self.skipTest("iscsi-ls missing")
        self.t.reload(iscsi_extra=f'discovery_chap_user = "disc"\ndiscovery_chap_secret = "{SECRET}"')
        portal = f"{LOOPBACK}:{self.t.port}"
        r = run(["iscsi-ls", "-i", "iqn.2026-01.test:node1", f"iscsi://disc%{SECRET}@{portal}"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"{PREFIX}node1", r.stdout)
        self.assertNotIn(f"{PREFIX}node2", r.stdout)
        for url in (f"iscsi://disc%wrong-secret-456@{portal}", f"iscsi://{portal}"):
            r = run(["iscsi-ls", "-i", "iqn.2026-01.test:node1", url])
            self.assertNotEqual(r.returncode, 0, url)
            self.assertNotIn(f"{PREFIX}node1", r.stdout)

    def test_mutual_chap(self):
        if not have("iscsi-inq"):
            self.skipTest("iscsi-inq missing")
        mutual = "node5-target-secret-789"
        self.t.reload(extra_hosts=f"""
[[host]]
name = "node5"
image = "base"
iscsi_allow = ["127.0.0.0/8"]
chap_secret = "{SECRET}"
mutual_chap_secret = "{mutual}"
""")
        base = f"iscsi://node5%{SECRET}@{LOOPBACK}:{self.t.port}/{PREFIX}node5/0"
        # libiscsi checks the target's answer to its own challenge (mutual CHAP) with these.
        r = run(["iscsi-inq", "-i", "iqn.2026-01.test:node5", f"{base}?target_user=node5&target_password={mutual}"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("DIRECT_ACCESS", r.stdout)
        # The initiator expecting another target secret refuses the target.
        r = run(["iscsi-inq", "-i", "iqn.2026-01.test:node5", f"{base}?target_user=node5&target_password=not-the-target-1"])
        self.assertNotEqual(r.returncode, 0)

    def test_inq_readcapacity(self):
        if not have("iscsi-inq", "iscsi-readcapacity16"):
            self.skipTest("libiscsi-bin missing")
        r = run(["iscsi-inq", "-i", "iqn.2026-01.test:node1", self.t.url()])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("DIRECT_ACCESS", r.stdout)
        r = run(["iscsi-readcapacity16", "-i", "iqn.2026-01.test:node1", self.t.url()])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"RETURNED LOGICAL BLOCK ADDRESS:{(16 << 20) // 512 - 1}", r.stdout)

    def test_wrong_initiator_and_address_refused(self):
        if not have("iscsi-inq"):
            self.skipTest("iscsi-inq missing")
        r = run(["iscsi-inq", "-i", "iqn.2026-01.test:node2", self.t.url("node1")])
        self.assertNotEqual(r.returncode, 0)
        r = run(["iscsi-inq", "-i", "iqn.2026-01.test:far", self.t.url("far")])  # not from 10.99/16
        self.assertNotEqual(r.returncode, 0)
        r = run(["iscsi-inq", "-i", "iqn.2026-01.test:node1", self.t.url("nosuchhost")])
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue(self.t.wait_drop("login_failed", 3), self.t.metrics())

    def test_chap(self):
        if not have("iscsi-inq"):
            self.skipTest("iscsi-inq missing")
        base = f"{LOOPBACK}:{self.t.port}/{PREFIX}node3/0"
        r = run(["iscsi-inq", "-i", "iqn.2026-01.test:node3", f"iscsi://node3%{SECRET}@{base}"])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(["iscsi-inq", "-i", "iqn.2026-01.test:node3", f"iscsi://node3%wrong-secret-456@{base}"])
        self.assertNotEqual(r.returncode, 0)
        r = run(["iscsi-inq", "-i", "iqn.2026-01.test:node3", f"iscsi://{base}"])
        self.assertNotEqual(r.returncode, 0)


class Qemu(TargetCase):
    def test_convert_and_write_overlay_only(self):
        if not have("qemu-img", "qemu-io"):
            self.skipTest("qemu-utils missing")
        out = os.path.join(self.t.dir, "out.raw")
        r = run(["qemu-img", "convert", "--image-opts", "-O", "raw", self.t.opts("node1"), out], timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out, "rb") as f:
            self.assertTrue(f.read() == self.t.base_bytes, "node1 does not read back the base")
        r = run(["qemu-io", "--image-opts", "-c", "write -P 0xab 0 1M", "-c", "write -P 0xcd 5M 300k", "-c", "flush",
                 self.t.opts("node1")], timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        r = run(["qemu-img", "convert", "--image-opts", "-O", "raw", self.t.opts("node1"), out], timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        want = bytearray(self.t.base_bytes)
        want[0:1 << 20] = b"\xab" * (1 << 20)
        want[5 << 20:(5 << 20) + 300 * 1024] = b"\xcd" * (300 * 1024)
        with open(out, "rb") as f:
            self.assertTrue(f.read() == bytes(want), "node1 does not read back its writes")
        r = run(["qemu-img", "convert", "--image-opts", "-O", "raw", self.t.opts("node2"), out], timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out, "rb") as f:
            self.assertTrue(f.read() == self.t.base_bytes, "node2 sees node1's writes")
        with open(self.t.base, "rb") as f:
            self.assertTrue(f.read() == self.t.base_bytes)


class Restart(TargetCase):
    def _write_then_restart(self, sig):
        if not have("qemu-img", "qemu-io"):
            self.skipTest("qemu-utils missing")
        r = run(["qemu-io", "--image-opts", "-c", "write -P 0x5a 2M 512k", "-c", "flush", self.t.opts("node1")])
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        # A session that is in the middle of things when the daemon goes.
        mid = subprocess.Popen(["qemu-io", "--image-opts", "-c", "write -P 0x77 4M 64k", "-c", "flush",
                                "-c", "read -P 0x77 4M 64k", self.t.opts("node1")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.05)
        self.t.stop(sig)
        self.t.start()
        # libiscsi reconnects (and logs in again) by itself; its commands then complete.
        try:
            mid.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            mid.kill()
            mid.communicate()
        out = os.path.join(self.t.dir, "after.raw")
        r = run(["qemu-img", "convert", "--image-opts", "-O", "raw", self.t.opts("node1"), out], timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out, "rb") as f:
            data = f.read()
        self.assertEqual(data[2 << 20:(2 << 20) + (512 << 10)], b"\x5a" * (512 << 10))
        if mid.returncode == 0:  # its flush returned: the write must be there
            self.assertEqual(data[4 << 20:(4 << 20) + (64 << 10)], b"\x77" * (64 << 10))

    def test_sigterm(self):
        self._write_then_restart(signal.SIGTERM)

    def test_kill9(self):
        self._write_then_restart(signal.SIGKILL)


class OverlayApi(TargetCase):
    """The API's view of the store and its overlay reset, with a real initiator (QEMU's iSCSI driver)
    holding a session: GET /api/v1/images, /overlays, /sessions; POST /api/v1/overlays/<host>/reset
    refused while the host has a session, done with force (the session ended, no login in between),
    the disk back to its base; `pxedust overlay reset` through the daemon; overlay sizes in /metrics."""
    TOKEN = "overlay-api-token-5b1e"

    def setUp(self):
        if not os.path.exists(PXEDUST):
            self.skipTest("no pxedust binary")
        if not have("qemu-img", "qemu-io", "curl"):
            self.skipTest("qemu-utils or curl missing")
        self.t = Target(self.base_size)
        self.http_root = os.path.join(self.t.dir, "http")
        os.mkdir(self.http_root)
        self.http_port = 0
        self.t.write_config(iscsi_extra=self.http_section())
        self.t.last_config = {"iscsi_extra": self.http_section()}
        self.t.start()
        self.api = "http://%s:%d" % pxedust_state.endpoint(self.t.daemon.state, "http")
        self.held = None

    def tearDown(self):
        if self.held is not None and self.held.poll() is None:
            self.held.kill()
            self.held.communicate()
        super().tearDown()

    def http_section(self):
        return f'\n[http]\nlisten = ["{LOOPBACK}:{self.http_port}"]\nroot = "{self.http_root}"\napi_token = "{self.TOKEN}"\n'

    def call(self, method, path, body=None, token=None):
        import json
        args = ["curl", "-sS", "-X", method, "-w", "\n%{http_code}", "--max-time", "60"]
        if token:
            args += ["-H", f"Authorization: Bearer {token}"]
        if body is not None:
            args += ["-H", "Content-Type: application/json", "--data-binary", body]
        r = run(args + [self.api + path], timeout=90)
        text, _, code = r.stdout.rpartition("\n")
        try:
            doc = json.loads(text) if text.strip().startswith(("{", "[")) else text
        except ValueError:
            doc = text
        return int(code), doc

    def cli(self, *args):
        env = dict(os.environ, PXEDUST_CONFIG=self.t.config)
        return subprocess.run([PXEDUST, *args], capture_output=True, text=True, env=env, timeout=120)

    def disk(self, host):
        out = os.path.join(self.t.dir, host + ".raw")
        r = run(["qemu-img", "convert", "--image-opts", "-O", "raw", self.t.opts(host), out], timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out, "rb") as f:
            return f.read()

    def overlay(self, host):
        code, doc = self.call("GET", "/api/v1/overlays")
        self.assertEqual(code, 200, doc)
        return next(o for o in doc["overlays"] if o["host"] == host)

    def test_reset_refused_while_in_use_then_forced(self):
        code, doc = self.call("GET", "/api/v1/images")
        self.assertEqual(code, 200, doc)
        self.assertEqual([(i["name"], i["version"], i["latest"]) for i in doc["images"]], [("base", 1, True)])
        self.assertEqual(doc["images"][0]["size_bytes"], self.base_size)

        r = run(["qemu-io", "--image-opts", "-c", "write -P 0x5a 0 1M", "-c", "flush", self.t.opts("node1")])
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        written = self.overlay("node1")
        self.assertEqual((written["image"], written["version"], written["latest_version"]), ("base", 1, 1))
        self.assertGreaterEqual(written["allocated_bytes"], 1 << 20)

        # A session that stays: qemu-io waits for commands on its stdin.
        self.held = subprocess.Popen(["qemu-io", "--image-opts", self.t.opts("node1")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        pxedust_state.wait_for("node1's session in /api/v1/sessions",
                               lambda: any(s["host"] == "node1" for s in self.call("GET", "/api/v1/sessions")[1]["sessions"]),
                               30, proc=self.t.proc)
        self.assertEqual(self.overlay("node1")["sessions"][0]["initiator"], "iqn.2026-01.test:node1")

        self.assertEqual(self.call("POST", "/api/v1/overlays/node1/reset")[0], 401)
        self.assertEqual(self.call("POST", "/api/v1/overlays/node1/reset", token="wrong-token-0123456789")[0], 403)
        self.assertEqual(self.call("POST", "/api/v1/overlays/node1/reset", '{"latest": 1}', self.TOKEN)[0], 400)
        self.assertEqual(self.call("POST", "/api/v1/overlays/node1/bogus", "{}", self.TOKEN)[0], 404)
        self.assertEqual(self.call("POST", "/api/v1/overlays/nosuch/reset", "{}", self.TOKEN)[0], 404)
        self.assertEqual(self.call("POST", "/api/v1/overlays/..%2fevil/reset", "{}", self.TOKEN)[0], 404)
        code, doc = self.call("POST", "/api/v1/overlays/node1/reset", "{}", self.TOKEN)
        self.assertEqual(code, 409, doc)
        self.assertIn("session", doc["error"])
        self.assertEqual(self.overlay("node1")["allocated_bytes"], written["allocated_bytes"])  # nothing changed

        # The CLI goes through the daemon (the config names where its API listens).
        self.http_port = pxedust_state.endpoint(self.t.daemon.state, "http")[1]
        self.t.write_config(iscsi_extra=self.http_section())
        r = self.cli("overlay", "reset", "node1")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("refused the reset", r.stderr)
        r = self.cli("overlay", "reset", "node1", "--force")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("through the daemon", r.stdout)
        self.assertIn("1 session(s) ended", r.stdout)
        self.assertTrue(self.t.wait_drop("disk_released"))

        self.held.kill()
        self.held.communicate()
        self.assertTrue(self.disk("node1") == self.t.base_bytes, "node1 is not back on its base")
        self.assertLess(self.overlay("node1")["allocated_bytes"], written["allocated_bytes"])

        # Reset with nothing open (the LUN the target keeps between sessions is let go of).
        r = run(["qemu-io", "--image-opts", "-c", "write -P 0x11 0 64k", "-c", "flush", self.t.opts("node1")])
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        code, doc = self.call("POST", "/api/v1/overlays/node1/reset", '{"latest": true}', self.TOKEN)
        self.assertEqual(code, 200, doc)
        self.assertEqual((doc["result"], doc["sessions_ended"], doc["overlay"]["version"]), ("reset", 0, 1))
        self.assertTrue(self.disk("node1") == self.t.base_bytes, "node1 is not back on its base")

        code, text = self.call("GET", "/metrics")
        self.assertEqual(code, 200)
        self.assertRegex(text, r'pxedust_overlay_allocated_bytes\{host="node1"\} \d+')
        self.assertRegex(text, r'pxedust_image_allocated_bytes\{image="base",version="1"\} \d+')


class Conformance(TargetCase):
    """libiscsi's iscsi-test-cu (1.19) with destructive tests on: no test may fail. What it skips on this
    target, and why (none is a missing feature of the SBC/SPC set pxedust emulates):
      * ExtendedCopy.*, ReceiveCopyResults.*, WriteAtomic16.*: commands pxedust does not implement
        (EXTENDED COPY / RECEIVE COPY RESULTS, WRITE ATOMIC(16)); they answer INVALID COMMAND OPERATION CODE.
      * Sanitize.*: only with --allow-sanitize (SANITIZE is not implemented either).
      * StartStopUnit.Simple, PreventAllow.*: the disk is not removable (RMB=0), so there is no medium to
        eject or lock; both commands are accepted and complete GOOD.
      * ReadOnly.ReadOnlySBC: the LUN is writable (a read-only disk is covered by the unit tests).
      * WriteSame10/16.UnmapUnaligned, WriteSame10/16.InvalidDataOutSize, CompareAndWrite.InvalidDataOutSize:
        need LOGICAL BLOCKS PER PHYSICAL BLOCK >= 2. READ CAPACITY(16) reports one block per physical
        block; the overlay's chunk is VPD B0h's optimal transfer and unmap granularity instead. With 8
        blocks per physical block (tried), GetLBAStatus.UnmapSingle asks for LBA 9 and expects the first
        descriptor to start at LBA 16, which SBC forbids (it must hold LBA 9).
      * MultipathIO.*: need a second URL for the same LUN (not given here).
    The disk is 64 MiB: from 32 MiB on, WriteSame16.Unmap writes and reads 65,536 blocks in one command,
    which a smaller MAXIMUM TRANSFER LENGTH would refuse (the suite does not look at it).
    """

    base_size = 64 << 20

    def test_iscsi_test_cu(self):
        if not have("iscsi-test-cu"):
            self.skipTest("iscsi-test-cu missing")
        r = run(["iscsi-test-cu", "-d", "-n", "-i", CU1, "-I", CU2, self.t.url("cu")], timeout=1800)
        out = r.stdout + r.stderr
        m = re.search(r"tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", out)
        self.assertIsNotNone(m, out[-3000:])
        total, ran, passed, failed = map(int, m.groups())
        failures = sorted(set(re.findall(r"Suite (\S+), Test (\S+) had failures", out)))
        print(f"\niscsi-test-cu: total={total} ran={ran} passed={passed} failed={failed} "
              f"skipped_messages={out.count('[SKIPPED]')}")
        for s, t in failures:
            print(f"  FAILED {s}.{t}")
        self.assertEqual(failures, [])
        self.assertEqual(failed, 0)
        self.assertGreaterEqual(passed, CU_PASS_FLOOR)


# ---- raw-socket client for bad input ------------------------------------------------------------

def login_pdu(initiator, target=None, isid=b"\x80\x00\x00\x00\x00\x01", cmdsn=1, keys=None, discovery=False,
              itt=1):
    kv = {"InitiatorName": initiator, "SessionType": "Discovery" if discovery else "Normal"}
    if target:
        kv["TargetName"] = target
    kv.update({"HeaderDigest": "None", "DataDigest": "None"})
    if keys:
        kv.update(keys)
    data = b"".join(f"{k}={v}".encode() + b"\0" for k, v in kv.items())
    return pdu(0x43, 0x87, data, lun=isid + b"\x00\x00", itt=itt, rest=struct.pack(">HHII", 0, 0, cmdsn, 0))


def pdu(op, flags, data=b"", lun=b"\0" * 8, itt=1, rest=b"", ahs=b"", tail=None):
    bhs = bytes([op, flags, 0, 0, len(ahs) // 4]) + len(data).to_bytes(3, "big") + lun + struct.pack(">I", itt)
    bhs += rest + b"\0" * (28 - len(rest)) if tail is None else tail
    bhs = bhs[:48]
    pad = (4 - len(data) % 4) % 4
    return bhs + ahs + data + b"\0" * pad


def recv_pdu(s, timeout=5, data_digest=False):
    """The next PDU as (header, data and padding); a data digest, when negotiated, is read and dropped."""
    s.settimeout(timeout)
    hdr = b""
    while len(hdr) < 48:
        c = s.recv(48 - len(hdr))
        if not c:
            return None
        hdr += c
    n = int.from_bytes(hdr[5:8], "big")
    n += (4 - n % 4) % 4
    digest = 4 if data_digest and n else 0
    n += digest
    body = b""
    while len(body) < n:
        c = s.recv(n - len(body))
        if not c:
            return None
        body += c
    return hdr, body[:len(body) - digest]


def closed(s, timeout=5):
    s.settimeout(timeout)
    try:
        while True:
            c = s.recv(65536)
            if not c:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


class RawCase(TargetCase):
    """Tests that speak the protocol themselves, over raw sockets."""

    def connect(self):
        s = socket.create_connection((LOOPBACK, self.t.port), timeout=5)
        self.addCleanup(s.close)
        return s

    def logged_in(self, host="node1", digest=None):
        """A session in the full feature phase; `digest` ("HeaderDigest" or "DataDigest") asks for CRC32C."""
        s = self.connect()
        s.sendall(login_pdu(f"iqn.2026-01.test:{host}", PREFIX + host, keys={digest: "CRC32C"} if digest else None))
        hdr, body = recv_pdu(s)
        self.assertEqual(hdr[0] & 0x3f, 0x23)
        self.assertEqual(hdr[36:38], b"\0\0", body)
        if digest and f"{digest}=CRC32C".encode() not in body:
            self.skipTest(f"{digest} not negotiated")
        return s


class BadInput(RawCase):

    def assert_other_session_works(self):
        if have("iscsi-inq"):
            r = run(["iscsi-inq", "-i", "iqn.2026-01.test:node2", self.t.url("node2")])
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_truncated_bhs(self):
        s = self.connect()
        s.sendall(login_pdu("iqn.2026-01.test:node1", PREFIX + "node1")[:30])
        s.shutdown(socket.SHUT_WR)
        self.assertTrue(closed(s))
        self.assert_other_session_works()
        self.assertTrue(self.t.wait_drop("peer_closed"), self.t.metrics())

    def test_wrong_phase(self):
        s = self.connect()
        s.sendall(pdu(0x01, 0x80, rest=struct.pack(">III", 0, 1, 0)))  # SCSI Command before login
        self.assertTrue(closed(s))
        self.assertTrue(self.t.wait_drop("wrong_phase"), self.t.metrics())
        self.assert_other_session_works()

    def test_oversized_login_and_key_floods(self):
        s = self.connect()
        s.sendall(login_pdu("iqn.2026-01.test:node1", PREFIX + "node1", keys={"X-big": "v" * 65536}))
        self.assertTrue(closed(s))
        s = self.connect()
        s.sendall(login_pdu("iqn.2026-01.test:node1", PREFIX + "node1",
                            keys={f"X-k{i}": "1" for i in range(2000)}))
        r = recv_pdu(s)
        self.assertTrue(r is None or r[0][36] != 0)
        self.assert_other_session_works()

    def test_full_feature_errors(self):
        s = self.logged_in()
        # Data-Out for a task that does not exist: Reject.
        s.sendall(pdu(0x05, 0x80, b"x" * 512, itt=77, rest=struct.pack(">III", 0xffffffff, 0, 0)))
        hdr, body = recv_pdu(s)
        self.assertEqual(hdr[0] & 0x3f, 0x3f)
        self.assertEqual(body[:1], b"\x05")
        # A Login Request in the full feature phase: Reject.
        s.sendall(login_pdu("iqn.2026-01.test:node1", PREFIX + "node1"))
        hdr, body = recv_pdu(s)
        self.assertEqual(hdr[0] & 0x3f, 0x3f)
        # CmdSN out of the window: ignored; a NOP-Out ping in the window is still answered.
        s.sendall(pdu(0x00, 0x80, itt=9, rest=struct.pack(">III", 0xffffffff, 1000, 0)))
        s.sendall(pdu(0x00, 0x80, itt=10, rest=struct.pack(">III", 0xffffffff, 1, 0)))
        hdr, body = recv_pdu(s)
        self.assertEqual(hdr[0] & 0x3f, 0x20)
        self.assertEqual(struct.unpack(">I", hdr[16:20])[0], 10)
        # An unknown opcode: Reject.
        s.sendall(pdu(0x1c, 0x80, itt=11))
        hdr, body = recv_pdu(s)
        self.assertEqual(hdr[0] & 0x3f, 0x3f)
        # A data segment over our MaxRecvDataSegmentLength: Reject (the data is drained).
        s.sendall(pdu(0x00, 0x80, b"y" * (300 * 1024), itt=12, rest=struct.pack(">III", 0xffffffff, 2, 0)))
        hdr, body = recv_pdu(s)
        self.assertEqual(hdr[0] & 0x3f, 0x3f)
        s.sendall(pdu(0x00, 0x80, itt=13, rest=struct.pack(">III", 0xffffffff, 2, 0)))
        hdr, body = recv_pdu(s)
        self.assertEqual(hdr[0] & 0x3f, 0x20)
        self.assert_other_session_works()
        self.assertTrue(self.t.wait_metric("pxedust_iscsi_rejects_total"), self.t.metrics())

    def test_header_digest_error(self):
        s = self.logged_in(digest="HeaderDigest")
        s.sendall(pdu(0x00, 0x80, itt=5, rest=struct.pack(">III", 0xffffffff, 1, 0))[:48] + b"\0\0\0\0")
        self.assertTrue(closed(s))
        self.assertTrue(self.t.wait_drop("header_digest"), self.t.metrics())
        self.assert_other_session_works()

    def test_data_digest_error(self):
        s = self.logged_in(digest="DataDigest")
        # A NOP-Out with ping data and a wrong data digest: Reject 0x02, the connection stays.
        ping = pdu(0x00, 0x80, b"ping", itt=5, rest=struct.pack(">III", 0xffffffff, 1, 0))
        s.sendall(ping + b"\xde\xad\xbe\xef")
        hdr, body = recv_pdu(s, data_digest=True)
        self.assertEqual(hdr[0] & 0x3f, 0x3f)
        self.assertEqual(hdr[2], 0x02)  # data (payload) digest error
        self.assertEqual(body[:48], ping[:48])  # the rejected header
        # No data, no digest: the same session answers.
        s.sendall(pdu(0x00, 0x80, itt=6, rest=struct.pack(">III", 0xffffffff, 1, 0)))
        hdr, body = recv_pdu(s, data_digest=True)
        self.assertEqual(hdr[0] & 0x3f, 0x20)
        self.assertEqual(struct.unpack(">I", hdr[16:20])[0], 6)
        self.assertTrue(self.t.wait_drop("data_digest"), self.t.metrics())
        self.assert_other_session_works()

    def test_nop_in_pings_drop_a_silent_initiator(self):
        # nop_interval 2 s, nop_timeout 6 s: an idle session is pinged; answering keeps it, silence ends it.
        s = self.logged_in()
        t0 = time.time()
        hdr, body = recv_pdu(s, timeout=10)
        self.assertEqual(hdr[0] & 0x3f, 0x20)  # NOP-In
        self.assertEqual(hdr[16:20], b"\xff\xff\xff\xff")
        ttt = hdr[20:24]
        self.assertNotEqual(ttt, b"\xff\xff\xff\xff")  # a ping that wants an answer
        s.sendall(pdu(0x40, 0x80, itt=0xffffffff, rest=ttt + struct.pack(">II", 1, 0)))
        hdr, body = recv_pdu(s, timeout=10)  # the next ping, after another idle interval
        self.assertEqual(hdr[0] & 0x3f, 0x20)
        self.assertNotEqual(hdr[20:24], b"\xff\xff\xff\xff")
        self.assertTrue(closed(s, timeout=15), "a silent initiator was not dropped")
        self.assertGreater(time.time() - t0, 6)
        self.assertTrue(self.t.wait_drop("nop_timeout"), self.t.metrics())
        self.assert_other_session_works()

    def test_connection_limit(self):
        self.t.reload(iscsi_extra="max_connections = 2")
        a = self.logged_in("node1")
        self.logged_in("node2")
        # A third connection is closed at once, with a warning; the two sessions go on.
        self.assertTrue(closed(self.connect()))
        self.assertTrue(self.t.wait_drop("too_many_connections"), self.t.metrics())
        a.sendall(pdu(0x00, 0x80, itt=7, rest=struct.pack(">III", 0xffffffff, 1, 0)))
        hdr, body = recv_pdu(a)
        self.assertEqual(hdr[0] & 0x3f, 0x20)
        # Once one goes, a new one is let in.
        a.close()
        deadline = time.time() + 10
        while True:
            s = self.connect()
            try:
                s.sendall(login_pdu("iqn.2026-01.test:node1", PREFIX + "node1"))
                r = recv_pdu(s)
            except (ConnectionResetError, BrokenPipeError):  # refused while a's close is not yet seen
                r = None
            if r is not None or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertIsNotNone(r, "no connection let in after one closed")
        self.assertEqual(r[0][36:38], b"\0\0")

    def test_reinstatement_half_open(self):
        a = self.logged_in()  # never closed: half-open from the target's point of view
        b = self.connect()
        b.sendall(login_pdu("iqn.2026-01.test:node1", PREFIX + "node1"))
        hdr, body = recv_pdu(b)
        self.assertEqual(hdr[36:38], b"\0\0")
        self.assertTrue(closed(a))
        self.assertTrue(self.t.wait_metric("pxedust_iscsi_sessions_reinstated_total"), self.t.metrics())
        # The new session's first command gets UNIT ATTENTION 29/00 (TEST UNIT READY).
        cdb = b"\x00" * 16
        b.sendall(pdu(0x01, 0x81, lun=b"\0" * 8, itt=3, rest=struct.pack(">III", 0, 1, 0) + cdb))
        hdr, body = recv_pdu(b)
        self.assertEqual(hdr[0] & 0x3f, 0x21)
        self.assertEqual(hdr[3], 2)  # CHECK CONDITION
        self.assertEqual(body[2 + 12:2 + 14], b"\x29\x00")


NODE4 = """
[[host]]
name = "node4"
image = "base"
iscsi_allow = ["127.0.0.0/8"]
iscsi_initiators = ["iqn.2026-01.test:node4"]
"""


class Reload(RawCase):
    """SIGHUP with a changed host list: a new host's target appears, a removed host's target goes and its
    session is closed, and a session of a host that stayed goes on as if nothing happened."""

    def tur(self, s, itt, cmdsn):
        s.sendall(pdu(0x01, 0x81, itt=itt, rest=struct.pack(">III", 0, cmdsn, 0) + b"\0" * 16))
        r = recv_pdu(s)
        self.assertIsNotNone(r, "the session was closed")
        hdr, body = r
        self.assertEqual(hdr[0] & 0x3f, 0x21)  # SCSI Response
        self.assertEqual(struct.unpack(">I", hdr[16:20])[0], itt)
        return hdr[3]

    def test_hosts_added_and_removed(self):
        if not have("iscsi-ls", "iscsi-inq"):
            self.skipTest("libiscsi-bin missing")
        kept = self.logged_in("node1")
        self.assertEqual(self.tur(kept, 3, 1), 2)  # the new nexus's UNIT ATTENTION
        self.assertEqual(self.tur(kept, 4, 2), 0)
        gone = self.logged_in("node2")
        self.assertEqual(self.tur(gone, 3, 1), 2)
        self.t.reload(extra_hosts=NODE4, without=("node2",))
        # node2's session is closed; node1's is untouched (no UNIT ATTENTION, no reconnect).
        self.assertTrue(closed(gone))
        self.assertTrue(self.t.wait_drop("target_removed"), self.t.metrics())
        self.assertEqual(self.tur(kept, 5, 3), 0)
        # node4's target is there for node4 (discovery shows it, a login works); node2's is not.
        r = run(["iscsi-ls", "-i", "iqn.2026-01.test:node4", f"iscsi://{LOOPBACK}:{self.t.port}"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"{PREFIX}node4", r.stdout)
        self.assertNotIn(f"{PREFIX}node1", r.stdout)
        r = run(["iscsi-inq", "-i", "iqn.2026-01.test:node4", self.t.url("node4")])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(["iscsi-inq", "-i", "iqn.2026-01.test:node2", self.t.url("node2")])
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(self.tur(kept, 6, 4), 0)

    def test_a_refused_reload_changes_nothing(self):
        """A reload that adds a host with a disk and names a TFTP root that does not exist is refused
        whole: the new host's target is neither listed nor reachable, and the sessions and the config
        that ran before go on."""
        if not have("iscsi-ls", "iscsi-inq"):
            self.skipTest("libiscsi-bin missing")
        kept = self.logged_in("node1")
        self.assertEqual(self.tur(kept, 3, 1), 2)  # the new nexus's UNIT ATTENTION
        missing = os.path.join(self.t.dir, "no-such-root")
        state = self.t.reload(expect="refused", extra_hosts=NODE4, tftp_root=missing)
        self.assertIn("no-such-root", state["reloads"]["last_refusal"])
        self.assertEqual(state["hosts"], 5)
        r = run(["iscsi-ls", "-i", "iqn.2026-01.test:node4", f"iscsi://{LOOPBACK}:{self.t.port}"])
        self.assertNotIn(f"{PREFIX}node4", r.stdout)
        r = run(["iscsi-inq", "-i", "iqn.2026-01.test:node4", self.t.url("node4")])
        self.assertNotEqual(r.returncode, 0, r.stdout)
        # The running configuration serves on.
        self.assertEqual(self.tur(kept, 4, 2), 0)
        r = run(["iscsi-inq", "-i", "iqn.2026-01.test:node2", self.t.url("node2")])
        self.assertEqual(r.returncode, 0, r.stderr)
        # The same reload with a root that exists is applied.
        state = self.t.reload(extra_hosts=NODE4)
        self.assertEqual(state["hosts"], 6)
        r = run(["iscsi-ls", "-i", "iqn.2026-01.test:node4", f"iscsi://{LOOPBACK}:{self.t.port}"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"{PREFIX}node4", r.stdout)
        self.assertEqual(self.tur(kept, 5, 3), 0)


class State(TargetCase):
    """What the daemon publishes for programs instead of its log: hosts.json follows each host's boot
    (here: a root disk login and logout, a file over TFTP), and metrics.prom, written on SIGUSR1,
    passes promtool and counts what the clients did."""

    def metrics(self):
        return self.t.daemon.metrics_file()

    @staticmethod
    def sample(text, name):
        m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
        return float(m.group(1)) if m else None

    def test_hosts_and_metrics(self):
        if not have("iscsi-inq", "curl", "promtool"):
            self.skipTest("libiscsi-bin, curl or promtool (prometheus) missing")
        with open(os.path.join(self.t.tftp_root, "boot.ipxe"), "w") as f:
            f.write("#!ipxe\nsanboot\n")
        r = run(["iscsi-inq", "-i", "iqn.2026-01.test:node1", self.t.url("node1")])
        self.assertEqual(r.returncode, 0, r.stderr)
        state = pxedust_state.read_json(self.t.state_dir, "daemon.json")
        host, port = pxedust_state.endpoint(state, "tftp")
        r = run(["curl", "-sS", "-o", "/dev/null", f"tftp://{host}:{port}/boot.ipxe"])
        self.assertEqual(r.returncode, 0, r.stderr)

        def node1_done():
            for h in pxedust_state.read_hosts(self.t.state_dir, self.t.proc):
                kinds = [e["kind"] for e in h["events"]]
                if h["name"] == "node1" and "disk.logout" in kinds:
                    return h
            return None
        node1 = pxedust_state.wait_for("node1's disk login and logout in hosts.json", node1_done, proc=self.t.proc)
        self.assertTrue(node1["configured"])
        self.assertIn("disk.login", [e["kind"] for e in node1["events"]])
        files = pxedust_state.wait_for(
            "the TFTP file in hosts.json",
            lambda: [e for h in pxedust_state.read_hosts(self.t.state_dir, self.t.proc)
                     for e in h["events"] if e["kind"] == "file.completed"],
            proc=self.t.proc)
        self.assertEqual(len(files), 1, files)

        path = self.metrics()
        with open(path) as f:
            r = subprocess.run(["promtool", "check", "metrics"], stdin=f, capture_output=True, text=True, timeout=60)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))
        with open(path) as f:
            text = f.read()
        self.assertGreaterEqual(self.sample(text, "pxedust_iscsi_logins_normal_total"), 1)
        self.assertEqual(self.sample(text, "pxedust_tftp_transfers_completed_total"), 1)
        self.assertEqual(self.sample(text, 'pxedust_config_reloads_total{result="applied"}'), 0)
        self.assertIsNotNone(self.sample(text, 'pxedust_boot_hosts{stage="root_disk"}'), text)
        # The stage-duration histogram is there (promtool checked it above), and a login without the
        # DISCOVER that starts a boot is not timed.
        self.assertIn("# TYPE pxedust_boot_stage_seconds histogram\n", text)
        self.assertEqual(self.sample(text, 'pxedust_boot_stage_seconds_count{stage="root_disk"}'), 0, text)
        self.assertEqual(self.sample(text, 'pxedust_boot_stage_seconds_bucket{stage="root_disk",le="+Inf"}'), 0)


if __name__ == "__main__":
    unittest.main()
