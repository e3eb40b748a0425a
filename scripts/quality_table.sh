#!/usr/bin/env bash
# Learning quality per training method and time budget, measured by `rbm eval` (AIS with the
# default 14,500 temperatures and 100 runs, plus RAISE on 100 test rows), on MNIST with
# stochastic test binarization. Each method first trains one calibration epoch to measure its
# seconds per epoch; each budget then gets floor(budget / that) epochs (at least 1), so
# "budget" is the training wall time on this machine, with the learning rate annealed over the
# whole run.
#
#   scripts/quality_table.sh [BUDGETS_MINUTES] [METHODS]
#     BUDGETS_MINUTES: comma-separated, default "1,5"
#     METHODS: comma-separated names from the list below, default all
#     BUDGETS_MINUTES=calibrate: only the calibration epochs (e.g. on a quiet machine, before
#     REUSE_CALIBRATION=1 runs the budgets from them while other work shares the machine:
#     the epoch counts are then fixed, only the wall time stretches)
# Environment: RBM_DATA (default ../shared/data), OUT (default runs/quality), THREADS (2),
# REUSE_CALIBRATION=1 (take seconds per epoch from an existing $OUT/<method>-calibration run).
# Writes $OUT/<method>-<budget>m/ run folders, $OUT/results.jsonl (one line per run) and
# prints a Markdown table (also in $OUT/table.md).
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGETS=${1:-1,5}
export RBM_DATA=${RBM_DATA:-$(cd .. && pwd)/shared/data}
OUT=${OUT:-runs/quality}
THREADS=${THREADS:-2}
mkdir -p "$OUT"
[ -n "${TABLE_ONLY:-}" ] || cargo build --release --quiet
RBM=target/release/rbm

# name | flags (784–500, batch 100, shuffled full epochs, visible biases from the marginals,
# lr 0.05 decaying linearly to 0, momentum 0.5 for 5 epochs then 0.9).
COMMON="--dataset mnist --hidden 500 --batch 100 --marginal-bias --lr 0.05 --lr-end 0 --momentum 0.9 --momentum-start 0.5"
declare -A FLAGS=(
  [cd1]="--k 1"
  [cd10]="--k 10"
  [pcd1]="--k 1 --pcd --chains 100"
  [pcd1-centered]="--k 1 --pcd --chains 100 --centering 0.01"
  [fpcd-centered]="--k 1 --fast-lr 0.05 --chains 100 --centering 0.01"
  [pt-centered]="--k 1 --temperatures 5 --beta-min 0.6 --chains 100 --centering 0.01"
  [cd10-centered]="--k 10 --centering 0.01"
  [pcd5-centered]="--k 5 --pcd --chains 100 --centering 0.01"
)
ORDER=(cd1 cd10 pcd1 pcd1-centered fpcd-centered pt-centered)
if [ -n "${2:-}" ]; then IFS=, read -r -a ORDER <<<"$2"; fi

# TABLE_ONLY=1: print the table of the results already in $OUT, run nothing.
if [ -n "${TABLE_ONLY:-}" ]; then ORDER=(); fi
for m in "${ORDER[@]}"; do
  flags=${FLAGS[$m]:?unknown method $m}
  calibration="$OUT/$m-calibration/metrics.csv"
  if [ "${REUSE_CALIBRATION:-}" != 1 ] || [ ! -f "$calibration" ]; then
    # shellcheck disable=SC2086
    "$RBM" --threads "$THREADS" train $COMMON $flags --epochs 1 --force --out "$OUT/$m-calibration" --json >/dev/null
  fi
  per_epoch=$(python3 -c "import csv,sys; print(sum(float(r['seconds']) for r in csv.DictReader(open(sys.argv[1]))))" "$calibration")
  echo "== $m: ${per_epoch}s per epoch ($calibration)" >&2
  [ "$BUDGETS" != calibrate ] || continue
  IFS=, read -r -a budgets <<<"$BUDGETS"
  for b in "${budgets[@]}"; do
    epochs=$(python3 -c "import sys; print(max(1, int(float(sys.argv[1]) * 60 / float(sys.argv[2]))))" "$b" "$per_epoch")
    dir="$OUT/$m-${b}m"
    echo "== $m, $b min: $epochs epochs of ${per_epoch}s" >&2
    # shellcheck disable=SC2086
    train=$("$RBM" --threads "$THREADS" train $COMMON $flags --epochs "$epochs" --force --out "$dir" --json | tail -n 1)
    eval=$("$RBM" --threads "$THREADS" eval --model "$dir/model.safetensors" --dataset mnist --reverse --json | tail -n 1)
    python3 - "$m" "$b" "$epochs" "$train" "$eval" "$COMMON $flags" >>"$OUT/results.jsonl" <<'EOF'
import json, sys
m, b, epochs, train, ev, flags = sys.argv[1:]
t, e = json.loads(train), json.loads(ev)
print(json.dumps({"method": m, "budget_min": float(b), "epochs": int(epochs),
    "train_seconds": t["seconds"], "test_ll": e["test_ll"], "test_ll_lo": e["test_ll_lo"],
    "test_ll_hi": e["test_ll_hi"], "reverse_test_ll": e.get("reverse_test_ll"),
    "reverse_test_ll_se": e.get("reverse_test_ll_se"),
    "ais_test_ll_reverse_rows": e.get("ais_test_ll_reverse_rows"), "flags": flags}))
EOF
  done
done

python3 - "$OUT/results.jsonl" <<'EOF' | tee "$OUT/table.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
# Methods in the order of the script's list, each by budget (later runs of the same method and
# budget after earlier ones).
order = ["cd1", "cd10", "pcd1", "pcd1-centered", "fpcd-centered", "pt-centered",
         "cd10-centered", "pcd5-centered"]
rank = lambda m: order.index(m) if m in order else len(order)
rows.sort(key=lambda r: (rank(r["method"]), r["budget_min"]))
# A bound is null in the JSON when it is infinite (mean − 3 s.e. of the weights below 0).
f = lambda x, inf: inf if x is None else f"{x:.2f}"
print("| method | budget | epochs | training s | AIS test LL [±3 s.e.] | RAISE (100 rows) | AIS on those rows |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['method']} | {r['budget_min']:g} min | {r['epochs']} | {r['train_seconds']:.0f} | "
          f"{r['test_ll']:.2f} [{f(r['test_ll_lo'], '−∞')}, {f(r['test_ll_hi'], '∞')}] | "
          f"{r['reverse_test_ll']:.2f} ± {r['reverse_test_ll_se']:.2f} | {r['ais_test_ll_reverse_rows']:.2f} |")
EOF
