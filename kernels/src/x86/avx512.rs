//! The AVX-512 instruction set (F, DQ, BW, VL): 16 f32 lanes; tails through mask registers
//! (`_mm512_maskz_loadu_ps` / `_mm512_mask_storeu_ps` touch only the masked lanes), random
//! words with `vpmullq`, index compression with `vpcompressd`.

use core::arch::x86_64::*;

use super::{MIX_M1, MIX_M2, POPCOUNT8, counters};
use crate::dispatch::Isa;
use crate::kernel::Avx512;
use crate::lanes::Simd;
use crate::math::TWO_24;
use crate::rng::{GOLDEN, StreamKey, UNIT_STEP};
use crate::simd::impl_kernel;

/// The random stream: counter words for the next vector, the previous word vector and the
/// lane selection (`first & 1 ..`) of `[cur : nxt]` (see the [module docs](super)).
pub(crate) struct Rng512 {
    ctr: __m512i,
    cur: __m512i,
    idx: __m512i,
}

/// Lanes `0..n` of a 16-lane mask (`n ≤ 16`).
#[inline(always)]
fn first_lanes(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

/// Lane operations whose only requirement is the token's instruction set.
macro_rules! lane_ops {
    ($(fn $name:ident($($a:ident: $t:ty),*) -> $r:ty { $($body:tt)* })*) => {$(
        #[inline(always)]
        fn $name(self, $($a: $t),*) -> $r {
            // SAFETY: `self` exists only if the CPU has AVX-512 F/DQ/BW/VL (see
            // `Avx512::try_new`), and these intrinsics take no pointers.
            unsafe { $($body)* }
        }
    )*};
}

impl Avx512 {
    /// SplitMix64's finalizer ([`crate::rng::mix64`]) on each 64-bit lane.
    #[inline(always)]
    fn mix64(self, z: __m512i) -> __m512i {
        // SAFETY: `self` proves AVX-512 F/DQ; no pointers.
        unsafe {
            let z = _mm512_xor_si512(z, _mm512_srli_epi64::<30>(z));
            let z = _mm512_mullo_epi64(z, _mm512_set1_epi64(MIX_M1 as i64));
            let z = _mm512_xor_si512(z, _mm512_srli_epi64::<27>(z));
            let z = _mm512_mullo_epi64(z, _mm512_set1_epi64(MIX_M2 as i64));
            _mm512_xor_si512(z, _mm512_srli_epi64::<31>(z))
        }
    }
}

impl Simd for Avx512 {
    const LANES: usize = 16;
    type F = __m512;
    type U = __m512i;
    type Rng = Rng512;
    type Acc = (__m512d, __m512d);

    lane_ops! {
        fn splat(x: f32) -> __m512 { _mm512_set1_ps(x) }
        fn add(a: __m512, b: __m512) -> __m512 { _mm512_add_ps(a, b) }
        fn sub(a: __m512, b: __m512) -> __m512 { _mm512_sub_ps(a, b) }
        fn mul(a: __m512, b: __m512) -> __m512 { _mm512_mul_ps(a, b) }
        fn div(a: __m512, b: __m512) -> __m512 { _mm512_div_ps(a, b) }
        fn fma(a: __m512, b: __m512, c: __m512) -> __m512 { _mm512_fmadd_ps(a, b, c) }
        fn neg_abs(a: __m512) -> __m512 {
            _mm512_castsi512_ps(_mm512_or_si512(
                _mm512_castps_si512(a),
                _mm512_set1_epi32(i32::MIN),
            ))
        }
        fn select_lt(a: __m512, b: __m512, t: __m512, f: __m512) -> __m512 {
            _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b), f, t)
        }
        fn max(a: __m512, b: __m512) -> __m512 { _mm512_max_ps(a, b) }
        fn pow2_from_magic(z: __m512) -> __m512 {
            _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(
                _mm512_castps_si512(z),
                _mm512_set1_epi32(127),
            )))
        }
        fn bernoulli(p: __m512, u: __m512i) -> __m512 {
            let two24 = _mm512_set1_ps(TWO_24);
            // min(2²⁴, NaN) is NaN (x86 returns the second operand), converted to i32::MIN.
            let t = _mm512_cvttps_epi32(_mm512_min_ps(two24, _mm512_mul_ps(p, two24)));
            let k = _mm512_cmplt_epi32_mask(_mm512_srli_epi32::<8>(u), t);
            _mm512_maskz_mov_ps(k, _mm512_set1_ps(1.0))
        }
        fn keep_first(v: __m512, n: usize) -> __m512 { _mm512_maskz_mov_ps(first_lanes(n), v) }
        fn select_eq(a: __m512, b: __m512, t: __m512, f: __m512) -> __m512 {
            _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b), f, t)
        }
        fn unit(u: __m512i) -> __m512 {
            // u >> 8 < 2²⁴ converts exactly; the product by 2⁻²⁴ is exact.
            _mm512_mul_ps(
                _mm512_cvtepi32_ps(_mm512_srli_epi32::<8>(u)),
                _mm512_set1_ps(UNIT_STEP),
            )
        }
        fn acc_zero() -> (__m512d, __m512d) { (_mm512_setzero_pd(), _mm512_setzero_pd()) }
        fn acc_add(acc: (__m512d, __m512d), v: __m512) -> (__m512d, __m512d) {
            let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
            let hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps::<1>(v));
            (_mm512_add_pd(acc.0, lo), _mm512_add_pd(acc.1, hi))
        }
        fn acc_total(acc: (__m512d, __m512d)) -> f64 {
            _mm512_reduce_add_pd(_mm512_add_pd(acc.0, acc.1))
        }
    }

    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m512 {
        // SAFETY: the caller guarantees 16 readable floats at `p`; `self` proves AVX-512.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn load_part(self, p: *const f32, n: usize) -> __m512 {
        debug_assert!(0 < n && n < 16);
        // SAFETY: the caller guarantees `n` readable floats at `p`; the masked load does not
        // access (or fault on) the lanes outside the mask; `self` proves AVX-512.
        unsafe { _mm512_maskz_loadu_ps(first_lanes(n), p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m512) {
        // SAFETY: the caller guarantees 16 writable floats at `p`; `self` proves AVX-512.
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn store_part(self, p: *mut f32, v: __m512, n: usize) {
        debug_assert!(0 < n && n < 16);
        // SAFETY: the caller guarantees `n` writable floats at `p`; the masked store writes
        // only the lanes in the mask; `self` proves AVX-512.
        unsafe { _mm512_mask_storeu_ps(p, first_lanes(n), v) }
    }
    #[inline(always)]
    unsafe fn gather(self, p: *const f32, stride: usize, n: usize) -> __m512 {
        debug_assert!(0 < n && n <= 16 && 15 * stride <= i32::MAX as usize);
        // SAFETY: the caller guarantees `p + l·stride` readable for `l < n` and the offsets
        // `l·stride` within i32; the masked gather reads only the first `n` lanes and leaves
        // the others at `src = 0`; `self` proves AVX-512 F.
        unsafe {
            let offsets = _mm512_mullo_epi32(
                _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                _mm512_set1_epi32(stride as i32),
            );
            _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), first_lanes(n), offsets, p)
        }
    }
    #[inline(always)]
    unsafe fn scatter(self, p: *mut f32, stride: usize, v: __m512, n: usize) {
        debug_assert!(0 < n && n <= 16 && 15 * stride <= i32::MAX as usize);
        // SAFETY: the caller guarantees `p + l·stride` writable for `l < n` and the offsets
        // within i32; the masked scatter writes only the first `n` lanes; `self` proves
        // AVX-512 F.
        unsafe {
            let offsets = _mm512_mullo_epi32(
                _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                _mm512_set1_epi32(stride as i32),
            );
            _mm512_mask_i32scatter_ps::<4>(p, first_lanes(n), offsets, v)
        }
    }

    #[inline(always)]
    fn rng(self, key: StreamKey, first: u64) -> Rng512 {
        let c: [u64; 8] = counters(key, first);
        let o = (first & 1) as i32;
        // SAFETY: `self` proves AVX-512 F; no pointers.
        unsafe {
            let ctr = _mm512_set_epi64(
                c[7] as i64,
                c[6] as i64,
                c[5] as i64,
                c[4] as i64,
                c[3] as i64,
                c[2] as i64,
                c[1] as i64,
                c[0] as i64,
            );
            let idx = _mm512_add_epi32(
                _mm512_set1_epi32(o),
                _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
            );
            let step = _mm512_set1_epi64(GOLDEN.wrapping_mul(8) as i64);
            Rng512 {
                ctr: _mm512_add_epi64(ctr, step),
                cur: self.mix64(ctr),
                idx,
            }
        }
    }

    #[inline(always)]
    fn draws(self, r: &mut Rng512) -> __m512i {
        let nxt = self.mix64(r.ctr);
        // SAFETY: `self` proves AVX-512 F; no pointers.
        unsafe {
            r.ctr = _mm512_add_epi64(r.ctr, _mm512_set1_epi64(GOLDEN.wrapping_mul(8) as i64));
            // Lanes `o .. o + 16` of [cur : nxt] (indices ≥ 16 select from `nxt`).
            let out = _mm512_permutex2var_epi32(r.cur, r.idx, nxt);
            r.cur = nxt;
            out
        }
    }
}

