//! The library's opt-ins for the Python package (scikit-learn's input domain and
//! `partial_fit`): rows of any finite values, and the strict default left unchanged.

use rbm::data::{Binarize, Order, RowSource, Rows};
use rbm::train::{TrainConfig, Trainer};
use rbm::{Config, Error, Estimator, Method, Rbm};

fn config() -> Config {
    Config::default()
        .hidden(6)
        .epochs(3)
        .batch_size(5)
        .method(Method::Pcd { chains: Some(5) })
        .binarize(Binarize::None)
        .order(Order::Sequential)
        .marginal_bias(false)
        .seed(3)
}

fn grey_rows() -> Vec<f32> {
    (0..17 * 9)
        .map(|i| ((i * 37) % 101) as f32 / 100.0)
        .collect()
}

#[test]
fn finite_rows_in_the_unit_interval_train_the_same_model_as_checked_rows() {
    let data = grey_rows();
    let mut strict = Estimator::new(config());
    strict.fit(&Rows::new(&data, 9).unwrap()).unwrap();
    let mut finite = Estimator::new(config());
    finite.fit(&Rows::finite(&data, 9).unwrap()).unwrap();
    assert_eq!(strict.model(), finite.model());
    assert!(Rows::new(&data, 9).unwrap().values_in_unit_interval());
    assert!(!Rows::finite(&data, 9).unwrap().values_in_unit_interval());
}

#[test]
fn values_outside_the_unit_interval_are_refused_by_default_and_used_by_the_opt_in() {
    let mut data = grey_rows();
    data[13] = -1.5;
    data[40] = 4.0;
    assert!(matches!(
        Rows::new(&data, 9),
        Err(Error::Value {
            row: 1,
            column: 4,
            ..
        })
    ));
    let rows = Rows::finite(&data, 9).unwrap();
    let mut est = Estimator::new(config());
    est.fit(&rows).unwrap();
    assert_eq!(est.transform(&rows).unwrap().len(), 17 * 6);
    est.partial_fit_batch(&rows).unwrap();
    data[3] = f32::NAN;
    assert!(matches!(
        Rows::finite(&data, 9),
        Err(Error::Value {
            row: 0,
            column: 3,
            ..
        })
    ));

    // The trainer: `step` keeps refusing, `step_finite` takes them.
    let mut model = Rbm::new(3, 2, 1).unwrap();
    let tc = TrainConfig {
        batch_size: 2,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&model, tc).unwrap();
    let batch = [0.0, -1.0, 2.0, 1.0, 0.5, 0.0];
    assert!(matches!(
        trainer.step(&mut model, &batch),
        Err(Error::Value {
            row: 0,
            column: 1,
            ..
        })
    ));
    trainer.step_finite(&mut model, &batch).unwrap();
    assert!(
        trainer
            .step_finite(&mut model, &[0.0, f32::INFINITY, 0.0])
            .is_err()
    );
}

#[test]
fn partial_fit_batch_steps_once_on_all_rows_and_bytes_round_trip() {
    let data = grey_rows();
    let rows = Rows::new(&data, 9).unwrap(); // 17 rows, more than a batch of 5
    let mut a = Estimator::new(config());
    a.partial_fit_batch(&rows).unwrap();
    assert_eq!(a.history().len(), 1);
    assert_eq!(a.history()[0].batches, 1);
    assert_eq!(a.persistent_chains().map(|c| c.len()), Some(5 * 9));
    let mut b = Estimator::from_bytes(&a.to_bytes().unwrap()).unwrap();
    a.partial_fit_batch(&rows).unwrap();
    b.partial_fit_batch(&rows).unwrap();
    assert_eq!(a.model(), b.model());
    assert_eq!(a.config(), b.config());
}
