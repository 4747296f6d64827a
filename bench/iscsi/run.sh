#!/usr/bin/env bash
# bench/iscsi/run.sh: pxedust's iSCSI target against tgt (tgtd), on loopback, one after the other in
# one run, driven by the same userspace initiator (bench/iscsi/iscsi_load.cpp, libiscsi's async API).
# bench/iscsi/README.md explains every row and how the peers are configured, and keeps the last report.
#
# usage: bench/iscsi/run.sh [--runs N] [--quick] [--pxedust BIN] [--load BIN] [--no-build]
#                           [--base-mib N] [--time S] [--workdir DIR] [--keep] [--profile ROW,...]
#   --runs N       repetitions of every row (default 3); figures are medians with [min-max]
#   --quick        a 256 MiB base, 2 s passes, 1 run: a smoke test of the script, not a measurement
#   --pxedust BIN  the daemon (default build/release/bin/pxedust, built by scripts/build.sh release)
#   --load BIN     the load generator (default build/release/bin/iscsi_load, else built with g++)
#   --no-build     do not run scripts/build.sh release first
#   --base-mib N   size of the base image (default 2048)
#   --time S       seconds per read pass (default 10)
#   --workdir DIR  where the base, the store and tgt's disk go (default: a new directory under
#                  /var/tmp, a real disk); removed on exit unless --keep
#   --profile ROWS instead of the table: pxedust alone goes through every row twice (hosts w1, w2),
#                  the listed rows (ids as in the table's README, e.g. rr32_raw,sr_raw,rw_re) under
#                  `perf record --call-graph dwarf` the first time and `strace -c -f` the second;
#                  prints the flat profile, the CPU per thread and the syscalls per IO
#
# Only 127.0.0.1 is used, on two free ports (never 3260); tgtd gets a private control socket in the
# workdir (TGT_IPC_SOCKET) and its own control port, so it never meets a system tgtd. Only the PIDs
# this script started are stopped, on exit and on Ctrl-C.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
runs=3 quick=0 build=1 keep=0 W="" base_mib=2048 pass_s=10
PX="" LOADBIN="" profile=""
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while (($#)); do
  case $1 in
    --runs) runs=${2:?--runs N}; shift 2 ;;
    --quick) quick=1; runs=1; base_mib=256; pass_s=2; shift ;;
    --pxedust) PX=${2:?--pxedust BIN}; shift 2 ;;
    --load) LOADBIN=${2:?--load BIN}; shift 2 ;;
    --no-build) build=0; shift ;;
    --base-mib) base_mib=${2:?--base-mib N}; shift 2 ;;
    --time) pass_s=${2:?--time S}; shift 2 ;;
    --workdir) W=${2:?--workdir DIR}; shift 2 ;;
    --keep) keep=1; shift ;;
    --profile) profile=${2:?--profile ROW,...}; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; usage ;;
  esac
