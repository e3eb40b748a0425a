//! Evaluation: how good a model is, in nats.
//!
//! The measure of an RBM is the average log-likelihood of held-out rows,
//! `log p(v) = −F(v) − log Z`. The free energy `F` is cheap; the partition function `Z` is a sum
//! over `2^min(V, H)` states. This module computes it, or estimates it, several ways:
//!
//! - [`exact_log_z`]: the exact `log Z` by enumerating the smaller layer (up to
//!   [`MAX_EXACT_UNITS`] units) in Gray-code order, in f64 with log-sum-exp, in parallel.
//! - [`ais`]: annealed importance sampling (Salakhutdinov & Murray 2008) from a base-rate model
//!   ([`BaseRate`]) along a schedule of inverse temperatures ([`Schedule`], by default the
//!   standard 14,500 temperatures), `M` independent runs: an unbiased estimate of `Z`, hence an
//!   estimate of `log Z` that is low on average (and a test log-likelihood that is high).
//! - [`raise`]: reverse annealing (RAISE, Burda, Grosse & Salakhutdinov 2015), started at test
//!   rows: an estimate of `log p(v)` that is low on average — the conservative side. Beside
//!   AIS it gives a sandwich rather than one optimistic number.
//! - [`pseudo_log_likelihood`]: the pseudo-log-likelihood `Σ_i log p(v_i | v_{−i})`, exactly over
//!   all `V` single-bit flips or by scikit-learn's random one-flip estimate.
//! - [`reconstruction_error`] and [`mean_neg_free_energy`] (with `log Z`, the log-likelihood).
//!
//! ```
//! use rbm::Rbm;
//! use rbm::eval::{AisConfig, BaseRate, Schedule, ais, exact_log_z};
//!
//! let model = Rbm::new(20, 8, 1)?;
//! let exact = exact_log_z(&model)?; // 2^8 hidden states
//! let config = AisConfig { runs: 16, schedule: Schedule::standard_with(200)?, seed: 0 };
//! let est = ais(&model, &BaseRate::uniform(20)?, &config)?;
//! assert!(est.log_z_lo <= exact + 1e-3 && exact <= est.log_z_hi + 1e-3);
//! assert!((est.log_z - exact).abs() < 0.01);
//! # Ok::<(), rbm::Error>(())
//! ```
//!
//! # The annealing path
//!
//! The base-rate model `A` has weights 0, hidden biases 0 and visible biases `b_A` (the logits
//! of the training data's smoothed pixel marginals). The intermediate distributions over
//! `(v, h)` (with `h` the target's `H` hidden units) are
//! `p_β(v, h) ∝ exp((1 − β) b_Aᵀv + β (bᵀv + cᵀh + hᵀWv))`, so that with `h` summed out
//!
//! ```text
//! log p*_β(v) = b_Aᵀv + β (b − b_A)ᵀv + Σ_j softplus(β (c_j + W_j·v))
//! ```
//!
//! `β = 1` is the target (`log p*_1 = −F(v)`), and at `β = 0` the hidden units are free, so
//! `Z_0 = Σ_v p*_0(v) = Π_i (1 + e^{b_A,i}) · 2^H`, `log Z_0 = Σ_i softplus(b_A,i) + H log 2`.
//! (This is the usual form with `A`'s own hidden units summed out analytically: with zero
//! weights and biases they only add the constant `H_A log 2` to both `log p*_β` and `log Z_A`,
//! which cancels; here they are left out.)
//!
//! The transition at `β` is one block-Gibbs step of `p_β`:
//! `h ~ σ(β (c + W v))`, then `v ~ σ((1 − β) b_A + β (b + Wᵀh))`; it leaves `p_β` invariant.
//! Every product goes through the crate's batched passes, and the tempered epilogues
//! (`σ(scale · pre + bias)` with a Bernoulli draw, and `Σ softplus(scale · pre + bias)`) are the
//! kernels' affine forms. Inverse temperatures are used as `f32` values in the kernels and the
//! same `f32` values (widened) in the f64 log-weights, so that every `p*_β` is one fixed function
//! of `v` and the importance weights are exact for the chain that actually runs.
//!
//! # Randomness
//!
//! Every draw is a function of `(seed, purpose, temperature index, chain, unit)` through
//! [`StreamKey`]s, and chains run in fixed blocks: results are bit-identical for any number of
//! threads.

