//! The kernel contract ([`Kernel`]), the instruction-set tokens that implement it, and the
//! one dispatch from an [`Isa`] to its token.
//!
//! Each instruction set is a zero-sized *token* type: [`Scalar`] (always available),
//! [`Avx2Fma`] and [`Avx512`] (x86-64 only). A token value exists only where the CPU runs
//! its instruction set — `try_new()` checks, `unsafe new_unchecked()` trusts the caller — so
//! the [`Kernel`] methods are safe. Generic code can take `K: Kernel` and run a whole Gibbs
//! step on one ISA without dispatching per call; the functions in [`crate::api`] and
//! [`crate::binary`] dispatch on [`Isa::current`] (or on the `isa` of their `*_with` twins)
//! instead, all through one macro that maps an [`Isa`] to its token.
//!
//! The types are declared here; their code lives in a file per instruction set
//! (`src/portable.rs`, `src/x86/avx2.rs`, `src/x86/avx512.rs`), which implements the lane
//! operations and instantiates [`Kernel`] over the shared loop bodies, and in
//! [`crate::binary`] for the binary products. This module imports none of them.
//!
//! # Conventions shared by every method
//! - Any length `n ≥ 0` is valid; there is no alignment requirement. Implementations process
//!   whole vectors and finish the last `n mod LANES` elements with masked loads and stores:
//!   they never read or write an element outside the slices they are given, and they write
//!   every output element exactly once (outputs need not be initialised: NaN is fine).
//! - Inputs are read-only and outputs are `&mut`, so they cannot alias.
//! - `key` and `first` name random draws: element `j` uses draw `first + j` of `key`
//!   ([`StreamKey::draw`]), so a row split into pieces `[a, b)` that pass `first + a` draws
//!   the same numbers as the whole row.
//! - Length mismatches panic (before anything is written), as does `first + n > u64::MAX`.
//! - The softmax kernels work on *groups* of `q` consecutive elements (a categorical unit of
//!   `q` states): there, group `g` uses draw `first + g`, so a row split into pieces of whole
//!   groups `[g0, g1)` that pass `first + g0` draws the same numbers as the whole row.
//!
//! # Bit-identity
//! [`Kernel::sigmoid_affine`], [`Kernel::sigmoid_affine_sample`] and [`Kernel::bernoulli`]
//! give bit-identical results on every ISA (NaN payloads aside), so a seed gives the same
//! model everywhere, and so are the samples of the fused AIS kernels and the probabilities
//! and samples of [`Kernel::softmax_groups`] and [`Kernel::softmax_groups_sample`]. The sums of
//! [`Kernel::softplus_sum_affine`] and [`Kernel::softplus_diff_affine`] agree across ISAs only
//! to within their error bounds (the order of summation differs).

use crate::dispatch::Isa;
use crate::rng::StreamKey;

/// The portable instruction set (one lane). Always available.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scalar;

/// The AVX2 + FMA instruction set. A value proves that the CPU has it: get one from
/// [`Avx2Fma::try_new`].
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Avx2Fma {
    _proof: (),
}

#[cfg(target_arch = "x86_64")]
impl Avx2Fma {
    /// The token, if this CPU has AVX2 and FMA ([`Isa::is_available`]).
    #[inline]
    pub fn try_new() -> Option<Self> {
        Isa::Avx2Fma
            .is_available()
            .then_some(Avx2Fma { _proof: () })
    }

    /// The token, unchecked.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA (`Isa::Avx2Fma.is_available()`): every kernel of the
    /// token executes those instructions.
    #[inline]
    pub unsafe fn new_unchecked() -> Self {
        Avx2Fma { _proof: () }
    }
}

/// The AVX-512 instruction set (F, DQ, BW, VL, with AVX2 and FMA). A value proves that the
/// CPU has it: get one from [`Avx512::try_new`].
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Avx512 {
    _proof: (),
}

#[cfg(target_arch = "x86_64")]
impl Avx512 {
    /// The token, if this CPU has AVX-512 F/DQ/BW/VL, AVX2 and FMA
    /// ([`Isa::is_available`]).
    #[inline]
    pub fn try_new() -> Option<Self> {
        Isa::Avx512.is_available().then_some(Avx512 { _proof: () })
    }

