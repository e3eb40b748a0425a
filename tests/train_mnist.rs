//! Training on real MNIST rows lowers the reconstruction error of held-out test rows by a
//! clear margin.

mod common;

use rbm::data::{Binarize, Order, Split, fill_batch, open_split};
use rbm::train::{Schedule, TrainConfig, Trainer, train_dataset};
use rbm::{Rbm, StreamKey};

/// Mean squared error per pixel between test rows and `p(v | h)` for `h ~ p(h | v)`.
fn test_recon_error(model: &Rbm, v: &[f32]) -> f64 {
    let rows = v.len() / model.n_visible();
    let (mut hp, mut hs) = (
        vec![0.0; rows * model.n_hidden()],
        vec![0.0; rows * model.n_hidden()],
    );
    model
        .sample_hidden(v, StreamKey::new(9), &mut hp, &mut hs)
        .unwrap();
    let mut vp = vec![0.0; v.len()];
    model.visible_probs(&hs, &mut vp).unwrap();
    v.iter()
        .zip(&vp)
        .map(|(&a, &b)| ((a - b) as f64).powi(2))
        .sum::<f64>()
        / v.len() as f64
}

#[test]
fn short_training_lowers_reconstruction_error() {
    let Some(dir) = common::data_dir() else {
        return;
    };
    let train = open_split(&dir.join("mnist"), Split::Train).unwrap();
    let test = open_split(&dir.join("mnist"), Split::Test).unwrap();
    let idx: Vec<u32> = (0..500).collect();
    let mut held_out = vec![0.0; 500 * 784];
    fill_batch(
        &test,
        &idx,
        Binarize::Threshold,
        StreamKey::new(0),
        &mut held_out,
    )
    .unwrap();

    let mut model = Rbm::new(784, 100, 3).unwrap();
    let before = test_recon_error(&model, &held_out);
    let cfg = TrainConfig {
        k: 1,
        lr: 0.05,
        batch_size: 64,
        seed: 3,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&model, cfg).unwrap();
    let schedule = Schedule {
        epochs: 2,
        batches_per_epoch: Some(150),
        order: Order::Shuffled,
        binarize: Binarize::Stochastic,
        drop_last: true,
    };
    let history =
        train_dataset(&mut model, &mut trainer, &train, &schedule, |_| {}, |_| {}).unwrap();
    let after = test_recon_error(&model, &held_out);
    eprintln!("held-out reconstruction error {before:.4} → {after:.4}; epochs {history:?}");
    assert!(
        after < 0.5 * before,
        "reconstruction error {before} → {after}"
    );
    assert!(history[1].recon_error < history[0].recon_error);
    assert!(
        history
            .iter()
            .all(|e| e.loss.is_finite() && e.batches == 150)
    );
}

#[test]
fn rows_of_the_wrong_size_are_an_error() {
    let Some(dir) = common::data_dir() else {
        return;
    };
    let train = open_split(&dir.join("mnist"), Split::Test).unwrap();
    let mut model = Rbm::new(100, 10, 0).unwrap();
    let mut trainer = Trainer::new(&model, TrainConfig::default()).unwrap();
    let schedule = Schedule {
        epochs: 1,
        batches_per_epoch: Some(1),
        order: Order::Sequential,
        binarize: Binarize::None,
        drop_last: true,
    };
    let err =
        train_dataset(&mut model, &mut trainer, &train, &schedule, |_| {}, |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(
        err,
        rbm::Error::Dataset {
            kind: rbm::DatasetError::RowSize {
                expected: 100,
                found: 784
            },
            ..
        }
    ));
    assert!(msg.contains("t10k-images"), "{msg}");
}
