//! `rbm train`: CD-k / PCD-k on an IDX dataset, writing a run folder.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::ValueEnum;
use rbm::checkpoint::{Checkpoint, load_checkpoint, save_checkpoint};
use rbm::data::{self, Binarize, Dataset, Order, Split};
use rbm::eval::{self, AisConfig, BaseRate};
use rbm::experiments::generation::snapshot_steps;
use rbm::train::{
    EpochStats, FastWeights, Method, Observer, RunPosition, Schedule, Tempering, TrainConfig,
    Trainer,
};
use rbm::{Config, Error, Estimator, IdxError, ModelFileError, Rbm};
use rbm_kernels::Isa;
use serde_json::json;

use crate::args::{BinarizeArg, Preset, TrainArgs};
use crate::figures::{
    RUN_FIGURES, RunFigures, check_run_figures, default_density, write_run_figures,
};
use crate::memory::{mib, peak_rss_bytes};
use crate::output::{Progress, print_json, put_path};
use crate::run_dir::{CHECKPOINT, FileFingerprint, MODEL, RunFolder, absolute, fingerprint};

/// Everything a run is made of, in the low-level terms that its model file records.
#[derive(Debug, serde::Serialize)]
struct Plan {
    hidden: usize,
    train: TrainConfig,
    schedule: Schedule,
    marginal_bias: bool,
}

impl Plan {
    /// The plan of `config` for epochs of `per_epoch` batches.
    fn of(config: &Config, per_epoch: usize) -> Self {
        Plan {
            hidden: config.n_hidden,
            train: config.train_config(per_epoch),
            schedule: config.schedule(),
            marginal_bias: config.marginal_bias,
        }
    }
}

/// What a preset sets; each flag given overrides its field.
struct PresetValues {
    hidden: usize,
    k: usize,
    lr: f32,
    batch: usize,
    epochs: usize,
    per_epoch: Option<usize>,
    order: Order,
    momentum: f32,
    momentum_start: Option<f32>,
    lr_end: Option<f32>,
    chains: Option<usize>,
    centering: Option<f32>,
    marginal_bias: bool,
}

impl PresetValues {
    /// The reference notebook's recipe: plain SGD, no refinements.
    fn notebook(k: usize, lr: f32, batch: usize, epochs: usize, per_epoch: Option<usize>) -> Self {
        PresetValues {
            hidden: 500,
            k,
            lr,
            batch,
            epochs,
            per_epoch,
            order: if per_epoch.is_some() {
                Order::Sequential
            } else {
                Order::Shuffled
            },
            momentum: 0.0,
            momentum_start: None,
            lr_end: None,
            chains: None,
            centering: None,
            marginal_bias: false,
        }
    }

    /// The refinements shared by the `best-*` presets: batch 100, lr 0.05 decaying linearly
    /// to 0, momentum 0.5 for 5 epochs then 0.9, visible biases from the pixel marginals.
    fn refined(k: usize, epochs: usize) -> Self {
        PresetValues {
            momentum: 0.9,
            momentum_start: Some(0.5),
            lr_end: Some(0.0),
            marginal_bias: true,
            ..PresetValues::notebook(k, 0.05, 100, epochs, None)
        }
    }

    /// Centered CD-10 on top of [`PresetValues::refined`] (offsets moving at rate 0.01).
    fn centered_cd10(epochs: usize) -> Self {
        PresetValues {
            centering: Some(0.01),
            ..PresetValues::refined(10, epochs)
        }
    }

    fn of(preset: Option<Preset>) -> Self {
        match preset {
            Some(Preset::SeedMnist) => PresetValues::notebook(3, 0.01, 64, 10, Some(301)),
            Some(Preset::SeedFashion) => PresetValues::notebook(2, 0.01, 32, 40, Some(501)),
            Some(Preset::BestMnist) => PresetValues::centered_cd10(BEST_MNIST_EPOCHS),
            Some(Preset::BestFashion) => PresetValues::centered_cd10(BEST_FASHION_EPOCHS),
            None => PresetValues::notebook(3, 0.01, 64, 10, None),
        }
    }
}

