#!/usr/bin/env bash
# bench/nbd/run.sh: pxedust's NBD server against qemu-nbd (raw, qcow2 overlay), nbdkit (file plugin,
# cow filter) and nbd-server (raw, copyonwrite) on loopback, one after the other in one run, all
# driven by the same client: fio's nbd engine (libnbd). bench/nbd/README.md explains every row and
# how each peer is set up.
#
# usage: bench/nbd/run.sh [--runs N] [--quick] [--servers LIST] [--rows LIST] [--pxedust BIN]
#                         [--no-build] [--base-mib N] [--time S] [--cold] [--qemu-tunables]
#                         [--workdir DIR] [--keep]
#   --runs N       repetitions (default 5); servers take turns inside every run; median [min-max]
#   --quick        a 256 MiB base, 3 s read passes, 1 run: a smoke test of the script, not a measurement
#   --servers LIST some of pxedust,qemu-raw,qemu-qcow2,nbdkit-file,nbdkit-cow,nbd-server,nbd-server-cow
#   --rows LIST    some of rr1_base,rr32_base,sr_base,rw_first,rw_re,sw_first,rr1_full,rr32_full,
#                  sr_full,verify (a row's prerequisite still runs, untimed: rw_re needs rw_first's
#                  writes, the *_full rows sw_first's)
#   --pxedust BIN  the daemon (default build/release/bin/pxedust, built by scripts/build.sh release)
#   --no-build     do not run scripts/build.sh release first
#   --base-mib N   size of the base image (default 2048)
#   --time S       seconds per read pass (default 10)
#   --cold         evict the pass's files from the page cache before every pass (default: read them in
#                  full right before it, so that every server reads from memory)
#   --qemu-tunables run qemu-nbd with GLIBC_TUNABLES that keep its 1 MiB buffers in malloc's heap
#                  (default: qemu-nbd as installed, which maps and unmaps one per 1 MiB request)
#   --workdir DIR  where the base, the store, copies and overlays go (default: a new directory under
#                  /var/tmp, a real disk); removed on exit unless --keep (samples.tsv, every fio output
#                  and every server's log are in it)
#
# Only 127.0.0.1 is used, on ports the kernel hands out; nbd-server reads a private config (-C), never
# /etc/nbd-server. Every server started here is stopped by its PID, on exit and on Ctrl-C.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
runs=5 quick=0 build=1 keep=0 cold=0 qtun=0 W="" base_mib=2048 pass_s=10 PX=""
all_servers="pxedust,qemu-raw,qemu-qcow2,nbdkit-file,nbdkit-cow,nbd-server,nbd-server-cow"
servers=$all_servers only_rows=""
usage() { sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while (($#)); do
  case $1 in
    --runs) runs=${2:?--runs N}; shift 2 ;;
    --quick) quick=1; runs=1; base_mib=256; pass_s=3; shift ;;
    --servers) servers=${2:?--servers LIST}; shift 2 ;;
    --rows) only_rows=${2:?--rows LIST}; shift 2 ;;
    --pxedust) PX=${2:?--pxedust BIN}; build=0; shift 2 ;;
    --no-build) build=0; shift ;;
    --base-mib) base_mib=${2:?--base-mib N}; shift 2 ;;
    --time) pass_s=${2:?--time S}; shift 2 ;;
    --cold) cold=1; shift ;;
    --qemu-tunables) qtun=1; shift ;;
    --workdir) W=${2:?--workdir DIR}; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; usage ;;
  esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --runs wants a positive number" >&2; exit 2; }