done
[[ -n $profile ]] && runs=2   # two fresh write hosts: one for perf, one for strace
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --runs wants a positive number" >&2; exit 2; }
[[ $base_mib =~ ^[1-9][0-9]*$ && $((base_mib % 16)) == 0 ]] || { echo "run.sh: --base-mib wants a multiple of 16" >&2; exit 2; }
[[ $pass_s =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "run.sh: --time wants seconds" >&2; exit 2; }
say() { printf '[iscsi-bench] %s\n' "$*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

need=(tgtd tgtadm python3 fincore)
[[ -n $profile ]] && need+=(perf strace)
for t in "${need[@]}"; do
  command -v "$t" >/dev/null || { echo "run.sh: need $t (scripts/install-deps.sh --bench)" >&2; exit 1; }
done
if ((build)) && [[ -z $PX ]]; then
  say "building pxedust and iscsi_load (scripts/build.sh release)"
  "$top/scripts/build.sh" release >/dev/null
fi
PX=${PX:-$top/build/release/bin/pxedust}
[[ -x $PX ]] || { echo "run.sh: no $PX (build: scripts/build.sh release, or --pxedust BIN)" >&2; exit 1; }
if [[ -z $LOADBIN ]]; then
  LOADBIN=$(dirname "$PX")/iscsi_load
  if [[ ! -x $LOADBIN ]]; then
    LOADBIN=$top/build/bench/iscsi_load
    if [[ ! -x $LOADBIN || $top/bench/iscsi/iscsi_load.cpp -nt $LOADBIN ]]; then
      say "building $LOADBIN with g++ (libiscsi-dev)"
      mkdir -p "$(dirname "$LOADBIN")"
      g++ -O2 -std=c++20 -Wall -Wextra -o "$LOADBIN" "$top/bench/iscsi/iscsi_load.cpp" -liscsi
    fi
  fi
fi
[[ -x $LOADBIN ]] || { echo "run.sh: no load generator $LOADBIN" >&2; exit 1; }

# ---- workdir, processes, cleanup ---------------------------------------------------------------------
if [[ -z $W ]]; then W=$(mktemp -d /var/tmp/pxedust-bench-iscsi.XXXXXX); else mkdir -p "$W"; fi
W=$(cd "$W" && pwd)
px_pid="" tgt_pid=""
CPORT=$((20000 + $$ % 10000))   # tgtd's control port: only a suffix of its private socket's name
export TGT_IPC_SOCKET=$W/tgtd.sock
tgtadm_() { tgtadm -C "$CPORT" --lld iscsi "$@"; }
alive() {  # a child stays a zombie until waited for: look at its state, not kill -0
  local s
  s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $s && ${s:0:1} != Z ]]
}
stopPid() {  # pid: TERM, up to 10 s, then KILL; always waited for
  local pid=$1 i
  [[ -z $pid ]] && return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
stopTgt() {
  [[ -z $tgt_pid ]] && return 0
  # tgtd ignores SIGTERM while it has targets; it leaves on "delete system" once they are gone.
  tgtadm_ --op delete --force --mode target --tid 1 >/dev/null 2>&1 || true
  tgtadm_ --op delete --force --mode target --tid 2 >/dev/null 2>&1 || true
  tgtadm -C "$CPORT" --op delete --mode system >/dev/null 2>&1 || true
  stopPid "$tgt_pid"
  tgt_pid=""
}
stopPx() { stopPid "$px_pid"; px_pid=""; }
cleanup() {
  stopPx
  stopTgt
  if ((keep)); then say "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

freePorts() {  # two free TCP ports on 127.0.0.1 (the kernel's choice; never 3260)
  python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1",0))
print(*[x.getsockname()[1] for x in s])'
}
read -r PXPORT TGTPORT <<<"$(freePorts)"
waitPort() {  # port pid name
  local i
  for ((i = 0; i < 200; i++)); do
    alive "$2" || { echo "run.sh: $3 exited at start:" >&2; tail -20 "$W/$3.log" >&2; exit 1; }
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "run.sh: $3 does not listen on 127.0.0.1:$1" >&2; exit 1
}

MiB=$((1 << 20))
BASE_BYTES=$((base_mib * MiB))
HALF=$((BASE_BYTES / 2))
if ((quick)); then NW=8192; else NW=65536; fi   # 4 KiB random writes per pass (all distinct blocks)

# ---- the base, pxedust's store, tgt's per-host disk ---------------------------------------------------
say "workdir $W; making a $base_mib MiB random base"
head -c "$BASE_BYTES" /dev/urandom >"$W/src.img"
cat >"$W/pxedust.toml" <<EOF
[log]
level = "warn"
[daemon]
shutdown_grace = 2
[storage]
dir = "$W/store"
[iscsi]
listen = ["127.0.0.1:$PXPORT"]
EOF
hostEntry() {
  cat >>"$W/pxedust.toml" <<EOF
[[host]]
name = "$1"
image = "base"
iscsi_allow = ["127.0.0.0/8"]
iscsi_initiators = ["iqn.2026-11.org.pxedust.bench:$1"]
EOF
}
hostEntry raw                                       # never written: every read goes to the base
for ((r = 1; r <= runs; r++)); do hostEntry "w$r"; done   # one fresh overlay per run for the writes
PXEDUST_CONFIG=$W/pxedust.toml "$PX" image import "$W/src.img" --name base >/dev/null
rm -f "$W/src.img"
BASE=$(find "$W/store/images/base" -type f -name '*.img' | head -1)
[[ -f $BASE && $(stat -c %s "$BASE") == "$BASE_BYTES" ]] || { echo "run.sh: imported base not found in $W/store" >&2; exit 1; }
# tgt has no copy-on-write: a host gets a full copy of the base, which is how it is deployed.
cp --sparse=never "$BASE" "$W/tgt-host.img"
sync -f "$W/tgt-host.img"

# ---- servers -------------------------------------------------------------------------------------------
say "pxedust $PX on 127.0.0.1:$PXPORT"
"$PX" serve --config "$W/pxedust.toml" >"$W/pxedust.log" 2>&1 &
px_pid=$!
waitPort "$PXPORT" "$px_pid" pxedust

say "tgtd on 127.0.0.1:$TGTPORT (control socket $TGT_IPC_SOCKET.$CPORT)"
tgtd -f -C "$CPORT" --iscsi "portal=127.0.0.1:$TGTPORT" >"$W/tgtd.log" 2>&1 &
tgt_pid=$!
for ((i = 0; i < 100; i++)); do [[ -S $TGT_IPC_SOCKET.$CPORT ]] && break; sleep 0.05; done
TGT_RAW=iqn.2026-11.org.pxedust.bench:tgt-raw
TGT_HOST=iqn.2026-11.org.pxedust.bench:tgt-host
# tid 1: the base itself, read-only (it is pxedust's base too); tid 2: the host's full copy, read-write.
# Backing store rdwr (tgt's default: pread/pwrite from its 16 I/O threads, page cache, write cache on).
tgtadm_ --op new --mode target --tid 1 -T "$TGT_RAW"
tgtadm_ --op new --mode logicalunit --tid 1 --lun 1 -b "$BASE"
tgtadm_ --op update --mode logicalunit --tid 1 --lun 1 --params readonly=1
tgtadm_ --op new --mode target --tid 2 -T "$TGT_HOST"
tgtadm_ --op new --mode logicalunit --tid 2 --lun 1 -b "$W/tgt-host.img"
tgtadm_ --op bind --mode target --tid 1 -I ALL
tgtadm_ --op bind --mode target --tid 2 -I ALL
waitPort "$TGTPORT" "$tgt_pid" tgtd

# endpoint SERVER DISK -> "portal target lun initiator"
endpoint() {
  case $1.$2 in
    pxedust.raw) echo "127.0.0.1:$PXPORT iqn.2026-11.org.pxedust:raw 0 iqn.2026-11.org.pxedust.bench:raw" ;;
    pxedust.w*) echo "127.0.0.1:$PXPORT iqn.2026-11.org.pxedust:$2 0 iqn.2026-11.org.pxedust.bench:$2" ;;
    tgt.raw) echo "127.0.0.1:$TGTPORT $TGT_RAW 1 iqn.2026-11.org.pxedust.bench:tgt" ;;
    tgt.w*) echo "127.0.0.1:$TGTPORT $TGT_HOST 1 iqn.2026-11.org.pxedust.bench:tgt" ;;
  esac
}
# files SERVER DISK: what a pass on that disk reads from (warmed right before it)
files() {
  case $1.$2 in
    *.raw) echo "$BASE" ;;
    pxedust.w*) echo "$BASE $W/store/overlays/$2.data $W/store/overlays/$2.map" ;;
    tgt.w*) echo "$W/tgt-host.img" ;;
  esac
}
loadgen() {  # server disk iscsi_load-args...
  local portal target lun init
  read -r portal target lun init <<<"$(endpoint "$1" "$2")"
  "$LOADBIN" --portal "$portal" --target "$target" --lun "$lun" --initiator "$init" "${@:3}"
}