/// Epochs of `--preset best-mnist`: about 27 minutes on the 2-core machine at the 7.26 s per
/// epoch that `scripts/quality_table.sh` measured for centered CD-10 (docs/quality.md).
const BEST_MNIST_EPOCHS: usize = 220;
/// Epochs of `--preset best-fashion`: about 26 minutes at the 7.74 s of a one-epoch
/// calibration run of centered CD-10 on Fashion-MNIST.
const BEST_FASHION_EPOCHS: usize = 200;

/// The negative phase the flags ask for: fast weights or tempering (which clap keeps apart)
/// or plain persistent chains, each with `chains`; CD without any of them.
fn method(a: &TrainArgs, chains: Option<usize>) -> Method {
    if let Some(lr) = a.fast_lr {
        let decay = a.fast_decay.unwrap_or(0.95);
        Method::FastPcd {
            chains,
            fast: FastWeights { lr, decay },
        }
    } else if let Some(t) = a.temperatures {
        let beta_min = a.beta_min.unwrap_or(0.5);
        Method::Tempering {
            chains,
            ladder: Tempering {
                temperatures: t as usize,
                beta_min,
            },
        }
    } else if a.pcd || chains.is_some() {
        Method::Pcd { chains }
    } else {
        Method::Cd
    }
}

/// The estimator's settings of a run: what the preset gives, overridden by the flags.
fn config(a: &TrainArgs) -> Config {
    let p = PresetValues::of(a.preset);
    let binarize = match a.binarize {
        None | Some(BinarizeArg::Stochastic) => Binarize::Stochastic,
        Some(BinarizeArg::Threshold) => Binarize::Threshold,
        Some(BinarizeArg::None) => Binarize::None,
    };
    let chains = a.chains.map(|c| c as usize).or(p.chains);
    Config {
        n_hidden: a.hidden.map_or(p.hidden, |h| h as usize),
        epochs: a.epochs.map_or(p.epochs, |e| e as usize),
        batch_size: a.batch.map_or(p.batch, |b| b as usize),
        k: a.k.map_or(p.k, |k| k as usize),
        learning_rate: a.lr.unwrap_or(p.lr),
        lr_end: a.lr_end.or(p.lr_end),
        method: method(a, chains),
        momentum: a.momentum.unwrap_or(p.momentum),
        momentum_start: a.momentum_start.or(p.momentum_start),
        momentum_epochs: a.momentum_epochs.map_or(5, |e| e as usize),
        weight_decay: a.weight_decay.unwrap_or(0.0),
        centering: a.centering.or(p.centering),
        marginal_bias: a.marginal_bias || p.marginal_bias,
        binarize,
        order: p.order,
        // Whole batches only, as the notebook's loader (and every run before the option).
        drop_last: true,
        batches_per_epoch: a.batches_per_epoch.map(|b| b as usize).or(p.per_epoch),
        seed: a.seed,
    }
}

fn data_dir(a: &TrainArgs) -> rbm::Result<PathBuf> {
    match (&a.data, a.dataset) {
        (Some(dir), _) => Ok(dir.clone()),
        (None, Some(name)) => data::find_dataset(name.folder()),
        (None, None) => Err(Error::config(
            "data",
            "--data DIR or --dataset NAME",
            "neither",
        )),
    }
}

/// The dataset's name: the one given by `--dataset`, else the data folder's name.
fn dataset_name(a: &TrainArgs, dir: &Path) -> String {
    match a.dataset {
        Some(d) => d.folder().to_string(),
        None => dir.file_name().map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
    }
}

fn preset_name(p: Preset) -> String {
    p.to_possible_value()
        .map_or_else(|| format!("{p:?}"), |v| v.get_name().to_string())
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

/// What a run's checkpoints hold besides the training state, so that `--resume` can go on
/// with the same settings: kept in the checkpoint's `run` document.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct RunRecord {
    /// The data folder (any bytes: see [`crate::paths::serde_path`]).
    #[serde(with = "crate::paths::serde_path")]
    data: PathBuf,
    /// Name, size and SHA-256 of the training files (absent in records written before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_fingerprint: Option<Vec<FileFingerprint>>,
    dataset: String,
    preset: Option<Preset>,
    marginal_bias: bool,
    eval_every: Option<usize>,
    sample_steps: Option<Vec<usize>>,
    checkpoint_every: Option<u64>,
    /// The `--eval-every` estimates made so far.
    ais_points: Vec<AisPoint>,
}

