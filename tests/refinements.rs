//! Centering (Melchior et al. 2016), fast weights (Tieleman & Hinton 2009), PCD's chain count
//! and the optimizer's schedules.
//!
//! The trainer keeps the model in the ordinary form and folds the centered gradient into it.
//! Here the centered update is computed the paper's way, in f64 — reparametrise to the
//! centered biases `b = b' + Wλ`, `c = c' + Wᵀμ`, step along `∇W = ⟨(v−μ)(h−λ)ᵀ⟩_d −
//! ⟨(v−μ)(h−λ)ᵀ⟩_m`, `∇b = ⟨v⟩_d − ⟨v⟩_m`, `∇c = ⟨h⟩_d − ⟨h⟩_m`, and map back — and
//! compared with one step of the trainer.

use rbm::train::{FastWeights, Method, NegativeState, Offsets, TrainConfig, Trainer, TrainerState};
use rbm::{Rbm, StreamKey};

fn rows(n: usize, width: usize, seed: u64) -> Vec<f32> {
    let key = StreamKey::new(seed);
    (0..n * width)
        .map(|j| (key.draw(j as u64) < u32::MAX / 3) as u8 as f32)
        .collect()
}

fn probs(m: &Rbm, v: &[f32]) -> Vec<f64> {
    let mut p = vec![0.0; v.len() / m.n_visible() * m.n_hidden()];
    m.hidden_probs(v, &mut p).unwrap();
    p.into_iter().map(f64::from).collect()
}

/// The model after one centered gradient step of size `lr` from `m`, in f64, for the batch
/// `v0` and the negative samples `vk`.
fn centered_step(
    m: &Rbm,
    o: &Offsets,
    v0: &[f32],
    vk: &[f32],
    lr: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (nv, nh) = (m.n_visible(), m.n_hidden());
    let mu: Vec<f64> = o.visible.iter().map(|&x| x.into()).collect();
    let la: Vec<f64> = o.hidden.iter().map(|&x| x.into()).collect();
    let w: Vec<f64> = m.weights().iter().map(|&x| x.into()).collect(); // H × V
    let w_at = |w: &[f64], j: usize, i: usize| w[j * nv + i];
    // Centered biases.
    let b: Vec<f64> = (0..nv)
        .map(|i| f64::from(m.v_bias()[i]) + (0..nh).map(|j| w_at(&w, j, i) * la[j]).sum::<f64>())
        .collect();
    let c: Vec<f64> = (0..nh)
        .map(|j| f64::from(m.h_bias()[j]) + (0..nv).map(|i| w_at(&w, j, i) * mu[i]).sum::<f64>())
        .collect();
    let (p0, pk) = (probs(m, v0), probs(m, vk));
    let phase = |v: &[f32], p: &[f64]| {
        let n = v.len() / nv;
        let mut gw = vec![0.0; nh * nv];
        let mut gb = vec![0.0; nv];
        let mut gc = vec![0.0; nh];
        for r in 0..n {
            for j in 0..nh {
                let hj = p[r * nh + j];
                gc[j] += hj / n as f64;
                for i in 0..nv {
                    let vi = f64::from(v[r * nv + i]);
                    gw[j * nv + i] += (vi - mu[i]) * (hj - la[j]) / n as f64;
                }
            }
            for i in 0..nv {
                gb[i] += f64::from(v[r * nv + i]) / n as f64;
            }
        }
        (gw, gb, gc)
    };
    let (w0, b0, c0) = phase(v0, &p0);
    let (wk, bk, ck) = phase(vk, &pk);
    let w2: Vec<f64> = (0..nh * nv).map(|k| w[k] + lr * (w0[k] - wk[k])).collect();
    let b2: Vec<f64> = (0..nv).map(|i| b[i] + lr * (b0[i] - bk[i])).collect();
    let c2: Vec<f64> = (0..nh).map(|j| c[j] + lr * (c0[j] - ck[j])).collect();
    // Back to the ordinary form with the new weights.
    let vb: Vec<f64> = (0..nv)
        .map(|i| b2[i] - (0..nh).map(|j| w_at(&w2, j, i) * la[j]).sum::<f64>())
        .collect();
    let hb: Vec<f64> = (0..nh)
        .map(|j| c2[j] - (0..nv).map(|i| w_at(&w2, j, i) * mu[i]).sum::<f64>())
        .collect();
    (w2, vb, hb)
}

