#!/usr/bin/env bash
# Test hosts on one machine: one network namespace per province (sh, js, zj,
# ah) joined by a bridge, with a one-way network delay between provinces
# (like Shanghai-Hefei) and links that can be cut to make partitions. The
# four cbnode processes then run as real processes, each on its own
# address, as a multi-host federation would. Needs root (CAP_NET_ADMIN) and
# iproute2; deploy/README.md "A multi-host federation on one machine".
#
#   netns.sh up [--delay-ms D]   namespaces cbn-{sh,js,zj,ah} + hub (default D = 15)
#   netns.sh down                remove them (stops the delay relay)
#   netns.sh host R              the address peers use to reach province R
#   netns.sh cut A B             drop all traffic between A and B (both ways)
#   netns.sh isolate A           cut A from every other province
#   netns.sh heal [A B]          restore A-B, or every link
#   netns.sh exec R CMD...       run CMD inside R's namespace
#   netns.sh status              addresses, delay mode, cut links
#   netns.sh federation DIR [--build-dir B]
#                                keys, registry and configs under DIR, then one
#                                cbnode per province started in its namespace
#                                (admin sockets DIR/R.sock; cbctl --socket from here)
#   netns.sh stop DIR            stop those nodes by their PIDs
#
# Addresses: province i (sh=1 js=2 zj=3 ah=4) has 10.77.0.i on its eth0; the
# hub namespace holds the bridge (10.77.0.254). Delay: the netem qdisc on
# each province's eth0 when the kernel has it; otherwise (kernels without
# sch_netem, as in some sandboxes) a user-space relay in the hub
# (deploy/delayline.py) listening on 10.77.1.i, forwarding to 10.77.0.i
# with the delay, and `host R` names the relay address. Cutting a link
# blackholes the other province's addresses (both kinds) in each namespace,
# which also stops flows already established.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
regions=(sh js zj ah)
hub=cbn-hub
state=/run/cbnetns
PEER_PORTS=${CB_NETNS_PORTS:-"7400 7443"}   # relayed ports (peer, operator)

idx() {
  case "$1" in sh) echo 1 ;; js) echo 2 ;; zj) echo 3 ;; ah) echo 4 ;;
    *) echo "netns.sh: unknown province '$1' (sh js zj ah)" >&2; exit 2 ;; esac
}
ns() { echo "cbn-$1"; }
need_up() { ip netns list | grep -q "^$hub\b" || { echo "netns.sh: not up (run: netns.sh up)" >&2; exit 1; }; }

relay_mode() { [ -f "$state/relay.pid" ]; }

host_of() {
  local i; i=$(idx "$1")
  if relay_mode; then echo "10.77.1.$i"; else echo "10.77.0.$i"; fi
}

