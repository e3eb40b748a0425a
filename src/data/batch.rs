//! Minibatches: the order of the rows in each epoch, and filling caller-owned `f32` buffers.
//!
//! [`Batches`] holds one permutation of `0..n_rows`, allocated once and recomputed in place by
//! [`Batches::epoch`]; [`fill_batch`] writes the selected rows, binarized, into a
//! `batch × row_len` buffer. Neither allocates per batch. Every random choice is a function of
//! a [`StreamKey`], so the same seed gives the same batches on any number of threads.

use rayon::prelude::*;
use rbm_kernels::rng::StreamKey;

use super::dataset::Dataset;
use crate::error::{Error, Result};

/// Tag mixed into the seed's key for the shuffling stream:
/// `StreamKey::new(seed).derive(EPOCH_TAG).derive(epoch)`.
pub const EPOCH_TAG: u64 = 0x5348_5546_464c_4531; // "SHUFFLE1"

/// The order in which an epoch visits the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// `0, 1, …, n − 1` every epoch: the unshuffled loader of the reference notebook.
    Sequential,
    /// A fresh uniformly random permutation each epoch, a pure function of (seed, epoch).
    Shuffled,
}

/// How pixel values `x ∈ 0..=255` become visible units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Binarize {
    /// A fresh Bernoulli draw with probability `x / 255` (the notebook's `x.bernoulli()`).
    Stochastic,
    /// `1.0` if `x / 255 > 0.5` (that is `x ≥ 128`), else `0.0`.
    Threshold,
    /// The grey level `x / 255` as is.
    None,
}

/// The batches of one epoch over `n_rows` rows: `num_batches()` slices of `batch_size` row
/// indices (the last one shorter unless `drop_last`).
#[derive(Debug, Clone)]
pub struct Batches {
    perm: Vec<u32>,
    batch_size: usize,
    order: Order,
    seed: u64,
    drop_last: bool,
    epoch: u64,
}

impl Batches {
    /// Batches of `batch_size` rows over `0..n_rows`, visited in `order` (with `seed` for
    /// [`Order::Shuffled`]); `drop_last` drops a final batch shorter than `batch_size`. The
    /// order starts at epoch 0. Allocates the `n_rows` indices once.
    ///
    /// # Errors
    /// [`Error::Config`] when `batch_size` is 0 or `n_rows` exceeds `u32::MAX`.
    pub fn new(
        n_rows: usize,
        batch_size: usize,
        order: Order,
        seed: u64,
        drop_last: bool,
    ) -> Result<Batches> {
        if batch_size == 0 {
            return Err(Error::config("batch_size", "at least 1", 0));
        }
        let n =
            u32::try_from(n_rows).map_err(|_| Error::config("rows", "at most 2^32 - 1", n_rows))?;
        let mut batches = Batches {
            perm: (0..n).collect(),
            batch_size,
            order,
            seed,
            drop_last,
            epoch: 0,
        };
        batches.epoch(0);
        Ok(batches)
    }

    /// Sets the order for epoch `e` (in place, without allocating).
    pub fn epoch(&mut self, e: u64) {
        self.epoch = e;
        if self.order == Order::Shuffled {
            for (i, p) in self.perm.iter_mut().enumerate() {
                *p = i as u32;
            }
            let key = StreamKey::new(self.seed).derive(EPOCH_TAG).derive(e);
            shuffle(&mut self.perm, key);
        }
    }

    /// The epoch whose order is current.
    pub fn current_epoch(&self) -> u64 {
        self.epoch
    }

    /// The number of batches per epoch: `n_rows / batch_size`, rounded up unless `drop_last`.
    pub fn num_batches(&self) -> usize {
        let n = self.perm.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// The row indices of batch `b` of the current epoch: `batch_size` of them, fewer for a
    /// final partial batch.
    ///
    /// # Panics
    /// If `b >= num_batches()`.
    pub fn indices(&self, b: usize) -> &[u32] {
        assert!(b < self.num_batches(), "batch {b} out of range");
        let start = b * self.batch_size;
        let end = (start + self.batch_size).min(self.perm.len());
        &self.perm[start..end]
    }

    /// The batches of the current epoch, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u32]> + '_ {
        (0..self.num_batches()).map(|b| self.indices(b))
    }

