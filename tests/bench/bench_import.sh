#!/usr/bin/env bash
# Bulk-import benchmark (issue 2): the real path against the raw LMDB limit,
# measured in the same run.
#   1. real path: `cbctl generate` CSV -> `cbnode --init` + start ->
#      `cbctl import` (timed; durable commits, per-batch acks) -> records/s,
#      peak RSS of cbnode (VmHWM), CPU of both processes, bytes on disk per
#      record; then transcript lookup latency p50/p99 over random learners
#      through the admin socket (bench_transcript);
#   2. storage alone: bench_store (store_deposit_batch, no CSV, no socket),
#      skipped with STORE=0;
#   3. raw LMDB: bench_lmdb_raw, the same record count and size (key and
#      value bytes as the store writes them on average), sequential keys,
#      10,000-record durable transactions.
# Prints a table, the ratio real/raw and one JSON summary line (last line).
#
#   tests/bench/bench_import.sh [BUILD_DIR]     (default build/release)
# Env: ACH (1000000), LEARNERS (100000), LOOKUPS (10000), BATCH (50000),
#      KEY_BYTES (25), VALUE_BYTES (102), STORE (1), KEEP (0: remove the
#      work directory), TMPDIR.
# Not a test: nothing is asserted (targets are printed next to the
# figures). Every process it starts is stopped by its PID, also on failure.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build/release}
ach=${ACH:-1000000}
learners=${LEARNERS:-100000}
lookups=${LOOKUPS:-10000}
batch=${BATCH:-50000}
key_bytes=${KEY_BYTES:-25}
value_bytes=${VALUE_BYTES:-102}
per=$((ach / learners))
[ $((per * learners)) -eq "$ach" ] || { echo "bench_import: ACH must be a multiple of LEARNERS" >&2; exit 2; }

cbnode=$build/node/cbnode
cbctl=$build/node/cbctl
for b in "$cbnode" "$cbctl" "$build/tests/bench/bench_transcript" "$build/tests/bench/bench_lmdb_raw" \
         "$build/tests/bench/bench_store"; do
  [ -x "$b" ] || { echo "bench_import: $b not built (cmake --build $build)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/bench_import.XXXXXX")
node_pid=
stop_node() {
  if [ -n "$node_pid" ]; then
    kill "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
    node_pid=
  fi
}
cleanup() {
  stop_node
  if [ "${KEEP:-0}" = 1 ]; then echo "bench_import: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
# utime + stime of a live process, in seconds
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }

# ---- 1. real path -----------------------------------------------------------
cfg=$work/node.ini
cat >"$cfg" <<EOF
[node]
id = sh
region = sh
data_dir = $work/data
admin_socket = $work/admin.sock
federation_key_file = $work/federation.key
log_level = warn
[limits]
import_batch_records = $batch
EOF
csv=$work/import.csv
echo "bench_import: generating $ach achievements for $learners learners ..." >&2
"$cbctl" generate --seed 1 --learners "$learners" --per-learner "$per" --region sh --out "$csv" >/dev/null
"$cbnode" --config "$cfg" --init >"$work/init.log" 2>&1
"$cbnode" --config "$cfg" 2>"$work/node.log" &
node_pid=$!
for _ in $(seq 200); do [ -S "$work/admin.sock" ] && break; sleep 0.05; done
[ -S "$work/admin.sock" ] || { echo "bench_import: cbnode did not start:" >&2; cat "$work/node.log" >&2; exit 1; }
sync  # the CSV's dirty pages are not the import's to write back

echo "bench_import: importing ..." >&2
node_cpu0=$(cpu_s "$node_pid")
t0=$(now)
if [ -x /usr/bin/time ]; then
  /usr/bin/time -f '%U %S' -o "$work/cbctl.time" \
    "$cbctl" --socket "$work/admin.sock" --json --quiet import "$csv" >"$work/import.json"
else
  "$cbctl" --socket "$work/admin.sock" --json --quiet import "$csv" >"$work/import.json"
fi
t1=$(now)
node_cpu=$(awk -v a="$node_cpu0" -v b="$(cpu_s "$node_pid")" 'BEGIN {printf "%.2f", b - a}')
cbctl_cpu=$( [ -f "$work/cbctl.time" ] && awk 'END {printf "%.2f", $1 + $2}' "$work/cbctl.time" || echo null)
hwm_kib=$(awk '/^VmHWM/ {print $2}' "/proc/$node_pid/status")
"$cbctl" --socket "$work/admin.sock" --json stats >"$work/stats.json"
disk=$(du -B1 "$work/data/data.mdb" | cut -f1)

echo "bench_import: transcript lookups ..." >&2
lookup_line=$("$build/tests/bench/bench_transcript" --socket "$work/admin.sock" --csv "$csv" \
  --lookups "$lookups" | tee /dev/stderr | grep '^{')
