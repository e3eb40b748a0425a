//! The high-level API, in scikit-learn's vocabulary: [`Estimator`] fits an RBM to rows (an IDX
//! dataset or [`Rows`](crate::data::Rows) of your own), transforms rows to hidden features,
//! reconstructs, samples, scores and saves — on the same kernels and with the same
//! determinism as the low-level API ([`Rbm`], [`Trainer`], [`Gibbs`], [`crate::eval`]).

mod config;
mod run;
mod score;
mod sklearn;

pub use crate::train::Method;
pub use config::Config;
pub use score::{Likelihood, LogLikelihood};

use std::path::Path;

use rbm_kernels::StreamKey;

use crate::data::{Binarize, RowSource};
use crate::error::{Error, Result};
use crate::gibbs::Gibbs;
use crate::io::model_file::{load_model, save_model};
use crate::model::Rbm;
use crate::rng::tags;
use crate::train::{EpochStats, Observer, RunPosition, Schedule, Trainer, train_dataset_from};

/// Rows per block of the passes that go over all the rows given ([`Estimator::transform`],
/// [`Estimator::reconstruct`], scores): bounds the memory a call takes besides its result.
const BLOCK_ROWS: usize = 1024;

/// An RBM with its settings, fitted to data: `fit`, `partial_fit`, `transform`,
/// `reconstruct`, `sample`, `gibbs`, `inpaint`, `score_samples`, `log_likelihood`, `save`,
/// `load`.
///
/// Rows come from any [`RowSource`]: an IDX [`Dataset`](crate::data::Dataset) or
/// [`Rows`](crate::data::Rows) held in memory (`f32` in `[0, 1]` or `u8` grey levels). The
/// model has as many visible units as the rows have columns, and [`Config::n_hidden`] hidden
/// units. Every random draw derives from [`Config::seed`]: the same seed and the same calls give
/// the same results, bit for bit, whatever the number of threads.
///
/// ```
/// use rbm::prelude::*;
///
/// // Bars and stripes on a 3 × 3 grid: 14 patterns of 9 pixels.
/// let data = rbm::datasets::bars_and_stripes(3);
/// let rows = Rows::new(&data, 9)?;
/// let mut rbm = Estimator::new(Config::default().hidden(16).epochs(500).batch_size(7).learning_rate(0.5).seed(1));
/// rbm.fit(&rows)?;
/// let features = rbm.transform(&rows)?;         // p(h = 1 | v), 14 × 16
/// let recon = rbm.reconstruct(&rows)?;          // p(v = 1 | p(h | v)), 14 × 9
/// let chains = rbm.sample(4, 100)?;             // 4 chains from noise, 100 Gibbs steps
/// let pll = rbm.score_samples(&rows)?;          // pseudo-log-likelihood per row
/// let ll = rbm.log_likelihood(&rows, LogLikelihood::Exact)?; // exact: 2^9 states
/// assert_eq!((features.len(), recon.len(), chains.visible().len()), (14 * 16, 14 * 9, 4 * 9));
/// assert!(pll.iter().all(|&p| p <= 0.0) && ll.estimate < 0.0);
/// let path = std::env::temp_dir().join("rbm-doc-estimator.safetensors");
/// rbm.save(&path)?;
/// assert_eq!(Estimator::load(&path)?.model(), rbm.model());
/// # std::fs::remove_file(path).ok();
/// # Ok::<(), rbm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Estimator {
    config: Config,
    fitted: Option<Fitted>,
    /// Sampling calls so far: call `n` draws from the stream `(seed, SAMPLE, n)`.
    draws: u64,
}

/// What fitting made.
#[derive(Clone, Debug)]
struct Fitted {
    model: Rbm,
    /// The trainer that continues with `partial_fit`; `None` for a loaded model until then.
    trainer: Option<Trainer>,
    /// The epochs trained so far, with their statistics.
    history: Vec<EpochStats>,
    /// The column means of the training data (the base rate of AIS and RAISE), if known.
    marginals: Option<Vec<f64>>,
}

