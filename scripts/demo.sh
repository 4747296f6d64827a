#!/usr/bin/env bash
# Sets up pxedust on a fresh Debian 12 machine (packages, release build) and runs the demo: two
# diskless QEMU machines boot their root disk over iSCSI from one shared base image, inside a private
# network namespace (scripts/demo_vms.py). Everything it makes is removed on exit or Ctrl-C.
#   scripts/demo.sh           the VM demo (needs root: namespaces and tap devices)
#   scripts/demo.sh --tftp    the small loopback TFTP demo instead (no root, no VMs)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top"/scripts/install-deps.sh
"$top"/scripts/build.sh release pxedust   # the daemon and CLI only; scripts/test.sh builds the tests
if [[ "${1:-}" == "--tftp" ]]; then
  shift
  exec "$top"/build/release/bin/pxedust demo "$@"
fi
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
exec $SUDO env PXEDUST_BIN="$top/build/release/bin/pxedust" /usr/bin/python3 "$top"/scripts/demo_vms.py "$@"
