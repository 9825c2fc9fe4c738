//! The report files: one [`Document`] rendered as JSON, JUnit XML, CSV, HTML or Markdown
//! (`--output FORMAT=PATH`, `--report DIR`). Every format lists hosts sorted by name and
//! prints no clock time unless the caller passes one in [`RenderOptions::generated_at`],
//! so the same document always renders to the same bytes.

use std::fmt;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use playbooks::Summary;
use serde::Serialize;

use super::view::{sorted_hosts, Groups};
use super::{csv_file, html, junit, markdown, Document, HostReport};

/// A report file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileFormat {
    /// The document as is (versioned `schema`), pretty-printed.
    Json,
    /// JUnit XML: a test suite for the command, a test case per host.
    Junit,
    /// One row per host.
    Csv,
    /// A self-contained page: charts of the fleet's state and a sortable host table.
    Html,
    /// A summary for a CI job summary (GitHub's `$GITHUB_STEP_SUMMARY`).
    Markdown,
}

impl FileFormat {
    /// Every format, in the order `--report DIR` writes them.
    pub const ALL: [FileFormat; 5] = [
        FileFormat::Json,
        FileFormat::Junit,
        FileFormat::Csv,
        FileFormat::Html,
        FileFormat::Markdown,
    ];

    /// The name on the command line (`json`, `junit`, …).
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Json => "json",
            FileFormat::Junit => "junit",
            FileFormat::Csv => "csv",
            FileFormat::Html => "html",
            FileFormat::Markdown => "markdown",
        }
    }

    /// The file name `--report DIR` uses.
    pub fn default_file_name(self) -> &'static str {
        match self {
            FileFormat::Json => "trustsweep.json",
            FileFormat::Junit => "trustsweep-junit.xml",
            FileFormat::Csv => "trustsweep.csv",
            FileFormat::Html => "trustsweep.html",
            FileFormat::Markdown => "trustsweep.md",
        }
    }
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown format name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFormat(pub String);

impl fmt::Display for UnknownFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown report format '{}' (known: json, junit, csv, html, markdown)",
            self.0
        )
    }
}

impl std::error::Error for UnknownFormat {}

impl FromStr for FileFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        FileFormat::ALL
            .into_iter()
            .find(|f| f.name() == lower)
            .ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

/// Why an `--output FORMAT=PATH` spec is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OutputSpecError {
    /// No `=` between a format and a path.
    #[error("'{0}': expected FORMAT=PATH (e.g. junit=report.xml)")]
    NotFormatEqualsPath(String),
    /// The format is not one of [`FileFormat::ALL`].
    #[error(transparent)]
    UnknownFormat(#[from] UnknownFormat),
    /// Nothing after the `=`.
    #[error("'{0}': the path is empty")]
    EmptyPath(String),
}

/// Parses one `--output FORMAT=PATH`.
pub fn parse_output(spec: &str) -> Result<(FileFormat, PathBuf), OutputSpecError> {
    let Some((format, path)) = spec.split_once('=') else {
        return Err(OutputSpecError::NotFormatEqualsPath(spec.to_string()));
    };
    let format: FileFormat = format.parse()?;
    if path.is_empty() {
        return Err(OutputSpecError::EmptyPath(spec.to_string()));
    }
    Ok((format, PathBuf::from(path)))
}

/// What a document does not carry but some formats show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// Inventory groups per host: JUnit class names and the HTML per-group chart.
    pub groups: Groups,
    /// Shown verbatim as the report's time (HTML, Markdown, a JUnit property); `None`
    /// keeps the output free of clock time.
    pub generated_at: Option<String>,
    /// Markdown: at most this many non-healthy hosts, then "and K more".
    pub max_rows: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            groups: Groups::new(),
            generated_at: None,
            max_rows: 50,
        }
    }
}

/// Renders `doc` in `format` with default options.
pub fn render(format: FileFormat, doc: &Document) -> String {
    render_with(format, doc, &RenderOptions::default())
}

/// Renders `doc` in `format`.
pub fn render_with(format: FileFormat, doc: &Document, opts: &RenderOptions) -> String {
    match format {
        FileFormat::Json => match json(doc) {
            Ok(s) => s,
            // Unreachable with these types (string keys only); keep the file valid JSON.
            Err(e) => format!("{{\"error\": {:?}}}\n", e.to_string()),
        },
        FileFormat::Junit => junit::render(doc, opts),
        FileFormat::Csv => csv_file::render(doc),
        FileFormat::Html => html::render(doc, opts),
        FileFormat::Markdown => markdown::render(doc, opts),
    }
}

/// Writes `doc` as `format` to `path` with default options.
pub fn write_file(format: FileFormat, path: &Path, doc: &Document) -> io::Result<()> {
    write_file_with(format, path, doc, &RenderOptions::default())
}

/// Writes `doc` as `format` to `path`, through a temporary file in the same directory
/// renamed into place, so an interrupted run never leaves half a report.
pub fn write_file_with(
    format: FileFormat,
    path: &Path,
    doc: &Document,
    opts: &RenderOptions,
) -> io::Result<()> {
    let mut tmp_name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "report".into());
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut out = BufWriter::new(fs::File::create(&tmp)?);
        match format {
            FileFormat::Json => {
                serde_json::to_writer_pretty(&mut out, &SortedDocument::new(doc))
                    .map_err(io::Error::other)?;
                out.write_all(b"\n")?;
            }
            _ => out.write_all(render_with(format, doc, opts).as_bytes())?,
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()
    })();
    match result {
        Ok(()) => fs::rename(&tmp, path),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// [`Document`]'s JSON with the hosts sorted by name, borrowed (no copy of the hosts).
/// Same field names and order as [`Document`]; a test checks the two stay equal.
#[derive(Serialize)]
struct SortedDocument<'a> {
    schema: &'a str,
    command: &'a str,
    summary: &'a Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining: Option<&'a Summary>,
    elapsed_ms: u64,
    peak_concurrency: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    concurrency: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<crate::Shard>,
    hosts: Vec<&'a HostReport>,
}

impl<'a> SortedDocument<'a> {
    fn new(doc: &'a Document) -> Self {
        SortedDocument {
            schema: &doc.schema,
            command: &doc.command,
            summary: &doc.summary,
            remaining: doc.remaining.as_ref(),
            elapsed_ms: doc.elapsed_ms,
            peak_concurrency: doc.peak_concurrency,
            concurrency: doc.concurrency,
            shard: doc.shard,
            hosts: sorted_hosts(doc),
        }
    }
}

fn json(doc: &Document) -> serde_json::Result<String> {
    let mut s = serde_json::to_string_pretty(&SortedDocument::new(doc))?;
    s.push('\n');
    Ok(s)
}
