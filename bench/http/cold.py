#!/usr/bin/python3
"""bench/http/cold.py: what a storm of downloads from a cold page cache does to everyone else.

A server's own clients wait for the disk when the file they fetch is not cached; the question here
is whether *other* clients wait too. Each server in turn (pxedust, a second pxedust binary to
compare with, nginx) serves N files of SIZE MiB from a private root on 127.0.0.1:18081. Each round
drops the files from the page cache (fsync + POSIX_FADV_DONTNEED), starts CLIENTS curl downloads of
them at once, and meanwhile a prober fetches a 16-byte file every 20 ms on a new connection: its
latency is what a DHCP-booted host asking for its iPXE script would see during the storm.

Reported per server, median [min-max] over the rounds: the storm's duration, the prober's p50, p99
and worst latency; for pxedust also its own pxedust_event_loop_lag_seconds (the share of 250 ms
ticks that ran more than 100 ms late). Only 127.0.0.1 is used; each process started here is
stopped by PID.

usage: bench/http/cold.py [--pxedust BIN] [--baseline BIN] [--servers pxedust,baseline,nginx]
                          [--rounds 3] [--clients 50] [--files 4] [--size 64] [--rate 8M]
"""

import argparse
import http.client
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PORT = 18081
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def say(*a):
    print("[cold-bench]", *a, file=sys.stderr, flush=True)


def drop_cache(paths):
    # Pages still under a read the last server started cannot be dropped yet: try a few times.
    for _ in range(20):
        if drop_once(paths):
            return True
        time.sleep(0.5)
    return False


