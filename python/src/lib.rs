//! `rbm._native`: the native half of the Python package `rbm`, a thin layer over the crate's
//! high-level API ([`rbm::Estimator`], [`rbm::Config`], [`rbm::data::Rows`]). Every method
//! checks its arguments, releases the GIL, runs the library on a rayon pool of the threads
//! asked for, and turns every [`rbm::Error`] (and any panic) into a Python exception. The
//! scikit-learn semantics (validation, dtypes, `random_state`, fitted attributes) live in the
//! Python half, `rbm/__init__.py`.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, OnceLock};

use numpy::ndarray::Array2;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::{
    PyFileNotFoundError, PyFloatingPointError, PyOSError, PyPermissionError, PyRuntimeError,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rbm::data::Rows;
use rbm::train::{EpochStats, OnEpoch};
use rbm::{Config, Error, Estimator, LogLikelihood, Rbm, StreamKey};

/// The tag of the stream that `h_samples_` is drawn from (`"HSAMPLES"`).
const H_SAMPLES_TAG: u64 = 0x4853_414d_504c_4553;

/// A Python exception for a library error: `ValueError` for shapes, settings, values and
/// file formats; `FileNotFoundError`, `PermissionError` or `OSError` for I/O;
/// scikit-learn's `NotFittedError` for an unfitted model; `FloatingPointError` when training
/// diverged. The message is the library's.
fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let msg = e.to_string();
    match &e {
        Error::Io { source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
            _ => PyOSError::new_err(msg),
        },
        Error::NotFitted => not_fitted(py, msg),
        Error::Diverged { .. } => PyFloatingPointError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}

/// scikit-learn's `NotFittedError` with `msg` (a `ValueError` if scikit-learn is missing).
fn not_fitted(py: Python<'_>, msg: String) -> PyErr {
    let class = py
        .import("sklearn.exceptions")
        .and_then(|m| m.getattr("NotFittedError"));
    match class.and_then(|c| c.call1((msg.clone(),))) {
        Ok(instance) => PyErr::from_value(instance),
        Err(_) => PyValueError::new_err(msg),
    }
}

/// The rayon pool of `threads` threads (0: as many as cores), made once per size.
fn pool(threads: usize) -> PyResult<Arc<rayon::ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(p) = pools.get(&threads) {
        return Ok(p.clone());
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("rbm-{i}"))
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start {threads} threads: {e}")))?;
    let p = Arc::new(p);
    pools.insert(threads, p.clone());
    Ok(p)
}

/// Runs `f` without the GIL on a pool of `threads` threads, a panic turned into a
/// `RuntimeError` and a library error into its exception.
fn compute<T: Send>(
    py: Python<'_>,
    threads: usize,
    f: impl FnOnce() -> rbm::Result<T> + Send,
) -> PyResult<T> {
    let pool = pool(threads)?;
    let out = py.detach(|| catch_unwind(AssertUnwindSafe(|| pool.install(f))));
    match out {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(to_py(py, e)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown".into());
            Err(PyRuntimeError::new_err(format!(
                "internal error in the rbm library (please report): {what}"
            )))
        }
    }
}

/// The rows of a C-contiguous `float32` matrix: checked to be in `[0, 1]` (`strict`) or
/// only finite.
fn rows<'a>(x: &'a [f32], n_cols: usize, strict: bool) -> rbm::Result<Rows<'a>> {
    if strict {
        Rows::new(x, n_cols)
    } else {
        Rows::finite(x, n_cols)
    }
}

/// The slice of a C-contiguous array (`ValueError` otherwise).
fn slice<'a, T: numpy::Element>(
    x: &'a PyReadonlyArray2<'_, T>,
) -> PyResult<(&'a [T], usize, usize)> {
    let (n, m) = (x.shape()[0], x.shape()[1]);
    let s = x
        .as_slice()
        .map_err(|_| PyValueError::new_err("expected a C-contiguous array"))?;
    Ok((s, n, m))
}

/// An `n × m` `float32` array from row-major values.
fn matrix<'py, T: numpy::Element>(
    py: Python<'py>,
    values: Vec<T>,
    n: usize,
    m: usize,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    let a = Array2::from_shape_vec((n, m), values)
        .map_err(|e| PyRuntimeError::new_err(format!("internal shape error: {e}")))?;
    Ok(a.into_pyarray(py))
}

