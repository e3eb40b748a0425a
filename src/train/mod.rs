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
mod update;

pub use fit::{EpochStats, Observer, RunPosition, Schedule, train_dataset, train_dataset_from};
pub use update::{Gradient, cd_gradient};

use rbm_kernels::StreamKey;

use crate::error::{Error, Result};
use crate::model::Rbm;
use crate::pass::{self, Conditional, PassBuffers, RowIndex};
use crate::rng::tags;

/// Hyper-parameters of CD-k / PCD-k training.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// Gibbs steps in the negative phase (`k ≥ 1`).
    pub k: usize,
    /// Learning rate (`> 0`).
    pub lr: f32,
    /// SGD momentum `μ` in `[0, 1)`; 0 for plain SGD.
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
        }
    }
}

impl TrainConfig {
    /// Checks every value's domain.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first value out of its domain.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::Config(what));
        if self.k == 0 {
            return bad("k must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!(
                "learning rate must be positive and finite, got {}",
                self.lr
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(format!("momentum must be in [0, 1), got {}", self.momentum));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "weight decay must be ≥ 0 and finite, got {}",
                self.weight_decay
            ));
        }
        if self.batch_size == 0 {
            return bad("batch size must be at least 1".into());
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

/// SGD momentum buffers (`buf` of `torch.optim.SGD`), in the layouts of [`Rbm`].
#[derive(Clone, Debug, PartialEq)]
pub struct Momentum {
    /// The weights' buffer, `H × V` row-major.
    pub w: Vec<f32>,
    /// The visible biases' buffer, length `V`.
    pub v_bias: Vec<f32>,
    /// The hidden biases' buffer, length `H`.
    pub h_bias: Vec<f32>,
}

/// Everything a [`Trainer`] carries from one step to the next besides the model and its
/// buffers: what a checkpoint must hold for training to continue exactly as if it had never
/// stopped. Every random draw of a step comes from a stream named by the step count, so
/// `steps` is the position of the random number generator.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainerState {
    /// Steps taken so far (all epochs).
    pub steps: u64,
    /// The optimizer's momentum buffers; present exactly when momentum or weight decay is on
    /// (plain SGD keeps none).
    pub momentum: Option<Momentum>,
    /// PCD: the persistent chains' visible states (`chains × V`, one per batch row), once a
    /// first step has started them; `None` for CD or before the first step.
    pub chains: Option<Vec<f32>>,
}

/// Buffers of one step, allocated once.
#[derive(Clone, Debug)]
struct Workspace {
    h0_pre: Vec<f32>,
    h0_prob: Vec<f32>,
    h: Vec<f32>,
    hk_pre: Vec<f32>,
    hk_prob: Vec<f32>,
    v_pre: Vec<f32>,
    v_prob: Vec<f32>,
    vk: Vec<f32>,
    index: RowIndex,
    update: update::UpdateScratch,
}

impl Workspace {
    /// Buffers for batches of `rows` rows.
    ///
    /// # Errors
    /// [`Error::Config`] if they cannot be allocated (an absurd batch size).
    fn new(rows: usize, nv: usize, nh: usize) -> Result<Self> {
        let zeros = |per_row: usize| -> Result<Vec<f32>> {
            let n = rows.checked_mul(per_row);
            let mut buf = Vec::new();
            n.and_then(|n| buf.try_reserve_exact(n).ok().map(|()| n))
                .map(|n| {
                    buf.resize(n, 0.0);
                    buf
                })
                .ok_or_else(|| {
                    Error::Config(format!(
                        "the buffers of a batch of {rows} rows of {per_row} units do not fit in memory"
                    ))
                })
        };
        Ok(Workspace {
            h0_pre: zeros(nh)?,
            h0_prob: zeros(nh)?,
            h: zeros(nh)?,
            hk_pre: zeros(nh)?,
            hk_prob: zeros(nh)?,
            v_pre: zeros(nv)?,
            v_prob: zeros(nv)?,
            vk: zeros(nv)?,
            index: RowIndex::default(),
            update: update::UpdateScratch::default(),
        })
    }
}

