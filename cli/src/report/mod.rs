//! The report model every reporter renders: one document per run, one record per host
//! with its probe evidence, diagnosis, plan, repair outcome and timings. Versioned by
//! `schema`; reporters (text, JSON, and the file formats) all read this, never the engine.

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
    pub hosts: Vec<HostReport>,
}

// The reporters over this model. They are the API the commands call (`--output`,
// `--report`, the recap, `--history`/`history`, `merge`, `--shard`); the tests also build
// this module on its own (`#[path]`), so not every item is used by every build.
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
    parse_output, render, render_with, write_file, write_file_with, FileFormat, RenderOptions,
    UnknownFormat,
};
pub use history::{render_history, History, HistoryError, HistoryView};
pub use merge::{merge, MergeError};
pub use recap::recap;
pub use shard::{parse_shard, shard, Shard, ShardError};
pub use view::Groups;
