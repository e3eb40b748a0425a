#!/usr/bin/env python3
"""An independent NumPy check of `rbm eval`: AIS (and optionally RAISE and exact log Z) on a
model file and an MNIST-style test set.

    ~/.venvs/baselines/bin/python scripts/ais_check.py --model runs/seed-mnist/model.safetensors \
        --data ../shared/data/mnist [--binarize stochastic|threshold] [--runs 100] [--betas 14500] \
        [--raise-rows 100] [--exact] [--rows N] [--seed 0] [--dtype float64|float32]

Independent of the Rust code except for the binarized test rows: with `--binarize stochastic`
the rows are drawn with the same counter-based generator as `rbm eval` (SplitMix64 keys,
re-implemented here) so that both score the same binary rows; everything else — the base rate
(Salakhutdinov's smoothing: (count + 5·N/100) / (N + 5·N/100) instead of the crate's), the
schedule, the random numbers of the chains (NumPy's PCG64), the arithmetic (float64 by
default) — is this file's own. Prints one JSON object.

The annealing path is the standard one: p_β(v, h) ∝ exp((1−β) b_Aᵀv + β(bᵀv + cᵀh + hᵀWv)),
log p*_β(v) = b_Aᵀv + β(b − b_A)ᵀv + Σ_j softplus(β(c_j + W_j·v)),
log Z_0 = Σ_i softplus(b_A,i) + H log 2.
"""

import argparse
import gzip
import json
import os
import struct
import time

import numpy as np

# ---------------------------------------------------------------------------------------------
# Files


