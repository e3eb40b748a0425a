//! Binary products: `W·v` for a 0/1 vector `v` is the sum of the rows of `Wᵀ` (or of `W`) where
//! `v` is 1. The gather-add kernel here sums selected rows of a row-major matrix into an output
//! row, which does `nnz × n` additions instead of the dense `len(v) × n` multiply-adds.
//!
//! Summation order is fixed — rows in the order of `idx`, one running sum per output element —
//! so every ISA gives bit-identical results (plain additions, no FMA, no reassociation).
//!
//! # Dispatch
//! Each product is written once per instruction set as a method of the crate-private trait
//! `Products`, implemented by each token of [`crate::kernel`] (the scalar references below;
//! AVX2 and AVX-512 kernels in this file's `x86` modules; a token without a kernel of its own
//! for a product runs a lower one's — `binary_indices` on AVX2 runs the scalar code, and so
//! does `gather_rows` row by row through `gather_add`). The public functions check their
//! arguments in one generic body and reach the token through the same dispatch as
//! [`crate::api`]: the plain functions run [`Isa::current`], and their `*_with(isa, …)`
//! twins run `isa` and panic if this CPU lacks it (see [`crate::api`] for why none falls
//! back). Both record the instruction set they dispatched to
//! ([`record_use`](crate::dispatch::record_use)).

use crate::dispatch::Isa;
#[cfg(target_arch = "x86_64")]
use crate::kernel::{Avx2Fma, Avx512, shim};
use crate::kernel::{Scalar, with_kernel};
pub use crate::strided::RowsMut;

/// How a gather-add combines the sum with the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accumulate {
    /// `out = Σ rows`.
    Set,
    /// `out += Σ rows` (the sum is added to `out` once, at the end).
    Add,
    /// `out −= Σ rows` (the sum is subtracted from `out` once, at the end).
    Sub,
}

/// `out[j] (=, +=, −=) Σ_{i ∈ idx} m[i·ld + j]` for `j < out.len()`.
///
/// `m` is a row-major matrix with row stride `ld` (elements), viewed from its first selected
/// column: pass `&m[c0..]` to work on columns `c0..c0 + out.len()`.
///
/// # Panics
/// If a row `i` of `idx` does not have `out.len()` elements inside `m`
/// (`i·ld + out.len() > m.len()`), or `out.len() > ld`.
#[track_caller]
pub fn gather_add(m: &[f32], ld: usize, idx: &[u32], out: &mut [f32], mode: Accumulate) {
    with_kernel!(current, |k| gather_add_on(k, m, ld, idx, out, mode))
}

/// [`gather_add`] on the instruction set `isa`.
///
/// # Panics
/// As [`gather_add`], and if this CPU lacks `isa`.
#[track_caller]
pub fn gather_add_with(
    isa: Isa,
    m: &[f32],
    ld: usize,
    idx: &[u32],
    out: &mut [f32],
    mode: Accumulate,
) {
    with_kernel!(checked isa, |k| gather_add_on(k, m, ld, idx, out, mode))
}

/// [`gather_add`] on the token `k`.
#[inline(always)]
#[track_caller]
fn gather_add_on<K: Products>(
    k: K,
    m: &[f32],
    ld: usize,
    idx: &[u32],
    out: &mut [f32],
    mode: Accumulate,
) {
    check_rows(k, m.len(), ld, idx, out.len());
    // SAFETY: every row i of idx satisfies i·ld + out.len() ≤ m.len() (check_rows).
    unsafe { k.gather_add(m, ld, idx, out, mode) }
}

/// The binary products of one instruction set, implemented by each token of
/// [`crate::kernel`] and reached through `with_kernel!` (see the [module docs](self)).
trait Products: Copy {
    /// The largest index of `idx` (0 for an empty list): the bounds check of every gather.
    fn max_index(self, idx: &[u32]) -> u32;

    /// `out[j] (=, +=, −=) Σ_{i ∈ idx} m[i·ld + j]` for `j < out.len()`, one running sum per
    /// column over `idx` in order.
    ///
    /// # Safety
    /// Every row `i` of `idx` satisfies `i·ld + out.len() ≤ m.len()`.
    unsafe fn gather_add(
        self,
        m: &[f32],
        ld: usize,
        idx: &[u32],
        out: &mut [f32],
        mode: Accumulate,
    );

    /// [`Products::gather_add`] of each list of `lists` into the same row of `out`; row by row
    /// unless the instruction set has a kernel for whole blocks.
    ///
    /// # Safety
    /// `out.rows() == lists.rows()`, and every row `i` of every list satisfies
    /// `i·ld + out.cols() ≤ m.len()`.
    unsafe fn gather_rows(
        self,
        m: &[f32],
        ld: usize,
        lists: &Lists<'_>,
        out: &mut RowsMut<'_>,
        mode: Accumulate,
    ) {
        for r in 0..lists.rows() {
            // SAFETY: the list of row r satisfies the bounds of `gather_add` (contract).
            unsafe { self.gather_add(m, ld, lists.row(r), out.row(r), mode) }
        }
    }

    /// [`binary_indices`].
    ///
    /// # Safety
    /// `out.len() ≥ x.len()` and `x.len() ≤ u32::MAX`.
    unsafe fn binary_indices(self, x: &[f32], out: &mut [u32]) -> Option<usize>;

    /// [`transpose`] of a non-empty block.
    ///
    /// # Safety
    /// `rows, cols > 0` and both blocks fit their slices (`check_transpose`).
    unsafe fn transpose(
        self,
        src: &[f32],
        ld_src: usize,
        rows: usize,
        cols: usize,
        dst: &mut [f32],
        ld_dst: usize,
    );
}

impl Products for Scalar {
    fn max_index(self, idx: &[u32]) -> u32 {
        max_index_scalar(idx)
    }

    unsafe fn gather_add(
        self,
        m: &[f32],
        ld: usize,
        idx: &[u32],
        out: &mut [f32],
        mode: Accumulate,
    ) {
        gather_add_scalar(m, ld, idx, out, mode);
    }

    unsafe fn binary_indices(self, x: &[f32], out: &mut [u32]) -> Option<usize> {
        binary_indices_scalar(x, out)
    }

    unsafe fn transpose(
        self,
        src: &[f32],
        ld_src: usize,
        rows: usize,
        cols: usize,
        dst: &mut [f32],
        ld_dst: usize,
    ) {
        transpose_scalar(src, ld_src, rows, cols, dst, ld_dst);
    }
}

#[cfg(target_arch = "x86_64")]
impl Products for Avx2Fma {
    fn max_index(self, idx: &[u32]) -> u32 {
        // The scalar fold, vectorized by the compiler.
        shim!("avx2"; _s: Avx2Fma = self; (idx: &[u32]) -> u32 { max_index_scalar(idx) })
    }

