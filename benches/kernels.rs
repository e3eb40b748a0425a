//! Throughput of each element-wise kernel per instruction set, in elements/s (criterion's
//! `elem/s`), against the libm-based scalar oracle (`reference`).
//!
//! Sizes: 500 (a hidden layer), 784 (an MNIST visible layer) and 32,000 (a batch of 64 rows
//! of 500 hidden units, about L1-sized per array). Cases are named `<op>/<isa>/<n>`.
//!
//! `cargo bench --bench kernels`; one op: `cargo bench --bench kernels -- sigmoid_affine/`;
//! quick: `cargo bench --bench kernels -- --warm-up-time 1 --measurement-time 2`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rbm_kernels::{Isa, StreamKey, api, scalar};

const SIZES: [usize; 3] = [500, 784, 32_000];

/// `n` values uniform in `[lo, hi)`, seeded.
fn uniform(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let key = StreamKey::new(seed);
    (0..n as u64)
        .map(|j| lo + (hi - lo) * key.uniform_f64(j) as f32)
        .collect()
}

/// 0/1 states of density 0.13 (MNIST's share of ones).
fn states(n: usize) -> Vec<f32> {
    let key = StreamKey::new(9);
    (0..n as u64)
        .map(|j| (key.uniform_f64(j) < 0.13) as u8 as f32)
        .collect()
}

fn sigmoid_affine(c: &mut Criterion) {
    let mut g = c.benchmark_group("sigmoid_affine");
    for n in SIZES {
        let (pre, bias) = (uniform(1, n, -8.0, 8.0), uniform(2, n, -1.0, 1.0));
        let mut prob = vec![0.0f32; n];
        g.throughput(Throughput::Elements(n as u64));
        for isa in Isa::available() {
            g.bench_function(BenchmarkId::new(isa.name(), n), |b| {
                b.iter(|| api::sigmoid_affine_with(isa, black_box(&pre), 1.0, &bias, &mut prob))
            });
        }
        g.bench_function(BenchmarkId::new("reference", n), |b| {
            b.iter(|| scalar::sigmoid_affine(black_box(&pre), 1.0, &bias, &mut prob))
        });
    }
    g.finish();
}

fn sigmoid_affine_sample(c: &mut Criterion) {
    let mut g = c.benchmark_group("sigmoid_affine_sample");
    let key = StreamKey::new(3);
    for n in SIZES {
        let (pre, bias) = (uniform(1, n, -8.0, 8.0), uniform(2, n, -1.0, 1.0));
        let (mut prob, mut state) = (vec![0.0f32; n], vec![0.0f32; n]);
        g.throughput(Throughput::Elements(n as u64));
        for isa in Isa::available() {
            g.bench_function(BenchmarkId::new(isa.name(), n), |b| {
                b.iter(|| {
                    api::sigmoid_affine_sample_with(
                        isa,
                        black_box(&pre),
                        1.0,
                        &bias,
                        key,
                        1,
                        &mut prob,
                        &mut state,
                    )
                })
            });
        }
        g.bench_function(BenchmarkId::new("reference", n), |b| {
            b.iter(|| {
                scalar::sigmoid_affine_sample(
                    black_box(&pre),
                    1.0,
                    &bias,
                    key,
                    1,
                    &mut prob,
                    &mut state,
                )
            })
        });
    }
    g.finish();
}

fn bernoulli(c: &mut Criterion) {
    let mut g = c.benchmark_group("bernoulli");
    let key = StreamKey::new(4);
    for n in SIZES {
        let p = uniform(5, n, 0.0, 1.0);
        let mut state = vec![0.0f32; n];
        g.throughput(Throughput::Elements(n as u64));
        for isa in Isa::available() {
            g.bench_function(BenchmarkId::new(isa.name(), n), |b| {
                b.iter(|| api::bernoulli_with(isa, black_box(&p), key, 0, &mut state))
            });
        }
        g.bench_function(BenchmarkId::new("reference", n), |b| {
            b.iter(|| scalar::bernoulli(black_box(&p), key, 0, &mut state))
        });
    }
    g.finish();
}

fn softplus_sum_affine(c: &mut Criterion) {
    let mut g = c.benchmark_group("softplus_sum_affine");
    for n in SIZES {
        let (pre, bias) = (uniform(1, n, -8.0, 8.0), uniform(2, n, -1.0, 1.0));
        g.throughput(Throughput::Elements(n as u64));
        for isa in Isa::available() {
            g.bench_function(BenchmarkId::new(isa.name(), n), |b| {
                b.iter(|| api::softplus_sum_affine_with(isa, black_box(&pre), 1.0, &bias))
            });
        }
        g.bench_function(BenchmarkId::new("reference", n), |b| {
            b.iter(|| scalar::softplus_sum_affine(black_box(&pre), 1.0, &bias))
        });
    }
    g.finish();
}

