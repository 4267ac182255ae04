#!/usr/bin/env bash
# The local four-province federation: builds, brings up cbnode for Shanghai
# (sh), Jiangsu (js), Zhejiang (zj) and Anhui (ah) on loopback, each with its
# own data directory, admin socket, identity key and certificate, one
# registry and one federation key (deploy/mkfederation.sh), connected to
# each other by mutually authenticated TLS 1.3 peer sessions. Loads synthetic
# demo data and shows the main job of a node: opening accounts, deposits, a
# bulk import (a bad file first, to show the row errors), a transcript with
# credit totals, stats of all four; then the federation: a cross-region
# lookup (one region, then all at once), the access log on the answering
# node, and a lookup with one province's node down.
#
#   bash deploy/demo.sh [--keep] [--dir DIR] [--no-build] [--learners N]
#     --keep       leave the nodes running; DIR/stop.sh stops them
#     --dir DIR    where node directories go (default: ./run/demo)
#     --no-build   use the existing build/release binaries
#     --learners N synthetic learners per province (default 2000)
#     --build-dir D binaries from build tree D (default build/release)
#
# Every process started here is stopped by its PID at exit (--keep: stop.sh).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
keep=0; build=1; dir="$top/run/demo"; learners=2000; bdir="$top/build/release"
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) keep=1 ;;
    --no-build) build=0 ;;
    --dir) dir=${2:?--dir needs a directory}; shift ;;
    --learners) learners=${2:?--learners needs a number}; shift ;;
    --build-dir) bdir=${2:?--build-dir needs a directory}; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$learners" =~ ^[1-9][0-9]*$ ]] || { echo "demo.sh: --learners must be a positive number" >&2; exit 2; }

if [ "$build" = 1 ]; then
  bash "$top/deploy/install-deps.sh"
  bash "$top/deploy/build.sh" release
fi
bin="$bdir/node"
cbnode="$bin/cbnode"; cbctl="$bin/cbctl"
[ -x "$cbnode" ] && [ -x "$cbctl" ] || { echo "demo.sh: $bin/cbnode and cbctl not built" >&2; exit 1; }

regions=(sh js zj ah)
declare -A names=([sh]="上海 Shanghai" [js]="江苏 Jiangsu" [zj]="浙江 Zhejiang" [ah]="安徽 Anhui")

# A demo directory is ours to replace only if it carries our marker and no
# node of it is still running.
if [ -e "$dir" ]; then
  [ -e "$dir/.cbdemo" ] || { echo "demo.sh: $dir exists and is not a demo directory; refusing to touch it" >&2; exit 1; }
  for r in "${regions[@]}"; do
    if [ -f "$dir/$r/cbnode.pid" ] && kill -0 "$(cat "$dir/$r/cbnode.pid")" 2>/dev/null; then
      echo "demo.sh: a demo node ($r) is still running; stop it with: bash $dir/stop.sh" >&2; exit 1
    fi
  done
  rm -rf "$dir"
