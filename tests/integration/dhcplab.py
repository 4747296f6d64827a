"""A private network for the DHCP tests, made of network namespaces this test creates and removes.

    [ns srv]  pxd0: a bridge, 10.213.0.1/24
                pxb0 <--veth--> pxc0 (no address)                   [ns cli]
                                10.214.0.1/32: a pretend relay, routed via 10.213.0.254
                pxb2 <--veth--> pxp0 10.213.0.2/24 (with peer=True)  [ns peer]: another DHCP server

Nothing touches the machine's own interfaces: both ends live in namespaces named after this
process, the subnet exists only inside them, and pxedust runs inside the server namespace. A second
veth pair (pxd1/pxc1) in the same namespaces lets a test check that DHCP stays silent on an
interface it was not configured for. Processes are started and stopped by PID.

pxedust is started, stopped and asked through tests/lib/pxedust_daemon.py, its state directory and
log in the lab's directory: start() waits for daemon.json to say DHCP listens, drops() reads a drop
counter from metrics.prom.
"""

import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pxedust_daemon  # noqa: E402

PXEDUST = os.environ.get("PXEDUST_BIN", "build/asan/bin/pxedust")
SERVER_IP = "10.213.0.1"
RELAY_IP = "10.214.0.1"


def run(*cmd, check=True, **kw):
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True, **kw)


def can_make_namespaces():
    name = f"pxdprobe{os.getpid()}"
    try:
        run("ip", "netns", "add", name)
        run("ip", "netns", "del", name)
        return True
    except (OSError, subprocess.CalledProcessError):
        return False


class Lab:
    def __init__(self, peer=False):
        tag = f"{os.getpid() % 100000}"
        self.srv = f"pxdsrv{tag}"
        self.cli = f"pxdcli{tag}"
        self.peer = f"pxdpeer{tag}" if peer else None
        self.namespaces = [n for n in (self.srv, self.cli, self.peer) if n]
        self.dir = tempfile.mkdtemp(prefix="pxedust-dhcp-")
        # pxedust runs in the server namespace; its log is appended to across restarts.
        self.daemon = pxedust_daemon.Daemon(PXEDUST, os.path.join(self.dir, "pxedust.toml"), self.dir,
                                            prefix=["ip", "netns", "exec", self.srv])
        for ns in self.namespaces:
            run("ip", "netns", "add", ns)
            self.ns(ns, "ip", "link", "set", "lo", "up")
        self.ns(self.srv, "ip", "link", "add", "pxd0", "type", "bridge", "forward_delay", "0")
        self.ns(self.srv, "ip", "link", "set", "pxd0", "up")
        pairs = [("pxb0", "pxc0", self.cli, "pxd0"), ("pxd1", "pxc1", self.cli, None)]
        if peer:
            pairs.append(("pxb2", "pxp0", self.peer, "pxd0"))
        for here, there, ns, bridge in pairs:
            run("ip", "link", "add", here, "netns", self.srv, "type", "veth", "peer", "name", there, "netns", ns)
            if bridge:
                self.ns(self.srv, "ip", "link", "set", here, "master", bridge)
            self.ns(self.srv, "ip", "link", "set", here, "up")
            self.ns(ns, "ip", "link", "set", there, "up")
        if peer:
            self.ns(self.peer, "ip", "addr", "add", "10.213.0.2/24", "dev", "pxp0")
        self.ns(self.srv, "ip", "addr", "add", f"{SERVER_IP}/24", "dev", "pxd0")
        self.ns(self.srv, "ip", "addr", "add", "10.215.0.1/24", "dev", "pxd1")
        # The pretend relay lives on the client side; the server reaches it through 10.213.0.254.
        self.ns(self.cli, "ip", "addr", "add", f"{RELAY_IP}/32", "dev", "lo")
        self.ns(self.srv, "ip", "route", "add", f"{RELAY_IP}/32", "via", "10.213.0.254", "dev", "pxd0")

    def ns(self, ns, *cmd, check=True, **kw):
        return run("ip", "netns", "exec", ns, *cmd, check=check, **kw)

    def popen_ns(self, ns, cmd, **kw):
        return subprocess.Popen(["ip", "netns", "exec", ns] + cmd, **kw)

    def set_client_mac(self, mac, dev="pxc0"):
        self.ns(self.cli, "ip", "link", "set", dev, "address", mac)
        self.ns(self.cli, "ip", "addr", "flush", "dev", dev)

    def give_client_relay_route(self):
        # The client side answers ARP for 10.213.0.254 so the server can route replies to the relay.
        self.ns(self.cli, "ip", "addr", "add", "10.213.0.254/24", "dev", "pxc0", check=False)

    # --- pxedust -----------------------------------------------------------------------------
    def write_config(self, text):
        with open(self.daemon.config, "w") as f:
            f.write(f'[storage]\ndir = "{self.dir}"\n[log]\nlevel = "debug"\n' + text)
        return self.daemon.config

    def start(self, text):
        """Starts pxedust with this config; returns its daemon.json once DHCP listens."""
        self.write_config(text)
        return self.daemon.start(timeout=30, services=("dhcp",))

    def drops(self, reason):
        """pxedust_dhcp_drops_total{reason=...}: requests left unanswered for this reason so far."""
        return self.daemon.metrics().get(f'pxedust_dhcp_drops_total{{reason="{reason}"}}', 0)

    def stop(self, sig=signal.SIGTERM):
        """Stops pxedust (SIGKILL after 30 s); its exit code, or None when it was not running."""
        return self.daemon.stop(sig, timeout=30)

    def read_log(self):
        """pxedust's log, for people: failure messages show its tail."""
        return self.daemon.log_text()

    def leases(self):
        try:
            with open(os.path.join(self.dir, "dhcp.leases")) as f:
                return f.read()
        except OSError:
            return ""

    def close(self):
        self.stop(signal.SIGKILL)
        for ns in self.namespaces:
            # Any client the test left behind dies with its namespace's processes, by PID.
            pids = run("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run("ip", "netns", "del", ns, check=False)
        subprocess.run(["rm", "-rf", self.dir])