fn softplus_sum_affine_sample(c: &mut Criterion) {
    let mut g = c.benchmark_group("softplus_sum_affine_sample");
    let key = StreamKey::new(9);
    for n in SIZES {
        let (pre, bias) = (uniform(1, n, -8.0, 8.0), uniform(2, n, -1.0, 1.0));
        let (mut prob, mut state) = (vec![0.0f32; n], vec![0.0f32; n]);
        g.throughput(Throughput::Elements(n as u64));
        for isa in Isa::available() {
            g.bench_function(BenchmarkId::new(isa.name(), n), |b| {
                b.iter(|| {
                    api::softplus_sum_affine_sample_with(
                        isa,
                        black_box(&pre),
                        1.0,
                        &bias,
                        key,
                        0,
                        &mut prob,
                        &mut state,
                    )
                })
            });
        }
        g.bench_function(BenchmarkId::new("reference", n), |b| {
            b.iter(|| {
                scalar::softplus_sum_affine_sample(
                    black_box(&pre),
                    1.0,
                    &bias,
                    key,
                    0,
                    &mut prob,
                    &mut state,
                )
            })
        });
    }
    g.finish();
}

/// AIS's increment at a mid-schedule pair of temperatures (0.5 → 0.5001), with the sample
/// at `to`: the one call that replaced `softplus_sum_affine` at `from` plus
/// `softplus_sum_affine_sample` at `to` (compare the two groups' times).
fn softplus_diff_affine_sample(c: &mut Criterion) {
    let mut g = c.benchmark_group("softplus_diff_affine_sample");
    let key = StreamKey::new(9);
    let (from, to) = (0.5f32, 0.500_1f32);
    for n in SIZES {
        let (pre, c) = (uniform(1, n, -8.0, 8.0), uniform(2, n, -1.0, 1.0));
        let bf: Vec<f32> = c.iter().map(|&x| from * x).collect();
        let bt: Vec<f32> = c.iter().map(|&x| to * x).collect();
        let (mut prob, mut state) = (vec![0.0f32; n], vec![0.0f32; n]);
        g.throughput(Throughput::Elements(n as u64));
        for isa in Isa::available() {
            g.bench_function(BenchmarkId::new(isa.name(), n), |b| {
                b.iter(|| {
                    api::softplus_diff_affine_sample_with(
                        isa,
                        black_box(&pre),
                        (from, &bf),
                        (to, &bt),
                        key,
                        0,
                        &mut prob,
                        &mut state,
                    )
                })
            });
        }
        g.bench_function(BenchmarkId::new("reference", n), |b| {
            b.iter(|| {
                scalar::softplus_diff_affine_sample(
                    black_box(&pre),
                    (from, &bf),
                    (to, &bt),
                    key,
                    0,
                    &mut prob,
                    &mut state,
                )
            })
        });
    }
    g.finish();
}

/// The flips of a Gibbs step: two 0/1 states differing in about 5% of their units.
fn changed_indices(c: &mut Criterion) {
    let mut g = c.benchmark_group("changed_indices");
    let key = StreamKey::new(10);
    for n in SIZES {
        let old = states(n);
        let new: Vec<f32> = old
            .iter()
            .enumerate()
            .map(|(j, &x)| {
                if key.draw(j as u64) < u32::MAX / 20 {
                    1.0 - x
                } else {
                    x
                }
            })
            .collect();
        let mut out = vec![0u32; n];
        g.throughput(Throughput::Elements(n as u64));
        for isa in Isa::available() {
            g.bench_function(BenchmarkId::new(isa.name(), n), |b| {
                b.iter(|| api::changed_indices_with(isa, black_box(&old), &new, &mut out))
            });
        }
        g.bench_function(BenchmarkId::new("reference", n), |b| {
            b.iter(|| scalar::changed_indices(black_box(&old), &new, &mut out))
        });
    }
    g.finish();
}

fn nonzero_indices(c: &mut Criterion) {
    let mut g = c.benchmark_group("nonzero_indices");
    for n in SIZES {
        let x = states(n);
        let mut out = vec![0u32; n];
        g.throughput(Throughput::Elements(n as u64));
        for isa in Isa::available() {
            g.bench_function(BenchmarkId::new(isa.name(), n), |b| {
                b.iter(|| api::nonzero_indices_with(isa, black_box(&x), &mut out))
            });
        }
        g.bench_function(BenchmarkId::new("reference", n), |b| {
            b.iter(|| scalar::nonzero_indices(black_box(&x), &mut out))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    sigmoid_affine,
    sigmoid_affine_sample,
    bernoulli,
    softplus_sum_affine,
    softplus_sum_affine_sample,
    softplus_diff_affine_sample,
    nonzero_indices,
    changed_indices
);
criterion_main!(benches);