    /// The token, unchecked.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F/DQ/BW/VL, AVX2 and FMA (`Isa::Avx512.is_available()`):
    /// every kernel of the token executes those instructions.
    #[inline]
    pub unsafe fn new_unchecked() -> Self {
        Avx512 { _proof: () }
    }
}

/// The panic of a `*_with(isa, …)` function whose `isa` this CPU lacks.
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn unavailable(isa: Isa) -> ! {
    panic!(
        "rbm-kernels: instruction set {} is not available on this CPU",
        isa.name()
    )
}

/// The dispatch of every kernel of the crate: runs `$body` with `$k` bound to the token of an
/// instruction set, after recording its use ([`crate::dispatch::record_use`]). `$body` is
/// generic code over the token (a [`Kernel`] method, a binary product), so each arm
/// instantiates it for one instruction set.
///
/// - `with_kernel!(checked isa, |k| …)`, the `*_with(isa, …)` functions: the token of `isa`,
///   built with `try_new`; panics ([`unavailable`]) if this CPU lacks `isa`, before recording
///   anything or running any of its instructions.
/// - `with_kernel!(current, |k| …)`, the dispatched functions: the token of [`Isa::current`],
///   which only returns instruction sets this CPU has.
macro_rules! with_kernel {
    (checked $isa:expr, |$k:ident| $body:expr) => {{
        let isa: $crate::dispatch::Isa = $isa;
        match isa {
            $crate::dispatch::Isa::Scalar => {
                $crate::dispatch::record_use(isa);
                let $k = $crate::kernel::Scalar;
                $body
            }
            #[cfg(target_arch = "x86_64")]
            $crate::dispatch::Isa::Avx2Fma => {
                let $k = $crate::kernel::Avx2Fma::try_new()
                    .unwrap_or_else(|| $crate::kernel::unavailable(isa));
                $crate::dispatch::record_use(isa);
                $body
            }
            #[cfg(target_arch = "x86_64")]
            $crate::dispatch::Isa::Avx512 => {
                let $k = $crate::kernel::Avx512::try_new()
                    .unwrap_or_else(|| $crate::kernel::unavailable(isa));
                $crate::dispatch::record_use(isa);
                $body
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => $crate::kernel::unavailable(isa),
        }
    }};
    (current, |$k:ident| $body:expr) => {{
        let isa = $crate::dispatch::Isa::current();
        $crate::dispatch::record_use(isa);
        match isa {
            $crate::dispatch::Isa::Scalar => {
                let $k = $crate::kernel::Scalar;
                $body
            }
            #[cfg(target_arch = "x86_64")]
            $crate::dispatch::Isa::Avx2Fma => {
                // SAFETY: `Isa::current()` returns only ISAs this CPU has.
                let $k = unsafe { $crate::kernel::Avx2Fma::new_unchecked() };
                $body
            }
            #[cfg(target_arch = "x86_64")]
            $crate::dispatch::Isa::Avx512 => {
                // SAFETY: `Isa::current()` returns only ISAs this CPU has.
                let $k = unsafe { $crate::kernel::Avx512::new_unchecked() };
                $body
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => $crate::kernel::unavailable(isa),
        }
    }};
}
pub(crate) use with_kernel;

/// The trampoline of a token: runs `$body` as the body of a function of the token `$s` and
/// the arguments `$a`, compiled with `#[target_feature(enable = $features)]` — where the
/// `#[inline(always)]` code it calls compiles to that instruction set — and called in an
/// `unsafe` block that the token justifies; with no features (the portable token), in place.
/// Every `#[target_feature]` shim that only forwards to a generic body is one of these.
/// `$features` must be implied by the instruction set of `$token` (see its `try_new`).
macro_rules! shim {
    (; $s:ident: $token:ty = $self:expr; ($($a:ident: $t:ty),*) $(-> $r:ty)? $body:block) => {{
        let $s: $token = $self;
        $body
    }};
    ($features:literal; $s:ident: $token:ty = $self:expr; ($($a:ident: $t:ty),*) $(-> $r:ty)? $body:block) => {{
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)]
        fn shim($s: $token, $($a: $t),*) $(-> $r)? $body
        // SAFETY: the token exists only where the CPU has these features (its `try_new`
        // checks them; `new_unchecked`'s caller promises them).
        unsafe { shim($self, $($a),*) }
    }};
}
pub(crate) use shim;

