#!/usr/bin/env bash
# The whole test suite, from a clean checkout on Debian 12 (run as root, or
# with sudo available): installs dependencies, then
#   1. release build: unit, simulation, model-check and integration tests;
#   2. ASan+UBSan build: the same tests again;
#   3. clang libFuzzer build: each fuzz target for a bounded time on its corpus.
# Environment: CB_SKIP_ASAN=1 / CB_SKIP_FUZZ=1 skip a stage (for local runs);
# CB_FUZZ_SECONDS (default 30) bounds each fuzz target.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash deploy/install-deps.sh

jobs=$(nproc)
failed=0
stage() { echo; echo "=== $*"; }

stage "release build"
bash deploy/build.sh release
stage "release tests"
(cd build/release && ctest --output-on-failure -j"$jobs" --timeout 900) || failed=1

if [ "${CB_SKIP_ASAN:-0}" != 1 ]; then
  stage "asan+ubsan build"
  bash deploy/build.sh asan
  stage "asan+ubsan tests"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd build/asan && ctest --output-on-failure -j"$jobs" --timeout 1500 -LE slow) || failed=1
fi

if [ "${CB_SKIP_FUZZ:-0}" != 1 ]; then
  stage "fuzz build"
  bash deploy/build.sh fuzz
  stage "fuzz runs"
  bash tests/fuzz/run.sh build/fuzz "${CB_FUZZ_SECONDS:-30}" || failed=1
fi

echo
if [ "$failed" -ne 0 ]; then echo "test suite: FAILED"; exit 1; fi
echo "test suite: all stages passed"
