//! Checkpoints: a run stopped anywhere and continued from its checkpoint ends bit-identical to
//! one never stopped; every way a checkpoint can be wrong is a specific error; divergence is
//! caught in the step that causes it.

mod common;

use std::collections::HashMap;

use rbm::checkpoint::{Checkpoint, parse_checkpoint, serialize_checkpoint};
use rbm::data::{self, Binarize, Dataset, Order, Split};
use rbm::train::{
    FastWeights, Method, NegativeState, Observer, ParamSet, RunPosition, Schedule, Tempering,
    TrainConfig, Trainer, TrainerState, train_dataset_from,
};
use rbm::{Error, ModelFileError, Rbm};

fn mnist() -> Option<Dataset> {
    let dir = common::data_dir()?.join("mnist");
    Some(data::open_split(&dir, Split::Train).unwrap())
}

fn schedule() -> Schedule {
    Schedule {
        epochs: 3,
        batches_per_epoch: Some(7),
        order: Order::Shuffled,
        binarize: Binarize::Stochastic,
        drop_last: true,
    }
}

/// Stops the run (with an error) after `stop_at` steps, keeping the checkpoint it would
/// have written there, as bytes.
struct StopAt {
    stop_at: u64,
    config: TrainConfig,
    saved: Option<Vec<u8>>,
}

