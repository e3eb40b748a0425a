//! `rbm train --checkpoint-every` and `--resume` end to end: a run killed (SIGKILL) at any
//! moment keeps a loadable checkpoint, and resumed it ends with the same bytes as a run never
//! interrupted; divergence stops training without writing a model and leaves the last
//! checkpoint intact.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{TempDir, assert_one_line_error, rbm, rbm_command};
use rbm::checkpoint::load_checkpoint;

/// A small PCD run with momentum: 8 epochs of 30 batches of 16 rows, 32 hidden units.
fn run_args<'a>(data: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--data",
        data,
        "--out",
        out,
        "--hidden",
        "32",
        "--epochs",
        "8",
        "--batches-per-epoch",
        "30",
        "--batch",
        "16",
        "--k",
        "2",
        "--pcd",
        "--momentum",
        "0.5",
        "--weight-decay",
        "0.0001",
        "--seed",
        "9",
        "--sample-steps",
        "1,2",
        "--json",
    ]
}

fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn killed_runs_keep_a_loadable_checkpoint_and_resume_to_identical_bytes() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let mnist = data.join("mnist");
    let mnist = mnist.to_str().unwrap();
    let tmp = TempDir::new("cli-ckpt");
    let whole = tmp.path().join("whole");
    let out = rbm(&run_args(mnist, whole.to_str().unwrap()));
    assert_success(&out);
    let want = read(&whole.join("model.safetensors"));

    // Checkpoints at every step, so that most moments of the run are inside a write; killed
    // after a different delay each time, then resumed from wherever it got to.
    let run = tmp.path().join("killed");
    let run_s = run.to_str().unwrap();
    let checkpoint = run.join("checkpoint.safetensors");
    let mut kills = 0;
    let mut last_steps = 0;
    for (round, delay_ms) in [7u64, 23, 41, 3].into_iter().enumerate() {
        let mut args = if round == 0 {
            run_args(mnist, run_s)
        } else {
            vec!["train", "--resume", run_s, "--json"]
        };
        args.extend(["--checkpoint-every", "1"]);
        let mut child = rbm_command(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the first checkpoint of this round, then a little more.
        let start = Instant::now();
        while !checkpoint.exists() && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        let torn = std::fs::read_dir(&run)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp-")
            })
            .count();
        println!(
            "round {round}: killed after {delay_ms} ms; {torn} half-written checkpoint(s) left"
        );
        let c = load_checkpoint(&checkpoint).expect("the checkpoint left by a killed run loads");
        assert!(c.state.steps >= last_steps, "checkpoints only move forward");
        last_steps = c.state.steps;
    }
    assert!(kills >= 2, "the runs finished before they could be killed");
    assert!(
        last_steps < 240,
        "a checkpoint is never written at the last step"
    );
    let out = rbm(&["train", "--resume", run_s, "--json"]);
    assert_success(&out);
    assert_eq!(
        read(&run.join("model.safetensors")),
        want,
        "resumed model differs"
    );
    assert_eq!(
        read(&run.join("metrics.csv"))
            .split(|&b| b == b'\n')
            .map(|l| l.split(|&b| b == b',').take(3).collect::<Vec<_>>())
            .collect::<Vec<_>>(),
        read(&whole.join("metrics.csv"))
            .split(|&b| b == b'\n')
            .map(|l| l.split(|&b| b == b',').take(3).collect::<Vec<_>>())
            .collect::<Vec<_>>(),
        "epoch, loss and reconstruction error of every epoch agree"
    );
    // No temporary file is left behind.
    for entry in std::fs::read_dir(&run).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(
            !name.to_string_lossy().contains(".tmp-"),
            "{name:?} left behind"
        );
    }
}

/// The temporary files of checkpoint writes in `dir`.
fn half_written(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(".checkpoint.safetensors.tmp-")
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_kill_in_the_middle_of_a_checkpoint_write_leaves_the_previous_one_whole() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let mnist = data.join("mnist");
    let tmp = TempDir::new("cli-ckpt-torn");
    // A 784–20000 model: each checkpoint is 63 MB, so its write takes long enough to be
    // caught in the act (its temporary file seen) and killed there.
    for attempt in 0..5 {
        let run = tmp.path().join(format!("run{attempt}"));
        let mut child = rbm_command(&[
            "train",
            "--data",
            mnist.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--hidden",
            "20000",
            "--k",
            "1",
            "--batch",
            "8",
            "--epochs",
            "1",
            "--batches-per-epoch",
            "6",
            "--checkpoint-every",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let checkpoint = run.join("checkpoint.safetensors");
        let start = Instant::now();
        // The first checkpoint complete, then the second one being written.
        let writing_second = || checkpoint.exists() && !half_written(&run).is_empty();
        while !writing_second()
            && start.elapsed() < Duration::from_secs(120)
            && child.try_wait().unwrap().is_none()
        {
            std::thread::sleep(Duration::from_micros(200));
        }
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        if half_written(&run).is_empty() {
            println!("attempt {attempt}: the write finished before the kill; again");
            continue;
        }
        let c = load_checkpoint(&checkpoint).expect("the previous checkpoint loads");
        assert!(c.state.steps >= 1);
        assert_eq!(c.model.n_hidden(), 20000);
        println!(
            "attempt {attempt}: killed mid-write; checkpoint of step {} intact",
            c.state.steps
        );
        return;
    }
    panic!("no kill landed in the middle of a checkpoint write in 5 attempts");
}

#[test]
fn divergence_stops_training_keeps_the_checkpoint_and_writes_no_model() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let mnist = data.join("mnist");
    let tmp = TempDir::new("cli-diverge");
    let run = tmp.path().join("run");
    // lr 1000 with weight decay 10: the first step leaves the weights within ±1e4 (at most
    // about 1.3e3), the second multiplies them by about −1e4, out of the safe range.
    let out = rbm(&[
        "train",
        "--data",
        mnist.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--hidden",
        "16",
        "--epochs",
        "2",
        "--batches-per-epoch",
        "5",
        "--batch",
        "8",
        "--lr",
        "1000",
        "--weight-decay",
        "10",
        "--checkpoint-every",
        "1",
    ]);
    assert_one_line_error(&out, "training diverged in epoch 1 at batch 2");
    assert_one_line_error(&out, "weight");
    assert!(
        !run.join("model.safetensors").exists(),
        "a diverged model was written"
    );
    let c = load_checkpoint(&run.join("checkpoint.safetensors")).unwrap();
    assert_eq!(
        c.state.steps, 1,
        "the last good checkpoint is the step before"
    );
    assert_eq!(c.model.first_non_finite(), None);
}

#[test]
fn resume_refuses_new_settings_and_reports_bad_checkpoints() {
    let tmp = TempDir::new("cli-resume-bad");
    let run = tmp.path().to_str().unwrap();
    let out = rbm(&["train", "--resume", run, "--lr", "0.5"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
    let out = rbm(&["train", "--resume", run]);
    assert_one_line_error(&out, "checkpoint.safetensors");
    tmp.write("checkpoint.safetensors", b"\x08\0\0\0\0\0\0\0{}      ");
    let out = rbm(&["train", "--resume", run]);
    assert_one_line_error(&out, "checkpoint.safetensors: ");
}
