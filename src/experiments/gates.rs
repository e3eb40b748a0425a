//! Logic gates learned by an RBM: the reference notebook's first experiment.
//!
//! Visible units are `[x, y, f(x, y)]`; every batch is fresh random rows (x and y uniform).
//! After training, two measures:
//! - the notebook's **success rate** `1 − mean |v̂₃ − f(v̂₁, v̂₂)|` over the negative-phase
//!   samples `v̂ = V_k` after `k` Gibbs steps (is the chain's state a valid row?);
//! - the **clamped accuracy**: clamp `x` and `y`, run `k` steps, and count how often the
//!   sampled third unit equals `f(x, y)` — how an RBM is used as a gate.

use std::fmt;
use std::str::FromStr;

use rbm_kernels::StreamKey;

use crate::error::{Error, Result};
use crate::gibbs::Gibbs;
use crate::model::Rbm;
use crate::rng::tags;
use crate::train::{TrainConfig, Trainer};

/// A truth function of two bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateFn {
    /// `x ∧ y`.
    And,
    /// `x ∨ y`.
    Or,
    /// `x ⊕ y`.
    Xor,
    /// `¬(x ∧ y)`.
    Nand,
    /// `¬(x ∨ y)`.
    Nor,
    /// `¬(x ⊕ y)`.
    Xnor,
    /// `¬x` (the second input is ignored).
    Not,
}

impl GateFn {
    /// Every function, in the order of the CLI's help.
    pub const ALL: [GateFn; 7] = [
        GateFn::And,
        GateFn::Or,
        GateFn::Xor,
        GateFn::Nand,
        GateFn::Nor,
        GateFn::Xnor,
        GateFn::Not,
    ];

    /// The function's value.
    pub fn eval(self, x: bool, y: bool) -> bool {
        match self {
            GateFn::And => x && y,
            GateFn::Or => x || y,
            GateFn::Xor => x != y,
            GateFn::Nand => !(x && y),
            GateFn::Nor => !(x || y),
            GateFn::Xnor => x == y,
            GateFn::Not => !x,
        }
    }

    /// The lower-case name (`and`, `or`, …).
    pub fn name(self) -> &'static str {
        match self {
            GateFn::And => "and",
            GateFn::Or => "or",
            GateFn::Xor => "xor",
            GateFn::Nand => "nand",
            GateFn::Nor => "nor",
            GateFn::Xnor => "xnor",
            GateFn::Not => "not",
        }
    }
}

impl fmt::Display for GateFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for GateFn {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        GateFn::ALL
            .into_iter()
            .find(|g| g.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::config(
                    "gate function",
                    "one of and, or, xor, nand, nor, xnor, not",
                    format!("{s:?}"),
                )
            })
    }
}

/// Fills `out` (`B × 3`) with random truth-table rows `[x, y, f(x, y)]`, `x` and `y` from
/// draws `2r` and `2r + 1` of `key` for row `r`.
pub fn fill_rows(f: GateFn, key: StreamKey, out: &mut [f32]) {
    for (r, row) in out.chunks_exact_mut(3).enumerate() {
        let x = key.draw(2 * r as u64) >> 31 == 1;
        let y = key.draw(2 * r as u64 + 1) >> 31 == 1;
        row[0] = x as u8 as f32;
        row[1] = y as u8 as f32;
        row[2] = f.eval(x, y) as u8 as f32;
    }
}

/// The notebook's success rate `1 − mean_r |v[r, 2] − f(v[r, 0], v[r, 1])|` over rows
/// `v` (`B × 3`, 0/1 values; a value is read as 1 when ≥ 0.5).
pub fn success_rate(f: GateFn, v: &[f32]) -> f64 {
    let rows = v.len() / 3;
    let wrong: f64 = v
        .chunks_exact(3)
        .map(|r| ((r[2] >= 0.5) != f.eval(r[0] >= 0.5, r[1] >= 0.5)) as u8 as f64)
        .sum();
    1.0 - wrong / rows.max(1) as f64
}

