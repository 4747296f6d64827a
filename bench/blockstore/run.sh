#!/usr/bin/env bash
# bench/blockstore/run.sh: pxedust overlays side by side with qcow2 overlays (64 KiB and 4 KiB
# clusters) and nbdkit's cow filter, on one 1 GiB base, in one run. bench/blockstore/README.md
# explains every row and keeps the last report.
#
# usage: bench/blockstore/run.sh [--runs N] [--quick] [--no-build] [--no-deps] [--workdir DIR] [--keep]
#   --runs N      repetitions of every figure (default 5); figures are medians with [min-max]
#   --quick       fewer I/Os and 3 runs: a smoke test of the script, not a measurement
#   --no-build    use the pxedust-blockbench binary as it is ($BB, default build/release/bin/...)
#   --no-deps     skip scripts/install-deps.sh --bench
#   --workdir DIR where the base, overlays and qcow2 files go (default: a new directory under
#                 /var/tmp, a real disk, never tmpfs); removed on exit unless --keep
# Needs root (it evicts files from the page cache) and qemu-img, qemu-nbd, nbdkit, fio, fincore.
#
# Access paths. pxedust has no NBD server yet, so each system is measured through the paths it has,
# and every target ratio compares an overlay with the raw base read THROUGH THE SAME PATH:
#   in-process  pxedust: pxedust-blockbench drives the overlay / the raw base (RawImage) through
#               AsyncBlockDevice + WorkerPool, the path the front-ends will use;
#               qcow2: `qemu-img bench` on the qcow2 overlay / on the raw base (-f raw).
#               Both read and write the SAME offsets: block i*104729 mod 262144 (qemu-img bench -S).
#   nbd         qemu-nbd (raw base, qcow2) and nbdkit (file, file+cow) over a Unix socket, driven
#               by fio's nbd engine (random offsets from fio's seeded generator).
# Cache state is set explicitly before every timed pass, per file (posix_fadvise DONTNEED, after a
# sync; the page cache of other people's files is left alone), and checked with fincore:
#   cold  the files of the system under test are evicted right before the pass;
#   warm  they are read in full right before the pass (this machine's reclaim drops page cache left
#         untouched for ~30 s, so "warm" is only warm if it was just read).
# The VM's disk is itself cached by the host, which the guest cannot evict: every file gets one
# untimed pass first so that all timed passes see the same host state.
# Noise: systems take turns inside every repetition (rotating order), ratios are medians of
# per-repetition ratios (overlay and reference measured seconds apart), each repetition waits
# (up to QUIET_WAIT s, 10) for other processes to use less than QUIET_CPU % (60) of one core,
# and the load average is printed with every section. Samples: <workdir>/samples.tsv (--keep).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
runs=5 quick=0 build=1 deps=1 keep=0 W=""
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while (($#)); do
  case $1 in
    --runs) runs=${2:?--runs N}; shift 2 ;;
    --quick) quick=1; runs=3; shift ;;
    --no-build) build=0; shift ;;
    --no-deps) deps=0; shift ;;
    --workdir) W=${2:?--workdir DIR}; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; usage ;;
  esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --runs wants a positive number" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "run.sh: run as root (it evicts files from the page cache)" >&2; exit 1; }
say() { printf '[blockstore-bench] %s\n' "$*" >&2; }

((deps)) && "$top/scripts/install-deps.sh" --bench >/dev/null
if ((build)); then "$top/scripts/build.sh" release >/dev/null; fi
BB=${BB:-$top/build/release/bin/pxedust-blockbench}
[[ -x $BB ]] || { echo "run.sh: no $BB (build: scripts/build.sh release)" >&2; exit 1; }
for t in qemu-img qemu-nbd nbdkit fio fincore python3; do
  command -v $t >/dev/null || { echo "run.sh: need $t (scripts/install-deps.sh --bench)" >&2; exit 1; }
done

