//! The safe entry points: slices in, checked lengths, one dispatch per call.
//!
//! Each function runs on [`Isa::current`] (the best instruction set of this CPU, unless
//! `RBM_FORCE_ISA` says otherwise; decided once) and records it
//! ([`record_use`](crate::dispatch::record_use)). Its `*_with` twin runs a given instruction
//! set, for tests and benchmarks. Code that makes many small calls can instead take a
//! [`Kernel`] token once and call its methods.
//!
//! # Asking for an instruction set the CPU lacks
//! Every `*_with(isa, …)` function of the crate — these and the binary products of
//! [`crate::binary`] — **panics** if this CPU lacks `isa`, before running or recording
//! anything; none falls back. A test or benchmark that names an instruction set means to
//! check or time that one: a silent fallback would check or time another under its name
//! (and would have to pick which), so the loops of the tests and benches run over
//! [`Isa::available`] and skip the others, saying so. Only the choice of [`Isa::current`] falls
//! back, once, when `RBM_FORCE_ISA` names a missing instruction set (see
//! [`crate::dispatch`]); the dispatched functions never ask for a missing one.
//!
//! All of them dispatch through one macro in [`crate::kernel`], which maps an [`Isa`] to its
//! token and instantiates the generic call for it.
//!
//! The contract of each operation (tails, aliasing, draws, accuracy) is on [`Kernel`].

use crate::dispatch::Isa;
use crate::kernel::{Kernel, with_kernel};
use crate::rng::StreamKey;

/// `prob[j] = σ(scale·pre[j] + bias[j])`: the Gibbs epilogue without sampling (`scale = 1`),
/// or with an inverse temperature `β` for annealed importance sampling. Bit-identical on
/// every instruction set. See [`Kernel::sigmoid_affine`].
///
/// # Panics
/// If `pre`, `bias` and `prob` differ in length.
#[track_caller]
pub fn sigmoid_affine(pre: &[f32], scale: f32, bias: &[f32], prob: &mut [f32]) {
    with_kernel!(current, |k| k.sigmoid_affine(pre, scale, bias, prob))
}

/// [`sigmoid_affine`] on the instruction set `isa`.
///
/// # Panics
/// As [`sigmoid_affine`], and if this CPU lacks `isa`.
#[track_caller]
pub fn sigmoid_affine_with(isa: Isa, pre: &[f32], scale: f32, bias: &[f32], prob: &mut [f32]) {
    with_kernel!(checked isa, |k| k.sigmoid_affine(pre, scale, bias, prob))
}

/// The fused Gibbs half-step epilogue: `prob[j] = σ(scale·pre[j] + bias[j])` and
/// `state[j] = rng::bernoulli(prob[j], key.draw(first + j))`, in one pass. Bit-identical on
/// every instruction set. See [`Kernel::sigmoid_affine_sample`].
///
/// # Panics
/// If the four slices differ in length, or `first + prob.len()` overflows `u64`.
#[track_caller]
pub fn sigmoid_affine_sample(
    pre: &[f32],
    scale: f32,
    bias: &[f32],
    key: StreamKey,
    first: u64,
    prob: &mut [f32],
    state: &mut [f32],
) {
    with_kernel!(current, |k| k
        .sigmoid_affine_sample(pre, scale, bias, key, first, prob, state))
}

/// [`sigmoid_affine_sample`] on the instruction set `isa`.
///
/// # Panics
/// As [`sigmoid_affine_sample`], and if this CPU lacks `isa`.
#[track_caller]
#[allow(clippy::too_many_arguments)]
pub fn sigmoid_affine_sample_with(
    isa: Isa,
    pre: &[f32],
    scale: f32,
    bias: &[f32],
    key: StreamKey,
    first: u64,
    prob: &mut [f32],
    state: &mut [f32],
) {
    with_kernel!(checked isa, |k| k.sigmoid_affine_sample(
        pre, scale, bias, key, first, prob, state
    ))
}

/// `state[j] = rng::bernoulli(p[j], key.draw(first + j))`: 1.0 with probability `p[j]`, else
/// 0.0. Bit-identical on every instruction set. See [`Kernel::bernoulli`].
///
/// # Panics
/// If the slices differ in length, or `first + p.len()` overflows `u64`.
#[track_caller]
pub fn bernoulli(p: &[f32], key: StreamKey, first: u64, state: &mut [f32]) {
    with_kernel!(current, |k| k.bernoulli(p, key, first, state))
}

/// [`bernoulli`] on the instruction set `isa`.
///
/// # Panics
/// As [`bernoulli`], and if this CPU lacks `isa`.
#[track_caller]
pub fn bernoulli_with(isa: Isa, p: &[f32], key: StreamKey, first: u64, state: &mut [f32]) {
    with_kernel!(checked isa, |k| k.bernoulli(p, key, first, state))
}