[[ $base_mib =~ ^[1-9][0-9]*$ && $((base_mib % 16)) == 0 ]] || { echo "run.sh: --base-mib wants a multiple of 16" >&2; exit 2; }
[[ $pass_s =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --time wants whole seconds" >&2; exit 2; }
IFS=, read -r -a server_list <<<"$servers"
for s in "${server_list[@]}"; do
  [[ ,$all_servers, == *,$s,* ]] || { echo "run.sh: unknown server '$s' (one of $all_servers)" >&2; exit 2; }
done
say() { printf '[nbd-bench] %s\n' "$*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

MiB=$((1 << 20))
BASE_BYTES=$((base_mib * MiB))
HALF=$((BASE_BYTES / 2))
if ((quick)); then NW=8192; else NW=65536; fi      # 4 KiB random writes per pass, all distinct blocks
VSIZE=$((HALF < 512 * MiB ? HALF : 512 * MiB))     # the verify row's region

# id | label | disk | unit | fio arguments. Disks: "base" (reads over the base: pxedust's overlay and
# the other overlays have nothing written; raw servers serve the base file itself), "rw" and "sw"
# (fresh overlays of this run: random writes, and the sequential write of the whole disk after which
# the *_full rows read it), "vf" (a fresh overlay for the verify row). Raw servers write into a full
# copy of the base instead (copy.img), as a host without copy-on-write is deployed.
rows=(
  "rr1_base|4 KiB random read, QD1, over the base (nothing written)|base|IOPS|--rw=randread --bs=4k --iodepth=1 --norandommap --time_based --runtime=$pass_s"
  "rr32_base|4 KiB random read, QD32, over the base (nothing written)|base|IOPS|--rw=randread --bs=4k --iodepth=32 --norandommap --time_based --runtime=$pass_s"
  "sr_base|1 MiB sequential read, QD8, over the base (nothing written)|base|MB/s|--rw=read --bs=1m --iodepth=8 --time_based --runtime=$pass_s"
  "rw_first|4 KiB random write, QD32, $NW distinct blocks into a fresh overlay, + flush|rw|IOPS|--rw=randwrite --bs=4k --iodepth=32 --size=$HALF --number_ios=$NW --end_fsync=1"
  "rw_re|4 KiB random write, QD32, the same $NW blocks again (rewrites), + flush|rw|IOPS|--rw=randwrite --bs=4k --iodepth=32 --size=$HALF --number_ios=$NW --end_fsync=1"
  "sw_first|1 MiB sequential write, QD8, the whole disk into a fresh overlay, + flush|sw|MB/s|--rw=write --bs=1m --iodepth=8 --end_fsync=1"
  "rr1_full|4 KiB random read, QD1, after the whole disk was written|sw|IOPS|--rw=randread --bs=4k --iodepth=1 --norandommap --time_based --runtime=$pass_s"
  "rr32_full|4 KiB random read, QD32, after the whole disk was written|sw|IOPS|--rw=randread --bs=4k --iodepth=32 --norandommap --time_based --runtime=$pass_s"
  "sr_full|1 MiB sequential read, QD8, after the whole disk was written|sw|MB/s|--rw=read --bs=1m --iodepth=8 --time_based --runtime=$pass_s"
  "verify|random writes 4 KiB..1 MiB, QD16, $((VSIZE / MiB)) MiB into a fresh overlay, read back (crc32c)|vf|mismatches|--rw=randwrite --bsrange=4k-1m --blockalign=4k --iodepth=16 --size=$VSIZE --verify=crc32c --do_verify=1 --verify_fatal=0 --verify_dump=0 --verify_state_save=0 --continue_on_error=verify --randrepeat=0"
)
if [[ -n $only_rows ]]; then
  kept=()
  for r in "${rows[@]}"; do [[ ,$only_rows, == *,${r%%|*},* ]] && kept+=("$r"); done
  ((${#kept[@]})) || { echo "run.sh: --rows names none of the rows (see --help)" >&2; exit 2; }
  rows=("${kept[@]}")
fi
# the spec of a row even when --rows left it out (prerequisites)
fullSpec() {
  case $1 in
    rw_first) echo "rw_first|||IOPS|--rw=randwrite --bs=4k --iodepth=32 --size=$HALF --number_ios=$NW --end_fsync=1" ;;
    sw_first) echo "sw_first|||MB/s|--rw=write --bs=1m --iodepth=8 --end_fsync=1" ;;
  esac
}

need=(fio python3 fincore ss)
for s in "${server_list[@]}"; do
  case $s in
    qemu-*) need+=(qemu-nbd qemu-img) ;;
    nbdkit-*) need+=(nbdkit) ;;
    nbd-server*) need+=(nbd-server) ;;
  esac
done
for t in "${need[@]}"; do
  command -v "$t" >/dev/null || { echo "run.sh: need $t (scripts/install-deps.sh --bench)" >&2; exit 1; }
done
fio --enghelp 2>/dev/null | grep -qw nbd || { echo "run.sh: this fio has no nbd engine" >&2; exit 1; }
if ((build)); then
  say "building pxedust (scripts/build.sh release pxedust)"
  "$top/scripts/build.sh" release pxedust >/dev/null
fi
PX=${PX:-$top/build/release/bin/pxedust}
PX=$(realpath "$PX")
[[ -x $PX ]] || { echo "run.sh: no $PX (build: scripts/build.sh release, or --pxedust BIN)" >&2; exit 1; }

# ---- workdir, processes, cleanup ---------------------------------------------------------------------
if [[ -z $W ]]; then W=$(mktemp -d /var/tmp/pxedust-bench-nbd.XXXXXX); else mkdir -p "$W"; fi
W=$(cd "$W" && pwd)
[[ $(stat -f -c %T "$W") != tmpfs ]] || { echo "run.sh: $W is tmpfs; the overlays belong on a disk" >&2; exit 1; }
need_kib=$(((BASE_BYTES * 5 + NW * 4096 * 8 + VSIZE * 4) / 1024))
avail_kib=$(df -Pk "$W" | awk 'NR == 2 { print $4 }')
((avail_kib > need_kib)) || { echo "run.sh: $W has $((avail_kib / 1024)) MiB free, the run needs about $((need_kib / 1024))" >&2; exit 1; }
declare -A PID=() PORT=()   # process key -> PID / port of a server this script started
nbds_pid=""                 # nbd-server daemonizes: its PID comes from its pid file
alive() {  # a child stays a zombie until waited for: look at its state, not kill -0
  local s
  s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $s && ${s:0:1} != Z ]]
}
childrenOf() { cat /proc/"$1"/task/*/children 2>/dev/null || true; }
stopPid() {  # pid: TERM, up to 10 s, then KILL; waited for when it is our child
  local pid=$1 i
  [[ -z $pid ]] && return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
stopNbds() {
  [[ -z $nbds_pid ]] && return 0
  local kids c
  kids=$(childrenOf "$nbds_pid")   # per-connection children (none once fio is gone)
  stopPid "$nbds_pid"
  for c in $kids; do stopPid "$c"; done
  nbds_pid=""
  unset "PID[ns]"
}
stopAll() {
  local k
  for k in "${!PID[@]}"; do [[ $k == ns ]] || stopPid "${PID[$k]}"; done
  stopNbds
  PID=() PORT=()
}
cleanup() {
  stopAll
  if ((keep)); then say "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

freePort() {  # a free TCP port on 127.0.0.1, the kernel's choice
  python3 -c 'import socket
s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
waitListen() {  # port pid name: until something listens on 127.0.0.1:port (no connection is made)
  local i
  for ((i = 0; i < 200; i++)); do
    alive "$2" || { echo "run.sh: $3 exited at start:" >&2; tail -20 "$W/$3.log" >&2; exit 1; }
    ss -Htln "src 127.0.0.1:$1" | grep -q . && return 0
    sleep 0.05
  done
  echo "run.sh: $3 does not listen on 127.0.0.1:$1" >&2; tail -20 "$W/$3.log" >&2; exit 1
}

# ---- the base, pxedust's store, the raw servers' copy --------------------------------------------------
say "workdir $W; making a $base_mib MiB random base"
head -c "$BASE_BYTES" /dev/urandom >"$W/src.img"
PXDISKS=(base rw sw vf)   # pxedust's hosts, one per disk; the export name is the host name
{
  cat <<EOF
[log]
level = "warn"
[daemon]
shutdown_grace = 2
state_dir = "$W/pxedust-state"
[storage]
dir = "$W/store"
[nbd]
listen = ["127.0.0.1:PORT"]
EOF
  for h in "${PXDISKS[@]}"; do
    # iscsi_allow admits every loopback client (the address rule NBD shares with iSCSI)
    printf '[[host]]\nname = "%s"\nimage = "base"\niscsi_allow = ["127.0.0.0/8"]\n' "$h"
  done
} >"$W/pxedust.toml.in"
sed "s/PORT/0/" "$W/pxedust.toml.in" >"$W/pxedust.toml"
export PXEDUST_CONFIG=$W/pxedust.toml   # pxedust image/overlay act on this store
"$PX" image import "$W/src.img" --name base -q >"$W/import.log" 2>&1 ||
  { echo "run.sh: pxedust image import failed:" >&2; cat "$W/import.log" >&2; exit 1; }
rm -f "$W/src.img"
BASE=$(find "$W/store/images/base" -type f -name '*.img' | head -1)
[[ -f $BASE && $(stat -c %s "$BASE") == "$BASE_BYTES" ]] || { echo "run.sh: imported base not found in $W/store" >&2; exit 1; }
for h in "${PXDISKS[@]}"; do "$PX" overlay create "$h" --image base >>"$W/import.log" 2>&1; done
if [[ ,$servers, == *,qemu-raw,* || ,$servers, == *,nbdkit-file,* || ,$servers, == *,nbd-server,* ]]; then
  cp --sparse=never "$BASE" "$W/copy.img"   # the raw servers' host disk: a full copy, written in place
  sync -f "$W/copy.img"
fi
mkdir -p "$W/nbds-cow" "$W/fio"

# ---- servers ----------------------------------------------------------------------------------------------
# key SERVER DISK: the process serving that disk (started once per run, when first needed)
key() {
  case $1.$2 in
    pxedust.*) echo px ;;
    qemu-raw.base) echo qr-base ;;
    qemu-raw.*) echo qr-copy ;;
    qemu-qcow2.*) echo "qq-$2" ;;
    nbdkit-file.base) echo kf-base ;;
    nbdkit-file.*) echo kf-copy ;;
    nbdkit-cow.*) echo "kc-$2" ;;
    nbd-server*) echo ns ;;
  esac
}
QEMU_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456
startBg() {  # key cmd...: starts a server in the background listening on PORT[key]
  local k=$1; shift
  if [[ $1 == qemu-nbd ]] && ((qtun)); then
    TMPDIR=$W GLIBC_TUNABLES=$QEMU_TUNABLES "$@" >>"$W/$k.log" 2>&1 &
  else
    TMPDIR=$W "$@" >>"$W/$k.log" 2>&1 &
  fi
  PID[$k]=$!
  waitListen "${PORT[$k]}" "${PID[$k]}" "$k"
}
ensure() {  # key: starts the server of that key unless it runs
  local k=$1 p
  [[ -n ${PID[$k]:-} ]] && return 0
  p=$(freePort)
  PORT[$k]=$p
  case $k in
    px)
      sed "s/PORT/$p/" "$W/pxedust.toml.in" >"$W/pxedust.toml"
      startBg px "$PX" serve --config "$W/pxedust.toml" ;;
    qr-base) startBg "$k" qemu-nbd -t -b 127.0.0.1 -p "$p" -x base -f raw -r "$BASE" ;;
    qr-copy) startBg "$k" qemu-nbd -t -b 127.0.0.1 -p "$p" -x copy -f raw "$W/copy.img" ;;
    qq-*)
      rm -f "$W/$k.qcow2"
      qemu-img create -q -f qcow2 -b "$BASE" -F raw "$W/$k.qcow2"   # default 64 KiB clusters
      startBg "$k" qemu-nbd -t -b 127.0.0.1 -p "$p" -x "${k#qq-}" -f qcow2 "$W/$k.qcow2" ;;
    kf-base) startBg "$k" nbdkit -f -r -i 127.0.0.1 -p "$p" file "$BASE" ;;
    kf-copy) startBg "$k" nbdkit -f -i 127.0.0.1 -p "$p" file "$W/copy.img" ;;
    kc-*) startBg "$k" nbdkit -f -i 127.0.0.1 -p "$p" --filter=cow file "$BASE" ;;
    ns)
      cat >"$W/nbd-server.conf" <<EOF
[generic]
  port = $p
  listenaddr = 127.0.0.1
[base]
  exportname = $BASE
  readonly = true
[copy]
  exportname = $W/copy.img
  flush = true
[cow]
  exportname = $BASE
  copyonwrite = true
  flush = true
  cowdir = $W/nbds-cow
EOF
      rm -f "$W/nbd-server.pid"
      nbd-server -C "$W/nbd-server.conf" -p "$W/nbd-server.pid" >>"$W/ns.log" 2>&1 ||
        { echo "run.sh: nbd-server did not start:" >&2; cat "$W/ns.log" >&2; exit 1; }
      local i
      for ((i = 0; i < 100; i++)); do [[ -s $W/nbd-server.pid ]] && break; sleep 0.05; done
      nbds_pid=$(cat "$W/nbd-server.pid" 2>/dev/null || true)
      [[ -n $nbds_pid ]] || { echo "run.sh: nbd-server wrote no pid file" >&2; exit 1; }
      PID[ns]=$nbds_pid
      waitListen "$p" "$nbds_pid" ns ;;
  esac
}
uri() {  # server disk
  local k p
  k=$(key "$1" "$2")
  p=${PORT[$k]}
  case $1.$2 in
    pxedust.*) echo "nbd://127.0.0.1:$p/$2" ;;
    qemu-raw.base) echo "nbd://127.0.0.1:$p/base" ;;
    qemu-raw.*) echo "nbd://127.0.0.1:$p/copy" ;;
    qemu-qcow2.*) echo "nbd://127.0.0.1:$p/$2" ;;
    nbdkit-*) echo "nbd://127.0.0.1:$p/" ;;
    nbd-server.base) echo "nbd://127.0.0.1:$p/base" ;;
    nbd-server.*) echo "nbd://127.0.0.1:$p/copy" ;;
    nbd-server-cow.*) echo "nbd://127.0.0.1:$p/cow" ;;
  esac
}
kcowFile() {  # the nbdkit cow filter's (deleted) temporary overlay file, as a /proc path
  local fd
  for fd in /proc/"$1"/fd/*; do
    [[ $(readlink "$fd" 2>/dev/null) == "$W/"*deleted* ]] && { echo "$fd"; return; }
  done
}
files() {  # server disk: the files a pass on that disk reads (warmed or evicted right before it)
  local k
  k=$(key "$1" "$2")
  case $1.$2 in
    pxedust.*) echo "$BASE $W/store/overlays/$2.data $W/store/overlays/$2.map" ;;
    *.base) echo "$BASE" ;;
    qemu-raw.*|nbdkit-file.*|nbd-server.*) echo "$W/copy.img" ;;
    qemu-qcow2.*) echo "$BASE $W/$k.qcow2" ;;
    nbdkit-cow.*) echo "$BASE $(kcowFile "${PID[$k]}")" ;;
    nbd-server-cow.*) echo "$BASE" ;;
  esac
}
evict() {  # sync the files' dirty pages, then drop them from the page cache (POSIX_FADV_DONTNEED)
  python3 -c 'import os,sys
for p in sys.argv[1:]:
    fd=os.open(p,os.O_RDONLY)
    try: os.fdatasync(fd)
    except OSError: pass
    os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED); os.close(fd)' "$@"
}
resident() {  # % of the files' bytes in the page cache
  { fincore -b -n -o RES,SIZE "$@" 2>/dev/null || true; } | awk '{ r += $1; z += $2 } END { printf "%.0f", z ? 100 * r / z : 0 }'
}
procTicks() {  # CPU ticks of a server: the process, its reaped children (nbd-server's per-connection
  local pid=$1 t=0 p f   # processes) and its live children
  for p in "$pid" $(childrenOf "$pid"); do
    f=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    read -r -a f <<<"$f"
    t=$((t + f[11] + f[12]))
    [[ $p == "$pid" ]] && t=$((t + f[13] + f[14]))
  done
  echo "$t"
}
settle() {  # pid: nbd-server's connection process ends after the client left; wait for it to be reaped
  local i
  for ((i = 0; i < 60; i++)); do [[ -z $(childrenOf "$1") ]] && return 0; sleep 0.05; done
}
busy() {  # CPU used by everything else, in % of one core, over 1 s (this script is idle meanwhile)
  python3 -c 'import time,os
def t():
    f=[int(x) for x in open("/proc/stat").readline().split()[1:8]]; return sum(f), f[3]+f[4]
a=t(); time.sleep(1); b=t(); print(round(100*os.cpu_count()*(1-(b[1]-a[1])/max(1,b[0]-a[0]))))'
}
QUIET_WAIT=${QUIET_WAIT:-$((quick ? 0 : 10))} QUIET_CPU=${QUIET_CPU:-60} BUSY=0
quiet() {  # waits until other processes use less than QUIET_CPU % of a core, or QUIET_WAIT s passed
  local waited=0
  BUSY=$(busy)
  while ((BUSY > QUIET_CPU && waited < QUIET_WAIT)); do sleep 2; waited=$((waited + 3)); BUSY=$(busy); done
}
# fioOut FILE: "ios iops mbps errors" of one fio json output (the nbd engine prints a line before it)
fioOut() {
  python3 -c 'import json,sys
t=open(sys.argv[1]).read(); i=t.find("\n{"); t=t[i+1:] if i >= 0 else t
j=json.loads(t)["jobs"][0]
if j["read"]["io_bytes"] and j["write"]["io_bytes"]:   # verify: the reads are the check
    d=j["read"]
else:
    d=j["read"] if j["read"]["io_bytes"] else j["write"]
print(d["total_ios"], round(d["iops"]), round(d["bw_bytes"]/1e6,1), j.get("total_err",0), j["error"])' "$1"
}
CLK=$(getconf CLK_TCK)
samples=$W/samples.tsv
printf 'run\trow\tserver\tvalue\tunit\tcpu_us_per_io\tios\terrors\tbusy%%\tresident%%\tnote\n' >"$samples"
declare -A PASSED=()   # server.row -> 1 once that pass ran in this run (prerequisites)

# fioRun server disk out fio-args...: 0 when fio ran without an I/O error (verify mismatches aside)
fioRun() {
  local s=$1 d=$2 out=$3; shift 3
  (cd "$W/fio" && fio --name=b --ioengine=nbd --uri="$(uri "$s" "$d")" --randseed="$SEED" \
    --output-format=json "$@" >"$out" 2>"$out.err")
}
# pass RUN SPEC SERVER [record]: one pass; appends a line to samples.tsv unless it is a prerequisite
pass() {
  local run=$1 spec=$2 s=$3 record=${4:-1} id disk unit args k pid t0 t1 files_ res out rc
  local ios iops mbps errs ferr value cpu note=""
  IFS='|' read -r id _ disk unit args <<<"$spec"
  [[ -z $disk ]] && case $id in rw_first) disk=rw ;; sw_first) disk=sw ;; esac
  # nbd-server's copy-on-write file lives as long as one connection (it is deleted at disconnect):
  # nothing written in an earlier pass is there to rewrite or read back.
  if [[ $s == nbd-server-cow && ( $id == rw_re || $id == *_full ) ]]; then
    printf '%s\t%s\t%s\t-\t%s\t-\t-\t-\t-\t-\t%s\n' "$run" "$id" "$s" "$unit" \
      "n/a: nbd-server deletes its copy-on-write file when the connection that wrote it ends" >>"$samples"
    return 0
  fi
  # rows that need an earlier row's writes in the same overlay
  case $id in
    rw_re) [[ -n ${PASSED[$s.rw_first]:-} ]] || pass "$run" "$(fullSpec rw_first)" "$s" 0 ;;
    *_full) [[ -n ${PASSED[$s.sw_first]:-} ]] || pass "$run" "$(fullSpec sw_first)" "$s" 0 ;;
  esac
  PASSED[$s.$id]=1
  k=$(key "$s" "$disk")
  ensure "$k"
  pid=${PID[$k]}
  SEED=$((1000 * run + 7))   # the same offsets for every server in a run; rw_re repeats rw_first's
  # shellcheck disable=SC2207
  files_=($(files "$s" "$disk"))
  if ((cold)); then evict "${files_[@]}"; else cat "${files_[@]}" >/dev/null; fi
  if [[ $args == *write* ]]; then sync -f "$W"; fi   # earlier passes' dirty pages out first (untimed)
  res=$(resident "${files_[@]}")
  out=$W/fio/$id.$s.$run$( ((record)) || echo .prep).json
  t0=$(procTicks "$pid")
  # shellcheck disable=SC2086
  if fioRun "$s" "$disk" "$out" $args; then rc=0; else rc=$?; fi
  [[ $s == nbd-server* ]] && settle "$pid"
  t1=$(procTicks "$pid")
  alive "$pid" || note="the server died"
  if read -r ios iops mbps errs ferr < <(fioOut "$out" 2>/dev/null); then :; else ios=0 iops=0 mbps=0 errs=0 ferr=$rc; fi
  ((record)) || return 0
  case $unit in
    IOPS) value=$iops ;;
    MB/s) value=$mbps ;;
    mismatches) value=$errs ;;
  esac
  cpu=$(python3 -c "print(round($((t1 - t0)) / $CLK / $ios * 1e6, 2) if $ios else '-')")
  if [[ $unit != mismatches ]] && ((rc != 0 || ferr != 0)); then
    note="fio failed (rc $rc, error $ferr): $(grep -v '^fio: connected' "$out.err" | head -1 | tr '\t' ' ')"
    value=-
  elif [[ $unit == mismatches ]] && ((rc != 0)) && ((errs == 0)); then
    note="fio failed (rc $rc): $(grep -v '^fio: connected' "$out.err" | head -1 | tr '\t' ' ')"
    value=-
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$id" "$s" "$value" "$unit" "$cpu" "$ios" "$errs" \
    "$BUSY" "$res" "$note" >>"$samples"
  say "  run $run $id $s: $value $unit, $cpu us CPU/IO, $ios IOs${note:+ ($note)}"
}

say "pxedust: $("$PX" version 2>/dev/null | head -1); $(qemu-nbd --version | head -1); $(nbdkit --version); nbd-server $(nbd-server -V 2>&1 | sed -n 's/.*version //p' | head -1); $(fio --version)"
load_before=$(load)
say "load average before: $load_before; $(nproc) CPUs; $runs run(s); base $base_mib MiB; read passes ${pass_s} s; servers $servers"
n=${#server_list[@]}
for ((run = 1; run <= runs; run++)); do
  say "run $run of $runs (load average $(load))"
  PASSED=()
  # fresh overlays for the run: pxedust's are reset while it is stopped (qcow2 files are made anew
  # and nbdkit's cow filter starts empty when their servers start)
  for h in rw sw vf; do "$PX" overlay reset "$h" >/dev/null 2>&1 || { echo "run.sh: pxedust overlay reset $h failed" >&2; exit 1; }; done
  for spec in "${rows[@]}"; do
    quiet
    # servers take turns going first, one more place each run
    for ((i = 0; i < n; i++)); do pass "$run" "$spec" "${server_list[$(((i + run - 1) % n))]}"; done
  done
  for k in "${!PID[@]}"; do alive "${PID[$k]}" || say "  $k (PID ${PID[$k]}) died during run $run: $(tail -3 "$W/$k.log" 2>/dev/null | tr '\n' ' ')"; done
  stopAll
done
load_after=$(load)

printf '%s\n' "${rows[@]}" >"$W/rows.txt"
python3 "$top/bench/nbd/report.py" "$samples" "$W/rows.txt" "$servers" \
  "$runs run(s), base $base_mib MiB, read passes ${pass_s} s, cache $( ((cold)) && echo cold || echo warm)$( ((qtun)) && echo "; qemu-nbd with GLIBC_TUNABLES=$QEMU_TUNABLES")$( ((quick)) && echo '; --quick: a smoke test, NOT a measurement')" \
  "$(nproc) cores, kernel $(uname -r); pxedust $PX (tree at $(cd "$top" && git rev-parse --short HEAD 2>/dev/null || echo '?')); $(qemu-nbd --version | head -1); $(nbdkit --version); nbd-server $(nbd-server -V 2>&1 | sed -n 's/.*version //p' | head -1); $(fio --version)" \
  "$load_before" "$load_after"
# pxedust's warnings (e.g. blockstore.inline_writes_paused: its inline writes stalled and went to the
# disk workers for a while) and errors, by event
if [[ -s $W/px.log ]] && grep -qE 'level=(warn|error)' "$W/px.log"; then
  echo
  echo "pxedust logged (level event count):"
  grep -oE 'level=(warn|error) event=[^ ]+' "$W/px.log" | sort | uniq -c | awk '{ printf "  %s %s %d\n", $2, $3, $1 }'
fi
((keep)) && say "samples: $samples"
exit 0
