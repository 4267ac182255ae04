#!/usr/bin/env bash
# Builds the release flavour and runs every benchmark of tests/bench, each
# printing its table and one JSON summary line; at the end the summaries
# again, one per line. Benchmarks assert nothing; run on a quiet machine.
#
#   tests/bench/run.sh [BUILD_DIR]   (default build/release, built with
#                                     deploy/build.sh release; a given
#                                     directory is used as it is)
# Env: QUICK=1 runs smaller sizes (100,000 imported records); the other
# variables of bench_import.sh pass through.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
if [ $# -ge 1 ]; then
  build=$1
  cmake --build "$build" -j2 >/dev/null || { echo "bench/run.sh: build of $build failed" >&2; exit 1; }
else
  build=$top/build/release
  bash "$top/deploy/build.sh" release >/dev/null || { echo "bench/run.sh: release build failed" >&2; exit 1; }
fi
bin=$build/tests/bench
out=$(mktemp "${TMPDIR:-/tmp}/bench_run.XXXXXX")
trap 'rm -f "$out"' EXIT
failed=0

run() {
  local name=$1
  shift
  echo "==== $name: $*"
  if "$@" | tee -a "$out"; then :; else echo "==== $name FAILED (exit ${PIPESTATUS[0]})"; failed=1; fi
  echo
}

if [ "${QUICK:-0}" = 1 ]; then
  export ACH=${ACH:-100000} LEARNERS=${LEARNERS:-10000} LOOKUPS=${LOOKUPS:-2000}
  recs=100000; secs=1; lookups=200
else
  recs=1000000; secs=3; lookups=2000
fi
run bench_import bash "$top/tests/bench/bench_import.sh" "$build"
run bench_store "$bin/bench_store" --achievements "$recs" --learners $((recs / 10)) --batch 50000
run bench_lmdb_raw "$bin/bench_lmdb_raw" --records "$recs"
run bench_lmdb_raw_random "$bin/bench_lmdb_raw" --records "$recs" --order random
run bench_crypto "$bin/bench_crypto" --seconds "$secs"
run bench_lookup "$bin/bench_lookup" --lookups "$lookups"
run bench_lookup_node bash "$top/tests/bench/bench_lookup_node.sh" "$build" "$lookups"
run bench_consensus "$bin/bench_consensus"
run bench_recognition "$bin/bench_recognition" --rules 10000 --requests "$((recs / 50))"

echo "==== summaries"
grep '^{' "$out"
exit $failed
