"""rbm.BernoulliRBM beside scikit-learn's BernoulliRBM, in one process on one machine.

(a) scikit-learn's gallery example "Restricted Boltzmann Machine features for digit
    classification" (load_digits, nudge_dataset, 0-1 scaling, an RBM + LogisticRegression
    pipeline with the gallery's hyper-parameters), each RBM swapped in: test accuracy and the
    RBM's fit time.
(b) MNIST 784-500 (60,000 training images / 255), n_iter=10, scikit-learn's defaults
    otherwise (batch_size=10, learning_rate=0.1): fit time.

Usage: python python/bench/compare_sklearn.py [--reps 3] [--mnist DIR] [--mnist-reps 1]
       [--mnist-iter 10] [--skip-mnist]
Prints one line per measurement and a JSON summary as the last line.
"""

import argparse
import gzip
import json
import os
import statistics
import time

import numpy as np
from scipy.ndimage import convolve
from sklearn import datasets, linear_model
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM as SkRBM
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import minmax_scale

import rbm


def nudge_dataset(X, Y):
    """The gallery's: the 8x8 images of X shifted by 1px in 4 directions (5x the data)."""
    direction_vectors = [
        [[0, 1, 0], [0, 0, 0], [0, 0, 0]],
        [[0, 0, 0], [1, 0, 0], [0, 0, 0]],
        [[0, 0, 0], [0, 0, 1], [0, 0, 0]],
        [[0, 0, 0], [0, 0, 0], [0, 1, 0]],
    ]

    def shift(x, w):
        return convolve(x.reshape((8, 8)), mode="constant", weights=w).ravel()

    X = np.concatenate(
        [X] + [np.apply_along_axis(shift, 1, X, vector) for vector in direction_vectors]
    )
    Y = np.concatenate([Y for _ in range(5)], axis=0)
    return X, Y


# The gallery's LogisticRegression(solver="newton-cg", tol=1) stops after 0 iterations with
# scikit-learn 1.9 (its coefficients stay 0: about 10% accuracy, for either RBM), so the
# logistic regression here has newton-cg's default tolerance; everything else is the gallery's.
LOGISTIC_TOL = 1e-4


def gallery(cls, data, seed):
    """The gallery's pipeline with `cls` as the RBM: (accuracy, RBM fit seconds)."""
    X_train, X_test, Y_train, Y_test = data
    logistic = linear_model.LogisticRegression(solver="newton-cg", tol=LOGISTIC_TOL)
    model = cls(random_state=seed, verbose=False)
    pipe = Pipeline(steps=[("rbm", model), ("logistic", logistic)])
    model.learning_rate = 0.06
    model.n_iter = 10
    model.n_components = 100
    logistic.C = 6000
    t = time.perf_counter()
    model.fit(X_train)
    fit_s = time.perf_counter() - t
    # The pipeline as the gallery fits it (the RBM fitted again inside), then scored.
    pipe.fit(X_train, Y_train)
    accuracy = float((pipe.predict(X_test) == Y_test).mean())
    return accuracy, fit_s


def read_idx_images(path):
    """An IDX3 ubyte file (optionally .gz) as an (n, rows*cols) uint8 array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    if magic != 0x00000803:
        raise ValueError(f"{path}: not an IDX3 ubyte file (magic {magic:#x})")
    n, r, c = (int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(3))
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, r * c)


def find_mnist(arg):
    for d in [arg, os.environ.get("RBM_DATA") and os.path.join(os.environ["RBM_DATA"], "mnist"),
              os.path.join(os.path.dirname(__file__), "../../../shared/data/mnist")]:
        if d and os.path.isdir(d):
            return d
    raise SystemExit("MNIST not found: pass --mnist DIR")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--mnist", default=None)
    ap.add_argument("--mnist-reps", type=int, default=1)
    ap.add_argument("--mnist-iter", type=int, default=10)
    ap.add_argument("--skip-mnist", action="store_true")
    args = ap.parse_args()
    summary = {"cores": os.cpu_count(), "rbm": rbm.__version__}

    X, y = datasets.load_digits(return_X_y=True)
    X = np.asarray(X, "float32")
    X, Y = nudge_dataset(X, y)
    X = minmax_scale(X, feature_range=(0, 1))  # 0-1 scaling
    data = train_test_split(X, Y, test_size=0.2, random_state=0)
    res = {"sklearn": [], "rbm": []}
    for rep in range(args.reps):
        for name, cls in (("sklearn", SkRBM), ("rbm", rbm.BernoulliRBM)):
            acc, fit_s = gallery(cls, data, seed=rep)
            res[name].append((acc, fit_s))
            print(f"gallery {name:8s} seed {rep}: accuracy {acc:.4f}, RBM fit {fit_s:.3f} s",
                  flush=True)
    g = {}
    for name, rows in res.items():
        g[name] = {
            "accuracy_median": statistics.median(a for a, _ in rows),
            "fit_s_median": statistics.median(s for _, s in rows),
            "accuracy": [a for a, _ in rows],
            "fit_s": [s for _, s in rows],
        }
    g["fit_ratio"] = g["sklearn"]["fit_s_median"] / g["rbm"]["fit_s_median"]
    g["accuracy_diff_points"] = 100 * (
        g["rbm"]["accuracy_median"] - g["sklearn"]["accuracy_median"])
    print(f"gallery: accuracy sklearn {g['sklearn']['accuracy_median']:.4f}, "
          f"rbm {g['rbm']['accuracy_median']:.4f}; fit sklearn "
          f"{g['sklearn']['fit_s_median']:.3f} s, rbm {g['rbm']['fit_s_median']:.3f} s, "
          f"ratio {g['fit_ratio']:.1f}x", flush=True)
    summary["gallery"] = g

    if not args.skip_mnist:
        d = find_mnist(args.mnist)
        name = "train-images-idx3-ubyte"
        path = os.path.join(d, name + ".gz")
        if not os.path.exists(path):
            path = os.path.join(d, name)
        Xm = read_idx_images(path).astype(np.float64) / 255.0
        m = {"sklearn": [], "rbm": []}
        for rep in range(args.mnist_reps):
            for name, cls in (("sklearn", SkRBM), ("rbm", rbm.BernoulliRBM)):
                est = cls(n_components=500, n_iter=args.mnist_iter, random_state=rep)
                t = time.perf_counter()
                est.fit(Xm)
                s = time.perf_counter() - t
                m[name].append(s)
                pll = float(est.score_samples(Xm[:2000]).mean())
                print(f"mnist {name:8s} seed {rep}: fit {s:.1f} s "
                      f"(784-500, n_iter={args.mnist_iter}), pseudo-likelihood of 2000 "
                      f"rows {pll:.2f}", flush=True)
        mm = {k: statistics.median(v) for k, v in m.items()}
        summary["mnist"] = {"fit_s": m, "fit_s_median": mm, "n_iter": args.mnist_iter,
                            "fit_ratio": mm["sklearn"] / mm["rbm"]}
        print(f"mnist: fit sklearn {mm['sklearn']:.1f} s, rbm {mm['rbm']:.1f} s, ratio "
              f"{mm['sklearn'] / mm['rbm']:.1f}x", flush=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