stop_node

# ---- 2 + 3. storage alone, raw LMDB -----------------------------------------
store_line=null
if [ "${STORE:-1}" = 1 ]; then
  echo "bench_import: storage alone ..." >&2
  store_line=$("$build/tests/bench/bench_store" --achievements "$ach" --learners "$learners" \
    --batch "$batch" --lookups "$lookups" --dir "$work/store" | tee /dev/stderr | grep '^{')
  rm -rf "$work/store"
fi
echo "bench_import: raw LMDB ..." >&2
raw_line=$("$build/tests/bench/bench_lmdb_raw" --records "$ach" --txn 10000 --key-bytes "$key_bytes" \
  --value-bytes "$value_bytes" --dir "$work/raw" | tee /dev/stderr | grep '^{')

python3 - "$t0" "$t1" "$ach" "$learners" "$batch" "$hwm_kib" "$disk" "$node_cpu" "$cbctl_cpu" \
  "$work/import.json" "$work/stats.json" "$lookup_line" "$store_line" "$raw_line" <<'EOF'
import json, sys
t0, t1 = float(sys.argv[1]), float(sys.argv[2])
ach, learners, batch, hwm_kib, disk = (int(x) for x in sys.argv[3:8])
node_cpu = float(sys.argv[8]); cbctl_cpu = None if sys.argv[9] == "null" else float(sys.argv[9])
imp = json.load(open(sys.argv[10])); stats = json.load(open(sys.argv[11]))
look = json.loads(sys.argv[12]); store = json.loads(sys.argv[13]); raw = json.loads(sys.argv[14])
secs = t1 - t0
real_rps = ach / secs
ratio = real_rps / raw["records_per_s"]
rss_mib = hwm_kib / 1024
print()
print("Bulk import, %d achievements for %d learners, batches of %d, durable commits" % (ach, learners, batch))
print("%-40s %10s %12s %9s %11s" % ("path", "seconds", "records/s", "vs raw", "disk B/rec"))
print("%-40s %10.2f %12.0f %9.2f %11.1f" % ("CSV -> cbctl -> cbnode -> LMDB", secs, real_rps, ratio, disk / ach))
if store:
    print("%-40s %10.2f %12.0f %9.2f %11.1f" % ("store_deposit_batch (no CSV, no socket)", ach / store["store_records_per_s"],
          store["store_records_per_s"], store["store_records_per_s"] / raw["records_per_s"],
          store["store_disk_bytes_per_record"]))
print("%-40s %10.2f %12.0f %9.2f %11.1f" % ("raw LMDB (%d+%d B, seq keys, 10k/txn)" % (raw["key_bytes"], raw["value_bytes"]),
      raw["seconds"], raw["records_per_s"], 1.0, raw["disk_bytes_per_record"]))
print()
print("real path: cbctl CPU %s s, cbnode CPU %.2f s, wall %.2f s; stored %d, duplicates %d, learners %d" % (
      "%.2f" % cbctl_cpu if cbctl_cpu is not None else "?", node_cpu, secs, imp.get("stored", 0),
      imp.get("duplicates", 0), imp.get("learners_opened", 0)))
print("cbnode peak RSS (VmHWM) %.1f MiB   target < 200: %s" % (rss_mib, "met" if rss_mib < 200 else "NOT met"))
print("real path / raw LMDB    %.3f      target >= 0.50: %s" % (ratio, "met" if ratio >= 0.5 else "NOT met"))
print("transcript over the admin socket, %d random learners: p50 %.1f us, p99 %.1f us" % (
      look["lookups"], look["p50_us"], look["p99_us"]))
summary = {
    "bench": "import", "achievements": ach, "learners": learners, "batch": batch,
    "real": {"seconds": round(secs, 3), "records_per_s": round(real_rps), "cbctl_cpu_s": cbctl_cpu,
             "cbnode_cpu_s": node_cpu, "cbnode_peak_rss_kib": hwm_kib, "disk_bytes": disk,
             "disk_bytes_per_record": round(disk / ach, 1), "db_used_bytes": stats.get("db_size_bytes"),
             "stored": imp.get("stored"), "duplicates": imp.get("duplicates"),
             "cbctl_elapsed_ms": imp.get("elapsed_ms")},
    "transcript": look, "store": store, "raw": raw,
    "ratio_real_to_raw": round(ratio, 3),
    "ratio_store_to_raw": round(store["store_records_per_s"] / raw["records_per_s"], 3) if store else None,
    "targets": {"ratio_min": 0.5, "ratio_met": ratio >= 0.5, "rss_max_mib": 200, "rss_met": rss_mib < 200},
}
print(json.dumps(summary))
EOF
