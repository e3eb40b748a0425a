//! Checkpoints: everything a training run needs to continue exactly where it stopped, in one
//! [safetensors] file written atomically.
//!
//! # Format
//!
//! A checkpoint is a safetensors file whose tensors are all `F32` (little-endian, C order):
//!
//! | tensor            | shape    | present                                      |
//! |-------------------|----------|----------------------------------------------|
//! | `W`               | `[H, V]` | always: the model, as in a model file        |
//! | `v_bias`          | `[V]`    | always                                       |
//! | `h_bias`          | `[H]`    | always                                       |
//! | `momentum.W`      | `[H, V]` | with momentum or weight decay: SGD's buffers |
//! | `momentum.v_bias` | `[V]`    | with `momentum.W`                            |
//! | `momentum.h_bias` | `[H]`    | with `momentum.W`                            |
//! | `chains`          | `[C, V]` | PCD after its first step: the chains' states (`C·T` rows, temperature-major, with parallel tempering) |
//! | `offsets.visible` | `[V]`    | centering after its first step: `μ`          |
//! | `offsets.hidden`  | `[H]`    | with `offsets.visible`: `λ`                  |
//! | `fast.W`          | `[H, V]` | FPCD: the fast weights                       |
//! | `fast.v_bias`     | `[V]`    | with `fast.W`                                |
//! | `fast.h_bias`     | `[H]`    | with `fast.W`                                |
//!
//! and whose `__metadata__` holds `"format": "rbm-checkpoint"`, `"rbm_version"`, `"state"`
//! (a JSON object: format `version` 1, the [`TrainConfig`], the [`Schedule`], the step count
//! `steps` — the position of every random stream — and the [`RunPosition`]: `epoch`,
//! `batch`, `loss_sum`, `recon_sum`, `history`) and, optionally, `"run"`: a JSON document of
//! the caller's (the CLI keeps its run plan there). Since `W`, `v_bias` and `h_bias` are
//! those of a model file, `safetensors.torch.load_file` gives a state dict that holds the
//! model's.
//!
//! # Reading
//!
//! [`parse_checkpoint`] works on bytes alone (fuzzed in `fuzz/`), never panics, and accepts
//! only a consistent checkpoint: the tensors listed above and no other, shapes that agree,
//! finite values, buffers present exactly when the configuration has them, a valid
//! configuration, and a position within the schedule whose step count matches. A checkpoint
//! that loads can be continued from.
//!
//! # Writing
//!
//! [`save_checkpoint`] writes through [`crate::io::atomic::write_atomic`] (temporary file,
//! `fsync`, rename, `fsync` of the folder): a process killed at any moment of the write leaves
//! the previous checkpoint whole.
//!
//! # Example
//!
//! ```
//! use rbm::checkpoint::{Checkpoint, load_checkpoint, save_checkpoint};
//! use rbm::train::{RunPosition, Schedule, TrainConfig, Trainer};
//! use rbm::data::{Binarize, Order};
//! use rbm::Rbm;
//!
//! # fn main() -> rbm::Result<()> {
//! let dir = std::env::temp_dir().join(format!("rbm-doc-checkpoint-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).map_err(|e| rbm::Error::io(&dir, e))?;
//! let path = dir.join("checkpoint.safetensors");
//!
//! let model = Rbm::new(4, 3, 7)?;
//! let config = TrainConfig { batch_size: 2, momentum: 0.5, ..TrainConfig::default() };
//! let mut trainer = Trainer::new(&model, config.clone())?;
//! let mut trained = model.clone();
//! trainer.step(&mut trained, &[1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0])?;
//!
//! let checkpoint = Checkpoint {
//!     model: trained,
//!     config,
//!     schedule: Schedule {
//!         epochs: 1,
//!         batches_per_epoch: None,
//!         order: Order::Shuffled,
//!         binarize: Binarize::Stochastic,
//!         drop_last: true,
//!     },
//!     state: trainer.state(),
//!     position: RunPosition { batch: 1, ..RunPosition::default() },
//!     run: None,
//! };
//! save_checkpoint(&path, &checkpoint)?;
//! let loaded = load_checkpoint(&path)?;
//! assert_eq!(loaded, checkpoint);
//! let resumed = loaded.trainer()?; // continues at step 1 with the same momentum
//! assert_eq!(resumed.steps(), 1);
//! # std::fs::remove_dir_all(&dir).map_err(|e| rbm::Error::io(&dir, e))?;
//! # Ok(())
//! # }
//! ```
//!
//! [safetensors]: https://huggingface.co/docs/safetensors

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::Dtype;
use safetensors::tensor::TensorInfo;

