//! Evaluation in nats: fit a small RBM (784–20) to MNIST, then score 500 test images three
//! ways — exactly (its 2^20 hidden states enumerated), by AIS (an estimate that tends high),
//! and by RAISE (one that tends low) — and time each.
//!
//! `cargo run --release --example evaluate [TRAIN_ROWS] [EPOCHS] [TEMPERATURES]`
//! (defaults 20000, 5, 14500). MNIST is found in `$RBM_DATA/mnist`, `./data/mnist` or
//! `/usr/share/datasets/mnist`.

use std::time::Instant;

use rbm::data::{Split, find_dataset, open_split};
use rbm::prelude::*;

fn main() -> rbm::Result<()> {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let (n, epochs, temperatures) = (arg(1, 20_000), arg(2, 5), arg(3, 14_500));
    let dir = find_dataset("mnist")?;
    let (train, test) = (
        open_split(&dir, Split::Train)?,
        open_split(&dir, Split::Test)?,
    );
    let n = n.min(train.len());
    let rows = Rows::from_bytes(&train.pixels()[..n * 784], 784)?;
    let test_rows = Rows::from_bytes(&test.pixels()[..500.min(test.len()) * 784], 784)?;

    let config = Config::default()
        .hidden(20)
        .epochs(epochs)
        .learning_rate(0.05)
        .momentum(0.5);
    let mut model = Estimator::new(config.seed(2));
    model.fit(&rows)?;

    for method in [
        LogLikelihood::Exact,
        LogLikelihood::Ais {
            runs: 100,
            temperatures,
        },
        LogLikelihood::Raise {
            runs_per_row: 1,
            temperatures: temperatures.min(1000),
        },
    ] {
        let t = Instant::now();
        let ll = model.log_likelihood(&test_rows, method)?;
        println!(
            "{:<60} {:>9.3} nats [{:.3}, {:.3}]  ({:.2} s)",
            format!("{method:?}"),
            ll.estimate,
            ll.lower,
            ll.upper,
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
