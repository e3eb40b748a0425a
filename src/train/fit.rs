//! The epoch loop over an IDX dataset.

use std::time::Instant;

use rbm_kernels::StreamKey;

use crate::data::{Batches, Binarize, Dataset, Order, fill_batch};
use crate::error::{DatasetError, Error, Result};
use crate::model::Rbm;
use crate::rng::tags;
use crate::train::Trainer;

/// Which batches an epoch visits and how pixels become visible values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    /// Epochs (`≥ 1`).
    pub epochs: usize,
    /// Batches per epoch; `None` for every whole batch of the dataset (a last partial batch
    /// is dropped). The reference notebook stops after 301 batches of an unshuffled loader.
    pub batches_per_epoch: Option<usize>,
    /// Unshuffled (the notebook's loader) or a fresh permutation each epoch.
    pub order: Order,
    /// Stochastic (the notebook), threshold or none.
    pub binarize: Binarize,
}

/// Means over one epoch's batches.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
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

/// Trains `model` on `ds` for `schedule.epochs` epochs with `trainer`, calling `on_batch`
/// after each batch (with the number of batches done in the epoch) and `on_epoch` after each
/// epoch. Batch `s` of the whole run is binarized from the stream `(seed, BINARIZE, s)`.
///
/// # Errors
/// [`Error::Dataset`] if the rows do not have `V` values; [`Error::Config`] if the schedule
/// asks for more batches than an epoch has or for none; [`Error::Diverged`] from the trainer.
pub fn train_dataset(
    model: &mut Rbm,
    trainer: &mut Trainer,
    ds: &Dataset,
    schedule: &Schedule,
    mut on_batch: impl FnMut(usize),
    mut on_epoch: impl FnMut(&EpochStats),
) -> Result<Vec<EpochStats>> {
    train_dataset_with(
        model,
        trainer,
        ds,
        schedule,
        |b, _| on_batch(b),
        |e, _| {
            on_epoch(e);
            Ok(())
        },
    )
}

/// [`train_dataset`] with callbacks that see more: `on_batch` also gets the batch just trained
/// on (`B × V`, as binarized: the inputs whose reconstruction [`Trainer::reconstruction`] then
/// holds), and `on_epoch` the model as it is at the end of the epoch (to evaluate it, save a
/// checkpoint, …) and may stop training with an error. The epoch's `seconds` do not include
/// the epoch callback's time.
///
/// # Errors
/// Those of [`train_dataset`], and the first error `on_epoch` returns.
pub fn train_dataset_with(
    model: &mut Rbm,
    trainer: &mut Trainer,
    ds: &Dataset,
    schedule: &Schedule,
    mut on_batch: impl FnMut(usize, &[f32]),
    mut on_epoch: impl FnMut(&EpochStats, &Rbm) -> Result<()>,
) -> Result<Vec<EpochStats>> {
    if ds.row_len() != model.n_visible() {
        return Err(Error::Dataset {
            path: ds.images_file().path().to_path_buf(),
            kind: DatasetError::RowSize {
                expected: model.n_visible(),
                found: ds.row_len(),
            },
        });
    }
    let cfg = trainer.config().clone();
    let mut batches = Batches::new(ds.len(), cfg.batch_size, schedule.order, cfg.seed, true)?;
    let n = batches_per_epoch(&batches, schedule)?;
    let mut buf = vec![0.0f32; cfg.batch_size * model.n_visible()];
    let key = StreamKey::new(cfg.seed).derive(tags::BINARIZE);
    let mut history = Vec::with_capacity(schedule.epochs);
    for epoch in 0..schedule.epochs {
        let start = Instant::now();
        batches.epoch(epoch as u64);
        trainer.start_epoch(epoch);
        let (mut loss, mut recon) = (0.0, 0.0);
        for b in 0..n {
            fill_batch(
                ds,
                batches.indices(b),
                schedule.binarize,
                key.derive(trainer.steps()),
                &mut buf,
            )?;
            let s = trainer.step(model, &buf)?;
            loss += s.loss;
            recon += s.recon_error;
            on_batch(b + 1, &buf);
        }
        let stats = EpochStats {
            epoch,
            loss: loss / n as f64,
            recon_error: recon / n as f64,
            batches: n,
            seconds: start.elapsed().as_secs_f64(),
        };
        on_epoch(&stats, model)?;
        history.push(stats);
    }
    Ok(history)
}

fn batches_per_epoch(batches: &Batches, schedule: &Schedule) -> Result<usize> {
    let available = batches.num_batches();
    let n = schedule.batches_per_epoch.unwrap_or(available);
    if schedule.epochs == 0 || n == 0 {
        return Err(Error::Config(
            "epochs and batches per epoch must be at least 1".into(),
        ));
    }
    if n > available {
        return Err(Error::Config(format!(
            "{n} batches per epoch asked, the dataset has {available} whole batches of {}",
            batches.batch_size()
        )));
    }
    Ok(n)
}