use crate::data::rows::first_outside_unit_interval;
use crate::error::{Error, ModelFileError, Result};
use crate::io::atomic::write_atomic_with;
use crate::io::model_file::{
    Encoded, FORMAT_KEY, LeF32, VERSION_KEY, check_finite, check_json, encode_sorted, read_f32,
    read_file, read_header,
};
use crate::model::{MAX_PARAMETER, Rbm, all_in_safe_range};
use crate::train::{
    EpochStats, NegativeState, Offsets, ParamSet, RunPosition, Schedule, TrainConfig, Trainer,
    TrainerState,
};

/// The value of the `"format"` metadata key of a checkpoint.
pub const CHECKPOINT_FORMAT: &str = "rbm-checkpoint";
/// The metadata key of the training state (a JSON object).
pub const STATE_KEY: &str = "state";
/// The metadata key of the caller's JSON document.
pub const RUN_KEY: &str = "run";
/// The version of the `"state"` object this crate writes and reads.
pub const STATE_VERSION: u32 = 1;

/// Every tensor a checkpoint may hold, in the order they are checked.
const TENSOR_NAMES: [&str; 12] = [
    "W",
    "v_bias",
    "h_bias",
    "momentum.W",
    "momentum.v_bias",
    "momentum.h_bias",
    "chains",
    "offsets.visible",
    "offsets.hidden",
    "fast.W",
    "fast.v_bias",
    "fast.h_bias",
];

/// A training run frozen between two steps: the model, the trainer's state and the run's
/// position, with the configuration and schedule they belong to.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The model after the last step.
    pub model: Rbm,
    /// The training configuration.
    pub config: TrainConfig,
    /// The run's schedule.
    pub schedule: Schedule,
    /// The trainer's state: step count, momentum buffers, persistent chains.
    pub state: TrainerState,
    /// The next batch and the statistics so far.
    pub position: RunPosition,
    /// A JSON document of the caller's, kept as it is (`None`: none).
    pub run: Option<String>,
}

impl Checkpoint {
    /// The checkpoint of a run standing at `position` with `model` and `trainer`, on
    /// `schedule`, without a document of the caller's (`run: None`); copies the state.
    pub fn of(model: &Rbm, trainer: &Trainer, schedule: &Schedule, position: &RunPosition) -> Self {
        Checkpoint {
            model: model.clone(),
            config: trainer.config().clone(),
            schedule: *schedule,
            state: trainer.state(),
            position: position.clone(),
            run: None,
        }
    }

    /// A trainer that continues from this checkpoint (see [`Trainer::resume`]).
    ///
    /// # Errors
    /// Those of [`Trainer::resume`]; none for a checkpoint that [`parse_checkpoint`] returned.
    pub fn trainer(&self) -> Result<Trainer> {
        Trainer::resume(&self.model, self.config.clone(), self.state.clone())
    }
}

/// The `"state"` metadata object.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StateJson {
    version: u32,
    config: TrainConfig,
    schedule: Schedule,
    steps: u64,
    epoch: usize,
    batch: usize,
    loss_sum: f64,
    recon_sum: f64,
    history: Vec<EpochStats>,
}

