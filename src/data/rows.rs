//! Rows held in memory, and [`RowSource`]: what training, evaluation, features and sampling
//! read rows from — an IDX [`Dataset`] (zero-copy, as mapped) or [`Rows`] of your own.

use rbm_kernels::StreamKey;

use super::batch::{Binarize, RowRef, fill_batch, fill_rows};
use super::dataset::Dataset;
use crate::error::{DatasetError, Error, Result};

/// Row-major rows held in memory, without labels: `n_rows × n_cols` values, either `f32` in
/// `[0, 1]` (binary 0/1 or grey levels, used as the probabilities of the visible units) or
/// `u8` grey levels `0..=255` (read as `x / 255`, as IDX images are). Borrowed, never copied.
///
/// Every value is checked when the rows are made: NaN, an infinity or a value outside
/// `[0, 1]` is an [`Error::Value`] naming its row and column (pixels `0..=255` that were not
/// divided by 255 are caught here, before any training step).
///
/// ```
/// use rbm::data::{RowSource, Rows};
/// let data = vec![0.0, 1.0, 0.5, /* row 1 */ 1.0, 1.0, 0.0];
/// let rows = Rows::new(&data, 3)?;
/// assert_eq!((rows.n_rows(), rows.row_len()), (2, 3));
///
/// let err = Rows::new(&[0.0, 255.0, 1.0], 3).unwrap_err();
/// assert!(matches!(err, rbm::Error::Value { row: 0, column: 1, .. }));
///
/// let pixels: Vec<u8> = vec![0, 128, 255, 64];
/// let grey = Rows::from_bytes(&pixels, 2)?; // 2 rows of 2 pixels
/// assert_eq!(grey.n_rows(), 2);
/// # Ok::<(), rbm::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Rows<'a> {
    values: Values<'a>,
    n_cols: usize,
    n_rows: usize,
    /// Whether the values were checked to be in `[0, 1]` ([`Rows::new`], [`Rows::from_bytes`])
    /// rather than only finite ([`Rows::finite`]).
    unit_interval: bool,
}

#[derive(Clone, Copy, Debug)]
enum Values<'a> {
    F32(&'a [f32]),
    U8(&'a [u8]),
}

impl<'a> Rows<'a> {
    /// Rows of `n_cols` values in `[0, 1]` from `values` (`n_rows × n_cols`, row-major).
    ///
    /// # Errors
    /// [`Error::Shape`] if `n_cols` is 0 or `values` is not a whole number of rows;
    /// [`Error::Value`] for the first value (in row-major order) that is NaN, infinite or
    /// outside `[0, 1]`.
    pub fn new(values: &'a [f32], n_cols: usize) -> Result<Self> {
        Self::checked(values, n_cols, true)
    }

    /// Rows of `n_cols` finite values, used as given even outside `[0, 1]`: the opt-in for
    /// callers that follow scikit-learn's `BernoulliRBM`, which takes any finite real input.
    /// Training ([`crate::Estimator::fit`], [`crate::train::train_dataset`]) and the
    /// estimator's passes then skip their `[0, 1]` check for these rows (see
    /// [`RowSource::values_in_unit_interval`]); the model, the update rule and every
    /// result for values in `[0, 1]` are the same as with [`Rows::new`].
    ///
    /// # Errors
    /// [`Error::Shape`] as for [`Rows::new`]; [`Error::Value`] for the first value (in
    /// row-major order) that is NaN or infinite.
    ///
    /// ```
    /// use rbm::data::{RowSource, Rows};
    /// let rows = Rows::finite(&[-1.0, 0.5, 5.0, 1.0], 2)?;
    /// assert!(!rows.values_in_unit_interval());
    /// assert!(Rows::finite(&[0.0, f32::NAN], 2).is_err());
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn finite(values: &'a [f32], n_cols: usize) -> Result<Self> {
        Self::checked(values, n_cols, false)
    }

    /// Rows of `values`, every value checked to be in `[0, 1]` (`unit_interval`) or finite.
    fn checked(values: &'a [f32], n_cols: usize, unit_interval: bool) -> Result<Self> {
        let n_rows = whole_rows(values.len(), n_cols)?;
        let bad = if unit_interval {
            first_outside_unit_interval(values)
        } else {
            values.iter().position(|v| !v.is_finite())
        };
        if let Some(k) = bad {
            return Err(Error::Value {
                row: k / n_cols,
                column: k % n_cols,
                value: values[k],
            });
        }
        Ok(Rows {
            values: Values::F32(values),
            n_cols,
            n_rows,
            unit_interval,
        })
    }

    /// Rows of `n_cols` grey levels `0..=255` from `bytes` (`n_rows × n_cols`, row-major),
    /// read as `x / 255`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `n_cols` is 0 or `bytes` is not a whole number of rows.
    pub fn from_bytes(bytes: &'a [u8], n_cols: usize) -> Result<Self> {
        let n_rows = whole_rows(bytes.len(), n_cols)?;
        Ok(Rows {
            values: Values::U8(bytes),
            n_cols,
            n_rows,
            unit_interval: true,
        })
    }

    /// Row `i` as a [`RowRef`].
    fn row(&self, i: usize) -> RowRef<'a> {
        let span = i * self.n_cols..(i + 1) * self.n_cols;
        match self.values {
            Values::F32(v) => RowRef::Values(&v[span]),
            Values::U8(b) => RowRef::Bytes(&b[span]),
        }
    }
}

