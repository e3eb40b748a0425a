//! The lane operations each instruction set provides ([`Simd`]) and the loop bodies written
//! once over them, shared by every ISA.
//!
//! An implementor of [`Simd`] is a *proof token* (a zero-sized value that can only be made
//! where the CPU has its instruction set, see [`crate::kernel`]), so its lane operations can
//! be safe. Each ISA instantiates the generic bodies below inside a thin
//! `#[target_feature]` shim (`x86/avx2.rs`, `x86/avx512.rs`); the bodies and every lane
//! operation are `#[inline(always)]`, so the whole loop compiles with the shim's features.
//!
//! Bit-identity across ISAs follows from two rules: the bodies and [`crate::math`] call the
//! same operations in the same order for every lane count, and each operation below has the
//! same IEEE result on every ISA (the semantics are stated on each method; the scalar token
//! implements x86's `min`/`max`/`select` rules with bit masks, and `fma` with `f32::mul_add`).

use crate::math;
use crate::rng::StreamKey;

/// Lane operations of one instruction set. `F` holds [`Simd::LANES`] `f32`, `U` as many `u32`.
pub(crate) trait Simd: Copy {
    /// f32 lanes per vector.
    const LANES: usize;
    /// A vector of `f32`.
    type F: Copy;
    /// A vector of `u32` (random draws).
    type U: Copy;
    /// The state of the random stream: produces the draws of [`StreamKey`] in order.
    type Rng;
    /// An f64 accumulator for reductions.
    type Acc: Copy;

    /// Every lane `x`.
    fn splat(self, x: f32) -> Self::F;
    /// `a + b`.
    fn add(self, a: Self::F, b: Self::F) -> Self::F;
    /// `a − b`.
    fn sub(self, a: Self::F, b: Self::F) -> Self::F;
    /// `a · b`.
    fn mul(self, a: Self::F, b: Self::F) -> Self::F;
    /// `a / b`, correctly rounded.
    fn div(self, a: Self::F, b: Self::F) -> Self::F;
    /// `a · b + c` with a single rounding.
    fn fma(self, a: Self::F, b: Self::F, c: Self::F) -> Self::F;
    /// `−|a|` (sign bit set; NaN stays NaN).
    fn neg_abs(self, a: Self::F) -> Self::F;
    /// `if a < b { t } else { f }` per lane (ordered compare: false when either is NaN).
    fn select_lt(self, a: Self::F, b: Self::F, t: Self::F, f: Self::F) -> Self::F;
    /// `if a > b { a } else { b }` per lane (x86 `maxps`: `b` when either is NaN).
    fn max(self, a: Self::F, b: Self::F) -> Self::F;
    /// The f32 whose bits are `(bits(z) + 127) << 23` (wrapping): `2ⁿ` for `z = MAGIC + n`.
    fn pow2_from_magic(self, z: Self::F) -> Self::F;
    /// Per lane `1.0` if `(u >> 8) < trunc(min(p·2²⁴, 2²⁴))` as i32 (NaN → i32::MIN), else
    /// `0.0`: [`crate::rng::bernoulli`] exactly, for every `p`.
    fn bernoulli(self, p: Self::F, u: Self::U) -> Self::F;
    /// `v` with lanes `n..` set to `+0.0` (`n < LANES`).
    fn keep_first(self, v: Self::F, n: usize) -> Self::F;

    /// A zero accumulator.
    fn acc_zero(self) -> Self::Acc;
    /// `acc + v`, each lane widened to f64.
    fn acc_add(self, acc: Self::Acc, v: Self::F) -> Self::Acc;
    /// The sum of the accumulator's lanes.
    fn acc_total(self, acc: Self::Acc) -> f64;

    /// Loads `LANES` values.
    ///
    /// # Safety
    /// `p .. p + LANES` must be valid for reads.
    unsafe fn load(self, p: *const f32) -> Self::F;
    /// Loads the first `n` lanes (the rest are `+0.0`) and reads nothing past `p + n`.
    ///
    /// # Safety
    /// `0 < n < LANES` and `p .. p + n` valid for reads.
    unsafe fn load_part(self, p: *const f32, n: usize) -> Self::F;
    /// Stores `LANES` values.
    ///
    /// # Safety
    /// `p .. p + LANES` must be valid for writes.
    unsafe fn store(self, p: *mut f32, v: Self::F);
    /// Stores the first `n` lanes and writes nothing else.
    ///
    /// # Safety
    /// `0 < n < LANES` and `p .. p + n` valid for writes.
    unsafe fn store_part(self, p: *mut f32, v: Self::F, n: usize);