say "checking that both serve the base's bytes (iscsi_load --verify)"
for s in pxedust tgt; do
  loadgen $s raw --pattern randread --bs 4k --qd 32 --ios 4000 --verify "$BASE" --label verify >/dev/null ||
    { echo "run.sh: $s does not read back the base" >&2; exit 1; }
  loadgen $s raw --pattern read --bs 1m --qd 8 --bytes $((64 * MiB)) --verify "$BASE" --label verify >/dev/null ||
    { echo "run.sh: $s does not read back the base" >&2; exit 1; }
done
loadgen tgt w1 --pattern read --bs 1m --qd 8 --bytes $((64 * MiB)) --verify "$BASE" --label verify >/dev/null ||
  { echo "run.sh: tgt's host copy does not read back the base" >&2; exit 1; }

# ---- rows ------------------------------------------------------------------------------------------------
# id | label | disk state | iscsi_load arguments (the run's disk and seed are added per pass)
# State "raw": the disk as handed out (pxedust: an empty overlay, reads go to the base; tgt: the base
# file, or for writes the host's full copy). "overlay": the same disk after the rows before it wrote
# into it. Random writes go to the first half of the disk, sequential writes to the second half.
rows=(
  "rr1_raw|4 KiB random read, QD1|raw|--pattern randread --bs 4k --qd 1 --time $pass_s"
  "rr32_raw|4 KiB random read, QD32|raw|--pattern randread --bs 4k --qd 32 --time $pass_s"
  "sr_raw|1 MiB sequential read, QD8|raw|--pattern read --bs 1m --qd 8 --time $pass_s"
  "rw_first|4 KiB random write, QD32, first writes|raw|--pattern randwrite --bs 4k --qd 32 --ios $NW --size $HALF --sync"
  "rw_re|4 KiB random write, QD32, rewrites|overlay|--pattern randwrite --bs 4k --qd 32 --ios $NW --size $HALF --sync"
  "sw_first|1 MiB sequential write, QD8, first writes|raw|--pattern write --bs 1m --qd 8 --offset $HALF --bytes $HALF --sync"
  "sw_re|1 MiB sequential write, QD8, rewrites|overlay|--pattern write --bs 1m --qd 8 --offset $HALF --bytes $HALF --sync"
  "rr1_ov|4 KiB random read, QD1|overlay|--pattern randread --bs 4k --qd 1 --time $pass_s"
  "rr32_ov|4 KiB random read, QD32|overlay|--pattern randread --bs 4k --qd 32 --time $pass_s"
  "sr_ov|1 MiB sequential read, QD8|overlay|--pattern read --bs 1m --qd 8 --time $pass_s"
)