mod ais;
mod exact;
mod pseudo;
mod raise;

pub use ais::{
    AisConfig, AisEstimate, Annealer, MAX_AIS_RUNS, MAX_AIS_TEMPERATURES, Schedule, ais,
};
pub use exact::{MAX_EXACT_UNITS, exact_log_z, exact_log_z_max};
pub use pseudo::{PseudoLikelihood, pseudo_log_likelihood};
pub use raise::{RaiseConfig, RaiseEstimate, raise};

use rayon::prelude::*;
use rbm_kernels::StreamKey;

use crate::compute::pass::{self, Conditional, PassBuffers, RowIndex};
use crate::data::{Binarize, RowSource};
use crate::error::{Error, Result};
use crate::model::Rbm;

/// The base-rate model of annealed importance sampling: an RBM with no interactions whose
/// visible units are independent, `p_A(v_i = 1) = σ(b_A,i)`.
///
/// Built from the training data's pixel marginals `p` (mean grey levels in `[0, 1]`), smoothed
/// towards 1/2 so that no bias is infinite: `p̃ = (p + s) / (1 + 2s)` with `s` the smoothing
/// ([`BaseRate::DEFAULT_SMOOTHING`] = 0.005, so `p̃ ∈ [0.005, 0.995]`, `|b_A| ≤ 5.3`), and
/// `b_A = log(p̃ / (1 − p̃))`. The base rate only changes the variance of the estimates, never
/// their expectation.
#[derive(Clone, Debug, PartialEq)]
pub struct BaseRate {
    v_bias: Vec<f32>,
}

impl BaseRate {
    /// The default smoothing of the pixel marginals.
    pub const DEFAULT_SMOOTHING: f64 = 0.005;

    /// The base rate of marginals `p` (length `V`, each in `[0, 1]`) with `smoothing ≥ 0`.
    ///
    /// # Errors
    /// [`Error::Config`] if `p` is empty, a value is outside `[0, 1]` (or NaN), or `smoothing`
    /// is negative or not finite, or zero while a marginal is exactly 0 or 1.
    pub fn from_marginals(p: &[f64], smoothing: f64) -> Result<Self> {
        if p.is_empty() {
            return Err(Error::config("base rate marginals", "at least one", 0));
        }
        if !(smoothing.is_finite() && smoothing >= 0.0) {
            return Err(Error::config("smoothing", "≥ 0 and finite", smoothing));
        }
        let mut v_bias = Vec::with_capacity(p.len());
        for (i, &pi) in p.iter().enumerate() {
            if !(0.0..=1.0).contains(&pi) {
                return Err(Error::config(
                    format!("base rate marginal {i}"),
                    "a value in [0, 1]",
                    pi,
                ));
            }
            let q = (pi + smoothing) / (1.0 + 2.0 * smoothing);
            let b = (q / (1.0 - q)).ln() as f32;
            if !b.is_finite() {
                return Err(Error::config(
                    "smoothing",
                    format!("positive, for marginal {i} of {pi}"),
                    smoothing,
                ));
            }
            v_bias.push(b);
        }
        Ok(BaseRate { v_bias })
    }

    /// The base rate of the column means of a dataset — an IDX [`Dataset`](crate::data::Dataset)
    /// (its pixel marginals), [`Rows`](crate::data::Rows) in memory or any [`RowSource`] —
    /// with the default smoothing. Pass the training rows: the base rate must not depend on
    /// the test data.
    ///
    /// # Errors
    /// [`Error::Shape`] if there are no rows; [`Error::Config`] if a column mean is outside
    /// `[0, 1]` (rows of one's own that are not probabilities).
    ///
    /// ```
    /// use rbm::data::Rows;
    /// let data = [0.0, 1.0, 1.0, 1.0, 0.0, 1.0];
    /// let base = rbm::eval::BaseRate::from_dataset(&Rows::new(&data, 3)?)?;
    /// assert_eq!(base.v_bias().len(), 3);
    /// # Ok::<(), rbm::Error>(())
    /// ```
    pub fn from_dataset(ds: &(impl RowSource + ?Sized)) -> Result<Self> {
        if ds.n_rows() == 0 {
            return Err(Error::shape("base rate data", "at least one row", 0));
        }
        Self::from_marginals(&ds.column_means(), Self::DEFAULT_SMOOTHING)
    }

