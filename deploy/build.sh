#!/usr/bin/env bash
# Configures and builds one flavour into build/<flavour>.
#   deploy/build.sh release   optimised, with debug info (default)
#   deploy/build.sh asan      AddressSanitizer + UndefinedBehaviorSanitizer
#   deploy/build.sh fuzz      clang + libFuzzer targets
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
flavour=${1:-release}
dir="$top/build/$flavour"
case "$flavour" in
  release) args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan)    args=(-DCMAKE_BUILD_TYPE=Debug -DCB_SANITIZE=ON) ;;
  fuzz)    args=(-DCMAKE_BUILD_TYPE=Debug -DCB_FUZZ=ON -DCMAKE_C_COMPILER=clang) ;;
  *) echo "build.sh: unknown flavour '$flavour' (release, asan, fuzz)" >&2; exit 2 ;;
esac
cmake -S "$top" -B "$dir" "${args[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
