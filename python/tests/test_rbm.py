"""rbm.BernoulliRBM against scikit-learn's BernoulliRBM, and what scikit-learn lacks."""

import itertools
import json
import os
import pickle
import shutil
import subprocess

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.neural_network import BernoulliRBM as SkRBM

from rbm import BernoulliRBM, LogLikelihood

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.fixture(scope="module")
def digits():
    """load_digits scaled to [0, 1] (1797 rows of 64 grey values)."""
    return load_digits().data / 16.0


def exact_pll(model, X):
    """The mean pseudo-log-likelihood over all single-unit flips, in numpy (the same,
    deterministic yardstick for both implementations)."""
    W, b, c = model.components_, model.intercept_visible_, model.intercept_hidden_

    def free_energy(v):
        return -v @ b - np.logaddexp(0, v @ W.T + c).sum(1)

    f = free_energy(X)
    total = 0.0
    for i in range(X.shape[1]):
        v = X.copy()
        v[:, i] = 1 - v[:, i]
        total = total - np.logaddexp(0, -(free_energy(v) - f))
    return float(total.mean())


def recon_error(model, X):
    """Mean squared error of the mean-field reconstruction, in numpy."""
    h = expit(X @ model.components_.T + model.intercept_hidden_)
    v = expit(h @ model.components_ + model.intercept_visible_)
    return float(((v - X) ** 2).mean())


def test_fitted_model_matches_sklearn_within_the_spread_of_seeds(digits):
    # Measured on load_digits / 16 with n_components=64, n_iter=10, 6 seeds each (2 cores,
    # scikit-learn 1.9.1): exact pseudo-likelihood scikit-learn -19.95 (sd 0.18), rbm -19.59
    # (sd 0.14); reconstruction error 0.0376 (sd 0.0013) and 0.0375 (sd 0.0011). The means of
    # 3 seeds must agree within about 3 single-seed standard deviations of scikit-learn's.
    pll_tol, recon_tol = 0.6, 0.004
    ours, theirs = [], []
    for seed in range(3):
        for cls, out in ((BernoulliRBM, ours), (SkRBM, theirs)):
            m = cls(n_components=64, n_iter=10, random_state=seed).fit(digits)
            out.append((exact_pll(m, digits), recon_error(m, digits)))
    ours, theirs = np.mean(ours, axis=0), np.mean(theirs, axis=0)
    print(f"pseudo-likelihood rbm {ours[0]:.3f} sklearn {theirs[0]:.3f}; "
          f"reconstruction rbm {ours[1]:.5f} sklearn {theirs[1]:.5f}")
    assert abs(ours[0] - theirs[0]) < pll_tol
    assert abs(ours[1] - theirs[1]) < recon_tol


def test_transform_and_score_samples_follow_sklearns_formulas(digits):
    model = BernoulliRBM(n_components=16, n_iter=2, random_state=3).fit(digits)
    # transform is p(h = 1 | v) of the fitted parameters.
    want = expit(digits @ model.components_.T + model.intercept_hidden_)
    np.testing.assert_allclose(model.transform(digits), want, rtol=1e-5, atol=1e-6)
    # score_samples: scikit-learn's estimator, the same flips as scikit-learn draws them.
    sk = SkRBM(n_components=16, random_state=3)
    sk.components_ = model.components_
    sk.intercept_hidden_ = model.intercept_hidden_
    sk.intercept_visible_ = model.intercept_visible_
    sk.n_features_in_ = digits.shape[1]
    np.testing.assert_allclose(
        model.score_samples(digits), sk.score_samples(digits), rtol=1e-4, atol=1e-4
    )
    # The same random_state, the same flips: the same scores every call.
    np.testing.assert_array_equal(model.score_samples(digits), model.score_samples(digits))


def test_gibbs_is_one_step_of_samples(digits):
    model = BernoulliRBM(n_components=16, n_iter=2, random_state=0).fit(digits)
    v = model.gibbs(digits[:200])
    assert v.shape == (200, 64) and v.dtype == bool
    # Its mean follows p(v | h) of h ~ p(h | v): compare with the mean-field reconstruction.
    mean = np.mean([model.gibbs(digits[:200]).mean() for _ in range(20)])
    h = expit(digits[:200] @ model.components_.T + model.intercept_hidden_)
    assert abs(mean - expit(h @ model.components_ + model.intercept_visible_).mean()) < 0.02


def test_dtypes_are_preserved(digits):
    for dtype in (np.float32, np.float64):
        X = digits.astype(dtype)
        model = BernoulliRBM(n_components=8, n_iter=1, random_state=0).fit(X)
        assert model.components_.dtype == dtype
        assert model.transform(X).dtype == dtype


