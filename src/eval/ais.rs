//! Annealed importance sampling of `log Z` (Salakhutdinov & Murray 2008).
//!
//! `M` independent runs each start at `v ~ p_0` (the base rate) and move along the schedule
//! `0 = β_0 < β_1 < … < β_K = 1`: at step `k` the run's log-weight gains
//! `log p*_{β_k}(v) − log p*_{β_{k−1}}(v)` and, unless `k = K`, `v` takes one Gibbs transition
//! at `β_k`. `E[w] = Z / Z_0`, so `log Z ≈ log Z_0 + log mean w`.

use rayon::prelude::*;
use rbm_kernels::StreamKey;

use super::{BaseRate, log_mean_exp_bounds, sigmoid_affine_sample, softplus_sum_affine};
use crate::compute::incremental::Incremental;
use crate::compute::pass::Conditional;
use crate::error::{Error, Result};
use crate::model::Rbm;
use crate::rng::tags;
use rbm_kernels::{softplus_diff_affine, softplus_diff_affine_sample};

/// Chains per block: each block of runs is one task, and every product of a block is one
/// batched pass of this many rows (so the blocks, and the results, do not depend on threads).
pub(crate) const CHAIN_BLOCK: usize = 4;

/// The most inverse temperatures a schedule may have (10 million: 700 times the standard
/// 14,500): a bound that keeps a mistyped count an error instead of an allocation abort or a
/// run of centuries.
pub const MAX_AIS_TEMPERATURES: usize = 10_000_000;

/// The most annealing runs (AIS) or reverse runs in all (RAISE, rows × runs per row) one
/// estimate may have: 2^20.
pub const MAX_AIS_RUNS: usize = 1 << 20;

/// [`Error::Config`] naming `field` unless `runs` is 1 to [`MAX_AIS_RUNS`].
pub(crate) fn check_runs(field: &str, runs: usize) -> Result<()> {
    if (1..=MAX_AIS_RUNS).contains(&runs) {
        Ok(())
    } else {
        Err(Error::config(field, format!("1 to {MAX_AIS_RUNS}"), runs))
    }
}

/// A schedule of inverse temperatures `0 = β_0 < β_1 < … < β_K = 1` (`K ≥ 1` steps, called
/// "temperatures" as in the literature: the standard schedule has 14,500).
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    betas: Vec<f64>,
}

impl Schedule {
    /// The number of temperatures of the standard schedule.
    pub const STANDARD_TEMPERATURES: usize = 14_500;

    /// The standard schedule of Salakhutdinov & Murray: `β` from 0 to 0.5 in steps of 1e-3,
    /// from 0.5 to 0.9 in steps of 1e-4 and from 0.9 to 1 in steps of 1e-5 (14,500 steps).
    pub fn standard() -> Self {
        Self::segments(500, 4000, 10_000)
    }

    /// The standard schedule's shape with `temperatures` steps in all: the three segments
    /// `[0, 0.5]`, `[0.5, 0.9]`, `[0.9, 1]` keep their shares (1 : 8 : 20) of the steps, each
    /// evenly spaced. `standard_with(14_500)` is [`standard`](Self::standard).
    ///
    /// # Errors
    /// [`Error::Config`] if `temperatures < 3`.
    pub fn standard_with(temperatures: usize) -> Result<Self> {
        if !(3..=MAX_AIS_TEMPERATURES).contains(&temperatures) {
            let expected = format!("3 to {MAX_AIS_TEMPERATURES}");
            return Err(Error::config("temperatures", expected, temperatures));
        }
        let share = |parts: usize| {
            ((temperatures as f64 * parts as f64 / 29.0).round() as usize).clamp(1, temperatures)
        };
        let n1 = share(1);
        let n2 = share(8).min(temperatures - n1 - 1).max(1);
        let n3 = temperatures - n1 - n2;
        Ok(Self::segments(n1, n2, n3))
    }

