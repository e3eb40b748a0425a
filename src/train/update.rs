//! The analytic CD gradient and the SGD update (PyTorch's `torch.optim.SGD` semantics).
//!
//! The weight gradient is two GEMMs accumulated into `W` (plain SGD) or into the momentum
//! buffer, split over fixed blocks of hidden units (rows of `W`) that run in parallel: each
//! block's result does not depend on the number of threads.

use rayon::prelude::*;
use rbm_kernels::{Mat, MatMut, gemm};

use crate::model::Rbm;
use crate::train::TrainConfig;

/// Hidden units (rows of `W`) per parallel block of the weight update.
const HIDDEN_BLOCK: usize = 16;

/// Below this many multiply-adds the update runs on the calling thread.
const PARALLEL_MIN_WORK: usize = 1 << 16;

/// SGD momentum buffers (`buf` of `torch.optim.SGD`), one per parameter.
#[derive(Clone, Debug)]
pub(crate) struct Velocity {
    w: Vec<f32>,
    v_bias: Vec<f32>,
    h_bias: Vec<f32>,
}

impl Velocity {
    pub(crate) fn new(nv: usize, nh: usize) -> Self {
        Velocity {
            w: vec![0.0; nv * nh],
            v_bias: vec![0.0; nv],
            h_bias: vec![0.0; nh],
        }
    }
}

/// Applies one SGD step for the CD gradient of a batch: `v0`, `vk` are `B × V`, `p0`, `pk`
/// are `B × H` (hidden probabilities of the two phases).
pub(crate) fn apply(
    model: &mut Rbm,
    cfg: &TrainConfig,
    v0: &[f32],
    p0: &[f32],
    vk: &[f32],
    pk: &[f32],
    velocity: Option<&mut Velocity>,
) {
    let (nv, nh) = (model.n_visible(), model.n_hidden());
    let rows = v0.len() / nv;
    let inv_b = 1.0 / rows as f32;
    let (w, vb, hb) = model.params_mut();
    match velocity {
        None => {
            // θ ← θ + lr · (pos − neg) / B, accumulated straight into W.
            let a = cfg.lr * inv_b;
            weight_products(w, nh, nv, p0, v0, pk, vk, a, 1.0);
            bias_step(vb, v0, vk, a, |x, d| *x += d);
            bias_step(hb, p0, pk, a, |x, d| *x += d);
        }
        Some(vel) => {
            let (mu, wd, lr) = (cfg.momentum, cfg.weight_decay, cfg.lr);
            // buf ← μ·buf − (pos − neg)/B + λ·W, then W ← W − lr·buf.
            weight_products(&mut vel.w, nh, nv, p0, v0, pk, vk, -inv_b, mu);
            for (b, x) in vel.w.iter_mut().zip(w.iter_mut()) {
                *b += wd * *x;
                *x -= lr * *b;
            }
            for (buf, theta, pos, neg) in
                [(&mut vel.v_bias, vb, v0, vk), (&mut vel.h_bias, hb, p0, pk)]
            {
                bias_step(buf, pos, neg, -inv_b, |b, d| *b = mu * *b + d);
                theta
                    .iter_mut()
                    .zip(buf.iter())
                    .for_each(|(x, b)| *x -= lr * b);
            }
        }
    }
}

