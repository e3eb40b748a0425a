"""Restricted Boltzmann Machines on hand-written CPU kernels.

``rbm.BernoulliRBM`` is a drop-in for :class:`sklearn.neural_network.BernoulliRBM` (same
parameters, defaults, methods and fitted attributes) that runs on the ``rbm`` Rust crate,
without the GIL, on ``n_jobs`` threads, with what scikit-learn lacks: CD-k, PCD-k,
fast-weights PCD and parallel tempering, momentum, weight decay, centering, a learning-rate
schedule, log-likelihoods (exact, AIS, RAISE) with bounds, sampling and inpainting, and the
crate's safetensors model files.

>>> import numpy as np
>>> from rbm import BernoulliRBM
>>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
>>> model = BernoulliRBM(n_components=2, random_state=0).fit(X)
>>> model.transform(X).shape
(4, 2)
"""

from ._native import __version__
from ._sklearn import BernoulliRBM, LogLikelihood

__all__ = ["BernoulliRBM", "LogLikelihood", "__version__"]
