//! Reporters: every line a person sees comes from here (nextest's runner → events →
//! reporters; ripgrep's searcher → `Sink` → printers). The commands and the engine never
//! print: the engine's phases feed the [`phases`] reporters (progress bar, journal, a line
//! per host and per repair step), the fleet commands tell their [`Reporter`] what they
//! concluded as [`SweepEvent`]s, and the other commands (`run`, `inventory`, `lab serve`,
//! `history`, errors) hand their results to [`console`]. The wording lives in [`text`];
//! the report files and the recap are the `report` crate's.

pub mod console;
pub mod phases;
pub mod progress;
pub mod text;

use std::io::{IsTerminal, Write};
use std::time::Duration;

use playbooks::{HostPlan, Summary};
use report::{Document, HostReport};

use crate::run_plan::Format;

pub use console::failed;

/// What a fleet command tells its reporter once the engine's phases are done, in order.
#[derive(Debug, Clone, Copy)]
pub enum SweepEvent<'a> {
    /// Phase 2: the fleet diagnosed, one record per host.
    Diagnosed {
        /// The records.
        reports: &'a [HostReport],
    },
    /// Phase 3: the plans.
    Planned {
        /// One per host.
        plans: &'a [HostPlan],
    },
    /// The counts of a dry command (`check`, `plan`).
    Counted {
        /// The command.
        command: &'static str,
        /// The counts.
        summary: &'a Summary,
        /// Since the command started.
        elapsed: Duration,
    },
    /// `plan` is over: what `repair` would change.
    DryRunDone {
        /// Hosts a repair would change.
        would_change: usize,
    },
    /// The repair phase is about to start.
    RepairStarting {
        /// Hosts to repair (none: nothing is said).
        hosts: usize,
    },
    /// The repair phase is over.
    Repaired {
        /// The counts found.
        before: &'a Summary,
        /// The counts left (verified).
        after: &'a Summary,
        /// Since the command started.
        elapsed: Duration,
        /// The records, with plans and outcomes.
        reports: &'a [HostReport],
    },
    /// The run's report is complete: the recap (text) or the document (JSON).
    Finished {
        /// The report.
        doc: &'a Document,
    },
    /// `merge`'s report: the recap without colour (text) or the document (JSON).
    Merged {
        /// The merged report.
        doc: &'a Document,
    },
}

/// Something could not be written to stdout; the reporter has said so on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputFailed;

/// The reporter of `check`, `plan`, `repair` and `merge` on stdout.
#[derive(Debug, Clone, Copy)]
pub struct Reporter {
    format: Format,
    color: bool,
}

impl Reporter {
    /// A reporter in `format`; the recap is coloured when stdout is a terminal and
    /// `NO_COLOR` is unset.
    pub fn new(format: Format) -> Self {
        Reporter {
            format,
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    /// Presents one event. Text events are silent in JSON, and the document is printed once
    /// at the end.
    pub fn report(&self, ev: SweepEvent<'_>) -> Result<(), OutputFailed> {
        match (self.format, ev) {
            (Format::Text, SweepEvent::Diagnosed { reports }) => out(&text::breakdown(reports)),
            (Format::Text, SweepEvent::Planned { plans }) => out(&text::plans(plans)),
            (
                Format::Text,
                SweepEvent::Counted {
                    command,
                    summary,
                    elapsed,
                },
            ) => out(&format!(
                "\n{}\n",
                text::summary_line(command, summary, elapsed)
            )),
            (Format::Text, SweepEvent::DryRunDone { would_change }) => out(&format!(
                "repair would change {would_change} host(s); nothing was changed\n"
            )),
            (Format::Text, SweepEvent::RepairStarting { hosts }) if hosts > 0 => out("\nrepair:\n"),
            (
                Format::Text,
                SweepEvent::Repaired {
                    before,
                    after,
                    elapsed,
                    reports,
                },
            ) => out(&text::repair_totals(before, after, elapsed, reports)),
            (Format::Text, SweepEvent::Finished { doc }) => {
                out(&format!("\n{}", report::recap(doc, self.color)))
            }
            (Format::Text, SweepEvent::Merged { doc }) => out(&report::recap(doc, false)),
            (Format::Json, SweepEvent::Finished { doc } | SweepEvent::Merged { doc }) => {
                return json(None, doc);
            }
            _ => {}
        }
        Ok(())
    }
}

/// `value` as pretty JSON on stdout; when it cannot be written, says so as `command`.
///
/// Streamed through a buffer rather than built as one string first: a 10,000-host report is
/// about 50 MB of JSON, and a string of it (and its copy with the newline) would double the
/// sweep's peak memory. As for plain text, a stdout that cannot be written is not an error.
pub fn json(command: Option<&str>, value: &impl serde::Serialize) -> Result<(), OutputFailed> {
    let mut stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let written = serde_json::to_writer_pretty(&mut stdout, value);
    let _ = stdout.write_all(b"\n");
    let _ = stdout.flush();
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.is_io() => Ok(()),
        Err(e) => {
            match command {
                Some(c) => failed(Some(c), &e),
                None => failed(None, &format_args!("cannot write JSON: {e}")),
            }
            Err(OutputFailed)
        }
    }
}

/// Text on stdout, as is.
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}