/// `C ← a · (P₀ᵀV₀ − P_kᵀV_k) + β · C` for `C` = `nh × nv` row-major, in blocks of hidden
/// units.
#[allow(clippy::too_many_arguments)]
fn weight_products(
    c: &mut [f32],
    nh: usize,
    nv: usize,
    p0: &[f32],
    v0: &[f32],
    pk: &[f32],
    vk: &[f32],
    a: f32,
    beta: f32,
) {
    let rows = v0.len() / nv;
    let block = |(blk, c_b): (usize, &mut [f32])| {
        let j0 = blk * HIDDEN_BLOCK;
        let nj = c_b.len() / nv;
        // Pᵀ restricted to hidden units j0..j0+nj: element (j, r) is P[r·H + j0 + j].
        let p0t = Mat::new(&p0[j0..], nj, rows, 1, nh);
        let pkt = Mat::new(&pk[j0..], nj, rows, 1, nh);
        gemm(
            a,
            p0t,
            Mat::row_major(v0, rows, nv),
            beta,
            MatMut::row_major(c_b, nj, nv),
        );
        gemm(
            -a,
            pkt,
            Mat::row_major(vk, rows, nv),
            1.0,
            MatMut::row_major(c_b, nj, nv),
        );
    };
    if rows.saturating_mul(nv).saturating_mul(nh) >= PARALLEL_MIN_WORK && nh > HIDDEN_BLOCK {
        c.par_chunks_mut(HIDDEN_BLOCK * nv)
            .enumerate()
            .for_each(block);
    } else {
        c.chunks_mut(HIDDEN_BLOCK * nv).enumerate().for_each(block);
    }
}

/// For each column `i` of the `B × n` batches: `f(&mut out[i], a · Σ_r (pos[r, i] − neg[r, i]))`.
fn bias_step(out: &mut [f32], pos: &[f32], neg: &[f32], a: f32, f: impl Fn(&mut f32, f32)) {
    let n = out.len();
    for (i, o) in out.iter_mut().enumerate() {
        let mut s = 0.0f32;
        for (p, q) in pos[i..].iter().step_by(n).zip(neg[i..].iter().step_by(n)) {
            s += p - q;
        }
        f(o, a * s);
    }
}

/// The gradient of the CD loss `L = mean F(V₀) − mean F(V_k)` with respect to each parameter
/// (shapes as in [`Rbm`]: `w` is `H × V`, `v_bias` `V`, `h_bias` `H`).
#[derive(Clone, Debug, PartialEq)]
pub struct Gradient {
    /// `∂L/∂W = −(P₀ᵀV₀ − P_kᵀV_k) / B`, `H × V` row-major.
    pub w: Vec<f32>,
    /// `∂L/∂b = −Σ_r (V₀ − V_k) / B`, length `V`.
    pub v_bias: Vec<f32>,
    /// `∂L/∂c = −Σ_r (P₀ − P_k) / B`, length `H`.
    pub h_bias: Vec<f32>,
}

/// The analytic gradient of the reference notebook's loss `mean F(v0) − mean F(vk)` with `v0`
/// and `vk` (both `B × V`) held fixed: positive minus negative phase, with hidden
/// probabilities in both. Allocates its result; the trainer uses the same products in place.
///
/// # Errors
/// [`crate::Error::Shape`] if `v0` and `vk` differ in length or are not whole rows of `V`.
pub fn cd_gradient(model: &Rbm, v0: &[f32], vk: &[f32]) -> crate::Result<Gradient> {
    let (nv, nh) = (model.n_visible(), model.n_hidden());
    if v0.len() != vk.len() || v0.is_empty() || !v0.len().is_multiple_of(nv) {
        return Err(crate::Error::Shape(format!(
            "cd_gradient: v0 has {} and vk {} values; both need the same whole number of {nv}-unit rows",
            v0.len(),
            vk.len()
        )));
    }
    let rows = v0.len() / nv;
    let mut p0 = vec![0.0; rows * nh];
    let mut pk = vec![0.0; rows * nh];
    model.hidden_probs(v0, &mut p0)?;
    model.hidden_probs(vk, &mut pk)?;
    let a = -1.0 / rows as f32;
    let mut g = Gradient {
        w: vec![0.0; nh * nv],
        v_bias: vec![0.0; nv],
        h_bias: vec![0.0; nh],
    };
    weight_products(&mut g.w, nh, nv, &p0, v0, &pk, vk, a, 0.0);
    bias_step(&mut g.v_bias, v0, vk, a, |x, d| *x = d);
    bias_step(&mut g.h_bias, &p0, &pk, a, |x, d| *x = d);
    Ok(g)
}