CLK=$(getconf CLK_TCK)
procTicks() { local f; f=$(sed 's/.*) //' "/proc/$1/stat"); read -r -a f <<<"$f"; echo $((f[11] + f[12])); }
sysTicks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat; }   # busy idle
samples=$W/samples.tsv
: >"$samples"
# --profile: TOOL (perf or strace) wraps the passes of the rows listed in $profile.
TOOL="" tool_pid="" tool_out=""
startTool() {  # row pid
  tool_pid=""
  [[ -z $TOOL || ",$profile," != *",$1,"* ]] && return 0
  tool_out=$W/profile.$1.$TOOL
  case $TOOL in
    perf) perf record -q -F 499 --call-graph dwarf,16384 -p "$2" -o "$tool_out" >/dev/null 2>&1 & ;;
    strace) strace -c -f -p "$2" -o "$tool_out" >/dev/null 2>&1 & ;;
  esac
  tool_pid=$!
  sleep 1   # attached (strace to every thread) before the load starts
}
stopTool() {
  [[ -z $tool_pid ]] && return 0
  kill -INT "$tool_pid" 2>/dev/null || true
  wait "$tool_pid" 2>/dev/null || true
  tool_pid=""
}
# pass RUN ROW SERVER: one timed pass; appends one line to samples.tsv
pass() {
  local run=$1 spec=$2 s=$3 id args disk pid t0 t1 b0 i0 b1 i1 line seed res
  IFS='|' read -r id _ _ args <<<"$spec"
  # Reads of "raw" use the untouched host; everything else the run's own host (w$run).
  disk=w$run
  [[ $id == *_raw ]] && disk=raw
  seed=$run
  [[ $id == rw_* ]] && seed=$((100 + run))   # first and rewrite pass: the same blocks
  pid=$px_pid
  [[ $s == tgt ]] && pid=$tgt_pid
  # shellcheck disable=SC2046
  cat $(files "$s" "$disk") >/dev/null 2>&1 || true   # warm: this machine drops page cache left alone ~30 s
  # shellcheck disable=SC2046
  res=$({ fincore -b -n -o RES,SIZE $(files "$s" "$disk") 2>/dev/null || true; } | awk '{ r += $1; z += $2 } END { printf "%.1f", z ? 100 * r / z : 0 }')
  startTool "$id" "$pid"
  t0=$(procTicks "$pid")
  read -r b0 i0 <<<"$(sysTicks)"
  # shellcheck disable=SC2086
  line=$(loadgen $s $disk $args --seed $seed --label "$id") || true
  read -r b1 i1 <<<"$(sysTicks)"
  t1=$(procTicks "$pid")
  stopTool
  [[ -z $line ]] && line="label=$id errors=1 error=iscsi_load_failed"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$id" "$s" "$((t1 - t0))" "$((b1 - b0))" "$((i1 - i0))" "$res" "$line" >>"$samples"
  say "  run $run $id $s: $(sed -E 's/.*(iops=[0-9.]+ mb_s=[0-9.]+).*(lat_us_p50=[0-9]+).*(lat_us_p99=[0-9]+).*(sync_s=[0-9.]+ errors=[0-9]+).*/\1 \2 \3 \4/' <<<"$line")"
}

