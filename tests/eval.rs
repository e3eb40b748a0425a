//! Evaluation: exact log Z against brute force, AIS against exact log Z (trained on MNIST and
//! random with large weights), RAISE on the conservative side of AIS, pseudo-likelihood against
//! a direct computation, determinism across thread counts, and the error paths.

mod common;

use rbm::data::{Binarize, Order, Split, fill_batch, mean_pixels, open_split};
use rbm::eval::{
    AisConfig, Annealer, BaseRate, PseudoLikelihood, RaiseConfig, Schedule, ais, exact_log_z,
    exact_log_z_max, mean_neg_free_energy, pseudo_log_likelihood, raise, reconstruction_error,
};
use rbm::train::{Schedule as TrainSchedule, TrainConfig, Trainer, train_dataset};
use rbm::{Rbm, StreamKey};

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn log_sum_exp(xs: impl Iterator<Item = f64>) -> f64 {
    let xs: Vec<f64> = xs.collect();
    let m = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

fn bits(s: usize, n: usize) -> Vec<f64> {
    (0..n).map(|i| (s >> i & 1) as f64).collect()
}

/// A model with weights N(0, std²) and biases N(0, bias_std²).
fn random_model(nv: usize, nh: usize, std: f32, bias_std: f32, seed: u64) -> Rbm {
    let mut m = Rbm::zeros(nv, nh).unwrap();
    let key = StreamKey::new(seed);
    let (w, b, c) = m.params_mut();
    rbm::rng::fill_normal(key.derive(0), std, w);
    rbm::rng::fill_normal(key.derive(1), bias_std, b);
    rbm::rng::fill_normal(key.derive(2), bias_std, c);
    m
}

/// log Z = log Σ_v Σ_h exp(bᵀv + cᵀh + hᵀWv), by brute force over both layers.
fn brute_force_log_z(m: &Rbm) -> f64 {
    let (nv, nh) = (m.n_visible(), m.n_hidden());
    let (w, b, c) = (m.weights(), m.v_bias(), m.h_bias());
    log_sum_exp((0..1usize << nv).flat_map(|sv| {
        let v = bits(sv, nv);
        (0..1usize << nh).map(move |sh| {
            let h = bits(sh, nh);
            let mut e = 0.0;
            for i in 0..nv {
                e += b[i] as f64 * v[i];
            }
            for j in 0..nh {
                e += c[j] as f64 * h[j];
                for i in 0..nv {
                    e += h[j] * w[j * nv + i] as f64 * v[i];
                }
            }
            e
        })
    }))
}

/// log Z by summing over the visible states with the hidden layer summed out (no Gray code).
fn log_z_over_visible(m: &Rbm) -> f64 {
    let (nv, nh) = (m.n_visible(), m.n_hidden());
    let (w, b, c) = (m.weights(), m.v_bias(), m.h_bias());
    log_sum_exp((0..1usize << nv).map(|s| {
        let v = bits(s, nv);
        let mut x: f64 = (0..nv).map(|i| b[i] as f64 * v[i]).sum();
        for j in 0..nh {
            let a: f64 = c[j] as f64 + (0..nv).map(|i| w[j * nv + i] as f64 * v[i]).sum::<f64>();
            x += softplus(a);
        }
        x
    }))
}

#[test]
fn exact_log_z_matches_brute_force_over_both_layers() {
    // Enumerating the hidden layer (H < V) and the visible layer (V < H).
    for (nv, nh, seed) in [(7, 5, 1), (4, 9, 2), (6, 6, 3), (1, 3, 4)] {
        let m = random_model(nv, nh, 1.5, 1.0, seed);
        let (got, want) = (exact_log_z(&m).unwrap(), brute_force_log_z(&m));
        eprintln!("{nv}–{nh}: exact {got:.12}, brute force {want:.12}");
        assert!(
            (got - want).abs() < 1e-10 * want.abs().max(1.0),
            "{got} vs {want}"
        );
    }
    // More than one chunk of states (n > 12 bits): against the plain sum over v.
    let m = random_model(14, 40, 0.8, 0.5, 5);
    let (got, want) = (exact_log_z(&m).unwrap(), log_z_over_visible(&m));
    eprintln!("14–40: exact {got:.12}, plain sum {want:.12}");
    assert!((got - want).abs() < 1e-9 * want.abs(), "{got} vs {want}");
    let m = random_model(40, 14, 0.8, 0.5, 6);
    let direct = {
        // Symmetric: the sum over h with v summed out, written out plainly.
        let (nv, nh) = (40, 14);
        let (w, b, c) = (m.weights(), m.v_bias(), m.h_bias());
        log_sum_exp((0..1usize << nh).map(|s| {
            let h = bits(s, nh);
            let mut x: f64 = (0..nh).map(|j| c[j] as f64 * h[j]).sum();
            for i in 0..nv {
                let a: f64 =
                    b[i] as f64 + (0..nh).map(|j| w[j * nv + i] as f64 * h[j]).sum::<f64>();
                x += softplus(a);
            }
            x
        }))
    };
    let got = exact_log_z(&m).unwrap();
    assert!(
        (got - direct).abs() < 1e-9 * direct.abs(),
        "{got} vs {direct}"
    );
}

#[test]
fn zero_weight_model_has_the_closed_form_log_z() {
    let mut m = random_model(30, 12, 0.0, 2.0, 7);
    m.weights_mut().fill(0.0);
    let closed: f64 = m
        .v_bias()
        .iter()
        .chain(m.h_bias())
        .map(|&x| softplus(x as f64))
        .sum();
    let exact = exact_log_z(&m).unwrap();
    assert!((exact - closed).abs() < 1e-10, "{exact} vs {closed}");
    // AIS is exact when the base rate is the model itself: every weight is 1.
    let base = BaseRate::from_v_bias(m.v_bias().to_vec()).unwrap();
    let cfg = AisConfig {
        runs: 20,
        schedule: Schedule::standard_with(100).unwrap(),
        seed: 1,
    };
    let est = ais(&m, &base, &cfg).unwrap();
    eprintln!("zero weights: closed {closed}, AIS {est:?}");
    assert!(
        (est.log_z - closed).abs() < 1e-5,
        "{} vs {closed}",
        est.log_z
    );
    assert!(est.log_z_hi - est.log_z_lo < 1e-5);
    // From a uniform base rate, AIS has to move: still close with the default schedule.
    let uniform = BaseRate::uniform(30).unwrap();
    let est = ais(&m, &uniform, &AisConfig::default()).unwrap();
    eprintln!(
        "zero weights from a uniform base: AIS {} [{}, {}]",
        est.log_z, est.log_z_lo, est.log_z_hi
    );
    assert!(
        (est.log_z - closed).abs() < 0.02,
        "{} vs {closed}",
        est.log_z
    );
}

/// The MNIST folder, or `None` (skipping) without data.
fn mnist() -> Option<std::path::PathBuf> {
    common::data_dir().map(|d| d.join("mnist"))
}

/// A 784–`nh` model trained briefly on MNIST (CD-1, visible biases from the marginals).
fn trained(dir: &std::path::Path, nh: usize, batches: usize, seed: u64) -> Rbm {
    let train = open_split(dir, Split::Train).unwrap();
    let mut model = Rbm::new(784, nh, seed).unwrap();
    model
        .init_visible_bias_from_marginals(&mean_pixels(&train))
        .unwrap();
    let cfg = TrainConfig {
        k: 1,
        lr: 0.05,
        momentum: 0.5,
        batch_size: 64,
        seed,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&model, cfg).unwrap();
    let schedule = TrainSchedule {
        epochs: 1,
        batches_per_epoch: Some(batches),
        order: Order::Shuffled,
        binarize: Binarize::Stochastic,
        drop_last: true,
    };
    train_dataset(&mut model, &mut trainer, &train, &schedule, |_| {}, |_| {}).unwrap();
    model
}

fn base_rate(dir: &std::path::Path) -> BaseRate {
    BaseRate::from_dataset(&open_split(dir, Split::Train).unwrap()).unwrap()
}

/// `count` test rows, binarized stochastically with a fixed key.
fn test_rows(dir: &std::path::Path, count: usize) -> Vec<f32> {
    let test = open_split(dir, Split::Test).unwrap();
    let idx: Vec<u32> = (0..count as u32).collect();
    let mut out = vec![0.0; count * 784];
    fill_batch(
        &test,
        &idx,
        Binarize::Stochastic,
        StreamKey::new(0),
        &mut out,
    )
    .unwrap();
    out
}

fn check_ais_against_exact(name: &str, model: &Rbm, base: &BaseRate) {
    let t = std::time::Instant::now();
    let exact = exact_log_z(model).unwrap();
    let t_exact = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let est = ais(model, base, &AisConfig::default()).unwrap();
    let t_ais = t.elapsed().as_secs_f64();
    let gap = est.log_z - exact;
    eprintln!(
        "{name}: exact log Z {exact:.4} ({t_exact:.2} s), AIS {:.4} [{:.4}, {:.4}] ({t_ais:.2} s), \
         gap {gap:+.4} nats, ESS {:.1}",
        est.log_z,
        est.log_z_lo,
        est.log_z_hi,
        est.effective_sample_size()
    );
    assert!(
        gap.abs() < 0.1,
        "{name}: AIS {} vs exact {exact}",
        est.log_z
    );
}

#[test]
fn ais_matches_exact_log_z_on_a_784_10_model_trained_on_mnist() {
    let Some(dir) = mnist() else {
        return;
    };
    let model = trained(&dir, 10, 300, 1);
    check_ais_against_exact("MNIST 784–10", &model, &base_rate(&dir));
}

#[test]
fn ais_matches_exact_log_z_on_a_784_20_model_trained_on_mnist() {
    let Some(dir) = mnist() else {
        return;
    };
    let model = trained(&dir, 20, 600, 2);
    check_ais_against_exact("MNIST 784–20", &model, &base_rate(&dir));
}

#[test]
fn ais_matches_exact_log_z_on_random_models_with_large_weights() {
    // Weights N(0, std²), biases N(0, 1), from a uniform base rate: the hidden inputs W_j·v of
    // a typical v have standard deviations of about 7 (100–20) and 8 (60–16), the visible
    // inputs of the 20–60 model about 5 (trained MNIST models have about 1–3). The exact sum
    // runs over the hidden layer for the first two, over the visible layer for the third.
    for (nv, nh, std, seed) in [(100, 20, 1.0, 12), (60, 16, 1.5, 14), (20, 60, 1.0, 13)] {
        let model = random_model(nv, nh, std, 1.0, seed);
        let base = BaseRate::uniform(nv).unwrap();
        check_ais_against_exact(
            &format!("random {nv}–{nh}, weights N(0, {std}²)"),
            &model,
            &base,
        );
    }
}

#[test]
fn ais_is_the_same_for_one_and_two_threads() {
    let model = random_model(50, 30, 0.5, 0.5, 21);
    let base = BaseRate::from_marginals(&vec![0.3; 50], 0.0).unwrap();
    let cfg = AisConfig {
        runs: 37,
        schedule: Schedule::standard_with(200).unwrap(),
        seed: 9,
    };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| ais(&model, &base, &cfg).unwrap())
    };
    let (one, two) = (run(1), run(2));
    let bits = |e: &rbm::eval::AisEstimate| {
        e.log_weights
            .iter()
            .map(|x| x.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&one), bits(&two));
    assert_eq!(one.log_z.to_bits(), two.log_z.to_bits());
    // Another seed gives other weights.
    let other = ais(
        &model,
        &base,
        &AisConfig {
            seed: 10,
            ..cfg.clone()
        },
    )
    .unwrap();
    assert_ne!(bits(&one), bits(&other));
    // RAISE too.
    let data: Vec<f32> = (0..7 * 50)
        .map(|k| ((k * 7 + k / 3) % 3 == 0) as u8 as f32)
        .collect();
    let rc = RaiseConfig {
        runs_per_row: 3,
        schedule: Schedule::standard_with(100).unwrap(),
        seed: 4,
    };
    let raise_in = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| raise(&model, &base, &data, &rc).unwrap())
    };
    assert_eq!(raise_in(1), raise_in(2));
}

