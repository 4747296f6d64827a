#!/usr/bin/env bash
# Sets up pxedust on a fresh Debian 12 machine (packages, release build) and runs the built-in
# demo: a TFTP server on loopback with per-host files. Ctrl-C stops it and removes what it wrote.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top"/scripts/install-deps.sh
"$top"/scripts/build.sh release
exec "$top"/build/release/bin/pxedust demo "$@"
