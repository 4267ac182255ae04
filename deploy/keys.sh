#!/usr/bin/env bash
# Keys and certificates for federation nodes and their operators (openssl
# CLI). Formats and extensions: spec/protocol.md "Transport", "Operators".
#
#   keys.sh node DIR NODE_ID
#       DIR/NODE_ID.key  Ed25519 identity key (PKCS#8 PEM, mode 0600)
#       DIR/NODE_ID.crt  self-signed certificate over it (CN=NODE_ID); a
#                        carrier for the key only: peers pin the key
#       prints the raw public key as 64 hex digits, for the registry
#   keys.sh pubhex KEY_OR_CERT
#       prints the raw Ed25519 public key of a key or certificate as hex
#   keys.sh operator-ca DIR PROVINCE
#       DIR/operator-ca.key, DIR/operator-ca.crt: the province's operator CA
#   keys.sh operator CA_DIR OUT_DIR NAME ROLE [INSTITUTION]
#       OUT_DIR/NAME.key, OUT_DIR/NAME.crt: an operator certificate issued by
#       CA_DIR's operator CA, carrying ROLE (admin, outlet, branch,
#       appraisal-centre, auditor) and, required for outlets, INSTITUTION.
# Existing files are never overwritten.
#
# Registry edits for key rotation (deploy/README.md "Rotating a node's key");
# the file is rewritten atomically, and nothing changes on an error. TIME is
# RFC 3339 text (2027-01-10T00:00:00Z) or integer ms since the epoch.
#   keys.sh registry-add-key REGISTRY NODE_ID PUBHEX NOT_BEFORE [NOT_AFTER]
#       lists a new key for member NODE_ID, valid [NOT_BEFORE, NOT_AFTER)
#   keys.sh registry-end-key REGISTRY NODE_ID PUBHEX NOT_AFTER
#       sets the end of one of NODE_ID's keys
#   keys.sh registry-remove-key REGISTRY NODE_ID PUBHEX
#       drops one of NODE_ID's keys (never its last one)
set -euo pipefail
umask 077

# Private arc under 2.25 (ITU-T X.667 UUID OIDs); must match node/tls.h.
OID_ARC=2.25.310943719422949667218847667254963332823
OID_ROLE=$OID_ARC.1
OID_INST=$OID_ARC.2
DAYS=${CB_CERT_DAYS:-825}

die() { echo "keys.sh: $*" >&2; exit 2; }
need_new() { for f in "$@"; do [ ! -e "$f" ] || die "$f exists; refusing to overwrite"; done; }
valid_name() { [[ "$1" =~ ^[a-z0-9][a-z0-9._-]{0,62}$ ]] || die "bad name '$1' (a-z 0-9 . _ -, up to 63)"; }