#[test]
fn annealer_steps_reproduce_ais() {
    let model = random_model(40, 25, 0.5, 0.5, 22);
    let base = BaseRate::uniform(40).unwrap();
    let schedule = Schedule::standard_with(60).unwrap();
    let cfg = AisConfig {
        runs: 20,
        schedule: schedule.clone(),
        seed: 3,
    };
    let est = ais(&model, &base, &cfg).unwrap();
    let mut a = Annealer::new(&model, &base, 20, 3).unwrap();
    let betas = schedule.betas();
    for &b in &betas[1..betas.len() - 1] {
        a.step(b).unwrap();
    }
    assert_eq!(a.visible().len(), 20 * 40);
    assert_eq!(a.finish(), est);
}

#[test]
fn raise_is_on_the_conservative_side_of_ais_on_a_trained_model() {
    let Some(dir) = mnist() else {
        return;
    };
    let model = trained(&dir, 20, 600, 3);
    let base = base_rate(&dir);
    let rows = test_rows(&dir, 100);
    let schedule = Schedule::standard_with(1000).unwrap();
    let est = ais(
        &model,
        &base,
        &AisConfig {
            runs: 100,
            schedule: schedule.clone(),
            seed: 1,
        },
    )
    .unwrap();
    let exact = exact_log_z(&model).unwrap();
    let mnf = mean_neg_free_energy(&model, &rows).unwrap();
    let (ais_ll, _, _) = est.log_likelihood(mnf);
    let r = raise(
        &model,
        &base,
        &rows,
        &RaiseConfig {
            runs_per_row: 1,
            schedule,
            seed: 1,
        },
    )
    .unwrap();
    let exact_ll = mnf - exact;
    eprintln!(
        "784–20, 1000 temperatures, 100 rows: RAISE {:.3} ± {:.3}, exact {exact_ll:.3}, AIS {ais_ll:.3}",
        r.mean, r.std_error
    );
    assert!(r.mean <= ais_ll, "RAISE {} above AIS {ais_ll}", r.mean);
    assert!(r.mean <= exact_ll + 3.0 * r.std_error);
    assert!(
        exact_ll - r.mean < 5.0,
        "RAISE far too low: {} vs {exact_ll}",
        r.mean
    );
    assert_eq!(r.log_likelihoods.len(), 100);
}

