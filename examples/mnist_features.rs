//! RBM features for a simple classifier: fit an RBM to MNIST training images, then train a
//! softmax regression (written here, plain minibatch SGD) on `p(h = 1 | v)` and on the raw
//! pixels, and report both test accuracies.
//!
//! `cargo run --release --example mnist_features [TRAIN_ROWS] [HIDDEN] [EPOCHS]`
//! (defaults 10000, 200, 5). MNIST is found in `$RBM_DATA/mnist`, `./data/mnist` or
//! `/usr/share/datasets/mnist`.

use rbm::data::{Split, find_dataset, open_split};
use rbm::prelude::*;

fn main() -> rbm::Result<()> {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let (n, hidden, epochs) = (arg(1, 10_000), arg(2, 200), arg(3, 5));
    let dir = find_dataset("mnist")?;
    let (train, test) = (
        open_split(&dir, Split::Train)?,
        open_split(&dir, Split::Test)?,
    );
    let n = n.min(train.len());
    let rows = Rows::from_bytes(&train.pixels()[..n * 784], 784)?;

    let config = Config::default()
        .hidden(hidden)
        .epochs(epochs)
        .learning_rate(0.05)
        .momentum(0.5);
    let mut model = Estimator::new(config.seed(1));
    model.fit_with(&rows, |e| {
        println!(
            "rbm epoch {}: recon error {:.4}",
            e.epoch + 1,
            e.recon_error
        )
    })?;
    let train_labels = &train.labels()[..n];
    let (features, test_features) = (model.transform(&rows)?, model.transform(&test)?);
    let rbm_accuracy = softmax_accuracy(
        &features,
        train_labels,
        &test_features,
        test.labels(),
        hidden,
    );

    let grey = |px: &[u8]| {
        px.iter()
            .map(|&x| f32::from(x) / 255.0)
            .collect::<Vec<f32>>()
    };
    let (pixels, test_pixels) = (grey(&train.pixels()[..n * 784]), grey(test.pixels()));
    let pixel_accuracy = softmax_accuracy(&pixels, train_labels, &test_pixels, test.labels(), 784);
    println!("test accuracy, softmax regression on {n} training images:");
    println!("  on {hidden} RBM features: {:.2}%", 100.0 * rbm_accuracy);
    println!("  on the 784 raw pixels:   {:.2}%", 100.0 * pixel_accuracy);
    Ok(())
}

/// Trains a softmax regression on `x` (rows of `d` values) with labels `y` (20 epochs of SGD,
/// batches of 50, rate 0.5) and returns its accuracy on `test_x`, `test_y`.
fn softmax_accuracy(x: &[f32], y: &[u8], test_x: &[f32], test_y: &[u8], d: usize) -> f64 {
    const CLASSES: usize = 10;
    let (mut w, mut b) = (vec![0.0f32; CLASSES * d], [0.0f32; CLASSES]);
    let (mut gw, mut gb) = (vec![0.0f32; CLASSES * d], [0.0f32; CLASSES]);
    for _ in 0..20 {
        for (xb, yb) in x.chunks(50 * d).zip(y.chunks(50)) {
            gw.fill(0.0);
            gb.fill(0.0);
            for (row, &label) in xb.chunks(d).zip(yb) {
                let p = probabilities(&w, &b, row);
                for c in 0..CLASSES {
                    let err = p[c] - f32::from(u8::from(c == label as usize));
                    gb[c] += err;
                    gw[c * d..(c + 1) * d]
                        .iter_mut()
                        .zip(row)
                        .for_each(|(g, &v)| *g += err * v);
                }
            }
            let rate = 0.5 / yb.len() as f32;
            w.iter_mut().zip(&gw).for_each(|(w, g)| *w -= rate * g);
            b.iter_mut().zip(&gb).for_each(|(b, g)| *b -= rate * g);
        }
    }
    let correct = test_x.chunks(d).zip(test_y).filter(|(row, label)| {
        let p = probabilities(&w, &b, row);
        let best = (0..CLASSES).max_by(|&i, &j| p[i].total_cmp(&p[j]));
        best == Some(usize::from(**label))
    });
    correct.count() as f64 / test_y.len() as f64
}

/// The softmax of `W·row + b` over the 10 classes.
fn probabilities(w: &[f32], b: &[f32; 10], row: &[f32]) -> [f32; 10] {
    let mut z = [0.0f32; 10];
    for (c, z) in z.iter_mut().enumerate() {
        *z = b[c]
            + w[c * row.len()..(c + 1) * row.len()]
                .iter()
                .zip(row)
                .map(|(w, v)| w * v)
                .sum::<f32>();
    }
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let total: f32 = z.iter().map(|&v| (v - max).exp()).sum();
    z.map(|v| (v - max).exp() / total)
}