    /// `temperatures` evenly spaced steps from 0 to 1.
    ///
    /// # Errors
    /// [`Error::Config`] if `temperatures` is 0.
    pub fn linear(temperatures: usize) -> Result<Self> {
        if !(1..=MAX_AIS_TEMPERATURES).contains(&temperatures) {
            let expected = format!("1 to {MAX_AIS_TEMPERATURES}");
            return Err(Error::config("temperatures", expected, temperatures));
        }
        let n = temperatures as f64;
        let mut betas: Vec<f64> = (0..temperatures).map(|k| k as f64 / n).collect();
        betas.push(1.0);
        Ok(Schedule { betas })
    }

    /// Any schedule: `betas` must start at 0, end at 1, increase strictly and be finite.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first violation.
    pub fn from_betas(betas: Vec<f64>) -> Result<Self> {
        if betas.len() < 2 || betas[0] != 0.0 || betas[betas.len() - 1] != 1.0 {
            let ends = betas.first().zip(betas.last());
            return Err(Error::config(
                "AIS schedule",
                "β from 0 to 1",
                format!("{} values, ends {ends:?}", betas.len()),
            ));
        }
        let increasing = |w: &[f64]| w[0].partial_cmp(&w[1]) == Some(std::cmp::Ordering::Less);
        if let Some(k) = betas.windows(2).position(|w| !increasing(w)) {
            return Err(Error::config(
                format!("AIS schedule β[{}]", k + 1),
                format!("above β[{k}] = {}", betas[k]),
                betas[k + 1],
            ));
        }
        Ok(Schedule { betas })
    }

    fn segments(n1: usize, n2: usize, n3: usize) -> Self {
        let mut betas = Vec::with_capacity(n1 + n2 + n3 + 1);
        for (a, b, n) in [(0.0, 0.5, n1), (0.5, 0.9, n2), (0.9, 1.0, n3)] {
            betas.extend((0..n).map(|i| a + (b - a) * i as f64 / n as f64));
        }
        betas.push(1.0);
        Schedule { betas }
    }

    /// The inverse temperatures `β_0 = 0, …, β_K = 1`.
    pub fn betas(&self) -> &[f64] {
        &self.betas
    }

    /// The number of steps `K` (one less than the number of `β`s).
    pub fn temperatures(&self) -> usize {
        self.betas.len() - 1
    }

    /// The `β`s as the kernels use them (`f32`).
    pub(crate) fn betas_f32(&self) -> Vec<f32> {
        self.betas.iter().map(|&b| b as f32).collect()
    }
}

impl Default for Schedule {
    /// [`Schedule::standard`].
    fn default() -> Self {
        Self::standard()
    }
}

/// Settings of [`ais`].
#[derive(Clone, Debug, PartialEq)]
pub struct AisConfig {
    /// Independent runs `M` (`≥ 1`; 100 by default). The bounds need `M ≥ 2`.
    pub runs: usize,
    /// Inverse temperatures (the standard 14,500 by default).
    pub schedule: Schedule,
    /// Seed of every draw: run `m` at step `k` draws from
    /// `StreamKey::new(seed).derive(tags::AIS).derive(k).derive(m)`.
    pub seed: u64,
}

impl Default for AisConfig {
    fn default() -> Self {
        AisConfig {
            runs: 100,
            schedule: Schedule::standard(),
            seed: 0,
        }
    }
}

/// The result of [`ais`]. All values in nats.
#[derive(Clone, Debug, PartialEq)]
pub struct AisEstimate {
    /// The estimate `log Z_0 + log mean w`.
    pub log_z: f64,
    /// `log Z_0 + log(mean w − 3 se)`: `−∞` when the mean is within 3 standard errors of 0
    /// (or with a single run).
    pub log_z_lo: f64,
    /// `log Z_0 + log(mean w + 3 se)` (`+∞` with a single run).
    pub log_z_hi: f64,
    /// `log Z_0` of the annealing path: `Σ softplus(b_A) + H log 2`.
    pub log_z_base: f64,
    /// `log w` of each run, in run order (without `log Z_0`).
    pub log_weights: Vec<f64>,
    /// The number of steps `K` of the schedule.
    pub temperatures: usize,
}

