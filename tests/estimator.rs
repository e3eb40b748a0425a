//! The high-level API and data of your own: rows in memory are checked and train like IDX
//! files, an epoch's last partial batch is used (or dropped on request), and `Estimator`'s
//! methods keep their promises (determinism on any thread count, errors, save/load).

mod common;

use common::{TempDir, idx_bytes, labels};
use rbm::data::{Binarize, Dataset, IdxFile, Order, RowSource, Rows};
use rbm::prelude::*;
use rbm::train::{FastWeights, Schedule, Tempering, TrainConfig, Trainer, train_dataset};

/// `n` rows of `cols` grey levels, a pattern with every value 0..=255.
fn pixels(n: usize, cols: usize) -> Vec<u8> {
    (0..n * cols).map(|k| (k * 37 % 256) as u8).collect()
}

/// Runs `f` on a pool of `threads` threads.
fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn rows_with_nan_or_values_outside_the_unit_interval_name_row_and_column() {
    for (bad, at) in [
        (f32::NAN, 5),
        (1.5, 0),
        (-0.25, 7),
        (f32::INFINITY, 3),
        (255.0, 6),
    ] {
        let mut data = vec![0.5f32; 8];
        data[at] = bad;
        match Rows::new(&data, 4) {
            Err(Error::Value { row, column, .. }) => assert_eq!((row, column), (at / 4, at % 4)),
            other => panic!("{bad} at {at}: {other:?}"),
        }
    }
    assert!(matches!(Rows::new(&[0.0; 7], 4), Err(Error::Shape(_))));
    assert!(matches!(Rows::new(&[0.0; 8], 0), Err(Error::Shape(_))));
    assert!(matches!(Rows::from_bytes(&[0; 5], 2), Err(Error::Shape(_))));
    let ok = Rows::new(&[0.0, 1.0, 0.25, 1.0], 2).unwrap();
    assert_eq!((ok.n_rows(), ok.row_len()), (2, 2));
}

