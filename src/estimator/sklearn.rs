//! What a drop-in for scikit-learn's `BernoulliRBM` (the Python package's) needs of an
//! [`Estimator`] beyond the rest of its API: `fit` with the model at each epoch's end (for a
//! per-epoch score), one step on all the rows given (scikit-learn's `partial_fit`), the
//! persistent chains, and the whole estimator as bytes (to pickle it).

use rbm_kernels::StreamKey;

use super::{Estimator, Fitted, Record};
use crate::data::RowSource;
use crate::error::{Error, Result};
use crate::io::checkpoint::{Checkpoint, parse_checkpoint, serialize_checkpoint};
use crate::rng::tags;
use crate::train::{EpochStats, Method, RunPosition, Schedule, TrainConfig, Trainer};

/// What [`Estimator::to_bytes`] records besides the checkpoint's own fields.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    /// The settings and the training data's column means, as [`Estimator::save`] has them.
    record: Record,
    /// Sampling calls so far.
    draws: u64,
    /// Whether the estimator had a trainer to continue with (else the checkpoint's is a
    /// fresh one, dropped when read).
    trainer: bool,
    /// The epochs trained so far.
    history: Vec<EpochStats>,
}

impl Estimator {
    /// One training step on all the rows of `data` as one batch, whatever
    /// [`Config::batch_size`](super::Config::batch_size): scikit-learn's `partial_fit`. Continues the optimizer's state,
    /// persistent chains and step count of the last `fit` or step (a persistent method keeps
    /// its chains: as many as [`Method`] says, `batch_size` when it says `None`); starts a
    /// model as [`fit`](Self::fit) does when there is none. The rows are binarized as
    /// [`Config::binarize`](super::Config::binarize) says, from the stream of the step. The step is recorded in
    /// [`history`](Self::history) as an epoch of one batch.
    ///
    /// On an error the model is left as it was before the call (and the trainer is started
    /// afresh by the next call).
    ///
    /// # Errors
    /// Those of [`partial_fit`](Self::partial_fit); [`Error::Shape`] for data without rows.
    ///
    /// ```
    /// use rbm::prelude::*;
    /// let data = rbm::datasets::bars_and_stripes(3); // 14 rows
    /// let rows = Rows::new(&data, 9)?;
    /// let config = Config::default().hidden(4).batch_size(5).method(Method::Pcd { chains: Some(5) });
    /// let mut rbm = Estimator::new(config);
    /// rbm.partial_fit_batch(&rows)?.partial_fit_batch(&rows)?;
    /// assert_eq!(rbm.history().len(), 2);
    /// assert_eq!(rbm.history()[1].batches, 1);
    /// assert_eq!(rbm.persistent_chains().map(|c| c.len()), Some(5 * 9));
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn partial_fit_batch(&mut self, data: &(impl RowSource + ?Sized)) -> Result<&mut Self> {
        let start = std::time::Instant::now();
        let n = data.n_rows();
        if n == 0 {
            return Err(Error::shape("rows to fit", "at least one row", 0));
        }
        let new = self.fitted.is_none();
        let mut fitted = match self.fitted.take() {
            Some(f) => f,
            None => self.start(data)?,
        };
        let result = self.step_all(&mut fitted, data, n);
        match result {
            Ok(stats) => {
                let epoch = fitted.history.len();
                fitted.history.push(EpochStats {
                    epoch,
                    loss: stats.loss,
                    recon_error: stats.recon_error,
                    batches: 1,
                    seconds: start.elapsed().as_secs_f64(),
                });
                self.fitted = Some(fitted);
                Ok(self)
            }
            Err(e) => {
                if !new {
                    self.fitted = Some(fitted);
                }
                Err(e)
            }
        }
    }

    /// The step of [`partial_fit_batch`](Self::partial_fit_batch) on `fitted`; on an error
    /// the model is restored and the trainer dropped.
    fn step_all(
        &self,
        fitted: &mut Fitted,
        data: &(impl RowSource + ?Sized),
        n: usize,
    ) -> Result<crate::train::StepStats> {
        let nv = fitted.model.n_visible();
        data.check_row_len(nv)?;
        let trainer = match fitted.trainer.take() {
            Some(t) if t.config().batch_size >= n => t,
            Some(t) => {
                let config = wider(t.config(), n);
                Trainer::resume(&fitted.model, config, t.state())?
            }
            None => {
                let per_epoch = self.batches_per_epoch(n);
                Trainer::new(
                    &fitted.model,
                    wider(&self.config.train_config(per_epoch), n),
                )?
            }
        };
        let mut trainer = trainer;
        let mut rows = crate::train::zeros(n, nv)?;
        let indices: Vec<u32> = (0..n as u32).collect();
        let key = StreamKey::new(self.config.seed)
            .derive(tags::BINARIZE)
            .derive(trainer.steps());
        data.fill(&indices, self.config.binarize, key, &mut rows)?;
        let before = fitted.model.clone();
        let stats = if data.values_in_unit_interval() {
            trainer.step(&mut fitted.model, &rows)
        } else {
            trainer.step_finite(&mut fitted.model, &rows)
        };
        match stats {
            Ok(s) => {
                fitted.trainer = Some(trainer);
                Ok(s)
            }
            Err(e) => {
                fitted.model = before;
                Err(e)
            }
        }
    }

