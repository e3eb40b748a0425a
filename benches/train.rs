//! Throughput of a CD-3 training step, of each conditional pass (`v → h` and `h → v`, fused
//! product, bias, sigmoid and sample) and of a Gibbs step, 784–500, on real MNIST rows, at
//! batches of 1 to 1024 rows.
//!
//! Rows/s (chain-steps/s for Gibbs) are criterion's `elem/s`. The data come from `$RBM_DATA`
//! or `../shared/data`; without them the benches use synthetic rows of MNIST's density (13%
//! ones) and say so.
//!
//! `cargo bench --bench train`; one group: `cargo bench --bench train -- cd3_step`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rbm::data::{Binarize, Split, fill_batch, open_split};
use rbm::gibbs::Gibbs;
use rbm::train::{TrainConfig, Trainer};
use rbm::{Rbm, StreamKey};

const V: usize = 784;
const H: usize = 500;
/// Batch sizes (rows) of the per-step and per-pass benches.
const BATCHES: [usize; 5] = [1, 8, 64, 256, 1024];

/// `rows` binarized rows: the first rows of MNIST's training set, or synthetic ones.
fn rows(rows: usize) -> Vec<f32> {
    let dir = std::env::var_os("RBM_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
        .join("mnist");
    let mut out = vec![0.0; rows * V];
    match open_split(&dir, Split::Train) {
        Ok(ds) => {
            let idx: Vec<u32> = (0..rows as u32).map(|i| i % ds.len() as u32).collect();
            fill_batch(&ds, &idx, Binarize::Stochastic, StreamKey::new(1), &mut out).unwrap();
        }
        Err(e) => {
            eprintln!("no MNIST ({e}); using synthetic rows of density 0.13");
            let key = StreamKey::new(2);
            for (j, x) in out.iter_mut().enumerate() {
                *x = (key.draw(j as u64) < (0.13 * u32::MAX as f64) as u32) as u8 as f32;
            }
        }
    }
    out
}

fn cd3_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("cd3_step");
    let data = rows(1024 * 4);
    for batch in BATCHES {
        let mut model = Rbm::new(V, H, 0).unwrap();
        let cfg = TrainConfig {
            k: 3,
            lr: 0.01,
            batch_size: batch,
            ..TrainConfig::default()
        };
        let mut trainer = Trainer::new(&model, cfg).unwrap();
        let batches: Vec<&[f32]> = data.chunks_exact(batch * V).collect();
        let mut i = 0;
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new("784-500", batch), &batch, |b, _| {
            b.iter(|| {
                i = (i + 1) % batches.len();
                black_box(trainer.step(&mut model, batches[i]).unwrap())
            })
        });
    }
    group.finish();
}

fn gibbs_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("gibbs_step");
    let model = Rbm::new(V, H, 0).unwrap();
    for chains in [8usize, 64] {
        let start = rows(chains);
        let mut g = Gibbs::new(&model, &start, StreamKey::new(3)).unwrap();
        group.throughput(Throughput::Elements(chains as u64));
        group.bench_with_input(BenchmarkId::new("784-500", chains), &chains, |b, _| {
            b.iter(|| g.step(black_box(&model)).unwrap())
        });
    }
    group.finish();
}

/// The two conditional passes through the public API (`Rbm::sample_hidden`,
/// `Rbm::sample_visible`, which also allocate their scratch), on MNIST rows and on the hidden
/// states a fresh model samples from them.
fn passes(c: &mut Criterion) {
    let model = Rbm::new(V, H, 0).unwrap();
    let max = *BATCHES.iter().max().unwrap();
    let v = rows(max);
    let (mut hp, mut h) = (vec![0.0; max * H], vec![0.0; max * H]);
    model
        .sample_hidden(&v, StreamKey::new(4), &mut hp, &mut h)
        .unwrap();
    let mut vp = vec![0.0; max * V];
    let mut vs = vec![0.0; max * V];
    let mut group = c.benchmark_group("pass");
    for batch in BATCHES {
        group.throughput(Throughput::Elements(batch as u64));
        let (v, h) = (&v[..batch * V], &h[..batch * H]);
        let (hp, hs) = (&mut hp[..batch * H], &mut vec![0.0; batch * H]);
        group.bench_with_input(BenchmarkId::new("v_to_h", batch), &batch, |b, _| {
            b.iter(|| model.sample_hidden(black_box(v), StreamKey::new(5), hp, hs))
        });
        let (vp, vs) = (&mut vp[..batch * V], &mut vs[..batch * V]);
        group.bench_with_input(BenchmarkId::new("h_to_v", batch), &batch, |b, _| {
            b.iter(|| model.sample_visible(black_box(h), StreamKey::new(6), vp, vs))
        });
    }
    group.finish();
}

criterion_group!(benches, cd3_step, passes, gibbs_step);
criterion_main!(benches);
