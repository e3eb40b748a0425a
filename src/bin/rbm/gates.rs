//! `rbm gates`: the logic-gate experiment.

use rbm::gates::{GateConfig, GateEpoch, clamped_accuracy, train_gate};
use serde_json::json;

use crate::args::GatesArgs;
use crate::output::{Progress, print_json};

pub fn run(a: &GatesArgs) -> rbm::Result<()> {
    let cfg = GateConfig {
        function: a.function.into(),
        k: a.k as usize,
        epochs: a.epochs as usize,
        batches: a.batches as usize,
        batch: a.batch as usize,
        lr: a.lr,
        hidden: a.hidden as usize,
        seed: a.seed,
    };
    if !a.json {
        println!(
            "{} gate, {}–{} RBM, CD-{}, lr {}, {} epochs of {} batches of {}",
            cfg.function, 3, cfg.hidden, cfg.k, cfg.lr, cfg.epochs, cfg.batches, cfg.batch
        );
    }
    let bar = Progress::new(cfg.epochs as u64, "epochs");
    let (model, history) = train_gate(&cfg, |e: &GateEpoch| {
        bar.inc();
        if a.json {
            print_json(&json!({"epoch": e.epoch + 1, "loss": e.loss, "success": e.success}));
        } else {
            bar.println(format!(
                "epoch {:>3}  loss {:>9.5}  success {:.4}",
                e.epoch + 1,
                e.loss,
                e.success
            ));
        }
    })?;
    bar.finish();
    let clamped = clamped_accuracy(&model, cfg.function, cfg.k, a.chains as usize, cfg.seed)?;
    let success = history.last().map_or(0.0, |e| e.success);
    if a.json {
        print_json(&json!({
            "final": true, "function": cfg.function.name(), "k": cfg.k, "success": success,
            "clamped_accuracy": clamped, "W": model.weights(), "v_bias": model.v_bias(), "h_bias": model.h_bias(),
        }));
    } else {
        println!("W (hidden × visible [x, y, f]):");
        for row in model.weights().chunks(3) {
            println!("  {:>9.4} {:>9.4} {:>9.4}", row[0], row[1], row[2]);
        }
        println!("v_bias: {:?}", model.v_bias());
        println!("h_bias: {:?}", model.h_bias());
        println!(
            "final success {success:.4}; clamped accuracy (x, y clamped, {} steps) {clamped:.4}",
            cfg.k
        );
    }
    Ok(())
}
