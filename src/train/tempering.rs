//! Parallel tempering (Swendsen & Wang 1986; for RBMs Desjardins et al. 2010, Salakhutdinov
//! 2009) as the negative-phase sampler of PCD.
//!
//! `T` sets of `C` persistent chains run at inverse temperatures `1 = β₀ > β₁ > … > β_{T−1} ≥
//! 0`, each by Gibbs sampling of the tempered model `p_β(v, h) ∝ exp(−β·E(v, h))`, whose
//! conditionals are `σ(β·(W·v + c))` and `σ(β·(Wᵀh + b))`. After the Gibbs steps of a training
//! step, neighbouring temperatures `(t, t+1)` — the pairs with `t` even on even steps, odd on
//! odd ones — propose to exchange their visible states, chain by chain, and accept with the
//! Metropolis probability `min(1, exp(F_t(v_t) + F_{t+1}(v_{t+1}) − F_t(v_{t+1}) −
//! F_{t+1}(v_t)))`, with `F_β(v) = −β·bᵀv − Σ_j softplus(β·(W_j·v + c_j))` the tempered free
//! energy ([`swap_log_acceptance`]). The chains at `β = 1` are the negative samples; the hot
//! ones mix fast and hand their states down the ladder.
//!
//! Every draw comes from a stream named by the step, the temperature and the chain, and the
//! free energies of the swap test are summed by the scalar reference kernel, so the chains are
//! bit-identical for any number of threads and on every instruction set.

use rbm_kernels::{StreamKey, scalar};

use crate::compute::pass::{self, Conditional, PassBuffers, RowIndex};
use crate::error::{Error, Result};
use crate::model::Rbm;
use crate::train::zeros;

/// The stream tag of the swap decisions (below the per-temperature Gibbs streams).
const SWAP: u64 = u64::MAX;

/// Parallel tempering: `T × C` persistent chains and their buffers.
#[derive(Clone, Debug)]
pub struct ParallelTempering {
    betas: Vec<f32>,
    chains: usize,
    nv: usize,
    nh: usize,
    /// Visible states, `T × C × V`.
    v: Vec<f32>,
    /// Hidden pre-activations `W·v` (no bias) of the states in `v`, `T × C × H`.
    pre_h: Vec<f32>,
    /// `p(h | v)` of the `β = 1` chains, `C × H`.
    prob_h: Vec<f32>,
    /// Scratch: hidden samples and probabilities (`C × H`), visible pre-activations and
    /// probabilities (`C × V`).
    h: Vec<f32>,
    prob_scratch: Vec<f32>,
    pre_v: Vec<f32>,
    prob_v: Vec<f32>,
    /// `β_t·b` (`T × V`) and `β_t·c` (`T × H`), refreshed each sweep.
    bias_v: Vec<f32>,
    bias_h: Vec<f32>,
    index: RowIndex,
    started: bool,
    accepted: Vec<u64>,
    proposed: Vec<u64>,
}

impl ParallelTempering {
    /// `temperatures` inverse temperatures spaced evenly from 1 down to `beta_min`
    /// (`temperatures ≥ 2`, `0 ≤ beta_min < 1`).
    pub fn ladder(temperatures: usize, beta_min: f32) -> Vec<f32> {
        let n = temperatures.max(2);
        (0..n)
            .map(|t| 1.0 - (1.0 - beta_min) * t as f32 / (n - 1) as f32)
            .collect()
    }

    /// Chains for a `V`–`H` model: `chains` per inverse temperature of `betas` (which must
    /// start at 1 and decrease, all in `[0, 1]`).
    ///
    /// # Errors
    /// [`Error::Config`] for a bad ladder or no chains, or chains that do not fit in memory.
    pub fn new(nv: usize, nh: usize, betas: Vec<f32>, chains: usize) -> Result<Self> {
        let decreasing = betas.windows(2).all(|w| w[1] < w[0]);
        if betas.len() < 2
            || betas[0] != 1.0
            || !decreasing
            || betas.iter().any(|b| !(0.0..=1.0).contains(b))
            || chains == 0
        {
            return Err(Error::config(
                "tempering ladder",
                "≥ 2 inverse temperatures from 1 down, in [0, 1], and ≥ 1 chain",
                format!("{betas:?} and {chains} chains"),
            ));
        }
        let t = betas.len();
        let rows = t.checked_mul(chains).ok_or_else(|| {
            Error::config(
                "tempering chains",
                "a count that fits in memory",
                format!("{t} temperatures × {chains} chains"),
            )
        })?;
        Ok(ParallelTempering {
            chains,
            nv,
            nh,
            v: zeros(rows, nv)?,
            pre_h: zeros(rows, nh)?,
            prob_h: zeros(chains, nh)?,
            h: zeros(chains, nh)?,
            prob_scratch: zeros(chains, nh)?,
            pre_v: zeros(chains, nv)?,
            prob_v: zeros(chains, nv)?,
            bias_v: zeros(t, nv)?,
            bias_h: zeros(t, nh)?,
            index: RowIndex::default(),
            started: false,
            accepted: vec![0; t - 1],
            proposed: vec![0; t - 1],
            betas,
        })
    }