/// The number of rows of `n_cols` values in `len` values: at most `u32::MAX` (rows are
/// indexed by `u32` in batches).
fn whole_rows(len: usize, n_cols: usize) -> Result<usize> {
    if n_cols == 0 || !len.is_multiple_of(n_cols) {
        return Err(Error::shape(
            "rows in memory",
            format!("a whole number of rows of {n_cols} values (n_cols ≥ 1)"),
            format!("{len} values"),
        ));
    }
    let n_rows = len / n_cols;
    if n_rows > u32::MAX as usize {
        return Err(Error::shape(
            "rows in memory",
            "at most 2^32 − 1 rows",
            n_rows,
        ));
    }
    Ok(n_rows)
}

/// The index of the first value of `x` that is NaN or outside `[0, 1]`, if any. Decided over
/// blocks by an order-free test that vectorizes (a NaN fails both comparisons), then located.
pub(crate) fn first_outside_unit_interval(x: &[f32]) -> Option<usize> {
    const BLOCK: usize = 256;
    let bad = |b: &[f32]| !b.iter().fold(true, |ok, &v| ok & (0.0..=1.0).contains(&v));
    let block = x.chunks(BLOCK).position(bad)?;
    let first = block * BLOCK;
    x[first..]
        .iter()
        .position(|v| !(0.0..=1.0).contains(v))
        .map(|i| first + i)
}

/// Rows that the high-level API ([`crate::Estimator`]) and the epoch loop
/// ([`crate::train::train_dataset`]) read: an IDX [`Dataset`] or [`Rows`] in memory.
///
/// Every value [`Rows`] and [`Dataset`] hand out is in `[0, 1]` (bytes are divided by 255).
/// A source of one's own may implement the trait too; its values are checked as they are read
/// (by the training step and by [`Estimator`](crate::Estimator)'s passes), an out-of-range
/// value being an [`Error::Value`].
///
/// ```
/// use rbm::StreamKey;
/// use rbm::data::{Binarize, RowSource, Rows};
/// let pixels = [0u8, 255, 128, 64, /* row 1 */ 255, 255, 0, 0];
/// let rows = Rows::from_bytes(&pixels, 4)?;
/// let mut out = [0.0f32; 8];
/// rows.fill(&[1, 0], Binarize::Threshold, StreamKey::new(0), &mut out)?;
/// assert_eq!(out, [1.0, 1.0, 0.0, 0.0, /* row 0 */ 0.0, 1.0, 1.0, 0.0]);
/// assert_eq!(rows.column_means()[1], 1.0);
/// # Ok::<(), rbm::Error>(())
/// ```
pub trait RowSource: Sync {
    /// The number of rows.
    fn n_rows(&self) -> usize;

    /// Values per row (the visible units of a model that reads them).
    fn row_len(&self) -> usize;

    /// Writes rows `indices` into `out` (`indices.len() × row_len()`), turned into visible
    /// values as `binarize` says; row `r` of `out` draws from `key.derive(r)` (see
    /// [`fill_batch`] for the draws, which are the same for a byte `x` and a value `x / 255`).
    ///
    /// # Errors
    /// [`Error::Shape`] when `out` does not have that length or an index is out of range
    /// (`out` is then left untouched).
    fn fill(
        &self,
        indices: &[u32],
        binarize: Binarize,
        key: StreamKey,
        out: &mut [f32],
    ) -> Result<()>;