    /// The whole order of the current epoch: a permutation of `0..n_rows`.
    pub fn permutation(&self) -> &[u32] {
        &self.perm
    }

    /// Rows per full batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The number of rows the batches are drawn from.
    pub fn n_rows(&self) -> usize {
        self.perm.len()
    }
}

/// Fisher–Yates: for `i` from the end, swap `perm[i]` with a uniform `perm[j]`, `j ≤ i`.
fn shuffle(perm: &mut [u32], key: StreamKey) {
    let mut draws = (0u64..).map(|j| key.draw(j));
    for i in (1..perm.len()).rev() {
        // `perm.len()` ≤ u32::MAX, so `i + 1` fits.
        let j = uniform_below(i as u32 + 1, &mut draws);
        perm.swap(i, j as usize);
    }
}

/// A uniform integer in `0..bound` (`bound ≥ 1`) from 32-bit draws, without bias: Lemire's
/// multiply-and-reject ("Fast random integer generation in an interval", 2019).
fn uniform_below(bound: u32, draws: &mut impl Iterator<Item = u32>) -> u32 {
    let mut next = || draws.next().unwrap_or(0);
    let mut m = u64::from(next()) * u64::from(bound);
    if (m as u32) < bound {
        let reject_below = bound.wrapping_neg() % bound;
        while (m as u32) < reject_below {
            m = u64::from(next()) * u64::from(bound);
        }
    }
    (m >> 32) as u32
}

/// Writes the rows `indices` of `ds`, binarized, into `out`: `indices.len() × ds.row_len()`
/// values, row `r` of the batch from image `indices[r]`.
///
/// With [`Binarize::Stochastic`], pixel `i` of batch row `r` is 1 when draw `i` of
/// `key.derive(r)` falls below `pixel / 255` ([`rbm_kernels::rng::bernoulli`]), the same draws as
/// `rbm_kernels::scalar::bernoulli(p, key.derive(r), 0, out_row)` on the grey levels. Derive
/// `key` from (seed, step) so that every batch gets fresh draws. Does not allocate. Large
/// batches are filled in parallel, a row per task (each row's draws are its own, so the split
/// changes nothing), and the draws come from the dispatched SIMD kernel
/// ([`rbm_kernels::bernoulli`], the same draws on every instruction set).
///
/// # Errors
/// [`Error::Shape`] when `out.len()` is not `indices.len() × ds.row_len()` or an index is
/// `≥ ds.len()`; `out` is then left untouched.
pub fn fill_batch(
    ds: &Dataset,
    indices: &[u32],
    binarize: Binarize,
    key: StreamKey,
    out: &mut [f32],
) -> Result<()> {
    let n = ds.row_len();
    fill_rows(ds.len(), n, indices, binarize, key, out, |i| {
        RowRef::Bytes(ds.row(i))
    })
}

/// One row of a source of rows: bytes (grey levels `x / 255`) or values in `[0, 1]`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RowRef<'a> {
    /// Pixels `0..=255`, read as `x / 255`.
    Bytes(&'a [u8]),
    /// Values in `[0, 1]`, as they are.
    Values(&'a [f32]),
}

/// [`fill_batch`] over any rows: `row(i)` is row `i` (`i < n_rows`) of `row_len` values.
/// Checks the lengths and indices first (leaving `out` untouched on an error); small batches
/// on this thread, large ones a row per task.
pub(crate) fn fill_rows<'a>(
    n_rows: usize,
    n: usize,
    indices: &[u32],
    binarize: Binarize,
    key: StreamKey,
    out: &mut [f32],
    row: impl Fn(usize) -> RowRef<'a> + Sync,
) -> Result<()> {
    if indices.len().checked_mul(n) != Some(out.len()) {
        return Err(Error::shape(
            "batch buffer",
            format!(
                "{} values ({} rows of {n})",
                indices.len().saturating_mul(n),
                indices.len()
            ),
            out.len(),
        ));
    }
    if let Some(&bad) = indices.iter().find(|&&i| i as usize >= n_rows) {
        return Err(Error::shape(
            "row index",
            format!("below {n_rows} (the rows)"),
            bad,
        ));
    }
    if n == 0 {
        return Ok(());
    }
    let fill = |(r, (dst, &i)): (usize, (&mut [f32], &u32))| {
        fill_row(row(i as usize), binarize, key.derive(r as u64), dst)
    };
    if out.len() < crate::compute::pass::PARALLEL_MIN_VALUES {
        // Small batches on this thread, without touching the thread pool.
        out.chunks_exact_mut(n)
            .zip(indices)
            .enumerate()
            .for_each(fill);
    } else {
        out.par_chunks_exact_mut(n)
            .zip(indices.par_iter())
            .enumerate()
            .for_each(fill);
    }
    Ok(())
}