impl Default for Estimator {
    /// An unfitted estimator with [`Config::default`].
    fn default() -> Self {
        Estimator::new(Config::default())
    }
}

impl Estimator {
    /// An unfitted estimator with `config` (checked when fitting).
    ///
    /// ```
    /// let rbm = rbm::Estimator::new(rbm::Config::default().hidden(8));
    /// assert!(rbm.model().is_none());
    /// ```
    pub fn new(config: Config) -> Self {
        Estimator {
            config,
            fitted: None,
            draws: 0,
        }
    }

    /// An estimator around a model made elsewhere (trained by the low-level API, or read
    /// with [`crate::load_model`]); `config.n_hidden` is set to the model's. A later
    /// [`partial_fit`](Self::partial_fit) trains it on with `config`.
    ///
    /// ```
    /// let model = rbm::Rbm::new(9, 4, 1)?;
    /// let rbm = rbm::Estimator::from_model(model, rbm::Config::default());
    /// assert_eq!(rbm.config().n_hidden, 4);
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn from_model(model: Rbm, config: Config) -> Self {
        let config = config.hidden(model.n_hidden());
        Estimator {
            config,
            fitted: Some(Fitted {
                model,
                trainer: None,
                history: Vec::new(),
                marginals: None,
            }),
            draws: 0,
        }
    }

    /// The settings.
    ///
    /// ```
    /// let rbm = rbm::Estimator::default();
    /// assert_eq!(rbm.config().n_hidden, 256);
    /// ```
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The fitted model, if any.
    ///
    /// ```
    /// assert!(rbm::Estimator::default().model().is_none());
    /// ```
    pub fn model(&self) -> Option<&Rbm> {
        self.fitted.as_ref().map(|f| &f.model)
    }

    /// The statistics of every epoch trained so far (`fit`'s, then one per `partial_fit`).
    ///
    /// ```
    /// assert!(rbm::Estimator::default().history().is_empty());
    /// ```
    pub fn history(&self) -> &[EpochStats] {
        self.fitted.as_ref().map_or(&[], |f| &f.history)
    }

    /// Fits a new model to the rows of `data`: [`Config::epochs`] epochs from weights drawn
    /// from N(0, 0.01²) (and, with [`Config::marginal_bias`], visible biases at the logits of
    /// the column means). Replaces any model fitted before.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid settings; [`Error::Shape`] for data with no rows;
    /// [`Error::Diverged`] if a parameter or the loss became non-finite (the estimator keeps
    /// what it had before).
    ///
    /// ```
    /// use rbm::prelude::*;
    /// let data = rbm::datasets::bars_and_stripes(2);
    /// let mut rbm = Estimator::new(Config::default().hidden(4).epochs(5));
    /// rbm.fit(&Rows::new(&data, 4)?)?;
    /// assert_eq!(rbm.history().len(), 5);
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn fit(&mut self, data: &(impl RowSource + ?Sized)) -> Result<&mut Self> {
        self.fit_with(data, |_| {})
    }

    /// [`fit`](Self::fit), calling `progress` after each epoch with its statistics (loss,
    /// reconstruction error, seconds).
    ///
    /// # Errors
    /// Those of [`fit`](Self::fit).
    ///
    /// ```
    /// use rbm::prelude::*;
    /// let data = rbm::datasets::bars_and_stripes(2);
    /// let mut epochs = Vec::new();
    /// let mut rbm = Estimator::new(Config::default().hidden(4).epochs(3));
    /// rbm.fit_with(&Rows::new(&data, 4)?, |e| epochs.push(e.epoch))?;
    /// assert_eq!(epochs, [0, 1, 2]);
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn fit_with(
        &mut self,
        data: &(impl RowSource + ?Sized),
        progress: impl FnMut(&EpochStats),
    ) -> Result<&mut Self> {
        let mut fitted = self.start(data)?;
        train_epochs(
            &mut fitted,
            &self.config,
            data,
            self.config.epochs,
            progress,
        )?;
        self.fitted = Some(fitted);
        Ok(self)
    }

