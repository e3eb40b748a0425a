//! The hyper-parameters of training ([`TrainConfig`]) and the negative phase's strategy
//! ([`Method`]): one enum whose variants carry their own settings, so that no illegal
//! combination (fast weights without persistent chains, tempering with fast weights, chains
//! for CD) can be written.

use crate::error::{Error, Result};

use super::update;

/// The most inverse temperatures parallel tempering accepts.
pub const MAX_TEMPERATURES: usize = 1024;

/// How the negative phase samples from the model: one strategy, with its settings.
///
/// ```
/// use rbm::train::{FastWeights, Method, TrainConfig};
/// let config = TrainConfig {
///     method: Method::FastPcd { chains: Some(100), fast: FastWeights { lr: 0.01, decay: 0.95 } },
///     ..TrainConfig::default()
/// };
/// assert!(config.pcd() && config.fast_weights().is_some());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Method {
    /// Contrastive divergence, CD-k (Hinton 2002): `k` Gibbs steps from each batch row.
    #[default]
    Cd,
    /// Persistent CD, PCD-k (Tieleman 2008): chains that continue from one step to the next.
    Pcd {
        /// The persistent chains (`≥ 1`); `None` for one per batch row. The negative phase
        /// averages over the chains, the positive phase over the batch.
        chains: Option<usize>,
    },
    /// Fast-weights PCD (Tieleman & Hinton 2009): persistent chains that sample from the model
    /// plus fast weights.
    FastPcd {
        /// The persistent chains; `None` for one per batch row.
        chains: Option<usize>,
        /// The fast weights' rate and decay.
        fast: FastWeights,
    },
    /// Parallel tempering: persistent chains at several inverse temperatures exchanging
    /// states; the `β = 1` chains are the negative samples.
    Tempering {
        /// Chains per temperature; `None` for one per batch row.
        chains: Option<usize>,
        /// The temperatures.
        ladder: Tempering,
    },
}

/// Parallel tempering's temperatures (see [`super::tempering`]).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tempering {
    /// Inverse temperatures (`≥ 2`), spaced evenly from 1 down to `beta_min`.
    pub temperatures: usize,
    /// The hottest chains' inverse temperature, in `[0, 1)`.
    pub beta_min: f32,
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

/// Hyper-parameters of CD-k / PCD-k training.
///
/// The fields after `seed` are the refinements of the literature (Hinton's practical guide,
/// Melchior et al. 2016); each is off by default. In files (checkpoints, model metadata) the
/// method is written as the flags `pcd`, `chains`, `fast_weights` and `tempering`, as before it
/// was an enum, so older files read unchanged.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Record", into = "Record")]
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
    /// How the negative phase samples.
    pub method: Method,
    /// The seed of every random draw of training.
    pub seed: u64,
    /// The learning rate decays linearly from `lr` to `lr_end` over `anneal_steps` steps,
    /// then stays there; `None` for a constant rate.
    pub lr_end: Option<f32>,
    /// Steps of the learning-rate decay (`≥ 1` with `lr_end`).
    pub anneal_steps: u64,
    /// The momentum of the first `momentum_steps` steps (Hinton's guide: 0.5, then 0.9);
    /// `None` for `momentum` from the start.
    pub momentum_start: Option<f32>,
    /// Steps that use `momentum_start`.
    pub momentum_steps: u64,
    /// Centering (Melchior et al. 2016): the gradient of the model reparametrised with the
    /// visible and hidden offsets `μ`, `λ` subtracted from the states, whose values follow
    /// the data means by an exponential moving average with this rate in `(0, 1]`. The
    /// model itself stays in the ordinary form. `None`: no centering.
    pub centering: Option<f32>,
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
            method: Method::Cd,
            seed: 0,
            lr_end: None,
            anneal_steps: 0,
            momentum_start: None,
            momentum_steps: 0,
            centering: None,
        }
    }
}

impl TrainConfig {
    /// Whether the negative chains persist from one step to the next (every method but CD).
    pub fn pcd(&self) -> bool {
        self.method != Method::Cd
    }

    /// The persistent chains asked for (per temperature with tempering); `None` for one per
    /// batch row, and for CD.
    pub fn chains(&self) -> Option<usize> {
        match self.method {
            Method::Cd => None,
            Method::Pcd { chains }
            | Method::FastPcd { chains, .. }
            | Method::Tempering { chains, .. } => chains,
        }
    }

    /// FPCD's fast weights, if the method has them.
    pub fn fast_weights(&self) -> Option<FastWeights> {
        match self.method {
            Method::FastPcd { fast, .. } => Some(fast),
            _ => None,
        }
    }

    /// Parallel tempering's temperatures, if the method has them.
    pub fn tempering(&self) -> Option<Tempering> {
        match self.method {
            Method::Tempering { ladder, .. } => Some(ladder),
            _ => None,
        }
    }