#[test]
fn raise_with_many_runs_approaches_the_exact_log_likelihood() {
    // A small random model: with enough temperatures the reverse chain mixes and the estimate
    // of log p(v) is close to exact, from below on average.
    let model = random_model(12, 8, 0.8, 0.5, 31);
    let base = BaseRate::uniform(12).unwrap();
    let data: Vec<f32> = (0..20 * 12)
        .map(|k| ((k * 5 + k / 7) % 3 == 0) as u8 as f32)
        .collect();
    let exact_ll = mean_neg_free_energy(&model, &data).unwrap() - exact_log_z(&model).unwrap();
    let r = raise(
        &model,
        &base,
        &data,
        &RaiseConfig {
            runs_per_row: 20,
            schedule: Schedule::standard_with(500).unwrap(),
            seed: 2,
        },
    )
    .unwrap();
    eprintln!("12–8: RAISE {} ± {}, exact {exact_ll}", r.mean, r.std_error);
    assert!((r.mean - exact_ll).abs() < 0.05, "{} vs {exact_ll}", r.mean);
}

/// The pseudo-log-likelihood written out: flip each bit, compute both free energies.
fn direct_pll(model: &Rbm, v: &[f32]) -> f64 {
    let nv = model.n_visible();
    let mut f = [0.0f64];
    model.free_energy(v, &mut f).unwrap();
    (0..nv)
        .map(|i| {
            let mut flipped = v.to_vec();
            flipped[i] = 1.0 - flipped[i];
            let mut g = [0.0f64];
            model.free_energy(&flipped, &mut g).unwrap();
            // log σ(F(ṽ) − F(v))
            -softplus(f[0] - g[0])
        })
        .sum()
}

