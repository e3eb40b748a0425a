//! The approximations every instruction set shares: `exp` on `(-∞, 0]`, the logistic sigmoid
//! and softplus, written once over the lane operations of `Simd` (`src/lanes.rs`) so that the scalar,
//! AVX2 + FMA and AVX-512 kernels execute the *same* sequence of IEEE operations (each `fma`
//! a fused multiply-add with one rounding, each division correctly rounded) and therefore
//! give bit-identical results.
//!
//! # Accuracy (measured by `tests/isa_vs_scalar.rs` against f64; every ISA gives the same)
//! - `sigmoid`: max absolute error 8.9e-8 (at x ≈ 8.65) over a sweep of [−100, 100] in
//!   steps of 1e-4 and 2²⁰ random bit patterns; the tests enforce 2e-7. (Error budget: about
//!   2 ulp relative in `e`, weighted by `σ(1−σ) ≤ 1/4`, plus the roundings of `1 + e` and of
//!   the quotient.) Exact: `σ(±0) = 0.5`; `σ(x) = 1` for `x ≥ 17` and `+∞`; `σ(x) = 0` for
//!   `x < −87` and `−∞` (the true value there is below 1.7e-38); `σ(NaN)` is NaN. Monotone
//!   over the sweep.
//! - `softplus`: max relative error 2.3e-7 over [−87, 100] in steps of 1e-3 (the tests
//!   enforce 1e-6); below −87 it returns `max(x, 0) = 0` where the true value is below
//!   1.7e-38; `+∞ → +∞`, `−∞ → 0`, NaN → NaN.
//!
//! # The exponential
//! `exp(t)` for `t ≤ 0` is Cephes' `expf` built with FMA:
//!
//! ```text
//! n = round(t · log2(e))               (ties to even: t·log2e + 1.5·2²³ rounds in the fma)
//! r = t − n·C1 − n·C2                  (C1 + C2 = ln 2; two fmas, |r| ≤ ln2/2)
//! exp(r) ≈ 1 + r + r²·P(r)             (P of degree 5, Cephes' coefficients)
//! exp(t) = 2ⁿ · exp(r)                 (2ⁿ built in the exponent bits)
//! ```
//!
//! For `t < −87` the result is flushed to exactly 0 by a select, so that `2ⁿ` never needs a
//! subnormal exponent (`n ≥ −126` holds for `t ≥ −87`), and so that `σ(−∞) = 0` exactly.
//! Huge, infinite and NaN inputs produce garbage in the intermediate integer bits (no traps,
//! wrapping integer arithmetic), which the final select discards, or NaN, which propagates.

use crate::lanes::Simd;

/// log₂(e).
pub const LOG2E: f32 = std::f32::consts::LOG2_E;
/// 1.5 · 2²³: adding it to `|v| < 2²²` rounds `v` to an integer (ties to even) held in the
/// low mantissa bits, and its own bit pattern has 22 low zero bits, so
/// `(bits(v + MAGIC) + 127) << 23` is the bit pattern of `2^round(v)` for `round(v) ∈ [−126, 127]`.
pub const MAGIC: f32 = 12_582_912.0;
/// The high part of ln 2, 0.693359375 (9 significant bits: `n · C1` is exact for |n| < 2¹⁵).
pub const LN2_C1: f32 = 355.0 / 512.0;
/// The low part of ln 2: `C1 + C2 = ln 2` to about 2⁻³⁵.
pub const LN2_C2: f32 = -2.121_944_4e-4;
/// Cephes `expf` coefficients, highest degree first: `exp(r) ≈ 1 + r + r²·P(r)` on
/// `|r| ≤ ln2/2`, relative error below 1 ulp in exact arithmetic.
pub const EXP_P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5, // Cephes: 5.0000001201e-1, which rounds to 0.5 in f32
];
/// Below this argument `exp_nonpositive` returns exactly 0 (`e^{-87} ≈ 1.6·10⁻³⁸`, the
/// smallest power of two it builds is 2⁻¹²⁶).
pub const EXP_CUTOFF: f32 = -87.0;
/// `log1p(e) = 2·atanh(s)`, `s = e/(2+e) ∈ [0, 1/3]` for `e ∈ [0, 1]`:
/// `2s · (1 + w/3 + w²/5 + … + w⁶/13)` with `w = s² ≤ 1/9`; the first omitted term is below
/// `w⁷/15 ≈ 1.4·10⁻⁸` relative. Coefficients highest degree first.
pub const ATANH_Q: [f32; 6] = [
    1.0 / 13.0,
    1.0 / 11.0,
    1.0 / 9.0,
    1.0 / 7.0,
    1.0 / 5.0,
    1.0 / 3.0,
];
/// 2²⁴: a probability's Bernoulli threshold is `trunc(min(p · 2²⁴, 2²⁴))` (see
/// [`crate::rng::threshold`]).
pub const TWO_24: f32 = 16_777_216.0;

