#!/usr/bin/env bash
# bench/dhcp/run.sh: pxedust's DHCP server against Kea, dnsmasq and ISC dhcpd, under Kea's perfdhcp.
#
# A private lab: two network namespaces made by this script (server, client) joined by one veth
# pair, on a made-up subnet 10.216.0.0/14 that exists only inside them (server 10.216.0.1; the
# perfdhcp instances 10.216.0.2, .3, ...; pool 10.217.0.1-10.219.255.254, 196,606 addresses, the
# same for every server). Nothing touches the machine's own interfaces; the namespaces (named
# after this script's PID) and everything started in them are removed on exit, Ctrl-C included.
# Each measurement starts the server afresh on an empty (or prefilled) lease file in a temp dir,
# waits until one probe exchange completes, runs perfdhcp (full DORA, many clients), stops it.
# Rows, each run --runs times, servers interleaved within a run (median [min-max], ratio to pxedust):
#   clean   highest perfdhcp -r at which < 0.1% of exchanges are lost (geometric ladder + bisection)
#   peak    -r 50000 (unbounded): ACKs per second and the share of exchanges lost
#   cpu     server CPU-s per 1000 leases at a fixed rate every server sustains (--cpu-rate)
#   growth  the peak rate again with 20k and 100k active leases already in the lease file
#   static  clean and peak rates when every client has a static reservation (--reservations, 10,000):
#           each server gets the same MAC -> IP list in its own form, perfdhcp's MACs are exactly those
# Server CPU: utime+stime from /proc/PID/stat (all threads) before/after. strace counts each
# server's fsync/fdatasync calls per ACK once (who makes a lease durable before its ACK).
#
# usage: bench/dhcp/run.sh [--runs N] [--servers pxedust,kea,dnsmasq,dhcpd] [--quick]
#          [--period S] [--clients N] [--instances K] [--mode relay|broadcast] [--cpu-rate R]
#          [--prefill 20000,100000] [--pool N] [--pxedust BINARY] [--baseline BINARY]
#          [--lease-dir DIR] [--reservations N] [--rows clean,peak,cpu,growth,static] [--no-build] [--no-deps] [--no-strace]
# --baseline adds the server "pxedust-base": another pxedust binary (e.g. before a change), run
# interleaved with the others and set up exactly like pxedust.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/bench/dhcp
runs=""
servers="pxedust,kea,dnsmasq,dhcpd"
quick=0
period=5
clients=50000
instances=2
mode=relay
cpu_rate=200
prefill="20000,100000"
prefill_set=0
pool_size=196606
pxedust_bin=""
baseline_bin=""
rows="clean,peak,cpu,growth,static"
reservations=10000
reserve=0   # reservations in the config of the server being started (the static row sets it)
build_pxedust=1
install_deps=1
use_strace=1
peak_rate=50000
lease_dir=/tmp

usage() {
  sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}
while (($#)); do
  case $1 in
    --runs) runs=${2:?--runs N}; shift 2 ;;
    --servers) servers=${2:?--servers LIST}; shift 2 ;;
    --quick) quick=1; shift ;;
    --period) period=${2:?--period S}; shift 2 ;;            # perfdhcp -p of every load run
    --clients) clients=${2:?--clients N}; shift 2 ;;         # perfdhcp -R, split over the instances
    --instances) instances=${2:?--instances K}; shift 2 ;;   # parallel perfdhcp processes (relay mode)
    --mode) mode=${2:?--mode relay|broadcast}; shift 2 ;;
    --cpu-rate) cpu_rate=${2:?--cpu-rate R}; shift 2 ;;
    --pool) pool_size=${2:?--pool N}; shift 2 ;;             # addresses in the pool (max 196606)
    --prefill) prefill=${2?--prefill LIST}; prefill_set=1; shift 2 ;;       # "" = no growth row
    --pxedust) pxedust_bin=${2:?--pxedust BINARY}; build_pxedust=0; shift 2 ;;
    --baseline) baseline_bin=${2:?--baseline BINARY}; shift 2 ;;
    --lease-dir) lease_dir=${2:?--lease-dir DIR}; shift 2 ;;   # where state dirs and lease files go
    --reservations) reservations=${2:?--reservations N}; shift 2 ;;
    --rows) rows=${2:?--rows LIST}; shift 2 ;;
    --no-build) build_pxedust=0; shift ;;   # use build/release/bin/pxedust as it is
    --no-deps) install_deps=0; shift ;;     # skip scripts/install-deps.sh --bench
    --no-strace) use_strace=0; shift ;;
    -h|--help) usage 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; usage ;;
  esac
