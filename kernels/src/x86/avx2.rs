//! The AVX2 + FMA instruction set: 8 f32 lanes; tails through `vmaskmovps` with a lane mask
//! from a table (masked-off lanes are neither read nor written, and cannot fault); 64-bit
//! multiplies for the random words built from three `vpmuludq`; index compression through
//! a 256-entry permutation table.

use core::arch::x86_64::*;

use super::{COMPRESS8, LANE_MASK8, MIX_M1, MIX_M2, POPCOUNT8, counters};
use crate::dispatch::Isa;
use crate::kernel::Avx2Fma;
use crate::lanes::Simd;
use crate::math::TWO_24;
use crate::rng::{GOLDEN, StreamKey, UNIT_STEP};
use crate::simd::impl_kernel;

/// The random stream: counter words for the next vector, the previous word vector, the
/// lane permutation `first & 1 ..` (mod 8) and the blend mask of the lane taken from the
/// next vector (the last one, when `first` is odd; see the [module docs](super)).
pub(crate) struct Rng256 {
    ctr: __m256i,
    cur: __m256i,
    idx: __m256i,
    last: __m256i,
}

/// Lane operations whose only requirement is the token's instruction set.
macro_rules! lane_ops {
    ($(fn $name:ident($($a:ident: $t:ty),*) -> $r:ty { $($body:tt)* })*) => {$(
        #[inline(always)]
        fn $name(self, $($a: $t),*) -> $r {
            // SAFETY: `self` exists only if the CPU has AVX2 and FMA (see
            // `Avx2Fma::try_new`), and these intrinsics take no pointers.
            unsafe { $($body)* }
        }
    )*};
}

/// A mask of the first `n` lanes (`n ≤ 8`).
#[target_feature(enable = "avx2,fma")]
#[inline]
fn first_lanes(n: usize) -> __m256i {
    let n = n.min(8);
    // SAFETY: `8 - n ∈ 0..=8`, so the 8 i32 read lie inside the 16 of `LANE_MASK8`.
    unsafe { _mm256_loadu_si256(LANE_MASK8.as_ptr().add(8 - n).cast()) }
}

impl Avx2Fma {
    /// `a · b` mod 2⁶⁴ per 64-bit lane, for a constant `b = b_hi·2³² + b_lo` given as the
    /// splats `b_lo`, `b_hi`: `a_lo·b_lo + ((a_hi·b_lo + a_lo·b_hi) << 32)`.
    #[inline(always)]
    fn mullo64(self, a: __m256i, b_lo: __m256i, b_hi: __m256i) -> __m256i {
        // SAFETY: `self` proves AVX2; no pointers.
        unsafe {
            let lo = _mm256_mul_epu32(a, b_lo);
            let cross = _mm256_add_epi64(
                _mm256_mul_epu32(_mm256_srli_epi64::<32>(a), b_lo),
                _mm256_mul_epu32(a, b_hi),
            );
            _mm256_add_epi64(lo, _mm256_slli_epi64::<32>(cross))
        }
    }

    /// SplitMix64's finalizer ([`crate::rng::mix64`]) on each 64-bit lane.
    #[inline(always)]
    fn mix64(self, z: __m256i) -> __m256i {
        // SAFETY: `self` proves AVX2; no pointers.
        unsafe {
            let (m1_lo, m1_hi) = (
                _mm256_set1_epi64x((MIX_M1 & 0xffff_ffff) as i64),
                _mm256_set1_epi64x((MIX_M1 >> 32) as i64),
            );
            let (m2_lo, m2_hi) = (
                _mm256_set1_epi64x((MIX_M2 & 0xffff_ffff) as i64),
                _mm256_set1_epi64x((MIX_M2 >> 32) as i64),
            );
            let z = _mm256_xor_si256(z, _mm256_srli_epi64::<30>(z));
            let z = self.mullo64(z, m1_lo, m1_hi);
            let z = _mm256_xor_si256(z, _mm256_srli_epi64::<27>(z));
            let z = self.mullo64(z, m2_lo, m2_hi);
            _mm256_xor_si256(z, _mm256_srli_epi64::<31>(z))
        }
    }
}