impl AisEstimate {
    /// An estimate from the runs' log-weights (at least one) and `log Z_0`.
    pub fn from_log_weights(log_z_base: f64, log_weights: Vec<f64>, temperatures: usize) -> Self {
        let (m, lo, hi) = log_mean_exp_bounds(&log_weights);
        AisEstimate {
            log_z: log_z_base + m,
            log_z_lo: log_z_base + lo,
            log_z_hi: log_z_base + hi,
            log_z_base,
            log_weights,
            temperatures,
        }
    }

    /// The mean log-likelihood `(estimate, lower, upper)` of rows whose mean `−F(v)` is
    /// `mean_neg_free_energy` ([`super::mean_neg_free_energy`]): `mean(−F) − log Z` with the
    /// bounds from `log_z_hi` and `log_z_lo` (the upper bound is `+∞` when `log_z_lo` is `−∞`).
    pub fn log_likelihood(&self, mean_neg_free_energy: f64) -> (f64, f64, f64) {
        (
            mean_neg_free_energy - self.log_z,
            mean_neg_free_energy - self.log_z_hi,
            mean_neg_free_energy - self.log_z_lo,
        )
    }

    /// The effective sample size of the importance weights, `(Σ w)² / Σ w²`, between 1 and
    /// the number of runs: well below the number of runs, the estimate rests on a few runs.
    pub fn effective_sample_size(&self) -> f64 {
        let m = self
            .log_weights
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let (s1, s2) = self.log_weights.iter().fold((0.0, 0.0), |(a, b), &x| {
            let w = (x - m).exp();
            (a + w, b + w * w)
        });
        s1 * s1 / s2
    }
}

/// Estimates `log Z` of `model` by annealed importance sampling from `base` (see the
/// [module page](super) for the path and the transitions). Runs in parallel over blocks of
/// chains; the result is the same, bit for bit, for any number of threads.
///
/// # Errors
/// [`Error::Config`] if `config.runs` is 0; [`Error::Shape`] if `base` does not have the
/// model's `V` units.
pub fn ais(model: &Rbm, base: &BaseRate, config: &AisConfig) -> Result<AisEstimate> {
    base.check(model)?;
    check_runs("runs", config.runs)?;
    let path = Path::new(model, base);
    let betas = config.schedule.betas_f32();
    let root = StreamKey::new(config.seed).derive(tags::AIS);
    let n_blocks = config.runs.div_ceil(CHAIN_BLOCK);
    let blocks: Vec<Vec<f64>> = (0..n_blocks)
        .into_par_iter()
        .map(|b| {
            let first = b * CHAIN_BLOCK;
            let rows = CHAIN_BLOCK.min(config.runs - first);
            let mut chains = Chains::new(&path, rows, first as u64);
            chains.sample_base(&path, root.derive(0));
            let k_last = betas.len() - 1;
            for k in 1..=k_last {
                let key = (k < k_last).then(|| root.derive(k as u64));
                chains.anneal(&path, betas[k - 1], betas[k], key);
            }
            chains.log_w
        })
        .collect();
    let log_weights = blocks.concat();
    Ok(AisEstimate::from_log_weights(
        path.log_z0,
        log_weights,
        config.schedule.temperatures(),
    ))
}

/// AIS chains advanced one temperature at a time, for custom loops (monitoring, benchmarks):
/// [`ais`] is `Annealer::new`, then [`step`](Self::step) at `β_1, …, β_{K−1}`, then
/// [`finish`](Self::finish) at `β_K = 1`, with the same draws.
#[derive(Debug)]
pub struct Annealer<'m> {
    path: Path<'m>,
    blocks: Vec<Chains>,
    root: StreamKey,
    beta: f32,
    step: u64,
}

impl<'m> Annealer<'m> {
    /// `runs` chains drawn from the base rate (`β = 0`), with the draws of [`ais`]'s `seed`.
    ///
    /// # Errors
    /// As [`ais`].
    pub fn new(model: &'m Rbm, base: &'m BaseRate, runs: usize, seed: u64) -> Result<Self> {
        base.check(model)?;
        check_runs("runs", runs)?;
        let path = Path::new(model, base);
        let root = StreamKey::new(seed).derive(tags::AIS);
        let mut blocks: Vec<Chains> = (0..runs.div_ceil(CHAIN_BLOCK))
            .map(|b| {
                let first = b * CHAIN_BLOCK;
                Chains::new(&path, CHAIN_BLOCK.min(runs - first), first as u64)
            })
            .collect();
        blocks
            .par_iter_mut()
            .for_each(|c| c.sample_base(&path, root.derive(0)));
        Ok(Annealer {
            path,
            blocks,
            root,
            beta: 0.0,
            step: 0,
        })
    }

