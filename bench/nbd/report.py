"""bench/nbd/report.py SAMPLES ROWS SERVERS SETUP SYSTEM LOAD_BEFORE LOAD_AFTER: the tables of
bench/nbd/run.sh from its samples.tsv (one line per pass) and its rows file (id|label|disk|unit|args).

Per row and server: median [min-max] over the runs of IOPS or MB/s (10^6 B/s), pxedust's figure over the
server's (the median of the per-run ratios: both measured in the same run, minutes apart at most), and
the server's CPU per IO in microseconds (utime+stime from /proc around the pass, divided by fio's IOs).
The verify row counts the blocks whose read-back failed fio's crc32c check. Then the issue's targets,
as measurements: PASS/FAIL says what this run measured, nothing fails."""

import statistics
import sys
from collections import defaultdict

OVERLAY_PEERS = ["qemu-qcow2", "nbdkit-cow", "nbd-server-cow"]
NBDKIT = ["nbdkit-file", "nbdkit-cow"]


def num(x):
    try:
        return float(x)
    except ValueError:
        return None


def fig(v):
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def spread(vals, f=fig):
    if not vals:
        return "-"
    return f"{f(statistics.median(vals))} [{f(min(vals))}-{f(max(vals))}]"


def main():
    samples, rows_file, servers, setup, system, load_before, load_after = sys.argv[1:8]
    servers = servers.split(",")
    rows = [line.rstrip("\n").split("|") for line in open(rows_file) if line.strip()]
    val = defaultdict(dict)   # (row, server) -> {run: value}
    cpu = defaultdict(list)   # (row, server) -> [us per IO]
    ios = defaultdict(list)
    notes = defaultdict(list)
    busy = []
    with open(samples) as f:
        next(f)
        for line in f:
            run, row, srv, value, _unit, cpu_us, n, _errs, busy_pct, _res, note = line.rstrip("\n").split("\t")
            if num(busy_pct) is not None:
                busy.append(num(busy_pct))
            v = num(value)
            if v is not None:
                val[(row, srv)][int(run)] = v
            c = num(cpu_us)
            if c is not None and v is not None:
                cpu[(row, srv)].append(c)
            if num(n) is not None:
                ios[(row, srv)].append(int(n))
            if note:
                notes[(row, srv)].append(note)

    def ratio_runs(row, a, bs):
        """pxedust / max(the servers bs) per run, where all were measured."""
        out = []
        for run, va in val[(row, a)].items():
            vb = [val[(row, b)].get(run) for b in bs if b in servers]
            vb = [v for v in vb if v is not None]
            if vb and max(vb) > 0:
                out.append(va / max(vb))
        return out

    print()
    print(f"## bench/nbd/run.sh: {setup}")
    print(system)
    print(f"load average before {load_before}, after {load_after}; other processes used "
          f"{spread(busy, lambda x: f'{x:.0f}')} % of one core (1 s before each row)")
    print("px/x = pxedust's figure over the server's (median of per-run ratios; above 1: pxedust ahead); "
          "CPU = the server's CPU per IO in us (per 1 MiB IO on the 1 MiB rows)")
    for rid, label, _disk, unit, _args in rows:
        print(f"\n{rid}: {label}")
        if unit == "mismatches":
            print(f"  {'server':15} {'blocks that failed verify, per run':36} {'blocks read back (median)':26}")
            for s in servers:
                v = [val[(rid, s)][r] for r in sorted(val[(rid, s)])]
                per = " ".join(f"{x:.0f}" for x in v) if v else "-"
                n = statistics.median(ios[(rid, s)]) if ios[(rid, s)] else 0
                note = f"  ({notes[(rid, s)][0]})" if notes[(rid, s)] else ""
                print(f"  {s:15} {per:36} {n:<26.0f}{note}")
            continue
        print(f"  {'server':15} {unit:24} {'px/x':18} {'CPU us/IO':22}")
        for s in servers:
            v = list(val[(rid, s)].values())
            r = ratio_runs(rid, "pxedust", [s]) if s != "pxedust" else []
            rtxt = spread(r, lambda x: f"{x:.2f}") if r else ("1.00" if s == "pxedust" and v else "-")
            note = f"  ({notes[(rid, s)][0]})" if notes[(rid, s)] else ""
            print(f"  {s:15} {spread(v):24} {rtxt:18} {spread(cpu[(rid, s)]):22}{note}")

    print("\ntargets (the issue's), as measured by this run: PASS/FAIL reports a measurement, nothing fails")
    have = {rid for rid, *_ in rows}

    def line(text, rid, bs, thr, what):
        if rid not in have or not val[(rid, "pxedust")]:
            print(f"  {text:62} not measured (row or pxedust not in this run)")
            return
        r = ratio_runs(rid, "pxedust", bs)
        px = statistics.median(val[(rid, "pxedust")].values())
        peers = ", ".join(f"{b} {fig(statistics.median(val[(rid, b)].values()))}"
                          for b in bs if val[(rid, b)])
        if not r:
            print(f"  {text:62} pxedust {fig(px)}; no {what} measured")
            return
        m = statistics.median(r)
        print(f"  {text:62} {'PASS' if m >= thr else 'FAIL'}  {m:.2f}x the {what} "
              f"[{min(r):.2f}-{max(r):.2f}]; pxedust {fig(px)}, {peers}")

    for rid in ("rr32_base", "rr32_full"):
        line(f"{rid}: 4 KiB random read QD32 >= 3x nbdkit", rid, NBDKIT, 3.0, "faster nbdkit")
    for rid in ("rw_first", "rw_re"):
        line(f"{rid}: 4 KiB random write QD32 >= 2x the best peer overlay", rid, OVERLAY_PEERS, 2.0,
             "best peer overlay")
    for rid in ("sr_base", "sr_full"):
        text = f"{rid}: 1 MiB sequential read QD8 >= 3 GB/s"
        if rid not in have or not val[(rid, "pxedust")]:
            print(f"  {text:62} not measured (row or pxedust not in this run)")
            continue
        v = list(val[(rid, "pxedust")].values())
        m = statistics.median(v)
        print(f"  {text:62} {'PASS' if m >= 3000 else 'FAIL'}  pxedust {spread(v)} MB/s")


if __name__ == "__main__":
    main()
