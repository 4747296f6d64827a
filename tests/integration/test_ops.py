"""Operations: pxedust under a service manager and as an unprivileged user, on loopback only.

  Notify       NOTIFY_SOCKET names a unix datagram socket the test binds in a temp dir: READY=1 once
               daemon.json says running, RELOADING=1 and READY=1 around each SIGHUP (applied or
               refused), STOPPING=1 on SIGTERM; a socket nobody listens on does not stop the daemon
  Privileges   (root only) [daemon] user = "nobody": the process's uid, gid and capability sets in
               /proc/<pid>/status, TFTP and HTTP still serve, the directories pxedust made are
               nobody's, a SIGHUP adds an HTTP listener on a privileged port of 127.0.0.1; a store
               nobody cannot write fails the start
  Unit         packaging/systemd/pxedust.service passes `systemd-analyze verify` without a word

Every wait is on a condition (a datagram, daemon.json, the process's exit); the timeouts only bound
how long a broken daemon is waited for."""

import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pxedust_daemon  # noqa: E402
import pxedust_state  # noqa: E402

PXEDUST = os.environ.get("PXEDUST_BIN", "build/asan/bin/pxedust")
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
LOOPBACK = "127.0.0.1"
# CAP_NET_BIND_SERVICE (10), CAP_NET_ADMIN (12), CAP_NET_RAW (13): daemon/privileges.hpp
KEPT_CAPS = (1 << 10) | (1 << 12) | (1 << 13)


def parse_message(data):
    """{"READY": "1", "STATUS": ...} of one sd_notify datagram."""
    fields = {}
    for line in data.decode().splitlines():
        key, _, value = line.partition("=")
        fields[key] = value
    return fields