    /// One more epoch over the rows of `data` (in minibatches of [`Config::batch_size`], the
    /// last one shorter unless [`Config::drop_last`]), continuing the optimizer's state,
    /// persistent chains and step count of the last `fit` or `partial_fit`; starts a model as
    /// [`fit`](Self::fit) does when there is none, and a trainer (step 0, new chains) for a
    /// model from [`from_model`](Self::from_model) or [`load`](Self::load). With no more
    /// rows than a batch this is one step on all of them, as scikit-learn's `partial_fit`
    /// does.
    ///
    /// On an error the model is left as it was before the call (and the trainer is started
    /// afresh by the next call): the epoch is not half applied.
    ///
    /// # Errors
    /// Those of [`fit`](Self::fit), and [`Error::Shape`] (or [`Error::Dataset`] for a file)
    /// if the rows do not have the model's visible units.
    ///
    /// ```
    /// use rbm::prelude::*;
    /// let data = rbm::datasets::bars_and_stripes(2);
    /// let rows = Rows::new(&data, 4)?;
    /// let mut rbm = Estimator::new(Config::default().hidden(4));
    /// rbm.partial_fit(&rows)?.partial_fit(&rows)?;
    /// assert_eq!(rbm.history().len(), 2);
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn partial_fit(&mut self, data: &(impl RowSource + ?Sized)) -> Result<&mut Self> {
        let per_epoch = self.batches_per_epoch(data.n_rows());
        let Some(fitted) = &mut self.fitted else {
            let mut fitted = self.start(data)?;
            train_epochs(&mut fitted, &self.config, data, 1, |_| {})?;
            self.fitted = Some(fitted);
            return Ok(self);
        };
        data.check_row_len(fitted.model.n_visible())?;
        if fitted.trainer.is_none() {
            fitted.trainer = Some(Trainer::new(
                &fitted.model,
                self.config.train_config(per_epoch),
            )?);
        }
        // The model only, as it was: the one thing a failed epoch must not leave half changed
        // (the trainer's state is dropped then, not copied on every call).
        let before = fitted.model.clone();
        if let Err(e) = train_epochs(fitted, &self.config, data, 1, |_| {}) {
            fitted.model = before;
            fitted.trainer = None;
            return Err(e);
        }
        Ok(self)
    }

    /// `p(h = 1 | v)` of each row of `data` (values as given, not binarized): the hidden
    /// features, `N × H` row-major.
    ///
    /// # Errors
    /// [`Error::NotFitted`]; [`Error::Shape`] (or [`Error::Dataset`]) if the rows do not have
    /// the model's visible units.
    ///
    /// ```
    /// use rbm::prelude::*;
    /// let data = rbm::datasets::bars_and_stripes(2);
    /// let rows = Rows::new(&data, 4)?;
    /// let mut rbm = Estimator::new(Config::default().hidden(3).epochs(2));
    /// let features = rbm.fit(&rows)?.transform(&rows)?;
    /// assert_eq!(features.len(), 6 * 3);
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn transform(&self, data: &(impl RowSource + ?Sized)) -> Result<Vec<f32>> {
        let model = self.fitted_model()?;
        let mut out = crate::train::zeros(data.n_rows(), model.n_hidden())?;
        self.transform_into(data, &mut out)?;
        Ok(out)
    }

