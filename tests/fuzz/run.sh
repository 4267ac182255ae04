#!/usr/bin/env bash
# Runs every fuzz target in BUILD_DIR/tests/fuzz for SECONDS on a copy of its
# committed seed corpus (tests/fuzz/corpus/<target>/). A crash fails the run.
set -euo pipefail
build=${1:?build dir}; secs=${2:-30}
here=$(cd "$(dirname "$0")" && pwd)
rc=0; n=0
for bin in "$build"/tests/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin"); n=$((n+1))
  work=$(mktemp -d); cp -r "$here/corpus/$name/." "$work/" 2>/dev/null || true
  echo "fuzz: $name for ${secs}s"
  if ! "$bin" -max_total_time="$secs" -max_len=70000 -rss_limit_mb=1024 \
        -artifact_prefix="$build/$name-" "$work" >"$build/$name.log" 2>&1; then
    echo "fuzz: $name FAILED, see $build/$name.log"; tail -40 "$build/$name.log"; rc=1
  fi
  rm -rf "$work"
done
echo "fuzz: $n targets run"
exit $rc