#[test]
fn pseudo_likelihood_matches_a_direct_computation() {
    let model = random_model(30, 17, 0.7, 0.5, 41);
    let rows = 37;
    let data: Vec<f32> = (0..rows * 30)
        .map(|k| StreamKey::new(8).draw(k as u64).is_multiple_of(3) as u8 as f32)
        .collect();
    let exact = pseudo_log_likelihood(&model, &data, PseudoLikelihood::Exact).unwrap();
    assert_eq!(exact.len(), rows);
    for (r, &got) in exact.iter().enumerate() {
        let want = direct_pll(&model, &data[r * 30..(r + 1) * 30]);
        assert!(
            (got - want).abs() < 1e-4 * want.abs().max(1.0),
            "row {r}: {got} vs {want}"
        );
    }
    // One random flip per row: unbiased, so over many rows its mean is near the exact mean.
    let many: Vec<f32> = data.iter().cycle().take(rows * 30 * 200).copied().collect();
    let one = pseudo_log_likelihood(&model, &many, PseudoLikelihood::OneFlip { seed: 3 }).unwrap();
    let mean_one = one.iter().sum::<f64>() / one.len() as f64;
    let mean_exact = exact.iter().sum::<f64>() / rows as f64;
    eprintln!("PLL exact {mean_exact:.4}, one-flip estimate {mean_one:.4}");
    assert!(
        (mean_one - mean_exact).abs() < 0.05 * mean_exact.abs(),
        "{mean_one} vs {mean_exact}"
    );
    let again =
        pseudo_log_likelihood(&model, &many, PseudoLikelihood::OneFlip { seed: 3 }).unwrap();
    assert_eq!(one, again);
    // Non-binary rows are refused.
    let err = pseudo_log_likelihood(&model, &[0.5; 30], PseudoLikelihood::Exact).unwrap_err();
    assert!(matches!(err, rbm::Error::Config(_)), "{err}");
}