fi
mkdir -p "$dir"; touch "$dir/.cbdemo"
# Socket paths must fit in 107 bytes: fall back to a short directory.
sockdir="$dir"
if [ ${#dir} -gt 80 ]; then sockdir=$(mktemp -d /tmp/cbdemo-XXXXXX); fi

pids=()
stop_nodes() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
on_exit() {
  local rc=$?
  if [ "$keep" = 0 ] || [ "$rc" != 0 ]; then
    stop_nodes
    [ "$rc" = 0 ] || echo "demo.sh: failed (exit $rc); node logs are in $dir/*/node.log" >&2
  fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m=== %s\033[0m\n' "$*"; }
show() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

step "Keys, certificates and registry for four nodes (deploy/mkfederation.sh)"
# Free loopback ports as the OS hands them out: four peer listeners, and
# Shanghai's operator port (cbctl --remote over TLS).
read -r -a ports <<<"$(python3 -c 'import socket
ss=[socket.socket() for _ in range(5)]
[s.bind(("127.0.0.1", 0)) for s in ss]
print(" ".join(str(s.getsockname()[1]) for s in ss))')"
bash "$top/deploy/mkfederation.sh" "$dir/fed" "${ports[@]:0:4}" >/dev/null
oport=${ports[4]}
echo "  registry $dir/fed/registry.json: sh:${ports[0]} js:${ports[1]} zj:${ports[2]} ah:${ports[3]}"

start_node() {
  local r=$1
  "$cbnode" --config "$dir/$r/node.ini" 2>>"$dir/$r/node.log" &
  pids+=($!); echo $! >"$dir/$r/cbnode.pid"
}

step "Bringing up four connected nodes under $dir"
for r in "${regions[@]}"; do
  mkdir -p "$dir/$r"
  node_ini() {
    cat <<INI
; ${names[$r]} demo node (keys and values: deploy/node.example.ini)
[node]
id = $r
region = $r
data_dir = data
admin_socket = $sockdir/$r.sock
federation_key_file = ../fed/federation.key
$*
[limits]
map_size_mb = 256
INI
  }
  # --init makes the data directory; the node then runs with the identity
  # key and registry that mkfederation.sh made.
  node_ini >"$dir/$r/node.ini"
  "$cbnode" --config "$dir/$r/node.ini" --init 2>>"$dir/$r/node.log"
  operators=""
  [ "$r" != sh ] || operators="[operators]
listen = 127.0.0.1:$oport
ca_file = ../fed/sh/operator-ca.crt"
  node_ini "identity_key_file = ../fed/$r/node.key
registry_file = ../fed/registry.json
$operators" >"$dir/$r/node.ini"
  start_node "$r"
done
cat >"$dir/stop.sh" <<STOP
#!/usr/bin/env bash
# Stops the demo nodes by the PIDs they were started with.
for r in ${regions[*]}; do
  f="$dir/\$r/cbnode.pid"
  [ -f "\$f" ] || continue
  pid=\$(cat "\$f")
  if kill -0 "\$pid" 2>/dev/null; then kill -TERM "\$pid"; echo "stopped \$r (pid \$pid)"; fi
  rm -f "\$f"
done
STOP
for r in "${regions[@]}"; do
  for _ in $(seq 100); do
    "$cbctl" --socket "$sockdir/$r.sock" hello >/dev/null 2>&1 && break
    sleep 0.1
  done
  "$cbctl" --socket "$sockdir/$r.sock" hello >/dev/null || { echo "demo.sh: node $r did not come up" >&2; exit 1; }
  echo "  $r  ${names[$r]}  pid $(cat "$dir/$r/cbnode.pid")  socket $sockdir/$r.sock"
done
ctl() { local r=$1; shift; "$cbctl" --socket "$sockdir/$r.sock" "$@"; }

step "Open a learner's account in Shanghai (ID number checked per GB 11643)"
show ctl sh learner open --id 310101199003071230 --name 王小明
echo
echo "A mistyped ID number is refused with the reason:"
show ctl sh learner open --id 310101199003071231 --name 王小明 || true

step "Deposit achievements one by one"
show ctl sh deposit --id 310101199003071230 --kind vocational_qualification --issuer SH-OSTA \
  --code 6-07-06-05 --title 电工 --level 三级 --credits 8 --score 合格 --awarded 2023-06-30 \
  --depositor-role appraisal_centre --depositor-code SH-ASC-01 --depositor-name 上海市职业技能鉴定中心
show ctl sh deposit --id 310101199003071230 --kind academic_course --issuer 10272 --code 0709 \
  --title 电子技术 --credits 4 --score 86 --awarded 2024-01-15 \
  --depositor-role outlet --depositor-code SOU-01 --depositor-name 上海开放大学
echo
echo "Depositing the same achievement again changes nothing:"
show ctl sh deposit --id 310101199003071230 --kind academic_course --issuer 10272 --code 0709 \
  --title 电子技术 --credits 4 --score 86 --awarded 2024-01-15 \
  --depositor-role outlet --depositor-code SOU-01 --depositor-name 上海开放大学

step "Bulk import: a file with bad rows is refused as a whole, every bad row named"
cat >"$dir/bad-export.csv" <<'CSV'
身份证号,姓名,成果类型,颁发机构,课程代码,课程名称,等级,学分,成绩,获得日期
310101199003071230,王小明,学历教育课程,10272,0801,机械制造工艺,,3,78,2024-06-30
310104198506122461,李华,学历教育课程,10272,0801,机械制造工艺,,3,90,2024-06-30
310104198506122460,李华,学历教育课程,10272,0802,"数控技术, 上",,two,85,2024-06-30
320102199201153577,张伟,职业技能等级证书,JS-SKILL,4-04-05-05,美容师,三级,6,合格,2024-02-30
CSV
show ctl sh import "$dir/bad-export.csv" || true
echo
echo "With --skip-invalid the good rows go in and the rest are listed:"
show ctl sh import "$dir/bad-export.csv" --skip-invalid

step "Bulk import of each province's demo data ($learners learners x 8 achievements)"
seed=1
for r in "${regions[@]}"; do
  "$cbctl" generate --seed "$seed" --learners "$learners" --per-learner 8 --region "$r" \
    --out "$dir/$r-demo.csv" >/dev/null
  seed=$((seed + 1))
  echo "--- $r ${names[$r]}"
  show ctl "$r" import "$dir/$r-demo.csv"
done
echo
echo "Importing the same file again adds nothing:"
show ctl js import "$dir/js-demo.csv"

step "Transcripts, with credit totals by kind"
show ctl sh transcript --id 310101199003071230
first=$(sed -n '2p' "$dir/zj-demo.csv" | cut -d, -f1)
echo
show ctl zj transcript --id "$first"
echo
echo "The same learner as JSON (every command takes --json):"
ctl zj --json transcript --id "$first" 2>/dev/null | head -20 || true
echo "  ..."

step "Operators over TLS: the certificate's role decides what an operator may do"
# An outlet certificate for 上海开放大学 (institution 10272), issued by
# Shanghai's operator CA; mkfederation.sh made an auditor's already.
bash "$top/deploy/keys.sh" operator "$dir/fed/sh" "$dir/fed/sh/operators" sou-outlet outlet 10272
remote() {
  local who=$1; shift
  "$cbctl" --remote "127.0.0.1:$oport" --cert "$dir/fed/sh/operators/$who.crt" \
    --key "$dir/fed/sh/operators/$who.key" --node-cert "$dir/fed/sh/node.crt" "$@"
}
echo "The outlet deposits for its own institution (recorded under its certificate):"
show remote sou-outlet deposit --id 310101199003071230 --kind academic_course --issuer 10272 \
  --code 0802 --title 数控技术 --credits 3 --score 90 --awarded 2024-07-01
echo
echo "...but not in another institution's name:"
show remote sou-outlet deposit --id 310101199003071230 --kind academic_course --issuer 10247 \
  --code 0803 --title 液压与气动 --credits 2 --score 80 --awarded 2024-07-01 \
  --depositor-role outlet --depositor-code 10247 --depositor-name 同济大学 || true
echo
echo "An auditor reads, and never writes:"
show remote auditor stats
show remote auditor learner open --id 310101198001010018 --name 李审计 || true

step "Stats of all four nodes"
for r in "${regions[@]}"; do
  echo "--- $r ${names[$r]}"
  ctl "$r" stats
done

step "Cross-region lookup: the asking node sends learner_ref, never the ID number"
# 王小明 also studied in Jiangsu and Zhejiang.
ctl js learner open --id 310101199003071230 --name 王小明 >/dev/null
ctl js deposit --id 310101199003071230 --kind academic_course --issuer 10284 --code 080901 \
  --title 计算机网络 --credits 3 --score 91 --awarded 2024-12-20 --depositor-role outlet \
  --depositor-code NJU-01 --depositor-name 南京大学 >/dev/null
ctl zj learner open --id 310101199003071230 --name 王小明 >/dev/null
ctl zj deposit --id 310101199003071230 --kind vocational_skill_level --issuer ZJ-SKILL --code 4-04-05-05 \
  --title 网络与信息安全管理员 --level 四级 --credits 5 --score 合格 --awarded 2025-03-01 >/dev/null
# Sessions each node has up, from its log (peer_up / peer_down lines).
peers_up() {
  python3 - "$dir/$1/node.log" <<'PY'
import json, sys
up = set()
for line in open(sys.argv[1], encoding="utf-8"):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") == "peer_up": up.add(e["peer"])
    elif e.get("event") == "peer_down": up.discard(e["peer"])
print(" ".join(sorted(up)))
PY
}
# The peer sessions come up within a second or so of the start.
for _ in $(seq 100); do [ "$(peers_up ah)" = "js sh zj" ] && break; sleep 0.1; done
echo "  ah has sessions with: $(peers_up ah)"
echo "Anhui asks Jiangsu (signed request; the answer's signature is checked against the registry):"
show ctl ah lookup --id 310101199003071230 --region js --operator ah-admin --purpose "学分认定 credit recognition"
echo
echo "Anhui asks every other province at once, each with its own deadline:"
show ctl ah lookup --id 310101199003071230 --all-regions --operator ah-admin --purpose "学分认定 credit recognition"

step "Access log on the answering node: who looked this learner up, when, why"
show ctl js access-log --id 310101199003071230

step "One province down: the others still answer, the missing one says why"
zpid=$(cat "$dir/zj/cbnode.pid")
kill -TERM "$zpid"; wait "$zpid" 2>/dev/null || true
echo "  stopped zj (pid $zpid)"
show ctl ah lookup --id 310101199003071230 --all-regions --timeout-ms 1500 --operator ah-admin \
  --purpose "学分认定 credit recognition" || true
start_node zj
for _ in $(seq 400); do [ "$(peers_up ah)" = "js sh zj" ] && break; sleep 0.1; done
echo
echo "zj restarted (pid $(cat "$dir/zj/cbnode.pid")); the sessions come back by themselves:"
show ctl ah lookup --id 310101199003071230 --region zj --operator ah-admin --purpose "学分认定 credit recognition"

if [ "$keep" = 1 ]; then
  step "Nodes left running"
  echo "Try:  $cbctl --socket $sockdir/sh.sock transcript --id 310101199003071230"
  echo "Stop: bash $dir/stop.sh"
else
  step "Stopping the nodes (SIGTERM; --keep leaves them running)"
  stop_nodes
  rm -f "$dir"/*/cbnode.pid
  echo "done; node logs (JSON lines) are in $dir/*/node.log"
fi
