//! Plain scalar reference implementations of every kernel.
//!
//! These are the definitions: each faster version (SIMD, fused, binary) is tested against the
//! function here. They are also what the safe API in the crate root runs today.
//!
//! Conventions: a "row" is one contiguous slice of `n` units; `key` is the row's random stream
//! and `first` the index of the row's first unit in that stream (so a row split into pieces
//! draws the same numbers as the whole row: piece `[a, b)` passes `first + a`).

use crate::rng::{StreamKey, bernoulli as bernoulli_one, categorical};

/// The logistic function `1 / (1 + e^{-x})` in f32. `σ(±∞) = 1, 0`; `σ(NaN) = NaN`.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `softplus(x) = log(1 + e^x)`, computed stably as `max(x, 0) + log1p(e^{-|x|})`
/// (the naive form overflows for x > 88 in f32). `softplus(NaN) = NaN`.
#[inline]
pub fn softplus(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// `state[j] = 1.0` with probability `p[j]` (draw `first + j` of `key`), else `0.0`.
///
/// # Panics
/// If the slices differ in length.
pub fn bernoulli(p: &[f32], key: StreamKey, first: u64, state: &mut [f32]) {
    assert_eq!(p.len(), state.len(), "state length");
    for (j, (s, &pj)) in state.iter_mut().zip(p).enumerate() {
        *s = bernoulli_one(pj, key.draw(first + j as u64));
    }
}

/// `prob[j] = σ(scale·pre[j] + bias[j])` with libm's `exp`; the argument is one fused
/// multiply-add, as in the fast kernels (`scale = 1` gives `σ(pre[j] + bias[j])` exactly).
///
/// # Panics
/// If the three slices differ in length.
pub fn sigmoid_affine(pre: &[f32], scale: f32, bias: &[f32], prob: &mut [f32]) {
    assert_lengths(pre.len(), bias.len(), prob.len());
    for ((p, &x), &b) in prob.iter_mut().zip(pre).zip(bias) {
        *p = sigmoid(scale.mul_add(x, b));
    }
}

/// The Gibbs half-step epilogue: `prob[j] = σ(scale·pre[j] + bias[j])` (libm) and
/// `state[j]` its Bernoulli sample with draw `first + j` of `key`.
///
/// # Panics
/// If the four slices differ in length.
pub fn sigmoid_affine_sample(
    pre: &[f32],
    scale: f32,
    bias: &[f32],
    key: StreamKey,
    first: u64,
    prob: &mut [f32],
    state: &mut [f32],
) {
    sigmoid_affine(pre, scale, bias, prob);
    bernoulli(prob, key, first, state);
}

/// `Σ_j softplus(scale·pre[j] + bias[j])` (libm, each term in f32, summed in f64); the
/// argument is one fused multiply-add, as in the fast kernels.
///
/// # Panics
/// If the slices differ in length.
pub fn softplus_sum_affine(pre: &[f32], scale: f32, bias: &[f32]) -> f64 {
    assert_eq!(pre.len(), bias.len(), "bias length");
    pre.iter()
        .zip(bias)
        .map(|(&x, &b)| softplus(scale.mul_add(x, b)) as f64)
        .sum()
}

/// [`sigmoid_affine_sample`] and [`softplus_sum_affine`] of the same arguments: the oracle of
/// [`Kernel::softplus_sum_affine_sample`](crate::Kernel::softplus_sum_affine_sample).
///
/// # Panics
/// As the two.
#[allow(clippy::too_many_arguments)]
pub fn softplus_sum_affine_sample(
    pre: &[f32],
    scale: f32,
    bias: &[f32],
    key: StreamKey,
    first: u64,
    prob: &mut [f32],
    state: &mut [f32],
) -> f64 {
    sigmoid_affine_sample(pre, scale, bias, key, first, prob, state);
    softplus_sum_affine(pre, scale, bias)
}

/// `Σ_j [softplus(x_to[j]) − softplus(x_from[j])]` with `x = scale·pre[j] + bias[j]` (one
/// fused multiply-add in f32, as in the fast kernels) and each softplus in f64: the oracle of
/// [`Kernel::softplus_diff_affine`](crate::Kernel::softplus_diff_affine).
///
/// # Panics
/// If the slices differ in length.
pub fn softplus_diff_affine(pre: &[f32], from: (f32, &[f32]), to: (f32, &[f32])) -> f64 {
    assert_eq!(pre.len(), from.1.len(), "bias_from length");
    assert_eq!(pre.len(), to.1.len(), "bias_to length");
    let softplus64 = |x: f32| {
        let x = x as f64;
        if x.is_nan() {
            x
        } else {
            x.max(0.0) + (-x.abs()).exp().ln_1p()
        }
    };
    let mut sum = 0.0;
    for ((&x, &bf), &bt) in pre.iter().zip(from.1).zip(to.1) {
        sum += softplus64(to.0.mul_add(x, bt)) - softplus64(from.0.mul_add(x, bf));
    }
    sum
}

/// [`sigmoid_affine_sample`] of the `to` arguments and [`softplus_diff_affine`]: the oracle
/// of [`Kernel::softplus_diff_affine_sample`](crate::Kernel::softplus_diff_affine_sample).
///
/// # Panics
/// As the two.
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
    sigmoid_affine_sample(pre, to.0, to.1, key, first, prob, state);
    softplus_diff_affine(pre, from, to)
}

