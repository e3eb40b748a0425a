//! The same seed gives bit-identical models whatever the number of threads.

use rbm::train::{FastWeights, Method, Tempering, TrainConfig, Trainer};
use rbm::{Rbm, StreamKey};

/// A batch for step `step`: sparse 0/1 rows (about 13% ones, as MNIST) or, with `grey`,
/// probabilities in [0, 1] (as `Binarize::None`), which take the dense products.
fn batch(step: u64, rows: usize, nv: usize, grey: bool) -> Vec<f32> {
    let key = StreamKey::new(77).derive(step);
    (0..rows * nv)
        .map(|j| {
            let u = key.draw(j as u64);
            if grey {
                (u >> 8) as f32 / 16_777_216.0
            } else {
                (u < u32::MAX / 8) as u8 as f32
            }
        })
        .collect()
}

fn train_in_pool(threads: usize, cfg: &TrainConfig, grey: bool) -> (Rbm, Vec<f64>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let (nv, nh) = (784, 120);
        let mut model = Rbm::new(nv, nh, 1).unwrap();
        let mut trainer = Trainer::new(&model, cfg.clone()).unwrap();
        let mut losses = Vec::new();
        for step in 0..12u64 {
            let b = batch(step, cfg.batch_size, nv, grey);
            losses.push(trainer.step(&mut model, &b).unwrap().loss);
        }
        (model, losses)
    })
}

#[test]
fn one_two_and_eight_threads_give_identical_models() {
    let configs = [
        TrainConfig {
            k: 3,
            lr: 0.05,
            batch_size: 64,
            seed: 5,
            ..TrainConfig::default()
        },
        TrainConfig {
            k: 1,
            lr: 0.05,
            momentum: 0.5,
            weight_decay: 1e-4,
            batch_size: 37,
            method: Method::Pcd { chains: None },
            seed: 6,
            ..TrainConfig::default()
        },
        // More chains than rows, centering, schedules.
        TrainConfig {
            k: 2,
            lr: 0.05,
            momentum: 0.9,
            batch_size: 33,
            method: Method::FastPcd {
                chains: Some(50),
                fast: FastWeights {
                    lr: 0.05,
                    decay: 0.95,
                },
            },
            seed: 7,
            lr_end: Some(0.0),
            anneal_steps: 10,
            momentum_start: Some(0.5),
            momentum_steps: 4,
            centering: Some(0.05),
            ..TrainConfig::default()
        },
        // Parallel tempering with more chains than rows.
        TrainConfig {
            k: 1,
            lr: 0.05,
            momentum: 0.5,
            batch_size: 16,
            method: Method::Tempering {
                chains: Some(20),
                ladder: Tempering {
                    temperatures: 3,
                    beta_min: 0.4,
                },
            },
            seed: 14,
            ..TrainConfig::default()
        },
    ];
    for (cfg, grey) in configs.iter().flat_map(|c| [(c, false), (c, true)]) {
        let (m1, l1) = train_in_pool(1, cfg, grey);
        let (m2, l2) = train_in_pool(2, cfg, grey);
        let (m8, l8) = train_in_pool(8, cfg, grey);
        assert_ne!(
            m1,
            Rbm::new(784, 120, 1).unwrap(),
            "training changed nothing"
        );
        assert!(
            m1 == m2 && m1 == m8,
            "models differ between thread counts for {cfg:?}"
        );
        assert!(l1 == l2 && l1 == l8, "losses differ between thread counts");
    }
}

/// Gibbs chains (each following its flips, run in parallel one chain per task) end in the
/// same states for 1, 2 and 8 threads, stepping one step at a time or many at once, with and
/// without a clamp (grey clamped values included).
#[test]
fn gibbs_chains_are_the_same_for_any_threads_and_step_grouping() {
    use rbm::StreamKey;
    use rbm::gibbs::Gibbs;
    let model = Rbm::new(50, 30, 4).unwrap();
    let start: Vec<f32> = (0..7 * 50)
        .map(|j| match j % 11 {
            0 => 0.4,
            k => (k % 3 == 0) as u8 as f32,
        })
        .collect();
    let mut mask = vec![false; 50];
    mask[..5].fill(true);
    let run = |threads: usize, grouped: bool, clamp: bool| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut g = Gibbs::new(&model, &start, StreamKey::new(8)).unwrap();
            if clamp {
                g = g.with_clamp(&mask).unwrap();
            }
            if grouped {
                g.run(&model, 150).unwrap();
            } else {
                (0..150).for_each(|_| g.step(&model).unwrap());
            }
            (g.visible().to_vec(), g.hidden_probs().to_vec(), g.steps())
        })
    };
    for clamp in [false, true] {
        let want = run(1, false, clamp);
        assert_eq!(want.2, 150);
        for (threads, grouped) in [(1, true), (2, false), (2, true), (8, true)] {
            assert!(
                run(threads, grouped, clamp) == want,
                "{threads} threads, grouped {grouped}, clamp {clamp}"
            );
        }
        if clamp {
            for (v, v0) in want.0.chunks(50).zip(start.chunks(50)) {
                assert_eq!(v[..5], v0[..5], "clamped units (one grey) kept");
            }
            assert_eq!(want.0[0], 0.4);
        }
    }
}

/// A model whose conditionals are sharp (random weights of about ±1), so that its Gibbs
/// chains change a few units per step and the chain's passes move by their flips rather than
/// summing afresh (`src/compute/delta.rs`).
fn sharp_model(nv: usize, nh: usize) -> Rbm {
    let mut model = Rbm::new(nv, nh, 3).unwrap();
    for w in model.weights_mut() {
        *w *= 100.0;
    }
    model
}

#[test]
fn chains_moved_by_their_flips_give_identical_models_on_any_threads() {
    let configs = [
        TrainConfig {
            k: 5,
            lr: 0.001,
            batch_size: 40,
            seed: 8,
            ..TrainConfig::default()
        },
        TrainConfig {
            k: 3,
            lr: 0.001,
            batch_size: 24,
            method: Method::Pcd { chains: Some(30) },
            centering: Some(0.05),
            momentum: 0.5,
            seed: 9,
            ..TrainConfig::default()
        },
    ];
    for cfg in &configs {
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut model = sharp_model(784, 96);
                let mut trainer = Trainer::new(&model, cfg.clone()).unwrap();
                let losses: Vec<f64> = (0..6u64)
                    .map(|step| {
                        let b = batch(step, cfg.batch_size, 784, false);
                        trainer.step(&mut model, &b).unwrap().loss
                    })
                    .collect();
                (model, losses)
            })
        };
        let (m1, l1) = run(1);
        assert_ne!(m1, sharp_model(784, 96), "training changed nothing");
        for threads in [2, 5] {
            let (m, l) = run(threads);
            assert!(m == m1 && l == l1, "{threads} threads differ for {cfg:?}");
        }
    }
}