/// The smallest `q` that [`softplus`]'s series squares (2⁻⁴⁰).
const Q_FLOOR: f32 = 9.094_947e-13;

/// `exp(t)` for `t ≤ 0` (the callers pass `−|x|`); exactly 0 for `t < −87`; NaN for NaN.
/// Relative error about 2 ulp for `t ∈ [−87, 0]` (2ⁿ·y may round once more where the result
/// is subnormal).
#[inline(always)]
pub(crate) fn exp_nonpositive<S: Simd>(s: S, t: S::F) -> S::F {
    let magic = s.splat(MAGIC);
    // z = MAGIC + n, n = round(t · log2e) ∈ [−126, 0] for t ∈ [−87, 0].
    let z = s.fma(t, s.splat(LOG2E), magic);
    let n = s.sub(z, magic);
    let r = s.fma(n, s.splat(-LN2_C1), t);
    let r = s.fma(n, s.splat(-LN2_C2), r);
    let mut y = s.splat(EXP_P[0]);
    for &c in &EXP_P[1..] {
        y = s.fma(y, r, s.splat(c));
    }
    let r2 = s.mul(r, r);
    let y = s.add(s.fma(y, r2, r), s.splat(1.0));
    let e = s.mul(y, s.pow2_from_magic(z));
    s.select_lt(t, s.splat(EXP_CUTOFF), s.splat(0.0), e)
}

/// The logistic function `σ(x) = 1 / (1 + e^{−x})`, no branch: with `e = exp(−|x|)`,
/// `σ = 1/(1+e)` for `x ≥ 0` and `e/(1+e)` for `x < 0` (accurate in both tails).
#[inline(always)]
pub(crate) fn sigmoid<S: Simd>(s: S, x: S::F) -> S::F {
    sigmoid_given(s, x, exp_nonpositive(s, s.neg_abs(x)))
}

/// [`sigmoid`] from `e = exp(−|x|)`.
#[inline(always)]
pub(crate) fn sigmoid_given<S: Simd>(s: S, x: S::F, e: S::F) -> S::F {
    let one = s.splat(1.0);
    // NaN x: e is NaN, and so is the quotient whichever numerator the select picks.
    let num = s.select_lt(x, s.splat(0.0), e, one);
    s.div(num, s.add(one, e))
}

/// `(σ(x), softplus(x))` with one exponential: bit for bit [`sigmoid`] and [`softplus`].
#[inline(always)]
pub(crate) fn sigmoid_softplus<S: Simd>(s: S, x: S::F) -> (S::F, S::F) {
    let e = exp_nonpositive(s, s.neg_abs(x));
    (sigmoid_given(s, x, e), softplus_given(s, x, e))
}

/// `softplus(x) = log(1 + eˣ) = max(x, 0) + log1p(e^{−|x|})`, no branch.
#[inline(always)]
pub(crate) fn softplus<S: Simd>(s: S, x: S::F) -> S::F {
    softplus_given(s, x, exp_nonpositive(s, s.neg_abs(x)))
}

/// [`softplus`] from `e = exp(−|x|)`.
#[inline(always)]
fn softplus_given<S: Simd>(s: S, x: S::F, e: S::F) -> S::F {
    // d = 2q with q = e/(2+e), log1p(e) = 2·atanh(q) = d·(1 + q²/3 + q⁴/5 + …). Computing
    // 2q rather than q keeps it normal (q alone is subnormal for |x| ≈ 86.6…87.3), and scaling
    // by 2 commutes with rounding elsewhere, so the bits are those of q + q.
    let d = s.div(s.add(e, e), s.add(s.splat(2.0), e));
    // Below 2⁻⁴⁰, q² only adds terms that vanish next to 1 in `p`, but where q² is subnormal
    // (|x| ≈ 43…51) each operation on it takes a microcode assist, 30 times slower (measured:
    // 21 ns instead of 0.7 ns per element). Raising q to 2⁻⁴⁰ inside w keeps w normal and
    // changes no result: p is 1 exactly either way.
    let qw = s.max(s.mul(d, s.splat(0.5)), s.splat(Q_FLOOR));
    let w = s.mul(qw, qw);
    let mut p = s.splat(ATANH_Q[0]);
    for &c in &ATANH_Q[1..] {
        p = s.fma(p, w, s.splat(c));
    }
    let p = s.fma(p, w, s.splat(1.0));
    let log1p = s.mul(d, p);
    // max(NaN, 0) is 0 with x86 semantics, but log1p carries the NaN.
    s.add(s.max(x, s.splat(0.0)), log1p)
}