impl Simd for Avx2Fma {
    const LANES: usize = 8;
    type F = __m256;
    type U = __m256i;
    type Rng = Rng256;
    type Acc = (__m256d, __m256d);

    lane_ops! {
        fn splat(x: f32) -> __m256 { _mm256_set1_ps(x) }
        fn add(a: __m256, b: __m256) -> __m256 { _mm256_add_ps(a, b) }
        fn sub(a: __m256, b: __m256) -> __m256 { _mm256_sub_ps(a, b) }
        fn mul(a: __m256, b: __m256) -> __m256 { _mm256_mul_ps(a, b) }
        fn div(a: __m256, b: __m256) -> __m256 { _mm256_div_ps(a, b) }
        fn fma(a: __m256, b: __m256, c: __m256) -> __m256 { _mm256_fmadd_ps(a, b, c) }
        fn neg_abs(a: __m256) -> __m256 { _mm256_or_ps(a, _mm256_set1_ps(-0.0)) }
        fn select_lt(a: __m256, b: __m256, t: __m256, f: __m256) -> __m256 {
            _mm256_blendv_ps(f, t, _mm256_cmp_ps::<_CMP_LT_OQ>(a, b))
        }
        fn max(a: __m256, b: __m256) -> __m256 { _mm256_max_ps(a, b) }
        fn pow2_from_magic(z: __m256) -> __m256 {
            _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
                _mm256_castps_si256(z),
                _mm256_set1_epi32(127),
            )))
        }
        fn bernoulli(p: __m256, u: __m256i) -> __m256 {
            let two24 = _mm256_set1_ps(TWO_24);
            // min(2²⁴, NaN) is NaN (x86 returns the second operand), converted to i32::MIN.
            let t = _mm256_cvttps_epi32(_mm256_min_ps(two24, _mm256_mul_ps(p, two24)));
            let m = _mm256_cmpgt_epi32(t, _mm256_srli_epi32::<8>(u));
            _mm256_and_ps(_mm256_castsi256_ps(m), _mm256_set1_ps(1.0))
        }
        fn keep_first(v: __m256, n: usize) -> __m256 {
            _mm256_and_ps(v, _mm256_castsi256_ps(first_lanes(n)))
        }
        fn select_eq(a: __m256, b: __m256, t: __m256, f: __m256) -> __m256 {
            _mm256_blendv_ps(f, t, _mm256_cmp_ps::<_CMP_EQ_OQ>(a, b))
        }
        fn unit(u: __m256i) -> __m256 {
            // u >> 8 < 2²⁴ converts exactly; the product by 2⁻²⁴ is exact.
            _mm256_mul_ps(
                _mm256_cvtepi32_ps(_mm256_srli_epi32::<8>(u)),
                _mm256_set1_ps(UNIT_STEP),
            )
        }
        fn acc_zero() -> (__m256d, __m256d) { (_mm256_setzero_pd(), _mm256_setzero_pd()) }
        fn acc_add(acc: (__m256d, __m256d), v: __m256) -> (__m256d, __m256d) {
            let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
            let hi = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v));
            (_mm256_add_pd(acc.0, lo), _mm256_add_pd(acc.1, hi))
        }
        fn acc_total(acc: (__m256d, __m256d)) -> f64 {
            let s = _mm256_add_pd(acc.0, acc.1);
            let s = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd::<1>(s));
            _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
        }
    }

    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m256 {
        // SAFETY: the caller guarantees 8 readable floats at `p`; `self` proves AVX.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn load_part(self, p: *const f32, n: usize) -> __m256 {
        debug_assert!(0 < n && n < 8);
        // SAFETY: the caller guarantees `n` readable floats at `p`; `vmaskmovps` does not
        // access (or fault on) lanes outside the mask; `self` proves AVX.
        unsafe { _mm256_maskload_ps(p, first_lanes(n)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m256) {
        // SAFETY: the caller guarantees 8 writable floats at `p`; `self` proves AVX.
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn store_part(self, p: *mut f32, v: __m256, n: usize) {
        debug_assert!(0 < n && n < 8);
        // SAFETY: the caller guarantees `n` writable floats at `p`; `vmaskmovps` writes
        // only the lanes in the mask; `self` proves AVX.
        unsafe { _mm256_maskstore_ps(p, first_lanes(n), v) }
    }
    #[inline(always)]
    unsafe fn gather(self, p: *const f32, stride: usize, n: usize) -> __m256 {
        debug_assert!(0 < n && n <= 8 && 7 * stride <= i32::MAX as usize);
        // SAFETY: the caller guarantees `p + l·stride` readable for `l < n` and the offsets
        // `l·stride` within i32; `vgatherdps` reads only the lanes of the mask (the first
        // `n`) and leaves the others at `src = 0`; `self` proves AVX2.
        unsafe {
            let offsets = _mm256_mullo_epi32(
                _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0),
                _mm256_set1_epi32(stride as i32),
            );
            _mm256_mask_i32gather_ps::<4>(
                _mm256_setzero_ps(),
                p,
                offsets,
                _mm256_castsi256_ps(first_lanes(n)),
            )
        }
    }
    #[inline(always)]
    unsafe fn scatter(self, p: *mut f32, stride: usize, v: __m256, n: usize) {
        debug_assert!(0 < n && n <= 8);
        // AVX2 has no scatter: the lanes go through memory, one store each.
        let mut lanes = [0.0f32; 8];
        // SAFETY: `lanes` holds 8 floats; `self` proves AVX.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
        for (l, &x) in lanes.iter().enumerate().take(n) {
            // SAFETY: `l < n`, and the caller guarantees `p + l·stride` writable.
            unsafe { p.add(l * stride).write(x) };
        }
    }

    #[inline(always)]
    fn rng(self, key: StreamKey, first: u64) -> Rng256 {
        let c: [u64; 4] = counters(key, first);
        let o = (first & 1) as i32;
        // SAFETY: `self` proves AVX2; no pointers.
        unsafe {
            let ctr = _mm256_set_epi64x(c[3] as i64, c[2] as i64, c[1] as i64, c[0] as i64);
            Rng256 {
                ctr: _mm256_add_epi64(ctr, _mm256_set1_epi64x(GOLDEN.wrapping_mul(4) as i64)),
                cur: self.mix64(ctr),
                // vpermd reads the low 3 bits: o + 7 = 8 selects lane 0.
                idx: _mm256_add_epi32(
                    _mm256_set1_epi32(o),
                    _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0),
                ),
                last: _mm256_set_epi32(-o, 0, 0, 0, 0, 0, 0, 0),
            }
        }
    }

    #[inline(always)]
    fn draws(self, r: &mut Rng256) -> __m256i {
        let nxt = self.mix64(r.ctr);
        // SAFETY: `self` proves AVX2; no pointers.
        unsafe {
            r.ctr = _mm256_add_epi64(r.ctr, _mm256_set1_epi64x(GOLDEN.wrapping_mul(4) as i64));
            let a = _mm256_permutevar8x32_epi32(r.cur, r.idx);
            let b = _mm256_permutevar8x32_epi32(nxt, r.idx);
            let out = _mm256_blendv_epi8(a, b, r.last);
            r.cur = nxt;
            out
        }
    }
}