/// Writes the indices `j` with `old[j] != new[j]` in increasing order to `out[..count]` and
/// returns `count`.
///
/// # Panics
/// If the slices differ in length or `out` is shorter than the number of changes.
pub fn changed_indices(old: &[f32], new: &[f32], out: &mut [u32]) -> usize {
    assert_eq!(old.len(), new.len(), "new length");
    let mut count = 0;
    for (j, (&a, &b)) in old.iter().zip(new).enumerate() {
        if a != b {
            out[count] = j as u32;
            count += 1;
        }
    }
    count
}

/// Writes the indices `j` with `x[j] != 0.0` (NaN included) in increasing order to
/// `out[..count]` and returns `count`.
///
/// # Panics
/// If `out` is shorter than the number of nonzero elements.
pub fn nonzero_indices(x: &[f32], out: &mut [u32]) -> usize {
    let mut count = 0;
    for (j, &v) in x.iter().enumerate() {
        if v != 0.0 {
            out[count] = j as u32;
            count += 1;
        }
    }
    count
}

/// The softmax of each group of `q` consecutive logits, in f64 (`exp` of libm), rounded to
/// f32: the accuracy oracle of [`Kernel::softmax_groups`](crate::Kernel::softmax_groups),
/// with its policy for infinities and NaN (the logits equal to the maximum share its weight,
/// so `+∞` logits share the mass and an all-`−∞` group is uniform; a NaN logit makes its group
/// NaN). It does not flush the exponentials below `e⁻⁸⁷` to 0 as the kernels do.
///
/// # Panics
/// If `q == 0`, `x.len()` is not a multiple of `q`, or `probs.len() != x.len()`.
pub fn softmax_groups(x: &[f32], q: usize, probs: &mut [f32]) {
    assert!(
        q > 0 && x.len().is_multiple_of(q),
        "q = {q} does not tile {}",
        x.len()
    );
    assert_eq!(probs.len(), x.len(), "probs length");
    for (xg, pg) in x.chunks_exact(q).zip(probs.chunks_exact_mut(q)) {
        if xg.iter().any(|v| v.is_nan()) {
            pg.fill(f32::NAN);
            continue;
        }
        let m = xg.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let e = |v: f32| {
            if v == m {
                1.0
            } else {
                (v as f64 - m as f64).exp()
            }
        };
        let sum: f64 = xg.iter().map(|&v| e(v)).sum();
        for (p, &v) in pg.iter_mut().zip(xg) {
            *p = (e(v) / sum) as f32;
        }
    }
}