    /// The inverse temperatures.
    pub fn betas(&self) -> &[f32] {
        &self.betas
    }

    /// Whether the chains hold states (after [`Self::start`] or [`Self::set_states`]).
    pub fn started(&self) -> bool {
        self.started
    }

    /// Starts every temperature's chains from `rows` (`n × V`), repeated as needed.
    pub fn start(&mut self, rows: &[f32]) {
        let per_t = self.chains * self.nv;
        for t in 0..self.betas.len() {
            let dst = &mut self.v[t * per_t..(t + 1) * per_t];
            for (d, s) in dst.chunks_mut(self.nv).zip(rows.chunks(self.nv).cycle()) {
                d.copy_from_slice(s);
            }
        }
        self.started = true;
    }

    /// All chains' visible states, `T × C × V` (temperature-major): the persistent state.
    pub fn states(&self) -> &[f32] {
        &self.v
    }

    /// Restores states taken by [`Self::states`].
    ///
    /// # Errors
    /// [`Error::Shape`] if `states` is not `T × C × V` values.
    pub fn set_states(&mut self, states: &[f32]) -> Result<()> {
        if states.len() != self.v.len() {
            return Err(Error::shape(
                "parallel tempering states",
                format!("{} values", self.v.len()),
                states.len(),
            ));
        }
        self.v.copy_from_slice(states);
        self.started = true;
        Ok(())
    }

    /// The visible states of the chains at `β_t` (`C × V`).
    pub fn visible(&self, t: usize) -> &[f32] {
        let per_t = self.chains * self.nv;
        &self.v[t * per_t..(t + 1) * per_t]
    }

    /// `W·v` (no bias) of the `β = 1` chains after the last sweep (`C × H`).
    pub fn hidden_pre(&self) -> &[f32] {
        &self.pre_h[..self.chains * self.nh]
    }

    /// `p(h | v)` of the `β = 1` chains after the last sweep (`C × H`).
    pub fn hidden_prob(&self) -> &[f32] {
        &self.prob_h
    }

    /// The fraction of proposed exchanges accepted so far between each pair `(t, t+1)`.
    pub fn acceptance(&self) -> Vec<f64> {
        self.accepted
            .iter()
            .zip(&self.proposed)
            .map(|(&a, &p)| if p == 0 { 0.0 } else { a as f64 / p as f64 })
            .collect()
    }

    /// One sweep: `k` Gibbs steps at every temperature (drawing from `key.derive(t)`), the
    /// pre-activations of the resulting states, then the exchanges between the pairs
    /// `(t, t+1)` with `t % 2 == parity`. The chains must have been started.
    pub fn sweep(&mut self, model: &Rbm, k: usize, key: StreamKey, parity: usize) {
        debug_assert!(self.started, "start the chains first");
        let (c, nv, nh) = (self.chains, self.nv, self.nh);
        self.refresh_biases(model);
        for t in 0..self.betas.len() {
            let beta = self.betas[t];
            let kt = key.derive(t as u64);
            let (bias_v, bias_h) = (
                &self.bias_v[t * nv..(t + 1) * nv],
                &self.bias_h[t * nh..(t + 1) * nh],
            );
            let v = &mut self.v[t * c * nv..(t + 1) * c * nv];
            let pre_h = &mut self.pre_h[t * c * nh..(t + 1) * c * nh];
            for s in 0..k as u64 {
                pass::conditional_tempered(
                    model,
                    Conditional::Hidden,
                    v,
                    c,
                    PassBuffers {
                        pre: pre_h,
                        prob: &mut self.prob_scratch,
                        index: &mut self.index,
                    },
                    Some((&mut self.h, kt.derive(2 * s))),
                    (beta, bias_h),
                );
                pass::conditional_tempered(
                    model,
                    Conditional::Visible,
                    &self.h,
                    c,
                    PassBuffers {
                        pre: &mut self.pre_v,
                        prob: &mut self.prob_v,
                        index: &mut self.index,
                    },
                    Some((v, kt.derive(2 * s + 1))),
                    (beta, bias_v),
                );
            }
            pass::preactivation(model, Conditional::Hidden, v, c, pre_h, &mut self.index);
        }
        self.exchange(model, key.derive(SWAP), parity);
        let pre0 = &self.pre_h[..c * nh];
        for (pre, prob) in pre0.chunks(nh).zip(self.prob_h.chunks_mut(nh)) {
            rbm_kernels::sigmoid_affine(pre, 1.0, model.h_bias(), prob);
        }
    }

