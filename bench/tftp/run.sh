#!/usr/bin/env bash
# bench/tftp/run.sh: pxedust's TFTP server against tftpd-hpa, atftpd and dnsmasq, on loopback.
#
# Each server in turn is started on 127.0.0.1:69 (dnsmasq's TFTP port cannot be moved, so all use
# it, one after another), serves the same random files from a private temp root, and is driven by
# build/bench/tftp_load (bench/tftp/tftp_load.cpp) through these rows:
#   1 x 64 MiB at blksize 1468 lock-step, at 1468 with windowsize 64, at blksize 65464;
#   50 and 500 concurrent 8 MiB transfers at blksize 1468 (lock-step).
# Every row runs --runs times (median, min, max). Server CPU is measured per run, see procTicks() and
# bench/tftp/README.md. Only 127.0.0.1 is used; every process started here is stopped by PID.
#
# usage: bench/tftp/run.sh [--runs N] [--servers pxedust,tftpd-hpa,atftpd,dnsmasq] [--quick]
#                          [--no-build] [--no-deps]
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
runs=""
servers="pxedust,tftpd-hpa,atftpd,dnsmasq"
quick=0
build_pxedust=1
install_deps=1

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}
while (($#)); do
  case $1 in
    --runs) runs=${2:?--runs N}; shift 2 ;;
    --servers) servers=${2:?--servers LIST}; shift 2 ;;
    --quick) quick=1; shift ;;
    --no-build) build_pxedust=0; shift ;;   # use build/release/bin/pxedust as it is
    --no-deps) install_deps=0; shift ;;     # skip scripts/install-deps.sh --bench
    -h|--help) usage 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; usage ;;
  esac
done
[[ -z $runs ]] && { ((quick)) && runs=1 || runs=3; }
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --runs wants a positive number" >&2; exit 2; }
IFS=, read -r -a server_list <<<"$servers"
for s in "${server_list[@]}"; do
  case $s in pxedust|tftpd-hpa|atftpd|dnsmasq) ;; *) echo "run.sh: unknown server '$s'" >&2; exit 2 ;; esac
done

say() { printf '[tftp-bench] %s\n' "$*" >&2; }

# ---- rows -----------------------------------------------------------------------------------------
# id | label | file | concurrency | blksize | windowsize (0 = not asked)
if ((quick)); then big_mib=4; small_kib=256; else big_mib=64; small_kib=8192; fi
small_label=$( ((small_kib >= 1024)) && echo "$((small_kib / 1024)) MiB" || echo "$small_kib KiB")
rows=(
  "big1468|1 x ${big_mib} MiB, blksize 1468, lock-step|big.bin|1|1468|0"
  "big1468w64|1 x ${big_mib} MiB, blksize 1468, windowsize 64|big.bin|1|1468|64"
  "big65464|1 x ${big_mib} MiB, blksize 65464, lock-step|big.bin|1|65464|0"
  "c50|50 x ${small_label}, blksize 1468, lock-step|small.bin|50|1468|0"
  "c500|500 x ${small_label}, blksize 1468, lock-step|small.bin|500|1468|0"
)

# ---- dependencies and builds ----------------------------------------------------------------------
if ((install_deps)); then
  "$top/scripts/install-deps.sh" --bench >&2
fi
bench_dir=$top/build/bench
mkdir -p "$bench_dir"
load=$bench_dir/tftp_load
if [[ ! -x $load || $top/bench/tftp/tftp_load.cpp -nt $load ]]; then
  say "building $load"
  g++ -O2 -std=c++20 -Wall -Wextra -o "$load" "$top/bench/tftp/tftp_load.cpp"
fi

# atftpd conflicts with tftpd-hpa as a package: unpack its .deb privately and run it from there.
atftpd_bin=$bench_dir/atftpd/root/usr/sbin/atftpd
want() { [[ ",$servers," == *",$1,"* ]]; }
if want atftpd && [[ ! -x $atftpd_bin ]]; then
  say "fetching atftpd (apt-get download + dpkg-deb -x into $bench_dir/atftpd)"
  rm -rf "$bench_dir/atftpd"
  mkdir -p "$bench_dir/atftpd"
  (cd "$bench_dir/atftpd" && apt-get download atftpd >/dev/null 2>&1 && dpkg-deb -x atftpd_*.deb root) ||
    say "WARNING: could not download/unpack atftpd"
fi

