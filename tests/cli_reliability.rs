//! The edges of a run (issue #17): what `rbm` writes, prints and resumes, tried as a hostile
//! user would. Each test names the class of docs/reliability.md it checks. The datasets are
//! small synthetic IDX folders (28 × 28 images), so that no test needs MNIST.

mod common;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{TempDir, assert_one_line_error, idx_bytes, labels, rbm_command};

/// Writes the four IDX files of a dataset of `train` and `test` `side × side` images into
/// `dir`; `salt` changes the pixels (same sizes and headers, other bytes).
fn dataset(dir: &Path, train: u32, test: u32, side: u32, salt: u8) {
    fs::create_dir_all(dir).unwrap();
    let pixels = |n: u32| -> Vec<u8> {
        let len = (n * side * side) as usize;
        let data: Vec<u8> = (0..len)
            .map(|k| ((k * 7 + usize::from(salt) * 13) % 256) as u8)
            .collect();
        idx_bytes(0x08, &[n, side, side], &data)
    };
    let label_bytes = |n: u32| labels(&(0..n).map(|i| (i % 10) as u8).collect::<Vec<_>>());
    fs::write(dir.join("train-images-idx3-ubyte"), pixels(train)).unwrap();
    fs::write(dir.join("train-labels-idx1-ubyte"), label_bytes(train)).unwrap();
    fs::write(dir.join("t10k-images-idx3-ubyte"), pixels(test)).unwrap();
    fs::write(dir.join("t10k-labels-idx1-ubyte"), label_bytes(test)).unwrap();
}

/// `rbm train` on `data` into `out`: 2 epochs of 4 batches of 8 rows, 16 hidden units,
/// unless `extra` (added after) sets them.
fn train_command(data: &OsStr, out: &OsStr, extra: &[&str]) -> Command {
    let mut cmd = rbm_command(&["train"]);
    cmd.arg("--data").arg(data).arg("--out").arg(out);
    for (flag, value) in [
        ("--hidden", "16"),
        ("--epochs", "2"),
        ("--batches-per-epoch", "4"),
        ("--batch", "8"),
        ("--sample-steps", "1,2"),
        ("--threads", "2"),
    ] {
        if !extra.contains(&flag) {
            cmd.args([flag, value]);
        }
    }
    cmd.args(extra);
    cmd
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("run rbm")
}

fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "status {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A failure that is a clean exit (no signal) with one line on stderr naming `needle`.
fn assert_clean_failure(out: &Output, needle: &str) {
    assert!(
        out.status.code().is_some(),
        "killed by a signal: {:?}",
        out.status
    );
    assert_one_line_error(out, needle);
}

fn read(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A stdout whose reader is gone: writing to it fails with a broken pipe.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    Stdio::from(writer)
}

/// A stdout on a full disk (`/dev/full`: every write fails with ENOSPC).
fn full_disk() -> Stdio {
    Stdio::from(
        fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full"),
    )
}

