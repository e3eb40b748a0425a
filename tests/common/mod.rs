//! Helpers shared by the integration tests: temporary folders, IDX/gzip fixtures, running the
//! `rbm` binary, and (in [`alloc`]) a counting allocator.
#![allow(dead_code)]

pub mod alloc;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use flate2::Compression;
use flate2::write::GzEncoder;

/// A fresh folder under the system temp dir, removed (with its contents) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty, uniquely named folder; `tag` appears in the name.
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "rbm-test-{tag}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `bytes` to `name` in the folder and returns its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write fixture");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An IDX file: magic with type `code`, the dims (big-endian), then `data` verbatim.
pub fn idx_bytes(code: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, code, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// `bytes` gzip'd.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

/// A u8 image file `[n, rows, cols]` whose pixel `k` (flat) is `k * 7 % 256`.
pub fn images(n: u32, rows: u32, cols: u32) -> Vec<u8> {
    let len = (n * rows * cols) as usize;
    let data: Vec<u8> = (0..len).map(|k| (k * 7 % 256) as u8).collect();
    idx_bytes(0x08, &[n, rows, cols], &data)
}

/// A u8 label file `[labels.len()]`.
pub fn labels(labels: &[u8]) -> Vec<u8> {
    idx_bytes(0x08, &[labels.len() as u32], labels)
}

/// The folder holding `mnist/` and `fashion-mnist/` (`$RBM_DATA`, else `../shared/data`), or
/// `None` (after printing "skipping: no data") without it. Under CI (env `CI` set) a missing
/// folder fails the test instead.
pub fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("RBM_DATA")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but the data folder {} is missing",
        dir.display()
    );
    println!("skipping: no data (looked in {})", dir.display());
    None
}

/// Runs the `rbm` binary with `args` (and without `RBM_DATA`).
pub fn rbm(args: &[&str]) -> Output {
    rbm_command(args).output().expect("run rbm")
}

/// The command that runs the `rbm` binary with `args` (and without `RBM_DATA`), to spawn.
pub fn rbm_command(args: &[&str]) -> Command {
    // `option_env!`: the binary exists only with the `cli` feature, and this module is
    // compiled into every test crate.
    let Some(exe) = option_env!("CARGO_BIN_EXE_rbm") else {
        panic!("no rbm binary: build with the `cli` feature");
    };
    let mut cmd = Command::new(exe);
    cmd.args(args).env_remove("RBM_DATA");
    cmd
}

/// The error output is one line naming `needle`, and the exit status is non-zero.
pub fn assert_one_line_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit status {:?}", out.status);
    assert_eq!(err.trim_end().lines().count(), 1, "stderr: {err}");
    assert!(
        err.contains(needle),
        "stderr {err:?} does not name {needle:?}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