def test_same_int_seed_same_model_whatever_the_threads(digits):
    X = np.concatenate([digits] * 3)
    models = [
        BernoulliRBM(n_components=300, batch_size=64, n_iter=2, random_state=5,
                     n_jobs=n).fit(X)
        for n in (1, 2, None)
    ]
    for m in models[1:]:
        np.testing.assert_array_equal(m.components_, models[0].components_)
        np.testing.assert_array_equal(m.intercept_visible_, models[0].intercept_visible_)


def test_sparse_input_equals_dense(digits):
    X = (digits > 0.5).astype(np.float64)
    Xs = sp.csr_matrix(X)
    a = BernoulliRBM(n_components=8, n_iter=2, random_state=0).fit(X)
    b = BernoulliRBM(n_components=8, n_iter=2, random_state=0).fit(Xs)
    np.testing.assert_array_equal(a.components_, b.components_)
    np.testing.assert_array_equal(a.transform(X), b.transform(Xs))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(Xs))
    a.partial_fit(X[:30])
    b.partial_fit(Xs[:30])
    np.testing.assert_array_equal(a.components_, b.components_)


def test_partial_fit_is_one_update_on_all_rows(digits):
    model = BernoulliRBM(n_components=8, random_state=0)
    model.partial_fit(digits[:40])  # 40 rows in one step, though batch_size is 10
    first = model.components_.copy()
    # One step from the initial weights (N(0, 0.01²)): a change of at most lr per weight.
    assert np.abs(first).max() < 0.2
    model.partial_fit(digits[40:45])
    assert not np.array_equal(first, model.components_)
    assert model.h_samples_.shape == (10, 8)  # batch_size persistent chains
    # A second estimator with the same seed and calls: the same model.
    other = BernoulliRBM(n_components=8, random_state=0)
    other.partial_fit(digits[:40]).partial_fit(digits[40:45])
    np.testing.assert_array_equal(other.components_, model.components_)


def test_pickle_and_clone(digits):
    unfitted = BernoulliRBM(n_components=5, k=2, method="cd")
    assert pickle.loads(pickle.dumps(unfitted)).get_params() == unfitted.get_params()
    model = BernoulliRBM(n_components=12, n_iter=2, random_state=1, momentum=0.5).fit(digits)
    back = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(back.components_, model.components_)
    np.testing.assert_array_equal(back.transform(digits), model.transform(digits))
    # The trainer travels too: partial_fit continues the same way.
    model.partial_fit(digits[:20])
    back.partial_fit(digits[:20])
    np.testing.assert_array_equal(back.components_, model.components_)
    c = clone(model)
    assert c.get_params() == model.get_params() and not hasattr(c, "components_")


def test_errors_are_sklearns(digits):
    with pytest.raises(NotFittedError):
        BernoulliRBM().transform(digits)
    with pytest.raises(NotFittedError):
        BernoulliRBM().sample(2)
    model = BernoulliRBM(n_components=4, n_iter=1, random_state=0).fit(digits)
    with pytest.raises(ValueError, match="features"):
        model.transform(digits[:, :10])
    bad = digits.copy()
    bad[3, 7] = np.nan
    with pytest.raises(ValueError):
        BernoulliRBM().fit(bad)
    with pytest.raises(ValueError):
        model.set_params(no_such_parameter=1)
    with pytest.raises(TypeError):
        BernoulliRBM(no_such_parameter=1)
    with pytest.raises(ValueError):
        BernoulliRBM(learning_rate=-1.0).fit(digits)
    with pytest.raises(ValueError):
        BernoulliRBM(method="nope").fit(digits)
    with pytest.raises(FileNotFoundError):
        BernoulliRBM.load("/nonexistent/model.safetensors")


def test_values_outside_the_unit_interval(digits):
    X = digits * 3 - 1  # in [-1, 2]
    model = BernoulliRBM(n_components=8, n_iter=2, random_state=0).fit(X)  # as scikit-learn
    assert np.all(np.isfinite(model.transform(X)))
    with pytest.raises(ValueError, match=r"row 0, column 0: value -1 is not in \[0, 1\]"):
        BernoulliRBM(n_components=8, strict=True).fit(X)
    strict = BernoulliRBM(n_components=8, n_iter=1, strict=True, random_state=0).fit(digits)
    with pytest.raises(ValueError, match="not in"):
        strict.transform(X)


def test_dataframes_record_feature_names(digits):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(digits, columns=[f"px{i}" for i in range(64)])
    model = BernoulliRBM(n_components=3, n_iter=1, random_state=0).fit(df)
    assert list(model.feature_names_in_) == list(df.columns)
    assert list(model.get_feature_names_out()) == [f"bernoullirbm{i}" for i in range(3)]


def test_extensions_train(digits):
    for params in (
        dict(method="cd", k=3),
        dict(method="fpcd"),
        dict(method="tempering", n_temperatures=4),
        dict(momentum=0.5, weight_decay=1e-4, centering=0.1, learning_rate_end=0.01,
             n_chains=20),
    ):
        model = BernoulliRBM(n_components=16, n_iter=3, random_state=0, **params)
        model.fit(digits)
        assert np.isfinite(exact_pll(model, digits)), params


