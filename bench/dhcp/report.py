#!/usr/bin/env python3
"""The table of bench/dhcp/run.sh, from the JSON lines it collected (one per load run)."""

import json
import statistics
import sys

(results, servers, runs, mode, period, clients, instances, cpu_rate, pool, load_before, load_after, fs_type,
 skipped, host_note, reservations) = sys.argv[1:16]
servers = servers.split()
rows = [json.loads(l) for l in open(results) if l.strip()]
med = statistics.median


def pick(server, row, fill=None):
    return [r for r in rows if r["server"] == server and r["row"] == row and (fill is None or r.get("fill") == fill)]


def acks_per_s(r):
    return r["ra_recv"] / r["period"]


def loss(r):
    return (r["do_sent"] - r["ra_recv"]) / r["do_sent"] if r["do_sent"] else 1.0


def cpu_per_1000(r):
    return r["cpu_s"] / r["ra_recv"] * 1000 if r["ra_recv"] else float("nan")


def best(server, row, fill=None, also=None):
    """Per run, the load run that completed the most exchanges per second: of a sweep, and of the clean
    ladder's steps (`also`) when given (a server that collapses under overload peaks at its clean rate)."""
    by_run = {}
    for r in pick(server, row, fill) + (pick(server, also) if also else []):
        if r["run"] not in by_run or acks_per_s(r) > acks_per_s(by_run[r["run"]]):
            by_run[r["run"]] = r
    return [by_run[k] for k in sorted(by_run)]


def cell(values, fmt="%.0f"):
    if not values:
        return "-"
    return (fmt + " [" + fmt + "-" + fmt + "]") % (med(values), min(values), max(values))


def ratio(v, px):
    return "%.2fx" % (v / px) if px else "-"


print()
print("pxedust DHCP benchmark: perfdhcp %s mode, %s instance(s), -R %s clients, -p %s s; median of %s run(s) [min-max]"
      % (mode, instances, clients, period, runs))
print("same pool for every server (%s addresses), 1 h leases, lease files on %s; load average before %s, after %s"
      % (format(int(pool), ","), fs_type, load_before, load_after))

summary = {}

print()
print("1. clean rate: highest perfdhcp -r with < 0.1% of DORA exchanges lost (doubling from 125/s, then bisecting)")
print("  %-8s %-26s %7s" % ("server", "DORA/s median [min-max]", "vs pxe"))
px = med([r["clean"] for r in pick("pxedust", "clean")] or [0])
for s in servers:
    v = [r["clean"] for r in pick(s, "clean")]
    if not v:
        continue
    summary.setdefault(s, {})["clean"] = med(v)
    print("  %-8s %-26s %7s" % (s, cell(v), ratio(med(v), px)))

print()
print("2. peak: the most ACKs per second completed at any offered rate (the clean ladder's steps, 1.5x and 3x the")
print("   run's clean rate, and a flood of -r 50000); 'offered' is the perfdhcp -r where that happened. The flood alone")
print("   (last column) mostly measures perfdhcp: it then takes the CPU the server needs.")
print("  %-8s %-26s %7s %-9s %-20s %-22s %10s %9s %9s %-14s" % (
    "server", "ACK/s median [min-max]", "vs pxe", "offered", "lost % [min-max]", "srv CPU-s/1000 leases",
    "client CPU", "srv drop", "cli drop", "flood ACK/s"))
px = med([acks_per_s(r) for r in best("pxedust", "peak", also="clean-step")] or [0])
for s in servers:
    rs = best(s, "peak", also="clean-step")
    if not rs:
        continue
    a = [acks_per_s(r) for r in rs]
    summary.setdefault(s, {})["peak"] = med(a)
    summary[s]["peak_cpu"] = med([cpu_per_1000(r) for r in rs])
    flood = [acks_per_s(r) for r in pick(s, "peak") if r["rate"] >= 50000]
    print("  %-8s %-26s %7s %-9.0f %-20s %-22s %9.0f%% %9.0f %9.0f %-14s" % (
        s, cell(a), ratio(med(a), px), med([r["rate"] for r in rs]), cell([100 * loss(r) for r in rs], "%.1f"),
        cell([cpu_per_1000(r) for r in rs], "%.3f"), 100 * med([r["client_cpu_s"] / r["period"] for r in rs]),
        med([r.get("srv_rcvbuf", 0) for r in rs]), med([r.get("cli_rcvbuf", 0) for r in rs]), cell(flood)))

print()
print("3. server CPU per lease at a fixed %s exchanges/s (utime+stime from /proc/PID/stat, whole run)" % cpu_rate)
print("  %-8s %-26s %7s %-14s %-10s" % ("server", "CPU-s/1000 leases", "vs pxe", "ACK/s", "lost %"))
px = med([cpu_per_1000(r) for r in pick("pxedust", "cpu")] or [0])
for s in servers:
    rs = pick(s, "cpu")
    if not rs:
        continue
    c = [cpu_per_1000(r) for r in rs]
    summary.setdefault(s, {})["cpu"] = med(c)
    print("  %-8s %-26s %7s %-14.0f %-10.2f" % (s, cell(c, "%.3f"), ratio(med(c), px), med([acks_per_s(r) for r in rs]),
                                                100 * med([loss(r) for r in rs])))

