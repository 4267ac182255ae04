#!/usr/bin/env bash
# spin_check.sh MODEL.pml OUTDIR: exhaustive safety check of the consensus
# model; generated files (pan.c, pan) go to OUTDIR, never the source tree.
# Fails unless spin reports "errors: 0" and no assertion was violated.
set -euo pipefail
model=$1
out=$2
mkdir -p "$out"
cp "$model" "$out/consensus.pml"
cd "$out"
spin -a consensus.pml >spin.out 2>&1 || { cat spin.out; exit 1; }
${CC:-cc} -O2 -DSAFETY -DCOLLAPSE -DVECTORSZ=512 -w -o pan pan.c
./pan -m1000000 >pan.out 2>&1 || true
cat pan.out
if grep -q "assertion violated" pan.out || ! grep -q "errors: 0" pan.out; then
  echo "model.consensus_spin: FAILED (trail: $out/consensus.pml.trail)"
  exit 1
fi
if grep -q "max search depth too small" pan.out; then
  echo "model.consensus_spin: search depth too small, check incomplete"
  exit 1
fi
echo "model.consensus_spin: agreement and validity hold (errors: 0)"
