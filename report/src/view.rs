//! What every reporter derives from a [`HostReport`] the same way: the state after the run,
//! the JUnit-style verdict, the DC it is bound to, its groups, who needs to act. One place,
//! so the recap, CSV, JUnit, HTML, Markdown, merge and history never disagree about a host.

use std::collections::BTreeMap;

use playbooks::{Diagnosis, HostState, RepairStatus, Summary};

use super::{Document, HostReport};

/// The group a host is filed under when the inventory gives it none.
pub const NO_GROUP: &str = "hosts";

/// The host records sorted by host name (stable: equal names keep their order).
pub fn sorted_hosts(doc: &Document) -> Vec<&HostReport> {
    let mut hosts: Vec<&HostReport> = doc.hosts.iter().collect();
    hosts.sort_by(|a, b| a.host.cmp(&b.host));
    hosts
}

/// Parses [`HostState::name`]'s output.
pub fn parse_state(s: &str) -> Option<HostState> {
    HostState::ALL.into_iter().find(|st| st.name() == s)
}

/// The state the host was left in: the verified state after a repair, else the state found.
/// (A repair that could not verify leaves the state unknown.)
pub fn final_state(r: &HostReport) -> HostState {
    match (&r.repair, &r.plan) {
        (Some(o), Some(p)) => o.remaining_state(p),
        (Some(o), None) => match (&o.verification, o.status) {
            (Some(v), _) => v.diagnosis.state(),
            (None, RepairStatus::Unverified) => HostState::Unknown,
            (None, RepairStatus::MadeWorse) => HostState::Unreachable,
            (None, _) => r.state,
        },
        (None, _) => r.state,
    }
}

/// The diagnosis the host was left with: the last verification's, else the one found.
pub fn final_diagnosis(r: &HostReport) -> &Diagnosis {
    match r.repair.as_ref().and_then(|o| o.verification.as_ref()) {
        Some(v) => &v.diagnosis,
        None => &r.diagnosis,
    }
}

/// Was the repair verified by a fresh probe, and did it verify healthy? `None`: no repair
/// ran, or it could not verify.
pub fn verified(r: &HostReport) -> Option<bool> {
    r.repair
        .as_ref()
        .and_then(|o| o.verification.as_ref())
        .map(|v| v.healthy)
}

/// How a host reads as a test case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Healthy at the end of the run (possibly after a verified repair).
    Pass,
    /// Trust broken, or was broken and is not verified repaired.
    Fail,
    /// Never broken as far as we know, but not checked: unreachable, access problem,
    /// unknown.
    Error,
}

/// The host's [`Verdict`].
pub fn verdict(r: &HostReport) -> Verdict {
    let end = final_state(r);
    if end == HostState::Healthy {
        Verdict::Pass
    } else if r.state == HostState::Broken || end == HostState::Broken {
        Verdict::Fail
    } else {
        Verdict::Error
    }
}

/// The DC the host's secure channel was bound to when probed (`nltest /sc_verify`'s trusted
/// DC, else `/sc_query`'s), else the DC its locator found (lower case, without `\\`).
pub fn bound_dc(r: &HostReport) -> Option<String> {
    let probe = r.observation.probe.as_ref()?;
    let dc = probe.trusted_dc().or(probe.dsgetdc.dc.as_deref())?;
    let dc = dc.trim().trim_start_matches('\\');
    if dc.is_empty() {
        None
    } else {
        Some(dc.to_ascii_lowercase())
    }
}

/// The probe's trusted DC alone (what `/sc_verify` printed), lower case without `\\`.
pub fn trusted_dc(r: &HostReport) -> Option<String> {
    let probe = r.observation.probe.as_ref()?;
    let dc = probe.sc_verify.trusted_dc.as_deref()?.trim();
    let dc = dc.trim_start_matches('\\');
    (!dc.is_empty()).then(|| dc.to_ascii_lowercase())
}

/// The machine SID from the probe (or from the repair's verification).
pub fn machine_sid(r: &HostReport) -> Option<&str> {
    r.observation
        .probe
        .as_ref()
        .and_then(|p| p.machine_sid.as_deref())
        .or_else(|| {
            r.repair
                .as_ref()
                .and_then(|o| o.verification.as_ref())
                .and_then(|v| v.probe.machine_sid.as_deref())
        })
}