    /// [`transform`](Self::transform) into `out` (`N × H`).
    ///
    /// # Errors
    /// Those of [`transform`](Self::transform), and [`Error::Shape`] if `out` does not hold
    /// `N × H` values.
    ///
    /// ```
    /// use rbm::prelude::*;
    /// let data = rbm::datasets::bars_and_stripes(2);
    /// let rows = Rows::new(&data, 4)?;
    /// let mut rbm = Estimator::new(Config::default().hidden(3).epochs(2));
    /// rbm.fit(&rows)?;
    /// let mut features = vec![0.0; 6 * 3];
    /// rbm.transform_into(&rows, &mut features)?;
    /// assert!(features.iter().all(|p| (0.0..=1.0).contains(p)));
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn transform_into(&self, data: &(impl RowSource + ?Sized), out: &mut [f32]) -> Result<()> {
        let model = self.fitted_model()?;
        for_blocks(model, data, out, model.n_hidden(), |v, out| {
            model.hidden_probs(v, out)
        })
    }

    /// The mean-field reconstruction `p(v = 1 | h)` with `h = p(h = 1 | v)` of each row of
    /// `data`, `N × V` row-major (no random draw).
    ///
    /// # Errors
    /// Those of [`transform`](Self::transform).
    ///
    /// ```
    /// use rbm::prelude::*;
    /// let data = rbm::datasets::bars_and_stripes(3); // 14 rows of 9
    /// let rows = Rows::new(&data, 9)?;
    /// let config = Config::default().hidden(16).epochs(500).batch_size(7).learning_rate(0.5);
    /// let mut rbm = Estimator::new(config);
    /// let recon = rbm.fit(&rows)?.reconstruct(&rows)?;
    /// let error = recon.iter().zip(&data).map(|(r, v)| (r - v).powi(2)).sum::<f32>() / 126.0;
    /// assert!(error < 0.01, "{error}");
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn reconstruct(&self, data: &(impl RowSource + ?Sized)) -> Result<Vec<f32>> {
        let model = self.fitted_model()?;
        let (nv, nh) = (model.n_visible(), model.n_hidden());
        let mut out = crate::train::zeros(data.n_rows(), nv)?;
        let mut h = Vec::new();
        for_blocks(model, data, &mut out, nv, |v, out| {
            h.resize(v.len() / nv * nh, 0.0);
            model.hidden_probs(v, &mut h)?;
            model.visible_probs(&h, out)
        })?;
        Ok(out)
    }

    /// `n` Gibbs chains started from noise (each visible unit on with probability ½), run for
    /// `steps` steps: read the states with [`Gibbs::visible`], the last step's `p(v | h)`
    /// with [`Gibbs::visible_probs`], and run them on with [`Gibbs::run`].
    ///
    /// # Errors
    /// [`Error::NotFitted`]; [`Error::Config`] if `n` is 0 or the chains do not fit in memory.
    ///
    /// ```
    /// use rbm::prelude::*;
    /// let data = rbm::datasets::bars_and_stripes(2);
    /// let mut rbm = Estimator::new(Config::default().hidden(4).epochs(2));
    /// rbm.fit(&Rows::new(&data, 4)?)?;
    /// let chains = rbm.sample(3, 50)?;
    /// assert_eq!((chains.chains(), chains.steps()), (3, 50));
    /// assert!(chains.visible().iter().all(|&x| x == 0.0 || x == 1.0));
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn sample(&mut self, n: usize, steps: usize) -> Result<Gibbs> {
        self.fitted_model()?;
        let key = self.next_key();
        let model = self.fitted_model()?;
        if n == 0 {
            return Err(Error::config("chains", "at least 1", 0));
        }
        let mut start = crate::train::zeros(n, model.n_visible())?;
        let noise = key.derive(0);
        let half = vec![0.5f32; model.n_visible()];
        for (r, row) in start.chunks_mut(model.n_visible()).enumerate() {
            rbm_kernels::bernoulli(&half, noise.derive(r as u64), 0, row);
        }
        let mut chains = Gibbs::new(model, &start, key.derive(1))?;
        chains.run(model, steps)?;
        Ok(chains)
    }