/// A run ready to train: new, or continued from a checkpoint.
struct Setup {
    /// The run folder, locked for the whole run.
    folder: RunFolder,
    ds: Dataset,
    /// `--eval-every`'s estimates, set up (test rows read) before the folder is claimed.
    monitor: Option<Monitor>,
    /// The model and its trainer, at `position`.
    estimator: Estimator,
    plan: Plan,
    record: RunRecord,
    position: RunPosition,
    resumed_at: Option<u64>,
}

pub fn run(a: &TrainArgs) -> rbm::Result<()> {
    let wall = Instant::now();
    let setup = match &a.resume {
        Some(run_dir) => resumed_run(a, run_dir)?,
        None => new_run(a)?,
    };
    execute(a, setup, wall)
}

fn new_run(a: &TrainArgs) -> rbm::Result<Setup> {
    let config = config(a);
    // Every value but the schedule's step counts, checked before any file is opened (by
    // the low-level names that the flags are documented with).
    config.train_config(1).validate()?;
    if let Some(steps) = &a.sample_steps {
        check_sample_steps(steps)?;
    }
    let out = a
        .out
        .clone()
        .ok_or_else(|| Error::config("output", "--out DIR or --resume RUNDIR", "neither"))?;
    if let Ok(meta) = std::fs::metadata(&out)
        && !meta.is_dir()
    {
        return Err(Error::io(
            &out,
            std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "exists and is not a folder (--out names the run folder)",
            ),
        ));
    }
    let dir = absolute(&data_dir(a)?)?;
    let ds = open_training_set(&dir)?;
    // Everything that can refuse the run is checked before its folder is made.
    let per_epoch = config
        .schedule()
        .batches_per_epoch_for(ds.len(), config.batch_size)?;
    let plan = Plan::of(&config, per_epoch);
    plan.train.validate()?;
    let fashion = is_fashion(&dataset_name(a, &dir), a.preset);
    check_run_figures(ds.image_shape(), default_density(fashion))?;
    let monitor = match a.eval_every {
        Some(every) => Some(Monitor::new(&dir, &ds, every as usize, plan.train.seed)?),
        None => None,
    };
    let mut estimator = Estimator::new(config);
    estimator.initialize(&ds)?;
    let record = RunRecord {
        dataset: dataset_name(a, &dir),
        data_fingerprint: Some(fingerprint(&ds)?),
        data: dir,
        preset: a.preset,
        marginal_bias: plan.marginal_bias,
        eval_every: a.eval_every.map(|e| e as usize),
        sample_steps: a.sample_steps.clone(),
        checkpoint_every: a.checkpoint_every,
        ais_points: Vec::new(),
    };
    let folder = RunFolder::claim_new(&out, a.force)?;
    Ok(Setup {
        folder,
        ds,
        monitor,
        estimator,
        plan,
        record,
        position: RunPosition::default(),
        resumed_at: None,
    })
}

/// The longest Gibbs chain a run's samples figure (`--sample-steps`) may ask for.
pub const MAX_SAMPLE_STEPS: usize = 1_000_000;

/// `--sample-steps`: ascending, at most [`MAX_SAMPLE_STEPS`].
fn check_sample_steps(steps: &[usize]) -> rbm::Result<()> {
    if steps.is_empty() || steps.windows(2).any(|w| w[0] > w[1]) {
        return Err(Error::config(
            "--sample-steps",
            "an ascending list",
            format!("{steps:?}"),
        ));
    }
    if let Some(&last) = steps.last()
        && last > MAX_SAMPLE_STEPS
    {
        return Err(Error::config(
            "--sample-steps",
            format!("at most {MAX_SAMPLE_STEPS} steps"),
            last,
        ));
    }
    Ok(())
}

/// Whether a run on `name` (or with `preset`) draws Fashion-MNIST's noise density.
fn is_fashion(name: &str, preset: Option<Preset>) -> bool {
    name.contains("fashion") || matches!(preset, Some(Preset::SeedFashion | Preset::BestFashion))
}

