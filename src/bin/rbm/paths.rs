//! Paths in JSON documents. A path is bytes (an `OsStr`), a JSON string is Unicode: what
//! `rbm` reads back (the run record of a checkpoint) is stored losslessly by
//! [`serde_path`]; what it only shows (stdout, `run.json`, a model file's configuration) is
//! written lossily by [`crate::output::put_path`], which says so.

/// Serde for a path kept exactly: a JSON string when it is valid UTF-8, else (on Unix)
/// `{"unix_bytes": [..]}`, the path's bytes. Both forms are read back.
pub mod serde_path {
    use std::path::{Path, PathBuf};

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// The two forms of a stored path.
    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Stored {
        /// Valid UTF-8.
        Text(String),
        /// Any other path, as its bytes.
        Bytes {
            /// The bytes of the path (Unix: `OsStrExt::as_bytes`).
            unix_bytes: Vec<u8>,
        },
    }

    /// Writes `path` as a string, or as its bytes when it is not UTF-8.
    pub fn serialize<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
        match path.to_str() {
            Some(text) => Stored::Text(text.to_owned()),
            None => Stored::Bytes {
                unix_bytes: bytes_of(path),
            },
        }
        .serialize(s)
    }

    /// Reads either form back.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
        match Stored::deserialize(d)? {
            Stored::Text(text) => Ok(PathBuf::from(text)),
            Stored::Bytes { unix_bytes } => path_of(unix_bytes).map_err(serde::de::Error::custom),
        }
    }

    #[cfg(unix)]
    fn bytes_of(path: &Path) -> Vec<u8> {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    }

    #[cfg(not(unix))]
    fn bytes_of(path: &Path) -> Vec<u8> {
        path.to_string_lossy().into_owned().into_bytes()
    }

    #[cfg(unix)]
    fn path_of(bytes: Vec<u8>) -> Result<PathBuf, &'static str> {
        use std::os::unix::ffi::OsStringExt;
        Ok(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
    }

    #[cfg(not(unix))]
    fn path_of(bytes: Vec<u8>) -> Result<PathBuf, &'static str> {
        String::from_utf8(bytes)
            .map(PathBuf::from)
            .map_err(|_| "a path stored as Unix bytes that are not UTF-8")
    }
}