# ---- workdir, processes, cleanup ---------------------------------------------------------------------
if [[ -z $W ]]; then W=$(mktemp -d /var/tmp/pxedust-bench-blockstore.XXXXXX); else mkdir -p "$W"; fi
W=$(cd "$W" && pwd)
[[ $(stat -f -c %T "$W") != tmpfs ]] || { echo "run.sh: $W is tmpfs; the fragmentation row needs a disk" >&2; exit 1; }
declare -A SRV=()   # name -> PID of a server this script started
cleanup() {
  local n
  for n in "${!SRV[@]}"; do kill "${SRV[$n]}" 2>/dev/null || true; done
  for n in "${!SRV[@]}"; do wait "${SRV[$n]}" 2>/dev/null || true; done
  ((keep)) || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

GiB=$((1 << 30)); MiB=$((1 << 20))
STRIDE=104729                       # odd, so block i*STRIDE mod 262144 visits every block once
if ((quick)); then CCOLD=2000 CWARM=5000 NW=2000 FRAG_LEN=$((64 * MiB)); else CCOLD=10000 CWARM=50000 NW=10000 FRAG_LEN=$((256 * MiB)); fi
FRAG_OFF=$((256 * MiB)); UNT_OFF=$((768 * MiB))
QUIET_WAIT=${QUIET_WAIT:-10}; QUIET_CPU=${QUIET_CPU:-60}
CHUNK=4096                          # pxedust's default chunk size (kDefaultChunkSize)

py() { python3 -c "$@"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# Evicts files from the page cache: sync their dirty pages, then POSIX_FADV_DONTNEED.
evict() { py 'import os,sys
for p in sys.argv[1:]:
    fd=os.open(p,os.O_RDONLY)
    try: os.fdatasync(fd)
    except OSError: pass
    os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED); os.close(fd)' "$@"; }
warm() { cat "$@" >/dev/null; }
resident() { fincore -b -n -o RES "$1" | tr -d ' '; }     # bytes of the file in the page cache
pct() { py "print(round(100*$1/max(1,$2)))"; }
alloc() { echo $(($(stat -L -c %b "$1") * 512)); }         # allocated bytes of a file
kib() { echo $(($1 / 1024)); }
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
summ() { py 'import sys; v=sorted(float(x) for x in sys.argv[1:]); n=len(v); m=v[n//2] if n%2 else (v[n//2-1]+v[n//2])/2
f=lambda x: str(round(x,1) if x<100 else round(x)); print(f"{f(m)} [{f(v[0])}-{f(v[-1])}]")' "$@"; }
rsumm() { py 'import sys; v=sorted(float(x) for x in sys.argv[1:]); n=len(v); m=v[n//2] if n%2 else (v[n//2-1]+v[n//2])/2
print(f"{m:.3f} [{v[0]:.2f}-{v[-1]:.2f}]")' "$@"; }   # summ for ratios
med() { py 'import sys; v=sorted(float(x) for x in sys.argv[1:]); n=len(v); print(v[n//2] if n%2 else (v[n//2-1]+v[n//2])/2)' "$@"; }
# Median [min-max] of the element-wise ratios a[i]/b[i] of two equally long lists (two words).
pratio() { py 'import sys; a=sys.argv[1].split(); b=sys.argv[2].split(); assert len(a)==len(b)
v=sorted(float(x)/float(y) for x,y in zip(a,b)); n=len(v); m=v[n//2] if n%2 else (v[n//2-1]+v[n//2])/2
print(f"{m:.3f} [{v[0]:.2f}-{v[-1]:.2f}]")' "$1" "$2"; }
samples=$W/samples.tsv
printf 'figure\tvalue\tbusy%%\tresident%%\n' >"$samples"
sample() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "${BUSY:--}" "${3:--}" >>"$samples"; }
# CPU used by everything else, in % of one core, over 1 s (this script is idle meanwhile).
busy() { py 'import time,os
def t():
    f=[int(x) for x in open("/proc/stat").readline().split()[1:8]]; return sum(f), f[3]+f[4]
a=t(); time.sleep(1); b=t(); print(round(100*os.cpu_count()*(1-(b[1]-a[1])/max(1,b[0]-a[0]))))'; }
maxbusy=0 quietmisses=0 BUSY=0
quiet() {  # waits until the machine is quiet enough, or QUIET_WAIT s passed; sets BUSY
  local waited=0
  BUSY=$(busy)
  while ((BUSY > QUIET_CPU && waited < QUIET_WAIT)); do sleep 2; waited=$((waited + 3)); BUSY=$(busy); done
  ((BUSY <= QUIET_CPU)) || quietmisses=$((quietmisses + 1))
  ((BUSY <= maxbusy)) || maxbusy=$BUSY
}
# order R GROUP...: the members of the groups for repetition R. A group is a system and its reference
# (e.g. "pxraw pxov"): they run back to back, so both see the same load; the groups take turns
# leading, and every other repetition runs each group backwards (A B, B A, ...).
order() {
  local r=$1 n i k; shift; n=$#
  local g=("$@") m
  for ((i = 0; i < n; i++)); do
    read -r -a m <<<"${g[$(((i + r) % n))]}"
    if ((r % 2)); then for ((k = ${#m[@]} - 1; k >= 0; k--)); do echo "${m[$k]}"; done; else printf '%s\n' "${m[@]}"; fi
  done
}

out=()   # the report (markdown)
declare -A TGT=()   # the figures the target checks use
emit() { out+=("$*"); }
section() { say "$* (load $(load))"; emit ""; emit "$*  "; emit "load average at start: $(load)"; emit ""; }

# ---- the base, the store, servers ---------------------------------------------------------------------
say "workdir $W; making a 1 GiB random base"
head -c "$GiB" /dev/urandom >"$W/src.img"
store=$W/store
"$BB" import "$store" "$W/src.img" base >/dev/null
rm -f "$W/src.img"
base=$store/images/base/v1/base.img   # every system reads this one file: the store's imported base
warm "$base"                           # untimed: the host's cache of the VM disk

start_srv() {  # name cmd...: starts a server listening on $W/name.sock
  local name=$1 sock=$W/$1.sock; shift
  rm -f "$sock"
  TMPDIR=$W "$@" >"$W/$name.log" 2>&1 &
  SRV[$name]=$!
  for _ in $(seq 200); do [[ -S $sock ]] && return 0; sleep 0.05; done
  echo "run.sh: $name did not start:" >&2; cat "$W/$name.log" >&2; exit 1
}
stop_srv() { kill "${SRV[$1]}"; wait "${SRV[$1]}" 2>/dev/null || true; unset "SRV[$1]"; }
qcow() { rm -f "$2"; qemu-img create -q -f qcow2 -o cluster_size="$1" -b "$base" -F raw "$2"; }
qnbd() { start_srv "$1" qemu-nbd -t -k "$W/$1.sock" "${@:2}"; }
kcow_file() {  # the nbdkit cow filter's (deleted) temporary overlay file, as a /proc path
  local fd
  for fd in /proc/"${SRV[$1]}"/fd/*; do
    [[ $(readlink "$fd") == "$W/"*deleted* ]] && { echo "$fd"; return; }
  done
  echo /dev/null
}
fio_nbd() {  # sock rw bs qd offset size [fio args...] -> "iops MB/s"
  local sock=$1 rw=$2 bs=$3 qd=$4 off=$5 size=$6; shift 6
  fio --name=b --ioengine=nbd --uri="nbd+unix:///?socket=$sock" --rw="$rw" --bs="$bs" --iodepth="$qd" \
      --offset="$off" --size="$size" --randrepeat=1 --randseed=7 --output-format=json --output="$W/fio.json" \
      "$@" >/dev/null 2>"$W/fio.err" || { echo "run.sh: fio failed:" >&2; cat "$W/fio.err" >&2; exit 1; }
  py 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]; d=j["read"] if j["read"]["io_bytes"] else j["write"]
print(round(d["iops"]), round(d["bw_bytes"]/1e6,1))' "$W/fio.json"
}
qbench() {  # file fmt count qd [-w ...] -> iops, from qemu-img bench's own "Run completed in S seconds"
  local f=$1 fmt=$2 n=$3 qd=$4; shift 4
  local s
  s=$(qemu-img bench -f "$fmt" -c "$n" -d "$qd" -s 4096 -S $((STRIDE * 4096)) "$@" "$f" | sed -n 's/Run completed in \([0-9.]*\) seconds./\1/p')
  py "print(round($n/$s))"
}

emit "# bench/blockstore/run.sh, $(date -u +%FT%TZ)"
emit ""
emit "$(nproc) cores, kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME"), workdir fs $(stat -f -c %T "$W") on $(df --output=source "$W" | tail -1), $(qemu-img --version | head -1), $(nbdkit --version), $(fio --version); figures: median [min-max] of $runs runs$( ((quick)) && echo ' (--quick: NOT a measurement)')"

# ==== 1. untouched 4 KiB random reads ===================================================================
section "## Untouched 4 KiB random reads (iops; ratio = overlay / raw base through the same path)"
"$BB" create "$store" rr base $CHUNK >/dev/null
qcow 64k "$W/rb64k.qcow2"; qcow 4k "$W/rb4k.qcow2"    # for qemu-img bench
qcow 64k "$W/rn64k.qcow2"; qcow 4k "$W/rn4k.qcow2"    # for qemu-nbd
qnbd qraw -r -f raw "$base"
qnbd q64k -r -f qcow2 "$W/rn64k.qcow2"
qnbd q4k -r -f qcow2 "$W/rn4k.qcow2"
start_srv kraw nbdkit -f -r -U "$W/kraw.sock" file "$base"
start_srv kcow nbdkit -f -U "$W/kcow.sock" --filter=cow file "$base"
# systems, grouped with their raw-base reference (see order())
rgroups=("pxraw pxov" "qbraw qb64k qb4k" "qraw q64k q4k" "kraw kcow")
rfiles() {
  case $1 in
    pxraw|qbraw|qraw|kraw) echo "$base" ;;
    pxov) echo "$base $store/overlays/rr.data $store/overlays/rr.map" ;;
    qb64k|qb4k) echo "$base $W/rb${1#qb}.qcow2" ;;
    q64k|q4k) echo "$base $W/rn${1#q}.qcow2" ;;
    kcow) echo "$base $(kcow_file kcow)" ;;
  esac
}
rrun() {  # system qd count
  case $1 in
    pxraw) "$BB" randread --raw "$base" --qd "$2" --count "$3" --stride $STRIDE | field iops ;;
    pxov) "$BB" randread --store "$store" --host rr --qd "$2" --count "$3" --stride $STRIDE | field iops ;;
    qbraw) qbench "$base" raw "$3" "$2" ;;
    qb64k|qb4k) qbench "$W/rb${1#qb}.qcow2" qcow2 "$3" "$2" ;;
    *) fio_nbd "$W/$1.sock" randread 4k "$2" 0 $GiB --number_ios="$3" | cut -d' ' -f1 ;;
  esac
}
declare -A RR=() RES=() PR=()
for cache in cold warm; do
  count=$CCOLD; [[ $cache == warm ]] && count=$CWARM
  for qd in 1 32; do
    say "  $cache QD$qd"
    for rep in $(seq 0 "$runs"); do   # rep 0: untimed, primes the host cache and the servers
      quiet
      for sys in $(order "$rep" "${rgroups[@]}"); do
        # shellcheck disable=SC2046
        if [[ $cache == cold ]]; then evict $(rfiles "$sys"); else warm $(rfiles "$sys"); fi
        res=$(pct "$(resident "$base")" $GiB)
        v=$(rrun "$sys" $qd $count)
        ((rep == 0)) && continue
        RR[$sys.$cache.$qd]="${RR[$sys.$cache.$qd]:-} $v"
        RES[$cache]="${RES[$cache]:-} $res"
        sample "randread.$cache.qd$qd.$sys" "$v" "$res"
      done
      # pxedust's raw base and overlay again, paired in ONE process taking turns every 500 reads
      # (blockbench randpair): the figure the target is checked on.
      # shellcheck disable=SC2046
      if [[ $cache == cold ]]; then evict $(rfiles pxov); else warm $(rfiles pxov); fi
      v=$("$BB" randpair --raw "$base" --store "$store" --host rr --qd $qd --count $count --stride $STRIDE --batch 500)
      ((rep == 0)) && continue
      PR[a.$cache.$qd]="${PR[a.$cache.$qd]:-} $(field a_iops <<<"$v")"
      PR[b.$cache.$qd]="${PR[b.$cache.$qd]:-} $(field b_iops <<<"$v")"
      PR[r.$cache.$qd]="${PR[r.$cache.$qd]:-} $(field ratio <<<"$v")"
      sample "randpair.$cache.qd$qd.ratio" "$(field ratio <<<"$v")"
    done
  done
done
for n in qraw q64k q4k kraw kcow; do stop_srv $n; done
emit "| system | access path | cache | QD | raw base | overlay | overlay/raw |"
emit "|---|---|---|---|---|---|---|"
for cache in cold warm; do
  for qd in 1 32; do
    r() { summ ${RR[$1.$cache.$qd]}; }
    p() { pratio "${RR[$1.$cache.$qd]}" "${RR[$2.$cache.$qd]}"; }
    emit "| **pxedust ($((CHUNK / 1024)) KiB chunks)** | **in-process, paired in one process** | $cache | $qd | $(summ ${PR[a.$cache.$qd]}) | $(summ ${PR[b.$cache.$qd]}) | **$(rsumm ${PR[r.$cache.$qd]})** |"
    emit "| pxedust ($((CHUNK / 1024)) KiB chunks) | in-process (blockbench) | $cache | $qd | $(r pxraw) | $(r pxov) | $(p pxov pxraw) |"
    emit "| qcow2 64 KiB | in-process (qemu-img bench) | $cache | $qd | $(r qbraw) | $(r qb64k) | $(p qb64k qbraw) |"
    emit "| qcow2 4 KiB | in-process (qemu-img bench) | $cache | $qd | $(r qbraw) | $(r qb4k) | $(p qb4k qbraw) |"
    emit "| qcow2 64 KiB | nbd (qemu-nbd + fio) | $cache | $qd | $(r qraw) | $(r q64k) | $(p q64k qraw) |"
    emit "| qcow2 4 KiB | nbd (qemu-nbd + fio) | $cache | $qd | $(r qraw) | $(r q4k) | $(p q4k qraw) |"
    emit "| nbdkit cow | nbd (nbdkit + fio) | $cache | $qd | $(r kraw) | $(r kcow) | $(p kcow kraw) |"
    TGT[rr.$cache.$qd]=$(rsumm ${PR[r.$cache.$qd]})
  done
done
emit ""
emit "$CCOLD reads per cold pass, $CWARM per warm pass, whole 1 GiB (all of it untouched). Paired: the same counts per device, raw base and overlay taking turns in one process every 500 reads (A B B A ...), offsets continuing so that no block is read twice; its ratio is the median of the per-run ratios. Base resident in the page cache just before the pass: cold $(summ ${RES[cold]})%, warm $(summ ${RES[warm]})%."

# ==== 2. writes and space ==============================================================================
section "## $NW random 4 KiB writes at QD1, one flush at the end (iops): first (allocating) vs rewrite; space"
wgroups=("px qb64k qb4k" "px64k px1m" "qn64k qn4k kcow")
declare -A WF=() WA=() SP=()
wrun() {  # system: first and rewrite passes on a fresh overlay -> sets f, a, sp
  local s=$1 img
  case $s in
    px|px64k|px1m)
      local cs=$CHUNK; [[ $s == px64k ]] && cs=65536; [[ $s == px1m ]] && cs=1048576
      "$BB" create "$store" w base $cs >/dev/null
      evict "$base"
      f=$("$BB" randwrite --store "$store" --host w --count $NW --stride $STRIDE | field iops)
      a=$("$BB" randwrite --store "$store" --host w --count $NW --stride $STRIDE | field iops)
      sp=$("$BB" space --store "$store" --host w | field allocated_bytes) ;;
    qb64k|qb4k)
      img=$W/wb.qcow2; qcow "${s#qb}" "$img"; evict "$base"
      f=$(qbench "$img" qcow2 $NW 1 -w --pattern=0x5a --flush-interval=$NW)
      a=$(qbench "$img" qcow2 $NW 1 -w --pattern=0x5a --flush-interval=$NW)
      sp=$(alloc "$img") ;;
    qn64k|qn4k)
      img=$W/wn.qcow2; qcow "${s#qn}" "$img"; evict "$base"
      qnbd wn -f qcow2 "$img"
      f=$(fio_nbd "$W/wn.sock" randwrite 4k 1 0 $GiB --number_ios=$NW --end_fsync=1 | cut -d' ' -f1)
      a=$(fio_nbd "$W/wn.sock" randwrite 4k 1 0 $GiB --number_ios=$NW --end_fsync=1 | cut -d' ' -f1)
      stop_srv wn; sp=$(alloc "$img") ;;
    kcow)
      start_srv kw nbdkit -f -U "$W/kw.sock" --filter=cow file "$base"; evict "$base"
      f=$(fio_nbd "$W/kw.sock" randwrite 4k 1 0 $GiB --number_ios=$NW --end_fsync=1 | cut -d' ' -f1)
      a=$(fio_nbd "$W/kw.sock" randwrite 4k 1 0 $GiB --number_ios=$NW --end_fsync=1 | cut -d' ' -f1)
      sp=$(alloc "$(kcow_file kw)"); stop_srv kw ;;
  esac
}
for rep in $(seq 0 "$runs"); do
  quiet
  for s in $(order "$rep" "${wgroups[@]}"); do
    wrun "$s"
    ((rep == 0)) && continue
    WF[$s]="${WF[$s]:-} $f"; WA[$s]="${WA[$s]:-} $a"; SP[$s]=$sp
    sample "write.first.$s" "$f"; sample "write.rewrite.$s" "$a"; sample "space.$s" "$sp"
  done
done
emit "| system | access path | offsets | first | rewrite | space after $NW writes | space / ($NW x 4 KiB) |"
emit "|---|---|---|---|---|---|---|"
wrow() { emit "| $1 | $2 | $3 | $(summ ${WF[$4]}) | $(summ ${WA[$4]}) | $(kib "${SP[$4]}") KiB | $(py "print(round(${SP[$4]}/($NW*4096),2))") |"; }
wrow "pxedust $((CHUNK / 1024)) KiB chunks (default)" "in-process (blockbench)" "stride" px
wrow "pxedust 64 KiB chunks" "in-process (blockbench)" "stride" px64k
wrow "pxedust 1 MiB chunks" "in-process (blockbench)" "stride" px1m
wrow "qcow2 64 KiB" "in-process (qemu-img bench)" "stride" qb64k
wrow "qcow2 4 KiB" "in-process (qemu-img bench)" "stride" qb4k
wrow "qcow2 64 KiB" "nbd (qemu-nbd + fio)" "fio random" qn64k
wrow "qcow2 4 KiB" "nbd (qemu-nbd + fio)" "fio random" qn4k
wrow "nbdkit cow (temporary, not persistent)" "nbd (nbdkit + fio)" "fio random" kcow
emit ""
emit "Page cache: the base is evicted before each first pass (qcow2 copies the rest of a cluster from it); writes land in the page cache and the final flush makes them durable (timed). Every pass writes $NW distinct blocks (stride = block i*$STRIDE mod 262144, as qemu-img bench -S; fio = its random map)."
TGT[wf]="$(med ${WF[px]}) $(med ${WF[qb64k]}) $(med ${WF[qb4k]})"
TGT[wa]="$(med ${WA[px]}) $(med ${WA[qb64k]}) $(med ${WA[qb4k]})"
TGT[sp]="${SP[px]} ${SP[qb64k]}"

# ==== 3. fragmentation ==================================================================================
section "## Fragmentation: $((FRAG_LEN / MiB)) MiB written in random 4 KiB order, cold cache, read sequentially in 1 MiB reads at QD1 (MB/s)"
# Fill (untimed): every 4 KiB block of [FRAG_OFF, +FRAG_LEN) once, in random order, one flush at the end.
for s in px px64k px1m pxfl; do
  cs=$CHUNK; [[ $s == px64k ]] && cs=65536; [[ $s == px1m ]] && cs=1048576
  fl=(); [[ $s == pxfl ]] && fl=(--flush-every 256)
  "$BB" create "$store" "f$s" base $cs >/dev/null
  "$BB" permfill --store "$store" --host "f$s" --offset $FRAG_OFF --length $FRAG_LEN --seed 3 "${fl[@]}" >/dev/null
done
qcow 64k "$W/fqn64k.qcow2"; qcow 4k "$W/fqn4k.qcow2"
qnbd fqn64k -f qcow2 "$W/fqn64k.qcow2"; qnbd fqn4k -f qcow2 "$W/fqn4k.qcow2"
start_srv fkcow nbdkit -f -U "$W/fkcow.sock" --filter=cow file "$base"
for s in qn64k qn4k kcow; do fio_nbd "$W/f$s.sock" randwrite 4k 1 $FRAG_OFF $FRAG_LEN --end_fsync=1 >/dev/null; done
qnbd fqraw -r -f raw "$base"
start_srv fkraw nbdkit -f -r -U "$W/fkraw.sock" file "$base"
ffiles() {
  case $1 in
    pxraw|qraw|kraw) echo "$base" ;;
    px*) echo "$base $store/overlays/f$1.data $store/overlays/f$1.map" ;;
    qn*) echo "$base $W/f$1.qcow2" ;;
    kcow) echo "$base $(kcow_file fkcow)" ;;
  esac
}
frun() {  # system offset -> MB/s
  case $1 in
    pxraw) "$BB" seqread --raw "$base" --offset "$2" --length $FRAG_LEN --bs $MiB | field mbps ;;
    px*) "$BB" seqread --store "$store" --host "f$1" --offset "$2" --length $FRAG_LEN --bs $MiB | field mbps ;;
    *) fio_nbd "$W/f$1.sock" read 1m 1 "$2" $FRAG_LEN | cut -d' ' -f2 ;;
  esac
}
# passes: system:region (f = the written region, u = an untouched region, r = raw base at f's offsets)
pgroups=("px:f px:u" "pxraw:r" "px64k:f px64k:u" "px1m:f px1m:u" "pxfl:f pxfl:u" "qn64k:f qn64k:u" "qraw:r"
         "qn4k:f qn4k:u" "kcow:f kcow:u" "kraw:r")
declare -A FR=() FP=()
for rep in $(seq 0 "$runs"); do
  quiet
  for pass in $(order "$rep" "${pgroups[@]}"); do
    s=${pass%%:*} k=${pass#*:}
    off=$FRAG_OFF; [[ $k == u ]] && off=$UNT_OFF
    # shellcheck disable=SC2046
    evict $(ffiles "$s")
    v=$(frun "$s" $off)
    ((rep == 0)) && continue
    FR[$s.$k]="${FR[$s.$k]:-} $v"
    sample "seq.$s.$k" "$v"
  done
  # pxedust paired in one process, taking turns every 16 MiB (blockbench seqpair): the written region
  # against the untouched one (u) and against the raw base at the same offsets (r).
  for s in px px64k px1m pxfl; do
    for k in u r; do
      raw=(); off2=$UNT_OFF; [[ $k == r ]] && raw=(--raw "$base") off2=$FRAG_OFF
      # shellcheck disable=SC2046
      evict $(ffiles "$s")
      v=$("$BB" seqpair --store "$store" --host "f$s" "${raw[@]}" --offset $FRAG_OFF --offset2 $off2 --length $FRAG_LEN)
      ((rep == 0)) && continue
      FP[$s.$k]="${FP[$s.$k]:-} $(field ratio <<<"$v")"
      FP[$s.$k.a]="${FP[$s.$k.a]:-} $(field a_mbps <<<"$v")"
      FP[$s.$k.b]="${FP[$s.$k.b]:-} $(field b_mbps <<<"$v")"
      sample "seqpair.$s.$k.ratio" "$(field ratio <<<"$v")"
    done
  done
done
extents() { filefrag "$1" 2>/dev/null | sed -n 's/.*: \([0-9]*\) extents\? found/\1/p'; }
emit "| system | access path | written region | untouched region | raw base, same offsets | untouched / written | raw base / written | data file extents |"
emit "|---|---|---|---|---|---|---|---|"
frow() {  # label path system raw-system extents
  [[ $3 == px* ]] && emit "| **$1** | **in-process, paired in one process** | $(summ ${FP[$3.u.a]}) | $(summ ${FP[$3.u.b]}) | $(summ ${FP[$3.r.b]}) | **$(rsumm ${FP[$3.u]})** | $(rsumm ${FP[$3.r]}) | $5 |"
  emit "| $1 | $2 | $(summ ${FR[$3.f]}) | $(summ ${FR[$3.u]}) | $(summ ${FR[$4.r]}) | $(pratio "${FR[$3.u]}" "${FR[$3.f]}") | $(pratio "${FR[$4.r]}" "${FR[$3.f]}") | $5 |"
}
frow "pxedust $((CHUNK / 1024)) KiB chunks (default)" "in-process (blockbench)" px pxraw "$(extents "$store/overlays/fpx.data")"
frow "pxedust 64 KiB chunks" "in-process (blockbench)" px64k pxraw "$(extents "$store/overlays/fpx64k.data")"
frow "pxedust 1 MiB chunks" "in-process (blockbench)" px1m pxraw "$(extents "$store/overlays/fpx1m.data")"
frow "pxedust $((CHUNK / 1024)) KiB, flush every 256 writes" "in-process (blockbench)" pxfl pxraw "$(extents "$store/overlays/fpxfl.data")"
frow "qcow2 64 KiB" "nbd (qemu-nbd + fio)" qn64k qraw "$(extents "$W/fqn64k.qcow2")"
frow "qcow2 4 KiB" "nbd (qemu-nbd + fio)" qn4k qraw "$(extents "$W/fqn4k.qcow2")"
frow "nbdkit cow (temporary, not persistent)" "nbd (nbdkit + fio)" kcow kraw "$(extents "$(kcow_file fkcow)")"
emit ""
emit "Every file of the system under test (base, overlay data and map, qcow2 file, nbdkit's temporary file) is evicted from the page cache before each pass. Ratios are medians of per-run ratios; > 1 means the written region reads slower. Paired: the two regions read in one process, taking turns every 16 MiB (the written region's MB/s is the one of the pass against the untouched region)."
TGT[frag]=$(rsumm ${FP[px.u]})
for n in fqn64k fqn4k fkcow fqraw fkraw; do stop_srv $n; done

# ==== targets ==========================================================================================
check() { py "print('**holds**' if $1 else '**MISSED**')"; }
first() { echo "${1%% *}"; }
read -r pwf q64wf q4wf <<<"${TGT[wf]}"; read -r pwa q64wa q4wa <<<"${TGT[wa]}"; read -r psp q64sp <<<"${TGT[sp]}"
section "## Targets (issue 4), pxedust at its default $((CHUNK / 1024)) KiB chunks"
emit "| target | measured | |"
emit "|---|---|---|"
for cache in cold warm; do for qd in 1 32; do
  v=${TGT[rr.$cache.$qd]}
  emit "| untouched 4 KiB random reads within 5% of the raw base, QD$qd, $cache, in-process, paired | overlay/raw $v | $(check "abs($(first "$v") - 1) <= 0.05") |"
done; done
emit "| fragmented region read <= 1.1x the untouched region, cold, in-process, paired | $(first "${TGT[frag]}")x | $(check "$(first "${TGT[frag]}") <= 1.1") |"
emit "| random 4 KiB writes >= qcow2 (in-process, same offsets), first | $(printf %.0f "$pwf") vs qcow2-64k $(printf %.0f "$q64wf"), qcow2-4k $(printf %.0f "$q4wf") iops | $(check "$pwf >= max($q64wf, $q4wf)") |"
emit "| random 4 KiB writes >= qcow2 (in-process, same offsets), rewrite | $(printf %.0f "$pwa") vs qcow2-64k $(printf %.0f "$q64wa"), qcow2-4k $(printf %.0f "$q4wa") iops | $(check "$pwa >= max($q64wa, $q4wa)") |"
emit "| space after $NW random 4 KiB writes <= qcow2 64 KiB | $(kib "$psp") KiB vs $(kib "$q64sp") KiB | $(check "$psp <= $q64sp") |"
emit ""
emit "Other processes used up to ${maxbusy}% of a core at the start of a repetition ($quietmisses repetitions started above ${QUIET_CPU}% after waiting ${QUIET_WAIT} s); load average at the end: $(load)."
printf '%s\n' "${out[@]}"
((keep)) && say "kept $W (samples: $samples)"
exit 0
