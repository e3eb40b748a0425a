//! The portable instruction set, [`Scalar`]: one lane, plain Rust, always available.
//!
//! It runs the very same bodies ([`crate::simd`]) and approximations ([`crate::math`]) as
//! the SIMD instruction sets, so its results are bit-identical to theirs — it is *not* the
//! libm-based oracle in [`crate::scalar`]. `fma` is `f32::mul_add` (a libm call where the
//! target lacks FMA: slow but exact), and the x86 rules of `select`/`max` are written with
//! bit masks, so no element costs a branch.

use crate::dispatch::Isa;
use crate::kernel::Scalar;
use crate::lanes::Simd;
use crate::rng::{StreamKey, threshold};
use crate::simd::impl_kernel;

/// The draws of one stream, one at a time, each 64-bit word mixed once for its two draws.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScalarRng {
    key: StreamKey,
    /// The index of the next draw.
    j: u64,
    /// The word of draw `j - 1` (or of `j` when `j` is odd at the start).
    word: u64,
}

/// All ones if `c`, else all zeros.
#[inline(always)]
fn mask(c: bool) -> u32 {
    (c as u32).wrapping_neg()
}

impl Simd for Scalar {
    const LANES: usize = 1;
    type F = f32;
    type U = u32;
    type Rng = ScalarRng;
    type Acc = f64;

    #[inline(always)]
    fn splat(self, x: f32) -> f32 {
        x
    }
    #[inline(always)]
    fn add(self, a: f32, b: f32) -> f32 {
        a + b
    }
    #[inline(always)]
    fn sub(self, a: f32, b: f32) -> f32 {
        a - b
    }
    #[inline(always)]
    fn mul(self, a: f32, b: f32) -> f32 {
        a * b
    }
    #[inline(always)]
    fn div(self, a: f32, b: f32) -> f32 {
        a / b
    }
    #[inline(always)]
    fn fma(self, a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
    #[inline(always)]
    fn neg_abs(self, a: f32) -> f32 {
        f32::from_bits(a.to_bits() | 0x8000_0000)
    }
    #[inline(always)]
    fn select_lt(self, a: f32, b: f32, t: f32, f: f32) -> f32 {
        let m = mask(a < b);
        f32::from_bits((t.to_bits() & m) | (f.to_bits() & !m))
    }
    #[inline(always)]
    fn max(self, a: f32, b: f32) -> f32 {
        self.select_lt(b, a, a, b)
    }
    #[inline(always)]
    fn pow2_from_magic(self, z: f32) -> f32 {
        f32::from_bits(z.to_bits().wrapping_add(127) << 23)
    }
    #[inline(always)]
    fn bernoulli(self, p: f32, u: u32) -> f32 {
        // rng::bernoulli without its branch. `threshold` saturates where the SIMD versions
        // clamp to 2²⁴ first; both compare the same against `u >> 8 < 2²⁴`.
        f32::from_bits(mask(((u >> 8) as i32) < threshold(p)) & 1.0f32.to_bits())
    }
    #[inline(always)]
    fn keep_first(self, v: f32, n: usize) -> f32 {
        if n == 0 { 0.0 } else { v }
    }
    #[inline(always)]
    fn select_eq(self, a: f32, b: f32, t: f32, f: f32) -> f32 {
        let m = mask(a == b);
        f32::from_bits((t.to_bits() & m) | (f.to_bits() & !m))
    }
    #[inline(always)]
    fn unit(self, u: u32) -> f32 {
        crate::rng::unit(u)
    }

    #[inline(always)]
    fn acc_zero(self) -> f64 {
        0.0
    }
    #[inline(always)]
    fn acc_add(self, acc: f64, v: f32) -> f64 {
        acc + v as f64
    }
    #[inline(always)]
    fn acc_total(self, acc: f64) -> f64 {
        acc
    }

    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> f32 {
        // SAFETY: the caller guarantees `p` is valid for one read (`LANES = 1`).
        unsafe { p.read_unaligned() }
    }
    #[inline(always)]
    unsafe fn load_part(self, _p: *const f32, _n: usize) -> f32 {
        // `0 < n < 1` is impossible: the bodies never make a partial access with one lane.
        unreachable!("a partial vector of one lane")
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: f32) {
        // SAFETY: the caller guarantees `p` is valid for one write (`LANES = 1`).
        unsafe { p.write_unaligned(v) }
    }
    #[inline(always)]
    unsafe fn store_part(self, _p: *mut f32, _v: f32, _n: usize) {
        unreachable!("a partial vector of one lane")
    }
    #[inline(always)]
    unsafe fn gather(self, p: *const f32, _stride: usize, n: usize) -> f32 {
        debug_assert_eq!(n, 1);
        // SAFETY: the caller guarantees `p` valid for one read (`0 < n ≤ LANES = 1`).
        unsafe { p.read_unaligned() }
    }
    #[inline(always)]
    unsafe fn scatter(self, p: *mut f32, _stride: usize, v: f32, n: usize) {
        debug_assert_eq!(n, 1);
        // SAFETY: the caller guarantees `p` valid for one write (`0 < n ≤ LANES = 1`).
        unsafe { p.write_unaligned(v) }
    }

    #[inline(always)]
    fn rng(self, key: StreamKey, first: u64) -> ScalarRng {
        ScalarRng {
            key,
            j: first,
            word: key.word(first >> 1),
        }
    }
    #[inline(always)]
    fn draws(self, r: &mut ScalarRng) -> u32 {
        if r.j & 1 == 0 {
            r.word = r.key.word(r.j >> 1);
        }
        let u = (r.word >> (32 * (r.j & 1))) as u32;
        r.j = r.j.wrapping_add(1);
        u
    }
}

impl_kernel!(Scalar, Isa::Scalar;
    nonzero_indices: nonzero_indices,
    changed_indices: changed_indices,
);

/// The indices `j` with `x[j] != 0.0`, in order, into `out[..count]`.
fn nonzero_indices(x: &[f32], out: &mut [u32]) -> usize {
    let mut count = 0;
    for (j, &v) in x.iter().enumerate() {
        if v != 0.0 {
            out[count] = j as u32;
            count += 1;
        }
    }
    count
}

/// The indices `j` with `old[j] != new[j]`, in order, into `out[..count]`.
fn changed_indices(old: &[f32], new: &[f32], out: &mut [u32]) -> usize {
    let mut count = 0;
    for (j, (&a, &b)) in old.iter().zip(new).enumerate() {
        if a != b {
            out[count] = j as u32;
            count += 1;
        }
    }
    count
}
