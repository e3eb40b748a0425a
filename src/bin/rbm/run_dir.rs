//! A run folder held by one process: the lock, the check that a new run destroys no other
//! run, the removal of the temporary files a killed write left, and the fingerprint of the
//! data a run trains on.
//!
//! Guarantees (docs/reliability.md, "Run folders"):
//! - a run holds `DIR/.rbm-lock` locked (`File::try_lock`, an advisory `flock` on Unix) from
//!   before it reads or writes anything in `DIR` until the process exits; a second run into
//!   the same folder, new or resumed, is refused at once. The kernel drops the lock when the
//!   process ends, however it ends, so a crash leaves no stale lock; the file itself stays
//!   (empty but for the holder's pid) and means nothing without a holder;
//! - a new run refuses a folder that holds a run ([`RUN_FILES`]) unless `--force`, which
//!   removes that run's files first (so that no file of the old run survives beside the new
//!   one);
//! - every temporary file of an atomic write of a run file that a killed process left in the
//!   folder is removed once the lock is held (no other process can be writing them then).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use rbm::data::Dataset;
use rbm::{Error, atomic};
use sha2::{Digest, Sha256};

use crate::figures::RUN_FIGURES;

/// The lock file of a run folder.
pub const LOCK: &str = ".rbm-lock";
/// The name of the checkpoint file in a run folder.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// The name of the model file in a run folder.
pub const MODEL: &str = "model.safetensors";

/// The files whose presence means that a folder holds a run.
pub const RUN_FILES: [&str; 4] = [MODEL, CHECKPOINT, "metrics.csv", "run.json"];

/// A run folder locked by this process until the value is dropped (or the process exits).
#[derive(Debug)]
pub struct RunFolder {
    /// The folder.
    pub dir: PathBuf,
    /// Held open: the lock lives as long as the descriptor.
    _lock: File,
}

impl RunFolder {
    /// Creates `dir` if needed and locks it for a new run; refuses a folder that holds a run
    /// unless `force`, in which case the old run's files are removed. Call it only once the
    /// run's arguments are known to be good: it is the first thing a run writes.
    ///
    /// # Errors
    /// [`Error::Io`] naming `dir` if it cannot be created or another process holds it;
    /// [`Error::Config`] naming `--out` when it holds a run and `force` is false.
    pub fn claim_new(dir: &Path, force: bool) -> rbm::Result<RunFolder> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let folder = Self::lock(dir)?;
        let present = run_files_in(dir);
        if !present.is_empty() {
            if !force {
                return Err(Error::config(
                    "--out",
                    "a folder without a run (--resume continues it, --force replaces it)",
                    format!("{} holding {}", dir.display(), present.join(", ")),
                ));
            }
            for name in RUN_FILES.iter().chain(RUN_FIGURES.iter()) {
                let path = dir.join(name);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(path, e)),
                }
            }
        }
        folder.remove_stale_temporaries();
        Ok(folder)
    }

    /// Locks the existing run folder `dir` to continue its run.
    ///
    /// # Errors
    /// [`Error::Io`] naming `dir` if it is not a folder or another process holds it.
    pub fn claim_existing(dir: &Path) -> rbm::Result<RunFolder> {
        let meta = fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
        if !meta.is_dir() {
            return Err(Error::io(
                dir,
                io::Error::new(io::ErrorKind::NotADirectory, "not a run folder"),
            ));
        }
        let folder = Self::lock(dir)?;
        folder.remove_stale_temporaries();
        Ok(folder)
    }

    fn lock(dir: &Path) -> rbm::Result<RunFolder> {
        let path = dir.join(LOCK);
        // Never through a link or into something that is not a file.
        if let Ok(meta) = fs::symlink_metadata(&path)
            && !meta.file_type().is_file()
        {
            return Err(Error::io(
                &path,
                io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    String::from("another rbm process")
                } else {
                    format!("another rbm process ({holder})")
                };
                return Err(Error::io(
                    dir,
                    io::Error::new(
                        io::ErrorKind::WouldBlock,
                        format!("{who} is using this run folder (it holds {LOCK})"),
                    ),
                ));
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        // For the message above only: best effort.
        let _ = file
            .set_len(0)
            .and_then(|()| write!(file, "pid {}", std::process::id()));
        Ok(RunFolder {
            dir: dir.to_path_buf(),
            _lock: file,
        })
    }

    /// Removes the temporary files that a process killed while writing a run file left.
    fn remove_stale_temporaries(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if RUN_FILES
                .iter()
                .chain(RUN_FIGURES.iter())
                .any(|target| atomic::is_temp_name(&name, target.as_ref()))
            {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// The run files present in `dir`.
fn run_files_in(dir: &Path) -> Vec<&'static str> {
    RUN_FILES
        .into_iter()
        .filter(|name| fs::symlink_metadata(dir.join(name)).is_ok())
        .collect()
}

/// `path` made absolute against the current folder (not resolving links: a run records the
/// folder as the user named it, from wherever it was started).
///
/// # Errors
/// [`Error::Io`] naming `path` if the current folder is unknown.
pub fn absolute(path: &Path) -> rbm::Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io(path, e))
}

/// What identifies the data of a run: for each file read, its name, size and SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileFingerprint {
    /// The file's name (not its folder: data may move).
    pub name: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// The SHA-256 of its bytes, in hex.
    pub sha256: String,
}

/// The fingerprints of the image and label files of `ds`.
///
/// # Errors
/// [`Error::Io`] naming a file that cannot be read.
pub fn fingerprint(ds: &Dataset) -> rbm::Result<Vec<FileFingerprint>> {
    [ds.images_file().path(), ds.labels_file().path()]
        .into_iter()
        .map(file_fingerprint)
        .collect()
}

fn file_fingerprint(path: &Path) -> rbm::Result<FileFingerprint> {
    let io_err = |e| Error::io(path, e);
    let mut file = File::open(path).map_err(io_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        };
        bytes += n as u64;
        hasher.update(&buf[..n]);
    }
    let sha256 = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(FileFingerprint {
        name: path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        bytes,
        sha256,
    })
}
