//! Contrastive-divergence training: CD-k and persistent CD-k with analytic gradients and SGD.
//!
//! One [`Trainer::step`] on a batch `V₀` (`B × V`):
//! 1. positive phase: `P₀ = p(h | V₀)` and a sample `H₀` (the chain's start for CD-k);
//! 2. negative phase: `k` Gibbs steps from `H₀` (CD) or from the persistent chains (PCD),
//!    giving visible samples `V_k` and `P_k = p(h | V_k)`;
//! 3. the gradient of the reference notebook's loss `L = mean F(V₀) − mean F(V_k)` with `V_k`
//!    held fixed, computed analytically (positive minus negative phase):
//!    `∂L/∂W = −(P₀ᵀV₀ − P_kᵀV_k)/B`, `∂L/∂b = −Σ(V₀ − V_k)/B`, `∂L/∂c = −Σ(P₀ − P_k)/B`;
//! 4. an SGD update with PyTorch's semantics (`torch.optim.SGD`): `g ← ∂L/∂θ + λθ`,
//!    `buf ← μ·buf + g`, `θ ← θ − lr·buf` (plain SGD when `μ = λ = 0`, as in the notebook).
//!
//! Every random draw of step `s` comes from the stream of `(seed, s, phase, row)`, and all
//! parallel work is split in fixed blocks, so the same seed gives bit-identical models for any
//! number of threads.

mod fit;
pub mod tempering;
mod update;

pub use fit::{EpochStats, Observer, RunPosition, Schedule, train_dataset, train_dataset_from};
pub use tempering::ParallelTempering;
pub use update::{Gradient, cd_gradient};

use rayon::prelude::*;
use rbm_kernels::StreamKey;

use crate::compute::delta::{self, FlipIndex};
use crate::compute::pass::{self, Conditional, PassBuffers, RowIndex};
use crate::error::{Error, Result};
use crate::model::Rbm;
use crate::rng::tags;

/// Hyper-parameters of CD-k / PCD-k training.
///
/// The fields after `seed` are the refinements of the literature (Hinton's practical guide,
/// Melchior et al. 2016); each is off by default, and absent from older checkpoints.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// Gibbs steps in the negative phase (`k ≥ 1`).
    pub k: usize,
    /// Learning rate (`> 0`); the rate of the first step when `lr_end` is set.
    pub lr: f32,
    /// SGD momentum `μ` in `[0, 1)`; 0 for plain SGD. After `momentum_steps` steps when
    /// `momentum_start` is set.
    pub momentum: f32,
    /// L2 weight decay `λ ≥ 0`, applied to `W` only (not the biases).
    pub weight_decay: f32,
    /// Rows per minibatch (`≥ 1`).
    pub batch_size: usize,
    /// Persistent CD: the negative chains continue from the previous step instead of
    /// restarting at the data.
    pub pcd: bool,
    /// The seed of every random draw of training.
    pub seed: u64,
    /// PCD: the number of persistent chains (`≥ 1`); `None` for one per batch row. The
    /// negative phase averages over the chains, the positive phase over the batch.
    #[serde(default)]
    pub chains: Option<usize>,
    /// The learning rate decays linearly from `lr` to `lr_end` over `anneal_steps` steps,
    /// then stays there; `None` for a constant rate.
    #[serde(default)]
    pub lr_end: Option<f32>,
    /// Steps of the learning-rate decay (`≥ 1` with `lr_end`).
    #[serde(default)]
    pub anneal_steps: u64,
    /// The momentum of the first `momentum_steps` steps (Hinton's guide: 0.5, then 0.9);
    /// `None` for `momentum` from the start.
    #[serde(default)]
    pub momentum_start: Option<f32>,
    /// Steps that use `momentum_start`.
    #[serde(default)]
    pub momentum_steps: u64,
    /// Centering (Melchior et al. 2016): the gradient of the model reparametrised with the
    /// visible and hidden offsets `μ`, `λ` subtracted from the states, whose values follow
    /// the data means by an exponential moving average with this rate in `(0, 1]`. The
    /// model itself stays in the ordinary form. `None`: no centering.
    #[serde(default)]
    pub centering: Option<f32>,
    /// FPCD's fast weights (PCD only); `None` for none.
    #[serde(default)]
    pub fast_weights: Option<FastWeights>,
    /// Parallel tempering (PCD only, not with fast weights): `chains` (or `B`) chains at
    /// each temperature; `None` for plain persistent chains.
    #[serde(default)]
    pub tempering: Option<Tempering>,
}

impl Default for TrainConfig {
    /// The reference notebook's MNIST recipe: CD-3, lr 0.01, plain SGD, batch 64.
    fn default() -> Self {
        TrainConfig {
            k: 3,
            lr: 0.01,
            momentum: 0.0,
            weight_decay: 0.0,
            batch_size: 64,
            pcd: false,
            seed: 0,
            chains: None,
            lr_end: None,
            anneal_steps: 0,
            momentum_start: None,
            momentum_steps: 0,
            centering: None,
            fast_weights: None,
            tempering: None,
        }
    }
}

