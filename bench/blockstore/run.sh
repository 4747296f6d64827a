#!/usr/bin/env bash
# Block store benchmark: pxedust overlays against the raw base, qcow2 overlays (64 KiB and 4 KiB
# clusters) and nbdkit's cow filter, side by side on one 1 GiB base, in one run.
#
#   bench/blockstore/run.sh [workdir]        (root: it drops the page cache between phases)
#
# Each system is driven the way it is used: pxedust in-process through pxedust-blockbench (there is no
# pxedust NBD server yet), qcow2 through qemu-nbd and fio's nbd engine, nbdkit cow through fio, plus
# `qemu-img bench` for an in-process qcow2 write figure. Because the transports differ, every read
# figure is also given as a ratio against the raw base read through THE SAME path, and those ratios
# are what the targets are about:
#   untouched 4 KiB random reads   overlay / raw base, QD1 and QD32      target: within 5%
#   fragmentation                  256 MiB written in random 4 KiB order, caches dropped, read in 1 MiB
#                                  QD1 reads: untouched-region MB/s / fragmented-region MB/s (slowdown)
#                                  target <= 1.1 (reference: qcow2 64K 3.8x, qcow2 4K 17x, nbdkit ~1.1)
#   writes                         10,000 4 KiB random writes at QD1, first (allocating) then rewrite,
#                                  one flush at the end
#   space                          allocated bytes after those 10,000 writes
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
"$top/scripts/install-deps.sh" --bench >/dev/null
W=${1:-$top/build/bench-blockstore}
BB=${BB:-$top/build/release/bin/pxedust-blockbench}
[[ -x $BB ]] || { echo "build first: scripts/build.sh release (need $BB)" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "run as root (drops the page cache)" >&2; exit 1; }
mkdir -p "$W"
base=$W/base.img
GiB=$((1 << 30)); MiB=$((1 << 20))
[[ -f $base && $(stat -c %s "$base") == "$GiB" ]] || head -c 1G /dev/urandom >"$base"
COUNT=${COUNT:-10000}       # random reads per run
REPS=${REPS:-5}             # repetitions of each read figure (median reported)
FRAG_OFF=$((256 * MiB)); FRAG_LEN=$((256 * MiB)); UNT_OFF=$((768 * MiB)); UNT_LEN=$((256 * MiB))
RR_OFF=$((512 * MiB)); RR_LEN=$((512 * MiB))       # untouched area for random reads
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
median() { python3 -c 'import sys; v=sorted(float(x) for x in sys.argv[1:]); print(v[len(v)//2])' "$@"; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

# --- pxedust in-process -----------------------------------------------------------------------------
store=$W/store
rm -rf "$store"
"$BB" import "$store" "$base" base >/dev/null 2>&1
# The raw reference is the store's imported copy of the base: the very file the overlays read.
bbdev() { if [[ $1 == raw ]]; then echo --raw "$store/images/base/v1/base.img"; else echo --store "$store" --host "$1"; fi; }
bb_randread() { local r=(); for _ in $(seq "$REPS"); do drop; r+=("$("$BB" randread $(bbdev "$1") --qd "$2" --count "$COUNT" --offset $RR_OFF --length $RR_LEN --seed $RANDOM | field iops)"); done; median "${r[@]}"; }
bb_seq() { local r=(); for _ in $(seq "$REPS"); do drop; r+=("$("$BB" seqread $(bbdev "$1") --offset "$2" --length "$3" --bs $MiB | field mbps)"); done; median "${r[@]}"; }

# --- NBD servers + fio --------------------------------------------------------------------------------
start_nbd() {  # name, command...: starts a server on $W/$name.sock
  local sock=$W/$1.sock; shift
  rm -f "$sock"
  "$@" &
  pids+=($!)
  for _ in $(seq 100); do [[ -S $sock ]] && return 0; sleep 0.05; done
  echo "server for $sock did not start" >&2; exit 1
}
stop_nbd() { kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; }
fio_nbd() {  # sock rw bs qd offset size [extra...] -> prints iops and MB/s
  local sock=$1 rw=$2 bs=$3 qd=$4 off=$5 size=$6; shift 6
  fio --name=b --ioengine=nbd --uri="nbd+unix:///?socket=$sock" --rw="$rw" --bs="$bs" --iodepth="$qd" \
      --offset="$off" --size="$size" --randrepeat=1 --output-format=json --output="$W/fio.json" "$@" >/dev/null 2>&1
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]; d=j["read"] if j["read"]["io_bytes"] else j["write"]; print(round(d["iops"]), round(d["bw_bytes"]/1e6,1), round(j["job_runtime"]/1000,3))' "$W/fio.json"
}
fio_randread() { local r=(); for _ in $(seq "$REPS"); do drop; r+=("$(fio_nbd "$1" randread 4k "$2" $RR_OFF $RR_LEN --number_ios="$COUNT" --randseed=$RANDOM | cut -d' ' -f1)"); done; median "${r[@]}"; }
fio_seq() { local r=(); for _ in $(seq "$REPS"); do drop; r+=("$(fio_nbd "$1" read 1m 1 "$2" "$3" | cut -d' ' -f2)"); done; median "${r[@]}"; }
qnbd() { start_nbd "$1" qemu-nbd -t -k "$W/$1.sock" -f "$2" "${@:3}"; }

