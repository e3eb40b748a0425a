//! Safe strided matrix views and single-precision GEMM through `matrixmultiply`.
//!
//! A [`Mat`] / [`MatMut`] is a slice plus `rows × cols` and a row stride `rs` and column stride
//! `cs` in elements (row-major: `rs = cols, cs = 1`; its transpose: `rs = 1, cs = cols`). The
//! constructors check that every element the view can address lies inside the slice, so the
//! one `unsafe` call into `matrixmultiply::sgemm` cannot read or write out of bounds.

/// A read-only strided matrix view.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// A mutable strided matrix view. Distinct elements must not alias: the constructor checks
/// `rs ≥ cols · cs` or `cs ≥ rows · rs` (rows or columns laid out without overlap).
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// The number of elements a `rows × cols` view with strides `rs, cs` spans, or `None` if it
/// overflows. An empty view spans nothing.
fn span(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1)
        .checked_mul(rs)?
        .checked_add((cols - 1).checked_mul(cs)?)?
        .checked_add(1)
}

#[cold]
#[inline(never)]
#[track_caller]
fn view_error(what: &str, rows: usize, cols: usize, rs: usize, cs: usize, len: usize) -> ! {
    panic!("{what}: a {rows}×{cols} view with strides ({rs}, {cs}) does not fit a slice of {len}")
}

impl<'a> Mat<'a> {
    /// A strided view of `data`.
    ///
    /// # Panics
    /// If the view addresses an element past the end of `data`, or a stride exceeds `isize`.
    #[track_caller]
    pub fn new(data: &'a [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        match span(rows, cols, rs, cs) {
            Some(n)
                if n <= data.len() && rs <= isize::MAX as usize && cs <= isize::MAX as usize => {}
            _ => view_error("Mat::new", rows, cols, rs, cs, data.len()),
        }
        Mat {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }

    /// A row-major `rows × cols` view (`rs = cols, cs = 1`).
    #[track_caller]
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols, 1)
    }

    /// The transpose, as a view of the same memory.
    pub fn t(self) -> Self {
        Mat {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
}

impl<'a> MatMut<'a> {
    /// A strided mutable view of `data`.
    ///
    /// # Panics
    /// If the view addresses an element past the end of `data`, a stride exceeds `isize`, or
    /// two distinct elements would share memory.
    #[track_caller]
    pub fn new(data: &'a mut [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        let fits = matches!(span(rows, cols, rs, cs), Some(n) if n <= data.len())
            && rs <= isize::MAX as usize
            && cs <= isize::MAX as usize;
        let disjoint = rows <= 1 && (cols <= 1 || cs >= 1)
            || cols <= 1 && rs >= 1
            || (cs >= 1 && rs >= cols.saturating_mul(cs))
            || (rs >= 1 && cs >= rows.saturating_mul(rs));
        if !fits || !disjoint {
            view_error("MatMut::new", rows, cols, rs, cs, data.len());
        }
        MatMut {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }

    /// A row-major `rows × cols` view (`rs = cols, cs = 1`).
    #[track_caller]
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols, 1)
    }
}

/// `C ← α · A · B + β · C` in f32.
///
/// When `beta == 0`, `C` is not read (it may hold NaN). The computation of each element of C
/// depends only on its row of A and column of B (not on how many rows the call holds), so
/// splitting a product into row blocks gives bit-identical results.
///
/// # Panics
/// If the shapes do not agree: `A` is `m × k`, `B` is `k × n`, `C` is `m × n`.
#[track_caller]
pub fn gemm(alpha: f32, a: Mat<'_>, b: Mat<'_>, beta: f32, c: MatMut<'_>) {
    assert!(
        a.cols == b.rows && a.rows == c.rows && b.cols == c.cols,
        "gemm shapes: A {}×{}, B {}×{}, C {}×{}",
        a.rows,
        a.cols,
        b.rows,
        b.cols,
        c.rows,
        c.cols
    );
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the constructors checked that every element of each view (indices
    // i·rs + j·cs for i < rows, j < cols) lies inside its slice, and that the strides fit
    // isize; the shapes agree (asserted above), so sgemm reads A[m×k], B[k×n] and writes
    // C[m×n] within those slices. C is borrowed mutably and its elements do not overlap (checked
    // by MatMut::new), and A and B are shared borrows, so C aliases neither.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.data.as_mut_ptr(),
            c.rs as isize,
            c.cs as isize,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: Mat<'_>, b: Mat<'_>) -> Vec<f64> {
        let mut out = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                for p in 0..a.cols {
                    out[i * b.cols + j] +=
                        a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64;
                }
            }
        }
        out
    }

    #[test]
    fn gemm_matches_naive_for_transposes_and_odd_sizes() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 5, 7),
            (17, 33, 9),
            (64, 784, 13),
            (0, 4, 3),
            (4, 0, 3),
        ] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 11) as f32) - 5.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 13) as f32) - 6.0).collect();
            // B stored transposed (n × k row-major), as W is for v → h.
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            let want = naive(Mat::row_major(&a, m, k), Mat::row_major(&b, k, n));
            let mut c = vec![f32::NAN; m * n];
            gemm(
                1.0,
                Mat::row_major(&a, m, k),
                Mat::row_major(&bt, n, k).t(),
                0.0,
                MatMut::row_major(&mut c, m, n),
            );
            // Small integers: exact.
            assert!(
                c.iter().zip(&want).all(|(&x, &y)| x as f64 == y),
                "{m}×{k}×{n}"
            );
            let mut c2 = vec![1.0; m * n];
            gemm(
                2.0,
                Mat::row_major(&a, m, k),
                Mat::row_major(&b, k, n),
                1.0,
                MatMut::row_major(&mut c2, m, n),
            );
            assert!(
                c2.iter()
                    .zip(&want)
                    .all(|(&x, &y)| x as f64 == 2.0 * y + 1.0)
            );
        }
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn view_past_the_end_panics() {
        let d = [0.0f32; 5];
        let _ = Mat::row_major(&d, 2, 3);
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn overlapping_mut_view_panics() {
        let mut d = [0.0f32; 6];
        let _ = MatMut::new(&mut d, 2, 3, 1, 1);
    }
}