    fn refresh_biases(&mut self, model: &Rbm) {
        let (nv, nh) = (self.nv, self.nh);
        for (t, &beta) in self.betas.iter().enumerate() {
            for (o, &b) in self.bias_v[t * nv..(t + 1) * nv]
                .iter_mut()
                .zip(model.v_bias())
            {
                *o = beta * b;
            }
            for (o, &b) in self.bias_h[t * nh..(t + 1) * nh]
                .iter_mut()
                .zip(model.h_bias())
            {
                *o = beta * b;
            }
        }
    }

    /// The exchanges of one sweep (see the module docs).
    fn exchange(&mut self, model: &Rbm, key: StreamKey, parity: usize) {
        let (c, nv, nh) = (self.chains, self.nv, self.nh);
        let (b, cb) = (model.v_bias(), model.h_bias());
        let mut t = parity;
        while t + 1 < self.betas.len() {
            let (ba, bb) = (self.betas[t], self.betas[t + 1]);
            let kt = key.derive(t as u64);
            for i in 0..c {
                let (ra, rb) = ((t * c + i), ((t + 1) * c + i));
                let (va, vb) = (
                    &self.v[ra * nv..(ra + 1) * nv],
                    &self.v[rb * nv..(rb + 1) * nv],
                );
                let (pa, pb) = (
                    &self.pre_h[ra * nh..(ra + 1) * nh],
                    &self.pre_h[rb * nh..(rb + 1) * nh],
                );
                let log_a = log_acceptance(
                    (ba, scalar::dot(b, va), pa),
                    (bb, scalar::dot(b, vb), pb),
                    cb,
                    &mut self.prob_scratch[..nh],
                );
                self.proposed[t] += 1;
                let u = (f64::from(kt.draw(i as u64)) + 0.5) / 4_294_967_296.0;
                if u.ln() < log_a {
                    self.accepted[t] += 1;
                    swap_rows(&mut self.v, ra, rb, nv);
                    swap_rows(&mut self.pre_h, ra, rb, nh);
                }
            }
            t += 2;
        }
    }
}

fn swap_rows(x: &mut [f32], a: usize, b: usize, n: usize) {
    let (lo, hi) = (a.min(b), a.max(b));
    let (first, second) = x.split_at_mut(hi * n);
    first[lo * n..(lo + 1) * n].swap_with_slice(&mut second[..n]);
}

/// The tempered free energy `F_β(v) = −β·bᵀv − Σ_j softplus(β·(pre_j + c_j))`, from `bᵀv`
/// and `pre = W·v`, summed by the scalar reference kernel.
fn tempered_free_energy(beta: f32, bv: f64, pre: &[f32], c: &[f32], scaled: &mut [f32]) -> f64 {
    scaled.iter_mut().zip(c).for_each(|(o, &x)| *o = beta * x);
    -f64::from(beta) * bv - scalar::softplus_sum_affine(pre, beta, scaled)
}

/// The log of the Metropolis acceptance ratio of exchanging the visible states of two chains
/// at inverse temperatures `β_a` and `β_b`: `F_a(v_a) + F_b(v_b) − F_a(v_b) − F_b(v_a)`, each
/// state given as `(β, bᵀv, W·v)`; `c` is the hidden bias. Accept when `ln u` is below it.
pub fn swap_log_acceptance(a: (f32, f64, &[f32]), b: (f32, f64, &[f32]), c: &[f32]) -> f64 {
    log_acceptance(a, b, c, &mut vec![0.0; c.len()])
}

/// [`swap_log_acceptance`] with a scratch buffer of `c.len()` values.
fn log_acceptance(
    a: (f32, f64, &[f32]),
    b: (f32, f64, &[f32]),
    c: &[f32],
    scaled: &mut [f32],
) -> f64 {
    let (beta_a, bv_a, pre_a) = a;
    let (beta_b, bv_b, pre_b) = b;
    let mut f = |beta, bv, pre: &[f32]| tempered_free_energy(beta, bv, pre, c, scaled);
    f(beta_a, bv_a, pre_a) + f(beta_b, bv_b, pre_b)
        - f(beta_a, bv_b, pre_b)
        - f(beta_b, bv_a, pre_a)
}