/// An estimator of the crate: settings, and once fitted the model, its trainer (step count,
/// optimizer state, persistent chains) and the count of sampling calls.
#[pyclass(module = "rbm._native", name = "Estimator")]
struct PyEstimator {
    inner: Estimator,
}

/// The estimator's settings from JSON (the fields of `rbm::Config`).
fn config_from_json(json: &str) -> PyResult<Config> {
    let config: Config = serde_json::from_str(json)
        .map_err(|e| PyValueError::new_err(format!("invalid settings: {e}")))?;
    Ok(config)
}

#[pymethods]
impl PyEstimator {
    /// An unfitted estimator with the settings of `config_json` (validated when fitting).
    #[new]
    fn new(config_json: &str) -> PyResult<Self> {
        Ok(PyEstimator {
            inner: Estimator::new(config_from_json(config_json)?),
        })
    }

    /// An estimator around a new `n_visible`–`H` model as `fit` starts it (weights from
    /// N(0, 0.01²) of the seed), untrained: scikit-learn's `fit` with `n_iter=0`.
    #[staticmethod]
    fn init(py: Python<'_>, config_json: &str, n_visible: usize) -> PyResult<Self> {
        let config = config_from_json(config_json)?;
        let model =
            rbm::Rbm::new(n_visible, config.n_hidden, config.seed).map_err(|e| to_py(py, e))?;
        Ok(PyEstimator {
            inner: Estimator::from_model(model, config),
        })
    }

    /// The settings, as JSON.
    fn config_json(&self) -> PyResult<String> {
        serde_json::to_string(self.inner.config())
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    /// Checks the settings (`ValueError` naming the first one out of its domain).
    fn validate(&self, py: Python<'_>) -> PyResult<()> {
        self.inner.config().validate().map_err(|e| to_py(py, e))
    }

    /// Whether a model is fitted or loaded.
    fn fitted(&self) -> bool {
        self.inner.model().is_some()
    }

    /// Fits a new model to `x` (`float32`, C-contiguous); `on_epoch(epoch, seconds, model)` is
    /// called after each epoch (with the GIL) when given, `model` an estimator around a copy
    /// of the model as it is then.
    #[pyo3(signature = (x, strict, threads, on_epoch=None))]
    fn fit(
        &mut self,
        py: Python<'_>,
        x: PyReadonlyArray2<'_, f32>,
        strict: bool,
        threads: usize,
        on_epoch: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let (x, _, m) = slice(&x)?;
        let est = &mut self.inner;
        let mut failure: Option<PyErr> = None;
        let failed = &mut failure;
        let result = compute(py, threads, || {
            let data = rows(x, m, strict)?;
            let config = est.config().clone();
            est.fit_observed(
                &data,
                &mut OnEpoch(|stats: &EpochStats, model: &Rbm| {
                    let Some(callback) = &on_epoch else {
                        return Ok(());
                    };
                    Python::attach(|py| {
                        let snapshot = PyEstimator {
                            inner: Estimator::from_model(model.clone(), config.clone()),
                        };
                        let args = (stats.epoch + 1, stats.seconds, snapshot);
                        callback.call1(py, args).map(drop).map_err(|e| {
                            *failed = Some(e);
                            Error::config("verbose callback", "no exception", "an exception")
                        })
                    })
                }),
            )?;
            Ok(())
        });
        match (result, failure) {
            (_, Some(e)) => Err(e),
            (r, None) => r,
        }
    }

    /// One training step on all the rows of `x` (scikit-learn's `partial_fit`).
    fn partial_fit(
        &mut self,
        py: Python<'_>,
        x: PyReadonlyArray2<'_, f32>,
        strict: bool,
        threads: usize,
    ) -> PyResult<()> {
        let (x, _, m) = slice(&x)?;
        let est = &mut self.inner;
        compute(py, threads, || {
            est.partial_fit_batch(&rows(x, m, strict)?)?;
            Ok(())
        })
    }

    /// `p(h = 1 | v)` of each row of `x`, `N × H` `float32`.
    fn transform<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'_, f32>,
        strict: bool,
        threads: usize,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let (x, n, m) = slice(&x)?;
        let est = &self.inner;
        let out = compute(py, threads, || est.transform(&rows(x, m, strict)?))?;
        let h = est.config().n_hidden;
        matrix(py, out, n, h)
    }

