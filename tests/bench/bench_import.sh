#!/usr/bin/env bash
# Bulk-import benchmark: the real path against the raw LMDB limit, one run.
#   1. real path: CSV (cbctl generate) -> cbctl import -> cbnode -> LMDB,
#      durable commits; records/s, peak RSS of cbnode (VmHWM), disk B/record;
#      then transcript lookup latency p50/p99 over random learners;
#   2. storage alone: bench_store (store_deposit_batch, no socket, no CSV);
#   3. raw LMDB: bench_store's raw stage (same encoded records, sequential
#      keys, 10,000-record durable transactions) and bench_lmdb_raw.
# Prints a table, the ratio real/raw and one JSON summary line.
#
#   tests/bench/bench_import.sh [BUILD_DIR]   (default build/release)
# Env: ACH (1000000), LEARNERS (100000), LOOKUPS (10000), BATCH (50000),
#      TMPDIR. Not a test: nothing is asserted. Stops every process it started.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build/release}
ach=${ACH:-1000000}
learners=${LEARNERS:-100000}
lookups=${LOOKUPS:-10000}
batch=${BATCH:-50000}
per=$((ach / learners))
work=$(mktemp -d "${TMPDIR:-/tmp}/bench_import.XXXXXX")
node_pid=
cleanup() {
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill "$node_pid"; wait "$node_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

for b in bench_store bench_lmdb_raw; do
  [ -x "$build/tests/bench/$b" ] || { echo "bench_import: $build/tests/bench/$b not built" >&2; exit 1; }
done

now() { date +%s.%N; }

# ---- 1. real path -----------------------------------------------------------
real_json='null'
cbnode=$build/node/cbnode
cbctl=$build/node/cbctl
missing=
[ -x "$cbnode" ] || missing="cbnode"
[ -x "$cbctl" ] || missing="$missing cbctl"
if [ -z "$missing" ]; then
  help=$("$cbctl" --help 2>&1 || true)
  for sub in generate import transcript; do
    grep -qw "$sub" <<<"$help" || missing="$missing cbctl-$sub"
  done
fi
if [ -n "$missing" ]; then
  echo "bench_import: real path skipped, not available yet:$missing" >&2
else
  cfg=$work/node.ini
  cat >"$cfg" <<EOF
[node]
id = sh
region = sh
data_dir = $work/data
admin_socket = $work/admin.sock
identity_key_file = $work/identity.key
federation_key_file = $work/federation.key
log_level = warn
[limits]
import_batch_records = $batch
EOF
  "$cbnode" --config "$cfg" --init >"$work/init.log" 2>&1
  csv=$work/import.csv
  "$cbctl" generate --learners "$learners" --per-learner "$per" --region sh \
    --seed 1 --out "$csv"
  "$cbnode" --config "$cfg" 2>"$work/node.log" &
  node_pid=$!
  for _ in $(seq 100); do [ -S "$work/admin.sock" ] && break; sleep 0.1; done
  t0=$(now)
  "$cbctl" --socket "$work/admin.sock" --json import "$csv" >"$work/import.json"
  t1=$(now)
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$node_pid/status")
  disk=$(du -B1 "$work/data/data.mdb" | cut -f1)
  # Transcript latency: cbctl reports per-lookup latency for random learners.
  "$cbctl" --socket "$work/admin.sock" --json transcript --random "$lookups" \
    --latency >"$work/lookup.json"
  kill "$node_pid"; wait "$node_pid" 2>/dev/null || true; node_pid=
  real_json=$(python3 - "$t0" "$t1" "$ach" "$hwm" "$disk" "$work/lookup.json" <<'EOF'
import json, sys
t0, t1, n, hwm, disk = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
lat = json.load(open(sys.argv[6]))
print(json.dumps({"seconds": round(t1 - t0, 3), "records_per_s": round(n / (t1 - t0)),
                  "cbnode_peak_rss_kib": hwm, "disk_bytes_per_record": round(disk / n, 1),
                  "transcript_p50_us": lat.get("p50_us"), "transcript_p99_us": lat.get("p99_us")}))
EOF
)
fi

# ---- 2 + 3. storage alone, raw LMDB ----------------------------------------
store_line=$("$build/tests/bench/bench_store" --achievements "$ach" --learners "$learners" \
  --batch "$batch" --lookups "$lookups" | tee /dev/stderr | grep '^{')
raw_line=$("$build/tests/bench/bench_lmdb_raw" --records "$ach" --txn 10000 \
  --key-bytes 25 --value-bytes 102 | tee /dev/stderr | grep '^{')

python3 - "$real_json" "$store_line" "$raw_line" <<'EOF'
import json, sys
real = json.loads(sys.argv[1]); st = json.loads(sys.argv[2]); raw = json.loads(sys.argv[3])
raw_rps = st["raw_records_per_s"]
print()
print(f"{'path':34} {'records/s':>12} {'ratio to raw':>13} {'disk B/rec':>11}")
if real:
    print(f"{'CSV->cbctl->cbnode->LMDB':34} {real['records_per_s']:>12} {real['records_per_s']/raw_rps:>13.2f} {real['disk_bytes_per_record']:>11}")
    print(f"  cbnode peak RSS {real['cbnode_peak_rss_kib']/1024:.1f} MiB (target < 200), transcript p50 {real['transcript_p50_us']} us, p99 {real['transcript_p99_us']} us")
print(f"{'store_deposit_batch (no socket)':34} {st['store_records_per_s']:>12} {st['ratio']:>13.2f} {st['store_disk_bytes_per_record']:>11}")
print(f"{'raw LMDB, same records, seq keys':34} {raw_rps:>12} {1.0:>13.2f} {st['raw_disk_bytes_per_record']:>11}")
print(f"{'raw LMDB, bench_lmdb_raw':34} {raw['records_per_s']:>12} {raw['records_per_s']/raw_rps:>13.2f} {raw['disk_bytes_per_record']:>11}")
print(f"store transcript lookup: p50 {st['transcript_p50_us']} us, p99 {st['transcript_p99_us']} us")
print(json.dumps({"bench": "import", "real": real, "store": st, "raw": raw,
                  "ratio_real_to_raw": round(real["records_per_s"] / raw_rps, 3) if real else None,
                  "ratio_store_to_raw": st["ratio"]}))
EOF