    /// The persistent chains' visible states (`C × V` row-major; `T × C × V` with parallel
    /// tempering), once a step of a persistent method has started them; `None` for CD,
    /// before the first step, and for a model loaded without its trainer.
    ///
    /// ```
    /// use rbm::prelude::*;
    /// assert!(Estimator::default().persistent_chains().is_none());
    /// ```
    pub fn persistent_chains(&self) -> Option<Vec<f32>> {
        let state = self.fitted.as_ref()?.trainer.as_ref()?.state();
        state.negative.chains().map(<[f32]>::to_vec)
    }

    /// The whole estimator as bytes (a checkpoint file's): settings, model, the trainer's
    /// state (step count, momentum, persistent chains, offsets, fast weights), the training
    /// data's column means and the count of sampling calls, so that
    /// [`from_bytes`](Self::from_bytes) gives an estimator that continues exactly as this
    /// one would. For pickling; [`save`](Self::save) writes the model file that `rbm eval`
    /// reads.
    ///
    /// # Errors
    /// [`Error::NotFitted`]; [`Error::Config`] if the settings cannot be recorded;
    /// [`Error::ModelFile`] (path `<bytes>`) if a value cannot be written (not finite).
    ///
    /// ```
    /// use rbm::prelude::*;
    /// let data = rbm::datasets::bars_and_stripes(2);
    /// let rows = Rows::new(&data, 4)?;
    /// let config = Config::default().hidden(3).method(Method::Pcd { chains: Some(2) });
    /// let mut a = Estimator::new(config);
    /// a.fit(&rows)?;
    /// let mut b = Estimator::from_bytes(&a.to_bytes()?)?;
    /// a.partial_fit_batch(&rows)?;
    /// b.partial_fit_batch(&rows)?;
    /// assert_eq!(a.model(), b.model());
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let fitted = self.fitted.as_ref().ok_or(Error::NotFitted)?;
        let fresh;
        let trainer = match &fitted.trainer {
            Some(t) => t,
            None => {
                fresh = Trainer::new(&fitted.model, self.config.train_config(0))?;
                &fresh
            }
        };
        let saved = Saved {
            record: Record {
                estimator: self.config.clone(),
                marginals: fitted.marginals.clone(),
            },
            draws: self.draws,
            trainer: fitted.trainer.is_some(),
            history: fitted.history.clone(),
        };
        let run = serde_json::to_string(&saved)
            .map_err(|e| Error::config("settings", "values JSON can record", e))?;
        let state = trainer.state();
        // The steps as batches of the first epoch (the epochs' history is in `run`).
        let batch = usize::try_from(state.steps)
            .map_err(|_| Error::config("steps", "at most usize::MAX", state.steps))?;
        let checkpoint = Checkpoint {
            model: fitted.model.clone(),
            config: trainer.config().clone(),
            schedule: Schedule {
                epochs: self.config.epochs.max(1),
                ..self.config.schedule()
            },
            state,
            position: RunPosition {
                batch,
                ..RunPosition::default()
            },
            run: Some(run),
        };
        serialize_checkpoint(&checkpoint).map_err(bytes_error)
    }

    /// The estimator that [`to_bytes`](Self::to_bytes) wrote.
    ///
    /// # Errors
    /// [`Error::ModelFile`] (path `<bytes>`) if the bytes are not such a record;
    /// [`Error::Config`] for settings out of their domain.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let c = parse_checkpoint(bytes).map_err(bytes_error)?;
        let run = c.run.as_deref().unwrap_or("null");
        let saved: Saved = serde_json::from_str(run).map_err(|e| {
            bytes_error(crate::ModelFileError::Metadata(format!(
                "not an estimator's record: {e}"
            )))
        })?;
        saved.record.estimator.validate()?;
        let trainer = if saved.trainer {
            Some(c.trainer()?)
        } else {
            None
        };
        Ok(Estimator {
            config: saved.record.estimator,
            fitted: Some(Fitted {
                model: c.model,
                trainer,
                history: saved.history,
                marginals: saved.record.marginals,
            }),
            draws: saved.draws,
        })
    }
}

/// `config` for batches of up to `n` rows, its persistent chains as many as before.
fn wider(config: &TrainConfig, n: usize) -> TrainConfig {
    let chains = config.negative_rows();
    let method = match config.method {
        Method::Pcd { chains: None } => Method::Pcd {
            chains: Some(chains),
        },
        Method::FastPcd { chains: None, fast } => Method::FastPcd {
            chains: Some(chains),
            fast,
        },
        Method::Tempering {
            chains: None,
            ladder,
        } => Method::Tempering {
            chains: Some(chains),
            ladder,
        },
        m => m,
    };
    TrainConfig {
        batch_size: config.batch_size.max(n),
        method,
        ..config.clone()
    }
}

/// A checkpoint's error on bytes in memory.
fn bytes_error(kind: crate::ModelFileError) -> Error {
    Error::ModelFile {
        path: "<bytes>".into(),
        kind,
    }
}
