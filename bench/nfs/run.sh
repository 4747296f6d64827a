#!/usr/bin/env bash
# bench/nfs/run.sh: pxedust's NFSv3 server against nfs-ganesha (FSAL VFS) on loopback, one after the
# other in every run, both driven by the same client, build/bench/nfs_load (bench/nfs/nfs_load.cpp:
# raw ONC RPC over TCP). pxedust serves an ext4 image from its block store; ganesha serves the same
# image's files unpacked (debugfs rdump) into a directory on /dev/shm. bench/nfs/README.md explains
# every row and how each peer is set up.
#
# usage: bench/nfs/run.sh [--runs N] [--quick] [--image IMG] [--pxedust BIN] [--servers LIST]
#                         [--seconds S] [--clients K] [--soak MIN] [--keep]
#   --runs N       repetitions (default 3); servers take turns inside every run; median [min-max]
#   --quick        a small generated image (mke2fs -d), 2 s rows, 8 storm clients, 1 run: a smoke
#                  test of the script, not a measurement
#   --image IMG    the ext4 image (default build/e2e/debian-2/root.img of this tree or of /work/main)
#   --pxedust BIN  the daemon (default build/release/bin/pxedust)
#   --servers LIST some of pxedust,ganesha (default both)
#   --seconds S    length of each rate row (default 5)
#   --clients K    simulated clients in the boot storm (default 32)
#   --soak MIN     after the runs, keep each server under mixed load for MIN minutes and print its
#                  VmRSS every minute (the flat-memory check; off by default)
#   --keep         keep the work directory (logs, samples.tsv) under /dev/shm
#
# The whole script runs in a private network namespace with only loopback (it re-executes itself
# under `unshare -n -m`), with a private tmpfs on /run there, so rpcbind and both servers are
# reachable from nothing else and never see the machine's /run/rpcbind*. Every process started here
# is stopped by its PID, on exit and on Ctrl-C. Needs root (unshare, ganesha).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
say() { printf '[nfs-bench] %s\n' "$*" >&2; }
usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

runs="" quick=0 image="" PX="" servers="pxedust,ganesha" row_s="" clients="" soak=0 keep=0
args=("$@")
while (($#)); do
  case $1 in
    --runs) runs=${2:?--runs N}; shift 2 ;;
    --quick) quick=1; shift ;;
    --image) image=${2:?--image IMG}; shift 2 ;;
    --pxedust) PX=${2:?--pxedust BIN}; shift 2 ;;
    --servers) servers=${2:?--servers LIST}; shift 2 ;;
    --seconds) row_s=${2:?--seconds S}; shift 2 ;;
    --clients) clients=${2:?--clients K}; shift 2 ;;
    --soak) soak=${2:?--soak MIN}; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; usage ;;
  esac
done
[[ -z $runs ]] && { ((quick)) && runs=1 || runs=3; }
[[ -z $row_s ]] && { ((quick)) && row_s=2 || row_s=5; }
[[ -z $clients ]] && { ((quick)) && clients=8 || clients=32; }
[[ $runs =~ ^[1-9][0-9]*$ && $clients =~ ^[1-9][0-9]*$ && $soak =~ ^[0-9]+$ ]] ||
  { echo "run.sh: --runs, --clients and --soak want numbers" >&2; exit 2; }
IFS=, read -r -a server_list <<<"$servers"
for s in "${server_list[@]}"; do
  case $s in pxedust|ganesha) ;; *) echo "run.sh: unknown server '$s'" >&2; exit 2 ;; esac
done
want() { [[ ",$servers," == *",$1,"* ]]; }

# ---- into a private network (and mount) namespace -------------------------------------------------
if [[ -z ${PXEDUST_NFS_BENCH_NS:-} ]]; then
  [[ $(id -u) -eq 0 ]] || { echo "run.sh: needs root (unshare -n, ganesha.nfsd)" >&2; exit 2; }
  exec unshare -n -m --propagation private env PXEDUST_NFS_BENCH_NS=1 "$0" "${args[@]}"
fi
ip link set lo up
mount -t tmpfs -o mode=755 tmpfs /run   # this namespace's own /run: rpcbind's socket and state

