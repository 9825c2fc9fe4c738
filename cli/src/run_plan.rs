//! The validated run plan of a command's outputs (ripgrep's `LowArgs` → `HiArgs`): what to
//! print on stdout (`--format`), which report files to write (`-o FORMAT=PATH`, `--report
//! DIR`), which journal to append to (`--journal`, `--resume`, `-o jsonl=PATH`, or
//! `DIR/trustsweep.jsonl`) and whether to record the run (`--history`). Parsed once from the
//! clap flags, before any host is contacted; the commands take this plan, never the specs.

use std::path::PathBuf;

use clap::ValueEnum;
use report::{FileFormat, OutputSpecError};

use crate::targets::SourceArgs;

/// Output format on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A line per host as it finishes, then a summary.
    Text,
    /// One JSON document at the end.
    Json,
}

/// The `-o` prefix that names the live journal rather than a report file.
const JSONL: &str = "jsonl=";

/// The journal's file name in `--report DIR`.
const JOURNAL_IN_REPORT_DIR: &str = "trustsweep.jsonl";

/// Where a fleet command's results go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPlan {
    /// What stdout shows.
    pub format: Format,
    /// Report files written at the end, in order: each `-o FORMAT=PATH`, then every format
    /// in `--report DIR`.
    pub files: Vec<(FileFormat, PathBuf)>,
    /// `--report DIR`: created before the sweep starts.
    pub report_dir: Option<PathBuf>,
    /// The journal this run reads first (`--resume`).
    pub resume: Option<PathBuf>,
    /// The journal this run appends to: `--resume`, else `--journal`, else `-o jsonl=PATH`,
    /// else `DIR/trustsweep.jsonl` of `--report DIR`.
    pub journal: Option<PathBuf>,
    /// `--history FILE`.
    pub history: Option<PathBuf>,
}

impl OutputPlan {
    /// The plan of `check`, `plan` and `repair` from their flags. Every `-o` spec is
    /// checked here, so a typo fails before any host is contacted.
    pub fn new(source: &SourceArgs, format: Format) -> Result<OutputPlan, OutputSpecError> {
        let mut files = Vec::new();
        let mut jsonl = None;
        for spec in &source.outputs {
            match spec.strip_prefix(JSONL) {
                // The first jsonl= wins, as it always has.
                Some(path) => {
                    jsonl.get_or_insert_with(|| PathBuf::from(path));
                }
                None => files.push(report::parse_output(spec)?),
            }
        }
        if let Some(dir) = &source.report {
            files.extend(FileFormat::ALL.map(|f| (f, dir.join(f.default_file_name()))));
        }
        let journal = source
            .resume
            .clone()
            .or_else(|| source.journal.clone())
            .or(jsonl)
            .or_else(|| {
                source
                    .report
                    .as_ref()
                    .map(|d| d.join(JOURNAL_IN_REPORT_DIR))
            });
        Ok(OutputPlan {
            format,
            files,
            report_dir: source.report.clone(),
            resume: source.resume.clone(),
            journal,
            history: source.history.clone(),
        })
    }

    /// The plan of `merge`: its `-o` files only (no journal: `jsonl=` is no report file).
    pub fn files_only(outputs: &[String], format: Format) -> Result<OutputPlan, OutputSpecError> {
        let files = outputs
            .iter()
            .map(|spec| report::parse_output(spec))
            .collect::<Result<_, _>>()?;
        Ok(OutputPlan {
            format,
            files,
            report_dir: None,
            resume: None,
            journal: None,
            history: None,
        })
    }

    /// Creates `--report DIR` (and its parents) if it is missing.
    pub fn create_report_dir(&self) -> Result<(), ReportDirError> {
        match &self.report_dir {
            Some(dir) => std::fs::create_dir_all(dir).map_err(|source| ReportDirError {
                dir: dir.clone(),
                source,
            }),
            None => Ok(()),
        }
    }
}

/// `--report DIR` could not be created.
#[derive(Debug, thiserror::Error)]
#[error("cannot create report directory {}: {source}", dir.display())]
pub struct ReportDirError {
    /// The directory.
    pub dir: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        source: SourceArgs,
    }

    fn plan(args: &[&str]) -> Result<OutputPlan, OutputSpecError> {
        let flags = Flags::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .expect("flags parse");
        OutputPlan::new(&flags.source, Format::Text)
    }

    #[test]
    fn files_keep_their_order_and_the_report_dir_adds_every_format() {
        let p = plan(&["-o", "csv=a.csv", "--report", "out", "-o", "json=b.json"]).unwrap();
        let names: Vec<String> = p
            .files
            .iter()
            .map(|(f, path)| format!("{f}={}", path.display()))
            .collect();
        assert_eq!(
            names,
            [
                "csv=a.csv",
                "json=b.json",
                "json=out/trustsweep.json",
                "junit=out/trustsweep-junit.xml",
                "csv=out/trustsweep.csv",
                "html=out/trustsweep.html",
                "markdown=out/trustsweep.md",
            ]
        );
        assert_eq!(p.journal, Some(PathBuf::from("out/trustsweep.jsonl")));
    }

    #[test]
    fn the_journal_is_resume_then_journal_then_jsonl_then_the_report_dir() {
        let p = plan(&["--resume", "r.jsonl", "-o", "jsonl=j.jsonl"]).unwrap();
        assert_eq!(p.journal, Some(PathBuf::from("r.jsonl")));
        assert_eq!(p.resume, Some(PathBuf::from("r.jsonl")));
        let p = plan(&["--journal", "a.jsonl", "-o", "jsonl=j.jsonl"]).unwrap();
        assert_eq!(p.journal, Some(PathBuf::from("a.jsonl")));
        let p = plan(&["-o", "jsonl=j.jsonl", "--report", "out"]).unwrap();
        assert_eq!(p.journal, Some(PathBuf::from("j.jsonl")));
        assert!(plan(&[]).unwrap().journal.is_none());
    }

    #[test]
    fn a_bad_spec_is_refused_with_the_words_of_the_report_crate() {
        let e = plan(&["-o", "pdf=x.pdf"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown report format 'pdf' (known: json, junit, csv, html, markdown)"
        );
        let e = plan(&["-o", "junit"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "'junit': expected FORMAT=PATH (e.g. junit=report.xml)"
        );
    }
}