/// The run in `run_dir`, from its checkpoint, with the data found where it was (or where
/// `--data`/`--dataset` say it is now).
fn resumed_run(a: &TrainArgs, run_dir: &Path) -> rbm::Result<Setup> {
    let folder = RunFolder::claim_existing(run_dir)?;
    let path = run_dir.join(CHECKPOINT);
    let checkpoint = load_checkpoint(&path)?;
    let bad_record = |e: String| Error::ModelFile {
        path: path.clone(),
        kind: ModelFileError::Metadata(format!("the run record: {e}")),
    };
    let text = checkpoint
        .run
        .as_deref()
        .ok_or_else(|| bad_record("missing".into()))?;
    let mut record: RunRecord =
        serde_json::from_str(text).map_err(|e| bad_record(e.to_string()))?;
    if let Some(steps) = &record.sample_steps {
        check_sample_steps(steps).map_err(|e| bad_record(e.to_string()))?;
    }
    if a.data.is_some() || a.dataset.is_some() {
        record.data = absolute(&data_dir(a)?)?;
    }
    if a.checkpoint_every.is_some() {
        record.checkpoint_every = a.checkpoint_every;
    }
    let ds = open_training_set(&record.data)?;
    let now = fingerprint(&ds)?;
    if let Some(then) = &record.data_fingerprint
        && *then != now
        && !a.data_moved
    {
        return Err(Error::config(
            "--resume",
            format!(
                "the data the run was started on ({}); --data DIR says where they are now, \
                 --data-moved that these files hold them",
                describe_fingerprint(then)
            ),
            format!("{}: {}", record.data.display(), describe_fingerprint(&now)),
        ));
    }
    record.data_fingerprint = Some(now);
    if checkpoint.config.batch_size > ds.len() {
        return Err(Error::config(
            "checkpoint batch size",
            format!("at most the {} rows of {}", ds.len(), record.data.display()),
            checkpoint.config.batch_size,
        ));
    }
    checkpoint
        .schedule
        .batches_per_epoch_for(ds.len(), checkpoint.config.batch_size)?;
    let fashion = is_fashion(&record.dataset, record.preset);
    check_run_figures(ds.image_shape(), default_density(fashion))?;
    let monitor = match record.eval_every {
        Some(every) => {
            let mut m = Monitor::new(&record.data, &ds, every, checkpoint.config.seed)?;
            m.points = record.ais_points.clone();
            Some(m)
        }
        None => None,
    };
    let plan = Plan {
        hidden: checkpoint.model.n_hidden(),
        train: checkpoint.config.clone(),
        schedule: checkpoint.schedule,
        marginal_bias: record.marginal_bias,
    };
    let resumed_at = Some(checkpoint.state.steps);
    let (estimator, position) = Estimator::resume(checkpoint, &ds)?;
    Ok(Setup {
        folder,
        ds,
        monitor,
        estimator,
        plan,
        record,
        position,
        resumed_at,
    })
}