#[test]
fn a_training_step_refuses_bad_values_before_changing_anything() {
    let mut model = Rbm::new(4, 3, 1).unwrap();
    let before = model.clone();
    let config = TrainConfig {
        batch_size: 2,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&model, config).unwrap();
    let err = trainer
        .step(&mut model, &[0.0, 1.0, 0.0, 1.0, 1.0, 0.0, f32::NAN, 0.0])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Value {
                row: 1,
                column: 2,
                ..
            }
        ),
        "{err}"
    );
    let err = trainer.step(&mut model, &[0.0, 1.0, 2.0, 1.0]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Value {
                row: 0,
                column: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(model, before);
    assert_eq!(trainer.steps(), 0);
    // Too many rows, or not whole rows: shapes.
    assert!(matches!(
        trainer.step(&mut model, &[0.0; 12]),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        trainer.step(&mut model, &[0.0; 5]),
        Err(Error::Shape(_))
    ));
}

/// Trains a 12–5 model on `source` for 2 epochs of batches of 4, `drop_last` as given.
fn train_on(
    source: &(impl RowSource + ?Sized),
    config: TrainConfig,
    drop_last: bool,
) -> (Rbm, usize) {
    let mut model = Rbm::new(12, 5, 3).unwrap();
    let mut trainer = Trainer::new(&model, config).unwrap();
    let schedule = Schedule {
        epochs: 2,
        batches_per_epoch: None,
        order: Order::Shuffled,
        binarize: Binarize::Stochastic,
        drop_last,
    };
    let history =
        train_dataset(&mut model, &mut trainer, source, &schedule, |_| {}, |_| {}).unwrap();
    (model, history[0].batches)
}

fn batch_of_4(pcd: bool) -> TrainConfig {
    TrainConfig {
        k: 2,
        lr: 0.1,
        batch_size: 4,
        method: if pcd {
            Method::Pcd { chains: None }
        } else {
            Method::Cd
        },
        seed: 9,
        ..TrainConfig::default()
    }
}

#[test]
fn the_last_partial_batch_is_trained_on_unless_dropped() {
    let bytes = pixels(10, 12);
    let rows = Rows::from_bytes(&bytes, 12).unwrap();
    for pcd in [false, true] {
        let (kept, n_kept) = train_on(&rows, batch_of_4(pcd), false);
        let (dropped, n_dropped) = train_on(&rows, batch_of_4(pcd), true);
        assert_eq!((n_kept, n_dropped), (3, 2), "pcd {pcd}");
        assert_ne!(kept, dropped);
        assert!(kept.first_non_finite().is_none());
        // Same bits on 1, 2 and 3 threads.
        for threads in [1, 2, 3] {
            let (again, _) = on_threads(threads, || train_on(&rows, batch_of_4(pcd), false));
            assert_eq!(again, kept, "pcd {pcd}, {threads} threads");
        }
    }
}

#[test]
fn a_short_batch_then_full_ones_use_the_right_buffers() {
    // Full, short, full, short of another size: each step's reconstruction has its rows.
    let data: Vec<f32> = pixels(4, 6).iter().map(|&x| (x & 1) as f32).collect();
    let mut model = Rbm::new(6, 3, 2).unwrap();
    let config = TrainConfig {
        batch_size: 4,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&model, config).unwrap();
    for rows in [4, 1, 4, 3, 3] {
        trainer.step(&mut model, &data[..rows * 6]).unwrap();
        assert_eq!(trainer.reconstruction().len(), rows * 6);
        assert_eq!(trainer.negative_visible().len(), rows * 6);
    }
    assert_eq!(trainer.steps(), 5);
}

#[test]
fn rows_in_memory_train_the_same_model_as_the_idx_file_of_the_same_pixels() {
    let bytes = pixels(10, 12);
    let dir = TempDir::new("rows-vs-idx");
    let images = dir.write("images", &idx_bytes(0x08, &[10, 3, 4], &bytes));
    let label_file = dir.write("labels", &labels(&[0; 10]));
    let ds = Dataset::from_idx(
        IdxFile::open(&images).unwrap(),
        IdxFile::open(&label_file).unwrap(),
    )
    .unwrap();
    let grey: Vec<f32> = bytes.iter().map(|&x| f32::from(x) / 255.0).collect();
    for drop_last in [true, false] {
        let (from_file, _) = train_on(&ds, batch_of_4(false), drop_last);
        let (from_bytes, _) = train_on(
            &Rows::from_bytes(&bytes, 12).unwrap(),
            batch_of_4(false),
            drop_last,
        );
        let (from_f32, _) = train_on(&Rows::new(&grey, 12).unwrap(), batch_of_4(false), drop_last);
        assert_eq!(from_bytes, from_file);
        assert_eq!(from_f32, from_file);
    }
}

/// Bars and stripes on a 3 × 3 grid, as `f32` rows of 9.
fn bars() -> Vec<f32> {
    rbm::datasets::bars_and_stripes(3)
}

fn small_config() -> Config {
    Config::default()
        .hidden(8)
        .epochs(30)
        .batch_size(4)
        .learning_rate(0.3)
        .seed(11)
}

#[test]
fn fit_is_deterministic_on_any_thread_count_and_follows_the_seed() {
    let data = bars();
    let rows = Rows::new(&data, 9).unwrap();
    let fit = |config: Config, threads| {
        on_threads(threads, || {
            let mut est = Estimator::new(config);
            est.fit(&rows).unwrap();
            est.model().unwrap().clone()
        })
    };
    for method in [
        Method::Cd,
        Method::Pcd { chains: Some(6) },
        Method::FastPcd {
            chains: None,
            fast: FastWeights {
                lr: 0.1,
                decay: 0.95,
            },
        },
        Method::Tempering {
            chains: Some(3),
            ladder: Tempering {
                temperatures: 3,
                beta_min: 0.5,
            },
        },
    ] {
        let config = small_config()
            .method(method)
            .momentum(0.5)
            .centering(Some(0.1));
        let one = fit(config.clone(), 1);
        assert_eq!(fit(config.clone(), 2), one, "{method:?}");
        assert_eq!(fit(config.clone(), 3), one, "{method:?}");
        assert_ne!(fit(config.seed(12), 2), one, "{method:?}");
    }
}

#[test]
fn partial_fit_continues_where_fit_stopped() {
    let data = bars();
    let rows = Rows::new(&data, 9).unwrap();
    // fit for 3 epochs = fit for 2, then one partial_fit (same data, same steps, same state).
    let mut three = Estimator::new(small_config().epochs(3).momentum(0.5));
    three.fit(&rows).unwrap();
    let mut two = Estimator::new(small_config().epochs(2).momentum(0.5));
    two.fit(&rows).unwrap();
    two.partial_fit(&rows).unwrap();
    assert_eq!(two.model(), three.model());
    assert_eq!(two.history().len(), 3);
    // A fresh estimator's partial_fit starts a model.
    let mut fresh = Estimator::new(small_config());
    fresh.partial_fit(&rows).unwrap();
    assert_eq!(fresh.history().len(), 1);
    // Rows of another width are refused, the model kept.
    let before = fresh.model().unwrap().clone();
    let other = [0.0f32; 8];
    let err = fresh
        .partial_fit(&Rows::new(&other, 4).unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::Shape(_)), "{err}");
    assert_eq!(fresh.model(), Some(&before));
}

