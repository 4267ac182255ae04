#!/usr/bin/env bash
# Lookup round trip through a real cbnode: sets up a federation's keys and
# registry (deploy/mkfederation.sh) on free loopback ports, starts sh's
# cbnode with one learner holding 20 achievements, and runs
# bench_lookup_node as ah against it (signed requests, answers from LMDB,
# a durable access-log commit per answer); then bench_crypto's bare TLS 1.3
# echo for the ratio. Stops the node by its PID at exit.
#   tests/bench/bench_lookup_node.sh [BUILD_DIR] [LOOKUPS]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
b=${1:-$top/build/release}; n=${2:-2000}
for p in node/cbnode node/cbctl tests/bench/bench_lookup_node tests/bench/bench_crypto; do
  [ -x "$b/$p" ] || { echo "bench_lookup_node.sh: $b/$p not built" >&2; exit 1; }
done
w=$(mktemp -d /tmp/cbbench-XXXXXX)
pid=
cleanup() { [ -z "$pid" ] || { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }; rm -rf "$w"; }
trap cleanup EXIT
read -r -a ports <<<"$(python3 -c 'import socket
ss=[socket.socket() for _ in range(4)]
[s.bind(("127.0.0.1", 0)) for s in ss]
print(" ".join(str(s.getsockname()[1]) for s in ss))')"
bash "$top/deploy/mkfederation.sh" "$w/fed" "${ports[@]}" >/dev/null
mkdir -p "$w/sh"
ini() { printf '[node]\nid = sh\nregion = sh\ndata_dir = data\nadmin_socket = %s/sh.sock\nfederation_key_file = ../fed/federation.key\n%s\n' "$w" "$1"; }
ini "" >"$w/sh/node.ini"
"$b/node/cbnode" --config "$w/sh/node.ini" --init 2>>"$w/sh/node.log"
ini "identity_key_file = ../fed/sh/node.key
registry_file = ../fed/registry.json" >"$w/sh/node.ini"
"$b/node/cbnode" --config "$w/sh/node.ini" 2>>"$w/sh/node.log" &
pid=$!
ctl() { "$b/node/cbctl" --socket "$w/sh.sock" "$@"; }
for _ in $(seq 100); do ctl hello >/dev/null 2>&1 && break; sleep 0.05; done
id=310101199003071230
ctl learner open --id $id --name 王小明 >/dev/null
for i in $(seq 20); do
  ctl deposit --id $id --kind academic_course --issuer 10272 --code "C$i" --title "课程 $i" --credits 3 \
    --score 85 --awarded 2024-06-30 >/dev/null
done
ref=$(python3 -c 'import hmac, hashlib, sys
k = bytes.fromhex(open(sys.argv[1]).read().strip())
print(hmac.new(k, sys.argv[2].encode(), hashlib.sha256).hexdigest())' "$w/fed/federation.key" $id)
out=$("$b/tests/bench/bench_lookup_node" --connect 127.0.0.1:"${ports[0]}" --registry "$w/fed/registry.json" \
  --key "$w/fed/ah/node.key" --node ah --target sh --ref "$ref" --lookups "$n" --node-pid "$pid")
echo "$out" | grep -v '^{'
# The node's own count of access-log commits (logged at stop): answers per
# commit is the group commit's batch size over the whole run.
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=
stats=$(grep '"peer_stats"' "$w/sh/node.log" | tail -1 || true)
echo=$("$b/tests/bench/bench_crypto" --seconds 0.5 2>/dev/null | grep '^{' || true)
python3 - "$(echo "$out" | grep '^{')" "$echo" "$stats" <<'PY'
import json, sys
n = json.loads(sys.argv[1]); c = json.loads(sys.argv[2]) if sys.argv[2] else {}
if sys.argv[3]:
    s = json.loads(sys.argv[3])
    a, k = s.get("answered", 0), s.get("access_log_commits", 0)
    cu = s.get("access_log_commit_us", 0)
    print("node: %d answers in %d access-log commits (%.1f per commit), commit mean %.2f ms, max %.1f ms"
          % (a, k, a / k if k else 0, cu / k / 1000 if k else 0, s.get("access_log_commit_us_max", 0) / 1000))
    n["access_log_commit_mean_us"] = round(cu / k) if k else 0
    n["access_log_commits"] = k
if c:
    # blocking: sleeps between messages like an event loop (pays the VM's
    # wake-ups from idle, bimodal with load); polling: TLS + TCP alone.
    print("bare TLS 1.3 echo p50/p99 (bench_crypto, same run): blocking %.1f / %.1f us, polling %.1f / %.1f us"
          % (c["tls13_echo_p50_us"], c["tls13_echo_p99_us"], c["tls13_echo_poll_p50_us"], c["tls13_echo_poll_p99_us"]))
    print("lookup p50 at 1 in flight / TLS echo p50: %.0fx blocking, %.0fx polling"
          % (n["p50_us_1"] / c["tls13_echo_p50_us"], n["p50_us_1"] / c["tls13_echo_poll_p50_us"]))
    print("lookup p99 at 1 in flight / TLS echo p99 (blocking): %.1fx" % (n["p99_us_1"] / c["tls13_echo_p99_us"]))
    n["tls13_echo_p50_us"] = c["tls13_echo_p50_us"]
    n["tls13_echo_p99_us"] = c["tls13_echo_p99_us"]
    n["tls13_echo_poll_p50_us"] = c["tls13_echo_poll_p50_us"]
print(json.dumps(n))
PY