# ---- tools ----------------------------------------------------------------------------------------
[[ -z $PX ]] && PX=$top/build/release/bin/pxedust
for t in debugfs mke2fs ss; do command -v $t >/dev/null || { say "missing $t (e2fsprogs, iproute2)"; exit 2; }; done
if want ganesha; then
  for t in ganesha.nfsd rpcbind; do
    command -v $t >/dev/null || { say "missing $t: scripts/install-deps.sh --bench (nfs-ganesha nfs-ganesha-vfs)"; exit 2; }
  done
fi
if want pxedust && [[ ! -x $PX ]]; then say "no pxedust at $PX (scripts/build.sh release, or --pxedust BIN)"; exit 2; fi
bench_dir=$top/build/bench
mkdir -p "$bench_dir"
load=$bench_dir/nfs_load
if [[ ! -x $load || $top/bench/nfs/nfs_load.cpp -nt $load ]]; then
  say "building $load"
  g++ -O2 -std=c++20 -Wall -Wextra -o "$load" "$top/bench/nfs/nfs_load.cpp" -pthread
fi

# ---- work dir, cleanup ----------------------------------------------------------------------------
W=$(mktemp -d /dev/shm/pxedust-nfs-bench.XXXXXX)
chmod 755 "$W"
tree=$W/gtree
results=$W/samples.tsv
: >"$results"
pids=()     # every process started here, stopped by PID
srv_pid=""
stopPid() {
  local pid=$1 i
  [[ -z $pid ]] && return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local p
  stopPid "$srv_pid"
  for p in "${pids[@]}"; do stopPid "$p"; done
  if ((keep)); then say "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the image ------------------------------------------------------------------------------------
# Paths a Debian 12 boot reads (systemd, its libraries, the shell, the config files it opens early);
# those that are regular files in the image make the storm's list.
boot_files=(
  usr/lib/systemd/systemd usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-252.so
  usr/lib/x86_64-linux-gnu/systemd/libsystemd-core-252.so
  usr/lib/x86_64-linux-gnu/libc.so.6 usr/lib64/ld-linux-x86-64.so.2 usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
  usr/lib/x86_64-linux-gnu/libmount.so.1.1.0 usr/lib/x86_64-linux-gnu/libblkid.so.1.1.0
  usr/lib/x86_64-linux-gnu/libselinux.so.1 usr/lib/x86_64-linux-gnu/libcap.so.2.66
  usr/lib/x86_64-linux-gnu/libcrypt.so.1.1.0 usr/lib/x86_64-linux-gnu/libpcre2-8.so.0.11.2
  usr/lib/x86_64-linux-gnu/libseccomp.so.2.5.4 usr/lib/x86_64-linux-gnu/libgcrypt.so.20.4.1
  usr/lib/x86_64-linux-gnu/liblzma.so.5.4.1 usr/lib/x86_64-linux-gnu/libzstd.so.1.5.4
  usr/lib/x86_64-linux-gnu/liblz4.so.1.9.4 usr/lib/x86_64-linux-gnu/libgpg-error.so.0.33.1
  usr/lib/x86_64-linux-gnu/libtinfo.so.6.4 usr/lib/x86_64-linux-gnu/libkmod.so.2.4.0
  usr/bin/bash usr/bin/mount usr/bin/udevadm usr/lib/systemd/systemd-journald usr/lib/systemd/systemd-udevd
  usr/lib/systemd/systemd-logind usr/sbin/agetty usr/bin/login
  etc/passwd etc/group etc/shadow etc/nsswitch.conf etc/fstab etc/hostname etc/hosts
  etc/machine-id etc/ld.so.cache etc/locale.conf etc/default/locale etc/systemd/system.conf
  etc/systemd/journald.conf etc/systemd/logind.conf etc/login.defs etc/pam.d/login etc/pam.d/common-auth
  etc/bash.bashrc etc/profile etc/environment etc/issue etc/debian_version etc/adjtime
)

if ((quick)); then
  image=$W/quick.img
  say "quick: generating a tree (5,000 small files, 4 x 16 MiB, the boot list) and $image (mke2fs -d)"
  src=$W/src
  mkdir -p "$src"
  python3 - "$src" "${boot_files[@]}" <<'PY'
import os, sys, random
root, boot = sys.argv[1], sys.argv[2:]
rnd = random.Random(1)
for i in range(50):
    d = os.path.join(root, "usr/share/doc/pkg%02d" % i)
    os.makedirs(d, exist_ok=True)
    for j in range(100):
        with open(os.path.join(d, "f%03d" % j), "wb") as f:
            f.write(rnd.randbytes(rnd.randrange(0, 4096)))
os.makedirs(os.path.join(root, "usr/lib/big"), exist_ok=True)
for i in range(4):
    with open(os.path.join(root, "usr/lib/big/big%d.bin" % i), "wb") as f:
        f.write(os.urandom(16 << 20))
for p in boot:
    full = os.path.join(root, p)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
        f.write(rnd.randbytes(rnd.randrange(100, 300000)))
PY
  mke2fs -q -t ext4 -d "$src" "$image" 256M
  rm -rf "$src"
elif [[ -z $image ]]; then
  for c in "$top/build/e2e/debian-2/root.img" /work/main/build/e2e/debian-2/root.img; do
    [[ -f $c ]] && { image=$c; break; }
  done
  if [[ -z $image ]]; then
    say "no image: pass --image IMG (an ext4 file system image), or make the Debian one with"
    say "  pxedust image build (see README), or the e2e tests (build/e2e/debian-2/root.img); or --quick"
    exit 2
  fi
fi
[[ -f $image ]] || { say "no such image: $image"; exit 2; }
say "image: $image ($(du -h --apparent-size "$image" | cut -f1))"

say "unpacking the image into $tree (debugfs rdump) for ganesha"
mkdir -m 755 "$tree"
debugfs -R "rdump / $tree" "$image" >"$W/rdump.log" 2>&1 || { say "debugfs rdump failed:"; tail -n 5 "$W/rdump.log" >&2; exit 1; }
chmod 755 "$tree"
say "  $(find "$tree" | wc -l) entries, $(du -sh "$tree" | cut -f1) (tmpfs: in memory)"

# The storm's list: the boot paths that are regular files (no symlink on the way).
storm_list=$W/storm.txt
: >"$storm_list"
for p in "${boot_files[@]}"; do
  if [[ -f $tree/$p && $(realpath "$tree/$p") == "$tree/$p" ]]; then echo "/$p" >>"$storm_list"; fi
done
# The read row's list: the 4 largest regular files.
read_list=$W/read.txt
find "$tree" -type f -printf '%s %P\n' | sort -rn | awk 'NR <= 4 { print "/" $2 }' >"$read_list"
storm_bytes=$(while read -r p; do stat -c %s "$tree$p"; done <"$storm_list" | awk '{ s += $1 } END { print s + 0 }')
read_bytes=$(while read -r p; do stat -c %s "$tree$p"; done <"$read_list" | awk '{ s += $1 } END { print s + 0 }')
say "  storm list: $(wc -l <"$storm_list") files, $storm_bytes bytes; read list: $(xargs <"$read_list") ($read_bytes bytes)"
list_path=/usr
lookup_dir=/usr/bin
[[ -d $tree/usr/bin ]] || lookup_dir=/usr/share/doc/pkg00
getattr_path=/usr/bin/bash
[[ -f $tree/usr/bin/bash ]] || getattr_path=$(head -n 1 "$storm_list")

# ---- servers --------------------------------------------------------------------------------------
px_port=20390 g_port=20490 g_mport=20491
if want pxedust; then
  mkdir -p "$W/store" "$W/state"
  cat >"$W/pxedust.toml" <<EOF
[log]
level = "warn"
[daemon]
state_dir = "$W/state"
[storage]
dir = "$W/store"
[nfs]
listen = ["127.0.0.1:$px_port"]
[[host]]
name = "bench"
image = "deb"
iscsi_allow = ["127.0.0.0/8"]
EOF
  say "importing the image into pxedust's store ($W/store)"
  PXEDUST_CONFIG=$W/pxedust.toml "$PX" image import "$image" --name deb >"$W/import.log" 2>&1 ||
    { say "pxedust image import failed:"; tail -n 5 "$W/import.log" >&2; exit 1; }
fi
if want ganesha; then
  cat >"$W/ganesha.conf" <<EOF
NFS_CORE_PARAM { NFS_Port = $g_port; MNT_Port = $g_mport; NLM_Port = 20492; Rquota_Port = 20493;
                 Enable_NLM = false; Enable_RQUOTA = false; Protocols = 3; }
NFS_KRB5 { Active_krb5 = false; }
EXPORT { Export_Id = 1; Path = $tree; Pseudo = /tree; Access_Type = RO; Squash = No_Root_Squash;
         Protocols = 3; Transports = TCP; SecType = sys; FSAL { Name = VFS; } }
LOG { Default_Log_Level = WARN; }
EOF
  say "starting rpcbind (in this namespace only)"
  rpcbind -f -w >"$W/rpcbind.log" 2>&1 &
  pids+=($!)
fi

# server -> the arguments nfs_load needs to reach it
target() {
  case $1 in
    pxedust) echo "--server 127.0.0.1:$px_port --export /images/deb" ;;
    ganesha) echo "--server 127.0.0.1:$g_port --mount-port $g_mport --export $tree" ;;
  esac
}

