//! Files written whole or not at all: a temporary name in the same folder, `fsync`, rename,
//! then `fsync` of the folder.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Distinguishes the temporary files of concurrent writes within one process.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically: to a temporary file `.<name>.tmp-<pid>-<n>` beside
/// it (never an existing file), synced to disk, then renamed over `path`, and the folder
/// synced so that the rename itself is durable. A reader — or a process killed at any
/// moment, or a crash — sees the old file or the new one, never a part; on error the
/// temporary file is removed and `path` is untouched. The new file gets the default
/// permissions.
///
/// Only regular files are written: a `path` that exists and is not a regular file — a
/// folder, a FIFO, a device node, a socket, or a symbolic link (to anything) — is refused
/// rather than replaced by the rename. (A link is refused, not followed: following it would
/// write the file in the link target's folder, and replacing it would silently cut the link.)
///
/// # Errors
/// [`Error::Io`] naming `path` — the file asked for, never the temporary name — if `path`
/// names no file or something other than a regular file, if its folder is missing or not
/// writable, or if the temporary file cannot be created, written, synced or renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// [`write_atomic`] of the bytes that `write` writes (through a buffer) to the temporary
/// file: a file written in parts, never held whole in memory.
///
/// # Errors
/// Those of [`write_atomic`]; an error of `write` is reported naming `path`.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    let Some(name) = path.file_name() else {
        return Err(Error::io(
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file"),
        ));
    };
    check_target(path)?;
    let dir = folder_of(path);
    let (temp, file) = create_temp(dir, name).map_err(|e| Error::io(path, e))?;
    let mut out = io::BufWriter::with_capacity(1 << 16, file);
    let written = write(&mut out)
        .and_then(|()| out.flush())
        .and_then(|()| out.get_ref().sync_all())
        .map_err(|e| Error::io(path, e));
    drop(out);
    let renamed = written.and_then(|()| fs::rename(&temp, path).map_err(|e| Error::io(path, e)));
    if renamed.is_err() {
        // Best effort: the error that matters is the one already in hand.
        let _ = fs::remove_file(&temp);
    }
    renamed?;
    sync_dir(dir);
    Ok(())
}

/// Refuses a `path` that exists and is not a regular file (see [`write_atomic`]).
fn check_target(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) => {
            let kind = meta.file_type();
            if kind.is_file() {
                return Ok(());
            }
            let what = if kind.is_symlink() {
                "a symbolic link"
            } else if kind.is_dir() {
                "a folder"
            } else {
                "not a regular file (a FIFO, device or socket)"
            };
            Err(Error::io(
                path,
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("exists and is {what}; only regular files are replaced"),
                ),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Whether `name` is one of the temporary names [`write_atomic`] uses for the file `target`
/// (left behind by a process killed mid-write; safe to delete).
pub fn is_temp_name(name: &OsStr, target: &OsStr) -> bool {
    let (name, target) = (name.to_string_lossy(), target.to_string_lossy());
    name.strip_prefix('.')
        .and_then(|rest| rest.strip_prefix(target.as_ref()))
        .is_some_and(|rest| rest.starts_with(".tmp-"))
}

/// The folder that holds `path` (`.` for a bare file name, whose `parent` is empty).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Creates `.<name>.tmp-<pid>-<n>` in `dir`, never reusing an existing file.
fn create_temp(dir: &Path, name: &OsStr) -> io::Result<(PathBuf, File)> {
    let mut attempts = 0;
    loop {
        let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let mut temp_name = OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".tmp-{}-{seq}", std::process::id()));
        let temp = dir.join(temp_name);
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => {
                attempts += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Syncs the folder so that a rename in it is durable (best effort, Unix only).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replaces_and_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("rbm-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        let err = write_atomic(&dir.join("missing/b.txt"), b"x").unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporary_file_goes_beside_the_target() {
        assert_eq!(folder_of(Path::new("model.safetensors")), Path::new("."));
        assert_eq!(
            folder_of(Path::new("runs/m.safetensors")),
            Path::new("runs")
        );
        assert_eq!(folder_of(Path::new("/m.safetensors")), Path::new("/"));
    }

    #[test]
    fn temporary_names_are_recognised() {
        let t = OsStr::new("checkpoint.safetensors");
        assert!(is_temp_name(
            OsStr::new(".checkpoint.safetensors.tmp-12-0"),
            t
        ));
        assert!(!is_temp_name(OsStr::new("checkpoint.safetensors"), t));
        assert!(!is_temp_name(OsStr::new(".model.safetensors.tmp-1-0"), t));
    }
}