pubhex() {
  local f=$1 der
  if grep -q "BEGIN CERTIFICATE" "$f"; then
    der=$(openssl x509 -in "$f" -noout -pubkey | openssl pkey -pubin -outform DER | od -An -tx1 -v)
  else
    der=$(openssl pkey -in "$f" -pubout -outform DER | od -An -tx1 -v)
  fi
  # SubjectPublicKeyInfo of Ed25519 is 44 bytes; the key is the last 32.
  local hex; hex=$(echo "$der" | tr -d ' \n')
  [ ${#hex} -eq 88 ] || die "$f: not an Ed25519 key"
  echo "${hex:24:64}"
}

# The registry edits, in python3 (Debian's, standard library only).
registry_edit() {
  python3 - "$@" <<'PY'
import json, os, re, sys, tempfile
from datetime import datetime
op, path, node, pub = sys.argv[1:5]
times = sys.argv[5:]
def die(msg):
    print("keys.sh: %s" % msg, file=sys.stderr)
    sys.exit(2)
def ms(t, what):
    if re.fullmatch(r"[0-9]+", t):
        return int(t)
    try:
        return int(datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        die("%s '%s' is neither RFC 3339 time (2027-01-10T00:00:00Z) nor integer ms" % (what, t))
if not re.fullmatch(r"[0-9a-fA-F]{64}", pub):
    die("public key must be 64 hex digits (keys.sh node prints it), got '%s'" % pub)
pub = pub.lower()
try:
    with open(path) as f:
        doc = json.load(f)
except (OSError, ValueError) as e:
    die("%s: %s" % (path, e))
members = doc.get("members") if isinstance(doc, dict) else None
if not isinstance(members, list):
    die("%s: no members list" % path)
m = [x for x in members if isinstance(x, dict) and x.get("node_id") == node]
if not m:
    die("%s: no member '%s'" % (path, node))
keys = m[0].setdefault("keys", [])
mine = [k for k in keys if str(k.get("public_key", "")).lower() == pub]
if op == "add":
    for x in members:
        for k in x.get("keys", []):
            if str(k.get("public_key", "")).lower() == pub:
                die("%s: key %s... is already listed for '%s'" % (path, pub[:16], x.get("node_id")))
    k = {"public_key": pub, "not_before": times[0]}
    if len(times) > 1:
        k["not_after"] = times[1]
        if ms(times[0], "NOT_BEFORE") >= ms(times[1], "NOT_AFTER"):
            die("NOT_BEFORE must be before NOT_AFTER")
    else:
        ms(times[0], "NOT_BEFORE")
    keys.append(k)
elif op == "end":
    if not mine:
        die("%s: '%s' has no key %s..." % (path, node, pub[:16]))
    end = ms(times[0], "NOT_AFTER")
    nb = mine[0].get("not_before")
    if isinstance(nb, (int, str)) and ms(str(nb), "the key's not_before") >= end:
        die("NOT_AFTER must be after the key's not_before (%s)" % nb)
    mine[0]["not_after"] = times[0]
else:
    if not mine:
        die("%s: '%s' has no key %s..." % (path, node, pub[:16]))
    if len(keys) == 1:
        die("%s: %s... is the last key of '%s'; add its successor first" % (path, pub[:16], node))
    keys.remove(mine[0])
for k in keys:  # integers stay integers in the file
    for f in ("not_before", "not_after"):
        if isinstance(k.get(f), str) and re.fullmatch(r"[0-9]+", k[f]):
            k[f] = int(k[f])
d = os.path.dirname(os.path.abspath(path))
fd, tmp = tempfile.mkstemp(dir=d, prefix=".registry-")
with os.fdopen(fd, "w") as f:
    json.dump(doc, f, indent=2, ensure_ascii=False)
    f.write("\n")
os.chmod(tmp, os.stat(path).st_mode & 0o777)
os.replace(tmp, path)
PY
}

cmd=${1:-}; shift || true
case "$cmd" in
  node)
    [ $# -eq 2 ] || die "usage: keys.sh node DIR NODE_ID"
    dir=$1; id=$2; valid_name "$id"; mkdir -p "$dir"
    need_new "$dir/$id.key" "$dir/$id.crt"
    openssl genpkey -algorithm ed25519 -out "$dir/$id.key" 2>/dev/null
    openssl req -new -x509 -key "$dir/$id.key" -subj "/CN=$id" -days 36500 \
      -out "$dir/$id.crt" 2>/dev/null
    chmod 0644 "$dir/$id.crt"
    pubhex "$dir/$id.key"
    ;;
  pubhex)
    [ $# -eq 1 ] || die "usage: keys.sh pubhex KEY_OR_CERT"
    pubhex "$1"
    ;;
  operator-ca)
    [ $# -eq 2 ] || die "usage: keys.sh operator-ca DIR PROVINCE"
    dir=$1; prov=$2; valid_name "$prov"; mkdir -p "$dir"
    need_new "$dir/operator-ca.key" "$dir/operator-ca.crt"
    openssl genpkey -algorithm ed25519 -out "$dir/operator-ca.key" 2>/dev/null
    openssl req -new -x509 -key "$dir/operator-ca.key" -days 3650 \
      -subj "/O=credit bank $prov/CN=$prov operator CA" \
      -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "$dir/operator-ca.crt" 2>/dev/null
    chmod 0644 "$dir/operator-ca.crt"
    ;;
  operator)
    [ $# -ge 4 ] && [ $# -le 5 ] || die "usage: keys.sh operator CA_DIR OUT_DIR NAME ROLE [INSTITUTION]"
    ca=$1; out=$2; name=$3; role=$4; inst=${5:-}
    valid_name "$name"
    case "$role" in admin|outlet|branch|appraisal-centre|auditor) ;;
      *) die "unknown role '$role' (admin, outlet, branch, appraisal-centre, auditor)";; esac
    [ "$role" != outlet ] || [ -n "$inst" ] || die "an outlet certificate needs INSTITUTION"
    [ -z "$inst" ] || [[ "$inst" =~ ^[A-Za-z0-9._-]{1,32}$ ]] || die "bad institution code '$inst'"
    [ -f "$ca/operator-ca.key" ] && [ -f "$ca/operator-ca.crt" ] || die "$ca: no operator CA"
    mkdir -p "$out"
    need_new "$out/$name.key" "$out/$name.crt"
    ext=$(mktemp); trap 'rm -f "$ext" "$out/$name.csr"' EXIT
    {
      echo "basicConstraints=critical,CA:FALSE"
      echo "keyUsage=critical,digitalSignature"
      echo "extendedKeyUsage=clientAuth"
      echo "$OID_ROLE=ASN1:UTF8String:$role"
      [ -z "$inst" ] || echo "$OID_INST=ASN1:UTF8String:$inst"
    } >"$ext"
    openssl genpkey -algorithm ed25519 -out "$out/$name.key" 2>/dev/null
    openssl req -new -key "$out/$name.key" -subj "/CN=$name" -out "$out/$name.csr" 2>/dev/null
    openssl x509 -req -in "$out/$name.csr" -CA "$ca/operator-ca.crt" -CAkey "$ca/operator-ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -days "$DAYS" -extfile "$ext" \
      -out "$out/$name.crt" 2>/dev/null
    chmod 0644 "$out/$name.crt"
    ;;
  registry-add-key)
    [ $# -ge 4 ] && [ $# -le 5 ] || die "usage: keys.sh registry-add-key REGISTRY NODE_ID PUBHEX NOT_BEFORE [NOT_AFTER]"
    registry_edit add "$@"
    ;;
  registry-end-key)
    [ $# -eq 4 ] || die "usage: keys.sh registry-end-key REGISTRY NODE_ID PUBHEX NOT_AFTER"
    registry_edit end "$@"
    ;;
  registry-remove-key)
    [ $# -eq 3 ] || die "usage: keys.sh registry-remove-key REGISTRY NODE_ID PUBHEX"
    registry_edit remove "$@"
    ;;
  *)
    die "usage: keys.sh node|pubhex|operator-ca|operator|registry-add-key|registry-end-key|registry-remove-key ... (see the header of this file)"
    ;;
esac
