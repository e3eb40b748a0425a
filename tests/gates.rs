//! The logic-gate experiment reaches the reference notebook's success rates.

use rbm::experiments::gates::{GateConfig, GateFn, clamped_accuracy, train_gate};

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn final_success(cfg: &GateConfig) -> (f64, f64) {
    let (model, hist) = train_gate(cfg, |_| {}).unwrap();
    let clamped = clamped_accuracy(&model, cfg.function, cfg.k, 250, cfg.seed).unwrap();
    (hist.last().unwrap().success, clamped)
}

#[test]
fn and_cd4_out_of_equilibrium_reaches_95_percent() {
    let runs: Vec<(f64, f64)> = (0..5)
        .map(|seed| {
            final_success(&GateConfig {
                seed,
                ..GateConfig::default()
            })
        })
        .collect();
    eprintln!("AND CD-4 (final success, clamped accuracy) per seed: {runs:?}");
    let m = median(runs.iter().map(|r| r.0).collect());
    assert!(m >= 0.95, "median final-epoch success {m} < 0.95");
}

#[test]
fn and_cd30_at_equilibrium_reaches_90_percent() {
    let runs: Vec<(f64, f64)> = (0..5)
        .map(|seed| {
            final_success(&GateConfig {
                seed,
                k: 30,
                batches: 500,
                ..GateConfig::default()
            })
        })
        .collect();
    eprintln!("AND CD-30 (final success, clamped accuracy) per seed: {runs:?}");
    let m = median(runs.iter().map(|r| r.0).collect());
    assert!(m >= 0.90, "median final-epoch success {m} < 0.90");
}

#[test]
fn gate_functions_parse_and_evaluate() {
    assert_eq!("AND".parse::<GateFn>().unwrap(), GateFn::And);
    assert!("implies".parse::<GateFn>().is_err());
    let table = |f: GateFn| {
        [
            f.eval(false, false),
            f.eval(false, true),
            f.eval(true, false),
            f.eval(true, true),
        ]
    };
    assert_eq!(table(GateFn::And), [false, false, false, true]);
    assert_eq!(table(GateFn::Or), [false, true, true, true]);
    assert_eq!(table(GateFn::Xor), [false, true, true, false]);
    assert_eq!(table(GateFn::Nand), [true, true, true, false]);
    assert_eq!(table(GateFn::Nor), [true, false, false, false]);
    assert_eq!(table(GateFn::Xnor), [true, false, false, true]);
    assert_eq!(table(GateFn::Not), [true, true, false, false]);
}