if [[ -n $profile ]]; then
  load_before=$(load)
  say "profiling pxedust (PID $px_pid) on rows $profile; load average $load_before"
  for ((run = 1; run <= 2; run++)); do
    TOOL=perf
    ((run == 2)) && TOOL=strace
    for spec in "${rows[@]}"; do pass "$run" "$spec" pxedust; done
  done
  TOOL=""
  say "load average after: $(load)"
  IFS=, read -r -a prows <<<"$profile"
  for id in "${prows[@]}"; do
    line=$(awk -F'\t' -v r="$id" '$1 == 1 && $2 == r { print $8 }' "$samples")
    line2=$(awk -F'\t' -v r="$id" '$1 == 2 && $2 == r { print $8 }' "$samples")
    ios=$(sed -n 's/.* ios=\([0-9]*\).*/\1/p' <<<"$line2")
    echo
    echo "=== $id: under perf: $line"
    echo "=== $id: under strace: $line2"
    if [[ -s $W/profile.$id.perf ]]; then
      echo "--- CPU per thread (perf samples; thread $px_pid is the event loop, the others the disk workers)"
      { perf report -i "$W/profile.$id.perf" --no-children --sort pid --stdio -g none 2>/dev/null |
          grep -E '^ +[0-9]' | head -12; } || true
      echo "--- flat profile (self), top 45"
      { perf report -i "$W/profile.$id.perf" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
          grep -E '^ +[0-9]' | head -45; } || true
    fi
    if [[ -s $W/profile.$id.strace && -n $ios && $ios != 0 ]]; then
      echo "--- syscalls (strace -c -f; slows the server, counts are what matter), per IO of $ios"
      { awk -v n="$ios" '/^ *[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+/ { printf "  %-22s %10d calls  %7.2f per IO\n", $NF, $4, $4 / n }' \
        "$W/profile.$id.strace"; } || true
    fi
  done
  exit 0
fi

load_before=$(load)
say "load average before: $load_before; $(nproc) CPUs; $runs run(s); base $base_mib MiB; read passes ${pass_s} s"
for ((run = 1; run <= runs; run++)); do
  k=0
  for spec in "${rows[@]}"; do
    # Servers take turns going first: row by row, and the other way round in the next run.
    if (((run + k) % 2)); then order="pxedust tgt"; else order="tgt pxedust"; fi
    for s in $order; do pass "$run" "$spec" "$s"; done
    k=$((k + 1))
  done
  say "run $run done (load $(load))"