impl TrainConfig {
    /// The number of negative-phase chains: `chains` for PCD, else the batch size.
    pub fn negative_rows(&self) -> usize {
        match (self.pcd, self.chains) {
            (true, Some(c)) => c,
            _ => self.batch_size,
        }
    }

    /// The learning rate of step `step` (0-based).
    pub fn lr_at(&self, step: u64) -> f32 {
        match self.lr_end {
            Some(end) if self.anneal_steps > 0 => {
                let t = (step as f64 / self.anneal_steps as f64).min(1.0);
                (self.lr as f64 + (end as f64 - self.lr as f64) * t) as f32
            }
            _ => self.lr,
        }
    }

    /// The momentum of step `step` (0-based).
    pub fn momentum_at(&self, step: u64) -> f32 {
        match self.momentum_start {
            Some(m) if step < self.momentum_steps => m,
            _ => self.momentum,
        }
    }

    /// The number of persistent chains kept: the negative rows times the temperatures.
    pub fn persistent_rows(&self) -> usize {
        self.negative_rows()
            .saturating_mul(self.tempering.map_or(1, |t| t.temperatures))
    }

    /// The optimizer's settings at step `step` (0-based).
    pub(crate) fn step_params(&self, step: u64) -> update::StepParams {
        update::StepParams {
            lr: self.lr_at(step),
            momentum: self.momentum_at(step),
            weight_decay: self.weight_decay,
        }
    }

    /// Whether the optimizer keeps momentum buffers (some momentum, or weight decay).
    pub fn has_momentum(&self) -> bool {
        self.momentum > 0.0
            || self.momentum_start.is_some_and(|m| m > 0.0)
            || self.weight_decay > 0.0
    }

    /// Checks every value's domain.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first value out of its domain.
    pub fn validate(&self) -> Result<()> {
        let bad =
            |field: &str, expected: &str, found: String| Err(Error::config(field, expected, found));
        if self.k == 0 {
            return bad("k", "at least 1", "0".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", "a positive finite learning rate", self.lr.to_string());
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", "a value in [0, 1)", self.momentum.to_string());
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(
                "weight_decay",
                "≥ 0 and finite",
                self.weight_decay.to_string(),
            );
        }
        if self.chains == Some(0) || (self.chains.is_some() && !self.pcd) {
            let found = format!("{:?} with pcd = {}", self.chains, self.pcd);
            return bad("chains", "at least 1, and only with PCD", found);
        }
        if let Some(end) = self.lr_end
            && !(end.is_finite() && end >= 0.0 && self.anneal_steps >= 1)
        {
            let found = format!("{end} over {} steps", self.anneal_steps);
            return bad("lr_end", "≥ 0 and finite, over at least one step", found);
        }
        if let Some(m) = self.momentum_start
            && !(0.0..1.0).contains(&m)
        {
            return bad("momentum_start", "a value in [0, 1)", m.to_string());
        }
        if let Some(rate) = self.centering
            && !(rate > 0.0 && rate <= 1.0)
        {
            return bad("centering", "a rate in (0, 1]", rate.to_string());
        }
        if let Some(f) = self.fast_weights
            && !(self.pcd && f.lr.is_finite() && f.lr > 0.0 && (0.0..1.0).contains(&f.decay))
        {
            let expected = "PCD, a positive finite rate and a decay in [0, 1)";
            return bad(
                "fast_weights",
                expected,
                format!("{f:?} with pcd = {}", self.pcd),
            );
        }
        if self.batch_size == 0 {
            return bad("batch_size", "at least 1", "0".into());
        }
        if let Some(t) = self.tempering
            && !(self.pcd
                && self.fast_weights.is_none()
                && (2..=MAX_TEMPERATURES).contains(&t.temperatures)
                && (0.0..1.0).contains(&t.beta_min))
        {
            let expected = format!(
                "PCD without fast weights, 2 to {MAX_TEMPERATURES} temperatures, beta_min in [0, 1)"
            );
            let found = format!("{t:?} with pcd = {}", self.pcd);
            return bad("tempering", &expected, found);
        }
        Ok(())
    }
}

/// What one training step measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// The reference notebook's loss `mean F(V₀) − mean F(V_k)`, in nats.
    pub loss: f64,
    /// Mean squared error per pixel between `V₀` and its first reconstruction `p(v | H₀)`.
    pub recon_error: f64,
}

/// The most inverse temperatures parallel tempering accepts.
pub const MAX_TEMPERATURES: usize = 1024;

/// Parallel tempering as the negative phase of PCD (see [`tempering`]).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tempering {
    /// Inverse temperatures (`≥ 2`), spaced evenly from 1 down to `beta_min`.
    pub temperatures: usize,
    /// The hottest chains' inverse temperature, in `[0, 1)`.
    pub beta_min: f32,
}

/// One buffer per parameter of an [`Rbm`], in its layouts: SGD's momentum buffers (`buf`
/// of `torch.optim.SGD`), or FPCD's fast weights.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSet {
    /// The weights' buffer, `H × V` row-major.
    pub w: Vec<f32>,
    /// The visible biases' buffer, length `V`.
    pub v_bias: Vec<f32>,
    /// The hidden biases' buffer, length `H`.
    pub h_bias: Vec<f32>,
}

