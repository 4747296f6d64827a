"""bench/http/report.py RESULTS DURATION ROW...: the table of bench/http/run.sh from its results file
(server, row, run, server CPU-s, wrk output file per line) and wrk's outputs."""

import re
import statistics
import sys
from collections import defaultdict

UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
TIME = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(text):
    """(bytes read, requests, p99 latency in ms, errors) from wrk --latency output."""
    m = re.search(r"(\d+) requests in [\d.]+\w+, ([\d.]+)(\w+) read", text)
    if not m:
        return None
    requests, read = int(m.group(1)), float(m.group(2)) * UNITS[m.group(3)]
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    errors = 0
    e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if e:
        errors += sum(int(x) for x in e.groups())
    n = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if n:
        errors += int(n.group(1))
    return read, requests, float(p99.group(1)) * TIME[p99.group(2)] if p99 else float("nan"), errors


def spread(values, fmt):
    if not values:
        return "-"
    return f"{fmt(statistics.median(values))} [{fmt(min(values))}-{fmt(max(values))}]"


def main():
    results, duration, rows = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    data = defaultdict(lambda: defaultdict(list))  # row -> server -> [(MB/s, p99, cpu/GB, errors)]
    servers = []
    with open(results) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            server, row = parts[0], parts[1]
            if server not in servers:
                servers.append(server)
            if parts[3] == "failed":
                continue
            with open(parts[4]) as w:
                parsed = parse_wrk(w.read())
            if not parsed:
                continue
            read, _, p99, errors = parsed
            cpu = float(parts[3])
            gb = read / 1e9
            data[row][server].append((read / 1e6 / duration, p99, cpu / gb if gb else float("nan"), errors))

    print()
    print("bench/http: one 30 MiB file over loopback, wrk -t2 --latency; median [min-max] over runs")
    print("vs pxe = pxedust / server (above 1: pxedust ahead; for CPU/GB: the server's CPU / pxedust's)")
    verdicts = []
    for row in rows:
        rid, label = row.split("|")[0], row.split("|")[1]
        print(f"\n{rid}: {label}")
        print(f"  {'server':9} {'MB/s':24} {'vs pxe':7} {'p99 ms':24} {'CPU-s/GB':22} {'vs pxe':7} errors")
        base = data[rid].get("pxedust")
        base_mbs = statistics.median([r[0] for r in base]) if base else None
        base_cpu = statistics.median([r[2] for r in base]) if base else None
        for s in servers:
            runs = data[rid].get(s, [])
            mbs = [r[0] for r in runs]
            p99 = [r[1] for r in runs]
            cpu = [r[2] for r in runs]
            err = sum(r[3] for r in runs)
            ratio = f"{base_mbs / statistics.median(mbs):.2f}x" if base_mbs and mbs else "-"
            cpu_ratio = f"{statistics.median(cpu) / base_cpu:.2f}x" if base_cpu and cpu else "-"
            print(f"  {s:9} {spread(mbs, lambda v: f'{v:.0f}'):24} {ratio:7} {spread(p99, lambda v: f'{v:.1f}'):24} "
                  f"{spread(cpu, lambda v: f'{v:.3f}'):22} {cpu_ratio:7} {err}")
            if s == "nginx" and base_mbs and mbs and base_cpu and cpu:
                ok = base_mbs >= statistics.median(mbs) and base_cpu <= statistics.median(cpu)
                verdicts.append(f"  {rid:8} {'PASS' if ok else 'FAIL'}  {base_mbs:.0f} vs {statistics.median(mbs):.0f} MB/s, "
                                f"{base_cpu:.3f} vs {statistics.median(cpu):.3f} CPU-s/GB")
    if verdicts:
        print("\ntarget (issue 16): at least nginx's throughput at no more CPU per GB, every row")
        print("\n".join(verdicts))


if __name__ == "__main__":
    main()