fills = sorted({r["fill"] for r in rows if r["row"] == "growth"})
if fills:
    print()
    print("4. growth: the peak (best of 1.5x and 3x the clean rate) with N active leases already in the lease file")
    print("   (ACK/s; % of the empty-file peak)")
    head = "  %-8s %-22s" % ("server", "0 leases")
    for f in fills:
        head += " %-30s" % ("%dk leases" % (f // 1000))
    print(head + " %s" % "vs pxe at the largest")
    px_last = med([acks_per_s(r) for r in best("pxedust", "growth", fills[-1])] or [0])
    for s in servers:
        base = [acks_per_s(r) for r in best(s, "peak", also="clean-step")]
        if not base:
            continue
        line = "  %-8s %-22s" % (s, cell(base))
        last = None
        for f in fills:
            v = [acks_per_s(r) for r in best(s, "growth", f)]
            last = med(v) if v else None
            line += " %-30s" % ((cell(v) + " (%.0f%%)" % (100 * med(v) / med(base) if med(base) else 0)) if v else "-")
        line += " %s" % (ratio(last, px_last) if last is not None else "-")
        print(line)

if any(r["row"] in ("static-clean", "static-peak") for r in rows):
    print()
    print("6. static reservations: %s MAC -> IP reservations in the config and every client one of them"
          % format(int(reservations), ","))
    print("  %-8s %-26s %7s %-26s %7s %-16s %-22s" % ("server", "clean DORA/s [min-max]", "vs pxe", "peak ACK/s [min-max]",
                                                   "vs pxe", "peak lost %", "srv CPU-s/1000 at peak"))
    px_c = med([r["clean"] for r in pick("pxedust", "static-clean")] or [0])
    px_p = med([acks_per_s(r) for r in best("pxedust", "static-peak", also="static-clean-step")] or [0])
    for s in servers:
        c = [r["clean"] for r in pick(s, "static-clean")]
        rs = best(s, "static-peak", also="static-clean-step")
        p = [acks_per_s(r) for r in rs]
        if not c and not p:
            continue
        if c:
            summary.setdefault(s, {})["static_clean"] = med(c)
        if p:
            summary.setdefault(s, {})["static_peak"] = med(p)
        print("  %-8s %-26s %7s %-26s %7s %-16s %-22s" % (
            s, cell(c), ratio(med(c), px_c) if c else "-", cell(p), ratio(med(p), px_p) if p else "-",
            cell([100 * loss(r) for r in rs], "%.1f"), cell([cpu_per_1000(r) for r in rs], "%.3f")))

fs = [r for r in rows if r["row"] == "fsync"]
if fs:
    print()
    print("5. durability: fsync/fdatasync/msync/sync_file_range and write calls per ACK at %s/s (strace -f -c)" % cpu_rate)
    for r in fs:
        if r["server"] not in servers:
            continue
        a = r["acks"] or 1
        print("  %-8s %6d ACKs: %.3f syncs/ACK, %.2f writes/ACK%s" % (
            r["server"], r["acks"], r["syncs"] / a, r["writes"] / a,
            "  (never syncs: an ACKed lease can be lost in a power cut)" if r["syncs"] == 0 else ""))

print()
print("vs pxe = server / pxedust. lost = (DISCOVERs sent - ACKs received) / DISCOVERs sent. client CPU =")
print("perfdhcp's user+sys / period, all instances (100% = one core). srv/cli drop = UDP RcvbufErrors in the server's")
print("and the clients' namespace during the run: the server, or perfdhcp, did not read fast enough.")
if skipped.strip():
    print("not measured: " + "; ".join(skipped.strip().splitlines()))
print(host_note)

px = summary.get("pxedust")
kea = summary.get("kea")
if px and kea:
    print()
    print("target (issue 3): pxedust >= 2x Kea's clean and peak rates at no more CPU per lease")
    for key, label in (("clean", "clean rate"), ("peak", "peak rate"), ("static_clean", "static clean"),
                       ("static_peak", "static peak")):
        if key in px and key in kea and kea[key]:
            x = px[key] / kea[key]
            print("  %-12s %s  %.0f vs %.0f/s = %.2fx" % (label, "PASS" if x >= 2 else "FAIL", px[key], kea[key], x))
    for key, label in (("cpu", "CPU/lease at %s/s" % cpu_rate), ("peak_cpu", "CPU/lease at peak")):
        if key in px and key in kea:
            print("  %-18s %s  %.3f vs %.3f CPU-s/1000" % (label, "PASS" if px[key] <= kea[key] else "FAIL", px[key], kea[key]))