/// Trains one model by CD-k or PCD-k; holds the step counter, the optimizer state, the
/// persistent chains and all buffers, so that a step allocates nothing.
#[derive(Clone, Debug)]
pub struct Trainer {
    config: TrainConfig,
    n_visible: usize,
    n_hidden: usize,
    ws: Workspace,
    velocity: Option<update::Velocity>,
    /// PCD: the chains' visible states, `B × V`, once started.
    persistent: Option<Vec<f32>>,
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
        let needs_velocity = config.momentum > 0.0 || config.weight_decay > 0.0;
        Ok(Trainer {
            ws: Workspace::new(config.batch_size, nv, nh)?,
            velocity: needs_velocity.then(|| update::Velocity::new(nv, nh)),
            persistent: None,
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
    /// momentum buffers and persistent chains of `state`.
    ///
    /// # Errors
    /// [`Error::Config`] if `config` is invalid; [`Error::Shape`] if a buffer of `state` does
    /// not fit the model and `config` (momentum present exactly when `config` has momentum or
    /// weight decay, of the model's sizes; chains a whole number of `V`-unit rows, one per
    /// batch row, and only with PCD).
    pub fn resume(model: &Rbm, config: TrainConfig, state: TrainerState) -> Result<Self> {
        let mut t = Trainer::new(model, config)?;
        let (nv, nh) = (t.n_visible, t.n_hidden);
        match (&mut t.velocity, state.momentum) {
            (None, None) => {}
            (Some(vel), Some(m)) => {
                check_len("momentum of W", m.w.len(), nh * nv)?;
                check_len("momentum of v_bias", m.v_bias.len(), nv)?;
                check_len("momentum of h_bias", m.h_bias.len(), nh)?;
                rbm_kernels::binary::transpose(&m.w, nv, nh, nv, &mut vel.wt, nh);
                vel.v_bias = m.v_bias;
                vel.h_bias = m.h_bias;
            }
            (vel, m) => {
                return Err(Error::Shape(format!(
                    "the state {} momentum buffers but the configuration {}",
                    if m.is_some() { "has" } else { "has no" },
                    if vel.is_some() {
                        "needs them"
                    } else {
                        "has neither momentum nor weight decay"
                    }
                )));
            }
        }
        if let Some(chains) = &state.chains {
            if !t.config.pcd {
                return Err(Error::Shape(
                    "the state has persistent chains but the configuration is not PCD".into(),
                ));
            }
            check_len("persistent chains", chains.len(), t.config.batch_size * nv)?;
        }
        t.persistent = state.chains;
        t.steps = state.steps;
        Ok(t)
    }

    /// The state to continue from (see [`Trainer::resume`]); copies the buffers.
    pub fn state(&self) -> TrainerState {
        let (nv, nh) = (self.n_visible, self.n_hidden);
        TrainerState {
            steps: self.steps,
            momentum: self.velocity.as_ref().map(|vel| {
                let mut w = vec![0.0; nh * nv];
                rbm_kernels::binary::transpose(&vel.wt, nh, nv, nh, &mut w, nv);
                Momentum {
                    w,
                    v_bias: vel.v_bias.clone(),
                    h_bias: vel.h_bias.clone(),
                }
            }),
            chains: self.persistent.clone(),
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

    /// The negative-phase visible samples `V_k` of the last step, `B × V`: the "reconstruction
    /// after k steps" of the reference notebook.
    pub fn negative_visible(&self) -> &[f32] {
        &self.ws.vk
    }

    /// The reconstruction of the last step, `p(v | H_{k−1})` (`B × V`): the probabilities
    /// from which `V_k` was drawn, which the reference notebook shows as its reconstructions.
    pub fn reconstruction(&self) -> &[f32] {
        &self.ws.v_prob
    }

    /// One CD-k (or PCD-k) step on the batch `v0` (`B × V` with `B` the configured batch
    /// size, values in `[0, 1]`, usually 0/1), updating `model` in place.
    ///
    /// # Errors
    /// [`Error::Shape`] if `v0` or `model` do not have the sizes this trainer was made for;
    /// [`Error::Diverged`] if the loss, a weight or a bias became non-finite (the model is
    /// then left with the non-finite values: keep a copy or a checkpoint to roll back to).
    pub fn step(&mut self, model: &mut Rbm, v0: &[f32]) -> Result<StepStats> {
        self.check_shapes(model, v0)?;
        let key = StreamKey::new(self.config.seed)
            .derive(tags::STEP)
            .derive(self.steps);
        let recon_error = self.gibbs_phases(model, v0, key);
        let loss = self.loss(model, v0);
        let ws = &mut self.ws;
        let phases = update::Phases {
            v0,
            p0: &ws.h0_prob,
            vk: &ws.vk,
            pk: &ws.hk_prob,
        };
        let weights_finite = update::apply(
            model,
            &self.config,
            &phases,
            &mut ws.update,
            self.velocity.as_mut(),
        );
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

    /// Positive phase and `k` Gibbs steps; returns the reconstruction error.
    fn gibbs_phases(&mut self, model: &Rbm, v0: &[f32], key: StreamKey) -> f64 {
        let rows = self.config.batch_size;
        let ws = &mut self.ws;
        pass::conditional(
            model,
            Conditional::Hidden,
            v0,
            rows,
            PassBuffers {
                pre: &mut ws.h0_pre,
                prob: &mut ws.h0_prob,
                index: &mut ws.index,
            },
            Some((&mut ws.h, key.derive(0))),
        );
        if self.config.pcd {
            let chains = self.persistent.get_or_insert_with(|| v0.to_vec());
            pass::conditional(
                model,
                Conditional::Hidden,
                chains,
                rows,
                PassBuffers {
                    pre: &mut ws.hk_pre,
                    prob: &mut ws.hk_prob,
                    index: &mut ws.index,
                },
                Some((&mut ws.h, key.derive(1))),
            );
        }
        let mut recon = 0.0;
        for t in 1..=self.config.k {
            let kv = key.derive(2 * t as u64);
            pass::conditional(
                model,
                Conditional::Visible,
                &ws.h,
                rows,
                PassBuffers {
                    pre: &mut ws.v_pre,
                    prob: &mut ws.v_prob,
                    index: &mut ws.index,
                },
                Some((&mut ws.vk, kv)),
            );
            if t == 1 {
                recon = squared_error(v0, &ws.v_prob);
            }
            let last = t == self.config.k;
            let sample = (!last).then(|| (&mut ws.h[..], key.derive(2 * t as u64 + 1)));
            pass::conditional(
                model,
                Conditional::Hidden,
                &ws.vk,
                rows,
                PassBuffers {
                    pre: &mut ws.hk_pre,
                    prob: &mut ws.hk_prob,
                    index: &mut ws.index,
                },
                sample,
            );
        }
        if let Some(chains) = &mut self.persistent {
            chains.copy_from_slice(&ws.vk);
        }
        recon
    }

    /// `mean F(V₀) − mean F(V_k)` from the pre-activations of the two phases.
    fn loss(&self, model: &Rbm, v0: &[f32]) -> f64 {
        let (nv, nh) = (self.n_visible, self.n_hidden);
        let ws = &self.ws;
        let f = |v: &[f32], pre: &[f32]| -> f64 {
            v.chunks(nv)
                .zip(pre.chunks(nh))
                .map(|(v, p)| model.free_energy_from_pre(v, p))
                .sum()
        };
        (f(v0, &ws.h0_pre) - f(&ws.vk, &ws.hk_pre)) / self.config.batch_size as f64
    }

    fn check_shapes(&self, model: &Rbm, v0: &[f32]) -> Result<()> {
        if model.n_visible() != self.n_visible || model.n_hidden() != self.n_hidden {
            return Err(Error::Shape(format!(
                "trainer made for a {}–{} model, given a {}–{} one",
                self.n_visible,
                self.n_hidden,
                model.n_visible(),
                model.n_hidden()
            )));
        }
        let want = self.config.batch_size * self.n_visible;
        if v0.len() != want {
            return Err(Error::Shape(format!(
                "a batch of {} rows of {} units needs {want} values, got {}",
                self.config.batch_size,
                self.n_visible,
                v0.len()
            )));
        }
        Ok(())
    }
}

/// [`Error::Shape`] unless a buffer has the length needed.
fn check_len(what: &str, found: usize, expected: usize) -> Result<()> {
    if found == expected {
        Ok(())
    } else {
        Err(Error::Shape(format!(
            "{what}: {found} values, expected {expected}"
        )))
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