impl ParamSet {
    /// From buffers in the update's layout: `wt` is `Wᵀ` (`V × H`, row-major, no padding).
    fn from_transposed(wt: &[f32], v_bias: &[f32], h_bias: &[f32]) -> Self {
        let (nv, nh) = (v_bias.len(), h_bias.len());
        let mut w = vec![0.0; nh * nv];
        rbm_kernels::binary::transpose(wt, nh, nv, nh, &mut w, nv);
        ParamSet {
            w,
            v_bias: v_bias.to_vec(),
            h_bias: h_bias.to_vec(),
        }
    }

    /// Into buffers of the update's layout (`wt`: `V × H`, as [`ParamSet::from_transposed`]).
    fn into_transposed(self, wt: &mut [f32], v_bias: &mut Vec<f32>, h_bias: &mut Vec<f32>) {
        let (nv, nh) = (self.v_bias.len(), self.h_bias.len());
        rbm_kernels::binary::transpose(&self.w, nv, nh, nv, wt, nh);
        *v_bias = self.v_bias;
        *h_bias = self.h_bias;
    }

    /// [`Error::Shape`] unless the buffers fit a `nv`–`nh` model (`what` names them).
    fn check_sizes(&self, what: &str, nv: usize, nh: usize) -> Result<()> {
        check_len(&format!("{what} of W"), self.w.len(), nh * nv)?;
        check_len(&format!("{what} of v_bias"), self.v_bias.len(), nv)?;
        check_len(&format!("{what} of h_bias"), self.h_bias.len(), nh)
    }
}

/// Fast-weights PCD (Tieleman & Hinton 2009): the persistent chains sample from the model
/// plus fast weights `F`, which follow the same gradient with their own learning rate and
/// decay every step, `F ← decay·F + lr·D`, so that the chains are pushed out of the modes
/// they have just visited.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FastWeights {
    /// The fast learning rate (`> 0`; the paper uses the regular one's initial value).
    pub lr: f32,
    /// The decay per step in `[0, 1)` (the paper: 19/20).
    pub decay: f32,
}

/// The centering offsets (Melchior et al. 2016): moving averages of the data's visible
/// values and hidden probabilities.
#[derive(Clone, Debug, PartialEq)]
pub struct Offsets {
    /// `μ`, length `V`.
    pub visible: Vec<f32>,
    /// `λ`, length `H`.
    pub hidden: Vec<f32>,
}

/// Everything a [`Trainer`] carries from one step to the next besides the model and its
/// buffers: what a checkpoint must hold for training to continue exactly as if it had never
/// stopped. Every random draw of a step comes from a stream named by the step count, so
/// `steps` is the position of the random number generator.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainerState {
    /// Steps taken so far (all epochs).
    pub steps: u64,
    /// The optimizer's momentum buffers; present exactly when the configuration has
    /// momentum or weight decay (plain SGD keeps none).
    pub momentum: Option<ParamSet>,
    /// PCD: the persistent chains' visible states (`chains × V`), once a first step has
    /// started them; `None` for CD or before the first step.
    pub chains: Option<Vec<f32>>,
    /// Centering: the offsets, once a first step has set them from its batch.
    pub offsets: Option<Offsets>,
    /// FPCD: the fast weights; present exactly when the configuration has them.
    pub fast: Option<ParamSet>,
}

/// Buffers of one step, allocated once.
#[derive(Clone, Debug)]
struct Workspace {
    /// Positive phase, `B × H`.
    h0_pre: Vec<f32>,
    h0_prob: Vec<f32>,
    /// Hidden samples: of the batch, then of the chains (`max(B, C) × H`).
    h: Vec<f32>,
    /// Negative phase, `C × H` and `C × V`.
    hk_pre: Vec<f32>,
    hk_prob: Vec<f32>,
    v_pre: Vec<f32>,
    v_prob: Vec<f32>,
    vk: Vec<f32>,
    /// The chain's previous states (`h`'s and `vk`'s shapes), and the lists of the flips from
    /// them: the chain's passes move their pre-activations by the flips ([`delta`]).
    h_old: Vec<f32>,
    v_old: Vec<f32>,
    flips: FlipIndex,
    /// PCD: the pre-activations and `p(v | H₀)` of the batch (`B × V`): its reconstruction.
    recon_pre: Vec<f32>,
    recon: Vec<f32>,
    index: RowIndex,
    update: update::UpdateScratch,
    /// The free energy of each row of a phase, `max(B, C)`.
    free_energy: Vec<f64>,
    /// Column sums of a phase (`max(V, H)` once used), for the centering offsets.
    column_sums: Vec<f64>,
}