warmCache() {   # every server reads from memory: the image (pxedust) or the tree (ganesha, tmpfs)
  case $1 in
    pxedust) cat "$W"/store/*/* "$image" >/dev/null 2>&1 || true ;;
    ganesha) find "$tree" -type f -exec cat {} + >/dev/null ;;
  esac
}

startServer() {   # sets srv_pid; returns 1 with a message if the server does not answer
  local name=$1 i
  case $name in
    pxedust) "$PX" serve --config "$W/pxedust.toml" >"$W/pxedust.log" 2>&1 & ;;
    ganesha) ganesha.nfsd -F -f "$W/ganesha.conf" -L "$W/ganesha.log" -p "$W/ganesha.pid" -N NIV_WARN \
               >"$W/ganesha.out" 2>&1 & ;;
  esac
  srv_pid=$!
  for ((i = 0; i < 300; i++)); do
    # shellcheck disable=SC2046  # target() is a plain word list
    if "$load" probe $(target "$name") >/dev/null 2>"$W/probe.err"; then return 0; fi
    kill -0 "$srv_pid" 2>/dev/null || break
    sleep 0.1
  done
  say "$name: NOT ANSWERING MNT after 30 s: $(cat "$W/probe.err")"
  tail -n 10 "$W/$name.log" >&2 2>/dev/null || true
  stopPid "$srv_pid"; srv_pid=""
  return 1
}

rssKiB() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
cpuTicks() { local f; f=$(sed 's/.*) //' "/proc/$1/stat"); read -r -a f <<<"$f"; echo $((f[11] + f[12])); }
clk_tck=$(getconf CLK_TCK)

# id | label | nfs_load arguments
rows=(
  "list|recursive listing of $list_path (READDIRPLUS), entries/s|list --path $list_path --seconds $row_s"
  "getattr1|GETATTR, 1 in flight, ops/s|getattr --path $getattr_path --inflight 1 --seconds $row_s"
  "getattr64|GETATTR, 64 in flight, ops/s|getattr --path $getattr_path --inflight 64 --seconds $row_s"
  "lookup1|LOOKUP in $lookup_dir, 1 in flight, ops/s|lookup --path $lookup_dir --inflight 1 --seconds $row_s"
  "lookup64|LOOKUP in $lookup_dir, 64 in flight, ops/s|lookup --path $lookup_dir --inflight 64 --seconds $row_s"
  "read|1 MiB sequential READ, QD 8, 4 largest files, MB/s|read --files $read_list --inflight 8 --seconds $row_s"
  "storm|boot storm, $clients clients, seconds (lower = better)|storm --files $storm_list --clients $clients"
)

runRow() {   # server spec run -> a line in samples.tsv
  local name=$1 spec=$2 run=$3 id a c0 c1 json
  IFS='|' read -r id _ a <<<"$spec"
  c0=$(cpuTicks "$srv_pid")
  # shellcheck disable=SC2086,SC2046
  json=$("$load" $a $(target "$name") 2>"$W/load.err") || true   # a failed storm still prints its JSON
  c1=$(cpuTicks "$srv_pid")
  if [[ $json == *'"errors":["'* ]]; then
    say "  $name $id run $run: FAILED: $json"
  elif [[ -z $json || $json != \{* ]]; then
    json="{\"error\":\"$(tr -d '"\\' <"$W/load.err" | tr '\n' ' ' | cut -c1-300)\"}"
    say "  $name $id run $run: FAILED: $(cat "$W/load.err")"
  else
    say "  $name $id run $run: $json"
  fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$id" "$run" \
    "$(awk -v a="$c0" -v b="$c1" -v h="$clk_tck" 'BEGIN { printf "%.3f", (b - a) / h }')" "$json" >>"$results"
}

say "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $runs run(s); rows of $row_s s"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A skipped=()
for ((r = 1; r <= runs; r++)); do
  order=("${server_list[@]}")
  ((r % 2 == 0)) && mapfile -t order < <(printf '%s\n' "${server_list[@]}" | tac)   # alternate who goes first
  for name in "${order[@]}"; do
    [[ -n ${skipped[$name]:-} ]] && continue
    say "run $r: $name (page cache warmed first)"
    warmCache "$name"
    if ! startServer "$name"; then skipped[$name]="did not answer MNT (see above)"; continue; fi
    rss0=$(rssKiB "$srv_pid")
    for spec in "${rows[@]}"; do runRow "$name" "$spec" "$r"; done
    rss1=$(rssKiB "$srv_pid")
    printf '%s\trss\t%s\t0\t{"before_kib":%s,"after_kib":%s}\n' "$name" "$r" "$rss0" "$rss1" >>"$results"
    say "  $name VmRSS: $rss0 KiB after start, $rss1 KiB after the rows"
    stopPid "$srv_pid"; srv_pid=""
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- optional soak: memory under an hour (or --soak minutes) of mixed load -------------------------
if ((soak > 0)); then
  for name in "${server_list[@]}"; do
    [[ -n ${skipped[$name]:-} ]] && continue
    say "soak: $name for $soak min (storm, listing, 64-deep GETATTR/LOOKUP in a loop); VmRSS each minute"
    startServer "$name" || continue
    end=$((SECONDS + soak * 60)) next=$SECONDS
    while ((SECONDS < end)); do
      for spec in "${rows[@]}"; do
        IFS='|' read -r _ _ a <<<"$spec"
        # shellcheck disable=SC2086,SC2046
        "$load" $a $(target "$name") >/dev/null 2>>"$W/soak.err" || say "  soak: a row failed: $(tail -n 1 "$W/soak.err")"
        if ((SECONDS >= next)); then
          printf '%s\tsoak\t%s\t0\t{"rss_kib":%s}\n' "$name" $(((SECONDS - end + soak * 60) / 60)) "$(rssKiB "$srv_pid")" >>"$results"
          say "  $name minute $(((SECONDS - end + soak * 60) / 60)): VmRSS $(rssKiB "$srv_pid") KiB"
          next=$((next + 60))
        fi
        ((SECONDS < end)) || break
      done
    done
    stopPid "$srv_pid"; srv_pid=""
  done
fi

# ---- report ---------------------------------------------------------------------------------------
skipped_txt=""
for k in "${!skipped[@]}"; do skipped_txt+="$k: ${skipped[$k]}; "; done
printf '%s\n' "${rows[@]}" >"$W/rows.txt"
((keep)) && cp "$results" "$bench_dir/nfs-samples.tsv"
python3 - "$results" "$W/rows.txt" "$runs" "$load_before" "$load_after" "$skipped_txt" "$image" <<'PY'
import json, statistics, sys
results, rows_file, runs, lb, la, skipped, image = sys.argv[1:8]
rows = [l.rstrip("\n").split("|")[:2] for l in open(rows_file) if l.strip()]
data, cpu, rss, soak = {}, {}, {}, {}
for line in open(results):
    name, rid, run, cpu_s, js = line.rstrip("\n").split("\t", 4)
    j = json.loads(js)
    if rid == "rss":
        rss.setdefault(name, []).append(j); continue
    if rid == "soak":
        soak.setdefault(name, []).append((int(run), j["rss_kib"])); continue
    j["srv_cpu_s"] = float(cpu_s)
    data.setdefault((name, rid), []).append(j)

ran = {name for name, _ in data} | set(rss)

def cell(vals, fmt, name):
    if not vals: return "FAILED" if name in ran else "not run"
    m = statistics.median(vals)
    return (fmt % m) + (" [" + fmt % min(vals) + "-" + fmt % max(vals) + "]" if len(vals) > 1 else "")

def ok(js): return [j for j in js if "error" not in j and j.get("agree", True)]

def val(rid, j): return j["seconds"] if rid == "storm" else j["rate"]

print()
print("pxedust NFSv3 benchmark on loopback (private namespace): median [min-max] of %s run(s); image %s" % (runs, image))
print("load average before %s, after %s; both servers read from memory (image/tree read in full first)" % (lb, la))
print()
fmtw = "%-52s %-26s %-26s %s"
print(fmtw % ("row", "pxedust", "ganesha", "ratio"))
for rid, label in rows:
    p = ok(data.get(("pxedust", rid), [])); g = ok(data.get(("ganesha", rid), []))
    fmt = "%.2f" if rid == "storm" else ("%.0f" if rid != "read" else "%.1f")
    pv = [val(rid, j) for j in p]; gv = [val(rid, j) for j in g]
    ratio = "-"
    if pv and gv:
        pm, gm = statistics.median(pv), statistics.median(gv)
        ratio = "%.2fx" % ((gm / pm) if rid == "storm" else (pm / gm))
    print(fmtw % (label, cell(pv, fmt, "pxedust"), cell(gv, fmt, "ganesha"), ratio))
    if rid == "read":
        pc = [j["srv_cpu_s"] / (j["bytes"] / 1e9) for j in p]; gc = [j["srv_cpu_s"] / (j["bytes"] / 1e9) for j in g]
        r = "%.2fx" % (statistics.median(gc) / statistics.median(pc)) if pc and gc and statistics.median(pc) > 0 else "-"
        print(fmtw % ("  server CPU seconds per GB read (lower = better)", cell(pc, "%.2f", "pxedust"), cell(gc, "%.2f", "ganesha"), r))
    if rid == "storm":
        pc = [j["rate"] for j in p]; gc = [j["rate"] for j in g]
        r = "%.2fx" % (statistics.median(pc) / statistics.median(gc)) if pc and gc else "-"
        print(fmtw % ("  clients per second", cell(pc, "%.1f", "pxedust"), cell(gc, "%.1f", "ganesha"), r))
        dp = {j["digest"] for j in p}; dg = {j["digest"] for j in g}
        if p and g and dp != dg:
            print("  WARNING: the storm read different data from the two servers (digests %s vs %s)" % (dp, dg))
for name in ("pxedust", "ganesha"):
    if name in rss:
        print(fmtw % ("VmRSS MiB %s: after start -> after the rows" % name, "; ".join(
            "%.0f -> %.0f" % (x["before_kib"] / 1024, x["after_kib"] / 1024) for x in rss[name]), "", ""))
for name, pts in soak.items():
    print("soak %s VmRSS MiB by minute: %s" % (name, " ".join("%d:%.0f" % (m, k / 1024) for m, k in pts)))
print()
print("ratio: pxedust/ganesha for rates, ganesha/pxedust for times and CPU (higher = pxedust better)")
for (name, rid), js in sorted(data.items()):
    bad = [j for j in js if j not in ok(js)]
    if bad:
        print("FAILED %s %s: %s" % (name, rid, "; ".join(str(j.get("error") or j.get("errors")) for j in bad)[:400]))
if skipped: print("not measured: " + skipped)
PY
