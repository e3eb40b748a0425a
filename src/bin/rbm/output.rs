//! Terminal output: progress bars on stderr, text and JSON lines on stdout.
//!
//! Every line `rbm` prints on stdout goes through [`line`] (never `println!`, which panics
//! when stdout is a closed pipe or a full disk). A failed write is recorded, not raised: the
//! command finishes its work (a training run still writes its folder), later lines are
//! dropped, and `main` exits non-zero with one line on stderr saying that stdout failed
//! ([`stdout_error`]).

use std::fmt::Display;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};

/// The first error writing to stdout, if any (later lines are not attempted).
static STDOUT_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// Records that an output stream failed, with `message` naming it (`stdout: Broken pipe …`;
/// the first failure wins).
pub fn record_stdout_error(message: String) {
    let mut slot = STDOUT_ERROR.lock().unwrap_or_else(|p| p.into_inner());
    slot.get_or_insert(message);
}

/// Which stream failed and why (`stdout: …`), if a line could not be written.
pub fn stdout_error() -> Option<String> {
    STDOUT_ERROR
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// Writes `text` and a newline on stdout, flushed; on failure (a closed pipe, a full disk)
/// records the error for the exit status and drops this and every later line.
pub fn line(text: impl Display) {
    if stdout_error().is_some() {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        record_stdout_error(format!("stdout: {e}"));
    }
}

/// Writes one line on stderr, ignoring failure (there is nowhere left to report it).
pub fn error_line(text: impl Display) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{text}").and_then(|()| err.flush());
}

/// A progress bar on stderr (drawn only when stderr is a terminal).
pub struct Progress(ProgressBar);

impl Progress {
    pub fn new(len: u64, unit: &str) -> Self {
        let bar = ProgressBar::new(len);
        let style = ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {unit} [{{elapsed}} < {{eta}}]"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Progress(bar)
    }

    pub fn inc(&self) {
        self.0.inc(1);
    }

    /// Prints a line on stdout above the bar (see [`line`]).
    pub fn println(&self, text: String) {
        self.0.suspend(|| line(text));
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Prints one JSON object on one line of stdout (see [`line`]).
pub fn print_json(v: &Value) {
    line(v);
}

/// A path as a JSON string. Paths are bytes, JSON strings are Unicode: a path that is not
/// valid UTF-8 is written lossily (each invalid sequence as U+FFFD); see [`put_path`] for
/// the flag that says so.
pub fn path_json(path: &Path) -> Value {
    Value::String(path.to_string_lossy().into_owned())
}

/// Sets `object[key]` to `path` as a string, and `object["<key>_lossy"] = true` when the path
/// is not valid UTF-8 (so that the string, with U+FFFD in it, is known not to name the file).
pub fn put_path(object: &mut Value, key: &str, path: &Path) {
    if let Value::Object(map) = object {
        insert_path(map, key, path);
    }
}

/// [`put_path`] on a map.
pub fn insert_path(map: &mut Map<String, Value>, key: &str, path: &Path) {
    map.insert(key.to_owned(), path_json(path));
    if path.to_str().is_none() {
        map.insert(format!("{key}_lossy"), Value::Bool(true));
    }
}

/// `println!` through [`line`]: a line on stdout that never panics.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
