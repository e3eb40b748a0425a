//! The figures of a training run folder, and generation from noise shared with `rbm sample`.

use std::path::Path;

use rbm::experiments::generation::{
    WIDE_PATCH, dense_patch, noise_starts, snapshot_grid, snapshots,
};
use rbm::figures::grid::{GridLayout, make_grid, normalize_each};
use rbm::figures::plots::loss_svg;
use rbm::figures::png::write_png;
use rbm::rng::tags;
use rbm::train::EpochStats;
use rbm::{Error, Rbm, StreamKey};

/// The keys of the starting states and of the chains of a generation with `seed`.
pub fn sample_keys(seed: u64) -> (StreamKey, StreamKey) {
    let key = StreamKey::new(seed).derive(tags::SAMPLE);
    (key.derive(1), key.derive(2))
}

/// The notebook's generation from noise: `chains` chains (half from the 24 × 24 patch of
/// density 0.1, half from an 18 × 18 patch of `density`), one labelled row per entry of
/// `steps`, written to `path` as a PNG.
pub fn write_noise_samples(
    path: &Path,
    model: &Rbm,
    (height, width): (usize, usize),
    chains: usize,
    density: f32,
    steps: &[usize],
    seed: u64,
) -> rbm::Result<()> {
    let (start_key, chain_key) = sample_keys(seed);
    let start = noise_starts(
        height,
        width,
        chains,
        WIDE_PATCH,
        dense_patch(density),
        start_key,
    )?;
    let snaps = snapshots(model, &start, steps, None, chain_key)?;
    write_png(path, &snapshot_grid(&snaps, steps, height, width)?)
}

/// Checks, before a run trains, that its samples figure can be drawn for images of `shape`
/// (the noise patches must fit in an image): the same starting states, for one chain of
/// each patch.
///
/// # Errors
/// Those of [`noise_starts`] ([`Error::Shape`] for an image smaller than a patch).
pub fn check_run_figures((height, width): (usize, usize), density: f32) -> rbm::Result<()> {
    let (start_key, _) = sample_keys(0);
    noise_starts(
        height,
        width,
        2,
        WIDE_PATCH,
        dense_patch(density),
        start_key,
    )
    .map(drop)
}

/// The density of the notebook's 18 × 18 noise patch: 0.4 for Fashion-MNIST, 0.3 otherwise.
pub fn default_density(fashion: bool) -> f32 {
    if fashion { 0.4 } else { 0.3 }
}

/// What [`write_run_figures`] draws from.
pub struct RunFigures<'a> {
    /// The trained model.
    pub model: &'a Rbm,
    /// The last batch, `B × V`.
    pub inputs: &'a [f32],
    /// Its reconstruction `p(v | h)` from the last Gibbs step, `B × V`.
    pub reconstructions: &'a [f32],
    /// Epoch statistics.
    pub history: &'a [EpochStats],
    /// `(height, width)` of an image.
    pub shape: (usize, usize),
    /// Title of the loss plot.
    pub title: &'a str,
    /// Snapshot steps of the samples.
    pub sample_steps: &'a [usize],
    /// Density of the second noise patch.
    pub density: f32,
    /// The run's seed.
    pub seed: u64,
}

/// The figure files of a run folder, in the order written.
pub const RUN_FIGURES: [&str; 5] = [
    "loss.svg",
    "inputs.png",
    "reconstructions.png",
    "filters.png",
    "samples.png",
];

/// Writes [`RUN_FIGURES`] into `out`.
pub fn write_run_figures(out: &Path, f: &RunFigures<'_>) -> rbm::Result<()> {
    let (h, w) = f.shape;
    let svg = loss_svg(f.history, f.title)?;
    rbm::atomic::write_atomic(&out.join("loss.svg"), svg.as_bytes())?;
    let layout = GridLayout::default();
    write_png(&out.join("inputs.png"), &make_grid(f.inputs, h, w, layout)?)?;
    write_png(
        &out.join("reconstructions.png"),
        &make_grid(f.reconstructions, h, w, layout)?,
    )?;
    let nh = f.model.n_hidden();
    let filters = normalize_each(f.model.weights(), h * w)?;
    let per_row = (1..=nh).find(|c| c * c >= nh).unwrap_or(1);
    let filter_layout = GridLayout { per_row, ..layout };
    write_png(
        &out.join("filters.png"),
        &make_grid(&filters, h, w, filter_layout)?,
    )?;
    write_noise_samples(
        &out.join("samples.png"),
        f.model,
        f.shape,
        8,
        f.density,
        f.sample_steps,
        f.seed,
    )
}

/// `(height, width)` of a square image of `n` pixels.
pub fn square_shape(n: usize) -> rbm::Result<(usize, usize)> {
    (1..=n)
        .take_while(|s| s * s <= n)
        .find(|s| s * s == n)
        .map(|s| (s, s))
        .ok_or_else(|| Error::config("visible units", "a square number (a square image)", n))
}