// Class 4: output streams never panic.
#[test]
fn a_closed_or_full_stdout_keeps_the_run_and_exits_non_zero() {
    let tmp = TempDir::new("rel-stdout");
    let data = tmp.path().join("data");
    dataset(&data, 64, 16, 28, 0);
    for (i, (json, stdout)) in [
        (false, closed_pipe()),
        (true, closed_pipe()),
        (false, full_disk()),
        (true, full_disk()),
    ]
    .into_iter()
    .enumerate()
    {
        let run = tmp.path().join(format!("run{i}"));
        let extra: &[&str] = if json { &["--json"] } else { &[] };
        let out = output(
            train_command(data.as_os_str(), run.as_os_str(), extra)
                .stdout(stdout)
                .stderr(Stdio::piped()),
        );
        assert_clean_failure(&out, "cannot write to stdout");
        // The run finished: every file is there and the model loads.
        rbm::load_model(run.join("model.safetensors")).unwrap();
        assert!(run.join("run.json").is_file(), "case {i}");
        assert!(run.join("samples.png").is_file(), "case {i}");
    }
    let model = tmp.path().join("run0/model.safetensors");
    for json in [false, true] {
        let png = tmp.path().join(format!("s{json}.png"));
        let mut cmd = rbm_command(&["sample", "--steps", "1,2"]);
        cmd.arg("--model").arg(&model).arg("--out").arg(&png);
        if json {
            cmd.arg("--json");
        }
        for stdout in [closed_pipe(), full_disk()] {
            let out = output(cmd.stdout(stdout).stderr(Stdio::piped()));
            assert_clean_failure(&out, "cannot write to stdout");
            assert!(png.is_file());
        }
    }
    for stdout in [closed_pipe(), full_disk()] {
        let out = output(
            rbm_command(&["gates", "--epochs", "2", "--batches", "10"])
                .stdout(stdout)
                .stderr(Stdio::piped()),
        );
        assert_clean_failure(&out, "cannot write to stdout");
    }
    // `eval`, which still prints with `println!`: the safety net in main turns the panic of
    // a failed print into the same one-line error.
    for json in [false, true] {
        let mut cmd = rbm_command(&[
            "eval",
            "--ais-runs",
            "2",
            "--ais-betas",
            "10",
            "--rows",
            "4",
            "--pll",
            "one",
        ]);
        cmd.arg("--model").arg(&model).arg("--data").arg(&data);
        if json {
            cmd.arg("--json");
        }
        let out = output(cmd.stdout(closed_pipe()).stderr(Stdio::piped()));
        assert_clean_failure(&out, "cannot write to stdout");
    }
}

