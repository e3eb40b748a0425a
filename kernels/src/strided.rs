//! [`RowsMut`]: an exclusive view of a block of columns of a row-major matrix, which can be
//! split into narrower blocks that different threads write at the same time.
//!
//! A slice cannot express "columns `j0..j1` of every row": the rows' segments are disjoint,
//! but the memory between them belongs to other columns. `RowsMut` holds that set of segments
//! and hands them out one row at a time, so safe code can give columns `0..j` of a batch to
//! one thread and `j..n` to another (each output element of a binary product, a sigmoid or a
//! sample depends only on its column, so such a split changes no result).

use std::marker::PhantomData;

/// `rows × cols` elements at row stride `ld` of a row-major `f32` matrix, borrowed exclusively:
/// element `(r, j)` is `data[r·ld + j]` of the slice it was made from (or of a wider view it
/// was split off).
///
/// Invariant: for every `r < rows`, `ptr + r·ld .. ptr + r·ld + cols` lies inside the borrowed
/// slice, and no other live `RowsMut` or reference reaches those elements.
#[derive(Debug)]
pub struct RowsMut<'a> {
    ptr: *mut f32,
    rows: usize,
    cols: usize,
    ld: usize,
    _borrow: PhantomData<&'a mut [f32]>,
}

// SAFETY: a `RowsMut` is an exclusive borrow of its elements, like `&mut [f32]`, which is Send.
unsafe impl Send for RowsMut<'_> {}

impl<'a> RowsMut<'a> {
    /// Columns `0..cols` of the `rows` rows of `data` at row stride `ld`.
    ///
    /// # Panics
    /// If `cols > ld` (rows would overlap) or the last row's `cols` elements do not fit `data`.
    #[track_caller]
    pub fn new(data: &'a mut [f32], rows: usize, cols: usize, ld: usize) -> Self {
        // Every row's start must lie in the slice too (or one past it), even for views of no
        // columns: `row` offsets the pointer to it.
        let fits = rows == 0
            || (rows - 1)
                .checked_mul(ld)
                .and_then(|x| x.checked_add(cols))
                .is_some_and(|end| end <= data.len());
        assert!(
            cols <= ld && fits,
            "RowsMut::new: {rows} rows of {cols} at stride {ld} do not fit a slice of {}",
            data.len()
        );
        RowsMut {
            ptr: data.as_mut_ptr(),
            rows,
            cols,
            ld,
            _borrow: PhantomData,
        }
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The row stride, in elements.
    pub fn ld(&self) -> usize {
        self.ld
    }

    /// Row `r`'s `cols` elements.
    ///
    /// # Panics
    /// If `r ≥ rows`.
    #[track_caller]
    pub fn row(&mut self, r: usize) -> &mut [f32] {
        assert!(r < self.rows, "RowsMut::row: row {r} of {}", self.rows);
        if self.cols == 0 {
            return &mut [];
        }
        // SAFETY: row r's segment lies inside the borrowed slice and is reachable only
        // through this view (the invariant); `&mut self` keeps it unique for the lifetime.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(r * self.ld), self.cols) }
    }

    /// Columns `0..at` and `at..cols`, as two views of disjoint elements.
    ///
    /// # Panics
    /// If `at > cols`.
    #[track_caller]
    pub fn split_at_col(self, at: usize) -> (RowsMut<'a>, RowsMut<'a>) {
        assert!(
            at <= self.cols,
            "RowsMut::split_at_col: {at} > {}",
            self.cols
        );
        let left = RowsMut { cols: at, ..self };
        let right = RowsMut {
            // `wrapping_add`: with no rows or no columns right of `at` nothing is reached.
            ptr: self.ptr.wrapping_add(at),
            cols: self.cols - at,
            ..self
        };
        (left, right)
    }

    /// The first element, for kernels that address the view themselves: element `(r, j)`
    /// is at `ptr + r·ld + j` for `r < rows`, `j < cols`, and nothing else may be touched.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut f32 {
        self.ptr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_views_address_their_own_columns() {
        let (rows, ld) = (3, 7);
        let mut buf: Vec<f32> = (0..(rows - 1) * ld + 5).map(|x| x as f32).collect();
        let view = RowsMut::new(&mut buf, rows, 5, ld);
        let (mut a, mut b) = view.split_at_col(2);
        assert_eq!((a.cols(), b.cols(), b.rows(), b.ld()), (2, 3, 3, 7));
        for r in 0..rows {
            assert_eq!(a.row(r), &[(r * ld) as f32, (r * ld + 1) as f32]);
            assert_eq!(b.row(r)[0], (r * ld + 2) as f32);
            b.row(r).fill(-1.0);
        }
        for r in 0..rows {
            assert_eq!(
                &buf[r * ld..r * ld + 5],
                &[(r * ld) as f32, (r * ld + 1) as f32, -1.0, -1.0, -1.0]
            );
        }
        // Columns 5..7 of the first rows were not touched.
        assert_eq!(buf[5], 5.0);
        assert_eq!(buf[ld + 6], (ld + 6) as f32);
    }

    #[test]
    fn empty_splits_are_fine() {
        let mut buf = vec![0.0f32; 4];
        let (mut a, b) = RowsMut::new(&mut buf, 2, 2, 2).split_at_col(2);
        assert_eq!((a.cols(), b.cols()), (2, 0));
        a.row(1).fill(1.0);
        let (_, mut c) = RowsMut::new(&mut [], 0, 0, 0).split_at_col(0);
        assert_eq!(c.rows(), 0);
        assert_eq!(buf, [0.0, 0.0, 1.0, 1.0]);
        let _ = c.as_mut_ptr();
    }

    #[test]
    #[should_panic(expected = "do not fit")]
    fn a_view_of_no_columns_past_the_slice_panics() {
        // Rows 1 and 2 would start past the end of the slice.
        let _ = RowsMut::new(&mut [], 3, 0, 100);
    }

    #[test]
    #[should_panic(expected = "do not fit")]
    fn a_view_past_the_slice_panics() {
        let mut buf = vec![0.0f32; 10];
        let _ = RowsMut::new(&mut buf, 3, 5, 4);
    }

    #[test]
    #[should_panic(expected = "row 2 of 2")]
    fn a_row_past_the_view_panics() {
        let mut buf = vec![0.0f32; 10];
        let mut v = RowsMut::new(&mut buf, 2, 5, 5);
        let _ = v.row(2);
    }
}