    unsafe fn gather_add(
        self,
        m: &[f32],
        ld: usize,
        idx: &[u32],
        out: &mut [f32],
        mode: Accumulate,
    ) {
        // SAFETY: the token proves AVX2; every row i of idx has out.len() floats inside m
        // (contract), which is all the kernel reads, and it writes only out[..n].
        unsafe { x86::gather_add_avx2(m.as_ptr(), ld, idx, out, mode) }
    }

    unsafe fn binary_indices(self, x: &[f32], out: &mut [u32]) -> Option<usize> {
        binary_indices_scalar(x, out)
    }

    unsafe fn transpose(
        self,
        src: &[f32],
        ld_src: usize,
        rows: usize,
        cols: usize,
        dst: &mut [f32],
        ld_dst: usize,
    ) {
        // SAFETY: the token proves AVX2; the source block (rows - 1)·ld_src + cols and the
        // destination block (cols - 1)·ld_dst + rows fit their slices (contract), which is
        // all the kernel touches.
        unsafe {
            x86_transpose::transpose_avx2(
                src.as_ptr(),
                ld_src,
                rows,
                cols,
                dst.as_mut_ptr(),
                ld_dst,
            )
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl Products for Avx512 {
    fn max_index(self, idx: &[u32]) -> u32 {
        // AVX2's 8-lane maximum, as above.
        shim!("avx2"; _s: Avx512 = self; (idx: &[u32]) -> u32 { max_index_scalar(idx) })
    }

    unsafe fn gather_add(
        self,
        m: &[f32],
        ld: usize,
        idx: &[u32],
        out: &mut [f32],
        mode: Accumulate,
    ) {
        // SAFETY: the token proves AVX-512 F; every row i of idx has out.len() floats inside
        // m (contract), which is all the kernel reads, and it writes only out[..n].
        unsafe { x86::gather_add_avx512(m.as_ptr(), ld, idx, out, mode) }
    }

    unsafe fn gather_rows(
        self,
        m: &[f32],
        ld: usize,
        lists: &Lists<'_>,
        out: &mut RowsMut<'_>,
        mode: Accumulate,
    ) {
        let (n, ld_out) = (out.cols(), out.ld());
        // SAFETY: the token proves AVX-512 F; every list's rows hold n elements inside m
        // (contract), and the kernel writes only the elements (r, j < n) of the view's rows,
        // which the view owns.
        unsafe { x86::gather_rows_avx512(m.as_ptr(), ld, n, lists, out.as_mut_ptr(), ld_out, mode) }
    }

    unsafe fn binary_indices(self, x: &[f32], out: &mut [u32]) -> Option<usize> {
        // SAFETY: the token proves AVX-512 F; the kernel reads x[..len] and writes at most
        // x.len() entries of out, which is at least that long (contract).
        unsafe { x86::binary_indices_avx512(x, out) }
    }

    unsafe fn transpose(
        self,
        src: &[f32],
        ld_src: usize,
        rows: usize,
        cols: usize,
        dst: &mut [f32],
        ld_dst: usize,
    ) {
        // SAFETY: the token proves AVX-512 F and AVX2; bounds as for AVX2 (contract).
        unsafe {
            x86_transpose::transpose_avx512(
                src.as_ptr(),
                ld_src,
                rows,
                cols,
                dst.as_mut_ptr(),
                ld_dst,
            )
        }
    }
}

/// The scalar reference: one running sum per output element over `idx` in order.
pub fn gather_add_scalar(m: &[f32], ld: usize, idx: &[u32], out: &mut [f32], mode: Accumulate) {
    let n = out.len();
    check_rows(Scalar, m.len(), ld, idx, n);
    for (j, o) in out.iter_mut().enumerate() {
        let mut s = 0.0f32;
        for &i in idx {
            s += m[i as usize * ld + j];
        }
        combine(o, s, mode);
    }
}

#[inline(always)]
fn combine(o: &mut f32, s: f32, mode: Accumulate) {
    match mode {
        Accumulate::Set => *o = s,
        Accumulate::Add => *o += s,
        Accumulate::Sub => *o -= s,
    }
}

#[track_caller]
fn check_rows(k: impl Products, len: usize, ld: usize, idx: &[u32], n: usize) {
    if n == 0 || idx.is_empty() {
        return;
    }
    let max = k.max_index(idx) as usize;
    let end = max.checked_mul(ld).and_then(|s| s.checked_add(n));
    if n > ld || end.is_none_or(|e| e > len) {
        gather_error(len, ld, max, n);
    }
}

#[inline(always)]
fn max_index_scalar(idx: &[u32]) -> u32 {
    idx.iter().fold(0, |m, &i| m.max(i))
}

#[cold]
#[inline(never)]
#[track_caller]
fn gather_error(len: usize, ld: usize, max: usize, n: usize) -> ! {
    panic!("gather_add: row {max} of {n} elements with stride {ld} does not fit a matrix of {len}")
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! Column tiles of `T` vectors held in registers while the selected rows stream through.
    //!
    //! ```text
    //!   out[c .. c+T·L] = acc[0..T]        acc[t] += m[i·ld + c + t·L .. +L]   for i in idx
    //! ```
    //! `gather_add`: AVX-512 L = 16, T = 8 (128 columns per tile), the tail (fewer than T·L
    //! columns) one tile of as many vectors as it needs, the last masked; AVX2 L = 8, T = 8
    //! (64 columns), the tail in a scalar loop. `gather_rows`: tiles of G rows × T vectors
    //! (12 × 2 or 4 × 4), the last tile of a row up to T vectors with the last masked. Every
    //! sum still runs over the rows in the order of `idx`.

    use std::arch::x86_64::*;

    use super::{Accumulate, combine};

    /// # Safety
    /// AVX-512 F must be available; for every `i` in `idx`, `m.add(i·ld)` must be valid for
    /// reading `out.len()` floats.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gather_add_avx512(
        m: *const f32,
        ld: usize,
        idx: &[u32],
        out: &mut [f32],
        mode: Accumulate,
    ) {
        const L: usize = 16;
        const T: usize = 8;
        let n = out.len();
        let mut c = 0;
        while c + T * L <= n {
            let mut acc = [_mm512_setzero_ps(); T];
            for &i in idx {
                // SAFETY: row i, columns c..c + T·L ≤ n, is readable (caller's contract).
                let row = unsafe { m.add(i as usize * ld + c) };
                for (t, a) in acc.iter_mut().enumerate() {
                    // SAFETY: t·L + L ≤ T·L, inside the row segment above.
                    *a = _mm512_add_ps(*a, unsafe { _mm512_loadu_ps(row.add(t * L)) });
                }
            }
            for (t, a) in acc.iter().enumerate() {
                let o = &mut out[c + t * L..c + t * L + L];
                // SAFETY: `o` is 16 floats of `out`.
                unsafe { store_combined512(o.as_mut_ptr(), *a, mode, 0xFFFF) };
            }
            c += T * L;
        }
        // The last `n − c < T·L` columns: one tile of as many vectors as they need, the last
        // masked, so that its running sums still advance side by side (one accumulator at a
        // time waits on its own adds).
        // SAFETY: forwarded contract, in every arm; the tile reads columns c..n only.
        unsafe {
            match (n - c).div_ceil(L) {
                0 => {}
                1 => tail_tile::<1>(m, ld, idx, out, c, mode),
                2 => tail_tile::<2>(m, ld, idx, out, c, mode),
                3 => tail_tile::<3>(m, ld, idx, out, c, mode),
                4 => tail_tile::<4>(m, ld, idx, out, c, mode),
                5 => tail_tile::<5>(m, ld, idx, out, c, mode),
                6 => tail_tile::<6>(m, ld, idx, out, c, mode),
                7 => tail_tile::<7>(m, ld, idx, out, c, mode),
                _ => tail_tile::<8>(m, ld, idx, out, c, mode),
            }
        }
    }

    /// Columns `c..n` (`n = out.len()`, `16·(R − 1) < n − c ≤ 16·R`) of [`gather_add_avx512`]:
    /// `R` running sums, the last masked.
    ///
    /// # Safety
    /// As [`gather_add_avx512`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn tail_tile<const R: usize>(
        m: *const f32,
        ld: usize,
        idx: &[u32],
        out: &mut [f32],
        c: usize,
        mode: Accumulate,
    ) {
        const L: usize = 16;
        let w = out.len() - c - (R - 1) * L;
        debug_assert!(0 < w && w <= L);
        let last: __mmask16 = if w == L { 0xFFFF } else { (1u16 << w) - 1 };
        let mask = |t: usize| if t + 1 == R { last } else { 0xFFFF };
        let mut acc = [_mm512_setzero_ps(); R];
        for &i in idx {
            let row = m.wrapping_add(i as usize * ld + c);
            for (t, a) in acc.iter_mut().enumerate() {
                // SAFETY: the masked load reads columns c + t·L .. min(c + t·L + 16, n) of
                // row i, inside the row by the caller's contract.
                *a = _mm512_add_ps(*a, unsafe {
                    _mm512_maskz_loadu_ps(mask(t), row.wrapping_add(t * L))
                });
            }
        }
        for (t, a) in acc.iter().enumerate() {
            // SAFETY: the mask limits the access to out[c + t·L .. n].
            unsafe { store_combined512(out.as_mut_ptr().add(c + t * L), *a, mode, mask(t)) };
        }
    }

    /// # Safety
    /// AVX-512 F must be available; `out.len() >= x.len()` and `x.len() <= u32::MAX`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn binary_indices_avx512(x: &[f32], out: &mut [u32]) -> Option<usize> {
        const L: usize = 16;
        let n = x.len();
        let (one, zero) = (_mm512_set1_ps(1.0), _mm512_setzero_ps());
        let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let (mut c, mut count) = (0, 0usize);
        while c < n {
            let w = (n - c).min(L);
            let mask: __mmask16 = if w == L { 0xFFFF } else { (1u16 << w) - 1 };
            // SAFETY: the masked load reads x[c..c + w] only.
            let v = unsafe { _mm512_maskz_loadu_ps(mask, x.as_ptr().add(c)) };
            let ones = _mm512_mask_cmp_ps_mask::<_CMP_EQ_OQ>(mask, v, one);
            let zeros = _mm512_mask_cmp_ps_mask::<_CMP_EQ_OQ>(mask, v, zero);
            if ones | zeros != mask {
                return None;
            }
            let idx = _mm512_add_epi32(lanes, _mm512_set1_epi32(c as i32));
            // SAFETY: writes popcount(ones) ≤ w entries at out[count..], and count + w ≤ c + w
            // ≤ n ≤ out.len().
            unsafe {
                _mm512_mask_compressstoreu_epi32(out.as_mut_ptr().add(count).cast(), ones, idx)
            };
            count += ones.count_ones() as usize;
            c += w;
        }
        Some(count)
    }

