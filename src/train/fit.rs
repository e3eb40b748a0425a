//! The epoch loop over a source of rows: an IDX dataset or rows in memory.

use std::time::Instant;

use rbm_kernels::StreamKey;

use crate::data::{Batches, Binarize, Order, RowSource};
use crate::error::{Error, Result};
use crate::model::Rbm;
use crate::rng::tags;
use crate::train::Trainer;

/// Which batches an epoch visits and how pixels become visible values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    /// Epochs (`≥ 1`).
    pub epochs: usize,
    /// Batches per epoch; `None` for every batch of the data. The reference notebook stops
    /// after 301 batches of an unshuffled loader.
    pub batches_per_epoch: Option<usize>,
    /// Unshuffled (the notebook's loader) or a fresh permutation each epoch.
    pub order: Order,
    /// Stochastic (the notebook), threshold or none.
    pub binarize: Binarize,
    /// Whether an epoch drops its last batch when it is shorter than the batch size
    /// (PyTorch's `drop_last`): `true` (the default of records written before this field,
    /// and what `rbm train` does) trains on whole batches only; `false` also trains on the
    /// last rows, a step averaged over fewer rows.
    #[serde(default = "drop_last_default", skip_serializing_if = "is_true")]
    pub drop_last: bool,
}

impl Schedule {
    /// The batches each epoch of this schedule trains on, for `n_rows` rows in batches of
    /// `batch_size`: what [`train_dataset_from`] checks before its first step, available
    /// before anything is allocated or written (so that a program can refuse a run whose
    /// schedule cannot work before it creates its output).
    ///
    /// # Errors
    /// [`Error::Config`] when `batch_size` is 0, the schedule has no epoch or no batch (a
    /// batch larger than the data, with `drop_last`), or asks for more batches per epoch
    /// than the data have.
    pub fn batches_per_epoch_for(&self, n_rows: usize, batch_size: usize) -> Result<usize> {
        if batch_size == 0 {
            return Err(Error::config("batch_size", "at least 1", 0));
        }
        let available = if self.drop_last {
            n_rows / batch_size
        } else {
            n_rows.div_ceil(batch_size)
        };
        let n = self.batches_per_epoch.unwrap_or(available);
        if self.epochs == 0 || n == 0 {
            let found = if available == 0 {
                format!("batches of {batch_size} rows from {n_rows} rows")
            } else {
                format!("{} epochs of {n} batches", self.epochs)
            };
            return Err(Error::config(
                "schedule",
                "at least 1 epoch of 1 batch",
                found,
            ));
        }
        if n > available {
            return Err(Error::config(
                "batches per epoch",
                format!("at most the {available} batches of {batch_size} rows the data have"),
                n,
            ));
        }
        Ok(n)
    }
}

/// Records without `drop_last` dropped the last partial batch.
fn drop_last_default() -> bool {
    true
}

/// `drop_last: true` is not written, so that records stay as they were before the field.
fn is_true(x: &bool) -> bool {
    *x
}

/// Means over one epoch's batches.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochStats {
    /// 0-based epoch.
    pub epoch: usize,
    /// Mean of the notebook's loss `F(V₀) − F(V_k)`, in nats.
    pub loss: f64,
    /// Mean squared reconstruction error per pixel.
    pub recon_error: f64,
    /// Batches trained.
    pub batches: usize,
    /// Wall time of the epoch, in seconds.
    pub seconds: f64,
}

/// Where a run over a dataset stands between two steps: the next batch to train, what the
/// current epoch has measured so far, and the statistics of the epochs done. With the model
/// and the [`TrainerState`](crate::train::TrainerState) it is all a checkpoint needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunPosition {
    /// The current epoch (0-based); equal to the schedule's epochs when the run is over.
    pub epoch: usize,
    /// Batches of `epoch` already trained.
    pub batch: usize,
    /// Sum of the loss over those batches, in nats.
    pub loss_sum: f64,
    /// Sum of the reconstruction error over those batches.
    pub recon_sum: f64,
    /// The epochs done.
    pub history: Vec<EpochStats>,
}

/// What [`train_dataset_from`] reports while it runs. Every method has a default that does
/// nothing.
pub trait Observer {
    /// After each step: `done` batches of the epoch are trained, the last on `rows`
    /// (`B × V`, as binarized).
    fn batch(&mut self, done: usize, rows: &[f32]) {
        let _ = (done, rows);
    }

    /// After each step, with the position the run would continue from: the place to save a
    /// checkpoint. An error stops training.
    ///
    /// # Errors
    /// Whatever the observer needs to report.
    fn step_end(&mut self, model: &Rbm, trainer: &Trainer, position: &RunPosition) -> Result<()> {
        let _ = (model, trainer, position);
        Ok(())
    }

    /// After each epoch, with the model as it is then (to evaluate it, …). An error stops
    /// training.
    ///
    /// # Errors
    /// Whatever the observer needs to report.
    fn epoch_end(&mut self, stats: &EpochStats, model: &Rbm) -> Result<()> {
        let _ = (stats, model);
        Ok(())
    }
}

/// An [`Observer`] of the epochs' ends only: `OnEpoch(|stats, model| …)` is called after each
/// epoch with its statistics and the model as it is then; an error stops training.
///
/// ```
/// use rbm::prelude::*;
/// use rbm::train::{EpochStats, OnEpoch};
/// let data = rbm::datasets::bars_and_stripes(2);
/// let mut sizes = Vec::new();
/// let mut rbm = Estimator::new(Config::default().hidden(4).epochs(2));
/// rbm.fit_observed(&Rows::new(&data, 4)?, &mut OnEpoch(|e: &EpochStats, model: &Rbm| {
///     sizes.push((e.epoch, model.n_hidden()));
///     Ok(())
/// }))?;
/// assert_eq!(sizes, [(0, 4), (1, 4)]);
/// # Ok::<(), rbm::Error>(())
/// ```
pub struct OnEpoch<F>(pub F);