    /// The uniform base rate (`b_A = 0`, every unit on with probability 1/2) over `n_visible`
    /// units: for models without data.
    ///
    /// # Errors
    /// [`Error::Config`] if `n_visible` is 0.
    pub fn uniform(n_visible: usize) -> Result<Self> {
        Self::from_v_bias(vec![0.0; n_visible])
    }

    /// A base rate with the given visible biases `b_A` (length `V`).
    ///
    /// # Errors
    /// [`Error::Config`] if `v_bias` is empty or holds a value that is not finite.
    pub fn from_v_bias(v_bias: Vec<f32>) -> Result<Self> {
        if v_bias.is_empty() {
            return Err(Error::config("base rate visible units", "at least one", 0));
        }
        if let Some(i) = v_bias.iter().position(|b| !b.is_finite()) {
            return Err(Error::config(
                format!("base rate visible bias {i}"),
                "a finite value",
                v_bias[i],
            ));
        }
        Ok(BaseRate { v_bias })
    }

    /// The visible biases `b_A`, length `V`.
    pub fn v_bias(&self) -> &[f32] {
        &self.v_bias
    }

    /// Visible units `V`.
    pub fn n_visible(&self) -> usize {
        self.v_bias.len()
    }

    /// `Σ_i softplus(b_A,i)`: the log partition function of the base rate's visible units, in
    /// nats (the annealing path's `log Z_0` adds `H log 2` for the free hidden units).
    pub fn log_z_visible(&self) -> f64 {
        self.v_bias.iter().map(|&b| softplus64(b as f64)).sum()
    }

    /// [`Error::Shape`] unless the base rate has the model's `V` units.
    pub(crate) fn check(&self, model: &Rbm) -> Result<()> {
        if self.n_visible() == model.n_visible() {
            Ok(())
        } else {
            Err(Error::shape(
                "base rate",
                format!("{} visible units (the model's)", model.n_visible()),
                self.n_visible(),
            ))
        }
    }
}

/// The mean over the rows of `data` (`N × V`, `N ≥ 1`) of `−F(v)`, in nats: with `log Z`, the
/// mean log-likelihood is `mean_neg_free_energy(model, data)? − log_z`. Rows are meant to be
/// binary; any real values are accepted.
///
/// # Errors
/// [`Error::Shape`] if `data` is empty or not a whole number of rows of `V` values.
pub fn mean_neg_free_energy(model: &Rbm, data: &[f32]) -> Result<f64> {
    let n = check_rows(model, data)?;
    let mut f = vec![0.0f64; n];
    model.free_energy(data, &mut f)?;
    Ok(-f.iter().sum::<f64>() / n as f64)
}

/// The mean log-likelihood of the rows of `data` (`N × V`) given `log Z`, in nats per row:
/// `mean(−F(v)) − log_z`.
///
/// # Errors
/// Those of [`mean_neg_free_energy`].
pub fn mean_log_likelihood(model: &Rbm, data: &[f32], log_z: f64) -> Result<f64> {
    Ok(mean_neg_free_energy(model, data)? - log_z)
}

/// Rows per block of [`reconstruction_error`]: block `k` draws its hidden samples from
/// `key.derive(k)` (row `r` of the block from `.derive(r)`).
pub const RECON_BLOCK: usize = 1024;