    /// # Safety
    /// AVX-512 F must be available; every row named by every list must have `n` readable
    /// floats at `m.add(i·ld)`; for each list row `r`, `out.add(r·ld_out) .. + n` must be
    /// valid for reading and writing and not reached by any other thread meanwhile.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn gather_rows_avx512(
        m: *const f32,
        ld: usize,
        n: usize,
        lists: &super::Lists<'_>,
        out: *mut f32,
        ld_out: usize,
        mode: Accumulate,
    ) {
        // Long lists (the conditional passes) keep 12 rows × 2 vectors of sums in flight;
        // short ones (the gradient: a list per visible unit over the batch's rows) 4 × 4, whose
        // unequal tails then still run 4 independent chains each. Both give the same bits.
        // (One thread, 784–500, 64 rows: 12 × 2 is ~4% faster on lists of 65–100, 4 × 4 ~30%
        // faster on the gradient's lists of 8–35.)
        let total: usize = lists.nnz.iter().map(|&c| c as usize).sum();
        // SAFETY: forwarded contract.
        unsafe {
            if total >= 64 * lists.rows() {
                tiles::<12, 2>(m, ld, n, lists, out, ld_out, mode)
            } else {
                tiles::<4, 4>(m, ld, n, lists, out, ld_out, mode)
            }
        }
    }

    /// Column tiles of `T` vectors (the last tile up to `T` vectors, its last one masked),
    /// outermost; groups of `G` rows inside, so each tile of `m` is reused from cache by every
    /// row of the block.
    ///
    /// # Safety
    /// As [`gather_rows_avx512`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tiles<const G: usize, const T: usize>(
        m: *const f32,
        ld: usize,
        n: usize,
        lists: &super::Lists<'_>,
        out: *mut f32,
        ld_out: usize,
        mode: Accumulate,
    ) {
        const L: usize = 16;
        // The match below has an arm per tile width up to 4 vectors.
        const {
            assert!(
                T >= 1 && T <= 4,
                "gather_rows tiles are 1 to 4 vectors wide"
            )
        };
        let mut c = 0;
        while c < n {
            // Up to `T` vectors, the last one masked to the columns left: the columns past the
            // last whole tile take one more pass over the lists, not one per vector.
            let vecs = (n - c).div_ceil(L).min(T);
            let w = (vecs * L).min(n - c);
            let last = w - (vecs - 1) * L;
            let mask: __mmask16 = if last >= L {
                0xFFFF
            } else {
                (1u16 << last) - 1
            };
            let (m_c, o_c) = (m.wrapping_add(c), out.wrapping_add(c));
            // SAFETY: columns c..c + w ≤ n of the rows the lists name and of the output rows
            // are in bounds by this function's contract; a tile of `vecs` vectors reads
            // (vecs − 1)·16 + the masked `last` = w columns.
            unsafe {
                match vecs {
                    1 => tile::<G, 1>(m_c, ld, lists, o_c, ld_out, mode, mask),
                    2 => tile::<G, 2>(m_c, ld, lists, o_c, ld_out, mode, mask),
                    3 => tile::<G, 3>(m_c, ld, lists, o_c, ld_out, mode, mask),
                    // 4: vecs ≤ T ≤ 4.
                    _ => tile::<G, 4>(m_c, ld, lists, o_c, ld_out, mode, mask),
                }
            }
            c += w;
        }
    }

    /// Every row of `lists` on one column tile of `V` vectors (the last one masked by
    /// `mask`): groups of `G` rows, then single rows.
    ///
    /// # Safety
    /// As [`gather_rows_avx512`], for the tile starting at `m` and `out`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const G: usize, const V: usize>(
        m: *const f32,
        ld: usize,
        lists: &super::Lists<'_>,
        out: *mut f32,
        ld_out: usize,
        mode: Accumulate,
        mask: __mmask16,
    ) {
        let rows = lists.rows();
        let mut r = 0;
        // SAFETY: the tile of rows r..r + G (or r) is in bounds (contract).
        unsafe {
            while r + G <= rows {
                group::<G, V>(m, ld, lists, r, out, ld_out, mode, mask);
                r += G;
            }
            while r < rows {
                group::<1, V>(m, ld, lists, r, out, ld_out, mode, mask);
                r += 1;
            }
        }
    }

    /// Rows `r0..r0 + G` of one column tile of `T` vectors: `G × T` running sums, each row
    /// over its own list in order. Up to the shortest list the rows advance together (the
    /// loads of different rows are independent); each row's remainder then runs alone.
    ///
    /// # Safety
    /// As [`gather_rows_avx512`], for the tile starting at `m` and `out`: `T − 1` full
    /// vectors and the lanes of `mask` of the last one.
    #[inline]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn group<const G: usize, const T: usize>(
        m: *const f32,
        ld: usize,
        lists: &super::Lists<'_>,
        r0: usize,
        out: *mut f32,
        ld_out: usize,
        mode: Accumulate,
        mask: __mmask16,
    ) {
        const L: usize = 16;
        let mut l: [&[u32]; G] = [&[]; G];
        for (g, list) in l.iter_mut().enumerate() {
            *list = lists.row(r0 + g);
        }
        let common = l.iter().map(|x| x.len()).min().unwrap_or(0);
        let mut acc = [[_mm512_setzero_ps(); T]; G];
        for t in 0..common {
            for g in 0..G {
                // SAFETY: t < common ≤ l[g].len().
                let i = unsafe { *l[g].get_unchecked(t) } as usize;
                for (v, a) in acc[g].iter_mut().enumerate() {
                    let k = if v + 1 == T { mask } else { 0xFFFF };
                    // SAFETY: row i of m has the tile readable (contract).
                    let x = unsafe { _mm512_maskz_loadu_ps(k, m.add(i * ld + v * L)) };
                    *a = _mm512_add_ps(*a, x);
                }
            }
        }
        for g in 0..G {
            for &i in &l[g][common..] {
                for (v, a) in acc[g].iter_mut().enumerate() {
                    let k = if v + 1 == T { mask } else { 0xFFFF };
                    // SAFETY: as above.
                    let x = unsafe { _mm512_maskz_loadu_ps(k, m.add(i as usize * ld + v * L)) };
                    *a = _mm512_add_ps(*a, x);
                }
            }
            for (v, a) in acc[g].iter().enumerate() {
                let k = if v + 1 == T { mask } else { 0xFFFF };
                // SAFETY: output row r0 + g, the tile, is in bounds (contract).
                unsafe { store_combined512(out.add((r0 + g) * ld_out + v * L), *a, mode, k) };
            }
        }
    }

    /// # Safety
    /// AVX-512 F available; `o` valid for reading and writing the lanes set in `mask`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn store_combined512(o: *mut f32, s: __m512, mode: Accumulate, mask: __mmask16) {
        // SAFETY: masked lanes only (caller's contract).
        let old = unsafe { _mm512_maskz_loadu_ps(mask, o) };
        let v = match mode {
            Accumulate::Set => s,
            Accumulate::Add => _mm512_add_ps(old, s),
            Accumulate::Sub => _mm512_sub_ps(old, s),
        };
        // SAFETY: as above.
        unsafe { _mm512_mask_storeu_ps(o, mask, v) };
    }

    /// # Safety
    /// AVX2 must be available; for every `i` in `idx`, `m.add(i·ld)` must be valid for
    /// reading `out.len()` floats.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn gather_add_avx2(
        m: *const f32,
        ld: usize,
        idx: &[u32],
        out: &mut [f32],
        mode: Accumulate,
    ) {
        const L: usize = 8;
        const T: usize = 8;
        let n = out.len();
        let mut c = 0;
        while c + L <= n {
            let t_here = ((n - c) / L).min(T);
            let mut acc = [_mm256_setzero_ps(); T];
            for &i in idx {
                // SAFETY: row i, columns c..c + t_here·L ≤ n, is readable (caller's contract).
                let row = unsafe { m.add(i as usize * ld + c) };
                for (t, a) in acc.iter_mut().enumerate().take(t_here) {
                    // SAFETY: t·L + L ≤ t_here·L, inside the row segment above.
                    *a = _mm256_add_ps(*a, unsafe { _mm256_loadu_ps(row.add(t * L)) });
                }
            }
            for (t, a) in acc.iter().enumerate().take(t_here) {
                let o = &mut out[c + t * L..c + t * L + L];
                // SAFETY: `o` is 8 floats of `out`.
                let old = unsafe { _mm256_loadu_ps(o.as_ptr()) };
                let v = match mode {
                    Accumulate::Set => *a,
                    Accumulate::Add => _mm256_add_ps(old, *a),
                    Accumulate::Sub => _mm256_sub_ps(old, *a),
                };
                // SAFETY: as above.
                unsafe { _mm256_storeu_ps(o.as_mut_ptr(), v) };
            }
            c += t_here * L;
        }
        for (j, o) in out.iter_mut().enumerate().skip(c) {
            let mut s = 0.0f32;
            for &i in idx {
                // SAFETY: column j < n of row i is readable (caller's contract).
                s += unsafe { *m.add(i as usize * ld + j) };
            }
            combine(o, s, mode);
        }
    }
}

