#!/usr/bin/env bash
# Bit-identity check of two rbm binaries: scripts/ab/ident.sh OLD NEW
# (build OLD from an older commit in a git worktree: cargo build --release --bin rbm).
# Outputs go to $OUT (default: a fresh temporary folder); MNIST from $RBM_DATA/mnist.
# Trains 12 configurations, runs gates (2), eval and sample with each binary and
# compares the outputs. One verdict line per check; details indented below it.
set -u
OLD=${1:?usage: ident.sh OLD NEW}; NEW=${2:?usage: ident.sh OLD NEW}
V=$(cd "$(dirname "$0")" && pwd)
DATA=${RBM_DATA:-$V/../../../shared/data}/mnist
OUT=${OUT:-$(mktemp -d)}
OO=$OUT/out-old; ON=$OUT/out-new
rm -rf "$OO" "$ON"; mkdir -p "$OO" "$ON"
echo "ident.sh  $(date -u '+%Y-%m-%d %H:%M:%S UTC')  host $(hostname)  nproc $(nproc)"
echo "OLD=$OLD  ($(sha256sum "$OLD" | cut -c1-16))"
echo "NEW=$NEW  ($(sha256sum "$NEW" | cut -c1-16))"
echo

declare -A CFG=(
  [a]="--k 3 --threads 2"
  [b]="--k 1 --pcd --momentum 0.5 --centering 0.01 --threads 2"
  [c]="--k 1 --pcd --fast-lr 0.01 --centering 0.01 --threads 2"
  [d]="--k 1 --pcd --temperatures 3 --threads 2"
  [e]="--k 2 --pcd --binarize none --threads 2"
  [f]="--preset seed-mnist --threads 2"
  [g]="--k 3 --threads 1"
  [h]="--k 1 --momentum 0.9 --weight-decay 0.0001 --threads 2"
  [i]="--k 1 --centering 0.05 --threads 2"
  [j]="--k 1 --momentum 0.9 --momentum-start 0 --threads 2"
  [k]="--k 10 --batch 100 --centering 0.01 --marginal-bias --threads 2"
  [l]="--k 1 --pcd --chains 37 --threads 2"
)
NDIFF=0

# metrics.csv without its timing column(s) (any header containing "seconds" or "wall")
strip_csv() {
  awk -F, 'NR==1{for(i=1;i<=NF;i++) keep[i]=($i !~ /seconds|wall/)} {s="";sep=""; for(i=1;i<=NF;i++) if(keep[i]){s=s sep $i; sep=","}; print s}' "$1"
}