/// The reconstruction error of `data` (`N × V`, `N ≥ 1`): the mean over rows and pixels of
/// `(v_i − p(v_i = 1 | h))²` with `h ~ p(h | v)` sampled once per row — the measure that
/// training reports, computed the same way (a sampled `h`, then probabilities).
///
/// # Errors
/// [`Error::Shape`] if `data` is empty or not a whole number of rows of `V` values.
pub fn reconstruction_error(model: &Rbm, data: &[f32], key: StreamKey) -> Result<f64> {
    let n = check_rows(model, data)?;
    let (nv, nh) = (model.n_visible(), model.n_hidden());
    let rows = RECON_BLOCK.min(n);
    let mut h_pre = vec![0.0f32; rows * nh];
    let mut h_prob = vec![0.0f32; rows * nh];
    let mut h = vec![0.0f32; rows * nh];
    let mut v_pre = vec![0.0f32; rows * nv];
    let mut v_prob = vec![0.0f32; rows * nv];
    let mut sum = 0.0f64;
    let mut index = RowIndex::default();
    for (k, block) in data.chunks(RECON_BLOCK * nv).enumerate() {
        let r = block.len() / nv;
        let (hp, hpr, hs) = (
            &mut h_pre[..r * nh],
            &mut h_prob[..r * nh],
            &mut h[..r * nh],
        );
        let sample = Some((&mut hs[..], key.derive(k as u64)));
        let bufs = PassBuffers {
            pre: hp,
            prob: hpr,
            index: &mut index,
        };
        pass::conditional(model, Conditional::Hidden, block, r, bufs, sample);
        let (vp, vpr) = (&mut v_pre[..r * nv], &mut v_prob[..r * nv]);
        let bufs = PassBuffers {
            pre: vp,
            prob: &mut vpr[..],
            index: &mut index,
        };
        pass::conditional(model, Conditional::Visible, hs, r, bufs, None);
        sum += block
            .par_chunks(nv)
            .zip(vpr.par_chunks(nv))
            .map(|(a, b)| {
                a.iter()
                    .zip(b)
                    .map(|(&x, &y)| ((x - y) as f64).powi(2))
                    .sum::<f64>()
            })
            .collect::<Vec<f64>>()
            .into_iter()
            .sum::<f64>();
    }
    Ok(sum / (n * nv) as f64)
}

/// The seed of the stochastic binarization of evaluation rows ([`evaluation_rows`]): fixed, so
/// that every evaluation of every model scores the same binary rows.
pub const EVAL_BINARIZE_SEED: u64 = 0;

/// The first `n` rows of `ds` — an IDX dataset, rows in memory or any [`RowSource`] — (all
/// of them if `n` is larger), binarized for evaluation, as an `n × row_len` buffer. With [`Binarize::Stochastic`], pixel `i` of row `r` is 1 when draw `i`
/// of `StreamKey::new(EVAL_BINARIZE_SEED).derive(tags::EVAL_BINARIZE).derive(r)` falls below
/// `pixel / 255` (see [`fill_batch`](crate::data::fill_batch)): one fixed draw, as the literature's test sets are.
///
/// # Errors
/// [`Error::Shape`] if there are no rows or `n` is 0; [`Error::Config`] if the rows do not
/// fit in memory; [`Error::Value`] for a value outside `[0, 1]` (rows of one's own that
/// were only checked to be finite).
///
/// ```
/// use rbm::data::{Binarize, Rows};
/// let data = [0.2, 1.0, 0.9, 0.0];
/// let rows = rbm::eval::evaluation_rows(&Rows::new(&data, 2)?, 5, Binarize::Threshold)?;
/// assert_eq!(rows, [0.0, 1.0, 1.0, 0.0]);
/// # Ok::<(), rbm::Error>(())
/// ```
pub fn evaluation_rows(
    ds: &(impl RowSource + ?Sized),
    n: usize,
    binarize: Binarize,
) -> Result<Vec<f32>> {
    let n = n.min(ds.n_rows());
    if n == 0 {
        return Err(Error::shape("rows to evaluate", "at least one", 0));
    }
    let indices: Vec<u32> = (0..n as u32).collect();
    let nv = ds.row_len();
    let mut out = crate::train::zeros(n, nv)?;
    let key = StreamKey::new(EVAL_BINARIZE_SEED).derive(crate::rng::tags::EVAL_BINARIZE);
    ds.fill(&indices, binarize, key, &mut out)?;
    if let Some(k) = crate::data::rows::first_outside_unit_interval(&out) {
        return Err(Error::Value {
            row: k / nv,
            column: k % nv,
            value: out[k],
        });
    }
    Ok(out)
}

