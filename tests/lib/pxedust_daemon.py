"""Starting and stopping a real `pxedust serve` for a test, and asking it things through its state
files (pxedust_state.py), never its log: the one launcher the Python tests share.

    d = Daemon(binary, config_path, workdir)   # the state dir and the log go in workdir
    d.start()                                  # returns once daemon.json says it serves
    d.endpoint("iscsi")                        # ("127.0.0.1", 41234): listen on port 0, read it here
    d.reload(expect="refused")                 # SIGHUP; checks how daemon.json says it ended
    d.metrics()["pxedust_iscsi_logins_normal_total"]
    d.wait_event("node01", "file.completed", requested="boot.ipxe")   # from hosts.json
    d.stop()                                   # SIGTERM, then SIGKILL after a while; only our PID
    d.start()                                  # again: the same state dir, the log appended to

`prefix` runs it through another command first, e.g. ["ip", "netns", "exec", NS] inside a network
namespace: `ip netns exec` execs pxedust in its own place, so the PID we signal and the one
daemon.json names are pxedust's.

The log is kept for people reading a failure (`log_tail()`); nothing here matches its text."""

import os
import signal
import subprocess

import pxedust_state


class Daemon:
    def __init__(self, binary, config, workdir, env=None, prefix=()):
        self.binary, self.config, self.workdir = binary, config, workdir
        self.state_dir = os.path.join(workdir, "state")
        self.log = os.path.join(workdir, "pxedust.log")
        self.env = env
        self.prefix = list(prefix)
        self.proc = None
        self.state = None  # daemon.json as last read

    def start(self, timeout=20, services=()):
        """Starts it and returns daemon.json once it says running, after checking each of `services`
        ("dhcp", "tftp", ...) listens somewhere."""
        with open(self.log, "a") as logf:
            self.proc = subprocess.Popen(self.prefix + [self.binary, "serve", "--config", self.config,
                                                        "--state-dir", self.state_dir],
                                         stdout=logf, stderr=logf, env=self.env)
        try:
            self.state = pxedust_state.wait_running(self.state_dir, self.proc, timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.log_tail()}") from None
        idle = [s for s in services if not self.state["services"].get(s, {}).get("endpoints")]
        if idle:
            raise AssertionError(f"pxedust runs without {', '.join(idle)}: {self.state['services']}")
        return self.state

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def endpoint(self, service, index=0):
        return pxedust_state.endpoint(self.state, service, index)

    def reload(self, expect="applied", timeout=20):
        """SIGHUP; returns daemon.json once the reload was taken, after checking it was `expect`ed
        ("applied" or "refused")."""
        before = pxedust_state.read_json(self.state_dir, "daemon.json")
        self.proc.send_signal(signal.SIGHUP)
        after = pxedust_state.wait_reload(self.state_dir, self.proc, before, timeout)
        if after["reloads"][expect] != before["reloads"][expect] + 1:
            raise AssertionError(f"the reload was not {expect}: {after['reloads']}\n{self.log_tail()}")
        self.state = after
        return after

    def metrics(self):
        """{"name{labels}": value} from a fresh metrics.prom (SIGUSR1)."""
        return pxedust_state.dump_metrics(self.state_dir, self.proc)

    def metrics_file(self):
        return pxedust_state.dump_metrics(self.state_dir, self.proc, parse=False)

    def hosts(self):
        """hosts.json's hosts (each host's boot stage and recent events) as this run wrote them: []
        before it wrote one, and while it is not running (a file left by an earlier run is not its)."""
        return pxedust_state.read_hosts(self.state_dir, self.proc) if self.proc is not None else []

    def host(self, name):
        """The configured host `name` from hosts.json, or None before pxedust wrote one."""
        return next((h for h in self.hosts() if h["name"] == name), None)

    def events(self, name, kind, **details):
        """The events of `kind` ("file.completed", "disk.login", ...) recorded for host `name` whose
        details have these values (e.g. requested="boot.ipxe"), oldest first."""
        host = self.host(name)
        return [e for e in (host["events"] if host else [])
                if e["kind"] == kind and all(e.get(k) == v for k, v in details.items())]

    def wait_event(self, name, kind, timeout=10, **details):
        """The first such event, once hosts.json has it (it is rewritten within 100 ms of a change)."""
        found = pxedust_state.wait_for(f"{kind} {details} of {name} in hosts.json",
                                       lambda: self.events(name, kind, **details), timeout, proc=self.proc)
        return found[0]

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signals our process and waits for it (SIGKILL after `timeout`); returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc, self.proc = self.proc.returncode, None
        return rc

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:  # not started yet
            return ""

    def log_tail(self, n=3000):
        return "pxedust log (tail):\n" + self.log_text()[-n:]
