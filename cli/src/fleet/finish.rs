//! The end of every fleet command: the report document, its presentation on stdout, the
//! report files and history of the run plan, and the exit code of what remains.

use std::path::PathBuf;
use std::time::Instant;

use playbooks::Summary;
use report::{Document, HostReport, RenderOptions};

use crate::engine;
use crate::exit;
use crate::reporter::{self, Reporter, SweepEvent};
use crate::run_plan::OutputPlan;
use crate::targets::{FailOn, Target};

/// The report of a run.
pub(crate) fn document(
    command: &str,
    summary: Summary,
    remaining: Option<Summary>,
    t0: Instant,
    swept: &super::swept::Swept,
    hosts: Vec<HostReport>,
) -> Document {
    Document {
        schema: report::SCHEMA.to_string(),
        command: command.to_string(),
        summary,
        remaining,
        elapsed_ms: ms(t0),
        peak_concurrency: swept.peak,
        concurrency: Some(swept.concurrency.hosts),
        shard: swept.shard,
        hosts,
    }
}

/// Presents the document, writes the plan's files and history, and turns what remains
/// into the exit code.
pub(crate) fn finish(
    reporter: &Reporter,
    doc: &Document,
    cancel: &engine::tokio_util_cancel::Token,
    outputs: &OutputPlan,
    fail_on: &[FailOn],
    targets: &[Target],
) -> i32 {
    if reporter.report(SweepEvent::Finished { doc }).is_err() {
        return exit::USAGE;
    }
    if let Err(e) = write_reports(doc, outputs, targets, cancel.is_cancelled()) {
        reporter::failed(None, &e);
        return exit::USAGE;
    }
    if cancel.is_cancelled() {
        return exit::INTERRUPTED;
    }
    exit_code(doc.remaining.as_ref().unwrap_or(&doc.summary), fail_on)
}

/// The exit code of what remains, for the `--fail-on` conditions (none: any).
pub(crate) fn exit_code(s: &Summary, fail_on: &[FailOn]) -> i32 {
    let any = fail_on.is_empty() || fail_on.contains(&FailOn::Any);
    let broken = any || fail_on.contains(&FailOn::Broken);
    let unreachable = any || fail_on.contains(&FailOn::Unreachable);
    if broken && s.broken > 0 {
        exit::BROKEN
    } else if unreachable && s.unreachable + s.access_problem + s.unknown > 0 {
        exit::INCOMPLETE
    } else {
        exit::OK
    }
}

/// A report file or the history could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteReportsError {
    /// `--report DIR` could not be created.
    #[error(transparent)]
    ReportDir(#[from] crate::run_plan::ReportDirError),
    /// A report file.
    #[error("cannot write {}: {source}", path.display())]
    File {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The `--history` database.
    #[error("history {}: {source}", path.display())]
    History {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: report::HistoryError,
    },
}

/// The plan's report files (`-o FORMAT=PATH`, `--report DIR`) and `--history`.
pub(crate) fn write_reports(
    doc: &Document,
    outputs: &OutputPlan,
    targets: &[Target],
    interrupted: bool,
) -> Result<(), WriteReportsError> {
    outputs.create_report_dir()?;
    if !outputs.files.is_empty() {
        let groups = targets
            .iter()
            .map(|t| (t.name.clone(), t.groups.clone()))
            .collect();
        let opts = RenderOptions {
            groups,
            ..RenderOptions::default()
        };
        for (format, path) in &outputs.files {
            report::write_file_with(*format, path, doc, &opts).map_err(|source| {
                WriteReportsError::File {
                    path: path.clone(),
                    source,
                }
            })?;
        }
    }
    // An interrupted run would record hosts it never checked: keep it out of the history.
    if let Some(path) = outputs.history.as_ref().filter(|_| !interrupted) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let history_error = |source| WriteReportsError::History {
            path: path.clone(),
            source,
        };
        let mut history = report::History::open(path).map_err(history_error)?;
        history.record(doc, now).map_err(history_error)?;
    }
    Ok(())
}

/// Milliseconds since `t0`.
pub(crate) fn ms(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX)
}
