//! The exact `log Z` of a model with a small layer.
//!
//! Summing the other layer out analytically,
//!
//! ```text
//! log Z = log Σ_h exp(cᵀh + Σ_i softplus(b_i + (Wᵀh)_i))     (over the 2^H hidden states)
//!       = log Σ_v exp(bᵀv + Σ_j softplus(c_j + (W v)_j))     (over the 2^V visible states)
//! ```
//!
//! The smaller layer is enumerated. The states are split into fixed chunks (the high bits)
//! that run in parallel; inside a chunk the low bits follow a Gray code, so each state differs
//! from the previous one in one unit and the vector `b + Wᵀh` changes by one row of `W` (one
//! column, for the visible layer), added or subtracted in f64. Each chunk keeps a running
//! log-sum-exp; the chunks are combined in order, so the result does not depend on threads.

use rayon::prelude::*;

use super::softplus64;
use crate::error::{Error, Result};
use crate::model::Rbm;

/// The largest layer [`exact_log_z`] enumerates: `2^25` states of the other layer's size.
pub const MAX_EXACT_UNITS: usize = 25;

/// The most units [`exact_log_z_max`] accepts, whatever the limit asked (2^40 states).
const HARD_MAX_UNITS: usize = 40;

/// Low bits enumerated inside one chunk (at most).
const CHUNK_BITS: usize = 12;

/// The exact `log Z` in nats, enumerating the smaller layer, which must have at most
/// [`MAX_EXACT_UNITS`] units. Computed in f64 from the f32 parameters.
///
/// # Errors
/// [`Error::Config`] if both layers have more than [`MAX_EXACT_UNITS`] units.
pub fn exact_log_z(model: &Rbm) -> Result<f64> {
    exact_log_z_max(model, MAX_EXACT_UNITS)
}

/// [`exact_log_z`] with another limit on the enumerated layer (at most 40 units; the time is
/// `2^n` times the other layer's size).
///
/// # Errors
/// [`Error::Config`] if both layers have more than `max_units` units (or more than 40).
pub fn exact_log_z_max(model: &Rbm, max_units: usize) -> Result<f64> {
    let (nv, nh) = (model.n_visible(), model.n_hidden());
    let limit = max_units.min(HARD_MAX_UNITS);
    if nv.min(nh) > limit {
        return Err(Error::config(
            "layer sizes",
            format!("a smaller layer of at most {limit} units (exact log Z enumerates it)"),
            format!("{nv}–{nh}"),
        ));
    }
    let w: Vec<f64> = model.weights().iter().map(|&x| x as f64).collect();
    let b: Vec<f64> = model.v_bias().iter().map(|&x| x as f64).collect();
    let c: Vec<f64> = model.h_bias().iter().map(|&x| x as f64).collect();
    Ok(if nh <= nv {
        // Rows of W (length V) are the hidden units' contributions.
        log_sum_over_states(&w, nh, &c, &b)
    } else {
        let mut wt = vec![0.0f64; nv * nh];
        for j in 0..nh {
            for i in 0..nv {
                wt[i * nh + j] = w[j * nv + i];
            }
        }
        log_sum_over_states(&wt, nv, &b, &c)
    })
}

/// `log Σ_{s ∈ {0,1}^n} exp(linᵀs + Σ_k softplus(base_k + (Rᵀs)_k))` where `rows` is `R`,
/// `n × m` row-major, `lin` has `n` values and `base` has `m`.
///
/// When every `|a_k| = |base_k + (Rᵀs)_k|` is bounded by [`PRODUCT_BOUND`] for all states, the
/// sum of softplus is computed as `log Π_k (1 + e^{a_k})` with `e^{a_k}` kept up to date by
/// multiplying with `e^{±R_uk}` at each Gray-code step (no transcendental function per
/// element); otherwise each softplus is computed directly.
fn log_sum_over_states(rows: &[f64], n: usize, lin: &[f64], base: &[f64]) -> f64 {
    let m = base.len();
    let bound = (0..m)
        .map(|k| base[k].abs() + (0..n).map(|u| rows[u * m + k].abs()).sum::<f64>())
        .fold(0.0, f64::max);
    let exps = (bound <= PRODUCT_BOUND).then(|| {
        let up: Vec<f64> = rows.iter().map(|&r| r.exp()).collect();
        let down: Vec<f64> = rows.iter().map(|&r| (-r).exp()).collect();
        // Factors are at most e^{bound + 1}: renormalize before their product can overflow.
        let groups = ((650.0 / (bound + 1.0)) as usize).max(1);
        (up, down, groups)
    });
    let low = n.min(CHUNK_BITS);
    let chunks = 1usize << (n - low);
    let partial: Vec<(f64, f64)> = (0..chunks)
        .into_par_iter()
        .map(|chunk| {
            // The high bits of every state in this chunk are `chunk`.
            let mut a = base.to_vec();
            let mut l = 0.0;
            for bit in 0..n - low {
                if chunk >> bit & 1 == 1 {
                    let u = low + bit;
                    l += lin[u];
                    for (x, &r) in a.iter_mut().zip(&rows[u * m..(u + 1) * m]) {
                        *x += r;
                    }
                }
            }
            let mut acc = LogSumExp::default();
            let mut gray = 0usize;
            match &exps {
                Some((up, down, groups)) => {
                    // e_k = exp(a_k), updated multiplicatively.
                    let mut e: Vec<f64> = a.iter().map(|&x| x.exp()).collect();
                    for t in 0..1usize << low {
                        if t > 0 {
                            let u = t.trailing_zeros() as usize;
                            gray ^= 1 << u;
                            let on = gray >> u & 1 == 1;
                            l += if on { lin[u] } else { -lin[u] };
                            let f = if on { up } else { down };
                            for (x, &g) in e.iter_mut().zip(&f[u * m..(u + 1) * m]) {
                                *x *= g;
                            }
                        }
                        acc.push(l + sum_log1p(&e, *groups));
                    }
                }
                None => {
                    for t in 0..1usize << low {
                        if t > 0 {
                            let u = t.trailing_zeros() as usize;
                            gray ^= 1 << u;
                            let sign = if gray >> u & 1 == 1 { 1.0 } else { -1.0 };
                            l += sign * lin[u];
                            for (x, &r) in a.iter_mut().zip(&rows[u * m..(u + 1) * m]) {
                                *x += sign * r;
                            }
                        }
                        acc.push(l + a.iter().map(|&x| softplus64(x)).sum::<f64>());
                    }
                }
            }
            (acc.max, acc.sum)
        })
        .collect();
    let mut total = LogSumExp::default();
    for (max, sum) in partial {
        total.merge(max, sum);
    }
    total.value()
}