def load_safetensors(path):
    """The tensors of a safetensors file as float64 arrays (parsed by hand: 8-byte header
    length, JSON header, raw little-endian data)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", info
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"])
    return out


def load_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw[4 + 4 * ndim :], dtype=np.uint8).reshape(dims)


def find(dir_, name):
    for cand in (name, name + ".gz"):
        p = os.path.join(dir_, cand)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(os.path.join(dir_, name))


# ---------------------------------------------------------------------------------------------
# The crate's counter-based generator, for the same stochastic binarization as `rbm eval`.

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def key_new(seed):
    return mix64((seed + GOLDEN) & M64)


def derive(key, x):
    return mix64(key ^ mix64((((x + GOLDEN) & M64) * GOLDEN) & M64))


def mix64_np(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def binarize_stochastic(pixels):
    """Row r, pixel j: 1 when draw j of key new(0).derive(22).derive(r) (the crate's
    EVAL_BINARIZE_SEED and tags::EVAL_BINARIZE) is below pixel/255, as rbm's Bernoulli
    threshold computes it: (u >> 8) < trunc(f32(p) · 2^24)."""
    n, v = pixels.shape
    root = derive(key_new(0), 22)
    keys = np.array([derive(root, r) for r in range(n)], dtype=np.uint64)[:, None]
    counters = np.arange((v + 1) // 2, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        words = mix64_np(keys + (counters + np.uint64(1)) * np.uint64(GOLDEN))
    draws = np.empty((n, 2 * words.shape[1]), dtype=np.uint64)
    draws[:, 0::2] = words & np.uint64(0xFFFFFFFF)
    draws[:, 1::2] = words >> np.uint64(32)
    draws = draws[:, :v]
    p = pixels.astype(np.float32) / np.float32(255.0)
    thresh = (p * np.float32(16777216.0)).astype(np.int64)
    return ((draws >> np.uint64(8)).astype(np.int64) < thresh).astype(np.float64)


# ---------------------------------------------------------------------------------------------
# AIS, RAISE, exact


def softplus(x):
    return np.logaddexp(0.0, x)


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def standard_betas(n):
    n1 = max(1, round(n / 29))
    n2 = max(1, min(round(8 * n / 29), n - n1 - 1))
    n3 = n - n1 - n2
    return np.concatenate(
        [
            np.linspace(0.0, 0.5, n1, endpoint=False),
            np.linspace(0.5, 0.9, n2, endpoint=False),
            np.linspace(0.9, 1.0, n3 + 1),
        ]
    )


def log_mean_exp_bounds(lw):
    m = lw.max()
    w = np.exp(lw - m)
    mean = w.mean()
    se = w.std(ddof=1) / np.sqrt(len(w))
    lo = m + np.log(mean - 3 * se) if mean > 3 * se else -np.inf
    return m + np.log(mean), lo, m + np.log(mean + 3 * se)


class Model:
    def __init__(self, t, dtype):
        self.W = t["W"].astype(dtype)  # H × V
        self.b = t["v_bias"].astype(dtype)
        self.c = t["h_bias"].astype(dtype)
        self.dtype = dtype

    def neg_free_energy(self, v):
        x = v.astype(self.dtype) @ self.W.T + self.c
        return v @ self.b.astype(np.float64) + softplus(x.astype(np.float64)).sum(1)


def ais(m, b_a, betas, runs, rng):
    """log Z by AIS from the base rate b_A; returns (log Z, lo, hi, log weights)."""
    dt = m.dtype
    H = m.W.shape[0]
    db = (m.b.astype(np.float64) - b_a)
    v = (rng.random((runs, len(b_a))) < sigmoid(b_a)).astype(dt)
    lw = np.zeros(runs)
    b_a_t = b_a.astype(dt)
    for k in range(1, len(betas)):
        bk, bp = betas[k], betas[k - 1]
        x = (v @ m.W.T + m.c).astype(np.float64)
        lw += (bk - bp) * (v.astype(np.float64) @ db) + softplus(bk * x).sum(1) - softplus(bp * x).sum(1)
        if k < len(betas) - 1:
            h = (rng.random(x.shape) < sigmoid(bk * x)).astype(dt)
            pre = bk * (h @ m.W) + ((1 - bk) * b_a_t + bk * m.b)
            v = (rng.random(pre.shape) < sigmoid(pre.astype(np.float64))).astype(dt)
    log_z0 = softplus(b_a).sum() + H * np.log(2.0)
    est, lo, hi = log_mean_exp_bounds(lw)
    return log_z0 + est, log_z0 + lo, log_z0 + hi, lw


def raise_(m, b_a, betas, rows, rng):
    """log p(v) of each row by reverse annealing (one run per row)."""
    dt = m.dtype
    H = m.W.shape[0]
    db = (m.b.astype(np.float64) - b_a)
    b_a_t = b_a.astype(dt)
    v = rows.astype(dt)
    lw = m.neg_free_energy(v) - (softplus(b_a).sum() + H * np.log(2.0))
    for k in range(len(betas) - 1, 0, -1):
        bk, bp = betas[k], betas[k - 1]
        x = (v @ m.W.T + m.c).astype(np.float64)
        h = (rng.random(x.shape) < sigmoid(bk * x)).astype(dt)
        pre = bk * (h @ m.W) + ((1 - bk) * b_a_t + bk * m.b)
        v = (rng.random(pre.shape) < sigmoid(pre.astype(np.float64))).astype(dt)
        x = (v @ m.W.T + m.c).astype(np.float64)
        lw += (bp - bk) * (v.astype(np.float64) @ db) + softplus(bp * x).sum(1) - softplus(bk * x).sum(1)
    return lw


def exact_log_z(m):
    """log Z by summing over the hidden states (H ≤ 22), in chunks."""
    W = m.W.astype(np.float64)
    b, c = m.b.astype(np.float64), m.c.astype(np.float64)
    H = W.shape[0]
    assert H <= 22, "exact log Z here sums over the hidden layer only"
    terms = []
    for start in range(0, 1 << H, 1 << 14):
        s = np.arange(start, min(start + (1 << 14), 1 << H))
        h = ((s[:, None] >> np.arange(H)[None, :]) & 1).astype(np.float64)
        terms.append(h @ c + softplus(h @ W + b).sum(1))
    t = np.concatenate(terms)
    mx = t.max()
    return mx + np.log(np.exp(t - mx).sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True, help="folder with the MNIST IDX files")
    ap.add_argument("--binarize", choices=["stochastic", "threshold"], default="stochastic")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--betas", type=int, default=14500)
    ap.add_argument("--raise-rows", type=int, default=0, help="RAISE on this many evenly spaced rows")
    ap.add_argument("--exact", action="store_true")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                    help="arithmetic of the products (log-weights are float64 either way)")
    args = ap.parse_args()

    dtype = np.float64 if args.dtype == "float64" else np.float32
    m = Model(load_safetensors(args.model), dtype)
    train = load_idx(find(args.data, "train-images-idx3-ubyte"))
    train = train.reshape(len(train), -1)
    test = load_idx(find(args.data, "t10k-images-idx3-ubyte"))
    test = test.reshape(len(test), -1)
    if args.rows:
        test = test[: args.rows]
    if args.binarize == "stochastic":
        rows = binarize_stochastic(test)
    else:
        rows = (test >= 128).astype(np.float64)

    # Salakhutdinov's base rate: pseudo-counts of 5 per batch of 100 rows.
    n = len(train)
    count = (train.astype(np.float64) / 255.0).sum(0)
    pseudo = 5.0 * n / 100.0
    p = (count + pseudo) / (n + pseudo)
    b_a = np.log(p) - np.log1p(-p)

    rng = np.random.default_rng(args.seed)
    betas = standard_betas(args.betas)
    t = time.time()
    log_z, lo, hi, lw = ais(m, b_a, betas, args.runs, rng)
    ais_s = time.time() - t
    mnf = m.neg_free_energy(rows).mean()
    out = {
        "model": args.model,
        "binarize": args.binarize,
        "rows": len(rows),
        "runs": args.runs,
        "temperatures": len(betas) - 1,
        "dtype": args.dtype,
        "log_z": log_z,
        "log_z_lo": lo if np.isfinite(lo) else None,
        "log_z_hi": hi,
        "test_ll": mnf - log_z,
        "test_ll_lo": mnf - hi,
        "test_ll_hi": (mnf - lo) if np.isfinite(lo) else None,
        "ais_seconds": ais_s,
    }
    if args.raise_rows:
        k = min(args.raise_rows, len(rows))
        subset = rows[[i * len(rows) // k for i in range(k)]]
        t = time.time()
        r = raise_(m, b_a, betas, subset, rng)
        out["reverse_test_ll"] = r.mean()
        out["reverse_test_ll_se"] = r.std(ddof=1) / np.sqrt(k)
        out["ais_test_ll_reverse_rows"] = m.neg_free_energy(subset).mean() - log_z
        out["reverse_seconds"] = time.time() - t
    if args.exact:
        z = exact_log_z(m)
        out["exact_log_z"] = z
        out["exact_test_ll"] = mnf - z
    print(json.dumps(out))


if __name__ == "__main__":
    main()