up() {
  local delay=15
  while [ $# -gt 0 ]; do
    case "$1" in
      --delay-ms) delay=${2:?--delay-ms needs a number}; shift ;;
      *) echo "netns.sh up: unknown option '$1'" >&2; exit 2 ;;
    esac
    shift
  done
  [[ "$delay" =~ ^[0-9]+$ ]] || { echo "netns.sh: --delay-ms must be a whole number" >&2; exit 2; }
  if ip netns list | grep -q "^$hub\b"; then echo "netns.sh: already up (netns.sh down first)" >&2; exit 1; fi
  mkdir -p "$state"
  ip netns add "$hub"
  ip -n "$hub" link set lo up
  ip -n "$hub" link add br0 type bridge
  ip -n "$hub" addr add 10.77.0.254/24 dev br0
  ip -n "$hub" link set br0 up
  local netem=1
  for r in "${regions[@]}"; do
    local i n; i=$(idx "$r"); n=$(ns "$r")
    ip netns add "$n"
    ip -n "$n" link set lo up
    ip link add eth0 netns "$n" type veth peer name "v-$r" netns "$hub"
    ip -n "$n" addr add "10.77.0.$i/24" dev eth0
    ip -n "$n" link set eth0 up
    ip -n "$hub" link set "v-$r" master br0 up
    ip -n "$n" route add 10.77.1.0/24 via 10.77.0.254
    if [ "$delay" -gt 0 ] && [ "$netem" = 1 ]; then
      ip netns exec "$n" tc qdisc add dev eth0 root netem delay "${delay}ms" 2>/dev/null || netem=0
    fi
  done
  echo "$delay" >"$state/delay"
  if [ "$delay" -gt 0 ] && [ "$netem" = 0 ]; then
    # No netem in this kernel: the delay comes from a relay in the hub.
    local pairs=()
    for r in "${regions[@]}"; do
      local i; i=$(idx "$r")
      ip -n "$hub" addr add "10.77.1.$i/32" dev br0
      for p in $PEER_PORTS; do pairs+=("10.77.1.$i:$p=10.77.0.$i:$p"); done
    done
    ip netns exec "$hub" python3 "$here/delayline.py" --delay-ms "$delay" "${pairs[@]}" \
      >"$state/relay.log" 2>&1 &
    echo $! >"$state/relay.pid"
    sleep 0.3
    kill -0 "$(cat "$state/relay.pid")" 2>/dev/null || { cat "$state/relay.log" >&2; exit 1; }
    echo "netns.sh: kernel has no netem; ${delay} ms one way through the hub relay (ports $PEER_PORTS)"
  else
    echo "netns.sh: ${delay} ms one way by netem"
  fi
  status
}

down() {
  if [ -f "$state/relay.pid" ]; then
    kill -TERM "$(cat "$state/relay.pid")" 2>/dev/null || true
    rm -f "$state/relay.pid"
  fi
  for r in "${regions[@]}"; do ip netns del "$(ns "$r")" 2>/dev/null || true; done
  ip netns del "$hub" 2>/dev/null || true
  rm -rf "$state"
  echo "netns.sh: down"
}

blackhole() {  # blackhole ACTION FROM TO
  local n j; n=$(ns "$2"); j=$(idx "$3")
  for a in "10.77.0.$j" "10.77.1.$j"; do
    if [ "$1" = add ]; then
      ip -n "$n" route replace blackhole "$a/32"
    else
      ip -n "$n" route del blackhole "$a/32" 2>/dev/null || true
    fi
  done
}

cut() { need_up; idx "$1" >/dev/null; idx "$2" >/dev/null
  [ "$1" != "$2" ] || { echo "netns.sh: cannot cut $1 from itself" >&2; exit 2; }
  blackhole add "$1" "$2"; blackhole add "$2" "$1"; echo "netns.sh: cut $1 <-> $2"; }