/// Stores the lanes of `idx` whose bit is set in the 8-bit mask `m`, in order, to
/// `out[..popcount(m)]`, writes nothing else, and returns `popcount(m)`.
///
/// # Safety
/// `out .. out + popcount(m)` must be valid for writes.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn compress_store(m: usize, idx: __m256i, out: *mut u32) -> usize {
    debug_assert!(m < 256);
    let m = m & 0xff;
    if m == 0 {
        return 0;
    }
    let cnt = POPCOUNT8[m] as usize;
    let nibble_shifts = _mm256_set_epi32(28, 24, 20, 16, 12, 8, 4, 0);
    let perm = _mm256_srlv_epi32(_mm256_set1_epi32(COMPRESS8[m] as i32), nibble_shifts);
    let c = _mm256_permutevar8x32_epi32(idx, perm);
    // SAFETY: the caller guarantees `cnt` writable u32 at `out`; only the first `cnt` lanes
    // are written.
    unsafe { _mm256_maskstore_epi32(out.cast(), first_lanes(cnt), c) };
    cnt
}

/// Nonzero indices: per 8 elements, a compare and `movmskps` into an 8-bit mask, the
/// permutation of the lane indices from [`COMPRESS8`] (nibbles shifted into lanes), and a
/// masked store of exactly `popcount(mask)` lanes.
#[target_feature(enable = "avx2,fma")]
fn nonzero_indices_avx2(x: &[f32], out: &mut [u32]) -> usize {
    let n = x.len();
    let out = &mut out[..n];
    let (px, po) = (x.as_ptr(), out.as_mut_ptr());
    let zero = _mm256_setzero_ps();
    let step = _mm256_set1_epi32(8);
    let mut idx = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
    let mut count = 0usize;
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: `i + 8 ≤ n = x.len()`.
        let v = unsafe { _mm256_loadu_ps(px.add(i)) };
        let m = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NEQ_UQ>(v, zero)) as usize;
        // SAFETY: `count ≤ i` (one index at most per element read so far), so
        // `count + popcount(m) ≤ i + 8 ≤ n = out.len()`.
        count += unsafe { compress_store(m, idx, po.add(count)) };
        idx = _mm256_add_epi32(idx, step);
        i += 8;
    }
    if i < n {
        let r = n - i;
        // SAFETY: the mask covers elements `i .. n` of `x`; masked-off lanes are not read.
        let v = unsafe { _mm256_maskload_ps(px.add(i), first_lanes(r)) };
        let m = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NEQ_UQ>(v, zero)) as usize;
        // SAFETY: `count ≤ i`, so `count + popcount(m) ≤ i + r = n = out.len()`.
        count += unsafe { compress_store(m & ((1 << r) - 1), idx, po.add(count)) };
    }
    count
}

