#!/usr/bin/env bash
# Configures and builds one flavour of pxedust into build/<flavour>:
#   release  optimized with debug info (the binary the demo and benchmarks run)
#   asan     AddressSanitizer + UndefinedBehaviorSanitizer, for the test suite
#   fuzz     clang + libFuzzer harnesses (tests/fuzz)
# Warnings are errors in every flavour built by this script.
#   scripts/build.sh FLAVOUR [TARGET...]   only these targets (e.g. `release pxedust`), else all
set -euo pipefail
flavour=${1:-release}
targets=("${@:2}")
top=$(cd "$(dirname "$0")/.." && pwd)
args=(-G Ninja -S "$top" -B "$top/build/$flavour" -DPXEDUST_WERROR=ON)
command -v ccache >/dev/null && args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
case $flavour in
  release) args+=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan) args+=(-DCMAKE_BUILD_TYPE=Debug -DPXEDUST_SANITIZE=ON) ;;
  fuzz) args+=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DPXEDUST_FUZZ=ON -DPXEDUST_TESTS=OFF
               -DCMAKE_CXX_COMPILER=clang++-14) ;;
  *) echo "usage: $0 [release|asan|fuzz] [TARGET...]" >&2; exit 2 ;;
esac
cmake "${args[@]}" >/dev/null
cmake --build "$top/build/$flavour" -j "$(nproc)" ${targets[@]+--target "${targets[@]}"}