done
if ((quick)); then
  [[ -z $runs ]] && runs=1
  period=2
  ((prefill_set)) || prefill="20000"
fi
[[ -z $runs ]] && runs=3
for v in runs period clients instances cpu_rate pool_size reservations; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --${v/_/-} wants a positive number" >&2; exit 2; }
done
[[ $mode == relay || $mode == broadcast ]] || { echo "run.sh: --mode relay|broadcast" >&2; exit 2; }
if [[ $mode == broadcast && $instances != 1 ]]; then
  echo "run.sh: broadcast mode runs one perfdhcp (it binds port 68 on the interface)" >&2; exit 2
fi
[[ -n $baseline_bin ]] && servers+=",pxedust-base"
IFS=, read -r -a server_list <<<"$servers"
for s in "${server_list[@]}"; do
  case $s in pxedust|pxedust-base|kea|dnsmasq|dhcpd) ;; *) echo "run.sh: unknown server '$s'" >&2; exit 2 ;; esac
done
IFS=, read -r -a prefill_list <<<"$prefill"
(($(id -u) == 0)) || { echo "run.sh: needs root (network namespaces)" >&2; exit 1; }

say() { printf '[dhcp-bench] %s\n' "$*" >&2; }

# ---- dependencies and builds ----------------------------------------------------------------------
if ((install_deps)); then
  "$top/scripts/install-deps.sh" --bench >&2
fi
command -v perfdhcp >/dev/null || { echo "run.sh: perfdhcp not found (package kea-admin)" >&2; exit 1; }
bench_dir=$top/build/bench
mkdir -p "$bench_dir"
want() { [[ ",$servers," == *",$1,"* ]]; }
pxedust_note=""
if [[ -z $pxedust_bin ]]; then
  pxedust_bin=$top/build/release/bin/pxedust
  if want pxedust && ((build_pxedust)); then
    say "building pxedust (scripts/build.sh release, log in $bench_dir/pxedust-dhcp-build.log)"
    if ! "$top/scripts/build.sh" release >"$bench_dir/pxedust-dhcp-build.log" 2>&1; then
      pxedust_note="build failed (scripts/build.sh release; see build/bench/pxedust-dhcp-build.log)"
      grep -iE 'error|fail' "$bench_dir/pxedust-dhcp-build.log" | tail -n 5 | sed 's/^/    /' >&2 || true
    fi
  fi
fi
if want pxedust && [[ -z $pxedust_note && ! -x $pxedust_bin ]]; then
  pxedust_note="not built: $pxedust_bin does not exist"
fi
declare -A bins=([pxedust]=$pxedust_bin [pxedust-base]=${baseline_bin:-none} [kea]=/usr/sbin/kea-dhcp4 [dnsmasq]=/usr/sbin/dnsmasq [dhcpd]=/usr/sbin/dhcpd)
if ((use_strace)) && ! command -v strace >/dev/null; then
  say "strace not found: no fsync count"
  use_strace=0
fi
clk_tck=$(getconf CLK_TCK)

# ---- the lab --------------------------------------------------------------------------------------
tag=$$
ns_s=pxdb${tag}s
ns_c=pxdb${tag}c
if_s=pxbs${tag}
if_c=pxbc${tag}
srv_ip=10.216.0.1
prefix=14
netmask=255.252.0.0
subnet=10.216.0.0
pool_first=10.217.0.1
ipOf() { echo "$(($1 >> 24 & 255)).$(($1 >> 16 & 255)).$(($1 >> 8 & 255)).$(($1 & 255))"; }
((pool_size <= 196606)) || { echo "run.sh: --pool at most 196606" >&2; exit 2; }
pool_last=$(ipOf $(( (10 << 24 | 217 << 16 | 1) + pool_size - 1 )))
subnet_id_pxedust=$(( (10 << 24) | (216 << 16) ))   # pxedust's subnet id is the network address
[[ -d $lease_dir && -w $lease_dir ]] || { echo "run.sh: --lease-dir $lease_dir is not a writable directory" >&2; exit 2; }
work=$(mktemp -d "$lease_dir/pxedust-dhcp-bench.XXXXXX")
# pxedust's state files (daemon.json, hosts.json) go where a real system has /run: on tmpfs, and
# private to this run (never the machine's own /run/pxedust).
run_dir=$(mktemp -d /dev/shm/pxedust-dhcp-bench.XXXXXX)
results=$work/results.jsonl
: >"$results"
server_pid=""
host67_before=$(ss -Hlunp 'sport = :67' 2>/dev/null | sort || true)

