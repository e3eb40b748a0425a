"""``rbm.BernoulliRBM``: scikit-learn's ``BernoulliRBM`` on the ``rbm`` crate's kernels."""

import json
import numbers
import os
import time
from typing import NamedTuple, Optional

import numpy as np
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _native

__all__ = ["BernoulliRBM", "LogLikelihood"]

_METHODS = ("cd", "pcd", "fpcd", "tempering")


class LogLikelihood(NamedTuple):
    """A mean log-likelihood in nats per row, with its bounds.

    ``lower <= estimate <= upper``: for AIS the bounds on ``log Z`` of 3 standard errors of
    the mean importance weight (``upper`` may be ``inf``), for RAISE the estimate ∓ 3
    standard errors over rows, for the exact value the value itself.
    """

    estimate: float
    lower: float
    upper: float
    log_z: Optional[float]
    rows: int
    method: str


def _seed(random_state):
    """The crate's one u64 seed from a scikit-learn ``random_state``: an int is the seed
    itself; ``None`` (numpy's global generator) and a ``RandomState`` draw it."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        check_random_state(random_state)  # the same error as scikit-learn's for bad ints
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _dense32(X):
    """``X`` (validated: ndarray or CSR) as a C-contiguous float32 ndarray."""
    if sp.issparse(X):
        X = X.toarray()
    return np.ascontiguousarray(X, dtype=np.float32)


class BernoulliRBM(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Bernoulli Restricted Boltzmann Machine (RBM), a drop-in for scikit-learn's
    :class:`sklearn.neural_network.BernoulliRBM` on the ``rbm`` crate's kernels.

    A Restricted Boltzmann Machine with binary visible units and binary hidden units,
    trained by persistent contrastive divergence (PCD-1, Tieleman 2008) with scikit-learn's
    parameters, defaults, initialisation (weights N(0, 0.01²), zero biases) and update rule
    (plain SGD, sequential minibatches of ``batch_size`` rows, the last one shorter,
    ``batch_size`` persistent chains). Every computation runs in Rust, without the GIL, on
    ``n_jobs`` threads.

    Input values: like scikit-learn's, any finite real ``X`` is used as given (values in
    ``[0, 1]`` are the probabilities of binary units; others are accepted because
    scikit-learn accepts them). With ``strict=True`` a value outside ``[0, 1]`` is a
    ``ValueError`` naming its row and column. NaN and infinities are always a
    ``ValueError``.

    Parameters
    ----------
    n_components : int, default=256
        Number of binary hidden units.
    learning_rate : float, default=0.1
        The learning rate for weight updates (of the first step with ``learning_rate_end``).
    batch_size : int, default=10
        Number of examples per minibatch.
    n_iter : int, default=10
        Number of iterations (epochs) over the training dataset.
    verbose : int, default=0
        Print scikit-learn's line per iteration (pseudo-likelihood and time).
    random_state : int, RandomState instance or None, default=None
        An int seeds everything (initial weights, training draws, sampling) and gives the
        same model bit for bit whatever ``n_jobs``; ``None`` or a ``RandomState`` draw the
        seed from numpy's generator. ``score_samples`` draws its flipped bits as
        scikit-learn does.
    k : int, default=1
        Gibbs steps of the negative phase.
    method : {"pcd", "cd", "fpcd", "tempering"}, default="pcd"
        Persistent CD (scikit-learn's), CD-k, fast-weights PCD, or parallel tempering.
    n_chains : int or None, default=None
        Persistent chains (per temperature); ``None``: ``batch_size``, as scikit-learn.
    momentum : float in [0, 1), default=0.0
        SGD momentum.
    weight_decay : float >= 0, default=0.0
        L2 penalty on the weights.
    centering : float in (0, 1] or None, default=None
        Centered gradient (Melchior et al. 2016) with offsets moving at this rate.
    learning_rate_end : float or None, default=None
        Decay the learning rate linearly to this value over ``fit``'s steps.
    fast_learning_rate : float or None, default=None
        FPCD's fast learning rate (``None``: ``learning_rate``).
    fast_decay : float in [0, 1), default=0.95
        FPCD's decay of the fast weights per step.
    n_temperatures : int >= 2, default=10
        Parallel tempering's inverse temperatures, from 1 down to ``beta_min``.
    beta_min : float in [0, 1), default=0.5
        Parallel tempering's hottest inverse temperature.
    strict : bool, default=False
        Refuse values outside ``[0, 1]`` (``ValueError``) instead of using them as given.
    n_jobs : int or None, default=None
        Threads (``None`` or -1: all cores; -2: all but one, ...).

    Attributes
    ----------
    intercept_hidden_ : ndarray of shape (n_components,)
        Biases of the hidden units.
    intercept_visible_ : ndarray of shape (n_features,)
        Biases of the visible units.
    components_ : ndarray of shape (n_components, n_features)
        Weight matrix.
    h_samples_ : ndarray of shape (n_chains, n_components)
        Hidden states drawn from ``p(h | v)`` of the persistent chains (the crate's chains
        hold visible states; scikit-learn's hold these hidden states). Zeros without chains.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during ``fit`` (when ``X`` has string column names).

    The fitted attributes are copies of the native model's parameters, refreshed by ``fit``
    and ``partial_fit``: assigning to them does not change the model.
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "k": [Interval(numbers.Integral, 1, None, closed="left")],
        "method": [StrOptions(set(_METHODS))],
        "n_chains": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "momentum": [Interval(numbers.Real, 0, 1, closed="left")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "centering": [Interval(numbers.Real, 0, 1, closed="right"), None],
        "learning_rate_end": [Interval(numbers.Real, 0, None, closed="left"), None],
        "fast_learning_rate": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "fast_decay": [Interval(numbers.Real, 0, 1, closed="left")],
        "n_temperatures": [Interval(numbers.Integral, 2, None, closed="left")],
        "beta_min": [Interval(numbers.Real, 0, 1, closed="left")],
        "strict": ["boolean"],
        "n_jobs": [Interval(numbers.Integral, None, -1, closed="right"),
                   Interval(numbers.Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        n_components=256,
        *,
        learning_rate=0.1,
        batch_size=10,
        n_iter=10,
        verbose=0,
        random_state=None,
        k=1,
        method="pcd",
        n_chains=None,
        momentum=0.0,
        weight_decay=0.0,
        centering=None,
        learning_rate_end=None,
        fast_learning_rate=None,
        fast_decay=0.95,
        n_temperatures=10,
        beta_min=0.5,
        strict=False,
        n_jobs=None,
    ):
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.k = k
        self.method = method
        self.n_chains = n_chains
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.centering = centering
        self.learning_rate_end = learning_rate_end
        self.fast_learning_rate = fast_learning_rate
        self.fast_decay = fast_decay
        self.n_temperatures = n_temperatures
        self.beta_min = beta_min
        self.strict = strict
        self.n_jobs = n_jobs

    # -- settings -------------------------------------------------------------------------

    def _threads(self):
        """The pool's threads (0: all cores)."""
        n = self.n_jobs
        if n is None:
            return 0
        if n < 0:
            return max((os.cpu_count() or 1) + 1 + n, 1)
        return int(n)

    def _train_threads(self, n_features):
        """The threads of a training call: ``n_jobs``'s, or one when a step is too small to
        gain from more (below 2^20 multiply-adds per product: thread hand-overs then cost
        more than they save; the result is the same bit for bit either way)."""
        work = int(self.batch_size) * int(n_features) * int(self.n_components)
        return 1 if work < (1 << 20) else self._threads()

    def _config_json(self, seed):
        """The crate's ``Config`` of these parameters, as JSON."""
        chains = int(self.n_chains if self.n_chains is not None else self.batch_size)
        if self.method == "cd":
            method = {"kind": "cd"}
        elif self.method == "pcd":
            method = {"kind": "pcd", "chains": chains}
        elif self.method == "fpcd":
            fast_lr = self.fast_learning_rate
            fast_lr = self.learning_rate if fast_lr is None else fast_lr
            method = {
                "kind": "fast_pcd",
                "chains": chains,
                "fast": {"lr": float(fast_lr), "decay": float(self.fast_decay)},
            }
        else:
            method = {
                "kind": "tempering",
                "chains": chains,
                "ladder": {
                    "temperatures": int(self.n_temperatures),
                    "beta_min": float(self.beta_min),
                },
            }
        end = self.learning_rate_end
        centering = self.centering
        return json.dumps(
            {
                "n_hidden": int(self.n_components),
                "epochs": max(int(self.n_iter), 1),
                "batch_size": int(self.batch_size),
                "k": int(self.k),
                "learning_rate": float(self.learning_rate),
                "lr_end": None if end is None else float(end),
                "method": method,
                "momentum": float(self.momentum),
                "weight_decay": float(self.weight_decay),
                "centering": None if centering is None else float(centering),
                "marginal_bias": False,
                "binarize": "none",
                "order": "sequential",
                "drop_last": False,
                "seed": int(seed),
            }
        )

    def _new_native(self):
        native = _native.Estimator(self._config_json(_seed(self.random_state)))
        native.validate()
        return native

    # -- fitting --------------------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the model to the data X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : BernoulliRBM
            The fitted model.
        """
        X = validate_data(self, X, accept_sparse="csr", dtype=(np.float64, np.float32))
        native = self._new_native()
        X32 = _dense32(X)
        if self.n_iter == 0:
            native = _native.Estimator.init(native.config_json(), X32.shape[1])
        else:
            callback = self._verbose_callback(X32) if self.verbose else None
            native.fit(X32, bool(self.strict), self._train_threads(X32.shape[1]), callback)
        self._native = native
        self._set_fitted(X.dtype)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Fit the model to the partial segment of the data X: one update on all of ``X``
        as one batch, with the persistent chains of the calls before (as scikit-learn's).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : BernoulliRBM
            The fitted model.
        """
        first_pass = not hasattr(self, "components_")
        X = validate_data(
            self, X, accept_sparse="csr", dtype=np.float64, reset=first_pass
        )
        if first_pass or getattr(self, "_native", None) is None:
            self._native = self._new_native()
        X32 = _dense32(X)
        threads = self._train_threads(X32.shape[1])
        self._native.partial_fit(X32, bool(self.strict), threads)
        self._set_fitted(np.float64)
        return self

    def _set_fitted(self, dtype):
        """The fitted attributes from the native model, in ``dtype``."""
        W, b, c = self._native.params()
        self.components_ = W.astype(dtype)
        self.intercept_hidden_ = c.astype(dtype)
        self.intercept_visible_ = b.astype(dtype)
        h = self._native.h_samples(self._threads())
        if h is None:
            chains = self.n_chains if self.n_chains is not None else self.batch_size
            h = np.zeros((chains, self.n_components))
        self.h_samples_ = h.astype(dtype)
        self._n_features_out = self.components_.shape[0]

    def _verbose_callback(self, X32):
        """scikit-learn's progress line after each iteration."""
        name = type(self).__name__

        def on_epoch(epoch, seconds, native):
            pll = self._pseudo_likelihood(native, X32).mean()
            print(
                "[%s] Iteration %d, pseudo-likelihood = %.2f, time = %.2fs"
                % (name, epoch, pll, seconds)
            )

        return on_epoch

    # -- transforming and scoring ---------------------------------------------------------

    def _check(self, X, **kwargs):
        check_is_fitted(self)
        return validate_data(self, X, accept_sparse="csr", reset=False, **kwargs)

    def transform(self, X):
        """Compute the hidden layer activation probabilities, P(h=1|v=X).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The data to be transformed.

        Returns
        -------
        h : ndarray of shape (n_samples, n_components)
            Latent representations of the data (in the dtype of ``X``).
        """
        X = self._check(X, dtype=(np.float64, np.float32))
        h = self._native.transform(_dense32(X), bool(self.strict), self._threads())
        return h.astype(X.dtype, copy=False)

    def reconstruct(self, X):
        """The mean-field reconstruction ``p(v = 1 | h)`` with ``h = p(h = 1 | v = X)``.

        Returns
        -------
        v : ndarray of shape (n_samples, n_features)
        """
        X = self._check(X, dtype=(np.float64, np.float32))
        v = self._native.reconstruct(_dense32(X), bool(self.strict), self._threads())
        return v.astype(X.dtype, copy=False)

    def gibbs(self, v):
        """Perform one Gibbs sampling step.

        Parameters
        ----------
        v : ndarray of shape (n_samples, n_features)
            Values of the visible layer to start from.

        Returns
        -------
        v_new : ndarray of shape (n_samples, n_features)
            Values of the visible layer after one Gibbs step (booleans, as scikit-learn's).
        """
        v = self._check(v, dtype=(np.float64, np.float32))
        states, _ = self._native.gibbs(
            _dense32(v), 1, bool(self.strict), self._threads()
        )
        return states > 0.5

    def score_samples(self, X):
        """Compute the pseudo-likelihood of X, as scikit-learn does: for each row one
        randomly chosen unit is flipped and ``n_features * log σ(F(v_flipped) − F(v))``
        returned, the free energies computed by the crate. The flipped units are drawn
        from ``check_random_state(self.random_state)`` exactly as scikit-learn draws them.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Values of the visible layer. Must be all-boolean (not checked).

        Returns
        -------
        pseudo_likelihood : ndarray of shape (n_samples,)
            Value of the pseudo-likelihood (proxy for likelihood).
        """
        v = self._check(X)
        return self._pseudo_likelihood(self._native, _dense32(v))

    def _pseudo_likelihood(self, native, v):
        rng = check_random_state(self.random_state)
        ind = (np.arange(v.shape[0]), rng.randint(0, v.shape[1], v.shape[0]))
        v_ = v.copy()
        v_[ind] = 1 - v_[ind]
        threads = self._threads()
        fe = native.free_energy(v, bool(self.strict), threads)
        fe_ = native.free_energy(v_, bool(self.strict), threads)
        return -v.shape[1] * np.logaddexp(0, -(fe_ - fe))

    # -- beyond scikit-learn --------------------------------------------------------------

    def log_likelihood(
        self, X, method="ais", runs=None, temperatures=14500, base_rate=None
    ):
        """The mean log-likelihood of the rows of ``X`` in nats, with its bounds.

        Rows are binarized by one Bernoulli draw per value from the crate's fixed
        evaluation stream (0/1 rows are kept), as ``rbm eval`` does.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        method : {"ais", "raise", "exact"}, default="ais"
            Annealed importance sampling (tends to overestimate), reverse annealing from
            each row (RAISE, tends to underestimate), or exact ``log Z`` by enumerating the
            smaller layer (at most 25 units).
        runs : int or None
            AIS runs (default 100) or RAISE runs per row (default 1).
        temperatures : int, default=14500
            Inverse temperatures of the annealing schedule.
        base_rate : array-like of shape (n_features,) or None
            Column means that AIS and RAISE anneal from; ``None``: those of the training
            data recorded by ``fit``.

        Returns
        -------
        LogLikelihood
            ``(estimate, lower, upper, log_z, rows, method)``.
        """
        X = self._check(X, dtype=(np.float64, np.float32))
        if method not in ("ais", "raise", "exact"):
            raise ValueError(
                f"method must be 'ais', 'raise' or 'exact', got {method!r}"
            )
        if runs is None:
            runs = 1 if method == "raise" else 100
        if base_rate is not None:
            base_rate = [float(x) for x in np.asarray(base_rate, dtype=np.float64)]
        est, lo, hi, log_z, rows = self._native.log_likelihood(
            _dense32(X),
            method,
            int(runs),
            int(temperatures),
            bool(self.strict),
            self._threads(),
            base_rate,
        )
        return LogLikelihood(est, lo, hi, log_z, rows, method)

    def sample(self, n_samples, steps=1000, clamp=None):
        """Generate (or inpaint) by Gibbs sampling.

        Parameters
        ----------
        n_samples : int
            Chains to run.
        steps : int, default=1000
            Gibbs steps.
        clamp : tuple (mask, values) or None
            ``None``: chains from noise (each unit on with probability ½). Else ``mask``, a
            boolean array of shape (n_features,), says which visible units are held fixed,
            at ``values`` (shape (n_features,) or (n_samples, n_features)); the free units
            start at 0 and are sampled.

        Returns
        -------
        samples : ndarray of shape (n_samples, n_features)
            The visible states (0/1) after ``steps`` steps.
        """
        check_is_fitted(self)
        n_samples, steps = int(n_samples), int(steps)
        if n_samples < 1 or steps < 0:
            raise ValueError(
                f"n_samples must be >= 1 and steps >= 0, got {n_samples} and {steps}"
            )
        threads = self._threads()
        if clamp is None:
            states, _ = self._native.sample(n_samples, steps, threads)
            return states.astype(np.float64)
        mask, values = clamp
        mask = np.ascontiguousarray(mask, dtype=bool)
        nf = self.n_features_in_
        if mask.shape != (nf,):
            raise ValueError(f"clamp mask must have shape ({nf},), got {mask.shape}")
        values = np.asarray(values, dtype=np.float32)
        start = np.zeros((n_samples, nf), dtype=np.float32)
        start[:, mask] = np.broadcast_to(values, (n_samples, nf))[:, mask]
        states, _ = self._native.gibbs(
            np.ascontiguousarray(start), steps, bool(self.strict), threads, mask
        )
        return states.astype(np.float64)

    def save(self, path):
        """Write the model to ``path`` in the crate's safetensors format (the file that
        ``rbm eval --model`` reads), with the settings and the training data's column
        means in its metadata."""
        check_is_fitted(self)
        self._native.save(os.fspath(path))

    @classmethod
    def load(cls, path, **params):
        """Read a model file written by ``save`` or by ``rbm train``. The parameters are
        those recorded in the file (for ``save``'s) and ``params``; ``n_components`` is
        the model's."""
        native = _native.Estimator.load(os.fspath(path))
        config = json.loads(native.config_json())
        kwargs = dict(
            n_components=config["n_hidden"],
            learning_rate=config["learning_rate"],
            batch_size=config["batch_size"],
            n_iter=config["epochs"],
            random_state=config["seed"],
            k=config["k"],
            momentum=config["momentum"],
            weight_decay=config["weight_decay"],
            centering=config["centering"],
            learning_rate_end=config["lr_end"],
        )
        m = config["method"]
        kind = m.get("kind", "cd")
        kwargs["method"] = {"fast_pcd": "fpcd"}.get(kind, kind)
        if m.get("chains") is not None:
            kwargs["n_chains"] = m["chains"]
        if kind == "fast_pcd":
            kwargs["fast_learning_rate"] = m["fast"]["lr"]
            kwargs["fast_decay"] = m["fast"]["decay"]
        if kind == "tempering":
            kwargs["n_temperatures"] = m["ladder"]["temperatures"]
            kwargs["beta_min"] = m["ladder"]["beta_min"]
        kwargs.update(params)
        est = cls(**kwargs)
        est._native = native
        est._set_fitted(np.float64)
        est.n_features_in_ = est.components_.shape[1]
        return est

    # -- scikit-learn protocol ------------------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        native = state.pop("_native", None)
        state["_native_bytes"] = None if native is None else native.to_bytes()
        return state

    def __setstate__(self, state):
        state = dict(state)
        data = state.pop("_native_bytes", None)
        super().__setstate__(state)
        if data is not None:
            self._native = _native.Estimator.from_bytes(data)