/// A path with a byte that is not UTF-8 in its last component.
fn non_utf8(dir: &Path, name: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let mut bytes = name.as_bytes().to_vec();
    bytes.push(0xff);
    dir.join(OsString::from_vec(bytes))
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

// Class 5: any path works.
#[test]
fn paths_that_are_not_utf8_work_and_json_says_they_are_lossy() {
    let tmp = TempDir::new("rel-utf8");
    let data = non_utf8(tmp.path(), "data");
    dataset(&data, 64, 16, 28, 0);
    let run = non_utf8(tmp.path(), "run");
    for json in [false, true] {
        let extra: &[&str] = if json {
            &["--json", "--checkpoint-every", "3", "--force"]
        } else {
            &["--checkpoint-every", "3"]
        };
        let out = output(&mut train_command(data.as_os_str(), run.as_os_str(), extra));
        assert_success(&out);
        if json {
            let last = json_lines(&out).pop().unwrap();
            assert_eq!(last["model_lossy"], true, "{last}");
            assert!(last["model"].as_str().unwrap().contains('\u{fffd}'));
        }
    }
    // The checkpoint's run record keeps the data's path exactly: the resume finds the data.
    let mut cmd = rbm_command(&["train", "--json"]);
    cmd.arg("--resume").arg(&run);
    assert_success(&output(&mut cmd));
    let model = run.join("model.safetensors");
    let png = non_utf8(tmp.path(), "s.png");
    for json in [false, true] {
        let mut cmd = rbm_command(&["sample", "--steps", "1"]);
        cmd.arg("--model").arg(&model).arg("--out").arg(&png);
        if json {
            cmd.arg("--json");
        }
        let out = output(&mut cmd);
        assert_success(&out);
        if json {
            assert_eq!(json_lines(&out)[0]["out_lossy"], true);
        }
        // --init data with the model's recorded (lossy) data path: refused, not guessed.
        let mut cmd = rbm_command(&["sample", "--steps", "1", "--init", "data"]);
        cmd.arg("--model").arg(&model).arg("--out").arg(&png);
        assert_clean_failure(&output(&mut cmd), "--init data");
    }
    let mut cmd = rbm_command(&["gates", "--epochs", "1", "--batches", "5", "--json"]);
    cmd.arg("--out").arg(non_utf8(tmp.path(), "gates"));
    let out = output(&mut cmd);
    assert_success(&out);
    assert_eq!(json_lines(&out).pop().unwrap()["out_lossy"], true);
    // A missing non-UTF-8 model or data folder: a one-line error, no panic.
    let mut cmd = rbm_command(&["sample"]);
    cmd.arg("--model")
        .arg(non_utf8(tmp.path(), "nothing"))
        .arg("--out")
        .arg(&png);
    assert_clean_failure(&output(&mut cmd), "nothing");
}

// Class 1: a run never destroys another run.
#[test]
fn a_folder_holding_a_run_is_refused_unless_forced_or_resumed() {
    let tmp = TempDir::new("rel-refuse");
    let data = tmp.path().join("data");
    dataset(&data, 64, 16, 28, 0);
    let run = tmp.path().join("run");
    assert_success(&output(&mut train_command(
        data.as_os_str(),
        run.as_os_str(),
        &["--checkpoint-every", "3"],
    )));
    let model = read(&run.join("model.safetensors"));
    let checkpoint = read(&run.join("checkpoint.safetensors"));
    // A second run, with another seed, into the same folder.
    let out = output(&mut train_command(
        data.as_os_str(),
        run.as_os_str(),
        &["--seed", "5"],
    ));
    assert_clean_failure(&out, "--out");
    assert_one_line_error(&out, "model.safetensors");
    assert!(
        read(&run.join("model.safetensors")) == model,
        "the bytes changed"
    );
    assert!(
        read(&run.join("checkpoint.safetensors")) == checkpoint,
        "the bytes changed"
    );
    // A folder holding only a checkpoint (a killed run) is a run too.
    let killed = tmp.path().join("killed");
    fs::create_dir(&killed).unwrap();
    fs::copy(
        run.join("checkpoint.safetensors"),
        killed.join("checkpoint.safetensors"),
    )
    .unwrap();
    let out = output(&mut train_command(
        data.as_os_str(),
        killed.as_os_str(),
        &[],
    ));
    assert_clean_failure(&out, "checkpoint.safetensors");
    // --force replaces the whole run: the old checkpoint does not survive to be resumed.
    assert_success(&output(&mut train_command(
        data.as_os_str(),
        run.as_os_str(),
        &["--seed", "5", "--force"],
    )));
    assert!(read(&run.join("model.safetensors")) != model);
    assert!(!run.join("checkpoint.safetensors").exists());
    let mut cmd = rbm_command(&["train"]);
    cmd.arg("--resume").arg(&run);
    assert_clean_failure(&output(&mut cmd), "checkpoint.safetensors");
    // A folder with other files in it (no run) is fine.
    let other = tmp.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("notes.txt"), b"mine").unwrap();
    assert_success(&output(&mut train_command(
        data.as_os_str(),
        other.as_os_str(),
        &[],
    )));
    assert_eq!(read(&other.join("notes.txt")), b"mine");
}

/// Waits until `path` exists (the run holds its lock), or panics after 20 s.
fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "no {path:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

