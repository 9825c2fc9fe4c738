//! Merging the JSON reports of shards (`--shard K/N` on several runners) into the report
//! one unsharded run would have written: same schema and command required, hosts
//! concatenated and sorted by name (a host in two shards is an error: the shards overlap),
//! diagnoses made again over the whole fleet's observations (a name twin, a SID duplicate
//! or a domain's PDC vote can span shards, which no shard alone could see), summaries
//! recounted from the host records, elapsed time the longest shard's, peak concurrency the
//! sum (the shards ran side by side). Reports that say which shard they swept (`shard`,
//! written by runs with `--shard`) must be every shard of one N exactly once: a missing
//! shard would leave its hosts out of the fleet without a word, a shard twice (or two
//! values of N) means the runs sliced the fleet differently.

use std::fmt;

use super::view::recount;
use super::{Document, Shard};

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
    /// Report `index` (0-based) says no shard while another says one (or the reverse).
    NotAShard {
        /// Its position.
        index: usize,
    },
    /// Report `index` (0-based) is a shard of another N than the first.
    ShardCountMismatch {
        /// The first report's N.
        expected: usize,
        /// This report's.
        found: usize,
        /// Its position.
        index: usize,
    },
    /// Two reports are of the same shard.
    OverlappingShards {
        /// The shard.
        shard: Shard,
        /// The positions (0-based) of the first two reports of it.
        first: usize,
        /// The second.
        second: usize,
    },
    /// Shards of N have no report.
    MissingShards {
        /// Their numbers (1-based), the first [`MISSING_NAMED`] of them.
        missing: Vec<usize>,
        /// N.
        n: usize,
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
            MergeError::NotAShard { index } => write!(
                f,
                "report {} and the others disagree on whether they are shards (--shard K/N): merge the reports of one sharded sweep",
                index + 1
            ),
            MergeError::ShardCountMismatch {
                expected,
                found,
                index,
            } => write!(
                f,
                "report {} is a shard of {found}, the first of {expected}: the runs sliced the fleet differently",
                index + 1
            ),
            MergeError::OverlappingShards {
                shard,
                first,
                second,
            } => write!(
                f,
                "reports {} and {} are both shard {shard}: the shards overlap",
                first + 1,
                second + 1
            ),
            MergeError::MissingShards { missing, n } => {
                let list: Vec<String> = missing.iter().map(|k| format!("{k}/{n}")).collect();
                write!(
                    f,
                    "shard{} {} of the sweep {} no report: its hosts would be missing from the fleet (merge every shard's report)",
                    if missing.len() == 1 { "" } else { "s" },
                    list.join(", "),
                    if missing.len() == 1 { "has" } else { "have" }
                )
            }
        }
    }
}

impl std::error::Error for MergeError {}

/// Merges shard reports into one document.
pub fn merge(docs: Vec<Document>) -> Result<Document, MergeError> {
    check_shards(&docs)?;
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
        out.concurrency = match (out.concurrency, doc.concurrency) {
            (Some(a), Some(b)) => Some(a.saturating_add(b)),
            (a, b) => a.or(b),
        };
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
    // The whole fleet now.
    out.shard = None;
    rediagnose(&mut out.hosts);
    let (summary, remaining) = recount(&out.hosts, with_remaining);
    out.summary = summary;
    out.remaining = remaining;
    Ok(out)
}

/// How many missing shards [`MergeError::MissingShards`] names.
pub const MISSING_NAMED: usize = 20;

/// Reports that name their shard are every shard of one N exactly once; reports that name
/// none (a whole fleet each, or reports of earlier versions) are merged as they are.
fn check_shards(docs: &[Document]) -> Result<(), MergeError> {
    let Some(first) = docs.first() else {
        return Err(MergeError::NoReports);
    };
    let Some(n) = first.shard.map(Shard::n) else {
        return match docs.iter().position(|d| d.shard.is_some()) {
            Some(index) => Err(MergeError::NotAShard { index }),
            None => Ok(()),
        };
    };
    // By shard number: the position of its report (N comes from a file: no table of N).
    let mut seen: std::collections::BTreeMap<usize, usize> = std::collections::BTreeMap::new();
    for (index, doc) in docs.iter().enumerate() {
        let Some(shard) = doc.shard else {
            return Err(MergeError::NotAShard { index });
        };
        if shard.n() != n {
            return Err(MergeError::ShardCountMismatch {
                expected: n,
                found: shard.n(),
                index,
            });
        }
        if let Some(&first) = seen.get(&shard.k()) {
            return Err(MergeError::OverlappingShards {
                shard,
                first,
                second: index,
            });
        }
        seen.insert(shard.k(), index);
    }
    // Every shard number is in 1..=n, so n - |seen| are missing; name the first few.
    let missing: Vec<usize> = (1..=n)
        .filter(|k| !seen.contains_key(k))
        .take(MISSING_NAMED)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(MergeError::MissingShards { missing, n })
    }
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
