//! `report`: the report model every reporter renders, and the renderers. One document per
//! run, one record per host with its probe evidence, diagnosis, plan, repair outcome and
//! timings, versioned by `schema`. The file formats (JSON, JUnit, CSV, HTML, Markdown), the
//! terminal recap, the run history, shards and merging all read this, never the engine.
//! Sits between `playbooks` (whose types the records carry) and the `trustsweep` binary
//! (which fills documents from its sweeps and calls these renderers).

use playbooks::{HostPlan, HostState, RepairOutcome, Summary};
use serde::{Deserialize, Serialize};

/// One host's record in the reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostReport {
    pub host: String,
    pub address: String,
    pub state: HostState,
    pub diagnosis: playbooks::Diagnosis,
    pub evidence: Vec<String>,
    pub observation: playbooks::HostObservation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<HostPlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair: Option<RepairOutcome>,
    pub probe_ms: u64,
}

/// The schema name and version of [`Document`].
pub const SCHEMA: &str = "trustsweep.report/2";

/// One run's report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Document {
    pub schema: String,
    pub command: String,
    pub summary: Summary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<Summary>,
    pub elapsed_ms: u64,
    pub peak_concurrency: usize,
    /// Hosts the run worked on at once at most (`--concurrency`, or what the open-file
    /// limit allowed); `peak_concurrency` is how many it reached. Absent in reports of
    /// earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// The shard this run swept (`--shard K/N`), so that `merge` can tell missing and
    /// overlapping shards; absent for a whole fleet (and in reports of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    pub hosts: Vec<HostReport>,
}

// The reporters over this model: the API the commands call (`--output`, `--report`, the
// recap, `--history`/`history`, `merge`, `--shard`).
pub mod csv_file;
pub mod files;
pub mod history;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod merge;
pub mod recap;
pub mod shard;
pub mod view;

pub use files::{
    parse_output, render, render_with, write_file, write_file_with, FileFormat, OutputSpecError,
    RenderOptions, UnknownFormat,
};
pub use history::{render_history, History, HistoryError, HistoryView};
pub use merge::{merge, MergeError};
pub use recap::recap;
pub use shard::{parse_shard, shard, Shard, ShardError};
pub use view::Groups;