// Class 1: two processes at once on one folder.
#[test]
fn two_runs_at_once_on_one_folder_one_is_refused_and_a_crash_leaves_no_stale_lock() {
    let tmp = TempDir::new("rel-lock");
    let data = tmp.path().join("data");
    dataset(&data, 64, 16, 28, 0);
    let run = tmp.path().join("run");
    // A run long enough to overlap: many epochs and a long samples chain, all under the lock.
    let long = [
        "--epochs",
        "400",
        "--sample-steps",
        "1,20000",
        "--checkpoint-every",
        "50",
    ];
    let mut first = train_command(data.as_os_str(), run.as_os_str(), &long)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&run.join(".rbm-lock"));
    // A second new run, a forced one and a resume, all while the first holds the folder.
    let second = output(&mut train_command(data.as_os_str(), run.as_os_str(), &[]));
    let forced = output(&mut train_command(
        data.as_os_str(),
        run.as_os_str(),
        &["--force"],
    ));
    let mut cmd = rbm_command(&["train"]);
    cmd.arg("--resume").arg(&run);
    let resumed = output(&mut cmd);
    let still_running = first.try_wait().unwrap().is_none();
    let first = first.wait_with_output().unwrap();
    assert_success(&first);
    assert!(still_running, "the first run ended before the others tried");
    for out in [&second, &forced, &resumed] {
        assert_clean_failure(out, "another rbm process");
    }
    // The folder holds the first run only, whole.
    rbm::load_model(run.join("model.safetensors")).unwrap();
    // Both at once, started together: exactly one trains.
    let both = tmp.path().join("both");
    let children: Vec<_> = (0..2)
        .map(|seed| {
            train_command(data.as_os_str(), both.as_os_str(), &[])
                .args(["--seed", &seed.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let ok = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "{outs:?}");
    for o in outs.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("another rbm process") || err.contains("holding"),
            "{err}"
        );
        assert_clean_failure(o, "both");
    }
    // A run killed while it holds the lock leaves no stale lock: the next run goes ahead.
    let crashed = tmp.path().join("crashed");
    let mut child = train_command(data.as_os_str(), crashed.as_os_str(), &long)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&crashed.join("checkpoint.safetensors"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_success(&output(&mut train_command(
        data.as_os_str(),
        crashed.as_os_str(),
        &["--force"],
    )));
}

// Class 11: nothing is created before the arguments are known to be good.
#[test]
fn rejected_configurations_create_no_run_folder() {
    let tmp = TempDir::new("rel-validate");
    let data = tmp.path().join("data");
    dataset(&data, 64, 16, 28, 0);
    let small = tmp.path().join("small");
    dataset(&small, 64, 16, 16, 0);
    let other_test = tmp.path().join("other-test");
    dataset(&other_test, 64, 16, 28, 0);
    fs::write(
        other_test.join("t10k-images-idx3-ubyte"),
        common::images(16, 20, 20),
    )
    .unwrap();
    let run = tmp.path().join("run");
    for (dir, flags, needle) in [
        (&data, &["--batch", "100"][..], "schedule"),
        (
            &data,
            &["--batch", "8", "--batches-per-epoch", "9"][..],
            "batches per epoch",
        ),
        (
            &data,
            &["--batch", "8", "--eval-every", "1"][..],
            "test rows",
        ),
        (
            &other_test,
            &["--batch", "8", "--eval-every", "1"][..],
            "test rows",
        ),
        (&small, &["--batch", "8"][..], "patch"),
        (
            &data,
            &["--batch", "8", "--sample-steps", "1,100000000"][..],
            "--sample-steps",
        ),
    ] {
        let mut cmd = rbm_command(&["train", "--epochs", "1"]);
        cmd.arg("--data")
            .arg(dir)
            .arg("--out")
            .arg(&run)
            .args(flags);
        let out = output(&mut cmd);
        if dir == &data && flags.contains(&"--eval-every") {
            // The same data: a good configuration (checked to contrast with the next case).
            assert_success(&out);
            fs::remove_dir_all(&run).unwrap();
            continue;
        }
        assert_clean_failure(&out, needle);
        assert!(!run.exists(), "{flags:?} on {dir:?} made the run folder");
    }
}

// Class 3: only regular files are written, and errors name the file asked for.
#[test]
fn writes_refuse_special_files_and_name_the_target() {
    let tmp = TempDir::new("rel-targets");
    let data = tmp.path().join("data");
    dataset(&data, 64, 16, 28, 0);
    let run = tmp.path().join("run");
    assert_success(&output(&mut train_command(
        data.as_os_str(),
        run.as_os_str(),
        &[],
    )));
    let model = run.join("model.safetensors");
    let sample = |target: &Path| {
        let mut cmd = rbm_command(&["sample", "--steps", "1"]);
        cmd.arg("--model").arg(&model).arg("--out").arg(target);
        output(&mut cmd)
    };
    // A FIFO: refused (and still a FIFO).
    let fifo = tmp.path().join("fifo.png");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    assert_clean_failure(&sample(&fifo), "fifo.png");
    use std::os::unix::fs::FileTypeExt;
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    // A device node.
    assert_clean_failure(&sample(Path::new("/dev/null")), "/dev/null");
    // A symbolic link: refused, the link and its target untouched.
    let target = tmp.path().join("target.png");
    fs::write(&target, b"keep").unwrap();
    let link = tmp.path().join("link.png");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert_clean_failure(&sample(&link), "link.png");
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(read(&target), b"keep");
    // A folder.
    assert_clean_failure(&sample(tmp.path()), "a folder");
    // A missing parent folder: the error names the target, not a temporary name.
    let missing = tmp.path().join("missing/x.png");
    let out = sample(&missing);
    assert_clean_failure(&out, "missing/x.png");
    assert!(!String::from_utf8_lossy(&out.stderr).contains(".tmp-"));
    // Temporary files of killed writes of any run file are removed by the next run there.
    let stale = [
        ".model.safetensors.tmp-1-0",
        ".checkpoint.safetensors.tmp-2-3",
        ".samples.png.tmp-4-5",
        ".run.json.tmp-6-7",
    ];
    for name in stale {
        fs::write(run.join(name), b"half").unwrap();
    }
    fs::write(run.join(".notes.tmp-1-0"), b"not ours").unwrap();
    assert_success(&output(&mut train_command(
        data.as_os_str(),
        run.as_os_str(),
        &["--force"],
    )));
    for name in stale {
        assert!(!run.join(name).exists(), "{name} left");
    }
    assert!(run.join(".notes.tmp-1-0").exists());
}

// Class 2: a resumed run continues the same run.
#[test]
fn resume_finds_the_data_by_absolute_path_and_refuses_other_data() {
    let tmp = TempDir::new("rel-resume-data");
    let data = tmp.path().join("data");
    dataset(&data, 64, 16, 28, 0);
    let other = tmp.path().join("other");
    dataset(&other, 64, 16, 28, 1);
    let copy = tmp.path().join("copy");
    dataset(&copy, 64, 16, 28, 0);
    let run = tmp.path().join("run");
    let checkpointed = |dir: &Path| -> Vec<u8> {
        // Started from `tmp` with a relative --data: the record must not keep it relative.
        let mut cmd = train_command(
            OsStr::new("data"),
            run.as_os_str(),
            &["--checkpoint-every", "3", "--force"],
        );
        cmd.current_dir(dir);
        assert_success(&output(&mut cmd));
        read(&run.join("checkpoint.safetensors"))
    };
    let checkpoint = checkpointed(tmp.path());
    let resume = |extra: &[&OsStr]| {
        fs::write(run.join("checkpoint.safetensors"), &checkpoint).unwrap();
        let mut cmd = rbm_command(&["train"]);
        cmd.arg("--resume").arg(&run).args(extra);
        // From another folder than the one the run started in.
        cmd.current_dir(&other);
        output(&mut cmd)
    };
    // The model's tensors (its metadata names the data folder, which differs below).
    let weights = || {
        let m = rbm::load_model(run.join("model.safetensors"))
            .unwrap()
            .model;
        (
            m.weights().to_vec(),
            m.v_bias().to_vec(),
            m.h_bias().to_vec(),
        )
    };
    assert_success(&resume(&[]));
    let model = weights();
    // Other bytes of the same shape: refused, naming the data.
    let out = resume(&[OsStr::new("--data"), other.as_os_str()]);
    assert_clean_failure(&out, "--resume");
    assert_one_line_error(&out, "train-images-idx3-ubyte");
    assert!(weights() == model, "the model changed");
    // The same bytes elsewhere: the data moved, fine, and the run ends the same.
    assert_success(&resume(&[OsStr::new("--data"), copy.as_os_str()]));
    assert!(weights() == model, "the model changed");
    // Other bytes, with the user's word that they hold the run's data.
    assert_success(&resume(&[
        OsStr::new("--data"),
        other.as_os_str(),
        OsStr::new("--data-moved"),
    ]));
}

/// A file of `len` bytes (sparse: no disk, no time) that starts with `head`.
fn sparse(path: &Path, head: &[u8], len: u64) {
    let f = fs::File::create(path).unwrap();
    std::io::Write::write_all(&mut &f, head).unwrap();
    f.set_len(len).unwrap();
}

/// A safetensors prefix and header of one F32 tensor of `n` values, padded to 8 bytes.
fn header_bytes(n: u64, padding: usize) -> Vec<u8> {
    let json = format!(
        "{{\"W\":{{\"dtype\":\"F32\",\"shape\":[1,{n}],\"data_offsets\":[0,{}]}}}}{}",
        4 * n,
        " ".repeat(padding)
    );
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(json.as_bytes());
    out
}

// Class 7: files are validated before they are read whole.
#[test]
fn bogus_multi_gigabyte_model_files_and_checkpoints_are_refused_before_reading() {
    let tmp = TempDir::new("rel-bogus");
    let big: u64 = 6 << 30;
    let cases: [(&str, Vec<u8>, u64, &str); 4] = [
        // A plausible header describing 16 bytes of tensors, in a 6 GiB file.
        ("plausible", header_bytes(4, 0), big, "header describes"),
        // A header of 100 MB (safetensors accepts it; this crate caps at 1 MiB).
        (
            "huge-header",
            (100_000_000u64).to_le_bytes().to_vec(),
            big,
            "over the limit of 1048576",
        ),
        // A header length past the end of the file.
        (
            "past-end",
            1000u64.to_le_bytes().to_vec(),
            100,
            "past the end",
        ),
        // Zeros: an empty header, not JSON.
        ("zeros", Vec::new(), big, "model.safetensors"),
    ];
    for (name, head, len, needle) in cases {
        let dir = tmp.path().join(name);
        fs::create_dir(&dir).unwrap();
        let model = dir.join("model.safetensors");
        sparse(&model, &head, len);
        let start = Instant::now();
        let mut cmd = rbm_command(&["sample", "--steps", "1"]);
        cmd.arg("--model")
            .arg(&model)
            .arg("--out")
            .arg(dir.join("s.png"));
        let out = output(&mut cmd);
        assert_clean_failure(&out, needle);
        assert_one_line_error(&out, "model.safetensors");
        fs::rename(&model, dir.join("checkpoint.safetensors")).unwrap();
        let mut cmd = rbm_command(&["train"]);
        cmd.arg("--resume").arg(&dir);
        let out = output(&mut cmd);
        assert_clean_failure(&out, needle.replace("model", "checkpoint").as_str());
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{name}: {:?}",
            start.elapsed()
        );
    }
    // The library refuses the same header in memory.
    let mut bytes = (2u64 << 20).to_le_bytes().to_vec();
    bytes.resize(8 + (2 << 20), b' ');
    let err = rbm::model_file::parse_model(&bytes).unwrap_err();
    assert!(err.to_string().contains("over the limit"), "{err}");
}