/// `name (N bytes, sha256 abcdef012345…)` for each file.
fn describe_fingerprint(files: &[FileFingerprint]) -> String {
    files
        .iter()
        .map(|f| {
            format!(
                "{} ({} bytes, sha256 {})",
                f.name,
                f.bytes,
                f.sha256.get(..12).unwrap_or(&f.sha256)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn execute(a: &TrainArgs, setup: Setup, wall: Instant) -> rbm::Result<()> {
    let Setup {
        folder,
        ds,
        monitor,
        mut estimator,
        plan,
        record,
        mut position,
        resumed_at,
    } = setup;
    let (n_visible, n_hidden) = (ds.row_len(), plan.hidden);
    let mut config = json!({
        "dataset": record.dataset,
        "preset": record.preset.map(|p| format!("{p:?}")), "plan": &plan,
    });
    put_path(&mut config, "data", &record.data);
    if !a.json {
        let how = match resumed_at {
            Some(step) => format!("continuing at step {step} "),
            None => String::new(),
        };
        outln!(
            "{how}training a {}–{} RBM on {} ({} rows), CD-{}{}, lr {}, batch {}, {} epochs",
            n_visible,
            n_hidden,
            record.data.display(),
            ds.len(),
            plan.train.k,
            if plan.train.pcd() {
                " (persistent)"
            } else {
                ""
            },
            plan.train.lr,
            plan.train.batch_size,
            plan.schedule.epochs
        );
    }
    let out = folder.dir.clone();
    let per_epoch = plan
        .schedule
        .batches_per_epoch_for(ds.len(), plan.train.batch_size)?;
    let total = (per_epoch * plan.schedule.epochs) as u64;
    let checkpoints = record.checkpoint_every.map(|every| Checkpoints {
        every,
        last_step: total,
        path: out.join(CHECKPOINT),
        plan: &plan,
        record: &record,
    });
    let mut observer = RunObserver {
        json: a.json,
        bar: Progress::new(total.saturating_sub(resumed_at.unwrap_or(0)), "batches"),
        per_epoch,
        epochs: plan.schedule.epochs,
        batch_size: plan.train.batch_size,
        last_batch: Vec::new(),
        monitor,
        checkpoints,
    };
    estimator.fit_from(&ds, &mut position, &mut observer)?;
    observer.bar.finish();
    let (Some(model), Some(trainer)) = (estimator.model(), estimator.trainer()) else {
        return Err(Error::NotFitted);
    };
    let history = position.history;
    let train_seconds = wall.elapsed().as_secs_f64();
    // Before the figures, whose sampling and images are not training's memory.
    let train_peak_rss = peak_rss_bytes().map(mib);
    let model_path = out.join(MODEL);
    rbm::save_model(&model_path, model, Some(&config.to_string()))?;
    let points = observer.monitor.map(|m| m.points);
    rbm::atomic::write_atomic(
        &out.join("metrics.csv"),
        metrics_csv(&history, points.as_deref()).as_bytes(),
    )?;

    let figures_start = Instant::now();
    let sample_steps = record
        .sample_steps
        .clone()
        .unwrap_or_else(|| snapshot_steps(plan.train.k));
    let name = &record.dataset;
    let fashion = is_fashion(name, record.preset);
    let title = format!(
        "{name}{}: {}–{} RBM, CD-{}, loss per epoch",
        record
            .preset
            .map(|p| format!(" ({})", preset_name(p)))
            .unwrap_or_default(),
        model.n_visible(),
        model.n_hidden(),
        plan.train.k
    );
    let (height, width) = ds.image_shape();
    write_run_figures(
        &out,
        &RunFigures {
            model,
            inputs: &observer.last_batch,
            reconstructions: trainer.reconstruction(),
            history: &history,
            shape: (height, width),
            title: &title,
            sample_steps: &sample_steps,
            density: default_density(fashion),
            seed: plan.train.seed,
        },
    )?;
    let figure_seconds = figures_start.elapsed().as_secs_f64();
    let last = history.last();
    let run = json!({
        "command": "train",
        "config": config,
        "seed": plan.train.seed,
        "rbm_version": env!("CARGO_PKG_VERSION"),
        "isa": Isa::current().name(),
        "threads": rayon::current_num_threads(),
        "sample_steps": sample_steps,
        "noise_density": [0.1, default_density(fashion)],
        "resumed_from_step": resumed_at,
        "checkpoint_every": record.checkpoint_every,
        "train_seconds": train_seconds,
        "train_peak_rss_mib": train_peak_rss,
        "figure_seconds": figure_seconds,
        "wall_seconds": wall.elapsed().as_secs_f64(),
        "final": {
            "epochs": history.len(),
            "loss": last.map(|e| e.loss),
            "recon_error": last.map(|e| e.recon_error),
        },
        "files": run_files(),
    });
    let pretty = serde_json::to_string_pretty(&run).unwrap_or_else(|_| run.to_string());
    rbm::atomic::write_atomic(&out.join("run.json"), pretty.as_bytes())?;
    report_final(
        a.json,
        &model_path,
        &history,
        figure_seconds,
        train_peak_rss,
    );
    Ok(())
}

/// `--checkpoint-every`: where and how often, and what to record beside the state.
struct Checkpoints<'a> {
    every: u64,
    /// The run's last step: no checkpoint there, the model file follows at once.
    last_step: u64,
    path: PathBuf,
    plan: &'a Plan,
    record: &'a RunRecord,
}

impl Checkpoints<'_> {
    fn save(
        &self,
        model: &Rbm,
        trainer: &Trainer,
        position: &RunPosition,
        points: &[AisPoint],
    ) -> rbm::Result<()> {
        let record = RunRecord {
            ais_points: points.to_vec(),
            ..self.record.clone()
        };
        let run = serde_json::to_string(&record).map_err(|e| Error::ModelFile {
            path: self.path.clone(),
            kind: ModelFileError::Metadata(format!("cannot write the run record: {e}")),
        })?;
        save_checkpoint(
            &self.path,
            &Checkpoint {
                model: model.clone(),
                config: self.plan.train.clone(),
                schedule: self.plan.schedule,
                state: trainer.state(),
                position: position.clone(),
                run: Some(run),
            },
        )
    }
}

/// Progress, the last batch for the figures, `--eval-every` and `--checkpoint-every`.
struct RunObserver<'a> {
    json: bool,
    bar: Progress,
    per_epoch: usize,
    epochs: usize,
    batch_size: usize,
    last_batch: Vec<f32>,
    monitor: Option<Monitor>,
    checkpoints: Option<Checkpoints<'a>>,
}

impl Observer for RunObserver<'_> {
    fn batch(&mut self, done: usize, rows: &[f32]) {
        self.bar.inc();
        if done == self.per_epoch {
            self.last_batch.clear();
            self.last_batch.extend_from_slice(rows);
        }
    }

    fn step_end(
        &mut self,
        model: &Rbm,
        trainer: &Trainer,
        position: &RunPosition,
    ) -> rbm::Result<()> {
        match &self.checkpoints {
            Some(c) if trainer.steps().is_multiple_of(c.every) && trainer.steps() < c.last_step => {
                let points = self.monitor.as_ref().map_or(&[][..], |m| &m.points);
                c.save(model, trainer, position, points)
            }
            _ => Ok(()),
        }
    }

    fn epoch_end(&mut self, e: &EpochStats, model: &Rbm) -> rbm::Result<()> {
        let epochs = self.epochs;
        let point = match &mut self.monitor {
            Some(mon) if (e.epoch + 1).is_multiple_of(mon.every) || e.epoch + 1 == epochs => {
                Some(mon.evaluate(e.epoch, model)?)
            }
            _ => None,
        };
        report_epoch(self.json, &self.bar, e, self.batch_size, point.as_ref());
        Ok(())
    }
}

