#!/usr/bin/env bash
# bench/e2e/run.sh: diskless boots through pxedust and through a reference stack (dnsmasq for DHCP and
# TFTP, tgt for iSCSI over a full copy of the image per host), side by side, in private namespaces.
#   vm1    one QEMU VM (tests/e2e IscsiRoot's: iPXE, kernel + client initramfs, iSCSI root), QEMU start
#          to the marker, median of --runs, stacks interleaved
#   vm4    four VMs powered on together: until the last marker
#   storm  build/.../storm_load: --clients simulated clients at once (DHCP, TFTP of a 30 MB initrd,
#          iSCSI read of the first --read-mib of each one's disk): until all are done, failures;
#          the clients' TFTP is iPXE's (blksize 1432, lock-step)
#   storm-uefi  the same storm with UEFI firmware's TFTP (EDK2 asks windowsize 4)
#   storm-http  the same storm with the initrd over HTTP (one GET, as iPXE's `initrd http://...`; pxedust's
#          [http], nginx beside the reference; not in the default rows): next to `storm`, TFTP s / HTTP s
#   storm-tftp  the storm's DHCP and lock-step TFTP only, against dnsmasq alone (not in the default
#          rows): server CPU per DATA block; --perf-dir/--strace-dir record the servers meanwhile
# bench/e2e/README.md explains the setup and keeps the last report. Needs root.
#
# usage: bench/e2e/run.sh [--quick] [--rows vm1,vm4,storm,storm-uefi,storm-http,storm-tftp] [--runs N]
#                         [--storm-runs N]
#                         [--clients N] [--read-mib N] [--refs ref-tuned,ref-plain] [--keep DIR] [--json FILE]
#                         [--perf-dir DIR] [--strace-dir DIR]
#                         [--build-dir DIR] [--no-build] [--no-deps] [-- more bench_e2e.py options]
#   --quick       one run of every row per stack (default: 3 VM runs, 3 storms per stack)
#   --build-dir   where pxedust and storm_load are built (default build/release)
#   --no-build    use the binaries in --build-dir as they are
#   --no-deps     skip scripts/install-deps.sh --bench
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build_dir=$top/build/release
build=1 deps=1
pass=()
usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while (($#)); do
  case $1 in
    --quick) pass+=(--runs 1 --storm-runs 1); shift ;;
    --rows|--runs|--storm-runs|--clients|--read-mib|--refs|--keep|--json|--perf-dir|--strace-dir)
      pass+=("$1" "${2:?$1 wants a value}"); shift 2 ;;
    --build-dir) build_dir=$(realpath -m "${2:?--build-dir DIR}"); shift 2 ;;
    --no-build) build=0; shift ;;
    --no-deps) deps=0; shift ;;
    --) shift; pass+=("$@"); break ;;
    -h|--help) usage 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; usage ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "run.sh: run as root (namespaces, tap devices, tgtd, dnsmasq)" >&2; exit 1; }
say() { printf '[e2e-bench] %s\n' "$*" >&2; }

((deps)) && "$top/scripts/install-deps.sh" --bench >/dev/null
if ((build)); then
  if [[ ! -f $build_dir/build.ninja ]]; then
    args=(-G Ninja -S "$top" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPXEDUST_WERROR=ON)
    command -v ccache >/dev/null && args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    cmake "${args[@]}" >/dev/null
  fi
  say "building pxedust and storm_load in $build_dir"
  cmake --build "$build_dir" --target pxedust storm_load >/dev/null
fi
for b in pxedust storm_load; do
  [[ -x $build_dir/bin/$b ]] || { echo "run.sh: no $build_dir/bin/$b (is libiscsi-dev installed?)" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true   # storm_load: 3 sockets per client; tgtd, nginx: one per session
exec /usr/bin/python3 "$top/bench/e2e/bench_e2e.py" --pxedust "$build_dir/bin/pxedust" \
  --storm-load "$build_dir/bin/storm_load" "${pass[@]}"