/// Checks that `data` holds a whole, non-zero number of rows of `V` values; returns it.
pub(crate) fn check_rows(model: &Rbm, data: &[f32]) -> Result<usize> {
    let nv = model.n_visible();
    if data.is_empty() || !data.len().is_multiple_of(nv) {
        return Err(Error::shape(
            "evaluation data",
            format!("a whole, non-zero number of {nv}-unit rows"),
            format!("{} values", data.len()),
        ));
    }
    Ok(data.len() / nv)
}

/// A stable softplus in f64: `max(x, 0) + log1p(e^{−|x|})`.
#[inline]
pub(crate) fn softplus64(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// `log σ(x)` in f64, stably.
#[inline]
pub(crate) fn log_sigmoid64(x: f64) -> f64 {
    -softplus64(-x)
}

/// The log of the mean of `exp(xs)` and the log of that mean ± 3 standard errors:
/// `(log mean, log(mean − 3 se), log(mean + 3 se))`, all in f64, with the lower bound `−∞`
/// when `mean ≤ 3 se`. With one value the standard error is unknown and the bounds are
/// `(−∞, +∞)`.
pub(crate) fn log_mean_exp_bounds(xs: &[f64]) -> (f64, f64, f64) {
    let n = xs.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let m = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return (m, m, m);
    }
    let w: Vec<f64> = xs.iter().map(|&x| (x - m).exp()).collect();
    let mean = w.iter().sum::<f64>() / n as f64;
    let value = m + mean.ln();
    if n < 2 {
        return (value, f64::NEG_INFINITY, f64::INFINITY);
    }
    let var = w.iter().map(|&x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let se = (var / n as f64).sqrt();
    let lo = if mean > 3.0 * se {
        m + (mean - 3.0 * se).ln()
    } else {
        f64::NEG_INFINITY
    };
    (value, lo, m + (mean + 3.0 * se).ln())
}

pub(crate) use rbm_kernels::{sigmoid_affine_sample, softplus_sum_affine};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_mean_exp_bounds_of_equal_values_are_tight() {
        let (v, lo, hi) = log_mean_exp_bounds(&[2.0, 2.0, 2.0]);
        assert!((v - 2.0).abs() < 1e-15 && (lo - 2.0).abs() < 1e-15 && (hi - 2.0).abs() < 1e-15);
        let (v, lo, hi) = log_mean_exp_bounds(&[0.0, 1000.0]);
        assert!((v - (1000.0 - 2f64.ln())).abs() < 1e-9);
        assert_eq!(lo, f64::NEG_INFINITY);
        assert!(hi > v);
        let (_, lo, hi) = log_mean_exp_bounds(&[3.0]);
        assert_eq!((lo, hi), (f64::NEG_INFINITY, f64::INFINITY));
    }

    #[test]
    fn base_rate_smoothing_keeps_biases_finite() {
        let b = BaseRate::from_marginals(&[0.0, 0.5, 1.0], 0.005).unwrap();
        let q: f64 = 0.005 / 1.01;
        assert!((b.v_bias()[0] as f64 - (q / (1.0 - q)).ln()).abs() < 1e-5);
        assert_eq!(b.v_bias()[1], 0.0);
        assert!((b.v_bias()[0] + b.v_bias()[2]).abs() < 1e-5);
        assert!(BaseRate::from_marginals(&[0.0], 0.0).is_err());
        assert!(BaseRate::from_marginals(&[1.5], 0.1).is_err());
        assert!(BaseRate::from_marginals(&[], 0.1).is_err());
        assert!(BaseRate::from_marginals(&[0.5], -1.0).is_err());
        assert!(BaseRate::from_v_bias(vec![f32::NAN]).is_err());
    }
}