#[test]
fn an_unfitted_estimator_says_so() {
    let data = bars();
    let rows = Rows::new(&data, 9).unwrap();
    let mut est = Estimator::default();
    assert!(matches!(est.transform(&rows), Err(Error::NotFitted)));
    assert!(matches!(est.reconstruct(&rows), Err(Error::NotFitted)));
    assert!(matches!(est.sample(2, 1), Err(Error::NotFitted)));
    assert!(matches!(est.score_samples(&rows), Err(Error::NotFitted)));
    assert!(matches!(
        est.log_likelihood(&rows, LogLikelihood::Exact),
        Err(Error::NotFitted)
    ));
    assert!(matches!(
        est.save("never-written.safetensors"),
        Err(Error::NotFitted)
    ));
    assert!(!std::path::Path::new("never-written.safetensors").exists());
    assert!(matches!(
        Estimator::new(Config::default().hidden(0)).fit(&rows),
        Err(Error::Config(_))
    ));
}

#[test]
fn transform_and_reconstruct_match_the_model() {
    let data = bars();
    let rows = Rows::new(&data, 9).unwrap();
    let mut est = Estimator::new(small_config());
    est.fit(&rows).unwrap();
    let model = est.model().unwrap();
    let features = est.transform(&rows).unwrap();
    let mut want = vec![0.0; 14 * 8];
    model.hidden_probs(&data, &mut want).unwrap();
    assert_eq!(features, want);
    let mut recon = vec![0.0; 14 * 9];
    model.visible_probs(&want, &mut recon).unwrap();
    assert_eq!(est.reconstruct(&rows).unwrap(), recon);
    // Bytes 0/255 are the same rows.
    let bytes: Vec<u8> = data.iter().map(|&x| (x * 255.0) as u8).collect();
    assert_eq!(
        est.transform(&Rows::from_bytes(&bytes, 9).unwrap())
            .unwrap(),
        features
    );
    // A wrong width is a shape error; a wrong output length too.
    assert!(matches!(
        est.transform(&Rows::new(&[0.0; 8], 4).unwrap()),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        est.transform_into(&rows, &mut [0.0; 3]),
        Err(Error::Shape(_))
    ));
}