    /// The stream of `key` starting at draw `first`.
    fn rng(self, key: StreamKey, first: u64) -> Self::Rng;
    /// The next `LANES` draws: lane `l` of the `k`-th call is draw `first + k·LANES + l`.
    fn draws(self, rng: &mut Self::Rng) -> Self::U;
}

// The bodies below take slices whose lengths the `Kernel` methods have checked; they
// re-slice every input to the output's length `n` (a no-op after those checks, and a panic
// rather than an out-of-bounds access if one were missed), so every pointer offset below is
// bounded by `n` and stays inside its slice.

/// `prob[j] = σ(scale·pre[j] + bias[j])`.
#[inline(always)]
pub(crate) fn sigmoid_affine<S: Simd>(
    s: S,
    pre: &[f32],
    scale: f32,
    bias: &[f32],
    prob: &mut [f32],
) {
    let n = prob.len();
    let (pre, bias) = (&pre[..n], &bias[..n]);
    let vscale = s.splat(scale);
    let (pp, pb, po) = (pre.as_ptr(), bias.as_ptr(), prob.as_mut_ptr());
    let mut i = 0;
    while i + S::LANES <= n {
        // SAFETY: `i + LANES ≤ n` and `pre`, `bias`, `prob` each hold `n` elements.
        unsafe {
            let x = s.fma(vscale, s.load(pp.add(i)), s.load(pb.add(i)));
            s.store(po.add(i), math::sigmoid(s, x));
        }
        i += S::LANES;
    }
    if i < n {
        let m = n - i;
        // SAFETY: `0 < m < LANES` (the loop above stopped) and `i + m = n`: the partial
        // loads and store touch elements `i..n` of slices of length `n`.
        unsafe {
            let x = s.fma(vscale, s.load_part(pp.add(i), m), s.load_part(pb.add(i), m));
            s.store_part(po.add(i), math::sigmoid(s, x), m);
        }
    }
}

/// `prob[j] = σ(scale·pre[j] + bias[j])`, `state[j] = bernoulli(prob[j], draw first + j)`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn sigmoid_affine_sample<S: Simd>(
    s: S,
    pre: &[f32],
    scale: f32,
    bias: &[f32],
    key: StreamKey,
    first: u64,
    prob: &mut [f32],
    state: &mut [f32],
) {
    let n = prob.len();
    let (pre, bias, state) = (&pre[..n], &bias[..n], &mut state[..n]);
    let vscale = s.splat(scale);
    let mut rng = s.rng(key, first);
    let (pp, pb) = (pre.as_ptr(), bias.as_ptr());
    let (po, ps) = (prob.as_mut_ptr(), state.as_mut_ptr());
    let mut i = 0;
    while i + S::LANES <= n {
        let u = s.draws(&mut rng);
        // SAFETY: `i + LANES ≤ n` and all four slices hold `n` elements.
        unsafe {
            let x = s.fma(vscale, s.load(pp.add(i)), s.load(pb.add(i)));
            let p = math::sigmoid(s, x);
            s.store(po.add(i), p);
            s.store(ps.add(i), s.bernoulli(p, u));
        }
        i += S::LANES;
    }
    if i < n {
        let m = n - i;
        let u = s.draws(&mut rng);
        // SAFETY: `0 < m < LANES` and `i + m = n`: only elements `i..n` are touched.
        unsafe {
            let x = s.fma(vscale, s.load_part(pp.add(i), m), s.load_part(pb.add(i), m));
            let p = math::sigmoid(s, x);
            s.store_part(po.add(i), p, m);
            s.store_part(ps.add(i), s.bernoulli(p, u), m);
        }
    }
}

