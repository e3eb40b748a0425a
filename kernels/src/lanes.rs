//! The lane operations each instruction set provides ([`Simd`]): the one thing the loop
//! bodies of `src/simd.rs` and the approximations of [`crate::math`] are written over.
//!
//! An implementor of [`Simd`] is a *proof token* (a zero-sized value that can only be made
//! where the CPU has its instruction set, see [`crate::kernel`]), so its lane operations can
//! be safe. Each operation has the same IEEE result on every ISA (the semantics are stated on
//! each method; the scalar token implements x86's `min`/`max`/`select` rules with bit masks,
//! and `fma` with `f32::mul_add`).

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
    /// `if a == b { t } else { f }` per lane (ordered compare: false when either is NaN;
    /// `+0.0 == −0.0` and `∞ == ∞`).
    fn select_eq(self, a: Self::F, b: Self::F, t: Self::F, f: Self::F) -> Self::F;
    /// Per lane the uniform `(u >> 8) · 2⁻²⁴` of [`crate::rng::unit`], exactly.
    fn unit(self, u: Self::U) -> Self::F;

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
    /// Loads lane `l` from `p + l·stride` for `l < n`; lanes `n..` are `+0.0` and nothing
    /// else is read (a gather: lane `l` of the softmax kernels is group `l`).
    ///
    /// # Safety
    /// `0 < n ≤ LANES`, `p + l·stride` valid for reads for every `l < n`, and
    /// `(LANES − 1)·stride ≤ i32::MAX`.
    unsafe fn gather(self, p: *const f32, stride: usize, n: usize) -> Self::F;
    /// Stores lane `l` to `p + l·stride` for `l < n` and writes nothing else (a scatter).
    ///
    /// # Safety
    /// `0 < n ≤ LANES`, `p + l·stride` valid for writes for every `l < n`, and
    /// `(LANES − 1)·stride ≤ i32::MAX`.
    unsafe fn scatter(self, p: *mut f32, stride: usize, v: Self::F, n: usize);

    /// The stream of `key` starting at draw `first`.
    fn rng(self, key: StreamKey, first: u64) -> Self::Rng;
    /// The next `LANES` draws: lane `l` of the `k`-th call is draw `first + k·LANES + l`.
    fn draws(self, rng: &mut Self::Rng) -> Self::U;
}
