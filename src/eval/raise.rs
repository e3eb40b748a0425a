//! Reverse annealing (RAISE, Burda, Grosse & Salakhutdinov 2015): a conservative estimate of
//! the test log-likelihood.
//!
//! The forward annealing chain (`x_0 ~ p_0`, then one transition `T_k` at each `β_k`,
//! `k = 1…K`) defines a generative model `q` of its last state `x_K`. Run backwards from a
//! test row `x_K = v` — `x_{k−1} ~ T̃_k(· | x_k)`, the reversal of `T_k` — the importance weight
//!
//! ```text
//! w = p*_K(v) / Z_0 · Π_{k=1..K} p*_{k−1}(x_{k−1}) / p*_k(x_{k−1})
//! ```
//!
//! has `E[w] = q(v)`. So `log w` is a stochastic lower bound of `log q(v)`, and `q` (the model
//! as imperfect annealing reaches it) is no better than the RBM where annealing is poor: the
//! estimate errs low, where AIS's errs high. The block-Gibbs step on `v` (through `h`) is
//! reversible with respect to `p_β`, so `T̃_k = T_k`.

use rayon::prelude::*;
use rbm_kernels::StreamKey;

use super::ais::{CHAIN_BLOCK, Chains, Path, Schedule};
use super::{BaseRate, check_rows, log_mean_exp_bounds};
use crate::error::{Error, Result};
use crate::model::Rbm;
use crate::rng::tags;

/// Settings of [`raise`].
#[derive(Clone, Debug, PartialEq)]
pub struct RaiseConfig {
    /// Reverse runs per row (`≥ 1`; 1 by default). Each row's estimate is the log of the mean
    /// of its runs' weights.
    pub runs_per_row: usize,
    /// Inverse temperatures, traversed from `β_K = 1` down to `β_0 = 0`.
    pub schedule: Schedule,
    /// Seed: chain `m = row · runs_per_row + run` at step `k` draws from
    /// `StreamKey::new(seed).derive(tags::RAISE).derive(k).derive(m)`.
    pub seed: u64,
}

impl Default for RaiseConfig {
    fn default() -> Self {
        RaiseConfig {
            runs_per_row: 1,
            schedule: Schedule::standard(),
            seed: 0,
        }
    }
}

/// The result of [`raise`], in nats.
#[derive(Clone, Debug, PartialEq)]
pub struct RaiseEstimate {
    /// The estimate of `log p(v)` of each row.
    pub log_likelihoods: Vec<f64>,
    /// Their mean: the conservative estimate of the mean log-likelihood.
    pub mean: f64,
    /// The standard error of the mean over rows (0 with one row).
    pub std_error: f64,
}

/// Estimates `log p(v)` of each row of `data` (`N × V`, binary) by reverse annealing from the
/// row to `base` (see the module page of `eval::raise`). Runs in parallel over blocks of chains; the
/// result is the same, bit for bit, for any number of threads. The cost is that of AIS with
/// `N · runs_per_row` runs.
///
/// # Errors
/// [`Error::Shape`] if `data` is empty or not whole rows of `V` values, or `base` does not
/// have `V` units; [`Error::Config`] if `runs_per_row` is 0.
pub fn raise(
    model: &Rbm,
    base: &BaseRate,
    data: &[f32],
    config: &RaiseConfig,
) -> Result<RaiseEstimate> {
    base.check(model)?;
    let n = check_rows(model, data)?;
    let runs = config.runs_per_row;
    if runs == 0 {
        return Err(Error::config("runs_per_row", "at least 1", 0));
    }
    let nv = model.n_visible();
    let total = n.saturating_mul(runs);
    super::ais::check_runs("rows × runs_per_row", total)?;
    let path = Path::new(model, base);
    let betas = config.schedule.betas_f32();
    let root = StreamKey::new(config.seed).derive(tags::RAISE);
    let n_blocks = total.div_ceil(CHAIN_BLOCK);
    let blocks: Vec<Vec<f64>> = (0..n_blocks)
        .into_par_iter()
        .map(|b| {
            let first = b * CHAIN_BLOCK;
            let rows = CHAIN_BLOCK.min(total - first);
            let mut chains = Chains::new(&path, rows, first as u64);
            let start: Vec<f32> = (first..first + rows)
                .flat_map(|m| data[(m / runs) * nv..(m / runs + 1) * nv].iter().copied())
                .collect();
            chains.set_visible(model, &start);
            // log w = log p*_K(v) − log Z_0 + Σ_k [log p*_{k−1}(x_{k−1}) − log p*_k(x_{k−1})],
            // with one transition at each β_k, k = K…1, before its term.
            for (lw, v) in chains.log_w.iter_mut().zip(start.chunks(nv)) {
                *lw = path.log_p0(v) - path.log_z0;
            }
            let k_last = betas.len() - 1;
            let key = |k: usize| (k >= 1).then(|| root.derive(k as u64));
            chains.anneal(&path, 0.0, betas[k_last], key(k_last));
            for k in (1..=k_last).rev() {
                chains.anneal(&path, betas[k], betas[k - 1], key(k - 1));
            }
            chains.log_w
        })
        .collect();
    let log_w = blocks.concat();
    let log_likelihoods: Vec<f64> = log_w
        .chunks(runs)
        .map(|w| log_mean_exp_bounds(w).0)
        .collect();
    let mean = log_likelihoods.iter().sum::<f64>() / n as f64;
    let std_error = if n > 1 {
        let var = log_likelihoods
            .iter()
            .map(|&x| (x - mean).powi(2))
            .sum::<f64>()
            / (n - 1) as f64;
        (var / n as f64).sqrt()
    } else {
        0.0
    };
    Ok(RaiseEstimate {
        log_likelihoods,
        mean,
        std_error,
    })
}