fn max_diff(a: &[f32], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, y)| (f64::from(x) - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn the_centered_step_is_the_papers_update_mapped_to_ordinary_parameters() {
    let (nv, nh, batch, chains) = (13, 7, 9, 11);
    let mut model = Rbm::new(nv, nh, 3).unwrap();
    // Weights and biases large enough that the centering terms matter.
    model
        .weights_mut()
        .iter_mut()
        .enumerate()
        .for_each(|(k, w)| *w = ((k * 37 % 19) as f32 - 9.0) * 0.1);
    model
        .v_bias_mut()
        .iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = (i as f32 - 6.0) * 0.2);
    let offsets = Offsets {
        visible: (0..nv).map(|i| 0.1 + 0.05 * i as f32).collect(),
        hidden: (0..nh).map(|j| 0.9 - 0.1 * j as f32).collect(),
    };
    let lr = 0.1;
    for pcd in [false, true] {
        let cfg = TrainConfig {
            k: 2,
            lr,
            batch_size: batch,
            method: if pcd {
                Method::Pcd {
                    chains: Some(chains),
                }
            } else {
                Method::Cd
            },
            centering: Some(0.5),
            seed: 4,
            ..TrainConfig::default()
        };
        let state = TrainerState {
            steps: 0,
            momentum: None,
            negative: if pcd {
                NegativeState::Pcd {
                    chains: Some(rows(chains, nv, 8)),
                }
            } else {
                NegativeState::Cd
            },
            offsets: Some(offsets.clone()),
        };
        let mut trainer = Trainer::resume(&model, cfg, state).unwrap();
        let v0 = rows(batch, nv, 5);
        let mut after = model.clone();
        trainer.step(&mut after, &v0).unwrap();
        let vk = trainer.negative_visible().to_vec();
        assert_eq!(vk.len(), if pcd { chains } else { batch } * nv);
        let (w, vb, hb) = centered_step(&model, &offsets, &v0, &vk, f64::from(lr));
        let errs = [
            max_diff(after.weights(), &w),
            max_diff(after.v_bias(), &vb),
            max_diff(after.h_bias(), &hb),
        ];
        assert!(
            errs.iter().all(|&e| e < 2e-6),
            "pcd {pcd}: max errors W, b, c = {errs:?}"
        );
        // And the centering made a difference: the plain update differs.
        let plain = TrainConfig {
            centering: None,
            ..trainer.config().clone()
        };
        let state = TrainerState {
            steps: 0,
            momentum: None,
            negative: if pcd {
                NegativeState::Pcd {
                    chains: Some(rows(chains, nv, 8)),
                }
            } else {
                NegativeState::Cd
            },
            offsets: None,
        };
        let mut t2 = Trainer::resume(&model, plain, state).unwrap();
        let mut m2 = model.clone();
        t2.step(&mut m2, &v0).unwrap();
        assert!(
            max_diff(m2.v_bias(), &vb) > 1e-3,
            "centering changed nothing"
        );
        // The offsets moved halfway to the batch's means.
        let o = trainer.state().offsets.unwrap();
        let mean0 = v0.iter().step_by(nv).sum::<f32>() / batch as f32;
        assert!((o.visible[0] - (0.5 * offsets.visible[0] + 0.5 * mean0)).abs() < 1e-6);
    }
}