done
load_after=$(load)
alive "$px_pid" || { echo "run.sh: pxedust died during the run:" >&2; tail -20 "$W/pxedust.log" >&2; exit 1; }

# ---- report ------------------------------------------------------------------------------------------------
printf '%s\n' "${rows[@]}" >"$W/rows.txt"
python3 - "$samples" "$W/rows.txt" "$runs" "$CLK" "$load_before" "$load_after" "$base_mib" "$pass_s" "$NW" \
  "$(nproc)" "$(uname -r)" "$(tgtd --version 2>&1 | head -1)" "$(pkg-config --modversion libiscsi 2>/dev/null || echo '?')" \
  "$PX ($(date -u -r "$PX" +%FT%TZ), tree at $(cd "$top" && git rev-parse --short HEAD 2>/dev/null || echo '?'))" "$quick" <<'PY'
import statistics, sys
(samples, rows_file, runs, clk, load_before, load_after, base_mib, pass_s, nw, ncpu, kernel, tgtver, libiscsi,
 commit, quick) = sys.argv[1:16]
clk = int(clk); runs = int(runs); ncpu = int(ncpu)
rows = [l.rstrip("\n").split("|") for l in open(rows_file) if l.strip()]
S = {}  # (row, server) -> [dict per run]
for line in open(samples):
    run, row, srv, ticks, busy, idle, res, kv = line.rstrip("\n").split("\t", 7)
    d = dict(x.split("=", 1) for x in kv.split() if "=" in x)
    d["run"] = int(run)
    d["srv_cpu_s"] = int(ticks) / clk
    secs = float(d.get("secs", 0) or 0) + float(d.get("sync_s", 0) or 0)
    total = (int(busy) + int(idle)) / clk
    # CPU used by everything else during the pass, in % of one core: all busy time minus this server's
    # and this load generator's.
    other = int(busy) / clk - d["srv_cpu_s"] - float(d.get("client_cpu_s", 0) or 0)
    d["other_pct"] = 100 * max(0.0, other) / secs if secs > 0 else 0
    d["resident"] = float(res or 0)
    S.setdefault((row, srv), []).append(d)

med = statistics.median
def fig(v):
    return str(round(v, 1) if v < 100 else round(v))
def summ(vals):
    return "%s [%s-%s]" % (fig(med(vals)), fig(min(vals)), fig(max(vals))) if vals else "-"
def value(row, d):
    # IOPS for 4 KiB rows, MB/s (10^6 B/s) for 1 MiB rows; a pass with errors counts as 0.
    if int(d.get("errors", 1)) != 0:
        return 0.0
    return float(d["mb_s"]) if row.startswith("s") else float(d["iops"])
def cpu_us(d, key="srv_cpu_s"):
    ios = int(d.get("ios", 0) or 0)
    return float(d.get(key, 0) or 0) / ios * 1e6 if ios else 0.0

targets = {  # row -> (kind, threshold, text)
    "rr32_raw": ("ratio", 3.0, ">= 3x tgt"),
    "rr32_ov": ("ratio", 3.0, ">= 3x tgt"),
    "sr_raw": ("abs", 1500.0, ">= 1500 MB/s"),
    "sr_ov": ("abs", 1500.0, ">= 1500 MB/s"),
    "rw_first": ("ratio", 2.0, ">= 2x tgt"),
    "rw_re": ("ratio", 2.0, ">= 2x tgt"),
}
print()
print("## bench/iscsi/run.sh: pxedust %s vs tgtd %s, libiscsi %s%s" % (commit, tgtver, libiscsi,
      " (--quick: NOT a measurement)" if quick == "1" else ""))
