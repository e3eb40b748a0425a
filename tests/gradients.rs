//! The analytic CD gradient against a central finite difference of the notebook's loss, and
//! the trainer's update against the gradient.
#![allow(clippy::needless_range_loop)] // index arithmetic mirrors the formulas

use rbm::train::{TrainConfig, Trainer, cd_gradient};
use rbm::{Rbm, StreamKey};

/// A small model with weights large enough that the sigmoids are far from linear.
fn model(nv: usize, nh: usize, seed: u64) -> Rbm {
    let key = StreamKey::new(seed);
    let u = |i: u64| key.uniform_f64(i) as f32 * 2.0 - 1.0;
    let w = (0..nv * nh).map(|i| 1.5 * u(i as u64)).collect();
    let b = (0..nv).map(|i| u(10_000 + i as u64)).collect();
    let c = (0..nh).map(|i| u(20_000 + i as u64)).collect();
    Rbm::from_parts(nv, nh, w, b, c).unwrap()
}

fn binary_rows(rows: usize, n: usize, seed: u64) -> Vec<f32> {
    let key = StreamKey::new(seed);
    (0..rows * n)
        .map(|j| (key.draw(j as u64) >> 31) as f32)
        .collect()
}

/// Parameters in f64: W (H × V), b, c.
struct P64 {
    nv: usize,
    nh: usize,
    w: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
}

impl P64 {
    fn of(m: &Rbm) -> Self {
        let f = |x: &[f32]| x.iter().map(|&v| v as f64).collect();
        P64 {
            nv: m.n_visible(),
            nh: m.n_hidden(),
            w: f(m.weights()),
            b: f(m.v_bias()),
            c: f(m.h_bias()),
        }
    }

    fn free_energy(&self, v: &[f32]) -> f64 {
        let vb: f64 = (0..self.nv).map(|i| self.b[i] * v[i] as f64).sum();
        let hidden: f64 = (0..self.nh)
            .map(|j| {
                let x = self.c[j]
                    + (0..self.nv)
                        .map(|i| self.w[j * self.nv + i] * v[i] as f64)
                        .sum::<f64>();
                x.max(0.0) + (-x.abs()).exp().ln_1p()
            })
            .sum();
        -vb - hidden
    }

    /// The notebook's loss: mean F(v0) − mean F(vk).
    fn loss(&self, v0: &[f32], vk: &[f32]) -> f64 {
        let rows = v0.len() / self.nv;
        let f =
            |v: &[f32]| v.chunks(self.nv).map(|r| self.free_energy(r)).sum::<f64>() / rows as f64;
        f(v0) - f(vk)
    }
}

fn central_difference(
    p: &mut P64,
    pick: fn(&mut P64) -> &mut Vec<f64>,
    v0: &[f32],
    vk: &[f32],
) -> Vec<f64> {
    let eps = 1e-5;
    (0..pick(p).len())
        .map(|i| {
            let x = pick(p)[i];
            pick(p)[i] = x + eps;
            let up = p.loss(v0, vk);
            pick(p)[i] = x - eps;
            let down = p.loss(v0, vk);
            pick(p)[i] = x;
            (up - down) / (2.0 * eps)
        })
        .collect()
}

fn relative_error(analytic: &[f32], numeric: &[f64]) -> f64 {
    let diff: f64 = analytic
        .iter()
        .zip(numeric)
        .map(|(&a, &n)| (a as f64 - n).powi(2))
        .sum();
    let norm: f64 = numeric.iter().map(|n| n * n).sum();
    (diff / norm).sqrt()
}

#[test]
fn analytic_gradient_matches_finite_difference() {
    for (nv, nh, rows, seed) in [(5, 4, 6, 1), (9, 7, 3, 2), (17, 3, 11, 3)] {
        let m = model(nv, nh, seed);
        let v0 = binary_rows(rows, nv, seed + 100);
        let vk = binary_rows(rows, nv, seed + 200);
        let g = cd_gradient(&m, &v0, &vk).unwrap();
        let mut p = P64::of(&m);
        let fd_w = central_difference(&mut p, |p| &mut p.w, &v0, &vk);
        let fd_b = central_difference(&mut p, |p| &mut p.b, &v0, &vk);
        let fd_c = central_difference(&mut p, |p| &mut p.c, &v0, &vk);
        for (name, a, n) in [
            ("W", &g.w, &fd_w),
            ("v_bias", &g.v_bias, &fd_b),
            ("h_bias", &g.h_bias, &fd_c),
        ] {
            let e = relative_error(a, n);
            eprintln!("{nv}-{nh}, {rows} rows: {name} relative error {e:.2e}");
            assert!(
                e < 1e-4,
                "{name}: relative error {e} against the finite difference"
            );
        }
    }
}

#[test]
fn plain_sgd_step_is_minus_lr_times_the_gradient() {
    let (nv, nh, rows) = (12, 5, 8);
    let mut m = model(nv, nh, 4);
    let before = m.clone();
    let cfg = TrainConfig {
        k: 2,
        lr: 0.5,
        batch_size: rows,
        seed: 9,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(&m, cfg).unwrap();
    let v0 = binary_rows(rows, nv, 5);
    t.step(&mut m, &v0).unwrap();
    let g = cd_gradient(&before, &v0, t.negative_visible()).unwrap();
    let check = |after: &[f32], before: &[f32], grad: &[f32]| {
        for ((&a, &b), &g) in after.iter().zip(before).zip(grad) {
            assert!((a - (b - 0.5 * g)).abs() < 1e-6, "{a} vs {b} - 0.5·{g}");
        }
    };
    check(m.weights(), before.weights(), &g.w);
    check(m.v_bias(), before.v_bias(), &g.v_bias);
    check(m.h_bias(), before.h_bias(), &g.h_bias);
}

#[test]
fn momentum_and_weight_decay_follow_torch_sgd() {
    let (nv, nh, rows) = (10, 6, 4);
    let (lr, mu, wd) = (0.3f32, 0.9f32, 0.01f32);
    let mut m = model(nv, nh, 6);
    let cfg = TrainConfig {
        k: 1,
        lr,
        momentum: mu,
        weight_decay: wd,
        batch_size: rows,
        seed: 3,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(&m, cfg).unwrap();
    let mut buf_w = vec![0.0f32; nv * nh];
    let mut buf_b = vec![0.0f32; nv];
    for step in 0..3 {
        let before = m.clone();
        let v0 = binary_rows(rows, nv, 50 + step);
        t.step(&mut m, &v0).unwrap();
        let g = cd_gradient(&before, &v0, t.negative_visible()).unwrap();
        for i in 0..nv * nh {
            buf_w[i] = mu * buf_w[i] + g.w[i] + wd * before.weights()[i];
            let want = before.weights()[i] - lr * buf_w[i];
            assert!(
                (m.weights()[i] - want).abs() < 1e-5,
                "step {step} W[{i}]: {} vs {want}",
                m.weights()[i]
            );
        }
        for i in 0..nv {
            buf_b[i] = mu * buf_b[i] + g.v_bias[i]; // no weight decay on biases
            let want = before.v_bias()[i] - lr * buf_b[i];
            assert!((m.v_bias()[i] - want).abs() < 1e-5, "step {step} b[{i}]");
        }
    }
}
