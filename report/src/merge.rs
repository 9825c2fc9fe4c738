//! Merging the JSON reports of shards (`--shard K/N` on several runners) into the report
//! one unsharded run would have written: same schema and command required, hosts
//! concatenated and sorted by name (a host in two shards is an error: the shards overlap),
//! diagnoses made again over the whole fleet's observations (a name twin, a SID duplicate
//! or a domain's PDC vote can span shards, which no shard alone could see), summaries
//! recounted from the host records, elapsed time the longest shard's, peak concurrency the
//! sum (the shards ran side by side).

use std::fmt;

use super::view::recount;
use super::Document;

/// Why shard reports cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MergeError {
    /// Nothing to merge.
    NoReports,
    /// Report `index` (0-based) has another schema than the first.
    SchemaMismatch {
        /// The first report's schema.
        expected: String,
        /// This report's.
        found: String,
        /// Its position.
        index: usize,
    },
    /// Report `index` (0-based) is of another command than the first.
    CommandMismatch {
        /// The first report's command.
        expected: String,
        /// This report's.
        found: String,
        /// Its position.
        index: usize,
    },
    /// The same host is in more than one report (or twice in one).
    DuplicateHost {
        /// The host.
        host: String,
    },
}

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MergeError::NoReports => f.write_str("no reports to merge"),
            MergeError::SchemaMismatch {
                expected,
                found,
                index,
            } => write!(
                f,
                "report {} has schema {found}, the first has {expected}",
                index + 1
            ),
            MergeError::CommandMismatch {
                expected,
                found,
                index,
            } => write!(
                f,
                "report {} is of `{found}`, the first is of `{expected}`: merge reports of one command",
                index + 1
            ),
            MergeError::DuplicateHost { host } => write!(
                f,
                "host {host} is in more than one report (do the shards overlap?)"
            ),
        }
    }
}

impl std::error::Error for MergeError {}

/// Merges shard reports into one document.
pub fn merge(docs: Vec<Document>) -> Result<Document, MergeError> {
    let mut iter = docs.into_iter().enumerate();
    let Some((_, first)) = iter.next() else {
        return Err(MergeError::NoReports);
    };
    let mut with_remaining = first.remaining.is_some();
    let mut out = first;
    for (index, doc) in iter {
        if doc.schema != out.schema {
            return Err(MergeError::SchemaMismatch {
                expected: out.schema,
                found: doc.schema,
                index,
            });
        }
        if doc.command != out.command {
            return Err(MergeError::CommandMismatch {
                expected: out.command,
                found: doc.command,
                index,
            });
        }
        with_remaining |= doc.remaining.is_some();
        out.elapsed_ms = out.elapsed_ms.max(doc.elapsed_ms);
        out.peak_concurrency = out.peak_concurrency.saturating_add(doc.peak_concurrency);
        out.hosts.extend(doc.hosts);
    }
    out.hosts.sort_by(|a, b| a.host.cmp(&b.host));
    if let Some(pair) = out.hosts.windows(2).find(|w| match w {
        [a, b] => a.host == b.host,
        _ => false,
    }) {
        let host = pair.first().map(|r| r.host.clone()).unwrap_or_default();
        return Err(MergeError::DuplicateHost { host });
    }
    rediagnose(&mut out.hosts);
    let (summary, remaining) = recount(&out.hosts, with_remaining);
    out.summary = summary;
    out.remaining = remaining;
    Ok(out)
}

/// Diagnoses every host again with the whole fleet in view. A host whose shard planned or
/// repaired it keeps that plan and outcome (they are what happened); if the fleet view
/// changes its diagnosis, its evidence says so.
fn rediagnose(hosts: &mut [super::HostReport]) {
    let observations: Vec<playbooks::HostObservation> =
        hosts.iter().map(|h| h.observation.clone()).collect();
    let findings = playbooks::diagnose_fleet(&observations);
    for (h, f) in hosts.iter_mut().zip(findings) {
        if f.diagnosis == h.diagnosis {
            continue;
        }
        let acted = h.plan.as_ref().is_some_and(|p| !p.actions.is_empty()) || h.repair.is_some();
        let was = h.diagnosis.name();
        h.state = f.diagnosis.state();
        h.diagnosis = f.diagnosis;
        h.evidence = f.evidence;
        if acted {
            h.evidence.push(format!(
                "diagnosed {was} by its shard, which saw only part of the fleet; its plan and repair are kept as they were"
            ));
        }
    }
}