/// The bound on `|a_k|` below which [`log_sum_over_states`] uses products of exponentials
/// (`e^{±300}` and its products of a few factors stay well inside f64).
const PRODUCT_BOUND: f64 = 300.0;

/// `Σ_k log(1 + e_k)` for `e_k ≥ 0` as the log of a product, in 8 independent lanes whose
/// binary exponents are moved into an integer every `groups` factors (each factor is at most
/// `2^{650/groups}`-ish by the caller's choice, so no lane overflows).
fn sum_log1p(e: &[f64], groups: usize) -> f64 {
    let mut p = [1.0f64; 8];
    let mut exp2 = 0i64;
    let chunks = e.chunks_exact(8);
    let tail = chunks.remainder();
    for (g, c) in chunks.enumerate() {
        for (p, &x) in p.iter_mut().zip(c) {
            *p *= 1.0 + x;
        }
        if (g + 1) % groups == 0 {
            p.iter_mut().for_each(|p| renormalize(p, &mut exp2));
        }
    }
    p.iter_mut().for_each(|p| renormalize(p, &mut exp2));
    for &x in tail {
        p[0] *= 1.0 + x;
        renormalize(&mut p[0], &mut exp2);
    }
    p.iter().map(|p| p.ln()).sum::<f64>() + exp2 as f64 * std::f64::consts::LN_2
}

/// Moves the binary exponent of `x` (finite, `≥ 1`) into `exp2`, leaving `x` in `[1, 2)`.
#[inline]
fn renormalize(x: &mut f64, exp2: &mut i64) {
    const EXP_MASK: u64 = 0x7ff << 52;
    let bits = x.to_bits();
    *exp2 += ((bits & EXP_MASK) >> 52) as i64 - 1023;
    *x = f64::from_bits((bits & !EXP_MASK) | (1023u64 << 52));
}

/// A running `log Σ exp(x)` as `max + log(sum)` with `sum = Σ exp(x − max)`.
#[derive(Clone, Copy, Debug)]
struct LogSumExp {
    max: f64,
    sum: f64,
}

impl Default for LogSumExp {
    fn default() -> Self {
        LogSumExp {
            max: f64::NEG_INFINITY,
            sum: 0.0,
        }
    }
}

impl LogSumExp {
    fn push(&mut self, x: f64) {
        if x > self.max {
            self.sum = self.sum * (self.max - x).exp() + 1.0;
            self.max = x;
        } else {
            self.sum += (x - self.max).exp();
        }
    }

    fn merge(&mut self, max: f64, sum: f64) {
        if max > self.max {
            self.sum = self.sum * (self.max - max).exp() + sum;
            self.max = max;
        } else if max > f64::NEG_INFINITY {
            self.sum += sum * (max - self.max).exp();
        }
    }

    fn value(&self) -> f64 {
        self.max + self.sum.ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sum_exp_is_stable() {
        let mut a = LogSumExp::default();
        for x in [1000.0, 1000.0, -1e9] {
            a.push(x);
        }
        assert!((a.value() - (1000.0 + 2f64.ln())).abs() < 1e-12);
        let mut b = LogSumExp::default();
        b.merge(a.max, a.sum);
        b.merge(f64::NEG_INFINITY, 0.0);
        assert_eq!(b.value(), a.value());
    }

    #[test]
    fn product_of_factors_matches_the_sum_of_logs() {
        for (n, scale) in [
            (0usize, 1.0f64),
            (5, 1.0),
            (8, 30.0),
            (19, 1e-3),
            (784, 5.0),
            (1000, 80.0),
        ] {
            let e: Vec<f64> = (0..n)
                .map(|k| ((k * 37 % 101) as f64 / 50.0 - 1.0) * scale)
                .map(f64::exp)
                .collect();
            let want: f64 = e.iter().map(|x| x.ln_1p()).sum();
            let groups = ((650.0 / (scale + 1.0)) as usize).max(1);
            let got = sum_log1p(&e, groups);
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                "{n}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn gray_code_visits_every_state_once() {
        // With lin_u = 2^u ε and no rows, state s contributes e^{s ε}: over n = 14 bits
        // (4 chunks of 2^12 states) the sum is Σ_{s < 2^14} e^{s ε}.
        let n = 14;
        let lin: Vec<f64> = (0..n).map(|u| (1u64 << u) as f64 * 1e-4).collect();
        let got = log_sum_over_states(&[], n, &lin, &[]);
        let want = (0..1u64 << n)
            .map(|s| (s as f64 * 1e-4).exp())
            .sum::<f64>()
            .ln();
        assert!((got - want).abs() < 1e-10, "{got} vs {want}");
    }
}
