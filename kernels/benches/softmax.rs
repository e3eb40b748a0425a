//! Throughput of the categorical (Potts) visible epilogue per instruction set, in groups/s
//! (criterion's `elem/s`, one element = one group of `q` states), against the f64 oracle
//! (`reference`).
//!
//! A batch of 64 rows, one call per row with the row's own stream (`key.derive(row)`, draws
//! from 0), as a Gibbs step of the model calls it: WW domain rows (31 columns of 21 states)
//! and Kunitz rows (53 columns), logits uniform in [−6, 6]. Cases are named
//! `<op>/<isa>/<rows>x<groups>x<q>`.
//!
//! `cargo bench -p rbm-kernels --bench softmax`; quick:
//! `cargo bench -p rbm-kernels --bench softmax -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rbm_kernels::{Isa, StreamKey, api, scalar};

const ROWS: usize = 64;
const Q: usize = 21;
/// WW domain, Kunitz domain.
const GROUPS: [usize; 2] = [31, 53];

/// `n` values uniform in `[lo, hi)`, seeded.
fn uniform(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let key = StreamKey::new(seed);
    (0..n as u64)
        .map(|j| lo + (hi - lo) * key.uniform_f64(j) as f32)
        .collect()
}

/// The outputs of a batch.
struct Out {
    probs: Vec<f32>,
    states: Vec<f32>,
    ones: Vec<u32>,
}

/// One call per row of `x` (`groups` groups of `Q` each), the row's stream `key.derive(row)`.
fn per_row(
    x: &[f32],
    groups: usize,
    key: StreamKey,
    out: &mut Out,
    f: impl Fn(&[f32], StreamKey, &mut [f32], &mut [f32], &mut [u32]),
) {
    let n = groups * Q;
    for r in 0..ROWS {
        f(
            black_box(&x[r * n..(r + 1) * n]),
            key.derive(r as u64),
            &mut out.probs[r * n..(r + 1) * n],
            &mut out.states[r * n..(r + 1) * n],
            &mut out.ones[r * groups..(r + 1) * groups],
        );
    }
}

fn softmax_groups_sample(c: &mut Criterion) {
    let mut g = c.benchmark_group("softmax_groups_sample");
    let key = StreamKey::new(5);
    for groups in GROUPS {
        let n = groups * Q;
        let x = uniform(1, ROWS * n, -6.0, 6.0);
        let mut out = Out {
            probs: vec![0.0; ROWS * n],
            states: vec![0.0; ROWS * n],
            ones: vec![0; ROWS * groups],
        };
        g.throughput(Throughput::Elements((ROWS * groups) as u64));
        let name = format!("{ROWS}x{groups}x{Q}");
        for isa in Isa::available() {
            g.bench_function(BenchmarkId::new(isa.name(), &name), |b| {
                b.iter(|| {
                    per_row(&x, groups, key, &mut out, |x, k, p, s, o| {
                        api::softmax_groups_sample_with(isa, x, Q, k, 0, p, s, o)
                    })
                })
            });
        }
        g.bench_function(BenchmarkId::new("reference", &name), |b| {
            b.iter(|| {
                per_row(&x, groups, key, &mut out, |x, k, p, s, o| {
                    scalar::softmax_groups_sample(x, Q, k, 0, p, s, o)
                })
            })
        });
    }
    g.finish();
}

fn softmax_groups(c: &mut Criterion) {
    let mut g = c.benchmark_group("softmax_groups");
    for groups in GROUPS {
        let n = groups * Q;
        let x = uniform(1, ROWS * n, -6.0, 6.0);
        let mut probs = vec![0.0f32; ROWS * n];
        g.throughput(Throughput::Elements((ROWS * groups) as u64));
        let name = format!("{ROWS}x{groups}x{Q}");
        for isa in Isa::available() {
            g.bench_function(BenchmarkId::new(isa.name(), &name), |b| {
                b.iter(|| {
                    for (xr, pr) in x.chunks_exact(n).zip(probs.chunks_exact_mut(n)) {
                        api::softmax_groups_with(isa, black_box(xr), Q, pr);
                    }
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, softmax_groups_sample, softmax_groups);
criterion_main!(benches);