/// The index lists of a batch of 0/1 rows: row `r`'s list is
/// `idx[r·stride .. r·stride + nnz[r]]` (row indices into the matrix being gathered).
#[derive(Clone, Copy, Debug)]
pub struct Lists<'a> {
    /// The lists, one every `stride` entries.
    pub idx: &'a [u32],
    /// Distance between the starts of consecutive lists.
    pub stride: usize,
    /// The length of each list; `nnz.len()` is the number of rows.
    pub nnz: &'a [u32],
}

impl<'a> Lists<'a> {
    /// Row `r`'s list.
    ///
    /// # Panics
    /// If `r` or the list is out of range.
    #[inline]
    pub fn row(&self, r: usize) -> &'a [u32] {
        let start = r * self.stride;
        &self.idx[start..start + self.nnz[r] as usize]
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.nnz.len()
    }
}

/// For every row `r` of `lists`: `out[r·ld_out + j] (=, +=, −=) Σ_{i ∈ list r} m[i·ld + j]`
/// for `j < n` — [`gather_add`] for a whole block of rows at once.
///
/// The AVX-512 version works on column tiles of 2 or 4 vectors, outermost, and on groups of
/// rows inside, so that a tile of `m` is loaded into L1 once and reused by all the block's
/// rows (other ISAs run [`gather_add`] row by row); each row still sums its list in order, so the result equals
/// [`gather_add`] row by row, bit for bit, on every ISA.
///
/// # Panics
/// If a list names a row of `m` that does not hold `n` elements, `n > ld`, or `out` does not
/// hold `rows × ld_out` elements with `n ≤ ld_out`.
#[track_caller]
pub fn gather_rows(
    m: &[f32],
    ld: usize,
    n: usize,
    lists: Lists<'_>,
    out: &mut [f32],
    ld_out: usize,
    mode: Accumulate,
) {
    with_kernel!(current, |k| gather_rows_on(
        k, m, ld, n, lists, out, ld_out, mode
    ))
}