    /// The mean-field reconstruction `p(v = 1 | p(h | v))` of each row of `x`, `N × V`.
    fn reconstruct<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'_, f32>,
        strict: bool,
        threads: usize,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let (x, n, m) = slice(&x)?;
        let est = &self.inner;
        let out = compute(py, threads, || est.reconstruct(&rows(x, m, strict)?))?;
        matrix(py, out, n, m)
    }

    /// The free energy `F(v)` of each row of `x` (in `[0, 1]` if `strict`, else any finite
    /// values), in nats, `float64`.
    fn free_energy<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'_, f32>,
        strict: bool,
        threads: usize,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let (x, n, m) = slice(&x)?;
        let est = &self.inner;
        let out = compute(py, threads, || {
            let model = est.model().ok_or(Error::NotFitted)?;
            let data = rows(x, m, strict)?;
            rbm::data::RowSource::check_row_len(&data, model.n_visible())?;
            let mut out = vec![0.0f64; n];
            model.free_energy(x, &mut out)?;
            Ok(out)
        })?;
        Ok(PyArray1::from_vec(py, out))
    }

    /// Gibbs chains started at the rows of `x` (values as given), `steps` steps; with `mask`
    /// (length `V`), the units where it is true are held at their values. Returns the visible
    /// states and the last step's `p(v | h)`, `N × V` each.
    #[pyo3(signature = (x, steps, strict, threads, mask=None))]
    #[allow(clippy::type_complexity)]
    fn gibbs<'py>(
        &mut self,
        py: Python<'py>,
        x: PyReadonlyArray2<'_, f32>,
        steps: usize,
        strict: bool,
        threads: usize,
        mask: Option<PyReadonlyArray1<'_, bool>>,
    ) -> PyResult<(Bound<'py, PyArray2<f32>>, Bound<'py, PyArray2<f32>>)> {
        let (x, n, m) = slice(&x)?;
        let mask = match &mask {
            Some(a) => Some(
                a.as_slice()
                    .map_err(|_| PyValueError::new_err("expected a contiguous mask"))?,
            ),
            None => None,
        };
        let est = &mut self.inner;
        let (v, p) = compute(py, threads, || {
            let data = rows(x, m, strict)?;
            let chains = match mask {
                Some(mask) => est.inpaint(&data, mask, steps)?,
                None => est.gibbs(&data, steps)?,
            };
            Ok((chains.visible().to_vec(), chains.visible_probs().to_vec()))
        })?;
        Ok((matrix(py, v, n, m)?, matrix(py, p, n, m)?))
    }

    /// `n` chains from noise, `steps` steps: their visible states and last `p(v | h)`.
    #[allow(clippy::type_complexity)]
    fn sample<'py>(
        &mut self,
        py: Python<'py>,
        n: usize,
        steps: usize,
        threads: usize,
    ) -> PyResult<(Bound<'py, PyArray2<f32>>, Bound<'py, PyArray2<f32>>)> {
        let est = &mut self.inner;
        let (v, p, m) = compute(py, threads, || {
            let chains = est.sample(n, steps)?;
            let m = chains.visible().len() / n.max(1);
            Ok((
                chains.visible().to_vec(),
                chains.visible_probs().to_vec(),
                m,
            ))
        })?;
        Ok((matrix(py, v, n, m)?, matrix(py, p, n, m)?))
    }

    /// The mean log-likelihood of the rows of `x` by `method` ("exact", "ais", "raise"):
    /// `(estimate, lower, upper, log_z or None, rows)`.
    #[pyo3(signature = (x, method, runs, temperatures, strict, threads, base_rate=None))]
    #[allow(clippy::too_many_arguments)]
    fn log_likelihood(
        &self,
        py: Python<'_>,
        x: PyReadonlyArray2<'_, f32>,
        method: &str,
        runs: usize,
        temperatures: usize,
        strict: bool,
        threads: usize,
        base_rate: Option<Vec<f64>>,
    ) -> PyResult<(f64, f64, f64, Option<f64>, usize)> {
        let method = match method {
            "exact" => LogLikelihood::Exact,
            "ais" => LogLikelihood::Ais { runs, temperatures },
            "raise" => LogLikelihood::Raise {
                runs_per_row: runs,
                temperatures,
            },
            other => {
                return Err(PyValueError::new_err(format!(
                    "method must be 'ais', 'raise' or 'exact', got {other:?}"
                )));
            }
        };
        let (x, _, m) = slice(&x)?;
        let est = &self.inner;
        compute(py, threads, || {
            let data = rows(x, m, strict)?;
            let ll = match base_rate {
                Some(b) => est
                    .clone()
                    .with_base_rate(b)?
                    .log_likelihood(&data, method)?,
                None => est.log_likelihood(&data, method)?,
            };
            Ok((ll.estimate, ll.lower, ll.upper, ll.log_z, ll.rows))
        })
    }

    /// `(W, v_bias, h_bias)`: `H × V`, `V` and `H` `float32` copies.
    #[allow(clippy::type_complexity)]
    fn params<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(
        Bound<'py, PyArray2<f32>>,
        Bound<'py, PyArray1<f32>>,
        Bound<'py, PyArray1<f32>>,
    )> {
        let model = self
            .inner
            .model()
            .ok_or_else(|| to_py(py, Error::NotFitted))?;
        let (v, h) = (model.n_visible(), model.n_hidden());
        Ok((
            matrix(py, model.weights().to_vec(), h, v)?,
            PyArray1::from_slice(py, model.v_bias()),
            PyArray1::from_slice(py, model.h_bias()),
        ))
    }

    /// Hidden states drawn from `p(h | v)` of the persistent chains (`C × H`), from a fixed
    /// stream of the seed and the step count; `None` without chains.
    fn h_samples<'py>(
        &self,
        py: Python<'py>,
        threads: usize,
    ) -> PyResult<Option<Bound<'py, PyArray2<f32>>>> {
        let est = &self.inner;
        let out = compute(py, threads, || {
            let (Some(model), Some(chains)) = (est.model(), est.persistent_chains()) else {
                return Ok(None);
            };
            let (v, h) = (model.n_visible(), model.n_hidden());
            let c = chains.len() / v;
            let steps = est.history().iter().map(|e| e.batches as u64).sum::<u64>();
            let key = StreamKey::new(est.config().seed)
                .derive(H_SAMPLES_TAG)
                .derive(steps);
            let (mut prob, mut state) = (vec![0.0f32; c * h], vec![0.0f32; c * h]);
            model.sample_hidden(&chains, key, &mut prob, &mut state)?;
            Ok(Some((state, c, h)))
        })?;
        out.map(|(s, c, h)| matrix(py, s, c, h)).transpose()
    }

    /// Per epoch (or `partial_fit` step) so far: `(loss, reconstruction error, seconds)`.
    fn history(&self) -> Vec<(f64, f64, f64)> {
        self.inner
            .history()
            .iter()
            .map(|e| (e.loss, e.recon_error, e.seconds))
            .collect()
    }

    /// Writes the model file (safetensors) that `rbm eval --model` reads.
    fn save(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        let est = &self.inner;
        compute(py, 1, || est.save(&path))
    }

    /// Reads a model file written by `save` or by `rbm train`.
    #[staticmethod]
    fn load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let inner = compute(py, 1, || Estimator::load(&path))?;
        Ok(PyEstimator { inner })
    }

    /// The whole estimator as bytes (for pickling); `None` when unfitted.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        if self.inner.model().is_none() {
            return Ok(None);
        }
        let est = &self.inner;
        let bytes = compute(py, 1, || est.to_bytes())?;
        Ok(Some(PyBytes::new(py, &bytes)))
    }

    /// The estimator of `to_bytes`.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, bytes: &[u8]) -> PyResult<Self> {
        let inner = compute(py, 1, || Estimator::from_bytes(bytes))?;
        Ok(PyEstimator { inner })
    }
}

/// The native module `rbm._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEstimator>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
