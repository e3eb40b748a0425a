//! `rbm bench`: throughput of training and sampling on this machine, as rows (chain-steps)
//! per second and the dense-equivalent GFLOP/s.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rbm::data::{self, Binarize, fill_batch};
use rbm::gibbs::Gibbs;
use rbm::rng::fill_normal;
use rbm::train::{TrainConfig, Trainer};
use rbm::{Error, Rbm, StreamKey};
use serde_json::json;

use crate::args::{BenchSampleArgs, BenchTrainArgs};
use crate::output::print_json;

/// Runs `f` for `warmup`, then until `seconds` have passed; returns (calls, elapsed).
/// The longest measurement `--seconds` may ask for: an hour.
const MAX_SECONDS: f64 = 3600.0;

/// `--seconds`: finite, positive, at most [`MAX_SECONDS`].
fn check_seconds(seconds: f64) -> rbm::Result<()> {
    if seconds.is_finite() && seconds > 0.0 && seconds <= MAX_SECONDS {
        Ok(())
    } else {
        Err(rbm::Error::config(
            "--seconds",
            format!("a number of seconds in (0, {MAX_SECONDS}]"),
            seconds,
        ))
    }
}

fn measure(
    seconds: f64,
    warmup: f64,
    mut f: impl FnMut() -> rbm::Result<()>,
) -> rbm::Result<(u64, Duration)> {
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < warmup {
        f()?;
    }
    let (start, mut calls) = (Instant::now(), 0u64);
    while calls == 0 || start.elapsed().as_secs_f64() < seconds {
        f()?;
        calls += 1;
    }
    Ok((calls, start.elapsed()))
}

/// Binarized training rows: the first `rows` of MNIST from `dir` (or found by name), or
/// synthetic rows of MNIST's density (13% ones) when there is none. Returns the source.
fn rows(dir: Option<&PathBuf>, rows: usize) -> rbm::Result<(Vec<f32>, String)> {
    let dir = match dir {
        Some(d) => Some(d.clone()),
        None => data::find_dataset("mnist").ok(),
    };
    let mut out = vec![0.0; rows * 784];
    if let Some(dir) = dir {
        let ds = crate::train::open_training_set(&dir)?;
        if ds.row_len() != 784 {
            return Err(rbm::Error::Dataset {
                path: ds.images_file().path().to_path_buf(),
                kind: rbm::DatasetError::RowSize {
                    expected: 784,
                    found: ds.row_len(),
                },
            });
        }
        let idx: Vec<u32> = (0..rows as u32).map(|i| i % ds.len() as u32).collect();
        fill_batch(&ds, &idx, Binarize::Stochastic, StreamKey::new(1), &mut out)?;
        return Ok((out, dir.display().to_string()));
    }
    let key = StreamKey::new(2);
    for (j, x) in out.iter_mut().enumerate() {
        *x = (key.draw(j as u64) < (0.13 * u32::MAX as f64) as u32) as u8 as f32;
    }
    Ok((
        out,
        "synthetic rows of density 0.13 (no MNIST found)".into(),
    ))
}

pub fn train(a: &BenchTrainArgs) -> rbm::Result<()> {
    check_seconds(a.seconds)?;
    let (k, batch) = (a.k as usize, a.batch as usize);
    let (data, source) = rows(a.data.as_ref(), batch * 64)?;
    let mut model = match &a.model {
        Some(path) => rbm::load_model(path)?.model,
        None => Rbm::new(784, a.hidden as usize, 0)?,
    };
    if model.n_visible() != 784 {
        let what = a
            .model
            .as_ref()
            .map_or(String::from("model"), |p| p.display().to_string());
        return Err(Error::shape(
            what,
            "784 visible units (MNIST rows)",
            model.n_visible(),
        ));
    }
    let hidden = model.n_hidden();
    let cfg = TrainConfig {
        k,
        lr: 0.01,
        batch_size: batch,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&model, cfg)?;
    let batches: Vec<&[f32]> = data.chunks_exact(batch * 784).collect();
    let mut i = 0;
    let (calls, dt) = measure(a.seconds, a.seconds.min(1.0), || {
        i = (i + 1) % batches.len();
        trainer.step(&mut model, batches[i]).map(|_| ())
    })?;
    let rows_per_s = (calls as f64 * batch as f64) / dt.as_secs_f64();
    // Dense work of one CD-k row: (k + 1) v→h and k h→v passes and the two gradient
    // products, each 2·V·H flops.
    let flops_per_row = (2 * k + 3) as f64 * 2.0 * 784.0 * hidden as f64;
    report(
        a.json,
        "train",
        rows_per_s,
        flops_per_row,
        &source,
        json!({"k": k, "batch": batch, "hidden": hidden, "model": a.model.as_ref().map(|p| p.display().to_string())}),
    );
    Ok(())
}

pub fn sample(a: &BenchSampleArgs) -> rbm::Result<()> {
    check_seconds(a.seconds)?;
    let chains = a.chains as usize;
    // The same set-up as the PyTorch baseline: W ~ N(0, 0.05²), zero biases, chains started
    // from Bernoulli(0.2) noise, 10 steps of warm-up; or a given model from the same noise.
    let (model, source) = match &a.model {
        Some(path) => (rbm::load_model(path)?.model, path.display().to_string()),
        None => {
            let hidden = a.hidden as usize;
            let mut w = vec![0.0; hidden * 784];
            fill_normal(StreamKey::new(3), 0.05, &mut w);
            let m = Rbm::from_parts(784, hidden, w, vec![0.0; 784], vec![0.0; hidden])?;
            (m, "random model".to_string())
        }
    };
    let (nv, hidden) = (model.n_visible(), model.n_hidden());
    let key = StreamKey::new(4);
    let start: Vec<f32> = (0..chains * nv)
        .map(|j| (key.draw(j as u64) < u32::MAX / 5) as u8 as f32)
        .collect();
    let mut g = Gibbs::new(&model, &start, StreamKey::new(5))?;
    g.run(&model, 10)?;
    let k = a.steps_per_call as usize;
    let (calls, dt) = measure(a.seconds, 0.0, || {
        g.run(&model, k)?;
        Ok(())
    })?;
    let steps_per_s = (calls as f64 * (k * chains) as f64) / dt.as_secs_f64();
    let flops = 2.0 * 2.0 * nv as f64 * hidden as f64;
    report(
        a.json,
        "sample",
        steps_per_s,
        flops,
        &format!("{source}, from Bernoulli(0.2) noise"),
        json!({"chains": chains, "hidden": hidden, "steps_per_call": k, "model": a.model.as_ref().map(|p| p.display().to_string())}),
    );
    Ok(())
}

fn report(
    json_out: bool,
    what: &str,
    per_s: f64,
    flops_per_item: f64,
    source: &str,
    extra: serde_json::Value,
) {
    let gflops = per_s * flops_per_item / 1e9;
    let isa = rbm_kernels::Isa::current().name();
    let threads = rayon::current_num_threads();
    let unit = if what == "train" {
        "rows_per_s"
    } else {
        "chain_steps_per_s"
    };
    if json_out {
        let mut v = json!({"what": what, unit: per_s, "gflops": gflops, "isa": isa, "threads": threads, "data": source});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        print_json(&v);
    } else {
        outln!(
            "{what}: {per_s:.0} {} ({gflops:.1} dense-equivalent GFLOP/s), {isa}, {threads} threads, data: {source}",
            unit.replace('_', " ")
        );
    }
}