inNs() { ip netns exec "$@"; }
# A process we started stays a zombie (and kill -0 succeeds) until we wait for it; look at its state.
alive() {
  local s
  s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $s && ${s:0:1} != Z ]]
}

stopServer() {
  [[ -z $server_pid ]] && return 0
  local pid=$server_pid i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  server_pid=""
}

cleanup() {
  stopServer
  local ns pid
  for ns in "$ns_s" "$ns_c"; do
    # Only processes this script started live in its namespaces.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  if [[ -n ${PXD_BENCH_KEEP:-} ]]; then say "kept $work"; else rm -rf "$work"; fi
  rm -rf "$run_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "lab: namespaces $ns_s/$ns_c, veth $if_s/$if_c, $subnet/$prefix (only inside them)"
ip netns add "$ns_s"
ip netns add "$ns_c"
ip link add "$if_s" netns "$ns_s" type veth peer name "$if_c" netns "$ns_c"
for ns in "$ns_s" "$ns_c"; do inNs "$ns" ip link set lo up; done
inNs "$ns_s" ip link set "$if_s" up
inNs "$ns_c" ip link set "$if_c" up
inNs "$ns_s" ip addr add "$srv_ip/$prefix" dev "$if_s"
client_ips=()
for ((k = 0; k < instances; k++)); do
  client_ips+=("10.216.0.$((2 + k))")
  inNs "$ns_c" ip addr add "${client_ips[k]}/$prefix" dev "$if_c"
done

# ---- the servers ----------------------------------------------------------------------------------
# Every server: the same subnet and pool, 1 h leases, the router option, leases on disk
# (the temp dir is on the filesystem of /tmp; see the header line), logging off or warnings only.
writeConfig() {   # server state-dir
  local name=${1%-base} d=$2
  case $name in
    pxedust) cat >"$d/pxedust.toml" <<EOF
[storage]
dir = "$d"
[daemon]
state_dir = "$run_dir/$1"
[log]
level = "warn"
[dhcp]
interfaces = ["$if_s"]
[[dhcp.subnet]]
subnet = "$subnet/$prefix"
pools = ["$pool_first-$pool_last"]
routers = "$srv_ip"
lease_time = 3600
EOF
      reservationList | awk -F, '{ printf "[[host]]\nname = \"r%d\"\nmac = \"%s\"\nip = \"%s\"\n", NR, $1, $2 }' >>"$d/pxedust.toml"
      ;;
    kea)
      # memfile with persist=true: every lease change is appended to the CSV file (Kea's
      # crash-safe set-up); udp sockets for relayed traffic, raw for directly connected clients.
      local socket=udp
      [[ $mode == broadcast ]] && socket=raw
      local resv
      resv=$(reservationList | awk -F, '{ printf "%s{ \"hw-address\": \"%s\", \"ip-address\": \"%s\" }", (NR > 1 ? ",\n" : ""), $1, $2 }')
      cat >"$d/kea.json" <<EOF
{ "Dhcp4": {
  "interfaces-config": { "interfaces": [ "$if_s" ], "dhcp-socket-type": "$socket" },
  "lease-database": { "type": "memfile", "persist": true, "name": "$d/kea-leases4.csv", "lfc-interval": 3600 },
  "valid-lifetime": 3600,
  "subnet4": [ { "id": 1, "subnet": "$subnet/$prefix", "pools": [ { "pool": "$pool_first - $pool_last" } ],
                 "option-data": [ { "name": "routers", "data": "$srv_ip" } ],
                 "reservations": [ $resv ] } ],
  "loggers": [ { "name": "kea-dhcp4", "output_options": [ { "output": "$d/kea.log" } ], "severity": "WARN" } ]
} }
EOF
      ;;
    dhcpd)
      # ping-check off: no host answers in the lab, so every OFFER would wait ping-timeout (1 s).
      cat >"$d/dhcpd.conf" <<EOF