heal() {
  need_up
  if [ $# -eq 2 ]; then
    blackhole del "$1" "$2"; blackhole del "$2" "$1"; echo "netns.sh: healed $1 <-> $2"
  else
    for a in "${regions[@]}"; do for b in "${regions[@]}"; do
      [ "$a" = "$b" ] || blackhole del "$a" "$b"
    done; done
    echo "netns.sh: every link healed"
  fi
}

isolate() { need_up; for b in "${regions[@]}"; do [ "$b" = "$1" ] || cut "$1" "$b"; done; }

status() {
  need_up
  local mode="netem"; relay_mode && mode="relay (pid $(cat "$state/relay.pid"))"
  echo "delay $(cat "$state/delay" 2>/dev/null || echo ?) ms one way, $mode"
  for r in "${regions[@]}"; do
    local cuts
    cuts=$(ip -n "$(ns "$r")" route show type blackhole | awk '{print $2}' | tr '\n' ' ')
    printf '  %s  %-10s reached at %-10s cut: %s\n' "$r" "10.77.0.$(idx "$r")" "$(host_of "$r")" "${cuts:-none}"
  done
}

federation() {
  need_up
  local dir=${1:?federation DIR}; shift
  local bdir; bdir=$(cd "$here/.." && pwd)/build/release
  while [ $# -gt 0 ]; do
    case "$1" in
      --build-dir) bdir=${2:?--build-dir needs a directory}; shift ;;
      *) echo "netns.sh federation: unknown option '$1'" >&2; exit 2 ;;
    esac
    shift
  done
  local cbnode=$bdir/node/cbnode cbctl=$bdir/node/cbctl
  [ -x "$cbnode" ] && [ -x "$cbctl" ] || { echo "netns.sh: no cbnode/cbctl in $bdir/node" >&2; exit 1; }
  [ ! -e "$dir" ] || { echo "netns.sh: $dir exists; choose a new directory" >&2; exit 1; }
  mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
  local hosts=""
  for r in "${regions[@]}"; do hosts+="${hosts:+,}$(host_of "$r")"; done
  bash "$here/mkfederation.sh" "$dir/fed" 7400 7400 7400 7400 "$hosts" >/dev/null
  for r in "${regions[@]}"; do
    mkdir -p "$dir/$r"
    cat >"$dir/$r/node.ini" <<INI
; province $r on its own network namespace (deploy/netns.sh)
[node]
id = $r
region = $r
data_dir = data
admin_socket = $dir/$r.sock
federation_key_file = ../fed/federation.key
identity_key_file = ../fed/$r/node.key
registry_file = ../fed/registry.json
peer_listen = 10.77.0.$(idx "$r"):7400
[limits]
map_size_mb = 256
INI
    # --init makes the data directory (as deploy/demo.sh does, without the
    # federation's identity key, which mkfederation.sh already made).
    grep -v -e '^identity_key_file' -e '^registry_file' "$dir/$r/node.ini" >"$dir/$r/init.ini"
    "$cbnode" --config "$dir/$r/init.ini" --init 2>>"$dir/$r/node.log"
    rm -f "$dir/$r/init.ini"
    ip netns exec "$(ns "$r")" "$cbnode" --config "$dir/$r/node.ini" 2>>"$dir/$r/node.log" &
    echo $! >"$dir/$r/cbnode.pid"
  done
  for r in "${regions[@]}"; do
    local ok=0
    for _ in $(seq 100); do
      if "$cbctl" --socket "$dir/$r.sock" hello >/dev/null 2>&1; then ok=1; break; fi
      sleep 0.1
    done
    [ "$ok" = 1 ] || { echo "netns.sh: node $r did not come up; see $dir/$r/node.log" >&2; stop_fed "$dir"; exit 1; }
    echo "  $r  pid $(cat "$dir/$r/cbnode.pid")  $(host_of "$r"):7400  cbctl --socket $dir/$r.sock"
  done
}

stop_fed() {
  local dir=${1:?stop DIR}
  for r in "${regions[@]}"; do
    local f="$dir/$r/cbnode.pid"
    [ -f "$f" ] || continue
    local pid; pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      echo "stopped $r (pid $pid)"
    fi
    rm -f "$f"
  done
}

cmd=${1:-}
[ -n "$cmd" ] || { sed -n '2,31p' "$0"; exit 2; }
shift
case "$cmd" in
  up) up "$@" ;;
  down) down ;;
  host) need_up; host_of "${1:?host needs a province}" ;;
  cut) cut "${1:?cut A B}" "${2:?cut A B}" ;;
  heal) heal "$@" ;;
  isolate) isolate "${1:?isolate needs a province}" ;;
  exec) need_up; r=${1:?exec R CMD...}; shift; exec ip netns exec "$(ns "$r")" "$@" ;;
  status) status ;;
  federation) federation "$@" ;;
  stop) stop_fed "${1:?stop DIR}" ;;
  -h|--help|help) sed -n '2,31p' "$0" ;;
  *) echo "netns.sh: unknown command '$cmd' (see --help)" >&2; exit 2 ;;
esac