/// Nonzero indices: per 16 elements, a compare into a mask, `vpcompressd` of the lane
/// indices, and a masked store of exactly `popcount(mask)` lanes.
#[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")]
fn nonzero_indices_avx512(x: &[f32], out: &mut [u32]) -> usize {
    let n = x.len();
    let out = &mut out[..n];
    let (px, po) = (x.as_ptr(), out.as_mut_ptr());
    let zero = _mm512_setzero_ps();
    let step = _mm512_set1_epi32(16);
    let mut idx = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    let mut count = 0usize;
    let mut i = 0;
    // `count ≤ i` throughout (one index at most per element read), so a store of `cnt ≤ 16`
    // lanes at `count` after reading elements `i .. i + m` ends at or before `i + m ≤ n`.
    while i + 16 <= n {
        // SAFETY: `i + 16 ≤ n = x.len()`.
        let v = unsafe { _mm512_loadu_ps(px.add(i)) };
        let m = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(v, zero);
        if m != 0 {
            let cnt = (POPCOUNT8[(m & 0xff) as usize] + POPCOUNT8[(m >> 8) as usize]) as usize;
            let c = _mm512_maskz_compress_epi32(m, idx);
            // SAFETY: `count + cnt ≤ i + 16 ≤ n = out.len()` (see above); only the first
            // `cnt` lanes are written.
            unsafe { _mm512_mask_storeu_epi32(po.add(count).cast(), first_lanes(cnt), c) };
            count += cnt;
        }
        idx = _mm512_add_epi32(idx, step);
        i += 16;
    }
    if i < n {
        let tail = first_lanes(n - i);
        // SAFETY: the mask covers elements `i .. n` of `x`; masked-off lanes are not read.
        let v = unsafe { _mm512_maskz_loadu_ps(tail, px.add(i)) };
        let m = _mm512_mask_cmp_ps_mask::<_CMP_NEQ_UQ>(tail, v, zero);
        let cnt = (POPCOUNT8[(m & 0xff) as usize] + POPCOUNT8[(m >> 8) as usize]) as usize;
        let c = _mm512_maskz_compress_epi32(m, idx);
        // SAFETY: `count + cnt ≤ n = out.len()`; only the first `cnt` lanes are written.
        unsafe { _mm512_mask_storeu_epi32(po.add(count).cast(), first_lanes(cnt), c) };
        count += cnt;
    }
    count
}