default-lease-time 3600;
max-lease-time 3600;
authoritative;
ping-check false;
subnet $subnet netmask $netmask {
  range $pool_first $pool_last;
  option routers $srv_ip;
}
EOF
      reservationList | awk -F, '{ printf "host r%d { hardware ethernet %s; fixed-address %s; }\n", NR, $1, $2 }' >>"$d/dhcpd.conf"
      [[ -e $d/dhcpd.leases ]] || : >"$d/dhcpd.leases"
      ;;
    dnsmasq) reservationList >"$d/dnsmasq.hosts" ;;
  esac
}

# The static reservations (when $reserve > 0), one "mac,ip" per line: perfdhcp instance k with -R n
# and base MAC 00:0c:01:(k+1):00:00 draws its MACs from base + 0 .. n-1 (it adds a random number
# below n to the last octets), so these are exactly the MACs it sends; the addresses start at
# 10.216.64.1, outside the pool.
reservationList() {
  ((reserve > 0)) || return 0
  local n=$(( (reserve + instances - 1) / instances ))
  awk -v inst="$instances" -v n="$n" 'BEGIN {
    a = 10 * 16777216 + 216 * 65536 + 64 * 256 + 1
    for (k = 0; k < inst; k++) for (j = 0; j < n; j++) {
      ip = a + k * n + j
      printf "00:0c:01:%02x:%02x:%02x,%d.%d.%d.%d\n", k + 1, int(j / 256), j % 256,
        int(ip / 16777216), int(ip / 65536) % 256, int(ip / 256) % 256, ip % 256
    } }'
}

serverCmd() {   # server state-dir
  local d=$2
  case $1 in
    pxedust|pxedust-base) echo "${bins[$1]} serve --config $d/pxedust.toml" ;;
    kea) echo "env KEA_PIDFILE_DIR=$d KEA_LOCKFILE_DIR=$d KEA_LFC_EXECUTABLE=/bin/false ${bins[kea]} -c $d/kea.json" ;;
    # DHCP only (--port=0: no DNS). --no-ping: as for dhcpd. --dhcp-lease-max: default 1000.
    dnsmasq) echo "${bins[dnsmasq]} --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --port=0" \
                  "--interface=$if_s --bind-interfaces --dhcp-range=$pool_first,$pool_last,$netmask,1h" \
                  "--dhcp-option=3,$srv_ip --dhcp-authoritative --no-ping --dhcp-lease-max=1000000" \
                  "--dhcp-leasefile=$d/dnsmasq.leases --dhcp-hostsfile=$d/dnsmasq.hosts --pid-file= --user=root" \
                  "--log-facility=$d/dnsmasq.log" ;;
    dhcpd) echo "${bins[dhcpd]} -4 -f -d -cf $d/dhcpd.conf -lf $d/dhcpd.leases -pf $d/dhcpd.pid $if_s" ;;
  esac
}

leaseFile() {   # server state-dir
  case ${1%-base} in
    pxedust) echo "$2/dhcp.leases" ;;
    kea) echo "$2/kea-leases4.csv" ;;
    dnsmasq) echo "$2/dnsmasq.leases" ;;
    dhcpd) echo "$2/dhcpd.leases" ;;
  esac
}

# perfdhcp: relay mode sends from a client address as a relay (giaddr) to the server's address
# and port 67; broadcast mode sends from port 68 on the client veth with the broadcast flag set.
perfArgs() {   # instance rate clients
  local k=$1 rate=$2 n=$3
  local mac
  mac=$(printf '00:0c:01:%02x:00:00' "$((k + 1))")
  if [[ $mode == relay ]]; then
    echo "-4 -l ${client_ips[k]} -r $rate -R $n -b mac=$mac -p $period -W 1000000 $srv_ip"
  else
    echo "-4 -l $if_c -B -r $rate -R $n -b mac=$mac -p $period -W 1000000"
  fi
}

# "do_sent do_recv ra_sent ra_recv" summed over perfdhcp outputs
perfCounts() {
  awk '/Statistics for: DISCOVER-OFFER/ { s = "do" } /Statistics for: REQUEST-ACK/ { s = "ra" }
       /^sent packets:/ { sent[s] += $3 } /^received packets:/ { recv[s] += $3 }
       END { printf "%d %d %d %d\n", sent["do"], recv["do"], sent["ra"], recv["ra"] }' "$@"
}