print()
print("%d cores, kernel %s; base %s MiB on loopback; median [min-max] of %d run(s); read passes %s s, "
      "random writes %s x 4 KiB distinct blocks, sequential writes %s MiB; load average before %s, after %s."
      % (ncpu, kernel, base_mib, runs, pass_s, nw, int(base_mib) // 2, load_before, load_after))
print()
print("| row | disk | unit | pxedust | tgt | pxedust/tgt | target | | server CPU us/IO pxedust / tgt | tgt/pxedust CPU per IO | iscsi_load CPU us/IO | p99 latency us pxedust / tgt | others' CPU % |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
checks = []
for rid, label, state, _ in rows:
    px, tg = S.get((rid, "pxedust"), []), S.get((rid, "tgt"), [])
    if not px or not tg:
        continue
    unit = "MB/s" if rid.startswith("s") else "IOPS"
    pv = [value(rid, d) for d in px]
    tv = [value(rid, d) for d in tg]
    byrun_t = {d["run"]: value(rid, d) for d in tg}
    ratios = [value(rid, d) / byrun_t[d["run"]] for d in px if byrun_t.get(d["run"])]
    rtxt = "%.2f [%.2f-%.2f]" % (med(ratios), min(ratios), max(ratios)) if ratios else "-"
    tgt_txt, verdict = "", ""
    if rid in targets:
        kind, thr, tgt_txt = targets[rid]
        got = med(ratios) if kind == "ratio" and ratios else med(pv)
        verdict = "**holds**" if got >= thr else "**misses**"
        checks.append((label, state, tgt_txt, got, kind, verdict))
    if any(int(d.get("errors", 1)) for d in px + tg):
        verdict += " (errors: %s)" % "; ".join(sorted({d.get("error", "?") for d in px + tg if int(d.get("errors", 1))}))
    sync = ""
    if "sync_s" in px[0] and float(px[0].get("sync_s", 0)) > 0:
        sync = " (flush s: %s / %s)" % (fig(med([float(d["sync_s"]) for d in px])), fig(med([float(d["sync_s"]) for d in tg])))
    lat = "%s / %s" % (fig(med([float(d.get("lat_us_p99", 0)) for d in px])), fig(med([float(d.get("lat_us_p99", 0)) for d in tg])))
    other = fig(med([d["other_pct"] for d in px + tg]))
    # Server CPU per IO is steadier than the rates under a shared machine's load: the per-run ratio.
    byrun_tc = {d["run"]: cpu_us(d) for d in tg}
    cr = [byrun_tc[d["run"]] / cpu_us(d) for d in px if cpu_us(d) > 0 and d["run"] in byrun_tc]
    crtxt = "%.2f [%.2f-%.2f]" % (med(cr), min(cr), max(cr)) if cr else "-"
    print("| %s%s | %s | %s | %s | %s | **%s** | %s | %s | %s / %s | %s | %s | %s | %s |" % (
        label, sync, state, unit, summ(pv), summ(tv), rtxt, tgt_txt, verdict,
        fig(med([cpu_us(d) for d in px])), fig(med([cpu_us(d) for d in tg])), crtxt,
        fig(med([cpu_us(d, "client_cpu_s") for d in px + tg])), lat, other))
print()
print("Targets (the issue's): " + "; ".join("%s on %s %s: %s (%s)" % (
    l, st, t, ("%.2fx" % g) if k == "ratio" else ("%s MB/s" % fig(g)), v.strip("*")) for l, st, t, g, k, v in checks))
res = [d["resident"] for v in S.values() for d in v]
print()
print("Files of the pass (base, overlay data and map, tgt's copy) resident in the page cache at its start, "
      "in %% of their size: median %s%% (min %s%%). Server CPU from "
      "/proc/PID/stat (utime+stime, all threads) over the pass, divided by the IOs done; write rows include "
      "the final SYNCHRONIZE CACHE in the CPU but not in IOPS/MB/s (its time is the flush column). "
      "others' CPU = all busy CPU during the pass minus this server's and iscsi_load's, in %% of one core."
      % (fig(med(res)) if res else "-", fig(min(res)) if res else "-"))
PY
# The loop's inline writes paused (InlineWriteGate): the write rows of those seconds went to the pool.
pauses=$(grep -c 'event=blockstore.inline_writes_paused' "$W/pxedust.log" || true)
echo
echo "pxedust paused its inline writes ${pauses:-0} time(s) during the run (blockstore.inline_writes_paused)."