    /// One AIS step to `beta`: each log-weight gains `log p*_β(v) − log p*_{β_prev}(v)`, then
    /// each chain makes one Gibbs transition at `beta`.
    ///
    /// # Errors
    /// [`Error::Config`] unless `beta` is in `[0, 1]`.
    pub fn step(&mut self, beta: f64) -> Result<()> {
        let b = check_beta(beta)?;
        self.step += 1;
        let (path, from, key) = (&self.path, self.beta, self.root.derive(self.step));
        self.blocks
            .par_iter_mut()
            .for_each(|c| c.anneal(path, from, b, Some(key)));
        self.beta = b;
        Ok(())
    }

    /// The last step, to `β = 1` (weights only), and the estimate.
    pub fn finish(mut self) -> AisEstimate {
        let (path, from) = (&self.path, self.beta);
        self.blocks
            .par_iter_mut()
            .for_each(|c| c.anneal(path, from, 1.0, None));
        let log_weights = self.log_weights();
        AisEstimate::from_log_weights(self.path.log_z0, log_weights, self.step as usize + 1)
    }

    /// The current `log w` of each run (without `log Z_0`).
    pub fn log_weights(&self) -> Vec<f64> {
        self.blocks.iter().flat_map(|c| c.log_w.clone()).collect()
    }

    /// The current visible states, `runs × V`.
    pub fn visible(&self) -> Vec<f32> {
        self.blocks.iter().flat_map(|c| c.v.clone()).collect()
    }
}

fn check_beta(beta: f64) -> Result<f32> {
    if (0.0..=1.0).contains(&beta) {
        Ok(beta as f32)
    } else {
        Err(Error::config("β", "a value in [0, 1]", beta))
    }
}

/// The annealing path between the base rate and the model (see the module page):
/// `log p*_β(v) = b_Aᵀv + β (b − b_A)ᵀv + Σ_j softplus(β W_j·v + β c_j)`.
#[derive(Debug)]
pub(crate) struct Path<'m> {
    pub(crate) model: &'m Rbm,
    /// `b_A`, `V`.
    base: &'m [f32],
    /// `b − b_A` in f64 (exact: a difference of two f32 values).
    pub(crate) db: Vec<f64>,
    /// `Σ_j softplus(0)` over the hidden units, as the kernels compute it (`log p*_0(v)` is
    /// `b_Aᵀv` plus this).
    s0: f64,
    /// `log Z_0 = Σ softplus(b_A) + s0`.
    pub(crate) log_z0: f64,
}

impl<'m> Path<'m> {
    pub(crate) fn new(model: &'m Rbm, base: &'m BaseRate) -> Self {
        let db = model
            .v_bias()
            .iter()
            .zip(base.v_bias())
            .map(|(&b, &a)| b as f64 - a as f64)
            .collect();
        let zeros = vec![0.0f32; model.n_hidden()];
        let s0 = softplus_sum_affine(&zeros, 0.0, &zeros);
        Path {
            model,
            base: base.v_bias(),
            db,
            s0,
            log_z0: base.log_z_visible() + s0,
        }
    }

    /// `log p*_0(v) = b_Aᵀv + Σ_j softplus(0)`.
    pub(crate) fn log_p0(&self, v: &[f32]) -> f64 {
        self.base_dot(v) + self.s0
    }

    /// `b_Aᵀv` in f64.
    fn base_dot(&self, v: &[f32]) -> f64 {
        self.base
            .iter()
            .zip(v)
            .map(|(&a, &x)| a as f64 * x as f64)
            .sum()
    }
}

