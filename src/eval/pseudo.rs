//! Pseudo-log-likelihood: `Σ_i log p(v_i | v_{−i})`, a cheap stand-in for the likelihood that
//! needs no partition function.
//!
//! With `ṽ⁽ⁱ⁾` the row `v` with bit `i` flipped, `p(v_i | v_{−i}) = σ(F(ṽ⁽ⁱ⁾) − F(v))`, and
//!
//! ```text
//! F(ṽ⁽ⁱ⁾) − F(v) = −δ_i b_i − Σ_j [softplus(x_j + δ_i W_ji) − softplus(x_j)],
//! x = c + W v,  δ_i = 1 − 2 v_i.
//! ```
//!
//! [`PseudoLikelihood::Exact`] sums all `V` terms (`V · H` softplus per row);
//! [`PseudoLikelihood::OneFlip`] is scikit-learn's `BernoulliRBM.score_samples`: one random bit
//! per row, `V · log σ(F(ṽ⁽ⁱ⁾) − F(v))`, unbiased for the exact value but noisy.

use rayon::prelude::*;
use rbm_kernels::StreamKey;

use super::{check_rows, log_sigmoid64, softplus_sum_affine};
use crate::compute::pass::{self, Conditional, RowIndex};
use crate::error::{Error, Result};
use crate::model::Rbm;
use crate::rng::tags;

/// Rows per parallel task.
const BLOCK: usize = 16;

/// Which pseudo-log-likelihood [`pseudo_log_likelihood`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PseudoLikelihood {
    /// The sum over all `V` single-bit flips.
    Exact,
    /// scikit-learn's estimate: `V` times the term of one uniformly random bit per row; row
    /// `r` picks bit `⌊u · V / 2³²⌋` for draw 0 `u` of
    /// `StreamKey::new(seed).derive(tags::EVAL_PSEUDO).derive(r)`.
    OneFlip {
        /// Seed of the flipped bits.
        seed: u64,
    },
}

/// The pseudo-log-likelihood of each row of `data` (`N × V`, values 0 or 1), in nats (≤ 0).
/// Runs in parallel over fixed blocks of rows.
///
/// # Errors
/// [`Error::Shape`] if `data` is empty or not whole rows of `V` values; [`Error::Config`] if a
/// value is neither 0 nor 1.
pub fn pseudo_log_likelihood(
    model: &Rbm,
    data: &[f32],
    mode: PseudoLikelihood,
) -> Result<Vec<f64>> {
    let n = check_rows(model, data)?;
    if let Some(k) = data.iter().position(|&x| x != 0.0 && x != 1.0) {
        return Err(Error::config(
            format!(
                "pseudo-likelihood row {}, unit {}",
                k / model.n_visible(),
                k % model.n_visible()
            ),
            "0 or 1",
            data[k],
        ));
    }
    let (nv, nh) = (model.n_visible(), model.n_hidden());
    let w = model.weights();
    // Wᵀ, V × H: row i holds W_{·,i}, the change of W v when bit i flips.
    let mut wt = vec![0.0f32; nv * nh];
    for j in 0..nh {
        for i in 0..nv {
            wt[i * nh + j] = w[j * nv + i];
        }
    }
    let key = match mode {
        PseudoLikelihood::OneFlip { seed } => Some(StreamKey::new(seed).derive(tags::EVAL_PSEUDO)),
        PseudoLikelihood::Exact => None,
    };
    let b = model.v_bias();
    let zeros = vec![0.0f32; nh];
    let blocks: Vec<Vec<f64>> = data
        .par_chunks(BLOCK * nv)
        .enumerate()
        .map(|(blk, rows)| {
            let r = rows.len() / nv;
            let mut x = vec![0.0f32; r * nh];
            pass::preactivation(
                model,
                Conditional::Hidden,
                rows,
                r,
                &mut x,
                &mut RowIndex::default(),
            );
            for xr in x.chunks_mut(nh) {
                for (xj, &cj) in xr.iter_mut().zip(model.h_bias()) {
                    *xj += cj;
                }
            }
            rows.chunks(nv)
                .zip(x.chunks(nh))
                .enumerate()
                .map(|(i_row, (v, x))| {
                    let s = softplus_sum_affine(x, 1.0, &zeros);
                    // log p(v_i | v_{−i}) for one bit.
                    let term = |i: usize| {
                        let delta = 1.0 - 2.0 * v[i];
                        let s_i = softplus_sum_affine(&wt[i * nh..(i + 1) * nh], delta, x);
                        log_sigmoid64(-(delta as f64) * b[i] as f64 - (s_i - s))
                    };
                    match key {
                        None => (0..nv).map(term).sum::<f64>(),
                        Some(key) => {
                            let row = (blk * BLOCK + i_row) as u64;
                            let u = key.derive(row).draw(0);
                            let i = ((u as u64 * nv as u64) >> 32) as usize;
                            nv as f64 * term(i)
                        }
                    }
                })
                .collect()
        })
        .collect();
    debug_assert_eq!(blocks.iter().map(Vec::len).sum::<usize>(), n);
    Ok(blocks.concat())
}
