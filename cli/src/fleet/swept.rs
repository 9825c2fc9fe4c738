//! Phases 1 and 2 of every fleet command: resolve the targets, pick up a resumed journal,
//! read the DCs (`--ldap`), probe every host not probed yet (its events to the probe
//! reporter), and diagnose the whole fleet.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use playbooks::{diagnose_fleet, Finding, RepairOutcome};
use report::HostReport;

use crate::dc::{DcAccess, DcEvidence};
use crate::engine::{self, Limits};
use crate::journal::{self, Entry, Journal, JournalError};
use crate::reporter::phases::{self, ProbeReporter};
use crate::run_plan::{OutputPlan, ReportDirError};
use crate::sweep::{self, Observed};
use crate::targets::{self, SourceArgs, Target, TargetsError};

/// What phases 1 and 2 found.
pub(crate) struct Swept {
    pub(crate) targets: Vec<Target>,
    pub(crate) observed: Vec<Observed>,
    pub(crate) findings: Vec<Finding>,
    pub(crate) peak: usize,
    /// Hosts worked on at once, and who chose the number.
    pub(crate) concurrency: crate::limits::Concurrency,
    /// The shard swept (`--shard`), recorded in the report for `merge`.
    pub(crate) shard: Option<report::Shard>,
    /// The journal this run appends to (`--journal`, or the `--resume` file).
    pub(crate) journal: Option<Arc<Journal>>,
    /// Repairs a resumed journal says are done.
    pub(crate) repaired: HashMap<String, RepairOutcome>,
    /// Hosts a resumed journal says were interrupted mid-step (action, step): they are
    /// only probed again, never repaired again.
    pub(crate) interrupted: HashMap<String, (String, String)>,
    /// DC access (`--ldap`) and what the DCs held when the sweep started.
    pub(crate) dc: Option<(DcAccess, Arc<DcEvidence>)>,
    pub(crate) _lab: Option<lab::wire::RunningLab>,
}

