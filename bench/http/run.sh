#!/usr/bin/env bash
# bench/http/run.sh: pxedust's HTTP service against nginx and lighttpd, serving one 30 MiB initrd on
# loopback, driven by wrk.
#
# Each server in turn listens on 127.0.0.1:18080 (one after another, the same port for all), serves
# the same random file from a private temp root, and is loaded by wrk (-t 2, --latency) in rows:
#   ka1, ka50, ka500   1, 50 and 500 connections with keep-alive, GETs of the whole file
#   close50            50 clients opening a new connection for each file (Connection: close), as
#                      firmware does
# Every row runs --runs times, servers interleaved within a run (median [min-max], ratio to pxedust):
# MB/s received by wrk, p99 latency, server CPU-s per GB sent (utime+stime of the server and its
# children from /proc). Only 127.0.0.1 is used; every process started here is stopped by PID.
#
# usage: bench/http/run.sh [--runs N] [--servers pxedust,nginx,lighttpd] [--rows ka1,...] [--duration S]
#                          [--pxedust BINARY] [--no-build] [--no-deps] [--quick]
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
runs=""
servers="pxedust,nginx,lighttpd"
only_rows=""
duration=10
quick=0
build_pxedust=1
install_deps=1
pxedust_bin=$top/build/release/bin/pxedust
port=18080
size_mib=30

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}
while (($#)); do
  case $1 in
    --runs) runs=${2:?--runs N}; shift 2 ;;
    --servers) servers=${2:?--servers LIST}; shift 2 ;;
    --rows) only_rows=${2:?--rows LIST}; shift 2 ;;
    --duration) duration=${2:?--duration S}; shift 2 ;;
    --pxedust) pxedust_bin=$(realpath "${2:?--pxedust BINARY}"); build_pxedust=0; shift 2 ;;
    --quick) quick=1; shift ;;
    --no-build) build_pxedust=0; shift ;;
    --no-deps) install_deps=0; shift ;;
    -h|--help) usage 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; usage ;;
  esac
done
[[ -z $runs ]] && { ((quick)) && runs=1 || runs=3; }
((quick)) && duration=3
[[ $runs =~ ^[1-9][0-9]*$ && $duration =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --runs and --duration want positive numbers" >&2; exit 2; }
IFS=, read -r -a server_list <<<"$servers"
for s in "${server_list[@]}"; do
  case $s in pxedust|nginx|lighttpd) ;; *) echo "run.sh: unknown server '$s'" >&2; exit 2 ;; esac
done

say() { printf '[http-bench] %s\n' "$*" >&2; }

# id | label | connections | extra wrk header
rows=(
  "ka1|1 connection, keep-alive|1|"
  "ka50|50 connections, keep-alive|50|"
  "ka500|500 connections, keep-alive|500|"
  "close50|50 clients, a new connection per file|50|Connection: close"
)