    /// Gibbs chains started at the rows of `data` (values as given), run for `steps` steps.
    ///
    /// # Errors
    /// [`Error::NotFitted`]; [`Error::Shape`] if the rows do not have the model's visible
    /// units or there are none.
    ///
    /// ```
    /// use rbm::prelude::*;
    /// let data = rbm::datasets::bars_and_stripes(2);
    /// let rows = Rows::new(&data, 4)?;
    /// let mut rbm = Estimator::new(Config::default().hidden(4).epochs(2));
    /// let chains = rbm.fit(&rows)?.gibbs(&rows, 1)?;
    /// assert_eq!(chains.visible().len(), data.len());
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn gibbs(&mut self, data: &(impl RowSource + ?Sized), steps: usize) -> Result<Gibbs> {
        self.chains_from(data, None, steps)
    }

    /// Inpainting: Gibbs chains started at the rows of `data` with the visible units where
    /// `clamp` (length `V`) is true held at their values, the others sampled for `steps`
    /// steps (they start as given: blank them first to let the model fill them in).
    ///
    /// # Errors
    /// Those of [`gibbs`](Self::gibbs), and [`Error::Shape`] if `clamp` does not have `V`
    /// entries.
    ///
    /// ```
    /// use rbm::prelude::*;
    /// let data = rbm::datasets::bars_and_stripes(2);
    /// let rows = Rows::new(&data, 4)?;
    /// let mut rbm = Estimator::new(Config::default().hidden(4).epochs(2));
    /// rbm.fit(&rows)?;
    /// let chains = rbm.inpaint(&rows, &[true, true, false, false], 10)?;
    /// for (got, want) in chains.visible().chunks(4).zip(data.chunks(4)) {
    ///     assert_eq!(got[..2], want[..2]); // the clamped half is kept
    /// }
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn inpaint(
        &mut self,
        data: &(impl RowSource + ?Sized),
        clamp: &[bool],
        steps: usize,
    ) -> Result<Gibbs> {
        self.chains_from(data, Some(clamp), steps)
    }