#[test]
fn reconstruction_error_is_small_for_a_model_that_copies_its_input() {
    // W = 20·I with c = −10, b = −10: h copies v, v copies h (to within e^-10).
    let n = 8;
    let mut w = vec![0.0; n * n];
    for i in 0..n {
        w[i * n + i] = 20.0;
    }
    let model = Rbm::from_parts(n, n, w, vec![-10.0; n], vec![-10.0; n]).unwrap();
    let data: Vec<f32> = (0..5 * n).map(|k| (k % 3 == 0) as u8 as f32).collect();
    let e = reconstruction_error(&model, &data, StreamKey::new(1)).unwrap();
    assert!(e < 1e-6, "{e}");
    let zero = Rbm::zeros(n, n).unwrap();
    let e = reconstruction_error(&zero, &data, StreamKey::new(1)).unwrap();
    assert!((e - 0.25).abs() < 1e-9, "{e}");
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let model = random_model(10, 30, 0.1, 0.1, 51);
    let base = BaseRate::uniform(10).unwrap();
    let wrong_base = BaseRate::uniform(11).unwrap();
    assert!(matches!(
        ais(&model, &wrong_base, &AisConfig::default()),
        Err(rbm::Error::Shape(_))
    ));
    assert!(matches!(
        ais(
            &model,
            &base,
            &AisConfig {
                runs: 0,
                ..AisConfig::default()
            }
        ),
        Err(rbm::Error::Config(_))
    ));
    assert!(matches!(
        Annealer::new(&model, &base, 0, 0),
        Err(rbm::Error::Config(_))
    ));
    let mut a = Annealer::new(&model, &base, 3, 0).unwrap();
    assert!(matches!(a.step(1.5), Err(rbm::Error::Config(_))));
    let rc = RaiseConfig::default();
    assert!(matches!(
        raise(&model, &base, &[], &rc),
        Err(rbm::Error::Shape(_))
    ));
    assert!(matches!(
        raise(&model, &base, &[0.0; 15], &rc),
        Err(rbm::Error::Shape(_))
    ));
    assert!(matches!(
        raise(
            &model,
            &base,
            &[0.0; 10],
            &RaiseConfig {
                runs_per_row: 0,
                ..rc
            }
        ),
        Err(rbm::Error::Config(_))
    ));
    let big = Rbm::zeros(30, 26).unwrap();
    assert!(matches!(exact_log_z(&big), Err(rbm::Error::Config(_))));
    assert!(matches!(
        exact_log_z_max(&model, 5),
        Err(rbm::Error::Config(_))
    ));
    assert!(matches!(
        mean_neg_free_energy(&model, &[0.0; 7]),
        Err(rbm::Error::Shape(_))
    ));
    assert!(matches!(
        reconstruction_error(&model, &[], StreamKey::new(0)),
        Err(rbm::Error::Shape(_))
    ));
    assert!(matches!(
        pseudo_log_likelihood(&model, &[1.0; 9], PseudoLikelihood::Exact),
        Err(rbm::Error::Shape(_))
    ));
}
