//! Gibbs chains always sample from the model passed to the call: chains made with one model
//! and run with another, or kept while training changes their model, recompute their
//! pre-activations first (they used to keep the old weights' `W·v` for up to 64 steps), and a
//! model of other sizes is an error, not a panic.

use rbm::gibbs::Gibbs;
use rbm::train::{TrainConfig, Trainer};
use rbm::{Error, Rbm, StreamKey};

const NV: usize = 40;
const NH: usize = 24;

/// A model with weights N(0, 1) and nonzero biases: far from the all-zero model, so stale
/// pre-activations would show.
fn sharp_model(seed: u64) -> Rbm {
    let mut m = Rbm::new(NV, NH, seed).unwrap();
    m.weights_mut().iter_mut().for_each(|w| *w *= 100.0);
    m.h_bias_mut()
        .iter_mut()
        .enumerate()
        .for_each(|(j, c)| *c = (j as f32 % 5.0) - 2.0);
    m
}

/// `chains` random 0/1 rows of `NV` units.
fn rows(chains: usize, seed: u64) -> Vec<f32> {
    let key = StreamKey::new(seed);
    (0..chains * NV)
        .map(|j| (key.draw(j as u64) & 1) as f32)
        .collect()
}

/// The largest |a − b|.
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `p(h | v)` of the chains' visible states before a step, computed afresh from `model`,
/// against the chains' own hidden probabilities after that step.
fn step_matches_model(g: &mut Gibbs, model: &Rbm) -> f32 {
    let v = g.visible().to_vec();
    let mut want = vec![0.0; g.chains() * NH];
    model.hidden_probs(&v, &mut want).unwrap();
    g.step(model).unwrap();
    max_diff(g.hidden_probs(), &want)
}

#[test]
fn chains_made_with_one_model_and_run_with_another_use_the_second() {
    let zeros = Rbm::zeros(NV, NH).unwrap();
    let trained = sharp_model(3);
    let mut g = Gibbs::new(&zeros, &rows(8, 1), StreamKey::new(2)).unwrap();
    let diff = step_matches_model(&mut g, &trained);
    assert!(diff < 1e-5, "|p(h) − hidden_probs| = {diff}");
    // And back: the zero model's p(h | v) is σ(0) = ½ everywhere.
    g.step(&zeros).unwrap();
    assert!(g.hidden_probs().iter().all(|&p| p == 0.5));
}

#[test]
fn chains_kept_across_training_steps_follow_the_trained_model() {
    let mut model = sharp_model(5);
    let data = rows(16, 4);
    let mut g = Gibbs::new(&model, &rows(8, 6), StreamKey::new(7)).unwrap();
    g.run(&model, 3).unwrap();
    let config = TrainConfig {
        k: 1,
        lr: 0.5,
        batch_size: 16,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&model, config).unwrap();
    for _ in 0..20 {
        trainer.step(&mut model, &data).unwrap();
        let diff = step_matches_model(&mut g, &model);
        assert!(diff < 1e-5, "|p(h) − hidden_probs| = {diff}");
    }
}

#[test]
fn a_model_changed_through_its_accessors_is_seen() {
    let mut model = sharp_model(8);
    let mut g = Gibbs::new(&model, &rows(4, 9), StreamKey::new(1)).unwrap();
    g.run(&model, 2).unwrap();
    model.weights_mut().iter_mut().for_each(|w| *w = -*w);
    let diff = step_matches_model(&mut g, &model);
    assert!(diff < 1e-5, "|p(h) − hidden_probs| = {diff}");
}

#[test]
fn a_model_of_other_sizes_is_an_error() {
    let model = sharp_model(1);
    let mut g = Gibbs::new(&model, &rows(2, 1), StreamKey::new(1)).unwrap();
    for other in [
        Rbm::zeros(NV, NH + 1).unwrap(),
        Rbm::zeros(NV + 1, NH).unwrap(),
    ] {
        let err = g.run(&other, 1).unwrap_err();
        assert!(matches!(err, Error::Shape(_)), "{err}");
    }
    assert_eq!(g.steps(), 0);
    g.run(&model, 1).unwrap();
    assert_eq!(g.steps(), 1);
}