    /// [`Error::Dataset`] (for a file) or [`Error::Shape`] unless rows have `expected` values.
    ///
    /// # Errors
    /// As said.
    fn check_row_len(&self, expected: usize) -> Result<()> {
        if self.row_len() == expected {
            return Ok(());
        }
        Err(Error::shape(
            "row length",
            format!("{expected} values (the model's visible units)"),
            self.row_len(),
        ))
    }

    /// Whether the values this source hands out are to be in `[0, 1]` (the default: training
    /// and the estimator's passes check them and refuse others with an [`Error::Value`]), or
    /// are any finite values used as given ([`Rows::finite`]).
    fn values_in_unit_interval(&self) -> bool {
        true
    }

    /// The mean of each column (`row_len()` values in `[0, 1]`; zeros without rows): the
    /// marginals that base-rate models and visible-bias initialisations start from.
    fn column_means(&self) -> Vec<f64> {
        let n = self.row_len();
        let mut sums = vec![0.0f64; n];
        let mut buf = vec![0.0f32; n];
        for i in 0..self.n_rows() {
            // The grey values, so no key is drawn from; the index is in range.
            if self
                .fill(&[i as u32], Binarize::None, StreamKey::new(0), &mut buf)
                .is_ok()
            {
                sums.iter_mut()
                    .zip(&buf)
                    .for_each(|(s, &x)| *s += f64::from(x));
            }
        }
        let n_rows = self.n_rows().max(1) as f64;
        sums.into_iter().map(|s| s / n_rows).collect()
    }
}

impl RowSource for Rows<'_> {
    fn n_rows(&self) -> usize {
        self.n_rows
    }

    fn row_len(&self) -> usize {
        self.n_cols
    }

    fn values_in_unit_interval(&self) -> bool {
        self.unit_interval
    }

    fn fill(
        &self,
        indices: &[u32],
        binarize: Binarize,
        key: StreamKey,
        out: &mut [f32],
    ) -> Result<()> {
        fill_rows(self.n_rows, self.n_cols, indices, binarize, key, out, |i| {
            self.row(i)
        })
    }
}

impl RowSource for Dataset {
    fn n_rows(&self) -> usize {
        self.len()
    }

    fn row_len(&self) -> usize {
        Dataset::row_len(self)
    }

    fn fill(
        &self,
        indices: &[u32],
        binarize: Binarize,
        key: StreamKey,
        out: &mut [f32],
    ) -> Result<()> {
        fill_batch(self, indices, binarize, key, out)
    }

    fn check_row_len(&self, expected: usize) -> Result<()> {
        if Dataset::row_len(self) == expected {
            return Ok(());
        }
        Err(Error::Dataset {
            path: self.images_file().path().to_path_buf(),
            kind: DatasetError::RowSize {
                expected,
                found: Dataset::row_len(self),
            },
        })
    }

    fn column_means(&self) -> Vec<f64> {
        super::dataset::mean_pixels(self)
    }
}

#[cfg(test)]
mod tests {
    use super::first_outside_unit_interval;

    /// The oracle: the first position, in order, of a value that is not in `[0, 1]`.
    fn first_bad(x: &[f32]) -> Option<usize> {
        x.iter().position(|v| !(0.0..=1.0).contains(v))
    }

    #[test]
    fn the_blocked_search_finds_what_the_plain_one_finds() {
        let bad = [
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -1e-30,
            1.0 + f32::EPSILON,
            255.0,
        ];
        for len in [0, 1, 255, 256, 257, 511, 512, 1000] {
            let clean: Vec<f32> = (0..len)
                .map(|i| [0.0, -0.0, 1.0, 0.5, 1e-38][i % 5])
                .collect();
            assert_eq!(first_outside_unit_interval(&clean), None, "len {len}");
            for at in [0, 1, 254, 255, 256, 257, 511, 999]
                .into_iter()
                .filter(|&a| a < len)
            {
                for &v in &bad {
                    let mut x = clean.clone();
                    x[at] = v;
                    // A second bad value later must not be the one reported.
                    if at + 300 < len {
                        x[at + 300] = f32::NAN;
                    }
                    assert_eq!(
                        first_outside_unit_interval(&x),
                        first_bad(&x),
                        "len {len} at {at} {v}"
                    );
                    assert_eq!(first_outside_unit_interval(&x), Some(at));
                }
            }
        }
    }
}