probe() {
  local out=$work/probe.out
  if [[ $mode == relay ]]; then
    inNs "$ns_c" timeout 10 perfdhcp -4 -l "${client_ips[0]}" -r 20 -n 2 -R 1 -b mac=02:99:00:00:00:01 -p 2 \
      -W 500000 "$srv_ip" >"$out" 2>&1 || true
  else
    inNs "$ns_c" timeout 10 perfdhcp -4 -l "$if_c" -B -r 20 -n 2 -R 1 -b mac=02:99:00:00:00:01 -p 2 \
      -W 500000 >"$out" 2>&1 || true
  fi
  local c
  read -r -a c <<<"$(perfCounts "$out")"
  ((c[3] > 0))
}

# UDP RcvbufErrors inside a namespace (its own counters): datagrams lost because a socket's receive
# buffer was full: in the server namespace the server fell behind, in the client one perfdhcp did.
rcvbufErrors() {
  inNs "$1" awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1 } else print $c }' /proc/net/snmp
}

procTicks() {
  local f
  f=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  read -r -a f <<<"$f"
  echo $((f[11] + f[12]))
}

# Starts server $1 on a fresh state dir (with $2 prefilled leases); sets server_pid and state.
state=""
startServer() {
  local name=$1 fill=$2 cmd i
  state=$work/state-$name
  rm -rf "$state"
  mkdir -p "$state"
  if ((fill > 0)); then
    python3 "$here/leasefiles.py" "${name%-base}" "$(leaseFile "$name" "$state")" "$fill" "$pool_first" "$subnet_id_pxedust"
  fi
  writeConfig "$name" "$state"
  cmd=$(serverCmd "$name" "$state")
  # shellcheck disable=SC2086  # a plain word list built above
  ip netns exec "$ns_s" $cmd >"$state/server.log" 2>&1 &
  server_pid=$!
  for ((i = 0; i < 120; i++)); do
    if ! alive "$server_pid"; then
      wait "$server_pid" 2>/dev/null || true
      server_pid=""
      say "$name: FAILED TO START ($cmd); its output:"
      tail -n 15 "$state/server.log" | sed 's/^/    /' >&2
      return 1
    fi
    probe && return 0
    sleep 0.25
  done
  say "$name: no probe exchange completed within ~60 s ($cmd)"
  tail -n 15 "$state/server.log" | sed 's/^/    /' >&2
  stopServer
  return 1
}

# One load run: starts the server, runs the perfdhcp instances at `rate` in total, stops the
# server; prints one JSON object and appends it to $results with the row name.
loadRun() {   # server row run rate fill
  local name=$1 row=$2 run=$3 rate=$4 fill=$5 t0 t1 k per n pids=() outs=() c cl=0 f
  startServer "$name" "$fill" || return 1
  per=$(( (rate + instances - 1) / instances ))
  n=$(( (clients + instances - 1) / instances ))
  ((reserve > 0)) && n=$(( (reserve + instances - 1) / instances ))
  t0=$(procTicks "$server_pid")
  local sd0 cd0 sd1 cd1
  sd0=$(rcvbufErrors "$ns_s")
  cd0=$(rcvbufErrors "$ns_c")
  for ((k = 0; k < instances; k++)); do
    # bash's time keyword: perfdhcp's own user+sys CPU, to see when the load generator saturates
    # shellcheck disable=SC2046
    ( TIMEFORMAT='%U %S'; { time inNs "$ns_c" perfdhcp $(perfArgs "$k" "$per" "$n") >"$work/perf$k.out" 2>&1; } \
        2>"$work/perf$k.time" ) &
    pids+=($!)
    outs+=("$work/perf$k.out")
  done
  for p in "${pids[@]}"; do wait "$p" || true; done
  t1=$(procTicks "$server_pid")
  sd1=$(rcvbufErrors "$ns_s")
  cd1=$(rcvbufErrors "$ns_c")
  stopServer
  for ((k = 0; k < instances; k++)); do
    f=$(tail -n 1 "$work/perf$k.time" 2>/dev/null || echo "0 0")
    cl=$(awk -v a="$cl" -v l="$f" 'BEGIN { split(l, x, " "); printf "%.3f", a + x[1] + x[2] }')
  done
  read -r -a c <<<"$(perfCounts "${outs[@]}")"
  for ((k = 0; k < instances; k++)); do cp "$work/perf$k.out" "$work/perf-$name-$row-$run-$rate-$fill-$k.out"; done
  local json
  json=$(printf '{"server":"%s","row":"%s","run":%d,"rate":%d,"fill":%d,"period":%d,"do_sent":%d,"do_recv":%d,"ra_sent":%d,"ra_recv":%d,"cpu_s":%s,"client_cpu_s":%s,"srv_rcvbuf":%d,"cli_rcvbuf":%d}' \
    "$name" "$row" "$run" "$rate" "$fill" "$period" "${c[0]}" "${c[1]}" "${c[2]}" "${c[3]}" \
    "$(awk -v a="$t0" -v b="$t1" -v h="$clk_tck" 'BEGIN { printf "%.3f", (b - a) / h }')" "$cl" \
    "$((sd1 - sd0))" "$((cd1 - cd0))")
  echo "$json" >>"$results"
  echo "$json"
}