/// Why a sweep could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SweepError {
    /// The hosts or their credentials could not be resolved.
    #[error(transparent)]
    Targets(#[from] TargetsError),
    /// The journal could not be read (`--resume`) or opened.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// `--report DIR` could not be created.
    #[error(transparent)]
    ReportDir(#[from] ReportDirError),
}

/// Phases 1 and 2: every target probed (or taken from the resumed journal), the fleet
/// diagnosed.
pub(crate) async fn sweep(
    command: &str,
    source: &SourceArgs,
    outputs: &OutputPlan,
    cancel: &engine::tokio_util_cancel::Token,
) -> Result<Swept, SweepError> {
    let resolved = targets::resolve(source).await?;
    let targets = resolved.targets;
    let mut done = match &outputs.resume {
        Some(path) => journal::load(path)?,
        None => journal::Done::default(),
    };
    outputs.create_report_dir()?;
    let journal = open_journal(outputs, command, targets.len())?;
    // Hosts a resumed journal already probed are not probed again (without one, all are
    // probed, from the list itself rather than a copy: at 10,000 hosts a copy is
    // megabytes).
    let resumed: Vec<Target>;
    let todo: &[Target] = if done.observed.is_empty() {
        &targets
    } else {
        resumed = targets
            .iter()
            .filter(|t| !done.observed.contains_key(&t.name))
            .cloned()
            .collect();
        &resumed
    };
    if !done.observed.is_empty() {
        tracing::info!(
            done = targets.len() - todo.len(),
            todo = todo.len(),
            "resuming from the journal"
        );
    }
    let dc = match resolved.dc_access {
        Some(access) => Some(read_dcs(access, &targets).await),
        None => None,
    };
    let lab_hosts = resolved.lab.as_ref().map_or(0, |l| l.endpoints().len());
    let concurrency = crate::limits::choose(
        source.concurrency,
        crate::limits::open_file_limit(),
        lab_hosts,
    );
    let limits = Limits::new(concurrency.hosts, Duration::from_secs(source.host_deadline))
        .with_concurrency(concurrency);
    let names: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
    let mut reporter = ProbeReporter::new(outputs.format, &names, journal.clone());
    let (tx, reporting) = phases::spawn(move |ev| reporter.handle(ev));
    let evidence = dc.as_ref().map(|(_, e)| e.clone());
    let (fresh, peak) = sweep::observe_all(todo, limits, &tx, Some(cancel), evidence).await;
    drop(tx);
    let _ = reporting.await;
    let observed: Vec<Observed> = if done.observed.is_empty() {
        // One observation per target, in inventory order already.
        fresh
    } else {
        // In inventory order: the resumed hosts' observations, then the fresh ones.
        let mut fresh = todo
            .iter()
            .map(|t| t.name.clone())
            .zip(fresh)
            .collect::<HashMap<_, _>>();
        targets
            .iter()
            .filter_map(|t| {
                done.observed
                    .remove(&t.name)
                    .or_else(|| fresh.remove(&t.name))
            })
            .collect()
    };
    // The observations move out for the diagnosis and back: no second copy of the fleet.
    let (meta, observations): (Vec<_>, Vec<_>) = observed
        .into_iter()
        .map(|o| ((o.address, o.elapsed_ms), o.observation))
        .unzip();
    let findings = diagnose_fleet(&observations);
    let observed: Vec<Observed> = meta
        .into_iter()
        .zip(observations)
        .map(|((address, elapsed_ms), observation)| Observed {
            address,
            observation,
            elapsed_ms,
        })
        .collect();
    Ok(Swept {
        targets,
        observed,
        findings,
        peak,
        concurrency,
        shard: source.shard,
        journal,
        repaired: done.repaired,
        interrupted: done.interrupted,
        dc,
        _lab: resolved.lab,
    })
}

/// Opens the plan's journal and records that this run started.
fn open_journal(
    outputs: &OutputPlan,
    command: &str,
    hosts: usize,
) -> Result<Option<Arc<Journal>>, JournalError> {
    let Some(path) = &outputs.journal else {
        return Ok(None);
    };
    let journal = Journal::open(path)?;
    journal.append(&Entry::RunStarted {
        command: command.to_string(),
        schema: report::SCHEMA.to_string(),
        hosts,
    });
    Ok(Some(Arc::new(journal)))
}

/// The DC-side evidence, read once before the probes for every host of the sweep.
async fn read_dcs(access: DcAccess, targets: &[Target]) -> (DcAccess, Arc<DcEvidence>) {
    let names: Vec<String> = targets.iter().map(sweep::guessed_computer_name).collect();
    let evidence = crate::dc::read_evidence(&access, &names).await;
    for p in &evidence.problems {
        tracing::warn!("DC-side evidence: {p}");
    }
    tracing::info!(
        dcs = evidence.dcs.len(),
        "computer accounts read from the DCs"
    );
    (access, Arc::new(evidence))
}

/// One report record per host: what was observed and diagnosed (no plan, no repair yet).
pub(crate) fn reports(swept: &Swept) -> Vec<HostReport> {
    into_reports(swept.observed.clone(), swept.findings.clone())
}

/// [`reports`] that takes the observations and findings instead of copying them: for
/// `check`, which has no use for them after the report (at 10,000 hosts a copy of the
/// fleet's observations is tens of megabytes).
pub(crate) fn into_reports(observed: Vec<Observed>, findings: Vec<Finding>) -> Vec<HostReport> {
    observed
        .into_iter()
        .zip(findings)
        .map(|(o, f)| HostReport {
            state: f.diagnosis.state(),
            host: f.host,
            address: o.address,
            diagnosis: f.diagnosis,
            evidence: f.evidence,
            observation: o.observation,
            plan: None,
            repair: None,
            probe_ms: o.elapsed_ms,
        })
        .collect()
}
