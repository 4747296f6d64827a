#!/usr/bin/env bash
# Sets up and runs every test pxedust has, on a fresh Debian 12 machine:
#   1. installs the Debian packages (scripts/install-deps.sh)
#   2. builds three flavours with warnings as errors: release, asan (ASan + UBSan), fuzz (clang)
#   3. runs each libFuzzer harness for a bounded time (FUZZ_SECONDS, default 60)
#   4. runs the unit tests on the release build, then unit + integration tests (real clients:
#      curl, tftp-hpa, atftp) on the sanitizer build
# Exits non-zero if anything fails.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
fuzz_seconds=${FUZZ_SECONDS:-60}

scripts/install-deps.sh
scripts/build.sh release
scripts/build.sh asan
scripts/build.sh fuzz

echo "== fuzzing (${fuzz_seconds}s per harness)"
for fuzzer in build/fuzz/bin/*_fuzzer; do
  name=$(basename "$fuzzer" _fuzzer)
  corpus=$(mktemp -d)
  trap 'rm -rf "$corpus"' EXIT
  [[ -d tests/fuzz/corpus/$name ]] && cp tests/fuzz/corpus/"$name"/* "$corpus"/
  "$fuzzer" -max_total_time="$fuzz_seconds" -max_len=2048 -print_final_stats=0 "$corpus" 2>&1 | tail -n 2
  rm -rf "$corpus"
  trap - EXIT
done

echo "== unit tests (release)"
ctest --test-dir build/release -L unit -j "$(nproc)" --output-on-failure | tail -n 3
echo "== unit and integration tests (ASan + UBSan)"
ctest --test-dir build/asan -j "$(nproc)" --output-on-failure