    /// The number of negative-phase chains: the persistent chains asked for, else the batch
    /// size.
    pub fn negative_rows(&self) -> usize {
        self.chains().unwrap_or(self.batch_size)
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
            .saturating_mul(self.tempering().map_or(1, |t| t.temperatures))
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
        if self.chains() == Some(0) {
            return bad("chains", "at least 1", "0".into());
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
        if let Some(f) = self.fast_weights()
            && !(f.lr.is_finite() && f.lr > 0.0 && (0.0..1.0).contains(&f.decay))
        {
            let expected = "a positive finite rate and a decay in [0, 1)";
            return bad("fast_weights", expected, format!("{f:?}"));
        }
        if self.batch_size == 0 {
            return bad("batch_size", "at least 1", "0".into());
        }
        if let Some(t) = self.tempering()
            && !((2..=MAX_TEMPERATURES).contains(&t.temperatures)
                && (0.0..1.0).contains(&t.beta_min))
        {
            let expected = format!("2 to {MAX_TEMPERATURES} temperatures, beta_min in [0, 1)");
            return bad("tempering", &expected, format!("{t:?}"));
        }
        Ok(())
    }
}

/// A [`TrainConfig`] as files hold it: the method as flags, the fields in their old order
/// (so that the JSON of a configuration is what it was before [`Method`]).
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    k: usize,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    batch_size: usize,
    pcd: bool,
    seed: u64,
    #[serde(default)]
    chains: Option<usize>,
    #[serde(default)]
    lr_end: Option<f32>,
    #[serde(default)]
    anneal_steps: u64,
    #[serde(default)]
    momentum_start: Option<f32>,
    #[serde(default)]
    momentum_steps: u64,
    #[serde(default)]
    centering: Option<f32>,
    #[serde(default)]
    fast_weights: Option<FastWeights>,
    #[serde(default)]
    tempering: Option<Tempering>,
}

impl TryFrom<Record> for TrainConfig {
    type Error = String;

    /// The method from the flags; chains without PCD, fast weights or tempering without PCD,
    /// or both, are refused.
    fn try_from(r: Record) -> std::result::Result<Self, String> {
        let method = match (r.pcd, r.fast_weights, r.tempering) {
            (false, None, None) if r.chains.is_none() => Method::Cd,
            (false, ..) => {
                return Err("chains, fast weights and tempering need pcd: true".into());
            }
            (true, None, None) => Method::Pcd { chains: r.chains },
            (true, Some(fast), None) => Method::FastPcd {
                chains: r.chains,
                fast,
            },
            (true, None, Some(ladder)) => Method::Tempering {
                chains: r.chains,
                ladder,
            },
            (true, Some(_), Some(_)) => {
                return Err("fast weights and tempering cannot be combined".into());
            }
        };
        Ok(TrainConfig {
            k: r.k,
            lr: r.lr,
            momentum: r.momentum,
            weight_decay: r.weight_decay,
            batch_size: r.batch_size,
            method,
            seed: r.seed,
            lr_end: r.lr_end,
            anneal_steps: r.anneal_steps,
            momentum_start: r.momentum_start,
            momentum_steps: r.momentum_steps,
            centering: r.centering,
        })
    }
}

impl From<TrainConfig> for Record {
    fn from(c: TrainConfig) -> Record {
        Record {
            k: c.k,
            lr: c.lr,
            momentum: c.momentum,
            weight_decay: c.weight_decay,
            batch_size: c.batch_size,
            pcd: c.pcd(),
            seed: c.seed,
            chains: c.chains(),
            lr_end: c.lr_end,
            anneal_steps: c.anneal_steps,
            momentum_start: c.momentum_start,
            momentum_steps: c.momentum_steps,
            centering: c.centering,
            fast_weights: c.fast_weights(),
            tempering: c.tempering(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_keep_the_flags_and_refuse_illegal_combinations() {
        let config = TrainConfig {
            method: Method::Tempering {
                chains: Some(7),
                ladder: Tempering {
                    temperatures: 3,
                    beta_min: 0.5,
                },
            },
            ..TrainConfig::default()
        };
        let json = serde_json::to_string(&config).unwrap();
        assert!(
            json.contains(r#""pcd":true"#) && json.contains(r#""chains":7"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), config);
        let cd = serde_json::to_string(&TrainConfig::default()).unwrap();
        for bad in [
            cd.replace(r#""chains":null"#, r#""chains":3"#),
            cd.replace(
                r#""fast_weights":null"#,
                r#""fast_weights":{"lr":0.1,"decay":0.5}"#,
            ),
            json.replace(
                r#""fast_weights":null"#,
                r#""fast_weights":{"lr":0.1,"decay":0.5}"#,
            ),
        ] {
            assert_ne!(bad, cd);
            assert!(serde_json::from_str::<TrainConfig>(&bad).is_err(), "{bad}");
        }
    }
}
