//! Evaluation: one AIS temperature step (100 chains) and whole AIS estimates on a small
//! schedule, for a 784–500 model (the MNIST size) and a 784–20 one; exact log Z of a 784–16
//! model.
//!
//! Chain-steps/s are criterion's `elem/s` for `ais_step`; the whole estimates report their
//! time. The model has random weights N(0, 0.01²) and a base rate of MNIST's density (13%):
//! the work does not depend on the values.
//!
//! `cargo bench --bench eval`; one group: `cargo bench --bench eval -- ais_step`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rbm::Rbm;
use rbm::eval::{AisConfig, Annealer, BaseRate, Schedule, ais, exact_log_z};

const V: usize = 784;
const RUNS: usize = 100;

fn base() -> BaseRate {
    BaseRate::from_marginals(&[0.13; V], BaseRate::DEFAULT_SMOOTHING).unwrap()
}

fn ais_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("ais_step");
    let base = base();
    for h in [20usize, 500] {
        let model = Rbm::new(V, h, 0).unwrap();
        let mut annealer = Annealer::new(&model, &base, RUNS, 0).unwrap();
        let mut k = 0u32;
        group.throughput(Throughput::Elements(RUNS as u64));
        group.bench_with_input(BenchmarkId::new(format!("784-{h}"), RUNS), &h, |b, _| {
            b.iter(|| {
                // β cycles through the middle of the standard schedule.
                k = (k + 1) % 4000;
                annealer.step(black_box(0.5 + k as f64 * 1e-4)).unwrap()
            })
        });
    }
    group.finish();
}

fn ais_estimate(c: &mut Criterion) {
    let mut group = c.benchmark_group("ais_estimate");
    group.sample_size(10);
    let base = base();
    for h in [20usize, 500] {
        let model = Rbm::new(V, h, 0).unwrap();
        let cfg = AisConfig {
            runs: RUNS,
            schedule: Schedule::standard_with(100).unwrap(),
            seed: 0,
        };
        group.bench_with_input(
            BenchmarkId::new(format!("784-{h}"), "100 temperatures"),
            &h,
            |b, _| b.iter(|| black_box(ais(&model, &base, &cfg).unwrap().log_z)),
        );
    }
    group.finish();
}

fn exact(c: &mut Criterion) {
    let mut group = c.benchmark_group("exact_log_z");
    group.sample_size(10);
    let model = Rbm::new(V, 16, 0).unwrap();
    group.throughput(Throughput::Elements(1 << 16));
    group.bench_function("784-16", |b| {
        b.iter(|| black_box(exact_log_z(&model).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, ais_step, ais_estimate, exact);
criterion_main!(benches);