/// Changed indices: [`nonzero_indices_avx2`]'s loop comparing `x` with `y` instead of 0.
#[target_feature(enable = "avx2,fma")]
fn changed_indices_avx2(x: &[f32], y: &[f32], out: &mut [u32]) -> usize {
    let n = x.len();
    let out = &mut out[..n];
    let (px, py, po) = (x.as_ptr(), y[..n].as_ptr(), out.as_mut_ptr());
    let step = _mm256_set1_epi32(8);
    let mut idx = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
    let mut count = 0usize;
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: `i + 8 ≤ n = x.len() = y.len()`.
        let (v, w) = unsafe { (_mm256_loadu_ps(px.add(i)), _mm256_loadu_ps(py.add(i))) };
        let m = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NEQ_UQ>(v, w)) as usize;
        // SAFETY: `count ≤ i` (one index at most per element read so far), so
        // `count + popcount(m) ≤ i + 8 ≤ n = out.len()`.
        count += unsafe { compress_store(m, idx, po.add(count)) };
        idx = _mm256_add_epi32(idx, step);
        i += 8;
    }
    if i < n {
        let r = n - i;
        // SAFETY: the mask covers elements `i .. n` of `x` and `y`; masked-off lanes are not
        // read.
        let (v, w) = unsafe {
            (
                _mm256_maskload_ps(px.add(i), first_lanes(r)),
                _mm256_maskload_ps(py.add(i), first_lanes(r)),
            )
        };
        let m = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NEQ_UQ>(v, w)) as usize;
        // SAFETY: `count ≤ i`, so `count + popcount(m) ≤ i + r = n = out.len()`.
        count += unsafe { compress_store(m & ((1 << r) - 1), idx, po.add(count)) };
    }
    count
}

impl_kernel!(Avx2Fma, Isa::Avx2Fma, "avx2,fma";
    nonzero_indices: nonzero_indices_avx2,
    changed_indices: changed_indices_avx2,
);
