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

mod config;
mod fit;
pub mod tempering;
mod update;

pub use config::{FastWeights, MAX_TEMPERATURES, Method, Tempering, TrainConfig};
pub use fit::{
    EpochStats, Observer, OnEpoch, RunPosition, Schedule, train_dataset, train_dataset_from,
};
pub use tempering::ParallelTempering;
pub use update::{Gradient, cd_gradient};

use rayon::prelude::*;
use rbm_kernels::StreamKey;

use crate::compute::delta::{self, FlipIndex};
use crate::compute::pass::{self, Conditional, PassBuffers, RowIndex};
use crate::error::{Error, Result};
use crate::model::Rbm;
use crate::rng::tags;

/// What one training step measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// The reference notebook's loss `mean F(V₀) − mean F(V_k)`, in nats.
    pub loss: f64,
    /// Mean squared error per pixel between `V₀` and its first reconstruction `p(v | H₀)`.
    pub recon_error: f64,
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
    /// What the negative phase carries: the variant of the configuration's [`Method`].
    pub negative: NegativeState,
    /// Centering: the offsets, once a first step has set them from its batch.
    pub offsets: Option<Offsets>,
}

/// What the negative phase of each [`Method`] carries from one step to the next. The
/// persistent chains are visible states (`C × V`; with parallel tempering `T × C × V`,
/// coldest temperature first), `None` until a first step has started them.
#[derive(Clone, Debug, PartialEq)]
pub enum NegativeState {
    /// CD: nothing (the chains start at the batch each step).
    Cd,
    /// PCD: the persistent chains.
    Pcd {
        /// The chains' visible states, once started.
        chains: Option<Vec<f32>>,
    },
    /// FPCD: the persistent chains and the fast weights.
    FastPcd {
        /// The chains' visible states, once started.
        chains: Option<Vec<f32>>,
        /// The fast weights and biases (zero at the start).
        fast: ParamSet,
    },
    /// Parallel tempering: the chains at every temperature.
    Tempering {
        /// The chains' visible states at every temperature, once started.
        chains: Option<Vec<f32>>,
    },
}

impl NegativeState {
    /// The state of `method` made of its parts, as a checkpoint file holds them: chains
    /// (only for a persistent method) and fast weights (exactly for FPCD).
    ///
    /// # Errors
    /// A sentence naming the part that `method` does not have, or lacks.
    ///
    /// ```
    /// use rbm::train::{Method, NegativeState};
    /// let pcd = NegativeState::from_parts(&Method::Pcd { chains: None }, Some(vec![0.0; 8]), None);
    /// assert_eq!(pcd.unwrap().chains().map(<[f32]>::len), Some(8));
    /// assert!(NegativeState::from_parts(&Method::Cd, Some(vec![0.0; 8]), None).is_err());
    /// ```
    pub fn from_parts(
        method: &Method,
        chains: Option<Vec<f32>>,
        fast: Option<ParamSet>,
    ) -> std::result::Result<Self, String> {
        match (method, chains, fast) {
            (Method::Cd, None, None) => Ok(NegativeState::Cd),
            (Method::Cd, Some(_), _) => Err("persistent chains, but the method is CD".into()),
            (Method::Pcd { .. }, chains, None) => Ok(NegativeState::Pcd { chains }),
            (Method::FastPcd { .. }, chains, Some(fast)) => {
                Ok(NegativeState::FastPcd { chains, fast })
            }
            (Method::FastPcd { .. }, _, None) => {
                Err("no fast weights, but the method is fast-weights PCD".into())
            }
            (Method::Tempering { .. }, chains, None) => Ok(NegativeState::Tempering { chains }),
            (_, _, Some(_)) => Err("fast weights, but the method has none".into()),
        }
    }

    /// The persistent chains, if the method has them and they have started.
    pub fn chains(&self) -> Option<&[f32]> {
        match self {
            NegativeState::Cd => None,
            NegativeState::Pcd { chains }
            | NegativeState::FastPcd { chains, .. }
            | NegativeState::Tempering { chains } => chains.as_deref(),
        }
    }

    /// The persistent chains, to change them.
    pub fn chains_mut(&mut self) -> Option<&mut Option<Vec<f32>>> {
        match self {
            NegativeState::Cd => None,
            NegativeState::Pcd { chains }
            | NegativeState::FastPcd { chains, .. }
            | NegativeState::Tempering { chains } => Some(chains),
        }
    }

    /// The fast weights, for FPCD.
    pub fn fast(&self) -> Option<&ParamSet> {
        match self {
            NegativeState::FastPcd { fast, .. } => Some(fast),
            _ => None,
        }
    }