/// Writes `checkpoint` to `path` atomically (see the [module docs](self)).
///
/// # Errors
/// [`Error::ModelFile`] with the error of [`serialize_checkpoint`] (nothing is written);
/// [`Error::Io`] naming the temporary file or `path` if writing or renaming fails.
pub fn save_checkpoint(path: &Path, checkpoint: &Checkpoint) -> Result<()> {
    let encoded = encode_checkpoint(checkpoint).map_err(|kind| Error::ModelFile {
        path: path.to_path_buf(),
        kind,
    })?;
    write_atomic_with(path, |w| encoded.write_to(w))
}

/// The bytes [`save_checkpoint`] writes. Refuses what [`parse_checkpoint`] would refuse, so
/// that every checkpoint written can be read back.
///
/// # Errors
/// [`ModelFileError::NonFinite`] if a tensor holds NaN or an infinity;
/// [`ModelFileError::Metadata`] if `run` is not valid JSON or a statistic is not finite;
/// [`ModelFileError::Inconsistent`] if the parts disagree (as [`parse_checkpoint`] checks).
pub fn serialize_checkpoint(c: &Checkpoint) -> Result<Vec<u8>, ModelFileError> {
    encode_checkpoint(c)?.to_bytes()
}

/// The checkpoint file of `c`, ready to write (see [`serialize_checkpoint`]).
fn encode_checkpoint(c: &Checkpoint) -> Result<Encoded<'_>, ModelFileError> {
    let (v, h) = (c.model.n_visible(), c.model.n_hidden());
    let mut tensors: Vec<(&'static str, Vec<usize>, &[f32])> = vec![
        ("W", vec![h, v], c.model.weights()),
        ("v_bias", vec![v], c.model.v_bias()),
        ("h_bias", vec![h], c.model.h_bias()),
    ];
    if let Some(m) = &c.state.momentum {
        tensors.push(("momentum.W", vec![h, v], &m.w));
        tensors.push(("momentum.v_bias", vec![v], &m.v_bias));
        tensors.push(("momentum.h_bias", vec![h], &m.h_bias));
    }
    if let Some(chains) = c.state.negative.chains() {
        tensors.push(("chains", vec![chains.len() / v, v], chains));
    }
    if let Some(o) = &c.state.offsets {
        tensors.push(("offsets.visible", vec![v], &o.visible));
        tensors.push(("offsets.hidden", vec![h], &o.hidden));
    }
    if let Some(f) = c.state.negative.fast() {
        tensors.push(("fast.W", vec![h, v], &f.w));
        tensors.push(("fast.v_bias", vec![v], &f.v_bias));
        tensors.push(("fast.h_bias", vec![h], &f.h_bias));
    }
    for (name, shape, values) in &tensors {
        if shape.iter().product::<usize>() != values.len() {
            return Err(ModelFileError::Inconsistent(format!(
                "{name} has {} values, not a whole {shape:?}",
                values.len()
            )));
        }
        check_finite(name, values.iter().copied())?;
    }
    check_state(c)?;
    let state = StateJson {
        version: STATE_VERSION,
        config: c.config.clone(),
        schedule: c.schedule,
        steps: c.state.steps,
        epoch: c.position.epoch,
        batch: c.position.batch,
        loss_sum: c.position.loss_sum,
        recon_sum: c.position.recon_sum,
        history: c.position.history.clone(),
    };
    let state = serde_json::to_string(&state)
        .map_err(|e| ModelFileError::Metadata(format!("cannot write the state: {e}")))?;
    let mut metadata = HashMap::from([
        (FORMAT_KEY.to_owned(), CHECKPOINT_FORMAT.to_owned()),
        (VERSION_KEY.to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
        (STATE_KEY.to_owned(), state),
    ]);
    if let Some(run) = &c.run {
        check_json(RUN_KEY, run)?;
        metadata.insert(RUN_KEY.to_owned(), run.clone());
    }
    let views = tensors
        .into_iter()
        .map(|(name, shape, values)| (name, LeF32 { shape, values }));
    encode_sorted(views, metadata)
}

/// Reads the checkpoint at `path`.
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened or read; [`Error::ModelFile`] with
/// [`ModelFileError::IsDirectory`] for a folder, or with the error of [`parse_checkpoint`].
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    let bytes = read_file(path)?;
    parse_checkpoint(&bytes).map_err(|kind| Error::ModelFile {
        path: path.to_path_buf(),
        kind,
    })
}

