//! The `rbm` binary on hostile files: each run prints exactly one line on stderr, naming the
//! file at fault, and exits non-zero (no panic, no abort, no huge allocation).
//!
//! The dataset folders come from `tests/hostile/dataset/` (see `tests/hostile.rs`); cases that
//! need a folder or a link where a file is expected are built in a temporary folder.

mod common;

use std::path::{Path, PathBuf};

use common::{TempDir, assert_one_line_error, idx_bytes, rbm};

fn hostile(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/hostile/dataset")
        .join(case)
}

/// `rbm train --data DIR` with a run folder in `out` (never created: every case fails first).
fn train(dir: &Path, out: &TempDir) -> std::process::Output {
    rbm(&[
        "train",
        "--data",
        dir.to_str().unwrap(),
        "--out",
        out.path().join("run").to_str().unwrap(),
        "--epochs",
        "1",
        "--batches-per-epoch",
        "1",
    ])
}

#[test]
fn train_on_hostile_dataset_folders() {
    let out = TempDir::new("cli-hostile");
    for (case, file, needle) in [
        ("bad-images", "train-images-idx3-ubyte", "bad magic number"),
        (
            "count-mismatch",
            "train-labels-idx1-ubyte",
            "3 images but 2 labels",
        ),
        (
            "label-out-of-range",
            "train-labels-idx1-ubyte",
            "label 10 at index 1 is out of range",
        ),
        ("labels-i8", "train-labels-idx1-ubyte", "element type is i8"),
        (
            "images-2d",
            "train-images-idx3-ubyte",
            "dimensions are [3, 4]",
        ),
        (
            "zero-cols",
            "train-images-idx3-ubyte",
            "dimensions are [3, 2, 0]",
        ),
        (
            "bomb-images",
            "train-images-idx3-ubyte.gz",
            "inflates past the 20 bytes",
        ),
        (
            // Without the check, the model would be sized from 65535 · 65535 declared pixels.
            "empty-huge-rows",
            "train-images-idx3-ubyte",
            "training needs images",
        ),
    ] {
        let dir = hostile(case);
        let res = train(&dir, &out);
        let named = dir.join(file).display().to_string();
        assert_one_line_error(&res, &named);
        assert_one_line_error(&res, needle);
        assert!(
            !out.path().join("run").exists(),
            "{case}: a run folder was made"
        );
    }
    // The missing file is named by the folder and the standard name.
    let dir = hostile("missing-labels");
    let res = train(&dir, &out);
    assert_one_line_error(&res, &dir.display().to_string());
    assert_one_line_error(&res, "no train-labels-idx1-ubyte");
}

#[test]
fn train_on_header_claiming_2p96_bytes() {
    let dir = TempDir::new("cli-2p96");
    dir.write(
        "train-images-idx3-ubyte",
        &idx_bytes(0x08, &[u32::MAX; 3], &[]),
    );
    dir.write("train-labels-idx1-ubyte", &idx_bytes(0x08, &[1], &[0]));
    let res = train(dir.path(), &dir);
    let named = dir.path().join("train-images-idx3-ubyte");
    assert_one_line_error(&res, &named.display().to_string());
    assert_one_line_error(&res, "declared size overflows");
}

#[test]
fn directory_where_a_file_is_expected() {
    let dir = TempDir::new("cli-dir");
    let images = dir.path().join("train-images-idx3-ubyte");
    std::fs::create_dir(&images).unwrap();
    dir.write("train-labels-idx1-ubyte", &idx_bytes(0x08, &[1], &[0]));
    let res = train(dir.path(), &dir);
    assert_one_line_error(&res, &format!("{}: is a directory", images.display()));
}

#[test]
fn file_where_a_folder_is_expected() {
    let dir = TempDir::new("cli-file");
    let file = dir.write("not-a-folder", b"hello");
    let res = train(&file, &dir);
    assert_one_line_error(
        &res,
        &format!("{}: no train-images-idx3-ubyte", file.display()),
    );
    // A run folder path that is an existing file, with a valid dataset.
    let data = hostile("4x4-images");
    let res = rbm(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
        "--epochs",
        "1",
        "--batches-per-epoch",
        "1",
        "--batch",
        "2",
    ]);
    assert_one_line_error(&res, &file.display().to_string());
}

/// `/proc/self/mem` under the image file's `.gz` name: opening works, reading fails (EIO).
#[cfg(target_os = "linux")]
#[test]
fn unreadable_image_file() {
    let dir = TempDir::new("cli-unreadable");
    let images = dir.path().join("train-images-idx3-ubyte.gz");
    std::os::unix::fs::symlink("/proc/self/mem", &images).unwrap();
    dir.write("train-labels-idx1-ubyte", &idx_bytes(0x08, &[1], &[0]));
    let res = train(dir.path(), &dir);
    assert_one_line_error(&res, &format!("{}: ", images.display()));
    assert_one_line_error(&res, "error");
}

/// `rbm bench train` reads a dataset too: an empty one used to divide by zero, and rows that
/// are not MNIST's 784 pixels gave a shape error naming no file.
#[test]
fn bench_on_hostile_dataset_folders() {
    for (case, needle) in [
        ("empty-huge-rows", "training needs images"),
        (
            "4x4-images",
            "rows have 16 values, the model has 784 visible units",
        ),
        ("bad-images", "bad magic number"),
    ] {
        let dir = hostile(case);
        let res = rbm(&[
            "bench",
            "train",
            "--data",
            dir.to_str().unwrap(),
            "--seconds",
            "0.01",
            "--hidden",
            "4",
        ]);
        let named = dir.join("train-images-idx3-ubyte").display().to_string();
        assert_one_line_error(&res, &named);
        assert_one_line_error(&res, needle);
    }
}
