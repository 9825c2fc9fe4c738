//! The report model every reporter renders: one document per run, one record per host
//! with its probe evidence, diagnosis, plan, repair outcome and timings. Versioned by
//! `schema`; reporters (text, JSON, and the file formats) all read this, never the engine.

use playbooks::{HostPlan, HostState, RepairOutcome, Summary};
use serde::Serialize;

/// One host's record in the reports.
#[derive(Clone, Debug, Serialize)]
pub struct HostReport {
    pub host: String,
    pub address: String,
    pub state: HostState,
    pub diagnosis: playbooks::Diagnosis,
    pub evidence: Vec<String>,
    pub observation: playbooks::HostObservation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<HostPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<RepairOutcome>,
    pub probe_ms: u64,
}

/// One run's report.
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    pub schema: &'static str,
    pub command: &'static str,
    pub summary: Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<Summary>,
    pub elapsed_ms: u64,
    pub peak_concurrency: usize,
    pub hosts: &'a [HostReport],
}