impl Observer for StopAt {
    fn step_end(
        &mut self,
        model: &Rbm,
        trainer: &Trainer,
        position: &RunPosition,
    ) -> rbm::Result<()> {
        if trainer.steps() < self.stop_at {
            return Ok(());
        }
        let c = Checkpoint {
            model: model.clone(),
            config: self.config.clone(),
            schedule: schedule(),
            state: trainer.state(),
            position: position.clone(),
            run: Some(r#"{"note":"test"}"#.into()),
        };
        self.saved = Some(serialize_checkpoint(&c).unwrap());
        Err(Error::config("test", "to stop here", "stopped"))
    }
}

struct Nothing;
impl Observer for Nothing {}

/// The whole run, uninterrupted.
fn uninterrupted(ds: &Dataset, cfg: &TrainConfig) -> (Rbm, Trainer, RunPosition) {
    let mut model = Rbm::new(784, 24, 3).unwrap();
    let mut trainer = Trainer::new(&model, cfg.clone()).unwrap();
    let mut pos = RunPosition::default();
    train_dataset_from(
        &mut model,
        &mut trainer,
        ds,
        &schedule(),
        &mut pos,
        &mut Nothing,
    )
    .unwrap();
    (model, trainer, pos)
}

/// The run stopped after `stop_at` steps, its checkpoint parsed back and continued.
fn stopped_and_resumed(
    ds: &Dataset,
    cfg: &TrainConfig,
    stop_at: u64,
) -> (Rbm, Trainer, RunPosition) {
    let mut model = Rbm::new(784, 24, 3).unwrap();
    let mut trainer = Trainer::new(&model, cfg.clone()).unwrap();
    let mut pos = RunPosition::default();
    let mut stop = StopAt {
        stop_at,
        config: cfg.clone(),
        saved: None,
    };
    let err = train_dataset_from(
        &mut model,
        &mut trainer,
        ds,
        &schedule(),
        &mut pos,
        &mut stop,
    );
    assert!(matches!(err, Err(Error::Config(_))), "{err:?}");
    let c = parse_checkpoint(&stop.saved.unwrap()).unwrap();
    assert_eq!(c.state.steps, stop_at);
    assert_eq!(c.run.as_deref(), Some(r#"{"note":"test"}"#));
    let mut model = c.model.clone();
    let mut trainer = c.trainer().unwrap();
    let mut pos = c.position;
    train_dataset_from(
        &mut model,
        &mut trainer,
        ds,
        &c.schedule,
        &mut pos,
        &mut Nothing,
    )
    .unwrap();
    (model, trainer, pos)
}

fn bits(m: &Rbm) -> Vec<u32> {
    let all = m.weights().iter().chain(m.v_bias()).chain(m.h_bias());
    all.map(|x| x.to_bits()).collect()
}

#[test]
fn a_run_continued_from_any_checkpoint_ends_bit_identical() {
    let Some(ds) = mnist() else { return };
    let configs = [
        TrainConfig {
            k: 2,
            lr: 0.05,
            batch_size: 20,
            seed: 11,
            ..TrainConfig::default()
        },
        TrainConfig {
            k: 1,
            lr: 0.05,
            momentum: 0.7,
            weight_decay: 1e-3,
            batch_size: 16,
            method: Method::Pcd { chains: None },
            seed: 12,
            ..TrainConfig::default()
        },
        // Every refinement: more chains than rows, centering, both schedules.
        TrainConfig {
            k: 1,
            lr: 0.05,
            momentum: 0.9,
            batch_size: 16,
            method: Method::FastPcd {
                chains: Some(24),
                fast: FastWeights {
                    lr: 0.05,
                    decay: 0.95,
                },
            },
            seed: 13,
            lr_end: Some(0.001),
            anneal_steps: 21,
            momentum_start: Some(0.5),
            momentum_steps: 5,
            centering: Some(0.1),
            ..TrainConfig::default()
        },
        // Parallel tempering with more chains than rows.
        TrainConfig {
            k: 1,
            lr: 0.05,
            momentum: 0.5,
            batch_size: 16,
            method: Method::Tempering {
                chains: Some(20),
                ladder: Tempering {
                    temperatures: 3,
                    beta_min: 0.4,
                },
            },
            seed: 14,
            ..TrainConfig::default()
        },
    ];
    for cfg in &configs {
        let (model, trainer, pos) = uninterrupted(&ds, cfg);
        // Mid-epoch, at an epoch's last batch (before its end is recorded), and one step in.
        for stop_at in [1, 7, 10, 20] {
            let (m2, t2, p2) = stopped_and_resumed(&ds, cfg, stop_at);
            assert_eq!(bits(&m2), bits(&model), "{cfg:?} stopped at {stop_at}");
            assert_eq!(t2.state(), trainer.state());
            assert_eq!(p2.history.len(), pos.history.len());
            for (a, b) in p2.history.iter().zip(&pos.history) {
                assert_eq!(
                    (a.loss.to_bits(), a.recon_error.to_bits()),
                    (b.loss.to_bits(), b.recon_error.to_bits())
                );
            }
        }
    }
}

/// A small valid checkpoint: momentum and PCD chains present.
fn valid() -> Checkpoint {
    let model = Rbm::new(5, 3, 1).unwrap();
    let config = TrainConfig {
        k: 1,
        batch_size: 2,
        momentum: 0.5,
        method: Method::Pcd { chains: None },
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&model, config.clone()).unwrap();
    let mut trained = model.clone();
    let rows = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0];
    trainer.step(&mut trained, &rows).unwrap();
    Checkpoint {
        model: trained,
        config,
        schedule: Schedule {
            epochs: 2,
            batches_per_epoch: Some(4),
            order: Order::Sequential,
            binarize: Binarize::Threshold,
            drop_last: true,
        },
        state: trainer.state(),
        position: RunPosition {
            batch: 1,
            loss_sum: -1.5,
            recon_sum: 0.25,
            ..RunPosition::default()
        },
        run: None,
    }
}

#[test]
fn a_checkpoint_round_trips_exactly() {
    let c = valid();
    let bytes = serialize_checkpoint(&c).unwrap();
    assert_eq!(parse_checkpoint(&bytes).unwrap(), c);
    // The same checkpoint always gives the same bytes (sorted header).
    assert_eq!(serialize_checkpoint(&c).unwrap(), bytes);
    // The model's tensors are a model file's: the model alone reads back.
    assert!(c.state.momentum.is_some() && c.state.negative.chains().is_some());
}

/// A tensor by name, shape and values.
type Tensor = (&'static str, Vec<usize>, Vec<f32>);

/// A safetensors file with the given f32 tensors and metadata entries.
fn raw(tensors: &[Tensor], meta: &[(&str, String)]) -> Vec<u8> {
    struct T(Vec<usize>, Vec<u8>);
    impl safetensors::View for &T {
        fn dtype(&self) -> safetensors::Dtype {
            safetensors::Dtype::F32
        }
        fn shape(&self) -> &[usize] {
            &self.0
        }
        fn data(&self) -> std::borrow::Cow<'_, [u8]> {
            (&self.1[..]).into()
        }
        fn data_len(&self) -> usize {
            self.1.len()
        }
    }
    let ts: Vec<(String, T)> = tensors
        .iter()
        .map(|(n, s, v)| {
            let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            (n.to_string(), T(s.clone(), bytes))
        })
        .collect();
    let meta: HashMap<String, String> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    safetensors::serialize(ts.iter().map(|(n, t)| (n.as_str(), t)), Some(meta)).unwrap()
}

/// The parts of [`valid`] as raw tensors and metadata, to break one at a time.
fn parts() -> (Vec<Tensor>, Vec<(&'static str, String)>) {
    let bytes = serialize_checkpoint(&valid()).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let names = [
        "W",
        "v_bias",
        "h_bias",
        "momentum.W",
        "momentum.v_bias",
        "momentum.h_bias",
        "chains",
    ];
    let tensors = names
        .iter()
        .map(|&n| {
            let t = st.tensor(n).unwrap();
            let v = t
                .data()
                .chunks(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (n, t.shape().to_vec(), v)
        })
        .collect();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().clone().unwrap();
    let meta = ["format", "rbm_version", "state"]
        .iter()
        .map(|&k| (k, meta[k].clone()))
        .collect();
    (tensors, meta)
}

fn state_json() -> serde_json::Value {
    let (_, meta) = parts();
    serde_json::from_str(&meta.iter().find(|(k, _)| *k == "state").unwrap().1).unwrap()
}

fn with_state(state: serde_json::Value) -> Vec<u8> {
    let (t, mut meta) = parts();
    meta.retain(|(k, _)| *k != "state");
    meta.push(("state", state.to_string()));
    raw(&t, &meta)
}

#[test]
fn every_broken_part_is_a_specific_error() {
    use ModelFileError as E;
    let (t, meta) = parts();
    assert_eq!(
        parse_checkpoint(&raw(&t, &meta)).unwrap(),
        valid(),
        "the parts rebuild it"
    );
    let without = |name: &str| -> Vec<u8> {
        let t: Vec<_> = t.iter().filter(|x| x.0 != name).cloned().collect();
        raw(&t, &meta)
    };
    let changed = |name: &str, shape: Vec<usize>, values: Vec<f32>| -> Vec<u8> {
        let t: Vec<_> = t
            .iter()
            .map(|x| {
                if x.0 == name {
                    (x.0, shape.clone(), values.clone())
                } else {
                    x.clone()
                }
            })
            .collect();
        raw(&t, &meta)
    };
    let err = |bytes: &[u8]| parse_checkpoint(bytes).unwrap_err();

    assert!(matches!(err(b""), E::Format(_)));
    assert!(matches!(err(&without("W")), E::MissingTensor("W")));
    assert!(matches!(
        err(&without("h_bias")),
        E::MissingTensor("h_bias")
    ));
    let mut extra = t.clone();
    extra.push(("slow.W", vec![3, 5], vec![0.0; 15]));
    assert!(matches!(err(&raw(&extra, &meta)), E::UnexpectedTensor(n) if n == "slow.W"));
    assert!(matches!(
        err(&changed("momentum.W", vec![5, 3], vec![0.0; 15])),
        E::WrongShape {
            name: "momentum.W",
            ..
        }
    ));
    assert!(matches!(
        err(&changed("chains", vec![2, 4], vec![0.0; 8])),
        E::WrongShape { name: "chains", .. }
    ));
    let mut nan = vec![0.0; 5];
    nan[3] = f32::NAN;
    assert!(matches!(
        err(&changed("momentum.v_bias", vec![5], nan)),
        E::NonFinite {
            name: "momentum.v_bias",
            index: 3
        }
    ));
    // Incomplete or unwanted state.
    assert!(matches!(
        err(&without("momentum.h_bias")),
        E::Inconsistent(_)
    ));
    assert!(matches!(
        err(&changed("chains", vec![3, 5], vec![1.0; 15])),
        E::Inconsistent(m) if m.contains("3 persistent chains")
    ));

    // Metadata.
    let mut no_format = meta.clone();
    no_format.retain(|(k, _)| *k != "format");
    assert!(matches!(err(&raw(&t, &no_format)), E::Metadata(m) if m.contains("format")));
    let mut model_format = meta.clone();
    model_format[0].1 = "rbm".into();
    assert!(matches!(err(&raw(&t, &model_format)), E::Metadata(_)));
    let mut bad_run = meta.clone();
    bad_run.push(("run", "{oops".into()));
    assert!(matches!(err(&raw(&t, &bad_run)), E::Metadata(m) if m.contains("run")));
    assert!(matches!(
        err(&with_state(serde_json::json!({"version": 1}))),
        E::Metadata(_)
    ));
    let mut s = state_json();
    s["version"] = 2.into();
    assert!(matches!(err(&with_state(s)), E::Metadata(m) if m.contains("version 2")));
    let mut s = state_json();
    s["surprise"] = 1.into();
    assert!(matches!(err(&with_state(s)), E::Metadata(_)));

    // The state's parts disagree.
    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("config", serde_json::json!({"k": 0})),
        ("momentum", serde_json::json!(0.0)),
        ("pcd", serde_json::json!(false)),
        ("steps", serde_json::json!(5)),
        ("epoch", serde_json::json!(2)),
        ("batch", serde_json::json!(5)),
    ];
    for (field, value) in cases {
        let mut s = state_json();
        match field {
            "config" => s["config"]["k"] = value["k"].clone(),
            "momentum" | "pcd" => s["config"][field] = value,
            _ => s[field] = value,
        }
        let e = err(&with_state(s));
        assert!(matches!(e, E::Inconsistent(_)), "{field}: {e:?}");
    }
    // A history that does not account for the steps.
    let mut s = state_json();
    s["epoch"] = 1.into();
    s["history"] = serde_json::json!([{"epoch": 0, "loss": 1.0, "recon_error": 0.1, "batches": 4, "seconds": 0.5}]);
    assert!(matches!(err(&with_state(s.clone())), E::Inconsistent(m) if m.contains("steps")));
    s["steps"] = 5.into();
    assert!(
        parse_checkpoint(&with_state(s.clone())).is_ok(),
        "4 + 1 batches make 5 steps"
    );
    s["history"][0]["epoch"] = 3.into();
    assert!(matches!(err(&with_state(s)), E::Inconsistent(m) if m.contains("history")));
}

#[test]
fn serializing_refuses_what_parsing_would() {
    let mut c = valid();
    c.state.momentum = None;
    assert!(matches!(
        serialize_checkpoint(&c),
        Err(ModelFileError::Inconsistent(_))
    ));
    let mut c = valid();
    if let NegativeState::Pcd {
        chains: Some(chains),
    } = &mut c.state.negative
    {
        chains[0] = f32::INFINITY;
    }
    assert!(matches!(
        serialize_checkpoint(&c),
        Err(ModelFileError::NonFinite {
            name: "chains",
            index: 0
        })
    ));
    let mut c = valid();
    c.run = Some("not json".into());
    assert!(matches!(
        serialize_checkpoint(&c),
        Err(ModelFileError::Metadata(_))
    ));
}

#[test]
fn resuming_checks_the_state_against_the_configuration() {
    let model = Rbm::new(4, 2, 0).unwrap();
    let cfg = TrainConfig {
        batch_size: 3,
        ..TrainConfig::default()
    };
    let state = |momentum: bool, chains: Option<usize>| TrainerState {
        steps: 9,
        momentum: momentum.then(|| ParamSet {
            w: vec![0.0; 8],
            v_bias: vec![0.0; 4],
            h_bias: vec![0.0; 2],
        }),
        negative: chains.map_or(NegativeState::Cd, |n| NegativeState::Pcd {
            chains: Some(vec![0.0; n]),
        }),
        offsets: None,
    };
    assert_eq!(
        Trainer::resume(&model, cfg.clone(), state(false, None))
            .unwrap()
            .steps(),
        9
    );
    assert!(matches!(
        Trainer::resume(&model, cfg.clone(), state(true, None)),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        Trainer::resume(&model, cfg.clone(), state(false, Some(12))),
        Err(Error::Shape(_))
    ));
    let pcd = TrainConfig {
        method: Method::Pcd { chains: None },
        momentum: 0.5,
        ..cfg
    };
    assert!(matches!(
        Trainer::resume(&model, pcd.clone(), state(false, None)),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        Trainer::resume(&model, pcd.clone(), state(true, Some(8))),
        Err(Error::Shape(_))
    ));
    // Another method's state: fast weights for plain PCD, PCD's chains for tempering.
    let fast = ParamSet {
        w: vec![0.0; 8],
        v_bias: vec![0.0; 4],
        h_bias: vec![0.0; 2],
    };
    let fpcd = TrainerState {
        negative: NegativeState::FastPcd { chains: None, fast },
        ..state(true, None)
    };
    assert!(matches!(
        Trainer::resume(&model, pcd.clone(), fpcd),
        Err(Error::Shape(e)) if e.what == "negative phase state"
    ));
    let t = Trainer::resume(&model, pcd, state(true, Some(12))).unwrap();
    assert_eq!(t.state(), state(true, Some(12)));
}

#[test]
fn an_absurd_batch_size_is_an_error_not_an_abort() {
    let model = Rbm::new(784, 500, 0).unwrap();
    let cfg = TrainConfig {
        batch_size: usize::MAX / 8,
        ..TrainConfig::default()
    };
    assert!(matches!(Trainer::new(&model, cfg), Err(Error::Config(_))));
    // Parallel tempering's chains are sized the same careful way.
    let pt = |temperatures, chains| TrainConfig {
        method: Method::Tempering {
            chains: Some(chains),
            ladder: Tempering {
                temperatures,
                beta_min: 0.5,
            },
        },
        ..TrainConfig::default()
    };
    assert!(matches!(
        Trainer::new(&model, pt(1 << 20, 10)),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        Trainer::new(&model, pt(8, usize::MAX / 4)),
        Err(Error::Config(_))
    ));
}

#[test]
fn a_step_that_overflows_a_weight_is_caught_in_that_step() {
    let mut model = Rbm::new(6, 4, 0).unwrap();
    model.weights_mut()[5] = 3.0e38;
    let cfg = TrainConfig {
        k: 1,
        lr: 1.0,
        weight_decay: 10.0,
        batch_size: 2,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&model, cfg).unwrap();
    trainer.set_position(4, 17);
    let rows = [0.0; 12];
    match trainer.step(&mut model, &rows) {
        Err(Error::Diverged {
            epoch: 4,
            step: 17,
            what,
        }) => {
            assert!(what.contains("weight"), "{what}");
        }
        other => panic!("expected divergence, got {other:?}"),
    }
    assert_eq!(model.first_non_finite(), Some("W"));
    let msg = Error::Diverged {
        epoch: 4,
        step: 17,
        what: "x".into(),
    }
    .to_string();
    assert!(msg.contains("epoch 5 at batch 18"), "{msg}");
}

/// #17, class 10: a checkpoint is refused at `--resume` (parse, before any training) when the
/// values it would continue from are absurd, with the field named.
#[test]
fn absurd_values_in_a_checkpoint_are_refused_with_the_field_named() {
    use ModelFileError as E;
    let (t, meta) = parts();
    let changed = |name: &str, at: usize, value: f32| -> Vec<u8> {
        let t: Vec<_> = t
            .iter()
            .map(|(n, shape, v)| {
                let mut v = v.clone();
                if *n == name {
                    v[at] = value;
                }
                (*n, shape.clone(), v)
            })
            .collect();
        raw(&t, &meta)
    };
    let refused = |bytes: &[u8], needle: &str| match parse_checkpoint(bytes) {
        Err(E::Inconsistent(m)) => assert!(m.contains(needle), "{m} lacks {needle}"),
        other => panic!("{needle}: {other:?}"),
    };
    refused(&changed("momentum.W", 3, 1e20), "momentum.W");
    refused(&changed("momentum.h_bias", 0, -5e4), "momentum.h_bias");
    refused(&changed("W", 7, 2e4), "model.W");
    refused(&changed("chains", 4, 1.5), "chains: chain 0, unit 4");
    refused(&changed("chains", 6, -1.0), "chains: chain 1, unit 1");
    // A persistent run that has stepped keeps its chains: a checkpoint without them is refused.
    let mut c = valid();
    c.state.negative = NegativeState::Pcd { chains: None };
    assert!(matches!(
        serialize_checkpoint(&c),
        Err(E::Inconsistent(m)) if m.contains("chains: none after 1 steps")
    ));
}