lossOf() {   # json -> loss fraction; ACK/s
  python3 -c 'import json,sys; j=json.loads(sys.argv[1]); s=j["do_sent"]; print("%.6f %.1f" % ((s - j["ra_recv"]) / s if s else 1.0, j["ra_recv"] / j["period"]))' "$1"
}

# The clean rate: double from 125/s while < 0.1% is lost, then bisect twice between the last rate
# that passed and the first that failed. A failed step is tried once more (the machine is shared).
cleanRate() {   # server run [row]
  local name=$1 run=$2 crow=${3:-clean} rate=125 pass=0 fail=0 j l try ok steps=""
  stepOk() {
    local r=$1
    for try in 1 2; do
      j=$(loadRun "$name" "$crow-step" "$run" "$r" 0) || return 2
      read -r -a l <<<"$(lossOf "$j")"
      steps+=" $r:${l[0]}"
      awk -v x="${l[0]}" 'BEGIN { exit !(x < 0.001) }' && return 0
    done
    return 1
  }
  while ((rate <= 64000)); do
    stepOk "$rate" && ok=0 || ok=$?
    ((ok == 2)) && return 1
    if ((ok == 0)); then pass=$rate; rate=$((rate * 2)); else fail=$rate; break; fi
  done
  if ((fail > 0 && pass > 0)); then
    local i mid
    for i in 1 2; do
      mid=$(( (pass + fail) / 2 ))
      stepOk "$mid" && ok=0 || ok=$?
      ((ok == 2)) && return 1
      if ((ok == 0)); then pass=$mid; else fail=$mid; fi
    done
  fi
  printf '{"server":"%s","row":"%s","run":%d,"clean":%d,"steps":"%s"}\n' "$name" "$crow" "$run" "$pass" "${steps# }" >>"$results"
  say "  $name $crow run $run: $pass/s  (rate:loss$steps)"
}

# This run's clean rate of a server (0 if the clean row did not run).
cleanOf() {   # server row run
  local v
  v=$(grep -F "\"server\":\"$1\",\"row\":\"$2\",\"run\":$3," "$results" | sed -n 's/.*"clean":\([0-9]*\).*/\1/p' | tail -n 1)
  echo "${v:-0}"
}

# The peak: the most exchanges per second a server completes, whatever the offered rate. A flood
# (-r 50000) alone mostly measures perfdhcp: on 2 cores the generator then takes the CPU the server
# needs. So the offered rates are 1.5x and 3x this run's clean rate (a fixed ladder without one) and
# the flood; the report takes the best. Growth runs only the two multiples (with a lease file to
# load first, a flood adds nothing but time).
peakSweep() {   # server row run fill clean-rate
  local name=$1 prow=$2 run=$3 fill=$4 base=$5 rt j l out="" rates=()
  if ((base > 0)); then rates=($((base * 3 / 2)) $((base * 3))); else rates=(4000 16000); fi
  [[ $prow == growth ]] || rates+=("$peak_rate")
  for rt in "${rates[@]}"; do
    ((rt > peak_rate)) && rt=$peak_rate
    j=$(loadRun "$name" "$prow" "$run" "$rt" "$fill") || return 1
    read -r -a l <<<"$(lossOf "$j")"
    out+=" $rt:${l[1]}"
    ((rt == peak_rate)) && break
  done
  say "  $name $prow run $run${fill:+ (fill $fill)}: offered:ACK/s$out"
}