#[test]
fn sampling_draws_fresh_numbers_each_call_and_repeats_from_the_seed() {
    let data = bars();
    let rows = Rows::new(&data, 9).unwrap();
    let mut a = Estimator::new(small_config());
    a.fit(&rows).unwrap();
    let mut b = a.clone();
    let first = a.sample(16, 20).unwrap().visible().to_vec();
    let second = a.sample(16, 20).unwrap().visible().to_vec();
    assert_ne!(first, second);
    assert_eq!(b.sample(16, 20).unwrap().visible(), &first[..]);
    // Inpainting keeps the clamped units.
    let mask: Vec<bool> = (0..9).map(|i| i < 3).collect();
    let chains = a.inpaint(&rows, &mask, 50).unwrap();
    for (got, want) in chains.visible().chunks(9).zip(data.chunks(9)) {
        assert_eq!(got[..3], want[..3]);
    }
    assert!(matches!(
        a.inpaint(&rows, &[true; 4], 1),
        Err(Error::Shape(_))
    ));
    assert!(matches!(a.sample(0, 1), Err(Error::Config(_))));
}

#[test]
fn scores_and_likelihoods_agree_with_the_low_level_api() {
    let data = bars();
    let rows = Rows::new(&data, 9).unwrap();
    let mut est = Estimator::new(small_config().epochs(200));
    est.fit(&rows).unwrap();
    let model = est.model().unwrap();
    let pll = est.score_samples(&rows).unwrap();
    let want =
        rbm::eval::pseudo_log_likelihood(model, &data, rbm::eval::PseudoLikelihood::Exact).unwrap();
    assert_eq!(pll, want);
    let exact = est.log_likelihood(&rows, LogLikelihood::Exact).unwrap();
    let log_z = rbm::eval::exact_log_z(model).unwrap();
    let mean_nf = rbm::eval::mean_neg_free_energy(model, &data).unwrap();
    assert_eq!(exact.estimate, mean_nf - log_z);
    assert_eq!(
        (exact.lower, exact.upper, exact.rows),
        (exact.estimate, exact.estimate, 14)
    );
    let ais = est
        .log_likelihood(
            &rows,
            LogLikelihood::Ais {
                runs: 64,
                temperatures: 2000,
            },
        )
        .unwrap();
    assert!(
        (ais.estimate - exact.estimate).abs() < 0.1,
        "{ais:?} vs {exact:?}"
    );
    assert!(ais.ais.as_ref().unwrap().effective_sample_size() > 1.0);
    let raise = est
        .log_likelihood(
            &rows,
            LogLikelihood::Raise {
                runs_per_row: 4,
                temperatures: 2000,
            },
        )
        .unwrap();
    assert!(
        (raise.estimate - exact.estimate).abs() < 0.5,
        "{raise:?} vs {exact:?}"
    );
    assert!(raise.lower <= raise.estimate && raise.estimate <= raise.upper);
}

#[test]
fn save_and_load_keep_model_settings_and_base_rate() {
    let data = bars();
    let rows = Rows::new(&data, 9).unwrap();
    let mut est = Estimator::new(small_config().k(2).method(Method::Pcd { chains: None }));
    est.fit(&rows).unwrap();
    let dir = TempDir::new("estimator-save");
    let path = dir.path().join("model.safetensors");
    est.save(&path).unwrap();
    let back = Estimator::load(&path).unwrap();
    assert_eq!(back.model(), est.model());
    assert_eq!(back.config(), est.config());
    let method = LogLikelihood::Ais {
        runs: 16,
        temperatures: 500,
    };
    assert_eq!(
        back.log_likelihood(&rows, method).unwrap(),
        est.log_likelihood(&rows, method).unwrap()
    );
    // A model file of the low-level API loads with default settings and its sizes.
    let other = dir.path().join("plain.safetensors");
    rbm::save_model(&other, est.model().unwrap(), None).unwrap();
    let plain = Estimator::load(&other).unwrap();
    assert_eq!(plain.config().n_hidden, 8);
    assert_eq!(plain.model(), est.model());
}