/// [`softmax_groups`] and one categorical sample per group: group `g` takes draw `first + g`
/// of `key` and [`rng::categorical`](crate::rng::categorical) of the probabilities written
/// here selects its state `a`; `states` gets the one-hot rows and `ones[g] = g·q + a`. The
/// oracle of [`Kernel::softmax_groups_sample`](crate::Kernel::softmax_groups_sample).
///
/// # Panics
/// As [`softmax_groups`], and if `states.len() != x.len()` or `ones.len() != x.len() / q`.
pub fn softmax_groups_sample(
    x: &[f32],
    q: usize,
    key: StreamKey,
    first: u64,
    probs: &mut [f32],
    states: &mut [f32],
    ones: &mut [u32],
) {
    softmax_groups(x, q, probs);
    assert_eq!(states.len(), x.len(), "states length");
    assert_eq!(ones.len(), x.len() / q, "ones length");
    states.fill(0.0);
    for (g, pg) in probs.chunks_exact(q).enumerate() {
        let a = categorical(pg, key.draw(first + g as u64));
        states[g * q + a] = 1.0;
        ones[g] = (g * q + a) as u32;
    }
}

/// `Σ_j a[j] · b[j]` accumulated in f64.
///
/// # Panics
/// If the slices differ in length.
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "dot lengths");
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

#[track_caller]
fn assert_lengths(pre: usize, bias: usize, out: usize) {
    assert!(
        pre == bias && pre == out,
        "length mismatch: pre {pre}, bias {bias}, out {out}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sigmoid_f64(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    #[test]
    fn sigmoid_matches_f64_and_edges() {
        let mut worst = 0.0f64;
        let mut x = -100.0f32;
        while x <= 100.0 {
            let err = (sigmoid(x) as f64 - sigmoid_f64(x as f64)).abs();
            worst = worst.max(err);
            x += 0.001;
        }
        assert!(worst <= 2e-7, "worst abs error {worst}");
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        assert_eq!(sigmoid(f32::NEG_INFINITY), 0.0);
        assert_eq!(sigmoid(f32::MAX), 1.0);
        assert_eq!(sigmoid(f32::MIN), 0.0);
        assert_eq!(sigmoid(0.0), 0.5);
        assert_eq!(sigmoid(-0.0), 0.5);
        assert!(sigmoid(f32::NAN).is_nan());
    }

    #[test]
    fn softplus_is_stable() {
        assert_eq!(softplus(1000.0), 1000.0);
        assert_eq!(softplus(-1000.0), 0.0);
        assert!((softplus(0.0) - std::f32::consts::LN_2).abs() < 1e-7);
        assert!(
            (softplus(89.0) - 89.0).abs() < 1e-5,
            "naive form would overflow"
        );
        for &x in &[-20.0f32, -3.0, -0.5, 0.25, 2.0, 15.0] {
            let want = (1.0 + (x as f64).exp()).ln();
            assert!(
                (softplus(x) as f64 - want).abs() < 1e-6 * want.max(1.0),
                "x {x}"
            );
        }
        assert!(softplus(f32::NAN).is_nan());
        assert_eq!(softplus(f32::INFINITY), f32::INFINITY);
        assert_eq!(softplus(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn epilogue_agrees_with_its_parts() {
        let key = StreamKey::new(3).derive(9);
        let n = 37;
        let pre: Vec<f32> = (0..n).map(|j| (j as f32 - 18.0) * 0.3).collect();
        let bias: Vec<f32> = (0..n).map(|j| (j % 5) as f32 * 0.1).collect();
        let mut prob = vec![f32::NAN; n];
        let mut state = vec![f32::NAN; n];
        sigmoid_affine_sample(&pre, 1.0, &bias, key, 5, &mut prob, &mut state);
        let mut prob2 = vec![0.0; n];
        sigmoid_affine(&pre, 1.0, &bias, &mut prob2);
        assert_eq!(prob, prob2);
        let mut state2 = vec![0.0; n];
        bernoulli(&prob, key, 5, &mut state2);
        assert_eq!(state, state2);
        // A row split in two pieces draws the same numbers as the whole row.
        let mut state3 = vec![0.0; n];
        bernoulli(&prob[..10], key, 5, &mut state3[..10]);
        bernoulli(&prob[10..], key, 15, &mut state3[10..]);
        assert_eq!(state, state3);
    }

    #[test]
    fn softplus_sum_and_dot() {
        let pre = [0.0f32, 1.0, -2.0];
        let bias = [0.5f32, -1.0, 2.0];
        let want = (1.0 + 0.5f64.exp()).ln() + 2.0f64.ln() + 2.0f64.ln();
        assert!((softplus_sum_affine(&pre, 1.0, &bias) - want).abs() < 1e-6);
        assert_eq!(dot(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), 32.0);
    }
}