fsyncCount() {   # server: fsync-family calls per ACK at $cpu_rate for $period s, under strace
  local name=$1 st=$work/strace-$name.txt spid c
  startServer "$name" 0 || return 0
  strace -f -c -e trace=fsync,fdatasync,sync_file_range,msync,write,pwrite64 -o "$st" -p "$server_pid" 2>/dev/null &
  spid=$!
  sleep 1
  # shellcheck disable=SC2046
  inNs "$ns_c" perfdhcp $(perfArgs 0 "$cpu_rate" "$clients") >"$work/perf-strace.out" 2>&1 || true
  kill -INT "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  stopServer
  read -r -a c <<<"$(perfCounts "$work/perf-strace.out")"
  awk -v n="$name" -v acks="${c[3]}" '
    # strace -c columns: % time, seconds, usecs/call, calls, [errors], syscall
    $NF ~ /^(fsync|fdatasync|sync_file_range|msync)$/ { s += (NF == 6) ? $(NF-2) : $(NF-1) }
    $NF ~ /^(write|pwrite64)$/ { w += (NF == 6) ? $(NF-2) : $(NF-1) }
    END { printf "{\"server\":\"%s\",\"row\":\"fsync\",\"acks\":%d,\"syncs\":%d,\"writes\":%d}\n", n, acks, s, w }' \
    "$st" >>"$results"
}

# ---- the runs -------------------------------------------------------------------------------------
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
fs_type=$(df -T "$work" | awk 'NR == 2 { print $2 }')
say "load average before: $load_before; $(nproc) CPUs; lease files on $fs_type; ${runs} run(s), perfdhcp -p $period"
active=()
declare -A skipped=()
for name in "${server_list[@]}"; do
  if [[ $name == pxedust && -n $pxedust_note ]]; then skipped[$name]=$pxedust_note; say "pxedust: SKIPPED, $pxedust_note"; continue; fi
  if [[ ! -x ${bins[$name]} ]]; then skipped[$name]="${bins[$name]} not installed"; say "$name: SKIPPED (${bins[$name]} missing)"; continue; fi
  say "$name: checking that it starts and answers in the lab"
  if ! startServer "$name" 0; then skipped[$name]="did not start or answer in the lab"; continue; fi
  stopServer
  active+=("$name")
done

for ((r = 1; r <= runs; r++)); do
  say "run $r of $runs (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  row() { [[ ",$rows," == *",$1,"* ]]; }
  row clean && for name in "${active[@]}"; do cleanRate "$name" "$r" || say "  $name clean run $r: failed"; done
  row peak && for name in "${active[@]}"; do peakSweep "$name" peak "$r" 0 "$(cleanOf "$name" clean "$r")" || true; done
  row cpu && for name in "${active[@]}"; do
    j=$(loadRun "$name" cpu "$r" "$cpu_rate" 0) || continue
    read -r -a l <<<"$(lossOf "$j")"
    say "  $name cpu run $r at $cpu_rate/s: ${l[1]} ACK/s, lost ${l[0]}"
  done
  for fill in "${prefill_list[@]}"; do
    [[ -z $fill ]] || ! row growth && continue
    for name in "${active[@]}"; do peakSweep "$name" growth "$r" "$fill" "$(cleanOf "$name" clean "$r")" || true; done
  done
  if row static; then
    reserve=$reservations
    for name in "${active[@]}"; do cleanRate "$name" "$r" static-clean || say "  $name static-clean run $r: failed"; done
    for name in "${active[@]}"; do peakSweep "$name" static-peak "$r" 0 "$(cleanOf "$name" static-clean "$r")" || true; done
    reserve=0
  fi
done
if ((use_strace)); then
  for name in "${active[@]}"; do say "$name: counting fsync calls under strace"; fsyncCount "$name"; done
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

host67_after=$(ss -Hlunp 'sport = :67' 2>/dev/null | sort || true)
host_note="nothing new listens on port 67 outside the lab"
[[ $host67_after != "$host67_before" ]] && host_note="WARNING: port 67 listeners outside the lab changed: $host67_after"

skipped_txt=""
for k in "${!skipped[@]}"; do skipped_txt+="$k: ${skipped[$k]}"$'\n'; done
python3 "$here/report.py" "$results" "${active[*]}" "$runs" "$mode" "$period" "$clients" "$instances" "$cpu_rate" "$pool_size" \
  "$load_before" "$load_after" "$fs_type" "$skipped_txt" "$host_note" "$reservations"