/// `Σ_j softplus(scale·pre[j] + bias[j])` in f64: the hidden term of the free energy
/// (`−F(v) = bᵀv + Σ_j softplus(c_j + W_j·v)`). Relative error ≤ 1e-6 against f64; the
/// instruction sets agree to within that bound, not bit for bit. See
/// [`Kernel::softplus_sum_affine`].
///
/// # Panics
/// If `pre` and `bias` differ in length.
#[track_caller]
pub fn softplus_sum_affine(pre: &[f32], scale: f32, bias: &[f32]) -> f64 {
    with_kernel!(current, |k| k.softplus_sum_affine(pre, scale, bias))
}

/// [`softplus_sum_affine`] on the instruction set `isa`.
///
/// # Panics
/// As [`softplus_sum_affine`], and if this CPU lacks `isa`.
#[track_caller]
pub fn softplus_sum_affine_with(isa: Isa, pre: &[f32], scale: f32, bias: &[f32]) -> f64 {
    with_kernel!(checked isa, |k| k.softplus_sum_affine(pre, scale, bias))
}

/// Writes the indices `j` with `x[j] != 0.0` in increasing order to `out[..count]` and
/// returns `count`; `out[count..]` is left untouched. For 0/1 states this is the index list
/// of the ones, for binary gather-add products. See [`Kernel::nonzero_indices`].
///
/// # Panics
/// If `out.len() < x.len()`, or `x.len() > 2³²`.
#[track_caller]
pub fn nonzero_indices(x: &[f32], out: &mut [u32]) -> usize {
    with_kernel!(current, |k| k.nonzero_indices(x, out))
}

/// [`nonzero_indices`] on the instruction set `isa`.
///
/// # Panics
/// As [`nonzero_indices`], and if this CPU lacks `isa`.
#[track_caller]
pub fn nonzero_indices_with(isa: Isa, x: &[f32], out: &mut [u32]) -> usize {
    with_kernel!(checked isa, |k| k.nonzero_indices(x, out))
}

/// [`sigmoid_affine_sample`] and [`softplus_sum_affine`] of the same arguments in one pass,
/// with one exponential per element: `prob` and `state` as [`sigmoid_affine_sample`] writes
/// them (bit-identical on every instruction set) and the sum [`softplus_sum_affine`] returns
/// on the current instruction set. See [`Kernel::softplus_sum_affine_sample`].
///
/// # Panics
/// As [`sigmoid_affine_sample`].
#[track_caller]
pub fn softplus_sum_affine_sample(
    pre: &[f32],
    scale: f32,
    bias: &[f32],
    key: StreamKey,
    first: u64,
    prob: &mut [f32],
    state: &mut [f32],
) -> f64 {
    with_kernel!(current, |k| k.softplus_sum_affine_sample(
        pre, scale, bias, key, first, prob, state
    ))
}

/// [`softplus_sum_affine_sample`] on the instruction set `isa`.
///
/// # Panics
/// As [`softplus_sum_affine_sample`], and if this CPU lacks `isa`.
#[track_caller]
#[allow(clippy::too_many_arguments)]
pub fn softplus_sum_affine_sample_with(
    isa: Isa,
    pre: &[f32],
    scale: f32,
    bias: &[f32],
    key: StreamKey,
    first: u64,
    prob: &mut [f32],
    state: &mut [f32],
) -> f64 {
    with_kernel!(checked isa, |k| k.softplus_sum_affine_sample(
        pre, scale, bias, key, first, prob, state
    ))
}

/// `Σ_j [softplus(to·pre[j] + bias_to[j]) − softplus(from·pre[j] + bias_from[j])]` in f64,
/// computed as a difference (two exponentials per element, one logarithm per 32 vectors): AIS's
/// log-weight increment between the inverse temperatures `from` and `to`, with each bias
/// already multiplied by its temperature. The instruction sets agree to rounding, not bit for
/// bit. See [`Kernel::softplus_diff_affine`].
///
/// # Panics
/// If `pre` and the two biases differ in length.
#[track_caller]
pub fn softplus_diff_affine(pre: &[f32], from: (f32, &[f32]), to: (f32, &[f32])) -> f64 {
    with_kernel!(current, |k| k.softplus_diff_affine(pre, from, to))
}

/// [`softplus_diff_affine`] on the instruction set `isa`.
///
/// # Panics
/// As [`softplus_diff_affine`], and if this CPU lacks `isa`.
#[track_caller]
pub fn softplus_diff_affine_with(
    isa: Isa,
    pre: &[f32],
    from: (f32, &[f32]),
    to: (f32, &[f32]),
) -> f64 {
    with_kernel!(checked isa, |k| k.softplus_diff_affine(pre, from, to))
}

/// [`softplus_diff_affine`] and [`sigmoid_affine_sample`] of the `to` arguments in one pass:
/// `prob` and `state` bit for bit as [`sigmoid_affine_sample`] writes them on every
/// instruction set. See [`Kernel::softplus_diff_affine_sample`].
///
/// # Panics
/// As the two.
#[track_caller]
#[allow(clippy::too_many_arguments)]
pub fn softplus_diff_affine_sample(
    pre: &[f32],
    from: (f32, &[f32]),
    to: (f32, &[f32]),
    key: StreamKey,
    first: u64,
    prob: &mut [f32],
    state: &mut [f32],
) -> f64 {
    with_kernel!(current, |k| k
        .softplus_diff_affine_sample(pre, from, to, key, first, prob, state))
}