def test_verbose_prints_sklearns_line(digits, capsys):
    BernoulliRBM(n_components=4, n_iter=2, verbose=1, random_state=0).fit(digits)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[BernoulliRBM] Iteration 1, pseudo-likelihood = ")


def test_sample_and_inpaint(digits):
    model = BernoulliRBM(n_components=32, n_iter=5, random_state=0).fit(digits)
    s = model.sample(5, steps=20)
    assert s.shape == (5, 64) and set(np.unique(s)) <= {0.0, 1.0}
    mask = np.zeros(64, dtype=bool)
    mask[:32] = True
    values = (digits[:5] > 0.5).astype(float)
    out = model.sample(5, steps=20, clamp=(mask, values))
    np.testing.assert_array_equal(out[:, :32], values[:, :32])


def binary_digits():
    return (load_digits().data / 16.0 > 0.5).astype(np.float64)


def test_exact_log_likelihood_of_a_tiny_model():
    rng = np.random.RandomState(0)
    X = (rng.rand(50, 6) < 0.3).astype(float)
    model = BernoulliRBM(n_components=4, n_iter=20, learning_rate=0.1, random_state=0).fit(X)
    W, b, c = model.components_, model.intercept_visible_, model.intercept_hidden_
    states = np.array(list(itertools.product([0, 1], repeat=6)), dtype=float)
    neg_f = states @ b + np.logaddexp(0, states @ W.T + c).sum(1)
    log_z = np.logaddexp.reduce(neg_f)
    want = float(np.mean(X @ b + np.logaddexp(0, X @ W.T + c).sum(1)) - log_z)
    ll = model.log_likelihood(X, method="exact")
    assert isinstance(ll, LogLikelihood)
    assert ll.lower == ll.estimate == ll.upper
    assert abs(ll.estimate - want) < 1e-4, (ll, want)
    ais = model.log_likelihood(X, method="ais", runs=50, temperatures=1000)
    assert abs(ais.estimate - want) < 0.05 and ais.lower <= ais.estimate <= ais.upper


def write_idx(folder, prefix, images):
    """IDX files of `images` (n, 8, 8 uint8) and zero labels."""
    n = len(images)
    with open(os.path.join(folder, f"{prefix}-images-idx3-ubyte"), "wb") as f:
        f.write((0x803).to_bytes(4, "big") + b"".join(
            x.to_bytes(4, "big") for x in (n, 8, 8)) + images.tobytes())
    with open(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"), "wb") as f:
        f.write((0x801).to_bytes(4, "big") + n.to_bytes(4, "big") + bytes(n))


def rbm_binary():
    """The CLI: $RBM_BIN, else target/release/rbm; under CI a missing one is a failure."""
    path = os.environ.get("RBM_BIN") or os.path.join(REPO, "target", "release", "rbm")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        path = shutil.which("rbm") or path
    if not os.path.isfile(path):
        if os.environ.get("CI"):
            pytest.fail(f"the rbm CLI is missing at {path} (set RBM_BIN)")
        pytest.skip("the rbm CLI is not built (cargo build --release; or set RBM_BIN)")
    return path


def test_log_likelihood_matches_rbm_eval(tmp_path):
    binary = rbm_binary()
    pixels = (load_digits().data * 255 / 16).round().astype(np.uint8)  # 1797 × 64
    train, test = pixels[:1500], pixels[1500:]
    write_idx(tmp_path, "train", train.reshape(-1, 8, 8))
    write_idx(tmp_path, "t10k", test.reshape(-1, 8, 8))
    grey = lambda p: p.astype(np.float32) / np.float32(255)  # noqa: E731  (bytes / 255)
    model = BernoulliRBM(n_components=16, n_iter=5, random_state=7).fit(grey(train))
    path = tmp_path / "model.safetensors"
    model.save(path)
    out = subprocess.run(
        [binary, "eval", "--model", str(path), "--data", str(tmp_path), "--split", "test",
         "--ais-runs", "100", "--ais-betas", "2000", "--exact", "--seed", "7", "--json"],
        check=True, capture_output=True, text=True,
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    ais = model.log_likelihood(grey(test), method="ais", runs=100, temperatures=2000)
    exact = model.log_likelihood(grey(test), method="exact")
    print(report["test_ll"], ais.estimate, report["exact_test_ll"], exact.estimate)
    assert abs(ais.estimate - report["test_ll"]) < 0.01
    assert abs(exact.estimate - report["exact_test_ll"]) < 0.01
    # The file reads back as the same model.
    back = BernoulliRBM.load(path)
    np.testing.assert_array_equal(back.components_, model.components_)
    assert back.n_components == 16 and back.random_state == 7