    /// Writes the model to `path` (safetensors, atomically: a temporary file renamed), with
    /// the settings and the training data's column means in its metadata.
    ///
    /// # Errors
    /// [`Error::NotFitted`]; those of [`crate::save_model`].
    ///
    /// ```
    /// use rbm::prelude::*;
    /// let mut rbm = Estimator::from_model(Rbm::new(4, 2, 1)?, Config::default());
    /// let path = std::env::temp_dir().join("rbm-doc-save.safetensors");
    /// rbm.save(&path)?;
    /// # std::fs::remove_file(path).ok();
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let fitted = self.fitted.as_ref().ok_or(Error::NotFitted)?;
        let record = Record {
            estimator: self.config.clone(),
            marginals: fitted.marginals.clone(),
        };
        let json = serde_json::to_string(&record)
            .map_err(|e| Error::config("settings", "values JSON can record", e))?;
        save_model(path, &fitted.model, Some(&json))
    }

    /// Reads a model file written by [`save`](Self::save) (settings restored) or by any
    /// other writer of the format, `rbm train` included (default settings with the model's
    /// hidden units).
    ///
    /// # Errors
    /// Those of [`crate::load_model`].
    ///
    /// ```
    /// use rbm::prelude::*;
    /// let rbm = Estimator::from_model(Rbm::new(4, 2, 1)?, Config::default().k(3));
    /// let path = std::env::temp_dir().join("rbm-doc-load.safetensors");
    /// rbm.save(&path)?;
    /// let back = Estimator::load(&path)?;
    /// assert_eq!((back.config(), back.model()), (rbm.config(), rbm.model()));
    /// # std::fs::remove_file(path).ok();
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = load_model(path)?;
        let (config, marginals) = match file.config().map(estimator_record) {
            // An estimator's record that does not read (or names invalid settings) is an
            // error; the configuration of another writer (`rbm train`'s) is not ours to read.
            Some(Some(Ok(r))) => (r.estimator, r.marginals),
            Some(Some(Err(reason))) => {
                return Err(Error::ModelFile {
                    path: path.to_path_buf(),
                    kind: crate::ModelFileError::Metadata(reason),
                });
            }
            Some(None) | None => (Config::default(), None),
        };
        let mut est = Estimator::from_model(file.model, config);
        if let Some(f) = &mut est.fitted {
            f.marginals = marginals.filter(|m| m.len() == f.model.n_visible());
        }
        Ok(est)
    }

    /// The model, or [`Error::NotFitted`].
    fn fitted_model(&self) -> Result<&Rbm> {
        self.model().ok_or(Error::NotFitted)
    }

    /// The key of the next sampling call.
    fn next_key(&mut self) -> StreamKey {
        let key = StreamKey::new(self.config.seed)
            .derive(tags::SAMPLE)
            .derive(self.draws);
        self.draws += 1;
        key
    }

    /// The batches of each of `fit`'s epochs on `n_rows` rows (0 when the rows make no
    /// batch, which training then reports).
    fn batches_per_epoch(&self, n_rows: usize) -> usize {
        self.config
            .schedule()
            .batches_per_epoch_for(n_rows, self.config.batch_size)
            .unwrap_or(0)
    }

    /// A new model and trainer for `data`, unfitted.
    fn start(&self, data: &(impl RowSource + ?Sized)) -> Result<Fitted> {
        self.config.validate()?;
        if data.n_rows() == 0 {
            return Err(Error::shape("rows to fit", "at least one row", 0));
        }
        let mut model = Rbm::new(data.row_len(), self.config.n_hidden, self.config.seed)?;
        let marginals = data.column_means();
        if self.config.marginal_bias {
            model.init_visible_bias_from_marginals(&marginals)?;
        }
        let config = self
            .config
            .train_config(self.batches_per_epoch(data.n_rows()));
        let trainer = Trainer::new(&model, config)?;
        Ok(Fitted {
            model,
            trainer: Some(trainer),
            history: Vec::new(),
            marginals: Some(marginals),
        })
    }

    /// Chains started at the rows of `data`, clamped by `clamp`, run `steps` steps.
    fn chains_from(
        &mut self,
        data: &(impl RowSource + ?Sized),
        clamp: Option<&[bool]>,
        steps: usize,
    ) -> Result<Gibbs> {
        self.fitted_model()?;
        let key = self.next_key();
        let model = self.fitted_model()?;
        let start = all_rows(model, data, Binarize::None)?;
        let mut chains = Gibbs::new(model, &start, key)?;
        if let Some(mask) = clamp {
            chains = chains.with_clamp(mask)?;
        }
        chains.run(model, steps)?;
        Ok(chains)
    }
}

/// The estimator's record in a model file's configuration, if it is one: `None` for another
/// writer's configuration, else the record or why it cannot be used.
fn estimator_record(config: &str) -> Option<std::result::Result<Record, String>> {
    let value: serde_json::Value = serde_json::from_str(config).ok()?;
    value.get("estimator")?;
    let record = serde_json::from_value::<Record>(value)
        .map_err(|e| format!("the estimator's record does not read: {e}"))
        .and_then(|r| {
            r.estimator
                .validate()
                .map(|()| r)
                .map_err(|e| format!("the estimator's settings are invalid: {e}"))
        });
    Some(record)
}

/// What [`Estimator::save`] records in the model file's metadata.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    estimator: Config,
    marginals: Option<Vec<f64>>,
}

/// Trains `fitted` for `epochs` more epochs on `data`, reporting each to `progress`.
fn train_epochs(
    fitted: &mut Fitted,
    config: &Config,
    data: &(impl RowSource + ?Sized),
    epochs: usize,
    progress: impl FnMut(&EpochStats),
) -> Result<()> {
    struct Progress<F>(F);
    impl<F: FnMut(&EpochStats)> Observer for Progress<F> {
        fn epoch_end(&mut self, stats: &EpochStats, _: &Rbm) -> Result<()> {
            (self.0)(stats);
            Ok(())
        }
    }
    if data.n_rows() == 0 {
        return Err(Error::shape("rows to fit", "at least one row", 0));
    }
    let done = fitted.history.len();
    let schedule = Schedule {
        epochs: done + epochs,
        ..config.schedule()
    };
    let mut position = RunPosition {
        epoch: done,
        history: std::mem::take(&mut fitted.history),
        ..RunPosition::default()
    };
    let trainer = fitted.trainer.as_mut().ok_or(Error::NotFitted)?;
    let result = train_dataset_from(
        &mut fitted.model,
        trainer,
        data,
        &schedule,
        &mut position,
        &mut Progress(progress),
    );
    fitted.history = position.history;
    result
}

