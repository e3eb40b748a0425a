//! Sampling and inpainting: fit an RBM to the bars and stripes of a 4 × 4 grid, draw samples
//! from noise, then hold the top row of each pattern and let the model fill in the other 12
//! pixels (they start blank). Prints a few of each as text and how many are valid.
//!
//! `cargo run --release --example sample_and_inpaint [EPOCHS]`

use rbm::prelude::*;

const SIDE: usize = 4;

fn main() -> rbm::Result<()> {
    let epochs = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let data = rbm::datasets::bars_and_stripes(SIDE);
    let rows = Rows::new(&data, SIDE * SIDE)?;
    let config = Config::default()
        .hidden(16)
        .epochs(epochs)
        .batch_size(10)
        .k(5);
    let mut model = Estimator::new(config.learning_rate(0.1).momentum(0.5).seed(3));
    model.fit(&rows)?;

    let samples = model.sample(8, 1000)?;
    println!("8 samples from noise after 1000 Gibbs steps:");
    show(samples.visible());

    // Inpainting: the top row clamped, the rest blanked, 200 steps.
    let clamp: Vec<bool> = (0..SIDE * SIDE).map(|i| i < SIDE).collect();
    let mut blanked = data.clone();
    for row in blanked.chunks_mut(SIDE * SIDE) {
        row[SIDE..].fill(0.0);
    }
    let filled = model.inpaint(&Rows::new(&blanked, SIDE * SIDE)?, &clamp, 200)?;
    println!("the first 8 patterns with only their top row given, filled in:");
    show(&filled.visible()[..8 * SIDE * SIDE]);
    let valid = filled
        .visible()
        .chunks(SIDE * SIDE)
        .filter(|s| data.chunks(SIDE * SIDE).any(|p| p == *s))
        .count();
    let n = data.len() / (SIDE * SIDE);
    println!("{valid} of {n} completions are bars or stripes");
    Ok(())
}

/// Prints images of `SIDE × SIDE` pixels side by side, `#` for on and `.` for off.
fn show(images: &[f32]) {
    for y in 0..SIDE {
        let line: Vec<String> = images
            .chunks(SIDE * SIDE)
            .map(|img| {
                img[y * SIDE..(y + 1) * SIDE]
                    .iter()
                    .map(|&v| if v > 0.5 { '#' } else { '.' })
                    .collect()
            })
            .collect();
        println!("  {}", line.join("  "));
    }
}
