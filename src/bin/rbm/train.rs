//! `rbm train`: CD-k / PCD-k on an IDX dataset, writing a run folder.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use rbm::data::{self, Binarize, Order, Split};
use rbm::eval::{self, AisConfig, BaseRate};
use rbm::train::{EpochStats, Schedule, TrainConfig, Trainer, train_dataset_with};
use rbm::{Error, Rbm};
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

pub fn run(a: &TrainArgs) -> rbm::Result<()> {
    let plan = plan(a);
    plan.train.validate()?;
    let dir = data_dir(a)?;
    let ds = data::open_split(&dir, Split::Train)?;
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
    let mut monitor = match a.eval_every {
        Some(every) => Some(Monitor::new(&dir, &ds, every as usize, plan.train.seed)?),
        None => None,
    };
    let mut trainer = Trainer::new(&model, plan.train.clone())?;
    let per_epoch = plan
        .schedule
        .batches_per_epoch
        .unwrap_or(ds.len() / plan.train.batch_size) as u64;
    let bar = Progress::new(per_epoch * plan.schedule.epochs as u64, "batches");
    let epochs = plan.schedule.epochs;
    let history = train_dataset_with(
        &mut model,
        &mut trainer,
        &ds,
        &plan.schedule,
        |_| bar.inc(),
        |e, m| {
            let point = match &mut monitor {
                Some(mon) if (e.epoch + 1) % mon.every == 0 || e.epoch + 1 == epochs => {
                    Some(mon.evaluate(e.epoch, m)?)
                }
                _ => None,
            };
            report_epoch(a.json, &bar, e, plan.train.batch_size, point.as_ref());
            Ok(())
        },
    )?;
    bar.finish();
    let model_path = a.out.join("model.safetensors");
    rbm::save_model(&model_path, &model, Some(&config.to_string()))?;
    let points = monitor.map(|m| m.points);
    rbm::atomic::write_atomic(
        &a.out.join("metrics.csv"),
        metrics_csv(&history, points.as_deref()).as_bytes(),
    )?;
    report_final(a.json, &model_path, &history);
    Ok(())
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
#[derive(Clone, Copy, Debug)]
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
            return Err(Error::Config(format!(
                "test rows have {} pixels, training rows {}",
                test.row_len(),
                train.row_len()
            )));
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