pxedust_bin=$top/build/release/bin/pxedust
pxedust_note=""
if want pxedust && ((build_pxedust)); then
  say "building pxedust (scripts/build.sh release, log in $bench_dir/pxedust-build.log)"
  if ! "$top/scripts/build.sh" release >"$bench_dir/pxedust-build.log" 2>&1; then
    pxedust_note="build failed (scripts/build.sh release; see build/bench/pxedust-build.log)"
    say "pxedust: BUILD FAILED; last lines of build/bench/pxedust-build.log:"
    grep -iE 'error|fail' "$bench_dir/pxedust-build.log" | tail -n 5 | sed 's/^/    /' >&2 || true
  fi
fi
if want pxedust && [[ -z $pxedust_note && ! -x $pxedust_bin ]]; then
  pxedust_note="not built: $pxedust_bin does not exist"
fi

# Server CPU: /proc/PID/stat always; perf task-clock too when perf works (see procTicks()).
use_perf=0
if command -v perf >/dev/null && perf stat -e task-clock -x, -o /dev/null -- true >/dev/null 2>&1; then
  use_perf=1
else
  say "WARNING: perf is unusable; server CPU comes from /proc/PID/stat only, which misses the"
  say "         auto-reaped per-transfer children of tftpd-hpa (its CPU will read far too low)"
fi
clk_tck=$(getconf CLK_TCK)

# ---- temp root ------------------------------------------------------------------------------------
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true   # 500 client sockets; servers inherit the limit
work=$(mktemp -d /tmp/pxedust-tftp-bench.XXXXXX)
chmod 755 "$work"   # the peers drop to nobody and must traverse it
root=$work/root
mkdir -m 755 "$root"
results=$work/results.tsv
: >"$results"
server_pid=""
perf_pid=""

stopPerf() {
  if [[ -n $perf_pid ]]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    perf_pid=""
  fi
}

