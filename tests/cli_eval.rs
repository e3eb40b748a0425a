//! `rbm eval` and `rbm train --eval-every` end to end: the JSON object on the last line of
//! stdout, the metrics.csv columns, and one-line errors.

mod common;

use std::process::{Command, Output};

use common::TempDir;

fn rbm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rbm"))
        .args(args)
        .env_remove("RBM_DATA")
        .output()
        .expect("run rbm")
}

fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The last line of stdout, parsed.
fn last_json(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().expect("a line of output");
    serde_json::from_str(line).expect("a JSON line")
}

fn assert_one_line_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit status {:?}", out.status);
    assert_eq!(err.trim_end().lines().count(), 1, "stderr: {err}");
    assert!(
        err.contains(needle),
        "stderr {err:?} does not name {needle:?}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// Trains a small 784–12 model on MNIST in `dir/run` with `extra` flags; returns the run folder.
fn train_small(dir: &TempDir, mnist: &str, extra: &[&str]) -> std::path::PathBuf {
    let run = dir.path().join("run");
    let mut args = vec![
        "train",
        "--data",
        mnist,
        "--hidden",
        "12",
        "--k",
        "1",
        "--lr",
        "0.05",
        "--epochs",
        "2",
        "--batches-per-epoch",
        "40",
        "--marginal-bias",
        "--out",
        run.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = rbm(&args);
    assert_success(&out);
    run
}

#[test]
fn eval_json_has_the_estimates_and_bounds() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let mnist = data.join("mnist");
    let dir = TempDir::new("cli-eval");
    let run = train_small(&dir, mnist.to_str().unwrap(), &[]);
    let model = run.join("model.safetensors");
    let args = [
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        mnist.to_str().unwrap(),
        "--rows",
        "300",
        "--ais-runs",
        "16",
        "--ais-betas",
        "300",
        "--reverse",
        "--reverse-rows",
        "8",
        "--exact",
        "--json",
        "--seed",
        "3",
    ];
    let out = rbm(&args);
    assert_success(&out);
    let j = last_json(&out);
    eprintln!("{j}");
    for key in [
        "log_z",
        "log_z_hi",
        "test_ll",
        "test_ll_lo",
        "pseudo_ll",
        "recon_error",
        "reverse_test_ll",
        "exact_log_z",
        "exact_test_ll",
        "seconds",
    ] {
        assert!(j[key].is_f64(), "{key} in {j}");
    }
    // log_z_lo is a number or null (−∞).
    assert!(j["log_z_lo"].is_f64() || j["log_z_lo"].is_null());
    assert_eq!(j["binarize"], "stochastic");
    assert_eq!(j["rows"], 300);
    assert_eq!(j["ais_temperatures"], 300);
    let (z, exact) = (
        j["log_z"].as_f64().unwrap(),
        j["exact_log_z"].as_f64().unwrap(),
    );
    assert!((z - exact).abs() < 1.0, "AIS {z} vs exact {exact}");
    let ll = j["test_ll"].as_f64().unwrap();
    assert!((-400.0..-50.0).contains(&ll), "test LL {ll}");
    assert!(j["pseudo_ll"].as_f64().unwrap() < 0.0);
    // The same seed gives the same estimates, whatever the threads.
    let mut args1 = args.to_vec();
    args1.extend_from_slice(&["--threads", "1"]);
    let again = last_json(&rbm(&args1));
    for key in [
        "log_z",
        "test_ll",
        "reverse_test_ll",
        "pseudo_ll",
        "recon_error",
    ] {
        assert_eq!(j[key], again[key], "{key}");
    }
    // Threshold binarization is said, and changes the rows.
    let out = rbm(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        mnist.to_str().unwrap(),
        "--rows",
        "100",
        "--ais-runs",
        "4",
        "--ais-betas",
        "30",
        "--binarize",
        "threshold",
        "--pll",
        "one",
    ]);
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("threshold binarization"), "{text}");
    assert!(text.contains("one-flip"), "{text}");
}

#[test]
fn train_eval_every_logs_ais_in_metrics() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let mnist = data.join("mnist");
    let dir = TempDir::new("cli-train-eval");
    let run = train_small(&dir, mnist.to_str().unwrap(), &["--eval-every", "2"]);
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "epoch,loss,recon_error,seconds,ais_log_z,ais_log_z_lo,ais_log_z_hi,ais_test_ll,eval_seconds"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    // Epoch 1 is not evaluated, epoch 2 is.
    assert!(lines[1].ends_with(",,,,,"), "{csv}");
    let fields: Vec<&str> = lines[2].split(',').collect();
    let ll: f64 = fields[7].parse().unwrap();
    assert!((-400.0..-50.0).contains(&ll), "{csv}");
}

#[test]
fn eval_errors_are_one_line() {
    let dir = TempDir::new("cli-eval-errors");
    let missing = dir.path().join("nowhere.safetensors");
    let out = rbm(&["eval", "--model", missing.to_str().unwrap(), "--data", "."]);
    assert_one_line_error(&out, "nowhere.safetensors");
    let Some(data) = common::data_dir() else {
        return;
    };
    let mnist = data.join("mnist");
    // A model whose visible layer does not fit the rows.
    let small = dir.path().join("small.safetensors");
    rbm::save_model(&small, &rbm::Rbm::new(10, 4, 0).unwrap(), None).unwrap();
    let out = rbm(&[
        "eval",
        "--model",
        small.to_str().unwrap(),
        "--data",
        mnist.to_str().unwrap(),
    ]);
    assert_one_line_error(&out, "10 visible units");
    // --exact on a model with no small layer fails before any sampling.
    let big = dir.path().join("big.safetensors");
    rbm::save_model(&big, &rbm::Rbm::new(784, 30, 0).unwrap(), None).unwrap();
    let out = rbm(&[
        "eval",
        "--model",
        big.to_str().unwrap(),
        "--data",
        mnist.to_str().unwrap(),
        "--exact",
    ]);
    assert_one_line_error(&out, "at most 25 units");
    let out = rbm(&[
        "eval",
        "--model",
        big.to_str().unwrap(),
        "--data",
        mnist.to_str().unwrap(),
        "--ais-betas",
        "2",
    ]);
    assert!(!out.status.success());
}