/// Changed indices: [`nonzero_indices_avx512`]'s loop comparing `x` with `y` instead of 0,
/// without its branch on an empty mask (a Gibbs step flips 3–70% of the vectors of 16, too
/// unpredictable to branch on: AIS 2–5% faster without it, 2026-11-28). A loop over the set
/// bits instead of the compress measured 10% slower in AIS.
#[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")]
fn changed_indices_avx512(x: &[f32], y: &[f32], out: &mut [u32]) -> usize {
    let n = x.len();
    let out = &mut out[..n];
    let (px, py, po) = (x.as_ptr(), y[..n].as_ptr(), out.as_mut_ptr());
    let step = _mm512_set1_epi32(16);
    let mut idx = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    let mut count = 0usize;
    let mut i = 0;
    // `count ≤ i` throughout (one index at most per element read), so a store of `cnt ≤ 16`
    // lanes at `count` after reading elements `i .. i + m` ends at or before `i + m ≤ n`.
    while i < n {
        let lanes = first_lanes((n - i).min(16));
        // SAFETY: the mask covers elements `i .. min(i + 16, n)` of `x` and `y` (both of
        // length `n`); masked-off lanes are not read.
        let (v, w) = unsafe {
            (
                _mm512_maskz_loadu_ps(lanes, px.add(i)),
                _mm512_maskz_loadu_ps(lanes, py.add(i)),
            )
        };
        let m = _mm512_mask_cmp_ps_mask::<_CMP_NEQ_UQ>(lanes, v, w);
        let cnt = m.count_ones() as usize;
        let c = _mm512_maskz_compress_epi32(m, idx);
        // SAFETY: `count + cnt ≤ min(i + 16, n) ≤ out.len()` (see above); only the first
        // `cnt` lanes are written.
        unsafe { _mm512_mask_storeu_epi32(po.add(count).cast(), first_lanes(cnt), c) };
        count += cnt;
        idx = _mm512_add_epi32(idx, step);
        i += 16;
    }
    count
}

impl_kernel!(Avx512, Isa::Avx512, "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma";
    nonzero_indices: nonzero_indices_avx512,
    changed_indices: changed_indices_avx512,
);