/// Rows of one's own whose row `bad_row` holds 2.0: a source that breaks its contract.
struct Broken {
    bad_row: usize,
}

impl RowSource for Broken {
    fn n_rows(&self) -> usize {
        14
    }

    fn row_len(&self) -> usize {
        9
    }

    fn fill(&self, indices: &[u32], _: Binarize, _: StreamKey, out: &mut [f32]) -> rbm::Result<()> {
        let data = bars();
        for (dst, &i) in out.chunks_mut(9).zip(indices) {
            dst.copy_from_slice(&data[i as usize * 9..][..9]);
            if i as usize == self.bad_row {
                dst[4] = 2.0;
            }
        }
        Ok(())
    }
}

#[test]
fn a_source_of_ones_own_is_checked_and_a_failed_epoch_changes_nothing() {
    let broken = Broken { bad_row: 11 };
    // The first partial_fit fails on row 11's batch: no model is left behind.
    let mut est = Estimator::new(small_config().order(Order::Sequential));
    let err = est.partial_fit(&broken).unwrap_err();
    assert!(matches!(err, Error::Value { column: 4, .. }), "{err}");
    assert!(est.model().is_none());
    // After a good epoch, a failed one leaves the model as it was.
    let data = bars();
    let rows = Rows::new(&data, 9).unwrap();
    est.partial_fit(&rows).unwrap();
    let before = est.model().unwrap().clone();
    assert!(est.partial_fit(&broken).is_err());
    assert_eq!(est.model(), Some(&before));
    assert_eq!(est.history().len(), 1);
    est.partial_fit(&rows).unwrap();
    assert_eq!(est.history().len(), 2);
    // Passes name the bad row.
    for result in [est.transform(&broken), est.reconstruct(&broken)] {
        assert!(
            matches!(
                result,
                Err(Error::Value {
                    row: 11,
                    column: 4,
                    ..
                })
            ),
            "{result:?}"
        );
    }
    assert!(matches!(
        est.score_samples(&broken),
        Err(Error::Value { row: 11, .. })
    ));
}

#[test]
fn a_model_file_with_an_unreadable_estimator_record_is_refused() {
    let dir = TempDir::new("estimator-record");
    let model = Rbm::new(9, 4, 1).unwrap();
    for record in [
        r#"{"estimator": {"n_hidden": "many"}}"#,
        r#"{"estimator": {"learning_rate": -1.0}, "marginals": null}"#,
    ] {
        let path = dir.path().join("m.safetensors");
        rbm::save_model(&path, &model, Some(record)).unwrap();
        let err = Estimator::load(&path).unwrap_err();
        assert!(
            matches!(&err, Error::ModelFile { path: p, .. } if p == &path),
            "{err}"
        );
    }
    // Another writer's configuration (rbm train's) is not the estimator's: default settings.
    let path = dir.path().join("train.safetensors");
    rbm::save_model(&path, &model, Some(r#"{"k": 3, "lr": 0.01}"#)).unwrap();
    assert_eq!(Estimator::load(&path).unwrap().config().n_hidden, 4);
}

#[test]
fn absurd_estimation_sizes_are_errors() {
    let data = bars();
    let rows = Rows::new(&data, 9).unwrap();
    let est = Estimator::from_model(Rbm::new(9, 4, 1).unwrap(), Config::default());
    for method in [
        LogLikelihood::Ais {
            runs: usize::MAX,
            temperatures: 100,
        },
        LogLikelihood::Ais {
            runs: 10,
            temperatures: usize::MAX,
        },
        LogLikelihood::Raise {
            runs_per_row: usize::MAX,
            temperatures: 100,
        },
        LogLikelihood::Ais {
            runs: 0,
            temperatures: 100,
        },
    ] {
        let err = est.log_likelihood(&rows, method).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{method:?}: {err}");
    }
}