/// [`softplus_diff_affine_sample`] on the instruction set `isa`.
///
/// # Panics
/// As [`softplus_diff_affine_sample`], and if this CPU lacks `isa`.
#[track_caller]
#[allow(clippy::too_many_arguments)]
pub fn softplus_diff_affine_sample_with(
    isa: Isa,
    pre: &[f32],
    from: (f32, &[f32]),
    to: (f32, &[f32]),
    key: StreamKey,
    first: u64,
    prob: &mut [f32],
    state: &mut [f32],
) -> f64 {
    with_kernel!(checked isa, |k| k.softplus_diff_affine_sample(
        pre, from, to, key, first, prob, state
    ))
}

/// Writes the indices `j` with `old[j] != new[j]` in increasing order to `out` and returns
/// their count: the units a Gibbs step flipped. See [`Kernel::changed_indices`].
///
/// # Panics
/// If `old` and `new` differ in length, `out` is shorter, or they are longer than 2³².
#[track_caller]
pub fn changed_indices(old: &[f32], new: &[f32], out: &mut [u32]) -> usize {
    with_kernel!(current, |k| k.changed_indices(old, new, out))
}

/// [`changed_indices`] on the instruction set `isa`.
///
/// # Panics
/// As [`changed_indices`], and if this CPU lacks `isa`.
#[track_caller]
pub fn changed_indices_with(isa: Isa, old: &[f32], new: &[f32], out: &mut [u32]) -> usize {
    with_kernel!(checked isa, |k| k.changed_indices(old, new, out))
}

/// The softmax of each group of `q` consecutive logits (`x` and `probs` are row-major
/// `[groups, q]`, `groups = x.len() / q`): `probs[g·q + a] = exp(x_a − max) / Σ_b exp(x_b −
/// max)` over the group's logits, max-subtracted so that no finite logit overflows. `+∞`
/// logits share their group's mass, an all-`−∞` group is uniform, a NaN logit makes its
/// group NaN. Bit-identical on every instruction set. See [`Kernel::softmax_groups`].
///
/// # Panics
/// If `q == 0` or `q > 2²⁴`, `q` does not divide `x.len()`, or `probs.len() != x.len()`.
#[track_caller]
pub fn softmax_groups(x: &[f32], q: usize, probs: &mut [f32]) {
    with_kernel!(current, |k| k.softmax_groups(x, q, probs))
}

/// [`softmax_groups`] on the instruction set `isa`.
///
/// # Panics
/// As [`softmax_groups`], and if this CPU lacks `isa`.
#[track_caller]
pub fn softmax_groups_with(isa: Isa, x: &[f32], q: usize, probs: &mut [f32]) {
    with_kernel!(checked isa, |k| k.softmax_groups(x, q, probs))
}

/// The Gibbs half-step `h → v` epilogue of categorical (Potts) visible units: the
/// [`softmax_groups`] of `x` into `probs`, and for each group `g` one state `a_g` drawn with
/// draw `first + g` of `key` (`rng::categorical` of the group's probabilities: the inverse
/// CDF in the order `a = 0..q`), written as a one-hot row into `states` (`1.0` at `g·q + a_g`,
/// `0.0` elsewhere) and as the index `ones[g] = g·q + a_g` (what [`nonzero_indices`] of
/// `states` gives, the row list of the binary gather-add products). Bit-identical on every
/// instruction set. See [`Kernel::softmax_groups_sample`].
///
/// # Panics
/// As [`softmax_groups`], and if `states.len() != x.len()`, `ones.len() != x.len() / q`,
/// `x.len() > 2³²`, or `first + x.len() / q` overflows `u64`.
#[track_caller]
pub fn softmax_groups_sample(
    x: &[f32],
    q: usize,
    key: StreamKey,
    first: u64,
    probs: &mut [f32],
    states: &mut [f32],
    ones: &mut [u32],
) {
    with_kernel!(current, |k| k
        .softmax_groups_sample(x, q, key, first, probs, states, ones))
}

/// [`softmax_groups_sample`] on the instruction set `isa`.
///
/// # Panics
/// As [`softmax_groups_sample`], and if this CPU lacks `isa`.
#[track_caller]
#[allow(clippy::too_many_arguments)]
pub fn softmax_groups_sample_with(
    isa: Isa,
    x: &[f32],
    q: usize,
    key: StreamKey,
    first: u64,
    probs: &mut [f32],
    states: &mut [f32],
    ones: &mut [u32],
) {
    with_kernel!(checked isa, |k| k.softmax_groups_sample(
        x, q, key, first, probs, states, ones
    ))
}
