//! `rbm train`: CD-k / PCD-k on an IDX dataset, writing a run folder.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use rbm::data::{self, Binarize, Dataset, Order, Split};
use rbm::train::{EpochStats, Schedule, TrainConfig, Trainer, train_dataset};
use rbm::{Error, IdxError, Rbm};
use serde_json::json;

use crate::args::{BinarizeArg, Preset, TrainArgs};
use crate::output::{Progress, print_json};

/// Everything a run is made of: what the preset gives, overridden by the flags.
#[derive(Debug, serde::Serialize)]
struct Plan {
    hidden: usize,
    train: TrainConfig,
    schedule: Schedule,
    marginal_bias: bool,
}

fn plan(a: &TrainArgs) -> Plan {
    // (hidden, k, lr, batch, epochs, batches per epoch, order)
    let (hidden, k, lr, batch, epochs, per_epoch, order) = match a.preset {
        Some(Preset::SeedMnist) => (500, 3, 0.01, 64, 10, Some(301), Order::Sequential),
        Some(Preset::SeedFashion) => (500, 2, 0.01, 32, 40, Some(501), Order::Sequential),
        None => (500, 3, 0.01, 64, 10, None, Order::Shuffled),
    };
    let binarize = match a.binarize {
        None | Some(BinarizeArg::Stochastic) => Binarize::Stochastic,
        Some(BinarizeArg::Threshold) => Binarize::Threshold,
        Some(BinarizeArg::None) => Binarize::None,
    };
    Plan {
        hidden: a.hidden.map_or(hidden, |h| h as usize),
        train: TrainConfig {
            k: a.k.map_or(k, |k| k as usize),
            lr: a.lr.unwrap_or(lr),
            momentum: a.momentum.unwrap_or(0.0),
            weight_decay: a.weight_decay.unwrap_or(0.0),
            batch_size: a.batch.map_or(batch, |b| b as usize),
            pcd: a.pcd,
            seed: a.seed,
        },
        schedule: Schedule {
            epochs: a.epochs.map_or(epochs, |e| e as usize),
            batches_per_epoch: a.batches_per_epoch.map(|b| b as usize).or(per_epoch),
            order,
            binarize,
        },
        marginal_bias: a.marginal_bias,
    }
}

fn data_dir(a: &TrainArgs) -> rbm::Result<PathBuf> {
    match (&a.data, a.dataset) {
        (Some(dir), _) => Ok(dir.clone()),
        (None, Some(name)) => data::find_dataset(name.folder()),
        (None, None) => Err(Error::Config("give --data DIR or --dataset NAME".into())),
    }
}

/// The training split of the dataset in `dir`, refused when it holds no images: the row size
/// of an empty image file is backed by no data (a 16-byte file may declare 0 images of
/// 65535 × 65535 pixels), so it must not size a model or a buffer.
///
/// # Errors
/// Those of [`data::open_split`]; [`Error::Idx`] with [`IdxError::WrongShape`] on the image
/// file for an empty dataset.
pub fn open_training_set(dir: &Path) -> rbm::Result<Dataset> {
    let ds = data::open_split(dir, Split::Train)?;
    if ds.is_empty() {
        return Err(Error::Idx {
            path: ds.images_file().path().to_path_buf(),
            kind: IdxError::WrongShape {
                expected: "[n, rows, cols] with n >= 1 (training needs images)",
                found: ds.images_file().header().dims.clone(),
            },
        });
    }
    Ok(ds)
}

pub fn run(a: &TrainArgs) -> rbm::Result<()> {
    let plan = plan(a);
    plan.train.validate()?;
    let dir = data_dir(a)?;
    let ds = open_training_set(&dir)?;
    let mut model = Rbm::new(ds.row_len(), plan.hidden, plan.train.seed)?;
    if plan.marginal_bias {
        model.init_visible_bias_from_marginals(&data::mean_pixels(&ds))?;
    }
    fs::create_dir_all(&a.out).map_err(|e| Error::io(&a.out, e))?;
    let config =
        json!({ "data": dir, "preset": a.preset.map(|p| format!("{p:?}")), "plan": &plan });
    if !a.json {
        println!(
            "training a {}–{} RBM on {} ({} rows), CD-{}{}, lr {}, batch {}, {} epochs",
            model.n_visible(),
            model.n_hidden(),
            dir.display(),
            ds.len(),
            plan.train.k,
            if plan.train.pcd { " (persistent)" } else { "" },
            plan.train.lr,
            plan.train.batch_size,
            plan.schedule.epochs
        );
    }
    let mut trainer = Trainer::new(&model, plan.train.clone())?;
    let per_epoch = plan
        .schedule
        .batches_per_epoch
        .unwrap_or(ds.len() / plan.train.batch_size) as u64;
    let bar = Progress::new(per_epoch * plan.schedule.epochs as u64, "batches");
    let history = train_dataset(
        &mut model,
        &mut trainer,
        &ds,
        &plan.schedule,
        |_| bar.inc(),
        |e| report_epoch(a.json, &bar, e, plan.train.batch_size),
    )?;
    bar.finish();
    let model_path = a.out.join("model.safetensors");
    rbm::save_model(&model_path, &model, Some(&config.to_string()))?;
    rbm::atomic::write_atomic(&a.out.join("metrics.csv"), metrics_csv(&history).as_bytes())?;
    report_final(a.json, &model_path, &history);
    Ok(())
}

fn report_epoch(json: bool, bar: &Progress, e: &EpochStats, batch: usize) {
    let rows_per_s = (e.batches * batch) as f64 / e.seconds.max(1e-9);
    if json {
        print_json(&json!({
            "epoch": e.epoch + 1, "loss": e.loss, "recon_error": e.recon_error,
            "seconds": e.seconds, "rows_per_s": rows_per_s,
        }));
    } else {
        bar.println(format!(
            "epoch {:>3}  loss {:>9.4}  recon error {:.5}  {:.2} s  {:.0} rows/s",
            e.epoch + 1,
            e.loss,
            e.recon_error,
            e.seconds,
            rows_per_s
        ));
    }
}

fn report_final(json: bool, model_path: &Path, history: &[EpochStats]) {
    let last = history.last();
    let seconds: f64 = history.iter().map(|e| e.seconds).sum();
    if json {
        print_json(&json!({
            "final": true, "model": model_path, "loss": last.map(|e| e.loss),
            "recon_error": last.map(|e| e.recon_error), "seconds": seconds,
        }));
    } else {
        println!(
            "wrote {} ({seconds:.1} s of training)",
            model_path.display()
        );
    }
}

/// `epoch,loss,recon_error,seconds`, one row per epoch (1-based epochs).
fn metrics_csv(history: &[EpochStats]) -> String {
    let mut s = String::from("epoch,loss,recon_error,seconds\n");
    for e in history {
        let _ = writeln!(
            s,
            "{},{},{},{}",
            e.epoch + 1,
            e.loss,
            e.recon_error,
            e.seconds
        );
    }
    s
}