/// [`gather_rows`] on the instruction set `isa`.
///
/// # Panics
/// As [`gather_rows`], and if this CPU lacks `isa`.
#[track_caller]
#[allow(clippy::too_many_arguments)]
pub fn gather_rows_with(
    isa: Isa,
    m: &[f32],
    ld: usize,
    n: usize,
    lists: Lists<'_>,
    out: &mut [f32],
    ld_out: usize,
    mode: Accumulate,
) {
    with_kernel!(checked isa, |k| gather_rows_on(
        k, m, ld, n, lists, out, ld_out, mode
    ))
}

/// [`gather_rows`] on the token `k`.
#[inline(always)]
#[track_caller]
#[allow(clippy::too_many_arguments)]
fn gather_rows_on<K: Products>(
    k: K,
    m: &[f32],
    ld: usize,
    n: usize,
    lists: Lists<'_>,
    out: &mut [f32],
    ld_out: usize,
    mode: Accumulate,
) {
    let rows = lists.rows();
    assert!(
        n <= ld_out && (rows == 0 || (rows - 1) * ld_out + n <= out.len()),
        "gather_rows: {rows} rows of {n} (stride {ld_out}) do not fit an output of {}",
        out.len()
    );
    let mut out = RowsMut::new(out, rows, n, ld_out);
    gather_rows_into_on(k, m, ld, lists, &mut out, mode);
}

/// [`gather_rows`] into a view: `out.row(r)[j] (=, +=, −=) Σ_{i ∈ list r} m[i·ld + j]` for
/// `j < out.cols()`. With `m` viewed from column `c0` (`&m[c0..]`) and `out` a block of
/// columns split off a wider view ([`RowsMut::split_at_col`]), threads can each compute
/// their own columns of one batch; every element is the same as from one call over all
/// columns.
///
/// # Panics
/// If `out` has a number of rows other than `lists.rows()`, `out.cols() > ld`, or a list names
/// a row of `m` that does not hold `out.cols()` elements.
#[track_caller]
pub fn gather_rows_into(
    m: &[f32],
    ld: usize,
    lists: Lists<'_>,
    out: &mut RowsMut<'_>,
    mode: Accumulate,
) {
    with_kernel!(current, |k| gather_rows_into_on(k, m, ld, lists, out, mode))
}

/// [`gather_rows_into`] on the instruction set `isa`.
///
/// # Panics
/// As [`gather_rows_into`], and if this CPU lacks `isa`.
#[track_caller]
pub fn gather_rows_into_with(
    isa: Isa,
    m: &[f32],
    ld: usize,
    lists: Lists<'_>,
    out: &mut RowsMut<'_>,
    mode: Accumulate,
) {
    with_kernel!(checked isa, |k| gather_rows_into_on(
        k, m, ld, lists, out, mode
    ))
}

/// [`gather_rows_into`] on the token `k`.
#[inline(always)]
#[track_caller]
fn gather_rows_into_on<K: Products>(
    k: K,
    m: &[f32],
    ld: usize,
    lists: Lists<'_>,
    out: &mut RowsMut<'_>,
    mode: Accumulate,
) {
    let (rows, n) = (lists.rows(), out.cols());
    assert_eq!(
        out.rows(),
        rows,
        "gather_rows_into: {rows} lists for an output of {} rows",
        out.rows()
    );
    for r in 0..rows {
        check_rows(k, m.len(), ld, lists.row(r), n);
    }
    // SAFETY: one list per row of `out` (asserted), and every list's rows hold n elements
    // inside m (check_rows on each list).
    unsafe { k.gather_rows(m, ld, &lists, out, mode) }
}

/// Writes the indices `j` with `x[j] == 1.0` to `out`, in increasing order, and returns their
/// count; `None` as soon as a value is neither 0 nor 1 (`out` then holds garbage). `-0.0`
/// counts as 0. This is the index list a binary product gathers over.
///
/// # Panics
/// If `out` is shorter than `x`.
#[track_caller]
pub fn binary_indices(x: &[f32], out: &mut [u32]) -> Option<usize> {
    with_kernel!(current, |k| binary_indices_on(k, x, out))
}

/// [`binary_indices`] on the instruction set `isa`.
///
/// # Panics
/// As [`binary_indices`], and if this CPU lacks `isa`.
#[track_caller]
pub fn binary_indices_with(isa: Isa, x: &[f32], out: &mut [u32]) -> Option<usize> {
    with_kernel!(checked isa, |k| binary_indices_on(k, x, out))
}

/// [`binary_indices`] on the token `k`.
#[inline(always)]
#[track_caller]
fn binary_indices_on<K: Products>(k: K, x: &[f32], out: &mut [u32]) -> Option<usize> {
    assert!(
        out.len() >= x.len(),
        "binary_indices: output of {} for {} values",
        out.len(),
        x.len()
    );
    assert!(
        x.len() <= u32::MAX as usize,
        "binary_indices: more than 2^32 values"
    );
    // SAFETY: both lengths are asserted just above.
    unsafe { k.binary_indices(x, out) }
}

/// The scalar reference of [`binary_indices`].
pub fn binary_indices_scalar(x: &[f32], out: &mut [u32]) -> Option<usize> {
    let mut c = 0;
    for (j, &v) in x.iter().enumerate() {
        if v == 1.0 {
            out[c] = j as u32;
            c += 1;
        } else if v != 0.0 {
            return None;
        }
    }
    Some(c)
}