#[test]
fn schedules_interpolate_and_switch() {
    let cfg = TrainConfig {
        lr: 0.1,
        lr_end: Some(0.02),
        anneal_steps: 8,
        momentum: 0.9,
        momentum_start: Some(0.5),
        momentum_steps: 3,
        ..TrainConfig::default()
    };
    cfg.validate().unwrap();
    assert_eq!(cfg.lr_at(0), 0.1);
    assert!((cfg.lr_at(4) - 0.06).abs() < 1e-7);
    assert_eq!(cfg.lr_at(8), 0.02);
    assert_eq!(cfg.lr_at(1000), 0.02);
    assert_eq!(
        [cfg.momentum_at(0), cfg.momentum_at(2), cfg.momentum_at(3)],
        [0.5, 0.5, 0.9]
    );
    assert!(cfg.has_momentum());
    for bad in [
        TrainConfig {
            lr_end: Some(0.1),
            anneal_steps: 0,
            ..TrainConfig::default()
        },
        TrainConfig {
            lr_end: Some(f32::NAN),
            anneal_steps: 3,
            ..TrainConfig::default()
        },
        TrainConfig {
            momentum_start: Some(1.0),
            ..TrainConfig::default()
        },
        TrainConfig {
            centering: Some(0.0),
            ..TrainConfig::default()
        },
        // (Chains without PCD cannot be written: Method::Cd has none.)
        TrainConfig {
            method: Method::Pcd { chains: Some(0) },
            ..TrainConfig::default()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
}

#[test]
fn pcd_negative_phase_averages_over_its_own_chains() {
    // With as many chains as rows and the same starting states, chains: Some(B) is plain PCD.
    let (nv, nh, b) = (20, 6, 8);
    let model = Rbm::new(nv, nh, 1).unwrap();
    let v0 = rows(b, nv, 2);
    let run = |chains: Option<usize>| {
        let cfg = TrainConfig {
            k: 1,
            lr: 0.05,
            batch_size: b,
            method: Method::Pcd { chains },
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(&model, cfg).unwrap();
        let mut m = model.clone();
        for _ in 0..3 {
            t.step(&mut m, &v0).unwrap();
        }
        (m, t.negative_visible().len())
    };
    let (a, na) = run(None);
    let (c, nc) = run(Some(b));
    assert_eq!((a.weights(), na), (c.weights(), nc));
    let (d, nd) = run(Some(3 * b + 1));
    assert_eq!(nd, (3 * b + 1) * nv);
    assert_ne!(d.weights(), a.weights());
}

#[test]
fn fast_weights_follow_the_regular_step_and_decay() {
    let (nv, nh, b) = (15, 5, 6);
    let model = Rbm::new(nv, nh, 2).unwrap();
    let (lr, fast_lr, decay) = (0.1f32, 0.3f32, 0.5f32);
    let cfg = TrainConfig {
        k: 1,
        lr,
        batch_size: b,
        method: Method::FastPcd {
            chains: None,
            fast: FastWeights { lr: fast_lr, decay },
        },
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(&model, cfg).unwrap();
    let zero = t.state().negative.fast().cloned().unwrap();
    assert!(zero.w.iter().chain(&zero.v_bias).all(|&x| x == 0.0));
    let v0 = rows(b, nv, 3);
    let mut m1 = model.clone();
    t.step(&mut m1, &v0).unwrap();
    // From zero, F = lr_fast · D while the plain SGD step is lr · D.
    let f1 = t.state().negative.fast().cloned().unwrap();
    let ratio = fast_lr / lr;
    let check = |f: &[f32], after: &[f32], before: &[f32], what: &str| {
        for ((&f, &a), &b) in f.iter().zip(after).zip(before) {
            assert!(
                (f - ratio * (a - b)).abs() < 1e-5,
                "{what}: {f} vs {}",
                ratio * (a - b)
            );
        }
    };
    check(&f1.w, m1.weights(), model.weights(), "W");
    check(&f1.v_bias, m1.v_bias(), model.v_bias(), "b");
    check(&f1.h_bias, m1.h_bias(), model.h_bias(), "c");
    // The second step decays F and adds the new direction.
    let mut m2 = m1.clone();
    t.step(&mut m2, &v0).unwrap();
    let f2 = t.state().negative.fast().cloned().unwrap();
    for k in 0..nv * nh {
        let d = (m2.weights()[k] - m1.weights()[k]) / lr;
        assert!((f2.w[k] - (decay * f1.w[k] + fast_lr * d)).abs() < 1e-5);
    }
    assert!(
        f2.w.iter().any(|&x| x.abs() > 1e-4),
        "the fast weights moved"
    );
}