/// A zeroed buffer of `rows × per_row` values, or an error if it cannot be allocated.
pub(crate) fn zeros(rows: usize, per_row: usize) -> Result<Vec<f32>> {
    let n = rows.checked_mul(per_row);
    let mut buf = Vec::new();
    n.and_then(|n| buf.try_reserve_exact(n).ok().map(|()| n))
        .map(|n| {
            buf.resize(n, 0.0);
            buf
        })
        .ok_or_else(|| {
            Error::config(
                "rows",
                "buffers that fit in memory",
                format!("{rows} rows of {per_row} units"),
            )
        })
}

impl Workspace {
    /// Buffers for batches of `b` rows and `c` negative chains.
    ///
    /// # Errors
    /// [`Error::Config`] if they cannot be allocated (an absurd batch size).
    fn new(b: usize, c: usize, pcd: bool, nv: usize, nh: usize) -> Result<Self> {
        Ok(Workspace {
            h0_pre: zeros(b, nh)?,
            h0_prob: zeros(b, nh)?,
            h: zeros(b.max(c), nh)?,
            hk_pre: zeros(c, nh)?,
            hk_prob: zeros(c, nh)?,
            v_pre: zeros(c, nv)?,
            v_prob: zeros(c, nv)?,
            vk: zeros(c, nv)?,
            h_old: zeros(b.max(c), nh)?,
            v_old: zeros(c, nv)?,
            flips: FlipIndex::default(),
            recon_pre: zeros(if pcd { b } else { 0 }, nv)?,
            recon: zeros(if pcd { b } else { 0 }, nv)?,
            index: RowIndex::default(),
            update: update::UpdateScratch::default(),
            free_energy: vec![0.0; b.max(c)],
            column_sums: Vec::with_capacity(nv.max(nh)),
        })
    }
}

/// Trains one model by CD-k or PCD-k; holds the step counter, the optimizer state, the
/// persistent chains, the centering offsets and all buffers, so that a step allocates
/// nothing.
#[derive(Clone, Debug)]
pub struct Trainer {
    config: TrainConfig,
    n_visible: usize,
    n_hidden: usize,
    ws: Workspace,
    /// The buffers of a batch shorter than `batch_size` (an epoch's last), made for the size
    /// of the last such batch; and whether the last step used them.
    short: Option<Workspace>,
    last_short: bool,
    velocity: Option<update::Velocity>,
    /// PCD: the chains' visible states, `C × V`, once started.
    persistent: Option<Vec<f32>>,
    offsets: Option<Offsets>,
    /// FPCD: the fast weights, and the model plus them that the chains sample from.
    fast: Option<(update::Fast, Rbm)>,
    /// Parallel tempering's chains (instead of `persistent`).
    pt: Option<tempering::ParallelTempering>,
    steps: u64,
    epoch: usize,
    step_in_epoch: usize,
}

