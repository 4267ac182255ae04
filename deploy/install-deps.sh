#!/usr/bin/env bash
# Installs every Debian 12 package the project needs to build, test and run.
# Safe to run again: apt-get skips what is already there.
set -euo pipefail
PKGS=(build-essential cmake pkg-config git ca-certificates
      libuv1-dev libssl-dev openssl liblmdb-dev lmdb-utils
      libprotobuf-c-dev protobuf-c-compiler libcmocka-dev
      libjansson-dev libinih-dev libcsv-dev
      python3 clang libfuzzer-14-dev spin procps iproute2)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "install-deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