/// The cheap AIS estimate of `--eval-every`: fixed test rows, few temperatures.
struct Monitor {
    every: usize,
    base: BaseRate,
    rows: Vec<f32>,
    seed: u64,
    points: Vec<AisPoint>,
}

/// One `--eval-every` estimate, in nats.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct AisPoint {
    epoch: usize,
    log_z: f64,
    log_z_lo: f64,
    log_z_hi: f64,
    test_ll: f64,
    seconds: f64,
}

impl Monitor {
    /// AIS runs of each estimate.
    const RUNS: usize = 50;
    /// Temperatures of each estimate (the standard schedule's shape).
    const TEMPERATURES: usize = 1000;
    /// The first rows of the test split scored (stochastic binarization, fixed seed).
    const ROWS: usize = 1000;

    fn new(dir: &Path, train: &data::Dataset, every: usize, seed: u64) -> rbm::Result<Self> {
        let test = data::open_split(dir, Split::Test)?;
        if test.row_len() != train.row_len() {
            return Err(Error::shape(
                "test rows",
                format!("{} pixels (the training rows')", train.row_len()),
                test.row_len(),
            ));
        }
        Ok(Monitor {
            every,
            base: BaseRate::from_dataset(train)?,
            rows: eval::evaluation_rows(&test, Self::ROWS, Binarize::Stochastic)?,
            seed,
            points: Vec::new(),
        })
    }

    fn evaluate(&mut self, epoch: usize, model: &Rbm) -> rbm::Result<AisPoint> {
        let start = std::time::Instant::now();
        let cfg = AisConfig {
            runs: Self::RUNS,
            schedule: eval::Schedule::standard_with(Self::TEMPERATURES)?,
            seed: self.seed,
        };
        let est = eval::ais(model, &self.base, &cfg)?;
        let (test_ll, _, _) = est.log_likelihood(eval::mean_neg_free_energy(model, &self.rows)?);
        let point = AisPoint {
            epoch,
            log_z: est.log_z,
            log_z_lo: est.log_z_lo,
            log_z_hi: est.log_z_hi,
            test_ll,
            seconds: start.elapsed().as_secs_f64(),
        };
        self.points.push(point);
        Ok(point)
    }
}

