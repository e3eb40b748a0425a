//! Terminal output: progress bars on stderr, JSON lines on stdout.

use indicatif::{ProgressBar, ProgressStyle};

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

    /// Prints a line on stdout above the bar.
    pub fn println(&self, line: String) {
        self.0.suspend(|| println!("{line}"));
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Prints one JSON object on one line of stdout.
pub fn print_json(v: &serde_json::Value) {
    println!("{v}");
}