/// A block of chains of the annealing path, with every buffer a step needs. The
/// pre-activations of both layers follow the states by their flips ([`Incremental`]):
/// `hidden` always holds `W v` (and `(b − b_A)ᵀv`) of the current `v`, `visible` `Wᵀ h` of
/// the current `h`.
#[derive(Debug)]
pub(crate) struct Chains {
    /// The global index of the first chain: chain `first + r` draws from `key.derive(first + r)`.
    first: u64,
    pub(crate) v: Vec<f32>,
    h: Vec<f32>,
    /// The states being sampled, swapped with `v` or `h` once their flips are applied.
    next_v: Vec<f32>,
    next_h: Vec<f32>,
    prob: Vec<f32>,
    hidden: Incremental,
    visible: Incremental,
    /// `β c` for the two temperatures of an increment.
    hb_from: Vec<f32>,
    hb_to: Vec<f32>,
    /// `(1 − β) b_A + β b`.
    vb: Vec<f32>,
    pub(crate) log_w: Vec<f64>,
}

impl Chains {
    pub(crate) fn new(path: &Path<'_>, rows: usize, first: u64) -> Self {
        let model = path.model;
        let (nv, nh) = (model.n_visible(), model.n_hidden());
        Chains {
            first,
            v: vec![0.0; rows * nv],
            h: vec![0.0; rows * nh],
            next_v: vec![0.0; rows * nv],
            next_h: vec![0.0; rows * nh],
            prob: vec![0.0; nv.max(nh)],
            hidden: Incremental::new(model, Conditional::Hidden, rows).with_linear(path.db.clone()),
            visible: Incremental::new(model, Conditional::Visible, rows),
            hb_from: vec![0.0; nh],
            hb_to: vec![0.0; nh],
            vb: vec![0.0; nv],
            log_w: vec![0.0; rows],
        }
    }

    /// `v ~ p_0` (the base rate), then `W v`. Chain `i` draws from `key.derive(i)`.
    pub(crate) fn sample_base(&mut self, path: &Path<'_>, key: StreamKey) {
        let nv = path.model.n_visible();
        let zeros = vec![0.0f32; nv];
        for (r, s) in self.v.chunks_mut(nv).enumerate() {
            let k = key.derive(self.first + r as u64);
            sigmoid_affine_sample(&zeros, 0.0, path.base, k, 0, &mut self.prob[..nv], s);
        }
        self.hidden.reset(path.model, &self.v);
    }

    /// Sets the visible states to `v` (`rows × V`) and computes `W v`.
    pub(crate) fn set_visible(&mut self, model: &Rbm, v: &[f32]) {
        self.v.copy_from_slice(v);
        self.hidden.reset(model, &self.v);
    }

    /// `log_w += log p*_to(v) − log p*_from(v)` for each chain; then, with `key`, one Gibbs
    /// transition at `to`: `h ~ σ(β (c + W v))`, `v ~ σ((1 − β) b_A + β (b + Wᵀh))`, and
    /// `W v` of the new `v`. Chain `i` draws from `key.derive(i)`: the hidden units draws
    /// `0..H`, the visible units draws `H..H + V`. The change of the hidden units' softplus
    /// sum from `from` to `to` and their sample at `to` come from one kernel call, which
    /// computes the change directly rather than as a difference of two large sums.
    pub(crate) fn anneal(&mut self, path: &Path<'_>, from: f32, to: f32, key: Option<StreamKey>) {
        let nh = path.model.n_hidden();
        let c = path.model.h_bias();
        scale_into(c, from, &mut self.hb_from);
        scale_into(c, to, &mut self.hb_to);
        let d_beta = to as f64 - from as f64;
        let rows = self.log_w.len();
        for r in 0..rows {
            let pre = &self.hidden.pre()[r * nh..(r + 1) * nh];
            let lin = self.hidden.linear()[r];
            let linear = if d_beta == 0.0 { 0.0 } else { d_beta * lin };
            let (from_args, to_args) = ((from, &self.hb_from[..]), (to, &self.hb_to[..]));
            let hidden_term = match key {
                Some(key) => softplus_diff_affine_sample(
                    pre,
                    from_args,
                    to_args,
                    key.derive(self.first + r as u64),
                    0,
                    &mut self.prob[..nh],
                    &mut self.next_h[r * nh..(r + 1) * nh],
                ),
                None => softplus_diff_affine(pre, from_args, to_args),
            };
            self.log_w[r] += linear + hidden_term;
        }
        if let Some(key) = key {
            self.visible_half(path, to, key);
        }
    }