fn report_epoch(json: bool, bar: &Progress, e: &EpochStats, batch: usize, ais: Option<&AisPoint>) {
    let rows_per_s = (e.batches * batch) as f64 / e.seconds.max(1e-9);
    if json {
        let mut line = json!({
            "epoch": e.epoch + 1, "loss": e.loss, "recon_error": e.recon_error,
            "seconds": e.seconds, "rows_per_s": rows_per_s,
        });
        if let Some(p) = ais {
            line["ais_log_z"] = json!(p.log_z);
            line["ais_test_ll"] = json!(p.test_ll);
            line["eval_seconds"] = json!(p.seconds);
        }
        print_json(&line);
    } else {
        let ais = ais.map_or(String::new(), |p| {
            format!(
                "  AIS test LL {:.2} (log Z {:.2}, {:.1} s)",
                p.test_ll, p.log_z, p.seconds
            )
        });
        bar.println(format!(
            "epoch {:>3}  loss {:>9.4}  recon error {:.5}  {:.2} s  {:.0} rows/s{ais}",
            e.epoch + 1,
            e.loss,
            e.recon_error,
            e.seconds,
            rows_per_s
        ));
    }
}

/// The last lines: the model's path, the time, and (`train_peak_rss`, MiB) the peak resident
/// memory up to the end of training.
fn report_final(
    json: bool,
    model_path: &Path,
    history: &[EpochStats],
    figure_seconds: f64,
    train_peak_rss: Option<f64>,
) {
    let last = history.last();
    let seconds: f64 = history.iter().map(|e| e.seconds).sum();
    if json {
        let mut v = json!({
            "final": true, "loss": last.map(|e| e.loss),
            "recon_error": last.map(|e| e.recon_error), "seconds": seconds,
            "figure_seconds": figure_seconds, "train_peak_rss_mib": train_peak_rss,
        });
        put_path(&mut v, "model", model_path);
        print_json(&v);
    } else {
        let dir = model_path.parent().unwrap_or(Path::new("."));
        let memory = train_peak_rss
            .map(|m| format!(", at most {m:.0} MiB resident"))
            .unwrap_or_default();
        outln!(
            "wrote {} ({seconds:.1} s of training{memory}) and the figures {} ({figure_seconds:.1} s)",
            model_path.display(),
            RUN_FIGURES
                .map(|f| dir.join(f).display().to_string())
                .join(", ")
        );
    }
}

/// Every file of a run folder.
fn run_files() -> Vec<&'static str> {
    let mut files = vec!["model.safetensors", "metrics.csv"];
    files.extend(RUN_FIGURES);
    files.push("run.json");
    files
}

/// `epoch,loss,recon_error,seconds`, one row per epoch (1-based epochs); with `--eval-every`
/// also `ais_log_z,ais_log_z_lo,ais_log_z_hi,ais_test_ll,eval_seconds`, empty in the epochs
/// not evaluated (and an infinite bound written as `-inf`/`inf`).
fn metrics_csv(history: &[EpochStats], points: Option<&[AisPoint]>) -> String {
    let mut s = String::from("epoch,loss,recon_error,seconds");
    if points.is_some() {
        s.push_str(",ais_log_z,ais_log_z_lo,ais_log_z_hi,ais_test_ll,eval_seconds");
    }
    s.push('\n');
    for e in history {
        let _ = write!(
            s,
            "{},{},{},{}",
            e.epoch + 1,
            e.loss,
            e.recon_error,
            e.seconds
        );
        if let Some(points) = points {
            match points.iter().find(|p| p.epoch == e.epoch) {
                Some(p) => {
                    let _ = write!(
                        s,
                        ",{},{},{},{},{}",
                        p.log_z, p.log_z_lo, p.log_z_hi, p.test_ll, p.seconds
                    );
                }
                None => s.push_str(",,,,,"),
            }
        }
        s.push('\n');
    }
    s
}