# Compare two train output folders; prints the verdict line and details.
cmp_train() {  # name, label
  local n=$1 label=$2 o=$OO/$1 w=$ON/$1 verdict=IDENTICAL det=()
  if [[ ! -f $o/model.safetensors || ! -f $w/model.safetensors ]]; then
    echo "($n) $label: DIFFERENT (a run failed: see $o.log / $w.log)"; NDIFF=$((NDIFF+1)); return
  fi
  if cmp -s "$o/model.safetensors" "$w/model.safetensors"; then det+=("model.safetensors: cmp identical")
  else verdict=DIFFERENT; det+=("model.safetensors: cmp DIFFERS"); det+=("$(python3 $V/stcmp.py "$o/model.safetensors" "$w/model.safetensors")"); fi
  if diff -q "$o/metrics.csv" "$w/metrics.csv" >/dev/null; then det+=("metrics.csv: diff identical")
  elif diff <(strip_csv "$o/metrics.csv") <(strip_csv "$w/metrics.csv") >/dev/null; then
    det+=("metrics.csv: identical except the timing column 'seconds' ($(head -1 "$o/metrics.csv"))")
  else verdict=DIFFERENT; det+=("metrics.csv: DIFFERS beyond the timing column:"); det+=("$(diff <(strip_csv "$o/metrics.csv") <(strip_csv "$w/metrics.csv") | sed 's/^/      /')"); fi
  # extra information (not part of the verdict): figures and run.json
  local f other=()
  for f in $(cd "$o" && ls); do
    case $f in model.safetensors|metrics.csv|run.json) continue;; esac
    cmp -s "$o/$f" "$w/$f" || other+=("$f")
  done
  ((${#other[@]})) && det+=("other files differing: ${other[*]}") || det+=("figures (png/svg): all identical")
  local rj; rj=$(diff <(python3 $V/normjson.py "$o/run.json") <(python3 $V/normjson.py "$w/run.json") | grep '^[<>]' | tr -s ' ' | paste -sd';' -)
  [[ -z $rj ]] && det+=("run.json (minus *seconds*/*wall* keys): identical") || det+=("run.json (minus *seconds*/*wall* keys) differs: $rj")
  echo "($n) $label: $verdict"; printf '    %s\n' "${det[@]}"
  [[ $verdict == IDENTICAL ]] || NDIFF=$((NDIFF+1))
}

for n in a b c d e f g h i j k l; do
  for side in old new; do
    if [[ $side == old ]]; then B=$OLD; D=$OO; else B=$NEW; D=$ON; fi
    "$B" train --data "$DATA" --batches-per-epoch 60 --epochs 2 ${CFG[$n]} --out "$D/$n" >"$D/$n.log" 2>&1 \
      || echo "    [$side] rbm train exited $? for ($n): $(tail -2 "$D/$n.log" | tr '\n' ' ')"
  done
  cmp_train "$n" "train ${CFG[$n]}"
done
echo

# gates
gates_cmp() {  # name, label
  local n=$1 label=$2 verdict=IDENTICAL
  local d; d=$(diff -r "$OO/$n" "$ON/$n" 2>&1)
  local s; s=$(diff <(sed "s#$OO/$n#OUT#g" "$OO/$n.log") <(sed "s#$ON/$n#OUT#g" "$ON/$n.log"))
  [[ -n $d || -n $s ]] && verdict=DIFFERENT
  echo "($n) $label: $verdict"
  echo "    files: $(ls "$OO/$n" | tr '\n' ' ')"
  [[ -z $d ]] && echo "    diff -r: identical" || echo "$d" | head -20 | sed 's/^/    /'
  [[ -z $s ]] && echo "    stdout (out path masked): identical" || echo "$s" | head -20 | sed 's/^/    stdout: /'
  if [[ -f $OO/$n/run.json ]]; then
    diff <(python3 $V/normjson.py "$OO/$n/run.json") <(python3 $V/normjson.py "$ON/$n/run.json") >/dev/null && echo "    run.json minus timing: identical" || echo "    run.json minus timing: DIFFERS"
  fi
  if [[ -n $d ]] && ! cmp -s "$OO/$n/model.safetensors" "$ON/$n/model.safetensors"; then python3 $V/stcmp.py "$OO/$n/model.safetensors" "$ON/$n/model.safetensors"; fi
  [[ $verdict == IDENTICAL ]] || NDIFF=$((NDIFF+1))
}
"$OLD" gates --out "$OO/gates-default" >"$OO/gates-default.log" 2>&1 || echo "    [old] gates exited $?"
"$NEW" gates --out "$ON/gates-default" >"$ON/gates-default.log" 2>&1 || echo "    [new] gates exited $?"
gates_cmp gates-default "gates (defaults)"
"$OLD" gates --k 30 --batches 500 --out "$OO/gates-k30" >"$OO/gates-k30.log" 2>&1 || echo "    [old] gates exited $?"
"$NEW" gates --k 30 --batches 500 --out "$ON/gates-k30" >"$ON/gates-k30.log" 2>&1 || echo "    [new] gates exited $?"
gates_cmp gates-k30 "gates --k 30 --batches 500"
echo

# eval (both binaries on the OLD binary's model of (a))
M=$OO/a/model.safetensors
"$OLD" eval --model "$M" --data "$DATA" --ais-runs 16 --ais-betas 1000 --json >"$OO/eval.log" 2>"$OO/eval.err" || echo "    [old] eval exited $?"
"$NEW" eval --model "$M" --data "$DATA" --ais-runs 16 --ais-betas 1000 --json >"$ON/eval.log" 2>"$ON/eval.err" || echo "    [new] eval exited $?"
tail -1 "$OO/eval.log" >"$OO/eval.json"; tail -1 "$ON/eval.log" >"$ON/eval.json"
ed=$(diff <(python3 $V/normjson.py "$OO/eval.json") <(python3 $V/normjson.py "$ON/eval.json"))
if [[ -z $ed ]]; then echo "(eval) eval --ais-runs 16 --ais-betas 1000 --json: IDENTICAL"
else echo "(eval) eval --ais-runs 16 --ais-betas 1000 --json: DIFFERENT"; echo "$ed" | sed 's/^/    /'; NDIFF=$((NDIFF+1)); fi
echo "    JSON minus timing keys ($(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(",".join(k for k in d if "seconds" in k or "wall" in k))' "$OO/eval.json") removed); old: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("log_z=%r test_ll=%r pseudo_ll=%r" % (d["log_z"], d["test_ll"], d["pseudo_ll"]))' "$OO/eval.json")"
cmp -s "$OO/eval.err" "$ON/eval.err" || echo "    (stderr differs: $(wc -c <"$OO/eval.err") vs $(wc -c <"$ON/eval.err") bytes)"

# sample
"$OLD" sample --model "$M" --out "$OO/sample.png" >"$OO/sample.log" 2>&1 || echo "    [old] sample exited $?"
"$NEW" sample --model "$M" --out "$ON/sample.png" >"$ON/sample.log" 2>&1 || echo "    [new] sample exited $?"
if [[ -f $OO/sample.png ]] && cmp -s "$OO/sample.png" "$ON/sample.png"; then echo "(sample) sample --model out-old/a/model.safetensors: IDENTICAL (cmp of the PNGs, $(wc -c <"$OO/sample.png") bytes)"
else echo "(sample) sample --model out-old/a/model.safetensors: DIFFERENT ($(cmp "$OO/sample.png" "$ON/sample.png" 2>&1))"; NDIFF=$((NDIFF+1)); fi
echo
echo "summary: $NDIFF of 16 checks DIFFERENT"