impl<F: FnMut(&EpochStats, &Rbm) -> Result<()>> Observer for OnEpoch<F> {
    fn epoch_end(&mut self, stats: &EpochStats, model: &Rbm) -> Result<()> {
        (self.0)(stats, model)
    }
}

/// Trains `model` on the rows of `ds` (an IDX [`Dataset`](crate::data::Dataset) or
/// [`Rows`](crate::data::Rows) in memory) for `schedule.epochs` epochs with `trainer`, calling
/// `on_batch` after each batch (with the number of batches done in the epoch) and `on_epoch`
/// after each epoch. Batch `s` of the whole run is binarized from the stream
/// `(seed, BINARIZE, s)`.
///
/// # Errors
/// [`Error::Dataset`] (for a file) or [`Error::Shape`] if the rows do not have `V` values;
/// [`Error::Config`] if the schedule asks for more batches than an epoch has or for none;
/// [`Error::Diverged`] from the trainer.
pub fn train_dataset(
    model: &mut Rbm,
    trainer: &mut Trainer,
    ds: &(impl RowSource + ?Sized),
    schedule: &Schedule,
    on_batch: impl FnMut(usize),
    on_epoch: impl FnMut(&EpochStats),
) -> Result<Vec<EpochStats>> {
    struct Callbacks<B, E>(B, E);
    impl<B: FnMut(usize), E: FnMut(&EpochStats)> Observer for Callbacks<B, E> {
        fn batch(&mut self, done: usize, _: &[f32]) {
            (self.0)(done);
        }
        fn epoch_end(&mut self, stats: &EpochStats, _: &Rbm) -> Result<()> {
            (self.1)(stats);
            Ok(())
        }
    }
    let mut position = RunPosition::default();
    let mut observer = Callbacks(on_batch, on_epoch);
    train_dataset_from(model, trainer, ds, schedule, &mut position, &mut observer)?;
    Ok(position.history)
}

/// [`train_dataset`] from `position` (the default for a new run; one saved with a checkpoint
/// to continue a run exactly), reporting to `observer`; on return `position` is where the run
/// stands — after the last epoch, or after the last good step if training stopped on an
/// error. The batch order of epoch `e` and the draws of step `s` depend only on the seed, `e`
/// and `s`, so a run continued from a position saved with the model and the trainer's state
/// ends bit-identical to one never stopped. The epochs' `seconds` count from the start of
/// the epoch, or of the call for a continued one, and exclude `epoch_end`'s time.
///
/// # Errors
/// Those of [`train_dataset`]; [`Error::Config`] if `position` is not within the schedule;
/// the first error the observer returns.
pub fn train_dataset_from(
    model: &mut Rbm,
    trainer: &mut Trainer,
    ds: &(impl RowSource + ?Sized),
    schedule: &Schedule,
    position: &mut RunPosition,
    observer: &mut impl Observer,
) -> Result<()> {
    ds.check_row_len(model.n_visible())?;
    let cfg = trainer.config().clone();
    let mut batches = Batches::new(
        ds.n_rows(),
        cfg.batch_size,
        schedule.order,
        cfg.seed,
        schedule.drop_last,
    )?;
    let n = batches_per_epoch(&batches, schedule)?;
    if position.epoch > schedule.epochs || position.batch > n {
        return Err(Error::config(
            "run position",
            format!("within {} epochs of {n} batches", schedule.epochs),
            format!("batch {} of epoch {}", position.batch, position.epoch),
        ));
    }
    let mut buf = vec![0.0f32; cfg.batch_size * model.n_visible()];
    let key = StreamKey::new(cfg.seed).derive(tags::BINARIZE);
    while position.epoch < schedule.epochs {
        let start = Instant::now();
        batches.epoch(position.epoch as u64);
        while position.batch < n {
            trainer.set_position(position.epoch, position.batch);
            // The batch's binarization and the step with the pool's workers awake throughout
            // (see `Trainer::step`).
            let indices = batches.indices(position.batch);
            let rows = &mut buf[..indices.len() * model.n_visible()];
            let s = crate::compute::awake::run_awake(|| {
                ds.fill(
                    indices,
                    schedule.binarize,
                    key.derive(trainer.steps()),
                    rows,
                )?;
                if ds.values_in_unit_interval() {
                    trainer.step(model, rows)
                } else {
                    trainer.step_finite(model, rows)
                }
            })?;
            position.batch += 1;
            position.loss_sum += s.loss;
            position.recon_sum += s.recon_error;
            observer.batch(position.batch, rows);
            observer.step_end(model, trainer, position)?;
        }
        let stats = EpochStats {
            epoch: position.epoch,
            loss: position.loss_sum / n as f64,
            recon_error: position.recon_sum / n as f64,
            batches: n,
            seconds: start.elapsed().as_secs_f64(),
        };
        observer.epoch_end(&stats, model)?;
        position.history.push(stats);
        *position = RunPosition {
            epoch: position.epoch + 1,
            history: std::mem::take(&mut position.history),
            ..RunPosition::default()
        };
    }
    Ok(())
}

fn batches_per_epoch(batches: &Batches, schedule: &Schedule) -> Result<usize> {
    schedule.batches_per_epoch_for(batches.n_rows(), batches.batch_size())
}
