//! `rbm gates`: the logic-gate experiment.

use std::fs;
use std::path::Path;

use rbm::Error;
use rbm::experiments::gates::{GateConfig, GateEpoch, clamped_accuracy, train_gate};
use rbm::experiments::gates_analysis::{Cosines, bit_traces, svd_pca_cosines, truth_table};
use rbm::figures::plots::traces_svg;
use rbm::{Rbm, atomic::write_atomic};
use serde_json::json;

use crate::args::GatesArgs;
use crate::output::{Progress, print_json, put_path};

/// The most work the logic-gate experiment accepts: training of at most `MAX_WORK` unit-steps
/// (epochs × batches × batch × k × hidden), and clamped chains and bit traces of at most
/// `MAX_WORK` chain-steps, so that a mistyped count is a one-line error, not a run of days or
/// an allocation abort.
const MAX_WORK: u64 = 1 << 34;

/// [`Error::Config`] unless `work` (the product of `counts`) is at most [`MAX_WORK`].
fn check_work(what: &str, counts: &[u32]) -> rbm::Result<()> {
    let work = counts
        .iter()
        .try_fold(1u64, |w, &c| w.checked_mul(u64::from(c)));
    match work {
        Some(w) if w <= MAX_WORK => Ok(()),
        _ => Err(rbm::Error::config(
            what,
            format!("a product of at most 2^34 ({MAX_WORK})"),
            counts
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" × "),
        )),
    }
}

pub fn run(a: &GatesArgs) -> rbm::Result<()> {
    check_work(
        "--epochs × --batches × --batch × --k × --hidden",
        &[a.epochs, a.batches, a.batch, a.k, a.hidden],
    )?;
    check_work("--chains × --k", &[a.chains, a.k])?;
    check_work("--trace-chains × 2 --k", &[a.trace_chains, a.k, 2])?;
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
        outln!(
            "{} gate, {}–{} RBM, CD-{}, lr {}, {} epochs of {} batches of {}",
            cfg.function,
            3,
            cfg.hidden,
            cfg.k,
            cfg.lr,
            cfg.epochs,
            cfg.batches,
            cfg.batch
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
    let cosines = svd_pca_cosines(&model, &truth_table(cfg.function))?;
    if let Some(out) = &a.out {
        write_outputs(out, &model, &cfg, a.trace_chains as usize)?;
    }
    if a.json {
        let mut last = json!({
            "final": true, "function": cfg.function.name(), "k": cfg.k, "success": success,
            "clamped_accuracy": clamped, "W": model.weights(), "v_bias": model.v_bias(), "h_bias": model.h_bias(),
            "cosines": cosines.matrix, "singular_values": cosines.singular_values,
            "variances": cosines.variances, "out": null,
        });
        if let Some(out) = &a.out {
            put_path(&mut last, "out", out);
        }
        print_json(&last);
    } else {
        outln!("W (hidden × visible [x, y, f]):");
        for row in model.weights().chunks(3) {
            outln!("  {:>9.4} {:>9.4} {:>9.4}", row[0], row[1], row[2]);
        }
        outln!("v_bias: {:?}", model.v_bias());
        outln!("h_bias: {:?}", model.h_bias());
        outln!(
            "final success {success:.4}; clamped accuracy (x, y clamped, {} steps) {clamped:.4}",
            cfg.k
        );
        print_cosines(&cosines);
        if let Some(out) = &a.out {
            outln!(
                "wrote {} (model.safetensors, stability.svg, correction.svg)",
                out.display()
            );
        }
    }
    Ok(())
}

fn print_cosines(c: &Cosines) {
    outln!(
        "|cos| of the right singular vectors of W (rows, by singular value) and the principal components of the truth table (columns, by variance {}):",
        c.variances
            .iter()
            .map(|v| format!("{v:.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (sv, row) in c.singular_values.iter().zip(&c.matrix) {
        let cells: Vec<String> = row.iter().map(|x| format!("{x:>7.4}")).collect();
        outln!("  σ = {sv:>8.4}  {}", cells.join(" "));
    }
}

/// `model.safetensors`, `stability.svg` and `correction.svg` in `out`.
fn write_outputs(out: &Path, model: &Rbm, cfg: &GateConfig, chains: usize) -> rbm::Result<()> {
    fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let config = serde_json::to_string(cfg)
        .map_err(|e| Error::config("gate configuration", "values JSON can record", e))?;
    rbm::save_model(out.join("model.safetensors"), model, Some(&config))?;
    let name = cfg.function.name().to_uppercase();
    let y_desc = "p(third bit correct | h)";
    for (file, flip, what) in [
        (
            "stability.svg",
            false,
            "bit stability (start at correct rows)",
        ),
        ("correction.svg", true, "bit correction (third bit flipped)"),
    ] {
        let traces = bit_traces(model, cfg.function, 2 * cfg.k, chains, flip, cfg.seed)?;
        let title = format!("{name}, CD-{}: {what}, {chains} chains", cfg.k);
        let svg = traces_svg(&traces, cfg.k, &title, y_desc)?;
        write_atomic(&out.join(file), svg.as_bytes())?;
    }
    Ok(())
}
