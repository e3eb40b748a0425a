//! The `rbm` binary end to end: JSON lines, run folders, one-line errors with non-zero exits.

mod common;

use std::process::Output;

use common::{TempDir, assert_one_line_error, rbm};

fn stdout_json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn gates_json_has_epochs_and_a_final_object() {
    let out = rbm(&[
        "gates",
        "--epochs",
        "3",
        "--batches",
        "200",
        "--json",
        "--seed",
        "4",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = stdout_json_lines(&out);
    assert_eq!(lines.len(), 4);
    for (i, l) in lines[..3].iter().enumerate() {
        assert_eq!(l["epoch"], i + 1);
        assert!(l["loss"].is_f64() && l["success"].as_f64().unwrap() <= 1.0);
    }
    let last = &lines[3];
    assert_eq!(last["final"], true);
    assert!(last["success"].is_f64() && last["clamped_accuracy"].is_f64());
    assert_eq!(last["W"].as_array().unwrap().len(), 9);
    // Same seed, same output.
    assert_eq!(
        out.stdout,
        rbm(&[
            "gates",
            "--epochs",
            "3",
            "--batches",
            "200",
            "--json",
            "--seed",
            "4"
        ])
        .stdout
    );
}

#[test]
fn train_writes_a_loadable_model_and_metrics() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let dir = TempDir::new("cli-train");
    let out_dir = dir.path().join("run");
    let mnist = data.join("mnist");
    let out = rbm(&[
        "train",
        "--data",
        mnist.to_str().unwrap(),
        "--hidden",
        "16",
        "--epochs",
        "2",
        "--batches-per-epoch",
        "5",
        "--batch",
        "20",
        "--out",
        out_dir.to_str().unwrap(),
        "--json",
        "--threads",
        "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = stdout_json_lines(&out);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["final"], true);
    let file = rbm::load_model(&out_dir.join("model.safetensors")).unwrap();
    assert_eq!((file.model.n_visible(), file.model.n_hidden()), (784, 16));
    let config: serde_json::Value = serde_json::from_str(file.config().unwrap()).unwrap();
    assert_eq!(config["plan"]["train"]["batch_size"], 20);
    let csv = std::fs::read_to_string(out_dir.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.starts_with("epoch,loss,recon_error,seconds\n"));
}

#[test]
fn bad_files_and_arguments_give_one_line_errors() {
    let dir = TempDir::new("cli-errors");
    let missing = dir.path().join("nowhere");
    let out = rbm(&[
        "train",
        "--data",
        missing.to_str().unwrap(),
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_one_line_error(&out, "nowhere");
    // A folder whose image file is garbage.
    dir.write("train-images-idx3-ubyte", b"not an idx file");
    dir.write("train-labels-idx1-ubyte", &[0, 0, 8, 1, 0, 0, 0, 0]);
    let out = rbm(&[
        "train",
        "--data",
        dir.path().to_str().unwrap(),
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_one_line_error(&out, "train-images-idx3-ubyte");
    let out = rbm(&[
        "train",
        "--dataset",
        "mnist",
        "--out",
        dir.path().join("o").to_str().unwrap(),
        "--lr=-1",
    ]);
    assert_one_line_error(&out, "learning rate");
    let out = rbm(&["gates", "--function", "implies"]);
    assert!(!out.status.success());
    let out = rbm(&["gates", "--lr", "nan"]);
    assert_one_line_error(&out, "learning rate");
}