if [[ -n $only_rows ]]; then  # --rows ka1,close50: only these
  kept=()
  for r in "${rows[@]}"; do [[ ,$only_rows, == *,${r%%|*},* ]] && kept+=("$r"); done
  ((${#kept[@]})) || { echo "run.sh: --rows names none of ka1, ka50, ka500, close50" >&2; exit 2; }
  rows=("${kept[@]}")
fi

if ((install_deps)); then "$top/scripts/install-deps.sh" --bench >&2; fi
if ((build_pxedust)); then
  say "building pxedust (scripts/build.sh release)"
  "$top/scripts/build.sh" release pxedust >/dev/null
fi
for tool in wrk; do command -v "$tool" >/dev/null || { echo "run.sh: $tool not installed (scripts/install-deps.sh --bench)" >&2; exit 2; }; done
if ss -Htln "sport = :$port" | grep -q .; then
  echo "run.sh: 127.0.0.1:$port is in use; the bench needs it free" >&2
  exit 2
fi
clk_tck=$(getconf CLK_TCK)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

work=$(mktemp -d /tmp/pxedust-http-bench.XXXXXX)
chmod 755 "$work"   # nginx's and lighttpd's workers run as nobody and must traverse it
root=$work/root
mkdir -m 755 "$root"
results=$work/results.tsv
: >"$results"
server_pid=""

childrenOf() { cat /proc/"$1"/task/*/children 2>/dev/null || true; }
alive() {
  local s
  s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $s && ${s:0:1} != Z ]]
}
stopServer() {
  [[ -z $server_pid ]] && return 0
  local pid=$server_pid i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  server_pid=""
}
cleanup() {
  stopServer
  [[ ${PXD_BENCH_KEEP:-0} == 1 ]] && say "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "making a ${size_mib} MiB random initrd.img in $root"
head -c $((size_mib << 20)) /dev/urandom >"$root/initrd.img"
chmod 644 "$root/initrd.img"

cat >"$work/pxedust.toml" <<EOF2
[log]
level = "warn"
[daemon]
state_dir = "$work/pxedust-state"
[storage]
dir = "$work/pxedust-store"
[http]
listen = ["127.0.0.1:$port"]
root = "$root"
max_connections_per_client = 4096   # every wrk connection comes from 127.0.0.1
EOF2
mkdir -p "$work/nginx-tmp" "$work/lighttpd"
chown nobody:nogroup "$work/lighttpd"   # lighttpd opens its log after dropping to nobody
cat >"$work/nginx.conf" <<EOF2
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  keepalive_timeout 60;
  default_type application/octet-stream;
  client_body_temp_path $work/nginx-tmp/body;
  proxy_temp_path $work/nginx-tmp/proxy;
  fastcgi_temp_path $work/nginx-tmp/fastcgi;
  uwsgi_temp_path $work/nginx-tmp/uwsgi;
  scgi_temp_path $work/nginx-tmp/scgi;
  server { listen 127.0.0.1:$port; root $root; }
}
EOF2
cat >"$work/lighttpd.conf" <<EOF2
server.document-root = "$root"
server.bind = "127.0.0.1"
server.port = $port
server.pid-file = "$work/lighttpd/lighttpd.pid"
server.errorlog = "$work/lighttpd/error.log"
server.username = "nobody"
server.groupname = "nogroup"
server.max-fds = 16384
server.max-connections = 4096
server.max-keep-alive-requests = 1000000
server.network-backend = "sendfile"
mimetype.assign = ( "" => "application/octet-stream" )
EOF2

serverCmd() {
  case $1 in
    pxedust) echo "$pxedust_bin serve --config $work/pxedust.toml" ;;
    nginx) echo "nginx -c $work/nginx.conf -g 'daemon off;'" ;;
    lighttpd) echo "lighttpd -D -f $work/lighttpd.conf" ;;
  esac
}
serverVersion() {
  case $1 in
    pxedust) "$pxedust_bin" version 2>/dev/null | head -n1 ;;
    nginx) nginx -v 2>&1 | head -n1 ;;
    lighttpd) lighttpd -v 2>&1 | head -n1 ;;
  esac
}
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
startServer() {
  local name=$1 i
  bash -c "exec $(serverCmd "$name")" >"$work/$name.out" 2>&1 &   # exec: $! is the server's PID
  server_pid=$!
  for ((i = 0; i < 100; i++)); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/initrd.img" 2>/dev/null; then return 0; fi
    alive "$server_pid" || break
    sleep 0.1
  done
  say "$name did not start; its output:"
  tail -n 20 "$work/$name.out" >&2 || true
  stopServer
  return 1
}

for s in "${server_list[@]}"; do
  case $s in
    nginx|lighttpd) command -v "$s" >/dev/null || { echo "run.sh: $s not installed (scripts/install-deps.sh --bench)" >&2; exit 2; } ;;
    pxedust) [[ -x $pxedust_bin ]] || { echo "run.sh: no pxedust binary at $pxedust_bin" >&2; exit 2; } ;;
  esac
  say "$s: $(serverVersion "$s")"
done
say "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $runs run(s) of ${duration}s per row"

for ((run = 1; run <= runs; run++)); do
  say "run $run of $runs (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  for row in "${rows[@]}"; do
    IFS='|' read -r id label conns header <<<"$row"
    for s in "${server_list[@]}"; do
      startServer "$s" || { printf '%s\t%s\t%s\tfailed\n' "$s" "$id" "$run" >>"$results"; continue; }
      cat "$root/initrd.img" >/dev/null   # in the page cache for every server alike
      threads=$((conns < 2 ? 1 : 2))
      args=(-t "$threads" -c "$conns" -d "${duration}s" --latency --timeout 30s)
      [[ -n $header ]] && args+=(-H "$header")
      before=$(procTicks "$server_pid")
      out=$(wrk "${args[@]}" "http://127.0.0.1:$port/initrd.img" 2>&1) || true
      after=$(procTicks "$server_pid")
      stopServer
      printf '%s\n' "$out" >"$work/wrk-$s-$id-$run.txt"
      cpu=$(awk -v a="$before" -v b="$after" -v t="$clk_tck" 'BEGIN { printf "%.3f", (b - a) / t }')
      printf '%s\t%s\t%s\t%s\t%s\n' "$s" "$id" "$run" "$cpu" "$work/wrk-$s-$id-$run.txt" >>"$results"
      say "  $s $id run $run: $(grep -E 'Transfer/sec' <<<"$out" | xargs) cpu ${cpu}s"
    done
  done
done

python3 "$top/bench/http/report.py" "$results" "$duration" "${rows[@]}"
