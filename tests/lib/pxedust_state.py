"""Reading a running pxedust's state from its state directory ([daemon] state_dir, or `serve
--state-dir`): daemon.json (pid, state, each service's bound endpoints, reload counts), hosts.json
(each host's boot stage) and metrics.prom (written on SIGUSR1). Tests wait on these, never on log
lines, and never sleep for a fixed time."""

import json
import os
import signal
import time


def read_json(state_dir, name):
    """The parsed file, or None while it does not exist yet. Files are replaced whole (rename), so a
    reader never sees half of one."""
    try:
        with open(os.path.join(state_dir, name)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def wait_for(what, fn, timeout=20, interval=0.02, proc=None):
    """Polls fn() until it returns something truthy and returns that; fails after `timeout` seconds,
    or at once when `proc` (a Popen) has exited."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"pxedust exited ({proc.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def wait_running(state_dir, proc, timeout=20):
    """daemon.json of this process, once it serves; its services' endpoints say where."""
    def ready():
        d = read_json(state_dir, "daemon.json")
        return d if d and d.get("pid") == proc.pid and d.get("state") == "running" else None
    return wait_for("pxedust to start", ready, timeout, proc=proc)


def read_hosts(state_dir, proc):
    """hosts.json's hosts (each host's boot stage and recent events) as this process wrote them: []
    before it wrote one, and for a file left by an earlier run (another pid)."""
    hosts = read_json(state_dir, "hosts.json")
    return hosts["hosts"] if hosts and hosts.get("pid") == proc.pid else []


def reloads(state):
    r = state["reloads"]
    return r["applied"] + r["refused"]


def wait_reload(state_dir, proc, before, timeout=20):
    """daemon.json once the reload after `before` (a daemon.json read before the SIGHUP) was taken,
    applied or refused."""
    def taken():
        d = read_json(state_dir, "daemon.json")
        return d if d and d.get("pid") == proc.pid and reloads(d) > reloads(before) else None
    return wait_for("the reload to be taken", taken, timeout, proc=proc)


def endpoint(state, service, index=0):
    """("127.0.0.1", 12345) of a service's index-th listener."""
    text = state["services"][service]["endpoints"][index]
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def dump_metrics(state_dir, proc, parse=True, timeout=20):
    """Asks the daemon for metrics.prom now (SIGUSR1) and returns its samples, {'name{labels}': value},
    e.g. dump_metrics(d, p)['pxedust_dhcp_drops_total{reason="pool_exhausted"}'], or with parse=False
    the file's path. The old file is removed first, so what is read was written after the signal."""
    path = os.path.join(state_dir, "metrics.prom")
    if os.path.exists(path):
        os.unlink(path)
    proc.send_signal(signal.SIGUSR1)
    wait_for("metrics.prom", lambda: os.path.exists(path), timeout, proc=proc)
    if not parse:
        return path
    samples = {}
    with open(path) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                name, _, value = line.rstrip("\n").rpartition(" ")
                samples[name] = float(value)
    return samples