/// The operations every instruction set provides. See the [module docs](self) for the
/// conventions on lengths, tails, aliasing and random draws.
pub trait Kernel: Copy + Send + Sync + core::fmt::Debug + 'static {
    /// The instruction set this kernel runs.
    const ISA: Isa;

    /// `prob[j] = σ(scale·pre[j] + bias[j])`, where `scale·pre[j] + bias[j]` is one fused
    /// multiply-add (so `scale = 1` gives exactly `σ(pre[j] + bias[j])`), and σ is
    /// [`crate::math`]'s approximation (max abs error < 2e-7; exact 0, ½, 1 at −∞, ±0, +∞;
    /// NaN in, NaN out).
    ///
    /// # Panics
    /// If `pre`, `bias` and `prob` differ in length.
    fn sigmoid_affine(self, pre: &[f32], scale: f32, bias: &[f32], prob: &mut [f32]);

    /// The fused Gibbs half-step epilogue: `prob` as in [`Kernel::sigmoid_affine`], and
    /// `state[j] = rng::bernoulli(prob[j], key.draw(first + j))` (1.0 or 0.0), in one pass.
    ///
    /// # Panics
    /// If the four slices differ in length, or `first + prob.len()` overflows `u64`.
    #[allow(clippy::too_many_arguments)]
    fn sigmoid_affine_sample(
        self,
        pre: &[f32],
        scale: f32,
        bias: &[f32],
        key: StreamKey,
        first: u64,
        prob: &mut [f32],
        state: &mut [f32],
    );

    /// `state[j] = rng::bernoulli(p[j], key.draw(first + j))`: 1.0 with probability `p[j]`
    /// (`⌊p·2²⁴⌋/2²⁴` exactly), else 0.0. Any `p` is accepted: `p ≤ 0` and NaN give 0,
    /// `p ≥ 1` gives 1.
    ///
    /// # Panics
    /// If the slices differ in length, or `first + p.len()` overflows `u64`.
    fn bernoulli(self, p: &[f32], key: StreamKey, first: u64, state: &mut [f32]);

    /// `Σ_j softplus(scale·pre[j] + bias[j])` (one fused multiply-add per argument), each
    /// term computed in f32 with relative error < 1e-6 and summed in f64. NaN if any term
    /// is NaN, +∞ if any argument is +∞ (and none NaN).
    ///
    /// # Panics
    /// If `pre` and `bias` differ in length.
    fn softplus_sum_affine(self, pre: &[f32], scale: f32, bias: &[f32]) -> f64;

    /// [`sigmoid_affine_sample`](Kernel::sigmoid_affine_sample) and
    /// [`softplus_sum_affine`](Kernel::softplus_sum_affine) of the same arguments in one pass
    /// (one exponential per element): writes the same `prob` and `state` and returns the same
    /// sum, bit for bit, as the two calls on this instruction set. AIS needs both of the
    /// hidden layer at each temperature.
    ///
    /// # Panics
    /// As [`sigmoid_affine_sample`](Kernel::sigmoid_affine_sample).
    #[allow(clippy::too_many_arguments)]
    fn softplus_sum_affine_sample(
        self,
        pre: &[f32],
        scale: f32,
        bias: &[f32],
        key: StreamKey,
        first: u64,
        prob: &mut [f32],
        state: &mut [f32],
    ) -> f64;

    /// `Σ_j [softplus(to·pre[j] + bias_to[j]) − softplus(from·pre[j] + bias_from[j])]` in
    /// f64 (each argument one fused multiply-add): the change of the hidden units' free-energy
    /// term between two inverse temperatures, AIS's log-weight increment. Computed as a
    /// difference, not as two sums: absolute error about `1e-7·√n` plus the `max(x, 0)`
    /// terms' f32 rounding, where two separate sums would each carry an error proportional
    /// to their own size (sums of thousands of nats). NaN if an argument is NaN (including
    /// `0 · ∞`, a zero temperature with an infinite input) or the difference is `∞ − ∞`.
    /// The instruction sets agree to rounding, not bit for bit.
    ///
    /// # Panics
    /// If `pre` and the two biases differ in length.
    fn softplus_diff_affine(self, pre: &[f32], from: (f32, &[f32]), to: (f32, &[f32])) -> f64;

    /// [`softplus_diff_affine`](Kernel::softplus_diff_affine) and the
    /// [`sigmoid_affine_sample`](Kernel::sigmoid_affine_sample) of the `to` arguments in one
    /// pass: `prob` and `state` bit for bit as that call writes them, and the same difference
    /// as [`softplus_diff_affine`](Kernel::softplus_diff_affine) on this instruction set.
    ///
    /// # Panics
    /// As the two.
    #[allow(clippy::too_many_arguments)]
    fn softplus_diff_affine_sample(
        self,
        pre: &[f32],
        from: (f32, &[f32]),
        to: (f32, &[f32]),
        key: StreamKey,
        first: u64,
        prob: &mut [f32],
        state: &mut [f32],
    ) -> f64;

    /// Writes the indices `j` with `x[j] != 0.0` (NaN counts as nonzero, `−0.0` does not)
    /// in increasing order to `out[..count]` and returns `count`. `out[count..]` is not
    /// written.
    ///
    /// # Panics
    /// If `out.len() < x.len()`, or `x.len() > 2³²` (an index would not fit in `u32`).
    fn nonzero_indices(self, x: &[f32], out: &mut [u32]) -> usize;

    /// Writes the indices `j` with `old[j] != new[j]` (as floats: a NaN on either side
    /// counts as a change, `−0.0` against `0.0` does not) in increasing order to
    /// `out[..count]` and returns `count`: the units a Gibbs step flipped.
    ///
    /// # Panics
    /// If `old` and `new` differ in length, or `out` is shorter than them, or they are longer
    /// than 2³².
    fn changed_indices(self, old: &[f32], new: &[f32], out: &mut [u32]) -> usize;

    /// The softmax of each group of `q` logits: `x` and `probs` hold `groups = x.len() / q`
    /// groups of `q` consecutive elements (row-major `[groups, q]`, the state index fastest),
    /// and for each group
    ///
    /// ```text
    /// m   = max_a x_a                      (over the non-NaN logits)
    /// t_a = x_a − m, and exactly 0 where x_a = m
    /// e_a = exp(t_a)                       (crate::math's exp, flushed to 0 below −87)
    /// s   = (…((0 + e_0) + e_1) + …) + e_{q−1}   (f32, in the order a = 0..q)
    /// p_a = e_a · (1 / s)
    /// ```
    ///
    /// Subtracting the maximum keeps any finite logits (±1e30 included) from overflowing.
    /// Infinities and NaN: a logit of `−∞` has probability 0; if some logits are `+∞`, they
    /// share the mass equally and the others get 0; if all are `−∞`, the group is uniform
    /// (every logit equals the maximum: the rule "the logits equal to the maximum share its
    /// weight" covers both cases); a NaN logit makes every probability of its group NaN.
    /// Accuracy against the exact softmax of the f32 logits: absolute error below 1e-6 (the
    /// tests enforce it; measured 4.8e-7), relative error a few ulp plus the rounding of
    /// `x_a − m` in f32 (about `|x_a − m|·2⁻²⁴`: measured 3.4e-6 at gaps near 80), and the
    /// exponentials below `e⁻⁸⁷` are 0 (true probability below 1.7·10⁻³⁸).
    ///
    /// Every instruction set vectorizes *across* groups (one group per lane, the logits of
    /// state `a` of `LANES` groups gathered with stride `q`), so each lane runs the scalar
    /// sequence above and the results are bit-identical on every ISA for any `q`.
    ///
    /// # Panics
    /// If `q == 0` or `q > 2²⁴`, `x.len()` is not a multiple of `q`, or `probs.len() !=
    /// x.len()`.
    fn softmax_groups(self, x: &[f32], q: usize, probs: &mut [f32]);

    /// [`softmax_groups`](Kernel::softmax_groups), and one categorical sample per group: group
    /// `g` (counted from the start of `x`) takes draw `first + g` of `key` and selects
    /// `a_g = rng::categorical(&probs[g·q..(g+1)·q], key.draw(first + g))` — the inverse CDF
    /// in the order `a = 0..q` over the probabilities written to `probs`, falling back to the
    /// last state of nonzero probability when rounding leaves the draw at or above the total,
    /// and to state 0 for a NaN group. Writes
    ///
    /// - `states`: the one-hot rows, `states[g·q + a] = 1.0` for `a = a_g`, else `0.0`
    ///   (exactly one 1.0 per group, NaN groups included);
    /// - `ones[g] = g·q + a_g`: the index of the group's 1 in `states`, i.e. exactly what
    ///   [`nonzero_indices`](Kernel::nonzero_indices) would return for `states`, the row list
    ///   the binary gather-add products ([`crate::binary`]) take for the next `v → h` pass;
    ///   `ones[g] − g·q` is the category.
    ///
    /// A row split into pieces of whole groups `[g0, g1)` that pass `first + g0` draws the
    /// same states as the whole row (the `ones` of a piece then count from the piece's start).
    ///
    /// # Panics
    /// As [`softmax_groups`](Kernel::softmax_groups), and if `states.len() != x.len()`,
    /// `ones.len() != groups`, `x.len() > 2³²` (an index would not fit in `u32`), or
    /// `first + groups` overflows `u64`.
    #[allow(clippy::too_many_arguments)]
    fn softmax_groups_sample(
        self,
        x: &[f32],
        q: usize,
        key: StreamKey,
        first: u64,
        probs: &mut [f32],
        states: &mut [f32],
        ones: &mut [u32],
    );
}