/// [`sigmoid_affine_sample`] that also returns `Σ_j softplus(scale·pre[j] + bias[j])`, summed
/// as [`softplus_sum_affine`] sums: both from one exponential per element.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn softplus_sum_affine_sample<S: Simd>(
    s: S,
    pre: &[f32],
    scale: f32,
    bias: &[f32],
    key: StreamKey,
    first: u64,
    prob: &mut [f32],
    state: &mut [f32],
) -> f64 {
    let n = prob.len();
    let (pre, bias, state) = (&pre[..n], &bias[..n], &mut state[..n]);
    let vscale = s.splat(scale);
    let mut rng = s.rng(key, first);
    let (pp, pb) = (pre.as_ptr(), bias.as_ptr());
    let (po, ps) = (prob.as_mut_ptr(), state.as_mut_ptr());
    let mut acc = s.acc_zero();
    let mut i = 0;
    while i + S::LANES <= n {
        let u = s.draws(&mut rng);
        // SAFETY: `i + LANES ≤ n` and all four slices hold `n` elements.
        unsafe {
            let x = s.fma(vscale, s.load(pp.add(i)), s.load(pb.add(i)));
            let (p, sp) = math::sigmoid_softplus(s, x);
            s.store(po.add(i), p);
            s.store(ps.add(i), s.bernoulli(p, u));
            acc = s.acc_add(acc, sp);
        }
        i += S::LANES;
    }
    if i < n {
        let m = n - i;
        let u = s.draws(&mut rng);
        // SAFETY: `0 < m < LANES` and `i + m = n`: only elements `i..n` are touched.
        unsafe {
            let x = s.fma(vscale, s.load_part(pp.add(i), m), s.load_part(pb.add(i), m));
            let (p, sp) = math::sigmoid_softplus(s, x);
            s.store_part(po.add(i), p, m);
            s.store_part(ps.add(i), s.bernoulli(p, u), m);
            // The missing lanes hold softplus(0) = ln 2: drop them.
            acc = s.acc_add(acc, s.keep_first(sp, m));
        }
    }
    s.acc_total(acc)
}

/// `state[j] = bernoulli(p[j], draw first + j)`.
#[inline(always)]
pub(crate) fn bernoulli<S: Simd>(s: S, p: &[f32], key: StreamKey, first: u64, state: &mut [f32]) {
    let n = state.len();
    let p = &p[..n];
    let mut rng = s.rng(key, first);
    let (pp, ps) = (p.as_ptr(), state.as_mut_ptr());
    let mut i = 0;
    while i + S::LANES <= n {
        let u = s.draws(&mut rng);
        // SAFETY: `i + LANES ≤ n` and both slices hold `n` elements.
        unsafe { s.store(ps.add(i), s.bernoulli(s.load(pp.add(i)), u)) };
        i += S::LANES;
    }
    if i < n {
        let m = n - i;
        let u = s.draws(&mut rng);
        // SAFETY: `0 < m < LANES` and `i + m = n`: only elements `i..n` are touched.
        unsafe { s.store_part(ps.add(i), s.bernoulli(s.load_part(pp.add(i), m), u), m) };
    }
}

/// `Σ_j softplus(scale·pre[j] + bias[j])`, each term in f32, summed in f64 lanes.
#[inline(always)]
pub(crate) fn softplus_sum_affine<S: Simd>(s: S, pre: &[f32], scale: f32, bias: &[f32]) -> f64 {
    let n = pre.len();
    let bias = &bias[..n];
    let vscale = s.splat(scale);
    let (pp, pb) = (pre.as_ptr(), bias.as_ptr());
    let mut acc = s.acc_zero();
    let mut i = 0;
    while i + S::LANES <= n {
        // SAFETY: `i + LANES ≤ n` and both slices hold `n` elements.
        let x = unsafe { s.fma(vscale, s.load(pp.add(i)), s.load(pb.add(i))) };
        acc = s.acc_add(acc, math::softplus(s, x));
        i += S::LANES;
    }
    if i < n {
        let m = n - i;
        // SAFETY: `0 < m < LANES` and `i + m = n`: only elements `i..n` are read.
        let x = unsafe { s.fma(vscale, s.load_part(pp.add(i), m), s.load_part(pb.add(i), m)) };
        // The missing lanes hold softplus(0) = ln 2: drop them.
        acc = s.acc_add(acc, s.keep_first(math::softplus(s, x), m));
    }
    s.acc_total(acc)
}
