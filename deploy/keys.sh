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
  *)
    die "usage: keys.sh node|pubhex|operator-ca|operator ... (see the header of this file)"
    ;;
esac