/// Parses the bytes of a checkpoint (see the [module docs](self)). Never panics.
///
/// # Errors
/// In the order checked: [`ModelFileError::Format`] if the bytes are not safetensors;
/// [`MissingTensor`](ModelFileError::MissingTensor) for the first of `W`, `v_bias`, `h_bias`
/// absent; [`UnexpectedTensor`](ModelFileError::UnexpectedTensor) for a name not in the
/// table; [`WrongDtype`](ModelFileError::WrongDtype) for a tensor not `F32`;
/// [`WrongShape`](ModelFileError::WrongShape) for a shape that disagrees with `W`'s `[H, V]`;
/// [`NonFinite`](ModelFileError::NonFinite) for NaN or an infinity;
/// [`Metadata`](ModelFileError::Metadata) for a missing or wrong `"format"`, or a `"state"`
/// or `"run"` that is not the JSON described; [`Inconsistent`](ModelFileError::Inconsistent)
/// if the momentum buffers are incomplete or disagree with the configuration, the chains
/// with PCD or the batch size, or the position with the schedule or the step count.
pub fn parse_checkpoint(bytes: &[u8]) -> Result<Checkpoint, ModelFileError> {
    let (header, data) = read_header(bytes)?;
    let tensors = header.tensors();
    for name in ["W", "v_bias", "h_bias"] {
        if !tensors.contains_key(name) {
            return Err(ModelFileError::MissingTensor(name));
        }
    }
    if let Some(extra) = tensors
        .keys()
        .filter(|name| !TENSOR_NAMES.contains(&name.as_str()))
        .min()
    {
        return Err(ModelFileError::UnexpectedTensor(extra.clone()));
    }
    let infos: Vec<(&'static str, &TensorInfo)> = TENSOR_NAMES
        .iter()
        .filter_map(|&name| tensors.get(name).map(|&info| (name, info)))
        .collect();
    for &(name, info) in &infos {
        if info.dtype != Dtype::F32 {
            return Err(ModelFileError::WrongDtype {
                name,
                dtype: info.dtype.to_string(),
            });
        }
    }
    let (h, v) = match *tensors["W"].shape.as_slice() {
        [h, v] if h >= 1 && v >= 1 => (h, v),
        _ => {
            return Err(ModelFileError::WrongShape {
                name: "W",
                found: tensors["W"].shape.clone(),
                expected: "[H, V] with H ≥ 1 and V ≥ 1".into(),
            });
        }
    };
    for &(name, info) in &infos {
        check_shape(name, &info.shape, h, v)?;
    }
    let mut values: BTreeMap<&'static str, Vec<f32>> = BTreeMap::new();
    for &(name, info) in &infos {
        values.insert(name, read_f32(name, info, data)?);
    }

    let metadata = header.metadata().clone().unwrap_or_default();
    match metadata.get(FORMAT_KEY) {
        Some(f) if f == CHECKPOINT_FORMAT => {}
        other => {
            return Err(ModelFileError::Metadata(format!(
                "format is {other:?}, expected {CHECKPOINT_FORMAT:?}"
            )));
        }
    }
    let state_text = metadata
        .get(STATE_KEY)
        .ok_or_else(|| ModelFileError::Metadata(format!("no {STATE_KEY:?} entry")))?;
    let state: StateJson = serde_json::from_str(state_text)
        .map_err(|e| ModelFileError::Metadata(format!("bad {STATE_KEY:?}: {e}")))?;
    if state.version != STATE_VERSION {
        return Err(ModelFileError::Metadata(format!(
            "state version {} (this build reads {STATE_VERSION})",
            state.version
        )));
    }
    let run = metadata.get(RUN_KEY).cloned();
    if let Some(run) = &run {
        check_json(RUN_KEY, run)?;
    }

    let mut take = |name| values.remove(name);
    let model = Rbm::from_parts(
        v,
        h,
        take("W").unwrap_or_default(),
        take("v_bias").unwrap_or_default(),
        take("h_bias").unwrap_or_default(),
    )
    .map_err(|e| ModelFileError::Format(e.to_string()))?;
    let mut param_set = |[w, vb, hb]: [&'static str; 3]| -> Result<_, ModelFileError> {
        match (values.remove(w), values.remove(vb), values.remove(hb)) {
            (Some(w), Some(v_bias), Some(h_bias)) => Ok(Some(ParamSet { w, v_bias, h_bias })),
            (None, None, None) => Ok(None),
            _ => Err(ModelFileError::Inconsistent(format!(
                "{w}, {vb} and {hb} come together"
            ))),
        }
    };
    let momentum = param_set(["momentum.W", "momentum.v_bias", "momentum.h_bias"])?;
    let fast = param_set(["fast.W", "fast.v_bias", "fast.h_bias"])?;
    let mut take = |name| values.remove(name);
    let offsets = match (take("offsets.visible"), take("offsets.hidden")) {
        (Some(visible), Some(hidden)) => Some(Offsets { visible, hidden }),
        (None, None) => None,
        _ => {
            return Err(ModelFileError::Inconsistent(
                "offsets.visible and offsets.hidden come together".into(),
            ));
        }
    };
    let negative = NegativeState::from_parts(&state.config.method, take("chains"), fast)
        .map_err(ModelFileError::Inconsistent)?;
    let checkpoint = Checkpoint {
        model,
        config: state.config,
        schedule: state.schedule,
        state: TrainerState {
            steps: state.steps,
            momentum,
            negative,
            offsets,
        },
        position: RunPosition {
            epoch: state.epoch,
            batch: state.batch,
            loss_sum: state.loss_sum,
            recon_sum: state.recon_sum,
            history: state.history,
        },
        run,
    };
    check_state(&checkpoint)?;
    Ok(checkpoint)
}

/// [`ModelFileError::WrongShape`] unless tensor `name` has the shape its name asks for, given
/// `W`'s `[H, V]` (`chains`: any number of rows, checked against the batch size later).
fn check_shape(
    name: &'static str,
    shape: &[usize],
    h: usize,
    v: usize,
) -> Result<(), ModelFileError> {
    let (ok, expected) = match name {
        "W" | "momentum.W" | "fast.W" => (shape == [h, v], format!("[{h}, {v}] as W")),
        "v_bias" | "momentum.v_bias" | "offsets.visible" | "fast.v_bias" => {
            (shape == [v], format!("[{v}] to match W"))
        }
        "h_bias" | "momentum.h_bias" | "offsets.hidden" | "fast.h_bias" => {
            (shape == [h], format!("[{h}] to match W"))
        }
        _ => (
            matches!(*shape, [_, cols] if cols == v),
            format!("[chains, {v}] to match W"),
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(ModelFileError::WrongShape {
            name,
            found: shape.to_vec(),
            expected,
        })
    }
}

/// The checks shared by writing and reading: the parts of `c` agree.
fn check_state(c: &Checkpoint) -> Result<(), ModelFileError> {
    let bad = |what: String| Err(ModelFileError::Inconsistent(what));
    let cfg = &c.config;
    if let Err(e) = cfg.validate() {
        return bad(e.to_string());
    }
    let needs_momentum = cfg.has_momentum();
    if needs_momentum != c.state.momentum.is_some() {
        return bad(format!(
            "momentum buffers {} but the configuration has momentum {} and weight decay {}",
            if c.state.momentum.is_some() {
                "present"
            } else {
                "absent"
            },
            cfg.momentum,
            cfg.weight_decay
        ));
    }
    if !c.state.negative.is_of(&cfg.method) {
        return bad(format!(
            "the negative phase's state is {}, but the method is {:?}",
            c.state.negative.name(),
            cfg.method
        ));
    }
    if let Some(chains) = c.state.negative.chains() {
        let rows = chains.len() / c.model.n_visible().max(1);
        if !cfg.pcd() || rows != cfg.persistent_rows() {
            return bad(format!(
                "{rows} persistent chains with PCD {} and {} chains to keep",
                cfg.pcd(),
                cfg.persistent_rows()
            ));
        }
    }
    if c.state.offsets.is_some() && cfg.centering.is_none() {
        return bad("centering offsets without centering".into());
    }
    let s = &c.schedule;
    let p = &c.position;
    if s.epochs == 0 || s.batches_per_epoch == Some(0) {
        return bad("the schedule has no epochs or no batches".into());
    }
    let within = match s.batches_per_epoch {
        Some(n) => p.batch <= n,
        None => true,
    };
    if p.epoch >= s.epochs || !within {
        return bad(format!(
            "position (epoch {}, batch {}) is not within the schedule ({} epochs of {:?} batches)",
            p.epoch, p.batch, s.epochs, s.batches_per_epoch
        ));
    }
    if !(p.loss_sum.is_finite() && p.recon_sum.is_finite()) {
        return Err(ModelFileError::Metadata(
            "the epoch's loss or reconstruction sum is not finite".into(),
        ));
    }
    if p.history.len() != p.epoch
        || p.history.iter().enumerate().any(|(i, e)| {
            e.epoch != i || !(e.loss.is_finite() && e.recon_error.is_finite() && e.seconds >= 0.0)
        })
    {
        return bad(format!(
            "the history does not list epochs 0..{} with finite statistics",
            p.epoch
        ));
    }
    let batches_done = p
        .history
        .iter()
        .try_fold(p.batch as u64, |n, e| n.checked_add(e.batches as u64));
    if batches_done != Some(c.state.steps) {
        return bad(format!(
            "{} steps taken but the position accounts for {batches_done:?} batches",
            c.state.steps
        ));
    }
    if let Some(n) = s.batches_per_epoch
        && p.history.iter().any(|e| e.batches != n)
    {
        return bad(format!(
            "an epoch of the history has other than the schedule's {n} batches"
        ));
    }
    check_values(c)
}

/// The values a resumed run would continue from: the model's parameters, the momentum
/// buffers and the fast weights within the safe range `±`[`MAX_PARAMETER`] (training would
/// stop at once beyond it), persistent chains of 0/1-range states, and chains present once a
/// persistent run has taken a step (its trainer keeps them from the first step on).
fn check_values(c: &Checkpoint) -> Result<(), ModelFileError> {
    let bad = |what: String| Err(ModelFileError::Inconsistent(what));
    let m = &c.model;
    let model = [
        ("W", m.weights()),
        ("v_bias", m.v_bias()),
        ("h_bias", m.h_bias()),
    ];
    let sets = [
        ("momentum", c.state.momentum.as_ref()),
        ("fast", c.state.negative.fast()),
    ];
    let buffers = sets
        .into_iter()
        .filter_map(|(what, set)| set.map(|p| (what, p)));
    let state = buffers.flat_map(|(what, p)| {
        [
            (what, "W", &p.w[..]),
            (what, "v_bias", &p.v_bias[..]),
            (what, "h_bias", &p.h_bias[..]),
        ]
    });
    let all = model
        .into_iter()
        .map(|(name, buf)| ("model", name, buf))
        .chain(state);
    for (what, name, buf) in all {
        if !all_in_safe_range(buf) {
            return bad(format!(
                "{what}.{name} holds values beyond ±{MAX_PARAMETER:e}"
            ));
        }
    }
    let nv = m.n_visible();
    if let Some(chains) = c.state.negative.chains()
        && let Some(k) = first_outside_unit_interval(chains)
    {
        return bad(format!(
            "chains: chain {}, unit {} is {}, outside [0, 1]",
            k / nv,
            k % nv,
            chains[k]
        ));
    }
    if c.config.pcd() && c.state.steps > 0 && c.state.negative.chains().is_none() {
        return bad(format!(
            "chains: none after {} steps of a persistent run",
            c.state.steps
        ));
    }
    Ok(())
}