def drop_once(paths):
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            try:
                os.preadv(fd, [bytearray(1)], os.fstat(fd).st_size // 2, os.RWF_NOWAIT)
                return False  # still cached: this file system keeps it (tmpfs)
            except BlockingIOError:
                pass
        finally:
            os.close(fd)
    return True


def probe(stop, latencies):
    while not stop.is_set():
        start = time.monotonic()
        try:
            c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
            c.request("GET", "/probe.txt")
            c.getresponse().read()
            c.close()
            latencies.append(time.monotonic() - start)
        except OSError:
            latencies.append(30.0)
        time.sleep(0.02)


def lag_histogram():
    """pxedust_event_loop_lag_seconds buckets from /metrics: {le: cumulative count}."""
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("pxedust_event_loop_lag_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[le] = float(line.split()[-1])
    return out


def start(kind, binary, work, root):
    if kind == "nginx":
        conf = os.path.join(work, "nginx.conf")
        os.makedirs(os.path.join(work, "nginx-tmp"), exist_ok=True)
        with open(conf, "w") as f:
            f.write(f"""worker_processes auto;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off; sendfile on; tcp_nopush on; tcp_nodelay on;
  default_type application/octet-stream;
  client_body_temp_path {work}/nginx-tmp/body; proxy_temp_path {work}/nginx-tmp/proxy;
  fastcgi_temp_path {work}/nginx-tmp/fastcgi; uwsgi_temp_path {work}/nginx-tmp/uwsgi;
  scgi_temp_path {work}/nginx-tmp/scgi;
  server {{ listen 127.0.0.1:{PORT}; root {root}; }}
}}
""")
        cmd = ["nginx", "-c", conf, "-g", "daemon off;"]
    else:
        conf = os.path.join(work, f"{kind}.toml")
        with open(conf, "w") as f:
            f.write(f"""[log]
level = "warn"
[daemon]
state_dir = "{work}/{kind}-state"
[storage]
dir = "{work}/{kind}-store"
[http]
listen = ["127.0.0.1:{PORT}"]
root = "{root}"
max_connections_per_client = 4096
""")
        cmd = [binary, "serve", "--config", conf]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"{kind}.log"), "ab"))
    for _ in range(100):
        try:
            c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=2)
            c.request("GET", "/probe.txt")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    stop(proc)
    raise SystemExit(f"{kind} did not start (log in {work})")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def round_of(kind, files, clients, rate="0"):
    latencies = []
    stop_probe = threading.Event()
    prober = threading.Thread(target=probe, args=(stop_probe, latencies))
    before = lag_histogram() if kind != "nginx" else {}
    prober.start()
    time.sleep(0.3)  # a few probes before the storm
    start_t = time.monotonic()
    downloads = [subprocess.Popen(["curl", "-sS", "-o", "/dev/null", "--max-time", "600", "--limit-rate", rate,
                                   f"http://127.0.0.1:{PORT}/{os.path.basename(files[i % len(files)])}"])
                 for i in range(clients)]
    failed = sum(1 for d in downloads if d.wait() != 0)
    storm = time.monotonic() - start_t
    stop_probe.set()
    prober.join()
    lag = None
    if kind != "nginx":
        after = lag_histogram()
        total = after.get("+Inf", 0) - before.get("+Inf", 0)
        late = total - (after.get("0.1", 0) - before.get("0.1", 0))
        lag = late / total if total else 0.0
    lat = sorted(latencies)
    return {"storm": storm, "p50": lat[len(lat) // 2], "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            "max": lat[-1], "lag": lag, "failed": failed, "probes": len(lat)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pxedust", default=os.path.join(TOP, "build/release/bin/pxedust"))
    ap.add_argument("--baseline", help="another pxedust binary to compare with (e.g. the commit before)")
    ap.add_argument("--servers", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--size", type=int, default=64, help="MiB per file")
    ap.add_argument("--rate", default="8M", help="curl --limit-rate per download (0: none); the clients must "
                    "not take the CPU the server needs, or the stall measured is theirs")
    a = ap.parse_args()
    servers = a.servers.split(",") if a.servers else (["pxedust"] + (["baseline"] if a.baseline else []) +
                                                      (["nginx"] if shutil.which("nginx") else []))
    work = tempfile.mkdtemp(prefix="pxedust-cold-", dir=os.path.join(TOP, "build"))
    root = os.path.join(work, "root")
    os.makedirs(root)
    os.chmod(work, 0o755)  # nginx's workers read the root as nobody
    try:
        with open(os.path.join(root, "probe.txt"), "wb") as f:
            f.write(b"#!ipxe\necho hi\n\n")
        os.chmod(os.path.join(root, "probe.txt"), 0o644)
        files = []
        for i in range(a.files):
            p = os.path.join(root, f"initrd-{i}.img")
            with open(p, "wb") as f:
                for _ in range(a.size):
                    f.write(os.urandom(1 << 20))
            os.chmod(p, 0o644)
            files.append(p)
        say(f"{a.files} files of {a.size} MiB in {root}; {a.clients} downloads per round; {a.rounds} rounds")
        results = {s: [] for s in servers}
        for r in range(a.rounds):
            for kind in servers:  # interleaved: each round gives every server the same conditions
                binary = a.baseline if kind == "baseline" else a.pxedust
                proc = start(kind, binary, work, root)
                try:
                    if not drop_cache(files):
                        raise SystemExit("the page cache cannot be dropped here (tmpfs?): nothing to measure")
                    results[kind].append(round_of(kind, files, a.clients, a.rate))
                    say(f"round {r + 1} {kind}: {results[kind][-1]}")
                finally:
                    stop(proc)

        def cell(xs, scale=1.0, fmt="{:.0f}"):
            xs = [x * scale for x in xs]
            return f"{fmt.format(statistics.median(xs))} [{fmt.format(min(xs))}-{fmt.format(max(xs))}]"

        print(f"\ncold storm: {a.clients} downloads (at most {a.rate}B/s each) of {a.files} x {a.size} MiB files dropped "
              f"from the page cache, {a.rounds} rounds; a 16-byte file probed every 20 ms meanwhile")
        print(f"  {'server':10}{'storm s':22}{'probe p50 ms':22}{'probe p99 ms':24}{'probe max ms':24}"
              f"{'loop ticks >100 ms late':26}failed")
        for kind in servers:
            rs = results[kind]
            lag = cell([x["lag"] for x in rs], 100, "{:.1f}") + " %" if rs[0]["lag"] is not None else "-"
            print(f"  {kind:10}{cell([x['storm'] for x in rs], 1, '{:.1f}'):22}{cell([x['p50'] for x in rs], 1000):22}"
                  f"{cell([x['p99'] for x in rs], 1000):24}{cell([x['max'] for x in rs], 1000):24}{lag:26}"
                  f"{sum(x['failed'] for x in rs)}")
    finally:
        if os.environ.get("PXD_BENCH_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