/// Pixels per call of the Bernoulli kernel in [`fill_row`] (its probabilities on the stack).
const BERNOULLI_CHUNK: usize = 64;

/// One row of [`fill_rows`]. Values in `[0, 1]` are the probabilities of their Bernoulli
/// draws themselves; bytes are converted to grey levels a chunk at a time. Draw `i` of `key`
/// decides unit `i` either way, so bytes `x` and values `x / 255` give the same row.
fn fill_row(src: RowRef<'_>, binarize: Binarize, key: StreamKey, dst: &mut [f32]) {
    match (src, binarize) {
        (RowRef::Bytes(src), Binarize::None) => {
            dst.iter_mut().zip(src).for_each(|(d, &x)| *d = grey(x))
        }
        (RowRef::Bytes(src), Binarize::Threshold) => dst
            .iter_mut()
            .zip(src)
            .for_each(|(d, &x)| *d = if x >= 128 { 1.0 } else { 0.0 }),
        (RowRef::Bytes(src), Binarize::Stochastic) => {
            let mut p = [0.0f32; BERNOULLI_CHUNK];
            let chunks = dst
                .chunks_mut(BERNOULLI_CHUNK)
                .zip(src.chunks(BERNOULLI_CHUNK));
            for (c, (d, x)) in chunks.enumerate() {
                let p = &mut p[..d.len()];
                p.iter_mut().zip(x).for_each(|(p, &x)| *p = grey(x));
                rbm_kernels::bernoulli(p, key, (c * BERNOULLI_CHUNK) as u64, d);
            }
        }
        (RowRef::Values(src), Binarize::None) => dst.copy_from_slice(src),
        // `x ≥ 128` for bytes is `x / 255 > 0.5`.
        (RowRef::Values(src), Binarize::Threshold) => dst
            .iter_mut()
            .zip(src)
            .for_each(|(d, &x)| *d = if x > 0.5 { 1.0 } else { 0.0 }),
        (RowRef::Values(src), Binarize::Stochastic) => rbm_kernels::bernoulli(src, key, 0, dst),
    }
}

/// The grey level `x / 255` as `f32`.
#[inline]
fn grey(x: u8) -> f32 {
    f32::from(x) / 255.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_below_is_in_range_and_unbiased_for_small_bounds() {
        let key = StreamKey::new(9);
        let mut draws = (0u64..).map(|j| key.draw(j));
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            counts[uniform_below(3, &mut draws) as usize] += 1;
        }
        for c in counts {
            assert!((c as i64 - 10_000).abs() < 500, "{counts:?}");
        }
        assert_eq!(uniform_below(1, &mut draws), 0);
    }

    #[test]
    fn uniform_below_rejects_the_biased_zone() {
        // bound = 2^31 + 1: reject_below = 2^31 - 1; a draw giving a low word below it is
        // rejected and the next draw is used.
        let bound = (1u32 << 31) + 1;
        let mut draws = [0u32, u32::MAX].into_iter();
        let v = uniform_below(bound, &mut draws);
        assert_eq!(v, ((u64::from(u32::MAX) * u64::from(bound)) >> 32) as u32);
        assert!(
            draws.next().is_none(),
            "the first draw must have been rejected"
        );
    }
}