    /// Whether this is the state of `method`'s variant.
    pub fn is_of(&self, method: &Method) -> bool {
        matches!(
            (self, method),
            (NegativeState::Cd, Method::Cd)
                | (NegativeState::Pcd { .. }, Method::Pcd { .. })
                | (NegativeState::FastPcd { .. }, Method::FastPcd { .. })
                | (NegativeState::Tempering { .. }, Method::Tempering { .. })
        )
    }

    /// The method's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            NegativeState::Cd => "CD's",
            NegativeState::Pcd { .. } => "PCD's",
            NegativeState::FastPcd { .. } => "fast-weights PCD's",
            NegativeState::Tempering { .. } => "parallel tempering's",
        }
    }
}

/// The negative phase's chains and what they carry between steps, as [`Method`] has them.
#[derive(Clone, Debug)]
enum Negative {
    /// CD: the chains start at the batch each step; nothing persists.
    Cd,
    /// PCD: the persistent chains' visible states (`C × V`), once a first step started them.
    Pcd { chains: Option<Vec<f32>> },
    /// FPCD: the persistent chains, the fast weights, and the model plus them that the
    /// chains sample from.
    FastPcd {
        chains: Option<Vec<f32>>,
        fast: update::Fast,
        model: Rbm,
    },
    /// Parallel tempering's chains at every temperature.
    Tempering(tempering::ParallelTempering),
}

impl Negative {
    /// The state of `config`'s method for a `nv`–`nh` model and `c` chains (per temperature).
    fn new(config: &TrainConfig, nv: usize, nh: usize, c: usize) -> Result<Self> {
        Ok(match config.method {
            Method::Cd => Negative::Cd,
            Method::Pcd { .. } => Negative::Pcd { chains: None },
            Method::FastPcd { fast, .. } => Negative::FastPcd {
                chains: None,
                fast: update::Fast::new(nv, nh, fast.lr, fast.decay),
                model: Rbm::zeros(nv, nh)?,
            },
            Method::Tempering { ladder, .. } => {
                let betas =
                    tempering::ParallelTempering::ladder(ladder.temperatures, ladder.beta_min);
                Negative::Tempering(tempering::ParallelTempering::new(nv, nh, betas, c)?)
            }
        })
    }