results=()
row() { results+=("$(printf '%-16s %s' "$1" "$2")"); }

echo "== untouched 4 KiB random reads (cold cache, $COUNT reads, median of $REPS)" >&2
# Every run uses a fresh seed and the systems take turns, so the host's cache of the VM disk (which
# a guest cannot drop) warms up evenly for all of them instead of favouring whoever runs last.
"$BB" create "$store" rr base 4096 >/dev/null 2>&1
for c in 64k 4k; do
  rm -f "$W/rr$c.qcow2"; qemu-img create -q -f qcow2 -o cluster_size=$c -b "$base" -F raw "$W/rr$c.qcow2"
done
qnbd qraw raw -r "$base"
qnbd q64k qcow2 "$W/rr64k.qcow2"
qnbd q4k qcow2 "$W/rr4k.qcow2"
start_nbd kraw nbdkit -f -r -U "$W/kraw.sock" file "$base"
start_nbd kcow nbdkit -f -U "$W/kcow.sock" --filter=cow file "$base"
systems=(pxraw pxov qraw q64k q4k kraw kcow)
declare -A rr
seed=100
for qd in 1 32; do
  for rep in $(seq "$REPS"); do
    for i in "${!systems[@]}"; do
      sys=${systems[$(((i + rep) % ${#systems[@]}))]}
      seed=$((seed + 1)); drop
      case $sys in
        pxraw) v=$("$BB" randread $(bbdev raw) --qd $qd --count "$COUNT" --offset $RR_OFF --length $RR_LEN --seed $seed | field iops) ;;
        pxov) v=$("$BB" randread $(bbdev rr) --qd $qd --count "$COUNT" --offset $RR_OFF --length $RR_LEN --seed $seed | field iops) ;;
        *) v=$(fio_nbd "$W/$sys.sock" randread 4k $qd $RR_OFF $RR_LEN --number_ios="$COUNT" --randseed=$seed | cut -d' ' -f1) ;;
      esac
      rr[$sys.$qd]="${rr[$sys.$qd]:-} $v"
    done
  done
  for sys in "${systems[@]}"; do rr[$sys.$qd]=$(median ${rr[$sys.$qd]}); done
  ratio() { python3 -c "print(round(${rr[$1.$qd]}/${rr[$2.$qd]},3))"; }
  row "pxedust" "randread QD$qd iops: raw base ${rr[pxraw.$qd]}, overlay ${rr[pxov.$qd]}, overlay/raw $(ratio pxov pxraw)"
  row "qcow2-64k" "randread QD$qd iops: raw base (qemu-nbd) ${rr[qraw.$qd]}, overlay ${rr[q64k.$qd]}, overlay/raw $(ratio q64k qraw)"
  row "qcow2-4k" "randread QD$qd iops: raw base (qemu-nbd) ${rr[qraw.$qd]}, overlay ${rr[q4k.$qd]}, overlay/raw $(ratio q4k qraw)"
  row "nbdkit-cow" "randread QD$qd iops: raw base (nbdkit) ${rr[kraw.$qd]}, overlay ${rr[kcow.$qd]}, overlay/raw $(ratio kcow kraw)"
done
for _ in 1 2 3 4 5; do stop_nbd; done

echo "== 10,000 random 4 KiB writes, first then rewrite; space" >&2
"$BB" create "$store" w base 4096 >/dev/null 2>&1
drop; first=$("$BB" randwrite --store "$store" --host w --count 10000 --seed 7 | field iops)
drop; again=$("$BB" randwrite --store "$store" --host w --count 10000 --seed 7 | field iops)
space=$("$BB" space --store "$store" --host w | field allocated_bytes)
row "pxedust" "randwrite QD1 iops: first $first, rewrite $again; space after 10k writes $((space / 1024)) KiB"
# Same offsets as qemu-img bench -S: block i*104729 mod 262144 (a permutation of the 4 KiB blocks).
"$BB" create "$store" ws base 4096 >/dev/null 2>&1
drop; sfirst=$("$BB" randwrite --store "$store" --host ws --count 10000 --stride 104729 | field iops)
drop; sagain=$("$BB" randwrite --store "$store" --host ws --count 10000 --stride 104729 | field iops)
row "pxedust" "stride writes (qemu-img bench pattern) iops: first $sfirst, rewrite $sagain"
for c in 64k 4k; do
  img=$W/w$c.qcow2
  rm -f "$img"; qemu-img create -q -f qcow2 -o cluster_size=$c -b "$base" -F raw "$img"
  t() { local s e; s=$(date +%s.%N); qemu-img bench -q -w -f qcow2 -c 10000 -d 1 -s 4096 -S $((4096 * 104729)) \
        --flush-interval=10000 "$img" >/dev/null; e=$(date +%s.%N); python3 -c "print(round(10000/($e-$s)))"; }
  drop; f=$(t); drop; a=$(t)
  row "qcow2-$c" "qemu-img bench stride writes iops: first $f, rewrite $a"
  img2=$W/wf$c.qcow2
  rm -f "$img2"; qemu-img create -q -f qcow2 -o cluster_size=$c -b "$base" -F raw "$img2"
  qnbd "wq$c" qcow2 "$img2"
  drop; f=$(fio_nbd "$W/wq$c.sock" randwrite 4k 1 0 $GiB --number_ios=10000 --randseed=7 --end_fsync=1 | cut -d' ' -f1)
  drop; a=$(fio_nbd "$W/wq$c.sock" randwrite 4k 1 0 $GiB --number_ios=10000 --randseed=7 --end_fsync=1 | cut -d' ' -f1)
  stop_nbd
  row "qcow2-$c" "randwrite via qemu-nbd+fio iops: first $f, rewrite $a; space after 10k writes $(( $(stat -c %b "$img2") * 512 / 1024 )) KiB"
done
start_nbd kw nbdkit -f -U "$W/kw.sock" --filter=cow file "$base"
drop; f=$(fio_nbd "$W/kw.sock" randwrite 4k 1 0 $GiB --number_ios=10000 --randseed=7 --end_fsync=1 | cut -d' ' -f1)
drop; a=$(fio_nbd "$W/kw.sock" randwrite 4k 1 0 $GiB --number_ios=10000 --randseed=7 --end_fsync=1 | cut -d' ' -f1)
kspace=0
for fd in /proc/"${pids[-1]}"/fd/*; do
  if [[ $(readlink "$fd") == *deleted* ]]; then kspace=$(( $(stat -L -c %b "$fd") * 512 )); fi
done
stop_nbd
row "nbdkit-cow" "randwrite via fio iops: first $f, rewrite $a; space after 10k writes $((kspace / 1024)) KiB (temporary, not persistent)"

echo "== fragmentation: 256 MiB in random 4 KiB order, cold 1 MiB sequential reads (median of $REPS)" >&2
rawseq=$(bb_seq raw $FRAG_OFF $FRAG_LEN)
"$BB" create "$store" frag base 4096 >/dev/null 2>&1
"$BB" permfill --store "$store" --host frag --offset $FRAG_OFF --length $FRAG_LEN --seed 3 >/dev/null
fr=$(bb_seq frag $FRAG_OFF $FRAG_LEN); un=$(bb_seq frag $UNT_OFF $UNT_LEN)
row "pxedust" "seq MB/s: raw base $rawseq, fragmented $fr, untouched $un; slowdown vs untouched $(python3 -c "print(round($un/$fr,2))"), vs raw base $(python3 -c "print(round($rawseq/$fr,2))")"
for c in 64k 4k; do
  img=$W/f$c.qcow2
  rm -f "$img"; qemu-img create -q -f qcow2 -o cluster_size=$c -b "$base" -F raw "$img"
  qnbd "fq$c" qcow2 "$img"
  fio_nbd "$W/fq$c.sock" randwrite 4k 1 $FRAG_OFF $FRAG_LEN --end_fsync=1 >/dev/null
  fr=$(fio_seq "$W/fq$c.sock" $FRAG_OFF $FRAG_LEN); un=$(fio_seq "$W/fq$c.sock" $UNT_OFF $UNT_LEN)
  stop_nbd
  row "qcow2-$c" "seq MB/s: fragmented $fr, untouched $un; slowdown $(python3 -c "print(round($un/$fr,2))")"
done
start_nbd kf nbdkit -f -U "$W/kf.sock" --filter=cow file "$base"
fio_nbd "$W/kf.sock" randwrite 4k 1 $FRAG_OFF $FRAG_LEN --end_fsync=1 >/dev/null
fr=$(fio_seq "$W/kf.sock" $FRAG_OFF $FRAG_LEN); un=$(fio_seq "$W/kf.sock" $UNT_OFF $UNT_LEN)
stop_nbd
row "nbdkit-cow" "seq MB/s: fragmented $fr, untouched $un; slowdown $(python3 -c "print(round($un/$fr,2))")"

printf '%s\n' "${results[@]}"