/// Every row of `data` turned into visible values as `binarize` says (stochastic draws from
/// the fixed evaluation stream: row `r` from `(EVAL_BINARIZE_SEED, EVAL_BINARIZE).derive(r)`,
/// as [`crate::eval::evaluation_rows`] does), `N × V`.
///
/// # Errors
/// [`Error::Shape`] (or [`Error::Dataset`]) if the rows do not have `V` values or there are
/// none; [`Error::Config`] if they do not fit in memory; [`Error::Value`] for a value outside
/// `[0, 1]` from a source of one's own.
fn all_rows(model: &Rbm, data: &(impl RowSource + ?Sized), binarize: Binarize) -> Result<Vec<f32>> {
    let (n, nv) = (data.n_rows(), model.n_visible());
    data.check_row_len(nv)?;
    if n == 0 {
        return Err(Error::shape("rows", "at least one row", 0));
    }
    let mut out = crate::train::zeros(n, nv)?;
    let indices: Vec<u32> = (0..n as u32).collect();
    let key = StreamKey::new(crate::eval::EVAL_BINARIZE_SEED).derive(tags::EVAL_BINARIZE);
    data.fill(&indices, binarize, key, &mut out)?;
    if data.values_in_unit_interval() {
        check_unit_interval(&out, nv, 0)?;
    }
    Ok(out)
}

/// [`Error::Value`] for the first value of `rows` (rows of `n` values, the first being row
/// `first_row` of the data) that is NaN or outside `[0, 1]`: [`RowSource`]s of one's own
/// are not trusted.
fn check_unit_interval(rows: &[f32], n: usize, first_row: usize) -> Result<()> {
    match crate::data::rows::first_outside_unit_interval(rows) {
        Some(k) => Err(Error::Value {
            row: first_row + k / n,
            column: k % n,
            value: rows[k],
        }),
        None => Ok(()),
    }
}

/// Runs `f(rows, out_rows)` over blocks of [`BLOCK_ROWS`] rows of `data` (as given, not
/// binarized), `out` holding `per_row` values per row.
fn for_blocks(
    model: &Rbm,
    data: &(impl RowSource + ?Sized),
    out: &mut [f32],
    per_row: usize,
    mut f: impl FnMut(&[f32], &mut [f32]) -> Result<()>,
) -> Result<()> {
    let (n, nv) = (data.n_rows(), model.n_visible());
    data.check_row_len(nv)?;
    if n == 0 {
        return Err(Error::shape("rows", "at least one row", 0));
    }
    if out.len() != n * per_row {
        return Err(Error::shape(
            "output",
            format!("{} values ({n} rows of {per_row})", n * per_row),
            out.len(),
        ));
    }
    let mut buf = crate::train::zeros(BLOCK_ROWS.min(n), nv)?;
    let indices: Vec<u32> = (0..n as u32).collect();
    for (b, (idx, out)) in indices
        .chunks(BLOCK_ROWS)
        .zip(out.chunks_mut(BLOCK_ROWS * per_row))
        .enumerate()
    {
        let v = &mut buf[..idx.len() * nv];
        // Values as given: no draw is made from the key.
        data.fill(idx, Binarize::None, StreamKey::new(b as u64), v)?;
        if data.values_in_unit_interval() {
            check_unit_interval(v, nv, b * BLOCK_ROWS)?;
        }
        f(v, out)?;
    }
    Ok(())
}