    /// The rest of a transition once `next_h` is sampled: `Wᵀh`, `v ~ p_β(v | h)`, `W v`.
    fn visible_half(&mut self, path: &Path<'_>, beta: f32, key: StreamKey) {
        let model = path.model;
        let (nv, nh) = (model.n_visible(), model.n_hidden());
        self.visible.update(model, &self.h, &self.next_h);
        std::mem::swap(&mut self.h, &mut self.next_h);
        for ((vb, &a), &b) in self.vb.iter_mut().zip(path.base).zip(model.v_bias()) {
            *vb = (1.0 - beta) * a + beta * b;
        }
        for ((s, pre), r) in self
            .next_v
            .chunks_mut(nv)
            .zip(self.visible.pre().chunks(nv))
            .zip(0u64..)
        {
            let k = key.derive(self.first + r);
            sigmoid_affine_sample(pre, beta, &self.vb, k, nh as u64, &mut self.prob[..nv], s);
        }
        self.hidden.update(model, &self.v, &self.next_v);
        std::mem::swap(&mut self.v, &mut self.next_v);
    }
}

/// `out = scale · x`.
fn scale_into(x: &[f32], scale: f32, out: &mut [f32]) {
    for (o, &a) in out.iter_mut().zip(x) {
        *o = scale * a;
    }
}

#[cfg(test)]
mod tests {
    use super::super::softplus64;
    use super::*;

    fn log_z_base(model: &Rbm, base: &BaseRate) -> f64 {
        Path::new(model, base).log_z0
    }

    #[test]
    fn standard_schedule_has_the_published_steps() {
        let s = Schedule::standard();
        assert_eq!(s.temperatures(), 14_500);
        let b = s.betas();
        assert_eq!((b[0], b[14_500]), (0.0, 1.0));
        assert!((b[1] - 1e-3).abs() < 1e-15);
        assert!((b[500] - 0.5).abs() < 1e-15 && (b[501] - 0.5001).abs() < 1e-12);
        assert!((b[4500] - 0.9).abs() < 1e-15 && (b[4501] - 0.90001).abs() < 1e-12);
        assert!(b.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(Schedule::standard_with(14_500).unwrap(), s);
        // The f32 values the kernels use still increase strictly.
        let f = s.betas_f32();
        assert!(f.windows(2).all(|w| w[0] < w[1]));
        for n in [3, 4, 10, 29, 1000, 1001] {
            let s = Schedule::standard_with(n).unwrap();
            assert_eq!(s.temperatures(), n, "{n}");
            assert!(s.betas().windows(2).all(|w| w[0] < w[1]), "{n}");
        }
        assert!(Schedule::standard_with(2).is_err());
        assert!(Schedule::linear(0).is_err());
        assert_eq!(
            Schedule::linear(4).unwrap().betas(),
            &[0.0, 0.25, 0.5, 0.75, 1.0]
        );
        assert!(Schedule::from_betas(vec![0.0, 0.5, 0.5, 1.0]).is_err());
        assert!(Schedule::from_betas(vec![0.0, 0.5]).is_err());
        assert!(Schedule::from_betas(vec![0.0, f64::NAN, 1.0]).is_err());
        assert!(Schedule::from_betas(vec![0.0, 1.0]).is_ok());
    }

    #[test]
    fn log_z_base_counts_the_free_hidden_units() {
        let model = Rbm::zeros(3, 5).unwrap();
        let base = BaseRate::from_v_bias(vec![0.0, 1.0, -2.0]).unwrap();
        let want = 2f64.ln() + softplus64(1.0) + softplus64(-2.0) + 5.0 * 2f64.ln();
        assert!((log_z_base(&model, &base) - want).abs() < 1e-6);
    }
}