// Class 6: sizes and counts from flags are fallible or refused with their limit named.
#[test]
fn absurd_sizes_and_counts_are_one_line_errors() {
    let tmp = TempDir::new("rel-sizes");
    let data = tmp.path().join("data");
    dataset(&data, 64, 16, 28, 0);
    let run = tmp.path().join("run");
    assert_success(&output(&mut train_command(
        data.as_os_str(),
        run.as_os_str(),
        &[],
    )));
    for seconds in ["inf", "nan", "1e300", "-1"] {
        for what in ["train", "sample"] {
            let arg = format!("--seconds={seconds}");
            let out = common::rbm(&["bench", what, &arg]);
            assert_clean_failure(&out, "--seconds");
        }
    }
    let mut cmd = rbm_command(&["sample", "--steps", "1,18446744073709551615"]);
    cmd.arg("--model")
        .arg(run.join("model.safetensors"))
        .arg("--out")
        .arg(tmp.path().join("s.png"));
    assert_clean_failure(&output(&mut cmd), "--steps");
    // A model whose weights fit in memory but not with their transpose: refused where it is
    // made, before the run folder exists (under a 1.5 GB address-space limit).
    let exe = env!("CARGO_BIN_EXE_rbm");
    let big = tmp.path().join("big");
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v 1500000 && exec "$0" "$@""#)
        .arg(exe)
        .args([
            "train", "--hidden", "300000", "--epochs", "1", "--batch", "8",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&big)
        .output()
        .unwrap();
    assert_clean_failure(&out, "fits in memory");
    assert!(!big.exists());
}

// Class 9: no silent infinities. An absurd but finite learning rate stops training when a
// parameter leaves the safe range (no model written); a model file whose values are finite
// but absurd cannot be scored, and says so.
#[test]
fn parameters_beyond_the_safe_range_stop_training_and_evaluation() {
    let tmp = TempDir::new("safe-range");
    let data = tmp.path().join("data");
    dataset(&data, 64, 16, 28, 0);
    for lr in ["1e30", "1e6"] {
        let out_dir = tmp.path().join(format!("run-{lr}"));
        let out = output(&mut train_command(
            data.as_os_str(),
            out_dir.as_os_str(),
            &["--lr", lr],
        ));
        assert_clean_failure(&out, "diverged");
        assert!(!out_dir.join("model.safetensors").exists(), "lr {lr}");
    }
    // A model whose weights are finite but huge: its free energies overflow.
    let model =
        rbm::Rbm::from_parts(784, 4, vec![3e38; 784 * 4], vec![0.0; 784], vec![0.0; 4]).unwrap();
    let path = tmp.path().join("huge.safetensors");
    rbm::save_model(&path, &model, None).unwrap();
    let out = output(
        rbm_command(&["eval", "--ais-runs", "4", "--ais-betas", "100"])
            .arg("--model")
            .arg(&path)
            .arg("--data")
            .arg(&data),
    );
    assert_clean_failure(&out, "model parameters");
}

// Class 6: the logic-gate experiment's counts are bounded (work, not only each flag).
#[test]
fn gate_runs_of_absurd_size_are_one_line_errors() {
    for args in [
        &["gates", "--epochs", "4000000000", "--batches", "4000000000"][..],
        &["gates", "--batch", "4000000", "--hidden", "100000"],
        &["gates", "--chains", "4000000000", "--k", "1000"],
        &["gates", "--trace-chains", "4000000000", "--k", "100"],
    ] {
        let started = Instant::now();
        let out = output(&mut rbm_command(args));
        assert_clean_failure(&out, "a product of at most 2^34");
        assert!(started.elapsed() < Duration::from_secs(5), "{args:?}");
    }
}

// Class 8: data that change under a run. Raw IDX files are read into memory when opened
// (docs/reliability.md), so truncating them mid-run cannot raise SIGBUS: the run finishes on
// the data it read.
#[test]
fn a_dataset_truncated_during_training_does_not_kill_the_run() {
    let tmp = TempDir::new("rel-truncate");
    let data = tmp.path().join("data");
    dataset(&data, 256, 16, 28, 0);
    let run = tmp.path().join("run");
    let child = train_command(
        data.as_os_str(),
        run.as_os_str(),
        &["--epochs", "1000", "--batches-per-epoch", "32"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut child = child;
    // The lock appears once the data are open and the folder claimed: training has begun.
    wait_for(&run.join(".rbm-lock"));
    let images = data.join("train-images-idx3-ubyte");
    fs::OpenOptions::new()
        .write(true)
        .open(&images)
        .unwrap()
        .set_len(100)
        .unwrap();
    let still_running = child.try_wait().unwrap().is_none();
    let out = child.wait_with_output().unwrap();
    assert_success(&out);
    assert!(
        still_running,
        "the run ended before its data were truncated"
    );
    assert!(run.join("model.safetensors").is_file());
    // A new run on the truncated file is refused with a one-line error naming it.
    let again = output(&mut train_command(
        data.as_os_str(),
        tmp.path().join("run2").as_os_str(),
        &[],
    ));
    assert_clean_failure(&again, "train-images-idx3-ubyte");
    assert!(!tmp.path().join("run2").exists());
}
