#!/usr/bin/env bash
# Side-by-side throughput: `rbm bench` against the PyTorch and scikit-learn baselines of
# ../shared/baselines, alternating the programs for ROUNDS rounds on the same machine, then the
# medians and the ratios. Also the machine's sgemm ceiling (numpy/OpenBLAS, with
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for that command only).
#
#   scripts/compare.sh [ROUNDS]         (default 3)
# Environment: PYTHON (default ~/.venvs/baselines/bin/python, with torch, numpy, scikit-learn),
# BASELINES (default ../shared/baselines), RBM_DATA (default ../shared/data), THREADS (2),
# SAMPLE_MODELS (model files whose generation speed to add, space-separated; default: the
# notebook's model, trained here by `rbm train --preset seed-mnist` into runs/seed-mnist if
# missing, and runs/best-mnist-300/model.safetensors if present). The PyTorch sampler's cost
# does not depend on the weights, so its random-model figure is the baseline for all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
PYTHON=${PYTHON:-$HOME/.venvs/baselines/bin/python}
BASELINES=${BASELINES:-../shared/baselines}
export RBM_DATA=${RBM_DATA:-$(cd .. && pwd)/shared/data}
THREADS=${THREADS:-2}
MNIST="$RBM_DATA/mnist"

cargo build --release --quiet
RBM=target/release/rbm
if [ -z "${SAMPLE_MODELS+x}" ]; then
  [ -f runs/seed-mnist/model.safetensors ] ||
    "$RBM" train --dataset mnist --preset seed-mnist --out runs/seed-mnist >/dev/null
  SAMPLE_MODELS="runs/seed-mnist/model.safetensors"
  [ -f runs/best-mnist-300/model.safetensors ] && SAMPLE_MODELS="$SAMPLE_MODELS runs/best-mnist-300/model.safetensors"
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT

for round in $(seq "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  "$RBM" --threads "$THREADS" bench train --k 3 --batch 64 --data "$MNIST" --seconds 4 --json | tail -n 1 >>"$out"
  "$PYTHON" "$BASELINES/rbm_torch.py" train --impl seed --k 3 --batch 64 --threads "$THREADS" --data "$MNIST" >>"$out"
  "$PYTHON" "$BASELINES/rbm_torch.py" train --impl analytic --k 3 --batch 64 --threads "$THREADS" --data "$MNIST" >>"$out"
  OMP_NUM_THREADS=$THREADS "$PYTHON" "$BASELINES/rbm_sklearn.py" --batch 64 --data "$MNIST" | sed 's/}$/, "threads": '"$THREADS"'}/' >>"$out"
  "$RBM" --threads "$THREADS" bench sample --chains 8 --seconds 3 --json | tail -n 1 >>"$out"
  for m in $SAMPLE_MODELS; do
    for k in 1 100; do
      "$RBM" --threads "$THREADS" bench sample --chains 8 --model "$m" --steps-per-call $k --seconds 3 --json | tail -n 1 >>"$out"
    done
  done
  "$PYTHON" "$BASELINES/rbm_torch.py" sample --chains 8 --threads "$THREADS" >>"$out"
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS "$PYTHON" -c '
import json, time, numpy as np
a = np.random.rand(2048, 2048).astype(np.float32); b = np.random.rand(2048, 2048).astype(np.float32)
a @ b
best = 0.0
for _ in range(5):
    t = time.perf_counter(); a @ b; dt = time.perf_counter() - t
    best = max(best, 2 * 2048**3 / dt / 1e9)
print(json.dumps({"what": "sgemm", "impl": "numpy-openblas", "gflops": best}))' >>"$out"
done

python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
def med(pred, key):
    xs = [r[key] for r in rows if pred(r)]
    return statistics.median(xs) if xs else float("nan")
rbm_train = med(lambda r: r.get("what") == "train" and "rows_per_s" in r, "rows_per_s")
rbm_gflops = med(lambda r: r.get("what") == "train" and "rows_per_s" in r, "gflops")
seed = med(lambda r: r.get("impl") == "torch-seed", "samples_per_s")
analytic = med(lambda r: r.get("impl") == "torch-analytic", "samples_per_s")
sk = med(lambda r: r.get("impl") == "sklearn-pcd1", "samples_per_s")
rbm_sample = med(lambda r: r.get("what") == "sample" and "chain_steps_per_s" in r and "impl" not in r and not r.get("model"), "chain_steps_per_s")
trained = sorted({(r["model"], r["steps_per_call"]) for r in rows if r.get("what") == "sample" and r.get("model")})
torch_sample = med(lambda r: r.get("impl") == "torch" and r.get("what") == "sample", "chain_steps_per_s")
sgemm = med(lambda r: r.get("what") == "sgemm", "gflops")
n = len([r for r in rows if r.get("what") == "sgemm"])
print(f"medians of {n} rounds (CD-3, 784-500, batch 64, MNIST rows; sampling: 8 chains)")
print(f"{'program':34} {'rows/s':>12} {'rbm ratio':>10}")
print(f"{'rbm bench train':34} {rbm_train:12.0f} {'':>10}")
for name, v in [("torch seed (notebook, autograd)", seed), ("torch analytic", analytic), ("scikit-learn BernoulliRBM (PCD-1)", sk)]:
    print(f"{name:34} {v:12.0f} {rbm_train / v:9.2f}x")
print(f"{'rbm bench sample (chain-steps/s)':34} {rbm_sample:12.0f}")
print(f"{'torch sample (chain-steps/s)':34} {torch_sample:12.0f} {rbm_sample / torch_sample:9.2f}x (rbm on the same random model)")
for model, k in trained:
    v = med(lambda r: r.get("model") == model and r.get("steps_per_call") == k, "chain_steps_per_s")
    print(f"  rbm sample {model}, {k} step(s) per call: {v:.0f} chain-steps/s, {v / torch_sample:.2f}x torch")
print(f"dense-equivalent: rbm {rbm_gflops:.0f} GFLOP/s vs OpenBLAS sgemm {sgemm:.0f} GFLOP/s: {rbm_gflops / sgemm:.2f}x the dense ceiling")
PY