impl Trainer {
    /// A trainer for `model` with `config`.
    ///
    /// # Errors
    /// [`Error::Config`] if `config` is invalid or the buffers of its batch size cannot be
    /// allocated.
    pub fn new(model: &Rbm, config: TrainConfig) -> Result<Self> {
        config.validate()?;
        let (nv, nh) = (model.n_visible(), model.n_hidden());
        let (b, c) = (config.batch_size, config.negative_rows());
        Ok(Trainer {
            ws: Workspace::new(b, c, config.pcd, nv, nh)?,
            short: None,
            last_short: false,
            velocity: config.has_momentum().then(|| update::Velocity::new(nv, nh)),
            persistent: None,
            offsets: None,
            pt: match config.tempering {
                Some(t) => Some(tempering::ParallelTempering::new(
                    nv,
                    nh,
                    tempering::ParallelTempering::ladder(t.temperatures, t.beta_min),
                    c,
                )?),
                None => None,
            },
            fast: match config.fast_weights {
                Some(f) => Some((
                    update::Fast::new(nv, nh, f.lr, f.decay),
                    Rbm::zeros(nv, nh)?,
                )),
                None => None,
            },
            config,
            n_visible: nv,
            n_hidden: nh,
            steps: 0,
            epoch: 0,
            step_in_epoch: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Steps taken so far (all epochs).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// A trainer that continues from `state` (taken by [`Trainer::state`] from a trainer with
    /// the same `config` and model size): the next step is step `state.steps`, with the
    /// momentum buffers, persistent chains and offsets of `state`.
    ///
    /// # Errors
    /// [`Error::Config`] if `config` is invalid; [`Error::Shape`] if a buffer of `state` does
    /// not fit the model and `config` (momentum present exactly when `config` has momentum or
    /// weight decay, of the model's sizes; chains only with PCD, as many as it has; offsets
    /// only with centering, of the model's sizes).
    pub fn resume(model: &Rbm, config: TrainConfig, state: TrainerState) -> Result<Self> {
        let mut t = Trainer::new(model, config)?;
        let (nv, nh) = (t.n_visible, t.n_hidden);
        match (&mut t.velocity, state.momentum) {
            (None, None) => {}
            (Some(vel), Some(m)) => {
                m.check_sizes("momentum", nv, nh)?;
                m.into_transposed(&mut vel.wt, &mut vel.v_bias, &mut vel.h_bias);
            }
            (vel, m) => {
                return Err(Error::shape(
                    "momentum buffers",
                    if vel.is_some() {
                        "buffers (the configuration has momentum or weight decay)"
                    } else {
                        "none (the configuration has neither momentum nor weight decay)"
                    },
                    if m.is_some() { "buffers" } else { "none" },
                ));
            }
        }
        if let Some(chains) = &state.chains {
            if !t.config.pcd {
                return Err(Error::shape(
                    "persistent chains",
                    "none (the configuration is not PCD)",
                    "chains",
                ));
            }
            check_len(
                "persistent chains",
                chains.len(),
                t.config.persistent_rows() * nv,
            )?;
        }
        if let Some(o) = &state.offsets {
            if t.config.centering.is_none() {
                return Err(Error::shape(
                    "centering offsets",
                    "none (the configuration has no centering)",
                    "offsets",
                ));
            }
            check_len("visible offsets", o.visible.len(), nv)?;
            check_len("hidden offsets", o.hidden.len(), nh)?;
        }
        match (&mut t.fast, state.fast) {
            (None, None) => {}
            (Some((fast, _)), Some(f)) => {
                f.check_sizes("fast weights", nv, nh)?;
                f.into_transposed(&mut fast.wt, &mut fast.v_bias, &mut fast.h_bias);
            }
            (_, f) => {
                return Err(Error::shape(
                    "fast weights",
                    if f.is_some() {
                        "none (the configuration has no fast weights)"
                    } else {
                        "fast weights (the configuration has them)"
                    },
                    if f.is_some() { "fast weights" } else { "none" },
                ));
            }
        }
        match (&mut t.pt, state.chains) {
            (Some(pt), Some(chains)) => pt.set_states(&chains)?,
            (_, chains) => t.persistent = chains,
        }
        t.offsets = state.offsets;
        t.steps = state.steps;
        Ok(t)
    }

    /// The state to continue from (see [`Trainer::resume`]); copies the buffers.
    pub fn state(&self) -> TrainerState {
        TrainerState {
            steps: self.steps,
            momentum: self
                .velocity
                .as_ref()
                .map(|vel| ParamSet::from_transposed(&vel.wt, &vel.v_bias, &vel.h_bias)),
            chains: match &self.pt {
                Some(pt) => pt.started().then(|| pt.states().to_vec()),
                None => self.persistent.clone(),
            },
            offsets: self.offsets.clone(),
            fast: self
                .fast
                .as_ref()
                .map(|(f, _)| ParamSet::from_transposed(&f.wt, &f.v_bias, &f.h_bias)),
        }
    }

    /// Marks the start of epoch `epoch` (0-based): used to name the place of a divergence.
    pub fn start_epoch(&mut self, epoch: usize) {
        self.set_position(epoch, 0);
    }

    /// Marks that the next step is batch `batch` (0-based) of epoch `epoch` (0-based): used
    /// to name the place of a divergence.
    pub fn set_position(&mut self, epoch: usize, batch: usize) {
        self.epoch = epoch;
        self.step_in_epoch = batch;
    }

    /// The negative-phase visible samples `V_k` of the last step (`C × V`, one row per
    /// chain): the "reconstruction after k steps" of the reference notebook for CD.
    pub fn negative_visible(&self) -> &[f32] {
        &self.last_workspace().vk
    }

    /// The buffers of the last step.
    fn last_workspace(&self) -> &Workspace {
        match (&self.short, self.last_short) {
            (Some(short), true) => short,
            _ => &self.ws,
        }
    }

    /// The reconstruction of the last batch (`B × V`): for CD-k `p(v | H_{k−1})`, the
    /// probabilities from which `V_k` was drawn, which the reference notebook shows as its
    /// reconstructions; for PCD `p(v | H₀)`, from the batch's own hidden sample.
    pub fn reconstruction(&self) -> &[f32] {
        let ws = self.last_workspace();
        if self.config.pcd {
            &ws.recon
        } else {
            &ws.v_prob
        }
    }

    /// One CD-k (or PCD-k) step on the batch `v0` (`B × V` with `B` from 1 to the configured
    /// batch size, values in `[0, 1]`, usually 0/1), updating `model` in place. A batch
    /// shorter than the configured size (an epoch's last) is averaged over its own rows; for
    /// CD its chains are its rows, PCD keeps its persistent chains. Its buffers are made on
    /// the first such batch and kept for the next one of the same size.
    ///
    /// # Errors
    /// [`Error::Shape`] if `v0` or `model` do not have the sizes this trainer was made for
    /// (`v0` empty, longer than a batch or not whole rows); [`Error::Value`] naming the first
    /// value of `v0` that is NaN or outside `[0, 1]` (nothing is changed then);
    /// [`Error::Config`] if a short batch's buffers cannot be allocated;
    /// [`Error::Diverged`] if the loss, a weight or a bias became non-finite (the model is
    /// then left with the non-finite values: keep a copy or a checkpoint to roll back to).
    pub fn step(&mut self, model: &mut Rbm, v0: &[f32]) -> Result<StepStats> {
        // On a worker of the current pool (inline if already on one): a step's dozen parallel
        // passes then fork from a thread that works through them, instead of each waking the
        // pool and putting the caller to sleep (measured 1.2× on `rbm bench train`); and with
        // the other workers polling for those passes' halves rather than sleeping between
        // them (1.2× more with two threads).
        crate::compute::awake::run_awake(|| self.step_on_pool(model, v0))
    }

    fn step_on_pool(&mut self, model: &mut Rbm, v0: &[f32]) -> Result<StepStats> {
        let rows = self.check_shapes(model, v0)?;
        self.last_short = rows != self.config.batch_size;
        if !self.last_short {
            return self.step_rows(model, v0, rows);
        }
        let c = self.chain_rows(rows);
        let (nv, nh, pcd) = (self.n_visible, self.n_hidden, self.config.pcd);
        let mut short = match self.short.take() {
            Some(ws) if ws.h0_prob.len() == rows * nh => ws,
            _ => Workspace::new(rows, c, pcd, nv, nh)?,
        };
        // The step runs on the short batch's buffers, put in the place of the full ones.
        std::mem::swap(&mut self.ws, &mut short);
        let result = self.step_rows(model, v0, rows);
        std::mem::swap(&mut self.ws, &mut short);
        self.short = Some(short);
        result
    }

    /// The negative phase's chains for a batch of `rows` rows: the persistent chains with
    /// PCD, else one per row.
    fn chain_rows(&self, rows: usize) -> usize {
        if self.config.pcd {
            self.config.negative_rows()
        } else {
            rows
        }
    }

    /// [`Trainer::step`] on a checked batch of `rows` rows, with `self.ws` sized for it.
    fn step_rows(&mut self, model: &mut Rbm, v0: &[f32], rows: usize) -> Result<StepStats> {
        let key = StreamKey::new(self.config.seed)
            .derive(tags::STEP)
            .derive(self.steps);
        if let Some((fast, neg)) = &mut self.fast {
            // The chains' model: the regular parameters plus the fast ones.
            let (wt, vb, hb) = (model.weights_t(), model.v_bias(), model.h_bias());
            let (ld, nh) = (model.wt_stride(), model.n_hidden());
            neg.update_through_t(|nwt, nvb, nhb| {
                // Wᵀ rows at stride `ld` (the padding stays zero), F's at stride `H`.
                let rows = nwt
                    .chunks_mut(ld)
                    .zip(wt.chunks(ld))
                    .zip(fast.wt.chunks(nh));
                for ((out, w), f) in rows {
                    add_into(&mut out[..nh], &w[..nh], f);
                }
                add_into(nvb, vb, &fast.v_bias);
                add_into(nhb, hb, &fast.h_bias);
            });
        }
        let recon_error = self.gibbs_phases(model, v0, rows, key);
        let loss = loss(model, v0, &mut self.ws);
        let ws = &mut self.ws;
        let (nv, nh) = (self.n_visible, self.n_hidden);
        let offsets = self.config.centering.map(|_| {
            &*self.offsets.get_or_insert_with(|| Offsets {
                visible: column_means(v0, nv),
                hidden: column_means(&ws.h0_prob, nh),
            })
        });
        let phases = update::Phases {
            v0,
            p0: &ws.h0_prob,
            vk: &ws.vk,
            pk: &ws.hk_prob,
        };
        let finite = update::apply(
            model,
            &self.config.step_params(self.steps),
            &phases,
            &mut ws.update,
            self.velocity.as_mut(),
            offsets,
            self.fast.as_mut().map(|(f, _)| f),
        );
        // The step used the offsets of before it; they move after.
        if let (Some(rate), Some(o)) = (self.config.centering, &mut self.offsets) {
            move_towards_means(&mut o.visible, v0, rate, &mut ws.column_sums);
            move_towards_means(&mut o.hidden, &ws.h0_prob, rate, &mut ws.column_sums);
        }
        self.finish_step(model, loss, recon_error, finite)
    }

    /// Counts the step and checks that it left everything finite.
    fn finish_step(
        &mut self,
        model: &Rbm,
        loss: f64,
        recon_error: f64,
        weights_finite: bool,
    ) -> Result<StepStats> {
        self.steps += 1;
        self.step_in_epoch += 1;
        let what = if !loss.is_finite() {
            Some(format!("the loss is {loss}"))
        } else if !weights_finite {
            Some("a weight is not finite".to_string())
        } else if !crate::model::all_finite(model.v_bias()) {
            Some("a visible bias is not finite".to_string())
        } else if !crate::model::all_finite(model.h_bias()) {
            Some("a hidden bias is not finite".to_string())
        } else {
            None
        };
        match what {
            Some(what) => Err(Error::Diverged {
                epoch: self.epoch,
                step: self.step_in_epoch - 1,
                what,
            }),
            None => Ok(StepStats { loss, recon_error }),
        }
    }

    /// Positive phase and `k` Gibbs steps; returns the reconstruction error. With fast
    /// weights the chains sample from the model plus them, and their final hidden
    /// probabilities (for the gradient) come from the model alone.
    fn gibbs_phases(&mut self, model: &Rbm, v0: &[f32], b: usize, key: StreamKey) -> f64 {
        let c = self.chain_rows(b);
        let nh = self.n_hidden;
        let ws = &mut self.ws;
        let chain_model = self.fast.as_ref().map_or(model, |(_, neg)| neg);
        pass::conditional(
            model,
            Conditional::Hidden,
            v0,
            b,
            PassBuffers {
                pre: &mut ws.h0_pre,
                prob: &mut ws.h0_prob,
                index: &mut ws.index,
            },
            Some((&mut ws.h[..b * nh], key.derive(0))),
        );
        let mut recon = 0.0;
        if self.config.pcd {
            // The batch's reconstruction from its own hidden sample, before `h` is reused.
            pass::conditional(
                model,
                Conditional::Visible,
                &ws.h[..b * nh],
                b,
                PassBuffers {
                    pre: &mut ws.recon_pre,
                    prob: &mut ws.recon,
                    index: &mut ws.index,
                },
                None,
            );
            recon = squared_error(v0, &ws.recon);
            if let Some(pt) = &mut self.pt {
                if !pt.started() {
                    pt.start(v0);
                }
                pt.sweep(
                    model,
                    self.config.k,
                    key.derive(1),
                    (self.steps % 2) as usize,
                );
                ws.vk.copy_from_slice(pt.visible(0));
                ws.hk_pre.copy_from_slice(pt.hidden_pre());
                ws.hk_prob.copy_from_slice(pt.hidden_prob());
                return recon;
            }
            let nv = self.n_visible;
            let chains = self
                .persistent
                .get_or_insert_with(|| initial_chains(v0, nv, c));
            pass::conditional(
                chain_model,
                Conditional::Hidden,
                chains,
                c,
                PassBuffers {
                    pre: &mut ws.hk_pre,
                    prob: &mut ws.hk_prob,
                    index: &mut ws.index,
                },
                Some((&mut ws.h[..c * nh], key.derive(1))),
            );
        }
        // Each pass after a chain's first of its kind moves the previous pre-activations by
        // the flips of its input, when they were computed with the same weights (with fast
        // weights, the last `v → h` uses the model alone), except every REFRESH_EVERY steps.
        let same = self.fast.is_none();
        let pcd = self.config.pcd;
        if !pcd {
            // CD: the chain's first `v → h` moves the positive phase's (computed with the
            // model; fast weights come only with PCD, so the chain's model is the same).
            ws.hk_pre.copy_from_slice(&ws.h0_pre);
        }
        for t in 1..=self.config.k {
            let kv = key.derive(2 * t as u64);
            let refresh = t % delta::REFRESH_EVERY == 0;
            std::mem::swap(&mut ws.vk, &mut ws.v_old);
            let bufs = PassBuffers {
                pre: &mut ws.v_pre,
                prob: &mut ws.v_prob,
                index: &mut ws.index,
            };
            let (h, h_old) = (&ws.h[..c * nh], &ws.h_old[..c * nh]);
            let sample = Some((&mut ws.vk[..], kv));
            if t >= 2 && !refresh {
                let flips = &mut ws.flips;
                delta::conditional_moved(
                    chain_model,
                    Conditional::Visible,
                    h_old,
                    h,
                    c,
                    bufs,
                    flips,
                    sample,
                );
            } else {
                pass::conditional(chain_model, Conditional::Visible, h, c, bufs, sample);
            }
            if t == 1 && !pcd {
                recon = squared_error(v0, &ws.v_prob);
            }
            let last = t == self.config.k;
            std::mem::swap(&mut ws.h, &mut ws.h_old);
            let sample = (!last).then(|| (&mut ws.h[..c * nh], key.derive(2 * t as u64 + 1)));
            let pass_model = if last { model } else { chain_model };
            // The state `hk_pre` was computed from, if with `pass_model`'s weights.
            let old_v: Option<&[f32]> = match (t, pcd) {
                _ if refresh => None,
                (1, false) => (same || last).then_some(v0),
                (1, true) => (same || !last)
                    .then_some(self.persistent.as_deref())
                    .flatten(),
                _ => (same || !last).then_some(&ws.v_old[..]),
            };
            let bufs = PassBuffers {
                pre: &mut ws.hk_pre,
                prob: &mut ws.hk_prob,
                index: &mut ws.index,
            };
            match old_v {
                Some(old_v) => delta::conditional_moved(
                    pass_model,
                    Conditional::Hidden,
                    old_v,
                    &ws.vk,
                    c,
                    bufs,
                    &mut ws.flips,
                    sample,
                ),
                None => pass::conditional(pass_model, Conditional::Hidden, &ws.vk, c, bufs, sample),
            }
        }
        if let Some(chains) = &mut self.persistent {
            chains.copy_from_slice(&ws.vk);
        }
        recon
    }

    /// [`Error::Shape`] unless `model` has the trainer's sizes and `v0` is 1 to `batch_size`
    /// whole rows; [`Error::Value`] unless every value of `v0` is in `[0, 1]`. Returns the
    /// rows.
    fn check_shapes(&self, model: &Rbm, v0: &[f32]) -> Result<usize> {
        if model.n_visible() != self.n_visible || model.n_hidden() != self.n_hidden {
            return Err(Error::shape(
                "model",
                format!(
                    "a {}–{} model (the trainer's)",
                    self.n_visible, self.n_hidden
                ),
                format!("{}–{}", model.n_visible(), model.n_hidden()),
            ));
        }
        let (b, nv) = (self.config.batch_size, self.n_visible);
        let rows = v0.len() / nv;
        if v0.is_empty() || !v0.len().is_multiple_of(nv) || rows > b {
            return Err(Error::shape(
                "batch",
                format!("1 to {b} rows of {nv} values"),
                format!("{} values", v0.len()),
            ));
        }
        if let Some(k) = first_outside_unit_interval(v0) {
            return Err(Error::Value {
                row: k / nv,
                column: k % nv,
                value: v0[k],
            });
        }
        Ok(rows)
    }
}

/// The index of the first value of `x` that is NaN or outside `[0, 1]`, if any. Decided over
/// blocks by an order-free test that vectorizes (a NaN fails both comparisons), then located.
fn first_outside_unit_interval(x: &[f32]) -> Option<usize> {
    const BLOCK: usize = 256;
    let bad = |b: &[f32]| !b.iter().fold(true, |ok, &v| ok & (v >= 0.0) & (v <= 1.0));
    let block = x.chunks(BLOCK).position(bad)?;
    let first = block * BLOCK;
    x[first..]
        .iter()
        .position(|v| !(0.0..=1.0).contains(v))
        .map(|i| first + i)
}

/// `out = a + b`, element by element.
fn add_into(out: &mut [f32], a: &[f32], b: &[f32]) {
    out.iter_mut()
        .zip(a.iter().zip(b))
        .for_each(|(o, (x, y))| *o = x + y);
}

/// The first PCD chains: the first batch's rows (`B × V`), repeated as often as needed for
/// `c` chains.
fn initial_chains(v0: &[f32], nv: usize, c: usize) -> Vec<f32> {
    v0.chunks(nv).cycle().take(c).flatten().copied().collect()
}

/// The reference notebook's loss `mean F(V₀) − mean F(V_k)` of a step, from the phases'
/// hidden pre-activations in `ws`: each row's free energy computed in parallel into
/// `ws.free_energy`, then summed in row order, so the split changes no bit.
fn loss(model: &Rbm, v0: &[f32], ws: &mut Workspace) -> f64 {
    let (nv, nh) = (model.n_visible(), model.n_hidden());
    let mut mean = |v: &[f32], pre: &[f32]| -> f64 {
        let rows = v.len() / nv;
        let out = &mut ws.free_energy[..rows];
        out.par_iter_mut()
            .zip(v.par_chunks(nv))
            .zip(pre.par_chunks(nh))
            .with_min_len(pass::task_min_len(
                rows * (nv + nh),
                pass::PARALLEL_MIN_VALUES,
                1,
            ))
            .for_each(|((o, v), p)| *o = model.free_energy_from_pre(v, p));
        out.iter().sum::<f64>() / rows as f64
    };
    let positive = mean(v0, &ws.h0_pre);
    positive - mean(&ws.vk, &ws.hk_pre)
}

/// The mean of each column of the rows of `n` values in `x` (see [`column_sums`]).
fn column_means(x: &[f32], n: usize) -> Vec<f32> {
    let mut sums = Vec::new();
    column_sums(x, n, &mut sums);
    let rows = x.len() / n;
    sums.iter().map(|&s| (s / rows as f64) as f32).collect()
}

/// `sums[j]` = the sum of column `j` of the rows of `n` values in `x`, in f64, adding the rows
/// in order from −0.0 (as `Iterator::sum` does), walked row by row.
fn column_sums(x: &[f32], n: usize, sums: &mut Vec<f64>) {
    sums.clear();
    sums.resize(n, -0.0);
    for row in x.chunks(n) {
        sums.iter_mut()
            .zip(row)
            .for_each(|(s, &v)| *s += f64::from(v));
    }
}

/// `o ← (1 − rate)·o + rate·mean(x)`, column by column (`x` has rows of `o.len()` values),
/// with the column sums in the scratch `sums`.
fn move_towards_means(o: &mut [f32], x: &[f32], rate: f32, sums: &mut Vec<f64>) {
    let n = o.len();
    let rows = x.len() / n;
    column_sums(x, n, sums);
    for (o, &s) in o.iter_mut().zip(sums.iter()) {
        *o = (1.0 - rate) * *o + rate * (s / rows as f64) as f32;
    }
}

/// [`Error::Shape`] unless a buffer has the length needed.
fn check_len(what: &str, found: usize, expected: usize) -> Result<()> {
    if found == expected {
        Ok(())
    } else {
        Err(Error::shape(what, format!("{expected} values"), found))
    }
}

/// Mean of `(a − b)²` over all elements, in f64.
fn squared_error(a: &[f32], b: &[f32]) -> f64 {
    let s: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| ((x - y) as f64).powi(2))
        .sum();
    s / a.len().max(1) as f64
}