/// Clamped accuracy: for each of the four inputs `(x, y)`, `chains` chains start at
/// `[x, y, 0]` with `x` and `y` clamped and run `k` Gibbs steps; returns the fraction whose
/// third unit then equals `f(x, y)`.
///
/// # Errors
/// [`Error::Shape`] if `model` does not have 3 visible units; [`Error::Config`] if `chains`
/// is 0.
pub fn clamped_accuracy(model: &Rbm, f: GateFn, k: usize, chains: usize, seed: u64) -> Result<f64> {
    if model.n_visible() != 3 {
        return Err(Error::shape(
            "gate model",
            "3 visible units",
            model.n_visible(),
        ));
    }
    if chains == 0 {
        return Err(Error::config("chains", "at least 1", 0));
    }
    let inputs = [(false, false), (false, true), (true, false), (true, true)];
    let start: Vec<f32> = inputs
        .iter()
        .flat_map(|&(x, y)| (0..chains).flat_map(move |_| [x as u8 as f32, y as u8 as f32, 0.0]))
        .collect();
    let key = StreamKey::new(seed).derive(tags::SAMPLE);
    let mut g = Gibbs::new(model, &start, key)?.with_clamp(&[true, true, false])?;
    g.run(model, k)?;
    Ok(success_rate(f, g.visible()))
}

/// Settings of a gate experiment. The defaults are the notebook's "out of equilibrium" run
/// (AND, CD-4, 15 epochs of 1000 batches of 100, lr 0.1, 3 hidden units).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GateConfig {
    /// The truth function.
    pub function: GateFn,
    /// Gibbs steps of CD-k.
    pub k: usize,
    /// Epochs.
    pub epochs: usize,
    /// Batches per epoch.
    pub batches: usize,
    /// Rows per batch.
    pub batch: usize,
    /// SGD learning rate.
    pub lr: f32,
    /// Hidden units.
    pub hidden: usize,
    /// Seed of the initialization, the rows and the sampling.
    pub seed: u64,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            function: GateFn::And,
            k: 4,
            epochs: 15,
            batches: 1000,
            batch: 100,
            lr: 0.1,
            hidden: 3,
            seed: 0,
        }
    }
}

/// One epoch's means over its batches.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct GateEpoch {
    /// 0-based epoch.
    pub epoch: usize,
    /// Mean of the notebook's loss `F(v₀) − F(v_k)`.
    pub loss: f64,
    /// Mean success rate of the negative-phase samples.
    pub success: f64,
}

/// Trains a gate RBM by CD-k with plain SGD, calling `on_epoch` after each epoch.
///
/// # Errors
/// [`Error::Config`] for invalid settings, [`Error::Diverged`] if training diverges.
pub fn train_gate(
    cfg: &GateConfig,
    mut on_epoch: impl FnMut(&GateEpoch),
) -> Result<(Rbm, Vec<GateEpoch>)> {
    if cfg.epochs == 0 || cfg.batches == 0 {
        let field = if cfg.epochs == 0 { "epochs" } else { "batches" };
        return Err(Error::config(field, "at least 1", 0));
    }
    let mut model = Rbm::new(3, cfg.hidden, cfg.seed)?;
    let tc = TrainConfig {
        k: cfg.k,
        lr: cfg.lr,
        batch_size: cfg.batch,
        seed: cfg.seed,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&model, tc)?;
    let mut batch = vec![0.0f32; cfg.batch * 3];
    let rows_key = StreamKey::new(cfg.seed).derive(tags::GATE_ROWS);
    let mut history = Vec::with_capacity(cfg.epochs);
    for epoch in 0..cfg.epochs {
        trainer.start_epoch(epoch);
        let (mut loss, mut success) = (0.0, 0.0);
        for _ in 0..cfg.batches {
            fill_rows(cfg.function, rows_key.derive(trainer.steps()), &mut batch);
            loss += trainer.step(&mut model, &batch)?.loss;
            success += success_rate(cfg.function, trainer.negative_visible());
        }
        let n = cfg.batches as f64;
        let e = GateEpoch {
            epoch,
            loss: loss / n,
            success: success / n,
        };
        on_epoch(&e);
        history.push(e);
    }
    Ok((model, history))
}
