"""Starting and stopping a real `pxedust serve` for a test, and asking it things through its state
files (pxedust_state.py), never its log: the one launcher the Python tests share.

    d = Daemon(binary, config_path, workdir)   # the state dir and the log go in workdir
    d.start()                                  # returns once daemon.json says it serves
    d.endpoint("iscsi")                        # ("127.0.0.1", 41234): listen on port 0, read it here
    d.reload(expect="refused")                 # SIGHUP; checks how daemon.json says it ended
    d.metrics()["pxedust_iscsi_logins_normal_total"]
    d.stop()                                   # SIGTERM, then SIGKILL after a while; only our PID

The log is kept for people reading a failure (`log_tail()`); nothing here matches its text."""

import os
import signal
import subprocess

import pxedust_state


class Daemon:
    def __init__(self, binary, config, workdir, env=None):
        self.binary, self.config, self.workdir = binary, config, workdir
        self.state_dir = os.path.join(workdir, "state")
        self.log = os.path.join(workdir, "pxedust.log")
        self.env = env
        self.proc = None
        self.state = None  # daemon.json as last read

    def start(self, timeout=20):
        with open(self.log, "a") as logf:
            self.proc = subprocess.Popen([self.binary, "serve", "--config", self.config, "--state-dir", self.state_dir],
                                         stdout=logf, stderr=logf, env=self.env)
        try:
            self.state = pxedust_state.wait_running(self.state_dir, self.proc, timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.log_tail()}") from None
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
        """hosts.json's hosts (each host's boot stage and recent events)."""
        return pxedust_state.read_hosts(self.state_dir, self.proc)

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
        except FileNotFoundError:
            return ""

    def log_tail(self, n=3000):
        return "pxedust log (tail):\n" + self.log_text()[-n:]
