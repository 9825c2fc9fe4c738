//! The terminal progress reporter: an indicatif bar per phase on stderr (hosts done/total,
//! elapsed, rate), only when stderr is a terminal and `CI` is not set, so that logs and
//! pipes stay clean. Result lines go to stdout through [`Progress::line`], which hides the
//! bar while printing.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};

/// A phase's progress bar, or nothing when progress is off.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

/// Whether progress bars are shown at all.
pub fn enabled() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

impl Progress {
    /// A bar for `phase` over `total` hosts (hidden when progress is off).
    pub fn new(phase: &str, total: usize) -> Self {
        if !enabled() || total == 0 {
            return Progress { bar: None };
        }
        let bar = ProgressBar::new(total as u64);
        let style = ProgressStyle::with_template(
            "{prefix:>8} [{bar:30}] {pos}/{len} hosts  {elapsed_precise}  {per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(phase.to_string());
        Progress { bar: Some(bar) }
    }

    /// One host done.
    pub fn inc(&self) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    /// Prints a result line on stdout without tearing the bar.
    pub fn line(&self, text: &str) {
        let print = || {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
        };
        match &self.bar {
            Some(b) => b.suspend(print),
            None => print(),
        }
    }

    /// Prints a note about the run on stderr without tearing the bar.
    pub fn note(&self, text: &str) {
        let print = || {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{text}");
        };
        match &self.bar {
            Some(b) => b.suspend(print),
            None => print(),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
