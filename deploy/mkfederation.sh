#!/usr/bin/env bash
# The local four-province federation's key material and registry.
#   mkfederation.sh DIR PORT_SH PORT_JS PORT_ZJ PORT_AH [HOST]
# writes, for each region r in sh js zj ah:
#   DIR/r/node.key, DIR/r/node.crt      identity key and self-signed cert
#   DIR/r/operator-ca.{key,crt}         the province's operator CA
#   DIR/r/operators/admin.{key,crt}     an admin operator certificate
#   DIR/r/operators/auditor.{key,crt}   an auditor operator certificate
# and DIR/registry.json (members sh js zj ah on HOST, default 127.0.0.1, or
# on four hosts given as HOST_SH,HOST_JS,HOST_ZJ,HOST_AH (deploy/netns.sh);
# each key valid from one day ago, no end) and DIR/federation.key (hex).
# Refuses to run over an existing DIR/registry.json.
# A second key for a member (rotation): keys.sh node + keys.sh registry-add-key
# (deploy/README.md "Rotating a node's key").
set -euo pipefail
umask 077
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 5 ] && [ $# -le 6 ] || { echo "usage: mkfederation.sh DIR PORT_SH PORT_JS PORT_ZJ PORT_AH [HOST]" >&2; exit 2; }
dir=$1; shift
ports=("$1" "$2" "$3" "$4")
regions=(sh js zj ah)
IFS=, read -r -a hosts <<<"${5:-127.0.0.1}"
[ ${#hosts[@]} -eq 1 ] && hosts=("${hosts[0]}" "${hosts[0]}" "${hosts[0]}" "${hosts[0]}")
[ ${#hosts[@]} -eq 4 ] || { echo "mkfederation.sh: HOST is one host or four, comma-separated" >&2; exit 2; }
for p in "${ports[@]}"; do
  [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -ge 1 ] && [ "$p" -le 65535 ] || { echo "mkfederation.sh: bad port '$p'" >&2; exit 2; }
done
[ ! -e "$dir/registry.json" ] || { echo "mkfederation.sh: $dir/registry.json exists" >&2; exit 2; }
mkdir -p "$dir"
openssl rand -hex 32 >"$dir/federation.key"
since=$(date -u -d '1 day ago' +%Y-%m-%dT%H:%M:%SZ)
members=""
for i in 0 1 2 3; do
  r=${regions[$i]}
  mkdir -p "$dir/$r"
  pub=$(bash "$here/keys.sh" node "$dir/$r" node)
  bash "$here/keys.sh" operator-ca "$dir/$r" "$r"
  bash "$here/keys.sh" operator "$dir/$r" "$dir/$r/operators" admin admin
  bash "$here/keys.sh" operator "$dir/$r" "$dir/$r/operators" auditor auditor
  [ -z "$members" ] || members+=","
  members+=$(printf '\n    {"node_id": "%s", "region": "%s", "endpoint": "%s:%s",\n     "keys": [{"public_key": "%s", "not_before": "%s"}]}' \
    "$r" "$r" "${hosts[$i]}" "${ports[$i]}" "$pub" "$since")
done
cat >"$dir/registry.json" <<JSON
{
  "version": 1,
  "federation_key": "$(cat "$dir/federation.key")",
  "members": [$members
  ]
}
JSON
echo "$dir/registry.json"