childrenOf() { cat /proc/"$1"/task/*/children 2>/dev/null || true; }
# A process we started stays a zombie (and kill -0 succeeds) until we wait for it; look at its state.
alive() {
  local s
  s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $s && ${s:0:1} != Z ]]
}

stopServer() {
  [[ -z $server_pid ]] && return 0
  local pid=$server_pid kids c i
  kids=$(childrenOf "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for c in $kids; do kill -TERM "$c" 2>/dev/null || true; done   # tftpd-hpa's per-transfer children
  server_pid=""
}

cleanup() {
  stopPerf
  stopServer
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "making test files in $root (${big_mib} MiB, ${small_label}, random)"
head -c $((big_mib * 1048576)) /dev/urandom >"$root/big.bin"
head -c $((small_kib * 1024)) /dev/urandom >"$root/small.bin"
head -c 4096 /dev/urandom >"$root/probe.bin"
chmod 644 "$root"/*.bin

cat >"$work/pxedust.toml" <<EOF
[log]
level = "warn"
[tftp]
listen = ["127.0.0.1:69"]
root = "$root"
client_rate = 0        # per-client request rate limit off (the bench sends 500 RRQs at once from one IP)
max_transfers = 4096
max_windowsize = 64
EOF

serverCmd() {
  case $1 in
    pxedust) echo "$pxedust_bin serve --config $work/pxedust.toml" ;;
    # -L: standalone, foreground; -4 -a: IPv4 loopback only; -s: chroot into the root.
    tftpd-hpa) echo "/usr/sbin/in.tftpd -4 -L -a 127.0.0.1:69 -s $root" ;;
    atftpd) echo "$atftpd_bin --daemon --no-fork --bind-address 127.0.0.1 --port 69 --logfile /dev/null --maxthread 1000 $root" ;;
    # --port=0: no DNS. --edns-packet-max sizes dnsmasq's packet buffer, which also caps the TFTP
    # blksize (to 2263 at the default 1232); raised so it may negotiate 65464 like the others.
    dnsmasq) echo "dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --port=0" \
                  "--enable-tftp --tftp-root=$root --listen-address=127.0.0.1 --bind-interfaces" \
                  "--tftp-max=1000 --pid-file= --quiet-tftp --log-facility=/dev/null --edns-packet-max=65535" ;;
  esac
}

# The server's CPU so far, in seconds, from /proc: utime+stime+cutime+cstime of the server process
# (all its threads) plus the same for each live child. Children that were already reaped count in
# cutime/cstime only if the server wait()ed for them; tftpd-hpa sets SA_NOCLDWAIT, so its finished
# per-transfer children vanish from /proc accounting, hence the perf cross-check.
procTicks() {
  local pid=$1 t=0 p f
  for p in "$pid" $(childrenOf "$pid"); do
    [[ -r /proc/$p/stat ]] || continue
    f=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    read -r -a f <<<"$f"
    t=$((t + f[11] + f[12] + f[13] + f[14]))
  done
  echo "$t"
}

udpRcvbufErrors() { awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1 } else print $c }' /proc/net/snmp; }

portBusy() { [[ -n $(ss -Huln 'sport = :69' 2>/dev/null) ]]; }

# Starts server $1; echoes nothing, sets server_pid; returns 1 (with a message) if it cannot serve.
startServer() {
  local name=$1 cmd i
  cmd=$(serverCmd "$name")
  for ((i = 0; i < 30; i++)); do portBusy || break; sleep 1; done
  if portBusy; then
    say "$name: SKIPPED, UDP port 69 is in use by another process:"
    ss -Hulpn 'sport = :69' >&2 || true
    return 1
  fi
  # shellcheck disable=SC2086  # the command is a plain word list built above
  $cmd >"$work/$name.log" 2>&1 &
  server_pid=$!
  for ((i = 0; i < 100; i++)); do
    if ! alive "$server_pid"; then
      wait "$server_pid" 2>/dev/null || true
      server_pid=""
      say "$name: FAILED TO START ($cmd); its output:"
      sed 's/^/    /' "$work/$name.log" | tail -n 15 >&2
      return 1
    fi
    if "$load" --file probe.bin --verify "$root/probe.bin" --blksize 1468 --timeout-ms 200 --retries 1 \
        >/dev/null 2>&1; then
      if ! ss -Hulpn 'sport = :69' 2>/dev/null | grep -q "pid=$server_pid,"; then
        say "$name: something other than PID $server_pid answers on port 69; not benchmarking it"
        stopServer
        return 1
      fi
      return 0
    fi
    sleep 0.1
  done
  say "$name: NOT ANSWERING a RRQ on 127.0.0.1:69 after 10 s ($cmd)"
  stopServer
  return 1
}

runRow() {   # server row-spec run -> appends one line to $results
  local name=$1 spec=$2 run=$3 id file conc bs ws t0 t1 d0 d1 perf_ms json i spin
  IFS='|' read -r id _ file conc bs ws <<<"$spec"
  perf_ms=-1
  if ((use_perf)); then
    # task-clock follows every thread and (inherit) every child forked after attaching, and counts
    # a child's time when it exits, whoever reaps it.
    perf stat -e task-clock -x, -o "$work/perf.out" -p "$server_pid" >/dev/null 2>&1 &
    perf_pid=$!
    for ((i = 0; i < 50; i++)); do grep -q started "$work/perf.out" 2>/dev/null && break; sleep 0.05; done
    sleep 0.1
  fi
  t0=$(procTicks "$server_pid")
  d0=$(udpRcvbufErrors)
  # A single transfer is latency-bound: the client then busy-polls (as a PXE ROM does), else the
  # result mostly says whether the scheduler put client and server on the same CPU (a cheap
  # wake-up) or not (measured 80 vs 9 MB/s, same server). With many transfers it sleeps in epoll.
  spin=()
  ((conc == 1)) && spin=(--spin)
  json=$("$load" --label "$id" --file "$file" --verify "$root/$file" --concurrency "$conc" --blksize "$bs" \
         --windowsize "$ws" --timeout-ms 1000 --retries 5 "${spin[@]}") || true
  [[ -z $json ]] && json='{"ok":0,"failed":-1,"errors":["tftp_load crashed"]}'
  # Let the server finish (tftpd-hpa's children exit after the final ACK) before reading its CPU.
  for ((i = 0; i < 100; i++)); do [[ -z $(childrenOf "$server_pid") ]] && break; sleep 0.1; done
  d1=$(udpRcvbufErrors)
  t1=$(procTicks "$server_pid")
  if ((use_perf)); then
    stopPerf
    perf_ms=$(awk -F, '/task-clock/ { print $1 }' "$work/perf.out" 2>/dev/null)
    [[ $perf_ms =~ ^[0-9.]+$ ]] || perf_ms=-1
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$id" "$run" \
    "$(awk -v a="$t0" -v b="$t1" -v h="$clk_tck" 'BEGIN { printf "%.3f", (b - a) / h }')" \
    "$(awk -v m="$perf_ms" 'BEGIN { printf "%.6f", m < 0 ? -1 : m / 1000 }')" "$((d1 - d0))" "$json" >>"$results"
  say "  $name $id run $run: $(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print("%s MB/s, ok %s failed %s, slowest %.3f s, timeouts %s%s" % (j.get("mb_s"), j.get("ok"), j.get("failed"), j.get("slowest_s", 0), j.get("timeouts"), (", errors: " + "; ".join(j["errors"])) if j.get("errors") else ""))' "$json")"
}

say "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; ${runs} run(s) per row"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A skipped=()
for name in "${server_list[@]}"; do
  if [[ $name == pxedust && -n $pxedust_note ]]; then
    say "pxedust: SKIPPED, $pxedust_note; benchmarking the peers only"
    skipped[$name]=$pxedust_note
    continue
  fi
  if [[ $name == atftpd ]]; then
    if [[ ! -x $atftpd_bin ]]; then skipped[$name]="atftpd binary not available"; say "atftpd: SKIPPED (no binary)"; continue; fi
    if ldd "$atftpd_bin" | grep -q 'not found'; then
      skipped[$name]="atftpd libraries missing: $(ldd "$atftpd_bin" | awk '/not found/ { print $1 }' | xargs)"
      say "atftpd: SKIPPED, ${skipped[$name]}"
      continue
    fi
  fi
  say "$name: starting on 127.0.0.1:69"
  if ! startServer "$name"; then
    skipped[$name]="did not start or answer on 127.0.0.1:69"
    [[ $name == pxedust ]] && skipped[$name]+=" (see the message above)"
    continue
  fi
  for spec in "${rows[@]}"; do
    for ((r = 1; r <= runs; r++)); do runRow "$name" "$spec" "$r"; done
  done
  stopServer
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report ---------------------------------------------------------------------------------------
skipped_txt=""
for k in "${!skipped[@]}"; do skipped_txt+="$k: ${skipped[$k]}"$'\n'; done
printf '%s\n' "${rows[@]}" >"$work/rows.txt"
python3 - "$results" "$work/rows.txt" "$servers" "$runs" "$use_perf" "$load_before" "$load_after" "$skipped_txt" <<'PY'
import json, statistics, sys

results, rows_file, servers, runs, use_perf, load_before, load_after, skipped = sys.argv[1:9]
servers = servers.split(",")
use_perf = use_perf == "1"
rows = [l.rstrip("\n").split("|") for l in open(rows_file) if l.strip()]
data = {}  # (server, row) -> list of run dicts
for line in open(results):
    name, row, run, proc_s, perf_s, drops, js = line.rstrip("\n").split("\t", 6)
    j = json.loads(js)
    j.update(proc_s=float(proc_s), perf_s=float(perf_s), drops=int(drops))
    # Both are lower bounds: /proc misses children the kernel reaped for the server (tftpd-hpa sets
    # SA_NOCLDWAIT); perf task-clock misses a sliver of each exiting thread (atftpd: ~4-14% low).
    j["cpu_s"] = max(j["proc_s"], j["perf_s"])
    data.setdefault((name, row), []).append(j)

med = statistics.median

def summary(runs_):
    ok = [r for r in runs_ if r.get("failed", 1) == 0 and r.get("ok", 0) > 0]
    s = {"runs": len(runs_), "good": len(ok), "failed_runs": len(runs_) - len(ok)}
    use = ok or runs_
    r0 = use[0]
    s["na"] = None
    if r0.get("windowsize_req", 0) > 0 and r0.get("windowsize_acked") is False:
        s["na"] = "n/a: no windowsize in OACK"
    if r0.get("blksize_req", 0) > 0 and r0.get("blksize_acked") is False:
        s["na"] = "n/a: no blksize in OACK"
    s["neg"] = "bs%s ws%s" % (r0.get("blksize", "?"), r0.get("windowsize", "?"))
    s["bs_short"] = r0.get("blksize_req", 0) > 0 and r0.get("blksize", 0) not in (-1, r0.get("blksize_req"))
    mbs = [r.get("mb_s", 0.0) for r in use]
    s["mb"], s["mb_min"], s["mb_max"] = med(mbs), min(mbs), max(mbs)
    s["slowest"] = med([r.get("slowest_s", 0.0) for r in use])
    s["cpu"] = med([r["cpu_s"] for r in use])
    s["us_blk"] = med([r["cpu_s"] / r["blocks"] * 1e6 for r in use if r.get("blocks")] or [0])
    s["s_gb"] = med([r["cpu_s"] / (r["bytes"] / 1e9) for r in use if r.get("bytes")] or [0])
    s["timeouts"] = med([r.get("timeouts", 0) for r in use])
    s["drops"] = med([r["drops"] for r in use])
    s["client"] = med([r.get("client_cpu_s", 0.0) for r in use])
    s["errors"] = sorted({e for r in runs_ for e in r.get("errors", [])})
    return s

S = {k: summary(v) for k, v in data.items()}
present = [s for s in servers if any((s, r[0]) in S for r in rows)]

print()
print("pxedust TFTP benchmark on 127.0.0.1:69: median of %s run(s) [min-max]; MB = 10^6 bytes" % runs)
print("server CPU = %s; load average before %s, after %s" % (
    "max(/proc/PID/stat, perf task-clock)" if use_perf else "/proc/PID/stat only", load_before, load_after))
hdr = "  %-10s %-24s %9s %10s %8s %9s %7s %-13s %5s %5s" % (
    "server", "MB/s median [min-max]", "slowest s", "srv CPU-s", "us/block", "CPU-s/GB", "vs pxe", "negotiated", "tmo", "drops")
for rid, label, *_ in rows:
    print()
    print(label)
    print(hdr)
    px = S.get(("pxedust", rid))
    px_ok = px is not None and px["na"] is None and px["good"] > 0
    for name in present:
        s = S.get((name, rid))
        if s is None:
            continue
        if s["na"]:
            print("  %-10s %s" % (name, s["na"]))
            continue
        cell = "%.1f [%.1f-%.1f]" % (s["mb"], s["mb_min"], s["mb_max"])
        ratio = "%.2fx" % (s["mb"] / px["mb"]) if px_ok and px["mb"] > 0 else "-"
        neg = s["neg"] + ("!" if s["bs_short"] else "")
        line = "  %-10s %-24s %9.3f %10.3f %8.2f %9.2f %7s %-13s %5g %5g" % (
            name, cell, s["slowest"], s["cpu"], s["us_blk"], s["s_gb"], ratio, neg, s["timeouts"], s["drops"])
        if s["failed_runs"]:
            line += "  (%d of %d runs had failed transfers: %s)" % (s["failed_runs"], s["runs"], "; ".join(s["errors"][:3]))
        print(line)

print()
print("vs pxe = server MB/s / pxedust MB/s. negotiated: blksize/windowsize from the OACK ('!' = smaller than asked).")
print("tmo = client timeouts (lost RRQ/DATA, re-sent after 1 s); drops = UDP RcvbufErrors on the host during the run.")
if skipped.strip():
    print("not measured: " + "; ".join(l for l in skipped.strip().splitlines()))

# CPU cross-check: /proc/PID/stat against perf, summed over every run of each server.
if use_perf:
    parts = []
    for name in present:
        runs_ = [r for (n, _), v in data.items() if n == name for r in v]
        parts.append("%s %.2f/%.2f" % (name, sum(r["proc_s"] for r in runs_), sum(r["perf_s"] for r in runs_ if r["perf_s"] >= 0)))
    print("CPU-s /proc vs perf (all runs): " + ", ".join(parts))
parts = []
for name in present:
    c = [S[(name, rid)]["client"] for rid, *_ in rows if (name, rid) in S and S[(name, rid)]["na"] is None]
    if c:
        parts.append("%s %.2f" % (name, sum(c)))
print("client CPU-s per server (sum of row medians): " + ", ".join(parts))

# Targets from the issue, for pxedust.
px_rows = [(rid, label) for rid, label, *_ in rows if ("pxedust", rid) in S and S[("pxedust", rid)]["na"] is None]
if px_rows:
    print()
    print("targets (pxedust):")
    for rid, label in px_rows:
        px = S[("pxedust", rid)]
        peers = [(n, S[(n, rid)]) for n in present if n != "pxedust" and (n, rid) in S
                 and S[(n, rid)]["na"] is None and S[(n, rid)]["good"] > 0]
        if not peers:
            continue
        bn, best = max(peers, key=lambda p: p[1]["mb"])
        ok = px["good"] > 0 and px["mb"] >= best["mb"]
        msg = "  %-48s %s  %.1f MB/s vs best peer %s %.1f" % (label, "PASS" if ok else "FAIL", px["mb"], bn, best["mb"])
        if rid.startswith("c"):
            ok2 = px["mb"] >= 2 * best["mb"] and px["s_gb"] <= 0.5 * best["s_gb"]
            msg += "; 2x and half CPU/GB: %s (%.2fx, %.2f vs %.2f CPU-s/GB)" % (
                "PASS" if ok2 else "FAIL", px["mb"] / best["mb"] if best["mb"] else 0, px["s_gb"], best["s_gb"])
        print(msg)
PY
