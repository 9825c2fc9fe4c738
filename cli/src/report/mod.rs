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
pub const SCHEMA: &str = "trustsweep.report/1";

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