/// `dst[j·ld_dst + i] = src[i·ld_src + j]` for `i < rows`, `j < cols`: the transpose of a
/// `rows × cols` block, tiled for the caches, in 8 × 8 register blocks on AVX2 and AVX-512.
/// A copy: every ISA gives the same result.
///
/// # Panics
/// If either block does not fit its slice.
#[track_caller]
pub fn transpose(
    src: &[f32],
    ld_src: usize,
    rows: usize,
    cols: usize,
    dst: &mut [f32],
    ld_dst: usize,
) {
    with_kernel!(current, |k| transpose_on(
        k, src, ld_src, rows, cols, dst, ld_dst
    ))
}

/// [`transpose`] on the instruction set `isa`.
///
/// # Panics
/// As [`transpose`], and if this CPU lacks `isa`.
#[track_caller]
pub fn transpose_with(
    isa: Isa,
    src: &[f32],
    ld_src: usize,
    rows: usize,
    cols: usize,
    dst: &mut [f32],
    ld_dst: usize,
) {
    with_kernel!(checked isa, |k| transpose_on(
        k, src, ld_src, rows, cols, dst, ld_dst
    ))
}

/// [`transpose`] on the token `k`.
#[inline(always)]
#[track_caller]
fn transpose_on<K: Products>(
    k: K,
    src: &[f32],
    ld_src: usize,
    rows: usize,
    cols: usize,
    dst: &mut [f32],
    ld_dst: usize,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    check_transpose(src.len(), ld_src, rows, cols, dst.len(), ld_dst);
    // SAFETY: the block is not empty and fits both slices (checked just above).
    unsafe { k.transpose(src, ld_src, rows, cols, dst, ld_dst) }
}

/// The scalar reference of [`transpose`].
///
/// # Panics
/// As [`transpose`].
#[track_caller]
pub fn transpose_scalar(
    src: &[f32],
    ld_src: usize,
    rows: usize,
    cols: usize,
    dst: &mut [f32],
    ld_dst: usize,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    check_transpose(src.len(), ld_src, rows, cols, dst.len(), ld_dst);
    for i0 in (0..rows).step_by(TRANSPOSE_TILE) {
        for j0 in (0..cols).step_by(TRANSPOSE_TILE) {
            for i in i0..(i0 + TRANSPOSE_TILE).min(rows) {
                for j in j0..(j0 + TRANSPOSE_TILE).min(cols) {
                    dst[j * ld_dst + i] = src[i * ld_src + j];
                }
            }
        }
    }
}

/// Cache tile of the transposes: 32 × 32 floats (4 KiB) read and written per tile.
const TRANSPOSE_TILE: usize = 32;

#[track_caller]
fn check_transpose(src: usize, ld_src: usize, rows: usize, cols: usize, dst: usize, ld_dst: usize) {
    let fits = |r: usize, c: usize, ld: usize, len: usize| {
        c <= ld
            && (r - 1)
                .checked_mul(ld)
                .and_then(|x| x.checked_add(c))
                .is_some_and(|end| end <= len)
    };
    assert!(
        fits(rows, cols, ld_src, src) && fits(cols, rows, ld_dst, dst),
        "transpose: a {rows}×{cols} block does not fit (ld {ld_src} → {ld_dst})"
    );
}

#[cfg(target_arch = "x86_64")]
mod x86_transpose {
    //! 8 × 8 register transposes (unpack, shuffle, 128-bit lane permute), scalar at the edges.

    use std::arch::x86_64::*;

    use super::TRANSPOSE_TILE;

