//! Train, transform, sample, score and save an RBM on rows held in memory: the bars-and-stripes
//! patterns of a 4 × 4 grid (30 images of 16 pixels), no file and no label.
//!
//! `cargo run --release --example bars_and_stripes [EPOCHS]`
//!
//! Prints the exact log-likelihood of the patterns (the best possible is −log 30 = −3.40 nats),
//! how many of 1000 samples from noise are valid patterns, and where the model was saved.

use rbm::prelude::*;

fn main() -> rbm::Result<()> {
    let epochs = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let data: Vec<f32> = rbm::datasets::bars_and_stripes(4);
    let rows = Rows::new(&data, 16)?;
    let config = Config::default()
        .hidden(16)
        .epochs(epochs)
        .batch_size(10)
        .k(5);
    let mut model = Estimator::new(config.learning_rate(0.1).momentum(0.5).seed(3));
    model.fit(&rows)?;
    let features = model.transform(&rows)?; // p(h = 1 | v), 30 × 16
    let samples = model.sample(1000, 100)?; // 1000 chains from noise, 100 Gibbs steps each
    let ll = model.log_likelihood(&rows, LogLikelihood::Exact)?;
    let path = std::env::temp_dir().join("bars-and-stripes.safetensors");
    model.save(&path)?;

    let valid = samples
        .visible()
        .chunks(16)
        .filter(|s| is_pattern(s, &data))
        .count();
    println!(
        "features: {} values; last epoch's loss {:.3}",
        features.len(),
        model.history()[epochs - 1].loss
    );
    println!(
        "exact log-likelihood {:.3} nats per pattern (best possible {:.3})",
        ll.estimate,
        -(30f64).ln()
    );
    println!("{valid} of 1000 samples from noise are bars or stripes");
    println!("saved to {}", path.display());
    Ok(())
}

/// Whether `s` is one of the rows of `data`.
fn is_pattern(s: &[f32], data: &[f32]) -> bool {
    data.chunks(s.len()).any(|p| p == s)
}
