//! Generation from noise, as the reference notebook does it: chains started from sparse
//! random patches in the middle of a blank image, and snapshots of `p(v | h)` after a growing
//! number of Gibbs steps.

use rbm_kernels::StreamKey;
use rbm_kernels::rng::bernoulli;

use crate::error::{Error, Result};
use crate::figures::font::label_rows;
use crate::figures::grid::{GreyImage, GridLayout, make_grid};
use crate::gibbs::Gibbs;
use crate::model::Rbm;

/// A square of random pixels centred in a blank image.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Patch {
    /// Side of the square, in pixels.
    pub side: usize,
    /// Probability that a pixel of the square is on.
    pub density: f32,
}

/// The notebook's first patch: 24 × 24 of density 0.1.
pub const WIDE_PATCH: Patch = Patch {
    side: 24,
    density: 0.1,
};

/// The notebook's second patch: 18 × 18 of density `density` (0.3 for MNIST, 0.4 for
/// Fashion-MNIST).
pub fn dense_patch(density: f32) -> Patch {
    Patch { side: 18, density }
}

/// The notebook's snapshot schedule for CD-`k`: after 1, `k`, `2k`, 100, 1000 and 10000
/// steps, sorted, repeats removed.
pub fn snapshot_steps(k: usize) -> Vec<usize> {
    let mut s = vec![1, k, 2 * k, 100, 1000, 10_000];
    s.sort_unstable();
    s.dedup();
    s
}

/// Writes into `out` (`height × width`, row-major) a blank image with `patch` centred in it
/// (offset `⌊(height − side) / 2⌋`, `⌊(width − side) / 2⌋`): pixel `i` of the image is on
/// with probability `patch.density` (draw `i` of `key`) inside the square, off outside.
///
/// # Errors
/// [`Error::Shape`] if `out` does not hold `height × width` values or the patch does not fit.
pub fn patch_start(
    height: usize,
    width: usize,
    patch: Patch,
    key: StreamKey,
    out: &mut [f32],
) -> Result<()> {
    if out.len() != height * width || patch.side > height || patch.side > width {
        return Err(Error::shape(
            "noise patch",
            format!(
                "a {s} × {s} patch within a {height} × {width} image of {} values",
                height * width,
                s = patch.side
            ),
            format!("{} values", out.len()),
        ));
    }
    let (y0, x0) = ((height - patch.side) / 2, (width - patch.side) / 2);
    for (i, v) in out.iter_mut().enumerate() {
        let (y, x) = (i / width, i % width);
        let inside = (y0..y0 + patch.side).contains(&y) && (x0..x0 + patch.side).contains(&x);
        *v = if inside {
            bernoulli(patch.density, key.draw(i as u64))
        } else {
            0.0
        };
    }
    Ok(())
}

/// Starting states of `chains` chains (`chains × height × width`): the first half from
/// `first`, the rest from `second`; chain `r` draws from `key.derive(r)`.
///
/// # Errors
/// [`Error::Shape`] if a patch does not fit; [`Error::Config`] if `chains` is 0.
pub fn noise_starts(
    height: usize,
    width: usize,
    chains: usize,
    first: Patch,
    second: Patch,
    key: StreamKey,
) -> Result<Vec<f32>> {
    if chains == 0 {
        return Err(Error::config("chains", "at least 1", 0));
    }
    let n = height * width;
    let mut out = vec![0.0; chains * n];
    for (r, row) in out.chunks_exact_mut(n).enumerate() {
        let patch = if r < chains.div_ceil(2) {
            first
        } else {
            second
        };
        patch_start(height, width, patch, key.derive(r as u64), row)?;
    }
    Ok(out)
}

/// Runs Gibbs chains from `start` (`B × V`), with the visible units where `clamp` is true held
/// at their starting values, and returns a copy of `p(v | h)` after each number of steps in
/// `steps` (ascending; a 0 gives the starting states). Draws come from `key` as in
/// [`Gibbs`].
///
/// # Errors
/// [`Error::Shape`] if `start` or `clamp` do not fit the model; [`Error::Config`] if `steps`
/// is empty or not ascending.
pub fn snapshots(
    model: &Rbm,
    start: &[f32],
    steps: &[usize],
    clamp: Option<&[bool]>,
    key: StreamKey,
) -> Result<Vec<Vec<f32>>> {
    if steps.is_empty() || steps.windows(2).any(|w| w[0] > w[1]) {
        return Err(Error::config(
            "snapshot steps",
            "a non-empty ascending list",
            format!("{steps:?}"),
        ));
    }
    let mut chains = Gibbs::new(model, start, key)?;
    if let Some(mask) = clamp {
        chains = chains.with_clamp(mask)?;
    }
    let mut out = Vec::with_capacity(steps.len());
    let mut done = 0;
    for &s in steps {
        chains.run(model, s - done)?;
        done = s;
        out.push(chains.visible_probs().to_vec());
    }
    Ok(out)
}

/// The figure of [`snapshots`]: one grid row per snapshot (its `B` chains side by side, each
/// a `height × width` tile, laid out as [`make_grid`] does with `B` per row), each row labelled
/// on the left with its step count from `steps` in a 3 × 5 digit font at scale 2.
///
/// # Errors
/// [`Error::Shape`] if the snapshots are empty, differ in length, are not whole images, or
/// `steps` does not have one count per snapshot.
pub fn snapshot_grid(
    snapshots: &[Vec<f32>],
    steps: &[usize],
    height: usize,
    width: usize,
) -> Result<GreyImage> {
    let first = snapshots.first().map_or(0, Vec::len);
    if snapshots.len() != steps.len() || snapshots.iter().any(|s| s.len() != first) {
        return Err(Error::shape(
            "snapshots",
            format!("{} of equal size (one per step count)", steps.len()),
            snapshots.len(),
        ));
    }
    let chains = first / (height * width).max(1);
    let layout = GridLayout {
        per_row: chains.max(1),
        ..GridLayout::default()
    };
    let grid = make_grid(&snapshots.concat(), height, width, layout)?;
    let labels: Vec<String> = steps.iter().map(usize::to_string).collect();
    Ok(label_rows(&grid, height, layout.padding, &labels, 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_of_the_notebook() {
        assert_eq!(snapshot_steps(3), vec![1, 3, 6, 100, 1000, 10_000]);
        assert_eq!(snapshot_steps(1), vec![1, 2, 100, 1000, 10_000]);
    }

    #[test]
    fn patches_are_centred_and_dense_as_asked() {
        let mut img = vec![0.0; 28 * 28];
        let p = Patch {
            side: 18,
            density: 1.0,
        };
        patch_start(28, 28, p, StreamKey::new(1), &mut img).unwrap();
        assert_eq!(img.iter().sum::<f32>(), 18.0 * 18.0);
        assert_eq!(img[5 * 28 + 5], 1.0);
        assert_eq!(img[5 * 28 + 4], 0.0);
        assert_eq!(img[22 * 28 + 22], 1.0);
        assert_eq!(img[23 * 28 + 22], 0.0);
        let starts = noise_starts(28, 28, 8, WIDE_PATCH, dense_patch(0.3), StreamKey::new(2));
        let starts = starts.unwrap();
        let on: Vec<f32> = starts.chunks(784).map(|c| c.iter().sum()).collect();
        let wide: f32 = on[..4].iter().sum::<f32>() / (4.0 * 576.0);
        let dense: f32 = on[4..].iter().sum::<f32>() / (4.0 * 324.0);
        assert!(
            (wide - 0.1).abs() < 0.03 && (dense - 0.3).abs() < 0.05,
            "{wide} {dense}"
        );
    }
}