/// The panic of every length check, kept out of line.
#[cold]
#[inline(never)]
#[track_caller]
fn length_error(what: &str, want: usize, got: usize) -> ! {
    panic!("rbm-kernels: {what} has length {got}, expected {want}")
}

/// Panics unless `got == want`.
#[inline(always)]
#[track_caller]
pub(crate) fn check_len(what: &str, want: usize, got: usize) {
    if got != want {
        length_error(what, want, got);
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn draw_range_error(first: u64, n: usize) -> ! {
    panic!("rbm-kernels: draws first = {first} plus {n} elements overflow u64")
}

/// Panics unless draws `first .. first + n` exist.
#[inline(always)]
#[track_caller]
pub(crate) fn check_draws(first: u64, n: usize) {
    if first.checked_add(n as u64).is_none() {
        draw_range_error(first, n);
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn nonzero_error(n: usize, out: usize) -> ! {
    panic!(
        "rbm-kernels: nonzero_indices needs out.len() ≥ x.len() = {n} ≤ 2^32, got out.len() = {out}"
    )
}

/// Panics unless `out` can hold every index of `x` and every index fits `u32`.
#[inline(always)]
#[track_caller]
pub(crate) fn check_changed(old: usize, new: usize, out: usize) {
    check_len("new", old, new);
    check_nonzero(old, out);
}

#[inline(always)]
#[track_caller]
pub(crate) fn check_nonzero(n: usize, out: usize) {
    if out < n || n as u64 > 1 << 32 {
        nonzero_error(n, out);
    }
}

/// The checks of [`Kernel::softplus_diff_affine`].
#[inline(always)]
#[track_caller]
pub(crate) fn check_diff(pre: usize, bias_from: usize, bias_to: usize) {
    check_len("bias_from", pre, bias_from);
    check_len("bias_to", pre, bias_to);
}

/// The checks of [`Kernel::sigmoid_affine_sample`].
#[inline(always)]
#[track_caller]
pub(crate) fn check_sample(pre: usize, bias: usize, first: u64, prob: usize, state: usize) {
    check_len("pre", prob, pre);
    check_len("bias", prob, bias);
    check_len("state", prob, state);
    check_draws(first, prob);
}

/// The largest group size the softmax kernels accept: the state index `a` and the counts of
/// the sampler are exact in f32, and the gathers' lane offsets `l·q` fit `i32`.
pub const MAX_GROUP: usize = 1 << 24;

#[cold]
#[inline(never)]
#[track_caller]
fn group_error(q: usize, n: usize) -> ! {
    panic!("rbm-kernels: groups of q = {q} (1 ≤ q ≤ 2^24) do not tile {n} logits")
}

/// The checks of [`Kernel::softmax_groups`]; returns the number of groups.
#[inline(always)]
#[track_caller]
pub(crate) fn check_groups(x: usize, q: usize, probs: usize) -> usize {
    if q == 0 || q > MAX_GROUP || !x.is_multiple_of(q) {
        group_error(q, x);
    }
    check_len("probs", x, probs);
    x / q
}

/// The checks of [`Kernel::softmax_groups_sample`].
#[inline(always)]
#[track_caller]
pub(crate) fn check_groups_sample(
    x: usize,
    q: usize,
    first: u64,
    probs: usize,
    states: usize,
    ones: usize,
) {
    let groups = check_groups(x, q, probs);
    check_len("states", x, states);
    check_len("ones", groups, ones);
    check_nonzero(x, x);
    check_draws(first, groups);
}