/// The line of evidence that decided the diagnosis (the last one: evidence runs from the
/// most basic to the conclusion).
pub fn key_evidence(r: &HostReport) -> &str {
    r.evidence.last().map(String::as_str).unwrap_or("")
}

/// The planned ladder's action names, in order.
pub fn planned_actions(r: &HostReport) -> Vec<&'static str> {
    r.plan
        .as_ref()
        .map(|p| p.actions.iter().map(|a| a.name()).collect())
        .unwrap_or_default()
}

/// Why a person must act on this host, or `None` when the run left it healthy (and nothing
/// advisory, like a SID duplicate's rebuild, is planned) or a repair would still try
/// something. After a repair: every host it left unhealthy. For a plan:
/// unhealthy hosts with nothing automatic planned. For a check (nothing planned): every
/// unhealthy host.
pub fn needs_person(r: &HostReport) -> Option<String> {
    // A healthy channel can still need a person: SID duplicates (sysprep-less clones) are
    // advisory, planned as a rebuild.
    let advisory = r.plan.as_ref().is_some_and(|p| {
        p.actions
            .iter()
            .any(|a| matches!(a, playbooks::Action::RebuildRequired { .. }))
    });
    if final_state(r) == HostState::Healthy && !advisory {
        return None;
    }
    let needs = r
        .plan
        .as_ref()
        .filter(|p| !p.needs.is_empty())
        .map(|p| p.needs.join("; "));
    if let Some(o) = &r.repair {
        return Some(match o.status {
            RepairStatus::ManualActionRequired | RepairStatus::NotAttempted => {
                needs.unwrap_or_else(|| o.detail.clone())
            }
            _ => o.detail.clone(),
        });
    }
    if let Some(p) = &r.plan {
        if p.changes_anything() {
            return None;
        }
        return Some(needs.unwrap_or_else(|| p.why.clone()));
    }
    Some(r.diagnosis.to_string())
}

/// The inventory groups of each host (what `--limit` matches), for the JUnit class names
/// and the per-group chart. Ansible's implicit `all` and `ungrouped` are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Groups(BTreeMap<String, Vec<String>>);

impl Groups {
    /// No groups known: every host is filed under [`NO_GROUP`].
    pub fn new() -> Self {
        Groups::default()
    }

    /// Sets a host's groups.
    pub fn insert(&mut self, host: impl Into<String>, groups: Vec<String>) {
        self.0.insert(host.into(), groups);
    }

    /// The host's groups, sorted, without `all`/`ungrouped`; `[NO_GROUP]` when none.
    pub fn of(&self, host: &str) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .0
            .get(host)
            .map(|g| {
                g.iter()
                    .map(String::as_str)
                    .filter(|g| !matches!(*g, "all" | "ungrouped") && !g.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        out.sort_unstable();
        out.dedup();
        if out.is_empty() {
            out.push(NO_GROUP);
        }
        out
    }

    /// The first of [`Groups::of`] (the JUnit class name).
    pub fn first(&self, host: &str) -> &str {
        self.of(host).first().copied().unwrap_or(NO_GROUP)
    }

    /// Is any group known?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, Vec<String>)> for Groups {
    fn from_iter<I: IntoIterator<Item = (String, Vec<String>)>>(iter: I) -> Self {
        Groups(iter.into_iter().collect())
    }
}

/// Counts of hosts as found (`summary`) and, when any host has a repair record or
/// `with_remaining` is set, as left (`remaining`).
pub fn recount(hosts: &[HostReport], with_remaining: bool) -> (Summary, Option<Summary>) {
    let mut found = Summary::default();
    let mut left = Summary::default();
    let mut any_repair = false;
    for r in hosts {
        found.add(r.state);
        left.add(final_state(r));
        any_repair |= r.repair.is_some();
    }
    (found, (with_remaining || any_repair).then_some(left))
}

/// Milliseconds as seconds with one decimal (`1.2s`).
pub fn seconds(ms: u64) -> String {
    format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
}