    /// The fast weights, for FPCD.
    fn fast_mut(&mut self) -> Option<&mut update::Fast> {
        match self {
            Negative::FastPcd { fast, .. } => Some(fast),
            _ => None,
        }
    }
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
    offsets: Option<Offsets>,
    /// The negative phase's chains and their state, as the method has them.
    negative: Negative,
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
            ws: Workspace::new(b, c, config.pcd(), nv, nh)?,
            short: None,
            last_short: false,
            velocity: config.has_momentum().then(|| update::Velocity::new(nv, nh)),
            offsets: None,
            negative: Negative::new(&config, nv, nh, c)?,
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
        if let Some(chains) = state.negative.chains() {
            check_len(
                "persistent chains",
                chains.len(),
                t.config.persistent_rows() * nv,
            )?;
        }
        let found = state.negative.name();
        match (&mut t.negative, state.negative) {
            (Negative::Cd, NegativeState::Cd) => {}
            (Negative::Pcd { chains }, NegativeState::Pcd { chains: started }) => {
                *chains = started;
            }
            (
                Negative::FastPcd { chains, fast, .. },
                NegativeState::FastPcd {
                    chains: started,
                    fast: f,
                },
            ) => {
                f.check_sizes("fast weights", nv, nh)?;
                f.into_transposed(&mut fast.wt, &mut fast.v_bias, &mut fast.h_bias);
                *chains = started;
            }
            (Negative::Tempering(pt), NegativeState::Tempering { chains }) => {
                if let Some(chains) = chains {
                    pt.set_states(&chains)?;
                }
            }
            _ => {
                return Err(Error::shape(
                    "negative phase state",
                    format!("the state of {:?}", t.config.method),
                    format!("{found} state"),
                ));
            }
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
            negative: match &self.negative {
                Negative::Cd => NegativeState::Cd,
                Negative::Pcd { chains } => NegativeState::Pcd {
                    chains: chains.clone(),
                },
                Negative::FastPcd { chains, fast, .. } => NegativeState::FastPcd {
                    chains: chains.clone(),
                    fast: ParamSet::from_transposed(&fast.wt, &fast.v_bias, &fast.h_bias),
                },
                Negative::Tempering(pt) => NegativeState::Tempering {
                    chains: pt.started().then(|| pt.states().to_vec()),
                },
            },
            offsets: self.offsets.clone(),
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
        if self.config.pcd() {
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
    /// [`Error::Diverged`] if the loss became non-finite or a weight or bias left the safe
    /// range `±`[`MAX_PARAMETER`](crate::model::MAX_PARAMETER) (the model is then left with
    /// those values: keep a copy or a checkpoint to roll back to).
    pub fn step(&mut self, model: &mut Rbm, v0: &[f32]) -> Result<StepStats> {
        // On a worker of the current pool (inline if already on one): a step's dozen parallel
        // passes then fork from a thread that works through them, instead of each waking the
        // pool and putting the caller to sleep (measured 1.2× on `rbm bench train`); and with
        // the other workers polling for those passes' halves rather than sleeping between
        // them (1.2× more with two threads).
        crate::compute::awake::run_awake(|| self.step_on_pool(model, v0, true))
    }

    /// [`Trainer::step`] on a batch of any finite values, used as given even outside
    /// `[0, 1]` (the rows of [`Rows::finite`](crate::data::Rows::finite), as scikit-learn's
    /// `BernoulliRBM` takes them): the same update, without the `[0, 1]` check.
    ///
    /// # Errors
    /// Those of [`Trainer::step`], [`Error::Value`] naming the first value that is NaN or
    /// infinite.
    pub fn step_finite(&mut self, model: &mut Rbm, v0: &[f32]) -> Result<StepStats> {
        crate::compute::awake::run_awake(|| self.step_on_pool(model, v0, false))
    }

    fn step_on_pool(&mut self, model: &mut Rbm, v0: &[f32], unit: bool) -> Result<StepStats> {
        let rows = self.check_shapes(model, v0, unit)?;
        self.last_short = rows != self.config.batch_size;
        if !self.last_short {
            return self.step_rows(model, v0, rows);
        }
        let c = self.chain_rows(rows);
        let (nv, nh, pcd) = (self.n_visible, self.n_hidden, self.config.pcd());
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
        if self.config.pcd() {
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
        if let Negative::FastPcd {
            fast, model: neg, ..
        } = &mut self.negative
        {
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
            self.negative.fast_mut(),
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
        weights_in_range: bool,
    ) -> Result<StepStats> {
        self.steps += 1;
        self.step_in_epoch += 1;
        let safe = crate::model::all_in_safe_range;
        let range = crate::model::MAX_PARAMETER;
        let what = if !loss.is_finite() {
            Some(format!("the loss is {loss}"))
        } else if !weights_in_range {
            Some(format!("a weight is not finite or beyond ±{range:e}"))
        } else if !safe(model.v_bias()) {
            Some(format!("a visible bias is not finite or beyond ±{range:e}"))
        } else if !safe(model.h_bias()) {
            Some(format!("a hidden bias is not finite or beyond ±{range:e}"))
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
        // The chains' model (the model plus the fast weights for FPCD; `same` when it is the
        // model itself), their persistent states and parallel tempering's chains.
        let (chain_model, same, mut persistent, mut pt) = match &mut self.negative {
            Negative::Cd => (model, true, None, None),
            Negative::Pcd { chains } => (model, true, Some(chains), None),
            Negative::FastPcd {
                chains, model: neg, ..
            } => (&*neg, false, Some(chains), None),
            Negative::Tempering(pt) => (model, true, None, Some(pt)),
        };
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
        if self.config.pcd() {
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
            if let Some(pt) = &mut pt {
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
            let chains = persistent
                .as_mut()
                .expect("PCD without tempering keeps persistent chains")
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
        let pcd = self.config.pcd();
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
                    .then_some(persistent.as_ref().and_then(|c| c.as_deref()))
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
        if let Some(Some(chains)) = persistent {
            chains.copy_from_slice(&ws.vk);
        }
        recon
    }

    /// [`Error::Shape`] unless `model` has the trainer's sizes and `v0` is 1 to `batch_size`
    /// whole rows; [`Error::Value`] unless every value of `v0` is in `[0, 1]` (`unit`) or
    /// finite. Returns the rows.
    fn check_shapes(&self, model: &Rbm, v0: &[f32], unit: bool) -> Result<usize> {
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
        let bad = if unit {
            crate::data::rows::first_outside_unit_interval(v0)
        } else {
            v0.iter().position(|v| !v.is_finite())
        };
        if let Some(k) = bad {
            return Err(Error::Value {
                row: k / nv,
                column: k % nv,
                value: v0[k],
            });
        }
        Ok(rows)
    }
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
