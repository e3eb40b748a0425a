//! Cache-line-aligned `f32` buffers and gather-friendly row strides.
//!
//! The gather-add of [`crate::binary`] loads one 64-byte vector per selected row and column
//! tile. When a row does not start on a 64-byte boundary every such load spans two cache lines
//! and costs two L1 accesses, which halves the kernel's speed (measured: `h → v` of a 784–500
//! RBM, batch 64, 45% ones, 688 µs → 357 µs for the same matrix 16 bytes off alignment and
//! aligned). A matrix the kernels gather from should therefore start on a cache line
//! ([`AlignedVec`]) and have a row stride of whole cache lines ([`gather_stride`]).

use std::collections::TryReserveError;
use std::fmt;
use std::ops::{Deref, DerefMut};

/// The alignment of an [`AlignedVec`], in bytes: one cache line, one AVX-512 vector.
pub const ALIGN: usize = 64;

const ALIGN_F32: usize = ALIGN / size_of::<f32>();

/// A fixed-length `f32` buffer whose first element lies on a 64-byte boundary.
///
/// It dereferences to `[f32]`; its contents compare, clone and print like the slice. Built in
/// safe code: an over-allocated `Vec` viewed from its first aligned element.
pub struct AlignedVec {
    buf: Vec<f32>,
    off: usize,
    len: usize,
}

impl AlignedVec {
    /// `len` zeros.
    ///
    /// # Panics
    /// If the allocation fails (as `vec![0.0; len]`).
    pub fn zeros(len: usize) -> Self {
        Self::try_zeros(len).unwrap_or_else(|e| panic!("AlignedVec of {len} floats: {e}"))
    }

    /// `len` zeros, or the allocation error.
    ///
    /// # Errors
    /// If `len` floats (plus up to 15 for the alignment) cannot be allocated.
    pub fn try_zeros(len: usize) -> Result<Self, TryReserveError> {
        let mut buf = Vec::new();
        buf.try_reserve_exact(len.saturating_add(ALIGN_F32 - 1))?;
        buf.resize(buf.capacity(), 0.0);
        // `align_offset` may in principle refuse (usize::MAX); the buffer is then used
        // unaligned, which is only slower.
        let off = buf.as_ptr().align_offset(ALIGN).min(ALIGN_F32 - 1);
        Ok(AlignedVec { buf, off, len })
    }

    /// A copy of `x`.
    pub fn from_slice(x: &[f32]) -> Self {
        let mut v = Self::zeros(x.len());
        v.copy_from_slice(x);
        v
    }
}

impl Deref for AlignedVec {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.buf[self.off..self.off + self.len]
    }
}

impl DerefMut for AlignedVec {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buf[self.off..self.off + self.len]
    }
}

impl Clone for AlignedVec {
    fn clone(&self) -> Self {
        Self::from_slice(self)
    }
}

impl PartialEq for AlignedVec {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl fmt::Debug for AlignedVec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl Default for AlignedVec {
    fn default() -> Self {
        Self::zeros(0)
    }
}

/// A row stride (in floats) for a matrix of `n` columns that the gather kernels read: `n`
/// rounded up to whole cache lines, and to an odd number of them, so that the rows of a column
/// tile start on cache lines and spread over all of L1's sets. (A stride of a power of two
/// lines maps every row of a tile to the same few sets: `v → h` of a 784–500 RBM with
/// `Wᵀ` at stride 512 was slower than at 500; at 528 it runs as fast as `h → v`.)
pub fn gather_stride(n: usize) -> usize {
    let lines = n.div_ceil(ALIGN_F32).max(1);
    (lines | 1) * ALIGN_F32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_sized() {
        for len in [0usize, 1, 15, 16, 17, 1000] {
            let mut v = AlignedVec::zeros(len);
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x == 0.0));
            assert_eq!(v.as_ptr() as usize % ALIGN, 0);
            v.iter_mut().enumerate().for_each(|(i, x)| *x = i as f32);
            let c = v.clone();
            assert_eq!(c.as_ptr() as usize % ALIGN, 0);
            assert_eq!(c, v);
            assert_eq!(format!("{c:?}"), format!("{:?}", &*v));
        }
    }

    #[test]
    fn strides_are_odd_numbers_of_lines() {
        assert_eq!(gather_stride(0), 16);
        assert_eq!(gather_stride(3), 16);
        assert_eq!(gather_stride(16), 16);
        assert_eq!(gather_stride(17), 48);
        assert_eq!(gather_stride(500), 528);
        assert_eq!(gather_stride(784), 784);
        for n in 1..300 {
            let s = gather_stride(n);
            assert!(s >= n && s.is_multiple_of(16) && (s / 16) % 2 == 1 && s < n + 32);
        }
    }
}