def next_message(sock, proc, timeout=20):
    """The next datagram on `sock`, parsed. Datagrams sent before the process exited are still read;
    waiting fails once it has exited with nothing queued, or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        ready, _, _ = select.select([sock], [], [], 0.1)
        if ready:
            return parse_message(sock.recv(4096))
        if proc.poll() is not None:
            raise AssertionError(f"pxedust exited ({proc.returncode}) before its next notification")
        if time.monotonic() > deadline:
            raise AssertionError(f"no notification within {timeout}s")


def curl(url, out):
    return subprocess.run(["curl", "-s", "-S", "--max-time", "30", "-o", out, url], capture_output=True, timeout=60)


class Notify(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pxedust-ops-")
        self.root = os.path.join(self.dir, "root")
        os.mkdir(self.root)
        self.config = os.path.join(self.dir, "pxedust.toml")
        self.write_config("")
        self.daemon = None

    def tearDown(self):
        if self.daemon is not None:
            self.daemon.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def write_config(self, extra):
        with open(self.config, "w") as f:
            f.write(f'[tftp]\nlisten = ["{LOOPBACK}:0"]\nroot = "{self.root}"\n{extra}')

    def start(self, notify_socket):
        env = dict(os.environ, NOTIFY_SOCKET=notify_socket)
        self.daemon = pxedust_daemon.Daemon(PXEDUST, self.config, self.dir, env=env)
        return self.daemon.start(services=("tftp",))

    def test_ready_reloading_stopping(self):
        path = os.path.join(self.dir, "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(path)
            self.start(path)
            proc = self.daemon.proc
            ready = next_message(sock, proc)
            self.assertEqual(ready.get("READY"), "1", ready)
            self.assertEqual(ready.get("MAINPID"), str(proc.pid))
            self.assertIn("serving tftp", ready.get("STATUS", ""))
            # Sent once daemon.json says running: what a program reads there holds when systemd says started.
            self.assertEqual(pxedust_state.read_json(self.daemon.state_dir, "daemon.json")["state"], "running")

            self.write_config('[[host]]\nname = "alpha"\nip = "127.0.0.2"\n')
            self.daemon.reload("applied")
            reloading = next_message(sock, proc)
            self.assertEqual(reloading.get("RELOADING"), "1", reloading)
            self.assertTrue(reloading.get("MONOTONIC_USEC", "").isdigit(), reloading)
            done = next_message(sock, proc)
            self.assertEqual(done.get("READY"), "1", done)
            self.assertIn("reload applied", done.get("STATUS", ""))

            self.write_config("bogus_key = 1\n")
            self.daemon.reload("refused")
            self.assertEqual(next_message(sock, proc).get("RELOADING"), "1")
            done = next_message(sock, proc)
            self.assertEqual(done.get("READY"), "1", done)
            self.assertIn("reload refused", done.get("STATUS", ""))
            self.assertIn("bogus_key", done.get("STATUS", ""))

            self.assertEqual(self.daemon.stop(signal.SIGTERM), 0)
            stopping = next_message(sock, proc)
            self.assertEqual(stopping.get("STOPPING"), "1", stopping)

    def test_nobody_listening_does_not_stop_it(self):
        # The notification cannot be sent (no socket at that path): pxedust serves and reloads anyway.
        self.start(os.path.join(self.dir, "nobody-listens"))
        self.daemon.reload("applied")
        self.assertTrue(self.daemon.running())
        self.assertEqual(self.daemon.stop(), 0)


def free_privileged_port():
    """A TCP port below 1024 nothing listens on at 127.0.0.1 (80 if it is free), or None."""
    for port in [80, 81, 591, 8, 1000, 1001, 1002, 1003]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((LOOPBACK, port))
                return port
            except OSError:
                continue
    return None


def proc_status(pid, task=None):
    path = f"/proc/{pid}/status" if task is None else f"/proc/{pid}/task/{task}/status"
    fields = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


class Privileges(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root: only root can switch users")
        if shutil.which("curl") is None:
            self.skipTest("curl is not installed")
        try:
            self.nobody = pwd.getpwnam("nobody")
        except KeyError:
            self.skipTest("no user nobody")
        self.dir = tempfile.mkdtemp(prefix="pxedust-ops-")
        os.chmod(self.dir, 0o755)  # nobody must reach the state dir and the store below it
        self.root = os.path.join(self.dir, "root")
        os.mkdir(self.root, 0o755)
        with open(os.path.join(self.root, "hello.txt"), "w") as f:
            f.write("hello from pxedust\n")
        os.chmod(os.path.join(self.root, "hello.txt"), 0o644)
        self.store = os.path.join(self.dir, "store")
        self.config = os.path.join(self.dir, "pxedust.toml")
        self.daemon = pxedust_daemon.Daemon(PXEDUST, self.config, self.dir)

    def tearDown(self):
        if getattr(self, "daemon", None) is not None:
            self.daemon.stop()
        if getattr(self, "dir", None):
            shutil.rmtree(self.dir, ignore_errors=True)

    def write_config(self, http_listen, user="nobody"):
        listen = ", ".join(f'"{a}"' for a in http_listen)
        with open(self.config, "w") as f:
            f.write(f'[daemon]\nuser = "{user}"\n[storage]\ndir = "{self.store}"\n'
                    f'[tftp]\nlisten = ["{LOOPBACK}:0"]\nroot = "{self.root}"\n'
                    f'[http]\nlisten = [{listen}]\nroot = "{self.root}"\n')
        os.chmod(self.config, 0o644)  # a reload reads it as nobody

    def fetch(self, url):
        out = os.path.join(self.dir, "got")
        r = curl(url, out)
        self.assertEqual(r.returncode, 0, f"{url}: {r.stderr.decode()}\n{self.daemon.log_tail()}")
        with open(out) as f:
            return f.read()

    def test_runs_as_nobody_with_the_kept_capabilities(self):
        port = free_privileged_port()
        if port is None:
            self.skipTest("every candidate privileged port on 127.0.0.1 is taken")
        self.write_config([f"{LOOPBACK}:0"])
        self.daemon.start(services=("tftp", "http"))
        pid = self.daemon.proc.pid
        status = proc_status(pid)
        uid, gid = str(self.nobody.pw_uid), str(self.nobody.pw_gid)
        self.assertEqual(status["Uid"].split(), [uid] * 4)  # real, effective, saved, filesystem
        self.assertEqual(status["Gid"].split(), [gid] * 4)
        self.assertEqual(int(status["CapEff"], 16), KEPT_CAPS)
        self.assertEqual(int(status["CapPrm"], 16), KEPT_CAPS)
        self.assertEqual(int(status["CapInh"], 16), 0)
        self.assertEqual(int(status["CapAmb"], 16), 0)
        # The other threads (disk workers, the state writer) switched users without keeping any.
        for task in os.listdir(f"/proc/{pid}/task"):
            if task != str(pid):
                self.assertEqual(int(proc_status(pid, task)["CapEff"], 16), 0, f"thread {task}")
        # What pxedust made at start is nobody's.
        for made in (self.daemon.state_dir, self.store):
            self.assertEqual(os.stat(made).st_uid, self.nobody.pw_uid, made)

        tftp_host, tftp_port = self.daemon.endpoint("tftp")
        self.assertEqual(self.fetch(f"tftp://{tftp_host}:{tftp_port}/hello.txt"), "hello from pxedust\n")
        http_host, http_port = self.daemon.endpoint("http")
        self.assertEqual(self.fetch(f"http://{http_host}:{http_port}/hello.txt"), "hello from pxedust\n")

        # A reload binds a privileged port anew, as nobody, with CAP_NET_BIND_SERVICE.
        self.write_config([f"{LOOPBACK}:0", f"{LOOPBACK}:{port}"])
        state = self.daemon.reload("applied")
        self.assertIn(f"{LOOPBACK}:{port}", state["services"]["http"]["endpoints"])
        self.assertEqual(self.fetch(f"http://{LOOPBACK}:{port}/hello.txt"), "hello from pxedust\n")

        # Another user in a reload waits for a restart; the rest of the reload is applied.
        self.write_config([f"{LOOPBACK}:0"], user="root")
        state = self.daemon.reload("applied")
        self.assertNotIn(f"{LOOPBACK}:{port}", state["services"]["http"]["endpoints"])
        self.assertEqual(proc_status(pid)["Uid"].split(), [uid] * 4)
        self.assertEqual(self.daemon.stop(), 0)

    def test_a_store_nobody_cannot_write_fails_the_start(self):
        os.mkdir(self.store, 0o700)  # root's, there before pxedust: it is not chowned
        self.write_config([f"{LOOPBACK}:0"])
        with self.assertRaises(AssertionError):
            self.daemon.start()
        self.assertEqual(self.daemon.proc.wait(), 1)
        state = pxedust_state.read_json(self.daemon.state_dir, "daemon.json")
        self.assertEqual(state["state"], "failed")
        refusal = state["reloads"]["last_refusal"]
        self.assertIn(f"storage dir ([storage] dir) {self.store} is not writable by user nobody", refusal)
        self.assertIn("chown nobody:", refusal)


class Unit(unittest.TestCase):
    def test_systemd_analyze_verify(self):
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            self.skipTest("systemd-analyze is not installed")
        with open(os.path.join(SOURCE, "packaging", "systemd", "pxedust.service")) as f:
            unit = f.read()
        # verify checks that ExecStart= is executable: point it at the binary this build made.
        installed = "ExecStart=/usr/local/bin/pxedust "
        self.assertIn(installed, unit)
        unit = unit.replace(installed, f"ExecStart={os.path.abspath(PXEDUST)} ")
        with tempfile.TemporaryDirectory(prefix="pxedust-unit-") as tmp:
            path = os.path.join(tmp, "pxedust.service")
            with open(path, "w") as f:
                f.write(unit)
            # It needs no running systemd; unknown keys and bad values are only warnings, so any
            # output at all is a failure.
            r = subprocess.run([analyze, "verify", path], capture_output=True, timeout=120, cwd=tmp)
            self.assertEqual((r.returncode, r.stdout.decode() + r.stderr.decode()), (0, ""))


if __name__ == "__main__":
    unittest.main()
