#!/usr/bin/env bash
# Throughput comparison of two rbm binaries: scripts/ab/bench.sh OLD NEW (MNIST from
# $RBM_DATA/mnist; TRAIN_ROUNDS, SAMPLE_ROUNDS set the rounds).
# Alternates OLD and NEW (OLD first in each round); prints each run, medians, NEW/OLD ratio.
set -u
OLD=${1:?usage: bench.sh OLD NEW}; NEW=${2:?usage: bench.sh OLD NEW}
TR=${TRAIN_ROUNDS:-5}; SR=${SAMPLE_ROUNDS:-3}
DATA=${RBM_DATA:-$(cd "$(dirname "$0")" && pwd)/../../../shared/data}/mnist
echo "bench.sh  $(date -u '+%Y-%m-%d %H:%M:%S UTC')  nproc $(nproc)  load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "OLD=$OLD"; echo "NEW=$NEW"
TRAIN_ARGS="bench train --data $DATA --k 3 --batch 64 --seconds 4 --threads 2 --json"
SAMPLE_ARGS="bench sample --chains 8 --seconds 3 --threads 2 --json"
stat() {  # key, rounds, args...
  local key=$1 rounds=$2; shift 2
  local r b v o=() n=()
  echo; echo "== rbm $* ($rounds rounds, metric $key)"
  for ((r=1; r<=rounds; r++)); do
    for b in OLD NEW; do
      local bin=$OLD; [[ $b == NEW ]] && bin=$NEW
      v=$("$bin" "$@" | tail -1 | python3 -c "import json,sys; print(json.loads(sys.stdin.read())['$key'])")
      printf '  round %d  %s  %12.1f   (load %s)\n' "$r" "$b" "$v" "$(cut -d' ' -f1 /proc/loadavg)"
      [[ $b == OLD ]] && o+=("$v") || n+=("$v")
    done
  done
  python3 - "${o[*]}" "${n[*]}" <<'PY'
import sys, statistics as st
o = [float(x) for x in sys.argv[1].split()]; n = [float(x) for x in sys.argv[2].split()]
mo, mn = st.median(o), st.median(n)
pr = [b / a for a, b in zip(o, n)]
print(f"  median OLD {mo:12.1f}   min {min(o):.1f} max {max(o):.1f}")
print(f"  median NEW {mn:12.1f}   min {min(n):.1f} max {max(n):.1f}")
print(f"  ratio NEW/OLD of medians: {mn/mo:.4f}   per-round ratios: {' '.join(f'{x:.3f}' for x in pr)}  (median {st.median(pr):.4f})")
PY
}
stat rows_per_s "$TR" $TRAIN_ARGS
stat chain_steps_per_s "$SR" $SAMPLE_ARGS
echo; echo "done $(date -u '+%Y-%m-%d %H:%M:%S UTC')  load $(cut -d' ' -f1-3 /proc/loadavg)"