    /// # Safety
    /// AVX2 must be available; `src` must be readable at `i·ld_src + j` and `dst` writable at
    /// `j·ld_dst + i` for `i < rows`, `j < cols`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn transpose_avx2(
        src: *const f32,
        ld_src: usize,
        rows: usize,
        cols: usize,
        dst: *mut f32,
        ld_dst: usize,
    ) {
        // SAFETY: forwarded contract.
        unsafe { body(src, ld_src, rows, cols, dst, ld_dst) }
    }

    /// # Safety
    /// AVX-512 F must be available; otherwise as [`transpose_avx2`].
    #[target_feature(enable = "avx2,avx512f")]
    pub(super) unsafe fn transpose_avx512(
        src: *const f32,
        ld_src: usize,
        rows: usize,
        cols: usize,
        dst: *mut f32,
        ld_dst: usize,
    ) {
        // SAFETY: forwarded contract (AVX-512 F implies the AVX2 that `body` uses).
        unsafe { body(src, ld_src, rows, cols, dst, ld_dst) }
    }

    /// # Safety
    /// As [`transpose_avx2`].
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn body(
        src: *const f32,
        ld_src: usize,
        rows: usize,
        cols: usize,
        dst: *mut f32,
        ld_dst: usize,
    ) {
        for i0 in (0..rows).step_by(TRANSPOSE_TILE) {
            let i1 = (i0 + TRANSPOSE_TILE).min(rows);
            for j0 in (0..cols).step_by(TRANSPOSE_TILE) {
                let j1 = (j0 + TRANSPOSE_TILE).min(cols);
                let mut i = i0;
                while i + 8 <= i1 {
                    let mut j = j0;
                    while j + 8 <= j1 {
                        // SAFETY: rows i..i + 8 ≤ rows and columns j..j + 8 ≤ cols of the
                        // source, their transpose in the destination (contract).
                        unsafe {
                            block8(
                                src.add(i * ld_src + j),
                                ld_src,
                                dst.add(j * ld_dst + i),
                                ld_dst,
                            )
                        };
                        j += 8;
                    }
                    for jj in j..j1 {
                        for ii in i..i + 8 {
                            // SAFETY: ii < rows, jj < cols (contract).
                            unsafe { *dst.add(jj * ld_dst + ii) = *src.add(ii * ld_src + jj) };
                        }
                    }
                    i += 8;
                }
                for ii in i..i1 {
                    for jj in j0..j1 {
                        // SAFETY: ii < rows, jj < cols (contract).
                        unsafe { *dst.add(jj * ld_dst + ii) = *src.add(ii * ld_src + jj) };
                    }
                }
            }
        }
    }

    /// Transposes the 8 × 8 block at `src` (row stride `ld_src`) into `dst` (row stride
    /// `ld_dst`).
    ///
    /// # Safety
    /// AVX2 available; 8 rows of 8 floats readable at `src`, writable at `dst`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn block8(src: *const f32, ld_src: usize, dst: *mut f32, ld_dst: usize) {
        // SAFETY: 8 floats of each of the 8 rows (contract).
        let r: [__m256; 8] =
            std::array::from_fn(|k| unsafe { _mm256_loadu_ps(src.add(k * ld_src)) });
        let t = [
            _mm256_unpacklo_ps(r[0], r[1]),
            _mm256_unpackhi_ps(r[0], r[1]),
            _mm256_unpacklo_ps(r[2], r[3]),
            _mm256_unpackhi_ps(r[2], r[3]),
            _mm256_unpacklo_ps(r[4], r[5]),
            _mm256_unpackhi_ps(r[4], r[5]),
            _mm256_unpacklo_ps(r[6], r[7]),
            _mm256_unpackhi_ps(r[6], r[7]),
        ];
        let u = [
            _mm256_shuffle_ps::<0x44>(t[0], t[2]),
            _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
            _mm256_shuffle_ps::<0x44>(t[1], t[3]),
            _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
            _mm256_shuffle_ps::<0x44>(t[4], t[6]),
            _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
            _mm256_shuffle_ps::<0x44>(t[5], t[7]),
            _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
        ];
        for k in 0..4 {
            let lo = _mm256_permute2f128_ps::<0x20>(u[k], u[k + 4]);
            let hi = _mm256_permute2f128_ps::<0x31>(u[k], u[k + 4]);
            // SAFETY: rows k and k + 4 of the destination block (contract).
            unsafe {
                _mm256_storeu_ps(dst.add(k * ld_dst), lo);
                _mm256_storeu_ps(dst.add((k + 4) * ld_dst), hi);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::StreamKey;

    fn matrix(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
        let k = StreamKey::new(seed);
        (0..rows * cols)
            .map(|j| (k.draw(j as u64) as f32 / u32::MAX as f32 - 0.5) * 3.0)
            .collect()
    }

    #[test]
    fn every_isa_matches_scalar_bit_for_bit_with_tails() {
        let (rows, ld) = (50, 300);
        let m = matrix(rows, ld, 1);
        let k = StreamKey::new(2);
        for n in (0..=67).chain([127, 128, 129, 255, 256, 257, 300]) {
            for c0 in [0usize, 3] {
                if c0 + n > ld {
                    continue;
                }
                let idx: Vec<u32> = (0..rows as u32)
                    .filter(|&i| k.derive(n as u64).draw(i as u64).is_multiple_of(3))
                    .collect();
                for mode in [Accumulate::Set, Accumulate::Add, Accumulate::Sub] {
                    let mut want = vec![1.5f32; n + 8];
                    gather_add_scalar(&m[c0..], ld, &idx, &mut want[4..4 + n], mode);
                    for isa in Isa::available() {
                        let mut got = vec![1.5f32; n + 8];
                        got[..4].fill(f32::NAN);
                        got[4 + n..].fill(f32::NAN);
                        gather_add_with(isa, &m[c0..], ld, &idx, &mut got[4..4 + n], mode);
                        assert!(
                            got[..4].iter().chain(&got[4 + n..]).all(|x| x.is_nan()),
                            "{isa:?} wrote outside"
                        );
                        let same = got[4..4 + n]
                            .iter()
                            .zip(&want[4..4 + n])
                            .all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same, "{isa:?} n {n} c0 {c0} {mode:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn gather_rows_equals_gather_add_row_by_row_on_every_isa() {
        // Small and MNIST-sized matrices (long lists of a few hundred rows), few and many
        // list rows.
        for (mrows, row_counts) in [
            (
                120,
                &[0usize, 1, 3, 4, 5, 7, 8, 9, 11, 12, 13, 17, 25, 33][..],
            ),
            (450, &[1, 12, 13, 64, 70][..]),
        ] {
            gather_rows_case(mrows, row_counts);
        }
    }

    fn gather_rows_case(mrows: usize, row_counts: &[usize]) {
        let ld = 140;
        let m = matrix(mrows, ld, 5);
        let k = StreamKey::new(6);
        // About a quarter and three quarters of the rows: short and long lists, which the
        // AVX-512 kernel tiles differently.
        for (rows, dense) in row_counts.iter().flat_map(|&r| [(r, false), (r, true)]) {
            let stride = mrows;
            let mut idx = vec![0u32; rows * stride];
            let mut nnz = vec![0u32; rows];
            for r in 0..rows {
                let list: Vec<u32> = (0..mrows as u32)
                    .filter(|&i| k.derive(r as u64).draw(i as u64).is_multiple_of(4) != dense)
                    .collect();
                idx[r * stride..r * stride + list.len()].copy_from_slice(&list);
                nnz[r] = list.len() as u32;
            }
            let lists = Lists {
                idx: &idx,
                stride,
                nnz: &nnz,
            };
            for n in [
                0usize, 1, 15, 16, 17, 31, 32, 33, 40, 63, 64, 65, 90, 129, 140,
            ] {
                for mode in [Accumulate::Set, Accumulate::Add, Accumulate::Sub] {
                    let ld_out = n + 3;
                    let mut want = vec![2.0f32; rows * ld_out];
                    for r in 0..rows {
                        gather_add_scalar(
                            &m,
                            ld,
                            lists.row(r),
                            &mut want[r * ld_out..r * ld_out + n],
                            mode,
                        );
                    }
                    for isa in Isa::available() {
                        let mut got = vec![2.0f32; rows * ld_out];
                        gather_rows_with(isa, &m, ld, n, lists, &mut got, ld_out, mode);
                        let same = got
                            .iter()
                            .zip(&want)
                            .all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(
                            same,
                            "{isa:?} {mrows} × {ld}, rows {rows} dense {dense} n {n} {mode:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn max_index_is_the_maximum_on_every_isa() {
        let max_index = |isa: Isa, idx: &[u32]| with_kernel!(checked isa, |k| k.max_index(idx));
        let k = StreamKey::new(11);
        for isa in Isa::available() {
            for n in (0..70).chain([255, 1000]) {
                for shift in [0, 16, 31] {
                    let idx: Vec<u32> = (0..n as u64).map(|i| k.draw(i) >> shift).collect();
                    let want = idx.iter().copied().max().unwrap_or(0);
                    assert_eq!(max_index(isa, &idx), want, "{isa:?} n {n} shift {shift}");
                    assert_eq!(max_index_scalar(&idx), want, "n {n} shift {shift}");
                }
                // The maximum in the last (tail) position.
                let mut idx = vec![3u32; n];
                if let Some(last) = idx.last_mut() {
                    *last = u32::MAX;
                    assert_eq!(max_index(isa, &idx), u32::MAX, "{isa:?} n {n}");
                }
            }
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn with_an_isa_this_cpu_lacks_panics_before_running() {
        // Every `*_with` of the crate panics the same way (the one dispatch of `kernel.rs`).
        for isa in Isa::ALL.into_iter().filter(|i| !i.is_available()) {
            let r = std::panic::catch_unwind(|| {
                let mut out = [7.0f32; 4];
                gather_add_with(isa, &[1.0; 4], 4, &[0], &mut out, Accumulate::Set);
                out
            });
            let msg = r.expect_err("ran an unavailable ISA");
            let msg = msg.downcast_ref::<String>().expect("a formatted panic");
            assert!(msg.contains("not available on this CPU"), "{msg}");
        }
    }

    #[test]
    fn gather_rows_into_split_columns_equals_one_call_on_every_isa() {
        // Each block of a split view, gathered on its own from `&m[j0..]`, gives the bits of
        // the scalar reference over all columns, and touches nothing outside the view (the
        // output's padding columns are NaN and must stay so).
        let (mrows, ld) = (200, 140);
        let m = matrix(mrows, ld, 9);
        let k = StreamKey::new(10);
        for rows in [1usize, 5, 13, 40] {
            let mut idx = vec![0u32; rows * mrows];
            let mut nnz = vec![0u32; rows];
            for r in 0..rows {
                let list: Vec<u32> = (0..mrows as u32)
                    .filter(|&i| k.derive(r as u64).draw(i as u64).is_multiple_of(3))
                    .collect();
                idx[r * mrows..r * mrows + list.len()].copy_from_slice(&list);
                nnz[r] = list.len() as u32;
            }
            let lists = Lists {
                idx: &idx,
                stride: mrows,
                nnz: &nnz,
            };
            for n in [1usize, 16, 33, 130] {
                let ld_out = n + 5;
                let mut want = vec![f32::NAN; rows * ld_out];
                for r in 0..rows {
                    let o = &mut want[r * ld_out..r * ld_out + n];
                    o.fill(1.5);
                    gather_add_scalar(&m, ld, lists.row(r), o, Accumulate::Add);
                }
                for isa in Isa::available() {
                    for at in [0, 1, n / 2, 16.min(n), 17.min(n), n] {
                        let mut got = vec![f32::NAN; rows * ld_out];
                        for r in 0..rows {
                            got[r * ld_out..r * ld_out + n].fill(1.5);
                        }
                        let view = RowsMut::new(&mut got, rows, n, ld_out);
                        let (mut a, mut b) = view.split_at_col(at);
                        gather_rows_into_with(isa, &m[at..], ld, lists, &mut b, Accumulate::Add);
                        gather_rows_into_with(isa, &m, ld, lists, &mut a, Accumulate::Add);
                        let same = got
                            .iter()
                            .zip(&want)
                            .all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same, "{isa:?} rows {rows} n {n} split at {at}");
                    }
                }
            }
        }
    }

    #[test]
    fn binary_indices_match_scalar_on_every_isa() {
        let k = StreamKey::new(8);
        for n in (0..=67).chain([127, 128, 129, 784, 1000]) {
            let x: Vec<f32> = (0..n)
                .map(|j| k.derive(n as u64).draw(j as u64).is_multiple_of(5) as u8 as f32)
                .collect();
            let mut want = vec![u32::MAX; n + 4];
            let count = binary_indices_scalar(&x, &mut want).unwrap();
            assert_eq!(count, x.iter().filter(|&&v| v == 1.0).count());
            for isa in Isa::available() {
                let mut got = vec![u32::MAX; n + 4];
                assert_eq!(
                    binary_indices_with(isa, &x, &mut got),
                    Some(count),
                    "{isa:?} n {n}"
                );
                assert_eq!(&got[..count], &want[..count], "{isa:?} n {n}");
                assert!(
                    got[n..].iter().all(|&v| v == u32::MAX),
                    "{isa:?} wrote past n"
                );
                // Any value other than 0 or 1 anywhere (including the tail) is refused.
                for bad in [0.5f32, f32::NAN, 2.0, f32::INFINITY] {
                    if n > 0 {
                        let mut y = x.clone();
                        y[n - 1] = bad;
                        assert_eq!(
                            binary_indices_with(isa, &y, &mut got),
                            None,
                            "{isa:?} n {n} {bad}"
                        );
                    }
                }
                let mut y = x.clone();
                y.iter_mut().for_each(|v| {
                    if *v == 0.0 {
                        *v = -0.0
                    }
                });
                assert_eq!(
                    binary_indices_with(isa, &y, &mut got),
                    Some(count),
                    "-0.0 is 0"
                );
            }
        }
    }

    #[test]
    fn gather_equals_dense_product_up_to_rounding() {
        let (rows, ld) = (40, 70);
        let m = matrix(rows, ld, 3);
        let v: Vec<f32> = (0..rows).map(|i| (i % 3 == 1) as u8 as f32).collect();
        let idx: Vec<u32> = (0..rows as u32).filter(|&i| v[i as usize] == 1.0).collect();
        let mut out = vec![0.0; ld];
        gather_add(&m, ld, &idx, &mut out, Accumulate::Set);
        for j in 0..ld {
            let dense: f64 = (0..rows).map(|i| v[i] as f64 * m[i * ld + j] as f64).sum();
            assert!((out[j] as f64 - dense).abs() < 1e-5, "column {j}");
        }
    }

    #[test]
    fn empty_index_list_sets_zero_and_nan_propagates() {
        let m = vec![f32::NAN; 20];
        let mut out = vec![7.0; 10];
        gather_add(&m, 10, &[], &mut out, Accumulate::Set);
        assert!(out.iter().all(|&x| x == 0.0));
        gather_add(&m, 10, &[1], &mut out, Accumulate::Add);
        assert!(out.iter().all(|x| x.is_nan()));
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn row_past_the_end_panics() {
        let m = vec![0.0; 20];
        let mut out = vec![0.0; 10];
        gather_add(&m, 10, &[2], &mut out, Accumulate::Set);
    }

    #[test]
    fn transpose_matches_scalar_on_every_isa() {
        let sizes = [0usize, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40, 65];
        for &rows in &sizes {
            for &cols in &sizes {
                let (ld_src, ld_dst) = (cols + 3, rows + 5);
                let src = matrix(rows.max(1), ld_src, (rows * 100 + cols) as u64);
                let len = cols.max(1) * ld_dst;
                let mut want = vec![f32::NAN; len];
                transpose_scalar(&src, ld_src, rows, cols, &mut want, ld_dst);
                for isa in Isa::available() {
                    let mut got = vec![f32::NAN; len];
                    transpose_with(isa, &src, ld_src, rows, cols, &mut got, ld_dst);
                    let same = got
                        .iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{isa:?} {rows}×{cols}");
                }
                for (j, row) in want.chunks(ld_dst).enumerate().take(cols) {
                    for (i, x) in row.iter().enumerate() {
                        if i < rows {
                            assert_eq!(*x, src[i * ld_src + j]);
                        } else {
                            assert!(x.is_nan(), "padding written");
                        }
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn transpose_past_the_end_panics() {
        let src = vec![0.0; 20];
        let mut dst = vec![0.0; 20];
        transpose(&src, 5, 4, 5, &mut dst, 3);
    }

    #[test]
    fn transpose_round_trips() {
        let m = matrix(37, 53, 4);
        let mut t = vec![0.0; 53 * 37];
        transpose(&m, 53, 37, 53, &mut t, 37);
        let mut back = vec![0.0; 37 * 53];
        transpose(&t, 37, 53, 37, &mut back, 53);
        assert_eq!(m, back);
        assert_eq!(t[5 * 37 + 2], m[2 * 53 + 5]);
    }
}
